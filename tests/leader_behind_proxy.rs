//! A follower's hello closed at once means "not a zkelect leader" (ZooKeeper refuses our session
//! that way), unless the leader was not known to lead yet: something in front of it (a TCP proxy,
//! the partition tests' delay relay) may accept for a leader that is not listening yet. Then the
//! session is tried again once the election confirms the leader. One real node; the others are
//! scripted peers, and the test itself answers on server 3's quorum port, closing every connection.

mod common;

use common::cluster::Cluster;
use common::fake::{Fake, until_logged};
use common::wait_for;
use std::io::Read;
use std::net::TcpListener;
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
    let (f2, f3) = (Fake::new(&c, 2), Fake::new(&c, 3));
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
    let (f2, f3) = (Fake::new(&c, 2), Fake::new(&c, 3));
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
