//! Operator interfaces: ZooKeeper's four-letter words on the client port, Prometheus metrics,
//! and the state-change hook.

pub mod fourlw;
pub mod hook;
pub mod metrics;
mod server;
pub mod text;

pub use hook::StateHook;
pub use server::AdminServer;
