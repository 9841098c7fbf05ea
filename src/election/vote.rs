//! `Vote`, `Notification`, `ToSend` and the pure rules over them: `totalOrderPredicate`,
//! `Vote.equals`, the vote tracker and `checkLeader` (spec §2.5/§2.6).

use crate::config::QuorumVerifier;
use crate::wire::notification::ServerState;
use std::collections::HashMap;

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

/// `totalOrderPredicate`: does (id, zxid, epoch) beat the current proposal? Higher peer epoch,
/// then higher zxid, then higher sid; a server of weight zero never wins.
pub fn total_order_predicate(qv: &QuorumVerifier, new: (i64, i64, i64), cur: (i64, i64, i64)) -> bool {
    let (new_id, new_zxid, new_epoch) = new;
    let (cur_id, cur_zxid, cur_epoch) = cur;
    if qv.weight(new_id) == 0 {
        return false;
    }
    new_epoch > cur_epoch
        || (new_epoch == cur_epoch && (new_zxid > cur_zxid || (new_zxid == cur_zxid && new_id > cur_id)))
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
