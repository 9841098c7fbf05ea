//! `Listener` / `ListenerHandler`: bind the own election address(es), accept, and read each
//! handshake on its own short-lived thread with one deadline, so a silent client never blocks
//! accepting (ZK-3296).

use super::manager::Inner;
use crate::config::HostPort;
use crate::net::{self, Closer, Incoming, Listener, ListenerWaker};
use crate::runtime::spawn_named;
use crate::wire::initial;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What halt must release: the listening sockets and the handshakes being read.
#[derive(Default)]
pub struct ListenerState {
    wakers: Mutex<Vec<ListenerWaker>>,
    handshakes: Mutex<HashMap<u64, Closer>>,
    seq: AtomicU64,
}

impl ListenerState {
    /// Wakes every accept and closes every handshake in progress.
    pub fn close_all(&self) {
        for w in self.wakers.lock().drain(..) {
            w.wake();
        }
        for (_, c) in self.handshakes.lock().drain() {
            c.close();
        }
    }
}

/// Binds every listen address now (retrying as `electionPortBindRetry` says), so that a node whose
/// election port is taken (most likely by a node with the same id) fails before it dials anyone,
/// then starts `QuorumPeerListener`. An error when no address could be bound.
pub fn start(inner: &Arc<Inner>) -> io::Result<()> {
    log::info!("Election port bind maximum retries is {}", inner.settings().bind_retry);
    let mut bound = Vec::new();
    for addr in inner.settings().listen_addrs.clone() {
        let mut errors = 0;
        match bind_with_retry(inner, &addr, &mut errors) {
            Some(l) => bound.push((addr, l, errors)),
            None => leaving(inner, &addr, errors),
        }
    }
    if bound.is_empty() {
        let addrs: Vec<String> = inner.settings().listen_addrs.iter().map(HostPort::to_string).collect();
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("cannot listen on the election address {}", addrs.join("|")),
        ));
    }
    let me = Arc::clone(inner);
    inner.threads().spawn("QuorumPeerListener".into(), move || listener_run(&me, bound))
}

/// Runs one handler per address and waits for them; when all gave up (not on halt) the node cannot
/// take part in elections any more.
fn listener_run(inner: &Arc<Inner>, bound: Vec<(HostPort, Listener, u32)>) {
    let mut handles = Vec::new();
    for (addr, listener, errors) in bound {
        let me = Arc::clone(inner);
        let name = format!("ListenerHandler-{addr}");
        match spawn_named(name, move || handler_run(&me, &addr, listener, errors)) {
            Ok(h) => handles.push(h),
            Err(e) => log::error!("Cannot start a ListenerHandler: {e}"),
        }
    }
    for h in handles {
        let _ = h.join();
    }
    if !inner.is_halted() {
        let addrs: Vec<String> = inner.settings().listen_addrs.iter().map(HostPort::to_string).collect();
        log::error!(
            "As I'm leaving the listener thread, I won't be able to participate in leader election any longer: {}",
            addrs.join("|")
        );
        inner.table().listener_failed();
    }
}

/// Binds `addr`, counting failures in `errors` against `electionPortBindRetry` (0 = forever) and
/// pausing between attempts. `None` when the retries ran out or the transport halted.
fn bind_with_retry(inner: &Inner, addr: &HostPort, errors: &mut u32) -> Option<Listener> {
    let max = inner.settings().bind_retry;
    while !inner.is_halted() && (max == 0 || *errors < max) {
        // Re-resolved on every attempt: the own name may appear later (ZK-3320/4728).
        match net::resolve(addr).and_then(|sa| Listener::bind(sa, 128)) {
            Ok(l) => match l.waker() {
                Ok(w) => {
                    inner.listening().wakers.lock().push(w);
                    if inner.is_halted() {
                        return None;
                    }
                    log::info!("{} is accepting connections now, my election bind port: {addr}", inner.my_sid());
                    return Some(l);
                }
                Err(e) => log::error!("Exception while listening to address {addr}: {e}"),
            },
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => log::error!(
                "Exception while listening to address {addr}: {e}; another node with id {} is probably running on \
                 this host",
                inner.my_sid()
            ),
            Err(e) => log::error!("Exception while listening to address {addr}: {e}"),
        }
        *errors += 1;
        if (max == 0 || *errors < max) && !inner.shutdown().sleep(inner.settings().bind_retry_delay) {
            return None;
        }
    }
    None
}

fn leaving(inner: &Inner, addr: &HostPort, errors: u32) {
    if !inner.is_halted() {
        log::error!(
            "Leaving listener thread for address {addr} after {errors} errors. Use electionPortBindRetry property to \
             increase retry count."
        );
    }
}

/// `ListenerHandler.run`: accept until halted; an accept error counts against the retries, and
/// the address is bound anew after the pause.
fn handler_run(inner: &Arc<Inner>, addr: &HostPort, mut listener: Listener, mut errors: u32) {
    loop {
        match listener.accept() {
            Ok(incoming) => {
                errors = 0;
                if inner.is_halted() {
                    return;
                }
                log::info!("Received connection request from {}", incoming.remote());
                receive_connection_async(inner, incoming);
                continue;
            }
            Err(e) => {
                if inner.is_halted() {
                    return;
                }
                log::error!("Exception while listening to address {addr}: {e}");
                errors += 1;
                if !inner.shutdown().sleep(inner.settings().bind_retry_delay) {
                    return;
                }
            }
        }
        match bind_with_retry(inner, addr, &mut errors) {
            Some(l) => listener = l,
            None => return leaving(inner, addr, errors),
        }
    }
}

/// `receiveConnectionAsync`: the handshake is read on a thread of the handshake pool; at most
/// `max_pending_handshakes` at once, which is also the pool's size, so none waits for a thread.
fn receive_connection_async(inner: &Arc<Inner>, incoming: Incoming) {
    let state = inner.listening();
    let id = state.seq.fetch_add(1, Ordering::Relaxed);
    let remote = incoming.remote();
    {
        let mut pending = state.handshakes.lock();
        let max = inner.settings().max_pending_handshakes;
        if pending.len() >= max {
            log::warn!("Closing connection from {remote}: already reading {max} handshakes");
            return;
        }
        match incoming.closer() {
            Ok(c) => {
                pending.insert(id, c);
            }
            Err(e) => {
                log::warn!("Closing connection from {remote}: {e}");
                return;
            }
        }
    }
    let me = Arc::clone(inner);
    let queued = inner.handshakes().submit(Box::new(move || {
        receive_connection(&me, incoming);
        me.listening().handshakes.lock().remove(&id);
    }));
    if !queued {
        state.handshakes.lock().remove(&id);
    }
}

fn receive_connection(inner: &Arc<Inner>, incoming: Incoming) {
    let remote = incoming.remote();
    let settings = inner.settings();
    let deadline = Instant::now() + settings.socket_timeout;
    let stream = match incoming.into_stream(settings.socket(), &settings.security, deadline) {
        Ok(s) => s,
        Err(e) => {
            if !inner.is_halted() {
                settings.security.refused(remote, &format!("election connection: {e}"));
            }
            return;
        }
    };
    let m = match initial::read(&mut stream.read_until(deadline)) {
        Ok(m) => m,
        Err(initial::InitialMessageError::Io(e)) => {
            if !inner.is_halted() {
                log::warn!("Exception reading or writing challenge from {remote}: {e}");
            }
            return;
        }
        Err(e) => return log::error!("Initial message parsing error! from {remote}: {e}"),
    };
    // The server id claimed must be the one the certificate names (TLS with hostname verification).
    if let Some(server) = inner.qv().members.get(&m.sid)
        && let Err(e) = stream.check_identity(&server.election_addrs())
    {
        return settings.security.refused(remote, &format!("election connection claiming server id {}: {e}", m.sid));
    }
    inner.handle_connection(stream, m);
}
