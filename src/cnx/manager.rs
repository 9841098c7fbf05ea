//! The manager itself: maps, `toSend`, `connectOne`/`connectAll`, the tie-break and `halt`.

use super::connector::Connector;
use super::listener;
use super::queue::CircularBlockingQueue;
use super::workers::{self, SendWorker};
use crate::config::{HostPort, QuorumPeerConfig, QuorumVerifier};
use crate::thread::ThreadGroup;
use crate::wire::initial::{InitialMessage, ProtocolVersion};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Capacity of `recvQueue`.
pub const RECV_CAPACITY: usize = 100;
/// Capacity of each `queueSendMap` queue.
pub const SEND_CAPACITY: usize = 1;
/// A connection younger than this is taken to be the tie-break's fresh dial-back, still on its way
/// to the other side: a dial from the smaller side does not replace it, and when it breaks the
/// smaller side does not re-dial at once. Without this, "smaller dials, larger finishes its
/// connection and dials back, the smaller side sees the old one break and dials again" feeds
/// itself: a 51-node launch on two cores churned through 20,000 connections in a few seconds.
pub const FRESH_CONNECTION: Duration = Duration::from_secs(1);

/// One received payload, tagged with the sid of the connection it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub sid: i64,
    pub buffer: Vec<u8>,
}

/// Transport settings, mostly from zoo.cfg.
#[derive(Debug, Clone)]
pub struct CnxSettings {
    pub my_sid: i64,
    /// Addresses the listener binds (own election addresses, or wildcards).
    pub listen_addrs: Vec<HostPort>,
    /// Own election addresses as sent in the handshake.
    pub advertised_addrs: Vec<HostPort>,
    /// Send the V2 handshake (`multiAddress.enabled`).
    pub multi_address: bool,
    /// `cnxTimeout`: connect timeout of one dial.
    pub cnx_timeout: Duration,
    /// Handshake deadline (`quorumCnxnTimeoutMs` or tickTime × syncLimit); also the write timeout.
    pub socket_timeout: Duration,
    pub tcp_keep_alive: bool,
    /// `electionPortBindRetry` (0 = forever) and the pause between attempts.
    pub bind_retry: u32,
    pub bind_retry_delay: Duration,
    /// Most dials in flight at once (`quorum.cnxn.threads.size`).
    pub pool_size: usize,
    /// How long an idle dial thread waits for work before it exits.
    pub pool_keep_alive: Duration,
    /// Most incoming handshakes read at once; further connections are closed at once.
    pub max_pending_handshakes: usize,
}

impl CnxSettings {
    pub fn from_config(cfg: &QuorumPeerConfig) -> CnxSettings {
        let me = cfg.me().map(|s| s.election_addrs()).unwrap_or_default();
        let listen_addrs = if cfg.quorum_listen_on_all_ips {
            me.iter()
                .map(|a| {
                    let any = if a.host.contains(':') { "::" } else { "0.0.0.0" };
                    HostPort::new(any, a.port)
                })
                .collect()
        } else {
            me.clone()
        };
        let peers = cfg.quorum_verifier.members.len().saturating_sub(1).max(1);
        CnxSettings {
            my_sid: cfg.my_id,
            listen_addrs,
            advertised_addrs: me,
            multi_address: cfg.multi_address_enabled,
            cnx_timeout: Duration::from_millis(cfg.cnx_timeout_ms),
            socket_timeout: Duration::from_millis(cfg.socket_timeout_ms().max(1)),
            tcp_keep_alive: cfg.tcp_keep_alive,
            bind_retry: cfg.election_port_bind_retry,
            bind_retry_delay: Duration::from_millis(1000),
            // One dial in flight per sid, so more threads than peers would never be used.
            pool_size: cfg.quorum_cnxn_threads_size.min(peers),
            pool_keep_alive: Duration::from_secs(5),
            max_pending_handshakes: (4 * peers).max(32),
        }
    }
}

/// What the manager knows about one configured peer (for `elec` and the logs).
#[derive(Debug, Clone, Default)]
pub struct PeerCnxStatus {
    pub connected: bool,
    pub last_connect_error: Option<String>,
    pub last_connect_error_at: Option<SystemTime>,
    pub connections: u64,
}

type Callback = Arc<dyn Fn(i64) + Send + Sync>;
/// One peer's outgoing queue in `queueSendMap`.
pub(super) type SendQueue = CircularBlockingQueue<Arc<[u8]>>;

pub(super) struct Inner {
    pub settings: CnxSettings,
    pub view: Arc<QuorumVerifier>,
    pub sender_worker_map: Mutex<HashMap<i64, Arc<SendWorker>>>,
    pub queue_send_map: Mutex<HashMap<i64, Arc<SendQueue>>>,
    pub last_message_sent: Mutex<HashMap<i64, Arc<[u8]>>>,
    pub recv_queue: CircularBlockingQueue<Message>,
    pub inprogress_connections: Mutex<HashSet<i64>>,
    pub status: Mutex<HashMap<i64, PeerCnxStatus>>,
    pub threads: ThreadGroup,
    pub shutdown: AtomicBool,
    /// Dropped on halt: every `recv_timeout` on `shutdown_rx` then returns at once.
    pub shutdown_tx: Mutex<Option<Sender<()>>>,
    pub shutdown_rx: Receiver<()>,
    /// Sockets to shut down on halt: listening sockets and handshakes being read.
    pub listeners: Mutex<Vec<socket2::Socket>>,
    pub pending: Mutex<HashMap<u64, TcpStream>>,
    pub seq: AtomicU64,
    pub connector: Connector,
    pub on_connected: Mutex<Option<Callback>>,
    pub on_down: Mutex<Option<Callback>>,
    /// Peers whose connection broke and could not be re-dialled, and that have not come back since.
    pub down: Mutex<HashSet<i64>>,
    /// Peers whose connection broke, being re-dialled to tell a dead peer from tie-break churn.
    pub suspects: Mutex<HashSet<i64>>,
    pub on_listener_failure: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
    pub frames_sent: AtomicU64,
    pub frames_received: AtomicU64,
}

/// Handle to the election transport; cheap to clone.
#[derive(Clone)]
pub struct QuorumCnxManager {
    pub(super) inner: Arc<Inner>,
}

impl QuorumCnxManager {
    pub fn new(settings: CnxSettings, view: Arc<QuorumVerifier>) -> QuorumCnxManager {
        let (tx, rx) = crossbeam_channel::bounded(0);
        let connector = Connector::new(settings.my_sid, settings.pool_size, settings.pool_keep_alive);
        QuorumCnxManager {
            inner: Arc::new(Inner {
                settings,
                view,
                sender_worker_map: Mutex::new(HashMap::new()),
                queue_send_map: Mutex::new(HashMap::new()),
                last_message_sent: Mutex::new(HashMap::new()),
                recv_queue: CircularBlockingQueue::new(RECV_CAPACITY),
                inprogress_connections: Mutex::new(HashSet::new()),
                status: Mutex::new(HashMap::new()),
                threads: ThreadGroup::new(),
                shutdown: AtomicBool::new(false),
                shutdown_tx: Mutex::new(Some(tx)),
                shutdown_rx: rx,
                listeners: Mutex::new(Vec::new()),
                pending: Mutex::new(HashMap::new()),
                seq: AtomicU64::new(1),
                connector,
                on_connected: Mutex::new(None),
                on_down: Mutex::new(None),
                down: Mutex::new(HashSet::new()),
                suspects: Mutex::new(HashSet::new()),
                on_listener_failure: Mutex::new(None),
                frames_sent: AtomicU64::new(0),
                frames_received: AtomicU64::new(0),
            }),
        }
    }

    /// Called (on a transport thread) whenever a worker pair for a peer starts.
    pub fn set_on_connected(&self, f: impl Fn(i64) + Send + Sync + 'static) {
        *self.inner.on_connected.lock() = Some(Arc::new(f));
    }

    /// Called (on a transport thread) when a peer's connection breaks.
    pub fn set_on_peer_down(&self, f: impl Fn(i64) + Send + Sync + 'static) {
        *self.inner.on_down.lock() = Some(Arc::new(f));
    }

    /// Peers known to be unreachable right now (connection broken, not back since).
    pub fn down_peers(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.inner.down.lock().iter().copied().collect();
        v.sort_unstable();
        v
    }

    /// Called once if every listener has given up binding (the process should exit with 14).
    pub fn set_on_listener_failure(&self, f: impl Fn() + Send + Sync + 'static) {
        *self.inner.on_listener_failure.lock() = Some(Arc::new(f));
    }

    /// Starts the `Listener` thread.
    pub fn start(&self) -> std::io::Result<()> {
        listener::start(&self.inner)
    }

    pub fn is_halted(&self) -> bool {
        self.inner.is_shutdown()
    }

    pub fn my_sid(&self) -> i64 {
        self.inner.settings.my_sid
    }

    /// `toSend`: to ourselves goes straight into `recvQueue`; otherwise into the peer's queue
    /// (capacity 1, drop oldest), then `connectOne`. Never blocks.
    pub fn to_send(&self, sid: i64, msg: Vec<u8>) {
        let inner = &self.inner;
        if sid == inner.settings.my_sid {
            inner.recv_queue.offer(Message { sid, buffer: msg });
            return;
        }
        inner.send_queue(sid).offer(Arc::from(msg));
        inner.connect_one(sid);
    }

    /// `pollRecvQueue`.
    pub fn poll_recv_queue(&self, timeout: Duration) -> Option<Message> {
        self.inner.recv_queue.poll(timeout)
    }

    /// `connectOne`: dial `sid` unless connected or a dial is already in flight.
    pub fn connect_one(&self, sid: i64) {
        self.inner.connect_one(sid);
    }

    /// `connectAll`: `connectOne` for every sid we ever queued a message for.
    pub fn connect_all(&self) {
        let sids: Vec<i64> = self.inner.queue_send_map.lock().keys().copied().collect();
        for sid in sids {
            self.inner.connect_one(sid);
        }
    }

    /// `haveDelivered`: true iff at least one per-peer queue is empty.
    pub fn have_delivered(&self) -> bool {
        self.inner.queue_send_map.lock().values().any(|q| q.is_empty())
    }

    /// `connectedToPeer`.
    pub fn connected_to_peer(&self, sid: i64) -> bool {
        self.inner.sender_worker_map.lock().contains_key(&sid)
    }

    pub fn connected_peers(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.inner.sender_worker_map.lock().keys().copied().collect();
        v.sort_unstable();
        v
    }

    pub fn peer_status(&self) -> HashMap<i64, PeerCnxStatus> {
        let connected = self.connected_peers();
        let mut m = self.inner.status.lock().clone();
        for (sid, st) in m.iter_mut() {
            st.connected = connected.contains(sid);
        }
        m
    }

    pub fn frames_sent(&self) -> u64 {
        self.inner.frames_sent.load(Ordering::Relaxed)
    }

    pub fn frames_received(&self) -> u64 {
        self.inner.frames_received.load(Ordering::Relaxed)
    }

    /// Drops any queued incoming messages (after a decision, as `lookForLeader` does).
    pub fn clear_recv_queue(&self) {
        self.inner.recv_queue.clear();
    }

    /// `softHalt`: finish every worker pair; queues and `lastMessageSent` stay.
    pub fn soft_halt(&self) {
        let workers: Vec<_> = self.inner.sender_worker_map.lock().values().cloned().collect();
        for w in workers {
            w.finish(&self.inner);
        }
    }

    /// `halt`: stop the listener, every worker and every dial, and join all their threads.
    pub fn halt(&self) {
        let inner = &self.inner;
        if inner.shutdown.swap(true, Ordering::AcqRel) {
            return;
        }
        log::debug!("Halting QuorumCnxManager of {}", inner.settings.my_sid);
        inner.shutdown_tx.lock().take();
        for l in inner.listeners.lock().drain(..) {
            let _ = l.shutdown(std::net::Shutdown::Both);
        }
        for (_, s) in inner.pending.lock().drain() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        self.soft_halt();
        inner.connector.close();
        inner.recv_queue.close();
        let queues: Vec<_> = inner.queue_send_map.lock().values().cloned().collect();
        for q in queues {
            q.wake_all();
        }
        inner.threads.join_all();
        inner.connector.join();
    }

    /// Threads owned by this manager that are still running (listener, workers, handshakes).
    pub fn thread_count(&self) -> usize {
        self.inner.threads.len() + self.inner.connector.thread_count()
    }
}

impl Inner {
    pub fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    pub fn send_queue(&self, sid: i64) -> Arc<SendQueue> {
        self.queue_send_map
            .lock()
            .entry(sid)
            .or_insert_with(|| Arc::new(CircularBlockingQueue::new(SEND_CAPACITY)))
            .clone()
    }

    pub fn connect_one(self: &Arc<Self>, sid: i64) {
        if self.is_shutdown() || self.sender_worker_map.lock().contains_key(&sid) {
            return;
        }
        let Some(server) = self.view.members.get(&sid) else {
            log::warn!("Invalid server id: {sid}");
            return;
        };
        let addrs: Vec<HostPort> = server.election_addrs().into_iter().filter(|a| !a.is_wildcard()).collect();
        if addrs.is_empty() {
            log::warn!("Cannot open channel to {sid}: its election address is a wildcard");
            return;
        }
        if !self.inprogress_connections.lock().insert(sid) {
            log::debug!("Connection request to server id: {sid} is already in progress, so skipping this request");
            return;
        }
        let me = Arc::clone(self);
        self.connector.submit(Box::new(move || super::connector::initiate_connection(&me, sid, &addrs)));
    }

    pub fn record_connect_error(&self, sid: i64, err: String) {
        {
            let mut st = self.status.lock();
            let e = st.entry(sid).or_default();
            e.last_connect_error = Some(err);
            e.last_connect_error_at = Some(SystemTime::now());
        }
    }

    /// A live connection of age `lived` broke. That also happens when the peer merely replaces the
    /// connection (tie-break), so the peer is re-dialled at once; only if that dial fails is it
    /// "down". A fresh connection from a larger id that breaks is tie-break churn: its owner dials
    /// back by itself, and the next `toSend` dials as in ZooKeeper if it does not.
    pub fn connection_broken(self: &Arc<Self>, sid: i64, lived: Duration) {
        if self.is_shutdown() || self.sender_worker_map.lock().contains_key(&sid) {
            return;
        }
        if sid > self.settings.my_sid && lived < FRESH_CONNECTION {
            log::debug!("Fresh connection to {sid} broke after {lived:?}; leaving the dial-back to it");
            return;
        }
        self.suspects.lock().insert(sid);
        log::debug!("Connection to {sid} broke; re-dialling it to see whether it is down");
        self.connect_one(sid);
    }

    /// Outcome of a dial: a suspect peer that cannot be reached is down. A peer that was never
    /// connected is not: at start-up every peer deserves the full finalizeWait.
    pub fn dial_result(&self, sid: i64, ok: bool) {
        let was_suspect = self.suspects.lock().remove(&sid);
        log::debug!("Dial to {sid}: ok={ok}, suspect={was_suspect}");
        if ok || !was_suspect || self.is_shutdown() || self.sender_worker_map.lock().contains_key(&sid) {
            return;
        }
        if self.down.lock().insert(sid) {
            let cb = self.on_down.lock().clone();
            if let Some(cb) = cb {
                cb(sid);
            }
        }
    }

    /// The handshake we send: V2 with every address only under `multiAddress.enabled`, else V1.
    pub fn initial_message(&self) -> Vec<u8> {
        let version = if self.settings.multi_address { ProtocolVersion::V2 } else { ProtocolVersion::V1 };
        crate::wire::initial::encode(version, self.settings.my_sid, &self.settings.advertised_addrs)
    }

    /// `handleConnection`: the tie-break for an accepted connection whose handshake was read.
    pub fn handle_connection(self: &Arc<Self>, stream: TcpStream, msg: InitialMessage, remote: &str) {
        let my = self.settings.my_sid;
        let sid = msg.sid;
        log::debug!(
            "Received {:?} handshake from sid {sid} at {remote}, addresses {:?}",
            msg.version,
            msg.addrs.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        if sid == my {
            log::warn!(
                "We got a connection request from a server with our own ID. This should be either a configuration error, or a bug. (from {remote}, closing it)"
            );
            return;
        }
        if !self.view.members.contains_key(&sid) {
            // Java accepts any sid; only configured servers may take part here (CVE-2023-44981).
            log::warn!("Refusing election connection from {remote}: server id {sid} is not in the configuration");
            return;
        }
        if sid < my {
            // A smaller id asked for a connection: drop ours (it may be stale) and dial back, using our
            // own configuration rather than the advertised address (ZK-2164). A connection we made
            // a moment ago is not stale but on its way (see FRESH_CONNECTION): keep it.
            let old = self.sender_worker_map.lock().get(&sid).cloned();
            if let Some(w) = old {
                if w.is_running() && w.age() < FRESH_CONNECTION {
                    log::debug!("Keeping our {:?}-old connection to {sid} instead of dialling back", w.age());
                    return;
                }
                w.finish(self);
            }
            drop(stream);
            log::debug!("Create new connection to server: {sid}");
            self.connect_one(sid);
        } else {
            self.start_workers(sid, stream);
        }
    }

    /// Registers a new worker pair for `sid`, replacing (and finishing) any older one atomically.
    pub fn start_workers(self: &Arc<Self>, sid: i64, stream: TcpStream) {
        let _ = stream.set_read_timeout(None);
        let _ = stream.set_write_timeout(Some(self.settings.socket_timeout));
        let queue = self.send_queue(sid);
        let worker = {
            let mut map = self.sender_worker_map.lock();
            if self.is_shutdown() {
                return;
            }
            let worker = match SendWorker::new(sid, stream, queue) {
                Ok(w) => Arc::new(w),
                Err(e) => {
                    log::warn!("Cannot start workers for {sid}: {e}");
                    return;
                }
            };
            if let Some(old) = map.insert(sid, Arc::clone(&worker)) {
                log::debug!("There is a connection already for server {sid}, replacing it");
                old.stop(self);
            }
            worker
        };
        {
            let mut st = self.status.lock();
            let e = st.entry(sid).or_default();
            e.connections += 1;
            e.last_connect_error = None;
        }
        self.down.lock().remove(&sid);
        self.suspects.lock().remove(&sid);
        if let Err(e) = workers::spawn_pair(self, &worker) {
            log::warn!("Cannot start worker threads for {sid}: {e}");
            worker.finish(self);
            return;
        }
        let cb = self.on_connected.lock().clone();
        if let Some(cb) = cb {
            cb(sid);
        }
    }
}
