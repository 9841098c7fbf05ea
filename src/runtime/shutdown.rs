//! One way to stop: a [`Shutdown`] is requested once; every blocking wait of the component's
//! threads watches it (`is_requested`, [`Shutdown::sleep`], or its receiver in a `select!`, which
//! disconnects at the request: Go's `close(shutdownCh)`). The acknowledgement is the component's
//! [`ThreadGroup::join_all`](super::ThreadGroup::join_all): once it returns, every thread has seen
//! the request and ended.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// A shared stop signal; clones are handles to the same signal.
#[derive(Clone)]
pub struct Shutdown(Arc<Inner>);

struct Inner {
    requested: AtomicBool,
    /// Dropped at the request, which disconnects `rx` and wakes every `select!` on it.
    tx: Mutex<Option<Sender<()>>>,
    rx: Receiver<()>,
    /// Signals requested together with this one.
    children: Mutex<Vec<Weak<Inner>>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        let (tx, rx) = crossbeam_channel::bounded(0);
        Shutdown(Arc::new(Inner {
            requested: AtomicBool::new(false),
            tx: Mutex::new(Some(tx)),
            rx,
            children: Mutex::new(Vec::new()),
        }))
    }

    /// A signal of its own that is also requested when this one is (a leadership ends on its own or
    /// with the node).
    pub fn child(&self) -> Shutdown {
        let child = Shutdown::new();
        let mut children = self.0.children.lock();
        if self.is_requested() {
            drop(children);
            child.request();
        } else {
            children.retain(|c| c.strong_count() > 0);
            children.push(Arc::downgrade(&child.0));
        }
        child
    }

    /// Requests the stop; true the first time. Idempotent.
    pub fn request(&self) -> bool {
        request(&self.0)
    }

    pub fn is_requested(&self) -> bool {
        self.0.requested.load(Ordering::Acquire)
    }

    /// Sleeps `d`; false, at once, when the stop is (or gets) requested.
    pub fn sleep(&self, d: Duration) -> bool {
        matches!(self.0.rx.recv_timeout(d), Err(RecvTimeoutError::Timeout))
    }

    /// For `select!`: this receiver never yields a message and disconnects at the request.
    pub fn receiver(&self) -> &Receiver<()> {
        &self.0.rx
    }
}

fn request(inner: &Inner) -> bool {
    // The flag is set under the children lock so that `child` cannot miss the request.
    let children = {
        let mut children = inner.children.lock();
        if inner.requested.swap(true, Ordering::AcqRel) {
            return false;
        }
        std::mem::take(&mut *children)
    };
    inner.tx.lock().take();
    for c in children.iter().filter_map(Weak::upgrade) {
        request(&c);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn request_wakes_sleepers_and_children() {
        let s = Shutdown::new();
        let child = s.child();
        assert!(s.sleep(Duration::from_millis(1)));
        let s2 = s.clone();
        let t = std::thread::spawn(move || {
            let t0 = Instant::now();
            let slept = s2.sleep(Duration::from_secs(30));
            (slept, t0.elapsed())
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(s.request());
        assert!(!s.request(), "the second request is a no-op");
        let (slept, took) = t.join().expect("sleeper");
        assert!(!slept && took < Duration::from_secs(10));
        assert!(child.is_requested());
        assert!(s.child().is_requested(), "a child of a requested signal starts requested");
        assert!(crossbeam_channel::select! { recv(child.receiver()) -> r => r.is_err(), default => false });
    }

    #[test]
    fn a_child_stops_alone() {
        let s = Shutdown::new();
        let child = s.child();
        child.request();
        assert!(!s.is_requested());
    }
}
