//! `LearnerCnxAcceptor` and `LearnerHandler`: accept learners on the quorum port and take each
//! through the epoch agreement on its own thread. Once synced, a learner is read by the leader's
//! own loop ([`drain`]), so a settled leader needs no thread per learner.

use super::LeaderCtx;
use super::agreement::Step;
use crate::lease::{LastLeader, Stamp};
use crate::net::{Closer, Incoming, PeerStream, SocketOptions};
use crate::peer::Error;
use crate::peer::session::{read_packet, write_packet};
use crate::wire::packet::{self, Hello, PacketError, QuorumPacket, epoch_zxid, ping_round, type_name};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often a refused ZooKeeper learner (which retries in a tight loop) is logged at WARN.
const ZAB_REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Most bytes read from one learner per look, so a flooding learner cannot hold the leader's loop.
const DRAIN_BUDGET: usize = 64 * 1024;

/// Where a learner's session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnerState {
    /// Accepted; its hello has not been read yet.
    Connected,
    /// Identified by its hello, going through the agreement.
    Agreeing { sid: i64, voter: bool },
    /// Synced: the leader's loop reads its PING answers.
    Synced { sid: i64, voter: bool },
}

/// One learner connection.
pub struct Learner {
    /// Releases the socket on stop, also while its TLS handshake runs.
    pub closer: Closer,
    /// Once the connection is set up (after the TLS handshake, if any).
    pub stream: Option<Arc<PeerStream>>,
    pub state: LearnerState,
    pub last_heard: Instant,
    /// Bytes of a packet not yet complete (read by the leader's loop once synced).
    inbuf: Vec<u8>,
}

impl Learner {
    pub fn sid(&self) -> Option<i64> {
        match self.state {
            LearnerState::Connected => None,
            LearnerState::Agreeing { sid, .. } | LearnerState::Synced { sid, .. } => Some(sid),
        }
    }

    /// Synced learners: (sid, voter).
    pub fn synced(&self) -> Option<(i64, bool)> {
        match self.state {
            LearnerState::Synced { sid, voter } => Some((sid, voter)),
            _ => None,
        }
    }
}

/// Takes a connection accepted on the quorum port: registered, then set up (TLS handshake
/// included) and handled on its own thread, so a slow learner never holds the acceptor.
pub fn accepted(lc: &Arc<LeaderCtx>, incoming: Incoming) {
    let max = (2 * lc.ctx.qv.members.len()).max(32);
    let remote = incoming.remote();
    let Ok(closer) = incoming.closer() else { return };
    let id = lc.seq.fetch_add(1, Ordering::Relaxed);
    {
        let mut ag = lc.agreement.lock();
        if lc.shutdown.is_requested() {
            return;
        }
        if ag.learners.len() >= max {
            return log::warn!("Refusing learner connection from {remote}: already {max} connections");
        }
        let learner = Learner {
            closer,
            stream: None,
            state: LearnerState::Connected,
            last_heard: Instant::now(),
            inbuf: Vec::new(),
        };
        ag.learners.insert(id, learner);
    }
    let handler = {
        let lc = Arc::clone(lc);
        move || {
            let synced = match set_up(&lc, id, incoming) {
                Some(stream) => handle_learner(&lc, id, &stream),
                // Refused (and logged), or the leadership ended meanwhile.
                None => Ok(false),
            };
            match synced {
                // Synced: the leader's loop reads this learner from now on.
                Ok(true) => return,
                Ok(false) => {}
                Err(e) if !lc.shutdown.is_requested() => log::warn!("{e}"),
                Err(_) => {}
            }
            if let Some(l) = lc.agreement.lock().learners.remove(&id) {
                l.closer.close();
            }
        }
    };
    if let Err(e) = lc.threads.spawn(format!("LearnerHandler-{remote}"), handler) {
        log::warn!("Cannot start a LearnerHandler for {remote}: {e}");
        lc.agreement.lock().learners.remove(&id);
    }
}

/// The connection as a stream (after the TLS handshake, if any), registered with its learner;
/// `None` when it was refused (logged) or the leadership ended meanwhile.
fn set_up(lc: &LeaderCtx, id: u64, incoming: Incoming) -> Option<Arc<PeerStream>> {
    let remote = incoming.remote();
    let opts = SocketOptions { keep_alive: lc.ctx.cfg.tcp_keep_alive, timeout: lc.ctx.sync_window() };
    let deadline = Instant::now() + lc.ctx.init_window();
    let stream = match incoming.into_stream(opts, &lc.ctx.security, deadline) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            if !lc.shutdown.is_requested() {
                lc.ctx.security.refused(remote, &format!("learner connection: {e}"));
            }
            return None;
        }
    };
    lc.agreement.lock().learners.get_mut(&id)?.stream = Some(Arc::clone(&stream));
    Some(stream)
}

/// The agreement with one learner; true once it is synced and handed to the leader's loop.
fn handle_learner(lc: &LeaderCtx, id: u64, stream: &PeerStream) -> Result<bool, Error> {
    let ctx = &lc.ctx;
    let remote = stream.remote();
    let deadline = Instant::now() + ctx.init_window();
    let first = read_packet(stream, deadline)
        .map_err(|source| Error::Packet { waiting_for: format!("the first packet from {remote}"), source })?;
    if first.ptype == packet::ZAB_FOLLOWERINFO || first.ptype == packet::ZAB_OBSERVERINFO {
        refuse_zab(lc, &first, &remote.to_string());
        return Ok(false);
    }
    let hello = Hello::parse(&first).ok_or_else(|| {
        Error::Protocol(format!(
            "Closing learner connection from {remote}: first packet is {}, not a zkelect hello",
            type_name(first.ptype)
        ))
    })?;
    let sid = hello.sid;
    let server = ctx.qv.members.get(&sid).filter(|_| sid != ctx.my_id()).ok_or_else(|| {
        Error::Protocol(format!("Refusing learner session from {remote}: server id {sid} is not in the configuration"))
    })?;
    if let Err(e) = stream.check_identity(&server.quorum_addrs()) {
        lc.ctx.security.refused(remote, &format!("learner session claiming server id {sid}: {e}"));
        return Ok(false);
    }
    let voter = server.is_participant();
    log::info!(
        "Learner {sid} connected from {remote} (accepted epoch {}, current epoch {})",
        hello.accepted_epoch,
        hello.current_epoch
    );
    {
        let mut ag = lc.agreement.lock();
        if let Some(l) = ag.learners.get_mut(&id) {
            l.state = LearnerState::Agreeing { sid, voter };
        }
        if voter {
            ag.reports.insert(sid, LastLeader::from_report(hello.last_leader_ms, Stamp::now()));
            ag.joined(sid, hello.accepted_epoch);
            lc.advance(&mut ag);
        }
    }
    let epoch = lc
        .wait(deadline, |ag| ag.epoch())
        .ok_or_else(|| Error::Protocol(format!("No epoch agreed before learner {sid} timed out")))?;
    let leaderinfo = QuorumPacket::new(packet::LEADERINFO, epoch_zxid(epoch), Some(epoch.to_be_bytes().to_vec()));
    exchange(lc, stream, (sid, voter), deadline, Step::AckEpoch, leaderinfo)?;
    exchange(
        lc,
        stream,
        (sid, voter),
        deadline,
        Step::Ack,
        QuorumPacket::new(packet::NEWLEADER, epoch_zxid(epoch), None),
    )?;
    write_packet(stream, &QuorumPacket::new(packet::UPTODATE, epoch_zxid(epoch), None))
        .map_err(crate::peer::error::io(format!("Cannot send UPTODATE to learner {sid}")))?;
    log::info!("Learner {sid} is synced in epoch {epoch}");
    let mut ag = lc.agreement.lock();
    let Some(l) = ag.learners.get_mut(&id) else { return Ok(false) };
    l.state = LearnerState::Synced { sid, voter };
    l.last_heard = Instant::now();
    Ok(true)
}

/// One step with a learner: send the request, read the answer, count it (voters only) and wait
/// until a quorum has answered too.
fn exchange(
    lc: &LeaderCtx,
    stream: &PeerStream,
    (sid, voter): (i64, bool),
    deadline: Instant,
    step: Step,
    request: QuorumPacket,
) -> Result<(), Error> {
    let (sent, answer) = match step {
        Step::AckEpoch => ("LEADERINFO", packet::ACKEPOCH),
        Step::Ack => ("NEWLEADER", packet::ACK),
    };
    let sent_at = Stamp::now();
    write_packet(stream, &request).map_err(crate::peer::error::io(format!("Cannot send {sent} to learner {sid}")))?;
    let reply = read_packet(stream, deadline).map_err(|e| match e {
        PacketError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::Protocol(format!("Learner {sid} closed its session"))
        }
        source => Error::Packet { waiting_for: format!("{} from learner {sid}", type_name(answer)), source },
    })?;
    if reply.ptype != answer {
        return Err(Error::Protocol(format!("Learner {sid} answered {sent} with {}", type_name(reply.ptype))));
    }
    if voter {
        let mut ag = lc.agreement.lock();
        if step == Step::Ack {
            ag.confirmed(sid, sent_at);
        }
        ag.answered(step, sid);
        lc.advance(&mut ag);
    }
    let epoch = request.zxid >> 32;
    lc.wait(deadline, |ag| ag.passed(step).then_some(())).ok_or_else(|| {
        Error::Protocol(format!("No quorum answered {sent} in epoch {epoch} before learner {sid} timed out"))
    })
}

/// Reads, without blocking, what a synced learner sent since the last look (its PING answers,
/// whose rounds go to `answered`). An error means its session is over.
pub fn drain(l: &mut Learner, now: Instant, answered: &mut Vec<u32>) -> Result<(), SessionEnded> {
    let sid = l.sid().unwrap_or(-1);
    let Some(stream) = &l.stream else { return Ok(()) };
    let drained =
        stream.read_available(&mut l.inbuf, DRAIN_BUDGET).map_err(|source| SessionEnded::Read { sid, source })?;
    while let Some(p) =
        QuorumPacket::take_prefix(&mut l.inbuf).map_err(|source| SessionEnded::Garbled { sid, source })?
    {
        l.last_heard = now;
        if p.ptype == packet::PING {
            answered.push(ping_round(p.zxid));
        } else {
            log::debug!("Ignoring {} from learner {sid}", type_name(p.ptype));
        }
    }
    match drained {
        crate::net::Drained::Closed => Err(SessionEnded::Closed { sid }),
        crate::net::Drained::Open => Ok(()),
    }
}

/// Why the leader ends a synced learner's session.
#[derive(Debug)]
pub enum SessionEnded {
    Closed {
        sid: i64,
    },
    Read {
        sid: i64,
        source: std::io::Error,
    },
    Garbled {
        sid: i64,
        source: PacketError,
    },
    /// Nothing heard for syncLimit ticks (Java's `LearnerHandler.ping`).
    Silent {
        sid: i64,
        ms: u128,
    },
}

impl std::fmt::Display for SessionEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionEnded::Closed { sid } => write!(f, "Learner {sid} closed its session"),
            SessionEnded::Read { sid, source } => write!(f, "Learner {sid}: {source}"),
            SessionEnded::Garbled { sid, source } => write!(f, "Learner {sid}: waiting for PING: {source}"),
            SessionEnded::Silent { sid, ms } => {
                write!(f, "Closing connection to learner {sid}: nothing heard for {ms} ms")
            }
        }
    }
}

/// A ZooKeeper server tried to follow us over Zab: refuse with one line per peer per interval.
fn refuse_zab(lc: &LeaderCtx, first: &QuorumPacket, remote: &str) {
    let sid = first.data_i64(0).unwrap_or(-1);
    let now = Instant::now();
    let mut ag = lc.agreement.lock();
    let e = ag.zab_refusals.entry(sid).or_insert((None, 0));
    if e.0.is_none_or(|t| now.duration_since(t) >= ZAB_REFUSAL_LOG_INTERVAL) {
        log::warn!(
            "Refusing ZooKeeper (Zab) learner sid {sid} from {remote}: this zkelect leader only runs election sessions \
             ({} more attempts since the last report)",
            e.1
        );
        *e = (Some(now), 0);
    } else {
        e.1 += 1;
    }
}
