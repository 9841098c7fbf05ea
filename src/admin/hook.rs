//! The state-change hook (`zkelect.onStateChange=/path/to/program`): run on every change of
//! state, leader or epoch with `<state> <leader> <epoch>` as arguments and `ZKELECT_*` variables,
//! one at a time, each with a timeout. It runs on its own thread behind a bounded queue, so a
//! failing or hanging hook never blocks the election. With the epoch as a fencing token this makes
//! zkelect a leader-election sidecar.

use crate::runtime::{Shutdown, ThreadGroup};
use crate::snapshot::StateChange;
use crossbeam_channel::{Receiver, Sender, TrySendError, select};
use parking_lot::Mutex;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt;

/// Events waiting while a hook runs; beyond this the oldest pending one is dropped, with a log line.
const QUEUE: usize = 64;

pub struct StateHook {
    tx: Sender<StateChange>,
    last: Mutex<Option<StateChange>>,
    shutdown: Shutdown,
    threads: ThreadGroup,
}

impl StateHook {
    pub fn start(program: PathBuf, my_id: i64, timeout: Duration) -> std::io::Result<StateHook> {
        let (tx, rx) = crossbeam_channel::bounded::<StateChange>(QUEUE);
        let shutdown = Shutdown::new();
        let threads = ThreadGroup::new();
        let stop = shutdown.clone();
        threads
            .spawn(format!("StateChangeHook[myid={my_id}]"), move || hook_loop(&rx, &stop, &program, my_id, timeout))?;
        Ok(StateHook { tx, last: Mutex::new(None), shutdown, threads })
    }

    /// Queues a run if (state, leader, epoch) changed since the last one. Never blocks.
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
        if let Err(TrySendError::Full(_)) = self.tx.try_send(ev) {
            log::warn!(
                "State-change hook is {QUEUE} events behind; not queueing {} {} {}",
                ev.state.lower(),
                ev.leader,
                ev.epoch
            );
        }
    }

    /// Lets the queued runs finish (each bounded by the timeout) and stops the thread.
    pub fn shutdown(&self) {
        self.shutdown.request();
        self.threads.join_all();
    }
}

/// Runs the queued events in order; on shutdown, the ones already queued still run.
fn hook_loop(rx: &Receiver<StateChange>, stop: &Shutdown, program: &PathBuf, my_id: i64, timeout: Duration) {
    let mut previous = "none";
    loop {
        let ev = select! {
            recv(rx) -> ev => ev.ok(),
            recv(stop.receiver()) -> _ => rx.try_recv().ok(),
        };
        let Some(ev) = ev else { return };
        run(program, my_id, previous, ev, timeout);
        previous = ev.state.lower();
    }
}

fn run(program: &PathBuf, my_id: i64, previous: &str, ev: StateChange, timeout: Duration) {
    let args = [ev.state.lower().to_string(), ev.leader.to_string(), ev.epoch.to_string()];
    let child = Command::new(program)
        .args(&args)
        .env("ZKELECT_STATE", ev.state.lower())
        .env("ZKELECT_LEADER", ev.leader.to_string())
        .env("ZKELECT_EPOCH", ev.epoch.to_string())
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
