//! A node that decided for a leader which then turns out not to lead (a same-round disagreement,
//! seen in 51-node launches) gives that decision up as soon as the votes show it, instead of
//! waiting out initLimit as ZooKeeper does. One real node; the other two are played by
//! in-process `QuorumCnxManager`s sending hand-made notifications. initLimit is 300 ticks of
//! 100 ms, so the ZooKeeper behaviour would hold the node for 30 s; zkelect gives up in about a
//! tenth of a second. The tests only tell the two apart (half of initLimit is the bound) and
//! leave timing goals to the benchmark.

mod common;

use common::cluster::Cluster;
use common::scripted_peer::{ScriptedPeer, until_logged};
use std::time::{Duration, Instant};
use zkelect::election::ServerState;

#[test]
fn follower_gives_up_a_leader_whose_vote_moved_on() {
    let mut c = Cluster::new(3, 0, "initLimit=300\n");
    let (f2, f3) = (ScriptedPeer::new(&c, 2), ScriptedPeer::new(&c, 3));
    c.start(1);
    // 3 says it leads and 2 follows it: node 1 decides for 3 and dials 3's (closed) quorum port.
    until_logged(&c, 1, "Decided: FOLLOWING leader 3", || {
        f3.vote(1, ServerState::Leading, 3, 0);
        f2.vote(1, ServerState::Following, 3, 0);
    });
    // Then 3's own vote moves to 2 in the same round: 3 cannot lead that round any more.
    let t = Instant::now();
    until_logged(&c, 1, "giving up, leader 3 is LOOKING for 2 in round 0x1", || {
        f3.vote(1, ServerState::Looking, 2, 5);
    });
    let took = t.elapsed();
    println!("node 1 gave up its leader after {took:?}");
    assert!(took < Duration::from_secs(15), "gave up only after {took:?} (initLimit is 30 s)");
    let log = c.log(1);
    let after = &log[log.find("giving up, leader 3").expect("line")..];
    assert!(after.contains("PeerState set to LOOKING"), "node 1 did not go back to LOOKING:\n{after}");
}

#[test]
fn leader_gives_up_when_a_quorum_settled_on_another() {
    let mut c = Cluster::new(3, 0, "initLimit=300\n");
    let (f1, f2) = (ScriptedPeer::new(&c, 1), ScriptedPeer::new(&c, 2));
    c.start(3);
    // Both others vote for 3: it decides LEADING and waits for its followers.
    until_logged(&c, 3, "Peer state changed: leading - discovery", || {
        f1.vote(3, ServerState::Looking, 3, 0);
        f2.vote(3, ServerState::Looking, 3, 0);
    });
    // Then both settle on 2 instead: no quorum is left that could follow 3.
    let t = Instant::now();
    until_logged(&c, 3, "No quorum left to follow us", || {
        f2.vote(3, ServerState::Leading, 2, 0);
        f1.vote(3, ServerState::Following, 2, 0);
    });
    let took = t.elapsed();
    println!("node 3 gave up leading after {took:?}");
    assert!(took < Duration::from_secs(15), "gave up only after {took:?} (initLimit is 30 s)");
    assert!(c.log(3).contains("voters [1, 2] follow another leader"), "{}", c.log(3));
}
