//! HTTP against the admin ports of test nodes: plain requests over `TcpStream`, an event-stream
//! reader, and clusters with the AdminServer on.

use super::cluster::Cluster;
use super::{free_ports, wait_for};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// An answer: status, head (status line and headers) and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends `raw` to 127.0.0.1:`port` and reads until the server closes (at most 10 s).
pub fn exchange(port: u16, raw: &[u8]) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.write_all(raw);
    // Nothing more comes: an unfinished request is then closed at once instead of at a deadline.
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `method path` as HTTP/1.1 with `Connection: close`; `None` if nothing came back.
pub fn try_request(port: u16, method: &str, path: &str) -> Option<Answer> {
    let raw = exchange(port, format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes());
    parse_answer(&raw)
}

pub fn request(port: u16, method: &str, path: &str) -> Answer {
    try_request(port, method, path).unwrap_or_else(|| panic!("no answer to {method} {path} on port {port}"))
}

pub fn get(port: u16, path: &str) -> Answer {
    request(port, "GET", path)
}

pub fn parse_answer(raw: &str) -> Option<Answer> {
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Answer { status, head: head.to_string(), body: body.to_string() })
}

/// The zoo.cfg lines that turn node `sid`'s AdminServer on, on 127.0.0.1:`port`.
pub fn admin_lines(port: u16) -> String {
    format!("admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={port}\n")
}

/// A cluster of `voters` zkelect nodes with the AdminServer on; returns it and each node's admin port.
pub fn admin_cluster(voters: i64, extra: &str) -> (Cluster, BTreeMap<i64, u16>) {
    let mut c = Cluster::new(voters, 0, extra);
    let ports = free_ports(voters as usize);
    let admin: BTreeMap<i64, u16> = (1..=voters).zip(ports).collect();
    for (sid, port) in &admin {
        c.append_config(&[*sid], &admin_lines(*port));
    }
    (c, admin)
}

/// Waits until 127.0.0.1:`port` answers HTTP.
pub fn wait_http(port: u16, timeout: Duration) {
    wait_for(timeout, &format!("HTTP on port {port}"), || try_request(port, "GET", "/health").map(drop));
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
}

/// A `GET /watch` stream.
pub struct Sse {
    stream: TcpStream,
    buf: Vec<u8>,
    pub head: String,
}

impl Sse {
    /// Opens the stream, sending `Last-Event-ID: last_id` if given.
    pub fn open(port: u16, last_id: Option<&str>) -> Sse {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to /watch");
        let last = last_id.map(|id| format!("Last-Event-ID: {id}\r\n")).unwrap_or_default();
        stream
            .write_all(
                format!("GET /watch HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{last}\r\n").as_bytes(),
            )
            .expect("request /watch");
        let mut sse = Sse { stream, buf: Vec::new(), head: String::new() };
        let head = sse.read_until(b"\r\n\r\n", Duration::from_secs(10)).expect("a response head");
        sse.head = head;
        assert!(sse.head.starts_with("HTTP/1.1 200 "), "{}", sse.head);
        sse
    }

    fn read_until(&mut self, delim: &[u8], timeout: Duration) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(i) = self.buf.windows(delim.len()).position(|w| w == delim) {
                let out: Vec<u8> = self.buf.drain(..i + delim.len()).collect();
                return Some(String::from_utf8_lossy(&out[..i]).into_owned());
            }
            let left = end.checked_duration_since(Instant::now())?;
            let _ = self.stream.set_read_timeout(Some(left.max(Duration::from_millis(1))));
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return None;
                }
                Err(_) => return None,
            }
        }
    }

    /// The next event (comments and `retry:` lines skipped), or `None` after `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            let block = self.read_until(b"\n\n", left)?;
            let mut ev = SseEvent::default();
            let mut has_data = false;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    ev.id = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    ev.event = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    ev.data = v.to_string();
                    has_data = true;
                }
            }
            if has_data {
                return Some(ev);
            }
        }
    }
}
