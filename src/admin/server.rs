//! A small blocking TCP server shared by the four-letter words and the HTTP ports: one accept
//! thread, one thread per connection, a bound on their number, and every live connection closed
//! at shutdown so that even a long-lived one (an event stream) cannot hold the stop up.
//!
//! While the server is full, it accepts (and refuses) at most [`REFUSALS_PER_SECOND`] connections
//! a second; the others wait in the kernel's listen queue, and beyond it their SYNs are dropped
//! and retried by the client. A flood of connections thus costs the node a bounded amount of CPU
//! instead of one accept, answer and close for each.

use crate::config::HostPort;
use crate::net::{self, Listener, ListenerWaker};
use crate::runtime::{Shutdown, ThreadGroup};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Serves one connection; returns when it is done with it. The [`Shutdown`] is the server's: a
/// handler that waits for something else than its socket watches it.
pub type Handler = Arc<dyn Fn(TcpStream, SocketAddr, &Shutdown) + Send + Sync>;

/// Answers a connection refused for being one too many, on the accept thread: it must not block
/// (the socket is fresh, so a small write fits its buffer).
pub type Refuse = fn(&TcpStream);

/// An admin port that could not be opened.
#[derive(Debug)]
pub struct AdminError {
    pub name: &'static str,
    pub addr: String,
    pub source: io::Error,
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: cannot bind {}: {}", self.name, self.addr, self.source)
    }
}

impl std::error::Error for AdminError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// How much a server takes on.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Connections served at once; the next ones are refused.
    pub max_connections: usize,
    /// What a refused connection is told before it is closed (nothing: just closed).
    pub refuse: Option<Refuse>,
}

/// The live connections: a handle to each socket, to close them all at shutdown.
#[derive(Default)]
struct Live {
    sockets: HashMap<u64, TcpStream>,
    /// Refused since the last warning, and when that was (warnings are rate-limited).
    refused: u64,
    warned: Option<Instant>,
}

pub struct AdminServer {
    name: &'static str,
    local: SocketAddr,
    waker: ListenerWaker,
    shutdown: Shutdown,
    live: Arc<LiveSet>,
    threads: ThreadGroup,
}

/// The live connections, and a signal for the accept thread when one ends.
#[derive(Default)]
struct LiveSet {
    live: Mutex<Live>,
    freed: Condvar,
}

impl LiveSet {
    fn remove(&self, id: u64) {
        self.live.lock().sockets.remove(&id);
        self.freed.notify_one();
    }
}

/// At most one "too many connections" warning per this interval (a flood would fill the log).
const REFUSED_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Connections accepted and refused per second while the server is full.
pub const REFUSALS_PER_SECOND: u32 = 20;

impl AdminServer {
    /// Binds `addr` and serves each connection with `handler` on its own thread; at most
    /// `max_conns` at once (further connections are closed at once).
    pub fn start(
        name: &'static str,
        addr: &HostPort,
        max_conns: usize,
        handler: Handler,
    ) -> Result<AdminServer, AdminError> {
        Self::start_with(name, addr, Limits { max_connections: max_conns, refuse: None }, handler)
    }

    pub fn start_with(
        name: &'static str,
        addr: &HostPort,
        limits: Limits,
        handler: Handler,
    ) -> Result<AdminServer, AdminError> {
        let error = |source| AdminError { name, addr: addr.to_string(), source };
        let listener = net::resolve(addr).and_then(|sa| Listener::bind(sa, 64)).map_err(error)?;
        let waker = listener.waker().map_err(error)?;
        let local = listener.local_addr();
        let shutdown = Shutdown::new();
        let threads = ThreadGroup::new();
        let live = Arc::new(LiveSet::default());
        let acceptor = {
            let (shutdown, live, handlers) = (shutdown.clone(), Arc::clone(&live), Arc::new(ThreadGroup::new()));
            move || {
                let mut seq = 0u64;
                net::serve(&listener, &shutdown, name, |incoming| {
                    let remote = incoming.remote();
                    let stream = incoming.into_client();
                    seq += 1;
                    if !admit(&live, seq, &stream, limits, name, remote) {
                        drop(stream);
                        // Full: take the next connection only once one ends or the next refusal
                        // is due.
                        let mut l = live.live.lock();
                        if l.sockets.len() >= limits.max_connections && !shutdown.is_requested() {
                            let pause = Duration::from_secs(1) / REFUSALS_PER_SECOND;
                            live.freed.wait_for(&mut l, pause);
                        }
                        return;
                    }
                    let (h, l, stop) = (Arc::clone(&handler), Arc::clone(&live), shutdown.clone());
                    let id = seq;
                    let served = handlers.spawn(format!("{name}Handler-{seq}"), move || {
                        h(stream, remote, &stop);
                        l.remove(id);
                    });
                    if let Err(e) = served {
                        log::warn!("{name}: cannot serve {remote}: {e}");
                        live.remove(id);
                    }
                });
                // Handlers end at their deadlines, or when `shutdown` closed their sockets.
                handlers.join_all();
            }
        };
        threads.spawn(format!("{name}-{local}"), acceptor).map_err(error)?;
        log::info!("{name} listening on {local}");
        Ok(AdminServer { name, local, waker, shutdown, live, threads })
    }

    pub fn local_port(&self) -> u16 {
        self.local.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting, closes every live connection and waits for the handlers.
    pub fn shutdown(&self) {
        self.shutdown.request();
        self.waker.wake();
        for s in self.live.live.lock().sockets.values() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        self.live.freed.notify_all();
        self.threads.join_all();
        log::debug!("{} stopped", self.name);
    }
}

/// Registers a new connection, or refuses it when `limits` says the server is full.
fn admit(live: &LiveSet, id: u64, stream: &TcpStream, limits: Limits, name: &str, remote: SocketAddr) -> bool {
    let mut l = live.live.lock();
    if l.sockets.len() < limits.max_connections {
        match stream.try_clone() {
            Ok(handle) => {
                l.sockets.insert(id, handle);
                return true;
            }
            Err(e) => log::warn!("{name}: cannot serve {remote}: {e}"),
        }
        return false;
    }
    l.refused += 1;
    if l.warned.is_none_or(|t| t.elapsed() >= REFUSED_WARNING_INTERVAL) {
        log::warn!(
            "{name}: too many connections ({} at once); refused {} connection(s), the latest from {remote}",
            limits.max_connections,
            l.refused
        );
        l.refused = 0;
        l.warned = Some(Instant::now());
    }
    drop(l);
    if let Some(refuse) = limits.refuse {
        let _ = stream.set_nonblocking(true);
        refuse(stream);
    }
    false
}

/// Half-closes, then drains what the client still sends (`echo srvr | nc` sends a newline), so
/// that closing does not reset the connection before the client has read our answer.
pub fn close_gracefully(mut s: &TcpStream) {
    let _ = s.shutdown(std::net::Shutdown::Write);
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 512];
    let mut total = 0;
    while let Ok(n) = s.read(&mut sink) {
        total += n;
        if n == 0 || total > 64 * 1024 {
            break;
        }
    }
}
