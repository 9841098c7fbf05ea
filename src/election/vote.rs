//! `Vote`, `Notification`, `ToSend` and the pure rules over them: `totalOrderPredicate`,
//! `Vote.equals`, the vote tracker and `checkLeader` (`FastLeaderElection`, `quorum.Vote`).

use crate::config::QuorumVerifier;
use std::collections::HashMap;
use std::fmt;

/// `QuorumPeer.ServerState`; the ordinal is what goes on the wire ([`ServerState::ordinal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerState {
    Looking = 0,
    Following = 1,
    Leading = 2,
    Observing = 3,
}

impl ServerState {
    pub fn from_i32(v: i32) -> Option<ServerState> {
        Some(match v {
            0 => ServerState::Looking,
            1 => ServerState::Following,
            2 => ServerState::Leading,
            3 => ServerState::Observing,
            _ => return None,
        })
    }
    /// The value in a notification.
    pub fn ordinal(self) -> i32 {
        self as i32
    }
    /// The upper-case name Java logs (`LOOKING`, …).
    pub fn name(self) -> &'static str {
        match self {
            ServerState::Looking => "LOOKING",
            ServerState::Following => "FOLLOWING",
            ServerState::Leading => "LEADING",
            ServerState::Observing => "OBSERVING",
        }
    }
    /// The lower-case name of `zk_peer_state` and "Peer state changed: …".
    pub fn lower(self) -> &'static str {
        match self {
            ServerState::Looking => "looking",
            ServerState::Following => "following",
            ServerState::Leading => "leading",
            ServerState::Observing => "observing",
        }
    }
}

impl fmt::Display for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A vote (`quorum.Vote`). `version` is the notification format it came from (0 or 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    pub version: i32,
    pub id: i64,
    pub zxid: i64,
    pub election_epoch: i64,
    pub peer_epoch: i64,
    pub state: ServerState,
}

impl Vote {
    pub fn new(id: i64, zxid: i64, election_epoch: i64, peer_epoch: i64) -> Vote {
        Vote { version: 0, id, zxid, election_epoch, peer_epoch, state: ServerState::Looking }
    }

    /// `Vote.equals`: a LOOKING side compares everything; two out-of-election votes compare only
    /// the leader (and the peer epoch when both or neither come from versioned messages), as
    /// ZOOKEEPER-1805/1732 settled it.
    pub fn matches(&self, other: &Vote) -> bool {
        if self.state == ServerState::Looking || other.state == ServerState::Looking {
            self.id == other.id
                && self.zxid == other.zxid
                && self.election_epoch == other.election_epoch
                && self.peer_epoch == other.peer_epoch
        } else if (self.version > 0) ^ (other.version > 0) {
            self.id == other.id
        } else {
            self.id == other.id && self.peer_epoch == other.peer_epoch
        }
    }
}

/// A received notification with the sender's sid (from the connection) attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub version: i32,
    pub leader: i64,
    pub zxid: i64,
    pub election_epoch: i64,
    pub state: ServerState,
    pub sid: i64,
    pub peer_epoch: i64,
    /// Version of the config text it carried, if any could be parsed.
    pub config_version: Option<i64>,
}

impl Notification {
    pub fn proposal(&self) -> Proposal {
        Proposal { leader: self.leader, zxid: self.zxid, peer_epoch: self.peer_epoch }
    }

    pub fn vote(&self) -> Vote {
        Vote {
            version: self.version,
            id: self.leader,
            zxid: self.zxid,
            election_epoch: self.election_epoch,
            peer_epoch: self.peer_epoch,
            state: self.state,
        }
    }
}

impl Vote {
    /// This vote sent to `sid` in `state`, as round `election_epoch`.
    pub fn to_send(&self, sid: i64, state: ServerState, election_epoch: i64) -> ToSend {
        ToSend { leader: self.id, zxid: self.zxid, election_epoch, state, sid, peer_epoch: self.peer_epoch }
    }
}

/// An outgoing notification (`FastLeaderElection.ToSend`); the config text is added on encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToSend {
    pub leader: i64,
    pub zxid: i64,
    pub election_epoch: i64,
    pub state: ServerState,
    pub sid: i64,
    pub peer_epoch: i64,
}

/// What a vote proposes: a leader with its last zxid and epoch (the fields `totalOrderPredicate`
/// compares).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    pub leader: i64,
    pub zxid: i64,
    pub peer_epoch: i64,
}

impl Proposal {
    /// An observer's initial vote: `Long.MIN_VALUE` everywhere, below every real proposal.
    pub const NONE: Proposal = Proposal { leader: i64::MIN, zxid: i64::MIN, peer_epoch: i64::MIN };
}

/// `totalOrderPredicate`: does `new` beat `cur`? Higher peer epoch, then higher zxid, then higher
/// sid; a server of weight zero never wins.
pub fn total_order_predicate(qv: &QuorumVerifier, new: Proposal, cur: Proposal) -> bool {
    if qv.weight(new.leader) == 0 {
        return false;
    }
    new.peer_epoch > cur.peer_epoch
        || (new.peer_epoch == cur.peer_epoch
            && (new.zxid > cur.zxid || (new.zxid == cur.zxid && new.leader > cur.leader)))
}

/// `getVoteTracker(...).hasAllQuorums()`: do the senders whose vote matches `target` form a quorum?
pub fn has_quorum(qv: &QuorumVerifier, votes: &HashMap<i64, Vote>, target: &Vote) -> bool {
    qv.contains_quorum(votes.iter().filter(|(_, v)| target.matches(v)).map(|(sid, _)| *sid))
}

/// `checkLeader`: another leader must itself say LEADING in `votes`; we may only elect ourselves
/// in the round we are in (FLEBackwardElectionRoundTest).
pub fn check_leader(
    votes: &HashMap<i64, Vote>,
    leader: i64,
    election_epoch: i64,
    my_id: i64,
    logicalclock: i64,
) -> bool {
    if leader != my_id {
        votes.get(&leader).is_some_and(|v| v.state == ServerState::Leading)
    } else {
        logicalclock == election_epoch
    }
}
