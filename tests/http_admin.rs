//! The AdminServer port of real `zkelect start` processes: ZooKeeper's commands, /leader,
//! /ready, /health, /watch, the status page's HTML, ZooKeeper's HTTP rules, bad input, and
//! `zkelect ensemble`'s status page URLs.

mod common;

use common::cluster::Cluster;
use common::http::{Sse, admin_cluster, admin_lines, exchange, get, parse_answer, request, wait_http};
use common::{ask, wait_for};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);
/// Sessions of 5 ticks: 1.25 s, enough not to time out on a loaded test machine.
const TICK: &str = "tickTime=250\n";
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// Every command name ZooKeeper 3.8 knows, primary names first, then the aliases.
const PRIMARY: [&str; 26] = [
    "configuration",
    "connection_stat_reset",
    "connections",
    "dirs",
    "dump",
    "environment",
    "get_trace_mask",
    "hash",
    "initial_configuration",
    "is_read_only",
    "last_snapshot",
    "leader",
    "monitor",
    "observer_connection_stat_reset",
    "observers",
    "ruok",
    "server_stats",
    "set_trace_mask",
    "stat_reset",
    "stats",
    "system_properties",
    "voting_view",
    "watch_summary",
    "watches",
    "watches_by_path",
    "zabstate",
];
const ALIASES: [&str; 20] = [
    "conf", "config", "crst", "cons", "env", "envi", "gtmk", "icfg", "isro", "lsnp", "lead", "mntr", "orst", "obsr",
    "srvr", "stmk", "srst", "stat", "sysp", "wchs",
];

fn keys(v: &Value) -> Vec<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

/// Bitnami's readiness probe: `curl … /commands/ruok | grep error | grep null`.
fn probe_says_ready(body: &str) -> bool {
    body.lines().any(|l| l.contains("error") && l.contains("null"))
}

#[test]
fn commands_and_endpoints_while_electing_and_in_a_quorum() {
    let (mut c, admin) = admin_cluster(3, TICK);
    c.append_config(&[2], "admin.commandURL=/zk/\n");
    c.start(1);
    let p1 = admin[&1];
    wait_http(p1, T);

    // Electing: not ready, no leader, ZooKeeper's not-serving error, but the data is there.
    assert_eq!(get(p1, "/ready").status, 503);
    assert_eq!(get(p1, "/health").status, 200);
    let leader = get(p1, "/leader").json();
    assert!(leader["leader"].is_null() && leader["state"] == "looking" && leader["in_quorum"] == false, "{leader}");
    let ruok = get(p1, "/commands/ruok");
    assert_eq!(ruok.body, format!("{{\n  \"command\" : \"ruok\",\n  \"error\" : \"{NOT_SERVING}\"\n}}"));
    assert!(!probe_says_ready(&ruok.body));
    let srvr = get(p1, "/commands/srvr").json();
    assert_eq!((srvr["command"].as_str(), srvr["error"].as_str()), (Some("srvr"), Some(NOT_SERVING)), "{srvr}");
    assert_eq!(srvr["server_stats"]["server_state"], "looking", "{srvr}");
    let mntr = get(p1, "/commands/monitor");
    assert_eq!(mntr.status, 200, "ZooKeeper fails with 500 here; zkelect answers");
    assert_eq!(mntr.json()["peer_state"], "looking");
    assert_eq!(get(p1, "/commands/zabstate").json()["zabstate"], "election");
    let page = get(p1, "/");
    assert!(page.body.contains("id=\"leader\">none (electing)</div>"), "{}", page.body);

    c.start(2);
    c.start(3);
    let (leader, epoch) = c.wait_broadcast(&[1, 2, 3], T);
    for (sid, port) in &admin {
        wait_for(T, &format!("node {sid} ready"), || (get(*port, "/ready").status == 200).then_some(()));
        let l = get(*port, "/leader").json();
        assert_eq!(
            (l["leader"].as_i64(), l["epoch"].as_i64(), l["myid"].as_i64()),
            (Some(leader), Some(epoch), Some(*sid))
        );
        assert_eq!(l["state"], if *sid == leader { "leading" } else { "following" });
    }
    let (p2, p3) = (admin[&2], admin[&3]);
    // A changed command URL moves the commands; the other paths stay.
    assert!(probe_says_ready(&get(p2, "/zk/ruok").body));
    assert_eq!(get(p2, "/commands/ruok").status, 404);
    assert_eq!(get(p2, "/leader").status, 200);

    // What ZooKeeper's consumers read: ruok for probes, stat's server_state (one leader).
    let leaders = [(p1, "/commands"), (p2, "/zk"), (p3, "/commands")]
        .iter()
        .filter(|(p, url)| get(*p, &format!("{url}/stat")).json()["server_stats"]["server_state"] == "leader")
        .count();
    assert_eq!(leaders, 1);

    let listing = get(p1, "/commands");
    assert_eq!(listing.body, get(p1, "/commands/").body);
    let links: Vec<&str> = listing.body.lines().filter(|l| l.starts_with("<a href=\"/commands/")).collect();
    assert_eq!(links.len(), 26, "{}", listing.body);
    for name in PRIMARY.iter().chain(ALIASES.iter()) {
        let a = get(p1, &format!("/commands/{name}"));
        assert_eq!((a.status, a.header("Content-Type")), (200, Some("application/json")), "{name}");
        let v = a.json();
        let k = keys(&v);
        if *name == "set_trace_mask" || *name == "stmk" {
            assert_eq!(k, ["error", "command"], "{name}: {}", a.body);
            continue;
        }
        assert_eq!(&k[k.len() - 2..], ["command", "error"], "{name}: {}", a.body);
        assert!(v["error"].is_null(), "{name}: {}", a.body);
        assert!(probe_says_ready(&a.body), "{name}");
    }
    let stmk = get(p1, "/commands/set_trace_mask?traceMask=0").json();
    assert_eq!(stmk["tracemask"], 0);
    assert_eq!(get(p1, "/commands/gtmk").json()["tracemask"], 0);
    let foo = get(p1, "/commands/foo").json();
    assert_eq!((foo["command"].as_str(), foo["error"].as_str()), (Some("foo"), Some("Unknown command: foo")));
    assert_eq!(get(p1, "/commands/ruok/").json()["error"], "Unknown command: ruok/");
    let lead = get(p1, "/commands/leader").json();
    assert_eq!((lead["leader_id"].as_i64(), lead["leader_ip"].as_str()), (Some(leader), Some("127.0.0.1")));

    // ZooKeeper's HTTP rules.
    for (method, path, status) in [
        ("POST", "/commands/ruok", 405),
        ("PUT", "/commands/ruok", 405),
        ("DELETE", "/leader", 405),
        ("TRACE", "/commands/ruok", 403),
        ("FOO", "/commands/ruok", 501),
        ("OPTIONS", "/commands/ruok", 200),
        ("GET", "/nothing", 404),
        ("GET", "/commandsx", 404),
    ] {
        assert_eq!(request(p1, method, path).status, status, "{method} {path}");
    }
    let head = request(p1, "HEAD", "/leader");
    assert!(head.body.is_empty() && head.header("Content-Length").is_some_and(|n| n != "0"), "{head:?}");

    // The status page, and the Prometheus exposition on the admin port too.
    let page = get(p1, "/");
    assert!(page.body.contains(&format!("<div class=\"value\" id=\"leader\">{leader}</div>")), "{}", page.body);
    assert!(page.body.contains(&format!("<div class=\"value\" id=\"epoch\">{epoch}</div>")), "{}", page.body);
    assert!(page.header("Content-Security-Policy").is_some_and(|p| p.starts_with("default-src 'none'")));
    let metrics = get(p1, "/metrics");
    assert!(metrics.body.lines().any(|l| l == format!("zkelect_leader_id {leader}")), "{}", metrics.body);
    promtool(&metrics.body);
}

fn promtool(text: &str) {
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed");
    check.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let out = check.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The JSON of a leadership event: (state, leader, epoch).
fn change(e: &common::http::SseEvent) -> (String, Option<i64>, i64) {
    let v = e.json();
    (v["state"].as_str().unwrap_or_default().to_string(), v["leader"].as_i64(), v["epoch"].as_i64().unwrap_or(-1))
}

fn seq(e: &common::http::SseEvent) -> u64 {
    e.json()["seq"].as_u64().expect("seq")
}

#[test]
fn watch_stream_follows_a_leader_kill_without_gaps() {
    let (mut c, admin) = admin_cluster(3, TICK);
    c.start_all();
    let (leader, epoch) = c.wait_broadcast(&[1, 2, 3], T);
    assert_eq!(leader, 3);
    let p1 = admin[&1];
    wait_for(T, "node 1 ready", || (get(p1, "/ready").status == 200).then_some(()));
    let mut w = Sse::open(p1, None);
    assert!(w.head.contains("Content-Type: text/event-stream"), "{}", w.head);
    let first = w.next(T).expect("the current state first");
    assert_eq!(first.event, "leadership");
    assert_eq!(change(&first), ("following".into(), Some(3), epoch));
    assert_eq!(first.id.as_deref(), first.json()["id"].as_str());

    c.kill(3);
    let looking = w.next(T).expect("LOOKING after the leader died");
    assert_eq!(change(&looking), ("looking".into(), None, epoch));
    assert_eq!(seq(&looking), seq(&first) + 1);
    // Drop the stream before the new leadership can be seen on it; it happens while disconnected.
    drop(w);
    let (l2, e2) = c.wait_new_epoch(&[1, 2], epoch, T);
    assert_eq!(l2, 2);

    // Reconnecting after the LOOKING event gives exactly what came after it.
    let mut w = Sse::open(p1, looking.id.as_deref());
    let next = w.next(T).expect("the change missed while disconnected");
    assert_eq!(change(&next), ("following".into(), Some(2), e2));
    assert_eq!(seq(&next), seq(&looking) + 1);
    assert!(w.next(Duration::from_millis(300)).is_none(), "nothing else happened");

    // An id this node cannot vouch for: a reset, then the current state.
    let mut w = Sse::open(p1, Some("1-1"));
    let reset = w.next(T).expect("reset");
    assert_eq!(reset.event, "reset");
    assert_eq!(change(&w.next(T).expect("current state")), ("following".into(), Some(2), e2));

    // The restarted old leader joins; a watcher on node 1 sees no change (same leader and epoch).
    let mut w = Sse::open(p1, next.id.as_deref());
    c.start(3);
    c.wait_broadcast(&[1, 2, 3], T);
    assert!(w.next(Duration::from_millis(500)).is_none());
}

#[test]
fn bad_input_gets_a_bounded_answer_or_a_closed_connection() {
    let (mut c, admin) = admin_cluster(3, TICK);
    c.start_all();
    let (leader, epoch) = c.wait_broadcast(&[1, 2, 3], T);
    let p = admin[&1];
    wait_for(T, "node 1 ready", || (get(p, "/ready").status == 200).then_some(()));
    let status_of = |raw: &[u8]| parse_answer(&exchange(p, raw)).map(|a| a.status);
    let big_header = format!("GET /leader HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    let big_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(20_000));
    assert_eq!(status_of(big_header.as_bytes()), Some(431));
    assert_eq!(status_of(big_uri.as_bytes()), Some(414));
    assert_eq!(status_of(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"), Some(400));
    assert_eq!(status_of(b"GET /leader HTTP/1.1\r\n\r\n"), Some(200), "HTTP/1.1 without Host");
    let mut rng = common::Rng(0x5eed);
    for _ in 0..20 {
        let n = rng.range(1, 3000) as usize;
        let garbage = rng.bytes(n);
        let out = exchange(p, &garbage);
        assert!(out.is_empty() || out.starts_with("HTTP/1.1 4"), "{out}");
    }

    // A client that drips its request is answered 408 at the request deadline (5 s).
    let mut slow = TcpStream::connect(("127.0.0.1", p)).expect("connect");
    let t0 = Instant::now();
    let _ = slow.write_all(b"GET /leader HTTP/1.1\r\n");
    let mut out = String::new();
    let _ = slow.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = std::io::Read::read_to_string(&mut slow, &mut out);
    assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());

    // Many connections at once: 32 are served, the rest answered 503 and closed; threads stay bounded.
    let baseline = c.thread_count(1);
    let held: Vec<TcpStream> = (0..100).filter_map(|_| TcpStream::connect(("127.0.0.1", p)).ok()).collect();
    let refused = wait_for(T, "refusals with 503", || {
        let a = parse_answer(&exchange(p, b"GET /leader HTTP/1.1\r\nHost: x\r\n\r\n"))?;
        (a.status == 503).then_some(a)
    });
    assert!(refused.body.contains("too many connections"), "{}", refused.body);
    let busy = c.thread_count(1);
    // 32 handler threads, and a margin of 2 for the election transport's own short-lived threads.
    assert!(busy <= baseline + 34, "{busy} threads with 100 connections held (baseline {baseline})");
    // The election side is untouched: the same leadership, and the four-letter words still answer.
    assert!(ask(c.ports[&1].2, b"srvr").contains(&format!("Leader: {leader}\nEpoch: {epoch}\n")));
    drop(held);
    wait_for(T, "the admin port to serve again", || (get(p, "/ready").status == 200).then_some(()));

    // At most 8 watchers; the 9th is told so.
    let watchers: Vec<Sse> = (0..8).map(|_| Sse::open(p, None)).collect();
    let ninth = get(p, "/watch");
    assert_eq!(ninth.status, 503, "{ninth:?}");
    drop(watchers);
    wait_for(T, "a watcher slot", || (request(p, "HEAD", "/watch").status == 200).then_some(()));
    wait_for(T, "threads back to baseline", || (c.thread_count(1) <= baseline).then_some(()));
}

#[test]
fn a_taken_admin_port_is_a_warning_and_the_node_runs() {
    let mut c = Cluster::new(3, 0, "");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    c.append_config(&[1, 2, 3], &admin_lines(port));
    c.start_all();
    c.wait_broadcast(&[1, 2, 3], T);
    assert_eq!(ask(c.ports[&1].2, b"ruok"), "imok");
    for sid in 1..=3 {
        let log = c.log(sid);
        assert!(
            log.lines().any(|l| l.contains(" WARN ")
                && l.contains("Problem starting AdminServer")
                && l.contains(&port.to_string())),
            "{log}"
        );
    }
}

#[test]
fn ensemble_enables_the_admin_server_and_prints_the_status_pages() {
    let tmp = tempfile::Builder::new().prefix("zkelect-ensemble-").tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkelect"))
        .args(["ensemble", "--nodes", "3", "--for", "8", "--dir"])
        .arg(tmp.path().join("ensemble"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run ensemble");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut urls = Vec::new();
    let mut settled = false;
    let end = Instant::now() + T;
    while !settled && Instant::now() < end {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) else { continue };
        if let Some(url) = line.split("status page ").nth(1) {
            urls.push(url.trim().to_string());
        }
        settled |= line.contains("settled after");
    }
    let answers: Vec<(u16, String)> = urls
        .iter()
        .map(|u| {
            let port: u16 = u.trim_start_matches("http://127.0.0.1:").trim_end_matches('/').parse().expect("port");
            let a = get(port, "/");
            (a.status, a.body)
        })
        .collect();
    let status = child.wait().expect("ensemble ends after --for");
    let _ = reader.join();
    assert!(status.success());
    assert_eq!(urls.len(), 3, "{urls:?}");
    assert!(settled);
    for (code, body) in answers {
        assert_eq!(code, 200);
        assert!(body.contains("<div class=\"value\" id=\"leader\">3"), "{body}");
    }
}
