//! Checks of a whole parsed configuration (`QuorumPeerConfig.parseProperties`' tail,
//! `parseDynamicConfig`, `checkValidity`), plus the mistakes ZooKeeper only finds at run time.

use super::myid::normalized_host;
use super::{ConfigError, QuorumPeerConfig, QuorumServer};
use std::collections::BTreeMap;

impl QuorumPeerConfig {
    /// Checks the parsed configuration as a whole. Errors point at the key they are about.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(self.error_at(None, "dataDir is not set".into()));
        }
        if self.client_port_address.is_some() && self.client_port.is_none() {
            return Err(
                self.error_at(Some("clientPortAddress"), "clientPortAddress is set but clientPort is not set".into())
            );
        }
        if self.min_notification_interval_ms > self.max_notification_interval_ms {
            return Err(self.error_at(
                Some("fastleader.minNotificationInterval"),
                "fastleader.minNotificationInterval is larger than fastleader.maxNotificationInterval".into(),
            ));
        }
        self.validate_server_addresses()?;
        self.validate_membership()?;
        self.validate_limits()?;
        self.validate_lease()?;
        self.validate_tls()
    }

    /// Mistakes ZooKeeper only finds when it binds or dials: port 0, and one host:port used
    /// twice (two servers' election ports, or a quorum port that is another's election port).
    fn validate_server_addresses(&self) -> Result<(), ConfigError> {
        let mut by_line: Vec<(usize, &QuorumServer)> = self
            .quorum_verifier
            .members
            .values()
            .map(|s| (self.origin.server_lines.get(&s.id).copied().unwrap_or(0), s))
            .collect();
        by_line.sort_by_key(|(line, s)| (*line, s.id));
        let mut seen: BTreeMap<(String, u16), (i64, &str)> = BTreeMap::new();
        for (_, s) in by_line {
            if s.client_addr.as_ref().is_some_and(|c| c.port == 0) {
                return Err(self.server_error(
                    s.id,
                    "client port 0: clients cannot connect to port 0; give a port in 1..65535 or drop the ;client part"
                        .into(),
                ));
            }
            for a in &s.addrs {
                for (kind, addr) in [("quorum", a.quorum()), ("election", a.election())] {
                    if addr.port == 0 {
                        return Err(self.server_error(
                            s.id,
                            format!("{kind} port 0: a peer cannot dial port 0; give a port in 1..65535"),
                        ));
                    }
                    let key = (normalized_host(&addr.host), addr.port);
                    if let Some((other, other_kind)) = seen.get(&key) {
                        let other_line =
                            self.origin.server_lines.get(other).map(|l| format!(" (line {l})")).unwrap_or_default();
                        return Err(self.server_error(
                            s.id,
                            format!(
                                "{kind} address {addr} is also the {other_kind} address of server.{other}{other_line}; \
                                 every quorum and election address must be unique: change the port on one of the lines"
                            ),
                        ));
                    }
                    seen.insert(key, (s.id, kind));
                }
            }
        }
        Ok(())
    }

    /// `parseDynamicConfig`'s counts; a single voter with standalone mode is refused, because
    /// ZooKeeper would not run an election at all.
    fn validate_membership(&self) -> Result<(), ConfigError> {
        let participants = self.quorum_verifier.voter_count();
        let observers = self.quorum_verifier.members.len() - participants;
        if participants == 0 {
            return Err(self.error_at(
                None,
                if observers > 0 {
                    "Observers w/o participants is an invalid configuration".into()
                } else {
                    "no server.N lines: zkelect needs an ensemble to elect a leader".into()
                },
            ));
        }
        if participants == 1 && self.standalone_enabled {
            return Err(self.error_at(
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
        Ok(())
    }

    /// `checkValidity`: both limits are required in a distributed configuration.
    fn validate_limits(&self) -> Result<(), ConfigError> {
        for (key, value) in [("initLimit", self.init_limit), ("syncLimit", self.sync_limit)] {
            if !self.origin.lines.contains_key(key) {
                return Err(self.error_at(None, format!("{key} is not set")));
            }
            if value == 0 {
                return Err(self.error_at(Some(key), format!("{key} must be at least 1")));
            }
        }
        Ok(())
    }

    /// A leader renews its lease every half tick; the grace period before its end must leave
    /// room for that, or the lease would lapse between two renewals.
    fn validate_lease(&self) -> Result<(), ConfigError> {
        let (lease, grace, half_tick) = (self.lease_ms(), self.run_grace_period_ms(), self.tick_time / 2);
        if grace + half_tick >= lease {
            let key = if self.run_grace_period_ms.is_some() { "zkelect.run.gracePeriodMs" } else { "zkelect.leaseMs" };
            return Err(self.error_at(
                Some(key),
                format!(
                    "the lease ({lease} ms) must be longer than zkelect.run.gracePeriodMs ({grace} ms) plus half a \
                     tick ({half_tick} ms): a leader renews its lease every half tick; raise zkelect.leaseMs \
                     (or syncLimit) or lower the grace period"
                ),
            ));
        }
        Ok(())
    }

    /// An error about the `server.<id>` line, in the file holding it.
    pub(super) fn server_error(&self, id: i64, message: String) -> ConfigError {
        ConfigError {
            file: self.origin.members_file.clone(),
            line: self.origin.server_lines.get(&id).copied(),
            key: Some(format!("server.{id}")),
            message,
        }
    }

    /// An error in `zoo.cfg` about `key` (at the line where it was set), or about the file.
    pub(super) fn error_at(&self, key: Option<&str>, message: String) -> ConfigError {
        ConfigError {
            file: self.config_path.display().to_string(),
            line: key.and_then(|k| self.origin.lines.get(k).copied()),
            key: key.map(str::to_string),
            message,
        }
    }
}
