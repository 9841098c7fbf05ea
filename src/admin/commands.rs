//! ZooKeeper's AdminServer commands (`Commands.java`, 3.8): every primary name and alias, each
//! answer in ZooKeeper's shape (`CommandResponse.toMap`: the command's keys first, then `command`,
//! then `error`), from a [`Snapshot`].
//!
//! Where zkelect differs, on purpose:
//! - ZooKeeper answers a command that needs a running server (`serverRequired`) only with
//!   `command` and the error "This ZooKeeper instance is not currently serving requests" while it
//!   is not in a quorum. zkelect still fills in the command's keys (the state is `looking`, the
//!   election is visible) and keeps ZooKeeper's error, so that probes that grep `"error" : null`
//!   keep meaning "in a quorum". `monitor` answers while electing (ZooKeeper fails with 500) and
//!   `zabstate` gives its whole form with `"zabstate" : "election"`.
//! - Commands about the data tree and client sessions (`dump`, `hash`, `watches`, `connections`,
//!   …) answer with ZooKeeper's shape and empty content: zkelect has neither.
//! - `initial_configuration` holds the configuration as read (passwords redacted); ZooKeeper 3.8
//!   sends null in a quorum, as nothing ever sets it there.

use super::json::{Json, Obj};
use super::text;
use crate::config::{HostPort, QuorumPeerConfig, QuorumServer, quorum::java_hash_order};
use crate::election::ServerState;
use crate::snapshot::{SessionPhase, Snapshot};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

/// ZooKeeper's answer to a command that needs a serving server.
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// `ZooTrace`'s default mask (ZooKeeper's `get_trace_mask` answer on a fresh server).
pub const DEFAULT_TRACE_MASK: i64 = 306;

/// What a command reads.
pub struct Context<'a> {
    pub snap: &'a Snapshot,
    pub cfg: &'a QuorumPeerConfig,
    /// `set_trace_mask`'s value: kept and reported, as ZooKeeper does; zkelect has no request
    /// tracing for it to switch (its logging is set with `RUST_LOG`).
    pub trace_mask: &'a AtomicI64,
    /// The query parameters (ZooKeeper passes the first value of each).
    pub args: &'a [(String, String)],
}

impl Context<'_> {
    fn arg(&self, name: &str) -> Option<&str> {
        self.args.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

pub struct Command {
    /// The primary name, then the aliases.
    pub names: &'static [&'static str],
    /// `CommandBase.serverRequired`: answered with [`NOT_SERVING`] outside a quorum.
    pub server_required: bool,
    run: fn(&Context<'_>) -> Obj,
}

impl Command {
    pub fn primary(&self) -> &'static str {
        self.names[0]
    }
}

/// Every command of ZooKeeper 3.8, by primary name.
pub const COMMANDS: &[Command] = &[
    Command { names: &["configuration", "conf", "config"], server_required: true, run: configuration },
    Command { names: &["connection_stat_reset", "crst"], server_required: true, run: nothing },
    Command { names: &["connections", "cons"], server_required: true, run: connections },
    Command { names: &["dirs"], server_required: true, run: dirs },
    Command { names: &["dump"], server_required: true, run: dump },
    Command { names: &["environment", "env", "envi"], server_required: false, run: environment },
    Command { names: &["get_trace_mask", "gtmk"], server_required: false, run: get_trace_mask },
    Command { names: &["hash"], server_required: true, run: hash },
    Command { names: &["initial_configuration", "icfg"], server_required: true, run: initial_configuration },
    Command { names: &["is_read_only", "isro"], server_required: true, run: is_read_only },
    Command { names: &["last_snapshot", "lsnp"], server_required: true, run: last_snapshot },
    Command { names: &["leader", "lead"], server_required: true, run: leader },
    Command { names: &["monitor", "mntr"], server_required: false, run: monitor },
    Command { names: &["observer_connection_stat_reset", "orst"], server_required: true, run: nothing },
    Command { names: &["observers", "obsr"], server_required: true, run: observers },
    Command { names: &["ruok"], server_required: true, run: nothing },
    Command { names: &["server_stats", "srvr"], server_required: true, run: server_stats },
    Command { names: &["set_trace_mask", "stmk"], server_required: false, run: set_trace_mask },
    Command { names: &["stat_reset", "srst"], server_required: true, run: nothing },
    Command { names: &["stats", "stat"], server_required: true, run: stats },
    Command { names: &["system_properties", "sysp"], server_required: false, run: system_properties },
    Command { names: &["voting_view"], server_required: true, run: voting_view },
    Command { names: &["watch_summary", "wchs"], server_required: true, run: watch_summary },
    Command { names: &["watches", "wchc"], server_required: true, run: watches },
    Command { names: &["watches_by_path", "wchp"], server_required: true, run: watches_by_path },
    Command { names: &["zabstate"], server_required: false, run: zabstate },
];

pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.names.contains(&name))
}

/// `Commands.runCommand` and `CommandResponse.toMap`: the whole answer to `name`.
pub fn run(name: &str, ctx: &Context<'_>) -> Obj {
    let Some(cmd) = find(name) else {
        return envelope(Obj::new(), name, Some(format!("Unknown command: {name}")));
    };
    let data = (cmd.run)(ctx);
    if cmd.server_required && !ctx.snap.status.in_quorum() {
        // ZooKeeper names the command as it was asked for here.
        return envelope(data, name, Some(NOT_SERVING.to_string()));
    }
    envelope(data, cmd.primary(), None)
}

/// The command's keys, then `command` and `error`, unless the command set them itself (then its
/// values stay where it put them, as `toMap`'s second `putAll` does).
fn envelope(mut data: Obj, command: &str, error: Option<String>) -> Obj {
    if !data.contains("command") {
        data.put("command", command);
    }
    if !data.contains("error") {
        data.put("error", error);
    }
    data
}

/// `GET /commands`: one link per primary name, sorted, as Jetty's command servlet lists them.
pub fn listing(command_url: &str) -> String {
    let mut names: Vec<&str> = COMMANDS.iter().map(Command::primary).collect();
    names.sort_unstable();
    names.iter().map(|n| format!("<a href=\"{command_url}/{n}\">{n}</a>\n<br/>\n")).collect()
}

fn nothing(_: &Context<'_>) -> Obj {
    Obj::new()
}

fn empty_list() -> Json {
    Json::Array(Vec::new())
}

fn configuration(c: &Context<'_>) -> Obj {
    let cfg = c.cfg;
    Obj::new()
        .field("client_port", cfg.client_port.map_or(-1, i64::from))
        .field("data_dir", cfg.data_dir.join("version-2").display().to_string())
        .field("data_log_dir", cfg.data_log_dir.join("version-2").display().to_string())
        .field("tick_time", cfg.tick_time)
        // No client connections at all (as the `conf` word says).
        .field("max_client_cnxns", 0)
        .field("min_session_timeout", 2 * cfg.tick_time)
        .field("max_session_timeout", 20 * cfg.tick_time)
        .field("server_id", cfg.my_id)
        .field("client_port_listen_backlog", -1)
}

fn connections(_: &Context<'_>) -> Obj {
    Obj::new().field("connections", empty_list()).field("secure_connections", empty_list())
}

fn dirs(c: &Context<'_>) -> Obj {
    Obj::new()
        .field("datadir_size", dir_size(&c.cfg.data_dir.join("version-2")))
        .field("logdir_size", dir_size(&c.cfg.data_log_dir.join("version-2")))
}

/// Bytes in the files of `dir` (0 when it cannot be read).
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
        })
        .unwrap_or(0)
}

fn dump(_: &Context<'_>) -> Obj {
    Obj::new().field("expiry_time_to_session_ids", Obj::new()).field("session_id_to_ephemeral_paths", Obj::new())
}

/// `Environment.list()`'s keys that mean something outside a JVM, in its order.
fn environment(_: &Context<'_>) -> Obj {
    let host = read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "<NA>".into());
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| "<NA>".into());
    Obj::new()
        .field("zookeeper.version", format!("{}, built on unknown", text::VERSION))
        .field("host.name", host)
        .field("os.name", os_name())
        .field("os.arch", java_arch())
        .field("os.version", read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "<NA>".into()))
        .field("user.name", user_name().unwrap_or_else(|| "<NA>".into()))
        .field("user.home", std::env::var("HOME").unwrap_or_else(|_| "<NA>".into()))
        .field("user.dir", cwd)
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// `os.name` as Java has it (`Linux`).
fn os_name() -> String {
    read_trimmed("/proc/sys/kernel/ostype").unwrap_or_else(|| std::env::consts::OS.to_string())
}

/// `os.arch` in Java's naming (`amd64` for x86_64).
fn java_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        other => other,
    }
}

/// The name of the process's user, from /etc/passwd.
fn user_name() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
    })
}

fn get_trace_mask(c: &Context<'_>) -> Obj {
    Obj::new().field("tracemask", c.trace_mask.load(Ordering::Relaxed))
}

fn set_trace_mask(c: &Context<'_>) -> Obj {
    match c.arg("traceMask").map(|v| (v, v.parse::<i64>())) {
        None => Obj::new().field("error", "setTraceMask requires long traceMask argument"),
        Some((v, Err(_))) => {
            Obj::new().field("error", format!("setTraceMask requires long traceMask argument, got {v}"))
        }
        Some((_, Ok(mask))) => {
            c.trace_mask.store(mask, Ordering::Relaxed);
            Obj::new().field("tracemask", mask)
        }
    }
}

fn hash(_: &Context<'_>) -> Obj {
    Obj::new().field("digests", empty_list())
}

fn initial_configuration(c: &Context<'_>) -> Obj {
    let text: String = c.cfg.raw.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    Obj::new().field("initial_configuration", text)
}

fn is_read_only(_: &Context<'_>) -> Obj {
    Obj::new().field("read_only", false)
}

/// No snapshot: ZooKeeper's answer without one (`Long.toHexString(-1)`, -1).
fn last_snapshot(_: &Context<'_>) -> Obj {
    Obj::new().field("zxid", format!("{:x}", -1i64)).field("timestamp", -1)
}

fn leader(c: &Context<'_>) -> Obj {
    let st = &c.snap.status;
    let id = st.leader();
    // `QuorumPeer.getLeaderAddress`: the configured hosts of the leader's quorum addresses.
    let ip = id
        .and_then(|l| c.cfg.quorum_verifier.members.get(&l))
        .map(|s| s.addrs.iter().map(|a| a.host.clone()).collect::<Vec<_>>().join("|"))
        .unwrap_or_default();
    Obj::new()
        .field("is_leader", st.state == ServerState::Leading)
        .field("leader_id", id.unwrap_or(-1))
        .field("leader_ip", ip)
}

fn monitor(c: &Context<'_>) -> Obj {
    text::mntr_values(c.snap, c.cfg).into_iter().collect()
}

fn observers(c: &Context<'_>) -> Obj {
    let st = &c.snap.status;
    let synced: Vec<i64> = if st.state == ServerState::Leading {
        st.synced_learners.iter().copied().filter(|s| !c.cfg.quorum_verifier.is_voter(*s)).collect()
    } else {
        Vec::new()
    };
    Obj::new()
        .field("synced_observers", synced.len())
        .field("observers", Json::array(synced.iter().map(|sid| Obj::new().field("sid", *sid))))
}

/// `ServerStats`' buffer sizes before any client: -1 each.
fn buffer_stats() -> Obj {
    Obj::new().field("last_buffer_size", -1).field("min_buffer_size", -1).field("max_buffer_size", -1)
}

fn server_stats(c: &Context<'_>) -> Obj {
    let snap = c.snap;
    let st = &snap.status;
    let stats = Obj::new()
        .field("packets_sent", snap.notifications_sent)
        .field("packets_received", snap.notifications_received)
        .field("fsync_threshold_exceed_count", 0)
        .field("client_response_stats", buffer_stats())
        .field("provider_null", false)
        .field("server_state", text::mode(st.state))
        .field("outstanding_requests", 0)
        .field("min_latency", 0)
        .field("avg_latency", 0.0)
        .field("max_latency", 0)
        .field("data_dir_size", dir_size(&c.cfg.data_dir.join("version-2")))
        .field("log_dir_size", dir_size(&c.cfg.data_log_dir.join("version-2")))
        .field("last_processed_zxid", text::zxid(snap))
        .field("num_alive_client_connections", 0)
        .field("auth_failed_count", 0)
        .field("non_mtlsremote_conn_count", 0)
        .field("non_mtlslocal_conn_count", 0)
        .field("uptime", text::uptime_ms(st));
    let mut out = Obj::new()
        .field("version", format!("{}, built on unknown", text::VERSION))
        .field("read_only", false)
        .field("server_stats", stats)
        .field("client_response", buffer_stats());
    if st.state == ServerState::Leading {
        out.put("proposal_stats", buffer_stats());
    }
    out.field("node_count", 0)
}

fn stats(c: &Context<'_>) -> Obj {
    server_stats(c).field("connections", empty_list()).field("secure_connections", empty_list())
}

/// What a JVM's properties would say that means something here, and the configuration as the
/// `zookeeper.`-prefixed properties ZooKeeper turns zoo.cfg keys into; sorted, as ZooKeeper sorts.
fn system_properties(c: &Context<'_>) -> Obj {
    let mut props = std::collections::BTreeMap::new();
    props.insert("file.separator".to_string(), "/".to_string());
    props.insert("line.separator".to_string(), "\n".to_string());
    props.insert("path.separator".to_string(), ":".to_string());
    props.insert("os.name".to_string(), os_name());
    props.insert("os.arch".to_string(), java_arch().to_string());
    if let Some(v) = read_trimmed("/proc/sys/kernel/osrelease") {
        props.insert("os.version".to_string(), v);
    }
    if let Some(u) = user_name() {
        props.insert("user.name".to_string(), u);
    }
    if let Ok(h) = std::env::var("HOME") {
        props.insert("user.home".to_string(), h);
    }
    if let Ok(d) = std::env::current_dir() {
        props.insert("user.dir".to_string(), d.display().to_string());
    }
    for (k, v) in &c.cfg.raw {
        let key = if k.starts_with("zookeeper.") { k.clone() } else { format!("zookeeper.{k}") };
        props.insert(key, v.clone());
    }
    props.into_iter().map(|(k, v)| (k, Json::Str(v))).collect()
}

/// `host:port` as ZooKeeper writes an address (IPv6 hosts in brackets).
fn addr(hp: &HostPort) -> Json {
    Json::Str(hp.to_string())
}

/// The own client address, or "" (ZooKeeper fills it in for itself; for the others only when
/// their `server.N` line has a client part).
fn client_address(c: &Context<'_>, server: &QuorumServer) -> String {
    if server.id == c.cfg.my_id {
        return c.cfg.client_address().map(|a| a.to_string()).unwrap_or_default();
    }
    server.client_addr.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn voting_view(c: &Context<'_>) -> Obj {
    let qv = &c.cfg.quorum_verifier;
    let view: Obj = java_hash_order(qv.voters())
        .into_iter()
        .filter_map(|sid| qv.members.get(&sid))
        .map(|s| {
            let server = Obj::new()
                .field("server_addresses", Json::Array(s.quorum_addrs().iter().map(addr).collect()))
                .field("election_addresses", Json::Array(s.election_addrs().iter().map(addr).collect()))
                .field("client_address", client_address(c, s))
                .field("learner_type", s.learner_type.as_str());
            (s.id.to_string(), Json::Object(server))
        })
        .collect();
    Obj::new().field("current_config", view)
}

fn watch_summary(_: &Context<'_>) -> Obj {
    Obj::new().field("num_connections", 0).field("num_paths", 0).field("num_total_watches", 0)
}

fn watches(_: &Context<'_>) -> Obj {
    Obj::new().field("session_id_to_watched_paths", Obj::new())
}

fn watches_by_path(_: &Context<'_>) -> Obj {
    Obj::new().field("path_to_session_ids", Obj::new())
}

/// `MultipleAddresses` as Jackson writes the bean. zkelect does not probe reachability: the
/// "reachable" properties list the configured addresses.
fn multiple_addresses(addrs: &[HostPort]) -> Obj {
    let all: Vec<Json> = addrs.iter().map(addr).collect();
    let one = all.first().cloned().unwrap_or(Json::Null);
    Obj::new()
        .field("empty", addrs.is_empty())
        .field("all_addresses", all.clone())
        .field("all_reachable_addresses", all.clone())
        .field("one", one.clone())
        .field("reachable_address", one.clone())
        .field("wildcard_addresses", Json::Array(addrs.iter().map(|a| addr(&a.wildcard_like())).collect()))
        .field("all_ports", Json::array(addrs.iter().map(|a| a.port)))
        .field("all_host_strings", Json::array(addrs.iter().map(|a| a.host.clone())))
        .field("all_reachable_addresses_or_all", all)
        .field("reachable_or_one", one)
}

/// `QuorumPeer.ZabState` in lower case, with `election` while LOOKING (ZooKeeper answers an empty
/// string then). An election-only session counts as `broadcast` once the leadership is confirmed.
fn zab_state(state: ServerState, phase: Option<SessionPhase>) -> &'static str {
    match (state, phase) {
        (ServerState::Looking, _) => "election",
        (_, None | Some(SessionPhase::Discovery) | Some(SessionPhase::ElectionOnly { confirmed: false })) => {
            "discovery"
        }
        (_, Some(SessionPhase::Synchronization)) => "synchronization",
        (_, Some(SessionPhase::Broadcast) | Some(SessionPhase::ElectionOnly { confirmed: true })) => "broadcast",
    }
}

fn zabstate(c: &Context<'_>) -> Obj {
    let st = &c.snap.status;
    let me = c.cfg.me();
    let quorum: Vec<HostPort> = me.map(QuorumServer::quorum_addrs).unwrap_or_default();
    let election: Vec<HostPort> = me.map(QuorumServer::election_addrs).unwrap_or_default();
    let zxid = text::zxid(c.snap);
    Obj::new()
        .field("myid", c.cfg.my_id)
        .field("is_leader", st.state == ServerState::Leading)
        .field("quorum_address", multiple_addresses(&quorum))
        .field("election_address", multiple_addresses(&election))
        .field("client_address", c.cfg.client_address().map(|a| a.to_string()).unwrap_or_default())
        .field("voting", c.cfg.quorum_verifier.is_voter(c.cfg.my_id) && st.state != ServerState::Observing)
        .field("last_zxid", format!("0x{zxid:x}"))
        .field("zab_epoch", zxid >> 32)
        .field("zab_counter", zxid & 0xffff_ffff)
        .field("zabstate", zab_state(st.state, st.phase))
}

#[cfg(test)]
mod tests;
