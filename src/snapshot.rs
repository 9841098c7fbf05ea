//! The node's published status and the point-in-time [`Snapshot`] the operator interfaces read.
//! Neutral ground: `peer` writes the status, `messenger` reads the view its reply rules need, and
//! `admin` reads snapshots, so none of them depends on another.

use crate::cnx::PeerCnxStatus;
use crate::election::{Notification, PeerView, ServerState, Vote};
use crate::lease::{LeaseState, Stamp};
use crate::messenger::PeerTraffic;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::SystemTime;

/// Where a leader's or learner's session stands (`QuorumPeer.ZabState`, plus election-only mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPhase {
    Discovery,
    Synchronization,
    Broadcast,
    /// Following a leader that refuses our session (a ZooKeeper server): the leadership is checked
    /// through the election instead, every syncLimit ticks; `confirmed` once it has been.
    ElectionOnly {
        confirmed: bool,
    },
}

impl SessionPhase {
    /// As in `zk_peer_state` and the "Peer state changed" line.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionPhase::Discovery => "discovery",
            SessionPhase::Synchronization => "synchronization",
            SessionPhase::Broadcast => "broadcast",
            SessionPhase::ElectionOnly { confirmed: true } => "election-only",
            SessionPhase::ElectionOnly { confirmed: false } => "election-only (confirming)",
        }
    }

    /// The leadership is established: the session is in broadcast, or the leader was confirmed.
    pub fn is_established(self) -> bool {
        matches!(self, SessionPhase::Broadcast | SessionPhase::ElectionOnly { confirmed: true })
    }
}

/// The milestone line operators and tools follow (Java's `setZabState` line plus the leader and
/// the epoch, the fencing token): `Peer state changed: following - broadcast (leader 3, epoch 2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Milestone {
    pub state: ServerState,
    pub phase: SessionPhase,
    pub leader: i64,
    pub epoch: i64,
}

impl fmt::Display for Milestone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Peer state changed: {} - {} (leader {}, epoch {})",
            self.state.lower(),
            self.phase.as_str(),
            self.leader,
            self.epoch
        )
    }
}

/// Election timing figures (`election_time` in `mntr`), in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct ElectionStats {
    pub count: u64,
    pub sum_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
    pub last_ms: u64,
}

impl ElectionStats {
    pub fn add(&mut self, ms: u64) {
        self.min_ms = if self.count == 0 { ms } else { self.min_ms.min(ms) };
        self.max_ms = self.max_ms.max(ms);
        self.count += 1;
        self.sum_ms += ms;
        self.last_ms = ms;
    }
}

/// One finished election, as the status page lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionRecord {
    pub ended: SystemTime,
    pub took_ms: u64,
    /// Who won.
    pub leader: i64,
    /// What this node became.
    pub state: ServerState,
}

/// Elections kept in [`NodeStatus::recent_elections`].
pub const RECENT_ELECTIONS: usize = 16;

/// The node's status: the one place each of these facts is kept.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub my_id: i64,
    pub state: ServerState,
    /// Set while a session runs (not while LOOKING).
    pub phase: Option<SessionPhase>,
    /// `QuorumPeer.getCurrentVote()`: the last election result (or the initial vote).
    pub current_vote: Vote,
    /// The running (or last) election instance's proposal and round.
    pub proposal: Vote,
    pub logicalclock: i64,
    pub current_epoch: i64,
    pub accepted_epoch: i64,
    pub election: ElectionStats,
    /// The latest elections, oldest first (at most [`RECENT_ELECTIONS`]).
    pub recent_elections: VecDeque<ElectionRecord>,
    /// Times the node entered LOOKING.
    pub looking_count: u64,
    pub leader_changes: u64,
    /// Learners a leader heard from within syncLimit ticks.
    pub synced_learners: Vec<i64>,
    /// What this node may do with its leadership (always inactive unless leading).
    pub lease: LeaseState,
    pub state_since: SystemTime,
    pub started: SystemTime,
}

impl NodeStatus {
    /// A fresh node: LOOKING with its initial vote.
    pub fn new(my_id: i64, initial: Vote, current_epoch: i64, accepted_epoch: i64) -> NodeStatus {
        let now = SystemTime::now();
        NodeStatus {
            my_id,
            state: ServerState::Looking,
            phase: None,
            current_vote: initial,
            proposal: initial,
            logicalclock: 0,
            current_epoch,
            accepted_epoch,
            election: ElectionStats::default(),
            recent_elections: VecDeque::new(),
            looking_count: 0,
            leader_changes: 0,
            synced_learners: Vec::new(),
            lease: LeaseState::Inactive,
            state_since: now,
            started: now,
        }
    }

    /// An election ended after `ms` with `leader` elected and this node in `state`.
    pub fn election_ended(&mut self, leader: i64, state: ServerState, ms: u64) {
        self.election.add(ms);
        if self.recent_elections.len() == RECENT_ELECTIONS {
            self.recent_elections.pop_front();
        }
        self.recent_elections.push_back(ElectionRecord { ended: SystemTime::now(), took_ms: ms, leader, state });
    }

    /// The leader we follow or are, when not LOOKING.
    pub fn leader(&self) -> Option<i64> {
        (self.state != ServerState::Looking).then_some(self.current_vote.id)
    }

    /// Part of a working quorum: a leader or learner whose leadership is established.
    pub fn in_quorum(&self) -> bool {
        self.state != ServerState::Looking && self.phase.is_some_and(SessionPhase::is_established)
    }

    /// `leading - broadcast`, `following - election-only`, `looking` (`zk_peer_state`).
    pub fn peer_state(&self) -> String {
        match self.phase {
            Some(p) => format!("{} - {}", self.state.lower(), p.as_str()),
            None => self.state.lower().to_string(),
        }
    }

    /// What the messenger's reply rules need.
    pub fn view(&self) -> PeerView {
        PeerView {
            my_id: self.my_id,
            state: self.state,
            current_vote: self.current_vote,
            logicalclock: self.logicalclock,
            proposal: self.proposal,
            confirming: matches!(self.phase, Some(SessionPhase::ElectionOnly { .. })),
        }
    }

    /// What the state-change hook is told.
    pub fn state_change(&self) -> StateChange {
        StateChange {
            state: self.state,
            leader: self.leader().unwrap_or(-1),
            epoch: self.current_epoch,
            lease: self.lease.as_str(),
        }
    }

    /// `active`, `waiting 1234 ms` or `inactive`, as `srvr` and `zkelect status` show it.
    pub fn lease_text(&self, now: Stamp) -> String {
        match self.lease {
            LeaseState::Waiting { until } => format!("waiting {} ms", until.since(now).as_millis()),
            LeaseState::Active { until } => format!("active (confirmed for {} ms)", until.since(now).as_millis()),
            LeaseState::Inactive => "inactive".into(),
        }
    }
}

/// A change of state, leader or epoch, as the state-change hook gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    pub state: ServerState,
    /// -1 while looking.
    pub leader: i64,
    /// The fencing token of the leadership.
    pub epoch: i64,
    /// `active`, `waiting` or `inactive` ([`LeaseState::as_str`]).
    pub lease: &'static str,
}

/// Everything the four-letter words and the metrics show, taken at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: NodeStatus,
    pub peers: HashMap<i64, PeerCnxStatus>,
    /// The latest notification from each server, and when it arrived.
    pub last_votes: HashMap<i64, (Notification, SystemTime)>,
    pub notifications_sent: u64,
    pub notifications_received: u64,
    pub malformed_dropped: u64,
    /// Replies not sent again because they would repeat themselves (see `election::replies`).
    pub replies_held_back: u64,
    /// Received notifications dropped because the messenger was `RECV_CAPACITY` behind.
    pub notifications_dropped: u64,
    /// Notifications exchanged with each peer.
    pub traffic: HashMap<i64, PeerTraffic>,
    /// Quorum TLS: whether this node dials with TLS, and what its listeners accept.
    pub quorum_tls: QuorumTlsState,
}

impl Snapshot {
    /// A snapshot of `status` alone: no connections, votes or traffic yet.
    pub fn of_status(status: NodeStatus) -> Snapshot {
        Snapshot {
            status,
            peers: HashMap::new(),
            last_votes: HashMap::new(),
            notifications_sent: 0,
            notifications_received: 0,
            malformed_dropped: 0,
            replies_held_back: 0,
            notifications_dropped: 0,
            traffic: HashMap::new(),
            quorum_tls: QuorumTlsState { dials_tls: false, accepts: "plaintext" },
        }
    }
}

/// Quorum TLS as the operator interfaces show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumTlsState {
    /// `sslQuorum`.
    pub dials_tls: bool,
    /// `plaintext`, `TLS only` or `TLS and plaintext` (`portUnification`).
    pub accepts: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_established_leadership_is_in_a_quorum() {
        let v = Vote::new(3, 0, 1, 1);
        let mut st = NodeStatus::new(1, v, 0, 0);
        assert!(!st.in_quorum());
        st.state = ServerState::Following;
        for (phase, in_quorum) in [
            (None, false),
            (Some(SessionPhase::Discovery), false),
            (Some(SessionPhase::Synchronization), false),
            (Some(SessionPhase::ElectionOnly { confirmed: false }), false),
            (Some(SessionPhase::ElectionOnly { confirmed: true }), true),
            (Some(SessionPhase::Broadcast), true),
        ] {
            st.phase = phase;
            assert_eq!(st.in_quorum(), in_quorum, "{phase:?}");
        }
        assert_eq!(st.peer_state(), "following - broadcast");
        st.phase = Some(SessionPhase::ElectionOnly { confirmed: false });
        assert!(st.view().confirming);
        assert_eq!(st.peer_state(), "following - election-only (confirming)");
    }

    #[test]
    fn recent_elections_keep_the_latest() {
        let mut st = NodeStatus::new(1, Vote::new(1, 0, -1, 0), 0, 0);
        for i in 0..RECENT_ELECTIONS as u64 + 3 {
            st.election_ended(3, ServerState::Following, i);
        }
        assert_eq!(st.recent_elections.len(), RECENT_ELECTIONS);
        assert_eq!(st.recent_elections.front().map(|r| r.took_ms), Some(3));
        assert_eq!(st.recent_elections.back().map(|r| (r.took_ms, r.leader)), Some((RECENT_ELECTIONS as u64 + 2, 3)));
        assert_eq!(st.election.count, RECENT_ELECTIONS as u64 + 3);
    }
}
