//! Following a leader we cannot hold a session with (a ZooKeeper server, which refuses our hello):
//! stay FOLLOWING/OBSERVING without a session and confirm the leader through the election. Our
//! current vote sent as LOOKING makes every settled server answer with its own (the
//! out-of-election replies); the leader itself saying LEADING and a quorum naming it confirm it and
//! tell us the ensemble's epoch. The node counts as in a quorum only once the leader is confirmed.
//!
//! The leader is re-confirmed every syncLimit ticks, within 250 ms (a tick if shorter) when its
//! election connection breaks, and within a tick when a voter that followed it in this epoch goes
//! LOOKING (it lost its Zab session: the leader may be gone). It is lost, and we go LOOKING, when
//! a confirmation fails, when the leader itself says LOOKING, or when its connection cannot be re-dialled (the process is
//! gone: ZooKeeper's own followers notice that at once through their Zab sockets). A leader that
//! is only slow keeps its connection and its followers, so it is not given up before a full window
//! passes; one whose connection was only lost to a tie-break answers the re-confirmation at once.

use super::context::PeerContext;
use super::epochs::EpochError;
use crate::config::QuorumVerifier;
use crate::election::{Notification, ServerState, Vote, votes};
use crate::messenger::ElectionEvent;
use crate::snapshot::SessionPhase;
use crossbeam_channel::{Receiver, select};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Ended,
    /// The leader was confirmed; try a real session again.
    RetrySession,
}

/// How long election-only following lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The leader closed our hello before it was known to lead (perhaps only because it was not
    /// listening yet, behind something that accepts for it): the first confirmation ends this, so
    /// that the session is tried once more.
    UntilConfirmed,
    /// The leader refuses sessions (a ZooKeeper leader): follow it through the election until it
    /// is lost.
    UntilLost,
}

/// Follows `leader` in election-only mode, as `mode` says.
pub fn run(ctx: &PeerContext, events: &Receiver<ElectionEvent>, leader: i64, mode: Mode) -> Outcome {
    let window = ctx.sync_window();
    announce(ctx, leader, mode, window);
    ctx.status.set_phase(SessionPhase::ElectionOnly { confirmed: false });
    let mut watch = Watch::new(leader, ctx.my_id(), window, ctx.tick().min(window), Instant::now());
    if ctx.cnx.down_peers().contains(&leader) {
        log::warn!("Leader {leader} cannot be reached on the election port; going LOOKING");
        return Outcome::Ended;
    }
    if let Some(why) = ask(ctx, events, &mut watch, Instant::now() + window) {
        log::warn!("Leader {leader} {why}; going LOOKING");
        return Outcome::Ended;
    }
    loop {
        let timeout = watch.deadline().saturating_duration_since(Instant::now());
        let ev = select! {
            recv(events) -> ev => match ev {
                Ok(ev) => Some(ev),
                Err(_) => return Outcome::Ended,
            },
            recv(ctx.shutdown.receiver()) -> _ => return Outcome::Ended,
            default(timeout) => None,
        };
        if let Some(ev) = ev.as_ref().filter(|e| !matches!(e, ElectionEvent::Notification(_))) {
            log::debug!("Election-only following of {leader}: {ev:?}");
        }
        match watch.step(ev, &ctx.qv, Instant::now()) {
            Verdict::Continue => {}
            Verdict::Ask { deadline, why } => {
                if let Some(why) = why {
                    log::info!("Re-confirming leader {leader} at once: {why}");
                }
                if let Some(why) = ask(ctx, events, &mut watch, deadline) {
                    log::warn!("Leader {leader} {why}; going LOOKING");
                    return Outcome::Ended;
                }
            }
            Verdict::Confirmed { epoch, first } => {
                if mode == Mode::UntilConfirmed {
                    log::info!("Leader {leader} confirmed through the election; trying the session again");
                    return Outcome::RetrySession;
                }
                if let Err(e) = adopt_epoch(ctx, epoch) {
                    log::error!("{e}");
                    return Outcome::Ended;
                }
                if first {
                    log::info!("Leader {leader} confirmed through the election in epoch {epoch} (election-only mode)");
                    ctx.status.set_phase(SessionPhase::ElectionOnly { confirmed: true });
                }
                ctx.status.announce();
            }
            Verdict::Lost(why) => {
                if !ctx.is_stopping() {
                    log::warn!("Leader {leader} {why}; going LOOKING");
                }
                return Outcome::Ended;
            }
        }
    }
}

/// Says why the node follows in election-only mode, and, for a voter following a ZooKeeper
/// leader, what that costs the ensemble.
fn announce(ctx: &PeerContext, leader: i64, mode: Mode, window: std::time::Duration) {
    if mode == Mode::UntilConfirmed {
        log::info!(
            "Leader {leader} closed the session at our hello before it was known to lead; following it in \
             election-only mode until the election confirms it, then trying the session again"
        );
        return;
    }
    log::info!(
        "Leader {leader} closed the session at our hello: it is not a zkelect server (a ZooKeeper server?). \
         Following it in election-only mode, re-confirming it through the election every {} ms",
        window.as_millis()
    );
    if ctx.status.state() == ServerState::Following {
        // A voter ZooKeeper counts but that never acknowledges a proposal.
        log::warn!(
            "This zkelect node is a voter in a ZooKeeper ensemble: it counts in its elections and quorums but \
             cannot acknowledge ZooKeeper's transactions, so the ensemble tolerates one failure fewer than its \
             size says. Make it an observer: peerType=observer in its zoo.cfg, and :observer at the end of its \
             server.{} line in every server's zoo.cfg",
            ctx.my_id()
        );
    }
}

/// Starts a confirmation: every voter is asked where it stands. Answers to earlier questions
/// still queued are dropped; the leader found unreachable meanwhile is not.
fn ask(ctx: &PeerContext, events: &Receiver<ElectionEvent>, watch: &mut Watch, deadline: Instant) -> Option<String> {
    let leader = watch.leader;
    while let Ok(ev) = events.try_recv() {
        if matches!(ev, ElectionEvent::PeerDown(sid) if sid == leader) {
            return Some("lost its election connection, and it cannot be re-dialled".into());
        }
    }
    let cv = ctx.status.current_vote();
    for sid in ctx.qv.voters().filter(|v| *v != ctx.my_id()) {
        ctx.send(cv.to_send(sid, ServerState::Looking, cv.election_epoch));
    }
    watch.asked(deadline, Instant::now());
    None
}

/// Takes on the ensemble's epoch (never going back), as a synced learner would.
fn adopt_epoch(ctx: &PeerContext, epoch: i64) -> Result<(), EpochError> {
    if epoch > ctx.epochs.accepted() {
        ctx.epochs.set_accepted(epoch)?;
    }
    if epoch > ctx.epochs.current() {
        ctx.epochs.set_current(epoch)?;
    }
    ctx.status.update_election_vote(epoch);
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for the answers that confirm the leader.
    Confirming { deadline: Instant },
    /// Confirmed; the next confirmation starts at `next`.
    Confirmed { next: Instant },
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Continue,
    /// Ask every voter again; the answers must confirm the leader before `deadline`.
    Ask {
        deadline: Instant,
        why: Option<String>,
    },
    Confirmed {
        epoch: i64,
        first: bool,
    },
    Lost(String),
}

/// How long a leader whose election connection broke has to answer again. A live one dials us
/// back (the tie-break) and answers within milliseconds; a process being killed can still accept
/// our re-dial on its listening socket for a moment, so that dial proves nothing, and waiting a
/// whole tick for an answer made some failovers take a tick instead of milliseconds. A quarter of
/// a second is more than any peer takes to answer in an election (finalizeWait is 200 ms); a
/// leader that misses it is followed again after one election round.
const ANSWER_AFTER_BREAK: Duration = Duration::from_millis(250);

/// The confirmation state of one election-only following: pure, the driver owns the clock.
struct Watch {
    leader: i64,
    me: i64,
    window: Duration,
    /// How long a re-confirmation prompted by a follower gone LOOKING may take.
    recheck: Duration,
    stage: Stage,
    started: Instant,
    /// Settled answers to the current question, by sender.
    received: HashMap<i64, Vote>,
    /// The epoch the leader was last confirmed in.
    epoch: Option<i64>,
    /// Voters seen following the leader in that epoch.
    followers: HashSet<i64>,
}

impl Watch {
    fn new(leader: i64, me: i64, window: Duration, recheck: Duration, now: Instant) -> Watch {
        Watch {
            leader,
            me,
            window,
            recheck,
            stage: Stage::Confirming { deadline: now + window },
            started: now,
            received: HashMap::new(),
            epoch: None,
            followers: HashSet::new(),
        }
    }

    fn deadline(&self) -> Instant {
        match self.stage {
            Stage::Confirming { deadline } => deadline,
            Stage::Confirmed { next } => next,
        }
    }

    fn asked(&mut self, deadline: Instant, now: Instant) {
        self.received.clear();
        self.started = now;
        self.stage = Stage::Confirming { deadline };
    }

    /// One event (`None`: the deadline passed).
    fn step(&mut self, ev: Option<ElectionEvent>, qv: &QuorumVerifier, now: Instant) -> Verdict {
        match ev {
            None => match self.stage {
                Stage::Confirming { deadline } => Verdict::Lost(format!(
                    "could not be confirmed through the election within {} ms",
                    deadline.saturating_duration_since(self.started).as_millis()
                )),
                Stage::Confirmed { .. } => Verdict::Ask { deadline: now + self.window, why: None },
            },
            Some(ElectionEvent::PeerDown(sid)) if sid == self.leader => {
                Verdict::Lost("lost its election connection, and it cannot be re-dialled".into())
            }
            // Asking dials the leader again: refused means gone (`PeerDown` follows); a leader
            // that only lost the connection to a tie-break answers at once.
            Some(ElectionEvent::PeerDisconnected(sid)) if sid == self.leader => {
                let deadline = (now + self.recheck.min(ANSWER_AFTER_BREAK)).min(self.deadline());
                Verdict::Ask { deadline, why: Some("its election connection broke".into()) }
            }
            Some(ElectionEvent::Notification(n)) => self.on_notification(&n, qv, now),
            Some(_) => Verdict::Continue,
        }
    }

    fn on_notification(&mut self, n: &Notification, qv: &QuorumVerifier, now: Instant) -> Verdict {
        match n.state {
            ServerState::Looking if n.sid == self.leader => Verdict::Lost("is LOOKING itself".into()),
            ServerState::Looking if self.followers.remove(&n.sid) && matches!(self.stage, Stage::Confirmed { .. }) => {
                let why =
                    format!("server {} followed it in epoch {} and is LOOKING now", n.sid, self.epoch.unwrap_or(0));
                Verdict::Ask { deadline: now + self.recheck, why: Some(why) }
            }
            ServerState::Following | ServerState::Leading => {
                if n.state == ServerState::Following && n.leader == self.leader && Some(n.peer_epoch) == self.epoch {
                    self.followers.insert(n.sid);
                }
                if !matches!(self.stage, Stage::Confirming { .. }) {
                    return Verdict::Continue;
                }
                self.received.insert(n.sid, n.vote());
                let Some(epoch) = votes::confirms_leader(qv, &self.received, self.leader, self.me) else {
                    return Verdict::Continue;
                };
                let first = self.epoch.is_none();
                self.epoch = Some(epoch);
                self.followers = self
                    .received
                    .iter()
                    .filter(|(_, v)| v.state == ServerState::Following && v.id == self.leader && v.peer_epoch == epoch)
                    .map(|(sid, _)| *sid)
                    .collect();
                self.stage = Stage::Confirmed { next: self.started + self.window };
                Verdict::Confirmed { epoch, first }
            }
            _ => Verdict::Continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QuorumPeerConfig;

    fn qv() -> QuorumVerifier {
        let text =
            "tickTime=100\ninitLimit=5\nsyncLimit=2\ndataDir=/x\nserver.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\n";
        QuorumPeerConfig::parse(text, "t").expect("config").quorum_verifier
    }

    fn n(sid: i64, state: ServerState, leader: i64, epoch: i64) -> Option<ElectionEvent> {
        let n = Notification {
            version: 2,
            leader,
            zxid: 0,
            election_epoch: 1,
            state,
            sid,
            peer_epoch: epoch,
            config_version: None,
        };
        Some(ElectionEvent::Notification(n))
    }

    const W: Duration = Duration::from_secs(10);
    const R: Duration = Duration::from_secs(2);

    /// Node 1 follows ZooKeeper leader 3 in epoch 4, with 2 following it too.
    fn confirmed() -> (Watch, QuorumVerifier, Instant) {
        let (q, now) = (qv(), Instant::now());
        let mut w = Watch::new(3, 1, W, R, now);
        assert_eq!(w.step(n(2, ServerState::Following, 3, 4), &q, now), Verdict::Continue);
        assert_eq!(w.step(n(3, ServerState::Leading, 3, 4), &q, now), Verdict::Confirmed { epoch: 4, first: true });
        (w, q, now)
    }

    #[test]
    fn confirmed_by_the_leader_and_a_quorum_then_rechecked_every_window() {
        let (mut w, q, now) = confirmed();
        assert!(w.deadline() <= now + W);
        let Verdict::Ask { deadline, why: None } = w.step(None, &q, now + W) else {
            panic!("a periodic re-confirmation")
        };
        assert_eq!(deadline, now + W + W);
        w.asked(deadline, now + W);
        let lost = w.step(None, &q, deadline);
        assert!(matches!(lost, Verdict::Lost(ref why) if why.contains("could not be confirmed")), "{lost:?}");
    }

    #[test]
    fn a_follower_going_looking_prompts_a_quick_recheck() {
        let (mut w, q, now) = confirmed();
        let v = w.step(n(2, ServerState::Looking, 2, 4), &q, now);
        assert!(
            matches!(&v, Verdict::Ask { deadline, why: Some(why) } if *deadline == now + R && why.contains("server 2")),
            "{v:?}"
        );
        w.asked(now + R, now);
        // The leader still leads, and 2 is back with it: confirmed again, not for the first time.
        assert_eq!(w.step(n(2, ServerState::Following, 3, 4), &q, now), Verdict::Continue);
        assert_eq!(w.step(n(3, ServerState::Leading, 3, 4), &q, now), Verdict::Confirmed { epoch: 4, first: false });
        // A voter that never followed the leader going LOOKING is no reason.
        assert_eq!(w.step(n(9, ServerState::Looking, 9, 0), &q, now), Verdict::Continue);
    }

    /// A broken connection whose re-dial reached only a dying process's listener: no answer, and
    /// the leader is given up after ANSWER_AFTER_BREAK, not after a tick.
    #[test]
    fn a_leader_that_does_not_answer_after_its_connection_broke_is_lost_quickly() {
        let (mut w, q, now) = confirmed();
        let Verdict::Ask { deadline, .. } = w.step(Some(ElectionEvent::PeerDisconnected(3)), &q, now) else {
            panic!("a re-confirmation")
        };
        assert_eq!(deadline, now + ANSWER_AFTER_BREAK);
        w.asked(deadline, now);
        // 2 still follows (it has not noticed yet); the leader says nothing.
        assert_eq!(w.step(n(2, ServerState::Following, 3, 4), &q, now), Verdict::Continue);
        let lost = w.step(None, &q, deadline);
        assert!(matches!(lost, Verdict::Lost(ref why) if why.contains("within 250 ms")), "{lost:?}");
        // A tick shorter than that bounds it as before.
        let (q, now) = (qv(), Instant::now());
        let mut w = Watch::new(3, 1, W, Duration::from_millis(100), now);
        assert!(matches!(w.step(Some(ElectionEvent::PeerDisconnected(3)), &q, now),
            Verdict::Ask { deadline, .. } if deadline == now + Duration::from_millis(100)));
    }

    #[test]
    fn the_leader_is_lost_when_its_connection_is_or_it_says_looking() {
        let (mut w, q, now) = confirmed();
        let v = w.step(Some(ElectionEvent::PeerDisconnected(3)), &q, now);
        assert!(matches!(v, Verdict::Ask { deadline, .. } if deadline == now + ANSWER_AFTER_BREAK), "{v:?}");
        assert!(matches!(w.step(Some(ElectionEvent::PeerDown(3)), &q, now), Verdict::Lost(_)));
        assert_eq!(w.step(Some(ElectionEvent::PeerDown(2)), &q, now), Verdict::Continue);
        assert!(matches!(w.step(n(3, ServerState::Looking, 3, 4), &q, now), Verdict::Lost(_)));
    }
}
