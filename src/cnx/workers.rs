//! `SendWorker` / `RecvWorker`: the two threads of one live connection, sharing one
//! [`PeerConnection`].

use super::manager::{Inner, Message};
use super::table::SendQueue;
use crate::net::PeerStream;
use crate::wire::frame::{self, FrameError};
use std::io::BufReader;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The RecvWorker's read buffer: a notification of a 51-server ensemble is about 2 KiB (it carries
/// the configuration).
const RECV_BUFFER: usize = 8 * 1024;

/// One live connection to a peer: what the peer table holds while it is up.
pub struct PeerConnection {
    sid: i64,
    stream: PeerStream,
    running: AtomicBool,
    queue: Arc<SendQueue>,
    started: Instant,
}

impl PeerConnection {
    pub fn new(sid: i64, stream: PeerStream, queue: Arc<SendQueue>) -> PeerConnection {
        PeerConnection { sid, stream, running: AtomicBool::new(true), queue, started: Instant::now() }
    }

    pub fn sid(&self) -> i64 {
        self.sid
    }

    /// The negotiated TLS protocol and suite, `None` for plaintext.
    pub fn tls(&self) -> Option<String> {
        self.stream.tls_info().map(ToString::to_string)
    }

    /// How long this connection has been up.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Stops both threads of this connection (idempotent; `SendWorker.finish` without the map
    /// removal, so it may run under the table lock).
    pub fn stop(&self, my_sid: i64) {
        if !self.running.swap(false, Ordering::AcqRel) {
            return;
        }
        // Unblocks the RecvWorker's read and any pending write.
        self.stream.shutdown();
        self.queue.wake_all();
        log::warn!("Send worker leaving thread id {} my id = {my_sid}", self.sid);
    }
}

/// Starts `RecvWorker:<sid>` and `SendWorker:<sid>` for a registered connection.
pub fn spawn_pair(inner: &Arc<Inner>, conn: &Arc<PeerConnection>) -> std::io::Result<()> {
    let recv = {
        let (inner, conn) = (Arc::clone(inner), Arc::clone(conn));
        move || recv_loop(&inner, &conn)
    };
    inner.threads().spawn(format!("RecvWorker:{}", conn.sid), recv)?;
    let send = {
        let (inner, conn) = (Arc::clone(inner), Arc::clone(conn));
        move || send_loop(&inner, &conn)
    };
    inner.threads().spawn(format!("SendWorker:{}", conn.sid), send)
}

/// `SendWorker.finish()`: stop, leave the table, and re-dial a peer whose connection broke.
fn finish(inner: &Arc<Inner>, conn: &Arc<PeerConnection>) {
    // Still running here means the connection failed rather than being stopped.
    let broken = conn.is_running() && !inner.is_halted();
    conn.stop(inner.my_sid());
    if inner.table().ended(conn, broken) {
        inner.connect_one(conn.sid);
    }
}

fn send_loop(inner: &Arc<Inner>, conn: &Arc<PeerConnection>) {
    let sid = conn.sid;
    // Re-send the last message on every new connection: the peer may never have got it, and
    // duplicates are harmless to the election.
    if conn.queue.is_empty()
        && let Some(m) = inner.table().last_message_sent(sid)
    {
        log::debug!("Attempting to send lastMessage to sid={sid}");
        if !write(inner, conn, &m) {
            finish(inner, conn);
            return;
        }
    }
    while let Some(m) = conn.queue.take_while_running(&conn.running) {
        inner.table().set_last_message_sent(sid, Arc::clone(&m));
        if !write(inner, conn, &m) {
            break;
        }
    }
    finish(inner, conn);
}

fn write(inner: &Inner, conn: &PeerConnection, m: &[u8]) -> bool {
    match frame::write_frame(&mut &conn.stream, m) {
        Ok(()) => {
            inner.count_sent();
            true
        }
        Err(e) => {
            if conn.is_running() {
                log::warn!("Exception when using channel: for id {} my id = {} error = {e}", conn.sid, inner.my_sid());
            }
            false
        }
    }
}

fn recv_loop(inner: &Arc<Inner>, conn: &Arc<PeerConnection>) {
    let (sid, my) = (conn.sid, inner.my_sid());
    // One read usually brings a whole frame (length and payload), or several: a read per frame
    // instead of two.
    let mut input = BufReader::with_capacity(RECV_BUFFER, &conn.stream);
    loop {
        match frame::read_frame(&mut input) {
            Ok(buffer) => inner.deliver(Message { sid, buffer }),
            Err(e) => {
                if conn.is_running() {
                    match e {
                        FrameError::InvalidLength(_) => {
                            log::warn!("Connection broken for id {sid}, my id = {my}: {e}, closing the connection")
                        }
                        FrameError::Io(e) => log::warn!("Connection broken for id {sid}, my id = {my}, error = {e}"),
                    }
                    log::warn!("Interrupting SendWorker thread from RecvWorker. sid: {sid}. myId: {my}");
                }
                break;
            }
        }
    }
    finish(inner, conn);
}
