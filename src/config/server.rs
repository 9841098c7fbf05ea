//! `server.N` lines: `QuorumPeer.QuorumServer` and its address grammar.

use std::fmt;

/// Participant or observer (`QuorumPeer.LearnerType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnerType {
    Participant,
    Observer,
}

impl LearnerType {
    pub fn as_str(self) -> &'static str {
        match self {
            LearnerType::Participant => "participant",
            LearnerType::Observer => "observer",
        }
    }
}

/// A host as written in the configuration (name or literal, never reverse-resolved) and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        HostPort { host: host.into(), port }
    }

    /// The wildcard address of the same family and port (`quorumListenOnAllIPs`).
    pub fn wildcard_like(&self) -> HostPort {
        HostPort::new(if self.host.contains(':') { "::" } else { "0.0.0.0" }, self.port)
    }

    /// `0.0.0.0`, `::` and friends: never dialled, never advertised as a dial-back target (ZK-2164).
    pub fn is_wildcard(&self) -> bool {
        matches!(self.host.parse::<std::net::IpAddr>(), Ok(ip) if ip.is_unspecified())
    }
}

/// Writes `host:port`, bracketing IPv6 literals like `NetUtils.formatInetAddr`.
impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", delimited_host(&self.host), self.port)
    }
}

pub fn delimited_host(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_string() }
}

/// One address set entry of a `server.N` line: `host:quorumPort:electionPort`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerAddress {
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
}

impl ServerAddress {
    pub fn election(&self) -> HostPort {
        HostPort::new(self.host.clone(), self.election_port)
    }
    pub fn quorum(&self) -> HostPort {
        HostPort::new(self.host.clone(), self.quorum_port)
    }
}

/// One member of the ensemble (`QuorumPeer.QuorumServer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumServer {
    pub id: i64,
    /// At least one; several only with `multiAddress.enabled=true`.
    pub addrs: Vec<ServerAddress>,
    pub learner_type: LearnerType,
    /// The `;[host:]port` part when it was written in the `server.N` line.
    pub client_addr: Option<HostPort>,
}

impl QuorumServer {
    pub fn election_addrs(&self) -> Vec<HostPort> {
        self.addrs.iter().map(ServerAddress::election).collect()
    }
    pub fn quorum_addrs(&self) -> Vec<HostPort> {
        self.addrs.iter().map(ServerAddress::quorum).collect()
    }
    pub fn is_participant(&self) -> bool {
        self.learner_type == LearnerType::Participant
    }

    /// Parses the value of `server.<id>` (the 3.8/3.9 grammar, see spec §3).
    pub fn parse(id: i64, value: &str, multi_address: bool) -> Result<QuorumServer, String> {
        let form_error = || {
            format!(
                "{value} does not have the form server_config or server_config;client_config where \
                 server_config is the pipe separated list of host:port:port or host:port:port:type \
                 and client_config is port or host:port"
            )
        };
        let parts: Vec<&str> = value.split(';').collect();
        if parts.len() > 2 {
            return Err(form_error());
        }
        let addr_parts: Vec<&str> = parts[0].split('|').collect();
        if addr_parts.len() > 1 && !multi_address {
            return Err(format!(
                "Multiple address feature is disabled, but multiple addresses were specified for sid {id}"
            ));
        }
        let mut addrs = Vec::with_capacity(addr_parts.len());
        let mut role: Option<LearnerType> = None;
        for part in addr_parts {
            let fields = split_host_and_port(part.trim())?;
            if fields.len() == 2 {
                return Err(format!("missing election port in '{}' (server.{id})", part.trim()));
            }
            if fields.len() != 3 && fields.len() != 4 {
                return Err(form_error());
            }
            let host = fields[0].trim().to_string();
            if host.is_empty() {
                return Err(format!("empty host in '{}' (server.{id})", part.trim()));
            }
            let quorum_port = parse_port(&fields[1], "quorum port")?;
            let election_port = parse_port(&fields[2], "election port")?;
            if quorum_port == election_port {
                return Err(format!(
                    "Client and election port must be different! Please update the configuration file on server.{id}"
                ));
            }
            let this_role = match fields.get(3) {
                None => LearnerType::Participant,
                Some(r) => match r.trim().to_ascii_lowercase().as_str() {
                    "participant" => LearnerType::Participant,
                    "observer" => LearnerType::Observer,
                    _ => return Err(format!("Unrecognised peertype: {}", r.trim())),
                },
            };
            if role.is_some_and(|prev| prev != this_role) {
                return Err("Multiple addresses should have similar roles".to_string());
            }
            role = Some(this_role);
            addrs.push(ServerAddress { host, quorum_port, election_port });
        }
        let client_addr = match parts.get(1) {
            None => None,
            Some(c) => {
                let fields = split_host_and_port(c.trim())?;
                match fields.len() {
                    1 => Some(HostPort::new("0.0.0.0", parse_port(&fields[0], "client port")?)),
                    2 => Some(HostPort::new(fields[0].trim(), parse_port(&fields[1], "client port")?)),
                    _ => return Err(form_error()),
                }
            }
        };
        Ok(QuorumServer { id, addrs, learner_type: role.unwrap_or(LearnerType::Participant), client_addr })
    }
}

/// `QuorumServer.toString()`: the value part of a `server.N=` line in the config text that
/// notifications carry. Addresses are sorted by host string as `MultipleAddresses` does.
impl fmt::Display for QuorumServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut addrs: Vec<&ServerAddress> = self.addrs.iter().collect();
        addrs.sort_by(|a, b| a.host.cmp(&b.host));
        let joined: Vec<String> = addrs
            .iter()
            .map(|a| format!("{}:{}:{}", delimited_host(&a.host), a.quorum_port, a.election_port))
            .collect();
        write!(f, "{}:{}", joined.join("|"), self.learner_type.as_str())?;
        if let Some(c) = &self.client_addr {
            write!(f, ";{c}")?;
        }
        Ok(())
    }
}

/// Bracket-aware split on `:` (`ConfigUtils.getHostAndPort`): `[::1]:2888:3888` gives
/// `["::1", "2888", "3888"]`.
pub fn split_host_and_port(s: &str) -> Result<Vec<String>, String> {
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']').ok_or_else(|| format!("{s} starts with '[' but has no matching ']'"))?;
        let host = &rest[..close];
        let after = &rest[close + 1..];
        let mut out = vec![host.to_string()];
        if after.is_empty() {
            return Ok(out);
        }
        let tail = after.strip_prefix(':').ok_or_else(|| format!("{s} does not have ':' after ']'"))?;
        out.extend(tail.split(':').map(str::to_string));
        Ok(out)
    } else {
        Ok(s.split(':').map(str::to_string).collect())
    }
}

fn parse_port(s: &str, what: &str) -> Result<u16, String> {
    let t = s.trim();
    match t.parse::<i64>() {
        Ok(p) if (0..=65535).contains(&p) => Ok(p as u16),
        Ok(p) => Err(format!("{what} {p} is out of range 0..65535")),
        Err(_) => Err(format!("bad {what} '{t}': not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_line() {
        let s = QuorumServer::parse(1, "127.0.0.1:28981:38981", false).unwrap();
        assert_eq!(s.addrs[0].election(), HostPort::new("127.0.0.1", 38981));
        assert_eq!(s.learner_type, LearnerType::Participant);
        assert_eq!(s.to_string(), "127.0.0.1:28981:38981:participant");
    }

    #[test]
    fn ipv6_observer_and_client() {
        let s = QuorumServer::parse(4, "[::1]:2888:3888:Observer;2181", false).unwrap();
        assert_eq!(s.addrs[0].host, "::1");
        assert_eq!(s.learner_type, LearnerType::Observer);
        assert_eq!(s.to_string(), "[::1]:2888:3888:observer;0.0.0.0:2181");
        assert_eq!(s.addrs[0].election().to_string(), "[::1]:3888");
    }

    #[test]
    fn multi_address() {
        assert!(QuorumServer::parse(1, "a:1:2|b:1:2", false).unwrap_err().contains("Multiple address"));
        let s = QuorumServer::parse(1, "b:1:2|a:1:2", true).unwrap();
        assert_eq!(s.to_string(), "a:1:2|b:1:2:participant");
        assert!(QuorumServer::parse(1, "b:1:2:observer|a:1:2", true).unwrap_err().contains("similar roles"));
    }

    #[test]
    fn errors() {
        assert!(QuorumServer::parse(1, "h:1", false).unwrap_err().contains("missing election port"));
        assert!(QuorumServer::parse(1, "h:1:1", false).unwrap_err().contains("must be different"));
        assert!(QuorumServer::parse(1, "h:1:70000", false).unwrap_err().contains("out of range"));
        assert!(QuorumServer::parse(1, "h:x:2", false).unwrap_err().contains("not a number"));
        assert!(QuorumServer::parse(1, "h:1:2:boss", false).unwrap_err().contains("Unrecognised peertype"));
        assert!(QuorumServer::parse(1, "h:1:2;a;b", false).unwrap_err().contains("does not have the form"));
    }
}
