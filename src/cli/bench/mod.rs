//! `zkelect bench`: election timings, memory, threads and idle CPU of real ensembles on
//! 127.0.0.1, and with `--vs-zookeeper` the same scenarios on Debian's Apache ZooKeeper, side by
//! side. Prints a Markdown table and writes it, with an SVG plot, into the output directory. A
//! benchmark, not a test: it reports figures and asserts nothing. With `--tls`, every ensemble
//! (zkelect's and ZooKeeper's alike) runs quorum TLS with certificates generated for the run, node
//! N on 127.0.1.N (as `zkelect ensemble --tls` does).
//!
//! Inside: this module runs the ensembles; `cpu` reads what a process used, `report` writes the
//! table and `svg` the plot.

mod cpu;
mod mixed;
mod report;
pub mod singleton;
mod svg;

use super::ensemble::write_tls_configs;
use super::localports::free_ports;
use super::logs::{is_looking_line, may_be_state_line, now_ms, parse_milestone, parse_timestamp_ms};
use super::zoocfg::{local_ensemble, write_local_node};
use super::zookeeper;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How often the benchmark reads the node logs while it waits.
const POLL: Duration = Duration::from_millis(10);

/// When a settled ensemble's threads and memory are read: idle dial threads are expected to be
/// gone by then.
const SETTLED_FOR: Duration = Duration::from_secs(2);

pub struct Options {
    pub sizes: Vec<usize>,
    pub runs: usize,
    pub vs_zookeeper: bool,
    /// Where bench.md and bench.svg go; by default a fresh directory under the temp dir, so that
    /// only an explicit `--out bench-results` replaces the committed figures.
    pub out: Option<PathBuf>,
    pub tick_time: u64,
    /// Keep every run's configs and node logs (for looking into a slow run).
    pub keep_logs: bool,
    /// How long the CPU time of the settled nodes is watched (zero: not measured).
    pub idle: Duration,
    /// Quorum TLS (sslQuorum=true, generated certificates, node N on 127.0.1.N).
    pub tls: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Impl {
    Zkelect,
    ZooKeeper,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Zkelect => "zkelect",
            Impl::ZooKeeper => "ZooKeeper 3.8",
        }
    }
}

/// One metric over the runs.
#[derive(Default, Clone)]
struct Series(Vec<f64>);

impl Series {
    fn median(&self) -> Option<f64> {
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        (!v.is_empty()).then(|| v[v.len() / 2])
    }
    fn min(&self) -> Option<f64> {
        self.0.iter().copied().reduce(f64::min)
    }
    fn max(&self) -> Option<f64> {
        self.0.iter().copied().reduce(f64::max)
    }
    fn cell(&self, unit: &str) -> String {
        match (self.median(), self.min(), self.max()) {
            (Some(m), Some(lo), Some(hi)) if self.0.len() > 1 => format!("{m:.0} {unit} ({lo:.0}–{hi:.0})"),
            (Some(m), _, _) => format!("{m:.1} {unit}"),
            _ => "–".into(),
        }
    }
}

#[derive(Default, Clone)]
struct Results {
    launch: Series,
    kill: Series,
    restart: Series,
    rss_mib: Series,
    /// The anonymous part of the RSS (heap, stacks): what each node has to itself, whereas the
    /// binary's pages are shared by every node of the host.
    anon_mib: Series,
    threads: Series,
    /// CPU time per node per minute while settled: the median node, and the leader.
    idle_cpu_ms: Series,
    idle_cpu_leader_ms: Series,
    notifications: Series,
    /// CPU time of every node together from the first start to all elected, and of the survivors
    /// from the leader's kill to all elected again (threads alive at the end; see `cpu::Snapshot`).
    launch_cpu_ms: Series,
    kill_cpu_ms: Series,
    /// Notifications the survivors sent from the kill to all elected again, and their CPU time
    /// divided by that number (µs).
    kill_notifications: Series,
    kill_us_per_notification: Series,
}

/// Whether a run measures memory, threads and idle CPU of the settled ensemble.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Footprint {
    Measure { idle: Duration },
    Skip,
}

/// What becomes of a run's configs and node logs when it ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RunFiles {
    Keep,
    Remove,
}

/// One run: an ensemble of `n` nodes of `kind` in a directory under `root`.
struct Run<'a> {
    kind: Impl,
    n: usize,
    tick_time: u64,
    root: &'a Path,
    footprint: Footprint,
    files: RunFiles,
    tls: bool,
}

/// Follows a growing log file. The file stays open once it exists (a restarted node appends to
/// it), and lines are cut once per read: the poll runs on the same two cores as the ensemble it
/// watches, through some 20,000 lines of a 51-node launch.
struct Tail {
    path: PathBuf,
    file: Option<std::fs::File>,
    partial: Vec<u8>,
}

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail { path, file: None, partial: Vec::new() }
    }
    fn lines(&mut self) -> Vec<String> {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let Some(f) = self.file.as_mut() else { return Vec::new() };
        // Plain reads until EOF: `read_to_end` would also ask for the file's size and position.
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match f.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.partial.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else { return Vec::new() };
        let rest = self.partial.split_off(end + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        String::from_utf8_lossy(&done).lines().map(str::to_string).collect()
    }
}

/// A "… - broadcast" milestone in either implementation's log: its time, and whether the node leads.
fn broadcast_line(line: &str) -> Option<(u64, bool)> {
    let m = parse_milestone(line).filter(|m| m.phase == "broadcast")?;
    Some((parse_timestamp_ms(line)?, m.state == "leading"))
}

struct Ensemble {
    kind: Impl,
    dir: PathBuf,
    n: usize,
    /// (quorum, election, client) port of each node, sid - 1 as index.
    ports: Vec<(u16, u16, u16)>,
    /// The address of each node, sid - 1 as index.
    hosts: Vec<String>,
    children: BTreeMap<usize, Child>,
    tails: BTreeMap<usize, Tail>,
    /// Time of each node's latest broadcast line and whether it leads.
    state: BTreeMap<usize, (u64, bool)>,
    files: RunFiles,
}

impl Ensemble {
    /// Writes the configs of a fresh ensemble; starts nothing.
    fn new(run: &Run) -> Result<Ensemble, String> {
        let (kind, n) = (run.kind, run.n);
        let name = if kind == Impl::Zkelect { "zkelect" } else { "zookeeper" };
        let dir = run.root.join(format!("{name}-{n}-{}", now_ms()));
        let p = free_ports(3 * n).map_err(|e| format!("cannot allocate ports: {e}"))?;
        let ports: Vec<(u16, u16, u16)> = p.chunks_exact(3).map(|c| (c[0], c[1], c[2])).collect();
        let extra = "4lw.commands.whitelist=*\nadmin.enableServer=false\nstandaloneEnabled=false\n";
        let hosts: Vec<String> =
            (1..=n).map(|sid| if run.tls { format!("127.0.1.{sid}") } else { "127.0.0.1".to_string() }).collect();
        let configs = if run.tls {
            write_tls_configs(&dir, &hosts, &ports, run.tick_time, extra)?
        } else {
            let shared = local_ensemble(run.tick_time, &ports).extra(extra);
            (1..)
                .zip(&ports)
                .map(|(sid, (_, _, client))| write_local_node(&shared, &dir, sid, *client))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{}: {e}", dir.display()))?
        };
        if kind == Impl::ZooKeeper {
            for cfg in &configs {
                let d = cfg.parent().unwrap_or(&dir);
                zookeeper::write_log4j(d, &d.join("node.log")).map_err(|e| format!("{}: {e}", d.display()))?;
            }
        }
        let tails = (1..=n).map(|s| (s, Tail::new(dir.join(format!("n{s}/node.log"))))).collect();
        Ok(Ensemble {
            kind,
            dir,
            n,
            ports,
            hosts,
            children: BTreeMap::new(),
            tails,
            state: BTreeMap::new(),
            files: run.files,
        })
    }

    fn start(&mut self, sid: usize) -> Result<(), String> {
        let d = self.dir.join(format!("n{sid}"));
        let child = match self.kind {
            Impl::Zkelect => {
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(d.join("node.log"))
                    .map_err(|e| e.to_string())?;
                Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
                    .arg("start")
                    .arg(d.join("zoo.cfg"))
                    .env("RUST_LOG", "info")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
            }
            Impl::ZooKeeper => zookeeper::server_command(&d, &[]).stdout(Stdio::null()).stderr(Stdio::null()).spawn(),
        }
        .map_err(|e| format!("cannot start {} node {sid}: {e}", self.kind.name()))?;
        self.children.insert(sid, child);
        Ok(())
    }

    fn kill(&mut self, sid: usize) {
        if let Some(mut c) = self.signal_kill(sid) {
            let _ = c.wait();
        }
    }

    /// SIGKILL without reaping: the caller waits for the child after the measurement. Reaping a
    /// process whose /proc entries were read walks them all (for a node of 108 threads, some
    /// milliseconds of CPU), which is the benchmark's work, not the ensemble's.
    fn signal_kill(&mut self, sid: usize) -> Option<Child> {
        self.state.remove(&sid);
        let mut c = self.children.remove(&sid)?;
        let _ = c.kill();
        Some(c)
    }

    fn pid(&self, sid: usize) -> Option<u32> {
        self.children.get(&sid).map(Child::id)
    }

    fn pids(&self, sids: &[usize]) -> Vec<u32> {
        sids.iter().filter_map(|s| self.pid(*s)).collect()
    }

    /// Reads new log lines; a LOOKING line clears a node's broadcast state.
    fn poll(&mut self) {
        for (sid, t) in self.tails.iter_mut() {
            for line in t.lines().into_iter().filter(|l| may_be_state_line(l)) {
                if let Some(done) = broadcast_line(&line) {
                    self.state.insert(*sid, done);
                } else if is_looking_line(&line) {
                    self.state.remove(sid);
                }
            }
        }
    }

    /// Waits until every listed node is in broadcast after `since`; returns the latest such time.
    fn wait_broadcast(&mut self, sids: &[usize], since: u64, timeout: Duration) -> Option<u64> {
        let end = Instant::now() + timeout;
        loop {
            self.poll();
            let times: Option<Vec<u64>> =
                sids.iter().map(|s| self.state.get(s).filter(|(t, _)| *t >= since).map(|(t, _)| *t)).collect();
            if let Some(t) = times {
                return t.into_iter().max();
            }
            if Instant::now() > end {
                return None;
            }
            // The times come from the lines' own timestamps, so how often this looks only decides
            // how soon it notices; it runs on the cores it measures.
            std::thread::sleep(POLL);
        }
    }

    fn leader(&self) -> Option<usize> {
        self.state.iter().find(|(_, (_, leads))| *leads).map(|(s, _)| *s)
    }

    fn proc_status(&self, sid: usize, key: &str) -> Option<f64> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid(sid)?)).ok()?;
        text.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
    }

    /// Notifications sent by the listed nodes, from `srvr` (zkelect counts notifications there).
    fn notifications_sent(&self, sids: &[usize]) -> Option<f64> {
        let mut total = 0.0;
        for sid in sids {
            let ((_, _, client), host) = (self.ports.get(sid - 1)?, self.hosts.get(sid - 1)?);
            let mut s = std::net::TcpStream::connect((host.as_str(), *client)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            s.write_all(b"srvr").ok()?;
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            total += out.lines().find_map(|l| l.strip_prefix("Sent: "))?.trim().parse::<f64>().ok()?;
        }
        Some(total)
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for sid in 1..=self.n {
            self.kill(sid);
        }
        if self.files == RunFiles::Remove {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One run: launch, settle (and measure the footprint), kill the leader, restart it.
fn run_once(run: &Run, r: &mut Results) -> Result<(), String> {
    let mut e = Ensemble::new(run)?;
    let (kind, n) = (run.kind, run.n);
    let all: Vec<usize> = (1..=n).collect();
    let timeout = Duration::from_secs(60 + n as u64);
    let t0 = now_ms();
    for s in &all {
        e.start(*s)?;
    }
    let done = e.wait_broadcast(&all, t0, timeout).ok_or_else(|| format!("{} N={n}: no leader", kind.name()))?;
    r.launch.0.push(done.saturating_sub(t0) as f64);
    r.launch_cpu_ms.0.push(ms(cpu::Snapshot::zero().used_until(&cpu::Snapshot::take(&e.pids(&all)))));
    if kind == Impl::Zkelect
        && let Some(sent) = e.notifications_sent(&all)
    {
        r.notifications.0.push(sent);
    }
    e.poll();
    match run.footprint {
        Footprint::Measure { idle } => measure_footprint(&e, &all, e.leader(), idle, r),
        Footprint::Skip => std::thread::sleep(Duration::from_millis(300)),
    }
    e.poll();
    let leader = e.leader().ok_or("no leader found")?;
    let survivors: Vec<usize> = all.iter().copied().filter(|s| *s != leader).collect();
    let sent = if kind == Impl::Zkelect { e.notifications_sent(&survivors) } else { None };
    let before = cpu::Snapshot::take(&e.pids(&survivors));
    let t1 = now_ms();
    let victim = e.signal_kill(leader);
    let done = e.wait_broadcast(&survivors, t1, timeout);
    let after = cpu::Snapshot::take(&e.pids(&survivors));
    if let Some(mut c) = victim {
        let _ = c.wait();
    }
    let done = done.ok_or_else(|| format!("{} N={n}: no re-election", kind.name()))?;
    r.kill.0.push(done.saturating_sub(t1) as f64);
    let used = ms(before.used_until(&after));
    r.kill_cpu_ms.0.push(used);
    if let Some(before) = sent
        && let Some(after) = e.notifications_sent(&survivors)
        && after > before
    {
        r.kill_notifications.0.push(after - before);
        r.kill_us_per_notification.0.push(used * 1000.0 / (after - before));
    }
    std::thread::sleep(Duration::from_millis(300));
    let t2 = now_ms();
    e.start(leader)?;
    let done = e
        .wait_broadcast(&[leader], t2, timeout)
        .ok_or_else(|| format!("{} N={n}: restart never followed", kind.name()))?;
    r.restart.0.push(done.saturating_sub(t2) as f64);
    Ok(())
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Mean RSS and most threads per node of a settled ensemble, [`SETTLED_FOR`] after it settled;
/// then the CPU time each node uses while nothing happens, over `idle`.
fn measure_footprint(e: &Ensemble, sids: &[usize], leader: Option<usize>, idle: Duration, r: &mut Results) {
    std::thread::sleep(SETTLED_FOR);
    let rss: Vec<f64> = sids.iter().filter_map(|s| e.proc_status(*s, "VmRSS:")).collect();
    let th: Vec<f64> = sids.iter().filter_map(|s| e.proc_status(*s, "Threads:")).collect();
    let anon: Vec<f64> = sids.iter().filter_map(|s| e.proc_status(*s, "RssAnon:")).collect();
    r.rss_mib.0.push(rss.iter().sum::<f64>() / rss.len().max(1) as f64 / 1024.0);
    r.anon_mib.0.push(anon.iter().sum::<f64>() / anon.len().max(1) as f64 / 1024.0);
    r.threads.0.push(th.iter().copied().fold(0.0, f64::max));
    if idle.is_zero() {
        return;
    }
    let pids: Vec<(usize, u32)> = sids.iter().filter_map(|s| Some((*s, e.pid(*s)?))).collect();
    let used = cpu::watch(&pids.iter().map(|(_, p)| *p).collect::<Vec<_>>(), idle);
    let per_minute = |ns: u64| ms(ns) * 60.0 / idle.as_secs_f64();
    let all = Series(used.iter().map(|ns| per_minute(*ns)).collect());
    if let Some(m) = all.median() {
        r.idle_cpu_ms.0.push(m);
    }
    if let Some(i) = pids.iter().position(|(s, _)| Some(*s) == leader) {
        r.idle_cpu_leader_ms.0.push(per_minute(used[i]));
    }
}

pub fn run(o: Options) -> Result<(), String> {
    if o.vs_zookeeper && !zookeeper::missing_jars().is_empty() {
        return Err(format!(
            "--vs-zookeeper needs Debian's zookeeper package (apt-get install -y zookeeper); missing: {}",
            zookeeper::missing_jars().join(", ")
        ));
    }
    // Everything of this invocation goes under one fresh directory: the runs, and the report
    // unless --out names another place.
    let base = std::env::temp_dir().join(format!("zkelect-bench-{}-{}", std::process::id(), now_ms()));
    let work = base.join("runs");
    let out = o.out.clone().unwrap_or_else(|| base.clone());
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let results = run_all(&o, &work)?;
    // With ZooKeeper at hand (and no TLS): failover in mixed ensembles, ZooKeeper leading.
    let mixed = if o.vs_zookeeper && !o.tls { mixed::run(&work, o.runs, o.tick_time)? } else { String::new() };
    if o.keep_logs {
        say!("kept the runs' configs and logs in {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    let table = report::markdown(&results, &o) + &mixed;
    say!("{table}");
    let (md, plot) = (out.join("bench.md"), out.join("bench.svg"));
    std::fs::write(&md, &table).map_err(|e| format!("{}: {e}", md.display()))?;
    std::fs::write(&plot, svg::svg(&results, o.tls)).map_err(|e| format!("{}: {e}", plot.display()))?;
    say!("wrote {} and {}", md.display(), plot.display());
    Ok(())
}

/// Every size, implementation and run; the first run of each measures the footprint.
fn run_all(o: &Options, work: &Path) -> Result<BTreeMap<(usize, Impl), Results>, String> {
    let mut results: BTreeMap<(usize, Impl), Results> = BTreeMap::new();
    for &n in &o.sizes {
        let mut kinds = vec![Impl::Zkelect];
        // ZooKeeper runs the sizes up to 9 only (as --vs-zookeeper's help says).
        if o.vs_zookeeper && n <= 9 {
            kinds.push(Impl::ZooKeeper);
        }
        for kind in kinds {
            let r = results.entry((n, kind)).or_default();
            for i in 0..o.runs {
                eprint!("\r{} N={n}: run {}/{}   ", kind.name(), i + 1, o.runs);
                let run = Run {
                    kind,
                    n,
                    tick_time: o.tick_time,
                    root: work,
                    footprint: if i == 0 { Footprint::Measure { idle: o.idle } } else { Footprint::Skip },
                    files: if o.keep_logs { RunFiles::Keep } else { RunFiles::Remove },
                    tls: o.tls,
                };
                run_once(&run, r)?;
            }
            eprintln!();
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::Tail;
    use std::io::Write;

    /// Only whole lines come out, the rest waits for its end; a file that does not exist yet is
    /// picked up once it does, and what is appended later is read from where the last read ended.
    #[test]
    fn a_tail_yields_whole_lines_once() {
        let dir = std::env::temp_dir().join(format!("zkelect-tail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("node.log");
        let mut t = Tail::new(path.clone());
        assert!(t.lines().is_empty());
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("log");
        f.write_all(b"one\ntw").expect("write");
        assert_eq!(t.lines(), ["one"]);
        assert!(t.lines().is_empty());
        f.write_all(b"o\nthree\nfo").expect("write");
        assert_eq!(t.lines(), ["two", "three"]);
        f.write_all(b"ur\n").expect("write");
        assert_eq!(t.lines(), ["four"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
