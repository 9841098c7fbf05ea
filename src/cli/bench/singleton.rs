//! `zkelect bench --singleton`: the failover gaps of `zkelect run`. Three nodes each run a command
//! that writes a timestamp every 5 ms while it runs; the leader's zkelect is killed (kill -9) or
//! frozen (SIGSTOP, resumed once another node runs the command) again and again. Per fault: the
//! gap from the old command's last timestamp to the new one's first, and whether two commands
//! ever ran at once. Run at tickTime 100 and 2000 (syncLimit 5: a lease of 5 ticks).

use super::Series;
use crate::cli::localports::free_ports;
use crate::cli::logs::{now_ms, parse_milestone};
use crate::cli::zoocfg::{local_ensemble, write_local_node};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Options {
    /// Faults of each kind per tickTime.
    pub faults: usize,
    pub tick_times: Vec<u64>,
    pub out: Option<PathBuf>,
}

const NODES: usize = 3;
/// A command that writes again within this long (it writes every 5 ms) is running.
const LOOK_AGAIN: Duration = Duration::from_millis(30);

const TICKER: &str = r#"#!/bin/sh
out="$1/ticks.$ZKELECT_MYID"
trap 'exit 0' TERM
while :; do
  echo "$$ $ZKELECT_EPOCH $(date +%s%N)" >> "$out"
  sleep 0.005
done
"#;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Fault {
    Kill,
    Stop,
}

/// One run of a command on one node: (sid, pid, first ns, last ns).
type Run = (usize, u32, u128, u128);

struct Ensemble {
    dir: PathBuf,
    children: BTreeMap<usize, Child>,
    tick: u64,
}

impl Ensemble {
    fn new(root: &Path, tick: u64) -> Result<Ensemble, String> {
        let dir = root.join(format!("singleton-{tick}-{}", now_ms()));
        let p = free_ports(3 * NODES).map_err(|e| format!("cannot allocate ports: {e}"))?;
        let ports: Vec<(u16, u16, u16)> = p.chunks_exact(3).map(|c| (c[0], c[1], c[2])).collect();
        let shared = local_ensemble(tick, &ports).extra("admin.enableServer=false\n");
        for (sid, (_, _, client)) in (1..).zip(&ports) {
            write_local_node(&shared, &dir, sid, *client).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let script = dir.join("ticker.sh");
        std::fs::write(&script, TICKER).map_err(|e| e.to_string())?;
        let exec = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&script, exec).map_err(|e| e.to_string())?;
        Ok(Ensemble { dir, children: BTreeMap::new(), tick })
    }

    fn start(&mut self, sid: usize) -> Result<(), String> {
        let d = self.dir.join(format!("n{sid}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("node.log"))
            .map_err(|e| e.to_string())?;
        let child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
            .arg("run")
            .arg(d.join("zoo.cfg"))
            .arg("--")
            .arg(self.dir.join("ticker.sh"))
            .arg(&self.dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start node {sid}: {e}"))?;
        self.children.insert(sid, child);
        Ok(())
    }

    fn signal(&self, sid: usize, sig: &str) {
        if let Some(c) = self.children.get(&sid) {
            let _ = Command::new("kill").arg(format!("-{sig}")).arg(c.id().to_string()).status();
        }
    }

    fn kill(&mut self, sid: usize) {
        if let Some(mut c) = self.children.remove(&sid) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn runs(&self) -> Vec<Run> {
        let mut all = Vec::new();
        for sid in 1..=NODES {
            let text = std::fs::read_to_string(self.dir.join(format!("ticks.{sid}"))).unwrap_or_default();
            let mut by_pid: BTreeMap<u32, (u128, u128)> = BTreeMap::new();
            for line in text.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if let (Some(pid), Some(t)) =
                    (f.first().and_then(|p| p.parse().ok()), f.get(2).and_then(|t| t.parse().ok()))
                {
                    let e = by_pid.entry(pid).or_insert((t, t));
                    e.0 = e.0.min(t);
                    e.1 = e.1.max(t);
                }
            }
            all.extend(by_pid.into_iter().map(|(pid, (a, b))| (sid, pid, a, b)));
        }
        all.sort_by_key(|r| r.2);
        all
    }

    /// The run that started after `after` and still runs: it writes again between two looks (a
    /// run that just ended looks recent, but writes no more).
    fn running(&self, after: u128) -> Option<Run> {
        let before = self.runs();
        std::thread::sleep(LOOK_AGAIN);
        self.runs().into_iter().filter(|r| r.2 > after).find(|r| before.iter().any(|b| b.1 == r.1 && b.3 < r.3))
    }

    /// Waits for a command that started after `after` and still runs.
    fn wait_new_run(&self, after: u128, timeout: Duration) -> Option<Run> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(r) = self.running(after) {
                return Some(r);
            }
        }
        None
    }

    /// Waits until `sid` follows again (its log shows broadcast after `lines` lines).
    fn wait_following(&self, sid: usize, lines: usize, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            let log = std::fs::read_to_string(self.dir.join(format!("n{sid}/node.log"))).unwrap_or_default();
            let following =
                |l: &str| parse_milestone(l).is_some_and(|m| m.state == "following" && m.phase == "broadcast");
            if log.lines().skip(lines).any(following) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    fn log_lines(&self, sid: usize) -> usize {
        std::fs::read_to_string(self.dir.join(format!("n{sid}/node.log"))).map(|l| l.lines().count()).unwrap_or(0)
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        let sids: Vec<usize> = self.children.keys().copied().collect();
        for sid in sids {
            self.signal(sid, "CONT");
            // SIGTERM first: the node stops its command and guard, then exits.
            self.signal(sid, "TERM");
        }
        for (_, mut c) in std::mem::take(&mut self.children) {
            if !matches!(wait_timeout::ChildExt::wait_timeout(&mut c, Duration::from_secs(15)), Ok(Some(_))) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn now_ns() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// Runs of different nodes that overlap in time.
fn overlaps(runs: &[Run]) -> usize {
    let mut n = 0;
    for (i, a) in runs.iter().enumerate() {
        for b in &runs[i + 1..] {
            if a.0 != b.0 && b.2 <= a.3 && a.2 <= b.3 {
                n += 1;
            }
        }
    }
    n
}

/// One fault on the active node; the gap in ms.
fn fault_once(e: &mut Ensemble, fault: Fault) -> Result<f64, String> {
    let lease = Duration::from_millis(5 * e.tick);
    let long = lease * 4 + Duration::from_secs(10);
    let victim = e.wait_new_run(0, long).ok_or("no command running")?.0;
    let lines = e.log_lines(victim);
    let t = now_ns();
    match fault {
        Fault::Kill => e.kill(victim),
        Fault::Stop => e.signal(victim, "STOP"),
    }
    let next = e.wait_new_run(t, long).ok_or("no node took over")?;
    let before = e.runs().into_iter().filter(|r| r.2 <= t).map(|r| r.3).max().unwrap_or(t);
    let gap = next.2.saturating_sub(before) as f64 / 1e6;
    match fault {
        Fault::Kill => e.start(victim)?,
        Fault::Stop => e.signal(victim, "CONT"),
    }
    if !e.wait_following(victim, lines, long) {
        return Err(format!("node {victim} did not follow again"));
    }
    Ok(gap)
}

pub fn run(o: Options) -> Result<(), String> {
    let base = std::env::temp_dir().join(format!("zkelect-bench-singleton-{}-{}", std::process::id(), now_ms()));
    let out = o.out.clone().unwrap_or_else(|| base.clone());
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut results: BTreeMap<(u64, Fault), (Series, usize)> = BTreeMap::new();
    for &tick in &o.tick_times {
        let mut e = Ensemble::new(&base, tick)?;
        for sid in 1..=NODES {
            e.start(sid)?;
        }
        for fault in [Fault::Kill, Fault::Stop] {
            let mut gaps = Series::default();
            for i in 0..o.faults {
                eprint!("\rtickTime {tick}: {fault:?} {}/{}   ", i + 1, o.faults);
                gaps.0.push(fault_once(&mut e, fault)?);
            }
            eprintln!();
            results.insert((tick, fault), (gaps, 0));
        }
        let overlapping = overlaps(&e.runs());
        for f in [Fault::Kill, Fault::Stop] {
            if let Some(r) = results.get_mut(&(tick, f)) {
                r.1 = overlapping;
            }
        }
        drop(e);
    }
    for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with("singleton-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let table = markdown(&results, o.faults);
    say!("{table}");
    let md = out.join("singleton.md");
    std::fs::write(&md, &table).map_err(|e| format!("{}: {e}", md.display()))?;
    say!("wrote {}", md.display());
    Ok(())
}

fn markdown(results: &BTreeMap<(u64, Fault), (Series, usize)>, faults: usize) -> String {
    let mut s = format!(
        "Failover gap of `zkelect run` (3 nodes, syncLimit 5, {faults} faults each): from the old command's last \
         timestamp to the new one's first.\n\n| tickTime | lease | fault | median gap | worst gap | bound (lease + margin + tick) | commands at once |\n|---|---|---|---|---|---|---|\n"
    );
    for ((tick, fault), (gaps, overlapping)) in results {
        let lease = 5 * tick;
        let bound = lease + lease / 10 + tick;
        let what = match fault {
            Fault::Kill => "kill -9 of the leader's zkelect",
            Fault::Stop => "SIGSTOP of the leader's zkelect",
        };
        s.push_str(&format!(
            "| {tick} ms | {lease} ms | {what} | {:.0} ms | {:.0} ms | {bound} ms | {overlapping} |\n",
            gaps.median().unwrap_or(f64::NAN),
            gaps.max().unwrap_or(f64::NAN)
        ));
    }
    s
}
