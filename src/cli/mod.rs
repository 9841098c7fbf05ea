//! The command-line tools around the daemon: `zkelect status`, `zkelect ensemble` and
//! `zkelect bench`, and what they share with the tests (local ports, zoo.cfg files for local
//! ensembles, reading logs, launching ZooKeeper). Part of the binary only, not of the library.

pub mod bench;
pub mod ensemble;
pub mod localports;
pub mod logs;
pub mod status;

pub mod certs;
#[cfg(test)]
mod tests;
