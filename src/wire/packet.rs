//! Peer-session packets on the quorum port: Jute `QuorumPacket` encoding, as Zab uses it
//! (`int type | long zxid | buffer data (int len, -1 = none) | vector authinfo (int count, -1 = none)`),
//! so a ZooKeeper peer and a zkelect peer recognise each other from the first packet.

use std::io::{self, Read};

/// Largest `data` accepted (bounded before allocating).
pub const MAX_DATA: usize = 64 * 1024;

/// Zab's first learner packets: a ZooKeeper server trying to follow or observe us.
pub const ZAB_FOLLOWERINFO: i32 = 11;
pub const ZAB_OBSERVERINFO: i32 = 16;

/// zkelect's packet types. None of them is a Zab type, so a ZooKeeper leader rejects our hello at
/// once, and we reject its learners at their first packet.
pub const HELLO: i32 = 0x7a6b_656c; // "zkel"
pub const LEADERINFO: i32 = 0x7a6b_0011;
pub const ACKEPOCH: i32 = 0x7a6b_0012;
pub const NEWLEADER: i32 = 0x7a6b_000a;
pub const ACK: i32 = 0x7a6b_0003;
pub const UPTODATE: i32 = 0x7a6b_000c;
/// The leader's PING; its zxid is `epoch << 32 | round`, and the learner echoes the zxid, which
/// is how the leader knows which round (and so which send time) an answer confirms.
pub const PING: i32 = 0x7a6b_0005;
/// The leader resigned and its lease is over (its child is stopped): the learners need not wait it
/// out. Data: the server id the leader asks the next election to choose, or -1.
pub const LEASE_RELEASED: i32 = 0x7a6b_0020;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumPacket {
    pub ptype: i32,
    pub zxid: i64,
    pub data: Option<Vec<u8>>,
}

#[derive(Debug)]
pub enum PacketError {
    BadLength(i32),
    /// Zab learners and zkelect never send auth info.
    UnexpectedAuthInfo(i32),
    Io(io::Error),
}

impl std::fmt::Display for PacketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PacketError::BadLength(n) => write!(f, "packet data length {n} is out of range (-1..={MAX_DATA})"),
            PacketError::UnexpectedAuthInfo(n) => write!(f, "unexpected authinfo count {n}"),
            PacketError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PacketError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PacketError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for PacketError {
    fn from(e: io::Error) -> Self {
        PacketError::Io(e)
    }
}

impl QuorumPacket {
    pub fn new(ptype: i32, zxid: i64, data: Option<Vec<u8>>) -> Self {
        QuorumPacket { ptype, zxid, data }
    }

    pub fn encode(&self) -> Vec<u8> {
        let len = self.data.as_ref().map_or(0, Vec::len);
        let mut out = Vec::with_capacity(20 + len);
        out.extend_from_slice(&self.ptype.to_be_bytes());
        out.extend_from_slice(&self.zxid.to_be_bytes());
        match &self.data {
            Some(d) => {
                out.extend_from_slice(&(d.len() as i32).to_be_bytes());
                out.extend_from_slice(d);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        out.extend_from_slice(&(-1i32).to_be_bytes());
        out
    }

    /// Reads one packet, checking the data length before allocating.
    pub fn read<R: Read>(r: &mut R) -> Result<QuorumPacket, PacketError> {
        let mut head = [0u8; 16];
        r.read_exact(&mut head)?;
        let ptype = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let zxid = i64::from_be_bytes([head[4], head[5], head[6], head[7], head[8], head[9], head[10], head[11]]);
        let len = i32::from_be_bytes([head[12], head[13], head[14], head[15]]);
        let data = match len {
            -1 => None,
            n if n >= 0 && n as usize <= MAX_DATA => {
                let mut d = vec![0u8; n as usize];
                r.read_exact(&mut d)?;
                Some(d)
            }
            n => return Err(PacketError::BadLength(n)),
        };
        let mut cnt = [0u8; 4];
        r.read_exact(&mut cnt)?;
        match i32::from_be_bytes(cnt) {
            -1 | 0 => Ok(QuorumPacket { ptype, zxid, data }),
            n => Err(PacketError::UnexpectedAuthInfo(n)),
        }
    }

    /// Takes the first complete packet off the front of `buf`; `None` while it is still
    /// incomplete (for reading a socket through a buffer). A length beyond the limit is an error
    /// at once, so the buffer never has to hold more than one packet.
    pub fn take_prefix(buf: &mut Vec<u8>) -> Result<Option<QuorumPacket>, PacketError> {
        let mut r = &buf[..];
        match QuorumPacket::read(&mut r) {
            Ok(p) => {
                let used = buf.len() - r.len();
                buf.drain(..used);
                Ok(Some(p))
            }
            Err(PacketError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The long at `offset` of the data, if present.
    pub fn data_i64(&self, offset: usize) -> Option<i64> {
        let d = self.data.as_ref()?.get(offset..offset + 8)?;
        Some(i64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]))
    }

    pub fn data_i32(&self, offset: usize) -> Option<i32> {
        let d = self.data.as_ref()?.get(offset..offset + 4)?;
        Some(i32::from_be_bytes([d[0], d[1], d[2], d[3]]))
    }
}

/// A learner's hello: who it is, where its epochs stand, and when it last heard from a leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub sid: i64,
    pub observer: bool,
    pub accepted_epoch: i64,
    pub current_epoch: i64,
    /// Milliseconds since the learner last heard from a leader, -1 if that leader released its
    /// lease; `None` from a learner too old to say (the leader then assumes "just now").
    pub last_leader_ms: Option<i64>,
}

impl Hello {
    pub fn packet(&self) -> QuorumPacket {
        let mut d = Vec::with_capacity(36);
        d.extend_from_slice(&self.sid.to_be_bytes());
        d.extend_from_slice(&i32::from(self.observer).to_be_bytes());
        d.extend_from_slice(&self.accepted_epoch.to_be_bytes());
        d.extend_from_slice(&self.current_epoch.to_be_bytes());
        if let Some(ms) = self.last_leader_ms {
            d.extend_from_slice(&ms.to_be_bytes());
        }
        QuorumPacket::new(HELLO, 0, Some(d))
    }

    pub fn parse(p: &QuorumPacket) -> Option<Hello> {
        if p.ptype != HELLO {
            return None;
        }
        Some(Hello {
            sid: p.data_i64(0)?,
            observer: p.data_i32(8)? != 0,
            accepted_epoch: p.data_i64(12)?,
            current_epoch: p.data_i64(20)?,
            last_leader_ms: p.data_i64(28),
        })
    }
}

/// Human name of a packet type for log lines.
pub fn type_name(t: i32) -> String {
    match t {
        HELLO => "HELLO".into(),
        LEADERINFO => "LEADERINFO".into(),
        ACKEPOCH => "ACKEPOCH".into(),
        NEWLEADER => "NEWLEADER".into(),
        ACK => "ACK".into(),
        UPTODATE => "UPTODATE".into(),
        PING => "PING".into(),
        LEASE_RELEASED => "LEASE_RELEASED".into(),
        ZAB_FOLLOWERINFO => "Zab FOLLOWERINFO".into(),
        ZAB_OBSERVERINFO => "Zab OBSERVERINFO".into(),
        other => format!("type {other}"),
    }
}

/// `ZxidUtils.makeZxid(epoch, 0)`.
pub fn epoch_zxid(epoch: i64) -> i64 {
    epoch << 32
}

/// `ZxidUtils.makeZxid(epoch, counter)`: a PING of round `round` in `epoch`.
pub fn ping_zxid(epoch: i64, round: u32) -> i64 {
    (epoch << 32) | i64::from(round)
}

/// The round a PING's zxid carries.
pub fn ping_round(zxid: i64) -> u32 {
    (zxid & 0xffff_ffff) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        for last_leader_ms in [None, Some(-1), Some(1234)] {
            let h = Hello { sid: 3, observer: true, accepted_epoch: 7, current_epoch: 6, last_leader_ms };
            let bytes = h.packet().encode();
            let p = QuorumPacket::read(&mut &bytes[..]).unwrap();
            assert_eq!(Hello::parse(&p), Some(h));
        }
        let none = QuorumPacket::new(PING, 5, None).encode();
        assert_eq!(none.len(), 20);
        assert_eq!(QuorumPacket::read(&mut &none[..]).unwrap().data, None);
        let mut big = QuorumPacket::new(PING, 0, None).encode();
        big[12..16].copy_from_slice(&(1_000_000i32).to_be_bytes());
        assert!(matches!(QuorumPacket::read(&mut &big[..]), Err(PacketError::BadLength(1_000_000))));
        let mut auth = none.clone();
        auth[16..20].copy_from_slice(&3i32.to_be_bytes());
        assert!(matches!(QuorumPacket::read(&mut &auth[..]), Err(PacketError::UnexpectedAuthInfo(3))));
        assert!(matches!(QuorumPacket::read(&mut &none[..10]), Err(PacketError::Io(_))));
    }

    #[test]
    fn java_followerinfo_is_recognised() {
        // LearnerInfo: long serverid, int protocolVersion, long configVersion.
        let mut d = 2i64.to_be_bytes().to_vec();
        d.extend_from_slice(&0x10000i32.to_be_bytes());
        d.extend_from_slice(&0i64.to_be_bytes());
        let bytes = QuorumPacket::new(ZAB_FOLLOWERINFO, epoch_zxid(1), Some(d)).encode();
        let p = QuorumPacket::read(&mut &bytes[..]).unwrap();
        assert_eq!(p.ptype, ZAB_FOLLOWERINFO);
        assert_eq!(p.data_i64(0), Some(2));
        assert_eq!(Hello::parse(&p), None);
    }
}
