//! What `zkelect run` does about its command, as a deterministic state machine: the lease, the
//! guard's reports, the operator's signals and a restart timer go in; orders for the guard, a
//! resignation and the end of the run come out.

use super::protocol::{ExitHow, Order, Report, StoppedBy};
use crate::lease::{LeaseState, Stamp};
use std::time::Duration;

/// What to do when the command exits on its own while this node is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChildExit {
    /// Resign, so that another node takes over (this node does not propose itself in the next
    /// election; it may lead again later).
    Resign,
    /// Start it again while still active, after a back-off (1 s, doubling up to 60 s; back to
    /// 1 s once it ran for a minute).
    Restart,
    /// End `zkelect run` (exit code 4), resigning first.
    Exit,
}

impl OnChildExit {
    pub fn parse(s: &str) -> Option<OnChildExit> {
        match s {
            "resign" => Some(OnChildExit::Resign),
            "restart" => Some(OnChildExit::Restart),
            "exit" => Some(OnChildExit::Exit),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    pub on_child_exit: OnChildExit,
    /// End `zkelect run` (exit code 3) when an active leadership is lost.
    pub exit_on_loss: bool,
}

/// Why `zkelect run` ends; see [`RunEnd::exit_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// SIGTERM or SIGINT: the command was stopped (and the lease released, when leading).
    Stopped,
    /// `--exit-on-loss` and the lease was lost.
    LeadershipLost,
    /// `--on-child-exit=exit` and the command exited on its own.
    CommandExited(ExitHow),
}

impl RunEnd {
    pub fn exit_code(self) -> i32 {
        match self {
            RunEnd::Stopped => EXIT_STOPPED,
            RunEnd::LeadershipLost => EXIT_LEADERSHIP_LOST,
            RunEnd::CommandExited(_) => EXIT_COMMAND_EXITED,
        }
    }
}

pub const EXIT_STOPPED: i32 = 0;
pub const EXIT_LEADERSHIP_LOST: i32 = 3;
pub const EXIT_COMMAND_EXITED: i32 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Guard(Order),
    /// Whether the command may be running: a resigning leader releases its lease only once false.
    GuardedWork(bool),
    Resign,
    End(RunEnd),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Idle,
    /// Asked the guard to start it for this epoch.
    Starting {
        epoch: i64,
    },
    Running {
        epoch: i64,
        pid: i32,
        since: Stamp,
    },
    Stopping,
}

/// How soon a resignation refused for a passing reason (a follower still joining) is asked again.
pub const RESIGN_RETRY: Duration = Duration::from_millis(250);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A command that ran this long before exiting restarts after the shortest back-off again.
const RAN_LONG: Duration = Duration::from_secs(60);

pub struct Supervisor {
    my_id: i64,
    opts: RunOptions,
    /// The command is not started this close to the end of the lease (the guard would stop it).
    grace: Duration,
    command: Command,
    lease: LeaseState,
    epoch: i64,
    /// Active since the last activation, and not given up on purpose (resign, stop).
    holding: bool,
    giving_up: bool,
    ending: Option<RunEnd>,
    ended: bool,
    restart_at: Option<Stamp>,
    /// A refused resignation is asked again then.
    resign_retry_at: Option<Stamp>,
    /// The resignation asked for since the last give-up was refused at least once.
    resign_refused: bool,
    backoff: Duration,
}

impl Supervisor {
    pub fn new(my_id: i64, opts: RunOptions, grace: Duration) -> Supervisor {
        Supervisor {
            my_id,
            opts,
            grace,
            command: Command::Idle,
            lease: LeaseState::Inactive,
            epoch: 0,
            holding: false,
            giving_up: false,
            ending: None,
            ended: false,
            restart_at: None,
            resign_retry_at: None,
            resign_refused: false,
            backoff: BACKOFF_MIN,
        }
    }

    /// The pid of the running command, if any.
    pub fn command_pid(&self) -> Option<i32> {
        match self.command {
            Command::Running { pid, .. } => Some(pid),
            _ => None,
        }
    }

    /// When [`on_timer`](Self::on_timer) wants to be called.
    pub fn next_timer(&self) -> Option<Stamp> {
        match (self.restart_at, self.resign_retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the resignation being asked for was refused before.
    pub fn retrying_resign(&self) -> bool {
        self.resign_refused
    }

    /// The node refused the resignation asked for: a passing reason (a follower still joining)
    /// asks again shortly; one that stays (ZooKeeper servers in the ensemble) keeps the leadership
    /// and, unless the run is ending anyway, runs the command here again after the back-off, so
    /// that it does not stay down while this node leads.
    pub fn on_resign_refused(&mut self, transient: bool, now: Stamp) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.giving_up || matches!(self.lease, LeaseState::Inactive) {
            return out;
        }
        self.resign_refused = true;
        if transient {
            self.resign_retry_at = Some(now + RESIGN_RETRY);
        } else if self.ending.is_none() {
            self.resign_retry_at = None;
            self.giving_up = false;
            log::warn!(
                "This leader cannot hand over; starting the command here again in {} ms",
                self.backoff.as_millis()
            );
            self.restart_at = Some(now + self.backoff);
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        }
        out.extend(self.on_timer(now));
        out
    }

    /// The lease as published (on every change, renewals included).
    pub fn on_lease(&mut self, lease: LeaseState, epoch: i64, now: Stamp) -> Vec<Action> {
        let was_active = self.lease.is_active();
        self.lease = lease;
        self.epoch = epoch;
        let mut out = Vec::new();
        match lease {
            LeaseState::Active { until } => {
                if !was_active {
                    log::info!("Active in epoch {epoch}: the command may run");
                    self.holding = true;
                    self.giving_up = false;
                    self.resign_retry_at = None;
                }
                match self.command {
                    Command::Idle => self.start_if_due(now, &mut out),
                    Command::Starting { epoch: e } | Command::Running { epoch: e, .. } if e == epoch => {
                        out.push(Action::Guard(Order::Renew { deadline: until }))
                    }
                    Command::Starting { .. } | Command::Running { .. } => self.stop(&mut out),
                    Command::Stopping => {}
                }
            }
            LeaseState::Waiting { .. } | LeaseState::Inactive => {
                self.resign_retry_at = None;
                if was_active && self.holding && !self.giving_up && self.opts.exit_on_loss && self.ending.is_none() {
                    log::warn!("The lease of epoch {epoch} was lost; ending as asked (--exit-on-loss)");
                    self.ending = Some(RunEnd::LeadershipLost);
                }
                self.holding = false;
                self.stop(&mut out);
            }
        }
        self.maybe_end(&mut out);
        out
    }

    pub fn on_report(&mut self, r: Report, now: Stamp) -> Vec<Action> {
        let mut out = Vec::new();
        match r {
            Report::Started { pid } => {
                if let Command::Starting { epoch } = self.command {
                    log::info!("Started the command as process {pid} (process group {pid}) in epoch {epoch}");
                    self.command = Command::Running { epoch, pid, since: now };
                }
            }
            Report::TooLate => {
                log::info!("The lease ended before the command could start; waiting for it to be renewed");
                self.command = Command::Idle;
                out.push(Action::GuardedWork(false));
            }
            Report::StartFailed { reason } => {
                log::warn!("The command could not be started: {reason}");
                self.command = Command::Idle;
                out.push(Action::GuardedWork(false));
                self.exited_by_itself(ExitHow::Code(126), Duration::ZERO, now, &mut out);
            }
            Report::Exited { pid, how, by } => {
                let ran = match self.command {
                    Command::Running { since, .. } => now.since(since),
                    _ => Duration::ZERO,
                };
                self.command = Command::Idle;
                out.push(Action::GuardedWork(false));
                match by {
                    StoppedBy::Itself => {
                        log::warn!("The command (process {pid}) exited by itself with {how}");
                        self.exited_by_itself(how, ran, now, &mut out);
                    }
                    StoppedBy::Order => log::info!("The command (process {pid}) stopped with {how}"),
                    StoppedBy::Deadline => {
                        log::warn!("The guard stopped the command (process {pid}, {how}): the lease ran out")
                    }
                }
                // Active again (a renewal after a lapse): start it again.
                if self.ending.is_none() && self.lease.is_active() && !self.giving_up {
                    self.start_if_due(now, &mut out);
                }
            }
            Report::Bye => {}
        }
        self.maybe_end(&mut out);
        out
    }

    /// SIGTERM or SIGINT: resign (when leading), stop the command, end.
    pub fn on_shutdown(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.ending.is_none() {
            self.ending = Some(RunEnd::Stopped);
        }
        self.give_up(&mut out);
        self.maybe_end(&mut out);
        out
    }

    /// A signal to pass on to the command (SIGHUP, SIGUSR1, …).
    pub fn on_signal(&mut self, sig: i32) -> Vec<Action> {
        match self.command {
            Command::Running { .. } | Command::Starting { .. } => vec![Action::Guard(Order::Signal(sig))],
            _ => Vec::new(),
        }
    }

    pub fn on_timer(&mut self, now: Stamp) -> Vec<Action> {
        let mut out = Vec::new();
        if self.resign_retry_at.is_some_and(|t| now >= t) {
            self.resign_retry_at = None;
            if self.giving_up && !matches!(self.lease, LeaseState::Inactive) {
                out.push(Action::Resign);
            }
        }
        if self.restart_at.is_some_and(|t| now >= t) && self.command == Command::Idle && self.lease.is_active() {
            self.start_if_due(now, &mut out);
        }
        out
    }

    fn start_if_due(&mut self, now: Stamp, out: &mut Vec<Action>) {
        let LeaseState::Active { until } = self.lease else { return };
        // A lease published before this process was frozen may be over by now.
        let lapsed = now >= until.saturating_sub(self.grace);
        if lapsed || self.ending.is_some() || self.giving_up || self.restart_at.is_some_and(|t| now < t) {
            return;
        }
        self.restart_at = None;
        self.command = Command::Starting { epoch: self.epoch };
        // Set before the start: a resignation from now on waits for the command to be gone.
        out.push(Action::GuardedWork(true));
        out.push(Action::Guard(Order::Start { deadline: until, epoch: self.epoch, leader: self.my_id }));
    }

    fn stop(&mut self, out: &mut Vec<Action>) {
        if matches!(self.command, Command::Starting { .. } | Command::Running { .. }) {
            self.command = Command::Stopping;
            out.push(Action::Guard(Order::Stop));
        }
    }

    /// Resign (if active or waiting) and stop the command.
    fn give_up(&mut self, out: &mut Vec<Action>) {
        if !self.giving_up && !matches!(self.lease, LeaseState::Inactive) {
            self.resign_refused = false;
            out.push(Action::Resign);
        }
        self.giving_up = true;
        self.restart_at = None;
        self.stop(out);
    }

    fn exited_by_itself(&mut self, how: ExitHow, ran: Duration, now: Stamp, out: &mut Vec<Action>) {
        if self.ending.is_some() || !self.lease.is_active() {
            return;
        }
        match self.opts.on_child_exit {
            OnChildExit::Resign => {
                log::info!("Resigning so that another node runs the command (--on-child-exit=resign)");
                self.give_up(out);
            }
            OnChildExit::Restart => {
                if ran >= RAN_LONG {
                    self.backoff = BACKOFF_MIN;
                }
                log::info!("Starting the command again in {} ms (--on-child-exit=restart)", self.backoff.as_millis());
                self.restart_at = Some(now + self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
            OnChildExit::Exit => {
                self.ending = Some(RunEnd::CommandExited(how));
                self.give_up(out);
            }
        }
    }

    /// Once the run is ending and the command is gone, the end (once).
    fn maybe_end(&mut self, out: &mut Vec<Action>) {
        if let Some(end) = self.ending
            && self.command == Command::Idle
            && !self.ended
        {
            self.ended = true;
            out.push(Action::End(end));
        }
    }
}

#[cfg(test)]
mod tests;
