//! `server.N` lines: `QuorumPeer.QuorumServer` and its address grammar.

use std::fmt;

/// Participant or observer (`QuorumPeer.LearnerType`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LearnerType {
    #[default]
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

    /// `0.0.0.0`, `::` and friends: never dialled, never advertised as a dial-back target (ZK-2164).
    pub fn is_wildcard(&self) -> bool {
        matches!(self.host.parse::<std::net::IpAddr>(), Ok(ip) if ip.is_unspecified())
    }

    /// The wildcard of the host's address family with the same port: `::` for an IPv6 host,
    /// `0.0.0.0` otherwise (names included), for binding with `quorumListenOnAllIPs`.
    pub fn wildcard_like(&self) -> HostPort {
        let host = if is_ipv6_literal(&self.host) { "::" } else { "0.0.0.0" };
        HostPort::new(host, self.port)
    }
}

/// Writes `host:port`, bracketing IPv6 literals like `NetUtils.formatInetAddr`.
impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", delimited_host(&self.host), self.port)
    }
}

/// An IPv6 literal, with or without a `%zone` suffix.
fn is_ipv6_literal(host: &str) -> bool {
    let addr = host.split_once('%').map_or(host, |(a, _)| a);
    addr.parse::<std::net::Ipv6Addr>().is_ok()
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

/// Why a `server.N` value does not parse (`QuorumServer.initializeWithAddressString`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLineError {
    /// Too many `;` parts or a wrong number of `:` fields: Java's `wrongFormat` text.
    Form(String),
    MultiAddressDisabled {
        id: i64,
    },
    MissingElectionPort {
        id: i64,
        part: String,
    },
    EmptyHost {
        id: i64,
        part: String,
    },
    Port(PortError),
    /// Java says "Client and election port must be different", which names the wrong port.
    SamePorts {
        port: u16,
    },
    UnknownRole(String),
    MixedRoles,
    Address(AddressError),
}

impl fmt::Display for ServerLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerLineError::Form(value) => write!(
                f,
                "{value} does not have the form server_config or server_config;client_config where \
                 server_config is the pipe separated list of host:port:port or host:port:port:type \
                 and client_config is port or host:port"
            ),
            ServerLineError::MultiAddressDisabled { id } => {
                write!(f, "Multiple address feature is disabled, but multiple addresses were specified for sid {id}")
            }
            ServerLineError::MissingElectionPort { id, part } => {
                write!(f, "missing election port in '{part}' (server.{id})")
            }
            ServerLineError::EmptyHost { id, part } => write!(f, "empty host in '{part}' (server.{id})"),
            ServerLineError::Port(e) => e.fmt(f),
            ServerLineError::SamePorts { port } => {
                write!(f, "quorum port {port} and election port {port} must be different; change one of them")
            }
            ServerLineError::UnknownRole(r) => write!(f, "Unrecognised peertype: {r}"),
            ServerLineError::MixedRoles => f.write_str("Multiple addresses should have similar roles"),
            ServerLineError::Address(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ServerLineError {}

impl From<PortError> for ServerLineError {
    fn from(e: PortError) -> Self {
        ServerLineError::Port(e)
    }
}

impl From<AddressError> for ServerLineError {
    fn from(e: AddressError) -> Self {
        ServerLineError::Address(e)
    }
}

/// A port field of a `server.N` value that is not a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortError {
    NotNumber { what: &'static str, text: String },
    OutOfRange { what: &'static str, value: i64 },
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortError::NotNumber { what, text } => write!(f, "bad {what} '{text}': not a number"),
            PortError::OutOfRange { what, value } => write!(f, "{what} {value} is out of range 0..65535"),
        }
    }
}

/// A bracketed IPv6 host that is not closed, or not followed by `:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    NoClosingBracket(String),
    NoColonAfterBracket(String),
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::NoClosingBracket(s) => write!(f, "{s} starts with '[' but has no matching ']'"),
            AddressError::NoColonAfterBracket(s) => write!(f, "{s} does not have ':' after ']'"),
        }
    }
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

    /// Parses the value of `server.<id>` (`QuorumServer.initializeWithAddressString`, the 3.8/3.9
    /// grammar: `host:quorumPort:electionPort[:role][|…][;[clientHost:]clientPort]`).
    pub fn parse(id: i64, value: &str, multi_address: bool) -> Result<QuorumServer, ServerLineError> {
        let form_error = || ServerLineError::Form(value.to_string());
        let parts: Vec<&str> = value.split(';').collect();
        if parts.len() > 2 {
            return Err(form_error());
        }
        let addr_parts: Vec<&str> = parts[0].split('|').collect();
        if addr_parts.len() > 1 && !multi_address {
            return Err(ServerLineError::MultiAddressDisabled { id });
        }
        let mut addrs = Vec::with_capacity(addr_parts.len());
        let mut role: Option<LearnerType> = None;
        for part in addr_parts {
            let (addr, this_role) = parse_address(id, part.trim(), value)?;
            if role.is_some_and(|prev| prev != this_role) {
                return Err(ServerLineError::MixedRoles);
            }
            role = Some(this_role);
            addrs.push(addr);
        }
        let client_addr = match parts.get(1) {
            None => None,
            Some(c) => {
                let fields = split_host_and_port(c.trim())?;
                match fields.len() {
                    // A bare port listens on the IPv4 wildcard (Java: `new InetSocketAddress("0.0.0.0", p)`).
                    1 => Some(HostPort::new("0.0.0.0", parse_port(&fields[0], "client port")?)),
                    2 => Some(HostPort::new(fields[0].trim(), parse_port(&fields[1], "client port")?)),
                    _ => return Err(form_error()),
                }
            }
        };
        Ok(QuorumServer { id, addrs, learner_type: role.unwrap_or(LearnerType::Participant), client_addr })
    }
}

/// One `host:quorumPort:electionPort[:role]` of a `server.N` value (the whole `value` is for the
/// format error text).
fn parse_address(id: i64, part: &str, value: &str) -> Result<(ServerAddress, LearnerType), ServerLineError> {
    let fields = split_host_and_port(part)?;
    if fields.len() == 2 {
        return Err(ServerLineError::MissingElectionPort { id, part: part.to_string() });
    }
    if fields.len() != 3 && fields.len() != 4 {
        return Err(ServerLineError::Form(value.to_string()));
    }
    let host = fields[0].trim().to_string();
    if host.is_empty() {
        return Err(ServerLineError::EmptyHost { id, part: part.to_string() });
    }
    let quorum_port = parse_port(&fields[1], "quorum port")?;
    let election_port = parse_port(&fields[2], "election port")?;
    if quorum_port == election_port {
        return Err(ServerLineError::SamePorts { port: quorum_port });
    }
    let role = match fields.get(3) {
        None => LearnerType::Participant,
        Some(r) => match r.trim().to_ascii_lowercase().as_str() {
            "participant" => LearnerType::Participant,
            "observer" => LearnerType::Observer,
            _ => return Err(ServerLineError::UnknownRole(r.trim().to_string())),
        },
    };
    Ok((ServerAddress { host, quorum_port, election_port }, role))
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
pub fn split_host_and_port(s: &str) -> Result<Vec<String>, AddressError> {
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']').ok_or_else(|| AddressError::NoClosingBracket(s.to_string()))?;
        let host = &rest[..close];
        let after = &rest[close + 1..];
        let mut out = vec![host.to_string()];
        if after.is_empty() {
            return Ok(out);
        }
        let tail = after.strip_prefix(':').ok_or_else(|| AddressError::NoColonAfterBracket(s.to_string()))?;
        out.extend(tail.split(':').map(str::to_string));
        Ok(out)
    } else {
        Ok(s.split(':').map(str::to_string).collect())
    }
}

fn parse_port(s: &str, what: &'static str) -> Result<u16, PortError> {
    let t = s.trim();
    super::values::parse_port(t).map_err(|e| match e {
        super::ValueError::PortOutOfRange(value) => PortError::OutOfRange { what, value },
        _ => PortError::NotNumber { what, text: t.to_string() },
    })
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
        assert_eq!(
            QuorumServer::parse(1, "a:1:2|b:1:2", false).unwrap_err(),
            ServerLineError::MultiAddressDisabled { id: 1 }
        );
        let s = QuorumServer::parse(1, "b:1:2|a:1:2", true).unwrap();
        assert_eq!(s.to_string(), "a:1:2|b:1:2:participant");
        assert_eq!(QuorumServer::parse(1, "b:1:2:observer|a:1:2", true).unwrap_err(), ServerLineError::MixedRoles);
    }

    #[test]
    fn errors() {
        let err = |v: &str| QuorumServer::parse(1, v, false).unwrap_err().to_string();
        assert_eq!(err("h:1"), "missing election port in 'h:1' (server.1)");
        assert_eq!(err("h:1:1"), "quorum port 1 and election port 1 must be different; change one of them");
        assert_eq!(err("h:1:70000"), "election port 70000 is out of range 0..65535");
        assert_eq!(err("h:x:2"), "bad quorum port 'x': not a number");
        assert_eq!(err("h:1:2:boss"), "Unrecognised peertype: boss");
        assert!(err("h:1:2;a;b").contains("does not have the form"));
        assert_eq!(err("[::1:1:2"), "[::1:1:2 starts with '[' but has no matching ']'");
        assert_eq!(err(":1:2"), "empty host in ':1:2' (server.1)");
    }

    #[test]
    fn wildcard_like_keeps_the_family() {
        assert_eq!(HostPort::new("::1", 2181).wildcard_like(), HostPort::new("::", 2181));
        assert_eq!(HostPort::new("fe80::1%eth0", 1).wildcard_like().host, "::");
        assert_eq!(HostPort::new("10.0.0.1", 2888).wildcard_like(), HostPort::new("0.0.0.0", 2888));
        assert_eq!(HostPort::new("zk1.example", 3888).wildcard_like(), HostPort::new("0.0.0.0", 3888));
        assert!(HostPort::new("::1", 1).wildcard_like().is_wildcard());
    }
}
