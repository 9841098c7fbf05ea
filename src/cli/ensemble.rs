//! `zkelect ensemble`: a local N-node ensemble on 127.0.0.1 for trying zkelect out. Writes the
//! configs into a fresh directory, starts N `zkelect start` children, streams their state changes
//! with node prefixes, prints the leader once all agree, and stops them all at the end.

use super::localports::free_ports;
use super::logs::parse_milestone;
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
    Decided { sid: usize, state: String, leader: i64, epoch: i64 },
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
    let ports = free_ports(3 * opts.nodes).map_err(|e| format!("cannot allocate ports: {e}"))?;
    write_configs(&dir, opts.nodes, &ports, opts.tick_time)?;
    say!("ensemble of {} nodes in {}", opts.nodes, dir.display());
    for sid in 1..=opts.nodes {
        say!("  n{sid}: election 127.0.0.1:{}, 4lw 127.0.0.1:{}", ports[3 * (sid - 1) + 1], ports[3 * (sid - 1) + 2]);
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the zkelect binary: {e}"))?;
    let (tx, rx) = mpsc::channel();
    let mut children: Vec<Child> = Vec::new();
    let mut readers: Vec<JoinHandle<()>> = Vec::new();
    for sid in 1..=opts.nodes {
        match spawn_node(&exe, &dir, sid, tx.clone()) {
            Ok((c, r)) => {
                children.push(c);
                readers.push(r);
            }
            Err(e) => {
                stop(&mut children, readers);
                return Err(e);
            }
        }
    }
    drop(tx);
    let t0 = Instant::now();
    let mut decided: BTreeMap<usize, (String, i64, i64)> = BTreeMap::new();
    let mut shown: Option<(i64, i64)> = None;
    let mut alive = opts.nodes;
    loop {
        let left = opts.run_for.map(|d| d.saturating_sub(t0.elapsed()));
        if left.is_some_and(|l| l.is_zero()) || alive == 0 {
            break;
        }
        let msg = match left {
            Some(l) => rx.recv_timeout(l.min(Duration::from_millis(500))),
            None => rx.recv_timeout(Duration::from_millis(500)),
        };
        match msg {
            Ok(Report::Decided { sid, state, leader, epoch }) => {
                decided.insert(sid, (state, leader, epoch));
            }
            Ok(Report::Looking { sid }) => {
                decided.remove(&sid);
                shown = None;
            }
            Ok(Report::Exited { sid }) => {
                say!("[n{sid}] exited");
                decided.remove(&sid);
                alive -= 1;
            }
            Err(_) => {}
        }
        if decided.len() == opts.nodes {
            let leaders: Vec<(i64, i64)> = decided.values().map(|(_, l, e)| (*l, *e)).collect();
            let first = leaders[0];
            if leaders.iter().all(|x| x.0 == first.0) && shown != Some(first) {
                say!(
                    "settled after {} ms: leader is server {} (epoch {}), {} followers",
                    t0.elapsed().as_millis(),
                    first.0,
                    first.1,
                    opts.nodes - 1
                );
                let _ = std::io::stdout().flush();
                shown = Some(first);
            }
        }
    }
    stop(&mut children, readers);
    say!("stopped all {} nodes; logs are in {}", opts.nodes, dir.display());
    Ok(shown.is_some())
}

/// Kills every node by PID, then joins the log readers (their pipes close with the nodes).
fn stop(children: &mut [Child], readers: Vec<JoinHandle<()>>) {
    for c in children.iter_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    for r in readers {
        let _ = r.join();
    }
}

fn write_configs(dir: &Path, n: usize, ports: &[u16], tick: u64) -> Result<(), String> {
    let servers: String =
        (1..=n).map(|s| format!("server.{s}=127.0.0.1:{}:{}\n", ports[3 * (s - 1)], ports[3 * (s - 1) + 1])).collect();
    for sid in 1..=n {
        let d = dir.join(format!("n{sid}"));
        std::fs::create_dir_all(&d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        let cfg = format!(
            "# written by zkelect ensemble\ntickTime={tick}\ninitLimit=10\nsyncLimit=5\ndataDir={}\n\
             clientPort={}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\nstandaloneEnabled=false\n{servers}",
            d.display(),
            ports[3 * (sid - 1) + 2]
        );
        std::fs::write(d.join("zoo.cfg"), cfg).map_err(|e| format!("cannot write config: {e}"))?;
        std::fs::write(d.join("myid"), format!("{sid}\n")).map_err(|e| format!("cannot write myid: {e}"))?;
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
    let show =
        (msg.starts_with("Peer state changed") && !msg.contains(" - discovery") && !msg.contains(" - synchronization"))
            || msg.contains("LEADER ELECTION TOOK")
            || line.contains(" ERROR ")
            || msg.contains("stepping down")
            || msg.starts_with("Exception when following");
    if show {
        say!("[n{sid}] {msg}");
    }
    if let Some(m) = parse_milestone(msg).filter(|m| m.phase == "broadcast") {
        return Some(Report::Decided { sid, state: m.state, leader: m.leader?, epoch: m.epoch? });
    }
    if msg == "Peer state changed: looking" {
        return Some(Report::Looking { sid });
    }
    None
}
