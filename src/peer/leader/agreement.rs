//! The leader's epoch agreement with a quorum (Zab's discovery and synchronisation, without
//! data) as a small state machine: collect accepted epochs → choose the epoch → a quorum of
//! ACKEPOCH → a quorum of ACK → established. The leader counts in every quorum.

use super::learners::Learner;
use crate::config::QuorumVerifier;
use crate::lease::{LastLeader, LeaderLease, Stamp};
use crate::peer::Error;
use crate::peer::context::{Epochs, Published};
use crate::snapshot::SessionPhase;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Learners report their accepted epochs; the epoch is chosen once a quorum has.
    CollectingEpochs,
    /// LEADERINFO goes out; waiting for a quorum of ACKEPOCH.
    AwaitingAckEpoch {
        epoch: i64,
    },
    /// NEWLEADER goes out; waiting for a quorum of ACK.
    AwaitingAck {
        epoch: i64,
    },
    Established {
        epoch: i64,
    },
}

/// The two request/answer steps every learner goes through once the epoch is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// LEADERINFO, answered by ACKEPOCH.
    AckEpoch,
    /// NEWLEADER, answered by ACK.
    Ack,
}

pub struct Agreement {
    stage: Stage,
    /// Set when persisting an epoch failed: the leadership ends.
    pub failure: Option<Error>,
    /// Voters' accepted epochs from their hellos (ourselves included).
    connecting: HashMap<i64, i64>,
    /// Voters that answered each step (ourselves included).
    ack_epoch: BTreeSet<i64>,
    ack: BTreeSet<i64>,
    /// Every learner connection, from accept to the end of its session.
    pub learners: HashMap<u64, Learner>,
    /// Refused ZooKeeper learners: when each was last logged, and attempts since.
    pub zab_refusals: HashMap<i64, (Option<Instant>, u64)>,
    /// When each voter last heard from a leader, from its hello (for the lease's wait).
    pub reports: HashMap<i64, LastLeader>,
    /// Each voter's ACK of NEWLEADER: when NEWLEADER was sent (the lease's first confirmation).
    pub confirmations: HashMap<i64, Stamp>,
    /// The lease, once established.
    pub lease: Option<LeaderLease>,
}

impl Agreement {
    pub fn new() -> Agreement {
        Agreement {
            stage: Stage::CollectingEpochs,
            failure: None,
            connecting: HashMap::new(),
            ack_epoch: BTreeSet::new(),
            ack: BTreeSet::new(),
            learners: HashMap::new(),
            zab_refusals: HashMap::new(),
            reports: HashMap::new(),
            confirmations: HashMap::new(),
            lease: None,
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The epoch, once chosen.
    pub fn epoch(&self) -> Option<i64> {
        match self.stage {
            Stage::CollectingEpochs => None,
            Stage::AwaitingAckEpoch { epoch } | Stage::AwaitingAck { epoch } | Stage::Established { epoch } => {
                Some(epoch)
            }
        }
    }

    /// Whether a quorum has answered `step` (and the agreement moved past it).
    pub fn passed(&self, step: Step) -> bool {
        matches!(
            (step, self.stage),
            (Step::AckEpoch, Stage::AwaitingAck { .. } | Stage::Established { .. })
                | (Step::Ack, Stage::Established { .. })
        )
    }

    /// The sids the agreement has heard from in its current stage (for the failure message).
    pub fn heard_from(&self) -> Vec<i64> {
        match self.stage {
            Stage::CollectingEpochs => {
                let mut v: Vec<i64> = self.connecting.keys().copied().collect();
                v.sort_unstable();
                v
            }
            Stage::AwaitingAckEpoch { .. } => self.ack_epoch.iter().copied().collect(),
            _ => self.ack.iter().copied().collect(),
        }
    }

    /// A voter (or the leader itself) reported its accepted epoch.
    pub fn joined(&mut self, sid: i64, accepted_epoch: i64) {
        if self.stage == Stage::CollectingEpochs {
            self.connecting.insert(sid, accepted_epoch);
        }
    }

    /// A voter acknowledged NEWLEADER, which was sent at `sent`: a confirmation of the lease.
    pub fn confirmed(&mut self, sid: i64, sent: Stamp) {
        match &mut self.lease {
            Some(lease) => lease.confirm(sid, sent),
            None => {
                self.confirmations.insert(sid, sent);
            }
        }
    }

    /// A voter answered `step`.
    pub fn answered(&mut self, step: Step, sid: i64) {
        match step {
            Step::AckEpoch => self.ack_epoch.insert(sid),
            Step::Ack => self.ack.insert(sid),
        };
    }

    /// Moves forward as far as the answers allow; true if the stage changed. The epoch is
    /// persisted before it is published: the learners waiting for it wait on this step anyway.
    pub fn advance(&mut self, qv: &QuorumVerifier, me: i64, epochs: &Epochs, status: &Published) -> bool {
        let before = self.stage;
        while let Some(next) = self.next_stage(qv, me) {
            if let Err(e) = self.enter(next, me, epochs, status) {
                self.failure = Some(e);
                break;
            }
        }
        self.stage != before
    }

    fn next_stage(&self, qv: &QuorumVerifier, me: i64) -> Option<Stage> {
        match self.stage {
            Stage::CollectingEpochs if qv.contains_quorum(self.connecting.keys().copied()) => {
                // One more than every accepted epoch of a quorum: strictly above any epoch a quorum agreed to.
                let epoch = self.connecting.values().copied().max().unwrap_or(0) + 1;
                Some(Stage::AwaitingAckEpoch { epoch })
            }
            Stage::AwaitingAckEpoch { epoch } if qv.contains_quorum(self.with(me, &self.ack_epoch)) => {
                Some(Stage::AwaitingAck { epoch })
            }
            Stage::AwaitingAck { epoch } if qv.contains_quorum(self.with(me, &self.ack)) => {
                Some(Stage::Established { epoch })
            }
            _ => None,
        }
    }

    fn with(&self, me: i64, set: &BTreeSet<i64>) -> impl Iterator<Item = i64> {
        let mut all = set.clone();
        all.insert(me);
        all.into_iter()
    }

    fn enter(&mut self, next: Stage, me: i64, epochs: &Epochs, status: &Published) -> Result<(), Error> {
        match next {
            Stage::AwaitingAckEpoch { epoch } => {
                epochs.set_accepted(epoch)?;
                let mut agreed: Vec<i64> = self.connecting.keys().copied().collect();
                agreed.sort_unstable();
                log::info!("New epoch {epoch} agreed by {agreed:?}");
                self.ack_epoch.insert(me);
            }
            Stage::AwaitingAck { .. } => {
                self.ack.insert(me);
                status.set_phase(SessionPhase::Synchronization);
            }
            Stage::Established { epoch } => epochs.set_current(epoch)?,
            Stage::CollectingEpochs => {}
        }
        self.stage = next;
        Ok(())
    }
}
