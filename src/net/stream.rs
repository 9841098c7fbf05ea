//! [`PeerStream`]: one connected peer socket, used through shared references by the thread that
//! reads it and the thread that writes it (`Read`/`Write` are implemented for `&PeerStream`, as
//! for `&TcpStream`). [`PeerStream::shutdown`] (or a [`Closer`] taken earlier) releases both.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Options of every peer socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// SO_KEEPALIVE (`tcpKeepAlive`).
    pub keep_alive: bool,
    /// TCP_USER_TIMEOUT, and the timeout of every write.
    pub timeout: Duration,
}

/// A connected peer socket.
#[derive(Debug)]
pub struct PeerStream {
    tcp: TcpStream,
    remote: SocketAddr,
}

impl PeerStream {
    /// Dials `addr` within `timeout` (`Learner.connectToLeader`, `QuorumCnxManager.initiateConnection`).
    pub fn connect(addr: SocketAddr, timeout: Duration, opts: SocketOptions) -> io::Result<PeerStream> {
        let tcp = TcpStream::connect_timeout(&addr, timeout.max(Duration::from_millis(1)))?;
        PeerStream::wrap(tcp, addr, opts)
    }

    /// A socket from [`super::Incoming::into_stream`].
    pub(super) fn wrap(tcp: TcpStream, remote: SocketAddr, opts: SocketOptions) -> io::Result<PeerStream> {
        set_sock_opts(&tcp, opts)?;
        tcp.set_write_timeout(Some(opts.timeout))?;
        Ok(PeerStream { tcp, remote })
    }

    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Blocks reads for at most `timeout` each (`None`: without limit).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_read_timeout(timeout)
    }

    /// A reader for an exchange that must complete before `deadline`.
    pub fn read_until(&self, deadline: Instant) -> DeadlineReader<'_> {
        DeadlineReader { stream: self, deadline }
    }

    /// Reads what has arrived, without waiting, appending at most `budget` bytes to `buf`.
    pub fn read_available(&self, buf: &mut Vec<u8>, budget: usize) -> io::Result<Drained> {
        self.tcp.set_nonblocking(true)?;
        let result = self.drain(buf, budget);
        let restored = self.tcp.set_nonblocking(false);
        let drained = result?;
        restored?;
        Ok(drained)
    }

    fn drain(&self, buf: &mut Vec<u8>, budget: usize) -> io::Result<Drained> {
        let mut chunk = [0u8; 4096];
        let mut left = budget;
        while left > 0 {
            let want = left.min(chunk.len());
            match (&self.tcp).read(&mut chunk[..want]) {
                Ok(0) => return Ok(Drained::Closed),
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    left -= n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Drained::Open),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Drained::Open)
    }

    /// Shuts both directions down: a blocked read or write in another thread returns at once.
    pub fn shutdown(&self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }

    /// A handle that can shut this socket down later from anywhere (on node shutdown).
    pub fn closer(&self) -> io::Result<Closer> {
        Ok(Closer(self.tcp.try_clone()?))
    }
}

/// Whether the peer is still there after [`PeerStream::read_available`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    Open,
    /// The peer closed its end (EOF).
    Closed,
}

impl Read for &PeerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.tcp).read(buf)
    }
}

impl Write for &PeerStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.tcp).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Shuts a socket down from another thread; what a component keeps to release blocked reads.
#[derive(Debug)]
pub struct Closer(TcpStream);

impl Closer {
    pub(super) fn new(tcp: TcpStream) -> Closer {
        Closer(tcp)
    }

    pub fn close(&self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// Reads with one deadline for the whole exchange, so a peer dripping bytes cannot stretch a
/// handshake past its timeout (Java's SO_TIMEOUT only bounds each single read; ZK-3296).
pub struct DeadlineReader<'a> {
    stream: &'a PeerStream,
    deadline: Instant,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        self.stream.set_read_timeout(Some(left))?;
        match (&self.stream.tcp).read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
            }
            other => other,
        }
    }
}

/// `setSockOpts`: TCP_NODELAY always, SO_KEEPALIVE when `tcpKeepAlive` is set. Beyond ZooKeeper,
/// TCP_USER_TIMEOUT makes the kernel drop a connection whose data stays unacknowledged for
/// `opts.timeout` (a partitioned or vanished peer) instead of retransmitting for many minutes;
/// the peer is then re-dialled as soon as the network heals.
fn set_sock_opts(s: &TcpStream, opts: SocketOptions) -> io::Result<()> {
    s.set_nodelay(true)?;
    let r = socket2::SockRef::from(s);
    r.set_keepalive(opts.keep_alive)?;
    r.set_tcp_user_timeout(Some(opts.timeout))
}
