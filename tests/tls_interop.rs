//! Quorum TLS between Apache ZooKeeper 3.8 (Debian's package, netty-codec on its classpath) and
//! zkelect, node N on 127.0.1.N, certificates made by the test: mixed ensembles with a ZooKeeper
//! majority and with a zkelect majority elect over TLS in both directions on the election port
//! (and ZooKeeper learners reach a zkelect leader's quorum port over TLS), survive a leader kill,
//! and go through ZooKeeper's rolling upgrade from plaintext to TLS with a leader after every
//! restart. Tier `interop`; the scenarios run one at a time (JVMs are heavy on 2 cores).

mod common;

use common::cluster::Cluster;
use common::tier::{self, Tier};
use common::tls::{PLAINTEXT, PLAINTEXT_ACCEPTS_TLS, TLS_ACCEPTS_PLAINTEXT, TLS_ONLY};
use common::wait_for;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());
const T: Duration = Duration::from_secs(60);
const TICK: &str = "tickTime=200\n";
const SUITE: &str = "TLSv1.2 - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";

/// Lines that would mean a TLS (or wire) incompatibility between the two implementations. (A
/// handshake cut short by a killed node is no incompatibility: ZooKeeper then logs
/// `SSLHandshakeException: Remote host terminated the handshake`, which is allowed.)
const BROKEN: &[&str] = &[
    // ZooKeeper: a certificate or name refused, no TLS suite in common, a dead listener.
    "Failed to verify",
    "PKIX path",
    "certificate_unknown",
    "bad_certificate",
    "unknown_ca",
    "handshake_failure",
    "no cipher suites in common",
    "NoClassDefFoundError",
    "I won't be able to participate",
    "Initial message parsing error",
    // zkelect: a refused certificate or claim.
    "invalid peer certificate",
    "peer sent no certificates",
    "does not name",
    "Blocked insecure connection attempt",
];

fn setup() -> Option<parking_lot::MutexGuard<'static, ()>> {
    tier::enabled(Tier::Interop).then(|| SERIAL.lock())
}

fn assert_no_tls_trouble(c: &Cluster) {
    for sid in c.ports.keys() {
        let log = c.log(*sid);
        for bad in BROKEN {
            let line = log.lines().find(|l| l.contains(bad));
            assert!(line.is_none(), "node {sid} ({}): {line:?}", if c.is_java(*sid) { "ZooKeeper" } else { "zkelect" });
        }
    }
}

/// A mixed ensemble of `n` nodes on their own addresses, `java` run by ZooKeeper, in `mode`.
fn mixed_tls(n: i64, java: &[i64], mode: &str) -> Cluster {
    let mut c = Cluster::mixed_on_own_addresses(n, java, TICK);
    c.enable_tls(mode);
    c
}

/// Waits until the latest decisions (since `from`) of all listed nodes name one leader.
fn agree_since(c: &Cluster, sids: &[i64], from: &BTreeMap<i64, usize>) -> i64 {
    wait_for(T, &format!("nodes {sids:?} to agree on a leader"), || {
        let leaders: BTreeSet<i64> = sids
            .iter()
            .map(|s| c.decisions(*s, from.get(s).copied().unwrap_or(0)).last().map(|d| d.1))
            .collect::<Option<_>>()?;
        (leaders.len() == 1).then(|| *leaders.iter().next().unwrap_or(&0))
    })
}

/// Both directions of the election port between ZooKeeper node `j` and zkelect node `z`, seen in
/// their logs: each accepted the other's TLS connection and completed its own dial's handshake.
/// (Who dials whom first is a race; a node started after the others dials them all.)
fn tls_both_ways(c: &Cluster, j: i64, z: i64) {
    let (je, ze) = (c.ports[&j].1, c.ports[&z].1);
    wait_for(T, &format!("TLS between ZooKeeper {j} and zkelect {z}"), || {
        let (jlog, zlog) = (c.log(j), c.log(z));
        let z_dialled = zlog.contains(&format!("SSL handshake complete with 127.0.1.{j}:{je} - {SUITE}"));
        let j_dialled = jlog.contains(&format!("SSL handshake complete with /127.0.1.{z}:{ze} - {SUITE}"));
        // Both accept from 127.0.0.1 (every loopback dial's source): the other's dial is there.
        let z_accepted =
            zlog.lines().any(|l| l.contains("Accepted TLS connection from 127.0.0.1:") && l.contains(SUITE));
        let j_accepted = jlog.lines().any(|l| {
            l.contains(&format!("ListenerHandler-/127.0.1.{j}:{je}"))
                && l.contains("Accepted TLS connection from /127.0.0.1:")
                && l.contains(SUITE)
        });
        (z_dialled && z_accepted && j_dialled && j_accepted).then_some(())
    });
}

#[test]
fn zookeeper_majority_and_zkelect_elect_over_tls() {
    let Some(_turn) = setup() else { return };
    // zkelect 1 is dialled by both ZooKeeper servers and dials them (then drops its dial: the
    // larger id's connection is kept), so both directions run a TLS handshake.
    // It starts last, so it dials them first.
    let mut c = mixed_tls(3, &[2, 3], TLS_ONLY);
    c.start(2);
    c.start(3);
    assert_eq!(agree_since(&c, &[2, 3], &BTreeMap::new()), 3);
    c.start(1);
    assert_eq!(agree_since(&c, &[1, 2, 3], &BTreeMap::new()), 3);
    for j in [2, 3] {
        tls_both_ways(&c, j, 1);
    }
    wait_for(T, "zkelect to confirm the ZooKeeper leader", || {
        c.log(1).contains("Leader 3 confirmed through the election in epoch").then_some(())
    });
    // zkelect 1 reached the ZooKeeper leader's quorum port over TLS too.
    let (q3, _, _) = c.ports[&3];
    assert!(c.log(1).contains(&format!("SSL handshake complete with 127.0.1.3:{q3} - {SUITE}")), "{}", c.log(1));
    let srvr = c.ask(1, "srvr");
    assert!(srvr.contains("Quorum TLS: on (accepts TLS only)"), "{srvr}");
    assert_no_tls_trouble(&c);
    // kill -9 of the ZooKeeper leader: the survivors agree over TLS.
    let from = c.offsets();
    c.kill(3);
    assert_eq!(agree_since(&c, &[1, 2], &from), 2);
    assert_no_tls_trouble(&c);
}

#[test]
fn zkelect_majority_leads_over_tls_and_zookeeper_reaches_its_quorum_port() {
    let Some(_turn) = setup() else { return };
    // ZooKeeper 1 starts last, so it dials the zkelect nodes first.
    let mut c = mixed_tls(3, &[1], TLS_ONLY);
    c.start(2);
    c.start(3);
    let (leader, _) = c.wait_broadcast(&[2, 3], T);
    let other = 5 - leader;
    c.start(1);
    assert_eq!(agree_since(&c, &[1, 2, 3], &BTreeMap::new()), leader);
    tls_both_ways(&c, 1, 2);
    tls_both_ways(&c, 1, 3);
    // ZooKeeper 1 follows the zkelect leader: its learner completes a TLS handshake with the
    // leader's quorum port (certificate checked against server 1's host) and is then refused as a
    // Zab learner.
    wait_for(T, "ZooKeeper's learner over TLS", || {
        let log = c.log(leader);
        let tls =
            log.lines().any(|l| l.contains("[LearnerHandler-127.0.0.1:") && l.contains("Accepted TLS connection"));
        (tls && log.contains("Refusing ZooKeeper (Zab) learner sid 1 ")).then_some(())
    });
    let (q, _, _) = c.ports[&leader];
    assert!(c.log(1).contains(&format!("127.0.1.{leader}:{q}")), "ZooKeeper 1 never dialled the leader's quorum port");
    assert_no_tls_trouble(&c);
    // kill -9 of the zkelect leader: the survivors agree over TLS.
    let from = c.offsets();
    c.kill(leader);
    assert_eq!(agree_since(&c, &[1, other], &from), other);
    assert_no_tls_trouble(&c);
}

#[test]
fn rolling_upgrade_of_a_mixed_ensemble_keeps_a_leader_at_every_step() {
    let Some(_turn) = setup() else { return };
    // ZooKeeper 2 between zkelect 1 and 3: it dials 1, and 3 dials it.
    let mut c = mixed_tls(3, &[2], PLAINTEXT);
    c.start_all();
    agree_since(&c, &[1, 2, 3], &BTreeMap::new());
    let steps = [
        (PLAINTEXT_ACCEPTS_TLS, "Port unification enabled", "port unification enabled"),
        (TLS_ACCEPTS_PLAINTEXT, "Using TLS encrypted quorum communication", "Using TLS encrypted quorum communication"),
        (TLS_ONLY, "Port unification disabled", "port unification disabled"),
    ];
    for (mode, java_line, zkelect_line) in steps {
        for sid in [1, 2, 3] {
            c.append_config(&[sid], mode);
            c.kill(sid);
            // The restarted node decides anew; the others may simply keep their leader.
            let from = BTreeMap::from([(sid, c.log_len(sid))]);
            c.start(sid);
            let leader = agree_since(&c, &[1, 2, 3], &from);
            println!("{mode:?}: node {sid} restarted, leader {leader}");
            let line = if c.is_java(sid) { java_line } else { zkelect_line };
            assert!(c.log(sid)[from[&sid]..].contains(line), "node {sid}: no {line:?}");
        }
    }
    // During the middle step TLS and plaintext met across implementations.
    assert!(c.log(2).contains("Accepted plaintext connection from"), "ZooKeeper never took a plaintext peer");
    // At the end both directions are TLS.
    tls_both_ways(&c, 2, 1);
    tls_both_ways(&c, 2, 3);
    let leader = agree_since(&c, &[1, 2, 3], &BTreeMap::new());
    let from = c.offsets();
    c.kill(leader);
    let rest: Vec<i64> = [1, 2, 3].into_iter().filter(|s| *s != leader).collect();
    agree_since(&c, &rest, &from);
    assert_no_tls_trouble(&c);
}
