//! `zkelect status host:port`: asks `srvr` (and `elec` when allowed) and prints a short summary.
//! Exit status 0 when the node is part of a working quorum, 1 when it is not (LOOKING, or a session
//! not yet up), 2 when it cannot be reached: usable as a readiness probe. Works against ZooKeeper
//! servers too (they have no `Session:` line; serving means in a quorum).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

pub const IN_QUORUM: u8 = 0;
pub const NOT_IN_QUORUM: u8 = 1;
pub const UNREACHABLE: u8 = 2;

pub fn ask(addr: &str, word: &str, timeout: Duration) -> Result<String, String> {
    let sa = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let mut s = TcpStream::connect_timeout(&sa, timeout).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.write_all(word.as_bytes()).map_err(|e| format!("{addr}: {e}"))?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| format!("{addr}: {e}"))?;
    Ok(out)
}

fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key)).map(str::trim)
}

/// Prints the summary and returns the exit status.
pub fn run(addr: &str, timeout: Duration) -> u8 {
    let srvr = match ask(addr, "srvr", timeout) {
        Ok(t) if !t.is_empty() => t,
        Ok(_) => {
            say!("{addr}: connected, but no answer to srvr");
            return UNREACHABLE;
        }
        Err(e) => {
            say!("{addr}: unreachable ({e})");
            return UNREACHABLE;
        }
    };
    if srvr.contains("not in the whitelist") {
        say!("{addr}: srvr is not in 4lw.commands.whitelist");
        return UNREACHABLE;
    }
    if srvr.contains("not currently serving requests") {
        say!("{addr}: not serving (ZooKeeper is electing a leader)");
        return NOT_IN_QUORUM;
    }
    let mode = field(&srvr, "Mode:").unwrap_or("unknown");
    let leader = field(&srvr, "Leader:");
    let epoch = field(&srvr, "Epoch:");
    let session = field(&srvr, "Session:");
    let version = field(&srvr, "Zookeeper version:").unwrap_or("?");
    let in_quorum = match session {
        // zkelect: established leadership, or a ZooKeeper leader confirmed through the election.
        Some(s) => mode != "looking" && (s == "broadcast" || s == "election-only"),
        // ZooKeeper answers srvr only while serving.
        None => matches!(mode, "leader" | "follower" | "observer" | "standalone" | "read-only"),
    };
    let role = match (mode, leader) {
        ("leader", _) => "leader".to_string(),
        ("looking", _) => "looking for a leader".to_string(),
        (m, Some(l)) => format!("{m} of server {l}"),
        (m, None) => m.to_string(),
    };
    let mut line = format!("{addr}: {role}");
    if let Some(e) = epoch {
        line.push_str(&format!(", epoch {e}"));
    }
    if let Some(s) = session {
        line.push_str(&format!(", session {s}"));
    }
    line.push_str(if in_quorum { " — in quorum" } else { " — not in a quorum" });
    say!("{line}");
    say!("  version {version}");
    if let Ok(elec) = ask(addr, "elec", timeout)
        && !elec.contains("not in the whitelist")
        && !elec.is_empty()
    {
        for l in elec.lines() {
            say!("  {l}");
        }
    }
    if in_quorum { IN_QUORUM } else { NOT_IN_QUORUM }
}
