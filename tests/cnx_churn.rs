//! 200 connect/kill cycles of a peer: threads and file descriptors of the process return to where
//! they started (ZK-880, ZK-4309, ZK-2442). Alone in its binary so that no other test's threads count.

mod common;

use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zkelect::cnx::{CnxEvents, CnxSettings, QuorumCnxManager};

fn start(cfg: &zoocfg::ZooCfg, sid: i64) -> QuorumCnxManager {
    let cfg = config_for(cfg, sid);
    let mut s = CnxSettings::from_config(&cfg);
    s.pool_keep_alive = Duration::from_millis(50);
    let m = QuorumCnxManager::new(s, Arc::new(cfg.quorum_verifier.clone()), CnxEvents::default());
    m.start().expect("start");
    m
}

#[test]
fn churn_leaves_no_threads_or_fds() {
    let p = free_ports(4);
    let cfg = transport_cfg(&[(1, p[0], p[1]), (2, p[2], p[3])]);
    let m1 = start(&cfg, 1);
    std::thread::sleep(Duration::from_millis(300));
    let (threads0, fds0) = (thread_count(), fd_count());
    for i in 0..200u32 {
        let m2 = start(&cfg, 2);
        let payload = i.to_be_bytes().to_vec();
        let end = Instant::now() + Duration::from_secs(10);
        // Alternate who speaks first so both the dial and the dial-back paths churn.
        let (a, b) = if i % 2 == 0 { (&m2, &m1) } else { (&m1, &m2) };
        'outer: loop {
            a.to_send(b.my_sid(), payload.clone());
            let t = Instant::now() + Duration::from_millis(300);
            while Instant::now() < t {
                if b.poll_recv_queue(Duration::from_millis(20)).is_some_and(|m| m.buffer == payload) {
                    break 'outer;
                }
            }
            assert!(Instant::now() < end, "cycle {i}: no message");
        }
        m2.halt();
    }
    let settled = wait_for(Duration::from_secs(10), "threads and fds back to baseline", || {
        let (t, f) = (thread_count(), fd_count());
        (t <= threads0 && f <= fds0).then_some((t, f))
    });
    println!("baseline threads={threads0} fds={fds0}; after 200 cycles threads={} fds={}", settled.0, settled.1);
    m1.halt();
}
