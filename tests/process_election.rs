//! Real `zkelect start` processes electing a leader on 127.0.0.1.

mod common;

use common::cluster::Cluster;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn assert_one_leader(c: &Cluster, sids: &[i64], leader: i64) {
    let d = c.wait_decided(sids, &Default::default(), T);
    for (sid, (state, l)) in &d {
        assert_eq!(*l, leader, "node {sid} decided {state} {l}: {d:?}");
        let want = if *sid == leader {
            "LEADING"
        } else if c.observers.contains(sid) {
            "OBSERVING"
        } else {
            "FOLLOWING"
        };
        assert_eq!(state, want, "node {sid}");
    }
}

#[test]
fn three_nodes_elect_the_highest_sid() {
    let mut c = Cluster::new(3, 0, "");
    c.start_all();
    assert_one_leader(&c, &[1, 2, 3], 3);
    assert!(c.log(3).contains("LEADING - LEADER ELECTION TOOK - "));
    assert!(c.log(1).contains("FOLLOWING - LEADER ELECTION TOOK - "));
}

#[test]
fn five_nodes_elect_the_highest_sid() {
    let mut c = Cluster::new(5, 0, "");
    c.start_all();
    assert_one_leader(&c, &[1, 2, 3, 4, 5], 5);
}

#[test]
fn any_start_order_gives_the_same_leader() {
    for order in [[3, 2, 1], [1, 3, 2], [2, 1, 3]] {
        let mut c = Cluster::new(3, 0, "");
        for s in order {
            c.start(s);
        }
        assert_one_leader(&c, &[1, 2, 3], 3);
    }
}

#[test]
fn one_at_a_time_with_pauses() {
    let mut c = Cluster::new(3, 0, "");
    c.start(3);
    std::thread::sleep(Duration::from_millis(800));
    c.start(1);
    // 1 and 3 form a quorum and decide before 2 exists.
    assert_one_leader(&c, &[1, 3], 3);
    std::thread::sleep(Duration::from_millis(500));
    c.start(2);
    assert_one_leader(&c, &[1, 2, 3], 3);
    // 2 joined the running ensemble through the out-of-election replies.
    assert!(c.log(2).contains("n.state:LEADING, n.leader:3"), "{}", c.log(2));
}

#[test]
fn highest_sid_starting_last_joins_as_follower() {
    let mut c = Cluster::new(3, 0, "");
    c.start(1);
    c.start(2);
    assert_one_leader(&c, &[1, 2], 2);
    c.start(3);
    assert_one_leader(&c, &[1, 2, 3], 2);
}

#[test]
fn observer_ends_observing_the_leader() {
    let mut c = Cluster::new(3, 1, "");
    c.start_all();
    assert_one_leader(&c, &[1, 2, 3, 4], 3);
}

#[test]
fn lonely_node_stays_looking_with_backoff() {
    let mut c = Cluster::new(3, 0, "");
    c.start(1);
    common::wait_for(T, "backoff to reach the 1600 ms ceiling", || {
        c.log(1).contains("Notification time out: 1600 ms").then_some(())
    });
    let log = c.log(1);
    for step in ["400", "800", "1600"] {
        assert!(log.contains(&format!("Notification time out: {step} ms")), "missing {step}");
    }
    assert!(c.last_decision(1, 0).is_none(), "a lone node never decides");
    assert_eq!(c.current_state(1).as_deref(), Some("looking"));
}

#[test]
fn bad_config_exits_with_a_clear_error() {
    let c = Cluster::new(3, 0, "server.3=127.0.0.1:1:1\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zkelect"))
        .arg("start")
        .arg(c.node_dir(1).join("zoo.cfg"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("zoo.cfg:"), "{err}");
    assert!(err.contains("duplicate server id 3"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn shipped_example_configs_load() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/config")).expect("config dir") {
        let dir = entry.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).expect("example dir") {
            let path = f.expect("file").path();
            // Only the zoo.cfg files (next to them: data/<N>/myid, a systemd unit).
            if path.extension().is_none_or(|e| e != "cfg") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            zkelect::config::QuorumPeerConfig::parse(&text, &path.display().to_string())
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn ensemble_command_shows_one_leader() {
    let tmp = tempfile::Builder::new().prefix("zkelect-ensemble-").tempdir().expect("temp dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zkelect"))
        .args(["ensemble", "--nodes", "3", "--for", "5", "--dir"])
        .arg(tmp.path().join("ensemble"))
        .output()
        .expect("run ensemble");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("settled after"), "{text}");
    assert!(text.contains("leader is server 3"), "{text}");
    assert!(text.contains("stopped all 3 nodes"), "{text}");
}
