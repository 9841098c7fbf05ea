//! `QuorumPeer`: the node's state loop (LOOKING → LEADING / FOLLOWING / OBSERVING) and its
//! persistent epochs.

pub mod epochs;
mod quorum_peer;

pub use quorum_peer::{ElectionStats, PeerStatus, QuorumPeer};
