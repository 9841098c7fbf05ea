//! Process signals as messages. A [`SignalWatcher`] owns one thread, `Signal Dispatcher` (the
//! JVM's name for the thread that runs ZooKeeper's shutdown on SIGTERM), which turns the watched
//! signals into [`Signal`] messages on a channel; whoever owns the process decides what they mean
//! (`zkelect start` shuts its node down; a supervisor forwards them to its children with [`send`]).
//! The thread is joined when the watcher is dropped.
//!
//! Signal dispositions are process-wide: while a watcher lives, the watched signals no longer end
//! the process by themselves. Children started meanwhile get the default dispositions back at exec.

use super::thread::ThreadGroup;
use crossbeam_channel::{Receiver, Sender};
use signal_hook::iterator::{Handle, Signals};
use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The signals a daemon or its supervisor reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// `kill`, `systemctl stop`, a container runtime stopping its container.
    Term,
    /// Ctrl-C in a terminal.
    Int,
    /// The terminal went away (or, by convention, "reload"; zkelect has nothing to reload).
    Hup,
    /// Watched by `zkelect run` only, which passes these on to its command.
    Quit,
    Usr1,
    Usr2,
    /// Only sent (see [`send`]), never watched: it cannot be caught.
    Kill,
}

impl Signal {
    /// The signals that ask a process to stop.
    pub const STOP: [Signal; 3] = [Signal::Term, Signal::Int, Signal::Hup];

    /// `SIGTERM`, as log lines and kill(1) name it.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Int => "SIGINT",
            Signal::Hup => "SIGHUP",
            Signal::Quit => "SIGQUIT",
            Signal::Usr1 => "SIGUSR1",
            Signal::Usr2 => "SIGUSR2",
            Signal::Kill => "SIGKILL",
        }
    }

    pub fn number(self) -> i32 {
        match self {
            Signal::Term => signal_hook::consts::SIGTERM,
            Signal::Int => signal_hook::consts::SIGINT,
            Signal::Hup => signal_hook::consts::SIGHUP,
            Signal::Quit => signal_hook::consts::SIGQUIT,
            Signal::Usr1 => signal_hook::consts::SIGUSR1,
            Signal::Usr2 => signal_hook::consts::SIGUSR2,
            Signal::Kill => signal_hook::consts::SIGKILL,
        }
    }

    pub fn from_number(n: i32) -> Option<Signal> {
        Self::ALL.into_iter().find(|s| s.number() == n)
    }

    const ALL: [Signal; 7] =
        [Signal::Term, Signal::Int, Signal::Hup, Signal::Quit, Signal::Usr1, Signal::Usr2, Signal::Kill];

    /// The same signal as rustix names it (for kill(2) on a process or a process group).
    pub fn to_rustix(self) -> rustix::process::Signal {
        use rustix::process::Signal as S;
        match self {
            Signal::Term => S::TERM,
            Signal::Int => S::INT,
            Signal::Hup => S::HUP,
            Signal::Quit => S::QUIT,
            Signal::Usr1 => S::USR1,
            Signal::Usr2 => S::USR2,
            Signal::Kill => S::KILL,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Delivers the watched signals as messages until dropped.
pub struct SignalWatcher {
    rx: Receiver<Signal>,
    handle: Handle,
    watched: Vec<Signal>,
    thread: ThreadGroup,
}

impl SignalWatcher {
    /// Watches `signals` (not [`Signal::Kill`]): from now on they arrive on [`receiver`](Self::receiver)
    /// instead of ending the process.
    pub fn start(signals: &[Signal]) -> io::Result<SignalWatcher> {
        if signals.contains(&Signal::Kill) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "SIGKILL cannot be caught"));
        }
        let mut delivery = Signals::new(signals.iter().map(|s| s.number()))?;
        let handle = delivery.handle();
        // Unbounded: a burst of signals never blocks the dispatcher, and there are only ever a few.
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = ThreadGroup::new();
        thread.spawn("Signal Dispatcher".into(), move || dispatch(&mut delivery, &tx))?;
        Ok(SignalWatcher { rx, handle, watched: signals.to_vec(), thread })
    }

    /// Every watched signal, in the order they arrived (repeats of one signal that arrive
    /// together may be merged, as the kernel does).
    pub fn receiver(&self) -> &Receiver<Signal> {
        &self.rx
    }

    /// From now on, the next watched signal ends the process at once, without running anything
    /// else, with the status a shell reports for a process that signal killed (128 + its
    /// number): for an operator whose orderly stop is stuck and who presses Ctrl-C again.
    pub fn exit_on_next(&self) -> io::Result<()> {
        let armed = Arc::new(AtomicBool::new(true));
        for s in &self.watched {
            signal_hook::flag::register_conditional_shutdown(s.number(), 128 + s.number(), Arc::clone(&armed))?;
        }
        Ok(())
    }
}

impl Drop for SignalWatcher {
    fn drop(&mut self) {
        self.handle.close();
        self.thread.join_all();
    }
}

fn dispatch(delivery: &mut Signals, tx: &Sender<Signal>) {
    for n in delivery.forever() {
        if let Some(s) = Signal::from_number(n) {
            // The receiver may be gone while the owner stops; the watcher is closed next.
            let _ = tx.send(s);
        }
    }
}

/// Sends `signal` to process `pid` (kill(2)): how a supervisor stops or forwards to its children.
pub fn send(pid: u32, signal: Signal) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{pid} is not a process id")))?;
    rustix::process::kill_process(pid, signal.to_rustix()).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names_and_numbers() {
        for s in Signal::ALL {
            assert_eq!(Signal::from_number(s.number()), Some(s));
            assert!(s.to_string().starts_with("SIG"));
        }
        assert_eq!((Signal::Term.number(), Signal::Int.number(), Signal::Hup.number()), (15, 2, 1));
        assert!(SignalWatcher::start(&[Signal::Kill]).is_err());
        assert!(send(0, Signal::Term).is_err(), "pid 0 would be the whole process group");
    }

    /// SIGHUP only: the test harness's own processes are not stopped by the other two.
    #[test]
    fn a_watched_signal_arrives_as_a_message_and_the_thread_is_joined() {
        let watcher = SignalWatcher::start(&[Signal::Hup]).expect("watch");
        send(std::process::id(), Signal::Hup).expect("kill");
        let got = watcher.receiver().recv_timeout(Duration::from_secs(10));
        assert_eq!(got, Ok(Signal::Hup));
        let rx = watcher.receiver().clone();
        drop(watcher);
        assert!(rx.recv_timeout(Duration::from_secs(10)).is_err(), "the dispatcher ended with the watcher");
    }
}
