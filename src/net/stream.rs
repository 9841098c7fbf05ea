//! [`PeerStream`]: one connected peer socket, plaintext or TLS, used through shared references by
//! the thread that reads it and the thread that writes it (`Read`/`Write` are implemented for
//! `&PeerStream`, as for `&TcpStream`). [`PeerStream::shutdown`] (or a [`Closer`] taken earlier)
//! releases both.

use super::tls::{self, FirstBytes, Security, TlsInfo, TlsLink};
use crate::config::HostPort;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
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
pub struct PeerStream {
    tcp: TcpStream,
    remote: SocketAddr,
    tls: Option<TlsLink>,
    /// How the peer's certificate is checked against a claimed server id (TLS acceptor only).
    identity: Identity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    /// Nothing to check: plaintext, or hostname verification off.
    Unchecked,
    /// We dialled: the server certificate was checked against the address dialled.
    Dialled,
    /// We accepted: the client certificate is checked once the peer names its server id.
    Accepted { bind_sid: bool },
}

/// A peer's certificate does not match the server it claims to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityError(pub String);

impl std::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for PeerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerStream").field("remote", &self.remote).field("tls", &self.tls_info()).finish()
    }
}

impl PeerStream {
    /// Dials `addr` within `timeout` (`Learner.connectToLeader`, `QuorumCnxManager.initiateConnection`)
    /// and, under `sslQuorum`, runs the TLS handshake as client within `opts.timeout`: the server's
    /// certificate must match the address dialled or the configured `host`.
    pub fn connect(
        addr: SocketAddr,
        host: &str,
        timeout: Duration,
        opts: SocketOptions,
        security: &Security,
    ) -> io::Result<PeerStream> {
        let tcp = TcpStream::connect_timeout(&addr, timeout.max(Duration::from_millis(1)))?;
        set_sock_opts(&tcp, opts)?;
        let (tls, identity) = match security.context().filter(|_| security.dials_tls()) {
            Some(ctx) => {
                let names = [Some(rustls::pki_types::ServerName::IpAddress(addr.ip().into())), tls::server_name(host)];
                let link =
                    tls::connect(ctx, &tcp, names.into_iter().flatten().collect(), Instant::now() + opts.timeout)?;
                log::info!("SSL handshake complete with {addr} - {}", link.info());
                let identity = if ctx.hostname_verification() { Identity::Dialled } else { Identity::Unchecked };
                (Some(link), identity)
            }
            None => (None, Identity::Unchecked),
        };
        tcp.set_write_timeout(Some(opts.timeout))?;
        Ok(PeerStream { tcp, remote: addr, tls, identity })
    }

    /// An accepted socket, after `security`'s checks: plaintext, or TLS as server (handshake
    /// before `deadline`, on the caller's thread).
    pub(super) fn accept(
        tcp: TcpStream,
        remote: SocketAddr,
        opts: SocketOptions,
        security: &Security,
        deadline: Instant,
    ) -> io::Result<PeerStream> {
        set_sock_opts(&tcp, opts)?;
        let mut stream = PeerStream { tcp, remote, tls: None, identity: Identity::Unchecked };
        if let Some(ctx) = security.context() {
            let detect = security.detect().unwrap_or(Duration::from_secs(5));
            let left = deadline.saturating_duration_since(Instant::now());
            match tls::detect_mode(&stream.tcp, detect.min(left))? {
                FirstBytes::Tls => {
                    let link = tls::accept(ctx, &stream.tcp, deadline)?;
                    log::info!("Accepted TLS connection from {remote} - {}", link.info());
                    stream.tls = Some(link);
                    if ctx.hostname_verification() {
                        stream.identity = Identity::Accepted { bind_sid: ctx.binds_sid() };
                    }
                }
                FirstBytes::NotTls if security.accepts_tls_only() => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "Blocked insecure connection attempt (not TLS)",
                    ));
                }
                // Not an insecure peer: one that sent nothing (stopped, or gave up its dial).
                FirstBytes::Incomplete(what) if security.accepts_tls_only() => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, format!("no TLS handshake: {what}")));
                }
                FirstBytes::NotTls | FirstBytes::Incomplete(_) => {
                    log::debug!("Accepted plaintext connection from {remote}");
                }
            }
        } else {
            // Plaintext only. A ClientHello here comes from a peer already switched to sslQuorum
            // (a step of the rolling upgrade skipped); read as a handshake, its bytes would name
            // an absurd server id. A plaintext peer sends its first bytes at once.
            let left = deadline.saturating_duration_since(Instant::now());
            if tls::detect_mode(&stream.tcp, left)? == FirstBytes::Tls {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a TLS handshake, but this node accepts plaintext only (sslQuorum=false, portUnification=false; \
                     portUnification=true accepts both)",
                ));
            }
        }
        stream.tcp.set_write_timeout(Some(opts.timeout))?;
        Ok(stream)
    }

    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// The negotiated TLS protocol and suite; `None` for plaintext.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref().map(TlsLink::info)
    }

    /// On a TLS connection we accepted, checks the peer's certificate once it claims to be the
    /// server configured at `hosts` (hostname verification, as ZooKeeper does it): it must match
    /// the peer's source address (an IP SAN; or a DNS SAN of a configured name that resolves to
    /// that address: forward DNS only, never reverse), and, when the id is bound to the
    /// certificate, one of `hosts` (IP SAN for an IP literal, DNS SAN for a name).
    pub fn check_identity(&self, hosts: &[HostPort]) -> Result<(), IdentityError> {
        let Identity::Accepted { bind_sid } = self.identity else { return Ok(()) };
        let Some(cert) = self.tls.as_ref().and_then(TlsLink::peer_certificate) else {
            // ssl.quorum.clientAuth=want/none and no certificate: nothing to check, as in Java.
            return Ok(());
        };
        let source = self.remote.ip();
        let named = |h: &HostPort| tls::server_name(&h.host).is_some_and(|n| tls::cert_matches(&cert, &n));
        let source_ok = tls::cert_matches(&cert, &rustls::pki_types::ServerName::IpAddress(source.into()))
            || hosts.iter().any(|h| h.host.parse::<IpAddr>().is_err() && named(h) && resolves_to(h, source));
        if !source_ok {
            return Err(IdentityError(format!("its certificate does not name its address {source}")));
        }
        if bind_sid && !hosts.iter().any(named) {
            let hosts: Vec<String> = hosts.iter().map(|h| h.host.clone()).collect();
            return Err(IdentityError(format!(
                "its certificate does not name the host configured for that server ({})",
                hosts.join("|")
            )));
        }
        Ok(())
    }

    /// Blocks reads for at most `timeout` each (`None`: without limit).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_read_timeout(timeout)
    }

    /// A reader for an exchange that must complete before `deadline`.
    pub fn read_until(&self, deadline: Instant) -> DeadlineReader<'_> {
        DeadlineReader { stream: self, deadline }
    }

    /// Reads what has arrived, without waiting, appending at most `budget` bytes to `buf`. Each
    /// read is a `recv` with MSG_DONTWAIT: the socket stays blocking for its other user, and a
    /// leader looking at every learner each half tick makes no mode-switching calls.
    pub fn read_available(&self, buf: &mut Vec<u8>, budget: usize) -> io::Result<Drained> {
        let mut chunk = [0u8; 4096];
        let mut left = budget;
        while left > 0 {
            let want = left.min(chunk.len());
            let read = match &self.tls {
                None => recv_now(&self.tcp, &mut chunk[..want]),
                Some(link) => link.read(&mut chunk[..want], |raw| recv_now(&self.tcp, raw)),
            };
            match read {
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
        match &self.tls {
            None => (&self.tcp).read(buf),
            Some(link) => link.read(buf, |raw| (&self.tcp).read(raw)),
        }
    }
}

/// What the socket holds now, without waiting (WouldBlock when nothing).
fn recv_now(tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let (n, _) = rustix::net::recv(tcp, buf, rustix::net::RecvFlags::DONTWAIT)?;
    Ok(n)
}

impl Write for &PeerStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.tls {
            None => (&self.tcp).write(buf),
            Some(link) => link.write_all(&self.tcp, buf).map(|()| buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether `h` resolves (forward DNS) to `ip`.
fn resolves_to(h: &HostPort, ip: IpAddr) -> bool {
    super::resolve_all(h).is_ok_and(|addrs| addrs.iter().any(|a| a.ip() == ip))
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
        match (&*self.stream).read(buf) {
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
