//! The `QuorumPeer` thread: runs `lookForLeader` through the pure [`FastLeaderElection`] while
//! LOOKING, then the leader's or the learner's session, and back to LOOKING when it ends.

use super::context::PeerContext;
use super::{follower, leader};
use crate::election::{Action, Decision, FastLeaderElection, FleSettings, ServerState, Vote};
use crate::messenger::ElectionEvent;
use crossbeam_channel::{Receiver, select};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most queued events handled before the notifications they caused are sent.
const MAX_BATCH: usize = 256;

/// Test-only trigger: the next election instance panics (to show the panic policy).
#[cfg(test)]
pub static PANIC_IN_ELECTION: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The body of the `QuorumPeer[myid=N]` thread, until the node shuts down.
pub fn run(ctx: Arc<PeerContext>, events: Receiver<ElectionEvent>) {
    PeerLoop::new(ctx, events).run();
}

/// State owned by the peer thread.
struct PeerLoop {
    ctx: Arc<PeerContext>,
    fle: FastLeaderElection,
    events: Receiver<ElectionEvent>,
    actions: Vec<Action>,
}

impl PeerLoop {
    fn new(ctx: Arc<PeerContext>, events: Receiver<ElectionEvent>) -> PeerLoop {
        let settings = FleSettings {
            finalize_wait: 200,
            min_notification_interval: ctx.cfg.min_notification_interval_ms,
            max_notification_interval: ctx.cfg.max_notification_interval_ms,
        };
        let fle = FastLeaderElection::new(ctx.my_id(), Arc::clone(&ctx.qv), settings);
        PeerLoop { ctx, fle, events, actions: Vec::new() }
    }

    fn run(mut self) {
        let mut next = ServerState::Looking;
        loop {
            next = match next {
                ServerState::Looking => match self.look_for_leader() {
                    Some((d, ms)) => {
                        self.decided(d, ms);
                        d.state
                    }
                    None => break,
                },
                ServerState::Leading => {
                    leader::lead(&self.ctx);
                    if !self.back_to_looking() {
                        break;
                    }
                    ServerState::Looking
                }
                ServerState::Following | ServerState::Observing => {
                    follower::follow(&self.ctx, &self.events);
                    if !self.back_to_looking() {
                        break;
                    }
                    ServerState::Looking
                }
            };
        }
        self.fle.stop();
        log::info!("QuorumPeer {} exits", self.ctx.my_id());
    }

    /// The session ended: start a new election unless we are shutting down.
    fn back_to_looking(&mut self) -> bool {
        self.ctx.sessions.close_all();
        if self.ctx.is_stopping() {
            return false;
        }
        log::warn!("PeerState set to LOOKING");
        true
    }

    /// Carries out the election's actions and publishes its proposal and round.
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
                Action::Send(t) if last.get(&t.sid) == Some(&i) => self.ctx.send(t),
                Action::Send(_) => {}
                Action::ConnectAll => self.ctx.cnx.connect_all(),
            }
        }
        self.ctx.status.publish_election(self.fle.proposal(), self.fle.logicalclock());
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
            // The re-dial tells whether it is down.
            ElectionEvent::PeerDisconnected(_) => None,
        }
    }

    /// One election instance; `None` when the node is shutting down.
    fn look_for_leader(&mut self) -> Option<(Decision, u64)> {
        #[cfg(test)]
        if PANIC_IN_ELECTION.load(std::sync::atomic::Ordering::Acquire) {
            panic!("test-only trigger: the election thread panics");
        }
        log::info!("LOOKING");
        self.ctx.status.set_state(ServerState::Looking);
        let t0 = Instant::now();
        let mut deadline = Instant::now();
        let early = self.start_instance(&mut deadline);
        self.execute();
        let decision = match early {
            Some(d) => d,
            None => self.wait_for_decision(&mut deadline)?,
        };
        // leaveInstance: what is still queued belongs to the finished round.
        while self.events.try_recv().is_ok() {}
        // Measured from entering LOOKING to the decision (ZK-3479 reported 1 ms for 400 ms).
        Some((decision, t0.elapsed().as_millis() as u64))
    }

    /// Starts the instance: the peers known to be unreachable, our first notifications, and the
    /// votes peers sent for this election while we still followed the old leader.
    fn start_instance(&mut self, deadline: &mut Instant) -> Option<Decision> {
        let mut absent = self.ctx.cnx.down_peers();
        absent.extend(self.ctx.take_departed_leader());
        self.fle.set_absent(absent);
        let steer = self.ctx.leases.take_steer();
        self.fle.start_steered(0, self.ctx.epochs.current(), steer, &mut self.actions);
        *deadline = Instant::now() + Duration::from_millis(self.fle.wait_ms());
        let mut decided = None;
        for n in self.ctx.messenger.board().take_early_votes(self.ctx.sync_window()) {
            decided = decided.or(self.on_event(ElectionEvent::Notification(n), deadline));
        }
        decided
    }

    fn wait_for_decision(&mut self, deadline: &mut Instant) -> Option<Decision> {
        loop {
            let decided = select! {
                recv(self.events) -> ev => {
                    let ev = ev.ok()?;
                    // Take what else is already queued too, and send once for the whole batch: a
                    // burst of better votes then costs one notification per peer, not one per vote
                    // (only the newest proposal matters to a peer).
                    let mut d = self.on_event(ev, deadline);
                    let mut batch = 1;
                    while d.is_none() && batch < MAX_BATCH {
                        let Ok(next) = self.events.try_recv() else { break };
                        d = self.on_event(next, deadline);
                        batch += 1;
                    }
                    d
                },
                recv(self.ctx.shutdown.receiver()) -> _ => return None,
                default(deadline.saturating_duration_since(Instant::now())) => {
                    let d = self.fle.on_timeout(self.ctx.cnx.have_delivered(), &mut self.actions);
                    *deadline = Instant::now() + Duration::from_millis(self.fle.wait_ms());
                    d
                },
            };
            self.execute();
            if decided.is_some() {
                return decided;
            }
        }
    }

    fn decided(&mut self, d: Decision, ms: u64) {
        let status = &self.ctx.status;
        status.decided(&d, ms);
        status.set_state(d.state);
        let Vote { id, election_epoch, peer_epoch, .. } = d.vote;
        log::info!("{}", d.state);
        log::info!("{} - LEADER ELECTION TOOK - {ms} MS", d.state);
        log::info!(
            "Decided: {} leader {id} (round 0x{election_epoch:x}, peerEpoch {peer_epoch}, current epoch {})",
            d.state,
            self.ctx.epochs.current()
        );
    }
}
