//! A zkelect voter in a ZooKeeper ensemble costs it fault tolerance (ZooKeeper counts the vote,
//! but the node never acknowledges a transaction): it says so once, with the fix; a zkelect
//! observer does not. And `zkelect status` reads such a mixed ensemble. Tier `interop` (Debian's
//! Apache ZooKeeper 3.8); the scenarios run one at a time, JVMs being heavy.

mod common;

use common::cluster::Cluster;
use common::daemon::BIN;
use common::tier::{self, Tier};
use common::wait_for;
use parking_lot::Mutex;
use std::process::Command;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());
const T: Duration = Duration::from_secs(40);
const TICK: &str = "tickTime=200\n";
const WARNING: &str = "This zkelect node is a voter in a ZooKeeper ensemble";

fn confirmed(c: &Cluster, sid: i64, leader: i64) {
    let line = format!("Leader {leader} confirmed through the election in epoch");
    wait_for(T, &format!("node {sid} to confirm ZooKeeper leader {leader}"), || {
        c.log(sid).contains(&line).then_some(())
    });
}

/// Lets a few re-confirmations (every syncLimit ticks: 1 s here) pass.
fn a_few_confirmations() {
    std::thread::sleep(Duration::from_secs(3));
}

fn status(c: &Cluster, sids: &[i64]) -> (Option<i32>, String) {
    let addrs: Vec<String> = sids.iter().map(|s| format!("127.0.0.1:{}", c.ports[s].2)).collect();
    let out = Command::new(BIN).arg("status").args(&addrs).output().expect("status");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn a_zkelect_voter_following_zookeeper_warns_once() {
    if !tier::enabled(Tier::Interop) {
        return;
    }
    let _turn = SERIAL.lock();
    let mut c = Cluster::mixed(3, &[2, 3], false, TICK);
    c.start_all();
    confirmed(&c, 1, 3);
    a_few_confirmations();
    let log = c.log(1);
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(WARNING)).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    let w = warnings[0];
    assert!(w.contains(" WARN "), "{w}");
    for part in [
        "cannot acknowledge ZooKeeper's transactions",
        "peerType=observer",
        ":observer at the end of its server.1 line",
    ] {
        assert!(w.contains(part), "{part:?} not in {w}");
    }

    // `zkelect status` on the mixed ensemble: the zkelect node names the leader; the ZooKeeper
    // servers do not know `elec`.
    let (code, out) = status(&c, &[1, 2, 3]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("follower of server 3, epoch") && out.contains("session election-only — in quorum"), "{out}");
    assert!(out.contains(": leader — in quorum") && out.contains("ensemble: leader is server 3 (epoch"), "{out}");
    let (code, out) = status(&c, &[3]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("  no per-peer view: the node does not answer elec (a ZooKeeper server?)"), "{out}");
}

#[test]
fn a_zkelect_observer_of_zookeeper_does_not_warn() {
    if !tier::enabled(Tier::Interop) {
        return;
    }
    let _turn = SERIAL.lock();
    let mut c = Cluster::new(3, 1, TICK).with_zookeeper(&[1, 2, 3]);
    c.start_all();
    confirmed(&c, 4, 3);
    a_few_confirmations();
    let log = c.log(4);
    assert!(log.contains("Peer state changed: observing - election-only (leader 3"), "{log}");
    assert!(!log.contains(WARNING), "{log}");
}
