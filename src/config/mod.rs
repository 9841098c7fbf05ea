//! `zoo.cfg` and `myid` (`QuorumPeerConfig`): every key that affects election or liveness, with
//! ZooKeeper's defaults. Pure parsing; [`QuorumPeerConfig::load`] is the only function doing I/O.

pub mod properties;
pub mod quorum;
pub mod server;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use quorum::{Hierarchy, QuorumVerifier};
pub use server::{HostPort, LearnerType, QuorumServer, ServerAddress};

/// A configuration error naming the file, the line and the key where it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": {k}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Keys that only matter to a ZooKeeper data server (or to features zkelect does not have):
/// accepted so that a real `zoo.cfg` loads unchanged, and logged at debug.
const DATA_SERVER_KEYS: &[&str] = &[
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "secureClientPort",
    "secureClientPortAddress",
    "clientPortListenBacklog",
    "snapCount",
    "snapSizeLimitInKb",
    "preAllocSize",
    "globalOutstandingLimit",
    "syncEnabled",
    "leaderServes",
    "forceSync",
    "skipACL",
    "serverCnxnFactory",
    "audit.enable",
    "txnLogSizeLimitInKb",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "maxResponseCacheSize",
    "maxGetChildrenResponseCacheSize",
    "readonlymode.enabled",
    "portUnification",
    "initialize",
    "observerMaster.port",
    "digest.enabled",
    "metricsProvider.className",
    "multiAddress.reachabilityCheckEnabled",
    "multiAddress.reachabilityCheckTimeoutMs",
    "connectToLearnerMasterLimit",
    "jute.maxbuffer",
    "observer.reconnectDelayMs",
    "maxCnxns",
    "fsync.warningthresholdms",
    "zookeeper.serverCnxnFactory",
];
const DATA_SERVER_PREFIXES: &[&str] = &[
    "autopurge.",
    "admin.",
    "authProvider.",
    "ssl.",
    "snapshot.",
    "quorum.auth.",
    "metricsProvider.",
    "sasl.",
    "client.",
    "jvm.",
    "learner.",
    "leader.",
    "serverCnxnFactory.",
];

/// Effective configuration of one node.
#[derive(Debug, Clone)]
pub struct QuorumPeerConfig {
    pub config_path: PathBuf,
    pub tick_time: u64,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_port: Option<u16>,
    pub client_port_address: Option<String>,
    pub my_id: i64,
    pub quorum_verifier: QuorumVerifier,
    pub peer_type: LearnerType,
    pub quorum_listen_on_all_ips: bool,
    pub standalone_enabled: bool,
    pub multi_address_enabled: bool,
    /// `quorum.cnxn.threads.size`: the most dials that run at once.
    pub quorum_cnxn_threads_size: usize,
    /// `cnxTimeout`: connect timeout of an election dial, ms.
    pub cnx_timeout_ms: u64,
    /// `electionPortBindRetry`: bind attempts before giving up (0 = forever).
    pub election_port_bind_retry: u32,
    /// `quorumCnxnTimeoutMs`: handshake deadline; `None` = tickTime × syncLimit.
    pub quorum_cnxn_timeout_ms: Option<u64>,
    pub tcp_keep_alive: bool,
    pub min_notification_interval_ms: u64,
    pub max_notification_interval_ms: u64,
    /// `4lw.commands.whitelist`; default `srvr` as in ZooKeeper.
    pub four_letter_whitelist: Vec<String>,
    pub metrics_http_port: Option<u16>,
    /// `zkelect.onStateChange`: program run on every state or leader change.
    pub on_state_change: Option<PathBuf>,
    /// `zkelect.onStateChange.timeoutMs`: a hook run is killed after this long.
    pub on_state_change_timeout_ms: u64,
    /// Every `key=value` as read (last occurrence wins), for `conf`.
    pub raw: BTreeMap<String, String>,
}

impl QuorumPeerConfig {
    /// Reads `path` and `dataDir/myid`.
    pub fn load(path: &Path) -> Result<QuorumPeerConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            key: None,
            message: format!("cannot read configuration: {e}"),
        })?;
        let mut cfg = QuorumPeerConfig::parse(&text, &file)?;
        cfg.config_path = path.to_path_buf();
        let myid_path = cfg.data_dir.join("myid");
        let myid_text = match std::fs::read_to_string(&myid_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError {
                    file: myid_path.display().to_string(),
                    line: None,
                    key: None,
                    message: "myid file is missing".into(),
                });
            }
            Err(e) => {
                return Err(ConfigError {
                    file: myid_path.display().to_string(),
                    line: None,
                    key: None,
                    message: format!("cannot read myid: {e}"),
                });
            }
        };
        cfg.set_my_id(&myid_text, &myid_path.display().to_string())?;
        Ok(cfg)
    }

    /// Sets `my_id` from the text of a `myid` file and checks that it is a configured server.
    pub fn set_my_id(&mut self, myid_text: &str, myid_file: &str) -> Result<(), ConfigError> {
        let first = myid_text.lines().next().unwrap_or("").trim();
        let id: i64 = first.parse().map_err(|_| ConfigError {
            file: myid_file.to_string(),
            line: Some(1),
            key: None,
            message: format!("serverid {first} is not a number"),
        })?;
        let server = self.quorum_verifier.members.get(&id).ok_or_else(|| ConfigError {
            file: myid_file.to_string(),
            line: Some(1),
            key: None,
            message: format!("My id {id} not in the peer list"),
        })?;
        self.peer_type = server.learner_type;
        self.my_id = id;
        Ok(())
    }

    /// Parses the text of a `zoo.cfg`. `my_id` is left 0 until [`set_my_id`](Self::set_my_id).
    pub fn parse(text: &str, file: &str) -> Result<QuorumPeerConfig, ConfigError> {
        let err = |line: usize, key: &str, message: String| ConfigError {
            file: file.to_string(),
            line: Some(line),
            key: Some(key.to_string()),
            message,
        };
        let entries = properties::parse(text).map_err(|e| ConfigError {
            file: file.to_string(),
            line: Some(e.line),
            key: None,
            message: e.message,
        })?;
        // First pass: the value that wins for each plain key (Java: last occurrence).
        let mut raw = BTreeMap::new();
        let mut lines = BTreeMap::new();
        for e in &entries {
            raw.insert(e.key.clone(), e.value.clone());
            lines.insert(e.key.clone(), e.line);
        }
        let multi_address_enabled = match raw.get("multiAddress.enabled") {
            Some(v) => parse_bool(v).map_err(|m| err(lines["multiAddress.enabled"], "multiAddress.enabled", m))?,
            None => false,
        };

        let mut cfg = QuorumPeerConfig {
            config_path: PathBuf::from(file),
            tick_time: 3000,
            init_limit: 0,
            sync_limit: 0,
            data_dir: PathBuf::new(),
            data_log_dir: PathBuf::new(),
            client_port: None,
            client_port_address: None,
            my_id: 0,
            quorum_verifier: QuorumVerifier { version: 0, members: BTreeMap::new(), hierarchy: None },
            peer_type: LearnerType::Participant,
            quorum_listen_on_all_ips: false,
            standalone_enabled: true,
            multi_address_enabled,
            quorum_cnxn_threads_size: 20,
            cnx_timeout_ms: 5000,
            election_port_bind_retry: 3,
            quorum_cnxn_timeout_ms: None,
            tcp_keep_alive: false,
            min_notification_interval_ms: 200,
            max_notification_interval_ms: 60_000,
            four_letter_whitelist: vec!["srvr".to_string()],
            metrics_http_port: None,
            on_state_change: None,
            on_state_change_timeout_ms: 10_000,
            raw: raw.clone(),
        };
        let mut init_limit = None;
        let mut sync_limit = None;
        let mut data_dir = None;
        let mut data_log_dir = None;
        let mut server_lines: BTreeMap<i64, usize> = BTreeMap::new();
        let mut groups: BTreeMap<i64, (usize, Vec<i64>)> = BTreeMap::new();
        let mut weights: BTreeMap<i64, u64> = BTreeMap::new();
        let mut hierarchical = false;

        for e in &entries {
            let (k, v, line) = (e.key.as_str(), e.value.as_str(), e.line);
            // Settings Java reads as system properties may carry their `zookeeper.` prefix.
            let name = k.strip_prefix("zookeeper.").unwrap_or(k);
            let num = |v: &str| parse_num(v).map_err(|m| err(line, k, m));
            let boolean = |v: &str| parse_bool(v).map_err(|m| err(line, k, m));
            match name {
                "tickTime" => cfg.tick_time = num(v)?,
                "initLimit" => init_limit = Some(num(v)? as u32),
                "syncLimit" => sync_limit = Some(num(v)? as u32),
                "dataDir" => data_dir = Some(PathBuf::from(v)),
                "dataLogDir" => data_log_dir = Some(PathBuf::from(v)),
                "clientPort" => cfg.client_port = Some(parse_port(v).map_err(|m| err(line, k, m))?),
                "clientPortAddress" => cfg.client_port_address = Some(v.to_string()),
                "electionAlg" => {
                    if v != "3" {
                        return Err(err(line, k, format!("Invalid electionAlg value {v}. Only 3 is supported.")));
                    }
                }
                "quorumListenOnAllIPs" => cfg.quorum_listen_on_all_ips = boolean(v)?,
                "peerType" => {
                    cfg.peer_type = match v.to_ascii_lowercase().as_str() {
                        "observer" => LearnerType::Observer,
                        "participant" => LearnerType::Participant,
                        _ => return Err(err(line, k, format!("Unrecognised peertype: {v}"))),
                    }
                }
                "standaloneEnabled" => cfg.standalone_enabled = boolean(v)?,
                "reconfigEnabled" => {
                    if boolean(v)? {
                        log::warn!(
                            "{file}:{line}: reconfigEnabled=true: zkelect has no dynamic reconfiguration; the static server list is used"
                        );
                    }
                }
                "dynamicConfigFile" => {
                    return Err(err(
                        line,
                        k,
                        "dynamic configuration files are not supported; list the servers in this file".into(),
                    ));
                }
                "multiAddress.enabled" => {}
                "quorum.cnxn.threads.size" => cfg.quorum_cnxn_threads_size = (num(v)? as usize).max(1),
                "cnxTimeout" => cfg.cnx_timeout_ms = num(v)?,
                "electionPortBindRetry" => {
                    let n: i64 = v.parse().map_err(|_| err(line, k, format!("bad number '{v}'")))?;
                    if n < 0 {
                        log::warn!("{file}:{line}: electionPortBindRetry={n} is negative, using the default 3");
                        cfg.election_port_bind_retry = 3;
                    } else {
                        cfg.election_port_bind_retry = n.min(u32::MAX as i64) as u32;
                    }
                }
                "quorumCnxnTimeoutMs" => {
                    let ms = num(v)?;
                    cfg.quorum_cnxn_timeout_ms = (ms > 0).then_some(ms);
                }
                "tcpKeepAlive" => cfg.tcp_keep_alive = boolean(v)?,
                "fastleader.minNotificationInterval" => cfg.min_notification_interval_ms = num(v)?.max(1),
                "fastleader.maxNotificationInterval" => cfg.max_notification_interval_ms = num(v)?.max(1),
                "4lw.commands.whitelist" => {
                    cfg.four_letter_whitelist =
                        v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
                }
                "metricsProvider.httpPort" => cfg.metrics_http_port = Some(parse_port(v).map_err(|m| err(line, k, m))?),
                "zkelect.onStateChange" => cfg.on_state_change = (!v.is_empty()).then(|| PathBuf::from(v)),
                "zkelect.onStateChange.timeoutMs" => cfg.on_state_change_timeout_ms = num(v)?.max(1),
                "metricsProvider.httpHost" => {}
                "sslQuorum"
                | "quorum.auth.enableSasl"
                | "quorum.auth.learnerRequireSasl"
                | "quorum.auth.serverRequireSasl" => {
                    if boolean(v)? {
                        return Err(err(
                            line,
                            k,
                            "quorum TLS/SASL is not supported by zkelect; peers must have it off".into(),
                        ));
                    }
                }
                _ if k.starts_with("server.") => {
                    let id = parse_id(&k["server.".len()..]).map_err(|m| err(line, k, m))?;
                    if let Some(prev) = server_lines.insert(id, line) {
                        return Err(err(line, k, format!("duplicate server id {id} (already defined on line {prev})")));
                    }
                    let qs = QuorumServer::parse(id, v, multi_address_enabled).map_err(|m| err(line, k, m))?;
                    cfg.quorum_verifier.members.insert(id, qs);
                }
                _ if k.starts_with("group.") => {
                    hierarchical = true;
                    let gid = parse_id(&k["group.".len()..]).map_err(|m| err(line, k, m))?;
                    let sids = v
                        .split(':')
                        .map(|s| parse_id(s.trim()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|m| err(line, k, m))?;
                    groups.insert(gid, (line, sids));
                }
                _ if k.starts_with("weight.") => {
                    hierarchical = true;
                    let sid = parse_id(&k["weight.".len()..]).map_err(|m| err(line, k, m))?;
                    weights.insert(sid, num(v)?);
                }
                _ if is_data_server_key(name) => {
                    log::debug!("{file}:{line}: {k} only matters to a ZooKeeper data server; accepted and ignored");
                }
                _ => log::warn!("{file}:{line}: unknown configuration key {k}, ignored"),
            }
        }

        let whole = |key: Option<&str>, message: String| ConfigError {
            file: file.to_string(),
            line: key.and_then(|k| lines.get(k).copied()),
            key: key.map(str::to_string),
            message,
        };
        if cfg.tick_time == 0 {
            return Err(whole(Some("tickTime"), "tickTime is not set".into()));
        }
        cfg.data_dir = data_dir.ok_or_else(|| whole(None, "dataDir is not set".into()))?;
        cfg.data_log_dir = data_log_dir.unwrap_or_else(|| cfg.data_dir.clone());
        if cfg.client_port_address.is_some() && cfg.client_port.is_none() {
            return Err(whole(Some("clientPortAddress"), "clientPortAddress is set but clientPort is not set".into()));
        }
        if cfg.min_notification_interval_ms > cfg.max_notification_interval_ms {
            return Err(whole(
                Some("fastleader.minNotificationInterval"),
                "fastleader.minNotificationInterval is larger than fastleader.maxNotificationInterval".into(),
            ));
        }

        let participants = cfg.quorum_verifier.voter_count();
        let observers = cfg.quorum_verifier.members.len() - participants;
        if participants == 0 {
            return Err(whole(
                None,
                if observers > 0 {
                    "Observers w/o participants is an invalid configuration".into()
                } else {
                    "no server.N lines: zkelect needs an ensemble to elect a leader".into()
                },
            ));
        }
        if participants == 1 && cfg.standalone_enabled {
            return Err(whole(
                None,
                "only one participant and standaloneEnabled=true: ZooKeeper would run this node standalone, \
                 without an election; set standaloneEnabled=false to run a one-voter quorum"
                    .into(),
            ));
        }
        if participants <= 2 {
            log::warn!("No server failure will be tolerated. You need at least 3 servers.");
        } else if participants.is_multiple_of(2) {
            log::warn!("Non-optimal configuration, consider an odd number of servers.");
        }
        cfg.init_limit = init_limit.ok_or_else(|| whole(None, "initLimit is not set".into()))?;
        cfg.sync_limit = sync_limit.ok_or_else(|| whole(None, "syncLimit is not set".into()))?;
        if cfg.init_limit == 0 || cfg.sync_limit == 0 {
            let key = if cfg.init_limit == 0 { "initLimit" } else { "syncLimit" };
            return Err(whole(Some(key), format!("{key} must be at least 1")));
        }

        if hierarchical {
            cfg.quorum_verifier.hierarchy = Some(build_hierarchy(&cfg.quorum_verifier, groups, weights, file)?);
        }
        Ok(cfg)
    }

    /// Own server entry. Present once `set_my_id` has succeeded.
    pub fn me(&self) -> Option<&QuorumServer> {
        self.quorum_verifier.members.get(&self.my_id)
    }

    /// Handshake deadline (`socketTimeout`): `quorumCnxnTimeoutMs` or tickTime × syncLimit.
    pub fn socket_timeout_ms(&self) -> u64 {
        self.quorum_cnxn_timeout_ms.unwrap_or(self.tick_time * self.sync_limit as u64)
    }
}

/// Parses config text received in a notification (`QuorumVerifier.toString()` syntax). It comes
/// from the network, so every error is returned, never panicked on (Java's receiver thread died
/// on some of these, see ZK-3769 and spec §2.3).
pub fn parse_config_text(bytes: &[u8]) -> Result<QuorumVerifier, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "config text is not UTF-8".to_string())?;
    let mut qv = QuorumVerifier { version: 0, members: BTreeMap::new(), hierarchy: None };
    let mut groups = BTreeMap::new();
    let mut weights = BTreeMap::new();
    let mut hierarchical = false;
    for e in properties::parse(text).map_err(|e| e.to_string())? {
        let (k, v) = (e.key.as_str(), e.value.as_str());
        if let Some(id) = k.strip_prefix("server.") {
            let id = parse_id(id)?;
            let qs = QuorumServer::parse(id, v, true)?;
            if qv.members.insert(id, qs).is_some() {
                return Err(format!("duplicate server id {id}"));
            }
        } else if let Some(g) = k.strip_prefix("group.") {
            hierarchical = true;
            let sids = v.split(':').map(|s| parse_id(s.trim())).collect::<Result<Vec<_>, _>>()?;
            groups.insert(parse_id(g)?, (e.line, sids));
        } else if let Some(s) = k.strip_prefix("weight.") {
            hierarchical = true;
            weights.insert(parse_id(s)?, parse_num(v)?);
        } else if k == "version" {
            qv.version = i64::from_str_radix(v, 16).map_err(|_| format!("bad version '{v}'"))?;
        } else {
            return Err(format!("Unrecognised parameter: {k}"));
        }
    }
    if qv.voter_count() == 0 {
        return Err("no participants".into());
    }
    if hierarchical {
        qv.hierarchy = Some(build_hierarchy(&qv, groups, weights, "config text").map_err(|e| e.message)?);
    }
    Ok(qv)
}

fn build_hierarchy(
    qv: &QuorumVerifier,
    groups: BTreeMap<i64, (usize, Vec<i64>)>,
    mut weights: BTreeMap<i64, u64>,
    file: &str,
) -> Result<Hierarchy, ConfigError> {
    let mut server_group = BTreeMap::new();
    for (gid, (line, sids)) in &groups {
        for sid in sids {
            if let Some(other) = server_group.insert(*sid, *gid) {
                return Err(ConfigError {
                    file: file.to_string(),
                    line: Some(*line),
                    key: Some(format!("group.{gid}")),
                    message: format!("Server {sid} is in multiple groups ({other} and {gid})"),
                });
            }
        }
    }
    for s in qv.members.values().filter(|s| s.is_participant()) {
        if !server_group.contains_key(&s.id) {
            return Err(ConfigError {
                file: file.to_string(),
                line: None,
                key: Some(format!("server.{}", s.id)),
                message: format!("Server {} is not in a group", s.id),
            });
        }
        weights.entry(s.id).or_insert(1);
    }
    let mut group_weight = BTreeMap::new();
    for (sid, gid) in &server_group {
        *group_weight.entry(*gid).or_insert(0) += weights.get(sid).copied().unwrap_or(0);
    }
    Ok(Hierarchy { server_group, server_weight: weights, group_weight })
}

fn is_data_server_key(k: &str) -> bool {
    DATA_SERVER_KEYS.contains(&k) || DATA_SERVER_PREFIXES.iter().any(|p| k.starts_with(p))
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("Invalid option {v} for this key. Choose 'true' or 'false.'")),
    }
}

fn parse_num(v: &str) -> Result<u64, String> {
    v.parse::<u64>().map_err(|_| format!("bad number '{v}'"))
}

fn parse_port(v: &str) -> Result<u16, String> {
    match v.parse::<i64>() {
        Ok(p) if (0..=65535).contains(&p) => Ok(p as u16),
        Ok(p) => Err(format!("port {p} is out of range 0..65535")),
        Err(_) => Err(format!("bad number '{v}'")),
    }
}

fn parse_id(v: &str) -> Result<i64, String> {
    v.parse::<i64>().map_err(|_| format!("server id '{v}' is not a number"))
}

#[cfg(test)]
mod tests;
