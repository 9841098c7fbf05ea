//! `zoo.cfg`, its `dynamicConfigFile` and `myid` (`QuorumPeerConfig`): every key that affects
//! election or liveness, with ZooKeeper's defaults, and the quorum TLS settings. Pure parsing:
//! [`QuorumPeerConfig::load`] is the only function reading files (the others only ask for the
//! working directory, to show absolute paths in error messages).
//!
//! Parsing runs in three steps: [`Default`] (ZooKeeper's defaults), one `apply_key` per line
//! (`apply.rs`, a table from key to setter), then [`QuorumPeerConfig::validate`]; what needs
//! the node's id is settled by [`QuorumPeerConfig::set_my_id`].

pub mod admin;
mod apply;
pub mod dynamic;
mod keys;
pub mod members;
mod myid;
pub mod properties;
pub mod quorum;
pub mod server;
pub mod tls;
mod validate;
pub mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use admin::AdminServerConfig;
pub use members::MemberError;
pub use quorum::{Hierarchy, QuorumVerifier};
pub use server::{HostPort, LearnerType, QuorumServer, ServerAddress, ServerLineError};
pub use tls::{ClientAuth, QuorumTlsConfig, Secret, StoreConfig, StoreType, TlsVersion};
pub use values::ValueError;

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

/// Effective configuration of one node.
#[derive(Debug, Clone)]
pub struct QuorumPeerConfig {
    pub config_path: PathBuf,
    pub tick_time: u64,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    /// `clientPort` (`None` when unset or 0), then after `set_my_id` the port of
    /// [`client_address`](Self::client_address).
    pub client_port: Option<u16>,
    /// `clientPortAddress` without brackets (`None` = all addresses), then after `set_my_id` the
    /// host of [`client_address`](Self::client_address) when the own server line gives one.
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
    /// `metricsProvider.httpHost`: the address of the metrics endpoint; `None` = all (`0.0.0.0`).
    pub metrics_http_host: Option<String>,
    /// ZooKeeper's AdminServer (`admin.*`): the HTTP commands, zkelect's endpoints and status page.
    pub admin_server: AdminServerConfig,
    /// `zkelect.onStateChange`: program run on every state or leader change.
    pub on_state_change: Option<PathBuf>,
    /// `zkelect.onStateChange.timeoutMs`: a hook run is killed after this long.
    pub on_state_change_timeout_ms: u64,
    /// `zkelect.leaseMs`: a leader's lease (see [`crate::lease`]); `None` = syncLimit × tickTime.
    pub lease_ms: Option<u64>,
    /// `zkelect.leaseDriftMarginMs`: added to a new leader's wait; `None` = a tenth of the lease.
    pub lease_drift_margin_ms: Option<u64>,
    /// `zkelect.run.gracePeriodMs`: SIGTERM this long before the lease ends, SIGKILL at the end;
    /// `None` = a quarter of the lease, at most 5 s.
    pub run_grace_period_ms: Option<u64>,
    /// Quorum TLS: `sslQuorum`, `portUnification`, `sslQuorumReloadCertFiles`, `ssl.quorum.*`.
    pub quorum_tls: QuorumTlsConfig,
    /// `dynamicConfigFile`, as written: the membership was read from it.
    pub dynamic_config_file: Option<PathBuf>,
    /// Every `key=value` as read (last occurrence wins), for `conf`; passwords are redacted.
    pub raw: BTreeMap<String, String>,
    origin: Origin,
}

/// Where values came from, for errors found after the key-by-key pass.
#[derive(Debug, Clone, Default)]
struct Origin {
    /// Each key zkelect reads (by ZooKeeper's name) -> the `zoo.cfg` line that set it last.
    lines: BTreeMap<String, usize>,
    /// The file holding the `server.N` lines, and the line of each.
    members_file: String,
    server_lines: BTreeMap<i64, usize>,
    /// `clientPort` and `clientPortAddress` as configured, before the own server line counts.
    static_client: (Option<u16>, Option<String>),
    /// `peerType` as configured; the server list decides the role.
    configured_peer_type: LearnerType,
}

/// ZooKeeper's defaults; `dataDir`, `initLimit`, `syncLimit` and the servers have none.
impl Default for QuorumPeerConfig {
    fn default() -> Self {
        QuorumPeerConfig {
            config_path: PathBuf::new(),
            tick_time: 3000,
            init_limit: 0,
            sync_limit: 0,
            data_dir: PathBuf::new(),
            data_log_dir: PathBuf::new(),
            client_port: None,
            client_port_address: None,
            my_id: 0,
            quorum_verifier: QuorumVerifier::default(),
            peer_type: LearnerType::Participant,
            quorum_listen_on_all_ips: false,
            standalone_enabled: true,
            multi_address_enabled: false,
            quorum_cnxn_threads_size: 20,
            cnx_timeout_ms: 5000,
            election_port_bind_retry: 3,
            quorum_cnxn_timeout_ms: None,
            tcp_keep_alive: false,
            min_notification_interval_ms: 200,
            max_notification_interval_ms: 60_000,
            four_letter_whitelist: vec!["srvr".to_string()],
            metrics_http_port: None,
            metrics_http_host: None,
            admin_server: AdminServerConfig::default(),
            on_state_change: None,
            on_state_change_timeout_ms: 10_000,
            lease_ms: None,
            lease_drift_margin_ms: None,
            run_grace_period_ms: None,
            quorum_tls: QuorumTlsConfig::default(),
            dynamic_config_file: None,
            raw: BTreeMap::new(),
            origin: Origin::default(),
        }
    }
}

impl QuorumPeerConfig {
    /// `zkelect.leaseMs`, by default syncLimit × tickTime: how long a follower waits for its
    /// leader before it gives up on it, so a lease that long costs no extra failover time.
    pub fn lease_ms(&self) -> u64 {
        self.lease_ms.unwrap_or(self.tick_time * u64::from(self.sync_limit))
    }

    /// `zkelect.leaseDriftMarginMs`, by default a tenth of the lease.
    pub fn lease_drift_margin_ms(&self) -> u64 {
        self.lease_drift_margin_ms.unwrap_or(self.lease_ms() / 10)
    }

    /// `zkelect.run.gracePeriodMs`, by default a quarter of the lease, at most 5 s.
    pub fn run_grace_period_ms(&self) -> u64 {
        self.run_grace_period_ms.unwrap_or((self.lease_ms() / 4).min(5000))
    }

    /// Reads `path`, its `dynamicConfigFile` if it names one, and `dataDir/myid`.
    pub fn load(path: &Path) -> Result<QuorumPeerConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            key: None,
            message: format!("cannot read configuration: {e}"),
        })?;
        let mut cfg = QuorumPeerConfig::parse_with_dynamic(&text, &file, |p| std::fs::read_to_string(p))?;
        cfg.config_path = path.to_path_buf();
        cfg.read_my_id()?;
        Ok(cfg)
    }

    /// Parses the text of a `zoo.cfg`. `my_id` is left 0 until [`set_my_id`](Self::set_my_id).
    /// A `dynamicConfigFile` is refused here, as reading it is I/O: see
    /// [`parse_with_dynamic`](Self::parse_with_dynamic).
    pub fn parse(text: &str, file: &str) -> Result<QuorumPeerConfig, ConfigError> {
        Self::parse_with_dynamic(text, file, |_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "QuorumPeerConfig::parse reads no files; use QuorumPeerConfig::load",
            ))
        })
    }

    /// Parses the text of a `zoo.cfg`; `read_dynamic` gives the text of its `dynamicConfigFile`
    /// (the path as written: a relative path is relative to the working directory, as in
    /// ZooKeeper, which opens it with `new FileInputStream(path)`).
    pub fn parse_with_dynamic(
        text: &str,
        file: &str,
        read_dynamic: impl FnOnce(&Path) -> std::io::Result<String>,
    ) -> Result<QuorumPeerConfig, ConfigError> {
        let entries = properties::parse(text).map_err(|e| ConfigError {
            file: file.to_string(),
            line: Some(e.line),
            key: None,
            message: e.message,
        })?;
        // The value that wins for each key (Java: the last occurrence).
        let mut raw = BTreeMap::new();
        for e in &entries {
            let value = if is_secret(&e.key) { "<redacted>".to_string() } else { e.value.clone() };
            raw.insert(e.key.clone(), value);
        }
        let mut draft = apply::Draft::new(file, multi_address(&entries, file)?, dynamic_file(&entries));
        for e in &entries {
            draft.apply_key(&e.key, &e.value, e.line)?;
        }
        if let Some((path, line)) = draft.dynamic_file() {
            let path = path.to_string();
            let text = read_dynamic(Path::new(&path)).map_err(|e| dynamic_read_error(file, line, &path, &e))?;
            let members = dynamic::parse_dynamic(&text, &path, draft.cfg.multi_address_enabled)?;
            draft.set_members(members, path);
        }
        let mut cfg = draft.finish()?;
        cfg.raw = raw;
        cfg.validate()?;
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

/// The dynamic file named on `line` of `file` cannot be read.
fn dynamic_read_error(file: &str, line: usize, path: &str, e: &std::io::Error) -> ConfigError {
    let hint = if e.kind() == std::io::ErrorKind::NotFound && Path::new(path).is_relative() {
        " (a relative path is read from the working directory, as ZooKeeper does)"
    } else {
        ""
    };
    ConfigError {
        file: file.to_string(),
        line: Some(line),
        key: Some("dynamicConfigFile".into()),
        message: format!("cannot read {path}: {e}{hint}"),
    }
}

/// `multiAddress.enabled`, needed before the pass: server lines depend on it wherever they are.
fn multi_address(entries: &[properties::Entry], file: &str) -> Result<bool, ConfigError> {
    let Some(e) = entries.iter().rev().find(|e| setting_name(&e.key) == "multiAddress.enabled") else {
        return Ok(false);
    };
    values::parse_bool(&e.value).map_err(|m| ConfigError {
        file: file.to_string(),
        line: Some(e.line),
        key: Some(e.key.clone()),
        message: m.to_string(),
    })
}

/// `dynamicConfigFile`, needed before the pass: with it, membership lines in `zoo.cfg` are errors.
fn dynamic_file(entries: &[properties::Entry]) -> Option<String> {
    entries.iter().rev().find(|e| setting_name(&e.key) == "dynamicConfigFile").map(|e| e.value.clone())
}

/// Keys whose values must not be shown: store passwords and the authentication providers' secrets.
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with("password") || k.ends_with("superdigest")
}

/// A key's name without the `zookeeper.` prefix that system-property settings may carry.
fn setting_name(key: &str) -> &str {
    key.strip_prefix("zookeeper.").unwrap_or(key)
}

/// Why a config text received from a peer was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigTextError {
    NotUtf8,
    Malformed(properties::PropertiesError),
    Member(MemberError),
    UnrecognisedParameter(String),
    NoParticipants,
}

impl fmt::Display for ConfigTextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigTextError::NotUtf8 => f.write_str("config text is not UTF-8"),
            ConfigTextError::Malformed(e) => e.fmt(f),
            ConfigTextError::Member(e) => e.fmt(f),
            ConfigTextError::UnrecognisedParameter(k) => write!(f, "Unrecognised parameter: {k}"),
            ConfigTextError::NoParticipants => f.write_str("no participants"),
        }
    }
}

impl std::error::Error for ConfigTextError {}

/// Parses config text received in a notification (`QuorumVerifier.toString()` syntax). It comes
/// from the network, so every error is returned, never panicked on (Java's receiver thread died
/// on some of these, see ZK-3769).
pub fn parse_config_text(bytes: &[u8]) -> Result<QuorumVerifier, ConfigTextError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ConfigTextError::NotUtf8)?;
    let mut members = members::Members::new(members::Source::ConfigText, true);
    for e in properties::parse(text).map_err(ConfigTextError::Malformed)? {
        if !members.add(&e.key, &e.value, e.line).map_err(ConfigTextError::Member)? {
            return Err(ConfigTextError::UnrecognisedParameter(e.key));
        }
    }
    let (qv, _) = members.finish().map_err(|l| ConfigTextError::Member(l.error))?;
    if qv.voter_count() == 0 {
        return Err(ConfigTextError::NoParticipants);
    }
    Ok(qv)
}

#[cfg(test)]
mod tests;
