//! `zkelect ensemble` as a process: stop signals stop every node it started, a killed node does
//! not make a re-elected ensemble a failure, a node that exits shows why, and nothing is left in
//! the temp directory unless `--keep` asks for it. The ensemble and every node it printed are
//! killed by PID when a test ends (see `common::daemon`).

mod common;

use common::daemon::{Daemon, ensemble_pids, runs_zkelect};
use std::path::Path;
use std::time::Duration;
use zkelect::runtime::signals::{self, Signal};

const T: Duration = Duration::from_secs(30);

/// `zkelect ensemble <args>` with TMPDIR in `tmp`; waits until it has printed its nodes' PIDs.
fn ensemble(tmp: &Path, args: &[&str]) -> Daemon {
    let tmpdir = tmp.join("tmp");
    std::fs::create_dir_all(&tmpdir).expect("tmp");
    let tmpdir = tmpdir.display().to_string();
    let mut all = vec!["ensemble"];
    all.extend_from_slice(args);
    let mut d = Daemon::spawn(&all, &[("TMPDIR", &tmpdir), ("RUST_LOG", "info")], &tmp.join("ensemble.err"));
    let nodes: usize = args.iter().skip_while(|a| **a != "--nodes").nth(1).map_or(3, |n| n.parse().expect("N"));
    let pids = common::wait_for(T, "the nodes' PIDs", || {
        let pids = ensemble_pids(&d.stdout());
        (pids.len() == nodes).then_some(pids)
    });
    for pid in pids.values() {
        d.adopt(*pid);
    }
    d
}

fn pids(d: &Daemon) -> Vec<u32> {
    ensemble_pids(&d.stdout()).into_values().collect()
}

fn stderr(tmp: &Path) -> String {
    std::fs::read_to_string(tmp.join("ensemble.err")).unwrap_or_default()
}

fn stops_on(signal: Signal) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("ensemble");
    let mut d = ensemble(tmp.path(), &["--nodes", "3", "--dir", &dir.display().to_string()]);
    d.wait_stdout(T, "settled after");
    d.signal(signal);
    let status = d.wait_exit(T);
    let out = d.stdout_text();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{out}\n{}", stderr(tmp.path()));
    assert!(out.contains(&format!("received {signal}: stopping the nodes\nstopped all 3 nodes")), "{out}");
    assert!(out.contains(&format!("configs and logs are in {}", dir.display())), "{out}");
    for pid in pids(&d) {
        assert!(!runs_zkelect(pid), "node pid {pid} still runs after {signal}");
    }
    // The nodes were stopped in order, not killed.
    for sid in 1..=3 {
        let log = std::fs::read_to_string(dir.join(format!("n{sid}/zkelect.log"))).expect("node log");
        assert!(log.contains("Shut down after SIGTERM; exiting with code 0"), "n{sid}: {log}");
    }
}

#[test]
fn sigterm_stops_every_node() {
    stops_on(Signal::Term);
}

#[test]
fn sigint_stops_every_node() {
    stops_on(Signal::Int);
}

#[test]
fn sighup_stops_every_node() {
    stops_on(Signal::Hup);
}

/// SIGKILL cannot be caught: the kernel ends the nodes with the ensemble (PR_SET_PDEATHSIG).
#[test]
fn sigkill_of_the_ensemble_leaves_no_node_behind() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut d = ensemble(tmp.path(), &["--nodes", "3"]);
    d.wait_stdout(T, "settled after");
    let nodes = pids(&d);
    d.signal(Signal::Kill);
    d.wait_exit(T);
    common::wait_for(T, "the nodes to end with the ensemble", || nodes.iter().all(|p| !runs_zkelect(*p)).then_some(()));
}

#[test]
fn a_killed_leader_is_replaced_and_the_run_still_succeeds() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut d = ensemble(tmp.path(), &["--nodes", "3"]);
    d.wait_stdout(T, "settled after");
    assert!(d.stdout_text().contains("leader is server 3 (epoch 1), 2 followers"), "{}", d.stdout_text());
    let leader = ensemble_pids(&d.stdout())[&3];
    signals::send(leader, Signal::Kill).expect("kill -9 the leader");
    let again = d.wait_stdout(T, "settled again after");
    assert!(again.ends_with("leader is server 2 (epoch 2), 1 follower; n3 not running"), "{again}");
    d.signal(Signal::Term);
    let status = d.wait_exit(T);
    let out = d.stdout_text();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{out}\n{}", stderr(tmp.path()));
    assert!(out.contains(&format!("[n3] pid {leader} was killed by SIGKILL")), "{out}");
    assert!(out.contains("stopped 2 of 3 nodes (1 node had exited)"), "{out}");
    assert!(!stderr(tmp.path()).contains("no settled leader"), "{}", stderr(tmp.path()));
}

#[test]
fn a_node_that_exits_shows_its_last_log_lines() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut d = ensemble(tmp.path(), &["--nodes", "3"]);
    d.wait_stdout(T, "settled after");
    let n1 = ensemble_pids(&d.stdout())[&1];
    signals::send(n1, Signal::Term).expect("stop n1");
    d.wait_stdout(T, &format!("[n1] pid {n1} exited with code 0; its last log lines:"));
    d.wait_stdout(T, "Shut down after SIGTERM; exiting with code 0");
    let out = d.stdout_text();
    let shown: Vec<&str> = out.lines().filter(|l| l.starts_with("[n1]   ")).collect();
    assert!(!shown.is_empty() && shown.len() <= 8, "{out}");
    assert!(shown.last().is_some_and(|l| l.contains("Shut down after SIGTERM")), "{out}");
    // The other two still have a quorum: nothing to re-elect.
    d.signal(Signal::Term);
    assert_eq!(d.wait_exit(T).and_then(|s| s.code()), Some(0), "{}", d.stdout_text());
}

/// The entries of TMPDIR after a run.
fn left_in_tmp(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp.join("tmp"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn nothing_is_left_in_the_temp_dir_unless_kept() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut d = ensemble(tmp.path(), &["--nodes", "1", "--for", "3"]);
    let status = d.wait_exit(T);
    let out = d.stdout_text();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{out}\n{}", stderr(tmp.path()));
    assert!(out.starts_with("ensemble of 1 node in "), "{out}");
    assert!(out.contains("leader is server 1 (epoch 1), 0 followers\nstopped the node\nremoved "), "{out}");
    assert!(out.contains("(--keep keeps the configs and logs)"), "{out}");
    assert_eq!(left_in_tmp(tmp.path()), Vec::<String>::new());

    let mut d = ensemble(tmp.path(), &["--nodes", "1", "--for", "3", "--keep"]);
    assert_eq!(d.wait_exit(T).and_then(|s| s.code()), Some(0), "{}", d.stdout_text());
    let left = left_in_tmp(tmp.path());
    assert_eq!(left.len(), 1, "{left:?}");
    let kept = tmp.path().join("tmp").join(&left[0]);
    assert!(d.stdout_text().contains(&format!("configs and logs are in {}", kept.display())), "{}", d.stdout_text());
    assert!(std::fs::read_to_string(kept.join("n1/zkelect.log")).is_ok_and(|l| l.contains("LEADING")));
}
