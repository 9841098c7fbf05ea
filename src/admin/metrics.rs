//! Prometheus metrics at `GET /metrics` when `metricsProvider.httpPort` is set (ZooKeeper's key;
//! `metricsProvider.httpHost` chooses the address, default all).

use super::http::{self, HttpLimits, Request, Response, Routes};
use super::server::{AdminError, AdminServer};
use crate::config::{HostPort, QuorumPeerConfig};
use crate::election::ServerState;
use crate::snapshot::Snapshot;
use std::fmt::Write as _;
use std::sync::Arc;

/// Prometheus' text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Builds the exposition text (format 0.0.4), one family at a time.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str, samples: &[(String, String)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(self.0, "{name}{labels} {value}");
        }
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl ToString) {
        self.family(name, kind, help, &[(String::new(), value.to_string())]);
    }
}

pub fn render(snap: &Snapshot, cfg: &QuorumPeerConfig) -> String {
    let st = &snap.status;
    let mut x = Exposition(String::new());
    let leading = st.state == ServerState::Leading && st.in_quorum();
    x.one("zkelect_is_leader", "gauge", "1 when this node leads an established quorum.", u8::from(leading));
    let states = [ServerState::Looking, ServerState::Following, ServerState::Leading, ServerState::Observing];
    let samples: Vec<(String, String)> =
        states.iter().map(|s| (format!("{{state=\"{}\"}}", s.lower()), u8::from(st.state == *s).to_string())).collect();
    x.family("zkelect_state", "gauge", "1 for the node's current state.", &samples);
    x.one("zkelect_in_quorum", "gauge", "1 when the node is part of a working quorum.", u8::from(st.in_quorum()));
    x.one(
        "zkelect_leader_id",
        "gauge",
        "Server id of the current leader, -1 while looking.",
        st.leader().unwrap_or(-1),
    );
    x.one("zkelect_leader_changes_total", "counter", "Elections that produced a different leader.", st.leader_changes);
    x.one(
        "zkelect_current_epoch",
        "gauge",
        "currentEpoch: the fencing token of the current leadership.",
        st.current_epoch,
    );
    x.one("zkelect_accepted_epoch", "gauge", "acceptedEpoch.", st.accepted_epoch);
    let leases: Vec<(String, String)> = ["active", "waiting", "inactive"]
        .iter()
        .map(|k| (format!("{{state=\"{k}\"}}"), u8::from(st.lease.as_str() == *k).to_string()))
        .collect();
    x.family(
        "zkelect_lease_state",
        "gauge",
        "1 for the lease's state: active (the only leader that may act), waiting (elected, earlier leases may still run) or inactive.",
        &leases,
    );
    x.one(
        "zkelect_lease_remaining_seconds",
        "gauge",
        "How long an active leader's lease is confirmed for; 0 unless active.",
        super::text::lease_remaining(st.lease).as_secs_f64(),
    );
    x.one("zkelect_election_round", "gauge", "The election's logical clock.", st.logicalclock);
    x.one("zkelect_looking_total", "counter", "Times the node entered LOOKING.", st.looking_count);
    x.one("zkelect_quorum_size", "gauge", "Number of voters in the configuration.", cfg.quorum_verifier.voter_count());
    x.one(
        "zkelect_synced_learners",
        "gauge",
        "Learners a leader heard from within syncLimit ticks.",
        st.synced_learners.len(),
    );
    x.family("zkelect_election_time_seconds", "summary", "Time spent LOOKING per election.", &[]);
    let _ = writeln!(x.0, "zkelect_election_time_seconds_sum {}", st.election.sum_ms as f64 / 1000.0);
    let _ = writeln!(x.0, "zkelect_election_time_seconds_count {}", st.election.count);
    let peers: Vec<(String, String)> = cfg
        .quorum_verifier
        .members
        .keys()
        .filter(|s| **s != cfg.my_id)
        .map(|s| (format!("{{sid=\"{s}\"}}"), u8::from(snap.peers.get(s).is_some_and(|p| p.connected)).to_string()))
        .collect();
    x.family("zkelect_peer_connected", "gauge", "1 when an election connection to the peer is up.", &peers);
    x.one("zkelect_notifications_sent_total", "counter", "Notifications sent.", snap.notifications_sent);
    x.one("zkelect_notifications_received_total", "counter", "Notifications received.", snap.notifications_received);
    x.one(
        "zkelect_malformed_notifications_total",
        "counter",
        "Malformed notifications dropped.",
        snap.malformed_dropped,
    );
    x.one(
        "zkelect_notification_replies_held_back_total",
        "counter",
        "Replies not sent because they would repeat the same answer to the same notification within the notification interval.",
        snap.replies_held_back,
    );
    x.one(
        "zkelect_notifications_dropped_total",
        "counter",
        "Received notifications dropped because the election was 100 behind (a newer one from the same peer was kept).",
        snap.notifications_dropped,
    );
    let traffic = |f: fn(&crate::messenger::PeerTraffic) -> u64| -> Vec<(String, String)> {
        let mut v: Vec<_> = snap.traffic.iter().map(|(sid, t)| (*sid, f(t))).collect();
        v.sort_unstable();
        v.into_iter().map(|(sid, n)| (format!("{{sid=\"{sid}\"}}"), n.to_string())).collect()
    };
    x.family(
        "zkelect_peer_notifications_sent_total",
        "counter",
        "Notifications sent to each peer.",
        &traffic(|t| t.sent),
    );
    x.family(
        "zkelect_peer_notifications_received_total",
        "counter",
        "Notifications received from each peer.",
        &traffic(|t| t.received),
    );
    x.one(
        "zkelect_quorum_tls",
        "gauge",
        "1 when this node dials its peers with TLS (sslQuorum).",
        u8::from(snap.quorum_tls.dials_tls),
    );
    let peer_tls: Vec<(String, String)> = cfg
        .quorum_verifier
        .members
        .keys()
        .filter(|s| **s != cfg.my_id)
        .map(|s| (format!("{{sid=\"{s}\"}}"), u8::from(snap.peers.get(s).is_some_and(|p| p.tls.is_some())).to_string()))
        .collect();
    x.family("zkelect_peer_tls", "gauge", "1 when the election connection to the peer is up and uses TLS.", &peer_tls);
    x.one("zkelect_open_fds", "gauge", "Open file descriptors.", super::text::fd_counts().0);
    x.0
}

pub fn start(
    cfg: Arc<QuorumPeerConfig>,
    snapshot: Arc<dyn Fn() -> Snapshot + Send + Sync>,
) -> Result<Option<AdminServer>, AdminError> {
    let Some(port) = cfg.metrics_http_port else { return Ok(None) };
    let host = cfg.metrics_http_host.clone().unwrap_or_else(|| "0.0.0.0".into());
    let routes: Routes = Arc::new(move |r: &Request| match (r.method.as_str(), r.path.as_str()) {
        ("GET" | "HEAD", "/metrics") => response(&snapshot(), &cfg),
        ("GET" | "HEAD", _) => Response::text(404, "not found; try /metrics\n"),
        _ => Response::status(405).header("Allow", "GET, HEAD"),
    });
    // One answer per connection, as this endpoint always did (scrapers open one per scrape).
    let limits = HttpLimits { max_connections: 16, keep_alive: false, ..HttpLimits::default() };
    http::start("PrometheusMetricsProviderServer", &HostPort::new(host, port), limits, routes).map(Some)
}

/// The exposition as an HTTP response.
pub fn response(snap: &Snapshot, cfg: &QuorumPeerConfig) -> Response {
    Response::new(200, CONTENT_TYPE, render(snap, cfg))
}
