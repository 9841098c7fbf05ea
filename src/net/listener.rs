//! Listening sockets and the accept loop.

use super::stream::{Closer, PeerStream, SocketOptions};
use super::tls::Security;
use crate::runtime::Shutdown;
use socket2::{Domain, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A bound, listening socket (SO_REUSEADDR, so a restarted node can bind at once).
pub struct Listener {
    socket: Socket,
    local: SocketAddr,
}

impl Listener {
    pub fn bind(addr: SocketAddr, backlog: i32) -> io::Result<Listener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(backlog)?;
        let local = socket.local_addr()?.as_socket().unwrap_or(addr);
        Ok(Listener { socket, local })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Waits for the next connection (until [`ListenerWaker::wake`]).
    pub fn accept(&self) -> io::Result<Incoming> {
        let (socket, remote) = self.socket.accept()?;
        let remote = remote.as_socket().ok_or_else(|| io::Error::other("accepted a socket without an address"))?;
        Ok(Incoming { tcp: socket.into(), remote })
    }

    /// A handle that makes a blocked [`accept`](Self::accept) return, for shutdown.
    pub fn waker(&self) -> io::Result<ListenerWaker> {
        Ok(ListenerWaker(self.socket.try_clone()?))
    }
}

/// Wakes a listener's accept. On Linux, shutdown(2) of a listening socket makes a blocked accept
/// return EINVAL at once, and every later one too; the accept loop then sees its stop requested.
pub struct ListenerWaker(Socket);

impl ListenerWaker {
    pub fn wake(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// An accepted connection, not yet put to use.
#[derive(Debug)]
pub struct Incoming {
    tcp: TcpStream,
    remote: SocketAddr,
}

impl Incoming {
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// A handle to close it while another thread reads its first bytes.
    pub fn closer(&self) -> io::Result<Closer> {
        Ok(Closer::new(self.tcp.try_clone()?))
    }

    /// As a peer connection (election or quorum port): plaintext, or TLS after a handshake that
    /// ends before `deadline`, as `security` allows.
    pub fn into_stream(self, opts: SocketOptions, security: &Security, deadline: Instant) -> io::Result<PeerStream> {
        PeerStream::accept(self.tcp, self.remote, opts, security, deadline)
    }

    /// As a client connection (four-letter words, metrics), which is not a peer socket.
    pub fn into_client(self) -> TcpStream {
        self.tcp
    }
}

/// Most time between attempts after accept errors (hashicorp raft's `listen`: 5 ms doubling to 1 s).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts until `shutdown` is requested (then wake the listener), handing each connection to
/// `handle`. Errors (out of file descriptors, say) back off instead of spinning.
pub fn serve(listener: &Listener, shutdown: &Shutdown, what: &str, mut handle: impl FnMut(Incoming)) {
    let mut backoff = Duration::ZERO;
    while !shutdown.is_requested() {
        match listener.accept() {
            Ok(incoming) => {
                backoff = Duration::ZERO;
                if shutdown.is_requested() {
                    return;
                }
                handle(incoming);
            }
            Err(e) => {
                if shutdown.is_requested() {
                    return;
                }
                backoff = (backoff * 2).clamp(Duration::from_millis(5), MAX_ACCEPT_BACKOFF);
                log::warn!("{what}: accept failed on {}: {e}; retrying in {} ms", listener.local, backoff.as_millis());
                if !shutdown.sleep(backoff) {
                    return;
                }
            }
        }
    }
}
