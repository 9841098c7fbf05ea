//! `connectionExecutor`: the bounded pools of named threads that dial (`QuorumConnectionReqThread`)
//! and read the handshakes of accepted connections (`QuorumConnectionReceiverThread`), so that a
//! black-holed peer only ever holds its own dial (ZK-822/2930/3756) and a silent client only its
//! own handshake (ZK-3296). ZooKeeper runs both on one pool; here each has its own, so that silent
//! clients cannot hold up the dials.

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

/// A pool that starts threads on demand up to `max` and lets idle ones exit after `keep_alive`
/// (`ThreadPoolExecutor` with `allowCoreThreadTimeOut`). A burst of work (a launch dials and
/// accepts every peer within a second) reuses its threads; once the node settles they go away, and
/// the next job starts a thread again, which costs tens of microseconds. Its threads end when
/// the transport's shutdown is requested (after the job in hand).
pub struct Pool {
    /// Thread names are `<name>-[myid=<sid>]-<n>`.
    name: &'static str,
    my_sid: i64,
    max: usize,
    keep_alive: Duration,
    shutdown: Shutdown,
    tx: Sender<Job>,
    rx: Receiver<Job>,
    state: Arc<Mutex<PoolState>>,
}

/// A job counts as queued from `submit` until a thread has taken it and marked itself busy; a
/// thread that took a job from the channel but has not yet taken the lock is thus still free and
/// its job still queued, so a job submitted meanwhile starts a thread instead of waiting behind it.
#[derive(Default)]
struct PoolState {
    queued: usize,
    busy: usize,
    count: usize,
    spawned: u64,
    handles: Vec<JoinHandle<()>>,
}

impl Pool {
    pub fn new(name: &'static str, my_sid: i64, max: usize, keep_alive: Duration, shutdown: Shutdown) -> Pool {
        let (tx, rx) = crossbeam_channel::unbounded();
        let state = Arc::new(Mutex::new(PoolState::default()));
        Pool { name, my_sid, max: max.max(1), keep_alive, shutdown, tx, rx, state }
    }

    /// Queues a job; starts a thread when none is idle and the pool is below its size. Jobs beyond
    /// the size wait their turn. False (and the job dropped) once the shutdown was requested.
    pub fn submit(&self, job: Job) -> bool {
        let mut pool = self.state.lock();
        if self.shutdown.is_requested() || self.tx.send(job).is_err() {
            return false;
        }
        pool.queued += 1;
        if pool.queued <= pool.count - pool.busy || pool.count >= self.max {
            return true;
        }
        pool.spawned += 1;
        let name = format!("{}-[myid={}]-{}", self.name, self.my_sid, pool.spawned);
        let (rx, state, ka, stop) = (self.rx.clone(), Arc::clone(&self.state), self.keep_alive, self.shutdown.clone());
        match spawn_named(name, move || pool_loop(&rx, &state, ka, &stop)) {
            Ok(h) => {
                pool.count += 1;
                // Threads that left after their keep-alive are joined, not just forgotten: a thread
                // whose function returned may still be exiting.
                let (done, live): (Vec<_>, Vec<_>) = pool.handles.drain(..).partition(|h| h.is_finished());
                pool.handles = live;
                pool.handles.push(h);
                drop(pool);
                for h in done {
                    let _ = h.join();
                }
                true
            }
            Err(e) => {
                // The job waits for the next thread this pool manages to start.
                log::error!("Cannot start a {} thread: {e}", self.name);
                true
            }
        }
    }

    /// Joins the pool's threads; the shutdown must have been requested.
    pub fn join(&self) {
        let handles: Vec<_> = self.state.lock().handles.drain(..).collect();
        for h in handles {
            let _ = h.join();
        }
    }

    pub fn thread_count(&self) -> usize {
        self.state.lock().handles.iter().filter(|h| !h.is_finished()).count()
    }
}

fn pool_loop(rx: &Receiver<Job>, pool: &Mutex<PoolState>, keep_alive: Duration, shutdown: &Shutdown) {
    loop {
        let job = select! {
            recv(rx) -> job => job.ok(),
            recv(shutdown.receiver()) -> _ => None,
            default(keep_alive) => None,
        };
        let mut p = pool.lock();
        match job {
            Some(job) => {
                p.queued -= 1;
                p.busy += 1;
                drop(p);
                job();
                pool.lock().busy -= 1;
            }
            // Exit only if nothing slipped in between the timeout and taking the lock.
            None if shutdown.is_requested() || p.queued == 0 => {
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
    // The peer may have dialled us while this waited for a thread. Dialling now would cost both
    // sides a connection that loses the tie-break, or replaces a fresh one.
    if inner.table().is_connected(sid) {
        log::debug!("Connected to server {sid} meanwhile; not dialling it");
        inner.table().end_dial(sid, None);
        return;
    }
    match dial(inner, sid, addrs) {
        Ok(stream) => {
            inner.dialled(sid, stream);
            inner.table().end_dial(sid, None);
        }
        Err(e) => {
            let quiet = inner.is_halted();
            // Ended before the log line is written: under load a thread can wait long between the two.
            let again = inner.table().end_dial(sid, Some(e.clone()));
            if !quiet {
                log::warn!("{e}");
            }
            if again {
                inner.connect_one(sid);
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    fn wait_until(what: &str, f: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Jobs that each wait for a release, counting how many started and finished.
    struct Blocked {
        release: crossbeam_channel::Sender<()>,
        started: Arc<AtomicUsize>,
        finished: Arc<AtomicUsize>,
    }

    impl Blocked {
        fn submit(pool: &Pool, n: usize) -> Blocked {
            let (release, rx) = crossbeam_channel::unbounded::<()>();
            let (started, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            for _ in 0..n {
                let (rx, s, f) = (rx.clone(), Arc::clone(&started), Arc::clone(&finished));
                pool.submit(Box::new(move || {
                    s.fetch_add(1, Ordering::SeqCst);
                    let _ = rx.recv();
                    f.fetch_add(1, Ordering::SeqCst);
                }));
            }
            Blocked { release, started, finished }
        }

        fn release(&self, n: usize) {
            for _ in 0..n {
                self.release.send(()).expect("release");
            }
        }
    }

    /// Jobs one after another run on one thread, which exits once idle for the keep-alive; the
    /// next job starts a thread again.
    #[test]
    fn idle_threads_are_reused_then_released() {
        let shutdown = Shutdown::new();
        let pool = Pool::new("TestPoolThread", 1, 4, Duration::from_millis(100), shutdown.clone());
        let done = Arc::new(AtomicUsize::new(0));
        for i in 1..=20 {
            let d = Arc::clone(&done);
            assert!(pool.submit(Box::new(move || {
                d.fetch_add(1, Ordering::SeqCst);
            })));
            wait_until("the job ran", || done.load(Ordering::SeqCst) == i);
        }
        assert_eq!(pool.state.lock().spawned, 1, "one thread ran every job");
        wait_until("the idle thread exited", || pool.thread_count() == 0);
        let d = Arc::clone(&done);
        assert!(pool.submit(Box::new(move || {
            d.fetch_add(1, Ordering::SeqCst);
        })));
        wait_until("the job ran", || done.load(Ordering::SeqCst) == 21);
        assert_eq!(pool.state.lock().spawned, 2);
        shutdown.request();
        pool.join();
        assert_eq!(pool.thread_count(), 0);
        assert!(!pool.submit(Box::new(|| {})), "no job is taken after the shutdown");
    }

    /// Jobs submitted in a burst each get a thread of their own up to `max`: none waits behind a
    /// long job while the pool could start another thread (a silent client must not hold up a
    /// peer's handshake). Repeated because a thread that has just taken a job is the narrow case.
    #[test]
    fn a_burst_of_long_jobs_runs_at_once() {
        for _ in 0..200 {
            let shutdown = Shutdown::new();
            let pool = Pool::new("TestPoolThread", 1, 4, Duration::from_secs(10), shutdown.clone());
            let jobs = Blocked::submit(&pool, 4);
            wait_until("four jobs run at once", || jobs.started.load(Ordering::SeqCst) == 4);
            jobs.release(4);
            shutdown.request();
            pool.join();
        }
    }

    /// Blocked jobs hold at most `max` threads; the rest wait for one.
    #[test]
    fn at_most_max_threads() {
        let shutdown = Shutdown::new();
        let pool = Pool::new("TestPoolThread", 1, 3, Duration::from_secs(10), shutdown.clone());
        let jobs = Blocked::submit(&pool, 6);
        wait_until("three threads run", || pool.thread_count() == 3);
        jobs.release(6);
        wait_until("every job ran", || jobs.finished.load(Ordering::SeqCst) == 6);
        assert_eq!(pool.state.lock().spawned, 3);
        shutdown.request();
        pool.join();
    }
}
