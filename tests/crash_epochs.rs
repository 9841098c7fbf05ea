//! Crash safety of the epoch files: processes are killed with -9 while they write epochs, and
//! every restart finds valid, non-decreasing values (currentEpoch never above acceptedEpoch).

mod common;

use common::cluster::Cluster;
use std::process::{Command, Stdio};
use std::time::Duration;
use zkelect::peer::epochs::{ACCEPTED_EPOCH, CURRENT_EPOCH, EpochFiles};

const WRITER_ENV: &str = "ZKELECT_EPOCH_WRITER_DIR";

/// Child mode, run by the test below with `--ignored --exact`: writes ever-increasing epochs as
/// zkelect does (acceptedEpoch first, then currentEpoch), starting from what is on disk, until killed.
#[test]
#[ignore = "child process of kill_9_during_epoch_writes_never_corrupts"]
fn epoch_writer_child() {
    let Some(dir) = std::env::var_os(WRITER_ENV) else { return };
    let files = EpochFiles::new(std::path::Path::new(&dir));
    let (_, mut e) = files.load().expect("valid epochs at start");
    loop {
        e += 1;
        files.write(ACCEPTED_EPOCH, e).expect("write accepted");
        files.write(CURRENT_EPOCH, e).expect("write current");
    }
}

#[test]
fn kill_9_during_epoch_writes_never_corrupts() {
    let tmp = tempfile::Builder::new().prefix("zkelect-crash-").tempdir().expect("temp dir");
    let dir = tmp.path();
    let files = EpochFiles::new(dir);
    let mut last = (0, 0);
    for round in 0..100u64 {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--ignored", "--exact", "epoch_writer_child", "--nocapture", "--test-threads=1"])
            .env(WRITER_ENV, dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        std::thread::sleep(Duration::from_millis(20 + (round * 7) % 40));
        let _ = child.kill();
        let _ = child.wait();
        // What a restarting node would load: valid numbers, current <= accepted, never going back.
        let (current, accepted) = files.load().unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(
            current >= last.0 && accepted >= last.1,
            "round {round}: epochs went back from {last:?} to {:?}",
            (current, accepted)
        );
        last = (current, accepted);
    }
    assert!(last.1 > 100, "the writer made progress: {last:?}");
}

#[test]
fn leader_killed_during_session_setup_restarts_cleanly() {
    let mut c = Cluster::new(3, 0, "");
    c.start_all();
    let all = [1, 2, 3];
    let (mut leader, mut epoch) = c.wait_broadcast(&all, Duration::from_secs(20));
    let mut on_disk: std::collections::BTreeMap<i64, (i64, i64)> =
        all.iter().map(|s| (*s, c.epochs_on_disk(*s))).collect();
    for round in 0..10u64 {
        // Kill the leader; then kill the next leader while it is agreeing on its epoch.
        c.kill(leader);
        let rest: Vec<i64> = all.iter().copied().filter(|s| *s != leader).collect();
        std::thread::sleep(Duration::from_millis(5 + round * 3));
        let victim = rest[(round % 2) as usize];
        c.kill(victim);
        c.start(leader);
        c.start(victim);
        (leader, epoch) = c.wait_new_epoch(&all, epoch, Duration::from_secs(30));
        for s in all {
            let (cur, acc) = c.epochs_on_disk(s);
            let (pc, pa) = on_disk[&s];
            assert!(cur <= acc && cur >= pc && acc >= pa, "round {round} node {s}: {:?} -> {:?}", (pc, pa), (cur, acc));
            on_disk.insert(s, (cur, acc));
        }
    }
    for s in all {
        assert!(!c.log(s).contains("is not a valid epoch") && !c.log(s).contains("cannot start"));
    }
}
