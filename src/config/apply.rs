//! The key-by-key pass over `zoo.cfg` (`QuorumPeerConfig.parseProperties`): a table from each
//! key zkelect reads to the function that applies its value.

use super::members::{Members, Source};
use super::server::LearnerType;
use super::tls::TLS_SETTINGS;
use super::values::{JAVA_INT_MAX, ValueError, parse_bool, parse_int_in, parse_num, parse_port, unbracket};
use super::{ConfigError, QuorumPeerConfig, keys};
use std::path::PathBuf;

/// One parse in progress: the configuration so far and the position of the current key.
pub(super) struct Draft<'a> {
    file: &'a str,
    line: usize,
    pub cfg: QuorumPeerConfig,
    members: Members,
    /// The file `members` come from: `file`, or the dynamic file once it is read.
    members_file: String,
    /// `dynamicConfigFile`, known before the pass: it forbids membership lines in `zoo.cfg`.
    dynamic: Option<String>,
}

pub(super) type Apply = fn(&mut Draft<'_>, &str) -> Result<(), ValueError>;

/// Every plain key zkelect reads, with ZooKeeper's name. Settings Java reads as system properties
/// may also carry their `zookeeper.` prefix.
pub(super) const SETTINGS: &[(&str, Apply)] = &[
    ("tickTime", |d, v| {
        d.cfg.tick_time = positive(v, "tickTime", "milliseconds, e.g. tickTime=2000")?;
        Ok(())
    }),
    ("initLimit", |d, v| {
        d.cfg.init_limit = parse_int_in(v, 0, JAVA_INT_MAX)? as u32;
        Ok(())
    }),
    ("syncLimit", |d, v| {
        d.cfg.sync_limit = parse_int_in(v, 0, JAVA_INT_MAX)? as u32;
        Ok(())
    }),
    ("dataDir", |d, v| {
        d.cfg.data_dir = PathBuf::from(v);
        Ok(())
    }),
    ("dataLogDir", |d, v| {
        d.cfg.data_log_dir = PathBuf::from(v);
        Ok(())
    }),
    ("clientPort", |d, v| {
        // 0 is "not set" for ZooKeeper: no client listener.
        d.cfg.client_port = Some(parse_port(v)?).filter(|&p| p != 0);
        Ok(())
    }),
    ("clientPortAddress", |d, v| {
        d.cfg.client_port_address = Some(unbracket(v));
        Ok(())
    }),
    ("electionAlg", |_, v| match v {
        "3" => Ok(()),
        _ => Err(ValueError::Invalid(format!("Invalid electionAlg value {v}. Only 3 is supported."))),
    }),
    ("quorumListenOnAllIPs", |d, v| {
        d.cfg.quorum_listen_on_all_ips = parse_bool(v)?;
        Ok(())
    }),
    ("peerType", |d, v| {
        d.cfg.peer_type = match v.to_ascii_lowercase().as_str() {
            "observer" => LearnerType::Observer,
            "participant" => LearnerType::Participant,
            _ => return Err(ValueError::Invalid(format!("Unrecognised peertype: {v}"))),
        };
        Ok(())
    }),
    ("standaloneEnabled", |d, v| {
        d.cfg.standalone_enabled = parse_bool(v)?;
        Ok(())
    }),
    ("reconfigEnabled", |d, v| {
        if parse_bool(v)? {
            d.warn("reconfigEnabled=true: zkelect has no dynamic reconfiguration; the static server list is used");
        }
        Ok(())
    }),
    ("dynamicConfigFile", |d, v| {
        d.cfg.dynamic_config_file = Some(PathBuf::from(v));
        Ok(())
    }),
    // Read before the pass, because server lines depend on it.
    ("multiAddress.enabled", |_, v| parse_bool(v).map(drop)),
    ("quorum.cnxn.threads.size", |d, v| {
        d.cfg.quorum_cnxn_threads_size = (parse_num(v)? as usize).max(1);
        Ok(())
    }),
    ("cnxTimeout", |d, v| {
        d.cfg.cnx_timeout_ms = parse_num(v)?;
        Ok(())
    }),
    ("electionPortBindRetry", |d, v| {
        let n: i64 = v.parse().map_err(|_| ValueError::NotNumber(v.to_string()))?;
        d.cfg.election_port_bind_retry = if n < 0 {
            d.warn(&format!("electionPortBindRetry={n} is negative, using the default 3"));
            3
        } else {
            n.min(u32::MAX as i64) as u32
        };
        Ok(())
    }),
    ("quorumCnxnTimeoutMs", |d, v| {
        let ms = parse_num(v)?;
        d.cfg.quorum_cnxn_timeout_ms = (ms > 0).then_some(ms);
        Ok(())
    }),
    ("tcpKeepAlive", |d, v| {
        d.cfg.tcp_keep_alive = parse_bool(v)?;
        Ok(())
    }),
    ("fastleader.minNotificationInterval", |d, v| {
        d.cfg.min_notification_interval_ms = parse_num(v)?.max(1);
        Ok(())
    }),
    ("fastleader.maxNotificationInterval", |d, v| {
        d.cfg.max_notification_interval_ms = parse_num(v)?.max(1);
        Ok(())
    }),
    ("4lw.commands.whitelist", |d, v| {
        d.cfg.four_letter_whitelist = v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        Ok(())
    }),
    ("metricsProvider.httpPort", |d, v| {
        d.cfg.metrics_http_port = Some(parse_port(v)?);
        Ok(())
    }),
    ("metricsProvider.httpHost", |d, v| {
        d.cfg.metrics_http_host = (!v.is_empty()).then(|| unbracket(v));
        Ok(())
    }),
    ("admin.enableServer", |d, v| {
        let w = d.cfg.admin_server.set_enabled(v);
        d.warn_if(w);
        Ok(())
    }),
    ("admin.serverAddress", |d, v| {
        let w = d.cfg.admin_server.set_address(v);
        d.warn_if(w);
        Ok(())
    }),
    ("admin.serverPort", |d, v| {
        let w = d.cfg.admin_server.set_port(v)?;
        d.warn_if(w);
        Ok(())
    }),
    ("admin.commandURL", |d, v| {
        let w = d.cfg.admin_server.set_command_url(v)?;
        d.warn_if(w);
        Ok(())
    }),
    ("admin.idleTimeout", |d, v| {
        let w = d.cfg.admin_server.set_idle_timeout(v)?;
        d.warn_if(w);
        Ok(())
    }),
    ("admin.forceHttps", |d, v| {
        let w = d.cfg.admin_server.set_force_https(v);
        d.warn_if(w);
        Ok(())
    }),
    ("admin.portUnification", |d, v| {
        let w = d.cfg.admin_server.set_port_unification(v);
        d.warn_if(w);
        Ok(())
    }),
    ("zkelect.onStateChange", |d, v| {
        d.cfg.on_state_change = (!v.is_empty()).then(|| PathBuf::from(v));
        Ok(())
    }),
    ("zkelect.onStateChange.timeoutMs", |d, v| {
        d.cfg.on_state_change_timeout_ms = parse_num(v)?.max(1);
        Ok(())
    }),
    ("zkelect.leaseMs", |d, v| {
        d.cfg.lease_ms = Some(parse_num(v)?.max(1));
        Ok(())
    }),
    ("zkelect.leaseDriftMarginMs", |d, v| {
        d.cfg.lease_drift_margin_ms = Some(parse_num(v)?);
        Ok(())
    }),
    ("zkelect.run.gracePeriodMs", |d, v| {
        d.cfg.run_grace_period_ms = Some(parse_num(v)?);
        Ok(())
    }),
    ("quorum.auth.enableSasl", refuse_sasl),
    ("quorum.auth.learnerRequireSasl", refuse_sasl),
    ("quorum.auth.serverRequireSasl", refuse_sasl),
];

fn refuse_sasl(_: &mut Draft<'_>, v: &str) -> Result<(), ValueError> {
    if parse_bool(v)? {
        return Err(ValueError::Invalid(
            "quorum SASL authentication is not supported by zkelect; peers must have it off (quorum TLS is: sslQuorum)"
                .into(),
        ));
    }
    Ok(())
}

/// A Java `int` of at least 1 (`tickTime`); `hint` says what to write instead.
fn positive(v: &str, key: &str, hint: &str) -> Result<u64, ValueError> {
    match v.parse::<i64>() {
        Ok(n) if n <= 0 => Err(ValueError::Invalid(format!("{key} must be positive: set it in {hint}"))),
        _ => Ok(parse_int_in(v, 1, JAVA_INT_MAX)? as u64),
    }
}

impl<'a> Draft<'a> {
    pub fn new(file: &'a str, multi_address: bool, dynamic: Option<String>) -> Draft<'a> {
        let cfg = QuorumPeerConfig {
            config_path: PathBuf::from(file),
            multi_address_enabled: multi_address,
            ..Default::default()
        };
        let members = Members::new(Source::StaticFile, multi_address);
        Draft { file, line: 0, cfg, members, members_file: file.to_string(), dynamic }
    }

    /// Applies one `key=value` of `zoo.cfg` found on `line`.
    pub fn apply_key(&mut self, key: &str, value: &str, line: usize) -> Result<(), ConfigError> {
        self.line = line;
        let name = super::setting_name(key);
        if let Some((known, apply)) = SETTINGS.iter().chain(TLS_SETTINGS).find(|(k, _)| *k == name) {
            self.cfg.origin.lines.insert((*known).to_string(), line);
            return apply(self, value).map_err(|e| self.error(key, e.to_string()));
        }
        if let Some(dynamic) = &self.dynamic {
            // QuorumPeerConfig.parseProperties tests these prefixes, `group` and `weight` without the dot.
            if key.starts_with("server.") || key.starts_with("group") || key.starts_with("weight") {
                return Err(self.error(
                    key,
                    format!(
                        "parameter: {key} must be in a separate dynamic config file; \
                         move it to {dynamic} or remove dynamicConfigFile"
                    ),
                ));
            }
            if key == "version" {
                log::debug!("{}:{line}: version is taken from the dynamic file's name; ignored here", self.file);
                return Ok(());
            }
        }
        match self.members.add(key, value, line) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(self.error(key, e.to_string())),
        }
        if keys::is_ignored_key(name) {
            log::debug!("{}:{line}: {key} does not matter to zkelect; accepted and ignored", self.file);
        } else {
            let hint = keys::suggest_key(key).map(|k| format!("; did you mean {k}?")).unwrap_or_default();
            log::warn!("{}:{line}: unknown configuration key {key}, ignored{hint}", self.file);
        }
        Ok(())
    }

    /// Takes the membership from the dynamic file `path` instead of `zoo.cfg`.
    pub fn set_members(&mut self, members: Members, path: String) {
        self.members = members;
        self.members_file = path;
    }

    /// The `dynamicConfigFile` value and its line, if `zoo.cfg` has one.
    pub fn dynamic_file(&self) -> Option<(&str, usize)> {
        let line = self.cfg.origin.lines.get("dynamicConfigFile").copied().unwrap_or(0);
        self.dynamic.as_deref().map(|d| (d, line))
    }

    /// Logs a warning about the current line.
    pub fn warn(&self, message: &str) {
        log::warn!("{}:{}: {message}", self.file, self.line);
    }

    fn warn_if(&self, message: Option<String>) {
        if let Some(m) = message {
            self.warn(&m);
        }
    }

    fn error(&self, key: &str, message: String) -> ConfigError {
        ConfigError { file: self.file.to_string(), line: Some(self.line), key: Some(key.to_string()), message }
    }

    /// Derived values, once every key is in: the verifier and `dataLogDir`'s default.
    pub fn finish(mut self) -> Result<QuorumPeerConfig, ConfigError> {
        let file = self.members_file.clone();
        let (qv, server_lines) = self.members.finish().map_err(|l| ConfigError {
            file: file.clone(),
            line: l.line,
            key: Some(l.key),
            message: l.error.to_string(),
        })?;
        self.cfg.quorum_verifier = qv;
        self.cfg.origin.server_lines = server_lines;
        self.cfg.origin.members_file = file;
        self.cfg.origin.static_client = (self.cfg.client_port, self.cfg.client_port_address.clone());
        self.cfg.origin.configured_peer_type = self.cfg.peer_type;
        self.cfg.quorum_tls.infer_store_types();
        if self.cfg.data_log_dir.as_os_str().is_empty() {
            self.cfg.data_log_dir = self.cfg.data_dir.clone();
        }
        Ok(self.cfg)
    }
}
