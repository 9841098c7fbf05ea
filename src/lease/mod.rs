//! The leader's lease: when an elected leader may act as the only one (*active*), and until when.
//! Pure arithmetic on [`Stamp`]s; the peer layer feeds it what it sends and hears.
//!
//! The rule (a Raft-style quorum lease, with the new leader waiting out its predecessors):
//! - A leader's lease ends `lease` after it *sent* the newest PING (or NEWLEADER) that a quorum,
//!   itself included, has answered. Each quorum member heard that packet after it was sent.
//! - A learner remembers when it last heard from a leader ([`LastLeader`]) and reports it in its
//!   hello. A new leader is active only from `max(last heard) + lease + drift margin` over the
//!   quorum that established it (itself included): that quorum shares a member with every quorum
//!   an earlier leader renewed through, and that member stopped answering the earlier leader
//!   before it reported.
//! - A leader deactivates `grace` before its lease ends, so a child stopped then (SIGTERM, then
//!   SIGKILL at the end) is gone before any successor can be active. A lapsed lease becomes active
//!   again once a quorum confirms a newer round: by then no other leader can have been
//!   established, as one member of its quorum would have had to leave this leader first.
//!
//! Assumption: the nodes' clocks advance at the same rate, within `drift margin` over a lease.

mod clock;

pub use clock::{BootAlarm, Stamp};

use crate::config::QuorumVerifier;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// The lease lengths, from `zoo.cfg` (see `QuorumPeerConfig::lease_settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSettings {
    /// `zkelect.leaseMs`: how long one confirmation by a quorum lets a leader stay active.
    pub lease: Duration,
    /// `zkelect.leaseDriftMarginMs`: added to a successor's wait for clock-rate differences and
    /// the time a killed child takes to go.
    pub drift_margin: Duration,
    /// `zkelect.run.gracePeriodMs`: a leader deactivates this long before its lease ends; the
    /// child gets SIGTERM then and SIGKILL at the end.
    pub grace: Duration,
}

impl LeaseSettings {
    pub fn from_config(cfg: &crate::config::QuorumPeerConfig) -> LeaseSettings {
        LeaseSettings {
            lease: Duration::from_millis(cfg.lease_ms()),
            drift_margin: Duration::from_millis(cfg.lease_drift_margin_ms()),
            grace: Duration::from_millis(cfg.run_grace_period_ms()),
        }
    }
}

/// What a node may do with its leadership, as every interface shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeaseState {
    /// Not a leader, or a leader whose lease could not be confirmed (or was released).
    #[default]
    Inactive,
    /// Elected; an earlier leader may still be active until `until`.
    Waiting { until: Stamp },
    /// The only active leader until `until` unless a quorum confirms it again.
    Active { until: Stamp },
}

impl LeaseState {
    /// `active`, `waiting` or `inactive`: the word in logs, `srvr`, metrics and the hook.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Inactive => "inactive",
            LeaseState::Waiting { .. } => "waiting",
            LeaseState::Active { .. } => "active",
        }
    }

    pub fn is_active(self) -> bool {
        matches!(self, LeaseState::Active { .. })
    }

    /// Same kind, whatever the deadline (renewals do not count as a change).
    pub fn same_kind(self, other: LeaseState) -> bool {
        std::mem::discriminant(&self) == std::mem::discriminant(&other)
    }
}

/// When this node last heard from a leader that might have renewed its lease through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastLeader {
    /// A packet from a leader (or, for a leader, its own PING round) arrived at this moment. A
    /// process starts with its start time here: before a restart it may have answered a leader.
    Heard(Stamp),
    /// The leader last heard from released its lease (its child is stopped): nothing to wait for.
    Released,
}

impl LastLeader {
    /// The hello field: milliseconds since then, or -1 when released.
    pub fn report(self, now: Stamp) -> i64 {
        match self {
            LastLeader::Heard(at) => i64::try_from(now.since(at).as_millis()).unwrap_or(i64::MAX),
            LastLeader::Released => -1,
        }
    }

    /// A learner's hello field as the leader's moment: `received` minus the reported age (the
    /// transit time only makes it later, which only makes the wait longer). `None` (a learner that
    /// does not report) counts as heard just now.
    pub fn from_report(report: Option<i64>, received: Stamp) -> LastLeader {
        match report {
            Some(ms) if ms < 0 => LastLeader::Released,
            Some(ms) => LastLeader::Heard(received.saturating_sub(Duration::from_millis(ms.unsigned_abs()))),
            None => LastLeader::Heard(received),
        }
    }
}

/// When a leader established by a quorum whose members last heard from a leader at `reports`
/// may become active: every earlier lease renewed through one of them has ended by then.
pub fn activation_time(reports: impl IntoIterator<Item = LastLeader>, settings: &LeaseSettings) -> Option<Stamp> {
    reports
        .into_iter()
        .filter_map(|r| match r {
            LastLeader::Heard(at) => Some(at),
            LastLeader::Released => None,
        })
        .max()
        .map(|at| at + settings.lease + settings.drift_margin)
}

/// PING rounds remembered for matching answers; older answers are ignored (a learner that slow
/// is dropped for silence long before).
const ROUNDS_KEPT: usize = 256;

/// A leader's lease: the rounds it sent, who answered which, and when it may act.
#[derive(Debug, Clone)]
pub struct LeaderLease {
    settings: LeaseSettings,
    me: i64,
    /// `None`: no predecessor to wait for.
    activation: Option<Stamp>,
    rounds: VecDeque<(u32, Stamp)>,
    /// Per learner: when the newest packet it answered was sent.
    confirmed: HashMap<i64, Stamp>,
    released: bool,
}

impl LeaderLease {
    pub fn new(settings: LeaseSettings, me: i64, activation: Option<Stamp>) -> LeaderLease {
        LeaderLease { settings, me, activation, rounds: VecDeque::new(), confirmed: HashMap::new(), released: false }
    }

    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    pub fn activation(&self) -> Option<Stamp> {
        self.activation
    }

    /// PING round `seq` went out at `at`.
    pub fn round_sent(&mut self, seq: u32, at: Stamp) {
        if self.rounds.len() == ROUNDS_KEPT {
            self.rounds.pop_front();
        }
        self.rounds.push_back((seq, at));
    }

    /// `sid` answered round `seq`; unknown rounds are ignored.
    pub fn answered(&mut self, sid: i64, seq: u32) {
        if let Some(&(_, at)) = self.rounds.iter().rev().find(|(s, _)| *s == seq) {
            self.confirm(sid, at);
        }
    }

    /// `sid` answered a packet sent at `sent` (NEWLEADER's ACK, for example).
    pub fn confirm(&mut self, sid: i64, sent: Stamp) {
        let e = self.confirmed.entry(sid).or_insert(sent);
        *e = (*e).max(sent);
    }

    /// The leader gave its lease up (resign): inactive from now on.
    pub fn release(&mut self) {
        self.released = true;
    }

    pub fn is_released(&self) -> bool {
        self.released
    }

    /// The end of the lease: `lease` after the newest send time that a quorum (with this node)
    /// answered; `None` until a quorum has answered anything.
    pub fn end(&self, qv: &QuorumVerifier) -> Option<Stamp> {
        // A quorum of one (a single voter): nobody else can ever lead.
        if qv.contains_quorum([self.me]) {
            return Some(Stamp::from_nanos(u64::MAX));
        }
        let mut times: Vec<Stamp> = self.confirmed.values().copied().collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        times.into_iter().find_map(|t| {
            let with = self.confirmed.iter().filter(|(_, at)| **at >= t).map(|(sid, _)| *sid);
            qv.contains_quorum(with.chain(std::iter::once(self.me))).then_some(t + self.settings.lease)
        })
    }

    /// The lease as every interface shows it at `now`.
    pub fn state(&self, qv: &QuorumVerifier, now: Stamp) -> LeaseState {
        if self.released {
            return LeaseState::Inactive;
        }
        let Some(end) = self.end(qv) else { return LeaseState::Inactive };
        if now >= end.saturating_sub(self.settings.grace) {
            return LeaseState::Inactive;
        }
        match self.activation {
            Some(at) if now < at => LeaseState::Waiting { until: at },
            _ => LeaseState::Active { until: end },
        }
    }
}

#[cfg(test)]
mod tests;
