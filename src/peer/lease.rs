//! What the peer layer keeps for the lease (the rules are in [`crate::lease`]): when this node
//! last heard from a leader, how the next election is steered after a resignation, the resign
//! requests waiting for the leader, and whether work guarded by the lease (`zkelect run`'s
//! child) is still running.

use crate::election::ServerState;
use crate::election::Steer;
use crate::lease::{LastLeader, LeaseSettings, Stamp};
use crate::runtime::Watch;
use crate::snapshot::NodeStatus;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::fmt;
use std::sync::Arc;

/// How long a resign request waits for the leader's loop to take it.
const RESIGN_ANSWER: std::time::Duration = std::time::Duration::from_secs(2);

/// `zkelect resign [--to <sid>]`, waiting for the leader's loop.
pub struct ResignRequest {
    pub to: Option<i64>,
    pub reply: Sender<Result<String, ResignRefused>>,
}

/// Why a resignation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResignRefused {
    NotLeader {
        leader: Option<i64>,
    },
    /// Elected, but the quorum has not been established yet.
    NotEstablished,
    /// ZooKeeper servers take part: their election order must stay untouched.
    MixedEnsemble {
        sids: Vec<i64>,
    },
    /// `--to` names ourselves.
    TargetIsSelf,
    /// `--to` names a server that is not a voter of this ensemble.
    NoSuchVoter(i64),
    /// `--to` names a voter that does not follow us right now.
    TargetNotFollowing(i64),
    /// No other voter follows this leader: nobody could be elected in its place.
    NoSuccessor,
    /// The leader did not take the request in time (it is stepping down or stopping).
    Busy,
}

impl fmt::Display for ResignRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResignRefused::NotLeader { leader: Some(l) } => {
                write!(f, "this server is not the leader; server {l} is: ask it")
            }
            ResignRefused::NotLeader { leader: None } => f.write_str("this server is not the leader (it is electing)"),
            ResignRefused::NotEstablished => f.write_str("this leader has no established quorum yet; try again"),
            ResignRefused::MixedEnsemble { sids } => write!(
                f,
                "refused: servers {sids:?} take part in elections without a zkelect session with this leader \
                 (ZooKeeper servers, whose election order must stay untouched, or servers still joining: then \
                 try again); in an ensemble with ZooKeeper, stop this node instead to move the leadership"
            ),
            ResignRefused::TargetIsSelf => f.write_str("refused: --to names this server, the leader itself"),
            ResignRefused::NoSuchVoter(sid) => write!(f, "refused: server {sid} is not a voter of this ensemble"),
            ResignRefused::TargetNotFollowing(sid) => {
                write!(f, "refused: server {sid} does not follow this leader right now, so it could not take over")
            }
            ResignRefused::NoSuccessor => {
                f.write_str("refused: no other voter follows this leader, so nobody could be elected in its place")
            }
            ResignRefused::Busy => f.write_str("the leader did not take the request in time; try again"),
        }
    }
}

/// The peer layer's lease facts, one of each.
pub struct Leases {
    pub settings: LeaseSettings,
    last_leader: Mutex<LastLeader>,
    steer: Mutex<Steer>,
    resign_tx: Sender<ResignRequest>,
    resign_rx: Receiver<ResignRequest>,
    /// True while work guarded by this node's lease runs; the leader releases its lease only once
    /// this is false (`zkelect run` sets it; a plain daemon never does).
    pub guarded_work: Arc<Watch<bool>>,
}

impl Leases {
    /// A new process: it may have answered a leader right before it started.
    pub fn new(settings: LeaseSettings) -> Leases {
        let (resign_tx, resign_rx) = crossbeam_channel::bounded(4);
        Leases {
            settings,
            last_leader: Mutex::new(LastLeader::Heard(Stamp::now())),
            steer: Mutex::new(Steer::None),
            resign_tx,
            resign_rx,
            guarded_work: Arc::new(Watch::new(false)),
        }
    }

    /// A packet from the leader arrived (or, on the leader, a PING round went out).
    pub fn heard_from_leader(&self) {
        *self.last_leader.lock() = LastLeader::Heard(Stamp::now());
    }

    /// The leader last heard from released its lease.
    pub fn leader_released(&self) {
        *self.last_leader.lock() = LastLeader::Released;
    }

    pub fn last_leader(&self) -> LastLeader {
        *self.last_leader.lock()
    }

    /// Steering for the next election only.
    pub fn steer_next(&self, s: Steer) {
        *self.steer.lock() = s;
    }

    pub fn take_steer(&self) -> Steer {
        std::mem::take(&mut *self.steer.lock())
    }

    /// Queues a request for the leader's loop.
    pub fn request_resign(&self, req: ResignRequest) -> Result<(), ResignRefused> {
        self.resign_tx.try_send(req).map_err(|_| ResignRefused::Busy)
    }

    pub fn resign_requests(&self) -> &Receiver<ResignRequest> {
        &self.resign_rx
    }

    /// `zkelect resign [--to <sid>]` on a node whose status is `st`: refused at once unless it
    /// leads an established quorum; otherwise the leader's loop answers (the resignation itself
    /// then takes until the guarded work has stopped).
    pub fn resign(&self, st: &NodeStatus, to: Option<i64>) -> Result<String, ResignRefused> {
        if st.state != ServerState::Leading {
            return Err(ResignRefused::NotLeader { leader: st.leader() });
        }
        if !st.in_quorum() {
            return Err(ResignRefused::NotEstablished);
        }
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.request_resign(ResignRequest { to, reply })?;
        answer.recv_timeout(RESIGN_ANSWER).unwrap_or(Err(ResignRefused::Busy))
    }
}
