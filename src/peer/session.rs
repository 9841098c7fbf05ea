//! What the leader's and the learner's sessions share: packet I/O on a [`PeerStream`] (every read
//! with a deadline), and [`Sessions`], the sockets node shutdown must release.

use crate::net::{Closer, PeerStream};
use crate::runtime::Shutdown;
use crate::wire::packet::{PacketError, QuorumPacket};
use parking_lot::Mutex;
use std::io::{self, Read, Write};
use std::time::Instant;

/// Reads one packet before `deadline` (unbuffered, so nothing past the packet is consumed).
pub fn read_packet(s: &PeerStream, deadline: Instant) -> Result<QuorumPacket, PacketError> {
    QuorumPacket::read(&mut s.read_until(deadline))
}

/// Reads a session's packets through one buffer, so that a PING costs one read rather than one
/// per field. What it reads ahead belongs to the next packet: use it for every read of a session.
pub struct PacketReader<'a> {
    stream: &'a PeerStream,
    buf: Vec<u8>,
}

impl<'a> PacketReader<'a> {
    pub fn new(stream: &'a PeerStream) -> Self {
        PacketReader { stream, buf: Vec::new() }
    }

    /// The next packet, which must be complete before `deadline`. EOF is `UnexpectedEof`.
    pub fn next(&mut self, deadline: Instant) -> Result<QuorumPacket, PacketError> {
        let mut chunk = [0u8; 512];
        loop {
            if let Some(p) = QuorumPacket::take_prefix(&mut self.buf)? {
                return Ok(p);
            }
            match self.stream.read_until(deadline).read(&mut chunk) {
                Ok(0) => {
                    return Err(PacketError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection was closed by the other end",
                    )));
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PacketError::Io(e)),
            }
        }
    }
}

/// Writes one packet in a single write.
pub fn write_packet(s: &PeerStream, p: &QuorumPacket) -> std::io::Result<()> {
    let mut w = s;
    w.write_all(&p.encode())
}

/// Session sockets of the running leader or learner: shut down on node shutdown to release
/// blocked reads, and when the role ends.
pub struct Sessions {
    closers: Mutex<Vec<Closer>>,
    shutdown: Shutdown,
}

impl Sessions {
    pub fn new(shutdown: Shutdown) -> Sessions {
        Sessions { closers: Mutex::new(Vec::new()), shutdown }
    }

    pub fn register(&self, s: &PeerStream) {
        if let Ok(c) = s.closer() {
            self.closers.lock().push(c);
        }
        // Registered after the stop was requested: the stopper may have closed the others already.
        if self.shutdown.is_requested() {
            self.close_all();
        }
    }

    pub fn close_all(&self) {
        for c in self.closers.lock().drain(..) {
            c.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Security, SocketOptions};
    use crate::wire::packet::{self, MAX_DATA};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// A connected pair: our `PeerStream` and the raw other end.
    fn pair() -> (PeerStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let opts = SocketOptions { keep_alive: false, timeout: Duration::from_secs(5) };
        let ours = PeerStream::connect(addr, "127.0.0.1", Duration::from_secs(5), opts, &Security::plaintext())
            .expect("connect");
        (ours, l.accept().expect("accept").0)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn packets_split_or_joined_on_the_wire_are_read_one_by_one() {
        let (ours, mut theirs) = pair();
        let mut r = PacketReader::new(&ours);
        let ping = QuorumPacket::new(packet::PING, 7, None).encode();
        let info = QuorumPacket::new(packet::LEADERINFO, 3 << 32, Some(vec![0, 0, 1, 0])).encode();
        // Two packets in one write, then one in three pieces.
        theirs.write_all(&[ping.clone(), info.clone()].concat()).expect("write");
        assert_eq!(r.next(soon()).expect("ping").zxid, 7);
        assert_eq!(r.next(soon()).expect("info").data, Some(vec![0, 0, 1, 0]));
        let writer = std::thread::spawn(move || {
            for part in [&ping[..3], &ping[3..17], &ping[17..]] {
                theirs.write_all(part).expect("write");
                std::thread::sleep(Duration::from_millis(20));
            }
            theirs
        });
        assert_eq!(r.next(soon()).expect("ping in pieces").ptype, packet::PING);
        let theirs = writer.join().expect("writer");
        // Nothing more before the deadline; then EOF once the other end closes.
        let late = r.next(Instant::now() + Duration::from_millis(50)).expect_err("nothing sent");
        assert!(matches!(&late, PacketError::Io(e) if e.kind() == io::ErrorKind::TimedOut), "{late}");
        drop(theirs);
        let eof = r.next(soon()).expect_err("closed");
        assert!(matches!(&eof, PacketError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof), "{eof}");
    }

    #[test]
    fn a_length_beyond_the_limit_is_refused_without_buffering_it() {
        let (ours, mut theirs) = pair();
        let mut head = packet::PING.to_be_bytes().to_vec();
        head.extend_from_slice(&0i64.to_be_bytes());
        head.extend_from_slice(&(MAX_DATA as i32 + 1).to_be_bytes());
        theirs.write_all(&head).expect("write");
        let e = PacketReader::new(&ours).next(soon()).expect_err("too long");
        assert!(matches!(e, PacketError::BadLength(_)), "{e}");
    }

    #[test]
    fn reading_what_is_there_leaves_the_socket_blocking() {
        let (ours, mut theirs) = pair();
        let mut buf = Vec::new();
        assert_eq!(ours.read_available(&mut buf, 1 << 16).expect("drain"), crate::net::Drained::Open);
        assert!(buf.is_empty());
        theirs.write_all(b"abc").expect("write");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(ours.read_available(&mut buf, 1 << 16).expect("drain"), crate::net::Drained::Open);
        assert_eq!(buf, b"abc");
        // The other user of the socket still blocks (here until its timeout).
        let t0 = Instant::now();
        let e = PacketReader::new(&ours).next(Instant::now() + Duration::from_millis(200)).expect_err("nothing");
        assert!(t0.elapsed() >= Duration::from_millis(150), "returned after {:?}: {e}", t0.elapsed());
        drop(theirs);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(ours.read_available(&mut buf, 1 << 16).expect("drain"), crate::net::Drained::Closed);
    }
}
