//! The `WorkerReceiver` reply rules as a pure function, shared by the messenger thread and the
//! simulation.

use super::vote::{Notification, ServerState, ToSend, Vote};
use crate::config::QuorumVerifier;
use crate::wire::notification::WireNotification;

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
    /// Following a leader we cannot hold a session with (a ZooKeeper server): settled votes from
    /// voters are handed to the peer loop, which re-confirms the leader with them.
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
        // A non-voter (observer, or a server we do not count) gets our current vote right away.
        let reply = view.current_vote.to_send(sid, view.state, view.logicalclock);
        return Receipt { forward: None, reply: Some(reply) };
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
        let c = view.current_vote;
        Receipt { forward: None, reply: Some(c.to_send(sid, view.state, c.election_epoch)) }
    } else if view.confirming {
        Receipt { forward: Some(n), reply: None }
    } else {
        Receipt::default()
    }
}
