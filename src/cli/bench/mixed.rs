//! The mixed-ensemble failover row of `zkelect bench --vs-zookeeper`: three servers on 127.0.0.1,
//! some of them zkelect, the others Debian's ZooKeeper, with ZooKeeper server 3 leading. It is
//! killed (kill -9); the figure is the time until both survivors have decided the next election
//! (the later of their first "LEADING/FOLLOWING - LEADER ELECTION TOOK" lines after the kill; both
//! implementations log it). With a zkelect voter the survivors elect a ZooKeeper leader that cannot
//! get a Zab quorum (a zkelect node cannot acknowledge transactions), which is why the README asks
//! for zkelect nodes to be observers there; this row measures the election, as a ZooKeeper
//! follower would notice it.

use super::Series;
use crate::cli::localports::free_ports;
use crate::cli::logs::{now_ms, parse_timestamp_ms};
use crate::cli::zoocfg::{local_ensemble, write_local_node};
use crate::cli::zookeeper;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// JVM options of the ZooKeeper servers: small and quick to start (several share 2 cores).
const JVM_OPTIONS: [&str; 3] = ["-Xmx96m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"];
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The ensembles compared: a name and the sids run by zkelect (the others are ZooKeeper).
const ENSEMBLES: [(&str, &[usize]); 3] =
    [("3 ZooKeeper servers", &[]), ("zkelect 1 + ZooKeeper 2, 3", &[1]), ("zkelect 1, 2 + ZooKeeper 3", &[1, 2])];

struct Mixed {
    dir: PathBuf,
    zkelect: Vec<usize>,
    children: BTreeMap<usize, Child>,
}

impl Mixed {
    fn new(root: &Path, zkelect: &[usize], tick: u64) -> Result<Mixed, String> {
        let dir = root.join(format!("mixed-{}-{}", zkelect.len(), now_ms()));
        let p = free_ports(9).map_err(|e| format!("cannot allocate ports: {e}"))?;
        let ports: Vec<(u16, u16, u16)> = p.chunks_exact(3).map(|c| (c[0], c[1], c[2])).collect();
        let shared = local_ensemble(tick, &ports).extra("4lw.commands.whitelist=*\nadmin.enableServer=false\n");
        for (sid, (_, _, client)) in (1..).zip(&ports) {
            let cfg = write_local_node(&shared, &dir, sid, *client).map_err(|e| format!("{}: {e}", dir.display()))?;
            if !zkelect.contains(&(sid as usize)) {
                let d = cfg.parent().unwrap_or(&dir);
                zookeeper::write_log4j(d, &d.join("node.log")).map_err(|e| format!("{}: {e}", d.display()))?;
            }
        }
        Ok(Mixed { dir, zkelect: zkelect.to_vec(), children: BTreeMap::new() })
    }

    fn start(&mut self, sid: usize) -> Result<(), String> {
        let d = self.dir.join(format!("n{sid}"));
        let child = if self.zkelect.contains(&sid) {
            let log = std::fs::File::create(d.join("node.log")).map_err(|e| e.to_string())?;
            Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
                .arg("start")
                .arg(d.join("zoo.cfg"))
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
        } else {
            let options: Vec<String> = JVM_OPTIONS.iter().map(|o| o.to_string()).collect();
            zookeeper::server_command(&d, &options).stdout(Stdio::null()).stderr(Stdio::null()).spawn()
        }
        .map_err(|e| format!("cannot start node {sid}: {e}"))?;
        self.children.insert(sid, child);
        Ok(())
    }

    fn kill(&mut self, sid: usize) {
        if let Some(mut c) = self.children.remove(&sid) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The first election `sid` decided at or after `since` ms: (time, whether it leads).
    fn settled(&self, sid: usize, since: u64) -> Option<(u64, bool)> {
        let log = std::fs::read_to_string(self.dir.join(format!("n{sid}/node.log"))).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                let state = ["LEADING", "FOLLOWING", "OBSERVING"]
                    .into_iter()
                    .find(|s| l.contains(&format!("] - {s} - LEADER ELECTION TOOK")))?;
                Some((parse_timestamp_ms(l)?, state == "LEADING"))
            })
            .find(|(t, _)| *t >= since)
    }

    /// Waits until every node in `sids` settled after `since`; the time of the last of them.
    fn wait_settled(&self, sids: &[usize], since: u64) -> Option<u64> {
        let end = Instant::now() + SETTLE_TIMEOUT;
        while Instant::now() < end {
            let times: Option<Vec<u64>> = sids.iter().map(|s| self.settled(*s, since).map(|(t, _)| t)).collect();
            if let Some(t) = times {
                return t.into_iter().max();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Mixed {
    fn drop(&mut self) {
        let sids: Vec<usize> = self.children.keys().copied().collect();
        for sid in sids {
            self.kill(sid);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `sid`'s log says it is electing (both implementations log a line `LOOKING`).
fn looking(m: &Mixed, sid: usize) -> bool {
    std::fs::read_to_string(m.dir.join(format!("n{sid}/node.log")))
        .is_ok_and(|log| log.lines().any(|l| l.ends_with("] - LOOKING")))
}

/// One run: ZooKeeper 3 first, and once it elects, the others (so that it leads); kill 3. `None`
/// when, on a slow machine, another server led anyway.
fn failover_once(root: &Path, zkelect: &[usize], tick: u64) -> Result<Option<f64>, String> {
    let mut m = Mixed::new(root, zkelect, tick)?;
    let t0 = now_ms();
    m.start(3)?;
    let end = Instant::now() + SETTLE_TIMEOUT;
    while !looking(&m, 3) {
        if Instant::now() > end {
            return Err("ZooKeeper 3 did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for sid in [1, 2] {
        m.start(sid)?;
    }
    m.wait_settled(&[1, 2, 3], t0).ok_or("the mixed ensemble did not elect")?;
    // ZooKeeper's decision lines do not name the leader: server 3 says it leads.
    if m.settled(3, t0).is_none_or(|(_, leads)| !leads) {
        return Ok(None);
    }
    std::thread::sleep(Duration::from_secs(1));
    let kill = now_ms();
    m.kill(3);
    let agreed = m.wait_settled(&[1, 2], kill).ok_or("the survivors did not elect")?;
    Ok(Some(agreed.saturating_sub(kill) as f64))
}

/// The table (Markdown) of `runs` failovers per ensemble.
pub fn run(root: &Path, runs: usize, tick: u64) -> Result<String, String> {
    let mut rows = Vec::new();
    for (name, zkelect) in ENSEMBLES {
        let mut s = Series::default();
        let mut tries = 0;
        while s.0.len() < runs {
            eprint!("\rmixed ensemble {name}: run {}/{runs}   ", s.0.len() + 1);
            tries += 1;
            match failover_once(root, zkelect, tick)? {
                Some(ms) => s.0.push(ms),
                None if tries < 3 * runs => {}
                None => return Err(format!("{name}: ZooKeeper 3 did not lead in {tries} tries")),
            }
        }
        eprintln!();
        rows.push((name, s));
    }
    let mut out = format!(
        "\nMixed ensembles, ZooKeeper 3 leading, kill -9 of it, tickTime {tick} ms: time until both survivors have \
         decided the next election (median (min–max) of {runs} runs).\n\n| ensemble | survivors decided after |\n|---|---|\n"
    );
    for (name, s) in rows {
        out.push_str(&format!("| {name} | {} |\n", s.cell("ms")));
    }
    Ok(out)
}
