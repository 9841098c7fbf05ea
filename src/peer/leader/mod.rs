//! `Leader`: a `LearnerCnxAcceptor` on the quorum port and a `LearnerHandler` thread per learner
//! for the epoch agreement with a quorum (hello → LEADERINFO → ACKEPOCH → NEWLEADER → ACK →
//! UPTODATE). Then PINGs every tickTime/2 and a quorum check that steps down when the learners
//! heard from within syncLimit ticks, plus ourselves, are no longer a quorum, or when a quorum
//! has not confirmed the lease in time (see [`crate::lease`]).
//!
//! Unlike Java's LearnerHandler, ours ends once its learner is synced: all that comes afterwards
//! is PING answers, which the leader's own half-tick loop reads without blocking right before it
//! checks the quorum. A settled leader thus needs no thread per learner on top of the election's
//! two per peer.

mod agreement;
mod learners;

use super::Error;
use super::context::PeerContext;
use super::lease::{ResignRefused, ResignRequest};
use super::session::write_packet;
use crate::election::{Steer, votes};
use crate::lease::{self, LeaderLease, LeaseState, Stamp};
use crate::net::{self, Listener, ListenerWaker};
use crate::runtime::{Shutdown, ThreadGroup};
use crate::snapshot::SessionPhase;
use crate::wire::packet::{self, QuorumPacket, epoch_zxid};
use agreement::{Agreement, Stage};
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// How often a leader waiting for its quorum looks whether the voters have settled elsewhere.
const SETTLED_CHECK: Duration = Duration::from_millis(100);

/// One leadership: its agreement, its threads and its own stop signal (a child of the node's).
struct LeaderCtx {
    ctx: Arc<PeerContext>,
    agreement: Mutex<Agreement>,
    cond: Condvar,
    threads: ThreadGroup,
    shutdown: Shutdown,
    acceptor: Mutex<Option<ListenerWaker>>,
    seq: AtomicU64,
}

impl LeaderCtx {
    /// Moves the agreement forward and wakes everyone waiting on it.
    fn advance(&self, ag: &mut Agreement) {
        if ag.advance(&self.ctx.qv, self.ctx.my_id(), &self.ctx.epochs, &self.ctx.status) || ag.failure.is_some() {
            self.cond.notify_all();
        }
    }

    /// Waits on the agreement until `ready` gives a value; `None` on stop or at the deadline.
    fn wait<T>(&self, deadline: Instant, ready: impl Fn(&Agreement) -> Option<T>) -> Option<T> {
        let mut ag = self.agreement.lock();
        loop {
            if let Some(v) = ready(&ag) {
                return Some(v);
            }
            if self.shutdown.is_requested() || self.cond.wait_until(&mut ag, deadline).timed_out() {
                return ready(&ag);
            }
        }
    }
}

/// Leads until the quorum is lost or the node stops.
pub fn lead(ctx: &Arc<PeerContext>) {
    let lc = Arc::new(LeaderCtx {
        ctx: Arc::clone(ctx),
        agreement: Mutex::new(Agreement::new()),
        cond: Condvar::new(),
        threads: ThreadGroup::new(),
        shutdown: ctx.shutdown.child(),
        acceptor: Mutex::new(None),
        seq: AtomicU64::new(1),
    });
    let ended = start_acceptor(&lc).and_then(|()| await_established(&lc)).and_then(|epoch| broadcast(&lc, epoch));
    match &ended {
        Err(e @ Error::Resigned { .. }) => log::info!("Leader {} stepping down: {e}", ctx.my_id()),
        Err(e) if !ctx.is_stopping() => log::warn!("Leader {} stepping down: {e}", ctx.my_id()),
        _ => {}
    }
    stop(&lc);
}

fn start_acceptor(lc: &Arc<LeaderCtx>) -> Result<(), Error> {
    let ctx = &lc.ctx;
    ctx.status.set_phase(SessionPhase::Discovery);
    let me = ctx.cfg.me().ok_or(Error::NoSuchLeader(ctx.my_id()))?;
    let addr = me.quorum_addrs().into_iter().next().ok_or(Error::NoSuchLeader(ctx.my_id()))?;
    let addr = if ctx.cfg.quorum_listen_on_all_ips { addr.wildcard_like() } else { addr };
    let bind_error = |source| Error::Bind { addr: addr.to_string(), source };
    let listener = net::resolve(&addr).and_then(|sa| Listener::bind(sa, 128)).map_err(bind_error)?;
    *lc.acceptor.lock() = Some(listener.waker().map_err(bind_error)?);
    let acceptor = {
        let lc = Arc::clone(lc);
        move || net::serve(&listener, &lc.shutdown, "LearnerCnxAcceptor", |incoming| learners::accepted(&lc, incoming))
    };
    lc.threads.spawn(format!("LearnerCnxAcceptor-{addr}"), acceptor).map_err(super::error::io("starting the acceptor"))
}

/// Discovery and synchronisation: waits (at most initLimit ticks) until a quorum has acknowledged
/// the new epoch, and returns it.
fn await_established(lc: &LeaderCtx) -> Result<i64, Error> {
    let ctx = &lc.ctx;
    {
        let mut ag = lc.agreement.lock();
        ag.joined(ctx.my_id(), ctx.epochs.accepted());
        lc.advance(&mut ag);
    }
    let deadline = Instant::now() + ctx.init_window();
    let round = ctx.status.current_vote().election_epoch;
    let mut ag = lc.agreement.lock();
    loop {
        if let Some(e) = ag.failure.take() {
            return Err(e);
        }
        if let Stage::Established { epoch } = ag.stage() {
            return Ok(epoch);
        }
        if Instant::now() >= deadline || lc.shutdown.is_requested() {
            let why = if ag.epoch().is_none() {
                "Timeout while waiting for epoch from quorum"
            } else {
                "Waiting for a quorum of followers"
            };
            return Err(Error::NoQuorum { why, have: ag.heard_from() });
        }
        // Java waits out initLimit here. When so many voters have settled on another leader that no
        // quorum is left to join us, that wait is lost time (and our port keeps the latecomers'
        // sessions failing); give up and let the next election find that leader.
        let elsewhere = votes::settled_elsewhere(&ctx.latest_votes(), &ctx.qv, ctx.my_id(), round);
        if !elsewhere.is_empty() && !votes::quorum_left(&ctx.qv, &elsewhere) {
            return Err(Error::SettledElsewhere { voters: elsewhere });
        }
        let until = deadline.min(Instant::now() + ctx.tick().min(SETTLED_CHECK));
        lc.cond.wait_until(&mut ag, until);
    }
}

/// Broadcast: a PING round every half tick, the quorum and the lease checked after each; in
/// between, resign requests and the moment the lease activates. (The first round waits too: the
/// quorum's NEWLEADER answers confirmed the lease already, and the learners are still being told
/// UPTODATE.)
fn broadcast(lc: &LeaderCtx, epoch: i64) -> Result<(), Error> {
    let ctx = &lc.ctx;
    ctx.status.update_election_vote(epoch);
    ctx.status.set_phase_and_lease(SessionPhase::Broadcast, Some(start_lease(lc)));
    let half = ctx.tick() / 2;
    let mut round: u32 = 0;
    let mut next_round = Instant::now() + half;
    loop {
        let wake = match ctx.status.get().lease {
            LeaseState::Waiting { until } => next_round.min(Instant::now() + until.since(Stamp::now())),
            _ => next_round,
        };
        crossbeam_channel::select! {
            recv(ctx.leases.resign_requests()) -> r => {
                if let Ok(r) = r {
                    resign(lc, epoch, r)?;
                }
            },
            recv(lc.shutdown.receiver()) -> _ => return Ok(()),
            default(wake.saturating_duration_since(Instant::now())) => {},
        }
        if lc.shutdown.is_requested() {
            return Ok(());
        }
        if Instant::now() >= next_round {
            round = round.wrapping_add(1);
            ping_round(lc, epoch, round)?;
            next_round = Instant::now() + half;
        }
        check_lease(lc);
    }
}

/// One round: read the answers to the earlier ones, PING every synced learner, and check that a
/// quorum still follows.
fn ping_round(lc: &LeaderCtx, epoch: i64, round: u32) -> Result<(), Error> {
    let ctx = &lc.ctx;
    let (streams, synced) = read_learners(lc, Instant::now());
    let ping = QuorumPacket::new(packet::PING, packet::ping_zxid(epoch, round), None);
    if let Some(lease) = &mut lc.agreement.lock().lease {
        lease.round_sent(round, Stamp::now());
    }
    // This node hears itself: should it follow another leader next, it reports this moment.
    ctx.leases.heard_from_leader();
    // Written outside the agreement's lock: a wedged learner holds only its own write.
    for s in streams {
        if let Err(e) = write_packet(&s, &ping) {
            log::debug!("PING to {} failed: {e}", s.remote());
            s.shutdown();
        }
    }
    let mut voting: Vec<i64> = synced.iter().filter(|(_, voter)| *voter).map(|(sid, _)| *sid).collect();
    ctx.status.set_synced_learners(synced.iter().map(|(sid, _)| *sid).collect());
    voting.push(ctx.my_id());
    voting.sort_unstable();
    if !ctx.qv.contains_quorum(voting.iter().copied()) {
        return Err(Error::NoQuorum { why: "Not sufficient followers synced", have: voting });
    }
    Ok(())
}

/// The lease from the agreement: the quorum's confirmations of NEWLEADER, and the wait for the
/// leases of earlier leaders, measured from the latest moment any of the quorum (this node
/// included) heard from one.
fn start_lease(lc: &LeaderCtx) -> LeaseState {
    let ctx = &lc.ctx;
    let settings = ctx.leases.settings;
    let mut ag = lc.agreement.lock();
    let reports = ag.reports.values().copied().chain(std::iter::once(ctx.leases.last_leader()));
    let activation = lease::activation_time(reports, &settings);
    let mut lease = LeaderLease::new(settings, ctx.my_id(), activation);
    for (sid, sent) in ag.confirmations.drain() {
        lease.confirm(sid, sent);
    }
    let state = lease.state(&ctx.qv, Stamp::now());
    ag.lease = Some(lease);
    state
}

/// Publishes the lease. One that lapsed (a quorum did not confirm it in time) is inactive until a
/// quorum confirms a newer round: no other leader can have been established meanwhile, as every
/// quorum shares a member with ours and that member would have left us. The leadership itself
/// ends by ZooKeeper's rule (no quorum heard within syncLimit ticks).
fn check_lease(lc: &LeaderCtx) {
    let state = match &lc.agreement.lock().lease {
        Some(lease) => lease.state(&lc.ctx.qv, Stamp::now()),
        None => return,
    };
    lc.ctx.status.set_lease(state);
}

/// `zkelect resign`: answer the request; if it is accepted, deactivate, wait (at most until the
/// lease ends) for the guarded work to stop, tell the learners the lease is released, and end
/// the leadership with the next election steered.
fn resign(lc: &LeaderCtx, epoch: i64, req: ResignRequest) -> Result<(), Error> {
    let ctx = &lc.ctx;
    if let Err(refused) = resign_allowed(lc, req.to) {
        log::info!("Resign request in epoch {epoch}: {refused}");
        let _ = req.reply.send(Err(refused));
        return Ok(());
    }
    let to = req.to.map(|t| format!(" in favour of server {t}")).unwrap_or_default();
    log::info!("Resigning the leadership of epoch {epoch}{to}");
    let _ = req.reply.send(Ok(format!("server {} resigns the leadership of epoch {epoch}{to}", ctx.my_id())));
    let end = {
        let mut ag = lc.agreement.lock();
        let lease = ag.lease.as_mut();
        let end = lease.as_ref().and_then(|l| l.end(&ctx.qv));
        if let Some(l) = lease {
            l.release();
        }
        end
    };
    ctx.status.set_lease(LeaseState::Inactive);
    let until = Instant::now() + end.map_or(Duration::ZERO, |e| e.since(Stamp::now()));
    if ctx.leases.guarded_work.wait_for(until, |running| !running) {
        let released = QuorumPacket::new(
            packet::LEASE_RELEASED,
            epoch_zxid(epoch),
            Some(req.to.unwrap_or(-1).to_be_bytes().to_vec()),
        );
        let (streams, _) = read_learners(lc, Instant::now());
        for s in streams {
            if let Err(e) = write_packet(&s, &released) {
                log::debug!("LEASE_RELEASED to {} failed: {e}", s.remote());
            }
        }
        ctx.leases.leader_released();
        log::info!("Lease of epoch {epoch} released: the next leader need not wait for it");
    } else {
        log::warn!("The work guarded by the lease did not stop before the lease ended; the next leader waits it out");
    }
    ctx.leases.steer_next(req.to.map_or(Steer::Abstain, Steer::To));
    Err(Error::Resigned { to: req.to })
}

/// Resigning reorders the next election, which only zkelect peers know how to do.
fn resign_allowed(lc: &LeaderCtx, to: Option<i64>) -> Result<(), ResignRefused> {
    let ctx = &lc.ctx;
    let me = ctx.my_id();
    let (zkelect, synced, mut zookeeper) = {
        let ag = lc.agreement.lock();
        let zkelect: BTreeSet<i64> = ag.learners.values().filter_map(learners::Learner::sid).collect();
        let synced: BTreeSet<i64> = ag.learners.values().filter_map(|l| l.synced().map(|(sid, _)| sid)).collect();
        (zkelect, synced, ag.zab_refusals.keys().copied().collect::<BTreeSet<i64>>())
    };
    // Voters in the election without a zkelect session with us: ZooKeeper servers, or joining.
    zookeeper.extend(
        ctx.cnx.connected_peers().into_iter().filter(|s| *s != me && ctx.qv.is_voter(*s) && !zkelect.contains(s)),
    );
    if !zookeeper.is_empty() {
        return Err(ResignRefused::MixedEnsemble { sids: zookeeper.into_iter().collect() });
    }
    match to {
        Some(t) if t == me => Err(ResignRefused::TargetIsSelf),
        Some(t) if !ctx.qv.is_voter(t) => Err(ResignRefused::NoSuchVoter(t)),
        Some(t) if !synced.contains(&t) => Err(ResignRefused::TargetNotFollowing(t)),
        // Without this node's candidacy, some other voter must be there to be elected.
        None if !synced.iter().any(|s| ctx.qv.is_voter(*s) && ctx.qv.weight(*s) > 0) => Err(ResignRefused::NoSuccessor),
        _ => Ok(()),
    }
}

/// Reads every synced learner's answers, closes the ones whose session ended or that stayed silent
/// for syncLimit ticks, and returns the streams to PING and the (sid, voter) heard from in time.
fn read_learners(lc: &LeaderCtx, now: Instant) -> (Vec<Arc<net::PeerStream>>, BTreeSet<(i64, bool)>) {
    let sync = lc.ctx.sync_window();
    let mut guard = lc.agreement.lock();
    let ag = &mut *guard;
    let mut ended = Vec::new();
    for (id, l) in ag.learners.iter_mut().filter(|(_, l)| l.synced().is_some()) {
        // Java's LearnerHandler.ping closes a learner silent for syncLimit ticks: a stopped process
        // still has its kernel acknowledge our PINGs, so TCP alone would keep it forever.
        let mut answered = Vec::new();
        let result = learners::drain(l, now, &mut answered).and_then(|()| {
            let silent = now.duration_since(l.last_heard);
            if silent > sync {
                return Err(learners::SessionEnded::Silent { sid: l.sid().unwrap_or(-1), ms: silent.as_millis() });
            }
            Ok(())
        });
        if let (Some(lease), Some((sid, true))) = (&mut ag.lease, l.synced()) {
            for round in answered {
                lease.answered(sid, round);
            }
        }
        if let Err(e) = result {
            log::warn!("{e}");
            l.closer.close();
            ended.push(*id);
        }
    }
    for id in ended {
        ag.learners.remove(&id);
    }
    ag.zab_refusals.retain(|_, (t, _)| t.is_some_and(|t| now.duration_since(t) < Duration::from_secs(60)));
    let mut streams = Vec::new();
    let mut in_time = BTreeSet::new();
    for l in ag.learners.values() {
        if let (Some(synced), Some(stream)) = (l.synced(), &l.stream) {
            streams.push(Arc::clone(stream));
            if now.duration_since(l.last_heard) <= sync {
                in_time.insert(synced);
            }
        }
    }
    (streams, in_time)
}

/// Ends the leadership: every learner session closed, the acceptor woken, every thread joined.
fn stop(lc: &LeaderCtx) {
    lc.ctx.status.set_lease(LeaseState::Inactive);
    lc.shutdown.request();
    {
        let ag = lc.agreement.lock();
        for l in ag.learners.values() {
            l.closer.close();
        }
        lc.cond.notify_all();
    }
    if let Some(w) = lc.acceptor.lock().take() {
        w.wake();
    }
    lc.threads.join_all();
    lc.ctx.status.set_synced_learners(Vec::new());
}
