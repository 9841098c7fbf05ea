//! `SendWorker` / `RecvWorker`: the two threads of one live connection.

use super::manager::{Inner, Message};
use super::queue::CircularBlockingQueue;
use crate::wire::frame::{self, FrameError};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The registered half of a connection: what `senderWorkerMap` holds.
pub struct SendWorker {
    pub sid: i64,
    stream: TcpStream,
    running: AtomicBool,
    queue: Arc<CircularBlockingQueue<Arc<[u8]>>>,
    started: Instant,
}

impl SendWorker {
    pub fn new(sid: i64, stream: TcpStream, queue: Arc<CircularBlockingQueue<Arc<[u8]>>>) -> std::io::Result<Self> {
        Ok(SendWorker { sid, stream, running: AtomicBool::new(true), queue, started: Instant::now() })
    }

    /// How long this connection has been registered.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Stops both threads of this connection (idempotent). Does not touch `senderWorkerMap`, so it
    /// may be called while holding that lock.
    pub fn stop(&self, inner: &Inner) -> bool {
        if !self.running.swap(false, Ordering::AcqRel) {
            return false;
        }
        // Unblocks the RecvWorker's read and any pending write.
        let _ = self.stream.shutdown(Shutdown::Both);
        self.queue.wake_all();
        log::warn!("Send worker leaving thread id {} my id = {}", self.sid, inner.settings.my_sid);
        true
    }

    /// `finish()`: stop, then remove the map entry only if it still points at this worker.
    pub fn finish(self: &Arc<Self>, inner: &Inner) {
        self.stop(inner);
        let mut map = inner.sender_worker_map.lock();
        if map.get(&self.sid).is_some_and(|w| Arc::ptr_eq(w, self)) {
            map.remove(&self.sid);
        }
    }
}

pub fn spawn_pair(inner: &Arc<Inner>, w: &Arc<SendWorker>) -> std::io::Result<()> {
    let (i2, w2) = (Arc::clone(inner), Arc::clone(w));
    inner.threads.spawn(format!("RecvWorker:{}", w.sid), move || recv_loop(&i2, &w2))?;
    let (i3, w3) = (Arc::clone(inner), Arc::clone(w));
    inner.threads.spawn(format!("SendWorker:{}", w.sid), move || send_loop(&i3, &w3))
}

fn send_loop(inner: &Arc<Inner>, w: &Arc<SendWorker>) {
    let sid = w.sid;
    // Re-send the last message on every new connection: the peer may never have got it, and
    // duplicates are harmless to the election.
    if w.queue.is_empty() {
        let last = inner.last_message_sent.lock().get(&sid).cloned();
        if let Some(m) = last {
            log::debug!("Attempting to send lastMessage to sid={sid}");
            if !write(inner, w, &m) {
                w.finish(inner);
                inner.connection_broken(sid, w.age());
                return;
            }
        }
    }
    while let Some(m) = w.queue.take_while_running(&w.running) {
        inner.last_message_sent.lock().insert(sid, Arc::clone(&m));
        if !write(inner, w, &m) {
            break;
        }
    }
    // Still running here means the write failed: the peer is gone.
    let failed = w.is_running();
    w.finish(inner);
    if failed {
        inner.connection_broken(sid, w.age());
    }
}

fn write(inner: &Inner, w: &SendWorker, m: &[u8]) -> bool {
    match frame::write_frame(&mut &w.stream, m) {
        Ok(()) => {
            inner.frames_sent.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(e) => {
            if w.is_running() {
                log::warn!(
                    "Exception when using channel: for id {} my id = {} error = {e}",
                    w.sid,
                    inner.settings.my_sid
                );
            }
            false
        }
    }
}

fn recv_loop(inner: &Arc<Inner>, w: &Arc<SendWorker>) {
    let (sid, my) = (w.sid, inner.settings.my_sid);
    loop {
        match frame::read_frame(&mut &w.stream) {
            Ok(buffer) => {
                inner.frames_received.fetch_add(1, Ordering::Relaxed);
                inner.recv_queue.offer(Message { sid, buffer });
            }
            Err(e) => {
                if w.is_running() {
                    match e {
                        FrameError::InvalidLength(_) => {
                            log::warn!("Connection broken for id {sid}, my id = {my}: {e}, closing the connection")
                        }
                        FrameError::Io(e) => {
                            log::warn!("Connection broken for id {sid}, my id = {my}, error = {e}")
                        }
                    }
                    log::warn!("Interrupting SendWorker thread from RecvWorker. sid: {sid}. myId: {my}");
                    w.finish(inner);
                    inner.connection_broken(sid, w.age());
                }
                break;
            }
        }
    }
    w.finish(inner);
}
