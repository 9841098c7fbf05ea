//! Test hosts in network namespaces that the test creates itself: one namespace per node, joined by
//! veth pairs to a bridge in a switch namespace, addresses in 10.213.x.0/24. Faults are iptables
//! rules inside the node namespaces only. Everything is deleted on drop, also when the test fails.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static SEQ: AtomicU32 = AtomicU32::new(0);

pub struct Net {
    pub tag: String,
    pub ips: BTreeMap<i64, String>,
    namespaces: Vec<String>,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out =
        Command::new(args[0]).args(&args[1..]).stdin(Stdio::null()).output().map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Net {
    /// Needs root and iproute2's `ip` (the test checks `tier::Tier::Root` first).
    pub fn new(sids: &[i64]) -> Net {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("zk{}x{seq}", pid % 100_000);
        let subnet = 1 + (pid + seq * 7) % 250;
        let mut net = Net { tag: tag.clone(), ips: BTreeMap::new(), namespaces: Vec::new() };
        let sw = format!("{tag}-sw");
        net.add_ns(&sw);
        net.must(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"]);
        net.must(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        for sid in sids {
            let ns = net.ns(*sid);
            net.add_ns(&ns);
            let (a, b) = (format!("{tag}a{sid}"), format!("{tag}b{sid}"));
            net.must(&["ip", "link", "add", &a, "netns", &ns, "type", "veth", "peer", "name", &b, "netns", &sw]);
            net.must(&["ip", "-n", &sw, "link", "set", &b, "master", "br0", "up"]);
            let ip = format!("10.213.{subnet}.{sid}");
            net.must(&["ip", "-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", &a]);
            net.must(&["ip", "-n", &ns, "link", "set", &a, "up"]);
            net.ips.insert(*sid, ip);
        }
        net
    }

    fn add_ns(&mut self, ns: &str) {
        let _ = run(&["ip", "netns", "del", ns]);
        self.must(&["ip", "netns", "add", ns]);
        self.namespaces.push(ns.to_string());
        self.must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }

    fn must(&self, args: &[&str]) {
        if let Err(e) = run(args) {
            panic!("network setup failed: {e}");
        }
    }

    pub fn ns(&self, sid: i64) -> String {
        format!("{}-n{sid}", self.tag)
    }

    /// `ip netns exec <ns of sid>` + the command.
    pub fn command(&self, sid: i64, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(sid), program]);
        c
    }

    fn iptables(&self, sid: i64, rule: &[&str]) {
        let ns = self.ns(sid);
        let mut args = vec!["ip", "netns", "exec", ns.as_str(), "iptables", "-w"];
        args.extend_from_slice(rule);
        self.must(&args);
    }

    /// Cuts every link between different groups (both directions, all traffic).
    pub fn partition(&self, groups: &[&[i64]]) {
        for g in groups {
            for sid in g.iter() {
                for (other, ip) in &self.ips {
                    if !g.contains(other) {
                        self.iptables(*sid, &["-A", "INPUT", "-s", ip, "-j", "DROP"]);
                        self.iptables(*sid, &["-A", "OUTPUT", "-d", ip, "-j", "DROP"]);
                    }
                }
            }
        }
    }

    /// Drops a random share of the packets on the link between `a` and `b`.
    pub fn loss(&self, a: i64, b: i64, probability: f64) {
        let p = format!("{probability}");
        for (x, y) in [(a, b), (b, a)] {
            let ip = self.ips[&y].clone();
            self.iptables(
                x,
                &["-A", "INPUT", "-s", &ip, "-m", "statistic", "--mode", "random", "--probability", &p, "-j", "DROP"],
            );
        }
    }

    /// Drops everything that arrives at `sid` from the network: dials to it hang (no RST).
    pub fn black_hole(&self, sid: i64) {
        let dev = format!("{}a{sid}", self.tag);
        self.iptables(sid, &["-A", "INPUT", "-i", &dev, "-j", "DROP"]);
    }

    /// Removes every fault.
    pub fn heal(&self) {
        for sid in self.ips.keys() {
            self.iptables(*sid, &["-F"]);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}
