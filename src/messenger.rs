//! `FastLeaderElection.Messenger`: the `WorkerSender` and `WorkerReceiver` threads between the
//! election and `QuorumCnxManager`. They run for the life of the node, also while it follows or
//! leads, because the reply rules are how latecomers find the leader.

use crate::cnx::QuorumCnxManager;
use crate::config::{QuorumVerifier, parse_config_text};
use crate::election::{Notification, PeerView, ToSend, receive};
use crate::thread::ThreadGroup;
use crate::wire::notification::{self, Layout, NotificationError, ServerState, WireNotification};
use crossbeam_channel::Sender;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// What the election loop consumes: notifications, and connections that just came up.
#[derive(Debug, Clone)]
pub enum ElectionEvent {
    Notification(Notification),
    PeerConnected(i64),
    PeerDown(i64),
}

pub struct Messenger {
    sendqueue: Mutex<Option<Sender<ToSend>>>,
    stop: Arc<AtomicBool>,
    threads: ThreadGroup,
    pub stats: Arc<MessengerStats>,
}

#[derive(Default)]
pub struct MessengerStats {
    pub notifications_sent: AtomicU64,
    pub notifications_received: AtomicU64,
    pub malformed_dropped: AtomicU64,
    /// The last vote each peer sent us, and when (for `elec`).
    pub last_votes: Mutex<HashMap<i64, (LastVote, SystemTime)>>,
    /// LOOKING votes from voters that arrived while we were settled (and were answered as Java
    /// does), newest per peer. A follower whose leader just died often gets the others' new-round
    /// votes a moment before it notices itself; the next election starts with them instead of
    /// waiting for a resend.
    pub early_votes: Mutex<HashMap<i64, (Notification, Instant)>>,
}

impl MessengerStats {
    /// The early votes received within `window`, emptying the inbox.
    pub fn take_early_votes(&self, window: Duration) -> Vec<Notification> {
        let now = Instant::now();
        self.early_votes
            .lock()
            .drain()
            .filter(|(_, (_, t))| now.duration_since(*t) <= window)
            .map(|(_, (n, _))| n)
            .collect()
    }
}

/// A received vote as `elec` shows it.
#[derive(Debug, Clone, Copy)]
pub struct LastVote {
    pub state: Option<ServerState>,
    pub leader: i64,
    pub zxid: i64,
    pub election_epoch: i64,
    pub peer_epoch: i64,
}

impl Messenger {
    /// Starts both workers. `view` is the node's state as the reply rules need it; `election`
    /// receives what `lookForLeader` must see.
    pub fn start(
        manager: QuorumCnxManager,
        qv: Arc<QuorumVerifier>,
        view: Arc<Mutex<PeerView>>,
        election: Sender<ElectionEvent>,
    ) -> std::io::Result<Messenger> {
        let my = manager.my_sid();
        let (tx, rx) = crossbeam_channel::unbounded::<ToSend>();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(MessengerStats::default());
        let threads = ThreadGroup::new();
        let config: Arc<[u8]> = Arc::from(qv.config_text().into_bytes());

        let (m, st, cfg) = (manager.clone(), Arc::clone(&stats), Arc::clone(&config));
        threads.spawn(format!("WorkerSender[myid={my}]"), move || {
            // `WorkerSender.process`: always the 44+L version-2 layout with our committed config.
            for t in rx.iter() {
                let bytes = notification::encode(t.state, t.leader, t.zxid, t.election_epoch, t.peer_epoch, &cfg);
                st.notifications_sent.fetch_add(1, Ordering::Relaxed);
                m.to_send(t.sid, bytes);
            }
        })?;

        let (m, st, stop2, tx2) = (manager, Arc::clone(&stats), Arc::clone(&stop), tx.clone());
        threads.spawn(format!("WorkerReceiver[myid={my}]"), move || {
            let rx = ReceiverLoop {
                manager: m,
                qv,
                view,
                election,
                replies: tx2,
                stats: st,
                stop: stop2,
                own_config: config,
                seen: Mutex::new(HashMap::new()),
            };
            rx.run();
        })?;
        Ok(Messenger { sendqueue: Mutex::new(Some(tx)), stop, threads, stats })
    }

    /// Puts a notification on the send queue (never blocks).
    pub fn send(&self, t: ToSend) {
        if let Some(tx) = self.sendqueue.lock().as_ref() {
            let _ = tx.send(t);
        }
    }

    /// Stops both workers. The manager must be halted too (that releases the receiver's poll).
    pub fn halt(&self) {
        self.stop.store(true, Ordering::Release);
        self.sendqueue.lock().take();
        self.threads.join_all();
    }
}

/// A peer's last config text and the version parsed from it (`None` if it did not parse).
type SeenConfig = (Vec<u8>, Option<i64>);

struct ReceiverLoop {
    manager: QuorumCnxManager,
    qv: Arc<QuorumVerifier>,
    view: Arc<Mutex<PeerView>>,
    election: Sender<ElectionEvent>,
    replies: Sender<ToSend>,
    stats: Arc<MessengerStats>,
    stop: Arc<AtomicBool>,
    own_config: Arc<[u8]>,
    /// Last config text (and its parsed version) per peer.
    seen: Mutex<HashMap<i64, SeenConfig>>,
}

impl ReceiverLoop {
    /// The version of a received config text. Peers send the same text with every notification,
    /// almost always equal to ours, so it is parsed only when it differs from ours and from what
    /// the same peer sent last time (a 51-node election carries tens of thousands of them).
    fn config_version(&self, sid: i64, c: &[u8]) -> Option<i64> {
        if c == self.own_config.as_ref() {
            return Some(self.qv.version);
        }
        if let Some((bytes, v)) = self.seen.lock().get(&sid)
            && bytes.as_slice() == c
        {
            return *v;
        }
        let v = match parse_config_text(c) {
            Ok(qv) => {
                if qv.version > self.qv.version && !qv.same_membership(&self.qv) {
                    log::warn!(
                        "Server {sid} sent configuration version 0x{:x}, newer than ours (0x{:x}); zkelect does not reconfigure and keeps its own",
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
        self.seen.lock().insert(sid, (c.to_vec(), v));
        v
    }

    fn run(self) {
        while !self.stop.load(Ordering::Acquire) && !self.manager.is_halted() {
            let Some(msg) = self.manager.poll_recv_queue(Duration::from_millis(3000)) else {
                continue;
            };
            // One bad message is dropped with a log line; the loop never dies (ZK-3769).
            self.process(msg.sid, &msg.buffer);
        }
    }

    fn process(&self, sid: i64, buf: &[u8]) {
        let w = match notification::decode(buf) {
            Ok(w) => w,
            Err(e) => {
                self.stats.malformed_dropped.fetch_add(1, Ordering::Relaxed);
                match e {
                    NotificationError::Short(n) => {
                        log::error!("Got a short response from server {sid}: {n}")
                    }
                    NotificationError::Partial(n) => log::warn!(
                        "Skipping the processing of a partial / malformed response message sent by sid={sid} (message length: {n})"
                    ),
                    NotificationError::InvalidConfigLength(n) => {
                        log::warn!("Invalid configLength in notification message! sid={sid}, configLength={n}")
                    }
                }
                return;
            }
        };
        self.stats.notifications_received.fetch_add(1, Ordering::Relaxed);
        match w.layout {
            Layout::Bytes28 => {
                log::info!("Backward compatibility mode (28 bits), server id: {sid}")
            }
            Layout::Bytes40 => {
                log::info!("Backward compatibility mode (36 bits), server id: {sid}")
            }
            Layout::Versioned if w.version <= 1 => {
                log::info!("Backward compatibility mode (before reconfig), server id: {sid}")
            }
            Layout::Versioned => {}
        }
        let config_version = w.config.as_deref().and_then(|c| self.config_version(sid, c));
        let last = LastVote {
            state: ServerState::from_i32(w.state),
            leader: w.leader,
            zxid: w.zxid,
            election_epoch: w.election_epoch,
            peer_epoch: w.peer_epoch,
        };
        self.stats.last_votes.lock().insert(sid, (last, SystemTime::now()));
        let view = *self.view.lock();
        let receipt = receive(&view, &self.qv, sid, &w, config_version);
        if self.qv.is_voter(sid)
            && let Some(state) = ServerState::from_i32(w.state)
        {
            log_notification(&view, sid, state, &w, config_version);
        }
        if let Some(reply) = receipt.reply {
            let _ = self.replies.send(reply);
        }
        if let Some(n) = receipt.forward {
            let _ = self.election.send(ElectionEvent::Notification(n));
        } else if view.state != ServerState::Looking && w.state == ServerState::Looking as i32 && self.qv.is_voter(sid)
        {
            let n = Notification {
                version: w.version,
                leader: w.leader,
                zxid: w.zxid,
                election_epoch: w.election_epoch,
                state: ServerState::Looking,
                sid,
                peer_epoch: w.peer_epoch,
                config_version,
            };
            self.stats.early_votes.lock().insert(sid, (n, Instant::now()));
        }
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
