//! Byte-exact checks against a capture of a real Apache ZooKeeper 3.8.0 ensemble
//! (`tests/golden/`): the pcap is reassembled into TCP streams here, every handshake and
//! notification is decoded and compared with `capture.txt`, and re-encoded to the same bytes.

use std::collections::BTreeMap;
use zkelect::config::{HostPort, QuorumPeerConfig};
use zkelect::election::ServerState;
use zkelect::wire::frame;
use zkelect::wire::initial::{self, ProtocolVersion};
use zkelect::wire::notification;

const PCAP: &[u8] = include_bytes!("golden/election3.pcap");
const CAPTURE: &str = include_str!("golden/capture.txt");

/// (client port, server port) -> (initiator->acceptor bytes, acceptor->initiator bytes)
type Streams = BTreeMap<(u16, u16), (Vec<u8>, Vec<u8>)>;

fn le32(b: &[u8]) -> usize {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
}
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn reassemble() -> Streams {
    assert_eq!(&PCAP[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    assert_eq!(le32(&PCAP[20..24]), 1, "ethernet link type");
    // direction key -> seq -> payload
    let mut segs: BTreeMap<(u16, u16, bool), BTreeMap<u32, Vec<u8>>> = BTreeMap::new();
    let mut off = 24;
    while off + 16 <= PCAP.len() {
        let incl = le32(&PCAP[off + 8..]);
        let pkt = &PCAP[off + 16..off + 16 + incl];
        off += 16 + incl;
        if be16(&pkt[12..]) != 0x0800 {
            continue;
        }
        let ip = &pkt[14..];
        let ihl = (ip[0] & 0x0f) as usize * 4;
        let total = be16(&ip[2..]) as usize;
        if ip[9] != 6 {
            continue;
        }
        let tcp = &ip[ihl..total];
        let (sport, dport, seq) = (be16(tcp), be16(&tcp[2..]), be32(&tcp[4..]));
        let doff = (tcp[12] >> 4) as usize * 4;
        let payload = &tcp[doff..];
        let to_election = (38981..=38983).contains(&dport);
        let key = if to_election { (sport, dport, true) } else { (dport, sport, false) };
        if !payload.is_empty() {
            segs.entry(key).or_default().insert(seq, payload.to_vec());
        }
    }
    let mut out = Streams::new();
    for ((c, s, fwd), m) in segs {
        let mut bytes = Vec::new();
        let mut next: Option<u32> = None;
        for (seq, p) in m {
            let skip = next.map_or(0, |n| n.wrapping_sub(seq) as usize).min(p.len());
            if next.is_some_and(|n| seq.wrapping_sub(n) as i32 > 0) {
                panic!("gap in stream {c}->{s}");
            }
            bytes.extend_from_slice(&p[skip..]);
            next = Some(seq.wrapping_add(p.len() as u32));
        }
        let e = out.entry((c, s)).or_default();
        if fwd { e.0 = bytes } else { e.1 = bytes }
    }
    out
}

/// Connection number -> (client port, server port, handshake (sid, addr)).
type Conns = BTreeMap<u32, (u16, u16, Option<(i64, String)>)>;

struct Row {
    from: i64,
    to: i64,
    state: ServerState,
    leader: i64,
    zxid: i64,
    el: i64,
    pe: i64,
    ver: i32,
    cfg_len: usize,
    size: usize,
}

/// Connection number -> (client port, server port, handshake (sid, addr)), and rows per connection.
fn expected() -> (Conns, BTreeMap<u32, Vec<Row>>) {
    let mut conns = BTreeMap::new();
    let mut rows: BTreeMap<u32, Vec<Row>> = BTreeMap::new();
    let mut in_table = false;
    for line in CAPTURE.lines() {
        if line.starts_with("(4) ") {
            in_table = true;
            continue;
        }
        if in_table && line.starts_with("(R)") {
            break;
        }
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.is_empty() || !t[0].starts_with('#') {
            continue;
        }
        let Ok(n) = t[0][1..].parse::<u32>() else {
            continue;
        };
        if in_table {
            let state = match t[3] {
                "LOOKING" => ServerState::Looking,
                "FOLLOWING" => ServerState::Following,
                "LEADING" => ServerState::Leading,
                other => panic!("state {other}"),
            };
            rows.entry(n).or_default().push(Row {
                from: t[1].parse().unwrap(),
                to: t[2].parse().unwrap(),
                state,
                leader: t[4].parse().unwrap(),
                zxid: i64::from_str_radix(t[5].trim_start_matches("0x"), 16).unwrap(),
                el: t[6].parse().unwrap(),
                pe: t[7].parse().unwrap(),
                ver: t[8].parse().unwrap(),
                cfg_len: t[9].parse().unwrap(),
                size: t[10].parse().unwrap(),
            });
        } else if line.contains(" -> 127.0.0.1:") {
            let port = |s: &str| s.rsplit(':').next().unwrap().parse::<u16>().unwrap();
            let arrow = t.iter().position(|x| *x == "->").unwrap();
            let (c, s) = (port(t[arrow - 1]), port(t[arrow + 1]));
            let hs = line.find("handshake PROTOCOL_VERSION_V1 sid=").map(|i| {
                let rest = &line[i + "handshake PROTOCOL_VERSION_V1 sid=".len()..];
                let sid: i64 = rest[..rest.find(' ').unwrap()].parse().unwrap();
                let a = &rest[rest.find("addr='").unwrap() + 6..];
                (sid, a[..a.find('\'').unwrap()].to_string())
            });
            conns.insert(n, (c, s, hs));
        }
    }
    (conns, rows)
}

fn frames(mut b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        out.push(frame::read_frame(&mut b).expect("captured frame"));
    }
    out
}

fn golden_config_text() -> String {
    let text = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=data\n\
                server.1=127.0.0.1:28981:38981\nserver.2=127.0.0.1:28982:38982\nserver.3=127.0.0.1:28983:38983\n";
    QuorumPeerConfig::parse(text, "golden").unwrap().quorum_verifier.config_text()
}

#[test]
fn every_captured_handshake_and_notification() {
    let streams = reassemble();
    let (conns, rows) = expected();
    let cfg_text = golden_config_text();
    let mut handshakes = 0;
    let mut notifications = 0;
    for (n, (cport, sport, hs)) in &conns {
        let Some((sid, addr)) = hs else {
            assert!(streams.get(&(*cport, *sport)).is_none_or(|s| s.0.is_empty()), "#{n} had no handshake");
            continue;
        };
        let (fwd, back) = streams.get(&(*cport, *sport)).expect("stream for connection");
        // The handshake: decodes to the listed values and is what zkelect would write.
        let mut r = &fwd[..];
        let m = initial::read(&mut r).expect("captured handshake parses");
        assert_eq!((m.version, m.sid), (ProtocolVersion::V1, *sid), "#{n}");
        let (host, port) = addr.rsplit_once(':').unwrap();
        let hp = HostPort::new(host, port.parse().unwrap());
        assert_eq!(m.addrs, vec![hp.clone()]);
        assert_eq!(initial::encode(ProtocolVersion::V1, *sid, &[hp]), fwd[..fwd.len() - r.len()].to_vec());
        handshakes += 1;
        // Frames in each direction, against the table rows of that direction, in order.
        let acceptor = (*sport - 38980) as i64;
        let listed: Vec<&Row> = rows.get(n).map(|v| v.iter().collect()).unwrap_or_default();
        for (dir_bytes, from, to) in [(r, *sid, acceptor), (&back[..], acceptor, *sid)] {
            let want: Vec<&&Row> = listed.iter().filter(|x| x.from == from && x.to == to).collect();
            let got = frames(dir_bytes);
            assert_eq!(got.len(), want.len(), "#{n} {from}->{to}: frame count");
            for (bytes, w) in got.iter().zip(want) {
                let d = notification::decode(bytes).expect("captured notification decodes");
                assert_eq!(bytes.len(), w.size);
                assert_eq!(
                    (d.state, d.leader, d.zxid, d.election_epoch, d.peer_epoch, d.version),
                    (w.state as i32, w.leader, w.zxid, w.el, w.pe, w.ver),
                    "#{n} {from}->{to}"
                );
                let config = d.config.as_deref().expect("version 2 carries config");
                assert_eq!(config.len(), w.cfg_len);
                assert_eq!(std::str::from_utf8(config).unwrap(), cfg_text, "config text is byte-exact");
                let re = notification::encode(w.state.ordinal(), w.leader, w.zxid, w.el, w.pe, cfg_text.as_bytes());
                assert_eq!(&re, bytes, "#{n}: re-encoding reproduces the captured bytes");
                notifications += 1;
            }
        }
    }
    assert_eq!(handshakes, 7);
    assert_eq!(notifications, rows.values().map(Vec::len).sum::<usize>());
    assert_eq!(notifications, 25, "all 25 captured notifications checked");
}

#[test]
fn first_frame_hex_dump_matches() {
    // Section (1)+(2) of capture.txt: the handshake followed by the first notification, sid 3 -> 2.
    let streams = reassemble();
    let (fwd, _) = streams.get(&(53284, 38982)).expect("connection #3");
    let mut want = initial::encode(ProtocolVersion::V1, 3, &[HostPort::new("127.0.0.1", 38983)]);
    want.extend(frame::encode_frame(&notification::encode(
        ServerState::Looking.ordinal(),
        3,
        0,
        1,
        0,
        golden_config_text().as_bytes(),
    )));
    assert_eq!(&fwd[..want.len()], &want[..]);
}
