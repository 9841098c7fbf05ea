//! [`Watch`]: the latest value of something, with a version, that threads wait on or get nudged
//! about. Waiters see the newest value, never a queue of old ones (latest state wins).

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Condvar, Mutex};
use std::time::Instant;

pub struct Watch<T> {
    cell: Mutex<Cell<T>>,
    cond: Condvar,
}

struct Cell<T> {
    version: u64,
    value: T,
    /// Each subscriber's nudge channel holds at most one pending nudge.
    nudges: Vec<Sender<()>>,
}

impl<T: Clone> Watch<T> {
    pub fn new(value: T) -> Watch<T> {
        Watch { cell: Mutex::new(Cell { version: 0, value, nudges: Vec::new() }), cond: Condvar::new() }
    }

    /// The value and its version.
    pub fn get(&self) -> (u64, T) {
        let c = self.cell.lock();
        (c.version, c.value.clone())
    }

    pub fn set(&self, value: T) {
        self.update(|v| *v = value);
    }

    /// Changes the value in place and wakes everyone waiting.
    pub fn update(&self, f: impl FnOnce(&mut T)) {
        let mut c = self.cell.lock();
        f(&mut c.value);
        c.version += 1;
        c.nudges.retain(|tx| !matches!(tx.try_send(()), Err(TrySendError::Disconnected(_))));
        drop(c);
        self.cond.notify_all();
    }

    /// A channel that gets a message after every change (changes in between coalesce), for
    /// threads that `select!` on several things.
    pub fn subscribe(&self) -> Receiver<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.cell.lock().nudges.push(tx);
        rx
    }

    /// Waits until the version is past `seen` or `deadline` passes; returns what is there then.
    pub fn wait_newer(&self, seen: u64, deadline: Instant) -> (u64, T) {
        let mut c = self.cell.lock();
        while c.version <= seen {
            if self.cond.wait_until(&mut c, deadline).timed_out() {
                break;
            }
        }
        (c.version, c.value.clone())
    }

    /// Waits until `pred` holds or `deadline` passes; whether it holds.
    pub fn wait_for(&self, deadline: Instant, pred: impl Fn(&T) -> bool) -> bool {
        let mut c = self.cell.lock();
        loop {
            if pred(&c.value) {
                return true;
            }
            if self.cond.wait_until(&mut c, deadline).timed_out() {
                return pred(&c.value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn waiters_see_the_latest_value_and_nudges_coalesce() {
        let w = Arc::new(Watch::new(0));
        let nudged = w.subscribe();
        let (v0, _) = w.get();
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || {
            for i in 1..=5 {
                w2.set(i);
            }
        });
        assert!(w.wait_for(Instant::now() + Duration::from_secs(5), |v| *v == 5));
        t.join().unwrap();
        let (v, value) = w.wait_newer(v0, Instant::now() + Duration::from_secs(5));
        assert_eq!((v, value), (v0 + 5, 5));
        assert!(nudged.try_recv().is_ok());
        assert!(nudged.try_recv().is_err(), "five changes, one nudge");
        let (_, late) = w.wait_newer(v, Instant::now() + Duration::from_millis(10));
        assert_eq!(late, 5, "a timeout returns what is there");
        drop(nudged);
        w.set(6);
        assert_eq!(w.cell.lock().nudges.len(), 0, "a dropped subscriber is forgotten");
    }
}
