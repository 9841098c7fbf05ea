//! The HTTP server's limits against real sockets on 127.0.0.1, with short limits.

use super::*;
use std::io::Read;
use std::time::Instant;

fn limits() -> HttpLimits {
    HttpLimits {
        max_connections: 4,
        idle_timeout: Duration::from_millis(400),
        request_deadline: Duration::from_millis(300),
        max_head: 1024,
        write_timeout: Duration::from_secs(2),
        requests_per_second: 1000,
        pace_wait: Duration::from_millis(500),
        keep_alive: true,
    }
}

fn routes() -> Routes {
    Arc::new(|r: &Request| match r.path.as_str() {
        "/hello" => Response::text(200, format!("hello {}", r.param("name").unwrap_or("you"))),
        "/stream" => Response::stream(
            "text/event-stream",
            Box::new(|s: &mut EventStream<'_>| {
                if s.send(b"data: first\n\n").is_ok() {
                    // Until the server stops.
                    let _ = s.shutdown().receiver().recv();
                }
            }),
        ),
        _ => Response::status(404),
    })
}

fn server() -> AdminServer {
    start("TestHttp", &HostPort::new("127.0.0.1", 0), limits(), routes()).expect("bind")
}

fn connect(srv: &AdminServer) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", srv.local_port())).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s
}

/// Everything until the server closes the connection.
fn exchange(srv: &AdminServer, raw: &[u8]) -> String {
    let mut s = connect(srv);
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn keep_alive_and_pipelining_answer_in_order() {
    let srv = server();
    let out = exchange(
        &srv,
        b"GET /hello?name=a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /hello?name=b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let answers: Vec<&str> = out.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(answers.len(), 3, "{out}");
    assert!(answers[0].starts_with("200 OK\r\n") && answers[0].ends_with("\r\n\r\nhello a"), "{out}");
    // HEAD: the length of the body it would have, and no body.
    assert!(answers[1].contains("Content-Length: 9\r\n") && answers[1].ends_with("\r\n\r\n"), "{out}");
    assert!(answers[2].contains("Connection: close\r\n") && answers[2].ends_with("hello b"), "{out}");
    srv.shutdown();
}

#[test]
fn bad_requests_get_their_status_and_a_closed_connection() {
    let srv = server();
    let long_header = format!("GET /hello HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n", "a".repeat(2000));
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(2000));
    for (raw, status) in [
        (long_header.as_bytes(), "431"),
        (long_uri.as_bytes(), "414"),
        (&b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"[..], "400"),
        (&b"GET /nothing HTTP/1.1\r\n\r\n"[..], "404"),
        (&b"GET /hello HTTP/3.0\r\nHost: x\r\n\r\n"[..], "505"),
        (&b"GET /nothing HTTP/1.0\r\n\r\n"[..], "404"),
    ] {
        let out = exchange(&srv, raw);
        assert!(out.starts_with(&format!("HTTP/1.1 {status} ")), "{status}: {out}");
    }
    // A request with a body is answered, and its connection closed (the body is never read).
    let out = exchange(&srv, b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde");
    assert!(out.starts_with("HTTP/1.1 200 ") && out.contains("Connection: close\r\n"), "{out}");
    srv.shutdown();
}

#[test]
fn slow_and_idle_clients_are_cut_off() {
    let srv = server();
    // Drips its head: cut off at the request deadline with 408.
    let mut s = connect(&srv);
    let t0 = Instant::now();
    let mut out = Vec::new();
    for b in b"GET /hello HTTP/1.1\r\nHost: x\r\n" {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(30));
        if t0.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    let _ = s.read_to_end(&mut out);
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408 "), "{}", String::from_utf8_lossy(&out));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    // Says nothing: closed without an answer after the idle timeout.
    let mut s = connect(&srv);
    let t0 = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(out.is_empty());
    assert!(t0.elapsed() >= Duration::from_millis(300) && t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    srv.shutdown();
}

#[test]
fn connections_beyond_the_limit_are_refused_with_503() {
    let srv = server();
    let held: Vec<TcpStream> = (0..4).map(|_| connect(&srv)).collect();
    // Each held connection is registered by the accept thread before the next is accepted.
    let out = exchange(&srv, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 503 ") && out.contains("too many connections"), "{out}");
    drop(held);
    // The slots free up as the held connections close.
    let t0 = Instant::now();
    loop {
        let out = exchange(&srv, b"GET /hello HTTP/1.0\r\n\r\n");
        if out.starts_with("HTTP/1.1 200 ") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "{out}");
        std::thread::sleep(Duration::from_millis(20));
    }
    srv.shutdown();
}

#[test]
fn shutdown_ends_open_streams() {
    let srv = server();
    let mut s = connect(&srv);
    s.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut first = [0u8; 512];
    let n = s.read(&mut first).expect("read");
    let head = String::from_utf8_lossy(&first[..n]);
    assert!(head.starts_with("HTTP/1.1 200 ") && head.contains("text/event-stream"), "{head}");
    let t0 = Instant::now();
    srv.shutdown();
    assert!(t0.elapsed() < Duration::from_secs(2), "shutdown took {:?}", t0.elapsed());
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

#[test]
fn a_stream_notices_its_client_leaving() {
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let routes: Routes = Arc::new(move |_: &Request| {
        let tx = tx.clone();
        Response::stream(
            "text/event-stream",
            Box::new(move |s: &mut EventStream<'_>| {
                let _ = s.send(b": hello\n\n");
                while !s.client_gone() {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = tx.send(());
            }),
        )
    });
    let srv = start("TestHttp", &HostPort::new("127.0.0.1", 0), limits(), routes).expect("bind");
    let mut s = connect(&srv);
    s.write_all(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut first = [0u8; 256];
    assert!(s.read(&mut first).expect("read") > 0);
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "the client is still there");
    drop(s);
    assert!(rx.recv_timeout(Duration::from_secs(2)).is_ok(), "the stream did not notice its client leave");
    srv.shutdown();
}

#[test]
fn requests_beyond_the_rate_wait_their_turn_or_get_503() {
    let limits =
        HttpLimits { requests_per_second: 20, pace_wait: Duration::from_millis(300), max_connections: 16, ..limits() };
    let srv = start("TestHttp", &HostPort::new("127.0.0.1", 0), limits, routes()).expect("bind");
    // 20 at once (the burst), then one every 50 ms: 40 requests take at least ~1 s.
    let t0 = Instant::now();
    let mut s = connect(&srv);
    let mut answered = 0;
    let mut reader = std::io::BufReader::new(s.try_clone().expect("clone"));
    for _ in 0..40 {
        s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut reader, &mut line).expect("status line");
        assert!(line.starts_with("HTTP/1.1 200 "), "{line}");
        let mut rest = String::new();
        while std::io::BufRead::read_line(&mut reader, &mut rest).expect("header") > 2 {
            rest.clear();
        }
        let mut body = [0u8; 9];
        reader.read_exact(&mut body).expect("body");
        answered += 1;
    }
    assert_eq!(answered, 40);
    assert!(t0.elapsed() >= Duration::from_millis(900), "{:?}", t0.elapsed());
    // 12 clients, each asking again once answered, want at least 12 / 0.3 s = 40 requests a
    // second, twice the rate: some cannot get a turn within pace_wait and are told 503.
    let clients: Vec<_> = (0..12)
        .map(|_| {
            let port = srv.local_port();
            std::thread::spawn(move || {
                let mut busy = 0;
                for _ in 0..10 {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                    let _ = s.write_all(b"GET /hello HTTP/1.0\r\n\r\n");
                    let mut out = String::new();
                    let _ = s.read_to_string(&mut out);
                    busy += usize::from(out.starts_with("HTTP/1.1 503 ") && out.contains("too many requests"));
                }
                busy
            })
        })
        .collect();
    let busy: usize = clients.into_iter().map(|c| c.join().expect("client")).sum();
    assert!(busy > 0, "no request was refused at twice the rate");
    srv.shutdown();
}
