//! Operator interfaces: ZooKeeper's four-letter words on the client port, Prometheus metrics,
//! the state-change hook and systemd's service notifications. They read [`crate::snapshot::Snapshot`]s and never touch the election.

pub mod fourlw;
pub mod hook;
pub mod metrics;
pub mod notify;
mod server;
pub mod text;

pub use hook::StateHook;
pub use server::{AdminError, AdminServer};
