//! Test tiers. A test that needs root (network namespaces, iptables), Debian's Apache ZooKeeper
//! or a browser runs only when its tier is listed in `ZKELECT_TIERS` (comma-separated, e.g.
//! `root,interop,browser`; scripts/test enables them all, and installs what they need):
//! - tier off: the test prints one line saying why it is skipped and passes;
//! - tier on but a prerequisite missing: the test fails and names it.
//!
//! Tests never install anything themselves.

use super::zookeeper;
use std::io::Write;
use std::process::{Command, Stdio};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Network namespaces, veth pairs and iptables rules (the partition and fault tests), and
    /// python3 for their delay relay.
    Root,
    /// Mixed ensembles with Debian's Apache ZooKeeper 3.8 (package `zookeeper`), and `ss`.
    Interop,
    /// The status page in a real browser: headless Chromium (package `chromium`).
    Browser,
}

pub const VARIABLE: &str = "ZKELECT_TIERS";

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Root => "root",
            Tier::Interop => "interop",
            Tier::Browser => "browser",
        }
    }

    fn needs(self) -> &'static str {
        match self {
            Tier::Root => "root, network namespaces, iptables and python3",
            Tier::Interop => "Debian's zookeeper package (Java) and ss",
            Tier::Browser => "headless Chromium (Debian's chromium package)",
        }
    }

    /// The prerequisites that are missing, each with how to get it.
    fn missing(self) -> Vec<String> {
        let mut out = Vec::new();
        match self {
            Tier::Root => {
                if effective_uid() != Some(0) {
                    out.push("root (run the tests as root)".to_string());
                }
                for (program, args, package) in [
                    ("ip", &["netns", "list"][..], "iproute2"),
                    ("iptables", &["--version"][..], "iptables"),
                    ("python3", &["--version"][..], "python3"),
                ] {
                    if !runs(program, args) {
                        out.push(format!("`{program} {}` (package {package})", args.join(" ")));
                    }
                }
            }
            Tier::Interop => {
                for jar in zookeeper::missing_jars().into_iter().chain(missing(SLF4J_NOP)) {
                    out.push(format!("{jar} (package zookeeper)"));
                }
                if !runs("java", &["-version"]) {
                    out.push("`java -version` (package zookeeper)".to_string());
                }
                if !runs("ss", &["-V"]) {
                    out.push("`ss -V` (package iproute2)".to_string());
                }
            }
            Tier::Browser => {
                if !runs("chromium", &["--version"]) {
                    out.push("`chromium --version` (package chromium)".to_string());
                }
            }
        }
        out
    }
}

/// The logger ZooKeeper's command-line client runs with in the tests.
pub const SLF4J_NOP: &str = "/usr/share/java/slf4j-nop.jar";

fn missing(path: &'static str) -> Option<&'static str> {
    (!std::path::Path::new(path).exists()).then_some(path)
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `tier` is listed in ZKELECT_TIERS.
pub fn listed(tier: Tier) -> bool {
    std::env::var(VARIABLE).unwrap_or_default().split(',').any(|t| t.trim() == tier.name())
}

/// Whether the calling test runs: prints a skip line and returns false when its tier is off;
/// panics, naming what is missing, when the tier is on but a prerequisite is not there.
pub fn enabled(tier: Tier) -> bool {
    if !listed(tier) {
        // Straight to stderr in one write, past the test harness's capture, so that the skip
        // shows in every run.
        let line = format!(
            "skipped {}: needs {} (tier `{}`); enable it with {VARIABLE}={}\n",
            std::thread::current().name().unwrap_or("test"),
            tier.needs(),
            tier.name(),
            tier.name()
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
        return false;
    }
    let missing = tier.missing();
    assert!(
        missing.is_empty(),
        "{VARIABLE} enables tier `{name}`, which needs what is missing here: {}. Run scripts/test as root to \
         install the packages, or leave `{name}` out of {VARIABLE} to skip these tests.",
        missing.join(", "),
        name = tier.name()
    );
    true
}
