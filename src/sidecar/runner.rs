//! The daemon's side of `zkelect run`: starts the guard process, feeds the [`Supervisor`] the
//! lease, the guard's reports and the operator's signals, and carries out what it decides.

use super::protocol::{Order, Report};
use super::supervisor::{Action, RunEnd, RunOptions, Supervisor};
use crate::lease::Stamp;
use crate::node::NodeHandle;
use crate::runtime::{Shutdown, ThreadGroup};
use crossbeam_channel::{Receiver, Sender, select};
use parking_lot::Mutex;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt;

/// How long the guard may take to exit once told to quit, beyond the grace period.
const GUARD_EXIT_SLACK: Duration = Duration::from_secs(5);

enum Event {
    Report(Report),
    /// The guard's socket closed or broke.
    GuardGone(String),
    Shutdown,
    Signal(i32),
}

/// How `zkelect run` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Run(RunEnd),
    /// The guard process died: the command was killed with it; the run cannot go on safely.
    GuardLost,
}

pub struct Runner {
    guard: Mutex<Option<Child>>,
    control: UnixStream,
    events: Sender<Event>,
    ended: Receiver<Ended>,
    threads: ThreadGroup,
    stop: Shutdown,
    grace: Duration,
}

impl Runner {
    /// Starts the guard (which starts nothing yet) and the supervising threads.
    pub fn start(
        node: NodeHandle,
        opts: RunOptions,
        grace: Duration,
        command: Vec<OsString>,
    ) -> std::io::Result<Runner> {
        let my_id = node.status().my_id;
        let (control, theirs) = UnixStream::pair()?;
        // The guard leaves zkelect's session at its start (see `guard::main`).
        let guard = Command::new(std::env::current_exe()?)
            .arg("__guard")
            .args(["--grace-ms", &grace.as_millis().to_string(), "--myid", &my_id.to_string(), "--"])
            .args(&command)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .spawn()?;
        log::info!("Started the guard process {} for: {}", guard.id(), describe(&command));
        let (events, events_rx) = crossbeam_channel::unbounded();
        let (ended_tx, ended) = crossbeam_channel::bounded(1);
        let runner = Runner {
            guard: Mutex::new(Some(guard)),
            control,
            events,
            ended,
            threads: ThreadGroup::new(),
            stop: Shutdown::new(),
            grace,
        };
        let reader = {
            let (socket, events) = (runner.control.try_clone()?, runner.events.clone());
            move || read_reports(socket, &events)
        };
        runner.threads.spawn(format!("GuardReports[myid={my_id}]"), reader)?;
        let supervise = {
            let out = runner.control.try_clone()?;
            let stop = runner.stop.clone();
            move || supervise(&node, Supervisor::new(my_id, opts, grace), &events_rx, out, &ended_tx, &stop)
        };
        runner.threads.spawn(format!("CommandSupervisor[myid={my_id}]"), supervise)?;
        Ok(runner)
    }

    /// SIGTERM/SIGINT: resign, stop the command, end.
    pub fn request_stop(&self) {
        let _ = self.events.send(Event::Shutdown);
    }

    /// Passes a signal on to the command's process group.
    pub fn forward(&self, sig: i32) {
        let _ = self.events.send(Event::Signal(sig));
    }

    /// Receives how the run ended, once.
    pub fn ended(&self) -> &Receiver<Ended> {
        &self.ended
    }

    /// Tells the guard to quit (stopping the command, if any), waits for it, joins the threads.
    pub fn finish(&self) {
        let _ = writeln!(&self.control, "{}", Order::Quit);
        if let Some(mut guard) = self.guard.lock().take()
            && !matches!(guard.wait_timeout(self.grace + GUARD_EXIT_SLACK), Ok(Some(_)))
        {
            log::warn!("The guard process {} did not exit; killing it", guard.id());
            let _ = guard.kill();
            let _ = guard.wait();
        }
        self.stop.request();
        let _ = self.control.shutdown(std::net::Shutdown::Both);
        self.threads.join_all();
    }
}

fn describe(command: &[OsString]) -> String {
    command.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
}

fn read_reports(socket: UnixStream, events: &Sender<Event>) {
    for line in BufReader::new(socket).lines() {
        let event = match line.map_err(|e| e.to_string()).and_then(|l| Report::parse(&l)) {
            Ok(r) => Event::Report(r),
            Err(e) => Event::GuardGone(e),
        };
        let gone = matches!(event, Event::GuardGone(_));
        if events.send(event).is_err() || gone {
            return;
        }
    }
    let _ = events.send(Event::GuardGone("its end of the control socket closed".into()));
}

/// The `CommandSupervisor` thread.
fn supervise(
    node: &NodeHandle,
    mut sup: Supervisor,
    events: &Receiver<Event>,
    mut out: UnixStream,
    ended: &Sender<Ended>,
    stop: &Shutdown,
) {
    let lease_changes = node.lease_changes();
    let mut finished = false;
    // The node may have changed before this thread subscribed.
    let mut actions = lease_actions(node, &mut sup);
    loop {
        while !actions.is_empty() {
            let mut follow = Vec::new();
            for a in actions.drain(..) {
                run_action(node, &mut sup, a, &mut out, ended, &mut finished, &mut follow);
            }
            actions = follow;
        }
        let wait = sup.next_timer().map_or(Duration::from_secs(3600), |t| t.since(Stamp::now()));

        select! {
            recv(lease_changes) -> _ => actions = lease_actions(node, &mut sup),
            recv(events) -> ev => match ev {
                Ok(Event::Report(r)) => actions = sup.on_report(r, Stamp::now()),
                Ok(Event::Shutdown) => actions = sup.on_shutdown(),
                Ok(Event::Signal(s)) => actions = sup.on_signal(s),
                Ok(Event::GuardGone(why)) => {
                    if !finished && !stop.is_requested() {
                        guard_lost(node, &sup, &why);
                        let _ = ended.try_send(Ended::GuardLost);
                    }
                    return;
                }
                Err(_) => return,
            },
            recv(stop.receiver()) -> _ => return,
            default(wait) => actions = sup.on_timer(Stamp::now()),
        }
    }
}

/// Carries out one of the supervisor's actions; what the supervisor answers to its outcome goes
/// into `follow`.
fn run_action(
    node: &NodeHandle,
    sup: &mut Supervisor,
    a: Action,
    out: &mut UnixStream,
    ended: &Sender<Ended>,
    finished: &mut bool,
    follow: &mut Vec<Action>,
) {
    match a {
        Action::Guard(o) => {
            if let Err(e) = writeln!(out, "{o}") {
                log::error!("Cannot reach the guard process ({e})");
            }
        }
        Action::GuardedWork(running) => node.set_guarded_work(running),
        Action::Resign => match node.resign(None) {
            Ok(what) => log::info!("Resignation: {what}"),
            Err(why) => {
                // Said once, not on every retry while a follower joins.
                if sup.retrying_resign() {
                    log::debug!("No resignation yet: {why}");
                } else {
                    log::info!("No resignation: {why}");
                }
                follow.extend(sup.on_resign_refused(why.is_transient(), Stamp::now()));
            }
        },
        Action::End(end) => {
            *finished = true;
            let _ = ended.try_send(Ended::Run(end));
        }
    }
}

fn lease_actions(node: &NodeHandle, sup: &mut Supervisor) -> Vec<Action> {
    let st = node.status();
    sup.on_lease(st.lease, st.current_epoch, Stamp::now())
}

/// The guard died: the kernel killed the command with it (PR_SET_PDEATHSIG); what is left of its
/// process group goes too.
fn guard_lost(node: &NodeHandle, sup: &Supervisor, why: &str) {
    log::error!("The guard process is gone ({why}); stopping");
    if let Some(pid) = sup.command_pid().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    node.set_guarded_work(false);
}
