//! `zkelect run <zoo.cfg> -- <command…>`: a node that runs a command while, and only while, it
//! is the active leader (see [`crate::lease`]). The daemon decides ([`supervisor`]); a guard
//! process ([`guard`]) owns the command and enforces the lease's deadline on its own.

pub mod guard;
pub mod protocol;
mod runner;
pub mod supervisor;

pub use runner::{Ended, Runner};
pub use supervisor::{OnChildExit, RunEnd, RunOptions};
