//! `Follower` / `Observer`: one session to the elected leader's quorum port. The epoch agreement,
//! then PING answers; any EOF, deadline or protocol error ends the session (→ LOOKING). A leader
//! that refuses our hello is a ZooKeeper server: then [`election_only`] follows it.

use super::context::PeerContext;
use super::election_only::{self, Outcome};
use super::error::{self, Error};
use super::session::{PacketReader, write_packet};
use crate::config::HostPort;
use crate::election::{ServerState, Steer, votes};
use crate::lease::Stamp;
use crate::messenger::ElectionEvent;
use crate::net::{self, PeerStream, SocketOptions};
use crate::snapshot::SessionPhase;
use crate::wire::packet::{self, Hello, PacketError, QuorumPacket, epoch_zxid, type_name};
use crossbeam_channel::Receiver;
use std::convert::Infallible;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

pub fn follow(ctx: &PeerContext, events: &Receiver<ElectionEvent>) {
    let st = ctx.status.get();
    let (leader, observer) = (st.current_vote.id, st.state == ServerState::Observing);
    // A leader not yet known to lead may have closed our hello only because it was not listening
    // yet, with something in between that accepts for it (a TCP proxy): then the session is tried
    // once more after the election confirms it as leader. A ZooKeeper leader just refuses again.
    let mut mode = election_only::Mode::UntilConfirmed;
    loop {
        let Err(e) = session(ctx, leader, observer);
        match e {
            e if ctx.is_stopping() => log::debug!("session with leader {leader} closed on shutdown: {e}"),
            Error::NotZkelect { .. } => {
                if votes::leader_known_leading(&ctx.latest_votes(), leader) {
                    mode = election_only::Mode::UntilLost;
                }
                if election_only::run(ctx, events, leader, mode) == Outcome::RetrySession {
                    mode = election_only::Mode::UntilLost;
                    continue;
                }
            }
            e @ Error::LeaseReleased { .. } => log::info!("Leaving leader {leader}: {e}"),
            e => log::warn!("Exception when following the leader {leader}: {e}"),
        }
        return;
    }
}

/// One session with `leader`, until it fails.
fn session(ctx: &PeerContext, leader: i64, observer: bool) -> Result<Infallible, Error> {
    let server = ctx.qv.members.get(&leader).filter(|s| s.is_participant()).ok_or(Error::NoSuchLeader(leader))?;
    let deadline = Instant::now() + ctx.init_window();
    ctx.status.set_phase(SessionPhase::Discovery);
    let stream = connect_to_leader(ctx, leader, &server.quorum_addrs(), deadline)?;
    ctx.sessions.register(&stream);
    let mut from_leader = PacketReader::new(&stream);
    let epoch = agree(ctx, &stream, &mut from_leader, leader, observer, deadline)?;
    ctx.status.update_election_vote(epoch);
    ctx.status.set_phase(SessionPhase::Broadcast);
    // Broadcast: the leader pings every tickTime/2; silence for syncLimit ticks means it is gone.
    loop {
        let p = match read_from_leader(ctx, &mut from_leader, Instant::now() + ctx.sync_window()) {
            Ok(p) => p,
            Err(PacketError::Io(e)) if closed(&e) => {
                // The leader's end was closed: its process is gone (or it stepped down). Its vote cannot
                // arrive within the next finalizeWait, so the next election does not wait for it.
                ctx.set_departed_leader(leader);
                return Err(Error::LeaderClosed { leader, source: e });
            }
            Err(source) => return Err(Error::Packet { waiting_for: "PING".into(), source }),
        };
        match p.ptype {
            packet::PING => write_packet(&stream, &QuorumPacket::new(packet::PING, p.zxid, None))
                .map_err(error::io("answering PING"))?,
            packet::LEASE_RELEASED => {
                let to = p.data_i64(0).filter(|t| *t >= 0);
                ctx.leases.leader_released();
                ctx.leases.steer_next(to.map_or(Steer::None, Steer::To));
                return Err(Error::LeaseReleased { leader, to });
            }
            other => log::debug!("Ignoring {} from leader {leader}", type_name(other)),
        }
    }
}

/// A packet from the leader; its arrival is when this node last heard from a leader (reported to
/// the next leader, which waits out this one's lease from then).
fn read_from_leader(
    ctx: &PeerContext,
    from_leader: &mut PacketReader,
    deadline: Instant,
) -> Result<QuorumPacket, PacketError> {
    let p = from_leader.next(deadline)?;
    ctx.leases.heard_from_leader();
    Ok(p)
}

/// Discovery and synchronisation with the leader: hello → LEADERINFO → ACKEPOCH → NEWLEADER →
/// ACK → UPTODATE, persisting the epochs at Zab's steps. Returns the new epoch.
fn agree(
    ctx: &PeerContext,
    stream: &PeerStream,
    from_leader: &mut PacketReader,
    leader: i64,
    observer: bool,
    deadline: Instant,
) -> Result<i64, Error> {
    let accepted = ctx.epochs.accepted();
    let hello = Hello {
        sid: ctx.my_id(),
        observer,
        accepted_epoch: accepted,
        current_epoch: ctx.epochs.current(),
        last_leader_ms: Some(ctx.leases.last_leader().report(Stamp::now())),
    };
    write_packet(stream, &hello.packet()).map_err(error::io("sending hello"))?;
    let info = match read_from_leader(ctx, from_leader, deadline) {
        Ok(p) => p,
        Err(PacketError::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => return Err(Error::NotZkelect { leader }),
        Err(source) => return Err(Error::Packet { waiting_for: "LEADERINFO".into(), source }),
    };
    let epoch = expect(&info, packet::LEADERINFO)?;
    if epoch < accepted {
        return Err(Error::Protocol(format!(
            "Error: Epoch of leader is lower: leader epoch {epoch} < our accepted epoch {accepted}"
        )));
    }
    if epoch > accepted {
        ctx.epochs.set_accepted(epoch)?;
    }
    let current = ctx.epochs.current();
    let ack_epoch = QuorumPacket::new(packet::ACKEPOCH, epoch_zxid(current), Some(current.to_be_bytes().to_vec()));
    write_packet(stream, &ack_epoch).map_err(error::io("sending ACKEPOCH"))?;

    ctx.status.set_phase(SessionPhase::Synchronization);
    let newleader = read_from_leader(ctx, from_leader, deadline)
        .map_err(|source| Error::Packet { waiting_for: "NEWLEADER".into(), source })?;
    if expect(&newleader, packet::NEWLEADER)? != epoch {
        return Err(Error::Protocol("NEWLEADER for another epoch".into()));
    }
    if ctx.epochs.current() < epoch {
        ctx.epochs.set_current(epoch)?;
    }
    write_packet(stream, &QuorumPacket::new(packet::ACK, epoch_zxid(epoch), None)).map_err(error::io("sending ACK"))?;
    let uptodate = read_from_leader(ctx, from_leader, deadline)
        .map_err(|source| Error::Packet { waiting_for: "UPTODATE".into(), source })?;
    expect(&uptodate, packet::UPTODATE)?;
    Ok(epoch)
}

fn closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// The epoch a LEADERINFO/NEWLEADER/UPTODATE carries (in its zxid), after checking the type.
fn expect(p: &QuorumPacket, ptype: i32) -> Result<i64, Error> {
    if p.ptype != ptype {
        return Err(Error::Protocol(format!("expected {} but got {}", type_name(ptype), type_name(p.ptype))));
    }
    Ok(p.zxid >> 32)
}

/// `Learner.connectToLeader`, within initLimit ticks; every address of the leader is tried in turn
/// and names are re-resolved each time. Java waits a fixed 100 ms between its 5 attempts; the
/// leader binds its quorum port the moment it decides, so retrying after 5, 10, 20 … ms (capped at
/// 100) finds it as soon as it is there. A leader whose own vote shows it will not lead this round
/// is given up at once.
fn connect_to_leader(
    ctx: &PeerContext,
    leader: i64,
    addrs: &[HostPort],
    deadline: Instant,
) -> Result<PeerStream, Error> {
    let round = ctx.status.current_vote().election_epoch;
    let opts = SocketOptions { keep_alive: ctx.cfg.tcp_keep_alive, timeout: ctx.sync_window() };
    let mut last_error = String::from("no address");
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(moved) = votes::leader_moved_on(&ctx.latest_votes(), leader, round) {
            return Err(Error::LeaderMovedOn { last_error, moved });
        }
        // A leader whose election port does not answer either is gone: no use waiting out initLimit
        // (the decision may rest on its votes from before it died).
        if ctx.cnx.down_peers().contains(&leader) {
            last_error.push_str("; its election port does not answer either");
            return Err(Error::LeaderUnreachable { last_error });
        }
        for a in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || ctx.is_stopping() {
                return Err(Error::LeaderUnreachable { last_error });
            }
            match net::resolve(a).and_then(|sa| PeerStream::connect(sa, &a.host, left, opts, &ctx.security)) {
                Ok(s) => return Ok(s),
                Err(e) => last_error = format!("{a}: {e}"),
            }
        }
        // Is it there at all? A dial of its election port tells (no-op while connected).
        ctx.cnx.connect_one(leader);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !ctx.shutdown.sleep(pause.min(left)) {
            return Err(Error::LeaderUnreachable { last_error });
        }
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
