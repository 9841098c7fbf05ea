//! Socket helpers shared by the listener and the dialler.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `setSockOpts`: TCP_NODELAY always, SO_KEEPALIVE when `tcpKeepAlive` is set. Beyond ZooKeeper,
/// TCP_USER_TIMEOUT makes the kernel drop a connection whose data stays unacknowledged for
/// `unacked` (a partitioned or vanished peer) instead of retransmitting for many minutes; the
/// peer is then re-dialled as soon as the network heals.
pub fn set_sock_opts(s: &TcpStream, keep_alive: bool, unacked: Duration) -> io::Result<()> {
    s.set_nodelay(true)?;
    let r = socket2::SockRef::from(s);
    r.set_keepalive(keep_alive)?;
    r.set_tcp_user_timeout(Some(unacked))
}

/// Reads with one deadline for the whole exchange, so a client dripping bytes cannot stretch a
/// handshake past its timeout (Java's SO_TIMEOUT only bounds each single read).
pub struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl<'a> DeadlineReader<'a> {
    pub fn new(stream: &'a TcpStream, timeout: Duration) -> Self {
        DeadlineReader { stream, deadline: Instant::now() + timeout }
    }
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "handshake deadline passed"));
        }
        self.stream.set_read_timeout(Some(left))?;
        match (&*self.stream).read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "handshake deadline passed"))
            }
            other => other,
        }
    }
}
