//! `Leader`: a `LearnerCnxAcceptor` on the quorum port and a `LearnerHandler` thread per learner
//! for the epoch agreement with a quorum (hello → LEADERINFO → ACKEPOCH → NEWLEADER → ACK →
//! UPTODATE). Then PINGs every tickTime/2 and a quorum check that steps down when the learners
//! heard from within syncLimit ticks, plus ourselves, are no longer a quorum.
//!
//! Unlike Java's LearnerHandler, ours ends once its learner is synced: all that comes afterwards
//! is PING answers, which the leader's own half-tick loop reads without blocking right before it
//! checks the quorum. A settled leader thus needs no thread per learner on top of the election's
//! two per peer.

mod agreement;
mod learners;

use super::Error;
use super::context::PeerContext;
use super::session::write_packet;
use crate::election::votes;
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
    if let Err(e) = &ended
        && !ctx.is_stopping()
    {
        log::warn!("Leader {} stepping down: {e}", ctx.my_id());
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

/// Broadcast: PING every half tick and check the quorum each time.
fn broadcast(lc: &LeaderCtx, epoch: i64) -> Result<(), Error> {
    let ctx = &lc.ctx;
    ctx.status.update_election_vote(epoch);
    ctx.status.set_phase(SessionPhase::Broadcast);
    let ping = QuorumPacket::new(packet::PING, epoch_zxid(epoch), None);
    while lc.shutdown.sleep(ctx.tick() / 2) {
        let now = Instant::now();
        let (streams, synced) = read_learners(lc, now);
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
    }
    Ok(())
}

/// Reads every synced learner's answers, closes the ones whose session ended or that stayed silent
/// for syncLimit ticks, and returns the streams to PING and the (sid, voter) heard from in time.
fn read_learners(lc: &LeaderCtx, now: Instant) -> (Vec<Arc<net::PeerStream>>, BTreeSet<(i64, bool)>) {
    let sync = lc.ctx.sync_window();
    let mut ag = lc.agreement.lock();
    let mut ended = Vec::new();
    for (id, l) in ag.learners.iter_mut().filter(|(_, l)| l.synced().is_some()) {
        // Java's LearnerHandler.ping closes a learner silent for syncLimit ticks: a stopped process
        // still has its kernel acknowledge our PINGs, so TCP alone would keep it forever.
        let result = learners::drain(l, now).and_then(|()| {
            let silent = now.duration_since(l.last_heard);
            if silent > sync {
                let sid = l.sid().unwrap_or(-1);
                return Err(format!(
                    "Closing connection to learner {sid}: nothing heard for {} ms",
                    silent.as_millis()
                ));
            }
            Ok(())
        });
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
