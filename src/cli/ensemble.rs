//! `zkelect ensemble`: a local N-node ensemble on 127.0.0.1 for trying zkelect out. Writes the
//! configs into a fresh directory, starts N `zkelect start` children, streams their state changes
//! with node prefixes, prints the leader once all agree, and stops them all at the end.

use super::localports::free_ports;
use super::logs::{parse_milestone, parse_state};
use super::zoocfg::{local_ensemble, write_local_node};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Options {
    pub nodes: usize,
    pub run_for: Option<Duration>,
    pub dir: Option<PathBuf>,
    pub tick_time: u64,
}

/// What a node said about itself, parsed from its log.
enum Report {
    Decided { sid: usize, leader: i64, epoch: i64 },
    Looking { sid: usize },
    Exited { sid: usize },
}

pub fn run(opts: Options) -> Result<bool, String> {
    if opts.nodes == 0 || opts.nodes > 255 {
        return Err("--nodes must be between 1 and 255".into());
    }
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("zkelect-ensemble-{}", std::process::id())),
    };
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(false) {
        return Err(format!("{} exists and is not empty", dir.display()));
    }
    let p = free_ports(3 * opts.nodes).map_err(|e| format!("cannot allocate ports: {e}"))?;
    let ports: Vec<(u16, u16, u16)> = p.chunks_exact(3).map(|c| (c[0], c[1], c[2])).collect();
    let admin_ports = free_ports(opts.nodes).map_err(|e| format!("cannot allocate ports: {e}"))?;
    write_configs(&dir, &ports, &admin_ports, opts.tick_time)?;
    say!("ensemble of {} nodes in {}", opts.nodes, dir.display());
    for (sid, ((_, election, client), admin)) in (1..).zip(ports.iter().zip(&admin_ports)) {
        say!("  n{sid}: election 127.0.0.1:{election}, 4lw 127.0.0.1:{client}, status page http://127.0.0.1:{admin}/");
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the zkelect binary: {e}"))?;
    let (tx, rx) = mpsc::channel();
    let mut nodes = Nodes::default();
    for sid in 1..=opts.nodes {
        if let Err(e) = nodes.spawn(&exe, &dir, sid, tx.clone()) {
            nodes.stop();
            return Err(e);
        }
    }
    drop(tx);
    let settled = Watch::new(opts.nodes).run(&rx, opts.run_for);
    nodes.stop();
    say!("stopped all {} nodes; logs are in {}", opts.nodes, dir.display());
    Ok(settled)
}

/// The decisions seen so far, and whether the settled leadership was announced.
struct Watch {
    nodes: usize,
    alive: usize,
    /// sid -> (leader, epoch) of its latest broadcast line.
    decided: BTreeMap<usize, (i64, i64)>,
    /// The leadership last announced, until a node goes LOOKING again.
    shown: Option<(i64, i64)>,
    start: Instant,
}

impl Watch {
    fn new(nodes: usize) -> Watch {
        Watch { nodes, alive: nodes, decided: BTreeMap::new(), shown: None, start: Instant::now() }
    }

    /// Follows the reports until `run_for` has passed (if given) or every node exited; returns
    /// whether the ensemble settled on a leader.
    fn run(mut self, rx: &mpsc::Receiver<Report>, run_for: Option<Duration>) -> bool {
        loop {
            let left = run_for.map(|d| d.saturating_sub(self.start.elapsed()));
            if left.is_some_and(|l| l.is_zero()) || self.alive == 0 {
                return self.shown.is_some();
            }
            let wait = left.map_or(Duration::from_millis(500), |l| l.min(Duration::from_millis(500)));
            if let Ok(report) = rx.recv_timeout(wait) {
                self.on(report);
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
                self.shown = None;
            }
            Report::Exited { sid } => {
                say!("[n{sid}] exited");
                self.decided.remove(&sid);
                self.alive -= 1;
            }
        }
    }

    /// Prints the leadership once every node is in broadcast under one leader.
    fn announce(&mut self) {
        let Some(first) = self.decided.values().next().copied() else { return };
        if self.decided.len() < self.nodes
            || !self.decided.values().all(|x| x.0 == first.0)
            || self.shown == Some(first)
        {
            return;
        }
        say!(
            "settled after {} ms: leader is server {} (epoch {}), {} followers",
            self.start.elapsed().as_millis(),
            first.0,
            first.1,
            self.nodes - 1
        );
        let _ = std::io::stdout().flush();
        self.shown = Some(first);
    }
}

/// The running nodes and the threads that read their logs.
#[derive(Default)]
struct Nodes {
    children: Vec<Child>,
    readers: Vec<JoinHandle<()>>,
}

impl Nodes {
    /// Kills every node by PID, then joins the log readers (their pipes close with the nodes).
    fn stop(&mut self) {
        for c in self.children.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }

    /// Starts node `sid` and the thread that reads its log.
    fn spawn(&mut self, exe: &Path, dir: &Path, sid: usize, tx: mpsc::Sender<Report>) -> Result<(), String> {
        let (child, reader) = spawn_node(exe, dir, sid, tx)?;
        self.children.push(child);
        self.readers.push(reader);
        Ok(())
    }
}

/// Each node's zoo.cfg and myid in `dir/n<sid>`, with its AdminServer (status page, HTTP
/// commands) on 127.0.0.1:`admin_ports[sid - 1]`.
fn write_configs(dir: &Path, ports: &[(u16, u16, u16)], admin_ports: &[u16], tick: u64) -> Result<(), String> {
    let shared = local_ensemble(tick, ports).extra("4lw.commands.whitelist=*\nstandaloneEnabled=false\n");
    for (sid, ((_, _, client), admin)) in (1..).zip(ports.iter().zip(admin_ports)) {
        let node = shared
            .clone()
            .extra(&format!("admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={admin}\n"));
        write_local_node(&node, dir, sid, *client).map_err(|e| format!("cannot write the configs: {e}"))?;
    }
    Ok(())
}

/// Starts one node and the thread that reads its log; both are returned to be stopped and joined.
fn spawn_node(exe: &Path, dir: &Path, sid: usize, tx: mpsc::Sender<Report>) -> Result<(Child, JoinHandle<()>), String> {
    let node_dir = dir.join(format!("n{sid}"));
    let mut child = Command::new(exe)
        .arg("start")
        .arg(node_dir.join("zoo.cfg"))
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start node {sid}: {e}"))?;
    let stderr = child.stderr.take().ok_or("no stderr pipe")?;
    let log_path = node_dir.join("zkelect.log");
    let reader = std::thread::Builder::new()
        .name(format!("ensemble-n{sid}"))
        .spawn(move || {
            let mut log = std::fs::File::create(&log_path).ok();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(f) = log.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                if let Some(r) = interesting(sid, &line) {
                    let _ = tx.send(r);
                }
            }
            let _ = tx.send(Report::Exited { sid });
        })
        .map_err(|e| format!("cannot start a log reader: {e}"))?;
    Ok((child, reader))
}

/// Prints the lines an operator cares about and turns decisions into reports.
fn interesting(sid: usize, line: &str) -> Option<Report> {
    let msg = line.split_once("] - ").map(|x| x.1).unwrap_or(line);
    let milestone = parse_milestone(msg);
    let session_setup = milestone.as_ref().is_some_and(|m| m.phase == "discovery" || m.phase == "synchronization");
    let show = (parse_state(msg).is_some() && !session_setup)
        || msg.contains("LEADER ELECTION TOOK")
        || line.contains(" ERROR ")
        || msg.contains("stepping down")
        || msg.starts_with("Exception when following");
    if show {
        say!("[n{sid}] {msg}");
    }
    if let Some(m) = milestone.filter(|m| m.phase == "broadcast") {
        return Some(Report::Decided { sid, leader: m.leader?, epoch: m.epoch? });
    }
    if parse_state(msg) == Some("looking") {
        return Some(Report::Looking { sid });
    }
    None
}
