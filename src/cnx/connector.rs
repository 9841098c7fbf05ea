//! `connectionExecutor` + `QuorumConnectionReqThread`: outgoing dials run on a bounded pool of
//! named threads, so a black-holed peer only ever holds its own dial (ZK-822/2930/3756).

use super::manager::Inner;
use crate::config::HostPort;
use crate::net::{self, PeerStream};
use crate::runtime::{Shutdown, spawn_named};
use crossbeam_channel::{Receiver, Sender, select};
use parking_lot::Mutex;
use std::io::Write;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// A pool that starts threads on demand up to `max` and lets idle ones exit after `keep_alive`.
/// Its threads end when the transport's shutdown is requested (after the dial in hand).
pub struct Connector {
    my_sid: i64,
    max: usize,
    keep_alive: Duration,
    shutdown: Shutdown,
    tx: Sender<Job>,
    rx: Receiver<Job>,
    pool: Arc<Mutex<Pool>>,
}

#[derive(Default)]
struct Pool {
    idle: usize,
    count: usize,
    spawned: u64,
    handles: Vec<JoinHandle<()>>,
}

impl Connector {
    pub fn new(my_sid: i64, max: usize, keep_alive: Duration, shutdown: Shutdown) -> Connector {
        let (tx, rx) = crossbeam_channel::unbounded();
        Connector { my_sid, max: max.max(1), keep_alive, shutdown, tx, rx, pool: Arc::new(Mutex::new(Pool::default())) }
    }

    /// Queues a job; starts a thread when none is idle and the pool is below its size. Jobs beyond
    /// the size wait their turn (at most one per peer can be queued, see `inprogressConnections`).
    pub fn submit(&self, job: Job) {
        let mut pool = self.pool.lock();
        if self.shutdown.is_requested() || self.tx.send(job).is_err() {
            return;
        }
        if pool.idle == 0 && pool.count < self.max {
            pool.spawned += 1;
            let name = format!("QuorumConnectionThread-[myid={}]-{}", self.my_sid, pool.spawned);
            let (rx, state, ka, stop) =
                (self.rx.clone(), Arc::clone(&self.pool), self.keep_alive, self.shutdown.clone());
            match spawn_named(name, move || pool_loop(&rx, &state, ka, &stop)) {
                Ok(h) => {
                    pool.count += 1;
                    pool.handles.retain(|h| !h.is_finished());
                    pool.handles.push(h);
                }
                Err(e) => log::error!("Cannot start a connection thread: {e}"),
            }
        }
    }

    /// Joins the pool's threads; the shutdown must have been requested.
    pub fn join(&self) {
        let handles: Vec<_> = self.pool.lock().handles.drain(..).collect();
        for h in handles {
            let _ = h.join();
        }
    }

    pub fn thread_count(&self) -> usize {
        self.pool.lock().handles.iter().filter(|h| !h.is_finished()).count()
    }
}

fn pool_loop(rx: &Receiver<Job>, pool: &Mutex<Pool>, keep_alive: Duration, shutdown: &Shutdown) {
    loop {
        pool.lock().idle += 1;
        let job = select! {
            recv(rx) -> job => job.ok(),
            recv(shutdown.receiver()) -> _ => None,
            default(keep_alive) => None,
        };
        let mut p = pool.lock();
        p.idle -= 1;
        match job {
            Some(job) => {
                drop(p);
                job();
            }
            // Exit only if nothing slipped in between the timeout and taking the lock.
            None if shutdown.is_requested() || rx.is_empty() => {
                p.count -= 1;
                return;
            }
            None => {}
        }
    }
}

/// `initiateConnection`: try each election address of `sid` in turn (re-resolving names every
/// time, no ICMP probes), send the handshake in one write, then apply the tie-break.
pub fn initiate_connection(inner: &Arc<Inner>, sid: i64, addrs: &[HostPort]) {
    match dial(inner, sid, addrs) {
        Ok(stream) => {
            inner.dialled(sid, stream);
            inner.table().end_dial(sid, None);
        }
        Err(e) => {
            if !inner.is_halted() {
                log::warn!("{e}");
            }
            inner.table().end_dial(sid, Some(e));
        }
    }
}

fn dial(inner: &Inner, sid: i64, addrs: &[HostPort]) -> Result<PeerStream, String> {
    let settings = inner.settings();
    let mut last = String::new();
    for a in addrs {
        if inner.is_halted() {
            return Err("shutting down".into());
        }
        let sa = match net::resolve(a) {
            Ok(sa) => sa,
            Err(e) => {
                last = format!("Cannot open channel to {sid} at election address {a}: cannot resolve: {e}");
                continue;
            }
        };
        log::debug!("Opening channel to server {sid} at {a}");
        let sent = PeerStream::connect(sa, &a.host, settings.cnx_timeout, settings.socket(), &settings.security)
            .and_then(|s| (&s).write_all(&inner.initial_message()).map(|()| s));
        match sent {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("Cannot open channel to {sid} at election address {a}: {e}"),
        }
    }
    Err(last)
}
