//! Property tests of every decoder on stable Rust: arbitrary and mutated inputs never panic and
//! never allocate more than the decoder's declared bound; valid values round-trip.

use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use zkelect::config::{HostPort, QuorumPeerConfig, parse_config_text};
use zkelect::election::ServerState;
use zkelect::wire::frame;
use zkelect::wire::initial::{self, ProtocolVersion};
use zkelect::wire::notification;
use zkelect::wire::packet::{self, QuorumPacket};

/// Records the largest single allocation made by the current thread.
struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|m| m.set(m.get().max(l.size())));
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let _ = LARGEST.try_with(|m| m.set(m.get().max(new)));
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns the largest allocation it made.
fn largest_alloc<T>(f: impl FnOnce() -> T) -> usize {
    LARGEST.with(|m| m.set(0));
    let r = f();
    drop(r);
    LARGEST.with(|m| m.get())
}

fn mutate(mut v: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    if v.is_empty() {
        return v;
    }
    for (i, b) in edits {
        let n = v.len();
        v[i % n] = *b;
    }
    v.truncate(cut % (v.len() + 1));
    v
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,20}(\\.[a-z0-9-]{1,10}){0,3}",
        (0u8..=255, 0u8..=255, 0u8..=255, 1u8..=254).prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        Just("::1".to_string()),
        Just("fe80::1".to_string()),
    ]
}

fn valid_handshake() -> impl Strategy<Value = Vec<u8>> {
    (any::<bool>(), 0i64..1000, prop::collection::vec((host(), 1u16..), 1..4)).prop_map(|(v2, sid, addrs)| {
        let addrs: Vec<HostPort> = addrs.into_iter().map(|(h, p)| HostPort::new(h, p)).collect();
        initial::encode(if v2 { ProtocolVersion::V2 } else { ProtocolVersion::V1 }, sid, &addrs)
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        .. ProptestConfig::default()
    })]

    #[test]
    fn initial_message_arbitrary(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let biggest = largest_alloc(|| initial::decode(&bytes));
        prop_assert!(biggest <= 2 * initial::MAX_ADDRESS_LENGTH, "allocated {biggest}");
    }

    #[test]
    fn initial_message_mutated(h in valid_handshake(), edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4), cut in any::<usize>()) {
        let m = mutate(h, &edits, cut);
        let biggest = largest_alloc(|| initial::decode(&m));
        prop_assert!(biggest <= 2 * initial::MAX_ADDRESS_LENGTH);
    }

    #[test]
    fn initial_message_round_trip(v2 in any::<bool>(), sid in any::<i64>().prop_filter("non-legacy", |_| true), addrs in prop::collection::vec((host(), any::<u16>()), 1..4)) {
        let addrs: Vec<HostPort> = addrs.into_iter().map(|(h, p)| HostPort::new(h, p)).collect();
        let version = if v2 { ProtocolVersion::V2 } else { ProtocolVersion::V1 };
        let m = initial::decode(&initial::encode(version, sid, &addrs)).expect("valid handshake");
        let want: Vec<HostPort> = if v2 { addrs.clone() } else { addrs[..1].to_vec() };
        prop_assert_eq!((m.version, m.sid, m.addrs), (version, sid, want));
    }

    #[test]
    fn frame_arbitrary(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let biggest = largest_alloc(|| frame::read_frame(&mut &bytes[..]).map(|v| v.len()));
        prop_assert!(biggest <= frame::PACKET_MAX_SIZE);
    }

    #[test]
    fn frame_round_trip(payload in prop::collection::vec(any::<u8>(), 1..4096)) {
        let bytes = frame::encode_frame(&payload);
        prop_assert_eq!(frame::read_frame(&mut &bytes[..]).expect("frame"), payload);
    }

    #[test]
    fn notification_arbitrary(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let biggest = largest_alloc(|| notification::decode(&bytes));
        prop_assert!(biggest <= bytes.len().max(64));
    }

    #[test]
    fn notification_round_trip(state in 0i32..4, leader in any::<i64>(), zxid in any::<i64>(), round in any::<i64>(),
                               epoch in any::<i64>(), config in prop::collection::vec(any::<u8>(), 0..300)) {
        let st = ServerState::from_i32(state).expect("state");
        let bytes = notification::encode(st.ordinal(), leader, zxid, round, epoch, &config);
        let n = notification::decode(&bytes).expect("decodes");
        prop_assert_eq!((n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.version), (state, leader, zxid, round, epoch, 2));
        prop_assert_eq!(n.config, Some(config));
    }

    #[test]
    fn notification_mutated(state in 0i32..4, config in "[a-z0-9=.:\n]{0,100}", edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
        let st = ServerState::from_i32(state).expect("state");
        let m = mutate(notification::encode(st.ordinal(), 1, 2, 3, 4, config.as_bytes()), &edits, cut);
        let _ = notification::decode(&m);
    }

    #[test]
    fn packet_arbitrary(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let biggest = largest_alloc(|| QuorumPacket::read(&mut &bytes[..]).map(|p| p.ptype));
        prop_assert!(biggest <= packet::MAX_DATA);
    }

    #[test]
    fn packet_round_trip(ptype in any::<i32>(), zxid in any::<i64>(), data in prop::option::of(prop::collection::vec(any::<u8>(), 0..2048))) {
        let p = QuorumPacket::new(ptype, zxid, data);
        prop_assert_eq!(QuorumPacket::read(&mut &p.encode()[..]).expect("packet"), p);
    }

    #[test]
    fn config_text_arbitrary(text in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_config_text(&text);
    }

    #[test]
    fn config_text_round_trip_and_mutation(servers in prop::collection::btree_map(1i64..300, (host(), any::<bool>()), 1..8),
                                           edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4), cut in any::<usize>()) {
        let mut text = String::from("tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=/d\nstandaloneEnabled=false\n");
        let mut any_voter = false;
        for (id, (h, obs)) in &servers {
            // Two servers may not share an address: each id gets ports of its own.
            let q = 1000 + 2 * *id as u16;
            let e = q + 1;
            let role = if *obs { ":observer" } else { "" };
            any_voter |= !obs;
            let h = if h.contains(':') { format!("[{h}]") } else { h.clone() };
            text.push_str(&format!("server.{id}={h}:{q}:{e}{role}\n"));
        }
        let parsed = QuorumPeerConfig::parse(&text, "gen");
        prop_assert_eq!(parsed.is_ok(), any_voter, "{:?}", parsed.as_ref().err());
        if let Ok(cfg) = parsed {
            let ct = cfg.quorum_verifier.config_text();
            let back = parse_config_text(ct.as_bytes()).expect("own config text parses");
            prop_assert!(back.same_membership(&cfg.quorum_verifier));
            let _ = parse_config_text(&mutate(ct.into_bytes(), &edits, cut));
        }
        let _ = QuorumPeerConfig::parse(&String::from_utf8_lossy(&mutate(text.into_bytes(), &edits, cut)), "mutated");
    }

    #[test]
    fn zoo_cfg_arbitrary(text in "(?s).{0,800}") {
        let _ = QuorumPeerConfig::parse(&text, "arbitrary");
    }

    #[test]
    fn zoo_cfg_lines(lines in prop::collection::vec(prop_oneof![
        "server\\.[0-9x]{1,3}=[a-z0-9.:|;\\[\\]]{0,40}",
        "(group|weight)\\.[0-9]{1,2}=[0-9:]{0,10}",
        "(tickTime|initLimit|syncLimit|clientPort|cnxTimeout|electionAlg|peerType|multiAddress.enabled)=[a-z0-9-]{0,8}",
        "[ -~]{0,40}",
    ], 0..20)) {
        let _ = QuorumPeerConfig::parse(&lines.join("\n"), "lines");
    }
}
