//! `CircularBlockingQueue`: a bounded queue that drops the **oldest** element when full, so a
//! producer never blocks (used for `queueSendMap` with capacity 1 and `recvQueue` with 100; the
//! latter drops a superseded frame first, see [`CircularBlockingQueue::offer_superseding`]).

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct CircularBlockingQueue<T> {
    state: Mutex<State<T>>,
    cond: Condvar,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    /// Threads blocked in a wait (for tests that must know a waiter is parked).
    waiting: usize,
}

impl<T> CircularBlockingQueue<T> {
    pub fn new(capacity: usize) -> Self {
        CircularBlockingQueue {
            state: Mutex::new(State { items: VecDeque::with_capacity(capacity), closed: false, waiting: 0 }),
            cond: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    /// Inserts, discarding the oldest element when full. Returns whether one was discarded.
    pub fn offer(&self, item: T) -> bool {
        let mut s = self.state.lock();
        let dropped = if s.items.len() >= self.capacity {
            s.items.pop_front();
            log::debug!("Queue is full. Discarding oldest element");
            true
        } else {
            false
        };
        s.items.push_back(item);
        drop(s);
        self.cond.notify_one();
        dropped
    }

    /// Inserts; when full, discards instead of the oldest element the oldest one that a newer
    /// element with the same key supersedes: first one of `item`'s key, then one of any key that
    /// is queued again later. Only when every queued key is unique does the oldest go. Returns
    /// whether one was discarded.
    pub fn offer_superseding<K: PartialEq>(&self, item: T, key: impl Fn(&T) -> K) -> bool {
        let mut s = self.state.lock();
        let dropped = s.items.len() >= self.capacity;
        if dropped {
            let k = key(&item);
            let superseded = s.items.iter().position(|x| key(x) == k).or_else(|| {
                let keys: Vec<K> = s.items.iter().map(&key).collect();
                (0..keys.len()).find(|i| keys[i + 1..].contains(&keys[*i]))
            });
            s.items.remove(superseded.unwrap_or(0));
            match superseded {
                Some(_) => log::debug!("Queue is full. Discarding an element a newer one supersedes"),
                None => log::debug!("Queue is full. Discarding oldest element"),
            }
        }
        s.items.push_back(item);
        drop(s);
        self.cond.notify_one();
        dropped
    }

    /// Waits up to `timeout` for an element; `None` on timeout or once closed and empty.
    pub fn poll(&self, timeout: Duration) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.lock();
        loop {
            if let Some(x) = s.items.pop_front() {
                return Some(x);
            }
            if s.closed || self.cond.wait_until(&mut s, deadline).timed_out() {
                return s.items.pop_front();
            }
        }
    }

    /// Waits for an element; `None` once closed (and empty).
    pub fn take(&self) -> Option<T> {
        let mut s = self.state.lock();
        loop {
            if let Some(x) = s.items.pop_front() {
                return Some(x);
            }
            if s.closed {
                return None;
            }
            s.waiting += 1;
            self.cond.wait(&mut s);
            s.waiting -= 1;
        }
    }

    /// Waits for an element until `running` turns false (then [`wake_all`](Self::wake_all) must be
    /// called) or the queue is closed.
    pub fn take_while_running(&self, running: &AtomicBool) -> Option<T> {
        let mut s = self.state.lock();
        loop {
            if !running.load(Ordering::Acquire) || s.closed {
                return None;
            }
            if let Some(x) = s.items.pop_front() {
                return Some(x);
            }
            s.waiting += 1;
            self.cond.wait(&mut s);
            s.waiting -= 1;
        }
    }

    /// Wakes every waiter so it re-checks its stop condition. Taking the lock first means a waiter
    /// that checked its flag before the caller set it is already waiting and gets the wake-up.
    pub fn wake_all(&self) {
        let _s = self.state.lock();
        self.cond.notify_all();
    }

    /// Makes every current and future wait return at once.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.cond.notify_all();
    }

    pub fn is_empty(&self) -> bool {
        self.state.lock().items.is_empty()
    }

    pub fn clear(&self) {
        self.state.lock().items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_oldest() {
        let q = CircularBlockingQueue::new(2);
        assert!(!q.offer(1));
        assert!(!q.offer(2));
        assert!(q.offer(3));
        assert_eq!(q.poll(Duration::ZERO), Some(2));
        assert_eq!(q.poll(Duration::ZERO), Some(3));
        assert_eq!(q.poll(Duration::from_millis(5)), None);
    }

    /// When full, a newer element of the same key replaces the oldest of its key; failing that, an
    /// element a later one of its key supersedes goes; only when all keys differ does the oldest.
    #[test]
    fn a_full_queue_discards_superseded_elements_first() {
        let key = |x: &(char, u8)| x.0;
        let q = CircularBlockingQueue::new(3);
        for x in [('a', 1), ('b', 1), ('c', 1)] {
            assert!(!q.offer_superseding(x, key));
        }
        // b's newer element replaces b's older one, wherever it is.
        assert!(q.offer_superseding(('b', 2), key));
        // d is new: a, c and b are unique, so the oldest (a) goes.
        assert!(q.offer_superseding(('d', 1), key));
        // e is new; c is unique, b unique, d unique: the oldest (c) goes.
        assert!(q.offer_superseding(('e', 1), key));
        let all: Vec<_> = std::iter::from_fn(|| q.poll(Duration::ZERO)).collect();
        assert_eq!(all, [('b', 2), ('d', 1), ('e', 1)]);
        // With a key queued twice, a newcomer of a third key takes the place of the older of the two.
        let q = CircularBlockingQueue::new(3);
        for x in [('x', 1), ('y', 1), ('x', 2)] {
            assert!(!q.offer_superseding(x, key));
        }
        assert!(q.offer_superseding(('z', 1), key));
        let all: Vec<_> = std::iter::from_fn(|| q.poll(Duration::ZERO)).collect();
        assert_eq!(all, [('y', 1), ('x', 2), ('z', 1)]);
    }

    /// Waits until a thread is parked in a wait on `q`.
    fn parked<T>(q: &CircularBlockingQueue<T>) {
        let end = Instant::now() + Duration::from_secs(10);
        while q.state.lock().waiting == 0 {
            assert!(Instant::now() < end, "the waiter never parked");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn stop_wakes_a_parked_waiter() {
        let q = std::sync::Arc::new(CircularBlockingQueue::<u8>::new(1));
        let running = std::sync::Arc::new(AtomicBool::new(true));
        let (q2, r2) = (q.clone(), running.clone());
        let t = std::thread::spawn(move || q2.take_while_running(&r2));
        parked(&q);
        running.store(false, Ordering::Release);
        q.wake_all();
        assert_eq!(t.join().unwrap(), None);
    }

    #[test]
    fn close_ends_a_parked_take() {
        let q = std::sync::Arc::new(CircularBlockingQueue::<u8>::new(1));
        let q2 = q.clone();
        let t = std::thread::spawn(move || (q2.take(), q2.take()));
        parked(&q);
        q.offer(7);
        parked(&q);
        q.close();
        assert_eq!(t.join().unwrap(), (Some(7), None));
    }
}
