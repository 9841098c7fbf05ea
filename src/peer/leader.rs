//! `Leader`: a `LearnerCnxAcceptor` on the quorum port and a `LearnerHandler` thread per learner
//! for the epoch agreement with a quorum (hello → LEADERINFO → ACKEPOCH → NEWLEADER → ACK →
//! UPTODATE). Then PINGs every tickTime/2 and a quorum check that steps down when the learners
//! heard from within syncLimit ticks, plus ourselves, are no longer a quorum.
//!
//! Unlike Java's LearnerHandler, ours ends once its learner is synced: all that comes afterwards
//! is PING answers, which the leader's own half-tick loop reads without blocking right before it
//! checks the quorum. A settled leader thus needs no thread per learner on top of the election's
//! two per peer.

use super::quorum_peer::Shared;
use super::session::{read_packet, write_packet};
use crate::config::HostPort;
use crate::thread::ThreadGroup;
use crate::wire::packet::{self, Hello, PacketError, QuorumPacket, epoch_zxid, type_name};
use parking_lot::{Condvar, Mutex};
use socket2::{Domain, Socket, Type};
use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a refused ZooKeeper learner (which retries in a tight loop) is logged at WARN.
const ZAB_REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How often a leader waiting for its quorum looks whether the voters have settled elsewhere.
const SETTLED_CHECK: Duration = Duration::from_millis(100);

struct Learner {
    sid: Option<i64>,
    voter: bool,
    stream: TcpStream,
    last_heard: Instant,
    synced: bool,
    /// Bytes of a packet not yet complete (read by the leader's loop once synced).
    inbuf: Vec<u8>,
}

#[derive(Default)]
struct Agreement {
    epoch: Option<i64>,
    /// Voters' accepted epochs from their hellos (ourselves included).
    connecting: HashMap<i64, i64>,
    /// Voters that sent ACKEPOCH, and that acknowledged NEWLEADER.
    electing: BTreeSet<i64>,
    electing_done: bool,
    acked: BTreeSet<i64>,
    established: bool,
    stopping: bool,
    failure: Option<String>,
    learners: HashMap<u64, Learner>,
    zab_refusals: HashMap<i64, (Instant, u64)>,
}

/// One step of the epoch agreement: what we send, the answer we expect, the set of learners that
/// answered, and the condition that a quorum has.
type AgreementStep = (QuorumPacket, i32, fn(&mut Agreement) -> &mut BTreeSet<i64>, fn(&Agreement) -> bool);

struct LeaderCtx {
    s: Arc<Shared>,
    st: Mutex<Agreement>,
    cond: Condvar,
    threads: ThreadGroup,
    listener: Mutex<Option<Socket>>,
    seq: AtomicU64,
}

/// Leads until the quorum is lost or the node stops.
pub fn lead(s: &Arc<Shared>) {
    let ctx = Arc::new(LeaderCtx {
        s: Arc::clone(s),
        st: Mutex::new(Agreement::default()),
        cond: Condvar::new(),
        threads: ThreadGroup::new(),
        listener: Mutex::new(None),
        seq: AtomicU64::new(1),
    });
    let reason = run(&ctx);
    if let Err(e) = &reason
        && !s.is_stopping()
    {
        log::warn!("Leader {} stepping down: {e}", s.my_id());
    }
    stop(&ctx);
}

fn run(ctx: &Arc<LeaderCtx>) -> Result<(), String> {
    let s = &ctx.s;
    let my = s.my_id();
    s.set_phase("discovery");
    bind_acceptor(ctx)?;
    {
        let mut st = ctx.st.lock();
        st.connecting.insert(my, s.accepted_epoch());
        advance(ctx, &mut st);
    }
    let init = s.tick() * s.cfg.init_limit;
    let deadline = Instant::now() + init;
    let round = s.status.lock().current_vote.election_epoch;
    let epoch = {
        let mut st = ctx.st.lock();
        loop {
            if let Some(f) = st.failure.take() {
                return Err(f);
            }
            if st.established {
                break st.epoch.unwrap_or(0);
            }
            if Instant::now() >= deadline || s.is_stopping() {
                let phase = if st.epoch.is_none() {
                    "Timeout while waiting for epoch from quorum"
                } else {
                    "Waiting for a quorum of followers"
                };
                let have: Vec<i64> = if st.epoch.is_none() {
                    st.connecting.keys().copied().collect()
                } else {
                    st.acked.iter().copied().collect()
                };
                return Err(format!("{phase}, only synced with sids: {have:?}"));
            }
            // Java waits out initLimit here. When so many voters have settled on another leader
            // that no quorum is left to join us, that wait is lost time (and our port keeps the
            // latecomers' sessions failing); give up and let the next election find that leader.
            let elsewhere = s.settled_elsewhere(round);
            if !elsewhere.is_empty() {
                let possible = s.qv.voters().filter(|v| !elsewhere.contains(v));
                if !s.qv.contains_quorum(possible) {
                    return Err(format!("No quorum left to follow us: voters {elsewhere:?} follow another leader"));
                }
            }
            let until = deadline.min(Instant::now() + s.tick().min(SETTLED_CHECK));
            ctx.cond.wait_until(&mut st, until);
        }
    };
    s.update_election_vote(epoch);
    s.set_phase("broadcast");
    let sync = s.tick() * s.cfg.sync_limit;
    // Broadcast: ping every half tick and check the quorum each time.
    while s.pause(s.tick() / 2) {
        let now = Instant::now();
        let mut st = ctx.st.lock();
        let mut ended = Vec::new();
        for (id, l) in st.learners.iter_mut().filter(|(_, l)| l.synced) {
            let result = drain(l, now).and_then(|()| {
                // Java's LearnerHandler.ping closes a learner silent for syncLimit ticks, as the
                // per-learner read deadline did here before: a stopped process still has its
                // kernel acknowledge our PINGs, so TCP alone would keep it forever.
                let silent = now.duration_since(l.last_heard);
                if silent > sync {
                    return Err(format!(
                        "Closing connection to learner {}: nothing heard for {} ms",
                        l.sid.unwrap_or(-1),
                        silent.as_millis()
                    ));
                }
                Ok(())
            });
            if let Err(e) = result {
                log::warn!("{e}");
                let _ = l.stream.shutdown(std::net::Shutdown::Both);
                ended.push(*id);
            }
        }
        for id in ended {
            st.learners.remove(&id);
        }
        let ping = QuorumPacket::new(packet::PING, epoch_zxid(epoch), None);
        for l in st.learners.values().filter(|l| l.synced) {
            if let Err(e) = write_packet(&l.stream, &ping) {
                log::debug!("PING to {:?} failed: {e}", l.sid);
                let _ = l.stream.shutdown(std::net::Shutdown::Both);
            }
        }
        let mut synced: BTreeSet<i64> = st
            .learners
            .values()
            .filter(|l| l.synced && now.duration_since(l.last_heard) <= sync)
            .filter_map(|l| l.sid)
            .collect();
        let learners: Vec<i64> = synced.iter().copied().collect();
        synced.insert(my);
        let voting: Vec<i64> = synced.iter().copied().filter(|sid| s.qv.is_voter(*sid)).collect();
        st.zab_refusals.retain(|_, (t, _)| now.duration_since(*t) < Duration::from_secs(60));
        drop(st);
        s.status.lock().synced_learners = learners;
        if !s.qv.contains_quorum(voting.iter().copied()) {
            return Err(format!("Not sufficient followers synced, only synced with sids: {voting:?}"));
        }
    }
    Ok(())
}

/// Moves the agreement forward as far as the sets allow (the leader counts in every quorum).
fn advance(ctx: &LeaderCtx, st: &mut Agreement) {
    let s = &ctx.s;
    let my = s.my_id();
    if st.epoch.is_none() && s.qv.contains_quorum(st.connecting.keys().copied()) {
        // One more than every accepted epoch of a quorum: strictly above any epoch a quorum agreed to.
        let epoch = st.connecting.values().copied().max().unwrap_or(0) + 1;
        if let Err(e) = s.set_accepted_epoch(epoch) {
            st.failure = Some(e);
            ctx.cond.notify_all();
            return;
        }
        log::info!("New epoch {epoch} agreed by {:?}", st.connecting.keys().collect::<BTreeSet<_>>());
        st.epoch = Some(epoch);
        st.electing.insert(my);
        st.acked.insert(my);
        ctx.cond.notify_all();
    }
    if st.epoch.is_some() && !st.electing_done && s.qv.contains_quorum(st.electing.iter().copied()) {
        st.electing_done = true;
        s.set_phase("synchronization");
        ctx.cond.notify_all();
    }
    if let Some(epoch) = st.epoch
        && st.electing_done
        && !st.established
        && s.qv.contains_quorum(st.acked.iter().copied())
    {
        if let Err(e) = s.set_current_epoch(epoch) {
            st.failure = Some(e);
        } else {
            st.established = true;
        }
        ctx.cond.notify_all();
    }
}

fn bind_acceptor(ctx: &Arc<LeaderCtx>) -> Result<(), String> {
    let s = &ctx.s;
    let me = s.cfg.me().ok_or("own server entry missing")?;
    let addr = me.quorum_addrs().into_iter().next().ok_or("no quorum address")?;
    let addr = if s.cfg.quorum_listen_on_all_ips {
        HostPort::new(if addr.host.contains(':') { "::" } else { "0.0.0.0" }, addr.port)
    } else {
        addr
    };
    let sa: SocketAddr = (addr.host.as_str(), addr.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut i| i.next())
        .ok_or_else(|| format!("cannot resolve own quorum address {addr}"))?;
    let sock = (|| {
        let sock = Socket::new(Domain::for_address(sa), Type::STREAM, None)?;
        sock.set_reuse_address(true)?;
        sock.bind(&sa.into())?;
        sock.listen(128)?;
        Ok::<_, std::io::Error>(sock)
    })()
    .map_err(|e| format!("cannot bind the quorum port {addr}: {e}"))?;
    *ctx.listener.lock() = Some(sock.try_clone().map_err(|e| e.to_string())?);
    let c2 = Arc::clone(ctx);
    ctx.threads
        .spawn(format!("LearnerCnxAcceptor-{addr}"), move || accept_loop(&c2, &sock))
        .map_err(|e| format!("cannot start the acceptor: {e}"))
}

fn accept_loop(ctx: &Arc<LeaderCtx>, sock: &Socket) {
    let max = (2 * ctx.s.qv.members.len()).max(32);
    loop {
        let (conn, remote) = match sock.accept() {
            Ok(x) => x,
            Err(e) => {
                if !ctx.st.lock().stopping {
                    log::error!("Exception while accepting learners: {e}");
                }
                return;
            }
        };
        let stream: TcpStream = conn.into();
        let remote = remote.as_socket().map(|a| a.to_string()).unwrap_or_else(|| "?".into());
        let id = ctx.seq.fetch_add(1, Ordering::Relaxed);
        {
            let mut st = ctx.st.lock();
            if st.stopping {
                return;
            }
            if st.learners.len() >= max {
                log::warn!("Refusing learner connection from {remote}: already {max} connections");
                continue;
            }
            let Ok(clone) = stream.try_clone() else {
                continue;
            };
            st.learners.insert(
                id,
                Learner {
                    sid: None,
                    voter: false,
                    stream: clone,
                    last_heard: Instant::now(),
                    synced: false,
                    inbuf: Vec::new(),
                },
            );
        }
        let sync = ctx.s.tick() * ctx.s.cfg.sync_limit;
        let _ = crate::cnx::socket::set_sock_opts(&stream, ctx.s.cfg.tcp_keep_alive, sync);
        let _ = stream.set_write_timeout(Some(sync));
        let c2 = Arc::clone(ctx);
        let r2 = remote.clone();
        if let Err(e) = ctx.threads.spawn(format!("LearnerHandler-{remote}"), move || {
            match handle_learner(&c2, id, &stream, &r2) {
                // Synced: the leader's loop reads this learner from now on.
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    if !c2.st.lock().stopping {
                        log::warn!("{e}");
                    }
                }
            }
            let _ = stream.shutdown(std::net::Shutdown::Both);
            c2.st.lock().learners.remove(&id);
        }) {
            log::warn!("Cannot start a LearnerHandler for {remote}: {e}");
            ctx.st.lock().learners.remove(&id);
        }
    }
}

/// Waits on the agreement until `ready` holds; false on stop or deadline.
fn wait(ctx: &LeaderCtx, deadline: Instant, ready: impl Fn(&Agreement) -> bool) -> bool {
    let mut st = ctx.st.lock();
    while !ready(&st) {
        if st.stopping || ctx.cond.wait_until(&mut st, deadline).timed_out() {
            return ready(&st);
        }
    }
    true
}

/// The handshake with one learner; true once it is synced and handed to the leader's loop.
fn handle_learner(ctx: &Arc<LeaderCtx>, id: u64, stream: &TcpStream, remote: &str) -> Result<bool, String> {
    let s = &ctx.s;
    let deadline = Instant::now() + s.tick() * s.cfg.init_limit;
    let first = read_packet(stream, deadline).map_err(|e| format!("Closing learner connection from {remote}: {e}"))?;
    if first.ptype == packet::ZAB_FOLLOWERINFO || first.ptype == packet::ZAB_OBSERVERINFO {
        refuse_zab(ctx, &first, remote);
        return Ok(false);
    }
    let hello = Hello::parse(&first).ok_or_else(|| {
        format!(
            "Closing learner connection from {remote}: first packet is {}, not a zkelect hello",
            type_name(first.ptype)
        )
    })?;
    let sid = hello.sid;
    let server = s.qv.members.get(&sid).filter(|_| sid != s.my_id()).ok_or_else(|| {
        format!("Refusing learner session from {remote}: server id {sid} is not in the configuration")
    })?;
    let voter = server.is_participant();
    log::info!(
        "Learner {sid} connected from {remote} (accepted epoch {}, current epoch {})",
        hello.accepted_epoch,
        hello.current_epoch
    );
    {
        let mut st = ctx.st.lock();
        if let Some(l) = st.learners.get_mut(&id) {
            l.sid = Some(sid);
            l.voter = voter;
        }
        if voter && st.epoch.is_none() {
            st.connecting.insert(sid, hello.accepted_epoch);
            advance(ctx, &mut st);
        }
    }
    if !wait(ctx, deadline, |st| st.epoch.is_some()) {
        return Err(format!("No epoch agreed before learner {sid} timed out"));
    }
    let epoch = ctx.st.lock().epoch.unwrap_or(0);
    let send = |p: QuorumPacket, what: &str| {
        write_packet(stream, &p).map_err(|e| format!("Cannot send {what} to learner {sid}: {e}"))
    };
    // LEADERINFO → ACKEPOCH, then NEWLEADER → ACK: send, read the answer, count the learner (voters
    // only) and wait until a quorum has answered too.
    let info = QuorumPacket::new(packet::LEADERINFO, epoch_zxid(epoch), Some(epoch.to_be_bytes().to_vec()));
    let steps: [AgreementStep; 2] = [
        (info, packet::ACKEPOCH, |st| &mut st.electing, |st| st.electing_done),
        (
            QuorumPacket::new(packet::NEWLEADER, epoch_zxid(epoch), None),
            packet::ACK,
            |st| &mut st.acked,
            |st| st.established,
        ),
    ];
    for (out, answer, set, ready) in steps {
        let (sent, expected) = (type_name(out.ptype), type_name(answer));
        send(out, &sent)?;
        let reply = read(stream, deadline, sid, &expected)?;
        if reply.ptype != answer {
            return Err(format!("Learner {sid} answered {sent} with {}", type_name(reply.ptype)));
        }
        if voter {
            let mut st = ctx.st.lock();
            set(&mut st).insert(sid);
            advance(ctx, &mut st);
        }
        if !wait(ctx, deadline, ready) {
            return Err(format!("No quorum answered {sent} in epoch {epoch} before learner {sid} timed out"));
        }
    }
    send(QuorumPacket::new(packet::UPTODATE, epoch_zxid(epoch), None), "UPTODATE")?;
    log::info!("Learner {sid} is synced in epoch {epoch}");
    let mut st = ctx.st.lock();
    let Some(l) = st.learners.get_mut(&id) else {
        return Ok(false);
    };
    l.synced = true;
    l.last_heard = Instant::now();
    Ok(true)
}

/// Most bytes read from one learner per look, so a flooding learner cannot hold the leader's loop.
const DRAIN_BUDGET: usize = 64 * 1024;

/// Reads, without blocking, what a synced learner sent since the last look (its PING answers).
/// An error means its session is over.
fn drain(l: &mut Learner, now: Instant) -> Result<(), String> {
    use std::io::{ErrorKind, Read};
    let sid = l.sid.unwrap_or(-1);
    l.stream.set_nonblocking(true).map_err(|e| format!("Learner {sid}: {e}"))?;
    let mut chunk = [0u8; 4096];
    let mut budget = DRAIN_BUDGET;
    let read = loop {
        match (&l.stream).read(&mut chunk) {
            Ok(0) => break Err(format!("Learner {sid} closed its session")),
            Ok(n) => {
                l.inbuf.extend_from_slice(&chunk[..n]);
                budget = budget.saturating_sub(n);
                if budget == 0 {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Err(format!("Learner {sid}: {e}")),
        }
    };
    let _ = l.stream.set_nonblocking(false);
    read?;
    while let Some((p, used)) =
        QuorumPacket::parse_prefix(&l.inbuf).map_err(|e| format!("Learner {sid}: waiting for PING: {e}"))?
    {
        l.inbuf.drain(..used);
        l.last_heard = now;
        if p.ptype != packet::PING {
            log::debug!("Ignoring {} from learner {sid}", type_name(p.ptype));
        }
    }
    Ok(())
}

fn read(stream: &TcpStream, deadline: Instant, sid: i64, what: &str) -> Result<QuorumPacket, String> {
    read_packet(stream, deadline).map_err(|e| match e {
        PacketError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("Learner {sid} closed its session")
        }
        e => format!("Learner {sid}: waiting for {what}: {e}"),
    })
}

/// A ZooKeeper server tried to follow us over Zab: refuse with one line per peer per interval.
fn refuse_zab(ctx: &LeaderCtx, first: &QuorumPacket, remote: &str) {
    let sid = first.data_i64(0).unwrap_or(-1);
    let now = Instant::now();
    let mut st = ctx.st.lock();
    let e = st.zab_refusals.entry(sid).or_insert((now - ZAB_REFUSAL_LOG_INTERVAL, 0));
    if now.duration_since(e.0) >= ZAB_REFUSAL_LOG_INTERVAL {
        log::warn!(
            "Refusing ZooKeeper (Zab) learner sid {sid} from {remote}: this zkelect leader only runs election sessions \
             ({} more attempts since the last report)",
            e.1
        );
        *e = (now, 0);
    } else {
        e.1 += 1;
    }
}

fn stop(ctx: &Arc<LeaderCtx>) {
    {
        let mut st = ctx.st.lock();
        st.stopping = true;
        for l in st.learners.values() {
            let _ = l.stream.shutdown(std::net::Shutdown::Both);
        }
        ctx.cond.notify_all();
    }
    if let Some(l) = ctx.listener.lock().take() {
        let _ = l.shutdown(std::net::Shutdown::Both);
    }
    ctx.threads.join_all();
    ctx.s.status.lock().synced_learners.clear();
}
