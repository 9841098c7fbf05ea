//! The reply livelock between a LOOKING voter and a settled observer (ZooKeeper's rules have it:
//! the voter answers every message from a non-voter, the settled observer every LOOKING
//! notification from a voter). zkelect ends it from its side in both roles, also when the other
//! side is Debian's ZooKeeper 3.8, which keeps its own rules. Each test counts the notifications
//! one side sends in 2 s once the loop would be running: ZooKeeper's rules make that thousands.

mod common;

use common::cluster::Cluster;
use common::scripted_peer::ScriptedPeer;
use common::tier::{self, Tier};
use common::{ask, free_ports, wait_for};
use parking_lot::Mutex;
use std::process::Stdio;
use std::time::Duration;
use zkelect::election::ServerState::{Looking, Observing};

const T: Duration = Duration::from_secs(30);
/// A handful: a few answers per notification interval at most. The loop sends thousands.
const HANDFUL: u64 = 20;

/// Notifications node `sid` has sent (srvr's `Sent:`).
fn sent(c: &Cluster, sid: i64) -> u64 {
    let srvr = ask(c.ports[&sid].2, b"srvr");
    srvr.lines().find_map(|l| l.strip_prefix("Sent: ")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

/// How many notifications `sid` sends in 2 s.
fn sent_in_two_seconds(c: &Cluster, sid: i64) -> u64 {
    let before = sent(c, sid);
    std::thread::sleep(Duration::from_secs(2));
    sent(c, sid) - before
}

#[test]
fn a_looking_voter_does_not_answer_a_settled_observer() {
    let mut c = Cluster::new(3, 1, "");
    let observer = ScriptedPeer::new(&c, 4);
    c.start(1);
    wait_for(T, "node 1 LOOKING", || c.log(1).contains("LOOKING").then_some(()));
    observer.drain();
    // A LOOKING observer is answered: that is how an observer finds the leader.
    observer.send(1, Looking, i64::MIN, 1, i64::MIN);
    let answered = observer.answer_for(Duration::from_secs(1), 1, |_| None);
    assert_eq!(answered, 1, "node 1 must answer a LOOKING observer once");
    // Settled, the observer tells node 1 where it stands and, as ZooKeeper's observers do, answers
    // every LOOKING notification from a voter with its vote.
    observer.send(1, Observing, 3, 1, 1);
    let got = observer.answer_for(Duration::from_secs(2), 1, |w| (w.state == 0).then_some((Observing, 3, 1, 1)));
    assert!(got <= 2, "node 1 sent {got} notifications to the settled observer in 2 s");
    // The per-peer counts an operator reads a storm from: two received, each reply counted.
    let mntr = ask(c.ports[&1].2, b"mntr");
    assert!(mntr.contains("zk_notifications_received_from_4\t2\n"), "{mntr}");
    let replies = answered + got;
    assert!(mntr.contains(&format!("zk_notifications_sent_to_4\t{replies}\n")), "{replies} replies: {mntr}");
    let elec = ask(c.ports[&1].2, b"elec");
    let line = elec.lines().find(|l| l.trim_start().starts_with("4 (observer")).unwrap_or_else(|| panic!("{elec}"));
    assert!(line.ends_with(&format!("notifications sent {replies}, received 2")), "{line}");
}

#[test]
fn a_settled_observer_answers_a_looking_voter_once_per_question() {
    let mut c = Cluster::new(3, 1, "");
    let voter = ScriptedPeer::new(&c, 1);
    for sid in [2, 3, 4] {
        c.start(sid);
    }
    c.wait_broadcast(&[2, 3, 4], T);
    // What the observer sent while it was electing is not part of this.
    voter.drain();
    // Voter 1, LOOKING, asks the observer and, as ZooKeeper's voters do, answers every message
    // from a non-voter with its vote.
    voter.send(4, Looking, 1, 1, 0);
    let got = voter.answer_for(Duration::from_secs(2), 4, |_| Some((Looking, 1, 1, 0)));
    assert!((1..=2).contains(&got), "the observer sent {got} notifications to the LOOKING voter in 2 s");
    // A new round is answered at once.
    voter.send(4, Looking, 1, 2, 0);
    let again = voter.answer_for(Duration::from_secs(1), 4, |_| None);
    assert_eq!(again, 1, "a new question must be answered at once");
    let mntr = ask(c.ports[&4].2, b"mntr");
    let held = mntr.lines().find_map(|l| l.strip_prefix("zk_notification_replies_held_back\t")).unwrap_or("0");
    assert!(held.parse::<u64>().unwrap_or(0) >= 1, "{mntr}");
}

/// One ZooKeeper scenario at a time: each runs three JVMs.
static SERIAL: Mutex<()> = Mutex::new(());

/// Voters 1, 2, 3 and observer 4, where node 1 and nodes 2, 3 cannot reach each other (their
/// server lines point at closed ports), and the observer reaches node 1 through a relay that
/// delays the first 1.5 s of the connection: node 1's answers to the observer's election arrive
/// after the others' have settled it, which is what starts the loop.
fn cut_off_voter_1(zookeeper: &[i64]) -> Cluster {
    let mut c = Cluster::new(3, 1, "").with_zookeeper(zookeeper);
    let p = free_ports(5);
    for (from, to, dead) in [(1, 2, 0), (1, 3, 2), (2, 1, 0), (3, 1, 0)] {
        c.reroute(from, to, "127.0.0.1", p[dead], p[dead + 1]);
    }
    let (q1, e1, _) = c.ports[&1];
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/delay_relay.py");
    let relay = std::process::Command::new("python3")
        .args([script, &format!("127.0.0.1:{}", p[4]), &format!("127.0.0.1:{e1}"), "100:1500"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 relay");
    c.adopt(relay);
    c.reroute(4, 1, "127.0.0.1", q1, p[4]);
    c
}

/// The node decided for `state` (zkelect's "Decided:" line, ZooKeeper's "… ELECTION TOOK").
fn wait_decided(c: &Cluster, sid: i64, state: &str) {
    wait_for(T, &format!("node {sid} {state}"), || c.decisions(sid, 0).iter().any(|(s, _)| s == state).then_some(()));
}

#[test]
fn zkelect_voter_and_zookeeper_observer() {
    if !tier::enabled(Tier::Interop) {
        return;
    }
    let _turn = SERIAL.lock();
    let mut c = cut_off_voter_1(&[2, 3, 4]);
    c.start(2);
    c.start(3);
    wait_decided(&c, 3, "LEADING");
    c.start(1);
    wait_for(T, "node 1 LOOKING", || c.log(1).contains("LOOKING").then_some(()));
    c.start(4);
    // ZooKeeper's observer logs no "… ELECTION TOOK" line.
    wait_for(T, "ZooKeeper node 4 OBSERVING", || c.log(4).contains("] - OBSERVING").then_some(()));
    // Past the relay's slow start: a loop would run at full speed now.
    std::thread::sleep(Duration::from_secs(2));
    let n = sent_in_two_seconds(&c, 1);
    println!("LOOKING zkelect voter 1 sent {n} notifications in 2 s next to a settled ZooKeeper observer");
    assert!(n <= HANDFUL, "LOOKING zkelect voter 1 sent {n} notifications in 2 s next to a ZooKeeper observer");
    let mntr = ask(c.ports[&1].2, b"mntr");
    assert!(!mntr.contains("zk_notifications_received_from_4\t0\n"), "the observer never reached node 1: {mntr}");
}

#[test]
fn zkelect_observer_and_zookeeper_voter() {
    if !tier::enabled(Tier::Interop) {
        return;
    }
    let _turn = SERIAL.lock();
    let mut c = cut_off_voter_1(&[1]);
    c.start(2);
    c.start(3);
    c.wait_broadcast(&[2, 3], T);
    c.start(1);
    wait_for(T, "ZooKeeper node 1 LOOKING", || c.log(1).contains("LOOKING").then_some(()));
    c.start(4);
    c.wait_broadcast(&[4], T);
    std::thread::sleep(Duration::from_secs(2));
    let n = sent_in_two_seconds(&c, 4);
    println!("OBSERVING zkelect node 4 sent {n} notifications in 2 s to a LOOKING ZooKeeper voter");
    assert!(n <= HANDFUL, "OBSERVING zkelect node 4 sent {n} notifications in 2 s to a LOOKING ZooKeeper voter");
    let mntr = ask(c.ports[&4].2, b"mntr");
    assert!(!mntr.contains("zk_notifications_received_from_1\t0\n"), "node 1 never reached the observer: {mntr}");
}
