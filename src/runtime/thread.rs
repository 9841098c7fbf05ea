//! Named, owned threads (`ZooKeeperThread`): every thread is spawned through [`spawn_named`] with a
//! ZooKeeper-style name, and every component keeps the handles of its threads in a
//! [`ThreadGroup`] that it joins when it stops, so nothing outlives its owner.
//!
//! A thread also inherits its spawner's *log scope*, a number that is 0 in a daemon. Tests that
//! run several nodes or transports in one process give each test its own scope and read back only
//! the log lines of threads in it.

use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

thread_local! {
    static SCOPE: Cell<u64> = const { Cell::new(0) };
}

static NEXT_SCOPE: AtomicU64 = AtomicU64::new(1);

/// The log scope of the calling thread (0 unless a test entered one).
pub fn log_scope() -> u64 {
    SCOPE.with(Cell::get)
}

/// Puts the calling thread into a fresh log scope, inherited by every thread it spawns from now
/// on (and by theirs), and returns it.
pub fn enter_new_log_scope() -> u64 {
    let scope = NEXT_SCOPE.fetch_add(1, Ordering::Relaxed);
    SCOPE.with(|s| s.set(scope));
    scope
}

/// Spawns a thread with a ZooKeeper-style name (`SendWorker:3`, `QuorumPeer[myid=1]`); it inherits
/// the caller's log scope.
pub fn spawn_named<F>(name: String, f: F) -> std::io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    let scope = log_scope();
    std::thread::Builder::new().name(name).spawn(move || {
        SCOPE.with(|s| s.set(scope));
        f()
    })
}

/// The threads of one component. Finished threads are reaped as new ones are spawned.
#[derive(Default)]
pub struct ThreadGroup {
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl ThreadGroup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns a named thread into the group.
    pub fn spawn<F>(&self, name: String, f: F) -> std::io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        let handle = spawn_named(name, f)?;
        let mut handles = self.handles.lock();
        let (done, live): (Vec<_>, Vec<_>) = handles.drain(..).partition(|h| h.is_finished());
        *handles = live;
        handles.push(handle);
        drop(handles);
        for h in done {
            let _ = h.join();
        }
        Ok(())
    }

    /// Joins every thread, including threads spawned by threads being joined. The caller must
    /// already have told them to stop (see [`super::Shutdown`]).
    pub fn join_all(&self) {
        let me = std::thread::current().id();
        loop {
            let batch: Vec<_> = self.handles.lock().drain(..).collect();
            if batch.is_empty() {
                return;
            }
            for h in batch {
                // A thread may stop its own owner (e.g. after a fatal error); it cannot join itself.
                if h.thread().id() != me {
                    let _ = h.join();
                }
            }
        }
    }

    /// Threads not yet reaped (live, or finished since the last spawn).
    pub fn len(&self) -> usize {
        self.handles.lock().iter().filter(|h| !h.is_finished()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_threads_inherit_the_log_scope() {
        let scope = enter_new_log_scope();
        let group = ThreadGroup::new();
        let (tx, rx) = crossbeam_channel::bounded(2);
        let tx2 = tx.clone();
        group
            .spawn("outer".into(), move || {
                let inner = spawn_named("inner".into(), move || {
                    let _ = tx2.send(log_scope());
                });
                let _ = tx.send(log_scope());
                if let Ok(h) = inner {
                    let _ = h.join();
                }
            })
            .expect("spawn");
        group.join_all();
        assert_eq!(rx.iter().take(2).collect::<Vec<_>>(), vec![scope, scope]);
        assert!(group.is_empty());
    }
}
