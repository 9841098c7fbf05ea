//! What every component runs on: named threads joined by their owner, one stop signal, the latest
//! value of a thing to wait on, the log line layout, the panic policy and process signals as
//! messages. Knows nothing of ZooKeeper's protocols.

pub mod logging;
pub mod panic;
mod shutdown;
pub mod signals;
mod thread;
mod watch;

pub use shutdown::Shutdown;
pub use thread::{ThreadGroup, enter_new_log_scope, log_scope, spawn_named};
pub use watch::Watch;
