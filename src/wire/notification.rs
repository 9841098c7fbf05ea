//! Notifications (`FastLeaderElection.buildMsg` / `WorkerReceiver.run`): the 28-, 40-
//! and 44+L-byte layouts are read; the 44+L version-2 layout is always written.

use super::Cursor;
use std::fmt;

/// `Notification.CURRENTVERSION`.
pub const CURRENT_VERSION: i32 = 2;

/// Which layout a received notification had (for Java's "Backward compatibility mode" lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 28 bytes, pre-3.4: peerEpoch derived from the zxid.
    Bytes28,
    /// 40 bytes: version forced to 0.
    Bytes40,
    /// 41+ bytes with a version int (and, from version 2, a config).
    Versioned,
}

/// A decoded notification, before the sender's sid (which comes from the connection) is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireNotification {
    /// Raw state ordinal: checked by the receiver only for voters, as Java does.
    pub state: i32,
    pub leader: i64,
    pub zxid: i64,
    pub election_epoch: i64,
    pub peer_epoch: i64,
    pub version: i32,
    /// Config text bytes (version ≥ 2 only).
    pub config: Option<Vec<u8>>,
    pub layout: Layout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationError {
    /// Under 28 bytes: "Got a short response from server".
    Short(usize),
    /// 29–39 bytes or a truncated version/config header: "partial / malformed response".
    Partial(usize),
    /// Config length below 0 or above the message.
    InvalidConfigLength(i32),
}

impl fmt::Display for NotificationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short(n) => write!(f, "Got a short response: {n}"),
            Self::Partial(n) => write!(
                f,
                "Skipping the processing of a partial / malformed response message sent by sid (message length: {n})"
            ),
            Self::InvalidConfigLength(n) => {
                write!(f, "Invalid configLength in notification message! configLength: {n}")
            }
        }
    }
}

impl std::error::Error for NotificationError {}

/// Decodes one notification payload exactly as `WorkerReceiver.run` reads it.
pub fn decode(buf: &[u8]) -> Result<WireNotification, NotificationError> {
    let c_len = buf.len();
    if c_len < 28 {
        return Err(NotificationError::Short(c_len));
    }
    let partial = || NotificationError::Partial(c_len);
    let mut c = Cursor::new(buf);
    let state = c.i32().ok_or_else(partial)?;
    let leader = c.i64().ok_or_else(partial)?;
    let zxid = c.i64().ok_or_else(partial)?;
    let election_epoch = c.i64().ok_or_else(partial)?;
    if c_len == 28 {
        return Ok(WireNotification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch: zxid >> 32,
            version: 0,
            config: None,
            layout: Layout::Bytes28,
        });
    }
    let peer_epoch = c.i64().ok_or_else(partial)?;
    let version_field = c.i32().ok_or_else(partial)?;
    if c_len == 40 {
        return Ok(WireNotification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version: 0,
            config: None,
            layout: Layout::Bytes40,
        });
    }
    let mut config = None;
    if version_field > 1 {
        let len = c.i32().ok_or_else(partial)?;
        if len < 0 || len as usize > c_len {
            return Err(NotificationError::InvalidConfigLength(len));
        }
        config = Some(c.bytes(len as usize).ok_or_else(partial)?.to_vec());
    }
    Ok(WireNotification {
        state,
        leader,
        zxid,
        election_epoch,
        peer_epoch,
        version: version_field,
        config,
        layout: Layout::Versioned,
    })
}

/// Encodes the 44+L version-2 layout (`buildMsg`).
/// `state` is the `ServerState` ordinal.
pub fn encode(state: i32, leader: i64, zxid: i64, election_epoch: i64, peer_epoch: i64, config: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(44 + config.len());
    out.extend_from_slice(&state.to_be_bytes());
    out.extend_from_slice(&leader.to_be_bytes());
    out.extend_from_slice(&zxid.to_be_bytes());
    out.extend_from_slice(&election_epoch.to_be_bytes());
    out.extend_from_slice(&peer_epoch.to_be_bytes());
    out.extend_from_slice(&CURRENT_VERSION.to_be_bytes());
    out.extend_from_slice(&(config.len() as i32).to_be_bytes());
    out.extend_from_slice(config);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(len: usize) -> Vec<u8> {
        let mut b = encode(1, 3, 0x1_0000_0005, 7, 1, b"");
        b.resize(len, 0);
        b
    }

    #[test]
    fn layouts() {
        assert_eq!(decode(&body(27)), Err(NotificationError::Short(27)));
        let n28 = decode(&body(28)).unwrap();
        assert_eq!((n28.peer_epoch, n28.version, n28.layout), (1, 0, Layout::Bytes28));
        for len in 29..40 {
            assert_eq!(decode(&body(len)), Err(NotificationError::Partial(len)), "len {len}");
        }
        let n40 = decode(&encode(0, 1, 0, 1, 9, b"")[..40]).unwrap();
        assert_eq!((n40.peer_epoch, n40.version), (9, 0));
        let n = decode(&encode(2, 2, 0, 2, 2, b"version=0")).unwrap();
        assert_eq!(n.config.as_deref(), Some(&b"version=0"[..]));
        assert_eq!(n.state, 2);
    }

    /// `FLEMalformedNotificationMessageTest` shapes.
    #[test]
    fn malformed() {
        let mut neg = encode(0, 1, 0, 1, 0, b"");
        neg[40..44].copy_from_slice(&(-123i32).to_be_bytes());
        neg.extend_from_slice(&[0; 4]);
        assert_eq!(decode(&neg), Err(NotificationError::InvalidConfigLength(-123)));
        let mut big = encode(0, 1, 0, 1, 0, b"");
        big[40..44].copy_from_slice(&10_000i32.to_be_bytes());
        assert_eq!(decode(&big), Err(NotificationError::InvalidConfigLength(10_000)));
        let mut under = encode(0, 1, 0, 1, 0, b"abcdef");
        under.truncate(46);
        assert_eq!(decode(&under), Err(NotificationError::Partial(46)));
        // version 1 with trailing bytes: config ignored
        let mut v1 = encode(0, 1, 0, 1, 0, b"zz");
        v1[36..40].copy_from_slice(&1i32.to_be_bytes());
        assert_eq!(decode(&v1).unwrap().config, None);
    }
}
