//! `zkelect`: one ZooKeeper-compatible leader-election node per process.

/// `println!` that ignores a closed stdout (`zkelect status … | head -1`) instead of panicking.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

mod bench;
mod ensemble;
mod status;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use zkelect::config::QuorumPeerConfig;
use zkelect::peer::QuorumPeer;

/// Exit code when the election port cannot be bound (ZooKeeper's UNABLE_TO_BIND_QUORUM_PORT).
const EXIT_UNABLE_TO_BIND: i32 = 14;

#[derive(Parser)]
#[command(
    name = "zkelect",
    version,
    about = "Apache ZooKeeper's leader election as a standalone daemon",
    long_about = "zkelect runs ZooKeeper's leader-election layer (QuorumCnxManager + FastLeaderElection) as one \
process per node. It reads a zoo.cfg-style file and dataDir/myid, speaks ZooKeeper's election protocol byte \
for byte on the election port, and logs its state changes to stderr (RUST_LOG controls the levels)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node in the foreground with the given zoo.cfg (dataDir/myid names the node).
    Start {
        /// Path of the zoo.cfg file.
        config: PathBuf,
    },
    /// Ask a node (its clientPort) how it stands. Exit status: 0 in a quorum, 1 not in a quorum
    /// (LOOKING), 2 unreachable.
    Status {
        /// host:port of the node's clientPort.
        address: String,
        /// Connect and read timeout, in ms.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Measure election times, memory and threads of local ensembles (optionally next to ZooKeeper).
    Bench {
        /// Ensemble sizes.
        #[arg(long, value_delimiter = ',', default_value = "3,5,9,25,51")]
        nodes: Vec<usize>,
        /// Runs per size (medians are reported).
        #[arg(long, default_value_t = 7)]
        runs: usize,
        /// Also run Debian's Apache ZooKeeper 3.8 (sizes up to 9) and print the ratios.
        #[arg(long)]
        vs_zookeeper: bool,
        /// Where bench.md and bench.svg go.
        #[arg(long, default_value = "bench-results")]
        out: PathBuf,
        /// tickTime of the generated configs, in ms.
        #[arg(long, default_value_t = 2000)]
        tick_time: u64,
    },
    /// Run a local ensemble of N nodes on 127.0.0.1 and show its election (Ctrl-C stops it).
    Ensemble {
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long = "for", value_name = "SECONDS")]
        run_for: Option<f64>,
        /// Directory for configs, data and logs (default: a fresh one under the temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// tickTime of the generated configs, in ms.
        #[arg(long, default_value_t = 200)]
        tick_time: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    zkelect::logging::init();
    match cli.cmd {
        Cmd::Start { config } => start(&config),
        Cmd::Bench { nodes, runs, vs_zookeeper, out, tick_time } => {
            let opts = bench::Options { sizes: nodes, runs: runs.max(1), vs_zookeeper, out, tick_time };
            match bench::run(opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("zkelect bench: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Status { address, timeout_ms } => {
            ExitCode::from(status::run(&address, std::time::Duration::from_millis(timeout_ms)))
        }
        Cmd::Ensemble { nodes, run_for, dir, tick_time } => {
            let opts = ensemble::Options {
                nodes,
                run_for: run_for.map(|s| std::time::Duration::from_secs_f64(s.max(0.0))),
                dir,
                tick_time,
            };
            match ensemble::run(opts) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => {
                    eprintln!("zkelect: the ensemble did not settle on a leader");
                    ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("zkelect: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn start(path: &std::path::Path) -> ExitCode {
    let cfg = match QuorumPeerConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zkelect: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    log::info!("Starting zkelect {} as server {} from {}", env!("CARGO_PKG_VERSION"), cfg.my_id, path.display());
    let peer = match QuorumPeer::start(cfg) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("zkelect: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    peer.set_on_listener_failure(|| {
        log::error!("Unable to bind the election port; exiting with code {EXIT_UNABLE_TO_BIND}");
        std::process::exit(EXIT_UNABLE_TO_BIND);
    });
    // Runs until killed; epoch files are written atomically, so any stop is safe.
    loop {
        std::thread::park();
    }
}
