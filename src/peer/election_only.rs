//! Following a leader we cannot hold a session with (a ZooKeeper server, which refuses our hello):
//! stay FOLLOWING/OBSERVING without a session and re-confirm the leader through the election every
//! syncLimit ticks. Our current vote sent as LOOKING makes every settled server answer with its own
//! (the out-of-election replies); a quorum naming the leader, with the leader itself saying
//! LEADING, confirms it and tells us the ensemble's epoch. Anything less within the window sends
//! us LOOKING. The node counts as in a quorum only once the leader is confirmed.

use super::context::PeerContext;
use super::epochs::EpochError;
use crate::election::{ServerState, Vote, votes};
use crate::messenger::ElectionEvent;
use crate::snapshot::SessionPhase;
use crossbeam_channel::{Receiver, select};
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Ended,
    /// The leader was confirmed; try a real session again.
    RetrySession,
}

/// Follows `leader` in election-only mode. With `retry`, the first confirmation ends it so that a
/// session is tried once more.
pub fn run(ctx: &PeerContext, events: &Receiver<ElectionEvent>, leader: i64, retry: bool) -> Outcome {
    let window = ctx.sync_window();
    if retry {
        log::info!(
            "Leader {leader} closed the session at our hello before it was known to lead; following it in \
             election-only mode until the election confirms it, then trying the session again"
        );
    } else {
        log::info!(
            "Leader {leader} closed the session at our hello: it is not a zkelect server (a ZooKeeper server?). \
             Following it in election-only mode, re-confirming it through the election every {} ms",
            window.as_millis()
        );
    }
    ctx.status.set_phase(SessionPhase::ElectionOnly { confirmed: false });
    let mut confirmed_once = false;
    while !ctx.is_stopping() {
        let deadline = Instant::now() + window;
        let Some(epoch) = confirm(ctx, events, leader, deadline) else {
            if !ctx.is_stopping() {
                log::warn!(
                    "Leader {leader} could not be confirmed through the election within {} ms; going LOOKING",
                    window.as_millis()
                );
            }
            break;
        };
        if retry {
            log::info!("Leader {leader} confirmed through the election; trying the session again");
            return Outcome::RetrySession;
        }
        if let Err(e) = adopt_epoch(ctx, epoch) {
            log::error!("{e}");
            break;
        }
        if !confirmed_once {
            log::info!("Leader {leader} confirmed through the election in epoch {epoch} (election-only mode)");
            ctx.status.set_phase(SessionPhase::ElectionOnly { confirmed: true });
            confirmed_once = true;
        }
        ctx.status.announce();
        if !ctx.shutdown.sleep(deadline.saturating_duration_since(Instant::now())) {
            break;
        }
    }
    Outcome::Ended
}

/// One confirmation window: asks every voter where it stands and collects the settled answers
/// until they confirm `leader` (its epoch) or the deadline passes.
fn confirm(ctx: &PeerContext, events: &Receiver<ElectionEvent>, leader: i64, deadline: Instant) -> Option<i64> {
    let me = ctx.my_id();
    while events.try_recv().is_ok() {}
    let cv = ctx.status.current_vote();
    for sid in ctx.qv.voters().filter(|v| *v != me) {
        ctx.send(cv.to_send(sid, ServerState::Looking, cv.election_epoch));
    }
    let mut received: HashMap<i64, Vote> = HashMap::new();
    loop {
        let ev = select! {
            recv(events) -> ev => ev.ok()?,
            recv(ctx.shutdown.receiver()) -> _ => return None,
            default(deadline.saturating_duration_since(Instant::now())) => return None,
        };
        let ElectionEvent::Notification(n) = ev else { continue };
        if matches!(n.state, ServerState::Looking | ServerState::Observing) {
            continue;
        }
        received.insert(n.sid, n.vote());
        if let Some(epoch) = votes::confirms_leader(&ctx.qv, &received, leader, me) {
            return Some(epoch);
        }
    }
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
