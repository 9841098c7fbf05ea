//! Named, owned threads: every thread a component starts is spawned through a [`ThreadGroup`]
//! and joined when the component halts, so nothing outlives its owner.

use parking_lot::Mutex;
use std::thread::JoinHandle;

#[derive(Default)]
pub struct ThreadGroup {
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl ThreadGroup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns a thread with a ZooKeeper-style name. Finished threads are reaped on the way.
    pub fn spawn<F>(&self, name: String, f: F) -> std::io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        let handle = std::thread::Builder::new().name(name).spawn(f)?;
        let mut hs = self.handles.lock();
        let (done, live): (Vec<_>, Vec<_>) = hs.drain(..).partition(|h| h.is_finished());
        *hs = live;
        hs.push(handle);
        drop(hs);
        for h in done {
            let _ = h.join();
        }
        Ok(())
    }

    /// Joins every thread, including threads spawned by threads being joined. The caller must
    /// already have told them to stop.
    pub fn join_all(&self) {
        loop {
            let batch: Vec<_> = self.handles.lock().drain(..).collect();
            if batch.is_empty() {
                return;
            }
            let me = std::thread::current().id();
            for h in batch {
                // A thread may halt its own owner (e.g. on a fatal error); it cannot join itself.
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
