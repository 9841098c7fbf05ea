//! QuorumCnxManager over real loopback sockets: three managers in one process, raw clients
//! sending bad input, a black-holed peer.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zkelect::cnx::{CnxEvents, CnxSettings, QuorumCnxManager};
use zkelect::wire::initial::{self, ProtocolVersion};
use zoocfg::ZooCfg;

struct Ens {
    cfg: ZooCfg,
    ports: Vec<(i64, u16, u16)>,
}

impl Ens {
    /// `n` servers with sids 1..=n, each started by the test or not.
    fn new(n: i64) -> Ens {
        let p = free_ports(2 * n as usize);
        let ports: Vec<(i64, u16, u16)> =
            (1..=n).map(|i| (i, p[2 * (i - 1) as usize], p[2 * (i - 1) as usize + 1])).collect();
        Ens { cfg: transport_cfg(&ports), ports }
    }
    fn election_port(&self, sid: i64) -> u16 {
        self.ports.iter().find(|p| p.0 == sid).map(|p| p.2).expect("sid")
    }
    fn start(&self, sid: i64) -> QuorumCnxManager {
        self.start_with(sid, |_| {})
    }
    fn start_with(&self, sid: i64, tweak: impl FnOnce(&mut CnxSettings)) -> QuorumCnxManager {
        let cfg = config_for(&self.cfg, sid);
        let mut s = CnxSettings::from_config(&cfg);
        s.socket_timeout = Duration::from_millis(1500);
        s.cnx_timeout = Duration::from_millis(2000);
        tweak(&mut s);
        let m = QuorumCnxManager::new(s, Arc::new(cfg.quorum_verifier.clone()), CnxEvents::default());
        m.start().expect("start listener");
        let port = self.election_port(sid);
        wait_for(Duration::from_secs(5), "listener bound", || TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ()));
        m
    }
}

/// Receives the next message from `from` (skipping others), within `t`.
fn recv_from(m: &QuorumCnxManager, from: i64, t: Duration) -> Option<Vec<u8>> {
    let end = Instant::now() + t;
    while Instant::now() < end {
        if let Some(msg) = m.poll_recv_queue(Duration::from_millis(50))
            && msg.sid == from
        {
            return Some(msg.buffer);
        }
    }
    None
}

/// Sends `payload` from `a` to `b` until it arrives (the first may be dropped by a tie-break).
fn exchange(a: &QuorumCnxManager, b: &QuorumCnxManager, payload: &[u8]) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        a.to_send(b.my_sid(), payload.to_vec());
        if recv_from(b, a.my_sid(), Duration::from_millis(500)).is_some_and(|got| got == payload) {
            return;
        }
        assert!(Instant::now() < end, "message {} -> {} never arrived", a.my_sid(), b.my_sid());
    }
}

#[test]
fn golden_handshake_bytes() {
    let want: Vec<u8> = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0x0f]
        .iter()
        .copied()
        .chain(*b"127.0.0.1:38983")
        .collect();
    let got = initial::encode(ProtocolVersion::V1, 3, &[zkelect::config::HostPort::new("127.0.0.1", 38983)]);
    assert_eq!(got, want);
}

#[test]
fn each_test_reads_only_the_log_lines_of_its_own_threads() {
    let logs = record_logs();
    let line = format!("a line of another test ({:?})", std::thread::current().id());
    let theirs = {
        let line = line.clone();
        std::thread::spawn(move || {
            let theirs = record_logs();
            log::info!(target: "zkelect::test", "{line}");
            theirs.logged(&line)
        })
    };
    assert!(theirs.join().expect("other test"), "the other test did not see its own line");
    assert!(!logs.logged(&line), "a line of another log scope was seen");
    log::info!(target: "zkelect::test", "{line}");
    assert_eq!(logs.count_since(LogMark::START, &line), 1);
}

#[test]
fn three_managers_exchange_both_ways_with_one_connection_per_pair() {
    let ens = Ens::new(3);
    let ms: Vec<QuorumCnxManager> = (1..=3).map(|i| ens.start(i)).collect();
    // Every node sends to every other at once: simultaneous dials in both directions.
    for a in &ms {
        for b in &ms {
            if a.my_sid() != b.my_sid() {
                a.to_send(b.my_sid(), format!("hello {}->{}", a.my_sid(), b.my_sid()).into_bytes());
            }
        }
    }
    for a in &ms {
        for b in &ms {
            if a.my_sid() != b.my_sid() {
                exchange(a, b, format!("ping {}->{}", a.my_sid(), b.my_sid()).as_bytes());
            }
        }
    }
    // Exactly one established connection per pair, always dialled by the larger sid.
    wait_for(Duration::from_secs(5), "one connection per pair", || {
        let counts: Vec<usize> = (1..=3).map(|s| established_to(ens.election_port(s))).collect();
        (counts == vec![2, 1, 0]).then_some(())
    });
    for m in &ms {
        assert_eq!(m.connected_peers().len(), 2);
    }
    // Self-delivery goes through recvQueue without a socket.
    ms[0].to_send(1, b"self".to_vec());
    assert_eq!(recv_from(&ms[0], 1, Duration::from_secs(1)).as_deref(), Some(&b"self"[..]));
    for m in &ms {
        m.halt();
    }
}

/// Connections established so far, summed over every manager's peers.
fn connections_made(ms: &[QuorumCnxManager]) -> u64 {
    ms.iter().flat_map(|m| m.peer_status().into_values()).map(|p| p.connections).sum()
}

#[test]
fn tie_break_settles_without_churn() {
    // Every node dials every other at once, repeatedly, as an election's sends do. The tie-break
    // (the smaller side's dial makes the larger finish its connection and dial back) must settle
    // on one connection per pair instead of feeding itself: broken fresh connections are not
    // re-dialled by the smaller side, and a fresh dial-back is not replaced.
    let n = 6;
    let ens = Ens::new(n);
    let ms: Vec<QuorumCnxManager> = (1..=n).map(|i| ens.start(i)).collect();
    let send_all = |round: usize| {
        for a in &ms {
            for b in &ms {
                if a.my_sid() != b.my_sid() {
                    a.to_send(b.my_sid(), format!("{round}").into_bytes());
                }
            }
        }
    };
    for round in 0..20 {
        send_all(round);
        std::thread::sleep(Duration::from_millis(10));
    }
    let pairs = (n * (n - 1) / 2) as u64;
    wait_for(Duration::from_secs(10), "every pair connected", || {
        ms.iter().all(|m| m.connected_peers().len() == n as usize - 1).then_some(())
    });
    let settled = connections_made(&ms);
    std::thread::sleep(Duration::from_millis(1500));
    for round in 0..10 {
        send_all(round);
    }
    std::thread::sleep(Duration::from_millis(500));
    let later = connections_made(&ms);
    // Each pair registers its connection on both sides: 2 per pair, plus a few replaced ones.
    assert!(settled <= 4 * pairs, "{settled} connections registered for {pairs} pairs");
    assert_eq!(later, settled, "connections kept churning after every pair was connected");
    for m in &ms {
        m.halt();
    }
}

#[test]
fn lower_sid_dial_is_answered_by_dial_back() {
    let logs = record_logs();
    let ens = Ens::new(2);
    let m1 = ens.start(1);
    let m2 = ens.start(2);
    m1.to_send(2, b"from the small one".to_vec());
    // 1 dials 2 and drops the connection (2 > 1); 2 dials back and 1's queued message flows.
    assert_eq!(recv_from(&m2, 1, Duration::from_secs(5)).as_deref(), Some(&b"from the small one"[..]));
    logs.wait_logged("Have smaller server identifier, so dropping the connection: (myId:1 --> sid:2)");
    assert_eq!(established_to(ens.election_port(1)), 1, "the surviving connection was dialled by 2");
    assert_eq!(established_to(ens.election_port(2)), 0);
    m1.halt();
    m2.halt();
}

#[test]
fn restarted_peer_first_receives_last_message_sent() {
    let logs = record_logs();
    let ens = Ens::new(2);
    let m2 = ens.start(2);
    let m1 = ens.start(1);
    exchange(&m2, &m1, b"vote-1");
    m1.halt();
    wait_for(Duration::from_secs(5), "2 notices 1 is gone", || (!m2.connected_to_peer(1)).then_some(()));
    let m1b = ens.start(1);
    // connectAll skips a peer with a dial in flight, and the re-dial that followed the broken
    // connection may still be failing against the old port: the election calls connectAll on every
    // timeout, and so does this test until something arrives. Nothing but the resend can arrive.
    let end = Instant::now() + Duration::from_secs(10);
    let first = loop {
        m2.connect_all();
        let got = recv_from(&m1b, 2, Duration::from_millis(500));
        if got.is_some() || Instant::now() > end {
            break got;
        }
    };
    assert_eq!(
        first.as_deref(),
        Some(&b"vote-1"[..]),
        "2's view of 1: {:?}\nlog:\n{}",
        m2.peer_status().get(&1),
        logs.text()
    );
    m1b.halt();
    m2.halt();
}

#[test]
fn have_delivered_and_connect_all() {
    let ens = Ens::new(3);
    let m3 = ens.start(3);
    assert!(!m3.have_delivered(), "no queues yet");
    // 1 is down: its queue keeps the newest message only.
    m3.to_send(1, b"a".to_vec());
    m3.to_send(1, b"b".to_vec());
    std::thread::sleep(Duration::from_millis(200));
    assert!(!m3.have_delivered(), "the only queue holds an undelivered message");
    let m1 = ens.start(1);
    // Nothing dials until asked: connectAll re-dials every sid that has a queue.
    m3.connect_all();
    assert_eq!(recv_from(&m1, 3, Duration::from_secs(5)).as_deref(), Some(&b"b"[..]), "oldest was dropped");
    wait_for(Duration::from_secs(5), "queue drained", || m3.have_delivered().then_some(()));
    // 2 never runs: its queue keeps the message, and sid 1's empty queue is enough.
    m3.to_send(2, b"to nobody".to_vec());
    assert!(m3.have_delivered(), "one empty queue is enough");
    m1.halt();
    m3.halt();
}

/// A listener whose accept queue is full: further SYNs are dropped, so a dial hangs.
fn black_hole() -> (socket2::Socket, Vec<TcpStream>, u16) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    s.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().expect("addr").into()).expect("bind");
    s.listen(0).expect("listen");
    let port = s.local_addr().expect("addr").as_socket().expect("inet").port();
    let mut fill = Vec::new();
    for _ in 0..3 {
        if let Ok(c) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)) {
            fill.push(c);
        }
    }
    (s, fill, port)
}

#[test]
fn black_holed_peer_does_not_delay_others() {
    let (_hole, _fill, hole_port) = black_hole();
    let p = free_ports(4);
    let servers = [(1, p[0], p[1]), (2, p[2], p[3]), (4, p[0], hole_port)];
    let cfg = transport_cfg(&servers[..2]).server(4, "127.0.0.1", 1, hole_port);
    let ens = Ens { cfg, ports: servers.to_vec() };
    // The dial to 4 hangs for the whole cnxTimeout of 20 s.
    let m2 = ens.start_with(2, |s| s.cnx_timeout = Duration::from_secs(20));
    let m1 = ens.start(1);
    let t0 = Instant::now();
    m2.to_send(4, b"into the void".to_vec());
    m2.to_send(1, b"hello 1".to_vec());
    assert_eq!(recv_from(&m1, 2, Duration::from_secs(15)).as_deref(), Some(&b"hello 1"[..]));
    let took = t0.elapsed();
    // Functional, not a performance claim: it arrives in milliseconds; the bound only catches a
    // message that waited for the dead dial (20 s), with room for a loaded machine.
    assert!(took < Duration::from_secs(10), "message to 1 waited for the dead dial: {took:?}");
    assert!(!m2.connected_to_peer(4));
    m1.halt();
    m2.halt();
}

fn handshake(version: i64, sid: i64, addr: &[u8]) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend_from_slice(&sid.to_be_bytes());
    b.extend_from_slice(&(addr.len() as i32).to_be_bytes());
    b.extend_from_slice(addr);
    b
}

/// The manager closed the raw connection: a read returns EOF or an error within 5 s.
fn assert_closed(mut s: TcpStream, what: &str) {
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                panic!("{what}: connection still open after 5 s")
            }
            Err(_) => return,
        }
    }
}

#[test]
fn bad_input_closes_only_that_connection() {
    let logs = record_logs();
    // sid 9 is configured but never runs: a raw client may pretend to be it.
    let p = free_ports(4);
    let servers = [(1, p[0], p[1]), (2, p[2], p[3])];
    let cfg = transport_cfg(&servers).server(9, "127.0.0.1", 1, 2);
    let ens = Ens { cfg, ports: servers.to_vec() };
    let m1 = ens.start(1);
    let m2 = ens.start(2);
    exchange(&m2, &m1, b"before");
    let port = ens.election_port(1);
    let v1 = initial::PROTOCOL_VERSION_V1;
    let mut long_addr = b"127.0.0.1:".to_vec();
    long_addr.resize(5000, b'1');
    let mut negative_frame = handshake(v1, 9, b"127.0.0.1:2");
    negative_frame.extend_from_slice(&(-20i32).to_be_bytes());
    let mut oversized_frame = handshake(v1, 9, b"127.0.0.1:2");
    oversized_frame.extend_from_slice(&(600_000i32).to_be_bytes());
    let garbage_sid = format!("server id {} is not in the configuration", i64::from_be_bytes(*b"GET / HT"));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("unknown protocol version", handshake(-65530, 9, b"127.0.0.1:2"), "Got unrecognized protocol version -65530"),
        ("address length 0", handshake(v1, 9, b""), "Unreasonable buffer length: 0"),
        ("address length 5000", handshake(v1, 9, &long_addr), "Unreasonable buffer length: 5000"),
        ("malformed address", handshake(v1, 9, b"no port here"), "Badly formed address: no port here"),
        ("port out of range", handshake(v1, 9, b"127.0.0.1:70000"), "Bad port number: 127.0.0.1:70000"),
        (
            "truncated handshake",
            handshake(v1, 9, b"127.0.0.1:2")[..15].to_vec(),
            "Exception reading or writing challenge",
        ),
        ("own sid", handshake(v1, 1, b"127.0.0.1:2"), "a server with our own ID"),
        ("unknown sid", handshake(v1, 77, b"127.0.0.1:2"), "server id 77 is not in the configuration"),
        ("negative frame length", negative_frame, "Received packet with invalid packet: -20"),
        ("oversized frame", oversized_frame, "Received packet with invalid packet: 600000"),
        // Its first 8 bytes make a positive number: a legacy handshake (a bare sid), of a sid
        // not in the configuration.
        ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), &garbage_sid),
    ];
    for (what, bytes, log_line) in cases {
        // Each case must log its own line: several cases log the same text.
        let mark = logs.mark();
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(&bytes).expect("write");
        if what == "truncated handshake" {
            s.shutdown(std::net::Shutdown::Write).expect("half-close");
        }
        assert_closed(s, what);
        logs.wait_logged_since(mark, log_line);
        exchange(&m2, &m1, format!("after {what}").as_bytes());
        exchange(&m1, &m2, format!("back after {what}").as_bytes());
    }
    m1.halt();
    m2.halt();
}

#[test]
fn silent_client_does_not_block_a_real_peer() {
    let ens = Ens::new(2);
    // Silent clients hold a handshake reader for the whole socket timeout of 60 s.
    let m1 = ens.start_with(1, |s| s.socket_timeout = Duration::from_secs(60));
    let silent: Vec<TcpStream> =
        (0..5).map(|_| TcpStream::connect(("127.0.0.1", ens.election_port(1))).expect("connect")).collect();
    let m2 = ens.start(2);
    let t0 = Instant::now();
    exchange(&m2, &m1, b"through");
    // The exchange takes milliseconds; the bound only catches a peer queued behind the silent
    // clients' 60 s (`exchange` itself gives up after 10 s).
    assert!(t0.elapsed() < Duration::from_secs(10), "peer waited behind silent clients");
    drop(silent);
    m1.halt();
    m2.halt();
}

#[test]
fn silent_client_is_dropped_after_the_handshake_deadline() {
    let ens = Ens::new(2);
    let m1 = ens.start_with(1, |s| s.socket_timeout = Duration::from_millis(300));
    let t0 = Instant::now();
    let s = TcpStream::connect(("127.0.0.1", ens.election_port(1))).expect("connect");
    // A slow drip does not extend the deadline: a byte every 100 ms for 6 s (a handshake with a
    // long address, never complete), and the connection is closed about 300 ms in.
    let mut addr = b"127.0.0.1:".to_vec();
    addr.resize(100, b'1');
    let mut w = s.try_clone().expect("clone");
    for b in &handshake(initial::PROTOCOL_VERSION_V1, 2, &addr)[..60] {
        if w.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_closed(s, "drip");
    // Not a performance claim: only a deadline that each byte extended would reach 6 s.
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    m1.halt();
}

#[test]
fn legacy_handshake_is_accepted() {
    // CnxManagerTest.testCnxManagerNPE: bare sid, then a 4-byte frame.
    let p = free_ports(2);
    let servers = [(1, p[0], p[1])];
    let cfg = transport_cfg(&servers).server(2, "127.0.0.1", 3, 4).extra("standaloneEnabled=false\n");
    let ens = Ens { cfg, ports: servers.to_vec() };
    let m1 = ens.start(1);
    let mut s = TcpStream::connect(("127.0.0.1", ens.election_port(1))).expect("connect");
    let mut bytes = 2i64.to_be_bytes().to_vec();
    bytes.extend_from_slice(&4i32.to_be_bytes());
    bytes.extend_from_slice(&5i32.to_be_bytes());
    s.write_all(&bytes).expect("write");
    assert_eq!(recv_from(&m1, 2, Duration::from_secs(2)), Some(5i32.to_be_bytes().to_vec()));
    m1.halt();
}

#[test]
fn bind_failure_is_reported() {
    let logs = record_logs();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let cfg = config_for(&transport_cfg(&[(1, 1, port), (2, 3, 4)]), 1);
    let mut s = CnxSettings::from_config(&cfg);
    s.bind_retry = 2;
    s.bind_retry_delay = Duration::from_millis(50);
    let m = QuorumCnxManager::new(s, Arc::new(cfg.quorum_verifier.clone()), CnxEvents::default());
    // The port is bound at start, before anything is dialled: a node whose port is taken stops there.
    let err = m.start().expect_err("the election port is taken");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
    logs.wait_logged(&format!("Leaving listener thread for address 127.0.0.1:{port} after 2 errors"));
    logs.wait_logged("another node with id 1 is probably running on this host");
    m.halt();
    drop(taken);
}

/// A messenger `RECV_CAPACITY` frames behind loses frames, but never a peer's newest one while a
/// superseded frame is there to drop: here 3's only frame survives 2's flood (Java's drop-oldest
/// queue would lose it), and so does 2's last.
#[test]
fn a_full_receive_queue_keeps_every_peers_newest_frame() {
    let ens = Ens::new(3);
    let (m1, m2, m3) = (ens.start(1), ens.start(2), ens.start(3));
    // One frame at a time, each received before the next (2's own send queue keeps only one).
    let send = |from: &QuorumCnxManager, payload: String| {
        let before = m1.frames_received();
        from.to_send(1, payload.into_bytes());
        wait_for(Duration::from_secs(10), "frame received", || (m1.frames_received() > before).then_some(()));
    };
    send(&m2, "2: first".into());
    send(&m3, "3: only".into());
    let flood = zkelect::cnx::RECV_CAPACITY + 20;
    for i in 0..flood {
        send(&m2, format!("2: {i}"));
    }
    assert_eq!(m1.frames_dropped(), (flood + 2 - zkelect::cnx::RECV_CAPACITY) as u64);
    let mut queued = Vec::new();
    while let Some(m) = m1.poll_recv_queue(Duration::ZERO) {
        queued.push(String::from_utf8_lossy(&m.buffer).into_owned());
    }
    assert_eq!(queued.len(), zkelect::cnx::RECV_CAPACITY);
    assert!(queued.contains(&"3: only".to_string()), "3's only frame was dropped: {queued:?}");
    assert_eq!(queued.last().map(String::as_str), Some(format!("2: {}", flood - 1).as_str()));
    for m in [m1, m2, m3] {
        m.halt();
    }
}
