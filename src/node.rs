//! One node: assembles the election transport, the messenger, the peer loop, the state-change
//! hook and the admin servers, and owns their lifecycle (`QuorumPeerMain` and
//! `QuorumPeer.start`/`shutdown`). The only module that knows all the others.

use crate::admin::notify::Notifier;
use crate::admin::{AdminError, AdminServer, LeadershipJournal, StateHook, admin_server, fourlw, metrics};
use crate::cnx::{CnxEvents, CnxSettings, QuorumCnxManager};
use crate::config::QuorumPeerConfig;
use crate::election::{ServerState, Vote};
use crate::lease::LeaseSettings;
use crate::messenger::{ElectionEvent, Messenger, ViewSource, VoteBoard};
use crate::net::{Security, TlsError};
use crate::peer::epochs::{EpochError, EpochFiles};
use crate::peer::{self, Announce, PeerContext};
use crate::peer::{Leases, ResignRefused};
use crate::runtime::{Shutdown, ThreadGroup, Watch};
use crate::snapshot::{NodeStatus, QuorumTlsState, Snapshot};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::Duration;

/// Exit code when the election port cannot be bound (ZooKeeper's `UNABLE_TO_BIND_QUORUM_PORT`).
pub const EXIT_UNABLE_TO_BIND: i32 = 14;
/// Exit code when the node cannot start for another reason (epoch files, an admin port taken).
pub const EXIT_CANNOT_START: i32 = 1;
/// Exit code for a configuration that cannot be used (zoo.cfg, myid, the TLS stores).
pub const EXIT_INVALID_CONFIG: i32 = 2;

/// A cheap handle on a running node's lease side: its status, its lease changes, the flag for
/// work guarded by the lease, and resigning.
#[derive(Clone)]
pub struct NodeHandle {
    status: Arc<Mutex<NodeStatus>>,
    leases: Arc<Leases>,
    lease_changes: Arc<Watch<()>>,
}

impl NodeHandle {
    pub fn status(&self) -> NodeStatus {
        self.status.lock().clone()
    }

    /// A channel nudged on every change of the lease (renewals included).
    pub fn lease_changes(&self) -> Receiver<()> {
        self.lease_changes.subscribe()
    }

    /// Whether work guarded by this node's lease runs: a resigning leader releases its lease only
    /// once this is false.
    pub fn set_guarded_work(&self, running: bool) {
        self.leases.guarded_work.set(running);
    }

    /// See [`Leases::resign`].
    pub fn resign(&self, to: Option<i64>) -> Result<String, ResignRefused> {
        self.leases.resign(&self.status(), to)
    }
}

/// Something that ends the node while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fatal {
    /// Every election listener gave up: the node cannot take part in elections any more.
    ElectionListenerFailed,
}

impl Fatal {
    pub fn exit_code(self) -> i32 {
        match self {
            Fatal::ElectionListenerFailed => EXIT_UNABLE_TO_BIND,
        }
    }
}

/// Why a node could not start.
#[derive(Debug)]
pub enum StartError {
    /// A quorum TLS key or trust store cannot be used.
    Tls(TlsError),
    Epochs(EpochError),
    ElectionPort(io::Error),
    Admin(AdminError),
    /// A thread could not be started.
    Thread {
        what: &'static str,
        source: io::Error,
    },
}

impl StartError {
    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::ElectionPort(_) => EXIT_UNABLE_TO_BIND,
            StartError::Tls(_) => EXIT_INVALID_CONFIG,
            _ => EXIT_CANNOT_START,
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Tls(e) => write!(f, "quorum TLS: {e}"),
            StartError::Epochs(e) => write!(f, "{e}"),
            StartError::ElectionPort(e) => write!(f, "{e}"),
            StartError::Admin(e) => write!(f, "{e}"),
            StartError::Thread { what, source } => write!(f, "cannot start the {what}: {source}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Tls(e) => Some(e),
            StartError::Epochs(e) => Some(e),
            StartError::ElectionPort(e) => Some(e),
            StartError::Admin(e) => Some(e),
            StartError::Thread { source, .. } => Some(source),
        }
    }
}

/// A running node. Dropping it does not stop it; call [`shutdown`](Self::shutdown).
pub struct Node {
    cfg: Arc<QuorumPeerConfig>,
    status: Arc<Mutex<NodeStatus>>,
    cnx: QuorumCnxManager,
    security: Security,
    board: Arc<VoteBoard>,
    messenger: Option<Arc<Messenger>>,
    ctx: Option<Arc<PeerContext>>,
    hook: Option<Arc<StateHook>>,
    /// systemd's `$NOTIFY_SOCKET`, when the node runs under a `Type=notify` unit.
    notifier: Option<Arc<Notifier>>,
    /// Leadership changes in order, for `/watch` and the status page.
    journal: Arc<LeadershipJournal>,
    admin: Vec<AdminServer>,
    client_port: Option<u16>,
    peer_thread: ThreadGroup,
    /// Set when the `QuorumPeer` thread has returned (`/health` then fails).
    peer_stopped: Arc<AtomicBool>,
    shutdown: Shutdown,
    fatal: Receiver<Fatal>,
    lease_changes: Arc<Watch<()>>,
    leases: Arc<Leases>,
}

impl Node {
    /// Loads the epochs, binds the election port (before anything is dialled: a node whose port is
    /// taken, most likely by a node with the same id, stops here), opens the admin ports, and
    /// starts the messenger and the `QuorumPeer` thread.
    pub fn start(cfg: QuorumPeerConfig) -> Result<Node, StartError> {
        let cfg = Arc::new(cfg);
        let security = Security::from_config(&cfg.quorum_tls).map_err(StartError::Tls)?;
        let files = EpochFiles::new(&cfg.data_dir);
        let (current_epoch, accepted_epoch) = files.load().map_err(StartError::Epochs)?;
        // zkelect has no transactions: the last zxid is always 0.
        let initial = Vote::new(cfg.my_id, 0, -1, current_epoch);
        let status = Arc::new(Mutex::new(NodeStatus::new(cfg.my_id, initial, current_epoch, accepted_epoch)));
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let (fatal_tx, fatal) = crossbeam_channel::bounded(1);
        let qv = Arc::new(cfg.quorum_verifier.clone());
        let settings = CnxSettings { security: security.clone(), ..CnxSettings::from_config(&cfg) };
        let cnx = QuorumCnxManager::new(settings, qv, transport_events(&status, &events_tx, fatal_tx));
        log::info!("Using {}ms as the quorum cnxn socket timeout", cfg.socket_timeout_ms());
        let leases = Arc::new(Leases::new(LeaseSettings::from_config(&cfg)));
        let mut node = Node {
            cfg,
            status,
            cnx,
            security,
            board: Arc::new(VoteBoard::default()),
            messenger: None,
            ctx: None,
            hook: None,
            notifier: Notifier::from_env().map(Arc::new),
            journal: Arc::new(LeadershipJournal::new()),
            admin: Vec::new(),
            client_port: None,
            peer_thread: ThreadGroup::new(),
            peer_stopped: Arc::new(AtomicBool::new(false)),
            shutdown: Shutdown::new(),
            fatal,
            lease_changes: Arc::new(Watch::new(())),
            leases,
        };
        if let Err(e) = node.start_parts(events_tx, events_rx, files) {
            node.shutdown();
            return Err(e);
        }
        if let Some(n) = &node.notifier {
            n.ready();
        }
        Ok(node)
    }

    fn start_parts(
        &mut self,
        events_tx: Sender<ElectionEvent>,
        events_rx: Receiver<ElectionEvent>,
        files: EpochFiles,
    ) -> Result<(), StartError> {
        self.cnx.start().map_err(StartError::ElectionPort)?;
        // The admin ports are bound before the peer thread starts: if one is taken, the node stops
        // before any state change could have started the hook (whose runs a shutdown waits for).
        self.start_admin()?;
        if let Some(program) = &self.cfg.on_state_change {
            let timeout = Duration::from_millis(self.cfg.on_state_change_timeout_ms);
            let hook = StateHook::start(program.clone(), self.cfg.my_id, timeout)
                .map_err(|source| StartError::Thread { what: "state-change hook", source })?;
            self.hook = Some(Arc::new(hook));
        }
        let view: ViewSource = {
            let status = Arc::clone(&self.status);
            Arc::new(move || status.lock().view())
        };
        let qv = Arc::new(self.cfg.quorum_verifier.clone());
        let interval = self.cfg.min_notification_interval_ms;
        let messenger = Messenger::start(self.cnx.clone(), qv, view, events_tx, Arc::clone(&self.board), interval)
            .map_err(|source| StartError::Thread { what: "messenger", source })?;
        let messenger = Arc::new(messenger);
        self.messenger = Some(Arc::clone(&messenger));
        let (hook, notifier, journal) = (self.hook.clone(), self.notifier.clone(), Arc::clone(&self.journal));
        let announce: Announce = Box::new(move |change| {
            journal.record(change);
            if let Some(h) = &hook {
                h.notify(change);
            }
            if let Some(n) = &notifier {
                n.state_changed(change);
            }
        });
        let ctx = Arc::new(PeerContext::new(
            Arc::clone(&self.cfg),
            self.cnx.clone(),
            messenger,
            Arc::clone(&self.status),
            files,
            announce,
            self.shutdown.clone(),
            self.security.clone(),
            Arc::clone(&self.leases),
            Arc::clone(&self.lease_changes),
        ));
        self.ctx = Some(Arc::clone(&ctx));
        let name = format!("QuorumPeer[myid={}]", self.cfg.my_id);
        let stopped = Arc::clone(&self.peer_stopped);
        self.peer_thread
            .spawn(name, move || {
                peer::run(ctx, events_rx);
                stopped.store(true, Release);
            })
            .map_err(|source| StartError::Thread { what: "peer thread", source })
    }

    fn start_admin(&mut self) -> Result<(), StartError> {
        let source = self.snapshot_source();
        let resign: fourlw::Resign = {
            let (leases, status) = (Arc::clone(&self.leases), Arc::clone(&self.status));
            Arc::new(move |to| {
                let st = status.lock().clone();
                leases.resign(&st, to).map_err(|e| e.to_string())
            })
        };
        for started in [
            fourlw::start(Arc::clone(&self.cfg), Arc::clone(&source), resign),
            metrics::start(Arc::clone(&self.cfg), Arc::clone(&source)),
        ] {
            if let Some(server) = started.map_err(StartError::Admin)? {
                self.admin.push(server);
            }
        }
        let sources =
            admin_server::Sources { snapshot: source, journal: Arc::clone(&self.journal), liveness: self.liveness() };
        self.admin.extend(admin_server::start(Arc::clone(&self.cfg), sources));
        Ok(())
    }

    /// `/health`: the node is not stopping, its `QuorumPeer` thread runs, and no thread has held
    /// its status for long (a thread stuck while holding it would freeze the election).
    fn liveness(&self) -> admin_server::Liveness {
        let (status, stopped, shutdown) =
            (Arc::clone(&self.status), Arc::clone(&self.peer_stopped), self.shutdown.clone());
        Arc::new(move || {
            if shutdown.is_requested() {
                return Err("the node is shutting down".into());
            }
            if stopped.load(Acquire) {
                return Err("the QuorumPeer thread has stopped".into());
            }
            if status.try_lock_for(Duration::from_secs(1)).is_none() {
                return Err("the node's status has been locked for more than 1 s".into());
            }
            Ok(())
        })
    }

    pub fn config(&self) -> &QuorumPeerConfig {
        &self.cfg
    }

    pub fn status(&self) -> NodeStatus {
        self.status.lock().clone()
    }

    pub fn snapshot(&self) -> Snapshot {
        (self.snapshot_source())()
    }

    /// A cheap handle that takes snapshots from another thread.
    pub fn snapshot_source(&self) -> Arc<dyn Fn() -> Snapshot + Send + Sync> {
        let (status, cnx, board) = (Arc::clone(&self.status), self.cnx.clone(), Arc::clone(&self.board));
        let quorum_tls = QuorumTlsState { dials_tls: self.security.dials_tls(), accepts: self.security.accepts() };
        Arc::new(move || {
            // Copied in a statement of its own: a temporary guard would be held while the peer table
            // is locked below, the reverse of the transport's callbacks (table, then status).
            let status = status.lock().clone();
            Snapshot {
                status,
                peers: cnx.peer_status(),
                last_votes: board.latest_with_times(),
                notifications_sent: board.notifications_sent.load(Relaxed),
                notifications_received: board.notifications_received.load(Relaxed),
                malformed_dropped: board.malformed_dropped.load(Relaxed),
                replies_held_back: board.replies_held_back.load(Relaxed),
                notifications_dropped: cnx.frames_dropped(),
                traffic: board.traffic(),
                quorum_tls,
            }
        })
    }

    /// What `zkelect run` needs of the node, usable from its own threads.
    pub fn handle(&self) -> NodeHandle {
        NodeHandle {
            status: Arc::clone(&self.status),
            leases: Arc::clone(&self.leases),
            lease_changes: Arc::clone(&self.lease_changes),
        }
    }

    /// `zkelect resign [--to <sid>]`: see [`Leases::resign`].
    pub fn resign(&self, to: Option<i64>) -> Result<String, ResignRefused> {
        self.handle().resign(to)
    }

    /// The election transport (for tests and tools that look at connections).
    pub fn transport(&self) -> &QuorumCnxManager {
        &self.cnx
    }

    /// The port the four-letter words are served on, once bound.
    pub fn client_port(&self) -> Option<u16> {
        self.client_port
    }

    /// What ends the node, for a `select!` next to other events (such as process signals).
    pub fn fatal_events(&self) -> &Receiver<Fatal> {
        &self.fatal
    }

    /// Waits for something that ends the node (`None` after `timeout`, or at once when shutting down).
    pub fn wait(&self, timeout: Option<Duration>) -> Option<Fatal> {
        match timeout {
            Some(t) => self.fatal.recv_timeout(t).ok(),
            None => self.fatal.recv().ok(),
        }
    }

    /// Stops every thread of the node and waits for them; every port is released.
    pub fn shutdown(&self) {
        if let Some(n) = &self.notifier {
            n.stopping();
        }
        self.shutdown.request();
        if let Some(ctx) = &self.ctx {
            ctx.sessions.close_all();
        }
        for a in &self.admin {
            a.shutdown();
        }
        self.peer_thread.join_all();
        self.cnx.halt();
        if let Some(m) = &self.messenger {
            m.halt();
        }
        if let Some(h) = &self.hook {
            h.shutdown();
        }
    }
}

/// The transport's callbacks: connections matter to the election only while it runs, and a
/// listener that gave up ends the node.
fn transport_events(
    status: &Arc<Mutex<NodeStatus>>,
    events: &Sender<ElectionEvent>,
    fatal: Sender<Fatal>,
) -> CnxEvents {
    // While following a ZooKeeper leader in election-only mode, a broken connection to it matters too.
    let looking = {
        let status = Arc::clone(status);
        move || {
            let view = status.lock().view();
            view.state == ServerState::Looking || view.confirming
        }
    };
    let (connected, disconnected, down) = (events.clone(), events.clone(), events.clone());
    let (looking2, looking3) = (looking.clone(), looking.clone());
    CnxEvents {
        peer_connected: Box::new(move |sid| {
            if looking() {
                let _ = connected.send(ElectionEvent::PeerConnected(sid));
            }
        }),
        peer_disconnected: Box::new(move |sid| {
            if looking3() {
                let _ = disconnected.send(ElectionEvent::PeerDisconnected(sid));
            }
        }),
        peer_down: Box::new(move |sid| {
            if looking2() {
                let _ = down.send(ElectionEvent::PeerDown(sid));
            }
        }),
        listener_failed: Box::new(move || {
            let _ = fatal.try_send(Fatal::ElectionListenerFailed);
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use wait_timeout::ChildExt;

    const PANIC_CHILD_DIR: &str = "ZKELECT_PANIC_CHILD_DIR";

    /// A zoo.cfg for node 1 of three voters (the others never run) in `dir`, with free ports.
    fn lonely_node(dir: &std::path::Path) -> std::path::PathBuf {
        let ports: Vec<u16> = (0..6)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()))
            .collect::<Result<_, _>>()
            .expect("free ports");
        let mut text = format!("tickTime=100\ninitLimit=5\nsyncLimit=2\ndataDir={}\n", dir.display());
        for sid in 1..=3 {
            let (q, e) = (ports[2 * sid - 2], ports[2 * sid - 1]);
            text.push_str(&format!("server.{sid}=127.0.0.1:{q}:{e}\n"));
        }
        std::fs::create_dir_all(dir).expect("dir");
        std::fs::write(dir.join("myid"), "1\n").expect("myid");
        let cfg = dir.join("zoo.cfg");
        std::fs::write(&cfg, text).expect("zoo.cfg");
        cfg
    }

    /// Child mode of the test below: a node whose election thread panics, under the daemon's policy.
    #[test]
    #[ignore = "child process of a_panic_in_the_election_thread_ends_the_process"]
    fn panicking_node_child() {
        let Some(dir) = std::env::var_os(PANIC_CHILD_DIR) else { return };
        crate::runtime::logging::init();
        crate::runtime::panic::install();
        crate::peer::quorum_peer::PANIC_IN_ELECTION.store(true, std::sync::atomic::Ordering::Release);
        let cfg = QuorumPeerConfig::load(&std::path::Path::new(&dir).join("zoo.cfg")).expect("config");
        let node = Node::start(cfg).expect("start");
        // The panic policy ends the process long before this.
        std::thread::sleep(Duration::from_secs(60));
        node.shutdown();
    }

    /// A panic in the election thread must not leave a node that answers votes but never elects:
    /// the process logs the thread and the message at ERROR and exits with code 70.
    #[test]
    fn a_panic_in_the_election_thread_ends_the_process() {
        let dir = std::env::temp_dir().join(format!("zkelect-panic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        lonely_node(&dir);
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--ignored", "--exact", "node::tests::panicking_node_child", "--nocapture", "--test-threads=1"])
            .env(PANIC_CHILD_DIR, &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        let status = child.wait_timeout(Duration::from_secs(30)).expect("wait");
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        let _ = std::fs::remove_dir_all(&dir);
        let status = status.expect("the node kept running after its election thread panicked");
        assert_eq!(status.code(), Some(crate::runtime::panic::EXIT_INTERNAL_ERROR), "{err}");
        let line = err.lines().find(|l| l.contains(" ERROR ") && l.contains("panicked")).unwrap_or_default();
        assert!(line.contains("Thread QuorumPeer[myid=1] panicked"), "{err}");
        assert!(line.contains("test-only trigger: the election thread panics"), "{err}");
    }
}
