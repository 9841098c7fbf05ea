//! Real `zkelect start` processes on 127.0.0.1 with ports the test allocates. Every child is
//! killed by PID when the cluster is dropped, also when the test fails.

use super::{free_ports, wait_for};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static SEQ: AtomicU32 = AtomicU32::new(0);

pub struct Cluster {
    pub dir: PathBuf,
    /// sid -> (quorum port, election port, client port)
    pub ports: BTreeMap<i64, (u16, u16, u16)>,
    pub observers: Vec<i64>,
    /// Nodes run by Apache ZooKeeper (Debian's package) instead of zkelect.
    pub java: BTreeSet<i64>,
    /// Two election addresses per server (127.0.0.1 and 127.0.0.2) with `multiAddress.enabled`.
    pub multi_address: bool,
    /// `RUST_LOG` of the zkelect nodes.
    pub rust_log: String,
    /// Each node in its own network namespace (then every node uses the same ports on its own address).
    pub net: Option<super::netns::Net>,
    children: BTreeMap<i64, Child>,
    /// Helper processes (relays…), killed with the nodes.
    helpers: Vec<Child>,
    extra: String,
}

/// Written into a node's log by the harness right before it (re)starts the process.
pub const RESTART_MARK: &str = "### test harness: starting the node";

/// Where Debian's `zookeeper` package puts its jars.
pub const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";

impl Cluster {
    /// `voters` participants with sids 1..=voters, then `observers` observers.
    pub fn new(voters: i64, observers: i64, extra: &str) -> Cluster {
        let n = (voters + observers) as usize;
        let p = free_ports(3 * n);
        let dir = std::env::temp_dir().join(format!(
            "zkelect-it-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test dir");
        let ports = (1..=voters + observers).map(|i| {
            let k = 3 * (i - 1) as usize;
            (i, (p[k], p[k + 1], p[k + 2]))
        });
        let c = Cluster {
            dir,
            ports: ports.collect(),
            observers: (voters + 1..=voters + observers).collect(),
            java: BTreeSet::new(),
            multi_address: false,
            rust_log: std::env::var("ZKELECT_TEST_LOG").unwrap_or_else(|_| "info".into()),
            net: None,
            children: BTreeMap::new(),
            helpers: Vec::new(),
            extra: extra.to_string(),
        };
        c.write_configs();
        c
    }

    /// A mixed ensemble: `java` lists the sids run by Apache ZooKeeper.
    pub fn mixed(voters: i64, java: &[i64], multi_address: bool, extra: &str) -> Cluster {
        let mut c = Cluster::new(voters, 0, extra);
        c.java = java.iter().copied().collect();
        c.multi_address = multi_address;
        c.write_configs();
        c
    }

    /// `n` voters, each in a network namespace of its own (needs root; see `netns`).
    pub fn in_namespaces(n: i64, extra: &str) -> Cluster {
        let mut c = Cluster::new(n, 0, extra);
        let sids: Vec<i64> = (1..=n).collect();
        c.net = Some(super::netns::Net::new(&sids));
        for sid in &sids {
            c.ports.insert(*sid, (2888, 3888, 2181));
        }
        c.write_configs();
        c
    }

    /// Keeps a helper process to be killed with the cluster.
    pub fn adopt(&mut self, child: Child) {
        self.helpers.push(child);
    }

    /// Points `node`'s `server.<target>` line at another address (e.g. a relay).
    pub fn reroute(&self, node: i64, target: i64, host: &str, quorum_port: u16, election_port: u16) {
        let path = self.node_dir(node).join("zoo.cfg");
        let text = std::fs::read_to_string(&path).expect("zoo.cfg");
        let prefix = format!("server.{target}=");
        let out: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with(&prefix) {
                    format!("{prefix}{host}:{quorum_port}:{election_port}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(&path, out.join("\n") + "\n").expect("zoo.cfg");
    }

    pub fn net(&self) -> &super::netns::Net {
        self.net.as_ref().expect("cluster in namespaces")
    }

    pub fn host(&self, sid: i64) -> String {
        self.net.as_ref().map_or_else(|| "127.0.0.1".to_string(), |n| n.ips[&sid].clone())
    }

    fn write_configs(&self) {
        for sid in self.ports.keys() {
            self.write_config(*sid);
        }
    }

    pub fn is_java(&self, sid: i64) -> bool {
        self.java.contains(&sid)
    }

    pub fn node_dir(&self, sid: i64) -> PathBuf {
        self.dir.join(format!("n{sid}"))
    }

    pub fn log_path(&self, sid: i64) -> PathBuf {
        self.node_dir(sid).join("zkelect.log")
    }

    fn write_config(&self, sid: i64) {
        let d = self.node_dir(sid);
        std::fs::create_dir_all(&d).expect("node dir");
        std::fs::write(d.join("myid"), format!("{sid}\n")).expect("myid");
        let mut cfg = format!(
            "tickTime=100\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\nclientPortAddress={}\n\
             4lw.commands.whitelist=*\nfastleader.maxNotificationInterval=1600\ncnxTimeout=1000\n\
             admin.enableServer=false\n",
            d.display(),
            self.ports[&sid].2,
            self.host(sid)
        );
        for (s, (q, e, _)) in &self.ports {
            let role = if self.observers.contains(s) { ":observer" } else { "" };
            if self.multi_address {
                cfg.push_str(&format!("server.{s}=127.0.0.1:{q}:{e}{role}|127.0.0.2:{q}:{e}{role}\n"));
            } else {
                cfg.push_str(&format!("server.{s}={}:{q}:{e}{role}\n", self.host(*s)));
            }
        }
        if self.multi_address {
            cfg.push_str("multiAddress.enabled=true\n");
        }
        cfg.push_str(&self.extra);
        std::fs::write(d.join("zoo.cfg"), cfg).expect("zoo.cfg");
        if self.is_java(sid) {
            let log4j = format!(
                "log4j.rootLogger=INFO, F\nlog4j.appender.F=org.apache.log4j.FileAppender\n\
                 log4j.appender.F.File={}\nlog4j.appender.F.layout=org.apache.log4j.PatternLayout\n\
                 log4j.appender.F.layout.ConversionPattern=%d{{yyyy-MM-dd HH:mm:ss,SSS}} - %-5p [%t:%C{{1}}@%L] - %m%n\n",
                self.log_path(sid).display()
            );
            std::fs::write(d.join("log4j.properties"), log4j).expect("log4j.properties");
        }
    }

    /// Starts (or restarts) a node; its stderr is appended to its log file.
    pub fn start(&mut self, sid: i64) {
        if self.is_java(sid) {
            let d = self.node_dir(sid);
            let out = std::fs::File::create(d.join("jvm.out")).expect("jvm.out");
            let child = Command::new("java")
                .args(["-Xmx96m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp"])
                .arg(format!("{ZK_JAR}:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"))
                .arg(format!("-Dlog4j.configuration=file:{}", d.join("log4j.properties").display()))
                .arg("-Djava.net.preferIPv4Stack=true")
                // ZooKeeper 3.8 reads this one as a system property before it parses zoo.cfg.
                .arg(format!("-Dzookeeper.multiAddress.enabled={}", self.multi_address))
                .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                .arg(d.join("zoo.cfg"))
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("clone"))
                .stderr(out)
                .spawn()
                .expect("spawn java");
            self.children.insert(sid, child);
            return;
        }
        let mut log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path(sid)).expect("log file");
        let _ = writeln!(log, "{RESTART_MARK}");
        let bin = env!("CARGO_BIN_EXE_zkelect");
        let mut cmd = match &self.net {
            Some(n) => n.command(sid, bin),
            None => Command::new(bin),
        };
        let child = cmd
            .arg("start")
            .arg(self.node_dir(sid).join("zoo.cfg"))
            .env("RUST_LOG", &self.rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn zkelect");
        self.children.insert(sid, child);
    }

    pub fn start_all(&mut self) {
        let sids: Vec<i64> = self.ports.keys().copied().collect();
        for s in sids {
            self.start(s);
        }
    }

    pub fn pid(&self, sid: i64) -> Option<u32> {
        self.children.get(&sid).map(Child::id)
    }

    /// kill -9 and reap.
    pub fn kill(&mut self, sid: i64) {
        if let Some(mut c) = self.children.remove(&sid) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn signal(&self, sid: i64, sig: &str) {
        if let Some(pid) = self.pid(sid) {
            let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
        }
    }

    pub fn log(&self, sid: i64) -> String {
        std::fs::read_to_string(self.log_path(sid)).unwrap_or_default()
    }

    /// Every election result in a node's log since `from` bytes, as (state, leader), for zkelect
    /// ("Decided: …") and for ZooKeeper ("LEADING/FOLLOWING - LEADER ELECTION TOOK", the leader of a
    /// follower read from its `LeaderConnector-/host:quorumPort` thread).
    pub fn decisions(&self, sid: i64, from: usize) -> Vec<(String, i64)> {
        let log = self.log(sid);
        let tail = log.get(from..).unwrap_or("");
        let mut out = Vec::new();
        let mut pending_follow = false;
        for line in tail.lines() {
            if let Some(i) = line.find("Decided: ") {
                let mut it = line[i + 9..].split_whitespace();
                if let (Some(state), _, Some(l)) = (it.next(), it.next(), it.next().and_then(|x| x.parse().ok())) {
                    out.push((state.to_string(), l));
                }
            } else if line.contains("LEADING - LEADER ELECTION TOOK") && self.is_java(sid) {
                out.push(("LEADING".into(), sid));
                pending_follow = false;
            } else if (line.contains("FOLLOWING - LEADER ELECTION TOOK")
                || line.contains("OBSERVING - LEADER ELECTION TOOK"))
                && self.is_java(sid)
            {
                pending_follow = true;
            } else if pending_follow && let Some(i) = line.find("[LeaderConnector-/") {
                let addr = &line[i + 18..];
                let port: Option<u16> = addr.split([':', ']']).nth(1).and_then(|p| p.parse().ok());
                if let Some(leader) = port.and_then(|p| self.ports.iter().find(|(_, v)| v.0 == p).map(|(s, _)| *s)) {
                    out.push(("FOLLOWING".into(), leader));
                    pending_follow = false;
                }
            }
        }
        out
    }

    /// The last decision in a node's log since `from` bytes: (state, leader).
    pub fn last_decision(&self, sid: i64, from: usize) -> Option<(String, i64)> {
        let log = self.log(sid);
        let tail = log.get(from..).unwrap_or("");
        let line = tail.lines().rev().find(|l| l.contains("Decided: "))?;
        let rest = &line[line.find("Decided: ")? + 9..];
        let mut it = rest.split_whitespace();
        let state = it.next()?.to_string();
        it.next();
        let leader = it.next()?.parse().ok()?;
        Some((state, leader))
    }

    /// Whether the last state change in the log (since `from`) is `state` (e.g. "looking").
    pub fn current_state(&self, sid: i64) -> Option<String> {
        let log = self.log(sid);
        let line = log.lines().rev().find(|l| l.contains("Peer state changed: "))?;
        Some(line[line.find("Peer state changed: ")? + 20..].trim().to_string())
    }

    /// Waits until every listed node has decided (since the given log offsets) and returns the decisions.
    pub fn wait_decided(
        &self,
        sids: &[i64],
        offsets: &BTreeMap<i64, usize>,
        timeout: Duration,
    ) -> BTreeMap<i64, (String, i64)> {
        wait_for(timeout, &format!("nodes {sids:?} to decide"), || {
            let mut out = BTreeMap::new();
            for s in sids {
                out.insert(*s, self.last_decision(*s, offsets.get(s).copied().unwrap_or(0))?);
            }
            Some(out)
        })
    }

    pub fn log_len(&self, sid: i64) -> usize {
        self.log(sid).len()
    }

    pub fn offsets(&self) -> BTreeMap<i64, usize> {
        self.ports.keys().map(|s| (*s, self.log_len(*s))).collect()
    }
}

#[allow(unused_imports)] // used by some test binaries only
pub use super::logs::parse_timestamp_ms as line_time_ms;

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A node's session verdict from its log: (state, leader, epoch) of its last "- broadcast" line,
/// unless a later line says it went LOOKING.
pub fn broadcast_of(log: &str) -> Option<(String, i64, i64)> {
    // A (re)start written by the harness counts as LOOKING until the new process says otherwise.
    let last_looking = log.rfind("Peer state changed: looking").max(log.rfind(RESTART_MARK));
    let pos = log.rfind(" - broadcast (leader ")?;
    if last_looking.is_some_and(|l| l > pos) {
        return None;
    }
    let line_start = log[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line = &log[line_start..log[pos..].find('\n').map_or(log.len(), |i| pos + i)];
    let rest = &line[line.find("Peer state changed: ")? + 20..];
    let (state, tail) = rest.split_once(" - broadcast (leader ")?;
    let (leader, epoch) = tail.trim_end_matches(')').split_once(", epoch ")?;
    Some((state.to_string(), leader.parse().ok()?, epoch.parse().ok()?))
}

/// Every (epoch, leader) a log claims to lead in broadcast.
pub fn leaderships(log: &str) -> Vec<(i64, i64)> {
    log.lines()
        .filter_map(|l| {
            let rest = l.split_once("Peer state changed: leading - broadcast (leader ")?.1;
            let (leader, epoch) = rest.trim_end_matches(')').split_once(", epoch ")?;
            Some((epoch.parse().ok()?, leader.parse().ok()?))
        })
        .collect()
}

impl Cluster {
    pub fn broadcast(&self, sid: i64) -> Option<(String, i64, i64)> {
        broadcast_of(&self.log(sid))
    }

    /// Waits until every listed node is in broadcast with one leader and one epoch.
    pub fn wait_broadcast(&self, sids: &[i64], timeout: Duration) -> (i64, i64) {
        wait_for(timeout, &format!("nodes {sids:?} in broadcast with one leader"), || {
            let v: Vec<(String, i64, i64)> = sids.iter().map(|s| self.broadcast(*s)).collect::<Option<_>>()?;
            let (l, e) = (v[0].1, v[0].2);
            v.iter().all(|x| x.1 == l && x.2 == e).then_some((l, e))
        })
    }

    /// Waits until every listed node is in broadcast with one leader in an epoch above `epoch`.
    pub fn wait_new_epoch(&self, sids: &[i64], epoch: i64, timeout: Duration) -> (i64, i64) {
        wait_for(timeout, &format!("nodes {sids:?} in broadcast above epoch {epoch}"), || {
            let v: Vec<(String, i64, i64)> = sids.iter().map(|s| self.broadcast(*s)).collect::<Option<_>>()?;
            let (l, e) = (v[0].1, v[0].2);
            (e > epoch && v.iter().all(|x| x.1 == l && x.2 == e)).then_some((l, e))
        })
    }

    /// (currentEpoch, acceptedEpoch) in the node's dataDir.
    pub fn epochs_on_disk(&self, sid: i64) -> (i64, i64) {
        let read = |n: &str| {
            std::fs::read_to_string(self.node_dir(sid).join("version-2").join(n))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(-1)
        };
        (read("currentEpoch"), read("acceptedEpoch"))
    }

    /// Fencing: no two nodes ever claimed broadcast leadership of the same epoch.
    pub fn check_fencing(&self) {
        let mut by_epoch: BTreeMap<i64, i64> = BTreeMap::new();
        for sid in self.ports.keys() {
            for (epoch, leader) in leaderships(&self.log(*sid)) {
                if let Some(other) = by_epoch.insert(epoch, leader) {
                    assert_eq!(other, leader, "two leaders in broadcast for epoch {epoch}: {other} and {leader}");
                }
            }
        }
    }

    pub fn thread_count(&self, sid: i64) -> usize {
        self.pid(sid).and_then(|p| std::fs::read_dir(format!("/proc/{p}/task")).ok()).map(|d| d.count()).unwrap_or(0)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let sids: Vec<i64> = self.children.keys().copied().collect();
        for s in sids {
            // A stopped process must be continued to die promptly and be reaped.
            self.signal(s, "CONT");
            self.kill(s);
        }
        for mut h in self.helpers.drain(..) {
            let _ = h.kill();
            let _ = h.wait();
        }
        if !std::thread::panicking() {
            // Checked after every child is gone, so a failure here leaks no process.
            self.check_fencing();
        }
        if std::thread::panicking() || std::env::var_os("ZKELECT_KEEP_TEST_DIRS").is_some() {
            eprintln!("test cluster kept for inspection: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
