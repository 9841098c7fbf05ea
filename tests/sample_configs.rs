//! The sample configurations in config/ run as documented: from the repository root,
//! `zkelect start config/<set>/zoo<N>.cfg`, with each node's myid shipped in
//! `config/<set>/data/<N>/myid`. Each set is copied into a temp directory as shipped and started
//! there (only its ports are swapped for free ones, so that tests and a running sample do not
//! collide), and must elect the leader it is meant to.

mod common;

use common::cluster::broadcast_of;
use common::daemon::Daemon;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The sets, their node count, who leads, and which nodes observe.
const SETS: [(&str, i64, i64, &[i64]); 3] =
    [("three-node", 3, 3, &[]), ("observer", 4, 3, &[4]), ("hierarchical", 9, 6, &[])];

fn cfg_path(set: &str, sid: i64) -> String {
    format!("config/{set}/zoo{sid}.cfg")
}

/// Every port a zoo.cfg names (clientPort and the server lines' quorum and election ports).
fn ports(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(p) = line.strip_prefix("clientPort=") {
            out.push(p.trim().parse().expect("clientPort"));
        } else if line.starts_with("server.")
            && let Some((_, addr)) = line.split_once('=')
        {
            out.extend(addr.split(':').skip(1).take(2).map(|p| p.parse::<u16>().expect("port")));
        }
    }
    out
}

/// `text` with its ports replaced through `map` (the lines are otherwise as shipped).
fn with_ports(text: &str, map: &BTreeMap<u16, u16>) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = if let Some(p) = line.strip_prefix("clientPort=") {
            format!("clientPort={}", map[&p.trim().parse::<u16>().expect("port")])
        } else if line.starts_with("server.")
            && let Some((key, addr)) = line.split_once('=')
        {
            let mut parts: Vec<String> = addr.split(':').map(str::to_string).collect();
            for p in parts.iter_mut().skip(1).take(2) {
                *p = map[&p.parse::<u16>().expect("port")].to_string();
            }
            format!("{key}={}", parts.join(":"))
        } else {
            line.to_string()
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            // What a run from the repository root left behind is not part of the sample.
            if e.file_name() != "version-2" {
                copy_dir(&e.path(), &target);
            }
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

#[test]
fn the_shipped_files_load_from_the_repository_root_with_their_myid() {
    // cargo runs the tests in the package root: the working directory the samples document.
    assert_eq!(std::env::current_dir().expect("cwd"), PathBuf::from(ROOT));
    let mut seen = BTreeSet::new();
    for (set, n, _, observers) in SETS {
        for sid in 1..=n {
            let cfg = zkelect::config::QuorumPeerConfig::load(Path::new(&cfg_path(set, sid)))
                .unwrap_or_else(|e| panic!("{}: {e}", cfg_path(set, sid)));
            assert_eq!(cfg.my_id, sid, "{}", cfg_path(set, sid));
            assert_eq!(cfg.data_dir, PathBuf::from(format!("config/{set}/data/{sid}")));
            assert_eq!(cfg.quorum_verifier.is_voter(sid), !observers.contains(&sid), "{}", cfg_path(set, sid));
            let text = std::fs::read_to_string(cfg_path(set, sid)).expect("read");
            for p in ports(&text) {
                assert!(![2181, 2888, 3888].contains(&p), "{}: port {p} is a local ZooKeeper's", cfg_path(set, sid));
                // Each set's nodes share their server lines, and the sets share no port.
                seen.insert((p, set));
            }
        }
    }
    let by_port: BTreeMap<u16, BTreeSet<&str>> = seen.iter().fold(BTreeMap::new(), |mut m, (p, s)| {
        m.entry(*p).or_default().insert(*s);
        m
    });
    for (p, sets) in by_port {
        assert_eq!(sets.len(), 1, "port {p} is used by {sets:?}");
    }
}

fn run_set(set: &str, n: i64, leader: i64, observers: &[i64]) {
    let tmp = tempfile::Builder::new().prefix("zkelect-sample-").tempdir().expect("tmp");
    let root = tmp.path();
    copy_dir(&Path::new(ROOT).join("config").join(set), &root.join("config").join(set));
    let texts: Vec<String> =
        (1..=n).map(|sid| std::fs::read_to_string(root.join(cfg_path(set, sid))).expect("read")).collect();
    let shipped: BTreeSet<u16> = texts.iter().flat_map(|t| ports(t)).collect();
    let map: BTreeMap<u16, u16> = shipped.iter().copied().zip(common::free_ports(shipped.len())).collect();
    for (sid, text) in (1..=n).zip(&texts) {
        std::fs::write(root.join(cfg_path(set, sid)), with_ports(text, &map)).expect("write");
    }
    let log = |sid: i64| root.join(format!("zkelect-{sid}.log"));
    // As documented: from the repository root (here the copy's), `zkelect start config/<set>/zoo<N>.cfg`.
    let _nodes: Vec<Daemon> =
        (1..=n).map(|sid| Daemon::start(Path::new(&cfg_path(set, sid)), root, &log(sid), &[])).collect();
    let read = |sid: i64| std::fs::read_to_string(log(sid)).unwrap_or_default();
    let all: Vec<(String, i64, i64)> = common::wait_for(T, &format!("the {set} sample in broadcast"), || {
        let v: Vec<_> = (1..=n).map(|sid| broadcast_of(&read(sid))).collect::<Option<_>>()?;
        v.iter().all(|b| b.1 == v[0].1 && b.2 == v[0].2).then_some(v)
    });
    for (sid, (state, l, _)) in (1..=n).zip(&all) {
        let expect = match sid {
            s if s == leader => "leading",
            s if observers.contains(&s) => "observing",
            _ => "following",
        };
        assert_eq!((state.as_str(), *l), (expect, leader), "{set} node {sid}:\n{}", read(sid));
    }
    // The data went where the sample says, next to the shipped myid.
    assert!(root.join(format!("config/{set}/data/1/version-2/currentEpoch")).exists());
}

#[test]
fn three_node_sample_elects_server_3() {
    run_set(SETS[0].0, SETS[0].1, SETS[0].2, SETS[0].3);
}

#[test]
fn observer_sample_elects_server_3_and_server_4_observes() {
    run_set(SETS[1].0, SETS[1].1, SETS[1].2, SETS[1].3);
}

#[test]
fn hierarchical_sample_elects_server_6() {
    run_set(SETS[2].0, SETS[2].1, SETS[2].2, SETS[2].3);
}
