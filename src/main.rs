//! `zkelect`: one ZooKeeper-compatible leader-election node per process. This file holds the
//! command line and hands each subcommand to its module (`start` runs the daemon itself).

#![forbid(unsafe_code)]

#[macro_use]
mod cli;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use clap_complete::Shell;
use cli::{bench, ensemble, run, status};
use crossbeam_channel::select;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use zkelect::config::QuorumPeerConfig;
use zkelect::node::{Fatal, Node};
use zkelect::runtime::signals::{Signal, SignalWatcher};
use zkelect::sidecar::{OnChildExit, RunOptions, guard};

/// Exit status of a command line clap cannot parse, for every subcommand (sysexits' EX_USAGE;
/// clap's own 2 would read as "invalid configuration" from `start` and "unreachable" from `status`).
const EXIT_USAGE: u8 = status::USAGE;

/// The command line. Built with clap's builder API rather than its derive macros: without a proc-macro in
/// the build, every crate can be linked statically (see .cargo/config.toml), which saves each node the
/// resident pages of a shared libc.
fn config_arg() -> Arg {
    Arg::new("config")
        .value_name("CONFIG")
        .required(true)
        .value_parser(value_parser!(PathBuf))
        .help("Path of the zoo.cfg file")
}

fn cli() -> Command {
    let tick_time = |default: &'static str| {
        Arg::new("tick_time")
            .long("tick-time")
            .value_name("MS")
            .value_parser(value_parser!(u64))
            .default_value(default)
            .help("tickTime of the generated configs, in ms")
    };
    Command::new("zkelect")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Apache ZooKeeper's leader election as a standalone daemon")
        .long_about(
            "zkelect runs ZooKeeper's leader-election layer (QuorumCnxManager + FastLeaderElection) as one \
process per node. It reads a zoo.cfg-style file and dataDir/myid, speaks ZooKeeper's election protocol byte \
for byte on the election port, and logs its state changes to stderr (RUST_LOG controls the levels).",
        )
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("start")
                .about("Run one node in the foreground with the given zoo.cfg (dataDir/myid names the node)")
                .long_about(
                    "Run one node in the foreground with the given zoo.cfg (dataDir/myid names the node). SIGTERM, \
SIGINT or SIGHUP stop it in order (exit status 0); a second one ends it at once. Other exit statuses: 1 cannot \
start, 2 invalid configuration, 14 the election port cannot be bound or its listener failed, 64 usage error, 70 \
internal error. Under systemd (Type=notify) it reports READY=1, its state and STOPPING=1 through $NOTIFY_SOCKET.",
                )
                .arg(config_arg()),
        )
        .subcommand(
            Command::new("run")
                .about("Run one node and, only while it is the active leader, a command (see \"Running a singleton\")")
                .long_about(
                    "Runs one node like `start`, and the command in its own process group while this node is the \
active leader: elected, and past the lease of every earlier leader. The command gets ZKELECT_EPOCH (the fencing \
token), ZKELECT_MYID and ZKELECT_LEADER. When the lease can no longer be guaranteed it gets SIGTERM, and SIGKILL \
when the lease ends, before any other node can become active; a guard process enforces this even if zkelect \
itself is frozen or killed. SIGTERM/SIGINT resign (releasing the lease), stop the command and exit 0; SIGHUP, \
SIGQUIT, SIGUSR1 and SIGUSR2 are passed on to the command. Exit status: 0 stopped by a signal, 1 cannot start \
(or the guard process died), 2 invalid configuration or command not found, 3 leadership lost (--exit-on-loss), \
4 the command exited (--on-child-exit=exit), 14 election port unusable, 70 internal error.",
                )
                .arg(config_arg())
                .arg(
                    Arg::new("on_child_exit")
                        .long("on-child-exit")
                        .value_name("POLICY")
                        .value_parser(["resign", "restart", "exit"])
                        .default_value("resign")
                        .help(
                            "When the command exits by itself: resign (another node takes over), restart (after \
1 s, doubling up to 60 s) or exit (with status 4)",
                        ),
                )
                .arg(
                    Arg::new("exit_on_loss")
                        .long("exit-on-loss")
                        .action(ArgAction::SetTrue)
                        .help("Exit with status 3 once an active leadership is lost (default: wait to lead again)"),
                )
                .arg(
                    Arg::new("command")
                        .value_name("COMMAND")
                        .required(true)
                        .num_args(1..)
                        .last(true)
                        .value_parser(value_parser!(OsString))
                        .help("The command and its arguments, after --"),
                ),
        )
        .subcommand(
            Command::new("resign")
                .about(
                    "Ask the leader to step down (its command stops, its lease is released) and not to lead the next \
election. Exit status: 0 resigned, 1 refused, 2 unreachable",
                )
                .long_about(
                    "Asks the leader at ADDRESS (its clientPort; rsgn must be in its 4lw.commands.whitelist) to \
resign: it stops its command, tells its followers the lease is released so that the next leader need not wait it \
out, and a new election follows in which it does not propose itself (with --to, the ensemble elects that server). \
Refused in an ensemble with ZooKeeper servers, whose election order must stay untouched.",
                )
                .arg(
                    Arg::new("address")
                        .value_name("ADDRESS")
                        .required(true)
                        .help("host:port of the leader's clientPort"),
                )
                .arg(
                    Arg::new("to")
                        .long("to")
                        .value_name("SID")
                        .value_parser(value_parser!(i64))
                        .help("Server id that should lead next (it must follow this leader now)"),
                )
                .arg(
                    Arg::new("timeout_ms")
                        .long("timeout-ms")
                        .value_name("MS")
                        .value_parser(value_parser!(u64))
                        .default_value("3000")
                        .help("Connect and read timeout"),
                ),
        )
        .subcommand(
            Command::new("__guard")
                .hide(true)
                .arg(Arg::new("grace_ms").long("grace-ms").required(true).value_parser(value_parser!(u64)))
                .arg(Arg::new("myid").long("myid").required(true).value_parser(value_parser!(i64)))
                .arg(Arg::new("command").required(true).num_args(1..).last(true).value_parser(value_parser!(OsString))),
        )
        .subcommand(
            Command::new("__exec")
                .hide(true)
                .arg(Arg::new("guard").required(true).value_parser(value_parser!(i32)))
                .arg(Arg::new("command").required(true).num_args(1..).last(true).value_parser(value_parser!(OsString))),
        )
        .subcommand(
            Command::new("status")
                .about(
                    "Ask nodes (their clientPort) how they stand. Exit status: 0 in a quorum under one leader, 1 not \
in a quorum (LOOKING) or the nodes disagree, 2 unreachable, 64 usage error",
                )
                .arg(Arg::new("address").value_name("ADDRESS").num_args(0..).help(
                    "The nodes' client ports: host:port, host (port 2181), :port (host 127.0.0.1), [v6]:port; \
default 127.0.0.1:2181. Several addresses: the whole ensemble, and whether it agrees on its leader",
                ))
                .arg(
                    Arg::new("json")
                        .long("json")
                        .action(ArgAction::SetTrue)
                        .help("One JSON object on stdout: {\"nodes\":[…],\"ensemble\":{…},\"exit_code\":N}"),
                )
                .arg(
                    Arg::new("timeout_ms")
                        .long("timeout-ms")
                        .value_name("MS")
                        .value_parser(value_parser!(u64))
                        .default_value("2000")
                        .help("Connect and read timeout, in ms"),
                ),
        )
        .subcommand(
            Command::new("bench")
                .about("Measure election times, memory and threads of local ensembles (optionally next to ZooKeeper)")
                .arg(
                    Arg::new("nodes")
                        .long("nodes")
                        .value_name("N,...")
                        .value_delimiter(',')
                        .value_parser(value_parser!(usize))
                        .default_value("3,5,9,25,51")
                        .help("Ensemble sizes"),
                )
                .arg(
                    Arg::new("runs")
                        .long("runs")
                        .value_name("RUNS")
                        .value_parser(value_parser!(usize))
                        .default_value("7")
                        .help("Runs per size (medians are reported)"),
                )
                .arg(
                    Arg::new("vs_zookeeper")
                        .long("vs-zookeeper")
                        .action(ArgAction::SetTrue)
                        .help("Also run Debian's Apache ZooKeeper 3.8 (sizes up to 9) and print the ratios"),
                )
                .arg(Arg::new("out").long("out").value_name("DIR").value_parser(value_parser!(PathBuf)).help(
                    "Where bench.md and bench.svg go (default: a fresh directory under the temp dir; \
`--out bench-results` replaces the committed figures)",
                ))
                .arg(tick_time("2000"))
                .arg(
                    Arg::new("keep_logs")
                        .long("keep-logs")
                        .action(ArgAction::SetTrue)
                        .help("Keep every run's configs and node logs and print where they are"),
                )
                .arg(
                    Arg::new("idle")
                        .long("idle")
                        .value_name("SECONDS")
                        .value_parser(value_parser!(u64))
                        .default_value("60")
                        .help(
                            "How long the first run of each size watches the settled nodes' CPU time (0: not at all)",
                        ),
                )
                .arg(Arg::new("singleton").long("singleton").action(ArgAction::SetTrue).help(
                    "Instead: the failover gaps of `zkelect run` (3 nodes, kill -9 and SIGSTOP of the \
leader's zkelect, at tickTime 100 and 2000 unless --tick-time is given); writes singleton.md",
                ))
                .arg(
                    Arg::new("faults")
                        .long("faults")
                        .value_name("N")
                        .value_parser(value_parser!(usize))
                        .default_value("20")
                        .help("With --singleton: faults of each kind per tickTime"),
                )
                .arg(Arg::new("tls").long("tls").action(ArgAction::SetTrue).help(
                    "Run every ensemble (ZooKeeper's too) with quorum TLS: generated certificates, node N on 127.0.1.N",
                )),
        )
        .subcommand(
            Command::new("ensemble")
                .about(
                    "Run a local ensemble of N nodes on 127.0.0.1 and show its election (Ctrl-C, SIGTERM or SIGHUP \
stop it). Exit status: 0 the running nodes agreed on a leader at the end, 1 they did not, 2 it could not run, 64 \
usage error",
                )
                .arg(
                    Arg::new("nodes")
                        .long("nodes")
                        .value_name("N")
                        .value_parser(value_parser!(usize))
                        .default_value("3")
                        .help("Number of nodes"),
                )
                .arg(
                    Arg::new("for")
                        .long("for")
                        .value_name("SECONDS")
                        .value_parser(value_parser!(f64))
                        .help("Stop after this many seconds (default: run until Ctrl-C)"),
                )
                .arg(Arg::new("dir").long("dir").value_name("DIR").value_parser(value_parser!(PathBuf)).help(
                    "Directory for configs, data and logs, kept afterwards (default: a fresh one under the \
temp dir, removed afterwards)",
                ))
                .arg(tick_time("200"))
                .arg(
                    Arg::new("keep")
                        .long("keep")
                        .action(ArgAction::SetTrue)
                        .help("Keep the configs, data and logs afterwards and print where they are"),
                )
                .arg(Arg::new("tls").long("tls").action(ArgAction::SetTrue).help(
                    "Quorum TLS with certificates generated into DIR/certs; node N runs on 127.0.1.N, which its \
certificate names, so that the server id it claims is checked against it",
                )),
        )
        .subcommand(
            Command::new("completions")
                .about("Print a shell completion script for zkelect (bash, zsh, fish, elvish, powershell)")
                .long_about(
                    "Print a shell completion script for zkelect. For example:\n  zkelect completions bash > \
/etc/bash_completion.d/zkelect\n  zkelect completions zsh > \"${fpath[1]}/_zkelect\"\n  zkelect completions fish > \
~/.config/fish/completions/zkelect.fish",
                )
                .arg(Arg::new("shell").value_name("SHELL").required(true).value_parser(value_parser!(Shell))),
        )
}

/// A value that has a default or is required, so clap always supplies it.
fn value<T: Clone + Send + Sync + 'static>(m: &ArgMatches, id: &str) -> T {
    match m.get_one::<T>(id) {
        Some(v) => v.clone(),
        None => unreachable!("clap supplies a default or requires --{id}"),
    }
}

fn os_values(m: &ArgMatches, id: &str) -> Vec<OsString> {
    m.get_many::<OsString>(id).map(|v| v.cloned().collect()).unwrap_or_default()
}

fn main() -> ExitCode {
    let matches = match cli().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            // --help and --version are no errors.
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(EXIT_USAGE) } else { ExitCode::SUCCESS };
        }
    };
    zkelect::runtime::logging::init();
    match matches.subcommand() {
        Some(("start", m)) => start(&value::<PathBuf>(m, "config")),
        Some(("bench", m)) => bench(m),
        Some(("status", m)) => {
            let opts = status::Options {
                addresses: m.get_many::<String>("address").map(|v| v.cloned().collect()).unwrap_or_default(),
                timeout: Duration::from_millis(value(m, "timeout_ms")),
                json: m.get_flag("json"),
            };
            ExitCode::from(status::run(opts))
        }
        Some(("ensemble", m)) => ensemble(m),
        Some(("completions", m)) => {
            let mut out = std::io::stdout();
            clap_complete::generate(value::<Shell>(m, "shell"), &mut cli(), "zkelect", &mut out);
            ExitCode::SUCCESS
        }
        Some(("run", m)) => exit_code(run::run(run::Options {
            config: value(m, "config"),
            run: RunOptions {
                on_child_exit: OnChildExit::parse(&value::<String>(m, "on_child_exit")).unwrap_or(OnChildExit::Resign),
                exit_on_loss: m.get_flag("exit_on_loss"),
            },
            command: os_values(m, "command"),
        })),
        Some(("resign", m)) => ExitCode::from(run::resign(
            &value::<String>(m, "address"),
            m.get_one::<i64>("to").copied(),
            Duration::from_millis(value(m, "timeout_ms")),
        )),
        Some(("__guard", m)) => exit_code(guard::main(guard::GuardArgs {
            grace: Duration::from_millis(value(m, "grace_ms")),
            my_id: value(m, "myid"),
            command: os_values(m, "command"),
        })),
        Some(("__exec", m)) => exit_code(guard::exec(value(m, "guard"), &os_values(m, "command"))),
        _ => unreachable!("clap requires a subcommand"),
    }
}

/// `zkelect bench`: exit status 1 when a run fails.
fn bench(m: &ArgMatches) -> ExitCode {
    if m.get_flag("singleton") {
        let opts = bench::singleton::Options {
            faults: value::<usize>(m, "faults").max(1),
            // Both tickTimes unless one is asked for.
            tick_times: match m.value_source("tick_time") {
                Some(clap::parser::ValueSource::CommandLine) => vec![value(m, "tick_time")],
                _ => vec![100, 2000],
            },
            out: m.get_one::<PathBuf>("out").cloned(),
        };
        return match bench::singleton::run(opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("zkelect bench --singleton: {e}");
                ExitCode::from(1)
            }
        };
    }
    let opts = bench::Options {
        sizes: m.get_many::<usize>("nodes").map(|v| v.copied().collect()).unwrap_or_default(),
        runs: value::<usize>(m, "runs").max(1),
        vs_zookeeper: m.get_flag("vs_zookeeper"),
        out: m.get_one::<PathBuf>("out").cloned(),
        tick_time: value(m, "tick_time"),
        keep_logs: m.get_flag("keep_logs"),
        idle: Duration::from_secs(value(m, "idle")),
        tls: m.get_flag("tls"),
    };
    match bench::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zkelect bench: {e}");
            ExitCode::from(1)
        }
    }
}

/// `zkelect ensemble`: exit status 1 when the running nodes had no leader they agreed on at the end,
/// 2 when it could not run.
fn ensemble(m: &ArgMatches) -> ExitCode {
    let opts = ensemble::Options {
        nodes: value(m, "nodes"),
        run_for: m.get_one::<f64>("for").map(|s| Duration::from_secs_f64(s.max(0.0))),
        dir: m.get_one::<PathBuf>("dir").cloned(),
        tick_time: value(m, "tick_time"),
        keep: m.get_flag("keep"),
        tls: m.get_flag("tls"),
    };
    match ensemble::run(opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("zkelect: the ensemble had no settled leader when it stopped");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("zkelect: {e}");
            ExitCode::from(2)
        }
    }
}

/// What ended a running node.
enum Ended {
    Fatal(Option<Fatal>),
    Signal(Signal),
}

/// `zkelect start`: runs one node until a stop signal (an orderly shutdown, exit status 0) or
/// until something ends it (the exit code says what). Epoch files are written atomically, so
/// even a kill -9 is safe.
fn start(path: &std::path::Path) -> ExitCode {
    let cfg = match QuorumPeerConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zkelect: invalid configuration: {e}");
            return exit_code(zkelect::node::EXIT_INVALID_CONFIG);
        }
    };
    zkelect::runtime::panic::install();
    log::info!("Starting zkelect {} as server {} from {}", env!("CARGO_PKG_VERSION"), cfg.my_id, path.display());
    // Watched before anything is bound: a stop asked for during start-up is not lost.
    let signals = match SignalWatcher::start(&Signal::STOP) {
        Ok(w) => Some(w),
        Err(e) => {
            log::warn!("Cannot watch SIGTERM, SIGINT and SIGHUP ({e}); they will end the process without a shutdown");
            None
        }
    };
    let node = match Node::start(cfg) {
        Ok(n) => n,
        Err(e) => {
            log::error!("Cannot start: {e}; exiting with code {}", e.exit_code());
            eprintln!("zkelect: cannot start: {e}");
            return exit_code(e.exit_code());
        }
    };
    let ended = match &signals {
        Some(w) => select! {
            recv(node.fatal_events()) -> f => Ended::Fatal(f.ok()),
            recv(w.receiver()) -> s => match s {
                Ok(s) => Ended::Signal(s),
                Err(_) => Ended::Fatal(node.wait(None)),
            },
        },
        None => Ended::Fatal(node.wait(None)),
    };
    match ended {
        Ended::Signal(s) => {
            // Armed before the line below, which therefore tells the truth.
            if let Some(Err(e)) = signals.as_ref().map(SignalWatcher::exit_on_next) {
                log::warn!("A second signal will not end the process at once: {e}");
            }
            log::info!("Received {s}: shutting down (another one ends the process at once)");
            node.shutdown();
            drop(signals);
            log::info!("Shut down after {s}; exiting with code 0");
            ExitCode::SUCCESS
        }
        Ended::Fatal(fatal) => {
            let code = fatal.map_or(1, |f| f.exit_code());
            log::error!("Unable to take part in elections any longer ({fatal:?}); exiting with code {code}");
            std::process::exit(code);
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
