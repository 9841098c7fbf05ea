//! Packet I/O shared by the leader and the learner: every read has a deadline.

use crate::cnx::socket::DeadlineReader;
use crate::wire::packet::{PacketError, QuorumPacket};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Reads one packet before `deadline` (unbuffered, so nothing past the packet is consumed).
pub fn read_packet(s: &TcpStream, deadline: Instant) -> Result<QuorumPacket, PacketError> {
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    QuorumPacket::read(&mut DeadlineReader::new(s, left))
}

/// Writes one packet in a single write.
pub fn write_packet(mut s: &TcpStream, p: &QuorumPacket) -> std::io::Result<()> {
    s.write_all(&p.encode())
}
