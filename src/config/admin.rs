//! ZooKeeper's AdminServer settings (`JettyAdminServer`, keys `admin.*`, read by ZooKeeper as
//! `zookeeper.admin.*` system properties), with ZooKeeper's defaults. The server is off unless
//! `admin.enableServer=true`, as in ZooKeeper's next release (ZOOKEEPER-5050): 3.8 turned it on by
//! default, and several servers on one host then all claim port 8080.

use super::values::{ValueError, java_parse_boolean, parse_num, parse_port, unbracket};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminServerConfig {
    /// `admin.enableServer`.
    pub enabled: bool,
    /// `admin.serverAddress`: the address to bind (`0.0.0.0`).
    pub address: String,
    /// `admin.serverPort` (8080).
    pub port: u16,
    /// `admin.commandURL` (`/commands`): where the commands are, with a leading `/` and no
    /// trailing one.
    pub command_url: String,
    /// `admin.idleTimeout` (30000 ms): how long a connection may wait for its next request.
    pub idle_timeout_ms: u64,
    /// Why the server stays off although enabled (a setting zkelect cannot honour), if it does.
    pub refused: Option<String>,
}

impl Default for AdminServerConfig {
    fn default() -> Self {
        AdminServerConfig {
            enabled: false,
            address: "0.0.0.0".into(),
            port: 8080,
            command_url: "/commands".into(),
            idle_timeout_ms: 30_000,
            refused: None,
        }
    }
}

/// What a value did, for the caller to log against its line.
pub type Warning = Option<String>;

impl AdminServerConfig {
    /// Whether the server is to be started.
    pub fn serves(&self) -> bool {
        self.enabled && self.refused.is_none()
    }

    /// `admin.enableServer`: `Boolean.parseBoolean`, as ZooKeeper reads it.
    pub fn set_enabled(&mut self, v: &str) -> Warning {
        let (on, odd) = java_parse_boolean(v);
        self.enabled = on;
        odd.then(|| format!("admin.enableServer={v} is neither true nor false; the admin server stays off"))
    }

    pub fn set_address(&mut self, v: &str) -> Warning {
        self.address = if v.is_empty() { "0.0.0.0".into() } else { unbracket(v) };
        None
    }

    pub fn set_port(&mut self, v: &str) -> Result<Warning, ValueError> {
        self.port = parse_port(v)?;
        Ok(None)
    }

    /// Jetty maps the command servlet at `commandURL + "/*"`: the value is a path prefix.
    pub fn set_command_url(&mut self, v: &str) -> Result<Warning, ValueError> {
        let trimmed = v.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(ValueError::Invalid(format!(
                "admin.commandURL={v:?} leaves no path for the commands; use a path such as /commands"
            )));
        }
        if trimmed.contains(['?', '#', ' ']) {
            return Err(ValueError::Invalid(format!("admin.commandURL={v:?} is not a URL path")));
        }
        self.command_url = if trimmed.starts_with('/') { trimmed.to_string() } else { format!("/{trimmed}") };
        Ok(None)
    }

    pub fn set_idle_timeout(&mut self, v: &str) -> Result<Warning, ValueError> {
        let ms = parse_num(v)?;
        if ms == 0 {
            // Jetty reads 0 as "never"; with a bound on connections, idle ones would hold the
            // port's slots for good.
            self.idle_timeout_ms = AdminServerConfig::default().idle_timeout_ms;
            return Ok(Some(format!(
                "admin.idleTimeout=0 (never) is not supported: idle connections would keep the admin port's \
                 connection slots; using {} ms",
                self.idle_timeout_ms
            )));
        }
        self.idle_timeout_ms = ms;
        Ok(None)
    }

    /// `admin.forceHttps=true` asks for HTTPS only, which zkelect's admin server does not speak:
    /// plain HTTP instead would expose what the operator wanted protected, so it stays off.
    pub fn set_force_https(&mut self, v: &str) -> Warning {
        if java_parse_boolean(v).0 {
            let why = "admin.forceHttps=true: zkelect's admin server speaks plain HTTP only, so it stays off";
            self.refused = Some(why.into());
            return Some(why.into());
        }
        self.refused = None;
        None
    }

    /// `admin.portUnification=true` would also accept HTTPS on the port; zkelect accepts plain HTTP.
    pub fn set_port_unification(&mut self, v: &str) -> Warning {
        java_parse_boolean(v).0.then(|| {
            "admin.portUnification=true: zkelect's admin server accepts plain HTTP only (no HTTPS on the port)"
                .to_string()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let mut a = AdminServerConfig::default();
        assert!(!a.serves());
        assert_eq!(a.set_enabled("TRUE"), None);
        assert!(a.serves());
        assert!(a.set_enabled("yes").is_some());
        assert!(!a.enabled);
        assert_eq!(a.set_command_url("zk/").unwrap(), None);
        assert_eq!(a.command_url, "/zk");
        assert!(a.set_command_url("/").is_err());
        assert_eq!(a.set_address("[::1]"), None);
        assert_eq!(a.address, "::1");
        assert!(a.set_idle_timeout("0").unwrap().is_some());
        assert_eq!(a.idle_timeout_ms, 30_000);
        a.set_enabled("true");
        assert!(a.set_force_https("true").is_some());
        assert!(!a.serves());
        assert!(a.set_port("70000").is_err());
    }

    #[test]
    fn zoo_cfg_keys() {
        let base = "tickTime=200\ninitLimit=5\nsyncLimit=2\ndataDir=/d\nserver.1=h:1:2\nserver.2=h:3:4\n";
        let parse = |extra: &str| crate::config::QuorumPeerConfig::parse(&format!("{base}{extra}"), "zoo.cfg");
        assert_eq!(parse("").expect("parses").admin_server, AdminServerConfig::default());
        let cfg = parse(
            "admin.enableServer=true\nzookeeper.admin.serverPort=9090\nadmin.serverAddress=127.0.0.1\n\
             admin.commandURL=/zk\nadmin.idleTimeout=5000\nadmin.httpVersion=11\n",
        )
        .expect("parses");
        let a = &cfg.admin_server;
        assert!(a.serves());
        assert_eq!(
            (a.port, a.address.as_str(), a.command_url.as_str(), a.idle_timeout_ms),
            (9090, "127.0.0.1", "/zk", 5000)
        );
        let e = parse("admin.serverPort=x\n").expect_err("bad port");
        assert_eq!((e.line, e.key.as_deref()), (Some(7), Some("admin.serverPort")));
        assert!(!parse("admin.enableServer=true\nadmin.forceHttps=true\n").expect("parses").admin_server.serves());
    }
}
