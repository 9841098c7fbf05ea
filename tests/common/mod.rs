//! Helpers shared by the integration tests: port allocation, configs, a log recorder, bounded waits.
#![allow(dead_code)]

pub mod cluster;
pub mod fake;
#[path = "../../src/cli/localports.rs"]
pub mod localports;
#[path = "../../src/cli/logs.rs"]
pub mod logs;
pub mod netns;

use parking_lot::Mutex;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use zkelect::config::QuorumPeerConfig;

/// `n` free ports on 127.0.0.1, outside the kernel's ephemeral range (see `localports`).
pub fn free_ports(n: usize) -> Vec<u16> {
    localports::free_ports(n).expect("free ports")
}

/// zoo.cfg text for servers `(sid, quorum port, election port)` on 127.0.0.1.
pub fn cfg_text(servers: &[(i64, u16, u16)], extra: &str) -> String {
    let mut s = String::from("tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=/nonexistent\n");
    for (sid, q, e) in servers {
        s.push_str(&format!("server.{sid}=127.0.0.1:{q}:{e}\n"));
    }
    s.push_str(extra);
    s
}

pub fn config_for(text: &str, my_id: i64) -> QuorumPeerConfig {
    let mut c = QuorumPeerConfig::parse(text, "test.cfg").expect("test config parses");
    c.set_my_id(&my_id.to_string(), "myid").expect("myid in config");
    c
}

/// Polls `f` every 10 ms until it returns `Some`, or panics after `timeout` with `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > end {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Recorder;

static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

impl log::Log for Recorder {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Debug && m.target().starts_with("zkelect")
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let t = std::thread::current();
            let line = format!("{} [{}] {}", r.level(), t.name().unwrap_or("?"), r.args());
            if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("{line}");
            }
            LINES.get_or_init(|| Mutex::new(Vec::new())).lock().push(line);
        }
    }
    fn flush(&self) {}
}

static RECORDER: Recorder = Recorder;

/// Records every zkelect log line of this test process (print them with `TEST_LOG=1`).
pub fn record_logs() {
    if log::set_logger(&RECORDER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

pub fn logged(substr: &str) -> bool {
    LINES.get().is_some_and(|l| l.lock().iter().any(|x| x.contains(substr)))
}

pub fn wait_logged(substr: &str) {
    wait_for(Duration::from_secs(5), &format!("log line containing {substr:?}"), || logged(substr).then_some(()));
}

/// Threads and open file descriptors of this process, from /proc/self.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// Established TCP connections whose accepting side listens on `port` (from /proc/net/tcp{,6}).
pub fn established_to(port: u16) -> usize {
    let mut n = 0;
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 4 || cols[3] != "01" {
                continue;
            }
            let local_port = cols[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                n += 1;
            }
        }
    }
    n
}

/// SplitMix64: a small seeded generator for the randomised tests (replayable from the seed).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        (!v.is_empty()).then(|| v[self.below(v.len() as u64) as usize])
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Installs a Debian package when `present()` says it is missing (the tests run as root in CI).
/// One install at a time: tests of one binary run in parallel and dpkg takes a lock.
pub fn apt_install(package: &str, present: impl Fn() -> bool) {
    static APT: Mutex<()> = Mutex::new(());
    let _one_at_a_time = APT.lock();
    if present() {
        return;
    }
    let install = || {
        std::process::Command::new("apt-get").args(["install", "-y", "-q", package]).status().is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = std::process::Command::new("apt-get").args(["update", "-q"]).status();
        install();
    }
    assert!(present(), "the tests need Debian's {package} package: apt-get install -y {package}");
}

/// Sends a four-letter word to 127.0.0.1:`port` and returns the whole answer.
pub fn ask(port: u16, word: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(word).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
