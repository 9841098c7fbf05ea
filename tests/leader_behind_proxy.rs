//! A follower's hello closed at once means "not a zkelect leader" (ZooKeeper refuses our session
//! that way), unless the leader was not known to lead yet: something in front of it (a TCP proxy,
//! the partition tests' delay relay) may accept for a leader that is not listening yet. Then the
//! session is tried again once the election confirms the leader. One real node; the others are
//! scripted peers, and the test itself answers on server 3's quorum port, closing every connection.

mod common;

use common::cluster::Cluster;
use common::scripted_peer::{ScriptedPeer, until_logged};
use common::{ask, free_ports, wait_for};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use zkelect::election::ServerState;

/// Accepts on `port` and closes every connection after its first bytes, counting them.
struct ClosingPort {
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ClosingPort {
    fn new(port: u16) -> ClosingPort {
        let l = TcpListener::bind(("127.0.0.1", port)).expect("bind the quorum port");
        l.set_nonblocking(true).expect("nonblocking");
        let (accepted, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (a, s) = (Arc::clone(&accepted), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut conn, _)) => {
                        a.fetch_add(1, Ordering::Relaxed);
                        // Read the hello first, as a relay that forwards it does (closing with
                        // unread bytes would reset the connection instead).
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                        let _ = conn.read(&mut [0u8; 256]);
                        drop(conn);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        ClosingPort { accepted, stop, thread: Some(thread) }
    }

    fn count(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for ClosingPort {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn hello_closed_before_the_leader_leads_is_retried_once_it_is_confirmed() {
    let mut c = Cluster::new(3, 0, "initLimit=100\n");
    let (f2, f3) = (ScriptedPeer::new(&c, 2), ScriptedPeer::new(&c, 3));
    let port = ClosingPort::new(c.ports[&3].0);
    c.start(1);
    // Everyone proposes 3, which is still LOOKING: node 1 decides for 3 and its hello is closed.
    until_logged(&c, 1, "closed the session at our hello before it was known to lead", || {
        f3.vote(1, ServerState::Looking, 3, 0);
        f2.vote(1, ServerState::Looking, 3, 0);
    });
    let first = port.count();
    assert!(first >= 1);
    // Then 3 leads and 2 follows it: once the election confirms 3, node 1 dials its session again.
    until_logged(&c, 1, "Leader 3 confirmed through the election; trying the session again", || {
        f3.vote(1, ServerState::Leading, 3, 0);
        f2.vote(1, ServerState::Following, 3, 0);
    });
    wait_for(Duration::from_secs(5), "a second session attempt", || (port.count() > first).then_some(()));
}

#[test]
fn hello_closed_by_a_leader_known_to_lead_is_not_retried() {
    let mut c = Cluster::new(3, 0, "initLimit=100\n");
    let (f2, f3) = (ScriptedPeer::new(&c, 2), ScriptedPeer::new(&c, 3));
    let port = ClosingPort::new(c.ports[&3].0);
    c.start(1);
    // 3 already says LEADING (as a ZooKeeper leader would): its closing the hello is final.
    let mut vote = || {
        f3.vote(1, ServerState::Leading, 3, 0);
        f2.vote(1, ServerState::Following, 3, 0);
    };
    until_logged(&c, 1, "Leader 3 confirmed through the election in epoch", &mut vote);
    let attempts = port.count();
    assert!(attempts >= 1);
    for _ in 0..30 {
        vote();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(port.count(), attempts, "node 1 kept dialling a leader that refuses its sessions");
    assert!(!c.log(1).contains("trying the session again"), "{}", c.log(1));
}

/// `zkelect status` (exit code) and the `zkelect_in_quorum` metric of the node on `client`/`metrics`.
fn in_quorum(client: u16, metrics: u16) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zkelect"))
        .args(["status", &format!("127.0.0.1:{client}"), "--timeout-ms", "2000"])
        .output()
        .expect("zkelect status");
    let mut s = TcpStream::connect(("127.0.0.1", metrics)).expect("metrics port");
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").expect("request");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    let line = body.lines().find(|l| l.starts_with("zkelect_in_quorum ")).unwrap_or("none").to_string();
    (out.status.code(), line)
}

/// Until the election confirms its leader, a follower in election-only mode is not in a quorum:
/// `zkelect status` says so (exit 1) and `zkelect_in_quorum` reads 0; once confirmed, 0 and 1.
#[test]
fn an_unconfirmed_election_only_follower_is_not_in_a_quorum() {
    let metrics = free_ports(1)[0];
    // syncLimit 50 ticks: the confirmation window (5 s) is long enough to look at the node inside it.
    let extra = format!("initLimit=100\nsyncLimit=50\nmetricsProvider.httpPort={metrics}\n");
    let mut c = Cluster::new(3, 0, &extra);
    let (f2, f3) = (ScriptedPeer::new(&c, 2), ScriptedPeer::new(&c, 3));
    let _port = ClosingPort::new(c.ports[&3].0);
    c.start(1);
    let client = c.ports[&1].2;
    until_logged(&c, 1, "closed the session at our hello before it was known to lead", || {
        f3.vote(1, ServerState::Looking, 3, 0);
        f2.vote(1, ServerState::Looking, 3, 0);
    });
    // Nobody confirms 3 now: node 1 follows it in election-only mode, unconfirmed.
    let mntr = ask(client, b"mntr");
    assert!(mntr.contains("zk_peer_state\tfollowing - election-only (confirming)"), "{mntr}");
    let (code, metric) = in_quorum(client, metrics);
    assert_eq!((code, metric.as_str()), (Some(1), "zkelect_in_quorum 0"), "unconfirmed leader reported as a quorum");
    // 3 leads and 2 follows it: confirmed (after one more refused session attempt).
    until_logged(&c, 1, "Leader 3 confirmed through the election in epoch", || {
        f3.vote(1, ServerState::Leading, 3, 0);
        f2.vote(1, ServerState::Following, 3, 0);
    });
    let (code, metric) = in_quorum(client, metrics);
    assert_eq!((code, metric.as_str()), (Some(0), "zkelect_in_quorum 1"));
}
