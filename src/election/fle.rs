//! `FastLeaderElection.lookForLeader` as a deterministic state machine: the driver feeds it
//! notifications, timer expiries and connection events, and carries out the actions it returns.
//! No sockets, threads or clocks in here, so thousands of seeded elections run in memory.

use super::vote::{Notification, Proposal, ServerState, ToSend, Vote, check_leader, has_quorum, total_order_predicate};
use crate::config::QuorumVerifier;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// `finalizeWait` and the notification-timeout backoff (`FastLeaderElection.finalizeWait`,
/// `minNotificationInterval`, `maxNotificationInterval`), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleSettings {
    pub finalize_wait: u64,
    pub min_notification_interval: u64,
    pub max_notification_interval: u64,
}

impl Default for FleSettings {
    fn default() -> Self {
        FleSettings { finalize_wait: 200, min_notification_interval: 200, max_notification_interval: 60_000 }
    }
}

/// How a node starts its next election after a leader resigned (zkelect only: a ZooKeeper peer
/// knows nothing of it, which is why resigning is refused in mixed ensembles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Steer {
    /// `lookForLeader` as in ZooKeeper.
    #[default]
    None,
    /// The resigned leader: it proposes nobody (as an observer does) and takes the best vote.
    Abstain,
    /// `resign --to`: propose this server and prefer it to any other; between two votes for it,
    /// or two for others, the usual order decides.
    To(i64),
}

/// Something the driver must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Put this notification on the send queue (to ourselves too: the transport loops it back).
    Send(ToSend),
    /// `manager.connectAll()`.
    ConnectAll,
}

/// The result of an election instance: the vote to adopt and the state it puts us in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub vote: Vote,
    pub state: ServerState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Looking,
    /// A quorum agrees with the proposal; waiting `finalizeWait` for a better vote.
    Finalizing,
}

pub struct FastLeaderElection {
    my_id: i64,
    qv: Arc<QuorumVerifier>,
    settings: FleSettings,
    /// The round; survives across instances, starts at 0 per process.
    logicalclock: i64,
    proposal: Proposal,
    /// Our initial vote: our own proposal as a voter, [`Proposal::NONE`] as an observer.
    init: Proposal,
    /// This instance's steering after a resignation.
    steer: Steer,
    recvset: HashMap<i64, Vote>,
    outofelection: HashMap<i64, Vote>,
    /// Voters the transport knows to be unreachable (their connection broke and is not back).
    absent: HashSet<i64>,
    not_timeout: u64,
    phase: Phase,
    /// Notifications handed to the send queue over the life of this object.
    pub sent: u64,
}

impl FastLeaderElection {
    pub fn new(my_id: i64, qv: Arc<QuorumVerifier>, settings: FleSettings) -> Self {
        FastLeaderElection {
            my_id,
            qv,
            settings,
            logicalclock: 0,
            proposal: Proposal::NONE,
            init: Proposal::NONE,
            steer: Steer::None,
            recvset: HashMap::new(),
            outofelection: HashMap::new(),
            absent: HashSet::new(),
            not_timeout: settings.min_notification_interval,
            phase: Phase::Idle,
            sent: 0,
        }
    }

    fn is_participant(&self) -> bool {
        self.qv.is_voter(self.my_id)
    }

    pub fn logicalclock(&self) -> i64 {
        self.logicalclock
    }

    pub fn is_looking(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// In finalizeWait: a quorum agrees with our proposal and we wait for a better vote.
    pub fn is_finalizing(&self) -> bool {
        self.phase == Phase::Finalizing
    }

    /// `getVote`: the current proposal, as a LOOKING vote of this round.
    pub fn proposal(&self) -> Vote {
        Vote::new(self.proposal.leader, self.proposal.zxid, self.logicalclock, self.proposal.peer_epoch)
    }

    /// How long the driver waits for the next notification before calling [`on_timeout`](Self::on_timeout).
    pub fn wait_ms(&self) -> u64 {
        match self.phase {
            Phase::Finalizing => self.settings.finalize_wait,
            _ => self.not_timeout,
        }
    }

    /// Steps 1–2 of `lookForLeader`: a new round with our initial vote, sent to every voter.
    /// `zxid`/`epoch` are our last zxid and currentEpoch (ignored for observers).
    pub fn start(&mut self, zxid: i64, epoch: i64, out: &mut Vec<Action>) {
        self.start_steered(zxid, epoch, Steer::None, out);
    }

    /// [`start`](Self::start) after a resignation: see [`Steer`].
    pub fn start_steered(&mut self, zxid: i64, epoch: i64, steer: Steer, out: &mut Vec<Action>) {
        self.steer = steer;
        self.init = match steer {
            _ if !self.is_participant() => Proposal::NONE,
            Steer::None => Proposal { leader: self.my_id, zxid, peer_epoch: epoch },
            Steer::Abstain => Proposal::NONE,
            Steer::To(target) => Proposal { leader: target, zxid, peer_epoch: epoch },
        };
        if steer != Steer::None {
            log::info!("This election is steered after a resignation: {steer:?}");
        }
        self.recvset.clear();
        self.outofelection.clear();
        self.not_timeout = self.settings.min_notification_interval;
        self.logicalclock += 1;
        self.proposal = self.init;
        self.phase = Phase::Looking;
        log::info!("New election. My id = {}, proposed zxid=0x{:x}", self.my_id, self.proposal.zxid);
        self.send_notifications(out);
    }

    /// Stops the instance (the node left LOOKING or shuts down).
    pub fn stop(&mut self) {
        self.phase = Phase::Idle;
    }

    fn to_send(&self, sid: i64) -> ToSend {
        self.proposal().to_send(sid, ServerState::Looking, self.logicalclock)
    }

    /// `sendNotifications`: our proposal to every voter, ourselves included.
    fn send_notifications(&mut self, out: &mut Vec<Action>) {
        for sid in self.qv.voters() {
            out.push(Action::Send(self.to_send(sid)));
            self.sent += 1;
        }
    }

    /// The peers the transport knows to be unreachable right now.
    pub fn set_absent<I: IntoIterator<Item = i64>>(&mut self, sids: I) {
        self.absent = sids.into_iter().collect();
    }

    /// `sid` became unreachable. If we are in finalizeWait and everyone else agrees, there is nobody
    /// left whose better vote we could be waiting for: decide now.
    pub fn on_peer_down(&mut self, sid: i64) -> Option<Decision> {
        self.absent.insert(sid);
        log::debug!("Peer {sid} is unreachable; absent voters: {:?}", self.absent);
        (self.phase == Phase::Finalizing && self.all_voters_agree()).then(|| self.decide_proposal())
    }

    /// A connection to `sid` came up: send it our proposal now rather than at the next backoff
    /// step (ZK-3218). To a Java peer this is one more duplicate notification, which it tolerates.
    pub fn on_peer_connected(&mut self, sid: i64, out: &mut Vec<Action>) {
        self.absent.remove(&sid);
        if self.phase != Phase::Idle && sid != self.my_id && self.qv.is_voter(sid) {
            out.push(Action::Send(self.to_send(sid)));
            self.sent += 1;
        }
    }

    /// No notification within [`wait_ms`](Self::wait_ms).
    pub fn on_timeout(&mut self, have_delivered: bool, out: &mut Vec<Action>) -> Option<Decision> {
        match self.phase {
            Phase::Idle => None,
            Phase::Finalizing => Some(self.decide_proposal()),
            Phase::Looking => {
                if have_delivered {
                    self.send_notifications(out);
                } else {
                    out.push(Action::ConnectAll);
                }
                self.not_timeout = (self.not_timeout * 2).min(self.settings.max_notification_interval);
                log::info!("Notification time out: {} ms", self.not_timeout);
                None
            }
        }
    }

    /// One notification from the receive queue (the messenger only forwards voters' messages).
    pub fn on_notification(&mut self, n: &Notification, out: &mut Vec<Action>) -> Option<Decision> {
        if self.phase == Phase::Idle {
            return None;
        }
        if !self.qv.is_voter(n.sid) {
            log::warn!("Ignoring notification for sid {} from non-quorum member sid {}", n.leader, n.sid);
            return None;
        }
        if !self.qv.is_voter(n.leader) {
            log::warn!("Ignoring notification for non-cluster member sid {} from sid {}", n.leader, n.sid);
            return None;
        }
        if self.phase == Phase::Finalizing {
            // finalizeWait: only a better vote reopens the election. Java drops everything else; here
            // a vote is still recorded (never acted on until the wait ends), so that a LEADING reply
            // seen now can confirm its leader if the wait is reopened later, and a LOOKING vote equal
            // to ours counts towards "every voter agrees". Java peers cannot tell the difference.
            // A FOLLOWING/LEADING vote naming a leader whose connection is gone (a stale reply from a
            // peer that has not noticed yet) can never be confirmed by that leader: it does not reopen.
            let stale = n.state != ServerState::Looking && self.absent.contains(&n.leader);
            if !stale && self.better(n.proposal(), self.proposal) {
                self.phase = Phase::Looking;
            } else {
                self.record_while_finalizing(n);
                return self.all_voters_agree().then(|| self.decide_proposal());
            }
        }
        match n.state {
            ServerState::Looking => self.on_looking(n, out),
            ServerState::Observing => {
                log::debug!("Notification from observer: {}", n.sid);
                None
            }
            ServerState::Following | ServerState::Leading => self.received_following_notification(n),
        }
    }

    fn on_looking(&mut self, n: &Notification, out: &mut Vec<Action>) -> Option<Decision> {
        if self.init.zxid == -1 {
            log::debug!("Ignoring notification as our zxid is -1");
            return None;
        }
        if n.zxid == -1 {
            log::debug!("Ignoring notification from member with -1 zxid {}", n.sid);
            return None;
        }
        let theirs = n.proposal();
        if n.election_epoch > self.logicalclock {
            self.logicalclock = n.election_epoch;
            self.recvset.clear();
            self.proposal = if self.better(theirs, self.init) { theirs } else { self.init };
            self.send_notifications(out);
        } else if n.election_epoch < self.logicalclock {
            log::debug!(
                "Notification election epoch is smaller than logicalclock. n.electionEpoch = 0x{:x}, logicalclock=0x{:x}",
                n.election_epoch,
                self.logicalclock
            );
            return None;
        } else if self.better(theirs, self.proposal) {
            self.proposal = theirs;
            self.send_notifications(out);
        }
        self.recvset.insert(n.sid, Vote::new(n.leader, n.zxid, n.election_epoch, n.peer_epoch));
        if has_quorum(&self.qv, &self.recvset, &self.proposal()) {
            if self.all_voters_agree() {
                return Some(self.decide_proposal());
            }
            self.phase = Phase::Finalizing;
        }
        None
    }

    /// `totalOrderPredicate`, with a resignation's target first.
    fn better(&self, new: Proposal, cur: Proposal) -> bool {
        if let Steer::To(target) = self.steer {
            match (new.leader == target, cur.leader == target) {
                (true, false) => return self.qv.weight(target) > 0,
                (false, true) => return false,
                _ => {}
            }
        }
        total_order_predicate(&self.qv, new, cur)
    }

    fn record_while_finalizing(&mut self, n: &Notification) {
        let v = Vote { version: 0, ..n.vote() };
        match n.state {
            ServerState::Looking if n.election_epoch == self.logicalclock => {
                self.recvset.insert(n.sid, v);
            }
            ServerState::Following | ServerState::Leading => {
                if n.election_epoch == self.logicalclock {
                    self.recvset.insert(n.sid, v);
                }
                self.outofelection.insert(n.sid, n.vote());
            }
            _ => {}
        }
    }

    /// Beyond ZooKeeper: every voter's vote of this round equals our proposal, or the voter is
    /// unreachable. Each voter only ever moves its proposal up from its own initial vote, so every
    /// initial vote we can hear from is at most ours and no better vote can arrive: the
    /// `finalizeWait` that waits for one is pointless. (Only called once a quorum agrees.) An
    /// unreachable voter cannot send anything within finalizeWait; should it come back with a better
    /// vote later, the session layer's epoch agreement keeps leadership safe, as it must anyway.
    fn all_voters_agree(&self) -> bool {
        let target = self.proposal();
        self.qv
            .voters()
            .all(|sid| self.absent.contains(&sid) || self.recvset.get(&sid).is_some_and(|v| target.matches(v)))
    }

    /// `receivedFollowingNotification`: a FOLLOWING/LEADING vote, in this round or out of election.
    fn received_following_notification(&mut self, n: &Notification) -> Option<Decision> {
        let v = n.vote();
        if n.election_epoch == self.logicalclock {
            self.recvset.insert(n.sid, Vote { version: 0, ..v });
            if has_quorum(&self.qv, &self.recvset, &v)
                && check_leader(&self.recvset, n.leader, n.election_epoch, self.my_id, self.logicalclock)
            {
                return Some(self.decide(n.proposal(), n.election_epoch));
            }
        }
        // Out of election: how a latecomer joins an established ensemble.
        self.outofelection.insert(n.sid, v);
        if has_quorum(&self.qv, &self.outofelection, &v)
            && (check_leader(&self.outofelection, n.leader, n.election_epoch, self.my_id, self.logicalclock)
                || self.followed_from_an_earlier_round(n))
        {
            self.logicalclock = n.election_epoch;
            return Some(self.decide(n.proposal(), n.election_epoch));
        }
        None
    }

    /// Beyond ZooKeeper: a quorum decided to follow us in a round we have since left (a late
    /// notification of a later round, from a node that had given up an earlier decision, moved
    /// us on after they decided). ZooKeeper's `checkLeader` wants our round to be theirs, so they
    /// wait initLimit ticks for a leader that never starts (21 s in a 51-node launch). We lead
    /// them if we are still our own best proposal: their choice is the one we would make, and the
    /// session's epoch agreement with a quorum keeps leadership safe, as for any decision.
    fn followed_from_an_earlier_round(&self, n: &Notification) -> bool {
        n.leader == self.my_id
            && n.election_epoch < self.logicalclock
            && self.proposal.leader == self.my_id
            && self.proposal.zxid == n.zxid
            && self.proposal.peer_epoch == n.peer_epoch
    }

    /// Decides for our own proposal in this round.
    fn decide_proposal(&mut self) -> Decision {
        self.decide(self.proposal, self.logicalclock)
    }

    fn decide(&mut self, p: Proposal, election_epoch: i64) -> Decision {
        let state = if p.leader == self.my_id {
            ServerState::Leading
        } else if self.is_participant() {
            ServerState::Following
        } else {
            ServerState::Observing
        };
        self.phase = Phase::Idle;
        self.recvset.clear();
        self.outofelection.clear();
        let vote = Vote { version: 0, id: p.leader, zxid: p.zxid, election_epoch, peer_epoch: p.peer_epoch, state };
        Decision { vote, state }
    }
}
