//! The state-change hook (`zkelect.onStateChange=/path/to/program`): run on every change of
//! state, leader, epoch or lease with `<state> <leader> <epoch> <lease>` as arguments and
//! `ZKELECT_*` variables. Runs are ordered and coalescing, as keepalived's notify_fifo: never two
//! at once, each bounded by a timeout, and when changes come faster than the hook runs, only the
//! newest waits for the next run (latest state wins). It runs on its own thread, so a failing or
//! hanging hook never blocks the election.

use crate::runtime::{Shutdown, ThreadGroup, Watch};
use crate::snapshot::StateChange;
use crossbeam_channel::select;
use parking_lot::Mutex;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use wait_timeout::ChildExt;

pub struct StateHook {
    /// The change not yet handed to a run; a newer one replaces it (latest state wins).
    pending: Arc<Watch<Option<StateChange>>>,
    last: Mutex<Option<StateChange>>,
    shutdown: Shutdown,
    threads: ThreadGroup,
}

impl StateHook {
    pub fn start(program: PathBuf, my_id: i64, timeout: Duration) -> std::io::Result<StateHook> {
        let pending = Arc::new(Watch::new(None));
        let shutdown = Shutdown::new();
        let threads = ThreadGroup::new();
        let (stop, waiting, nudged) = (shutdown.clone(), Arc::clone(&pending), pending.subscribe());
        threads.spawn(format!("StateChangeHook[myid={my_id}]"), move || {
            hook_loop(&waiting, &nudged, &stop, &program, my_id, timeout)
        })?;
        Ok(StateHook { pending, last: Mutex::new(None), shutdown, threads })
    }

    /// Hands over a change of (state, leader, epoch, lease), if it is one. Never blocks: while a
    /// run is going on, only the newest change waits for the next run.
    pub fn notify(&self, ev: StateChange) {
        let mut last = self.last.lock();
        if *last == Some(ev) {
            return;
        }
        *last = Some(ev);
        drop(last);
        if self.shutdown.is_requested() {
            return;
        }
        self.pending.update(|p| {
            if let Some(old) = p.replace(ev) {
                log::info!(
                    "State-change hook still running: {} {} {} {} is superseded by {} {} {} {}",
                    old.state.lower(),
                    old.leader,
                    old.epoch,
                    old.lease,
                    ev.state.lower(),
                    ev.leader,
                    ev.epoch,
                    ev.lease
                );
            }
        });
    }

    /// Lets the run going on and the one waiting finish (each bounded by the timeout) and stops
    /// the thread.
    pub fn shutdown(&self) {
        self.shutdown.request();
        self.threads.join_all();
    }
}

/// Runs one change at a time, always the newest; on shutdown, the one waiting still runs.
fn hook_loop(
    pending: &Watch<Option<StateChange>>,
    nudged: &crossbeam_channel::Receiver<()>,
    stop: &Shutdown,
    program: &PathBuf,
    my_id: i64,
    timeout: Duration,
) {
    let mut previous = "none";
    loop {
        let stopping = select! {
            recv(nudged) -> _ => false,
            recv(stop.receiver()) -> _ => true,
        };
        let mut next = None;
        pending.update(|p| next = p.take());
        if let Some(ev) = next {
            run(program, my_id, previous, ev, timeout);
            previous = ev.state.lower();
        }
        if stopping {
            return;
        }
    }
}

fn run(program: &PathBuf, my_id: i64, previous: &str, ev: StateChange, timeout: Duration) {
    let args = [ev.state.lower().to_string(), ev.leader.to_string(), ev.epoch.to_string(), ev.lease.to_string()];
    let child = Command::new(program)
        .args(&args)
        .env("ZKELECT_STATE", ev.state.lower())
        .env("ZKELECT_LEADER", ev.leader.to_string())
        .env("ZKELECT_EPOCH", ev.epoch.to_string())
        .env("ZKELECT_LEASE", ev.lease)
        .env("ZKELECT_MYID", my_id.to_string())
        .env("ZKELECT_PREVIOUS_STATE", previous)
        .stdin(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            log::warn!("State-change hook {} could not be started: {e}", program.display());
            return;
        }
    };
    match child.wait_timeout(timeout) {
        Ok(Some(status)) if status.success() => {
            log::info!("State-change hook {} {} exited with {status}", program.display(), args.join(" "))
        }
        Ok(Some(status)) => {
            log::warn!("State-change hook {} {} exited with {status}", program.display(), args.join(" "))
        }
        Ok(None) => {
            log::warn!(
                "State-change hook {} {} did not finish within {} ms; killing it",
                program.display(),
                args.join(" "),
                timeout.as_millis()
            );
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(e) => log::warn!("State-change hook {}: {e}", program.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::election::ServerState;

    fn change(state: ServerState, leader: i64, epoch: i64, lease: &'static str) -> StateChange {
        StateChange { state, leader, epoch, lease }
    }

    /// A hook that takes 300 ms per run, and five changes within a few ms: the first runs, the
    /// newest runs next, the three in between are superseded; runs never overlap.
    #[test]
    fn runs_are_ordered_and_the_latest_state_wins() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls");
        let script = dir.path().join("hook.sh");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"start $1 $4\" >> {0}\nsleep 0.3\necho \"end $1 $4\" >> {0}\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let hook = StateHook::start(script, 1, Duration::from_secs(10)).unwrap();
        hook.notify(change(ServerState::Looking, -1, 0, "inactive"));
        std::thread::sleep(Duration::from_millis(100));
        hook.notify(change(ServerState::Leading, 1, 1, "waiting"));
        hook.notify(change(ServerState::Leading, 1, 1, "waiting"));
        hook.notify(change(ServerState::Leading, 1, 1, "active"));
        hook.notify(change(ServerState::Looking, -1, 1, "inactive"));
        hook.notify(change(ServerState::Following, 2, 2, "inactive"));
        hook.shutdown();
        let calls = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            calls,
            "start looking inactive\nend looking inactive\nstart following inactive\nend following inactive\n"
        );
    }
}
