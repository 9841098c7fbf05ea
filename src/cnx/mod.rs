//! `QuorumCnxManager`: the election transport. One TCP connection per pair of servers (the one the
//! larger sid dialled), one `SendWorker` and one `RecvWorker` thread per connection, dials on a
//! bounded pool. Owns its sockets and threads; knows notifications only as opaque frames.
//!
//! Inside: `manager` (the handle and its operations), `table` (every per-peer fact behind one
//! lock), `tie_break` (which connection survives, pure), `listener`, `connector` (the dial and
//! handshake pools, and the dial), `workers` and `queue`.

mod connector;
mod listener;
mod manager;
mod queue;
mod table;
pub mod tie_break;
mod workers;

pub use manager::{CnxSettings, Message, POOL_KEEP_ALIVE, QuorumCnxManager, RECV_CAPACITY};
pub use table::{CnxEvents, PeerCnxStatus, SEND_CAPACITY};
