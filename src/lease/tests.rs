use super::*;
use crate::config::QuorumPeerConfig;
use proptest::prelude::*;

fn qv(voters: usize, observers: usize) -> QuorumVerifier {
    let mut text = String::from("tickTime=100\ninitLimit=5\nsyncLimit=2\ndataDir=/tmp\nstandaloneEnabled=false\n");
    for i in 1..=voters + observers {
        let role = if i > voters { ":observer" } else { "" };
        text.push_str(&format!("server.{i}=127.0.0.1:{}:{}{role}\n", 2000 + i, 3000 + i));
    }
    QuorumPeerConfig::parse(&text, "zoo.cfg").unwrap().quorum_verifier
}

const S: LeaseSettings = LeaseSettings {
    lease: Duration::from_millis(1000),
    drift_margin: Duration::from_millis(100),
    grace: Duration::from_millis(200),
};

fn at(ms: u64) -> Stamp {
    Stamp::from_nanos(ms * 1_000_000)
}

#[test]
fn the_lease_ends_a_lease_after_the_newest_round_a_quorum_answered() {
    let three = qv(3, 0);
    let mut l = LeaderLease::new(S, 1, None);
    assert_eq!(l.end(&three), None);
    l.round_sent(1, at(10));
    l.round_sent(2, at(20));
    l.answered(2, 1);
    assert_eq!(l.end(&three), Some(at(1010)));
    l.answered(3, 2);
    assert_eq!(l.end(&three), Some(at(1020)), "one more voter answering a newer round is a quorum with us");
    l.answered(2, 99);
    assert_eq!(l.end(&three), Some(at(1020)), "an answer to an unknown round counts for nothing");

    let five = qv(5, 0);
    let mut l = LeaderLease::new(S, 1, None);
    l.confirm(2, at(10));
    assert_eq!(l.end(&five), None, "two of five are no quorum");
    l.confirm(3, at(20));
    assert_eq!(l.end(&five), Some(at(1010)), "the quorum {{1,2,3}} answered what was sent at 10");
    l.confirm(4, at(30));
    assert_eq!(l.end(&five), Some(at(1020)));
}

#[test]
fn a_single_voter_is_its_own_quorum() {
    let one = qv(1, 1);
    let l = LeaderLease::new(S, 1, None);
    assert_eq!(l.state(&one, at(10)), LeaseState::Active { until: Stamp::from_nanos(u64::MAX) });
}

#[test]
fn observers_do_not_renew_a_lease() {
    let q = qv(3, 2);
    let mut l = LeaderLease::new(S, 1, None);
    l.confirm(4, at(50));
    l.confirm(5, at(50));
    assert_eq!(l.end(&q), None);
    l.confirm(2, at(10));
    assert_eq!(l.end(&q), Some(at(1010)));
}

#[test]
fn states_over_time() {
    let q = qv(3, 0);
    let mut l = LeaderLease::new(S, 1, Some(at(500)));
    l.confirm(2, at(100));
    assert_eq!(l.state(&q, at(200)), LeaseState::Waiting { until: at(500) });
    assert_eq!(l.state(&q, at(500)), LeaseState::Active { until: at(1100) });
    assert_eq!(l.state(&q, at(900)), LeaseState::Inactive, "grace before the end");
    l.confirm(3, at(800));
    assert_eq!(l.state(&q, at(900)), LeaseState::Active { until: at(1800) });
    l.release();
    assert_eq!(l.state(&q, at(900)), LeaseState::Inactive);
    assert_eq!(LeaseState::Waiting { until: at(1) }.as_str(), "waiting");
    assert!(LeaseState::Active { until: at(1) }.same_kind(LeaseState::Active { until: at(2) }));
}

#[test]
fn activation_waits_out_the_latest_report() {
    let reports = [LastLeader::Heard(at(100)), LastLeader::Released, LastLeader::Heard(at(300))];
    assert_eq!(activation_time(reports, &S), Some(at(1400)));
    assert_eq!(activation_time([LastLeader::Released, LastLeader::Released], &S), None);
}

#[test]
fn reports_round_trip() {
    let now = at(5000);
    assert_eq!(LastLeader::Heard(at(4000)).report(now), 1000);
    assert_eq!(LastLeader::Released.report(now), -1);
    assert_eq!(LastLeader::from_report(Some(1000), now), LastLeader::Heard(at(4000)));
    assert_eq!(LastLeader::from_report(Some(-1), now), LastLeader::Released);
    assert_eq!(LastLeader::from_report(None, now), LastLeader::Heard(now), "no report: heard just now");
    assert_eq!(LastLeader::from_report(Some(i64::MAX), now), LastLeader::Heard(Stamp::default()));
}

/// One old leader's history: when it sent each round, and for each learner, which rounds it
/// answered (each answer arrives after the round was sent) until it left for the new leader.
#[derive(Debug, Clone)]
struct History {
    voters: usize,
    sends: Vec<u64>,
    /// Per learner (sid 2..=voters): for each round, the delay of its receipt, or None if lost.
    delays: Vec<Vec<Option<u64>>>,
    /// Per learner: the round before which it left (reported to the new leader).
    leaves: Vec<usize>,
    new_quorum: Vec<bool>,
}

fn history() -> impl Strategy<Value = History> {
    (3usize..=7).prop_flat_map(|voters| {
        let rounds = 1usize..40;
        rounds.prop_flat_map(move |rounds| {
            (
                prop::collection::vec(1u64..300, rounds),
                prop::collection::vec(
                    prop::collection::vec(prop::option::weighted(0.8, 0u64..500), rounds),
                    voters - 1,
                ),
                prop::collection::vec(0..=rounds, voters - 1),
                prop::collection::vec(any::<bool>(), voters),
            )
                .prop_map(move |(gaps, delays, leaves, new_quorum)| {
                    let mut t = 0;
                    let sends = gaps
                        .into_iter()
                        .map(|g| {
                            t += g;
                            t
                        })
                        .collect();
                    History { voters, sends, delays, leaves, new_quorum }
                })
        })
    })
}

proptest! {
    /// Whatever the delays and losses, a new leader established by any quorum activates after
    /// the old leader's lease has ended (with the margin to spare), even when learners outside the
    /// new quorum keep answering the old leader.
    #[test]
    fn a_successor_never_activates_before_the_old_lease_ends(h in history()) {
        let q = qv(h.voters, 0);
        let mut old = LeaderLease::new(S, 1, None);
        let mut reports = Vec::new();
        for (i, delays) in h.delays.iter().enumerate() {
            let sid = i as i64 + 2;
            let in_new = h.new_quorum[i + 1];
            // Learners in the new quorum answer until they leave; the others forever.
            let last = if in_new { h.leaves[i] } else { h.sends.len() };
            let mut heard = Stamp::default();
            for (round, d) in delays.iter().enumerate().take(last) {
                if let Some(d) = d {
                    old.round_sent(round as u32, at(h.sends[round]));
                    old.answered(sid, round as u32);
                    heard = heard.max(at(h.sends[round] + d));
                }
            }
            if in_new {
                reports.push(LastLeader::Heard(heard));
            }
        }
        // The old leader itself in the new quorum: it heard itself at its last round.
        if h.new_quorum[0] {
            reports.push(LastLeader::Heard(at(*h.sends.last().unwrap())));
        }
        let members: Vec<i64> = (0..h.voters).filter(|i| h.new_quorum[*i]).map(|i| i as i64 + 1).collect();
        prop_assume!(q.contains_quorum(members));
        if let Some(end) = old.end(&q) {
            let activation = activation_time(reports, &S).expect("every member heard something");
            prop_assert!(activation >= end + S.drift_margin, "activation {activation} before end {end} + margin");
        }
    }
}
