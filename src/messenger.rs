//! `FastLeaderElection.Messenger`: the `WorkerSender` and the `WorkerReceiver` between the
//! election and `QuorumCnxManager`. The receiver is a thread for the life of the node, also while
//! it follows or leads, because the reply rules are how latecomers find the leader. Every
//! received vote is kept on the [`VoteBoard`], which the peer sessions consult.
//!
//! The sender is no thread of its own: Java's `WorkerSender` only takes a notification off a
//! queue, encodes it and hands it to `toSend`, which here never blocks (a dial goes to the pool).
//! Encoding on the caller's thread and queueing straight for the peer's `SendWorker` saves a
//! thread wake-up per notification, tens of thousands in a 51-node launch.

use crate::cnx::QuorumCnxManager;
use crate::config::{QuorumVerifier, parse_config_text};
use crate::election::{LatestVotes, Notification, PeerView, ReplyThrottle, ServerState, ToSend, receive};
use crate::runtime::ThreadGroup;
use crate::wire::notification::{self, Layout, NotificationError, WireNotification};
use crossbeam_channel::Sender;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// What the election loop consumes: notifications, and connections that came up or went down.
#[derive(Debug, Clone)]
pub enum ElectionEvent {
    Notification(Notification),
    PeerConnected(i64),
    /// A connection broke; the peer may be back at once (a tie-break) or gone.
    PeerDisconnected(i64),
    /// A peer we were connected to cannot be reached.
    PeerDown(i64),
}

/// How the receiver learns the node's current view (state, votes, round) for its reply rules.
pub type ViewSource = Arc<dyn Fn() -> PeerView + Send + Sync>;

/// Notifications exchanged with one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerTraffic {
    pub sent: u64,
    pub received: u64,
}

/// A peer sending more than this many notifications within [`STORM_WINDOW`] is storming: an
/// election costs each peer a few dozen at most, even at 51 nodes.
pub const STORM_LIMIT: u64 = 500;
pub const STORM_WINDOW: Duration = Duration::from_secs(10);
/// At most one storm warning per peer this often.
const STORM_WARN_INTERVAL: Duration = Duration::from_secs(60);

/// The votes received from every server and the messenger's counters.
#[derive(Default)]
pub struct VoteBoard {
    /// The latest notification each server sent us, and when.
    latest: Mutex<HashMap<i64, (Notification, SystemTime)>>,
    /// LOOKING votes from voters that arrived while we were settled (and were answered as Java
    /// does), newest per peer. A follower whose leader just died often gets the others' new-round
    /// votes a moment before it notices itself; the next election starts with them instead of
    /// waiting for a resend.
    early: Mutex<HashMap<i64, (Notification, Instant)>>,
    /// Notifications sent to and received from each peer.
    traffic: Mutex<HashMap<i64, PeerTraffic>>,
    pub notifications_sent: AtomicU64,
    pub notifications_received: AtomicU64,
    pub malformed_dropped: AtomicU64,
    /// Replies the [`ReplyThrottle`] held back.
    pub replies_held_back: AtomicU64,
}

impl VoteBoard {
    /// The latest vote of each server.
    pub fn latest(&self) -> LatestVotes {
        self.latest.lock().iter().map(|(sid, (n, _))| (*sid, n.clone())).collect()
    }

    /// The latest vote of each server with the time it arrived (for `elec`).
    pub fn latest_with_times(&self) -> HashMap<i64, (Notification, SystemTime)> {
        self.latest.lock().clone()
    }

    /// The early votes received within `window`, emptying the inbox.
    pub fn take_early_votes(&self, window: Duration) -> Vec<Notification> {
        let now = Instant::now();
        self.early.lock().drain().filter(|(_, (_, t))| now.duration_since(*t) <= window).map(|(_, (n, _))| n).collect()
    }

    /// Notifications exchanged with each peer.
    pub fn traffic(&self) -> HashMap<i64, PeerTraffic> {
        self.traffic.lock().clone()
    }

    fn count_sent(&self, sid: i64) {
        self.notifications_sent.fetch_add(1, Ordering::Relaxed);
        self.traffic.lock().entry(sid).or_default().sent += 1;
    }

    fn count_received(&self, sid: i64) {
        self.notifications_received.fetch_add(1, Ordering::Relaxed);
        self.traffic.lock().entry(sid).or_default().received += 1;
    }

    fn record(&self, n: &Notification) {
        self.latest.lock().insert(n.sid, (n.clone(), SystemTime::now()));
    }

    fn record_early(&self, n: Notification) {
        self.early.lock().insert(n.sid, (n, Instant::now()));
    }
}

pub struct Messenger {
    sender: WorkerSender,
    threads: ThreadGroup,
    board: Arc<VoteBoard>,
}

impl Messenger {
    /// Starts the receiver. `view` is the node's state as the reply rules need it; `election`
    /// receives what `lookForLeader` must see; every received vote goes on `board`; a reply that
    /// repeats itself goes out at most once per `interval_ms` (the notification interval). The
    /// receiver ends when the transport halts.
    pub fn start(
        manager: QuorumCnxManager,
        qv: Arc<QuorumVerifier>,
        view: ViewSource,
        election: Sender<ElectionEvent>,
        board: Arc<VoteBoard>,
        interval_ms: u64,
    ) -> std::io::Result<Messenger> {
        let my = manager.my_sid();
        let threads = ThreadGroup::new();
        let config: Arc<[u8]> = Arc::from(qv.config_text().into_bytes());
        let sender = WorkerSender { manager: manager.clone(), board: Arc::clone(&board), config: Arc::clone(&config) };
        let receiver = ReceiverLoop {
            throttle: ReplyThrottle::new(interval_ms),
            manager,
            qv,
            view,
            election,
            replies: sender.clone(),
            board: Arc::clone(&board),
            own_config: config,
            seen: HashMap::new(),
            storms: HashMap::new(),
            started: Instant::now(),
        };
        threads.spawn(format!("WorkerReceiver[myid={my}]"), move || receiver.run())?;
        Ok(Messenger { sender, threads, board })
    }

    /// Sends a notification (never blocks).
    pub fn send(&self, t: ToSend) {
        self.sender.process(t);
    }

    pub fn board(&self) -> &Arc<VoteBoard> {
        &self.board
    }

    /// Waits for the receiver. The transport must be halted first: that ends its wait.
    pub fn halt(&self) {
        self.threads.join_all();
    }
}

/// `WorkerSender.process`: always the 44+L version-2 layout with our committed config.
#[derive(Clone)]
struct WorkerSender {
    manager: QuorumCnxManager,
    board: Arc<VoteBoard>,
    config: Arc<[u8]>,
}

impl WorkerSender {
    fn process(&self, t: ToSend) {
        let state = t.state.ordinal();
        let bytes = notification::encode(state, t.leader, t.zxid, t.election_epoch, t.peer_epoch, &self.config);
        self.board.count_sent(t.sid);
        self.manager.to_send(t.sid, bytes);
    }
}

/// A peer's last config text and the version parsed from it (`None` if it did not parse).
type SeenConfig = (Vec<u8>, Option<i64>);

/// Notifications received from one peer in the current storm window.
struct StormWatch {
    since: Instant,
    count: u64,
    warned: Option<Instant>,
}

impl StormWatch {
    fn new(now: Instant) -> StormWatch {
        StormWatch { since: now, count: 0, warned: None }
    }

    /// Counts one notification at `now`; `Some((count, elapsed))` when it is time to warn: more
    /// than [`STORM_LIMIT`] in the window, and no warning within [`STORM_WARN_INTERVAL`].
    fn count(&mut self, now: Instant) -> Option<(u64, Duration)> {
        if now.duration_since(self.since) >= STORM_WINDOW {
            self.since = now;
            self.count = 0;
        }
        self.count += 1;
        if self.count > STORM_LIMIT && self.warned.is_none_or(|t| now.duration_since(t) >= STORM_WARN_INTERVAL) {
            self.warned = Some(now);
            return Some((self.count, now.duration_since(self.since)));
        }
        None
    }
}

struct ReceiverLoop {
    throttle: ReplyThrottle,
    manager: QuorumCnxManager,
    qv: Arc<QuorumVerifier>,
    view: ViewSource,
    election: Sender<ElectionEvent>,
    replies: WorkerSender,
    board: Arc<VoteBoard>,
    own_config: Arc<[u8]>,
    /// Last config text (and its parsed version) per peer.
    seen: HashMap<i64, SeenConfig>,
    storms: HashMap<i64, StormWatch>,
    /// The throttle's clock starts here.
    started: Instant,
}

impl ReceiverLoop {
    /// Until the transport halts. One bad message is dropped with a log line; the loop never dies
    /// (ZK-3769).
    fn run(mut self) {
        while let Some(msg) = self.manager.recv() {
            self.process(msg.sid, &msg.buffer);
        }
    }

    /// The version of a received config text. Peers send the same text with every notification,
    /// almost always equal to ours, so it is parsed only when it differs from ours and from what
    /// the same peer sent last time (a 51-node election carries tens of thousands of them).
    fn config_version(&mut self, sid: i64, c: &[u8]) -> Option<i64> {
        if c == self.own_config.as_ref() {
            return Some(self.qv.version);
        }
        if let Some((bytes, v)) = self.seen.get(&sid)
            && bytes.as_slice() == c
        {
            return *v;
        }
        let v = match parse_config_text(c) {
            Ok(qv) => {
                if qv.version > self.qv.version && !qv.same_membership(&self.qv) {
                    log::warn!(
                        "Server {sid} sent configuration version 0x{:x}, newer than ours (0x{:x}); zkelect does not \
                         reconfigure and keeps its own",
                        qv.version,
                        self.qv.version
                    );
                }
                Some(qv.version)
            }
            Err(e) => {
                log::error!("Something went wrong while processing config received from {sid}: {e}");
                None
            }
        };
        self.seen.insert(sid, (c.to_vec(), v));
        v
    }

    fn process(&mut self, sid: i64, buf: &[u8]) {
        let w = match notification::decode(buf) {
            Ok(w) => w,
            Err(e) => {
                self.board.malformed_dropped.fetch_add(1, Ordering::Relaxed);
                log_malformed(sid, &e);
                return;
            }
        };
        self.board.count_received(sid);
        self.watch_storm(sid, &w);
        log_layout(sid, &w);
        let config_version = w.config.as_deref().and_then(|c| self.config_version(sid, c));
        let state = ServerState::from_i32(w.state);
        if let Some(state) = state {
            self.board.record(&notification_of(sid, state, &w, config_version));
        }
        let view = (self.view)();
        let receipt = receive(&view, &self.qv, sid, &w, config_version);
        if self.qv.is_voter(sid)
            && let Some(state) = state
        {
            log_notification(&view, sid, state, &w, config_version);
        }
        if let Some(reply) = receipt.reply {
            let now_ms = self.started.elapsed().as_millis() as u64;
            if self.throttle.admit(sid, &w, &reply, now_ms) {
                self.replies.process(reply);
            } else {
                self.board.replies_held_back.fetch_add(1, Ordering::Relaxed);
                log::debug!("Not answering server {sid} again: same notification, same answer as just now");
            }
        }
        if view.state != ServerState::Looking && state == Some(ServerState::Looking) && self.qv.is_voter(sid) {
            let n = notification_of(sid, ServerState::Looking, &w, config_version);
            self.board.record_early(n.clone());
            // The peer may have gone LOOKING and taken the early votes since `view` was read: then
            // this one would wait in the inbox until the next election, and the election would wait
            // finalizeWait for it. Looked at after recording, so one of the two always gets it (a
            // vote seen twice changes nothing).
            if (self.view)().state == ServerState::Looking {
                let _ = self.election.send(ElectionEvent::Notification(n));
            }
        }
        if let Some(n) = receipt.forward {
            let _ = self.election.send(ElectionEvent::Notification(n));
        }
    }
}

impl ReceiverLoop {
    /// Counts `sid`'s notifications per window and warns (once a minute at most) when it storms.
    fn watch_storm(&mut self, sid: i64, w: &WireNotification) {
        let now = Instant::now();
        if let Some((count, within)) = self.storms.entry(sid).or_insert_with(|| StormWatch::new(now)).count(now) {
            let state = ServerState::from_i32(w.state).map_or("an unknown state", ServerState::name);
            log::warn!(
                "Notification storm: server {sid} sent {count} notifications within {} ms (more than {STORM_LIMIT} in {} \
                 s); it is {state}, this node is {}",
                within.as_millis(),
                STORM_WINDOW.as_secs(),
                (self.view)().state
            );
        }
    }
}

fn notification_of(sid: i64, state: ServerState, w: &WireNotification, config_version: Option<i64>) -> Notification {
    Notification {
        version: w.version,
        leader: w.leader,
        zxid: w.zxid,
        election_epoch: w.election_epoch,
        state,
        sid,
        peer_epoch: w.peer_epoch,
        config_version,
    }
}

fn log_malformed(sid: i64, e: &NotificationError) {
    match e {
        NotificationError::Short(n) => log::error!("Got a short response from server {sid}: {n}"),
        NotificationError::Partial(n) => log::warn!(
            "Skipping the processing of a partial / malformed response message sent by sid={sid} (message length: {n})"
        ),
        NotificationError::InvalidConfigLength(n) => {
            log::warn!("Invalid configLength in notification message! sid={sid}, configLength={n}")
        }
    }
}

/// Java's "Backward compatibility mode" lines for older message layouts.
fn log_layout(sid: i64, w: &WireNotification) {
    match w.layout {
        Layout::Bytes28 => log::info!("Backward compatibility mode (28 bits), server id: {sid}"),
        Layout::Bytes40 => log::info!("Backward compatibility mode (36 bits), server id: {sid}"),
        Layout::Versioned if w.version <= 1 => {
            log::info!("Backward compatibility mode (before reconfig), server id: {sid}")
        }
        Layout::Versioned => {}
    }
}

/// `printNotification`, same fields and format as ZooKeeper's INFO line.
fn log_notification(view: &PeerView, sid: i64, state: ServerState, n: &WireNotification, config_version: Option<i64>) {
    log::info!(
        "Notification: my state:{}; n.sid:{}, n.state:{}, n.leader:{}, n.round:0x{:x}, n.peerEpoch:0x{:x}, n.zxid:0x{:x}, message format version:0x{:x}, n.config version:0x{:x}",
        view.state,
        sid,
        state,
        n.leader,
        n.election_epoch,
        n.peer_epoch,
        n.zxid,
        n.version,
        config_version.unwrap_or(0)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A warning once more than STORM_LIMIT arrive within a window; none for a peer just under it
    /// window after window; at most one per STORM_WARN_INTERVAL while a storm goes on.
    #[test]
    fn a_storm_is_warned_about_once_a_minute_and_a_busy_peer_never() {
        let t0 = Instant::now();
        let mut w = StormWatch::new(t0);
        let step = STORM_WINDOW / (STORM_LIMIT as u32 + 1);
        // Just under the limit in each of six windows.
        for i in 0..6 * STORM_LIMIT {
            let window = (i / STORM_LIMIT) as u32;
            assert_eq!(w.count(t0 + STORM_WINDOW * window + step * (i % STORM_LIMIT) as u32), None, "i={i}");
        }
        // A storm: 10 a millisecond for two minutes.
        let start = t0 + STORM_WINDOW * 6;
        let warnings: Vec<(Duration, u64)> = (0..1_200_000u32)
            .filter_map(|i| {
                let at = Duration::from_micros(100) * i;
                w.count(start + at).map(|(count, _)| (at, count))
            })
            .collect();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert_eq!(warnings[0], (Duration::from_micros(100) * STORM_LIMIT as u32, STORM_LIMIT + 1));
        assert!(warnings[1].0 - warnings[0].0 >= STORM_WARN_INTERVAL, "{warnings:?}");
    }
}
