//! The command-line tools around the daemon: `zkelect status`, `zkelect ensemble` and
//! `zkelect bench`, and what they share with the tests (local ports, zoo.cfg files for local
//! ensembles, reading logs, launching ZooKeeper, certificates for quorum TLS). Part of the binary
//! only, not of the library.
//!
//! The tests include `localports`, `logs`, `zoocfg`, `zookeeper` and `certs` by path, so those
//! five use nothing but std (and `certs` rcgen and time).

/// `println!` that ignores a closed stdout (`zkelect status … | head -1`) instead of panicking.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

pub mod bench;
pub mod certs;
pub mod ensemble;
pub mod localports;
pub mod logs;
pub mod run;
pub mod status;
#[cfg(test)]
mod tests;
pub mod zoocfg;
pub mod zookeeper;
