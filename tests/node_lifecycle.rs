//! A node's whole lifecycle inside one process: three nodes elect a leader, shut down (every
//! thread joined, every port released), and three new nodes start on the same ports and elect
//! again. The only test in this binary, so that the thread count is this test's alone.

mod common;

use common::zoocfg::{local_ensemble, write_local_node};
use common::{Threads, free_ports, wait_for};
use std::net::TcpListener;
use std::time::Duration;
use zkelect::election::ServerState;
use zkelect::node::Node;

const T: Duration = Duration::from_secs(20);

/// The configuration of node `sid` of three voters with their data under `dir`; `ports` holds
/// (quorum, election, client) of each.
fn config(dir: &std::path::Path, ports: &[(u16, u16, u16)], sid: i64) -> zkelect::config::QuorumPeerConfig {
    let shared = local_ensemble(100, ports);
    let path = write_local_node(&shared, dir, sid, ports[(sid - 1) as usize].2).expect("zoo.cfg");
    zkelect::config::QuorumPeerConfig::load(&path).expect("zoo.cfg and myid parse")
}

/// Starts three nodes and waits until they are established under one leader; returns them.
fn elect(dir: &std::path::Path, ports: &[(u16, u16, u16)]) -> (Vec<Node>, i64) {
    let nodes: Vec<Node> = (1..=3).map(|sid| Node::start(config(dir, ports, sid)).expect("node starts")).collect();
    let leader = wait_for(T, "three nodes established under one leader", || {
        let st: Vec<_> = nodes.iter().map(Node::status).collect();
        let leader = st[0].leader()?;
        (st.iter().all(|s| s.in_quorum() && s.leader() == Some(leader))).then_some(leader)
    });
    assert_eq!(nodes[(leader - 1) as usize].status().state, ServerState::Leading);
    (nodes, leader)
}

#[test]
fn nodes_start_elect_shut_down_and_start_again_on_the_same_ports() {
    let tmp = tempfile::Builder::new().prefix("zkelect-lifecycle-").tempdir().expect("temp dir");
    let dir = tmp.path();
    let p = free_ports(9);
    let ports: Vec<(u16, u16, u16)> = (0..3).map(|i| (p[3 * i], p[3 * i + 1], p[3 * i + 2])).collect();
    let baseline = Threads::now();

    let (nodes, leader) = elect(dir, &ports);
    assert_eq!(leader, 3, "the highest sid leads");
    assert!(!baseline.started_since().is_empty());
    for n in &nodes {
        n.shutdown();
    }
    // Every thread joined: back to the test's own threads at once, not after some timeout.
    assert_eq!(baseline.started_since(), Vec::<String>::new(), "threads left behind by shut-down nodes");
    // Every port released.
    for (q, e, c) in &ports {
        for port in [q, e, c] {
            assert!(TcpListener::bind(("127.0.0.1", *port)).is_ok(), "port {port} still bound");
        }
    }
    drop(nodes);

    // New nodes on the same ports and data: they elect again, in a higher epoch.
    let epoch = std::fs::read_to_string(dir.join("n3/version-2/currentEpoch")).expect("epoch");
    let (nodes, leader) = elect(dir, &ports);
    assert_eq!(leader, 3);
    let again = nodes[2].status().current_epoch;
    assert!(again > epoch.trim().parse::<i64>().expect("epoch"), "epoch {again} after {epoch}");
    for n in &nodes {
        n.shutdown();
    }
    assert_eq!(baseline.started_since(), Vec::<String>::new(), "threads left behind the second time");
}
