//! `zkelect ensemble`: a local N-node ensemble on 127.0.0.1 for trying zkelect out. Writes the
//! configs into a directory, starts N `zkelect start` children (each in a process group of its
//! own, so a Ctrl-C in the terminal reaches only this command), streams their state changes with
//! node prefixes, prints the leader whenever the running nodes agree, and stops them all at the
//! end: after `--for`, on SIGTERM, SIGINT or SIGHUP, or when every node has exited. The directory
//! is removed afterwards unless `--keep` (or `--dir`) asks for it.
//!
//! With `--tls`, quorum TLS: a CA and a certificate per node are generated into `<dir>/certs`,
//! node N runs on 127.0.1.N (its certificate names that address, 127.0.0.1 and localhost, so that
//! the server id it claims is checked against its certificate), the TLS handshakes are shown, and
//! once settled node 1's view of its peers' connections (`elec`).

use super::certs::{self, Ca};
use super::localports::free_ports;
use super::logs::{parse_milestone, parse_state};
use super::zoocfg::{ZooCfg, local_ensemble, write_local_node};
use crossbeam_channel::{Receiver, Sender, select};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;
use zkelect::runtime::signals::{self, Signal, SignalWatcher};

pub struct Options {
    pub nodes: usize,
    pub run_for: Option<Duration>,
    pub dir: Option<PathBuf>,
    pub tick_time: u64,
    /// Keep the directory (configs, data, logs) after the run.
    pub keep: bool,
    /// Quorum TLS with generated certificates, node N on 127.0.1.N.
    pub tls: bool,
}

/// How long the nodes get for an orderly stop (SIGTERM) before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Log lines of a node shown when it exits on its own.
const LAST_LINES: usize = 8;

/// What a node said about itself, parsed from its log.
enum Report {
    /// A log line worth showing, printed by the watching loop (so never before the header).
    Line(String),
    Decided {
        sid: usize,
        leader: i64,
        epoch: i64,
    },
    Looking {
        sid: usize,
    },
    /// Its log ended: the process is exiting.
    Exited {
        sid: usize,
        last_lines: Vec<String>,
    },
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Elapsed,
    Signal(Signal),
    AllExited,
}

pub fn run(opts: Options) -> Result<bool, String> {
    if opts.nodes == 0 || opts.nodes > 255 {
        return Err("--nodes must be between 1 and 255".into());
    }
    let workdir = WorkDir::new(&opts)?;
    let result = run_in(&opts, &workdir.path);
    workdir.finish(result.is_ok());
    result
}

fn run_in(opts: &Options, dir: &Path) -> Result<bool, String> {
    let p = free_ports(3 * opts.nodes).map_err(|e| format!("cannot allocate ports: {e}"))?;
    let ports: Vec<(u16, u16, u16)> = p.chunks_exact(3).map(|c| (c[0], c[1], c[2])).collect();
    let hosts: Vec<String> = (1..=opts.nodes).map(|sid| host(opts.tls, sid)).collect();
    let admin_ports = free_ports(opts.nodes).map_err(|e| format!("cannot allocate ports: {e}"))?;
    if opts.tls {
        write_tls_configs(dir, &hosts, &ports, opts.tick_time, "4lw.commands.whitelist=*\nstandaloneEnabled=false\n")?;
        for (sid, (host, admin)) in (1..).zip(hosts.iter().zip(&admin_ports)) {
            enable_admin(dir, sid, host, *admin)?;
        }
    } else {
        write_configs(dir, &ports, opts.tick_time)?;
        for (sid, admin) in (1..).zip(&admin_ports) {
            enable_admin(dir, sid, "127.0.0.1", *admin)?;
        }
    }
    // Watched before any node starts: a stop asked for during start-up stops the nodes started so far.
    let signals = SignalWatcher::start(&Signal::STOP).map_err(|e| format!("cannot watch signals: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the zkelect binary: {e}"))?;
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut nodes = Nodes::default();
    for sid in 1..=opts.nodes {
        if let Err(e) = nodes.spawn(&exe, dir, sid, tx.clone()) {
            nodes.stop();
            return Err(e);
        }
    }
    drop(tx);
    say!("ensemble of {} in {}", plural(opts.nodes, "node", "nodes"), dir.display());
    for (sid, (((_, election, client), host), admin)) in (1..).zip(ports.iter().zip(&hosts).zip(&admin_ports)) {
        say!(
            "  n{sid}: pid {}, election {host}:{election}, 4lw {host}:{client}, status page http://{host}:{admin}/",
            nodes.pid(sid)
        );
    }
    if opts.tls {
        say!(
            "quorum TLS (sslQuorum=true) on the election and quorum ports; CA and node certificates in {}",
            dir.join("certs").display()
        );
    }
    let mut watch = Watch::new(opts.nodes);
    if opts.tls {
        watch.show_peers = Some((hosts[0].clone(), ports[0].2));
    }
    let end = watch.run(&rx, signals.receiver(), &mut nodes, opts.run_for);
    // What the nodes log while they stop one after another is no news.
    nodes.quiet.store(true, Ordering::Relaxed);
    if let End::Signal(s) = end {
        say!("received {s}: stopping the nodes");
    }
    let running = nodes.running();
    nodes.stop();
    say!("{}", stopped_line(opts.nodes, running));
    Ok(watch.settled())
}

/// `stopped all 3 nodes`, `stopped the node`, `stopped 2 of 3 nodes (the others had exited)`.
fn stopped_line(total: usize, running: usize) -> String {
    match (total, running) {
        (1, 0) => "the node had exited".to_string(),
        (_, 0) => format!("all {total} nodes had exited"),
        (1, _) => "stopped the node".to_string(),
        (t, r) if t == r => format!("stopped all {t} nodes"),
        (t, 1) => format!("stopped 1 of {t} nodes (the others had exited)"),
        (t, r) => format!("stopped {r} of {t} nodes ({} had exited)", plural(t - r, "node", "nodes")),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The directory of one run, and whether it stays afterwards.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn new(opts: &Options) -> Result<WorkDir, String> {
        let (path, keep) = match &opts.dir {
            // A directory the user named is theirs: never removed.
            Some(d) => (d.clone(), true),
            None => (std::env::temp_dir().join(format!("zkelect-ensemble-{}", std::process::id())), opts.keep),
        };
        if path.exists() && std::fs::read_dir(&path).map(|mut d| d.next().is_some()).unwrap_or(false) {
            return Err(format!("{} exists and is not empty", path.display()));
        }
        Ok(WorkDir { path, keep })
    }

    /// Says where the logs are, or removes them.
    fn finish(&self, ran: bool) {
        if self.keep {
            if ran {
                say!("configs and logs are in {} (n<N>/zoo.cfg, n<N>/zkelect.log)", self.path.display());
            }
            return;
        }
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) if ran => say!("removed {} (--keep keeps the configs and logs)", self.path.display()),
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("zkelect: cannot remove {}: {e}", self.path.display()),
        }
    }
}

/// The decisions seen so far, and whether the settled leadership was announced.
struct Watch {
    nodes: usize,
    alive: BTreeSet<usize>,
    /// sid -> (leader, epoch) of its latest broadcast line.
    decided: BTreeMap<usize, (i64, i64)>,
    /// The leadership last announced (leader, epoch, nodes running), until it no longer holds.
    shown: Option<(i64, i64, usize)>,
    /// Since when the nodes have been without a settled leadership; whether they had one before.
    unsettled_since: Instant,
    settled_before: bool,
    start: Instant,
    /// Where to ask for a node's view of its peer connections once settled (host, client port).
    show_peers: Option<(String, u16)>,
}

impl Watch {
    fn new(nodes: usize) -> Watch {
        let now = Instant::now();
        Watch {
            nodes,
            alive: (1..=nodes).collect(),
            decided: BTreeMap::new(),
            shown: None,
            unsettled_since: now,
            settled_before: false,
            start: now,
            show_peers: None,
        }
    }

    /// Follows the reports until `run_for` has passed (if given), a stop signal arrives, or
    /// every node exited.
    fn run(
        &mut self,
        rx: &Receiver<Report>,
        signals: &Receiver<Signal>,
        nodes: &mut Nodes,
        run_for: Option<Duration>,
    ) -> End {
        loop {
            if self.alive.is_empty() {
                return End::AllExited;
            }
            let left = run_for.map(|d| d.saturating_sub(self.start.elapsed()));
            if left.is_some_and(|l| l.is_zero()) {
                return End::Elapsed;
            }
            let wait = left.map_or(Duration::from_millis(500), |l| l.min(Duration::from_millis(500)));
            select! {
                recv(rx) -> report => match report {
                    Ok(Report::Exited { sid, last_lines }) => {
                        self.exited(sid);
                        for line in nodes.describe_exit(sid, &last_lines) {
                            say!("{line}");
                        }
                    }
                    Ok(Report::Line(line)) => say!("{line}"),
                    Ok(report) => self.on(report),
                    Err(_) => return End::AllExited,
                },
                recv(signals) -> s => if let Ok(s) = s { return End::Signal(s) },
                default(wait) => {}
            }
            self.announce();
        }
    }

    fn on(&mut self, report: Report) {
        match report {
            Report::Decided { sid, leader, epoch } => {
                self.decided.insert(sid, (leader, epoch));
            }
            Report::Looking { sid } => {
                self.decided.remove(&sid);
            }
            Report::Exited { sid, .. } => self.exited(sid),
            Report::Line(_) => {}
        }
    }

    fn exited(&mut self, sid: usize) {
        self.alive.remove(&sid);
        self.decided.remove(&sid);
    }

    /// The leadership every running node is in broadcast under, if they are a quorum and its
    /// leader is one of them.
    fn settled_now(&self) -> Option<(i64, i64)> {
        let first = *self.decided.values().next()?;
        let leader_runs = usize::try_from(first.0).is_ok_and(|l| self.alive.contains(&l));
        let all = self.alive.iter().all(|sid| self.decided.get(sid) == Some(&first));
        (all && leader_runs && 2 * self.alive.len() > self.nodes).then_some(first)
    }

    fn settled(&self) -> bool {
        self.settled_now().is_some()
    }

    /// Prints the leadership once the running nodes settle under it (again).
    fn announce(&mut self) {
        let Some((leader, epoch)) = self.settled_now() else {
            if self.shown.take().is_some() {
                self.unsettled_since = Instant::now();
            }
            return;
        };
        let key = (leader, epoch, self.alive.len());
        if self.shown == Some(key) {
            return;
        }
        let followers = plural(self.alive.len() - 1, "follower", "followers");
        let mut line = match self.shown {
            // Only the number of running nodes changed.
            Some(_) => format!("still settled: leader is server {leader} (epoch {epoch}), {followers}"),
            None => format!(
                "settled{} after {} ms: leader is server {leader} (epoch {epoch}), {followers}",
                if self.settled_before { " again" } else { "" },
                self.unsettled_since.elapsed().as_millis(),
            ),
        };
        let down: Vec<String> = (1..=self.nodes).filter(|s| !self.alive.contains(s)).map(|s| format!("n{s}")).collect();
        if !down.is_empty() {
            line.push_str(&format!("; {} not running", down.join(", ")));
        }
        say!("{line}");
        let _ = std::io::stdout().flush();
        self.shown = Some(key);
        self.settled_before = true;
        if let Some((host, port)) = &self.show_peers {
            show_peers(host, *port);
        }
    }
}

/// The running nodes and the threads that read their logs.
#[derive(Default)]
struct Nodes {
    /// sid -> child, until it is reaped.
    children: BTreeMap<usize, Child>,
    pids: BTreeMap<usize, u32>,
    readers: Vec<JoinHandle<()>>,
    /// Set: the readers stop showing log lines.
    quiet: Arc<AtomicBool>,
}

impl Nodes {
    fn pid(&self, sid: usize) -> u32 {
        self.pids.get(&sid).copied().unwrap_or(0)
    }

    fn running(&self) -> usize {
        self.children.len()
    }

    /// Asks every node to stop (SIGTERM), kills those still running after [`STOP_GRACE`], then
    /// joins the log readers (their pipes close with the nodes).
    fn stop(&mut self) {
        for (sid, c) in &self.children {
            if let Err(e) = signals::send(c.id(), Signal::Term) {
                eprintln!("zkelect: cannot stop n{sid} (pid {}): {e}", c.id());
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for (sid, mut c) in std::mem::take(&mut self.children) {
            let left = deadline.saturating_duration_since(Instant::now());
            if !matches!(c.wait_timeout(left), Ok(Some(_))) {
                eprintln!(
                    "zkelect: n{sid} (pid {}) did not stop within {} s; killing it",
                    c.id(),
                    STOP_GRACE.as_secs()
                );
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }

    /// Reaps a node whose log ended and says how it ended.
    fn describe_exit(&mut self, sid: usize, last_lines: &[String]) -> Vec<String> {
        let pid = self.pid(sid);
        let status = match self.children.remove(&sid) {
            Some(mut c) => match c.wait_timeout(STOP_GRACE) {
                Ok(Some(s)) => Some(s),
                _ => {
                    // Its log closed but it runs on: it cannot be watched any more.
                    let _ = c.kill();
                    let _ = c.wait();
                    None
                }
            },
            None => None,
        };
        exit_lines(sid, pid, status, last_lines)
    }

    /// Starts node `sid` and the thread that reads its log.
    fn spawn(&mut self, exe: &Path, dir: &Path, sid: usize, tx: Sender<Report>) -> Result<(), String> {
        let (child, reader) = spawn_node(exe, dir, sid, tx, Arc::clone(&self.quiet))?;
        self.pids.insert(sid, child.id());
        self.children.insert(sid, child);
        self.readers.push(reader);
        Ok(())
    }
}

/// `[n2] pid 4711 was killed by SIGKILL`, or the exit code and the node's last log lines.
fn exit_lines(sid: usize, pid: u32, status: Option<ExitStatus>, last_lines: &[String]) -> Vec<String> {
    let how = match status {
        None => return vec![format!("[n{sid}] pid {pid} closed its log but did not exit; killed it")],
        Some(s) => match (s.code(), s.signal()) {
            (_, Some(n)) => {
                let name = Signal::from_number(n).map_or_else(|| format!("signal {n}"), |s| s.to_string());
                return vec![format!("[n{sid}] pid {pid} was killed by {name}")];
            }
            (Some(c), None) => format!("exited with code {c}"),
            (None, None) => format!("exited ({s})"),
        },
    };
    let mut out = vec![format!("[n{sid}] pid {pid} {how}; its last log lines:")];
    out.extend(last_lines.iter().map(|l| format!("[n{sid}]   {l}")));
    out
}

/// Prints node 1's quorum TLS state and its peer connections (from `srvr` and `elec`).
fn show_peers(host: &str, port: u16) {
    let ask = |word: &[u8]| -> Option<String> {
        let mut s = std::net::TcpStream::connect((host, port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(word).ok()?;
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        Some(out)
    };
    if let Some(line) = ask(b"srvr").and_then(|t| t.lines().find(|l| l.starts_with("Quorum TLS:")).map(str::to_string))
    {
        say!("[n1] {line}");
    }
    let elec = ask(b"elec").unwrap_or_default();
    let peers = elec.lines().skip_while(|l| !l.starts_with("Peers:")).skip(1).take_while(|l| l.starts_with("  "));
    for line in peers {
        // "  2 (participant, 127.0.1.2:…): connected; last vote …; TLS TLSv1.2 - …; notifications …"
        let (who, rest) = line.trim().split_once("): ").unwrap_or((line.trim(), ""));
        let link = rest.split("; ").find(|p| p.starts_with("TLS ") || *p == "plaintext").unwrap_or("not connected");
        say!("[n1] peer {who}): {link}");
    }
}

/// Where node `sid` runs: 127.0.1.`sid` with quorum TLS (each certificate names its own node's
/// address, so the server id it claims is checked against it), else 127.0.0.1.
fn host(tls: bool, sid: usize) -> String {
    if tls { format!("127.0.1.{sid}") } else { "127.0.0.1".to_string() }
}

/// A CA and a certificate per node in `dir/certs`, and each node's zoo.cfg with quorum TLS in
/// `dir/n<sid>` (`extra` lines included), node `sid` on `hosts[sid - 1]`; returns the zoo.cfg paths.
pub(super) fn write_tls_configs(
    dir: &Path,
    hosts: &[String],
    ports: &[(u16, u16, u16)],
    tick: u64,
    extra: &str,
) -> Result<Vec<PathBuf>, String> {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).map_err(|e| format!("cannot create {}: {e}", certs.display()))?;
    let ca = Ca::new("zkelect ensemble CA")?;
    let trust = certs::write_trust_store(&ca, &certs).map_err(|e| format!("cannot write the CA certificate: {e}"))?;
    let shared = (1..)
        .zip(hosts.iter().zip(ports))
        .fold(ZooCfg::new(tick), |cfg, (sid, (h, (q, e, _)))| cfg.server(sid, h, *q, *e));
    let shared = shared.extra(extra);
    let mut written = Vec::new();
    for (sid, (h, (_, _, client))) in (1..).zip(hosts.iter().zip(ports)) {
        let ip: IpAddr = h.parse().map_err(|e| format!("{h}: {e}"))?;
        let key = certs::write_node_key_store(&ca, &certs, sid, ip)?;
        let node = dir.join(format!("n{sid}"));
        let cfg = shared
            .clone()
            .data_dir(&node)
            .client(h, *client)
            .extra(&certs::zoo_cfg_lines(&key, &trust))
            .write(&node, sid)
            .map_err(|e| format!("cannot write the configs: {e}"))?;
        written.push(cfg);
    }
    Ok(written)
}

/// Turns on node `sid`'s AdminServer (status page, HTTP commands) on `host:port`.
fn enable_admin(dir: &Path, sid: usize, host: &str, port: u16) -> Result<(), String> {
    let cfg = dir.join(format!("n{sid}/zoo.cfg"));
    let lines = format!("admin.enableServer=true\nadmin.serverAddress={host}\nadmin.serverPort={port}\n");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&cfg)
        .and_then(|mut f| f.write_all(lines.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", cfg.display()))
}

/// Each node's zoo.cfg and myid in `dir/n<sid>`.
fn write_configs(dir: &Path, ports: &[(u16, u16, u16)], tick: u64) -> Result<(), String> {
    let shared = local_ensemble(tick, ports).extra("4lw.commands.whitelist=*\nstandaloneEnabled=false\n");
    for (sid, (_, _, client)) in (1..).zip(ports) {
        write_local_node(&shared, dir, sid, *client).map_err(|e| format!("cannot write the configs: {e}"))?;
    }
    Ok(())
}

/// Starts one node and the thread that reads its log; both are returned to be stopped and joined.
fn spawn_node(
    exe: &Path,
    dir: &Path,
    sid: usize,
    tx: Sender<Report>,
    quiet: Arc<AtomicBool>,
) -> Result<(Child, JoinHandle<()>), String> {
    let node_dir = dir.join(format!("n{sid}"));
    // Through `zkelect __exec`, which asks the kernel for SIGKILL when this process dies: an
    // ensemble killed with SIGKILL (which it cannot catch) leaves no nodes behind.
    let mut child = Command::new(exe)
        .arg("__exec")
        .arg(std::process::id().to_string())
        .arg("--")
        .arg(exe)
        .arg("start")
        .arg(node_dir.join("zoo.cfg"))
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group: a Ctrl-C in the terminal reaches only `zkelect ensemble`, which
        // stops the nodes in order.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start node {sid}: {e}"))?;
    let stderr = child.stderr.take().ok_or("no stderr pipe")?;
    let log_path = node_dir.join("zkelect.log");
    let reader = std::thread::Builder::new()
        .name(format!("ensemble-n{sid}"))
        .spawn(move || {
            let mut log = std::fs::File::create(&log_path).ok();
            let mut last = VecDeque::with_capacity(LAST_LINES);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(f) = log.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                if !quiet.load(Ordering::Relaxed) {
                    let (shown, report) = interesting(sid, &line);
                    for r in shown.into_iter().chain(report) {
                        let _ = tx.send(r);
                    }
                }
                if last.len() == LAST_LINES {
                    last.pop_front();
                }
                last.push_back(line);
            }
            let _ = tx.send(Report::Exited { sid, last_lines: last.into() });
        })
        .map_err(|e| format!("cannot start a log reader: {e}"))?;
    Ok((child, reader))
}

/// The line to show if an operator cares about it, and the report of a decision or a LOOKING.
fn interesting(sid: usize, line: &str) -> (Option<Report>, Option<Report>) {
    let msg = line.split_once("] - ").map(|x| x.1).unwrap_or(line);
    let milestone = parse_milestone(msg);
    let session_setup = milestone.as_ref().is_some_and(|m| m.phase == "discovery" || m.phase == "synchronization");
    let show = (parse_state(msg).is_some() && !session_setup)
        || msg.contains("LEADER ELECTION TOOK")
        || line.contains(" ERROR ")
        || msg.contains("stepping down")
        || msg.starts_with("Exception when following")
        || msg.starts_with("Using TLS encrypted quorum communication")
        || msg.starts_with("SSL handshake complete with")
        || msg.starts_with("Accepted TLS connection from")
        || msg.starts_with("Refusing a connection from");
    let shown = show.then(|| Report::Line(format!("[n{sid}] {msg}")));
    let report = match milestone.filter(|m| m.phase == "broadcast") {
        Some(m) => m.leader.zip(m.epoch).map(|(leader, epoch)| Report::Decided { sid, leader, epoch }),
        None => (parse_state(msg) == Some("looking")).then_some(Report::Looking { sid }),
    };
    (shown, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decided(w: &mut Watch, sid: usize, leader: i64, epoch: i64) {
        w.on(Report::Decided { sid, leader, epoch });
    }

    #[test]
    fn settles_when_the_running_nodes_agree_and_are_a_quorum() {
        let mut w = Watch::new(3);
        decided(&mut w, 1, 3, 1);
        decided(&mut w, 2, 3, 1);
        assert!(!w.settled(), "node 3 has not decided");
        decided(&mut w, 3, 3, 1);
        assert_eq!(w.settled_now(), Some((3, 1)));
        // The leader is killed: the others go LOOKING and re-elect; that is settled again.
        w.exited(3);
        assert!(!w.settled(), "the leader is gone");
        w.on(Report::Looking { sid: 1 });
        w.on(Report::Looking { sid: 2 });
        decided(&mut w, 1, 2, 2);
        assert!(!w.settled());
        decided(&mut w, 2, 2, 2);
        assert_eq!(w.settled_now(), Some((2, 2)));
        // One node alone is no quorum of three.
        w.exited(1);
        assert!(!w.settled());
    }

    #[test]
    fn disagreement_is_not_settled() {
        let mut w = Watch::new(3);
        decided(&mut w, 1, 3, 1);
        decided(&mut w, 2, 2, 1);
        decided(&mut w, 3, 3, 1);
        assert!(!w.settled());
    }

    #[test]
    fn exits_are_described() {
        let status = |raw: i32| ExitStatus::from_raw(raw);
        let killed = exit_lines(2, 42, Some(status(9)), &["x".into()]);
        assert_eq!(killed, ["[n2] pid 42 was killed by SIGKILL"]);
        let failed = exit_lines(1, 7, Some(status(14 << 8)), &["a".into(), "b".into()]);
        assert_eq!(failed, ["[n1] pid 7 exited with code 14; its last log lines:", "[n1]   a", "[n1]   b"]);
        assert!(exit_lines(1, 7, None, &[])[0].contains("did not exit"));
    }

    #[test]
    fn counts_read_well() {
        assert_eq!(stopped_line(3, 3), "stopped all 3 nodes");
        assert_eq!(stopped_line(1, 1), "stopped the node");
        assert_eq!(stopped_line(3, 2), "stopped 2 of 3 nodes (1 node had exited)");
        assert_eq!(stopped_line(5, 3), "stopped 3 of 5 nodes (2 nodes had exited)");
        assert_eq!(stopped_line(3, 1), "stopped 1 of 3 nodes (the others had exited)");
        assert_eq!(stopped_line(3, 0), "all 3 nodes had exited");
        assert_eq!(stopped_line(1, 0), "the node had exited");
        assert_eq!(plural(1, "follower", "followers"), "1 follower");
    }
}
