//! Responses and their wire form.

use crate::admin::json::Json;
use crate::runtime::Shutdown;
use std::io::{self, Write};
use std::net::TcpStream;
use std::time::SystemTime;

/// Writes one stream of a long-lived response (Server-Sent Events) until the client goes away or
/// the server stops.
pub type StreamFn = Box<dyn FnOnce(&mut EventStream<'_>) + Send>;

pub enum Body {
    Bytes(Vec<u8>),
    /// Written after the head; the connection closes when it returns.
    Stream(StreamFn),
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const HTML: &str = "text/html; charset=utf-8";

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, headers: vec![("Content-Type", content_type.to_string())], body: Body::Bytes(body.into()) }
    }

    /// JSON in Jackson's pretty layout (ZooKeeper's AdminServer layout).
    pub fn json(status: u16, value: &Json) -> Response {
        Response::new(status, JSON, value.pretty())
    }

    pub fn text(status: u16, text: impl Into<String>) -> Response {
        Response::new(status, TEXT, text.into())
    }

    /// A status with a one-line text body naming it (`404 Not Found`).
    pub fn status(status: u16) -> Response {
        Response::text(status, format!("{status} {}\n", reason(status)))
    }

    /// A status without a body.
    pub fn empty(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Body::Bytes(Vec::new()) }
    }

    pub fn stream(content_type: &str, f: StreamFn) -> Response {
        Response { status: 200, headers: vec![("Content-Type", content_type.to_string())], body: Body::Stream(f) }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The status line and headers. `close` adds `Connection: close`.
    pub fn head(&self, close: bool) -> String {
        let mut h = format!(
            "HTTP/1.1 {} {}\r\nDate: {}\r\nServer: zkelect\r\n",
            self.status,
            reason(self.status),
            http_date(SystemTime::now())
        );
        for (name, value) in &self.headers {
            // A value never holds a line break (they come from zkelect, but make sure).
            let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            h.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Body::Bytes(b) = &self.body {
            h.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        if close {
            h.push_str("Connection: close\r\n");
        }
        h.push_str("\r\n");
        h
    }
}

/// The sending side of a streamed response.
pub struct EventStream<'a> {
    socket: &'a TcpStream,
    shutdown: &'a Shutdown,
}

impl<'a> EventStream<'a> {
    pub fn new(socket: &'a TcpStream, shutdown: &'a Shutdown) -> EventStream<'a> {
        EventStream { socket, shutdown }
    }

    /// Writes and flushes `bytes`, within the server's write timeout.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut s = self.socket;
        s.write_all(bytes)?;
        s.flush()
    }

    /// Whether the client closed its side (or the connection broke). A stream checks this while it
    /// has nothing to send, so that a watcher that went away frees its thread without waiting for
    /// the next write to fail.
    pub fn client_gone(&self) -> bool {
        if self.socket.set_nonblocking(true).is_err() {
            return true;
        }
        let mut probe = [0u8; 1];
        let gone = match self.socket.peek(&mut probe) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        let _ = self.socket.set_nonblocking(false);
        gone
    }

    /// The server's stop signal: a stream waiting for something to send must watch it.
    pub fn shutdown(&self) -> &Shutdown {
        self.shutdown
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// RFC 9110's IMF-fixdate: `Tue, 01 Dec 2026 16:33:16 GMT`.
pub fn http_date(t: SystemTime) -> String {
    let d = time::OffsetDateTime::from(t);
    let day = &d.weekday().to_string()[..3];
    let month = &d.month().to_string()[..3];
    format!("{day}, {:02} {month} {} {:02}:{:02}:{:02} GMT", d.day(), d.year(), d.hour(), d.minute(), d.second())
}

/// RFC 3339 in UTC with milliseconds: `2026-12-01T16:33:16.123Z`.
pub fn iso_time(t: SystemTime) -> String {
    let d = time::OffsetDateTime::from(t);
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_142_796_123);
        assert_eq!(http_date(t), "Tue, 01 Dec 2026 16:33:16 GMT");
        assert_eq!(iso_time(t), "2026-12-01T16:33:16.123Z");
    }

    #[test]
    fn head_carries_the_length_and_no_line_breaks_from_values() {
        let r = Response::text(404, "x").header("X-Test", "a\r\nInjected: 1");
        let head = r.head(true);
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\nDate: "), "{head}");
        assert!(head.contains("\r\nX-Test: aInjected: 1\r\n"), "{head}");
        assert!(head.ends_with("Content-Length: 1\r\nConnection: close\r\n\r\n"), "{head}");
    }
}
