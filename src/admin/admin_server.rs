//! The AdminServer port (`JettyAdminServer`): ZooKeeper's commands under `admin.commandURL`, and
//! zkelect's own endpoints next to them:
//!
//! | path | answer |
//! |---|---|
//! | `/` | the status page (HTML) |
//! | `/leader` | who leads in which epoch, and this node's state (JSON) |
//! | `/health` | liveness: 200 while the node's threads are working, else 503 |
//! | `/ready` | readiness: 200 in a quorum, else 503 |
//! | `/watch` | Server-Sent Events: every leadership change, in order (see [`super::watch`]) |
//! | `/metrics` | the Prometheus exposition |
//! | `/commands`, `/commands/<name>` | ZooKeeper's command list and commands (see [`super::commands`]) |
//!
//! HTTP rules as in ZooKeeper 3.8: GET (and HEAD) only, POST/PUT/DELETE 405, TRACE 403, other
//! methods 501, unknown paths 404; a command always answers 200 with the outcome in its JSON.
//! zkelect's own paths take precedence over a command URL that would cover them.

use super::commands::{self, DEFAULT_TRACE_MASK};
use super::http::{self, HTML, HttpLimits, JSON, Request, Response, Routes};
use super::json::{Json, Obj};
use super::server::AdminServer;
use super::status_page;
use super::watch::{self, LeadershipJournal};
use super::{metrics, text};
use crate::config::{HostPort, QuorumPeerConfig};
use crate::snapshot::Snapshot;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

/// Says whether the node's threads are working (`Err` names what is not).
pub type Liveness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the admin port reads.
#[derive(Clone)]
pub struct Sources {
    pub snapshot: Arc<dyn Fn() -> Snapshot + Send + Sync>,
    pub journal: Arc<LeadershipJournal>,
    pub liveness: Liveness,
}

/// Connections served at once; the rest are answered 503.
pub const MAX_CONNECTIONS: usize = 32;
/// Event streams open at once, so that watchers cannot take every connection.
pub const MAX_WATCHERS: usize = 8;
/// Leadership changes listed on the status page.
const PAGE_CHANGES: usize = 10;

/// Starts the AdminServer if `admin.enableServer=true`. A port that cannot be bound is a warning
/// and the node runs on without it, as a ZooKeeper quorum member does (`QuorumPeer.start`).
pub fn start(cfg: Arc<QuorumPeerConfig>, sources: Sources) -> Option<AdminServer> {
    let settings = &cfg.admin_server;
    if !settings.enabled {
        log::info!(
            "AdminServer is off (set admin.enableServer=true for the HTTP commands, /leader and the status page)"
        );
        return None;
    }
    if let Some(why) = &settings.refused {
        log::warn!("AdminServer not started: {why}");
        return None;
    }
    let addr = HostPort::new(settings.address.clone(), settings.port);
    let limits = HttpLimits {
        max_connections: MAX_CONNECTIONS,
        idle_timeout: Duration::from_millis(settings.idle_timeout_ms),
        ..HttpLimits::default()
    };
    let state = Arc::new(State {
        cfg: Arc::clone(&cfg),
        sources,
        trace_mask: AtomicI64::new(DEFAULT_TRACE_MASK),
        watchers: Arc::new(AtomicUsize::new(0)),
    });
    let routes: Routes = Arc::new(move |r: &Request| route(&state, r));
    match http::start("AdminServer", &addr, limits, routes) {
        Ok(server) => {
            log::info!(
                "AdminServer on http://{}/ : status page, {} (commands), /leader, /health, /ready, /watch, /metrics",
                HostPort::new(server.local_addr().ip().to_string(), server.local_port()),
                settings.command_url
            );
            Some(server)
        }
        Err(e) => {
            log::warn!("Problem starting AdminServer: {e}; the node runs without it");
            None
        }
    }
}

struct State {
    cfg: Arc<QuorumPeerConfig>,
    sources: Sources,
    trace_mask: AtomicI64,
    watchers: Arc<AtomicUsize>,
}

fn route(s: &State, r: &Request) -> Response {
    match r.method.as_str() {
        "GET" | "HEAD" => {}
        // Jetty's servlet answers OPTIONS itself; ZooKeeper forbids TRACE (JettyAdminServer).
        "OPTIONS" => return Response::empty(200).header("Allow", "GET, HEAD, OPTIONS"),
        "TRACE" => return Response::empty(403),
        "POST" | "PUT" | "DELETE" => return Response::status(405).header("Allow", "GET, HEAD, OPTIONS"),
        _ => return Response::status(501),
    }
    let no_store = |resp: Response| resp.header("Cache-Control", "no-store");
    match r.path.as_str() {
        "/" => {
            let snap = (s.sources.snapshot)();
            let page = status_page::render(&snap, &s.cfg, &s.sources.journal.recent(PAGE_CHANGES), SystemTime::now());
            no_store(Response::new(200, HTML, page))
                .header("Content-Security-Policy", status_page::CONTENT_SECURITY_POLICY)
                .header("X-Content-Type-Options", "nosniff")
        }
        "/leader" => no_store(Response::json(200, &Json::Object(leader_json(&(s.sources.snapshot)())))),
        "/ready" => no_store(ready(&(s.sources.snapshot)())),
        "/health" => no_store(health(s)),
        "/watch" => watch(s, r),
        "/metrics" => no_store(metrics::response(&(s.sources.snapshot)(), &s.cfg)),
        path => match command_name(path, &s.cfg.admin_server.command_url) {
            Some(None) => Response::new(200, HTML, commands::listing(&s.cfg.admin_server.command_url)),
            Some(Some(name)) => {
                let snap = (s.sources.snapshot)();
                let ctx = commands::Context { snap: &snap, cfg: &s.cfg, trace_mask: &s.trace_mask, args: &r.query };
                no_store(Response::new(200, JSON, Json::Object(commands::run(name, &ctx)).pretty()))
            }
            None => Response::status(404),
        },
    }
}

/// For a path under the command URL: `Some(None)` for the list, `Some(Some(name))` for a command
/// (everything after the URL's `/`, as Jetty's `pathInfo` without its first character).
fn command_name<'a>(path: &'a str, command_url: &str) -> Option<Option<&'a str>> {
    let rest = path.strip_prefix(command_url)?;
    match rest {
        "" | "/" => Some(None),
        _ => rest.strip_prefix('/').map(Some),
    }
}

/// `GET /leader`: the leader and its epoch, which belong together: `leader` is null until this
/// node's leadership is established (while electing, and during the session's set-up), and
/// `epoch` is then the last one this node acknowledged.
pub fn leader_json(snap: &Snapshot) -> Obj {
    let st = &snap.status;
    let established = st.in_quorum();
    Obj::new()
        .field("leader", if established { st.leader() } else { None })
        .field("epoch", st.current_epoch)
        .field("state", st.state.lower())
        .field("phase", st.phase.map(|p| p.as_str()))
        .field("in_quorum", established)
        .field("lease", st.lease.as_str())
        .field("myid", st.my_id)
}

/// `GET /ready`: 200 in a quorum, 503 otherwise.
fn ready(snap: &Snapshot) -> Response {
    let st = &snap.status;
    let ready = st.in_quorum();
    let body = Obj::new()
        .field("ready", ready)
        .field("state", st.peer_state())
        .field("leader", if ready { st.leader() } else { None })
        .field("epoch", st.current_epoch);
    Response::json(if ready { 200 } else { 503 }, &Json::Object(body))
}

/// `GET /health`: liveness only, never the role (a follower or a node looking for a leader is
/// alive): 200 while the node's threads work, 503 naming what does not.
fn health(s: &State) -> Response {
    let (status, body) = match (s.sources.liveness)() {
        Ok(()) => (200, Obj::new().field("status", "ok")),
        Err(why) => (503, Obj::new().field("status", "failing").field("reason", why)),
    };
    let body = body.field("uptime_ms", text::uptime_ms(&(s.sources.snapshot)().status));
    Response::json(status, &Json::Object(body))
}

/// `GET /watch`: at most [`MAX_WATCHERS`] streams at once.
fn watch(s: &State, r: &Request) -> Response {
    let taken = s.watchers.fetch_add(1, Ordering::AcqRel);
    if taken >= MAX_WATCHERS {
        s.watchers.fetch_sub(1, Ordering::AcqRel);
        return Response::text(503, format!("503 Service Unavailable: {MAX_WATCHERS} watchers already\n"))
            .header("Retry-After", "5");
    }
    let slot = WatcherSlot(Arc::clone(&s.watchers));
    let last_id = r.header("last-event-id").or_else(|| r.param("last_event_id")).map(str::to_string);
    let inner = watch::stream(Arc::clone(&s.sources.journal), last_id);
    Response::stream(
        "text/event-stream",
        Box::new(move |out| {
            let _slot = slot;
            inner(out);
        }),
    )
    .header("Cache-Control", "no-store")
}

/// Gives a watcher's place back when its stream ends (or is never started, for HEAD).
struct WatcherSlot(Arc<AtomicUsize>);

impl Drop for WatcherSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::election::{ServerState, Vote};
    use crate::snapshot::{NodeStatus, SessionPhase};

    #[test]
    fn command_paths() {
        assert_eq!(command_name("/commands", "/commands"), Some(None));
        assert_eq!(command_name("/commands/", "/commands"), Some(None));
        assert_eq!(command_name("/commands/ruok", "/commands"), Some(Some("ruok")));
        assert_eq!(command_name("/commands/ruok/", "/commands"), Some(Some("ruok/")));
        assert_eq!(command_name("/commandsx", "/commands"), None);
        assert_eq!(command_name("/other", "/commands"), None);
    }

    #[test]
    fn leader_is_null_until_the_leadership_is_established() {
        let mut st = NodeStatus::new(1, Vote::new(3, 0, 1, 1), 1, 1);
        let pretty = |st: &NodeStatus| Json::Object(leader_json(&Snapshot::of_status(st.clone()))).pretty();
        assert_eq!(
            pretty(&st),
            "{\n  \"leader\" : null,\n  \"epoch\" : 1,\n  \"state\" : \"looking\",\n  \"phase\" : null,\n  \
             \"in_quorum\" : false,\n  \"lease\" : \"inactive\",\n  \"myid\" : 1\n}"
        );
        st.state = ServerState::Following;
        st.phase = Some(SessionPhase::Discovery);
        assert!(pretty(&st).contains("\"leader\" : null"));
        st.phase = Some(SessionPhase::Broadcast);
        assert!(pretty(&st).starts_with("{\n  \"leader\" : 3,\n  \"epoch\" : 1,\n  \"state\" : \"following\",\n"));
    }
}
