//! Reading one request head from a connection, within the server's limits, and parsing it with
//! `httparse`. zkelect's routes take no request bodies, so only the head is read.

use super::HttpLimits;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

/// Header lines taken per request; more is answered 431, as an oversized head.
const MAX_HEADERS: usize = 64;

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent (`/commands/leader?x=1`).
    pub target: String,
    /// The target's path, percent-decoded.
    pub path: String,
    /// The query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub headers: Vec<(String, String)>,
    pub remote: SocketAddr,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name` (what a servlet's `getParameter` gives).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether the client sent a body (which zkelect never reads).
    pub fn has_body(&self) -> bool {
        self.header("transfer-encoding").is_some()
            || self.header("content-length").is_some_and(|v| v.trim().parse::<u64>().map_or(true, |n| n > 0))
    }

    /// HTTP/1.1 keeps a connection open unless told otherwise; HTTP/1.0 closes it unless asked to
    /// keep it.
    pub fn wants_keep_alive(&self) -> bool {
        let connection = self.header("connection").unwrap_or("").to_ascii_lowercase();
        let says = |word: &str| connection.split(',').any(|t| t.trim() == word);
        if self.minor_version >= 1 { !says("close") } else { says("keep-alive") }
    }

    #[cfg(test)]
    pub fn get(target: &str) -> Request {
        let (path, query) = split_target(target);
        Request {
            method: "GET".into(),
            target: target.into(),
            path,
            query,
            minor_version: 1,
            headers: vec![("Host".into(), "test".into())],
            remote: SocketAddr::from(([127, 0, 0, 1], 1)),
        }
    }
}

/// Why no request head could be read.
#[derive(Debug)]
pub enum HeadError {
    /// The client closed the connection (or the server shut it) before a request began, or
    /// in the middle of one.
    Closed,
    /// No request began within the idle timeout.
    Idle,
    /// A request began but its head did not end within the request deadline.
    Slow,
    /// The head exceeds the size limit; `in_request_line` when the request line alone does.
    TooLarge {
        in_request_line: bool,
    },
    /// Not an HTTP/1.x request head.
    Malformed(String),
    /// An HTTP version other than 1.0 and 1.1.
    Version,
    Io(io::Error),
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Closed => f.write_str("connection closed"),
            HeadError::Idle => f.write_str("no request within the idle timeout"),
            HeadError::Slow => f.write_str("request head not complete within the request deadline"),
            HeadError::TooLarge { in_request_line: true } => f.write_str("request line too long"),
            HeadError::TooLarge { in_request_line: false } => f.write_str("request head too large"),
            HeadError::Malformed(m) => write!(f, "not an HTTP request: {m}"),
            HeadError::Version => f.write_str("HTTP version not supported"),
            HeadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Reads bytes into `buf` until it holds a whole request head, and parses it. Returns the request
/// and the number of bytes of `buf` it used (a pipelined next request may follow them).
///
/// Waiting for the first byte is bounded by the idle timeout, the rest of the head by the request
/// deadline, which starts at the first byte: a client that drips its head slowly is cut off.
pub fn read_head(
    s: &TcpStream,
    buf: &mut Vec<u8>,
    limits: &HttpLimits,
    remote: SocketAddr,
) -> Result<(Request, usize), HeadError> {
    let idle_until = Instant::now() + limits.idle_timeout;
    let mut complete_by = (!buf.is_empty()).then(|| Instant::now() + limits.request_deadline);
    let mut chunk = [0u8; 2048];
    loop {
        if !buf.is_empty() {
            if let Some(done) = parse(buf, remote)? {
                return Ok(done);
            }
            if buf.len() > limits.max_head {
                let in_request_line = !buf.contains(&b'\n');
                return Err(HeadError::TooLarge { in_request_line });
            }
        }
        let deadline = complete_by.unwrap_or(idle_until);
        let now = Instant::now();
        if now >= deadline {
            return Err(if complete_by.is_some() { HeadError::Slow } else { HeadError::Idle });
        }
        let _ = s.set_read_timeout(Some(deadline - now));
        // Never more than one byte past the limit.
        let room = (limits.max_head + 1).saturating_sub(buf.len()).clamp(1, chunk.len());
        match (&mut &*s).read(&mut chunk[..room]) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                complete_by.get_or_insert_with(|| Instant::now() + limits.request_deadline);
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted) => {
                return Err(HeadError::Closed);
            }
            Err(e) => return Err(HeadError::Io(e)),
        }
    }
}

/// The request in `buf`, if its head is complete.
fn parse(buf: &[u8], remote: SocketAddr) -> Result<Option<(Request, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::Version) => return Err(HeadError::Version),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge { in_request_line: false }),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("incomplete request line".into()));
    };
    let (path, query) = split_target(target);
    let request = Request {
        method: method.to_string(),
        target: target.to_string(),
        path,
        query,
        minor_version: version,
        headers: req
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
            .collect(),
        remote,
    };
    Ok(Some((request, used)))
}

/// `/a%20b?x=1&y` → (`/a b`, [(x, 1), (y, "")]). An absolute target (`http://host/path`) is
/// reduced to its path.
fn split_target(target: &str) -> (String, Vec<(String, String)>) {
    let target = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k, true), decode(v, true))
        })
        .collect();
    (decode(path, false), params)
}

/// Percent-decoding (and `+` as a space in query parameters); invalid escapes stay as written.
fn decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 9))
    }

    #[test]
    fn parses_a_head_and_reports_what_it_used() {
        let raw = b"GET /commands/leader?x=1&y=a%20b&z HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /next";
        let (req, used) = parse(raw, remote()).expect("valid").expect("complete");
        assert_eq!(&raw[used..], b"GET /next");
        assert_eq!((req.method.as_str(), req.path.as_str(), req.minor_version), ("GET", "/commands/leader", 1));
        assert_eq!(req.param("y"), Some("a b"));
        assert_eq!(req.param("z"), Some(""));
        assert_eq!(req.header("HOST"), Some("h"));
        assert!(!req.wants_keep_alive());
        assert!(!req.has_body());
        assert!(parse(b"GET / HTTP/1.1\r\nHost: h\r\n", remote()).expect("valid").is_none());
    }

    #[test]
    fn refuses_what_is_not_http() {
        assert!(matches!(
            parse(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", remote()),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(parse(b"GET / HTTP/2.0\r\n\r\n", remote()), Err(HeadError::Version)));
        let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(parse(raw.as_bytes(), remote()), Err(HeadError::TooLarge { .. })));
    }

    #[test]
    fn targets_and_versions() {
        assert_eq!(split_target("http://h:1/a/b?k=v").0, "/a/b");
        assert_eq!(split_target("/a%2Fb%zz%4").0, "/a/b%zz%4");
        assert_eq!(split_target("/?k=a+b").1, vec![("k".to_string(), "a b".to_string())]);
        let mut r = Request::get("/");
        r.minor_version = 0;
        assert!(!r.wants_keep_alive());
        r.headers.push(("Connection".into(), "Keep-Alive".into()));
        assert!(r.wants_keep_alive());
        r.headers.push(("Content-Length".into(), "3".into()));
        assert!(r.has_body());
    }
}
