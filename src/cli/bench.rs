//! `zkelect bench`: election timings, memory and threads of real ensembles on 127.0.0.1, and with
//! `--vs-zookeeper` the same scenarios on Debian's Apache ZooKeeper, side by side. Prints a
//! Markdown table and writes it, with an SVG plot, into the output directory. A benchmark, not a
//! test: it reports figures and asserts nothing.

use super::localports::free_ports;
use super::logs::{is_looking_line, parse_milestone, parse_timestamp_ms};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct Options {
    pub sizes: Vec<usize>,
    pub runs: usize,
    pub vs_zookeeper: bool,
    pub out: PathBuf,
    pub tick_time: u64,
    /// Keep every run's configs and node logs (for looking into a slow run).
    pub keep_logs: bool,
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
    threads: Series,
    notifications: Series,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Follows a growing log file.
struct Tail {
    path: PathBuf,
    pos: u64,
    partial: String,
}

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail { path, pos: 0, partial: String::new() }
    }
    fn lines(&mut self) -> Vec<String> {
        let Ok(mut f) = std::fs::File::open(&self.path) else { return Vec::new() };
        if f.seek(SeekFrom::Start(self.pos)).is_err() {
            return Vec::new();
        }
        let mut buf = String::new();
        if let Ok(n) = f.read_to_string(&mut buf) {
            self.pos += n as u64;
        }
        self.partial.push_str(&buf);
        let mut out = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            out.push(self.partial[..i].to_string());
            self.partial.drain(..=i);
        }
        out
    }
}

/// The time of a "… - broadcast" milestone in either implementation's log.
fn broadcast_line(line: &str) -> Option<(u64, bool)> {
    let m = parse_milestone(line).filter(|m| m.phase == "broadcast")?;
    Some((parse_timestamp_ms(line)?, m.state == "leading"))
}

struct Ensemble {
    kind: Impl,
    dir: PathBuf,
    n: usize,
    ports: Vec<(u16, u16, u16)>,
    children: BTreeMap<usize, Child>,
    tails: BTreeMap<usize, Tail>,
    /// Time of each node's latest broadcast line and whether it leads.
    state: BTreeMap<usize, (u64, bool)>,
    keep: bool,
}

impl Ensemble {
    fn new(kind: Impl, root: &Path, n: usize, tick: u64, keep: bool) -> Result<Ensemble, String> {
        let dir =
            root.join(format!("{}-{n}-{}", if kind == Impl::Zkelect { "zkelect" } else { "zookeeper" }, now_ms()));
        let p = free_ports(3 * n).map_err(|e| format!("cannot allocate ports: {e}"))?;
        let ports: Vec<(u16, u16, u16)> = (0..n).map(|i| (p[3 * i], p[3 * i + 1], p[3 * i + 2])).collect();
        let servers: String =
            (0..n).map(|i| format!("server.{}=127.0.0.1:{}:{}\n", i + 1, ports[i].0, ports[i].1)).collect();
        for sid in 1..=n {
            let d = dir.join(format!("n{sid}"));
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            let cfg = format!(
                "tickTime={tick}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
                 4lw.commands.whitelist=*\nadmin.enableServer=false\nstandaloneEnabled=false\n{servers}",
                d.display(),
                ports[sid - 1].2
            );
            let w = |name: &str, text: String| std::fs::write(d.join(name), text).map_err(|e| e.to_string());
            w("zoo.cfg", cfg)?;
            w("myid", format!("{sid}\n"))?;
            if kind == Impl::ZooKeeper {
                w(
                    "log4j.properties",
                    format!(
                        "log4j.rootLogger=INFO, F\nlog4j.appender.F=org.apache.log4j.FileAppender\nlog4j.appender.F.File={}\n\
                         log4j.appender.F.layout=org.apache.log4j.PatternLayout\n\
                         log4j.appender.F.layout.ConversionPattern=%d{{yyyy-MM-dd HH:mm:ss,SSS}} - %-5p [%t] - %m%n\n",
                        d.join("node.log").display()
                    ),
                )?;
            }
        }
        let tails = (1..=n).map(|s| (s, Tail::new(dir.join(format!("n{s}/node.log"))))).collect();
        Ok(Ensemble { kind, dir, n, ports, children: BTreeMap::new(), tails, state: BTreeMap::new(), keep })
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
            Impl::ZooKeeper => Command::new("java")
                .arg("-cp")
                .arg("/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar")
                .arg(format!("-Dlog4j.configuration=file:{}", d.join("log4j.properties").display()))
                .arg("-Djava.net.preferIPv4Stack=true")
                .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                .arg(d.join("zoo.cfg"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn(),
        }
        .map_err(|e| format!("cannot start {} node {sid}: {e}", self.kind.name()))?;
        self.children.insert(sid, child);
        Ok(())
    }

    fn kill(&mut self, sid: usize) {
        if let Some(mut c) = self.children.remove(&sid) {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.state.remove(&sid);
    }

    fn pid(&self, sid: usize) -> Option<u32> {
        self.children.get(&sid).map(Child::id)
    }

    /// Reads new log lines; a LOOKING line clears a node's broadcast state.
    fn poll(&mut self) {
        for (sid, t) in self.tails.iter_mut() {
            for line in t.lines() {
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
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn leader(&self) -> Option<usize> {
        self.state.iter().find(|(_, (_, leads))| *leads).map(|(s, _)| *s)
    }

    fn proc_status(&self, sid: usize, key: &str) -> Option<f64> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid(sid)?)).ok()?;
        text.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
    }

    /// Notifications sent by every node, from `srvr` (zkelect counts notifications there).
    fn notifications_sent(&self) -> Option<f64> {
        let mut total = 0.0;
        for (_, _, client) in &self.ports {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", *client)).ok()?;
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
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One run: launch, settle, (measure), kill the leader, restart it.
fn run_once(
    kind: Impl,
    root: &Path,
    n: usize,
    tick: u64,
    measure_footprint: bool,
    keep: bool,
    r: &mut Results,
) -> Result<(), String> {
    let mut e = Ensemble::new(kind, root, n, tick, keep)?;
    let all: Vec<usize> = (1..=n).collect();
    let timeout = Duration::from_secs(60 + n as u64);
    let t0 = now_ms();
    for s in &all {
        e.start(*s)?;
    }
    let done = e.wait_broadcast(&all, t0, timeout).ok_or_else(|| format!("{} N={n}: no leader", kind.name()))?;
    r.launch.0.push(done.saturating_sub(t0) as f64);
    if kind == Impl::Zkelect
        && let Some(sent) = e.notifications_sent()
    {
        r.notifications.0.push(sent);
    }
    if measure_footprint {
        // Past the 5 s keep-alive of idle dial threads.
        std::thread::sleep(Duration::from_secs(6));
        let rss: Vec<f64> = all.iter().filter_map(|s| e.proc_status(*s, "VmRSS:")).collect();
        let th: Vec<f64> = all.iter().filter_map(|s| e.proc_status(*s, "Threads:")).collect();
        r.rss_mib.0.push(rss.iter().sum::<f64>() / rss.len().max(1) as f64 / 1024.0);
        r.threads.0.push(th.iter().copied().fold(0.0, f64::max));
    } else {
        std::thread::sleep(Duration::from_millis(300));
    }
    e.poll();
    let leader = e.leader().ok_or("no leader found")?;
    let survivors: Vec<usize> = all.iter().copied().filter(|s| *s != leader).collect();
    let t1 = now_ms();
    e.kill(leader);
    let done =
        e.wait_broadcast(&survivors, t1, timeout).ok_or_else(|| format!("{} N={n}: no re-election", kind.name()))?;
    r.kill.0.push(done.saturating_sub(t1) as f64);
    std::thread::sleep(Duration::from_millis(300));
    let t2 = now_ms();
    e.start(leader)?;
    let done = e
        .wait_broadcast(&[leader], t2, timeout)
        .ok_or_else(|| format!("{} N={n}: restart never followed", kind.name()))?;
    r.restart.0.push(done.saturating_sub(t2) as f64);
    Ok(())
}

pub fn run(o: Options) -> Result<(), String> {
    std::fs::create_dir_all(&o.out).map_err(|e| format!("{}: {e}", o.out.display()))?;
    let work = std::env::temp_dir().join(format!("zkelect-bench-{}", std::process::id()));
    let mut results: BTreeMap<(usize, Impl), Results> = BTreeMap::new();
    let java = o.vs_zookeeper && std::path::Path::new("/usr/share/java/zookeeper.jar").exists();
    if o.vs_zookeeper && !java {
        return Err("--vs-zookeeper needs Debian's zookeeper package (apt-get install -y zookeeper)".into());
    }
    for &n in &o.sizes {
        let mut kinds = vec![Impl::Zkelect];
        if java && n <= 9 {
            kinds.push(Impl::ZooKeeper);
        }
        for kind in kinds {
            let r = results.entry((n, kind)).or_default();
            for i in 0..o.runs {
                eprint!("\r{} N={n}: run {}/{}   ", kind.name(), i + 1, o.runs);
                run_once(kind, &work, n, o.tick_time, i == 0, o.keep_logs, r)?;
            }
            eprintln!();
        }
    }
    if o.keep_logs {
        say(&format!("kept the runs' configs and logs in {}", work.display()));
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    let table = markdown(&results, &o);
    say(&table);
    std::fs::write(o.out.join("bench.md"), &table).map_err(|e| e.to_string())?;
    std::fs::write(o.out.join("bench.svg"), svg(&results)).map_err(|e| e.to_string())?;
    say(&format!("wrote {} and {}", o.out.join("bench.md").display(), o.out.join("bench.svg").display()));
    Ok(())
}

fn say(s: &str) {
    let _ = writeln!(std::io::stdout(), "{s}");
}

fn markdown(results: &BTreeMap<(usize, Impl), Results>, o: &Options) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Median (min–max) of {} runs, 127.0.0.1, tickTime {} ms, {} cores. Times are from the action to the last \
         node logging `… - broadcast`.\n",
        o.runs,
        o.tick_time,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let _ = writeln!(
        t,
        "| N | implementation | launch → all elected | leader kill → survivors elected | restart → following | RSS per node | threads per node (max) | notifications per election |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|");
    let sizes: Vec<usize> =
        results.keys().map(|k| k.0).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    for n in sizes {
        let z = results.get(&(n, Impl::Zkelect));
        let j = results.get(&(n, Impl::ZooKeeper));
        for (kind, r) in [(Impl::Zkelect, z), (Impl::ZooKeeper, j)] {
            let Some(r) = r else { continue };
            let _ = writeln!(
                t,
                "| {n} | {} | {} | {} | {} | {} | {} | {} |",
                kind.name(),
                r.launch.cell("ms"),
                r.kill.cell("ms"),
                r.restart.cell("ms"),
                r.rss_mib.median().map_or("–".into(), |v| format!("{v:.1} MiB")),
                r.threads.median().map_or("–".into(), |v| format!("{v:.0}")),
                r.notifications.cell(""),
            );
        }
        if let (Some(z), Some(j)) = (z, j) {
            let ratio = |a: &Series, b: &Series| match (a.median(), b.median()) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.0}×", b / a),
                _ => "–".into(),
            };
            let _ = writeln!(
                t,
                "| {n} | ratio ZooKeeper / zkelect | {} | {} | {} | {} | {} | |",
                ratio(&z.launch, &j.launch),
                ratio(&z.kill, &j.kill),
                ratio(&z.restart, &j.restart),
                ratio(&z.rss_mib, &j.rss_mib),
                ratio(&z.threads, &j.threads),
            );
        }
    }
    t
}

/// Election time (launch and leader kill) against N, log scale, both implementations.
fn svg(results: &BTreeMap<(usize, Impl), Results>) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 420.0, 70.0, 190.0, 30.0, 50.0);
    let sizes: Vec<usize> =
        results.keys().map(|k| k.0).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let (nmin, nmax) = (*sizes.first().unwrap_or(&3) as f64, *sizes.last().unwrap_or(&51) as f64);
    let x = |n: f64| left + (n.ln() - nmin.ln()) / (nmax.ln() - nmin.ln()).max(1e-9) * (w - left - right);
    let (ymin, ymax) = (1.0f64, 10_000.0f64);
    let y = |ms: f64| top + (1.0 - (ms.max(ymin).ln() - ymin.ln()) / (ymax.ln() - ymin.ln())) * (h - top - bottom);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"18\" font-size=\"14\">Election time vs ensemble size (median, log scales)</text>\n"
    );
    for ms in [1.0, 10.0, 100.0, 1000.0, 10_000.0] {
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{ms} ms</text>",
            w - right,
            left - 6.0,
            y(ms) + 4.0,
            y0 = y(ms)
        );
    }
    for n in &sizes {
        let _ = writeln!(
            s,
            "<line x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{top}\" y2=\"{}\" stroke=\"#eee\"/><text x=\"{x0:.1}\" y=\"{}\" text-anchor=\"middle\">N={n}</text>",
            h - bottom,
            h - bottom + 18.0,
            x0 = x(*n as f64)
        );
    }
    let series = [
        (Impl::Zkelect, "launch", "#1f77b4", "", 0usize),
        (Impl::Zkelect, "leader kill", "#1f77b4", "6,4", 1),
        (Impl::ZooKeeper, "launch", "#d62728", "", 0),
        (Impl::ZooKeeper, "leader kill", "#d62728", "6,4", 1),
    ];
    for (i, (kind, what, color, dash, which)) in series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = sizes
            .iter()
            .filter_map(|n| {
                let r = results.get(&(*n, *kind))?;
                let m = if *which == 0 { r.launch.median()? } else { r.kill.median()? };
                Some((x(*n as f64), y(m)))
            })
            .collect();
        if pts.is_empty() {
            continue;
        }
        let path: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        // An empty stroke-dasharray is not valid SVG: solid lines leave the attribute out.
        let dash = if dash.is_empty() { String::new() } else { format!(" stroke-dasharray=\"{dash}\"") };
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            path.join(" ")
        );
        for (a, b) in &pts {
            let _ = writeln!(s, "<circle cx=\"{a:.1}\" cy=\"{b:.1}\" r=\"3\" fill=\"{color}\"/>");
        }
        let ly = top + 20.0 + i as f64 * 20.0;
        let lx = w - right + 15.0;
        let _ = writeln!(
            s,
            "<line x1=\"{lx}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{}\">{} {what}</text>",
            lx + 25.0,
            lx + 30.0,
            ly + 4.0,
            kind.name()
        );
    }
    s.push_str("</svg>\n");
    s
}
