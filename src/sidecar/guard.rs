//! The guard process (`zkelect run` starts it as `zkelect __guard`): the parent of the command,
//! and the one that stops it when the lease ends. It shares nothing with the daemon but a socket
//! pair (its stdin) and the boot-time clock, so a daemon that is frozen (SIGSTOP, a paused VM
//! resumes later) or killed cannot keep the command running past the lease: the guard sends
//! SIGTERM to the command's process group `grace` before the deadline the daemon last renewed,
//! and SIGKILL at the deadline. A daemon that goes away (its end of the socket closes) gets the
//! command stopped at once.
//!
//! The guard runs in a session of its own (a stop aimed at the daemon's process group does not
//! reach it) and waits on a timer on the lease clock ([`BootAlarm`]: on time after a suspend).
//! The command runs in its own process group, so its children are stopped with it; the guard is
//! a child subreaper, so a grandchild that left the group is still the guard's to kill; and the
//! command is started through `zkelect __exec`, which asks the kernel to SIGKILL it should the
//! guard itself die (PR_SET_PDEATHSIG) before it executes the command.

use super::protocol::{ExitHow, Order, Report, StoppedBy};
use crate::lease::{BootAlarm, Stamp};
use crossbeam_channel::{Receiver, Sender, select};
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus, kill_process, kill_process_group, wait};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// What the guard is started with.
#[derive(Debug, Clone)]
pub struct GuardArgs {
    pub grace: Duration,
    pub my_id: i64,
    pub command: Vec<OsString>,
}

enum Input {
    Order(Order),
    /// The daemon's end of the socket closed (or sent garbage).
    DaemonGone(String),
    Reaped(Pid, WaitStatus),
    /// The lease-clock alarm rang: a timer may be due.
    Alarm,
}

/// The running command.
struct Child {
    pid: Pid,
    deadline: Stamp,
    /// SIGKILL at this moment: the deadline, or the end of the grace period after a stop.
    kill_at: Stamp,
    term_sent: bool,
    /// Why it is being stopped, once it is.
    stopping: Option<StoppedBy>,
}

struct Guard {
    args: GuardArgs,
    /// Rings at the next timer on the lease clock, also right after a suspend that outlasted it.
    alarm: Arc<BootAlarm>,
    exe: PathBuf,
    out: UnixStream,
    child: Option<Child>,
    quitting: bool,
    spawned: Sender<()>,
}

/// The guard's `main`: returns the process's exit code.
pub fn main(args: GuardArgs) -> i32 {
    // A session of its own, before any command runs: a signal to zkelect's process group (Ctrl-Z
    // in a shell, kill -STOP -<pgid>) that freezes zkelect must leave the guard running, or the
    // command would outlive the lease; and without a controlling terminal no terminal signal
    // (SIGTTOU for a write from the background, SIGHUP) can stop or end it.
    if let Err(e) = rustix::process::setsid() {
        log::warn!(
            "zkelect guard: cannot start a session of its own ({e}): stopping zkelect's process group stops it too"
        );
    }
    let control = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => UnixStream::from(fd),
        Err(e) => {
            log::error!("zkelect guard: no control socket on stdin: {e}");
            return 1;
        }
    };
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        log::warn!(
            "Cannot become a child subreaper ({e}): a grandchild that leaves its process group may outlive the command"
        );
    }
    // The daemon decides when the command stops; a signal sent to the guard's own process group
    // or by hand must not end it before it has stopped the command.
    let ignored = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGHUP, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, std::sync::Arc::clone(&ignored));
    }
    let (exe, out, reader_socket) = match (std::env::current_exe(), control.try_clone(), control.try_clone()) {
        (Ok(exe), Ok(out), Ok(r)) => (exe, out, r),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => {
            log::error!("zkelect guard: cannot set up: {e}");
            return 1;
        }
    };
    let alarm = match BootAlarm::new() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            log::error!("zkelect guard: cannot create its lease-clock timer: {e}");
            return 1;
        }
    };
    let (tx, inputs) = crossbeam_channel::unbounded();
    let (spawned, spawned_rx) = crossbeam_channel::unbounded();
    let reader = {
        let tx = tx.clone();
        std::thread::Builder::new().name("GuardReader".into()).spawn(move || read_orders(reader_socket, &tx))
    };
    let timer = {
        let (tx, alarm) = (tx.clone(), Arc::clone(&alarm));
        std::thread::Builder::new()
            .name("GuardTimer".into())
            .spawn(move || while alarm.wait() && tx.send(Input::Alarm).is_ok() {})
    };
    let reaper = std::thread::Builder::new().name("GuardReaper".into()).spawn(move || reap(&tx, &spawned_rx));
    let (Ok(reader), Ok(timer), Ok(reaper)) = (reader, timer, reaper) else {
        log::error!("zkelect guard: cannot start its threads");
        return 1;
    };
    let mut g = Guard { args, alarm: Arc::clone(&alarm), exe, out, child: None, quitting: false, spawned };
    g.run(&inputs);
    // Unblocks the reader and the timer, and lets the reaper end once nothing is left to reap.
    let _ = control.shutdown(std::net::Shutdown::Both);
    alarm.close();
    drop(g);
    let _ = reader.join();
    let _ = timer.join();
    let _ = reaper.join();
    0
}

impl Guard {
    fn run(&mut self, inputs: &Receiver<Input>) {
        loop {
            let next = self.next_timer();
            if let Err(e) = self.alarm.set(next) {
                log::error!("zkelect guard: cannot set its lease-clock timer ({e}): stopping the command");
                self.quit();
            }
            // The alarm wakes the loop on time even across a suspend; the timeout is the same
            // moment counted on the monotonic clock.
            let wait = next.map_or(Duration::from_secs(3600), |t| t.since(Stamp::now()));
            select! {
                recv(inputs) -> input => match input {
                    Ok(Input::Order(o)) => self.on_order(o),
                    Ok(Input::DaemonGone(why)) => {
                        if self.child.is_some() {
                            log::warn!("The daemon is gone ({why}): stopping the command");
                        }
                        self.quit();
                    }
                    Ok(Input::Reaped(pid, status)) => self.reaped(pid, status),
                    Ok(Input::Alarm) => {}
                    Err(_) => self.quit(),
                },
                default(wait) => {},
            }
            self.timers();
            if self.quitting && self.child.is_none() {
                self.report(&Report::Bye);
                return;
            }
        }
    }

    fn next_timer(&self) -> Option<Stamp> {
        let c = self.child.as_ref()?;
        let term_at = c.deadline.saturating_sub(self.args.grace);
        Some(if c.term_sent { c.kill_at } else { term_at.min(c.kill_at) })
    }

    fn report(&mut self, r: &Report) {
        if let Err(e) = writeln!(self.out, "{r}") {
            log::debug!("Cannot report {r} to the daemon: {e}");
        }
    }

    fn on_order(&mut self, o: Order) {
        match o {
            Order::Start { deadline, epoch, leader } => self.start(deadline, epoch, leader),
            Order::Renew { deadline } => {
                if let Some(c) = &mut self.child
                    && c.stopping.is_none()
                {
                    c.deadline = deadline;
                    c.kill_at = deadline;
                }
            }
            Order::Stop => self.stop(StoppedBy::Order),
            Order::Signal(n) => {
                if let (Some(c), Some(sig)) = (&self.child, Signal::from_named_raw(n)) {
                    let _ = kill_process_group(c.pid, sig);
                }
            }
            Order::Quit => self.quit(),
        }
    }

    fn start(&mut self, deadline: Stamp, epoch: i64, leader: i64) {
        if self.child.is_some() || self.quitting {
            return;
        }
        if Stamp::now() >= deadline.saturating_sub(self.args.grace) {
            return self.report(&Report::TooLate);
        }
        let mut cmd = Command::new(&self.exe);
        cmd.arg("__exec")
            .arg(std::process::id().to_string())
            .arg("--")
            .args(&self.args.command)
            .env("ZKELECT_EPOCH", epoch.to_string())
            .env("ZKELECT_MYID", self.args.my_id.to_string())
            .env("ZKELECT_LEADER", leader.to_string())
            .stdin(Stdio::null())
            .process_group(0);
        match cmd.spawn() {
            Ok(c) => {
                // std's Child neither waits nor kills on drop; the reaper collects it.
                let Some(pid) = i32::try_from(c.id()).ok().and_then(Pid::from_raw) else { return };
                drop(c);
                let _ = self.spawned.send(());
                self.child = Some(Child { pid, deadline, kill_at: deadline, term_sent: false, stopping: None });
                self.report(&Report::Started { pid: pid.as_raw_nonzero().get() });
            }
            Err(e) => self.report(&Report::StartFailed { reason: e.to_string() }),
        }
    }

    /// SIGTERM to the group now, SIGKILL after the grace period (or at the deadline).
    fn stop(&mut self, by: StoppedBy) {
        let grace = self.args.grace;
        let Some(c) = &mut self.child else { return };
        if c.stopping.is_none() {
            c.stopping = Some(by);
        }
        if !c.term_sent {
            let _ = kill_process_group(c.pid, Signal::TERM);
            c.term_sent = true;
            c.kill_at = c.kill_at.min(Stamp::now() + grace);
        }
    }

    fn quit(&mut self) {
        self.quitting = true;
        self.stop(StoppedBy::Order);
    }

    fn timers(&mut self) {
        let now = Stamp::now();
        let Some(c) = &self.child else { return };
        if c.term_sent && now >= c.kill_at {
            let pid = c.pid;
            log::warn!("The command (process group {pid}) did not stop in time: SIGKILL");
            kill_everything(pid);
        } else if !c.term_sent && now >= c.deadline.saturating_sub(self.args.grace) {
            log::warn!(
                "The lease was not renewed and ends in {} ms: stopping the command (SIGTERM to process group {})",
                c.deadline.since(now).as_millis(),
                c.pid
            );
            self.stop(StoppedBy::Deadline);
        }
    }

    fn reaped(&mut self, pid: Pid, status: WaitStatus) {
        let Some(c) = &self.child else { return };
        if c.pid != pid {
            return; // an orphaned grandchild, reparented to us
        }
        let how = match (status.exit_status(), status.terminating_signal()) {
            (Some(code), _) => ExitHow::Code(code),
            (None, Some(sig)) => ExitHow::Signal(sig),
            _ => return,
        };
        let by = c.stopping.unwrap_or(StoppedBy::Itself);
        // What it left behind in its group, or reparented to us, goes with it.
        kill_everything(pid);
        self.child = None;
        self.report(&Report::Exited { pid: pid.as_raw_nonzero().get(), how, by });
    }
}

/// SIGKILL to the process group `pgid` and to every process reparented to this one.
fn kill_everything(pgid: Pid) {
    let _ = kill_process_group(pgid, Signal::KILL);
    for pid in own_children() {
        let _ = kill_process(pid, Signal::KILL);
    }
}

/// This process's children, from /proc (the guard only ever has the command and its orphans).
fn own_children() -> Vec<Pid> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).filter_map(Pid::from_raw).collect::<Vec<_>>())
        .collect()
}

fn read_orders(socket: UnixStream, tx: &Sender<Input>) {
    let mut lines = BufReader::new(socket).lines();
    loop {
        let input = match lines.next() {
            Some(Ok(line)) => match Order::parse(&line) {
                Ok(o) => Input::Order(o),
                Err(e) => Input::DaemonGone(e),
            },
            Some(Err(e)) => Input::DaemonGone(e.to_string()),
            None => Input::DaemonGone("its end of the control socket closed".into()),
        };
        let gone = matches!(input, Input::DaemonGone(_));
        if tx.send(input).is_err() || gone {
            return;
        }
    }
}

/// Collects every child (the command and orphans reparented to us); when there is none, waits
/// until the next spawn, and ends once the guard drops its end of `spawned`.
fn reap(tx: &Sender<Input>, spawned: &Receiver<()>) {
    loop {
        // wait(2), any child: waitpid(0) would only see the guard's own process group.
        match wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) => {
                let _ = tx.send(Input::Reaped(pid, status));
            }
            Ok(None) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => {
                // No children right now.
                if spawned.recv().is_err() {
                    return;
                }
            }
        }
    }
}

/// `zkelect __exec <parent pid> -- <command…>`: asks for SIGKILL when the parent (the guard, or
/// `zkelect ensemble`) dies, checks it did not die already, and becomes the command. Returns only
/// on failure.
pub fn exec(guard: i32, command: &[OsString]) -> i32 {
    if let Err(e) = rustix::process::set_parent_process_death_signal(Some(Signal::KILL)) {
        eprintln!("zkelect: cannot tie the command to its parent process {guard}: {e}");
        return 126;
    }
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) != Some(guard) {
        return 126;
    }
    let Some((program, args)) = command.split_first() else {
        eprintln!("zkelect: no command given");
        return 126;
    };
    let e = Command::new(program).args(args).exec();
    eprintln!("zkelect: cannot run {}: {e}", program.to_string_lossy());
    if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 }
}
