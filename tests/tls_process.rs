//! Quorum TLS with real `zkelect start` processes, node N on 127.0.1.N (so that each certificate
//! matches its own node's configured host only: the binding of server ids to certificates is in
//! play on every connection) and certificates made by the test: election and peer sessions over
//! TLS on both ports, leader kill, restart, SIGSTOP, the operator's view, the rolling upgrade,
//! certificate reload, and store files a node cannot use.

mod common;

use common::certs::Leaf;
use common::cluster::Cluster;
use common::tls::{self, PLAINTEXT, PLAINTEXT_ACCEPTS_TLS, Pki, TLS_ACCEPTS_PLAINTEXT, TLS_ONLY, TlsClient};
use common::{free_ports, wait_for};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);
const ALL: [i64; 3] = [1, 2, 3];
/// What the nodes negotiate with each other (and with ZooKeeper 3.8): TLS 1.2 with an EC key.
const SUITE: &str = "TLSv1.2 - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";

fn tls_cluster(n: i64, extra: &str) -> Cluster {
    let mut c = Cluster::on_own_addresses(n, 0, extra);
    c.enable_tls(TLS_ONLY);
    c
}

fn others(all: &[i64], but: i64) -> Vec<i64> {
    all.iter().copied().filter(|s| *s != but).collect()
}

/// Writes `text` to `path` at once (a new file renamed over the old one, as a certificate
/// rotation does).
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// The body of GET /metrics on 127.0.0.1:`port`.
fn metrics(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.contains("zkelect_quorum_tls").then_some(out)
}

#[test]
fn three_nodes_elect_over_tls_on_both_ports_and_say_so() {
    let mport = free_ports(1)[0];
    let mut c = tls_cluster(3, "");
    c.append_config(&[1], &format!("metricsProvider.httpPort={mport}\nmetricsProvider.httpHost=127.0.0.1\n"));
    c.start_all();
    let (leader, _) = c.wait_broadcast(&ALL, T);
    for s in ALL {
        let log = c.log(s);
        assert!(log.contains("Using TLS encrypted quorum communication; port unification disabled"), "node {s}");
        // Election port, both directions, with the protocol and suite at INFO.
        assert!(log.contains("Accepted TLS connection from 127.0.0.1:"), "node {s}: {log}");
        assert!(log.contains(&format!("- {SUITE}")), "node {s}");
        assert!(!log.contains("Refusing"), "node {s}: {log}");
    }
    // Quorum port: every follower dialled the leader's quorum port with TLS, the leader accepted.
    let (q, _, _) = c.ports[&leader];
    for s in others(&ALL, leader) {
        assert!(c.log(s).contains(&format!("SSL handshake complete with 127.0.1.{leader}:{q} - {SUITE}")), "node {s}");
    }
    let accepted_learners = c
        .log(leader)
        .lines()
        .filter(|l| l.contains("[LearnerHandler-") && l.contains("Accepted TLS connection"))
        .count();
    assert!(accepted_learners >= 2, "{}", c.log(leader));

    // The operator's view: srvr, mntr, elec, metrics.
    for s in ALL {
        let srvr = c.ask(s, "srvr");
        assert!(srvr.contains("Quorum TLS: on (accepts TLS only)\n"), "{srvr}");
        let mntr = c.ask(s, "mntr");
        assert!(mntr.contains("zk_quorum_tls\t1\n") && mntr.contains("zk_quorum_tls_accepts\tTLS only\n"), "{mntr}");
        let elec = wait_for(T, "both peers connected", || {
            let elec = c.ask(s, "elec");
            (elec.matches("connected; ").count() >= 2 && !elec.contains("not connected")).then_some(elec)
        });
        assert_eq!(elec.matches(&format!("; TLS {SUITE};")).count(), 2, "node {s}: {elec}");
        assert!(!elec.contains("plaintext"), "{elec}");
    }
    let m = wait_for(T, "metrics of node 1", || metrics(mport));
    assert!(m.contains("\nzkelect_quorum_tls 1\n"), "{m}");
    for peer in [2, 3] {
        assert!(m.contains(&format!("zkelect_peer_tls{{sid=\"{peer}\"}} 1\n")), "{m}");
    }
}

#[test]
fn leader_kill_restart_and_sigstop_over_tls() {
    let mut c = tls_cluster(3, "");
    c.start_all();
    let (mut leader, mut epoch) = c.wait_broadcast(&ALL, T);
    // kill -9 of the leader: the survivors elect over TLS; the old leader comes back as a follower.
    for round in 0..2 {
        c.kill(leader);
        let (l2, e2) = c.wait_new_epoch(&others(&ALL, leader), epoch, T);
        assert!(l2 != leader && e2 > epoch, "round {round}");
        c.start(leader);
        assert_eq!(c.wait_broadcast(&ALL, T), (l2, e2), "round {round}");
        (leader, epoch) = (l2, e2);
    }
    // SIGSTOP of the leader: the others notice, elect; SIGCONT: the stopped one follows them.
    c.signal(leader, "STOP");
    let (l2, e2) = c.wait_new_epoch(&others(&ALL, leader), epoch, T);
    assert_ne!(l2, leader);
    c.signal(leader, "CONT");
    assert_eq!(c.wait_broadcast(&ALL, T), (l2, e2));
    for s in ALL {
        let log = c.log(s);
        assert!(!log.contains("Refusing a connection"), "node {s}: {log}");
        // A killed peer's connection ends without close_notify, said plainly.
        assert!(!log.contains("docs.rs"), "node {s}: {log}");
    }
    assert!(
        ALL.iter().any(|s| c.log(*s).contains("the peer closed the connection without a TLS close_notify")),
        "no node saw a killed peer's connection end"
    );
}

#[test]
fn five_nodes_elect_and_survive_two_leader_kills_over_tls() {
    let all = [1, 2, 3, 4, 5];
    let mut c = tls_cluster(5, "");
    c.start_all();
    let (mut leader, mut epoch) = c.wait_broadcast(&all, T);
    let mut alive = all.to_vec();
    for _ in 0..2 {
        c.kill(leader);
        alive.retain(|s| *s != leader);
        (leader, epoch) = c.wait_new_epoch(&alive, epoch, T);
    }
    assert!(alive.contains(&leader));
}

/// Restarts `sid` with `mode` and waits for all three in broadcast under one leader.
fn restart_with(c: &mut Cluster, sid: i64, mode: &str) -> (i64, i64) {
    c.append_config(&[sid], mode);
    c.kill(sid);
    c.start(sid);
    c.wait_broadcast(&ALL, T)
}

#[test]
fn rolling_upgrade_to_tls_keeps_a_leader_at_every_step() {
    let mut c = Cluster::on_own_addresses(3, 0, "");
    c.rust_log = "info,net=debug".into();
    c.enable_tls(PLAINTEXT);
    c.start_all();
    c.wait_broadcast(&ALL, T);
    assert!(c.log(1).contains("Using insecure (non-TLS) quorum communication"));
    // ZooKeeper's documented order; each node restarted in turn, the leader among them.
    let steps = [
        (
            PLAINTEXT_ACCEPTS_TLS,
            "Using insecure (non-TLS) quorum communication; port unification enabled",
            "off (accepts TLS and plaintext)",
        ),
        (
            TLS_ACCEPTS_PLAINTEXT,
            "Using TLS encrypted quorum communication; port unification enabled",
            "on (accepts TLS and plaintext)",
        ),
        (TLS_ONLY, "Using TLS encrypted quorum communication; port unification disabled", "on (accepts TLS only)"),
    ];
    for (mode, line, srvr) in steps {
        for sid in ALL {
            let from = c.log_len(sid);
            let (leader, epoch) = restart_with(&mut c, sid, mode);
            println!("{mode:?}: node {sid} restarted; leader {leader} in epoch {epoch}");
            assert!(c.log(sid)[from..].contains(line), "node {sid}");
            assert!(c.ask(sid, "srvr").contains(&format!("Quorum TLS: {srvr}\n")));
        }
    }
    // In the middle step TLS and plaintext met: nodes already dialling TLS were accepted by nodes
    // that did not yet, and the other way round.
    assert!((1..=3).any(|s| c.log(s).contains("Accepted plaintext connection from")));
    // At the end every connection is TLS, both ports.
    let from = c.offsets();
    let (leader, epoch) = c.wait_broadcast(&ALL, T);
    c.kill(leader);
    let rest = others(&ALL, leader);
    c.wait_new_epoch(&rest, epoch, T);
    for s in rest {
        let tail = c.log(s)[from[&s]..].to_string();
        assert!(!tail.contains("Accepted plaintext connection"), "node {s}: {tail}");
        let elec = c.ask(s, "elec");
        assert!(elec.contains(&format!("; TLS {SUITE};")), "{elec}");
    }
}

#[test]
fn mixing_plaintext_and_tls_only_nodes_is_refused_with_a_clear_line() {
    // Skipping a step of the upgrade: a TLS-only node next to plaintext ones is refused (and the
    // plaintext majority goes on without it).
    let mut c = Cluster::on_own_addresses(3, 0, "");
    c.enable_tls(PLAINTEXT);
    c.append_config(&[3], TLS_ONLY);
    c.start_all();
    c.wait_broadcast(&[1, 2], T);
    // Node 3 keeps dialling 1 and 2 with TLS (they may never dial it once they have elected).
    let line = wait_for(T, "a plaintext node refusing node 3's TLS", || {
        [1, 2].iter().find_map(|s| {
            c.log(*s)
                .lines()
                .find(|l| {
                    l.contains(" WARN ")
                        && l.contains("Refusing a connection from 127.0.0.1:")
                        && l.contains("a TLS handshake, but this node accepts plaintext only")
                })
                .map(str::to_string)
        })
    });
    println!("{line}");
    assert!(c.broadcast(3).is_none(), "a TLS-only node joined plaintext nodes");
    assert!(!c.log(1).contains("is not in the configuration"), "{}", c.log(1));
}

#[test]
fn reload_uses_replaced_stores_for_new_connections_and_keeps_the_old_on_a_broken_one() {
    let mut c = tls_cluster(3, "sslQuorumReloadCertFiles=true\n");
    // Node 3's certificate comes from a second CA that nodes 1 and 2 do not trust yet.
    let ca2 = Pki::new(&c.dir.join("tls2"), "second test CA");
    let both = format!("{}{}", c.pki().ca.pem(), ca2.ca.pem());
    let trust3 = c.dir.join("tls2/trust3.pem");
    std::fs::write(&trust3, &both).expect("trust store of node 3");
    let key3 = ca2.node_store(3, "127.0.1.3".parse().expect("ip"));
    c.append_config(&[3], &tls::store_lines(&key3, &trust3));
    c.start(1);
    c.start(2);
    c.wait_broadcast(&[1, 2], T);
    c.start(3);
    for s in [1, 2] {
        wait_for(T, "node 3 refused", || {
            let log = c.log(s);
            log.lines()
                .any(|l| {
                    l.contains("WARN")
                        && l.contains("Refusing a connection from 127.0.0.1:")
                        && l.contains("UnknownIssuer")
                })
                .then_some(())
        });
    }
    assert!(c.broadcast(3).is_none());

    // The shared trust store of 1 and 2 now holds both CAs: node 3 is let in, no restart.
    replace_file(&c.pki().trust_store, &both);
    c.wait_broadcast(&ALL, T);
    for s in [1, 2] {
        assert!(c.log(s).contains("Quorum TLS key or trust store changed; new connections use the new material"));
        assert_eq!(c.log(s).matches("Starting zkelect").count(), 1, "node {s} restarted");
    }

    // Node 1's own certificate replaced: the next connection to it presents the new one.
    let key1 = c.pki().dir.join("node1.pem");
    let presented = |c: &Cluster| {
        let tcp = tls::connect_from("127.0.0.1".parse().expect("ip"), c.election_addr(1)).expect("connect");
        let client = TlsClient::handshake(tcp, tls::client_config(Some(&key1))).expect("handshake");
        client.conn.peer_certificates().and_then(|p| p.first().cloned()).expect("server certificate")
    };
    assert_eq!(presented(&c), tls::identity(&key1).0[0]);
    let new1 = ca2.ca.key_store(&Leaf::node(1, "127.0.1.1".parse().expect("ip"))).expect("new certificate");
    replace_file(&key1, &new1);
    let new_cert = tls::identity(&key1).0[0].clone();
    wait_for(T, "node 1 presenting its new certificate", || (presented(&c) == new_cert).then_some(()));

    // A broken replacement (half-written trust store): logged, and the previous material stays in
    // use. Node 3 restarted must be let in by 1 and 2 with the previous trust store.
    std::fs::write(&c.pki().trust_store, "-----BEGIN CERTIFICATE-----\nMIIB").expect("truncated trust store");
    let from = c.offsets();
    c.kill(3);
    c.start(3);
    c.wait_broadcast(&ALL, T);
    let elec = wait_for(T, "node 1 connected to node 3", || {
        let elec = c.ask(1, "elec");
        elec.lines().any(|l| l.trim_start().starts_with("3 (") && l.contains(": connected;")).then_some(elec)
    });
    assert!(elec.contains(SUITE), "{elec}");
    let warned = |s: i64| {
        c.log(s)[from[&s]..].lines().any(|l| {
            l.contains(" WARN ")
                && l.contains("Cannot use the replaced quorum TLS store")
                && l.contains(&c.pki().trust_store.display().to_string())
                && l.contains("keeping the previous material")
        })
    };
    assert!(warned(1) || warned(2), "{}\n{}", c.log(1), c.log(2));

    // Repaired: the next connection picks the good file up again.
    let reloads = |c: &Cluster| c.log(1).matches("Quorum TLS key or trust store changed").count();
    let before = reloads(&c);
    replace_file(&c.pki().trust_store, &both);
    wait_for(T, "node 1 reading the repaired trust store", || {
        let _ = presented(&c);
        (reloads(&c) > before).then_some(())
    });
}

#[test]
fn revocation_settings_are_not_silently_ignored() {
    let mut c = tls_cluster(3, "");
    c.append_config(&[1], "ssl.quorum.crl=true\n");
    c.start(1);
    wait_for(T, "a warning about ssl.quorum.crl", || {
        c.log(1)
            .lines()
            .any(|l| l.contains(" WARN ") && l.contains("zkelect does not check certificate revocation"))
            .then_some(())
    });
}

/// A key store holding a certificate and a key of a type zkelect (and ZooKeeper) cannot sign
/// with: an X25519 key in PKCS#8.
fn x25519_key_store(good: &Path) -> String {
    let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20];
    der.extend((1..=32u8).collect::<Vec<_>>());
    let b64 = base64(&der);
    let cert_pem: String = std::fs::read_to_string(good)
        .expect("key store")
        .split_inclusive('\n')
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .collect();
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n{cert_pem}")
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for ch in bytes.chunks(3) {
        let b = [ch[0], *ch.get(1).unwrap_or(&0), *ch.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= ch.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Node 1 with `lines` appended to its zoo.cfg must stop at start with exit status 2 and a line
/// that says `problem` and names `file`; that line.
fn refused_at_start(c: &mut Cluster, lines: &str, what: &str, problem: &str, file: &Path) -> String {
    c.append_config(&[1], lines);
    let from = c.log_len(1);
    c.start(1);
    let code = c.wait_exit(1, T);
    let tail = c.log(1)[from..].to_string();
    assert_eq!(code, Some(2), "{what}: {tail}");
    let line = tail.lines().find(|l| l.contains(problem)).unwrap_or_else(|| panic!("{what}: no {problem:?} in {tail}"));
    assert!(line.contains(&file.display().to_string()), "{what}: the line does not name the file: {line}");
    line.to_string()
}

#[test]
fn unusable_store_files_stop_the_node_at_start_naming_the_file() {
    let mut c = tls_cluster(3, "");
    let dir = c.dir.join("bad");
    std::fs::create_dir_all(&dir).expect("dir");
    let good_key = c.pki().dir.join("node1.pem");
    let trust = c.pki().trust_store.clone();
    let (missing, empty, x25519) = (dir.join("missing.pem"), dir.join("empty.pem"), dir.join("x25519.pem"));
    std::fs::write(&empty, "").expect("empty");
    std::fs::write(&x25519, x25519_key_store(&good_key)).expect("x25519");
    // Stores of a type zkelect does not read.
    let (p12, jks) = (dir.join("node1.p12"), dir.join("trust.jks"));
    std::fs::write(&p12, b"\x30\x82").expect("p12");
    std::fs::write(&jks, b"\xfe\xed\xfe\xed").expect("jks");
    // (case, key store, trust store, what the error line says)
    let cases: [(&str, &Path, &Path, &str); 7] = [
        ("missing key store", &missing, &trust, "cannot read the keyStore"),
        ("empty key store", &empty, &trust, "the keyStore is empty"),
        ("key of an unsupported type", &x25519, &trust, "unsupported private key type"),
        ("missing trust store", &good_key, &missing, "cannot read the trustStore"),
        ("empty trust store", &good_key, &empty, "the trustStore is empty"),
        ("PKCS#12 key store", &p12, &trust, "PKCS#12 stores are not read by zkelect; convert it to PEM"),
        ("JKS trust store", &good_key, &jks, "JKS stores are not read by zkelect; convert it to PKCS#12"),
    ];
    let mut seen = BTreeMap::new();
    for (what, key, trust, problem) in cases {
        let bad = if problem.contains("trustStore") || what.contains("trust store") { trust } else { key };
        // The type as ZooKeeper takes it from the file's extension (the cluster's zoo.cfg names PEM).
        let type_of = |p: &Path| match p.extension().and_then(|e| e.to_str()) {
            Some("p12") => "PKCS12",
            Some("jks") => "JKS",
            _ => "PEM",
        };
        let lines = tls::store_lines(key, trust)
            .replace("keyStore.type=PEM", &format!("keyStore.type={}", type_of(key)))
            .replace("trustStore.type=PEM", &format!("trustStore.type={}", type_of(trust)));
        let line = refused_at_start(&mut c, &lines, what, problem, bad);
        // ... and says what to do.
        assert!(
            ["PEM file holding", "use an EC P-256 or RSA key", "-out store.pem"].iter().any(|w| line.contains(w)),
            "{what}: {line}"
        );
        seen.insert(what, line.to_string());
    }
    for (what, line) in &seen {
        println!("{what}: {line}");
    }
    // With its stores back, node 1 runs and elects with the others.
    c.append_config(&[1], &tls::store_lines(&good_key, &c.pki().trust_store.clone()));
    c.start_all();
    c.wait_broadcast(&ALL, T);
}

/// Rewrites node `sid`'s PEM key store with its key encrypted by `openssl pkcs8 -topk8 -v2
/// aes-256-cbc` (what an operator runs), the certificates after it; returns the new file.
fn encrypted_key_store(c: &Cluster, sid: i64, password: &str) -> std::path::PathBuf {
    let plain = c.pki().dir.join(format!("node{sid}.pem"));
    let text = std::fs::read_to_string(&plain).expect("key store");
    let out = std::process::Command::new("openssl")
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", &format!("pass:{password}"), "-in"])
        .arg(&plain)
        .output()
        .expect("openssl (package openssl)");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).expect("PEM");
    assert!(key.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{key}");
    let certs = &text[text.find("-----BEGIN CERTIFICATE-----").expect("chain")..];
    let path = c.pki().dir.join(format!("node{sid}-encrypted.pem"));
    std::fs::write(&path, format!("{key}{certs}")).expect("write");
    path
}

/// Encrypted keys as ZooKeeper reads them: `ssl.quorum.keyStore.password` (or `passwordPath`)
/// decrypts a PKCS#8 `ENCRYPTED PRIVATE KEY`; a missing or wrong password stops the node at start
/// with a line that names the file and the key to set.
#[test]
fn encrypted_keys_are_read_with_the_key_store_password() {
    let mut c = tls_cluster(3, "");
    let trust = c.pki().trust_store.clone();
    let stores: Vec<_> = ALL.iter().map(|s| encrypted_key_store(&c, *s, &format!("secret {s}"))).collect();
    let password_file = c.dir.join("password3");
    std::fs::write(&password_file, "secret 3\n").expect("password file");
    // (case, password lines, what the error line says)
    let bad = [
        ("no password", String::new(), "the key is encrypted: set ssl.quorum.keyStore.password"),
        ("wrong password", "ssl.quorum.keyStore.password=secret 2\n".to_string(), "cannot decrypt the key"),
    ];
    for (what, password, problem) in &bad {
        let lines = format!("{}{password}", tls::store_lines(&stores[0], &trust));
        let line = refused_at_start(&mut c, &lines, what, problem, &stores[0]);
        println!("{what}: {line}");
    }
    c.append_config(&[1], &format!("{}ssl.quorum.keyStore.password=secret 1\n", tls::store_lines(&stores[0], &trust)));
    c.append_config(&[2], &format!("{}ssl.quorum.keyStore.password=secret 2\n", tls::store_lines(&stores[1], &trust)));
    c.append_config(
        &[3],
        &format!(
            "{}ssl.quorum.keyStore.passwordPath={}\n",
            tls::store_lines(&stores[2], &trust),
            password_file.display()
        ),
    );
    c.start_all();
    let (leader, epoch) = c.wait_broadcast(&ALL, T);
    c.kill(leader);
    let (l2, e2) = c.wait_new_epoch(&others(&ALL, leader), epoch, T);
    assert!(l2 != leader && e2 > epoch);
    for s in ALL {
        assert!(!c.log(s).contains("Refusing a connection"), "node {s}: {}", c.log(s));
    }
}

#[test]
fn ensemble_command_with_tls_shows_the_handshakes_and_its_peers_over_tls() {
    let tmp = tempfile::Builder::new().prefix("zkelect-ensemble-").tempdir().expect("temp dir");
    let dir = tmp.path().join("ensemble");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zkelect"))
        .args(["ensemble", "--tls", "--nodes", "3", "--for", "3", "--dir"])
        .arg(&dir)
        .output()
        .expect("run ensemble");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("n2: pid ") && text.contains(", election 127.0.1.2:"), "{text}");
    assert!(text.contains("settled after") && text.contains("leader is server 3"), "{text}");
    assert!(text.contains("] SSL handshake complete with 127.0.1."), "{text}");
    assert!(text.contains("[n1] Quorum TLS: on (accepts TLS only)"), "{text}");
    for peer in [2, 3] {
        assert!(text.contains(&format!("[n1] peer {peer} (participant, 127.0.1.{peer}:")), "{text}");
    }
    assert_eq!(text.matches(&format!("): TLS {SUITE}\n")).count(), 2, "{text}");
    assert!(!text.contains("Refusing"), "{text}");
    for f in ["ca.pem", "node1.pem", "node2.pem", "node3.pem"] {
        assert!(dir.join("certs").join(f).exists(), "{f}");
    }
    let cfg = std::fs::read_to_string(dir.join("n1/zoo.cfg")).expect("zoo.cfg");
    assert!(cfg.contains("sslQuorum=true\n") && cfg.contains("ssl.quorum.keyStore.type=PEM\n"), "{cfg}");
}
