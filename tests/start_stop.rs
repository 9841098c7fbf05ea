//! `zkelect start` as a service manager sees it: stop signals end a node in order with exit
//! status 0 and release its ports; under systemd (`$NOTIFY_SOCKET`) it reports READY=1, its
//! state and STOPPING=1; the shipped unit file passes `systemd-analyze verify`; a fresh node does
//! not log ZooKeeper's upgrade warning. Every process is killed by PID when its guard is dropped.

mod common;

use common::cluster::Cluster;
use common::daemon::{BIN, Daemon, all_free};
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};
use zkelect::runtime::signals::Signal;

const T: Duration = Duration::from_secs(30);

fn start(c: &Cluster, sid: i64, env: &[(&str, &str)]) -> Daemon {
    Daemon::start(&c.node_dir(sid).join("zoo.cfg"), &c.dir, &c.log_path(sid), env)
}

fn ports_of(c: &Cluster, sid: i64) -> [u16; 3] {
    let (q, e, client) = c.ports[&sid];
    [q, e, client]
}

#[test]
fn stop_signals_shut_a_node_down_in_order() {
    let c = Cluster::new(3, 0, "");
    let mut nodes: Vec<Daemon> = (1..=3).map(|sid| start(&c, sid, &[])).collect();
    c.wait_broadcast(&[1, 2, 3], T);
    // A follower, then one of a quorum of two, then a node alone and LOOKING: every state stops.
    for (sid, signal) in [(1, Signal::Term), (3, Signal::Int), (2, Signal::Hup)] {
        let node = &mut nodes[sid as usize - 1];
        assert!(!all_free(&ports_of(&c, sid)), "node {sid} holds its ports while it runs");
        node.signal(signal);
        let status = node.wait_exit(T);
        let log = c.log(sid);
        assert_eq!(status.and_then(|s| s.code()), Some(0), "node {sid} after {signal}: {status:?}\n{log}");
        let received = log
            .find(&format!("INFO  [main:zkelect] - Received {signal}: shutting down"))
            .unwrap_or_else(|| panic!("node {sid} did not log the signal:\n{log}"));
        let after = &log[received..];
        assert!(after.contains(&format!("Shut down after {signal}; exiting with code 0")), "{after}");
        assert!(!after.contains(" ERROR "), "node {sid} logged an error while stopping:\n{after}");
        assert!(all_free(&ports_of(&c, sid)), "node {sid} left a port bound");
    }
}

/// Kills, when dropped, every process whose PID the file lists (hooks outlive a node that exits
/// at once).
struct KillListed(std::path::PathBuf);

impl Drop for KillListed {
    fn drop(&mut self) {
        for pid in std::fs::read_to_string(&self.0).unwrap_or_default().lines() {
            if let Ok(pid) = pid.trim().parse() {
                let _ = zkelect::runtime::signals::send(pid, Signal::Kill);
            }
        }
    }
}

/// A state-change hook that records its PID and hangs; a shutdown waits for the hook's run (up
/// to its 30 s timeout), so a second signal is what ends the process.
#[test]
fn a_second_signal_ends_a_stuck_shutdown_at_once() {
    let mut c = Cluster::new(3, 0, "");
    let pids = c.dir.join("hook.pids");
    let hook = c.dir.join("hook.sh");
    std::fs::write(&hook, format!("#!/bin/sh\necho $$ >> {}\nexec sleep 600\n", pids.display())).expect("hook");
    Command::new("chmod").arg("+x").arg(&hook).status().expect("chmod");
    c.append_config(
        &[1],
        &format!("zkelect.onStateChange={}\nzkelect.onStateChange.timeoutMs=30000\n", hook.display()),
    );
    let _hooks = KillListed(pids.clone());
    let mut node = start(&c, 1, &[]);
    common::wait_for(T, "the hook to run", || std::fs::read_to_string(&pids).ok().filter(|p| !p.is_empty()));
    node.signal(Signal::Term);
    common::wait_for(T, "the first signal's line", || {
        c.log(1).contains("Received SIGTERM: shutting down").then_some(())
    });
    assert!(node.wait_exit(Duration::from_millis(200)).is_none(), "the shutdown waits for the hook");
    node.signal(Signal::Term);
    let status = node.wait_exit(T);
    assert_eq!(status.and_then(|s| s.code()), Some(128 + 15), "{}", c.log(1));
    assert!(!c.log(1).contains("Shut down after"), "{}", c.log(1));
}

/// Datagrams received on `rx` until `want` have all been seen (in any order), or panics after `T`.
fn notifications(rx: &UnixDatagram, want: &[&str]) -> Vec<String> {
    let end = Instant::now() + T;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !want.iter().all(|w| got.iter().any(|g: &String| g == w)) {
        assert!(Instant::now() < end, "waited for {want:?}, got {got:?}");
        if let Ok(n) = rx.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).to_string());
        }
    }
    got
}

#[test]
fn systemd_notifications_through_a_path_and_an_abstract_socket() {
    let c = Cluster::new(3, 0, "");
    let socket = c.dir.join("notify");
    let leader_rx = UnixDatagram::bind(&socket).expect("bind the notify socket");
    let abstract_name = format!("zkelect-test-notify-{}", std::process::id());
    let follower_rx = {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).expect("name");
        UnixDatagram::bind_addr(&addr).expect("bind the abstract socket")
    };
    for rx in [&leader_rx, &follower_rx] {
        rx.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    }
    let mut leader = start(&c, 3, &[("NOTIFY_SOCKET", &socket.display().to_string())]);
    let at = format!("@{abstract_name}");
    let _follower = start(&c, 2, &[("NOTIFY_SOCKET", &at)]);
    let got = notifications(&leader_rx, &["READY=1", "STATUS=LOOKING", "STATUS=LEADING epoch 1, lease active"]);
    assert!(!got.contains(&"STOPPING=1".to_string()), "{got:?}");
    notifications(&follower_rx, &["READY=1", "STATUS=LOOKING", "STATUS=FOLLOWING leader 3 epoch 1"]);
    leader.signal(Signal::Term);
    notifications(&leader_rx, &["STOPPING=1"]);
    assert_eq!(leader.wait_exit(T).and_then(|s| s.code()), Some(0), "{}", c.log(3));
    // The follower lost its leader and says so.
    notifications(&follower_rx, &["STATUS=LOOKING"]);
    assert!(c.log(3).contains("Notifying the service manager through NOTIFY_SOCKET="), "{}", c.log(3));
}

#[test]
fn a_notify_socket_nobody_listens_on_does_not_stop_the_node() {
    let c = Cluster::new(3, 0, "");
    let gone = c.dir.join("nobody-here").display().to_string();
    let env = |sid: i64| if sid == 3 { "relative/notify".to_string() } else { gone.clone() };
    let mut nodes: Vec<Daemon> = (1..=3).map(|sid| start(&c, sid, &[("NOTIFY_SOCKET", &env(sid))])).collect();
    c.wait_broadcast(&[1, 2, 3], T);
    assert!(c.log(1).contains("Cannot notify the service manager at"), "{}", c.log(1));
    assert!(c.log(3).contains("Ignoring NOTIFY_SOCKET=relative/notify: not an absolute path"), "{}", c.log(3));
    nodes[0].signal(Signal::Term);
    assert_eq!(nodes[0].wait_exit(T).and_then(|s| s.code()), Some(0));
}

#[test]
fn the_unit_file_passes_systemd_analyze() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/systemd/zkelect@.service"))
        .expect("the unit file");
    for line in ["Type=notify", "ExecStart=/usr/local/bin/zkelect start /etc/zkelect/%i/zoo.cfg", "Restart=on-failure"]
    {
        assert!(unit.lines().any(|l| l == line), "the unit file lacks {line}");
    }
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("skipped systemd-analyze verify: systemd-analyze is not installed");
        return;
    }
    // An instance of the template, running the binary under test.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("zkelect@1.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/zkelect", BIN)).expect("write");
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "systemd-analyze verify: {err}");
}

fn epoch_file(c: &Cluster, sid: i64, name: &str) -> std::path::PathBuf {
    c.node_dir(sid).join("version-2").join(name)
}

const UPGRADE_LINE: &str = "not found! Creating with a reasonable default of 0. This should only happen when you are \
                            upgrading your installation";

#[test]
fn a_fresh_node_does_not_claim_to_be_upgraded() {
    let c = Cluster::new(3, 0, "");
    assert!(!c.node_dir(1).join("version-2").exists(), "the data directory is fresh");
    let run = |expect: &str| {
        let mut node = start(&c, 1, &[]);
        common::wait_for(T, &format!("{expect:?} in the log"), || c.log(1).contains(expect).then_some(()));
        node.signal(Signal::Term);
        assert_eq!(node.wait_exit(T).and_then(|s| s.code()), Some(0));
    };
    run("New node: starting with currentEpoch and acceptedEpoch 0 in");
    assert!(!c.log(1).contains(UPGRADE_LINE), "{}", c.log(1));
    assert!(epoch_file(&c, 1, "currentEpoch").exists() && epoch_file(&c, 1, "acceptedEpoch").exists());
    // A data directory that lost a file is another matter: ZooKeeper's line says so.
    std::fs::remove_file(epoch_file(&c, 1, "currentEpoch")).expect("remove");
    run(&format!("currentEpoch {UPGRADE_LINE}"));
    assert_eq!(c.log(1).matches("New node: starting").count(), 1, "{}", c.log(1));
}
