//! The stream seam: every peer socket (election port and quorum port, accepted or dialled) is
//! created and wrapped here and nowhere else. [`Listener`] binds and accepts, [`PeerStream`] is a
//! connected peer socket (read half, write half, deadlines, shutdown, peer address) shared by the
//! two threads that use it, and [`serve`] is the accept loop of the servers that need no retry
//! policy of their own. Generic: knows nothing of ZooKeeper's messages.

mod listener;
mod stream;
pub mod tls;

pub use listener::{Incoming, Listener, ListenerWaker, serve};
pub use stream::{Closer, DeadlineReader, Drained, IdentityError, PeerStream, SocketOptions};
pub use tls::{Security, TlsError, TlsInfo};

use crate::config::HostPort;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `addr` (names are re-resolved on every call: a peer's address may change, ZK-3320)
/// and returns its first address.
pub fn resolve(addr: &HostPort) -> io::Result<SocketAddr> {
    resolve_all(addr)?
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address")))
}

/// Every address `addr` resolves to, in the resolver's order.
pub fn resolve_all(addr: &HostPort) -> io::Result<Vec<SocketAddr>> {
    Ok((addr.host.as_str(), addr.port).to_socket_addrs()?.collect())
}
