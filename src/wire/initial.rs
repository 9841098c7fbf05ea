//! The initial message a dialler sends once (`QuorumCnxManager.InitialMessage`):
//! `long version | long sid | int N | N bytes "host:port[|host:port…]"`, or the legacy bare sid.

use super::Cursor;
use crate::config::HostPort;
use crate::config::server::split_host_and_port;
use std::io::{self, Read};

pub const PROTOCOL_VERSION_V1: i64 = -65536;
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// Largest address string accepted (`InitialMessage.MAX_ADDR_LENGTH`), checked before allocating.
pub const MAX_ADDRESS_LENGTH: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolVersion {
    /// Pre-3.5: the first long is the sid and nothing follows.
    Legacy,
    V1,
    /// Multi-address (3.6+): `|`-joined addresses.
    V2,
}

/// A parsed initial message. `addrs` holds the advertised election addresses without wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMessage {
    pub version: ProtocolVersion,
    pub sid: i64,
    pub addrs: Vec<HostPort>,
}

#[derive(Debug)]
pub enum InitialMessageError {
    UnrecognizedVersion(i64),
    UnreasonableLength(i32),
    BadlyFormedAddress(String),
    BadPort(String),
    NotUtf8,
    /// Truncated, timed out or reset while reading.
    Io(io::Error),
}

impl std::fmt::Display for InitialMessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnrecognizedVersion(v) => write!(f, "Got unrecognized protocol version {v}"),
            Self::UnreasonableLength(n) => write!(f, "Unreasonable buffer length: {n}"),
            Self::BadlyFormedAddress(a) => write!(f, "Badly formed address: {a}"),
            Self::BadPort(a) => write!(f, "Bad port number: {a}"),
            Self::NotUtf8 => write!(f, "address is not UTF-8"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for InitialMessageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitialMessageError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for InitialMessageError {
    fn from(e: io::Error) -> Self {
        InitialMessageError::Io(e)
    }
}

/// Encodes the handshake: V1 with the first address, or V2 with all of them joined by `|`.
pub fn encode(version: ProtocolVersion, sid: i64, addrs: &[HostPort]) -> Vec<u8> {
    let (v, text) = match version {
        ProtocolVersion::Legacy => return sid.to_be_bytes().to_vec(),
        ProtocolVersion::V1 => (PROTOCOL_VERSION_V1, addrs.first().map(HostPort::to_string).unwrap_or_default()),
        ProtocolVersion::V2 => {
            (PROTOCOL_VERSION_V2, addrs.iter().map(HostPort::to_string).collect::<Vec<_>>().join("|"))
        }
    };
    let mut out = Vec::with_capacity(20 + text.len());
    out.extend_from_slice(&v.to_be_bytes());
    out.extend_from_slice(&sid.to_be_bytes());
    out.extend_from_slice(&(text.len() as i32).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out
}

/// Reads a handshake from a stream. Unlike Java, the address is read fully (a sender that split
/// its write is still understood); the caller bounds the whole read with a deadline.
pub fn read<R: Read>(r: &mut R) -> Result<InitialMessage, InitialMessageError> {
    let mut head = [0u8; 8];
    r.read_exact(&mut head)?;
    let v = i64::from_be_bytes(head);
    if v >= 0 {
        return Ok(InitialMessage { version: ProtocolVersion::Legacy, sid: v, addrs: Vec::new() });
    }
    let version = version_of(v)?;
    let mut rest = [0u8; 12];
    r.read_exact(&mut rest)?;
    let mut c = Cursor::new(&rest);
    let (sid, n) = (c.i64().unwrap_or(0), c.i32().unwrap_or(0));
    let n = check_length(n)?;
    let mut text = vec![0u8; n];
    r.read_exact(&mut text)?;
    Ok(InitialMessage { version, sid, addrs: parse_addresses(&text)? })
}

/// Parses a complete handshake held in memory (the same rules as [`read`]).
pub fn decode(buf: &[u8]) -> Result<InitialMessage, InitialMessageError> {
    read(&mut &buf[..])
}

fn version_of(v: i64) -> Result<ProtocolVersion, InitialMessageError> {
    match v {
        PROTOCOL_VERSION_V1 => Ok(ProtocolVersion::V1),
        PROTOCOL_VERSION_V2 => Ok(ProtocolVersion::V2),
        other => Err(InitialMessageError::UnrecognizedVersion(other)),
    }
}

fn check_length(n: i32) -> Result<usize, InitialMessageError> {
    if n <= 0 || n as usize > MAX_ADDRESS_LENGTH {
        Err(InitialMessageError::UnreasonableLength(n))
    } else {
        Ok(n as usize)
    }
}

/// Splits on `|`, checks each `host:port` (bracket-aware), drops wildcard hosts.
pub fn parse_addresses(bytes: &[u8]) -> Result<Vec<HostPort>, InitialMessageError> {
    let text = std::str::from_utf8(bytes).map_err(|_| InitialMessageError::NotUtf8)?;
    let mut out = Vec::new();
    for part in text.split('|') {
        let fields = split_host_and_port(part).map_err(|_| InitialMessageError::BadlyFormedAddress(part.into()))?;
        if fields.len() != 2 || fields[0].is_empty() {
            return Err(InitialMessageError::BadlyFormedAddress(part.into()));
        }
        // Java parses an int and then lets InetSocketAddress throw on > 65535, killing its
        // listener (seen on 3.8.0); here a bad port is an ordinary parse error.
        let port: u16 = fields[1].parse().map_err(|_| InitialMessageError::BadPort(part.into()))?;
        let hp = HostPort::new(fields[0].clone(), port);
        if !hp.is_wildcard() {
            out.push(hp);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(sid: i64, addr: &[u8]) -> Vec<u8> {
        let mut b = PROTOCOL_VERSION_V1.to_be_bytes().to_vec();
        b.extend_from_slice(&sid.to_be_bytes());
        b.extend_from_slice(&(addr.len() as i32).to_be_bytes());
        b.extend_from_slice(addr);
        b
    }

    /// `CnxManagerTest.testInitialMessage`.
    #[test]
    fn java_initial_message_cases() {
        let mut bad = (-65530i64).to_be_bytes().to_vec();
        bad.extend_from_slice(&[0; 12]);
        assert!(matches!(decode(&bad), Err(InitialMessageError::UnrecognizedVersion(-65530))));
        let mut huge = PROTOCOL_VERSION_V1.to_be_bytes().to_vec();
        huge.extend_from_slice(&1i64.to_be_bytes());
        huge.extend_from_slice(&(1024 * 1024i32).to_be_bytes());
        assert!(matches!(decode(&huge), Err(InitialMessageError::UnreasonableLength(1048576))));
        assert!(matches!(decode(&v1(1, b"what's going on here?")), Err(InitialMessageError::BadlyFormedAddress(_))));
        let ok = decode(&v1(5, b"10.0.0.2:3888")).unwrap();
        assert_eq!(ok.addrs, vec![HostPort::new("10.0.0.2", 3888)]);
        let mut v2 = v1(5, b"1.1.1.1:9999|2.2.2.2:8888|3.3.3.3:7777");
        v2[..8].copy_from_slice(&PROTOCOL_VERSION_V2.to_be_bytes());
        let m = decode(&v2).unwrap();
        assert_eq!(m.version, ProtocolVersion::V2);
        let ports: Vec<u16> = m.addrs.iter().map(|a| a.port).collect();
        assert_eq!(ports, vec![9999, 8888, 7777]);
    }

    #[test]
    fn bounds_and_oddities() {
        assert!(matches!(decode(&v1(1, b"h:70000")), Err(InitialMessageError::BadPort(_))));
        assert!(matches!(decode(&v1(1, b"[::1]:3888")), Ok(m) if m.addrs[0].host == "::1"));
        assert!(decode(&v1(1, b"0.0.0.0:3888")).unwrap().addrs.is_empty(), "wildcards are dropped");
        assert!(matches!(decode(&v1(1, &[0xff, 0xfe, b':', b'1'])), Err(InitialMessageError::NotUtf8)));
        let full = v1(1, b"127.0.0.1:3888");
        assert!(matches!(decode(&full[..full.len() - 1]), Err(InitialMessageError::Io(_))));
        assert!(matches!(decode(&2i64.to_be_bytes()), Ok(m) if m.version == ProtocolVersion::Legacy && m.sid == 2));
        let mut zero = v1(1, b"");
        zero.truncate(20);
        assert!(matches!(decode(&zero), Err(InitialMessageError::UnreasonableLength(0))));
    }

    #[test]
    fn encode_v2_round_trip() {
        let addrs = vec![HostPort::new("127.0.0.1", 1), HostPort::new("::1", 2)];
        let m = decode(&encode(ProtocolVersion::V2, 9, &addrs)).unwrap();
        assert_eq!((m.sid, m.addrs), (9, addrs));
    }
}
