//! A small blocking TCP server shared by the four-letter words and the metrics endpoint: one
//! accept thread, one short-lived thread per connection, a bound on both their number and the
//! time a client may take.

use crate::config::HostPort;
use crate::net::{self, Listener, ListenerWaker};
use crate::runtime::{Shutdown, ThreadGroup};
use std::fmt;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub type Handler = Arc<dyn Fn(TcpStream, SocketAddr) + Send + Sync>;

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

pub struct AdminServer {
    name: &'static str,
    local: SocketAddr,
    waker: ListenerWaker,
    shutdown: Shutdown,
    threads: ThreadGroup,
}

impl AdminServer {
    /// Binds `addr` and serves each connection with `handler` on its own thread; at most
    /// `max_conns` at once (further connections are closed at once).
    pub fn start(
        name: &'static str,
        addr: &HostPort,
        max_conns: usize,
        handler: Handler,
    ) -> Result<AdminServer, AdminError> {
        let error = |source| AdminError { name, addr: addr.to_string(), source };
        let listener = net::resolve(addr).and_then(|sa| Listener::bind(sa, 64)).map_err(error)?;
        let waker = listener.waker().map_err(error)?;
        let local = listener.local_addr();
        let shutdown = Shutdown::new();
        let threads = ThreadGroup::new();
        let acceptor = {
            let (shutdown, threads) = (shutdown.clone(), Arc::new(ThreadGroup::new()));
            let active = Arc::new(AtomicUsize::new(0));
            move || {
                let mut seq = 0u64;
                net::serve(&listener, &shutdown, name, |incoming| {
                    let remote = incoming.remote();
                    if active.load(Ordering::Acquire) >= max_conns {
                        return log::warn!("{name}: too many connections, closing the one from {remote}");
                    }
                    active.fetch_add(1, Ordering::AcqRel);
                    seq += 1;
                    let (h, a) = (Arc::clone(&handler), Arc::clone(&active));
                    let stream = incoming.into_client();
                    let served = threads.spawn(format!("{name}Handler-{seq}"), move || {
                        h(stream, remote);
                        a.fetch_sub(1, Ordering::AcqRel);
                    });
                    if let Err(e) = served {
                        log::warn!("{name}: cannot serve {remote}: {e}");
                        active.fetch_sub(1, Ordering::AcqRel);
                    }
                });
                // Each handler is bounded by its own deadlines.
                threads.join_all();
            }
        };
        threads.spawn(format!("{name}-{local}"), acceptor).map_err(error)?;
        log::info!("{name} listening on {local}");
        Ok(AdminServer { name, local, waker, shutdown, threads })
    }

    pub fn local_port(&self) -> u16 {
        self.local.port()
    }

    /// Stops accepting and waits for the handlers.
    pub fn shutdown(&self) {
        self.shutdown.request();
        self.waker.wake();
        self.threads.join_all();
        log::debug!("{} stopped", self.name);
    }
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
