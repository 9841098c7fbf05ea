//! The text of each four-letter word, from a [`Snapshot`]: ZooKeeper's line formats, so its own
//! tooling (`zkServer.sh status`, `FourLetterWordMain`, monitoring agents) reads them.

use super::json::Json;
use crate::config::QuorumPeerConfig;
use crate::election::ServerState;
use crate::lease::{LeaseState, Stamp};
use crate::snapshot::Snapshot;
use std::fmt::Write;
use std::time::SystemTime;

/// `major.minor.micro-…`: the ZooKeeper release whose protocol this speaks, then ours.
pub const VERSION: &str = concat!("3.8.0-zkelect-", env!("CARGO_PKG_VERSION"));

/// `srvr`'s `Mode:` (and `zk_server_state`): ZooKeeper's names, plus `looking`, which ZooKeeper
/// never shows because it does not answer while electing.
pub fn mode(state: ServerState) -> &'static str {
    match state {
        ServerState::Looking => "looking",
        ServerState::Following => "follower",
        ServerState::Leading => "leader",
        ServerState::Observing => "observer",
    }
}

/// `on (accepts TLS only)`, `off (accepts TLS and plaintext)`, `off`.
fn quorum_tls(snap: &Snapshot) -> String {
    let t = snap.quorum_tls;
    match (t.dials_tls, t.accepts) {
        (false, "plaintext") => "off".into(),
        (dials, accepts) => format!("{} (accepts {accepts})", if dials { "on" } else { "off" }),
    }
}

/// How long an active lease is confirmed for (zero unless active).
pub fn lease_remaining(lease: LeaseState) -> std::time::Duration {
    match lease {
        LeaseState::Active { until } => until.since(Stamp::now()),
        _ => std::time::Duration::ZERO,
    }
}

pub fn zxid(snap: &Snapshot) -> i64 {
    // No transactions: like a fresh ZooKeeper leader, the last zxid is the epoch's first.
    snap.status.current_epoch << 32
}

fn latency_and_counts(out: &mut String, snap: &Snapshot) {
    let _ = writeln!(out, "Latency min/avg/max: 0/0.0/0");
    let _ = writeln!(out, "Received: {}", snap.notifications_received);
    let _ = writeln!(out, "Sent: {}", snap.notifications_sent);
    let _ = writeln!(out, "Connections: 0");
    let _ = writeln!(out, "Outstanding: 0");
    let _ = writeln!(out, "Zxid: 0x{:x}", zxid(snap));
    let _ = writeln!(out, "Mode: {}", mode(snap.status.state));
    let _ = writeln!(out, "Node count: 0");
    if snap.status.state == ServerState::Leading {
        let _ = writeln!(out, "Proposal sizes last/min/max: -1/-1/-1");
    }
    // zkelect's own lines, after ZooKeeper's.
    match snap.status.leader() {
        Some(l) => {
            let _ = writeln!(out, "Leader: {l}");
        }
        None => {
            let _ = writeln!(out, "Leader: none");
        }
    }
    let _ = writeln!(out, "Epoch: {}", snap.status.current_epoch);
    let _ = writeln!(out, "Session: {}", snap.status.phase.map_or("none", |p| p.as_str()));
    let _ = writeln!(out, "Lease: {}", snap.status.lease_text(Stamp::now()));
    let _ = writeln!(out, "Quorum TLS: {}", quorum_tls(snap));
}

pub fn srvr(snap: &Snapshot) -> String {
    let mut out = format!("Zookeeper version: {VERSION}, built on unknown\n");
    latency_and_counts(&mut out, snap);
    out
}

pub fn stat(snap: &Snapshot, client: &str) -> String {
    let mut out = format!("Zookeeper version: {VERSION}, built on unknown\nClients:\n");
    let _ = writeln!(out, " /{client}[0](queued=0,recved=1,sent=0)\n");
    latency_and_counts(&mut out, snap);
    out
}

/// `mntr`'s values, typed (the AdminServer's `monitor` writes them as JSON, without the `zk_`).
pub fn mntr_values(snap: &Snapshot, cfg: &QuorumPeerConfig) -> Vec<(String, Json)> {
    let st = &snap.status;
    let mut out: Vec<(String, Json)> = Vec::new();
    let mut kv = |k: &str, v: Json| out.push((k.to_string(), v));
    kv("version", VERSION.into());
    kv("server_state", mode(st.state).into());
    kv("peer_state", st.peer_state().into());
    kv("avg_latency", 0.0.into());
    kv("max_latency", 0.into());
    kv("min_latency", 0.into());
    kv("packets_received", snap.notifications_received.into());
    kv("packets_sent", snap.notifications_sent.into());
    kv("num_alive_connections", 0.into());
    kv("outstanding_requests", 0.into());
    kv("znode_count", 0.into());
    kv("watch_count", 0.into());
    kv("ephemerals_count", 0.into());
    kv("approximate_data_size", 0.into());
    kv("uptime", uptime_ms(st).into());
    let (open, max) = fd_counts();
    kv("open_file_descriptor_count", open.into());
    kv("max_file_descriptor_count", max.into());
    kv("quorum_size", cfg.quorum_verifier.voter_count().into());
    if st.state == ServerState::Leading {
        let voters = st.synced_learners.iter().filter(|s| cfg.quorum_verifier.is_voter(**s)).count();
        kv("learners", st.synced_learners.len().into());
        kv("synced_followers", voters.into());
        kv("synced_non_voting_followers", 0.into());
        kv("synced_observers", (st.synced_learners.len() - voters).into());
    }
    let e = &st.election;
    let avg = if e.count == 0 { 0.0 } else { e.sum_ms as f64 / e.count as f64 };
    kv("avg_election_time", avg.into());
    kv("min_election_time", e.min_ms.into());
    kv("max_election_time", e.max_ms.into());
    kv("cnt_election_time", e.count.into());
    kv("sum_election_time", e.sum_ms.into());
    kv("looking_count", st.looking_count.into());
    kv("current_epoch", st.current_epoch.into());
    kv("accepted_epoch", st.accepted_epoch.into());
    kv("leader_id", st.leader().unwrap_or(-1).into());
    kv("election_round", st.logicalclock.into());
    kv("connected_peers", snap.peers.values().filter(|p| p.connected).count().into());
    kv("leader_changes", st.leader_changes.into());
    kv("lease_state", st.lease.as_str().into());
    kv("lease_remaining_ms", (lease_remaining(st.lease).as_millis() as i64).into());
    kv("malformed_notifications", snap.malformed_dropped.into());
    kv("notification_replies_held_back", snap.replies_held_back.into());
    kv("notifications_dropped", snap.notifications_dropped.into());
    kv("quorum_tls", i64::from(snap.quorum_tls.dials_tls).into());
    kv("quorum_tls_accepts", snap.quorum_tls.accepts.into());
    let mut peers: Vec<_> = snap.traffic.iter().collect();
    peers.sort_unstable_by_key(|(sid, _)| **sid);
    for (sid, t) in peers {
        kv(&format!("notifications_sent_to_{sid}"), t.sent.into());
        kv(&format!("notifications_received_from_{sid}"), t.received.into());
    }
    out
}

/// `mntr`: `zk_<key>\t<value>` lines; fractions with one decimal, as ZooKeeper prints them.
pub fn mntr(snap: &Snapshot, cfg: &QuorumPeerConfig) -> String {
    let mut out = String::new();
    for (k, v) in mntr_values(snap, cfg) {
        let _ = match v {
            Json::Float(x) => writeln!(out, "zk_{k}\t{x:.1}"),
            Json::Str(s) => writeln!(out, "zk_{k}\t{s}"),
            other => writeln!(out, "zk_{k}\t{}", other.compact()),
        };
    }
    out
}

/// Milliseconds since the node started.
pub fn uptime_ms(st: &crate::snapshot::NodeStatus) -> u64 {
    SystemTime::now().duration_since(st.started).unwrap_or_default().as_millis() as u64
}

pub fn conf(cfg: &QuorumPeerConfig) -> String {
    let me = cfg.me();
    let mut out = String::new();
    let _ = writeln!(out, "clientPort={}", cfg.client_port.map_or(-1, i32::from));
    let _ = writeln!(out, "secureClientPort=-1");
    let _ = writeln!(out, "dataDir={}", cfg.data_dir.join("version-2").display());
    let _ = writeln!(out, "dataDirSize=0");
    let _ = writeln!(out, "dataLogDir={}", cfg.data_log_dir.join("version-2").display());
    let _ = writeln!(out, "dataLogSize=0");
    let _ = writeln!(out, "tickTime={}", cfg.tick_time);
    let _ = writeln!(out, "maxClientCnxns=0");
    let _ = writeln!(out, "minSessionTimeout={}", 2 * cfg.tick_time);
    let _ = writeln!(out, "maxSessionTimeout={}", 20 * cfg.tick_time);
    let _ = writeln!(out, "clientPortListenBacklog=-1");
    let _ = writeln!(out, "serverId={}", cfg.my_id);
    let _ = writeln!(out, "initLimit={}", cfg.init_limit);
    let _ = writeln!(out, "syncLimit={}", cfg.sync_limit);
    let _ = writeln!(out, "electionAlg=3");
    let ports = |f: fn(&crate::config::ServerAddress) -> u16| {
        me.map(|m| m.addrs.iter().map(|a| f(a).to_string()).collect::<Vec<_>>().join("|")).unwrap_or_default()
    };
    let _ = writeln!(out, "electionPort={}", ports(|a| a.election_port));
    let _ = writeln!(out, "quorumPort={}", ports(|a| a.quorum_port));
    let _ = writeln!(out, "peerType={}", if cfg.peer_type == crate::config::LearnerType::Observer { 1 } else { 0 });
    let _ = writeln!(out, "membership: ");
    let _ = writeln!(out, "{}", cfg.quorum_verifier.config_text());
    out
}

fn ago(t: SystemTime, now: SystemTime) -> String {
    format!("{} ms ago", now.duration_since(t).unwrap_or_default().as_millis())
}

/// `elec` (zkelect only): why an election is or is not converging.
pub fn elec(snap: &Snapshot, cfg: &QuorumPeerConfig) -> String {
    let st = &snap.status;
    let now = SystemTime::now();
    let mut out = String::new();
    let _ = writeln!(out, "State: {}", st.peer_state());
    let _ = writeln!(out, "Round: 0x{:x}", st.logicalclock);
    let p = st.proposal;
    let _ = writeln!(out, "Proposal: leader {} zxid 0x{:x} peerEpoch {}", p.id, p.zxid, p.peer_epoch);
    let v = st.current_vote;
    let _ = writeln!(
        out,
        "Current vote: leader {} zxid 0x{:x} round 0x{:x} peerEpoch {}",
        v.id, v.zxid, v.election_epoch, v.peer_epoch
    );
    let _ = writeln!(out, "Epochs: current {} accepted {}", st.current_epoch, st.accepted_epoch);
    let _ = writeln!(out, "Elections: {} (last took {} ms)", st.election.count, st.election.last_ms);
    let _ = writeln!(out, "Peers:");
    for (sid, server) in &cfg.quorum_verifier.members {
        if *sid == cfg.my_id {
            continue;
        }
        let c = snap.peers.get(sid).cloned().unwrap_or_default();
        let role = if server.is_participant() { "participant" } else { "observer" };
        let mut line = format!(
            "  {sid} ({role}, {}): {}",
            server.election_addrs().iter().map(ToString::to_string).collect::<Vec<_>>().join("|"),
            if c.connected { "connected" } else { "not connected" }
        );
        if let (false, Some(e), Some(t)) = (c.connected, &c.last_connect_error, c.last_connect_error_at) {
            let _ = write!(line, "; last connect error {} ({e})", ago(t, now));
        }
        match snap.last_votes.get(sid) {
            Some((lv, t)) => {
                let state = lv.state.name();
                let _ = write!(
                    line,
                    "; last vote {state} leader {} round 0x{:x} peerEpoch {} zxid 0x{:x} ({})",
                    lv.leader,
                    lv.election_epoch,
                    lv.peer_epoch,
                    lv.zxid,
                    ago(*t, now)
                );
            }
            None => line.push_str("; no vote received"),
        }
        if c.connected {
            let _ =
                write!(line, "; {}", c.tls.as_deref().map_or_else(|| "plaintext".to_string(), |t| format!("TLS {t}")));
        }
        let t = snap.traffic.get(sid).copied().unwrap_or_default();
        let _ = write!(line, "; notifications sent {}, received {}", t.sent, t.received);
        let _ = writeln!(out, "{line}");
    }
    out
}

/// (open, max) file descriptors of this process, from /proc.
pub fn fd_counts() -> (usize, u64) {
    let open = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("Max open files")).and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(0);
    (open, max)
}
