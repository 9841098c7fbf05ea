//! A node with its AdminServer, inside one process: an open event stream, an idle keep-alive
//! connection and a client dripping its request do not hold the node's shutdown up; every
//! thread is joined and the admin port released. The only test in this binary, so that the
//! thread count is this test's alone.

mod common;

use common::http::{Sse, admin_lines, get};
use common::zoocfg::{local_ensemble, write_local_node};
use common::{Threads, free_ports, wait_for};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use zkelect::node::Node;

#[test]
fn open_admin_connections_do_not_hold_the_shutdown_up() {
    let tmp = tempfile::Builder::new().prefix("zkelect-http-lifecycle-").tempdir().expect("temp dir");
    let p = free_ports(10);
    let ports: Vec<(u16, u16, u16)> = (0..3).map(|i| (p[3 * i], p[3 * i + 1], p[3 * i + 2])).collect();
    let admin = p[9];
    let baseline = Threads::now();
    // Node 1 of three, alone: it stays LOOKING, which is all this test needs.
    let shared = local_ensemble(100, &ports).extra(&admin_lines(admin));
    let path = write_local_node(&shared, tmp.path(), 1, ports[0].2).expect("zoo.cfg");
    let node = Node::start(zkelect::config::QuorumPeerConfig::load(&path).expect("config")).expect("node starts");
    wait_for(Duration::from_secs(10), "the admin port", || (get(admin, "/health").status == 200).then_some(()));

    let mut watcher = Sse::open(admin, None);
    assert_eq!(watcher.next(Duration::from_secs(5)).map(|e| e.json()["state"].clone()), Some("looking".into()));
    let mut idle = TcpStream::connect(("127.0.0.1", admin)).expect("connect");
    idle.write_all(b"GET /leader HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut slow = TcpStream::connect(("127.0.0.1", admin)).expect("connect");
    slow.write_all(b"GET /lea").expect("write");
    std::thread::sleep(Duration::from_millis(100));

    let t0 = Instant::now();
    node.shutdown();
    // Well within the 30 s idle timeout and the 5 s request deadline: the connections were closed.
    assert!(t0.elapsed() < Duration::from_secs(3), "shutdown took {:?}", t0.elapsed());
    assert_eq!(baseline.started_since(), Vec::<String>::new(), "threads left behind");
    assert!(TcpListener::bind(("127.0.0.1", admin)).is_ok(), "admin port still bound");
    assert!(watcher.next(Duration::from_secs(2)).is_none(), "the stream ended");
    drop((idle, slow, node));
}
