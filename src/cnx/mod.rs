//! `QuorumCnxManager`: the election transport (spec §1). One TCP connection per pair of servers,
//! one `SendWorker` and one `RecvWorker` thread per connection, dials on a bounded pool.

mod connector;
mod listener;
mod manager;
pub mod queue;
pub(crate) mod socket;
mod workers;

pub use manager::{CnxSettings, Message, PeerCnxStatus, QuorumCnxManager};
