//! Operator interfaces: ZooKeeper's four-letter words on the client port, Prometheus metrics,
//! Operator interfaces: ZooKeeper's four-letter words on the client port, Prometheus metrics,
//! ZooKeeper's AdminServer with zkelect's HTTP endpoints and status page, the state-change hook
//! and systemd's service notifications. They read [`crate::snapshot::Snapshot`]s and never touch
//! the election.

pub mod admin_server;
pub mod commands;
pub mod fourlw;
pub mod hook;
pub mod http;
pub mod json;
pub mod metrics;
pub mod notify;
mod server;
pub mod status_page;
pub mod text;
pub mod watch;

pub use hook::StateHook;
pub use server::{AdminError, AdminServer};
pub use watch::LeadershipJournal;
