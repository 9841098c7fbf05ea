//! The `WorkerReceiver` reply rules as a pure function, shared by the messenger thread and the
//! simulation, and the [`ReplyThrottle`] that keeps two nodes from answering each other forever.
//!
//! ZooKeeper's rules contain a livelock: a LOOKING voter answers *every* message from a non-voter
//! with its vote, and a settled node answers *every* LOOKING notification from a voter with its
//! own. Once an observer settles while one of its replies to a LOOKING voter is in flight, the two
//! answer each other at network speed for as long as the voter stays LOOKING. zkelect breaks the
//! loop from its side, in either role, without a peer being able to tell:
//! - a LOOKING node does not answer a non-voter that is itself settled: a settled node only ever
//!   sends replies, and it ignores what a LOOKING node tells it, so the answer informs nobody;
//! - every other reply is sent at most once per notification interval for the same message
//!   answered with the same vote ([`ReplyThrottle`]): a peer gains nothing from receiving exactly
//!   the same answer to exactly the same question again (TCP loses nothing, and the transport
//!   re-sends the last message after a reconnect), while a new vote, round or state is always
//!   answered at once, so a restarted voter still learns the leader immediately.

use super::vote::{Notification, ServerState, ToSend, Vote};
use crate::config::QuorumVerifier;
use crate::wire::notification::WireNotification;
use std::collections::HashMap;

/// What the receiver knows about its own node when a message arrives.
#[derive(Debug, Clone, Copy)]
pub struct PeerView {
    pub my_id: i64,
    pub state: ServerState,
    /// `QuorumPeer.getCurrentVote()`: the last election result (or the initial vote).
    pub current_vote: Vote,
    pub logicalclock: i64,
    /// `FastLeaderElection.getVote()`: the proposal of the running instance.
    pub proposal: Vote,
    /// Following a leader we cannot hold a session with (a ZooKeeper server): voters' votes are
    /// handed to the peer loop, which re-confirms the leader with them.
    pub confirming: bool,
}

/// What to do with one received notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// Hand to `lookForLeader` (only while LOOKING, only from voters).
    pub forward: Option<Notification>,
    /// Answer the sender at once.
    pub reply: Option<ToSend>,
}

/// Applies the reply rules to a decoded message from `sid`.
pub fn receive(
    view: &PeerView,
    qv: &QuorumVerifier,
    sid: i64,
    w: &WireNotification,
    config_version: Option<i64>,
) -> Receipt {
    if !qv.is_voter(sid) {
        // A non-voter (observer, or a server we do not count) gets our current vote right away,
        // unless both sides would only be answering each other (see the module doc).
        let settled_sender = ServerState::from_i32(w.state).is_some_and(|s| s != ServerState::Looking);
        let reply = (view.state != ServerState::Looking || !settled_sender)
            .then(|| view.current_vote.to_send(sid, view.state, view.logicalclock));
        return Receipt { forward: None, reply };
    }
    let Some(ackstate) = ServerState::from_i32(w.state) else {
        return Receipt::default();
    };
    let n = Notification {
        version: w.version,
        leader: w.leader,
        zxid: w.zxid,
        election_epoch: w.election_epoch,
        state: ackstate,
        sid,
        peer_epoch: w.peer_epoch,
        config_version,
    };
    if view.state == ServerState::Looking {
        // A LOOKING voter behind us in rounds gets our proposal so it catches up.
        let reply = (ackstate == ServerState::Looking && n.election_epoch < view.logicalclock)
            .then(|| view.proposal.to_send(sid, view.state, view.logicalclock));
        Receipt { forward: Some(n), reply }
    } else if ackstate == ServerState::Looking {
        // We are settled: tell a LOOKING voter whom we follow (how a restarted node finds the leader).
        // In election-only mode the peer loop also sees it: a follower of our leader gone LOOKING
        // is a reason to re-confirm the leader at once.
        let c = view.current_vote;
        Receipt { forward: view.confirming.then_some(n), reply: Some(c.to_send(sid, view.state, c.election_epoch)) }
    } else if view.confirming {
        Receipt { forward: Some(n), reply: None }
    } else {
        Receipt::default()
    }
}

/// What a reply answered: the fields of the received message that the rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Question {
    state: i32,
    leader: i64,
    zxid: i64,
    election_epoch: i64,
    peer_epoch: i64,
}

/// Sends a reply to a peer at most once per `interval` when both the message it answers and the
/// reply itself are the same as last time (see the module doc). Owned by the receiving thread.
#[derive(Debug)]
pub struct ReplyThrottle {
    interval_ms: u64,
    last: HashMap<i64, (Question, ToSend, u64)>,
    suppressed: u64,
}

impl ReplyThrottle {
    /// `interval_ms`: the notification interval (`minNotificationInterval`).
    pub fn new(interval_ms: u64) -> ReplyThrottle {
        ReplyThrottle { interval_ms, last: HashMap::new(), suppressed: 0 }
    }

    /// Whether `reply` to message `w` from `sid` goes out at `now_ms` (any monotonic clock).
    pub fn admit(&mut self, sid: i64, w: &WireNotification, reply: &ToSend, now_ms: u64) -> bool {
        let q = Question {
            state: w.state,
            leader: w.leader,
            zxid: w.zxid,
            election_epoch: w.election_epoch,
            peer_epoch: w.peer_epoch,
        };
        if let Some((lq, lr, at)) = self.last.get(&sid)
            && *lq == q
            && lr == reply
            && now_ms.saturating_sub(*at) < self.interval_ms
        {
            self.suppressed += 1;
            return false;
        }
        self.last.insert(sid, (q, *reply, now_ms));
        true
    }

    /// Replies held back so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}
