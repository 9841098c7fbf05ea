//! What the peer thread, the leader and the learner share, by concern: the configuration, the
//! election's messenger and transport, the published status ([`Published`]), the epochs
//! ([`Epochs`]), the session sockets and the stop signal.

use super::epochs::{ACCEPTED_EPOCH, CURRENT_EPOCH, EpochError, EpochFiles};
use super::lease::Leases;
use super::session::Sessions;
use crate::cnx::QuorumCnxManager;
use crate::config::{QuorumPeerConfig, QuorumVerifier};
use crate::election::{Decision, LatestVotes, ServerState, ToSend, Vote};
use crate::lease::LeaseState;
use crate::messenger::Messenger;
use crate::net::Security;
use crate::runtime::{Shutdown, Watch};
use crate::snapshot::{Milestone, NodeStatus, SessionPhase, StateChange};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Called with every change of state, leader or epoch (the node routes it to the hook).
pub type Announce = Box<dyn Fn(StateChange) + Send + Sync>;

pub struct PeerContext {
    pub cfg: Arc<QuorumPeerConfig>,
    pub qv: Arc<QuorumVerifier>,
    pub cnx: QuorumCnxManager,
    pub messenger: Arc<Messenger>,
    pub status: Published,
    pub epochs: Epochs,
    pub sessions: Sessions,
    pub shutdown: Shutdown,
    /// Quorum TLS on the quorum port.
    pub security: Security,
    pub leases: Arc<Leases>,
    /// The leader whose session just closed: absent for the next election's finalizeWait.
    departed_leader: Mutex<Option<i64>>,
}

impl PeerContext {
    #[allow(clippy::too_many_arguments)] // one of each concern, assembled once by the node
    pub fn new(
        cfg: Arc<QuorumPeerConfig>,
        cnx: QuorumCnxManager,
        messenger: Arc<Messenger>,
        status: Arc<Mutex<NodeStatus>>,
        files: EpochFiles,
        announce: Announce,
        shutdown: Shutdown,
        security: Security,
        leases: Arc<Leases>,
        lease_changes: Arc<Watch<()>>,
    ) -> PeerContext {
        PeerContext {
            qv: Arc::new(cfg.quorum_verifier.clone()),
            leases,
            cfg,
            cnx,
            messenger,
            epochs: Epochs { files, status: Arc::clone(&status) },
            status: Published { cell: status, announce, lease_changes },
            sessions: Sessions::new(shutdown.clone()),
            shutdown,
            security,
            departed_leader: Mutex::new(None),
        }
    }

    pub fn my_id(&self) -> i64 {
        self.cfg.my_id
    }

    pub fn is_stopping(&self) -> bool {
        self.shutdown.is_requested()
    }

    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.cfg.tick_time)
    }

    /// syncLimit ticks: how long a session may stay silent.
    pub fn sync_window(&self) -> Duration {
        self.tick() * self.cfg.sync_limit
    }

    /// initLimit ticks: how long the epoch agreement may take.
    pub fn init_window(&self) -> Duration {
        self.tick() * self.cfg.init_limit
    }

    /// Hands a notification to the `WorkerSender`.
    pub fn send(&self, t: ToSend) {
        self.messenger.send(t);
    }

    /// The latest vote received from each server.
    pub fn latest_votes(&self) -> LatestVotes {
        self.messenger.board().latest()
    }

    pub fn set_departed_leader(&self, sid: i64) {
        *self.departed_leader.lock() = Some(sid);
    }

    pub fn take_departed_leader(&self) -> Option<i64> {
        self.departed_leader.lock().take()
    }
}

/// The node's status as the rest of the node sees it. The peer layer is its only writer; every
/// change that operators and the hook care about is logged and announced here.
pub struct Published {
    cell: Arc<Mutex<NodeStatus>>,
    announce: Announce,
    /// Nudged on every change of the lease, renewals included (`zkelect run` follows it).
    lease_changes: Arc<Watch<()>>,
}

impl Published {
    pub fn get(&self) -> NodeStatus {
        self.cell.lock().clone()
    }

    pub fn state(&self) -> ServerState {
        self.cell.lock().state
    }

    pub fn current_vote(&self) -> Vote {
        self.cell.lock().current_vote
    }

    /// Enters `state`, without a session phase: "Peer state changed: looking".
    pub fn set_state(&self, state: ServerState) {
        {
            let mut st = self.cell.lock();
            st.state = state;
            st.phase = None;
            st.state_since = SystemTime::now();
            if state == ServerState::Looking {
                st.looking_count += 1;
            }
        }
        log::info!("Peer state changed: {}", state.lower());
        if state == ServerState::Looking {
            self.announce();
        }
    }

    /// A session reached `phase`: the milestone line, with the epoch as a fencing token, and an
    /// announcement once the leadership is established.
    pub fn set_phase(&self, phase: SessionPhase) {
        self.set_phase_and_lease(phase, None);
    }

    /// A leader reached broadcast with the lease of its agreement: both change under one lock, so
    /// the hook and `/watch` never see an established leader without its lease.
    pub fn set_phase_and_lease(&self, phase: SessionPhase, lease: Option<LeaseState>) {
        let (milestone, lease_change) = {
            let mut st = self.cell.lock();
            st.phase = Some(phase);
            let change = lease.map(|l| (std::mem::replace(&mut st.lease, l), l, st.my_id, st.current_epoch));
            (Milestone { state: st.state, phase, leader: st.current_vote.id, epoch: st.current_epoch }, change)
        };
        log::info!("{milestone}");
        if let Some((before, after, me, epoch)) = lease_change {
            log_lease_change(before, after, me, epoch);
            self.lease_changes.set(());
        }
        if phase.is_established() {
            self.announce();
        }
    }

    /// The election instance's proposal and round, as the reply rules and `elec` show them.
    pub fn publish_election(&self, proposal: Vote, logicalclock: i64) {
        let mut st = self.cell.lock();
        st.proposal = proposal;
        st.logicalclock = logicalclock;
    }

    /// An election ended in `d` after `ms`.
    pub fn decided(&self, d: &Decision, ms: u64) {
        let mut st = self.cell.lock();
        st.election_ended(d.vote.id, d.state, ms);
        if st.current_vote.id != d.vote.id || st.election.count == 1 {
            st.leader_changes += 1;
        }
        st.current_vote = d.vote;
    }

    /// `updateElectionVote`: after the session synced, our vote carries the new epoch, which is what
    /// latecomers' out-of-election checks compare.
    pub fn update_election_vote(&self, epoch: i64) {
        self.cell.lock().current_vote.peer_epoch = epoch;
    }

    /// The lease as it stands now; a change of kind is logged and announced.
    pub fn set_lease(&self, lease: LeaseState) {
        let (before, me, epoch) = {
            let mut st = self.cell.lock();
            let before = std::mem::replace(&mut st.lease, lease);
            (before, st.my_id, st.current_epoch)
        };
        if log_lease_change(before, lease, me, epoch) {
            self.announce();
        }
        self.lease_changes.set(());
    }

    pub fn set_synced_learners(&self, learners: Vec<i64>) {
        self.cell.lock().synced_learners = learners;
    }

    /// Tells the state-change hook where we stand (it ignores repeats).
    pub fn announce(&self) {
        let change = self.cell.lock().state_change();
        (self.announce)(change);
    }
}

/// Logs a change of the lease's kind (renewals are not changes); true if it changed.
fn log_lease_change(before: LeaseState, lease: LeaseState, me: i64, epoch: i64) -> bool {
    if before.same_kind(lease) {
        return false;
    }
    let now = crate::lease::Stamp::now();
    match lease {
        LeaseState::Waiting { until } => log::info!(
            "Lease: leader {me} of epoch {epoch} waits {} ms for earlier leases to end",
            until.since(now).as_millis()
        ),
        LeaseState::Active { until } => {
            log::info!(
                "Lease: leader {me} is active in epoch {epoch} (confirmed for {} ms)",
                until.since(now).as_millis()
            )
        }
        LeaseState::Inactive => log::info!("Lease: inactive (epoch {epoch})"),
    }
    true
}

/// The epochs: persisted (atomically) before they are published or acted on.
pub struct Epochs {
    files: EpochFiles,
    status: Arc<Mutex<NodeStatus>>,
}

impl Epochs {
    pub fn accepted(&self) -> i64 {
        self.status.lock().accepted_epoch
    }

    pub fn current(&self) -> i64 {
        self.status.lock().current_epoch
    }

    pub fn set_accepted(&self, e: i64) -> Result<(), EpochError> {
        self.files.write(ACCEPTED_EPOCH, e)?;
        self.status.lock().accepted_epoch = e;
        Ok(())
    }

    pub fn set_current(&self, e: i64) -> Result<(), EpochError> {
        self.files.write(CURRENT_EPOCH, e)?;
        self.status.lock().current_epoch = e;
        Ok(())
    }
}
