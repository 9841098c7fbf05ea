//! The command-line tools around the daemon: `zkelect status`, `zkelect ensemble` and
//! `zkelect bench`, and what they share with the tests (local ports, zoo.cfg files for local
//! ensembles, reading logs, launching ZooKeeper). Part of the binary only, not of the library.
//!
//! The tests include `localports`, `logs`, `zoocfg` and `zookeeper` by path, so those four use
//! nothing but std.

/// `println!` that ignores a closed stdout (`zkelect status … | head -1`) instead of panicking.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

pub mod bench;
pub mod ensemble;
pub mod localports;
pub mod logs;
pub mod run;
pub mod status;
pub mod zoocfg;
pub mod zookeeper;

#[allow(dead_code, reason = "used by the TLS tests; `zkelect ensemble --tls` is next")]
pub mod certs;
#[cfg(test)]
mod tests;
