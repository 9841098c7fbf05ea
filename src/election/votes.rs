//! What the votes received from the other servers say about a leadership, as pure functions: the
//! peer sessions use them to give up a decision the votes have overtaken, and a follower of a
//! ZooKeeper leader uses them to re-confirm its leader through the election.

use super::vote::{Notification, ServerState, Vote, check_leader, has_quorum};
use crate::config::QuorumVerifier;
use std::collections::HashMap;
use std::fmt;

/// The latest notification received from each server (the messenger's vote board).
pub type LatestVotes = HashMap<i64, Notification>;

/// Why a decided leader will not lead: its own latest vote is for another server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MovedOn {
    pub leader: i64,
    pub state: ServerState,
    pub voting_for: i64,
    pub round: i64,
}

impl fmt::Display for MovedOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "leader {} is {} for {} in round 0x{:x}", self.leader, self.state, self.voting_for, self.round)
    }
}

/// Whether `leader` will not lead the round we decided in, going by its own latest notification:
/// it proposes or follows another server in that round or a later one. Within a round a vote only
/// ever moves up the total order, so such a leader cannot come back to itself; waiting initLimit
/// ticks for its quorum port (ZooKeeper's way after a same-round disagreement) is time lost.
pub fn leader_moved_on(votes: &LatestVotes, leader: i64, round: i64) -> Option<MovedOn> {
    let v = votes.get(&leader)?;
    (v.election_epoch >= round && v.leader != leader).then_some(MovedOn {
        leader,
        state: v.state,
        voting_for: v.leader,
        round: v.election_epoch,
    })
}

/// Whether `leader`'s own latest notification says it is LEADING.
pub fn leader_known_leading(votes: &LatestVotes, leader: i64) -> bool {
    votes.get(&leader).is_some_and(|v| v.leader == leader && v.state == ServerState::Leading)
}

/// Voters whose latest notification says they settled on a leader other than `me` in `round` or
/// later: they will not join us unless that leader fails first. Sorted.
pub fn settled_elsewhere(votes: &LatestVotes, qv: &QuorumVerifier, me: i64, round: i64) -> Vec<i64> {
    let mut sids: Vec<i64> = votes
        .iter()
        .filter(|(sid, v)| {
            qv.is_voter(**sid)
                && v.leader != me
                && v.election_epoch >= round
                && matches!(v.state, ServerState::Following | ServerState::Leading)
        })
        .map(|(sid, _)| *sid)
        .collect();
    sids.sort_unstable();
    sids
}

/// Whether the voters not in `elsewhere` (the leader among them) can still form a quorum.
pub fn quorum_left(qv: &QuorumVerifier, elsewhere: &[i64]) -> bool {
    qv.contains_quorum(qv.voters().filter(|v| !elsewhere.contains(v)))
}

/// Election-only confirmation: the settled votes received in one window (`votes`, by sender)
/// confirm `leader` when the leader itself says LEADING and, counting our own vote for it, a
/// quorum names it (`checkLeader` plus the vote tracker, as a latecomer's out-of-election path).
/// Returns the leader's epoch, which we take on.
pub fn confirms_leader(qv: &QuorumVerifier, votes: &HashMap<i64, Vote>, leader: i64, me: i64) -> Option<i64> {
    let lv = votes.get(&leader).copied().filter(|v| v.state == ServerState::Leading)?;
    let target = Vote { state: ServerState::Following, ..lv };
    let mut with_me = votes.clone();
    with_me.insert(me, target);
    (has_quorum(qv, &with_me, &target) && check_leader(&with_me, leader, lv.election_epoch, me, 0))
        .then_some(lv.peer_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QuorumPeerConfig;

    fn qv(voters: i64) -> QuorumVerifier {
        let mut text = String::from("tickTime=100\ninitLimit=5\nsyncLimit=2\ndataDir=/x\n");
        for s in 1..=voters {
            text.push_str(&format!("server.{s}=127.0.0.1:{}:{}\n", 2000 + s, 3000 + s));
        }
        text.push_str(&format!("server.{}=127.0.0.1:2999:3999:observer\n", voters + 1));
        QuorumPeerConfig::parse(&text, "t").expect("config").quorum_verifier
    }

    fn n(sid: i64, state: ServerState, leader: i64, round: i64, epoch: i64) -> Notification {
        Notification {
            version: 2,
            leader,
            zxid: 0,
            election_epoch: round,
            state,
            sid,
            peer_epoch: epoch,
            config_version: None,
        }
    }

    fn board(ns: &[Notification]) -> LatestVotes {
        ns.iter().map(|n| (n.sid, n.clone())).collect()
    }

    #[test]
    fn a_leader_voting_for_another_in_our_round_or_later_has_moved_on() {
        let votes = board(&[n(3, ServerState::Looking, 5, 4, 0), n(5, ServerState::Leading, 5, 4, 1)]);
        let moved = leader_moved_on(&votes, 3, 4).expect("3 votes for 5 in round 4");
        assert_eq!((moved.voting_for, moved.state, moved.round), (5, ServerState::Looking, 4));
        assert_eq!(moved.to_string(), "leader 3 is LOOKING for 5 in round 0x4");
        assert_eq!(leader_moved_on(&votes, 3, 5), None, "an older round says nothing");
        assert_eq!(leader_moved_on(&votes, 5, 4), None, "votes for itself");
        assert_eq!(leader_moved_on(&votes, 2, 4), None, "nothing heard");
        assert!(leader_known_leading(&votes, 5));
        assert!(!leader_known_leading(&votes, 3));
    }

    #[test]
    fn settled_elsewhere_counts_only_voters_settled_in_the_round() {
        let q = qv(5);
        let votes = board(&[
            n(2, ServerState::Following, 4, 3, 1),
            n(3, ServerState::Leading, 3, 3, 1),
            n(4, ServerState::Following, 1, 3, 1),
            n(5, ServerState::Following, 4, 2, 1),
            n(6, ServerState::Observing, 4, 3, 1),
        ]);
        assert_eq!(settled_elsewhere(&votes, &q, 1, 3), vec![2, 3]);
        assert!(quorum_left(&q, &[2, 3]), "1, 4 and 5 are three of five");
        assert!(!quorum_left(&q, &[2, 3, 4]));
    }

    #[test]
    fn a_leader_is_confirmed_by_itself_and_a_quorum_with_us() {
        let q = qv(3);
        let lead = n(3, ServerState::Leading, 3, 2, 7).vote();
        let follow = n(2, ServerState::Following, 3, 2, 7).vote();
        let votes: HashMap<i64, Vote> = [(3, lead)].into();
        assert_eq!(confirms_leader(&q, &votes, 3, 1), Some(7), "leader + us are two of three");
        let only_follower: HashMap<i64, Vote> = [(2, follow)].into();
        assert_eq!(confirms_leader(&q, &only_follower, 3, 1), None, "the leader must say LEADING itself");
        let other_epoch = n(2, ServerState::Following, 3, 2, 6).vote();
        let q5 = qv(5);
        let votes: HashMap<i64, Vote> = [(3, lead), (2, other_epoch)].into();
        assert_eq!(confirms_leader(&q5, &votes, 3, 1), None, "a follower of another epoch does not count");
        let votes: HashMap<i64, Vote> = [(3, lead), (2, follow)].into();
        assert_eq!(confirms_leader(&q5, &votes, 3, 1), Some(7));
    }
}
