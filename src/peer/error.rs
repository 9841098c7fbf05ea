//! Why a leader's or a learner's session ended.

use super::epochs::EpochError;
use crate::election::votes::MovedOn;
use crate::wire::packet::PacketError;
use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// A socket operation failed; `doing` says which.
    Io {
        doing: String,
        source: io::Error,
    },
    /// A packet could not be read while waiting for `waiting_for`.
    Packet {
        waiting_for: String,
        source: PacketError,
    },
    Epoch(EpochError),
    /// The leader closed the session right at our hello: it does not speak zkelect sessions (a
    /// ZooKeeper server, or something that accepts for a leader not yet listening).
    NotZkelect {
        leader: i64,
    },
    /// The leader's end of a running session was closed: its process is gone or it stepped down.
    LeaderClosed {
        leader: i64,
        source: io::Error,
    },
    /// The decided leader's own vote says it will not lead.
    LeaderMovedOn {
        last_error: String,
        moved: MovedOn,
    },
    LeaderUnreachable {
        last_error: String,
    },
    /// The decided leader is not a configured participant.
    NoSuchLeader(i64),
    /// The other side broke the session protocol.
    Protocol(String),
    /// The leader could not gather or keep a quorum.
    NoQuorum {
        why: &'static str,
        have: Vec<i64>,
    },
    /// So many voters follow another leader that none is left to join us.
    SettledElsewhere {
        voters: Vec<i64>,
    },
    /// The leader's quorum port could not be bound.
    Bind {
        addr: String,
        source: io::Error,
    },
    /// The leader resigned (`zkelect resign`).
    Resigned {
        to: Option<i64>,
    },
    /// The leader resigned and released its lease.
    LeaseReleased {
        leader: i64,
        to: Option<i64>,
    },
    /// The node is shutting down.
    Stopping,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { doing, source } => write!(f, "{doing}: {source}"),
            Error::Packet { waiting_for, source } => write!(f, "waiting for {waiting_for}: {source}"),
            Error::Epoch(e) => write!(f, "{e}"),
            Error::NotZkelect { leader } => write!(f, "leader {leader} closed the session at our hello"),
            Error::LeaderClosed { leader, source } => write!(f, "leader {leader} closed the connection: {source}"),
            Error::LeaderMovedOn { last_error, moved } => {
                write!(f, "Unable to connect to the leader: {last_error}; giving up, {moved}")
            }
            Error::LeaderUnreachable { last_error } => write!(f, "Unable to connect to the leader: {last_error}"),
            Error::NoSuchLeader(sid) => write!(f, "Couldn't find the leader with id = {sid}"),
            Error::Protocol(what) => f.write_str(what),
            Error::NoQuorum { why, have } => write!(f, "{why}, only synced with sids: {have:?}"),
            Error::SettledElsewhere { voters } => {
                write!(f, "No quorum left to follow us: voters {voters:?} follow another leader")
            }
            Error::Bind { addr, source } => write!(f, "cannot bind the quorum port {addr}: {source}"),
            Error::Resigned { to: Some(t) } => write!(f, "resigned in favour of server {t}"),
            Error::Resigned { to: None } => f.write_str("resigned"),
            Error::LeaseReleased { leader, to: Some(t) } => {
                write!(f, "leader {leader} resigned in favour of server {t} and released its lease")
            }
            Error::LeaseReleased { leader, to: None } => write!(f, "leader {leader} resigned and released its lease"),
            Error::Stopping => f.write_str("shutting down"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::LeaderClosed { source, .. } | Error::Bind { source, .. } => Some(source),
            Error::Epoch(e) => Some(e),
            _ => None,
        }
    }
}

impl From<EpochError> for Error {
    fn from(e: EpochError) -> Self {
        Error::Epoch(e)
    }
}

/// An I/O error with what was being done.
pub fn io(doing: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let doing = doing.into();
    move |source| Error::Io { doing, source }
}
