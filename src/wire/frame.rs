//! Frames after the handshake: `int length` (1..=524288) + payload (`QuorumCnxManager.PACKETMAXSIZE`).

use std::io::{self, Read, Write};

/// `PACKETMAXSIZE`: 512 KiB.
pub const PACKET_MAX_SIZE: usize = 512 * 1024;

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The length prefix is outside 1..=524288 ("Received packet with invalid packet: L").
    InvalidLength(i32),
    Io(io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::InvalidLength(l) => write!(f, "Received packet with invalid packet: {l}"),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// Checks a length prefix before anything is allocated for it.
pub fn check_length(len: i32) -> Result<usize, FrameError> {
    if len <= 0 || len as usize > PACKET_MAX_SIZE { Err(FrameError::InvalidLength(len)) } else { Ok(len as usize) }
}

/// Reads one frame (blocking).
pub fn read_frame<R: Read>(r: &mut R) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let n = check_length(i32::from_be_bytes(len))?;
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// The bytes of one frame: length prefix and payload in one buffer, so they go out in one write.
pub fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Writes one frame in a single `write_all`.
pub fn write_frame<W: Write>(w: &mut W, payload: &[u8]) -> io::Result<()> {
    if payload.is_empty() || payload.len() > PACKET_MAX_SIZE {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("frame of {} bytes", payload.len())));
    }
    w.write_all(&encode_frame(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(matches!(check_length(0), Err(FrameError::InvalidLength(0))));
        assert!(matches!(check_length(-20), Err(FrameError::InvalidLength(-20))));
        assert!(check_length(1).is_ok());
        assert!(check_length(524_288).is_ok());
        assert!(matches!(check_length(524_289), Err(FrameError::InvalidLength(_))));
    }

    #[test]
    fn round_trip_and_truncation() {
        let bytes = encode_frame(b"hello");
        assert_eq!(read_frame(&mut &bytes[..]).unwrap(), b"hello");
        assert!(matches!(read_frame(&mut &bytes[..6]), Err(FrameError::Io(_))));
        let huge = 0x7fff_ffffi32.to_be_bytes();
        assert!(matches!(read_frame(&mut &huge[..]), Err(FrameError::InvalidLength(_))));
    }
}
