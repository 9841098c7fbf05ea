//! `connectionExecutor` + `QuorumConnectionReqThread`: outgoing dials run on a bounded pool of
//! named threads, so a black-holed peer only ever holds its own dial (ZK-822/2930/3756).

use super::manager::Inner;
use super::socket::set_sock_opts;
use crate::config::HostPort;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// A pool that starts threads on demand up to `max` and lets idle ones exit after `keep_alive`.
pub struct Connector {
    my_sid: i64,
    max: usize,
    keep_alive: Duration,
    tx: Mutex<Option<Sender<Job>>>,
    rx: Receiver<Job>,
    state: Arc<Mutex<PoolState>>,
    seq: AtomicU64,
}

#[derive(Default)]
struct PoolState {
    idle: usize,
    count: usize,
    handles: Vec<JoinHandle<()>>,
}

impl Connector {
    pub fn new(my_sid: i64, max: usize, keep_alive: Duration) -> Connector {
        let (tx, rx) = crossbeam_channel::unbounded();
        Connector {
            my_sid,
            max: max.max(1),
            keep_alive,
            tx: Mutex::new(Some(tx)),
            rx,
            state: Arc::new(Mutex::new(PoolState::default())),
            seq: AtomicU64::new(1),
        }
    }

    /// Queues a job; starts a thread when none is idle and the pool is below its size. Jobs beyond
    /// the size wait their turn (at most one per peer can be queued, see `inprogressConnections`).
    pub fn submit(&self, job: Job) {
        let mut st = self.state.lock();
        let Some(tx) = self.tx.lock().clone() else {
            return;
        };
        if tx.send(job).is_err() {
            return;
        }
        if st.idle == 0 && st.count < self.max {
            let n = self.seq.fetch_add(1, Ordering::Relaxed);
            let (rx, state, ka) = (self.rx.clone(), Arc::clone(&self.state), self.keep_alive);
            let spawned = std::thread::Builder::new()
                .name(format!("QuorumConnectionThread-[myid={}]-{n}", self.my_sid))
                .spawn(move || pool_loop(&rx, &state, ka));
            match spawned {
                Ok(h) => {
                    st.count += 1;
                    st.handles.retain(|h| !h.is_finished());
                    st.handles.push(h);
                }
                Err(e) => log::error!("Cannot start a connection thread: {e}"),
            }
        }
    }

    pub fn close(&self) {
        self.tx.lock().take();
    }

    pub fn join(&self) {
        let hs: Vec<_> = self.state.lock().handles.drain(..).collect();
        for h in hs {
            let _ = h.join();
        }
    }

    pub fn thread_count(&self) -> usize {
        self.state.lock().handles.iter().filter(|h| !h.is_finished()).count()
    }
}

fn pool_loop(rx: &Receiver<Job>, state: &Mutex<PoolState>, keep_alive: Duration) {
    loop {
        state.lock().idle += 1;
        let r = rx.recv_timeout(keep_alive);
        let mut st = state.lock();
        st.idle -= 1;
        match r {
            Ok(job) => {
                drop(st);
                job();
            }
            // Exit only if nothing slipped in between the timeout and taking the lock.
            Err(RecvTimeoutError::Timeout) if rx.is_empty() => {
                st.count -= 1;
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                st.count -= 1;
                return;
            }
        }
    }
}

/// `initiateConnection`: try each election address of `sid` in turn (re-resolving names every
/// time, no ICMP probes), send the handshake in one write, then apply the tie-break.
pub fn initiate_connection(inner: &Arc<Inner>, sid: i64, addrs: &[HostPort]) {
    let result = dial(inner, sid, addrs);
    inner.dial_result(sid, result.is_ok());
    match result {
        Ok(stream) => {
            let my = inner.settings.my_sid;
            if sid > my {
                log::info!("Have smaller server identifier, so dropping the connection: (myId:{my} --> sid:{sid})");
                drop(stream);
            } else {
                inner.start_workers(sid, stream);
            }
        }
        Err(e) => {
            if !inner.is_shutdown() {
                log::warn!("{e}");
                inner.record_connect_error(sid, e);
            }
        }
    }
    inner.inprogress_connections.lock().remove(&sid);
}

fn dial(inner: &Inner, sid: i64, addrs: &[HostPort]) -> Result<TcpStream, String> {
    let mut last = String::new();
    for a in addrs {
        if inner.is_shutdown() {
            return Err("shutting down".into());
        }
        let resolved = match (a.host.as_str(), a.port).to_socket_addrs() {
            Ok(mut it) => it.next(),
            Err(e) => {
                last = format!("Cannot open channel to {sid} at election address {a}: cannot resolve: {e}");
                continue;
            }
        };
        let Some(sa) = resolved else {
            last = format!("Cannot open channel to {sid} at election address {a}: no address");
            continue;
        };
        log::debug!("Opening channel to server {sid} at {a}");
        match TcpStream::connect_timeout(&sa, inner.settings.cnx_timeout) {
            Ok(s) => {
                let hs = inner.initial_message();
                let sent = set_sock_opts(&s, inner.settings.tcp_keep_alive, inner.settings.socket_timeout)
                    .and_then(|_| s.set_write_timeout(Some(inner.settings.socket_timeout)))
                    .and_then(|_| (&s).write_all(&hs));
                match sent {
                    Ok(()) => return Ok(s),
                    Err(e) => last = format!("Cannot open channel to {sid} at election address {a}: {e}"),
                }
            }
            Err(e) => last = format!("Cannot open channel to {sid} at election address {a}: {e}"),
        }
    }
    Err(last)
}
