//! Real `zkelect start` processes on 127.0.0.1 with ports the test allocates. Every child is
//! killed by PID when the cluster is dropped, also when the test fails; the cluster's directory
//! is removed then, unless the test failed (or ZKELECT_KEEP_TEST_DIRS is set).

use super::logs::{Milestone, is_looking_line, parse_milestone, parse_state};
use super::zoocfg::{Role, Server, ServerAddr, ZooCfg};
use super::{free_ports, wait_for, zookeeper};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

pub struct Cluster {
    pub dir: PathBuf,
    /// Owns `dir`: removed with the cluster, or kept for inspection (see `Drop`).
    tmp: Option<TempDir>,
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
    /// Node N on 127.0.1.N instead of 127.0.0.1 (see [`Cluster::host`]).
    pub own_addresses: bool,
    /// The CA and key stores of quorum TLS (see [`Cluster::enable_tls`]).
    pub pki: Option<super::tls::Pki>,
    children: BTreeMap<i64, Child>,
    /// Helper processes (relays…), killed with the nodes.
    helpers: Vec<Child>,
    /// zoo.cfg lines of every node, then of single nodes.
    extra: String,
    node_extra: BTreeMap<i64, String>,
    /// (node, server) -> the address the node uses for that server instead of its own.
    routes: BTreeMap<(i64, i64), ServerAddr>,
    /// Set: the zkelect nodes run `zkelect run <zoo.cfg> -- <command…>` instead of `start`.
    run: Option<Vec<String>>,
    /// Options of `zkelect run` before its `--` (see [`Cluster::running_with`]).
    run_options: Vec<String>,
    /// Processes that were below a killed node (guards, commands, hooks): they should go by
    /// themselves; whatever is left of them is killed with the cluster.
    orphans: Vec<super::Proc>,
}

/// Written into a node's log by the harness right before it (re)starts the process.
pub const RESTART_MARK: &str = "### test harness: starting the node";

/// JVM options of the ZooKeeper nodes: small, quick to start (several JVMs share 2 cores).
const JVM_OPTIONS: [&str; 3] = ["-Xmx96m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"];

impl Cluster {
    /// `voters` participants with sids 1..=voters, then `observers` observers.
    pub fn new(voters: i64, observers: i64, extra: &str) -> Cluster {
        let n = (voters + observers) as usize;
        let p = free_ports(3 * n);
        let tmp = tempfile::Builder::new().prefix("zkelect-it-").tempdir().expect("test dir");
        let ports = (1..=voters + observers).map(|i| {
            let k = 3 * (i - 1) as usize;
            (i, (p[k], p[k + 1], p[k + 2]))
        });
        let c = Cluster {
            dir: tmp.path().to_path_buf(),
            tmp: Some(tmp),
            ports: ports.collect(),
            observers: (voters + 1..=voters + observers).collect(),
            java: BTreeSet::new(),
            multi_address: false,
            rust_log: std::env::var("ZKELECT_TEST_LOG").unwrap_or_else(|_| "info".into()),
            net: None,
            own_addresses: false,
            pki: None,
            children: BTreeMap::new(),
            helpers: Vec::new(),
            extra: extra.to_string(),
            node_extra: BTreeMap::new(),
            routes: BTreeMap::new(),
            run: None,
            run_options: Vec::new(),
            orphans: Vec::new(),
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

    /// Runs `sids` (voters or observers) with Debian's ZooKeeper instead of zkelect.
    pub fn with_zookeeper(mut self, sids: &[i64]) -> Cluster {
        self.java.extend(sids.iter().copied());
        self.write_configs();
        self
    }

    /// `voters` participants and `observers` observers, node N on its own loopback address
    /// 127.0.1.N. Every loopback dial has the source address 127.0.0.1, which no node is
    /// configured at, so a certificate (naming its node's address and 127.0.0.1) matches the
    /// configured host of its own node only: the binding of server ids to certificates is
    /// really exercised.
    pub fn on_own_addresses(voters: i64, observers: i64, extra: &str) -> Cluster {
        let mut c = Cluster::new(voters, observers, extra);
        c.own_addresses = true;
        c.write_configs();
        c
    }

    /// A mixed ensemble (see [`Cluster::mixed`]) with node N on 127.0.1.N.
    pub fn mixed_on_own_addresses(voters: i64, java: &[i64], extra: &str) -> Cluster {
        let mut c = Cluster::mixed(voters, java, false, extra);
        c.own_addresses = true;
        c.write_configs();
        c
    }

    /// Makes a CA and a key store for every node (naming the node's address, 127.0.0.1 and
    /// localhost) in `dir/tls`, and adds the store keys and `mode` (e.g. `tls::TLS_ONLY`) to every
    /// node's zoo.cfg.
    pub fn enable_tls(&mut self, mode: &str) {
        let pki = super::tls::Pki::new(&self.dir.join("tls"), "zkelect test CA");
        let sids: Vec<i64> = self.ports.keys().copied().collect();
        for sid in sids {
            let ip = self.host(sid).parse().expect("node address");
            let lines = super::tls::store_lines(&pki.node_store(sid, ip), &pki.trust_store);
            self.append_config(&[sid], &format!("{lines}{mode}"));
        }
        self.pki = Some(pki);
    }

    pub fn pki(&self) -> &super::tls::Pki {
        self.pki.as_ref().expect("TLS enabled")
    }

    /// Node `sid`'s election address as a socket address.
    pub fn election_addr(&self, sid: i64) -> std::net::SocketAddr {
        format!("{}:{}", self.host(sid), self.ports[&sid].1).parse().expect("election address")
    }

    /// Node `sid`'s quorum address as a socket address.
    pub fn quorum_addr(&self, sid: i64) -> std::net::SocketAddr {
        format!("{}:{}", self.host(sid), self.ports[&sid].0).parse().expect("quorum address")
    }

    /// Sends a four-letter word to node `sid`'s client port and returns the whole answer.
    pub fn ask(&self, sid: i64, word: &str) -> String {
        super::ask_at(&self.host(sid), self.ports[&sid].2, word.as_bytes())
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

    /// Runs the zkelect nodes as `zkelect run <zoo.cfg> -- <command…>`.
    pub fn running(mut self, command: Vec<String>) -> Cluster {
        self.run = Some(command);
        self
    }

    /// [`running`](Self::running) with options of `zkelect run` (e.g. `--exit-on-loss`).
    pub fn running_with(mut self, options: &[&str], command: Vec<String>) -> Cluster {
        self.run_options = options.iter().map(|o| o.to_string()).collect();
        self.running(command)
    }

    /// Keeps a helper process to be killed with the cluster.
    pub fn adopt(&mut self, child: Child) {
        self.helpers.push(child);
    }

    /// Points `node`'s `server.<target>` line at another address (e.g. a relay).
    pub fn reroute(&mut self, node: i64, target: i64, host: &str, quorum_port: u16, election_port: u16) {
        self.routes.insert((node, target), ServerAddr::new(host, quorum_port, election_port));
        self.write_config(node);
    }

    /// Adds `lines` to the zoo.cfg of each of `sids` (read when a node next starts).
    pub fn append_config(&mut self, sids: &[i64], lines: &str) {
        for sid in sids {
            self.node_extra.entry(*sid).or_default().push_str(lines);
            self.write_config(*sid);
        }
    }

    pub fn net(&self) -> &super::netns::Net {
        self.net.as_ref().expect("cluster in namespaces")
    }

    /// Where node `sid` runs: its namespace's address, 127.0.1.`sid` on own addresses, else 127.0.0.1.
    pub fn host(&self, sid: i64) -> String {
        match &self.net {
            Some(n) => n.ips[&sid].clone(),
            None if self.own_addresses => format!("127.0.1.{sid}"),
            None => "127.0.0.1".to_string(),
        }
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

    /// Node `sid`'s zoo.cfg and myid (and log4j.properties for a ZooKeeper node).
    fn write_config(&self, sid: i64) {
        let d = self.node_dir(sid);
        let mut cfg = ZooCfg::new(100).data_dir(&d).client(&self.host(sid), self.ports[&sid].2).extra(
            "4lw.commands.whitelist=*\nfastleader.maxNotificationInterval=1600\ncnxTimeout=1000\n\
             admin.enableServer=false\n",
        );
        for (s, (q, e, _)) in &self.ports {
            let role = if self.observers.contains(s) { Role::Observer } else { Role::Participant };
            let addrs = if let Some(route) = self.routes.get(&(sid, *s)) {
                vec![route.clone()]
            } else if self.multi_address {
                vec![ServerAddr::new("127.0.0.1", *q, *e), ServerAddr::new("127.0.0.2", *q, *e)]
            } else {
                vec![ServerAddr::new(&self.host(*s), *q, *e)]
            };
            cfg = cfg.add_server(Server { sid: *s, addrs, role });
        }
        if self.multi_address {
            cfg = cfg.extra("multiAddress.enabled=true\n");
        }
        let node_extra = self.node_extra.get(&sid).map_or("", String::as_str);
        cfg.extra(&self.extra).extra(node_extra).write(&d, sid).expect("zoo.cfg");
        if self.is_java(sid) {
            zookeeper::write_log4j(&d, &self.log_path(sid)).expect("log4j.properties");
        }
    }

    /// Starts (or restarts) a node; its stderr is appended to its log file.
    pub fn start(&mut self, sid: i64) {
        if self.is_java(sid) {
            let out = std::fs::File::create(self.node_dir(sid).join("jvm.out")).expect("jvm.out");
            let mut options: Vec<String> = JVM_OPTIONS.iter().map(|o| o.to_string()).collect();
            // ZooKeeper 3.8 reads this one as a system property before it parses zoo.cfg.
            options.push(format!("-Dzookeeper.multiAddress.enabled={}", self.multi_address));
            let child = zookeeper::server_command(&self.node_dir(sid), &options)
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
        match &self.run {
            Some(command) => {
                cmd.arg("run").arg(self.node_dir(sid).join("zoo.cfg")).args(&self.run_options).arg("--").args(command)
            }
            None => cmd.arg("start").arg(self.node_dir(sid).join("zoo.cfg")),
        };
        // A process group of its own, as a shell job has: a signal to the group (Ctrl-Z, kill -STOP
        // -<pgid>) reaches the node and whatever shares its group, never the test.
        let child = cmd
            .process_group(0)
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

    /// kill -9 and reap. What ran below it (a `zkelect run` node's guard and command, hooks) is
    /// left to stop by itself, as after a real crash; returns those processes.
    pub fn kill(&mut self, sid: i64) -> Vec<super::Proc> {
        let below = self.pid(sid).map(super::processes_below).unwrap_or_default();
        if let Some(mut c) = self.children.remove(&sid) {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.orphans.extend(&below);
        below
    }

    /// kill -9 of a node and of every process below it, by PID.
    pub fn kill_tree(&mut self, sid: i64) {
        for p in self.kill(sid) {
            p.kill();
        }
    }

    /// Waits up to `timeout` for node `sid` to exit by itself; its exit code if it did (the
    /// process is reaped then), `None` if it still runs.
    pub fn wait_exit(&mut self, sid: i64, timeout: Duration) -> Option<i32> {
        let end = std::time::Instant::now() + timeout;
        loop {
            let c = self.children.get_mut(&sid)?;
            if let Ok(Some(status)) = c.try_wait() {
                self.children.remove(&sid);
                return Some(status.code().unwrap_or(-1));
            }
            if std::time::Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sid: i64, sig: &str) {
        if let Some(pid) = self.pid(sid) {
            let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
        }
    }

    /// `kill -<sig> -- -<pgid>`: the node's whole process group, as Ctrl-Z stops a shell job.
    pub fn signal_group(&self, sid: i64, sig: &str) {
        if let Some(pid) = self.pid(sid) {
            let _ = Command::new("kill").arg(format!("-{sig}")).arg("--").arg(format!("-{pid}")).status();
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
            if let Some(d) = parse_decision(line) {
                out.push(d);
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

    /// The last zkelect decision in a node's log since `from` bytes: (state, leader).
    pub fn last_decision(&self, sid: i64, from: usize) -> Option<(String, i64)> {
        let log = self.log(sid);
        log.get(from..).unwrap_or("").lines().rev().find_map(parse_decision)
    }

    /// The state named by the last "Peer state changed" line of the log (`looking`, …).
    pub fn current_state(&self, sid: i64) -> Option<String> {
        self.log(sid).lines().rev().find_map(parse_state).map(str::to_string)
    }

    /// How many times the node's log says it went LOOKING since `from` bytes.
    pub fn times_looking(&self, sid: i64, from: usize) -> usize {
        self.log(sid).get(from..).unwrap_or("").lines().filter(|l| parse_state(l) == Some("looking")).count()
    }

    /// Every milestone line of the node's log since `from` bytes.
    pub fn milestones(&self, sid: i64, from: usize) -> Vec<Milestone> {
        self.log(sid).get(from..).unwrap_or("").lines().filter_map(parse_milestone).collect()
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

/// zkelect's decision line, `Decided: FOLLOWING leader 3 (round …)`, as (state, leader).
fn parse_decision(line: &str) -> Option<(String, i64)> {
    let rest = &line[line.find("Decided: ")? + "Decided: ".len()..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.to_string();
    it.next().filter(|w| *w == "leader")?;
    Some((state, it.next()?.parse().ok()?))
}

/// A node's session verdict from its log: (state, leader, epoch) of its last "- broadcast"
/// milestone, unless a later line says it went LOOKING or the harness restarted it.
pub fn broadcast_of(log: &str) -> Option<(String, i64, i64)> {
    let mut verdict = None;
    for line in log.lines() {
        if let Some(m) = parse_milestone(line).filter(|m| m.phase == "broadcast") {
            if let (Some(leader), Some(epoch)) = (m.leader, m.epoch) {
                verdict = Some((m.state, leader, epoch));
            }
        } else if is_looking_line(line) || line.contains(RESTART_MARK) {
            // A (re)start counts as LOOKING until the new process says otherwise.
            verdict = None;
        }
    }
    verdict
}

/// Every (epoch, leader) a log claims to lead in broadcast.
pub fn leaderships(log: &str) -> Vec<(i64, i64)> {
    log.lines()
        .filter_map(parse_milestone)
        .filter(|m| m.state == "leading" && m.phase == "broadcast")
        .filter_map(|m| Some((m.epoch?, m.leader?)))
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
        if let Some(violation) = self.fencing_violation() {
            panic!("{violation}");
        }
    }

    fn fencing_violation(&self) -> Option<String> {
        let mut by_epoch: BTreeMap<i64, i64> = BTreeMap::new();
        for sid in self.ports.keys() {
            for (epoch, leader) in leaderships(&self.log(*sid)) {
                if let Some(other) = by_epoch.insert(epoch, leader)
                    && other != leader
                {
                    return Some(format!("two leaders in broadcast for epoch {epoch}: {other} and {leader}"));
                }
            }
        }
        None
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
            self.kill_tree(s);
        }
        for p in std::mem::take(&mut self.orphans) {
            p.kill();
        }
        for mut h in self.helpers.drain(..) {
            let _ = h.kill();
            let _ = h.wait();
        }
        // Checked after every child is gone, so a failure here leaks no process.
        let failed = std::thread::panicking();
        let violation = if failed { None } else { self.fencing_violation() };
        let keep = failed || violation.is_some() || std::env::var_os("ZKELECT_KEEP_TEST_DIRS").is_some();
        if keep && let Some(tmp) = self.tmp.take() {
            eprintln!("test cluster kept for inspection: {}", tmp.keep().display());
        }
        if let Some(v) = violation {
            panic!("{v}");
        }
    }
}
