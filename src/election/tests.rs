//! Unit tests of the election rules and equivalents of ZooKeeper's FLE*Test scenarios.

use super::vote::ServerState::*;
use super::*;
use crate::config::QuorumPeerConfig;
use crate::wire::notification::{Layout, WireNotification};
use std::collections::HashMap;
use std::sync::Arc;

fn qv(servers: &str) -> Arc<crate::config::QuorumVerifier> {
    let text = format!("tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=/d\nstandaloneEnabled=false\n{servers}");
    Arc::new(QuorumPeerConfig::parse(&text, "t").expect("config").quorum_verifier)
}

fn maj(ids: &[i64]) -> Arc<crate::config::QuorumVerifier> {
    qv(&ids.iter().map(|i| format!("server.{i}=127.0.0.1:{}:{}\n", 2000 + i, 3000 + i)).collect::<String>())
}

fn n(sid: i64, state: super::vote::ServerState, leader: i64, zxid: i64, round: i64, peer_epoch: i64) -> Notification {
    Notification { version: 2, leader, zxid, election_epoch: round, state, sid, peer_epoch, config_version: Some(0) }
}

/// A proposal (leader, zxid, peer epoch), in `totalOrderPredicate`'s argument order.
fn p(leader: i64, zxid: i64, peer_epoch: i64) -> Proposal {
    Proposal { leader, zxid, peer_epoch }
}

fn sends(actions: &[Action]) -> Vec<ToSend> {
    actions.iter().filter_map(|a| if let Action::Send(t) = a { Some(*t) } else { None }).collect()
}

/// FLEPredicateTest.testPredicate.
#[test]
fn predicate() {
    let q = maj(&[0, 1, 2, 3, 4]);
    assert!(!total_order_predicate(&q, p(4, 0, 0), p(3, 0, 2)));
    assert!(total_order_predicate(&q, p(0, 0, 1), p(1, 0, 0)));
    assert!(total_order_predicate(&q, p(0, 1, 0), p(1, 0, 0)));
    assert!(total_order_predicate(&q, p(1, 1, 0), p(0, 1, 0)));
    assert!(!total_order_predicate(&q, p(1, 1, 0), p(1, 1, 0)), "equal is not better");
}

/// Vote.equals across versions (FLEOutOfElectionTest.testElectionWIthDifferentVersion).
#[test]
fn vote_equality_across_versions() {
    let v = |version, id, zxid, ee, pe, state| Vote { version, id, zxid, election_epoch: ee, peer_epoch: pe, state };
    let target = v(0, 4, 0, 1, 2, Following);
    assert!(target.matches(&v(1, 4, 9, 7, 1, Following)), "one versioned side: only the id counts");
    assert!(target.matches(&v(0, 4, 9, 7, 2, Leading)), "same version class: id and peerEpoch");
    assert!(!target.matches(&v(0, 4, 0, 1, 3, Following)));
    assert!(!v(0, 4, 0, 1, 2, Looking).matches(&v(0, 4, 0, 2, 2, Following)), "LOOKING compares rounds");
}

/// FLEOutOfElectionTest: quorum and checkLeader over out-of-election votes.
#[test]
fn out_of_election_votes() {
    let q = maj(&[0, 1, 2, 3, 4]);
    let mut votes = HashMap::new();
    let v = |version, id, zxid, ee, pe, state| Vote { version, id, zxid, election_epoch: ee, peer_epoch: pe, state };
    // testIgnoringZxidElectionEpoch
    votes.insert(0, v(2, 4, 1, 1, 1, Following));
    votes.insert(1, v(2, 4, 2, 1, 1, Following));
    votes.insert(4, v(2, 4, 3, 2, 1, Leading));
    assert!(has_quorum(&q, &votes, &v(2, 4, 3, 2, 1, Following)));
    assert!(check_leader(&votes, 4, 2, 3, 0xa));
    // testLookingDiffRounds
    let mut looking = HashMap::new();
    looking.insert(0, v(0, 4, 1, 1, 1, Looking));
    looking.insert(1, v(0, 4, 1, 2, 1, Looking));
    looking.insert(3, v(0, 4, 1, 3, 1, Looking));
    assert!(!has_quorum(&q, &looking, &v(0, 4, 1, 2, 1, Looking)));
    // checkLeader: the leader must say LEADING itself
    votes.insert(4, v(2, 4, 3, 2, 1, Following));
    assert!(!check_leader(&votes, 4, 2, 3, 0xa));
}

/// testOutofElection: 5 is not a voter of this configuration but leads the others' votes.
#[test]
fn out_of_election_with_non_voter_leader_votes() {
    let q = maj(&[1, 2, 3, 4]);
    let v = |version, id, pe, state| Vote { version, id, zxid: 0, election_epoch: 0xa, peer_epoch: pe, state };
    let mut votes = HashMap::new();
    votes.insert(1, v(0, 5, 0x17, Following));
    votes.insert(2, v(0, 5, 0x17, Following));
    votes.insert(4, v(1, 5, 0x18, Following));
    votes.insert(5, v(1, 5, 0x18, Leading));
    assert!(has_quorum(&q, &votes, &v(1, 5, 0x18, Following)));
    assert!(check_leader(&votes, 5, 0xa, 3, 0xa));
}

/// A quorum decided to follow 3 in round 1 while 3 itself was moved on to round 2 by a late
/// notification: 3 leads them instead of leaving them waiting initLimit (ZooKeeper's checkLeader
/// would not), but only while 3 is still its own best proposal.
#[test]
fn a_quorum_following_us_from_an_earlier_round_is_led() {
    let q = maj(&[1, 2, 3]);
    let mut f = FastLeaderElection::new(3, q.clone(), FleSettings::default());
    let mut out = Vec::new();
    f.start(0, 0, &mut out);
    // Node 1 gave up an earlier decision and is in round 2: 3 moves to round 2 with it.
    assert!(f.on_notification(&n(1, Looking, 2, 0, 2, 0), &mut out).is_none());
    assert_eq!(f.logicalclock(), 2);
    assert!(f.on_notification(&n(2, Following, 3, 0, 1, 0), &mut out).is_none(), "one follower is no quorum");
    let d = f.on_notification(&n(1, Following, 3, 0, 1, 0), &mut out).expect("led");
    assert_eq!((d.state, d.vote.id, d.vote.election_epoch), (Leading, 3, 1));
    // Someone with a better zxid makes 3 propose it: then 3 does not take the old followers.
    let mut f = FastLeaderElection::new(3, q, FleSettings::default());
    f.start(0, 0, &mut out);
    assert!(f.on_notification(&n(1, Looking, 1, 5, 2, 0), &mut out).is_none());
    assert_eq!(f.proposal().id, 1);
    assert!(f.on_notification(&n(2, Following, 3, 0, 1, 0), &mut out).is_none());
    assert!(f.on_notification(&n(1, Following, 3, 0, 1, 0), &mut out).is_none());
}

#[test]
fn zero_weight_never_wins_and_hierarchy_counts_groups() {
    let q = qv("server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\nserver.4=h:7:8\n\
                group.1=1:2:3\ngroup.2=4\nweight.4=0\n");
    assert!(!total_order_predicate(&q, p(4, 9, 9), p(1, 0, 0)), "weight 0 never beats anyone");
    assert!(total_order_predicate(&q, p(3, 0, 0), p(1, 0, 0)));
    assert!(q.contains_quorum([1, 2]), "majority of group 1, the only non-zero group");
    assert!(!q.contains_quorum([1, 4]));
}

/// A three-node exchange in memory: every Send is delivered at once, FIFO.
fn run_fresh(ids: &[i64], votes: &[(i64, i64)]) -> HashMap<i64, Decision> {
    run_steered(ids, votes, &vec![Steer::None; ids.len()])
}

fn run_steered(ids: &[i64], votes: &[(i64, i64)], steers: &[Steer]) -> HashMap<i64, Decision> {
    let q = maj(ids);
    let mut fles: HashMap<i64, FastLeaderElection> =
        ids.iter().map(|&i| (i, FastLeaderElection::new(i, q.clone(), FleSettings::default()))).collect();
    let mut queue = std::collections::VecDeque::new();
    for (k, &i) in ids.iter().enumerate() {
        let mut out = Vec::new();
        fles.get_mut(&i).unwrap().start_steered(votes[k].0, votes[k].1, steers[k], &mut out);
        queue.extend(sends(&out).into_iter().map(|t| (i, t)));
    }
    let mut decided = HashMap::new();
    while let Some((from, t)) = queue.pop_front() {
        let Some(f) = fles.get_mut(&t.sid) else {
            continue;
        };
        if decided.contains_key(&t.sid) {
            continue;
        }
        let mut out = Vec::new();
        let nt = n(from, t.state, t.leader, t.zxid, t.election_epoch, t.peer_epoch);
        if let Some(d) = f.on_notification(&nt, &mut out) {
            decided.insert(t.sid, d);
        }
        queue.extend(sends(&out).into_iter().map(|x| (t.sid, x)));
    }
    // Everyone left is finalizing: the timer fires.
    for (&i, f) in fles.iter_mut() {
        if let std::collections::hash_map::Entry::Vacant(e) = decided.entry(i)
            && let Some(d) = f.on_timeout(true, &mut Vec::new())
        {
            e.insert(d);
        }
    }
    decided
}

#[test]
fn fresh_ensemble_elects_highest_and_decides_at_once_when_all_agree() {
    let d = run_fresh(&[1, 2, 3], &[(0, 0), (0, 0), (0, 0)]);
    assert_eq!(d.len(), 3);
    assert!(d.values().all(|x| x.vote.id == 3));
    assert_eq!(d[&3].state, Leading);
    assert_eq!(d[&1].state, Following);
    // Highest epoch beats highest sid, and zxid beats sid.
    let d = run_fresh(&[1, 2, 3], &[(0, 1), (0x5, 0), (0, 0)]);
    assert!(d.values().all(|x| x.vote.id == 1));
    let d = run_fresh(&[1, 2, 3], &[(0, 0), (0x5, 0), (0, 0)]);
    assert!(d.values().all(|x| x.vote.id == 2));
}

#[test]
fn a_resigned_leader_is_not_elected_and_a_target_is() {
    use Steer::{Abstain, To};
    let none = Steer::None;
    let d = run_steered(&[1, 2, 3], &[(0, 4); 3], &[none, none, Abstain]);
    assert!(d.values().all(|x| x.vote.id == 2), "{d:?}");
    assert_eq!(d[&3].state, Following);
    let d = run_steered(&[1, 2, 3], &[(0, 4); 3], &[To(1); 3]);
    assert!(d.values().all(|x| x.vote.id == 1), "{d:?}");
    assert_eq!(d[&1].state, Leading);
    // One voter missed the resignation and proposes itself: the steered quorum still elects 2.
    let d = run_steered(&[1, 2, 3, 4, 5], &[(0, 4); 5], &[To(2), To(2), To(2), To(2), none]);
    for sid in 1..=4 {
        assert_eq!(d[&sid].vote.id, 2, "{d:?}");
    }
    // A target with a higher epoch than its own vote elsewhere is still the same leader.
    let d = run_steered(&[1, 2, 3], &[(0, 4), (0, 5), (0, 4)], &[To(2); 3]);
    assert!(d.values().all(|x| x.vote.id == 2 && x.vote.peer_epoch == 5), "{d:?}");
}

/// FLEBackwardElectionRoundTest: FOLLOWING votes for us from an older round must not make us lead.
#[test]
fn backward_election_round() {
    let q = maj(&[0, 1, 2]);
    let mut f = FastLeaderElection::new(0, q, FleSettings::default());
    let mut out = Vec::new();
    f.start(0, 0, &mut out);
    assert!(f.on_notification(&n(1, Following, 0, 0, 1, 1), &mut out).is_none());
    let d = f.on_notification(&n(2, Following, 0, 0, 1, 1), &mut out).expect("leads in round 1");
    assert_eq!(d.state, Leading);
    f.start(0, 0, &mut out);
    assert_eq!(f.logicalclock(), 2);
    assert!(f.on_notification(&n(1, Following, 0, 0, 1, 1), &mut out).is_none());
    assert!(f.on_notification(&n(2, Following, 0, 0, 1, 1), &mut out).is_none(), "stale round must not elect us");
}

/// FLELostMessageTest: a lower peer's LOOKING vote, then its FOLLOWING vote for us.
#[test]
fn lost_message() {
    let q = maj(&[0, 1, 2]);
    let mut f = FastLeaderElection::new(1, q, FleSettings::default());
    let mut out = Vec::new();
    f.start(0, 0, &mut out);
    assert!(f.on_notification(&n(1, Looking, 1, 0, 1, 0), &mut out).is_none());
    assert!(f.on_notification(&n(0, Looking, 0, 0, 1, 0), &mut out).is_none());
    let d = f.on_notification(&n(0, Following, 1, 0, 1, 0), &mut out).expect("decides");
    assert_eq!((d.state, d.vote.id), (Leading, 1));
}

/// FLERestartTest / FLETest.testJoin: a restarted node learns the leader from settled nodes.
#[test]
fn restart_joins_through_out_of_election() {
    let q = maj(&[1, 2, 3]);
    let mut f = FastLeaderElection::new(1, q, FleSettings::default());
    let mut out = Vec::new();
    f.start(0, 1, &mut out);
    // Settled nodes answer with their current vote: round 2, peerEpoch 2.
    assert!(f.on_notification(&n(2, Leading, 2, 0, 2, 2), &mut out).is_none(), "one vote is no quorum");
    let d = f.on_notification(&n(3, Following, 2, 0, 2, 2), &mut out).expect("joins");
    assert_eq!((d.state, d.vote.id, d.vote.peer_epoch, d.vote.election_epoch), (Following, 2, 2, 2));
    assert_eq!(f.logicalclock(), 2, "adopts the ensemble's round");
}

/// FLETest.testJoinInconsistentEnsemble: differing zxid/round in the settled votes still count.
#[test]
fn join_inconsistent_ensemble() {
    let q = maj(&[1, 2, 3]);
    let mut f = FastLeaderElection::new(1, q, FleSettings::default());
    let mut out = Vec::new();
    f.start(0, 0, &mut out);
    assert!(f.on_notification(&n(3, Leading, 3, 0, 1, 1), &mut out).is_none());
    assert!(f.on_notification(&n(2, Following, 3, 100, 101, 1), &mut out).is_some());
}

#[test]
fn observer_learns_leader_and_ends_observing() {
    let q = qv("server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\nserver.9=h:7:8:observer\n");
    let mut f = FastLeaderElection::new(9, q.clone(), FleSettings::default());
    let mut out = Vec::new();
    f.start(0, 0, &mut out);
    let to: Vec<i64> = sends(&out).iter().map(|t| t.sid).collect();
    assert_eq!(to, vec![1, 2, 3], "observers send to voters only, not to themselves");
    assert_eq!(f.proposal().id, i64::MIN);
    assert!(f.on_notification(&n(3, Leading, 3, 0, 1, 1), &mut out).is_none());
    let d = f.on_notification(&n(1, Following, 3, 0, 1, 1), &mut out).expect("decides");
    assert_eq!(d.state, Observing);
    // Voters ignore OBSERVING notifications.
    let mut v = FastLeaderElection::new(1, q, FleSettings::default());
    v.start(0, 0, &mut out);
    assert!(v.on_notification(&n(2, Observing, 3, 0, 1, 1), &mut out).is_none());
}

#[test]
fn timeout_backoff_resend_or_connect_all() {
    let q = maj(&[1, 2, 3]);
    let s = FleSettings { finalize_wait: 200, min_notification_interval: 200, max_notification_interval: 1000 };
    let mut f = FastLeaderElection::new(1, q, s);
    let mut out = Vec::new();
    f.start(0, 0, &mut out);
    assert_eq!(f.wait_ms(), 200);
    out.clear();
    f.on_timeout(false, &mut out);
    assert_eq!(out, vec![Action::ConnectAll]);
    assert_eq!(f.wait_ms(), 400);
    out.clear();
    f.on_timeout(true, &mut out);
    assert_eq!(sends(&out).len(), 3, "resend to every voter");
    f.on_timeout(true, &mut out);
    f.on_timeout(true, &mut out);
    assert_eq!(f.wait_ms(), 1000, "ceiling");
}

#[test]
fn finalize_wait_then_decide_and_better_vote_reopens() {
    let q = maj(&[1, 2, 3]);
    let mut f = FastLeaderElection::new(2, q, FleSettings::default());
    let mut out = Vec::new();
    f.start(0, 0, &mut out);
    assert!(f.on_notification(&n(2, Looking, 2, 0, 1, 0), &mut out).is_none());
    assert!(f.on_notification(&n(1, Looking, 2, 0, 1, 0), &mut out).is_none());
    assert_eq!(f.wait_ms(), 200, "quorum for 2 but 3 not heard: finalize wait");
    // A better vote during finalizeWait reopens the election.
    out.clear();
    assert!(f.on_notification(&n(3, Looking, 3, 0, 1, 0), &mut out).is_none());
    assert_eq!(f.proposal().id, 3);
    assert_eq!(sends(&out).len(), 3);
    assert!(f.on_notification(&n(1, Looking, 3, 0, 1, 0), &mut out).is_none());
    assert_eq!(f.wait_ms(), 200);
    let d = f.on_timeout(true, &mut out).expect("decides after the wait");
    assert_eq!((d.vote.id, d.state), (3, Following));
}

#[test]
fn peer_connected_gets_proposal_at_once() {
    let q = maj(&[1, 2, 3]);
    let mut f = FastLeaderElection::new(1, q, FleSettings::default());
    let mut out = Vec::new();
    f.on_peer_connected(2, &mut out);
    assert!(out.is_empty(), "nothing while idle");
    f.start(0, 0, &mut out);
    out.clear();
    f.on_peer_connected(2, &mut out);
    assert_eq!(
        sends(&out),
        vec![ToSend { leader: 1, zxid: 0, election_epoch: 1, state: Looking, sid: 2, peer_epoch: 0 }]
    );
}

fn wire(state: i32, leader: i64, round: i64) -> WireNotification {
    WireNotification {
        state,
        leader,
        zxid: 0,
        election_epoch: round,
        peer_epoch: 1,
        version: 2,
        config: None,
        layout: Layout::Versioned,
    }
}

#[test]
fn messenger_reply_rules() {
    let q = qv("server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\nserver.9=h:7:8:observer\n");
    let current = Vote { version: 0, id: 3, zxid: 0, election_epoch: 4, peer_epoch: 1, state: Following };
    let following = PeerView {
        my_id: 1,
        state: Following,
        current_vote: current,
        logicalclock: 4,
        proposal: current,
        confirming: false,
    };
    // Non-voter: current vote, our logicalclock, our state.
    let r = receive(&following, &q, 9, &wire(0, 9, 1), None);
    assert_eq!(r.reply.map(|t| (t.leader, t.election_epoch, t.state)), Some((3, 4, Following)));
    assert!(r.forward.is_none());
    // LOOKING voter while settled: current vote with its own election epoch.
    let r = receive(&following, &q, 2, &wire(0, 2, 7), None);
    assert_eq!(r.reply.map(|t| (t.leader, t.election_epoch, t.peer_epoch)), Some((3, 4, 1)));
    // Settled voter while settled: nothing.
    assert_eq!(receive(&following, &q, 2, &wire(1, 3, 4), None), Receipt::default());
    // Invalid state from a voter: dropped.
    assert_eq!(receive(&following, &q, 2, &wire(7, 3, 4), None), Receipt::default());
    // LOOKING: forward; answer an older round with our proposal.
    let proposal = Vote::new(3, 0, 5, 1);
    let looking =
        PeerView { my_id: 1, state: Looking, current_vote: current, logicalclock: 5, proposal, confirming: false };
    let r = receive(&looking, &q, 2, &wire(0, 2, 3), None);
    assert!(r.forward.is_some());
    assert_eq!(r.reply.map(|t| (t.leader, t.election_epoch, t.state)), Some((3, 5, Looking)));
    let r = receive(&looking, &q, 2, &wire(0, 2, 5), None);
    assert!(r.forward.is_some() && r.reply.is_none());
}

/// The livelock ZooKeeper's rules allow between a LOOKING voter and a settled observer, and the
/// two changes that end it from our side.
#[test]
fn a_looking_voter_and_a_settled_observer_do_not_answer_each_other_forever() {
    let q = qv("server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\nserver.9=h:7:8:observer\n");
    let init = Vote::new(1, 0, 1, 0);
    let looking =
        PeerView { my_id: 1, state: Looking, current_vote: init, logicalclock: 1, proposal: init, confirming: false };
    // A LOOKING non-voter is answered (how an observer finds the leader)...
    assert!(receive(&looking, &q, 9, &wire(0, i64::MIN, 1), None).reply.is_some());
    // ...a settled one is not: it only ever sends replies, and ignores what a LOOKING node says.
    for state in [1, 2, 3] {
        assert_eq!(receive(&looking, &q, 9, &wire(state, 3, 1), None), Receipt::default(), "state {state}");
    }
    // A settled node still answers a settled non-voter (no loop: the non-voter ignores it).
    let current = Vote { version: 0, id: 3, zxid: 0, election_epoch: 1, peer_epoch: 1, state: Following };
    let following = PeerView { state: Following, current_vote: current, proposal: current, ..looking };
    assert!(receive(&following, &q, 9, &wire(3, 3, 1), None).reply.is_some());
    // As the settled side: the same LOOKING notification answered with the same vote goes out at
    // most once per interval; a new vote, round or state always at once.
    let mut t = ReplyThrottle::new(200);
    let question = wire(0, 1, 1);
    let answer = receive(&following, &q, 1, &question, None).reply.expect("a LOOKING voter is answered");
    assert!(t.admit(1, &question, &answer, 1000));
    assert!(!t.admit(1, &question, &answer, 1001), "the same question, the same answer");
    assert!(!t.admit(1, &question, &answer, 1199));
    assert!(t.admit(1, &question, &answer, 1200), "once per interval");
    assert!(t.admit(1, &wire(0, 1, 2), &answer, 1201), "a new round is answered at once");
    let new_epoch = ToSend { peer_epoch: 2, ..answer };
    assert!(t.admit(1, &wire(0, 1, 2), &new_epoch, 1202), "a new answer goes out at once");
    assert!(t.admit(2, &wire(0, 1, 2), &new_epoch, 1203), "per peer");
    assert_eq!(t.suppressed(), 2);
}

/// A stale FOLLOWING vote for a dead, higher leader reopens finalizeWait (as in Java). The new
/// leader's LEADING reply that arrived during the wait is kept (Java drops it), so a follower's
/// FOLLOWING vote then decides at once instead of the round being lost.
#[test]
fn leading_reply_during_finalize_wait_is_kept() {
    let q = maj(&[1, 2, 3, 4, 5]);
    let mut f = FastLeaderElection::new(3, q, FleSettings::default());
    let mut out = Vec::new();
    f.start(0, 1, &mut out);
    let r = f.logicalclock();
    for (sid, leader) in [(3, 3), (2, 4), (4, 4), (3, 4)] {
        assert!(f.on_notification(&n(sid, Looking, leader, 0, r, 1), &mut out).is_none());
    }
    assert_eq!(f.wait_ms(), 200, "a quorum for 4: finalizing");
    assert!(f.on_notification(&n(4, Leading, 4, 0, r, 1), &mut out).is_none(), "no decision inside the wait");
    // The stale FOLLOWING vote for 5 (dead) beats 4 and reopens the election...
    assert!(f.on_notification(&n(1, Following, 5, 0, r - 1, 1), &mut out).is_none());
    // ...and 2 following 4 completes the quorum with 4's recorded LEADING vote.
    let d = f.on_notification(&n(2, Following, 4, 0, r, 1), &mut out);
    assert_eq!(d.map(|d| (d.state, d.vote.id)), Some((Following, 4)));
}

/// A voter whose connection just broke cannot send a better vote: once everyone else agrees the
/// finalizeWait is skipped, whether it was already down or goes down during the wait.
#[test]
fn absent_voter_does_not_hold_the_decision() {
    let q = maj(&[1, 2, 3]);
    let mut f = FastLeaderElection::new(2, q.clone(), FleSettings::default());
    let mut out = Vec::new();
    f.set_absent([3]);
    f.start(0, 1, &mut out);
    let r = f.logicalclock();
    assert!(f.on_notification(&n(2, Looking, 2, 0, r, 1), &mut out).is_none());
    let d = f.on_notification(&n(1, Looking, 2, 0, r, 1), &mut out).expect("3 is down: no wait");
    assert_eq!((d.state, d.vote.id), (Leading, 2));

    let mut f = FastLeaderElection::new(2, q, FleSettings::default());
    f.start(0, 1, &mut out);
    let r = f.logicalclock();
    assert!(f.on_notification(&n(2, Looking, 2, 0, r, 1), &mut out).is_none());
    assert!(f.on_notification(&n(1, Looking, 2, 0, r, 1), &mut out).is_none());
    assert_eq!(f.wait_ms(), 200, "3 might still answer: finalizeWait");
    let d = f.on_peer_down(3).expect("3 went down during the wait");
    assert_eq!(d.vote.id, 2);
    // A peer that comes back is waited for again.
    f.start(0, 1, &mut out);
    f.on_peer_connected(3, &mut out);
    let r = f.logicalclock();
    assert!(f.on_notification(&n(2, Looking, 2, 0, r, 1), &mut out).is_none());
    assert!(f.on_notification(&n(1, Looking, 2, 0, r, 1), &mut out).is_none());
    assert_eq!(f.wait_ms(), 200);
}

/// A stale FOLLOWING reply naming a leader whose connection is gone does not reopen finalizeWait.
#[test]
fn stale_vote_for_absent_leader_does_not_reopen() {
    let run = |absent: &[i64]| {
        let mut f = FastLeaderElection::new(2, maj(&[1, 2, 3, 4, 5]), FleSettings::default());
        let mut out = Vec::new();
        f.set_absent(absent.iter().copied());
        f.start(0, 1, &mut out);
        let r = f.logicalclock();
        for sid in [1, 2, 3] {
            assert!(f.on_notification(&n(sid, Looking, 3, 0, r, 1), &mut out).is_none());
        }
        assert!(f.is_finalizing(), "3 of 5 agree, 4 not heard");
        // 4 has not noticed that 5 died and answers with its old vote.
        assert!(f.on_notification(&n(4, Following, 5, 0, r - 1, 1), &mut out).is_none());
        f.is_finalizing()
    };
    assert!(run(&[5]), "5 is gone: the stale vote is ignored");
    assert!(!run(&[]), "as in Java, a better vote reopens the election");
}
