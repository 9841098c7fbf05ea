//! Operator interfaces: ZooKeeper's four-letter words on the client port, Prometheus metrics and
//! the state-change hook. They read [`crate::snapshot::Snapshot`]s and never touch the election.

pub mod fourlw;
pub mod hook;
pub mod metrics;
mod server;
pub mod text;

pub use hook::StateHook;
pub use server::{AdminError, AdminServer};
