//! Helpers shared by the integration tests: ports, configs, a per-test log recorder, bounded
//! waits, test tiers.
// Each test binary compiles all of `common` and uses a different part of it; the
// rest would be dead code in that binary.
#![allow(dead_code)]

#[path = "../../src/cli/certs.rs"]
pub mod certs;
pub mod cluster;
pub mod daemon;
pub mod fencing;
pub mod http;
#[path = "../../src/cli/localports.rs"]
pub mod localports;
#[path = "../../src/cli/logs.rs"]
pub mod logs;
pub mod netns;
pub mod scripted_peer;
pub mod tier;
pub mod tls;
#[path = "../../src/cli/zoocfg.rs"]
pub mod zoocfg;
#[path = "../../src/cli/zookeeper.rs"]
pub mod zookeeper;

use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use zkelect::config::QuorumPeerConfig;
use zoocfg::ZooCfg;

/// `n` free ports on 127.0.0.1, outside the kernel's ephemeral range (see `localports`).
pub fn free_ports(n: usize) -> Vec<u16> {
    localports::free_ports(n).expect("free ports")
}

/// The zoo.cfg of in-process transports: servers `(sid, quorum port, election port)` on
/// 127.0.0.1, tickTime 200, and a dataDir nothing is written to.
pub fn transport_cfg(servers: &[(i64, u16, u16)]) -> ZooCfg {
    servers.iter().fold(ZooCfg::new(200).data_dir(Path::new("/nonexistent")), |cfg, (sid, q, e)| {
        cfg.server(*sid, "127.0.0.1", *q, *e)
    })
}

/// `cfg` parsed as server `my_id`'s configuration.
pub fn config_for(cfg: &ZooCfg, my_id: i64) -> QuorumPeerConfig {
    let mut c = QuorumPeerConfig::parse(&cfg.text(), "test.cfg").expect("test config parses");
    c.set_my_id(&my_id.to_string(), "myid").expect("myid in config");
    c
}

/// Polls `f` every 10 ms until it returns `Some`, or panics after `timeout` with `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    match try_wait_for(timeout, f) {
        Some(v) => v,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// [`wait_for`] that gives `None` at the timeout (for cleaning up before failing).
pub fn try_wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Keeps zkelect's log lines by log scope (see `zkelect::runtime::log_scope`): tests of one
/// binary run in parallel, and each reads only the lines of the threads it started.
struct Recorder;

/// Log scope -> its lines, in order.
static LINES: OnceLock<Mutex<HashMap<u64, Vec<String>>>> = OnceLock::new();

fn lines() -> &'static Mutex<HashMap<u64, Vec<String>>> {
    LINES.get_or_init(|| Mutex::new(HashMap::new()))
}

impl log::Log for Recorder {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Debug && m.target().starts_with("zkelect")
    }
    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let scope = zkelect::runtime::log_scope();
        let t = std::thread::current();
        let line = format!("{} [{}] {}", r.level(), t.name().unwrap_or("?"), r.args());
        if std::env::var_os("TEST_LOG").is_some() {
            eprintln!("[scope {scope}] {line}");
        }
        // Scope 0 holds threads that no test put in a scope of its own: nobody reads them.
        if scope != 0 {
            lines().lock().entry(scope).or_default().push(line);
        }
    }
    fn flush(&self) {}
}

static RECORDER: Recorder = Recorder;

/// The zkelect log lines of one test: those of threads in the log scope it entered with
/// [`record_logs`], that is the threads it started afterwards, and theirs.
pub struct TestLogs {
    scope: u64,
}

/// A position in a test's log: lines logged after it are "since" the mark.
#[derive(Clone, Copy, Debug)]
pub struct LogMark(usize);

impl LogMark {
    /// Before the test's first line.
    pub const START: LogMark = LogMark(0);
}

/// Puts the calling test in a log scope of its own and records the zkelect log lines of every
/// thread it starts from now on (print them all with `TEST_LOG=1`). Call it before starting
/// anything whose log the test reads.
pub fn record_logs() -> TestLogs {
    if log::set_logger(&RECORDER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    TestLogs { scope: zkelect::runtime::enter_new_log_scope() }
}

impl TestLogs {
    /// The end of the log so far.
    pub fn mark(&self) -> LogMark {
        LogMark(lines().lock().get(&self.scope).map_or(0, Vec::len))
    }

    /// How many lines since `mark` contain `substr`.
    pub fn count_since(&self, mark: LogMark, substr: &str) -> usize {
        let all = lines().lock();
        all.get(&self.scope).map_or(0, |l| l.iter().skip(mark.0).filter(|x| x.contains(substr)).count())
    }

    /// Every line so far, one per line (for a failing test's message).
    pub fn text(&self) -> String {
        lines().lock().get(&self.scope).map(|l| l.join("\n")).unwrap_or_default()
    }

    pub fn logged(&self, substr: &str) -> bool {
        self.count_since(LogMark::START, substr) > 0
    }

    /// Waits up to 5 s for a line containing `substr`, logged at any time by this test's threads.
    pub fn wait_logged(&self, substr: &str) {
        self.wait_logged_since(LogMark::START, substr);
    }

    /// Waits up to 5 s for a line containing `substr` logged after `mark`.
    pub fn wait_logged_since(&self, mark: LogMark, substr: &str) {
        wait_for(Duration::from_secs(5), &format!("log line containing {substr:?} after line {}", mark.0), || {
            (self.count_since(mark, substr) > 0).then_some(())
        });
    }
}

/// Threads and open file descriptors of this process, from /proc/self.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// The threads of this process at one moment, by id, to find the ones started since and still
/// alive. Unlike a count, a thread of the test harness that ends meanwhile cannot hide a leak.
pub struct Threads(std::collections::BTreeSet<u64>);

impl Threads {
    pub fn now() -> Self {
        Threads(Self::ids().into_iter().collect())
    }

    fn ids() -> Vec<u64> {
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
    }

    /// Names of the threads alive now that were not at the snapshot (empty when none).
    pub fn started_since(&self) -> Vec<String> {
        Self::ids()
            .into_iter()
            .filter(|id| !self.0.contains(id))
            .map(|id| {
                let comm = std::fs::read_to_string(format!("/proc/self/task/{id}/comm")).unwrap_or_default();
                format!("{} ({id})", comm.trim())
            })
            .collect()
    }
}

pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// Waits until idle dial threads of the election transport have exited (they keep alive for
/// `POOL_KEEP_ALIVE`), before counting a settled node's threads.
pub fn wait_out_pool_keep_alive() {
    std::thread::sleep(zkelect::cnx::POOL_KEEP_ALIVE + Duration::from_secs(1));
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

/// Sends a four-letter word to 127.0.0.1:`port` and returns the whole answer.
pub fn ask(port: u16, word: &[u8]) -> String {
    ask_at("127.0.0.1", port, word)
}

/// Sends a four-letter word to `host`:`port` and returns the whole answer.
pub fn ask_at(host: &str, port: u16, word: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((host, port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(word).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A process as found at one moment: its PID and its start time (so that a PID reused since is
/// never mistaken for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    started: u64,
}

impl Proc {
    pub fn of(pid: u32) -> Option<Proc> {
        start_time(pid).map(|started| Proc { pid, started })
    }

    /// Still the same process, and not a zombie.
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.started)
            && !std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
                .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
    }

    /// kill -9, if it is still this process.
    pub fn kill(&self) {
        if self.alive() {
            let _ = std::process::Command::new("kill").arg("-9").arg(self.pid.to_string()).status();
        }
    }
}

/// Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.split_whitespace().nth(19)?.parse().ok()
}

/// Every process below `pid` (children first, then theirs), from /proc.
pub fn processes_below(pid: u32) -> Vec<Proc> {
    descendants(pid).into_iter().filter_map(Proc::of).collect()
}

/// Every process below `pid` (children first, then theirs), from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else { continue };
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}
