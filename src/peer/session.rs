//! What the leader's and the learner's sessions share: packet I/O on a [`PeerStream`] (every read
//! with a deadline), and [`Sessions`], the sockets node shutdown must release.

use crate::net::{Closer, PeerStream};
use crate::runtime::Shutdown;
use crate::wire::packet::{PacketError, QuorumPacket};
use parking_lot::Mutex;
use std::io::Write;
use std::time::Instant;

/// Reads one packet before `deadline` (unbuffered, so nothing past the packet is consumed).
pub fn read_packet(s: &PeerStream, deadline: Instant) -> Result<QuorumPacket, PacketError> {
    QuorumPacket::read(&mut s.read_until(deadline))
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
