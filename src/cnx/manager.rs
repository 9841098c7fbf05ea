//! `QuorumCnxManager` itself: `toSend`, `connectOne`/`connectAll`, `haveDelivered`, the
//! tie-break applied to real connections, and `halt`.

use super::connector::{self, Pool};
use super::listener::{self, ListenerState};
use super::queue::CircularBlockingQueue;
use super::table::{Accepted, CnxEvents, NoDial, PeerCnxStatus, PeerTable};
use super::tie_break::{self, OnAccepted};
use super::workers::{self, PeerConnection};
use crate::config::{HostPort, QuorumPeerConfig, QuorumVerifier};
use crate::net::{PeerStream, Security, SocketOptions};
use crate::runtime::{Shutdown, ThreadGroup};
use crate::wire::initial::{InitialMessage, ProtocolVersion};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Capacity of `recvQueue`.
pub const RECV_CAPACITY: usize = 100;

/// How long an idle thread of the dial and handshake pools waits for work before it exits (the
/// default of [`CnxSettings::pool_keep_alive`]). Long enough to carry the threads through the
/// bursts of a launch, short enough that a settled node is down to its connections' threads
/// within two seconds; starting a thread again for a later dial costs tens of microseconds.
pub const POOL_KEEP_ALIVE: Duration = Duration::from_secs(1);

/// Why a peer is dialled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dial {
    /// A message was queued for it: not again within [`super::table::QUIET_AFTER_FAILED_DIAL`] of
    /// a failed dial.
    AfterSend,
    /// `connectOne`: the election's retry, a dial-back, a re-dial to tell whether a peer is down.
    Always,
}

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
    /// How long an idle dial or handshake thread waits for work before it exits.
    pub pool_keep_alive: Duration,
    /// Most incoming handshakes read at once; further connections are closed at once.
    pub max_pending_handshakes: usize,
    /// Quorum TLS: what is dialled and accepted (plaintext unless the node sets it).
    pub security: Security,
}

impl CnxSettings {
    pub fn from_config(cfg: &QuorumPeerConfig) -> CnxSettings {
        let me = cfg.me().map(|s| s.election_addrs()).unwrap_or_default();
        let listen_addrs =
            if cfg.quorum_listen_on_all_ips { me.iter().map(HostPort::wildcard_like).collect() } else { me.clone() };
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
            pool_keep_alive: POOL_KEEP_ALIVE,
            max_pending_handshakes: (4 * peers).max(32),
            security: Security::plaintext(),
        }
    }

    /// The options of every election socket.
    pub fn socket(&self) -> SocketOptions {
        SocketOptions { keep_alive: self.tcp_keep_alive, timeout: self.socket_timeout }
    }
}

/// The transport's state. Private: the listener, the dialler and the workers go through its
/// methods, and per-peer state only through the [`PeerTable`]'s.
pub(super) struct Inner {
    settings: CnxSettings,
    qv: Arc<QuorumVerifier>,
    table: PeerTable,
    recv_queue: CircularBlockingQueue<Message>,
    threads: ThreadGroup,
    shutdown: Shutdown,
    listening: ListenerState,
    /// `QuorumConnectionReqThread`s.
    dials: Pool,
    /// `QuorumConnectionReceiverThread`s.
    handshakes: Pool,
    frames_sent: AtomicU64,
    frames_received: AtomicU64,
    /// Frames dropped from a full `recvQueue`.
    frames_dropped: AtomicU64,
}

/// Handle to the election transport; cheap to clone.
#[derive(Clone)]
pub struct QuorumCnxManager {
    inner: Arc<Inner>,
}

impl QuorumCnxManager {
    /// A transport for `settings.my_sid`; `events` tell the node about connections (see [`CnxEvents`]).
    pub fn new(settings: CnxSettings, qv: Arc<QuorumVerifier>, events: CnxEvents) -> QuorumCnxManager {
        let shutdown = Shutdown::new();
        let (sid, ka) = (settings.my_sid, settings.pool_keep_alive);
        let dials = Pool::new("QuorumConnectionThread", sid, settings.pool_size, ka, shutdown.clone());
        let handshakes =
            Pool::new("QuorumConnectionReceiverThread", sid, settings.max_pending_handshakes, ka, shutdown.clone());
        QuorumCnxManager {
            inner: Arc::new(Inner {
                table: PeerTable::new(settings.my_sid, events),
                settings,
                qv,
                recv_queue: CircularBlockingQueue::new(RECV_CAPACITY),
                threads: ThreadGroup::new(),
                shutdown,
                listening: ListenerState::default(),
                dials,
                handshakes,
                frames_sent: AtomicU64::new(0),
                frames_received: AtomicU64::new(0),
                frames_dropped: AtomicU64::new(0),
            }),
        }
    }

    /// Binds the election address(es), retrying as `electionPortBindRetry` says, and starts the
    /// `Listener`. Fails when no address could be bound: then the node must not run (exit 14).
    pub fn start(&self) -> std::io::Result<()> {
        listener::start(&self.inner)
    }

    pub fn is_halted(&self) -> bool {
        self.inner.is_halted()
    }

    pub fn my_sid(&self) -> i64 {
        self.inner.settings.my_sid
    }

    /// `toSend`: to ourselves goes straight into `recvQueue`; otherwise into the peer's queue
    /// (capacity 1, drop oldest), then `connectOne`. Never blocks.
    pub fn to_send(&self, sid: i64, msg: Vec<u8>) {
        let inner = &self.inner;
        if sid == inner.settings.my_sid {
            inner.enqueue(Message { sid, buffer: msg });
            return;
        }
        inner.table.send_queue(sid).offer(Arc::from(msg));
        inner.dial(sid, Dial::AfterSend);
    }

    /// `pollRecvQueue`.
    pub fn poll_recv_queue(&self, timeout: Duration) -> Option<Message> {
        self.inner.recv_queue.poll(timeout)
    }

    /// The next received message; `None` once the transport is halted.
    pub fn recv(&self) -> Option<Message> {
        self.inner.recv_queue.take()
    }

    /// `connectOne`: dial `sid` unless connected or a dial is already in flight.
    pub fn connect_one(&self, sid: i64) {
        self.inner.connect_one(sid);
    }

    /// `connectAll`: `connectOne` for every sid we ever queued a message for (also those whose
    /// last dial failed just now: this is the election's retry).
    pub fn connect_all(&self) {
        for sid in self.inner.table.sids_with_queue() {
            self.inner.connect_one(sid);
        }
    }

    /// `haveDelivered`: true iff at least one per-peer queue is empty.
    pub fn have_delivered(&self) -> bool {
        self.inner.table.any_queue_empty()
    }

    /// `connectedToPeer`.
    pub fn connected_to_peer(&self, sid: i64) -> bool {
        self.inner.table.is_connected(sid)
    }

    pub fn connected_peers(&self) -> Vec<i64> {
        self.inner.table.connected_sids()
    }

    /// Peers known to be unreachable right now (connection broken, re-dial failed, not back since).
    pub fn down_peers(&self) -> Vec<i64> {
        self.inner.table.down_sids()
    }

    pub fn peer_status(&self) -> HashMap<i64, PeerCnxStatus> {
        self.inner.table.status()
    }

    pub fn frames_sent(&self) -> u64 {
        self.inner.frames_sent.load(Ordering::Relaxed)
    }

    pub fn frames_received(&self) -> u64 {
        self.inner.frames_received.load(Ordering::Relaxed)
    }

    /// Received frames dropped because the messenger was `RECV_CAPACITY` frames behind.
    pub fn frames_dropped(&self) -> u64 {
        self.inner.frames_dropped.load(Ordering::Relaxed)
    }

    /// Drops any queued incoming messages (after a decision, as `lookForLeader` does).
    pub fn clear_recv_queue(&self) {
        self.inner.recv_queue.clear();
    }

    /// `softHalt`: stop every connection; queues and `lastMessageSent` stay.
    pub fn soft_halt(&self) {
        for c in self.inner.table.take_connections() {
            c.stop(self.inner.settings.my_sid);
        }
    }

    /// `halt`: stop the listener, every connection and every dial, and join all their threads.
    /// A dial in flight is waited for (at most `cnxTimeout`).
    pub fn halt(&self) {
        let inner = &self.inner;
        if !inner.shutdown.request() {
            return;
        }
        log::debug!("Halting QuorumCnxManager of {}", inner.settings.my_sid);
        inner.listening.close_all();
        for c in inner.table.close() {
            c.stop(inner.settings.my_sid);
        }
        inner.recv_queue.close();
        for q in inner.table.queues() {
            q.wake_all();
        }
        // The dials first: a finished dial may still register a connection (refused: the table is
        // closed), and workers started before the close are stopped and joined below.
        inner.dials.join();
        inner.handshakes.join();
        inner.threads.join_all();
    }

    /// Threads owned by this manager that are still running (listener, workers, handshakes, dials).
    pub fn thread_count(&self) -> usize {
        self.inner.threads.len() + self.inner.dials.thread_count() + self.inner.handshakes.thread_count()
    }
}

impl Inner {
    pub(super) fn settings(&self) -> &CnxSettings {
        &self.settings
    }

    pub(super) fn qv(&self) -> &QuorumVerifier {
        &self.qv
    }

    pub(super) fn my_sid(&self) -> i64 {
        self.settings.my_sid
    }

    pub(super) fn table(&self) -> &PeerTable {
        &self.table
    }

    pub(super) fn threads(&self) -> &ThreadGroup {
        &self.threads
    }

    pub(super) fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    pub(super) fn listening(&self) -> &ListenerState {
        &self.listening
    }

    pub(super) fn handshakes(&self) -> &Pool {
        &self.handshakes
    }

    pub(super) fn is_halted(&self) -> bool {
        self.shutdown.is_requested()
    }

    /// A frame from a peer, for the messenger. When the messenger is behind by `RECV_CAPACITY`
    /// frames, Java drops the oldest, which may be the only vote a peer sent: the election then
    /// waits finalizeWait for a voter it never hears (seen in 51-node launches, which drop up to a
    /// few hundred). A peer's newer notification supersedes its older ones, so those go first.
    pub(super) fn deliver(&self, m: Message) {
        self.frames_received.fetch_add(1, Ordering::Relaxed);
        self.enqueue(m);
    }

    /// Into `recvQueue`: a frame received, or one we sent ourselves.
    fn enqueue(&self, m: Message) {
        if self.recv_queue.offer_superseding(m, |m| m.sid) {
            self.frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn count_sent(&self) {
        self.frames_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn connect_one(self: &Arc<Self>, sid: i64) {
        self.dial(sid, Dial::Always);
    }

    fn dial(self: &Arc<Self>, sid: i64, why: Dial) {
        if self.is_halted() || self.table.is_connected(sid) {
            return;
        }
        let Some(server) = self.qv.members.get(&sid) else {
            log::warn!("Invalid server id: {sid}");
            return;
        };
        let addrs: Vec<HostPort> = server.election_addrs().into_iter().filter(|a| !a.is_wildcard()).collect();
        if addrs.is_empty() {
            log::warn!("Cannot open channel to {sid}: its election address is a wildcard");
            return;
        }
        match self.table.begin_dial(sid, why == Dial::AfterSend) {
            Ok(()) => {}
            Err(NoDial::Connected) => return,
            Err(NoDial::InProgress) => {
                return log::debug!(
                    "Connection request to server id: {sid} is already in progress, so skipping this request"
                );
            }
            Err(NoDial::FailedJustNow(ago)) => {
                return log::debug!(
                    "Not dialling server {sid} for a queued message: its last dial failed {} ms ago",
                    ago.as_millis()
                );
            }
        }
        let me = Arc::clone(self);
        self.dials.submit(Box::new(move || connector::initiate_connection(&me, sid, &addrs)));
    }

    /// The handshake we send: V2 with every address only under `multiAddress.enabled`, else V1.
    pub(super) fn initial_message(&self) -> Vec<u8> {
        let version = if self.settings.multi_address { ProtocolVersion::V2 } else { ProtocolVersion::V1 };
        crate::wire::initial::encode(version, self.settings.my_sid, &self.settings.advertised_addrs)
    }

    /// `handleConnection`: the tie-break for an accepted connection whose handshake was read.
    pub(super) fn handle_connection(self: &Arc<Self>, stream: PeerStream, msg: InitialMessage) {
        let (sid, remote) = (msg.sid, stream.remote());
        log::debug!(
            "Received {:?} handshake from sid {sid} at {remote}, addresses {:?}",
            msg.version,
            msg.addrs.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        match self.table.accepted(sid, self.qv.members.contains_key(&sid)) {
            Accepted::Refused(OnAccepted::RefuseOwnId) => log::warn!(
                "We got a connection request from a server with our own ID. This should be either a configuration \
                 error, or a bug. (from {remote}, closing it)"
            ),
            Accepted::Refused(_) => {
                log::warn!("Refusing election connection from {remote}: server id {sid} is not in the configuration")
            }
            Accepted::Keep => self.start_workers(sid, stream),
            Accepted::KeepOurs(age) => {
                log::debug!("Keeping our {age:?}-old connection to {sid} instead of dialling back")
            }
            Accepted::DialBack(old) => {
                // A smaller id asked for a connection: drop ours (it may be stale) and dial back, using
                // our own configuration rather than the advertised address (ZK-2164).
                if let Some(old) = old {
                    old.stop(self.settings.my_sid);
                }
                drop(stream);
                log::debug!("Create new connection to server: {sid}");
                self.table.call_back_requested(sid);
                self.connect_one(sid);
            }
        }
    }

    /// A connection we dialled, after the handshake went out (`startConnection`).
    pub(super) fn dialled(self: &Arc<Self>, sid: i64, stream: PeerStream) {
        let my = self.settings.my_sid;
        match tie_break::on_dialled(my, sid) {
            tie_break::OnDialled::Close => {
                log::info!("Have smaller server identifier, so dropping the connection: (myId:{my} --> sid:{sid})");
            }
            tie_break::OnDialled::Keep => self.start_workers(sid, stream),
        }
    }

    /// Registers a new connection for `sid` (replacing any older one) and starts its workers.
    fn start_workers(self: &Arc<Self>, sid: i64, stream: PeerStream) {
        if let Err(e) = stream.set_read_timeout(None) {
            log::warn!("Cannot start workers for {sid}: {e}");
            return;
        }
        let conn = Arc::new(PeerConnection::new(sid, stream, self.table.send_queue(sid)));
        if !self.table.register(sid, Arc::clone(&conn)) {
            return;
        }
        if let Err(e) = workers::spawn_pair(self, &conn) {
            log::warn!("Cannot start worker threads for {sid}: {e}");
            conn.stop(self.settings.my_sid);
            self.table.ended(&conn, false);
        }
    }
}
