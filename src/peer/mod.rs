//! `QuorumPeer`: the node's state loop (LOOKING → LEADING / FOLLOWING / OBSERVING) and its
//! persistent epochs.

pub mod epochs;
mod follower;
mod leader;
mod quorum_peer;
mod session;

pub use quorum_peer::{ElectionStats, PeerStatus, QuorumPeer, Snapshot};
