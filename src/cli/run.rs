//! `zkelect run <zoo.cfg> -- <command…>`: one node, and the command while it is the active
//! leader. `zkelect resign <host:port> [--to <sid>]`: asks a leader to step down.

use super::status;
use crossbeam_channel::select;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zkelect::config::QuorumPeerConfig;
use zkelect::node::{Node, NodeHandle};
use zkelect::runtime::signals::{Signal, SignalWatcher};
use zkelect::sidecar::{Ended, RunOptions, Runner};

/// Exit code when the guard process died (the command was killed with it).
const EXIT_GUARD_LOST: i32 = 1;
/// How long a resigning leader may take to step down before the node shuts down anyway.
const STEP_DOWN_WAIT: Duration = Duration::from_secs(2);

pub struct Options {
    pub config: PathBuf,
    pub run: RunOptions,
    pub command: Vec<OsString>,
}

/// Runs until a signal, `--exit-on-loss`, `--on-child-exit=exit` or a failure; the exit code.
pub fn run(o: Options) -> i32 {
    let cfg = match QuorumPeerConfig::load(&o.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zkelect: invalid configuration: {e}");
            return 2;
        }
    };
    if let Err(e) = resolve(&o.command) {
        eprintln!("zkelect run: {e}");
        return 2;
    }
    zkelect::runtime::panic::install();
    let grace = Duration::from_millis(cfg.run_grace_period_ms());
    log::info!(
        "Starting zkelect {} as server {} from {}, running the command while active (lease {} ms, \
         drift margin {} ms, grace {} ms)",
        env!("CARGO_PKG_VERSION"),
        cfg.my_id,
        o.config.display(),
        cfg.lease_ms(),
        cfg.lease_drift_margin_ms(),
        grace.as_millis()
    );
    let watched = [Signal::Term, Signal::Int, Signal::Hup, Signal::Quit, Signal::Usr1, Signal::Usr2];
    let signals = match SignalWatcher::start(&watched) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("zkelect run: cannot handle signals: {e}");
            return 1;
        }
    };
    let node = match Node::start(cfg) {
        Ok(n) => n,
        Err(e) => {
            log::error!("Cannot start: {e}; exiting with code {}", e.exit_code());
            eprintln!("zkelect: cannot start: {e}");
            return e.exit_code();
        }
    };
    let runner = match Runner::start(node.handle(), o.run, grace, o.command) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zkelect run: cannot start the guard process: {e}");
            node.shutdown();
            return 1;
        }
    };
    let code = wait(&node, &runner, &signals);
    runner.finish();
    node.shutdown();
    log::info!("zkelect run exits with code {code}");
    code
}

/// Waits for the end of the run, passing signals on; returns the exit code.
fn wait(node: &Node, runner: &Runner, signals: &SignalWatcher) -> i32 {
    let fatal = node.fatal_events().clone();
    let mut fatal_code = None;
    loop {
        select! {
            recv(signals.receiver()) -> s => match s {
                Ok(s @ (Signal::Term | Signal::Int)) => {
                    log::info!("Received {s}: stopping the command and resigning");
                    runner.request_stop();
                    // A second one while the command stops ends zkelect at once (the guard then
                    // stops the command by itself).
                    if let Err(e) = signals.exit_on_next() {
                        log::warn!("A second {s} will not end the process at once: {e}");
                    }
                }
                Ok(s) => runner.forward(s.number()),
                Err(_) => {}
            },
            recv(fatal) -> f => {
                if let Ok(f) = f {
                    log::error!("Unable to take part in elections any longer ({f:?}): stopping the command");
                    fatal_code = Some(f.exit_code());
                    runner.request_stop();
                }
            },
            recv(runner.ended()) -> e => return match (fatal_code, e) {
                (Some(code), _) => code,
                (None, Ok(Ended::Run(end))) => {
                    step_down(&node.handle());
                    end.exit_code()
                }
                (None, Ok(Ended::GuardLost)) | (None, Err(_)) => EXIT_GUARD_LOST,
            },
        }
    }
}

/// A resigning leader sends LEASE_RELEASED and steps down on its own thread: give it a moment
/// before the node shuts down under it.
fn step_down(node: &NodeHandle) {
    let deadline = Instant::now() + STEP_DOWN_WAIT;
    while node.status().state == zkelect::election::ServerState::Leading && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The command must exist before the node starts: a typo is a configuration error, not a
/// leadership that resigns at once.
fn resolve(command: &[OsString]) -> Result<PathBuf, String> {
    let program = command.first().ok_or("no command given after --")?;
    let p = Path::new(program);
    let candidates: Vec<PathBuf> = if p.components().count() > 1 {
        vec![p.to_path_buf()]
    } else {
        std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).map(|d| d.join(p)).collect())
            .unwrap_or_default()
    };
    candidates
        .into_iter()
        .find(|c| is_executable(c))
        .ok_or_else(|| format!("{}: command not found (or not executable)", p.display()))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `zkelect resign`: exit 0 when the leader resigns, 1 when it refuses (or is not the leader),
/// 2 when unreachable, 64 for an address that is no address.
pub fn resign(address: &str, to: Option<i64>, timeout: Duration) -> u8 {
    let target = match status::parse_target(address) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("zkelect resign: {e}");
            return status::USAGE;
        }
    };
    let address = target.to_string();
    let word = match to {
        Some(t) => format!("rsgn {t}\n"),
        None => "rsgn\n".into(),
    };
    match status::ask(&target, &word, timeout) {
        Ok(answer) => {
            let answer = answer.trim();
            if let Some(ok) = answer.strip_prefix("ok: ") {
                say!("{address}: {ok}");
                0
            } else if answer.contains("not in the whitelist") {
                say!("{address}: {answer}");
                say!("add rsgn to 4lw.commands.whitelist in this node's zoo.cfg to allow resigning");
                1
            } else {
                say!("{address}: {}", answer.strip_prefix("error: ").unwrap_or(answer));
                1
            }
        }
        Err(e) => {
            say!("{e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_resolved_before_the_node_starts() {
        assert!(resolve(&["sh".into()]).is_ok());
        assert!(resolve(&["/bin/sh".into(), "-c".into(), "true".into()]).is_ok());
        assert!(resolve(&["no-such-command-zkelect".into()]).unwrap_err().contains("command not found"));
        let plain = std::env::temp_dir().join(format!("zkelect-not-executable-{}", std::process::id()));
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        let refused = resolve(&[plain.clone().into()]);
        let _ = std::fs::remove_file(&plain);
        assert!(refused.is_err(), "not executable");
        assert!(resolve(&[]).is_err());
    }
}
