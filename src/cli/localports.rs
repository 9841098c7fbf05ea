//! Free TCP ports on 127.0.0.1 for local ensembles (`zkelect ensemble`, `zkelect bench`, the tests).
//!
//! Ports handed out by the kernel for `bind(0)` come from the ephemeral range, which is also where
//! every outgoing connection gets its local port: with many nodes dialling each other, a dial can
//! take a port that was picked for a node that has not bound it yet (seen in the tests under load:
//! a node's client port taken by another node's dial). So ports come from a window just outside
//! `ip_local_port_range`, each checked to be free, handed out in turn (once per process until the
//! window wraps), starting at a per-process offset so that parallel processes rarely meet.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// How many ports the window holds.
pub(crate) const WINDOW: u32 = 10_000;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// `n` free ports on 127.0.0.1.
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let Some(base) = window_start() else {
        // No room outside the ephemeral range: let the kernel choose (bound, then released).
        let ls = (0..n).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<Vec<_>, _>>()?;
        return ls.iter().map(|l| l.local_addr().map(|a| a.port())).collect();
    };
    let offset = std::process::id().wrapping_mul(7919) % WINDOW;
    let mut out = Vec::with_capacity(n);
    // The window wraps around (a long benchmark uses more ports than it holds; ports of finished
    // ensembles are free again); one full turn without enough free ports is an error.
    for _ in 0..WINDOW {
        if out.len() == n {
            return Ok(out);
        }
        let k = NEXT.fetch_add(1, Ordering::Relaxed) % WINDOW;
        let port = (base + (offset + k) % WINDOW) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            out.push(port);
        }
    }
    if out.len() == n {
        Ok(out)
    } else {
        Err(std::io::Error::other(format!("fewer than {n} free ports in {base}..{}", base + WINDOW)))
    }
}

/// The first port of a WINDOW-wide range just below (or else just above) the ephemeral ports.
pub(crate) fn window_start() -> Option<u32> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = range.split_whitespace().filter_map(|x| x.parse::<u32>().ok());
    let (lo, hi) = (it.next().unwrap_or(32768), it.next().unwrap_or(60999));
    if lo >= 1024 + WINDOW {
        Some(lo - WINDOW)
    } else if hi + WINDOW <= 65535 {
        Some(hi + 1)
    } else {
        None
    }
}
