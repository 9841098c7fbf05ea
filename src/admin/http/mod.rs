//! The HTTP side of the admin ports (the metrics port and the AdminServer port): HTTP/1.1 on the
//! bounded connection server of [`super::server`], request heads parsed by `httparse`.
//!
//! What bounds a client: at most `max_connections` at once (the next is answered 503 and closed),
//! the idle timeout before a request starts (`admin.idleTimeout`), a deadline for the whole
//! request head from its first byte (a client dripping bytes is answered 408), a size limit on
//! the head (431, or 414 for the request line), and a write timeout. Request bodies are never
//! read; a request that has one is answered and its connection closed. Keep-alive and pipelined
//! requests are served in order on one connection.
//!
//! What bounds the work, so that a flood of requests cannot take the CPU the election needs: a
//! token bucket of `requests_per_second` per server (a burst of one second's worth). A request
//! beyond it waits for its turn without using the CPU, at most `pace_wait`, then gets 503.

mod request;
mod response;

pub use request::Request;
pub use response::{Body, EventStream, HTML, JSON, Response, StreamFn, TEXT, http_date, iso_time, reason};

use super::server::{AdminError, AdminServer, Handler, Limits, close_gracefully};
use crate::config::HostPort;
use crate::runtime::Shutdown;
use parking_lot::Mutex;
use request::{HeadError, read_head};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Maps a request to its response. Runs on the connection's thread.
pub type Routes = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_connections: usize,
    /// How long a connection may wait for its next request (`admin.idleTimeout`).
    pub idle_timeout: Duration,
    /// From the first byte of a request to the end of its head.
    pub request_deadline: Duration,
    /// Bytes of a request head (request line and headers).
    pub max_head: usize,
    /// For each write of a response.
    pub write_timeout: Duration,
    /// Requests answered per second, over all connections.
    pub requests_per_second: u32,
    /// How long a request may wait for its turn before it is answered 503.
    pub pace_wait: Duration,
    /// Whether a connection may carry more than one request (otherwise each answer closes it).
    pub keep_alive: bool,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 32,
            idle_timeout: Duration::from_secs(30),
            request_deadline: Duration::from_secs(5),
            max_head: 8 * 1024,
            write_timeout: Duration::from_secs(5),
            requests_per_second: 200,
            pace_wait: Duration::from_secs(2),
            keep_alive: true,
        }
    }
}

/// The token bucket of [`HttpLimits::requests_per_second`].
struct Pacer {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl Pacer {
    fn new(per_second: u32) -> Pacer {
        let rate = f64::from(per_second.max(1));
        Pacer { rate, state: Mutex::new((rate, Instant::now())) }
    }

    /// Takes a token, sleeping until one is due; false if that would take longer than `max_wait`
    /// or the server stops meanwhile.
    fn admit(&self, stop: &Shutdown, max_wait: Duration) -> bool {
        let deadline = Instant::now() + max_wait;
        loop {
            let wait = {
                let mut st = self.state.lock();
                let now = Instant::now();
                st.0 = (st.0 + now.duration_since(st.1).as_secs_f64() * self.rate).min(self.rate);
                st.1 = now;
                if st.0 >= 1.0 {
                    st.0 -= 1.0;
                    return true;
                }
                Duration::from_secs_f64((1.0 - st.0) / self.rate)
            };
            if Instant::now() + wait > deadline || !stop.sleep(wait) {
                return false;
            }
        }
    }
}

/// Serves `routes` on `addr`.
pub fn start(
    name: &'static str,
    addr: &HostPort,
    limits: HttpLimits,
    routes: Routes,
) -> Result<AdminServer, AdminError> {
    let pacer = Arc::new(Pacer::new(limits.requests_per_second));
    let handler: Handler = Arc::new(move |s: TcpStream, remote: SocketAddr, stop: &Shutdown| {
        serve_connection(&s, remote, stop, &*routes, &limits, &pacer)
    });
    AdminServer::start_with(
        name,
        addr,
        Limits { max_connections: limits.max_connections, refuse: Some(refuse) },
        handler,
    )
}

/// The answer to a connection beyond the limit (written without blocking, then closed).
fn refuse(s: &TcpStream) {
    let r = Response::text(503, "503 Service Unavailable: too many connections\n");
    let mut bytes = r.head(true).into_bytes();
    if let Body::Bytes(b) = &r.body {
        bytes.extend_from_slice(b);
    }
    let _ = (&mut &*s).write_all(&bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
}

/// Serves requests on one connection until it closes, idles out, or a response ends it.
fn serve_connection(
    s: &TcpStream,
    remote: SocketAddr,
    stop: &Shutdown,
    routes: &dyn Fn(&Request) -> Response,
    limits: &HttpLimits,
    pacer: &Pacer,
) {
    let _ = s.set_nodelay(true);
    let _ = s.set_write_timeout(Some(limits.write_timeout));
    let mut buf = Vec::new();
    loop {
        let (req, used) = match read_head(s, &mut buf, limits, remote) {
            Ok(r) => r,
            Err(HeadError::Closed | HeadError::Idle) => return,
            Err(e) => {
                let status = match &e {
                    HeadError::Slow => 408,
                    HeadError::TooLarge { in_request_line: true } => 414,
                    HeadError::TooLarge { in_request_line: false } => 431,
                    HeadError::Version => 505,
                    _ => 400,
                };
                log::debug!("HTTP request from {remote} answered {status}: {e}");
                if !matches!(e, HeadError::Io(_)) {
                    let _ = send(s, Response::status(status), true, false);
                }
                close_gracefully(s);
                return;
            }
        };
        buf.drain(..used);
        if !pacer.admit(stop, limits.pace_wait) {
            let busy = Response::text(503, "503 Service Unavailable: too many requests; try again shortly\n");
            let _ = send(s, busy.header("Retry-After", "1"), true, false);
            close_gracefully(s);
            return;
        }
        // Jetty answers 400 to an HTTP/1.1 request without Host; zkelect serves one name only
        // and answers it, as the hand-made `printf 'GET /metrics HTTP/1.1\r\n\r\n' | nc` expects.
        let response = routes(&req);
        // A body we did not read would be taken for the next request: close after this answer.
        let keep = limits.keep_alive && req.wants_keep_alive() && !req.has_body() && !stop.is_requested();
        let head_only = req.method == "HEAD";
        if head_only || matches!(response.body, Body::Bytes(_)) {
            let close = !keep || matches!(response.body, Body::Stream(_));
            if send(s, response, close, head_only).is_err() || close {
                close_gracefully(s);
                return;
            }
            continue;
        }
        let head = response.head(true);
        if let Body::Stream(f) = response.body
            && (&mut &*s).write_all(head.as_bytes()).is_ok()
        {
            f(&mut EventStream::new(s, stop));
        }
        let _ = s.shutdown(std::net::Shutdown::Both);
        return;
    }
}

fn send(s: &TcpStream, r: Response, close: bool, head_only: bool) -> std::io::Result<()> {
    let mut out = r.head(close).into_bytes();
    if let (Body::Bytes(b), false) = (&r.body, head_only) {
        out.extend_from_slice(b);
    }
    let mut w = s;
    w.write_all(&out)?;
    w.flush()
}

#[cfg(test)]
mod tests;
