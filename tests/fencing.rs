//! `zkelect run`: three nodes each run a command that ticks into its own file while it runs; the
//! fencing checker merges the files and fails on any moment when two commands ran at once.
//! Faults: kill -9 of the leader's zkelect, SIGSTOP of it for longer than the lease, the command
//! exiting by itself, `resign`, `resign --to`, repeated leader changes, and (tier `root`) a
//! partitioned leader. The gaps are printed; their figures belong to the benchmark.

mod common;

use common::cluster::Cluster;
use common::fencing::{self, Interval};
use common::tier::{self, Tier};
use common::wait_for;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const SIDS: [i64; 3] = [1, 2, 3];
/// tickTime 100 × syncLimit 5 (the harness's zoo.cfg).
const LEASE: Duration = Duration::from_millis(500);

/// The checker itself: overlapping runs of two nodes are found, one node's touching runs are not.
#[test]
fn the_checker_finds_overlaps() {
    let i = |sid, first, last| Interval { sid, pid: sid as u32, epoch: 1, first, last };
    assert_eq!(fencing::overlap(&[i(1, 0, 10), i(2, 11, 20)]), None);
    assert!(fencing::overlap(&[i(1, 0, 10), i(2, 10, 20)]).is_some());
    assert!(fencing::overlap(&[i(1, 0, 10), i(1, 5, 20)]).is_none(), "one node's runs may touch");
    assert_eq!(fencing::gap_after(&[i(1, 0, 10), i(2, 25, 30)], 12), Some(Duration::from_nanos(15)));
}

fn ensemble() -> Cluster {
    let c = Cluster::new(3, 0, "");
    let command = fencing::command(&c.dir);
    c.running(command)
}

/// Waits for a command that started after `after` (ns) and is running; its node.
fn wait_new_run(dir: &Path, after: u128) -> Interval {
    wait_for(T, "a command started after the fault", || fencing::running(dir, &SIDS, after))
}

fn resign(c: &Cluster, sid: i64, to: Option<i64>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zkelect"));
    cmd.arg("resign").arg(format!("127.0.0.1:{}", c.ports[&sid].2));
    if let Some(t) = to {
        cmd.arg("--to").arg(t.to_string());
    }
    let out = cmd.output().expect("zkelect resign");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
}

/// `resign` once every server has its session with the new leader: right after a change of
/// leadership a follower may still be joining, and the leader refuses ("try again").
fn resign_when_joined(c: &Cluster, sid: i64, to: Option<i64>) -> (bool, String) {
    let end = std::time::Instant::now() + T;
    loop {
        let (ok, said) = resign(c, sid, to);
        if ok || !said.contains("try again") || std::time::Instant::now() > end {
            return (ok, said);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The exit code of `child` within `T`; killed (and `None`) if it is still running then.
fn exit_code(child: &mut std::process::Child) -> Option<i32> {
    use wait_timeout::ChildExt;
    let status = child.wait_timeout(T).expect("wait");
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status.and_then(|s| s.code())
}

fn gone(pid: u32) -> bool {
    // A zombie (reaped later by its new parent) has stopped running too.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |s| s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
}

fn gap(dir: &Path, after: u128) -> String {
    fencing::gap_after(&fencing::intervals(dir, &SIDS), after).map_or("?".into(), |g| format!("{} ms", g.as_millis()))
}

#[test]
fn kills_freezes_exits_and_resignations_never_run_two_commands() {
    let mut c = ensemble();
    let dir = c.dir.clone();
    c.start_all();
    let first = wait_new_run(&dir, 0);
    println!("node {} runs the command in epoch {}", first.sid, first.epoch);

    // kill -9 of the leader's zkelect: its guard stops the command and exits by itself.
    let t = fencing::now_ns();
    let orphans = c.kill(first.sid);
    let next = wait_new_run(&dir, t);
    assert_ne!(next.sid, first.sid);
    wait_for(T, "the killed node's guard and command to go", || orphans.iter().all(|p| !p.alive()).then_some(()));
    println!("kill -9: node {} took over after a gap of {}", next.sid, gap(&dir, t));
    c.start(first.sid);

    // SIGSTOP of the leader's zkelect for three leases: the guard stops the command when the
    // lease ends; another node takes over; the resumed node must not start it again meanwhile.
    let t = fencing::now_ns();
    c.signal(next.sid, "STOP");
    let during = wait_new_run(&dir, t);
    assert_ne!(during.sid, next.sid);
    std::thread::sleep(3 * LEASE);
    c.signal(next.sid, "CONT");
    println!("SIGSTOP: node {} took over after a gap of {}", during.sid, gap(&dir, t));
    std::thread::sleep(2 * LEASE);
    fencing::check(&dir, &SIDS);

    // The same for the leader's whole process group, as Ctrl-Z stops a `zkelect run` in a shell:
    // the guard is in a group of its own and still stops the command when the lease ends.
    let leader = wait_new_run(&dir, 0).sid;
    let t = fencing::now_ns();
    c.signal_group(leader, "STOP");
    let during = wait_new_run(&dir, t);
    assert_ne!(during.sid, leader);
    std::thread::sleep(3 * LEASE);
    c.signal_group(leader, "CONT");
    println!("SIGSTOP of the process group: node {} took over after a gap of {}", during.sid, gap(&dir, t));
    std::thread::sleep(2 * LEASE);
    fencing::check(&dir, &SIDS);

    // resign: another node, without waiting out the lease.
    let leader = wait_new_run(&dir, 0).sid;
    let t = fencing::now_ns();
    let (ok, said) = resign_when_joined(&c, leader, None);
    assert!(ok, "{said}");
    let after = wait_new_run(&dir, t);
    assert_ne!(after.sid, leader);
    println!("resign: node {} took over after a gap of {}", after.sid, gap(&dir, t));

    // resign --to: the named follower.
    let target = SIDS.into_iter().find(|s| *s != after.sid).unwrap_or(1);
    let t = fencing::now_ns();
    let (ok, said) = resign_when_joined(&c, after.sid, Some(target));
    assert!(ok, "{said}");
    let steered = wait_new_run(&dir, t);
    assert_eq!(steered.sid, target, "resign --to {target}");
    println!("resign --to {target}: took over after a gap of {}", gap(&dir, t));
    let (ok, said) = resign(&c, target, Some(target));
    assert!(!ok && said.contains("names this server"), "{said}");

    // The command exits by itself: the leader resigns (the default) and another node runs it.
    let t = fencing::now_ns();
    std::fs::write(dir.join(format!("exit.{target}")), "").expect("exit file");
    let replaced = wait_new_run(&dir, t);
    assert_ne!(replaced.sid, target);
    println!("command exited: node {} took over after a gap of {}", replaced.sid, gap(&dir, t));

    // Repeated leader changes.
    for round in 0..4 {
        let leader = wait_new_run(&dir, 0).sid;
        let t = fencing::now_ns();
        c.kill(leader);
        let next = wait_new_run(&dir, t);
        println!("change {round}: {leader} -> {} after a gap of {}", next.sid, gap(&dir, t));
        c.start(leader);
    }
    let runs = fencing::check(&dir, &SIDS);
    println!("{} runs of the command, none at the same time as another", runs.len());
}

#[test]
fn run_exits_with_its_documented_codes() {
    let c = Cluster::new(3, 0, "");
    let dir = c.dir.clone();
    let command = fencing::command(&dir);
    // A command that cannot be found: invalid configuration, before anything starts.
    let cfg = c.node_dir(1).join("zoo.cfg");
    let out = Command::new(env!("CARGO_BIN_EXE_zkelect"))
        .arg("run")
        .arg(&cfg)
        .args(["--", "no-such-command-for-zkelect"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("command not found"));

    // --on-child-exit=exit on a single-voter ensemble: active at once; the command exits → 4.
    let solo = solo_config(&c);
    std::fs::write(dir.join("exit.1"), "").expect("exit file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkelect"))
        .arg("run")
        .arg(&solo)
        .arg("--on-child-exit=exit")
        .arg("--")
        .args(&command)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run");
    let status = exit_code(&mut child);
    assert_eq!(status, Some(4), "the command exited by itself");

    // SIGHUP, SIGUSR1, SIGUSR2 and SIGQUIT are passed on to the command's process group.
    let trapper = dir.join("trapper.sh");
    std::fs::write(
        &trapper,
        "for s in HUP USR1 USR2 QUIT; do trap \"echo $s >> '$1/got'\" $s; done\n\
         echo up > \"$1/up\"\nwhile :; do sleep 0.05; done\n",
    )
    .expect("trapper");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkelect"))
        .arg("run")
        .arg(&solo)
        .args(["--", "sh"])
        .arg(&trapper)
        .arg(&dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run");
    wait_for(T, "the trapping command", || dir.join("up").exists().then_some(()));
    for (n, sig) in ["HUP", "USR1", "USR2", "QUIT"].iter().enumerate() {
        let _ = Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()).status();
        wait_for(T, &format!("SIG{sig} at the command"), || {
            let got = std::fs::read_to_string(dir.join("got")).unwrap_or_default();
            (got.lines().count() > n && got.lines().nth(n) == Some(*sig)).then_some(())
        });
    }
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = exit_code(&mut child);
    assert_eq!(status, Some(0), "SIGTERM after the passed-on signals");

    // SIGTERM: the command is stopped and zkelect run exits 0.
    let spawned = fencing::now_ns();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkelect"))
        .arg("run")
        .arg(&solo)
        .arg("--")
        .args(&command)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run");
    let run = wait_for(T, "the command", || fencing::running(&dir, &[1], spawned));
    let below = common::descendants(child.id());
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = exit_code(&mut child);
    assert_eq!(status, Some(0), "SIGTERM");
    assert!(gone(run.pid), "the command stopped before zkelect run exited");
    wait_for(T, "the guard to go", || below.iter().all(|p| gone(*p)).then_some(()));
}

/// `--exit-on-loss`: the active leader whose followers are killed loses its quorum, stops its
/// command and exits with status 3.
#[test]
fn exit_on_loss_ends_with_status_3_once_the_command_is_stopped() {
    let c = Cluster::new(3, 0, "");
    let command = fencing::command(&c.dir);
    let mut c = c.running_with(&["--exit-on-loss"], command);
    let dir = c.dir.clone();
    c.start_all();
    let first = wait_new_run(&dir, 0);
    for s in SIDS.into_iter().filter(|s| *s != first.sid) {
        c.kill(s);
    }
    assert_eq!(c.wait_exit(first.sid, T), Some(3), "{}", c.log(first.sid));
    assert!(gone(first.pid), "the command stopped before zkelect run exited");
    fencing::check(&dir, &SIDS);
}

/// Node 1's zoo.cfg as a one-voter ensemble: it leads, and is active, at once.
fn solo_config(c: &Cluster) -> std::path::PathBuf {
    let cfg = c.node_dir(1).join("zoo.cfg");
    let solo = c.node_dir(1).join("solo.cfg");
    let text = std::fs::read_to_string(&cfg).expect("cfg");
    let mine: String = text
        .lines()
        .filter(|l| !l.starts_with("server.") || l.starts_with("server.1="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&solo, format!("{mine}standaloneEnabled=false\n")).expect("solo.cfg");
    solo
}

/// PIDs of processes whose command line is exactly `sleep <arg>`.
fn sleeping(arg: &str) -> Vec<u32> {
    let want = format!("sleep\0{arg}\0");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want.as_bytes()))
        .filter(|pid| !gone(*pid))
        .collect()
}

/// The command leaves a child in its process group and one in a session of its own: neither
/// outlives it when its zkelect is killed.
#[test]
fn no_grandchild_outlives_the_command() {
    let c = Cluster::new(3, 0, "");
    let solo = solo_config(&c);
    let base = 3000 + std::process::id() % 1000;
    let (in_group, own_session, command) = (format!("{base}.1"), format!("{base}.2"), format!("{base}.3"));
    let script = format!("sleep {in_group} & setsid sleep {own_session} & exec sleep {command}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkelect"))
        .arg("run")
        .arg(&solo)
        .args(["--", "sh", "-c", &script])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run");
    let all = [in_group, own_session, command];
    let started = common::try_wait_for(T, || all.iter().all(|a| !sleeping(a).is_empty()).then_some(()));
    let _ = child.kill();
    let _ = child.wait();
    let left = common::try_wait_for(T, || all.iter().all(|a| sleeping(a).is_empty()).then_some(()));
    // Whatever is left is killed by PID before the verdict, so a failure leaks nothing.
    let leftovers: Vec<u32> = all.iter().flat_map(|a| sleeping(a)).collect();
    for pid in &leftovers {
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    }
    assert!(started.is_some(), "the command and its children did not all start");
    assert!(left.is_some(), "left running after zkelect was killed: {leftovers:?}");
}

#[test]
fn a_partitioned_leader_stops_its_command_before_the_majority_starts_one() {
    if !tier::enabled(Tier::Root) {
        return;
    }
    let c = Cluster::in_namespaces(3, "");
    let command = fencing::command(&c.dir);
    let mut c = c.running(command);
    let dir = c.dir.clone();
    c.start_all();
    for _ in 0..2 {
        let leader = wait_new_run(&dir, 0).sid;
        let others: Vec<i64> = SIDS.into_iter().filter(|s| *s != leader).collect();
        let t = fencing::now_ns();
        c.net().partition(&[&[leader], &others]);
        let next = wait_new_run(&dir, t);
        assert_ne!(next.sid, leader);
        println!("partition: node {} took over from {leader} after a gap of {}", next.sid, gap(&dir, t));
        std::thread::sleep(2 * LEASE);
        c.net().heal();
        std::thread::sleep(2 * LEASE);
    }
    fencing::check(&dir, &SIDS);
}

/// In an ensemble with ZooKeeper, FastLeaderElection's order must stay untouched: a zkelect
/// leader refuses to resign, and says why; a follower says who leads.
#[test]
fn resign_is_refused_with_zookeeper_in_the_ensemble_and_on_a_follower() {
    if !tier::enabled(Tier::Interop) {
        return;
    }
    let mut c = Cluster::new(3, 0, "").with_zookeeper(&[1]);
    c.start_all();
    wait_for(T, "zkelect 3 leading", || c.broadcast(3).filter(|(state, _, _)| state == "leading").map(|_| ()));
    // ZooKeeper 1 tries to follow over Zab and is refused: that is how the leader knows.
    wait_for(T, "ZooKeeper's learner refused", || c.log(3).contains("Refusing ZooKeeper (Zab) learner").then_some(()));
    let (ok, said) = resign(&c, 3, None);
    assert!(!ok, "{said}");
    assert!(said.contains("ZooKeeper servers, whose election order must stay untouched"), "{said}");
    let (ok, said) = resign(&c, 2, None);
    assert!(!ok && said.contains("not the leader; server 3 is"), "{said}");
}
