//! One `zkelect` process of a test, owned by a guard that kills it by PID when dropped (also
//! when the test fails), for tests that need what [`super::cluster::Cluster`] does not give: the
//! exit status, extra environment variables, another working directory, stdout.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;
use wait_timeout::ChildExt;
use zkelect::runtime::signals::{self, Signal};

pub const BIN: &str = env!("CARGO_BIN_EXE_zkelect");

pub struct Daemon {
    child: Option<Child>,
    /// Where stderr goes (None: piped to the test, see [`Daemon::spawn`]).
    pub log: Option<PathBuf>,
    /// stdout, line by line, as the process writes it.
    out: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Other processes to kill with this one, such as the nodes of `zkelect ensemble`.
    also: Vec<u32>,
    status: Option<ExitStatus>,
}

impl Daemon {
    /// `zkelect start <cfg>` in `cwd`, with stderr appended to `log` and `env` set.
    pub fn start(cfg: &Path, cwd: &Path, log: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.arg("start").arg(cfg).current_dir(cwd).env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(file).spawn().expect("spawn zkelect start");
        Daemon::new(child, log, Arc::default(), None)
    }

    /// `zkelect <args>` with stdout collected line by line (see [`Daemon::stdout`]) and stderr to `log`.
    pub fn spawn(args: &[&str], env: &[(&str, &str)], log: &Path) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let file = std::fs::File::create(log).expect("log file");
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(file).spawn().expect("spawn zkelect");
        let stdout = child.stdout.take().expect("stdout");
        let out = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&out);
        let reader = std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().push(l);
            }
        });
        Daemon::new(child, log, out, Some(reader))
    }

    fn new(
        child: Child,
        log: &Path,
        out: Arc<Mutex<Vec<String>>>,
        reader: Option<std::thread::JoinHandle<()>>,
    ) -> Daemon {
        Daemon { child: Some(child), log: Some(log.to_path_buf()), out, reader, also: Vec::new(), status: None }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn signal(&self, s: Signal) {
        if let Some(c) = &self.child {
            signals::send(c.id(), s).expect("send a signal");
        }
    }

    /// Also kills `pid` when dropped, if it still runs zkelect.
    pub fn adopt(&mut self, pid: u32) {
        self.also.push(pid);
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Some(c) = self.child.as_mut()
        {
            self.status = c.wait_timeout(timeout).expect("wait");
        }
        if self.status.is_some()
            && let Some(r) = self.reader.take()
        {
            let _ = r.join();
        }
        self.status
    }

    pub fn stdout(&self) -> Vec<String> {
        self.out.lock().clone()
    }

    pub fn stdout_text(&self) -> String {
        self.stdout().join("\n")
    }

    pub fn log_text(&self) -> String {
        self.log.as_ref().and_then(|l| std::fs::read_to_string(l).ok()).unwrap_or_default()
    }

    /// Waits up to `timeout` for a stdout line containing `text`; returns it.
    pub fn wait_stdout(&self, timeout: Duration, text: &str) -> String {
        super::wait_for(timeout, &format!("{text:?} on stdout; so far:\n{}", self.stdout_text()), || {
            self.stdout().into_iter().find(|l| l.contains(text))
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for pid in &self.also {
            if runs_zkelect(*pid) {
                let _ = signals::send(*pid, Signal::Kill);
            }
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// Whether `pid` is a live (not zombie) zkelect process.
pub fn runs_zkelect(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    !matches!(state, None | Some('Z') | Some('X')) && String::from_utf8_lossy(&cmdline).contains("zkelect")
}

/// The `n<sid>: pid <pid>, …` lines `zkelect ensemble` prints, as sid -> pid.
pub fn ensemble_pids(stdout: &[String]) -> BTreeMap<usize, u32> {
    stdout
        .iter()
        .filter_map(|l| {
            let (node, rest) = l.trim().strip_prefix('n')?.split_once(": pid ")?;
            Some((node.parse().ok()?, rest.split(',').next()?.parse().ok()?))
        })
        .collect()
}

/// Whether every port can be bound on 127.0.0.1 (no process holds it any more).
pub fn all_free(ports: &[u16]) -> bool {
    ports.iter().all(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
}
