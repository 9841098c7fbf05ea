//! `QuorumPeer`: the node's state loop (LOOKING → LEADING / FOLLOWING / OBSERVING), the peer
//! sessions on the quorum port that make a decision real (`Leader`, `Follower`, and election-only
//! following of a ZooKeeper leader), and the persistent epochs. Writes the node's published status;
//! reads votes through the messenger's vote board. Never touches the admin interfaces: it
//! announces state changes through a callback the node gives it.

mod context;
mod election_only;
pub mod epochs;
mod error;
mod follower;
mod leader;
pub mod lease;
pub(crate) mod quorum_peer;
mod session;

pub use context::{Announce, PeerContext};
pub use error::Error;
pub use lease::{Leases, ResignRefused, ResignRequest};
pub use quorum_peer::run;
