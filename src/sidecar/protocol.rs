//! The lines the daemon and its guard process exchange over their socket pair. Deadlines are
//! absolute [`Stamp`]s (the boot-time clock is shared by every process on the host), so a line
//! that arrives late never extends a lease.

use crate::lease::Stamp;
use std::fmt;

/// Daemon → guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// Start the command (if none runs) for `epoch`, allowed to run until `deadline`.
    Start { deadline: Stamp, epoch: i64, leader: i64 },
    /// The lease was confirmed again: the command may run until `deadline`.
    Renew { deadline: Stamp },
    /// Stop the command: SIGTERM to its process group now, SIGKILL after the grace period (or at
    /// the deadline, if that comes first).
    Stop,
    /// Forward a signal to the command's process group.
    Signal(i32),
    /// Stop the command, then exit.
    Quit,
}

/// Guard → daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Started {
        pid: i32,
    },
    /// The command could not be started (no such program, for example).
    StartFailed {
        reason: String,
    },
    /// Not started: the deadline had (nearly) passed when the order arrived.
    TooLate,
    /// The command ended: by itself, or because it was stopped.
    Exited {
        pid: i32,
        how: ExitHow,
        by: StoppedBy,
    },
    /// The guard is about to exit (after `Quit`, with no command left).
    Bye,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitHow {
    Code(i32),
    Signal(i32),
}

/// Why the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoppedBy {
    /// It exited on its own.
    Itself,
    /// The daemon asked (Stop or Quit).
    Order,
    /// The lease ran out before the daemon renewed it: the guard stopped it on its own.
    Deadline,
}

impl fmt::Display for ExitHow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitHow::Code(c) => write!(f, "exit code {c}"),
            ExitHow::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Order::Start { deadline, epoch, leader } => {
                write!(f, "START {} {epoch} {leader}", deadline.as_nanos())
            }
            Order::Renew { deadline } => write!(f, "RENEW {}", deadline.as_nanos()),
            Order::Stop => f.write_str("STOP"),
            Order::Signal(s) => write!(f, "SIGNAL {s}"),
            Order::Quit => f.write_str("QUIT"),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Started { pid } => write!(f, "STARTED {pid}"),
            Report::StartFailed { reason } => write!(f, "START-FAILED {}", reason.replace('\n', " ")),
            Report::TooLate => f.write_str("TOO-LATE"),
            Report::Exited { pid, how, by } => {
                let how = match how {
                    ExitHow::Code(c) => format!("code {c}"),
                    ExitHow::Signal(s) => format!("signal {s}"),
                };
                let by = match by {
                    StoppedBy::Itself => "itself",
                    StoppedBy::Order => "order",
                    StoppedBy::Deadline => "deadline",
                };
                write!(f, "EXITED {pid} {how} {by}")
            }
            Report::Bye => f.write_str("BYE"),
        }
    }
}

fn num<T: std::str::FromStr>(w: Option<&str>, line: &str) -> Result<T, String> {
    w.and_then(|w| w.parse().ok()).ok_or_else(|| format!("malformed line {line:?}"))
}

impl Order {
    pub fn parse(line: &str) -> Result<Order, String> {
        let mut w = line.split_whitespace();
        Ok(match w.next() {
            Some("START") => Order::Start {
                deadline: Stamp::from_nanos(num(w.next(), line)?),
                epoch: num(w.next(), line)?,
                leader: num(w.next(), line)?,
            },
            Some("RENEW") => Order::Renew { deadline: Stamp::from_nanos(num(w.next(), line)?) },
            Some("STOP") => Order::Stop,
            Some("SIGNAL") => Order::Signal(num(w.next(), line)?),
            Some("QUIT") => Order::Quit,
            _ => return Err(format!("unknown order {line:?}")),
        })
    }
}

impl Report {
    pub fn parse(line: &str) -> Result<Report, String> {
        let mut w = line.split_whitespace();
        Ok(match w.next() {
            Some("STARTED") => Report::Started { pid: num(w.next(), line)? },
            Some("START-FAILED") => Report::StartFailed { reason: w.collect::<Vec<_>>().join(" ") },
            Some("EXITED") => {
                let pid = num(w.next(), line)?;
                let how = match w.next() {
                    Some("code") => ExitHow::Code(num(w.next(), line)?),
                    Some("signal") => ExitHow::Signal(num(w.next(), line)?),
                    _ => return Err(format!("malformed line {line:?}")),
                };
                let by = match w.next() {
                    Some("itself") => StoppedBy::Itself,
                    Some("order") => StoppedBy::Order,
                    Some("deadline") => StoppedBy::Deadline,
                    _ => return Err(format!("malformed line {line:?}")),
                };
                Report::Exited { pid, how, by }
            }
            Some("TOO-LATE") => Report::TooLate,
            Some("BYE") => Report::Bye,
            _ => return Err(format!("unknown report {line:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let orders = [
            Order::Start { deadline: Stamp::from_nanos(123_456_789), epoch: 7, leader: 3 },
            Order::Renew { deadline: Stamp::from_nanos(u64::MAX) },
            Order::Stop,
            Order::Signal(1),
            Order::Quit,
        ];
        for o in orders {
            assert_eq!(Order::parse(&o.to_string()), Ok(o.clone()), "{o}");
        }
        let reports = [
            Report::Started { pid: 42 },
            Report::StartFailed { reason: "No such file or directory (os error 2)".into() },
            Report::TooLate,
            Report::Exited { pid: 42, how: ExitHow::Code(3), by: StoppedBy::Itself },
            Report::Exited { pid: 42, how: ExitHow::Signal(9), by: StoppedBy::Deadline },
            Report::Exited { pid: 42, how: ExitHow::Signal(15), by: StoppedBy::Order },
            Report::Bye,
        ];
        for r in reports {
            assert_eq!(Report::parse(&r.to_string()), Ok(r.clone()), "{r}");
        }
        assert!(Order::parse("START 1 2").is_err());
        assert!(Order::parse("LAUNCH").is_err());
        assert!(Report::parse("EXITED 1 code x itself").is_err());
    }
}
