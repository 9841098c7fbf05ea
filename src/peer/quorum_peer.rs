//! The `QuorumPeer` thread: runs `lookForLeader` through the pure [`FastLeaderElection`] while
//! LOOKING, then holds the decided state.

use super::epochs::EpochFiles;
use crate::admin::hook::HookEvent;
use crate::admin::{AdminServer, StateHook, fourlw, metrics};
use crate::cnx::{CnxSettings, QuorumCnxManager};
use crate::config::{QuorumPeerConfig, QuorumVerifier};
use crate::election::{Action, Decision, FastLeaderElection, FleSettings, PeerView, Vote};
use crate::messenger::{ElectionEvent, Messenger};
use crate::thread::ThreadGroup;
use crate::wire::notification::ServerState;
use crossbeam_channel::{Receiver, Sender, select};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Election timing figures (`election_time` in `mntr`), in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct ElectionStats {
    pub count: u64,
    pub sum_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
    pub last_ms: u64,
}

impl ElectionStats {
    fn add(&mut self, ms: u64) {
        self.min_ms = if self.count == 0 { ms } else { self.min_ms.min(ms) };
        self.max_ms = self.max_ms.max(ms);
        self.count += 1;
        self.sum_ms += ms;
        self.last_ms = ms;
    }
}

/// A snapshot of the node for the four-letter words, metrics and tests.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    pub my_id: i64,
    pub state: ServerState,
    /// `discovery`, `synchronization` or `broadcast` once a session runs.
    pub phase: Option<&'static str>,
    pub current_vote: Vote,
    pub current_epoch: i64,
    pub accepted_epoch: i64,
    pub logicalclock: i64,
    pub proposal: Vote,
    pub election: ElectionStats,
    /// Times the node entered LOOKING.
    pub looking_count: u64,
    pub leader_changes: u64,
    /// Learners a leader heard from within syncLimit ticks.
    pub synced_learners: Vec<i64>,
    pub state_since: SystemTime,
    pub started: SystemTime,
}

impl PeerStatus {
    /// The leader we follow or are, when not LOOKING.
    pub fn leader(&self) -> Option<i64> {
        (self.state != ServerState::Looking).then_some(self.current_vote.id)
    }
}

/// What the peer thread, the leader and the learner share.
pub(super) struct Shared {
    pub cfg: QuorumPeerConfig,
    pub qv: Arc<QuorumVerifier>,
    pub manager: QuorumCnxManager,
    messenger: Messenger,
    view: Arc<Mutex<PeerView>>,
    pub status: Mutex<PeerStatus>,
    epochs: EpochFiles,
    stop_tx: Mutex<Option<Sender<()>>>,
    /// Closed (disconnected) when the node shuts down: `recv_timeout` on it is an interruptible sleep.
    pub stop_rx: Receiver<()>,
    /// Session sockets of the running leader or learner, shut down by `shutdown()` to unblock reads.
    pub sessions: Mutex<Vec<std::net::TcpStream>>,
    hook: Option<StateHook>,
    /// The leader whose session just closed: absent for the next election's finalizeWait.
    gone: Mutex<Option<i64>>,
}

impl Shared {
    fn snapshot(&self) -> Snapshot {
        use std::sync::atomic::Ordering::Relaxed;
        let st = &self.messenger.stats;
        Snapshot {
            status: self.status.lock().clone(),
            peers: self.manager.peer_status(),
            last_votes: st.last_votes.lock().clone(),
            notifications_sent: st.notifications_sent.load(Relaxed),
            notifications_received: st.notifications_received.load(Relaxed),
            malformed_dropped: st.malformed_dropped.load(Relaxed),
        }
    }

    pub fn my_id(&self) -> i64 {
        self.cfg.my_id
    }

    pub fn is_stopping(&self) -> bool {
        self.stop_tx.lock().is_none()
    }

    /// Sleeps `d`; false (at once) when the node is shutting down.
    pub fn pause(&self, d: Duration) -> bool {
        matches!(self.stop_rx.recv_timeout(d), Err(crossbeam_channel::RecvTimeoutError::Timeout))
    }

    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.cfg.tick_time)
    }

    /// "Peer state changed: leading - broadcast", with the epoch as a fencing token.
    pub fn set_phase(&self, phase: &'static str) {
        let mut st = self.status.lock();
        st.phase = Some(phase);
        let (state, leader, epoch) = (st.state, st.current_vote.id, st.current_epoch);
        drop(st);
        log::info!("Peer state changed: {} - {phase} (leader {leader}, epoch {epoch})", state.lower());
        if phase == "broadcast" {
            self.announce();
        }
    }

    /// Tells the state-change hook where we stand: LOOKING, or established in a role with the
    /// leader and the epoch (the fencing token).
    pub fn announce(&self) {
        let Some(hook) = &self.hook else { return };
        let st = self.status.lock();
        let ev = HookEvent { state: st.state.lower(), leader: st.leader().unwrap_or(-1), epoch: st.current_epoch };
        drop(st);
        hook.notify(ev);
    }

    pub fn accepted_epoch(&self) -> i64 {
        self.status.lock().accepted_epoch
    }

    pub fn current_epoch(&self) -> i64 {
        self.status.lock().current_epoch
    }

    /// Persists acceptedEpoch (atomically) before it is acted on.
    pub fn set_accepted_epoch(&self, e: i64) -> Result<(), String> {
        self.epochs.write(super::epochs::ACCEPTED_EPOCH, e)?;
        self.status.lock().accepted_epoch = e;
        Ok(())
    }

    pub fn set_current_epoch(&self, e: i64) -> Result<(), String> {
        self.epochs.write(super::epochs::CURRENT_EPOCH, e)?;
        self.status.lock().current_epoch = e;
        Ok(())
    }

    /// `updateElectionVote`: after the session synced, our vote carries the new epoch, which is what
    /// latecomers' out-of-election checks compare.
    pub fn update_election_vote(&self, epoch: i64) {
        self.view.lock().current_vote.peer_epoch = epoch;
        self.status.lock().current_vote.peer_epoch = epoch;
    }

    pub fn leader_gone(&self, sid: i64) {
        *self.gone.lock() = Some(sid);
    }

    /// Why `leader` will not lead the round we decided in, going by its own latest notification:
    /// it proposes or follows another server in that round or a later one. Within a round a vote
    /// only ever moves up the total order, so such a leader cannot come back to itself; waiting
    /// initLimit ticks for its quorum port (ZooKeeper's way after a same-round disagreement) is
    /// time lost.
    pub fn leader_moved_on(&self, leader: i64, round: i64) -> Option<String> {
        let v = self.last_vote(leader)?;
        (v.election_epoch >= round && v.leader != leader).then(|| {
            let state = v.state.map_or_else(|| "?".to_string(), |s| s.to_string());
            format!("leader {leader} is {state} for {} in round 0x{:x}", v.leader, v.election_epoch)
        })
    }

    /// Whether `leader`'s own latest notification says it is LEADING.
    pub fn leader_known_leading(&self, leader: i64) -> bool {
        self.last_vote(leader).is_some_and(|v| v.leader == leader && v.state == Some(ServerState::Leading))
    }

    /// The latest notification `sid` sent us.
    fn last_vote(&self, sid: i64) -> Option<crate::messenger::LastVote> {
        self.messenger.stats.last_votes.lock().get(&sid).map(|(v, _)| *v)
    }

    /// Voters whose latest notification says they settled on another leader in `round` or later:
    /// they will not join us unless that leader fails first.
    pub fn settled_elsewhere(&self, round: i64) -> Vec<i64> {
        let me = self.my_id();
        let votes = self.messenger.stats.last_votes.lock();
        let mut sids: Vec<i64> = votes
            .iter()
            .filter(|(sid, (v, _))| {
                self.qv.is_voter(**sid)
                    && v.leader != me
                    && v.election_epoch >= round
                    && matches!(v.state, Some(ServerState::Following | ServerState::Leading))
            })
            .map(|(sid, _)| *sid)
            .collect();
        sids.sort_unstable();
        sids
    }

    /// Hands a notification to the `WorkerSender`.
    pub fn send(&self, t: crate::election::ToSend) {
        self.messenger.send(t);
    }

    pub fn set_confirming(&self, on: bool) {
        self.view.lock().confirming = on;
    }

    pub fn register_session(&self, s: &std::net::TcpStream) {
        if let Ok(c) = s.try_clone() {
            self.sessions.lock().push(c);
        }
        if self.is_stopping() {
            self.close_sessions();
        }
    }

    pub fn close_sessions(&self) {
        for s in self.sessions.lock().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Everything the four-letter words and the metrics show, taken at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: PeerStatus,
    pub peers: std::collections::HashMap<i64, crate::cnx::PeerCnxStatus>,
    pub last_votes: std::collections::HashMap<i64, (crate::messenger::LastVote, SystemTime)>,
    pub notifications_sent: u64,
    pub notifications_received: u64,
    pub malformed_dropped: u64,
}

/// A running node. Dropping it does not stop it; call [`shutdown`](Self::shutdown).
pub struct QuorumPeer {
    shared: Arc<Shared>,
    threads: ThreadGroup,
    /// Four-letter words and metrics.
    admin: Vec<AdminServer>,
}

impl QuorumPeer {
    /// Loads the epochs, starts the election transport, the messenger and the peer thread.
    pub fn start(cfg: QuorumPeerConfig) -> Result<QuorumPeer, String> {
        let epochs = EpochFiles::new(&cfg.data_dir);
        let (current_epoch, accepted_epoch) = epochs.load()?;
        let qv = Arc::new(cfg.quorum_verifier.clone());
        let manager = QuorumCnxManager::new(CnxSettings::from_config(&cfg), Arc::clone(&qv));
        log::info!("Using {}ms as the quorum cnxn socket timeout", cfg.socket_timeout_ms());
        let my = cfg.my_id;
        // zkelect has no transactions: the last zxid is always 0.
        let initial = Vote {
            version: 0,
            id: my,
            zxid: 0,
            election_epoch: -1,
            peer_epoch: current_epoch,
            state: ServerState::Looking,
        };
        let view = Arc::new(Mutex::new(PeerView {
            my_id: my,
            state: ServerState::Looking,
            current_vote: initial,
            logicalclock: 0,
            proposal: initial,
            confirming: false,
        }));
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        {
            let (v, tx) = (Arc::clone(&view), events_tx.clone());
            manager.set_on_connected(move |sid| {
                if v.lock().state == ServerState::Looking {
                    let _ = tx.send(ElectionEvent::PeerConnected(sid));
                }
            });
            let (v, tx) = (Arc::clone(&view), events_tx.clone());
            manager.set_on_peer_down(move |sid| {
                if v.lock().state == ServerState::Looking {
                    let _ = tx.send(ElectionEvent::PeerDown(sid));
                }
            });
        }
        let messenger = Messenger::start(manager.clone(), Arc::clone(&qv), Arc::clone(&view), events_tx)
            .map_err(|e| format!("cannot start the messenger: {e}"))?;
        manager.start().map_err(|e| format!("cannot start the election listener: {e}"))?;
        let now = SystemTime::now();
        let status = PeerStatus {
            my_id: my,
            state: ServerState::Looking,
            phase: None,
            current_vote: initial,
            current_epoch,
            accepted_epoch,
            logicalclock: 0,
            proposal: initial,
            election: ElectionStats::default(),
            looking_count: 0,
            leader_changes: 0,
            synced_learners: Vec::new(),
            state_since: now,
            started: now,
        };
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(0);
        let hook = match &cfg.on_state_change {
            Some(p) => Some(
                StateHook::start(p.clone(), my, Duration::from_millis(cfg.on_state_change_timeout_ms))
                    .map_err(|e| format!("cannot start the state-change hook thread: {e}"))?,
            ),
            None => None,
        };
        let shared = Arc::new(Shared {
            cfg,
            qv,
            manager,
            messenger,
            view,
            status: Mutex::new(status),
            epochs,
            stop_tx: Mutex::new(Some(stop_tx)),
            stop_rx,
            sessions: Mutex::new(Vec::new()),
            hook,
            gone: Mutex::new(None),
        });
        let mut peer = QuorumPeer { shared, threads: ThreadGroup::new(), admin: Vec::new() };
        // The admin ports are bound before the peer thread starts: if one is taken, the node stops
        // before any state change could have started the hook (whose runs a shutdown waits for).
        let cfg = Arc::new(peer.shared.cfg.clone());
        let source: Arc<dyn Fn() -> Snapshot + Send + Sync> = Arc::new(peer.snapshot_source());
        for started in [fourlw::start(Arc::clone(&cfg), Arc::clone(&source)), metrics::start(cfg, source)] {
            match started {
                Ok(Some(server)) => peer.admin.push(server),
                Ok(None) => {}
                Err(e) => {
                    peer.shutdown();
                    return Err(e);
                }
            }
        }
        let s2 = Arc::clone(&peer.shared);
        if let Err(e) = peer.threads.spawn(format!("QuorumPeer[myid={my}]"), move || PeerLoop::new(s2, events_rx).run())
        {
            peer.shutdown();
            return Err(format!("cannot start the peer thread: {e}"));
        }
        Ok(peer)
    }

    pub fn status(&self) -> PeerStatus {
        self.shared.status.lock().clone()
    }

    pub fn snapshot(&self) -> Snapshot {
        self.shared.snapshot()
    }

    /// A cheap handle that takes snapshots from another thread.
    pub fn snapshot_source(&self) -> impl Fn() -> Snapshot + Send + Sync + 'static {
        let s = Arc::clone(&self.shared);
        move || s.snapshot()
    }

    pub fn manager(&self) -> &QuorumCnxManager {
        &self.shared.manager
    }

    pub fn config(&self) -> &QuorumPeerConfig {
        &self.shared.cfg
    }

    pub fn notifications_sent(&self) -> u64 {
        self.shared.messenger.stats.notifications_sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Called when the election listener gives up binding.
    pub fn set_on_listener_failure(&self, f: impl Fn() + Send + Sync + 'static) {
        self.shared.manager.set_on_listener_failure(f);
    }

    /// Stops every thread of the node and waits for them.
    pub fn shutdown(&self) {
        self.shared.stop_tx.lock().take();
        self.shared.close_sessions();
        for a in &self.admin {
            a.shutdown();
        }
        self.threads.join_all();
        self.shared.manager.halt();
        self.shared.messenger.halt();
        if let Some(h) = &self.shared.hook {
            h.shutdown();
        }
    }
}

/// State owned by the peer thread.
struct PeerLoop {
    s: Arc<Shared>,
    fle: FastLeaderElection,
    events: Receiver<ElectionEvent>,
    actions: Vec<Action>,
}

impl PeerLoop {
    fn new(s: Arc<Shared>, events: Receiver<ElectionEvent>) -> PeerLoop {
        let settings = FleSettings {
            finalize_wait: 200,
            min_notification_interval: s.cfg.min_notification_interval_ms,
            max_notification_interval: s.cfg.max_notification_interval_ms,
        };
        let fle = FastLeaderElection::new(s.cfg.my_id, Arc::clone(&s.qv), settings);
        PeerLoop { s, fle, events, actions: Vec::new() }
    }

    fn run(mut self) {
        loop {
            let state = self.s.status.lock().state;
            let keep_going = match state {
                ServerState::Looking => match self.look_for_leader() {
                    Some((d, ms)) => {
                        self.decided(d, ms);
                        true
                    }
                    None => false,
                },
                ServerState::Leading => {
                    super::leader::lead(&self.s);
                    self.back_to_looking()
                }
                ServerState::Following | ServerState::Observing => {
                    super::follower::follow(&self.s, &self.events);
                    self.back_to_looking()
                }
            };
            if !keep_going {
                break;
            }
        }
        self.fle.stop();
        log::info!("QuorumPeer {} exits", self.s.cfg.my_id);
    }

    /// The session ended: start a new election unless we are shutting down.
    fn back_to_looking(&mut self) -> bool {
        self.s.close_sessions();
        if self.s.is_stopping() {
            return false;
        }
        log::warn!("PeerState set to LOOKING");
        self.s.view.lock().state = ServerState::Looking;
        let mut st = self.s.status.lock();
        st.state = ServerState::Looking;
        st.phase = None;
        true
    }

    fn set_state(&self, state: ServerState) {
        self.s.view.lock().state = state;
        let mut st = self.s.status.lock();
        st.state = state;
        st.phase = None;
        st.state_since = SystemTime::now();
        if state == ServerState::Looking {
            st.looking_count += 1;
        }
        drop(st);
        log::info!("Peer state changed: {}", state.lower());
        if state == ServerState::Looking {
            self.s.announce();
        }
    }

    fn execute(&mut self) {
        // Of several notifications for one peer only the last (newest proposal) is sent.
        let mut last: HashMap<i64, usize> = HashMap::new();
        for (i, a) in self.actions.iter().enumerate() {
            if let Action::Send(t) = a {
                last.insert(t.sid, i);
            }
        }
        for (i, a) in self.actions.drain(..).enumerate() {
            match a {
                Action::Send(t) if last.get(&t.sid) == Some(&i) => self.s.messenger.send(t),
                Action::Send(_) => {}
                Action::ConnectAll => self.s.manager.connect_all(),
            }
        }
        let (p, lc) = (self.fle.proposal(), self.fle.logicalclock());
        {
            let mut v = self.s.view.lock();
            v.proposal = p;
            v.logicalclock = lc;
        }
        let mut st = self.s.status.lock();
        st.proposal = p;
        st.logicalclock = lc;
    }

    fn on_event(&mut self, ev: ElectionEvent, deadline: &mut Instant) -> Option<Decision> {
        match ev {
            ElectionEvent::Notification(n) => {
                let was_finalizing = self.fle.is_finalizing();
                let d = self.fle.on_notification(&n, &mut self.actions);
                // Java's poll restarts finalizeWait with every notification, so a busy ensemble
                // (N = 51) can stretch it for seconds; here it is one window from the moment a
                // quorum agreed.
                if !(was_finalizing && self.fle.is_finalizing()) {
                    *deadline = Instant::now() + Duration::from_millis(self.fle.wait_ms());
                }
                d
            }
            ElectionEvent::PeerConnected(sid) => {
                self.fle.on_peer_connected(sid, &mut self.actions);
                None
            }
            ElectionEvent::PeerDown(sid) => self.fle.on_peer_down(sid),
        }
    }

    /// One election instance; `None` when the node is shutting down.
    fn look_for_leader(&mut self) -> Option<(Decision, u64)> {
        log::info!("LOOKING");
        self.set_state(ServerState::Looking);
        let t0 = Instant::now();
        let epoch = self.s.status.lock().current_epoch;
        let mut absent = self.s.manager.down_peers();
        absent.extend(self.s.gone.lock().take());
        self.fle.set_absent(absent);
        self.fle.start(0, epoch, &mut self.actions);
        let mut deadline = Instant::now() + Duration::from_millis(self.fle.wait_ms());
        // Votes that peers sent for this election while we still followed the old leader.
        let window = self.s.tick() * self.s.cfg.sync_limit;
        let mut early = None;
        for n in self.s.messenger.stats.take_early_votes(window) {
            early = early.or(self.on_event(ElectionEvent::Notification(n), &mut deadline));
        }
        self.execute();
        let decision = if let Some(d) = early {
            d
        } else {
            loop {
                let decided = select! {
                    recv(self.events) -> ev => match ev {
                        Ok(ev) => {
                            // Take what else is already queued too, and send once for the whole batch:
                            // a burst of better votes then costs one notification per peer, not one
                            // per vote (only the newest proposal matters to a peer).
                            let mut d = self.on_event(ev, &mut deadline);
                            let mut batch = 1;
                            while d.is_none() && batch < 256 {
                                let Ok(next) = self.events.try_recv() else { break };
                                d = self.on_event(next, &mut deadline);
                                batch += 1;
                            }
                            d
                        }
                        Err(_) => return None,
                    },
                    recv(self.s.stop_rx) -> _ => return None,
                    default(deadline.saturating_duration_since(Instant::now())) => {
                        let d = self.fle.on_timeout(self.s.manager.have_delivered(), &mut self.actions);
                        deadline = Instant::now() + Duration::from_millis(self.fle.wait_ms());
                        d
                    }
                };
                self.execute();
                if let Some(d) = decided {
                    break d;
                }
            }
        };
        // leaveInstance: what is still queued belongs to the finished round.
        while self.events.try_recv().is_ok() {}
        // Measured from entering LOOKING to the decision (ZK-3479 reported 1 ms for 400 ms).
        let ms = t0.elapsed().as_millis() as u64;
        self.s.status.lock().election.add(ms);
        Some((decision, ms))
    }

    fn decided(&mut self, d: Decision, ms: u64) {
        let previous = self.s.status.lock().current_vote.id;
        {
            let mut v = self.s.view.lock();
            v.current_vote = d.vote;
        }
        {
            let mut st = self.s.status.lock();
            st.current_vote = d.vote;
            if previous != d.vote.id || st.election.count == 1 {
                st.leader_changes += 1;
            }
        }
        self.set_state(d.state);
        log::info!("{}", d.state);
        log::info!("{} - LEADER ELECTION TOOK - {ms} MS", d.state);
        log::info!(
            "Decided: {} leader {} (round 0x{:x}, peerEpoch {}, current epoch {})",
            d.state,
            d.vote.id,
            d.vote.election_epoch,
            d.vote.peer_epoch,
            self.s.status.lock().current_epoch
        );
    }
}
