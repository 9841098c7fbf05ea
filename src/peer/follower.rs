//! `Follower` / `Observer`: one session to the elected leader's quorum port. The epoch agreement,
//! then PING answers; any EOF, deadline or protocol error ends the session (→ LOOKING).

use super::quorum_peer::Shared;
use super::session::{read_packet, write_packet};
use crate::election::{ToSend, Vote, check_leader, has_quorum};
use crate::messenger::ElectionEvent;
use crate::wire::notification::ServerState;
use crate::wire::packet::{self, Hello, QuorumPacket, epoch_zxid, type_name};
use crossbeam_channel::{Receiver, select};
use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The leader closed the session right at our hello: it does not speak zkelect sessions.
const NOT_ZKELECT: &str = "closed the session at our hello";

pub fn follow(s: &Shared, events: &Receiver<ElectionEvent>) {
    let (leader, observer) = {
        let st = s.status.lock();
        (st.current_vote.id, st.state == ServerState::Observing)
    };
    // A leader not yet known to lead may have closed our hello only because it was not listening
    // yet, with something in between that accepts for it (a TCP proxy): then the session is tried
    // once more after the election confirms it as leader. A ZooKeeper leader just refuses again.
    let mut retry = true;
    loop {
        match run(s, leader, observer) {
            Ok(()) => {}
            Err(e) if s.is_stopping() => log::debug!("session with leader {leader} closed on shutdown: {e}"),
            Err(e) if e.contains(NOT_ZKELECT) => {
                retry = retry && !s.leader_known_leading(leader);
                if election_only(s, events, leader, retry) == ElectionOnly::RetrySession {
                    retry = false;
                    continue;
                }
            }
            Err(e) => log::warn!("Exception when following the leader {leader}: {e}"),
        }
        return;
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ElectionOnly {
    Ended,
    /// The leader was confirmed; try a real session again.
    RetrySession,
}

/// Following a ZooKeeper leader, which refuses our session: stay FOLLOWING/OBSERVING without a
/// session and re-confirm the leader through the election every syncLimit ticks. Our current vote
/// sent as LOOKING makes every settled server answer with its own (the out-of-election replies);
/// a quorum naming the leader, with the leader itself saying LEADING, confirms it and tells us the
/// ensemble's epoch. Anything less within the window sends us LOOKING.
fn election_only(s: &Shared, events: &Receiver<ElectionEvent>, leader: i64, retry: bool) -> ElectionOnly {
    let sync = s.tick() * s.cfg.sync_limit;
    let me = s.my_id();
    if retry {
        log::info!(
            "Leader {leader} {NOT_ZKELECT} before it was known to lead; following it in election-only mode \
             until the election confirms it, then trying the session again"
        );
    } else {
        log::info!(
            "Leader {leader} {NOT_ZKELECT}: it is not a zkelect server (a ZooKeeper server?). Following it in \
             election-only mode, re-confirming it through the election every {} ms",
            sync.as_millis()
        );
    }
    s.set_phase("election-only");
    s.set_confirming(true);
    let mut confirmed_once = false;
    while !s.is_stopping() {
        while events.try_recv().is_ok() {}
        let cv = s.status.lock().current_vote;
        for sid in s.qv.voters().filter(|v| *v != me) {
            s.send(ToSend {
                leader: cv.id,
                zxid: cv.zxid,
                election_epoch: cv.election_epoch,
                state: ServerState::Looking,
                sid,
                peer_epoch: cv.peer_epoch,
            });
        }
        let deadline = Instant::now() + sync;
        let mut votes: HashMap<i64, Vote> = HashMap::new();
        let mut confirmed = None;
        while confirmed.is_none() {
            let ev = select! {
                recv(events) -> ev => ev.ok(),
                recv(s.stop_rx) -> _ => break,
                default(deadline.saturating_duration_since(Instant::now())) => break,
            };
            let Some(ElectionEvent::Notification(n)) = ev else { continue };
            if n.state == ServerState::Looking || n.state == ServerState::Observing {
                continue;
            }
            votes.insert(n.sid, n.vote());
            let Some(lv) = votes.get(&leader).copied().filter(|v| v.state == ServerState::Leading) else { continue };
            let target = Vote { state: ServerState::Following, ..lv };
            let mut with_me = votes.clone();
            with_me.insert(me, target);
            if has_quorum(&s.qv, &with_me, &target) && check_leader(&with_me, leader, lv.election_epoch, me, 0) {
                confirmed = Some(lv.peer_epoch);
            }
        }
        let Some(epoch) = confirmed else {
            if !s.is_stopping() {
                log::warn!(
                    "Leader {leader} could not be confirmed through the election within {} ms; going LOOKING",
                    sync.as_millis()
                );
            }
            break;
        };
        if retry {
            log::info!("Leader {leader} confirmed through the election; trying the session again");
            s.set_confirming(false);
            return ElectionOnly::RetrySession;
        }
        if let Err(e) = adopt_epoch(s, epoch) {
            log::error!("{e}");
            break;
        }
        s.announce();
        if !confirmed_once {
            log::info!("Leader {leader} confirmed through the election in epoch {epoch} (election-only mode)");
            confirmed_once = true;
        }
        if !s.pause(deadline.saturating_duration_since(Instant::now())) {
            break;
        }
    }
    s.set_confirming(false);
    ElectionOnly::Ended
}

/// Takes on the ensemble's epoch (never going back), as a synced learner would.
fn adopt_epoch(s: &Shared, epoch: i64) -> Result<(), String> {
    if epoch > s.accepted_epoch() {
        s.set_accepted_epoch(epoch)?;
    }
    if epoch > s.current_epoch() {
        s.set_current_epoch(epoch)?;
    }
    s.update_election_vote(epoch);
    Ok(())
}

fn run(s: &Shared, leader: i64, observer: bool) -> Result<(), String> {
    let server =
        s.qv.members
            .get(&leader)
            .filter(|srv| srv.is_participant())
            .ok_or_else(|| format!("Couldn't find the leader with id = {leader}"))?;
    let init = s.tick() * s.cfg.init_limit;
    let sync = s.tick() * s.cfg.sync_limit;
    let deadline = Instant::now() + init;
    s.set_phase("discovery");
    let stream = connect_to_leader(s, leader, &server.quorum_addrs(), deadline)?;
    s.register_session(&stream);
    let accepted = s.accepted_epoch();
    let hello = Hello { sid: s.my_id(), observer, accepted_epoch: accepted, current_epoch: s.current_epoch() };
    write_packet(&stream, &hello.packet()).map_err(|e| format!("cannot send hello: {e}"))?;

    let info = match read_packet(&stream, deadline) {
        Ok(p) => p,
        Err(packet::PacketError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(format!("leader {leader} {NOT_ZKELECT}"));
        }
        Err(e) => return Err(format!("waiting for LEADERINFO: {e}")),
    };
    let epoch = expect(&info, packet::LEADERINFO)?;
    if epoch < accepted {
        return Err(format!("Error: Epoch of leader is lower: leader epoch {epoch} < our accepted epoch {accepted}"));
    }
    if epoch > accepted {
        s.set_accepted_epoch(epoch)?;
    }
    let ack_epoch = QuorumPacket::new(
        packet::ACKEPOCH,
        epoch_zxid(s.current_epoch()),
        Some(s.current_epoch().to_be_bytes().to_vec()),
    );
    write_packet(&stream, &ack_epoch).map_err(|e| format!("cannot send ACKEPOCH: {e}"))?;

    s.set_phase("synchronization");
    let newleader = read_packet(&stream, deadline).map_err(|e| format!("waiting for NEWLEADER: {e}"))?;
    if expect(&newleader, packet::NEWLEADER)? != epoch {
        return Err("NEWLEADER for another epoch".into());
    }
    if s.current_epoch() < epoch {
        s.set_current_epoch(epoch)?;
    }
    write_packet(&stream, &QuorumPacket::new(packet::ACK, epoch_zxid(epoch), None))
        .map_err(|e| format!("cannot send ACK: {e}"))?;
    let uptodate = read_packet(&stream, deadline).map_err(|e| format!("waiting for UPTODATE: {e}"))?;
    expect(&uptodate, packet::UPTODATE)?;
    s.update_election_vote(epoch);
    s.set_phase("broadcast");

    // Broadcast: the leader pings every tickTime/2; silence for syncLimit ticks means it is gone.
    loop {
        let p = match read_packet(&stream, Instant::now() + sync) {
            Ok(p) => p,
            Err(packet::PacketError::Io(e)) if closed(&e) => {
                // The leader's end was closed: its process is gone (or it stepped down). Its vote cannot
                // arrive within the next finalizeWait, so the next election does not wait for it.
                s.leader_gone(leader);
                return Err(format!("the leader closed the connection: {e}"));
            }
            Err(e) => return Err(e.to_string()),
        };
        match p.ptype {
            packet::PING => write_packet(&stream, &QuorumPacket::new(packet::PING, p.zxid, None))
                .map_err(|e| format!("cannot answer PING: {e}"))?,
            other => log::debug!("Ignoring {} from leader {leader}", type_name(other)),
        }
    }
}

fn closed(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe)
}

/// The epoch a LEADERINFO/NEWLEADER/UPTODATE carries (in its zxid), after checking the type.
fn expect(p: &QuorumPacket, ptype: i32) -> Result<i64, String> {
    if p.ptype != ptype {
        return Err(format!("expected {} but got {}", type_name(ptype), type_name(p.ptype)));
    }
    Ok(p.zxid >> 32)
}

/// `Learner.connectToLeader`, within initLimit ticks; every address of the leader is tried in turn
/// and names are re-resolved each time. Java waits a fixed 100 ms between its 5 attempts; the
/// leader binds its quorum port the moment it decides, so retrying after 5, 10, 20 … ms (capped at
/// 100) finds it as soon as it is there. A leader whose own vote shows it will not lead this round
/// is given up at once.
fn connect_to_leader(
    s: &Shared,
    leader: i64,
    addrs: &[crate::config::HostPort],
    deadline: Instant,
) -> Result<TcpStream, String> {
    let round = s.status.lock().current_vote.election_epoch;
    let mut last = String::from("no address");
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(why) = s.leader_moved_on(leader, round) {
            return Err(format!("Unable to connect to the leader: {last}; giving up, {why}"));
        }
        for a in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || s.is_stopping() {
                return Err(format!("Unable to connect to the leader: {last}"));
            }
            let sa = match (a.host.as_str(), a.port).to_socket_addrs().map(|mut i| i.next()) {
                Ok(Some(sa)) => sa,
                Ok(None) => continue,
                Err(e) => {
                    last = format!("{a}: {e}");
                    continue;
                }
            };
            match TcpStream::connect_timeout(&sa, left) {
                Ok(st) => {
                    let sync = s.tick() * s.cfg.sync_limit;
                    let _ = crate::cnx::socket::set_sock_opts(&st, s.cfg.tcp_keep_alive, sync);
                    let _ = st.set_write_timeout(Some(sync));
                    return Ok(st);
                }
                Err(e) => last = format!("{a}: {e}"),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !s.pause(pause.min(left)) {
            return Err(format!("Unable to connect to the leader: {last}"));
        }
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
