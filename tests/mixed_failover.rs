//! A zkelect node in a ZooKeeper ensemble notices a dead ZooKeeper leader as fast as ZooKeeper's
//! own followers do. Measured on the election port, as the ensemble shows itself to a peer: an
//! extra observer, played by the test, asks every survivor for its vote every 10 ms. Each run
//! first measures three ZooKeeper servers, then the two mixed ensembles, with the ZooKeeper
//! servers started first so that one of them leads; the survivors must agree on a new leader
//! within max(2 × the all-ZooKeeper time, 1 s). A leader that is only paused for less than
//! syncLimit ticks must not send a zkelect follower LOOKING. A zkelect observer of a ZooKeeper
//! ensemble leaves a dead leader as promptly.

mod common;

use common::cluster::Cluster;
use common::scripted_peer::ScriptedPeer;
use common::tier::{self, Tier};
use common::wait_for;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use zkelect::election::ServerState;
use zkelect::wire::notification;

const T: Duration = Duration::from_secs(60);
/// tickTime 200 and syncLimit 5: the confirmation window is 1 s.
const CONFIG: &str = "tickTime=200\n";

/// The test's own observer on the election port, asking every node where it stands.
struct Poller {
    peer: ScriptedPeer,
    round: i64,
    /// (state, leader) each node last answered.
    votes: BTreeMap<i64, (ServerState, i64)>,
}

impl Poller {
    fn new(c: &Cluster, sid: i64) -> Poller {
        Poller { peer: ScriptedPeer::new(c, sid), round: 0, votes: BTreeMap::new() }
    }

    /// Asks `sids` (a new round each time, so nothing holds the answer back) and records answers.
    fn poll(&mut self, sids: &[i64]) {
        self.round += 1;
        for s in sids {
            self.peer.send(*s, ServerState::Looking, i64::MIN, self.round, i64::MIN);
        }
        let end = Instant::now() + Duration::from_millis(10);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Some(msg) = self.peer.m.poll_recv_queue(left) else { continue };
            if let Ok(w) = notification::decode(&msg.buffer)
                && let Some(state) = ServerState::from_i32(w.state)
            {
                self.votes.insert(msg.sid, (state, w.leader));
            }
        }
    }

    /// The leader every one of `sids` follows or is, if they agree (and it is not `except`).
    fn agreed(&self, sids: &[i64], except: i64) -> Option<i64> {
        let leader = self.votes.get(&sids[0])?.1;
        let all = sids.iter().all(|s| {
            self.votes
                .get(s)
                .is_some_and(|(st, l)| *l == leader && matches!(st, ServerState::Following | ServerState::Leading))
        });
        (all && leader != except).then_some(leader)
    }

    /// Polls until `sids` agree on a leader other than `except`; returns it and when.
    fn until_agreed(&mut self, sids: &[i64], except: i64) -> (i64, Instant) {
        self.votes.clear();
        wait_for(T, &format!("{sids:?} to agree on a leader other than {except}"), || {
            self.poll(sids);
            self.agreed(sids, except).map(|l| (l, Instant::now()))
        })
    }
}

/// Three voters (ZooKeeper runs `zookeeper`, zkelect the rest) and the test's observer 4. Starts
/// the ZooKeeper servers first, then the zkelect ones, and waits until all follow leader 3.
fn ensemble(zookeeper: &[i64]) -> (Cluster, Poller) {
    let mut all = zookeeper.to_vec();
    all.push(4);
    let mut c = Cluster::new(3, 1, CONFIG).with_zookeeper(zookeeper);
    let mut poller = Poller::new(&c, 4);
    for s in zookeeper {
        c.start(*s);
    }
    if zookeeper.len() >= 2 {
        poller.until_agreed(zookeeper, 0);
    } else {
        // A lone ZooKeeper server: electing, its election port open, before the others start.
        let (_, e, _) = c.ports[&zookeeper[0]];
        wait_for(T, "the ZooKeeper server LOOKING", || {
            (c.log(zookeeper[0]).contains("LOOKING") && std::net::TcpStream::connect(("127.0.0.1", e)).is_ok())
                .then_some(())
        });
    }
    for s in (1..=3).filter(|s| !zookeeper.contains(s)) {
        c.start(s);
    }
    let (leader, _) = poller.until_agreed(&[1, 2, 3], 0);
    assert_eq!(leader, 3, "a ZooKeeper server with the highest sid leads");
    // The zkelect nodes follow it in election-only mode once they have confirmed it.
    for s in (1..=3).filter(|s| !zookeeper.contains(s)) {
        wait_for(T, &format!("node {s} confirmed leader 3"), || {
            c.log(s).contains("Leader 3 confirmed through the election").then_some(())
        });
    }
    (c, poller)
}

/// kill -9 of leader 3; how long until 1 and 2 agree on another leader.
fn failover(c: &mut Cluster, poller: &mut Poller) -> Duration {
    let killed = Instant::now();
    c.kill(3);
    let (_, agreed) = poller.until_agreed(&[1, 2], 3);
    agreed - killed
}

#[test]
fn zkelect_followers_notice_a_dead_zookeeper_leader_as_fast_as_zookeeper() {
    if !tier::enabled(Tier::Interop) {
        return;
    }
    let (mut c, mut p) = ensemble(&[1, 2, 3]);
    let zookeeper = failover(&mut c, &mut p);
    drop((c, p));
    let bound = (2 * zookeeper).max(Duration::from_secs(1));
    for zk in [&[2, 3][..], &[3][..]] {
        let (mut c, mut p) = ensemble(zk);
        let took = failover(&mut c, &mut p);
        println!("ZooKeeper servers {zk:?}: survivors agree {took:?} after the kill (three ZooKeeper: {zookeeper:?})");
        assert!(
            took <= bound,
            "ZooKeeper {zk:?} + zkelect: {took:?} > {bound:?} (three ZooKeeper servers: {zookeeper:?})"
        );
        // Not by waiting out the confirmation window (1 s), ZooKeeper's followers' way being faster.
        for s in (1..=2).filter(|s| !zk.contains(s)) {
            let log = c.log(s);
            let gave_up = log.lines().rev().find(|l| l.contains("Leader 3 ") && l.contains("going LOOKING"));
            assert!(gave_up.is_some_and(|l| !l.contains("within 1000 ms")), "node {s}:\n{log}");
        }
    }
}

#[test]
fn a_paused_zookeeper_leader_does_not_send_zkelect_looking() {
    if !tier::enabled(Tier::Interop) {
        return;
    }
    let (c, _p) = ensemble(&[2, 3]);
    wait_for(T, "node 1 confirmed the leader", || {
        c.log(1).contains("Leader 3 confirmed through the election").then_some(())
    });
    let from = c.log_len(1);
    // Half the confirmation window (syncLimit 5 × tickTime 200).
    c.signal(3, "STOP");
    std::thread::sleep(Duration::from_millis(500));
    c.signal(3, "CONT");
    // Two more windows: node 1 keeps following.
    std::thread::sleep(Duration::from_secs(2));
    let after = &c.log(1)[from..];
    assert!(!after.contains("going LOOKING"), "node 1 gave up a leader that was only paused:\n{after}");
    assert_eq!(c.times_looking(1, from), 0);
}

/// The same for a zkelect observer of three ZooKeeper voters: after kill -9 of their leader it
/// observes the new one as soon as the survivors have it, not when its confirmation window ends.
#[test]
fn a_zkelect_observer_notices_a_dead_zookeeper_leader_at_once() {
    if !tier::enabled(Tier::Interop) {
        return;
    }
    // Observer 4 is the test's poller, observer 5 the zkelect node.
    let mut c = Cluster::new(3, 2, CONFIG).with_zookeeper(&[1, 2, 3]);
    let mut p = Poller::new(&c, 4);
    for s in 1..=3 {
        c.start(s);
    }
    let (leader, _) = p.until_agreed(&[1, 2, 3], 0);
    assert_eq!(leader, 3, "the ZooKeeper server with the highest sid leads");
    c.start(5);
    wait_for(T, "observer 5 confirmed leader 3", || {
        c.log(5).contains("Leader 3 confirmed through the election").then_some(())
    });
    let from = c.log_len(5);
    let killed = Instant::now();
    c.kill(3);
    let (next, agreed) = p.until_agreed(&[1, 2], 3);
    let observed = wait_for(T, &format!("observer 5 observing leader {next}"), || {
        p.poll(&[5]);
        matches!(p.votes.get(&5), Some((ServerState::Observing, l)) if *l == next).then(Instant::now)
    });
    println!(
        "survivors agree {:?} after the kill; observer 5 observes their leader {:?} after it",
        agreed - killed,
        observed - killed
    );
    let log = c.log(5)[from..].to_string();
    let gave_up = log.lines().find(|l| l.contains("Leader 3 ") && l.contains("going LOOKING"));
    assert!(gave_up.is_some_and(|l| !l.contains("within 1000 ms")), "observer 5 waited out its window:\n{log}");
}
