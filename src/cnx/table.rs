//! The per-peer table: everything the transport knows about one peer (`senderWorkerMap`,
//! `queueSendMap`, `lastMessageSent` and `inprogressConnections` of `QuorumCnxManager`, plus
//! reachability and statistics) in one slot, behind one lock, changed only through methods that
//! keep its rules. A peer is in exactly one [`Link`] state, so a connected peer can never also be
//! marked down.
//!
//! Lock order: the table lock, then a send queue's lock (stopping a replaced connection wakes its
//! queue). The transport's event callbacks run under the table lock, so they see transitions in
//! order; they must not block or call back into the transport.

use super::queue::CircularBlockingQueue;
use super::tie_break::{self, Existing, OnAccepted, OnBroken};
use super::workers::PeerConnection;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Capacity of each `queueSendMap` queue.
pub const SEND_CAPACITY: usize = 1;

/// How long after a failed dial a queued message does not dial the peer again. A server that comes
/// up dials every voter itself (its first notifications), and a smaller one's dial makes us dial
/// back at once; so re-dialling with every notification for a server that is not up yet only
/// costs: in a 51-node launch, about 90 refused dials per node while the others start. The
/// election's notification timeout (`connectAll`) and every other dial are not held back.
pub const QUIET_AFTER_FAILED_DIAL: Duration = Duration::from_secs(1);

/// One peer's outgoing queue.
pub type SendQueue = CircularBlockingQueue<Arc<[u8]>>;

/// The state of our link to one peer.
#[derive(Default)]
enum Link {
    /// Never connected, or the last connection ended without doubt about the peer.
    #[default]
    Idle,
    Connected(Arc<PeerConnection>),
    /// The connection broke; a re-dial tells a dead peer from tie-break churn.
    Suspect,
    /// The re-dial failed: unreachable until it connects again.
    Down,
}

#[derive(Default)]
struct PeerSlot {
    link: Link,
    /// Created by the first message for the peer (`connectAll` dials every peer that has one).
    queue: Option<Arc<SendQueue>>,
    last_message_sent: Option<Arc<[u8]>>,
    /// A dial is in flight (`inprogressConnections`): at most one per peer.
    dialing: bool,
    /// The peer dialled us to be called back while our own dial was in flight: should that one
    /// fail (it may have started before the peer listened), dial again. Otherwise the request,
    /// skipped as "already in progress", is lost (seen in 51-node launches: a pair of nodes that
    /// did not connect until the next election, and a node waiting finalizeWait for the other).
    redial: bool,
    /// When the last dial failed, unless a connection came up since.
    dial_failed_at: Option<Instant>,
    connections: u64,
    last_connect_error: Option<(String, SystemTime)>,
}

impl PeerSlot {
    fn connection(&self) -> Option<&Arc<PeerConnection>> {
        match &self.link {
            Link::Connected(c) => Some(c),
            _ => None,
        }
    }
}

/// What the transport knows about one configured peer (for `elec` and the metrics).
#[derive(Debug, Clone, Default)]
pub struct PeerCnxStatus {
    pub connected: bool,
    /// The live connection's TLS protocol and suite (`None`: plaintext or not connected).
    pub tls: Option<String>,
    pub last_connect_error: Option<String>,
    pub last_connect_error_at: Option<SystemTime>,
    pub connections: u64,
}

/// The transport's callbacks into the node, given at construction. They run on transport
/// threads under the table lock: they must not block (a channel send is fine).
pub struct CnxEvents {
    /// A connection to the peer came up.
    pub peer_connected: Box<dyn Fn(i64) + Send + Sync>,
    /// A connection to the peer broke (not on our request); whether the peer is down is told by
    /// the re-dial, if any.
    pub peer_disconnected: Box<dyn Fn(i64) + Send + Sync>,
    /// A peer we were connected to could not be re-dialled.
    pub peer_down: Box<dyn Fn(i64) + Send + Sync>,
    /// Every election listener gave up binding: the node cannot take part in elections any more.
    pub listener_failed: Box<dyn Fn() + Send + Sync>,
}

impl Default for CnxEvents {
    fn default() -> Self {
        CnxEvents {
            peer_connected: Box::new(|_| {}),
            peer_disconnected: Box::new(|_| {}),
            peer_down: Box::new(|_| {}),
            listener_failed: Box::new(|| {}),
        }
    }
}

/// Why [`PeerTable::begin_dial`] refused a dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoDial {
    Connected,
    InProgress,
    /// The last dial failed this long ago.
    FailedJustNow(Duration),
}

/// The decision for a connection accepted from `sid`, taken under the table lock.
pub enum Accepted {
    Refused(OnAccepted),
    /// Register it (from a larger sid).
    Keep,
    /// Closed; our connection (if any) was taken out and must be stopped, then `sid` dialled.
    DialBack(Option<Arc<PeerConnection>>),
    /// Closed; our fresh dial-back stays.
    KeepOurs(Duration),
}

pub struct PeerTable {
    my_sid: i64,
    events: CnxEvents,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    peers: HashMap<i64, PeerSlot>,
    /// Set by [`PeerTable::close`] (halt): no connection is registered after it.
    closed: bool,
}

impl std::ops::Deref for Slots {
    type Target = HashMap<i64, PeerSlot>;
    fn deref(&self) -> &Self::Target {
        &self.peers
    }
}

impl std::ops::DerefMut for Slots {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.peers
    }
}

impl PeerTable {
    pub fn new(my_sid: i64, events: CnxEvents) -> PeerTable {
        PeerTable { my_sid, events, slots: Mutex::new(Slots::default()) }
    }

    pub fn listener_failed(&self) {
        (self.events.listener_failed)();
    }

    /// The peer's send queue, created on first use.
    pub fn send_queue(&self, sid: i64) -> Arc<SendQueue> {
        let mut slots = self.slots.lock();
        let slot = slots.entry(sid).or_default();
        Arc::clone(slot.queue.get_or_insert_with(|| Arc::new(CircularBlockingQueue::new(SEND_CAPACITY))))
    }

    /// Every peer that has a send queue (`connectAll`).
    pub fn sids_with_queue(&self) -> Vec<i64> {
        self.slots.lock().iter().filter(|(_, s)| s.queue.is_some()).map(|(sid, _)| *sid).collect()
    }

    /// `haveDelivered`: at least one send queue is empty (false without queues).
    pub fn any_queue_empty(&self) -> bool {
        self.slots.lock().values().filter_map(|s| s.queue.as_ref()).any(|q| q.is_empty())
    }

    /// Every send queue (to wake their workers on halt).
    pub fn queues(&self) -> Vec<Arc<SendQueue>> {
        self.slots.lock().values().filter_map(|s| s.queue.clone()).collect()
    }

    pub fn last_message_sent(&self, sid: i64) -> Option<Arc<[u8]>> {
        self.slots.lock().get(&sid).and_then(|s| s.last_message_sent.clone())
    }

    pub fn set_last_message_sent(&self, sid: i64, m: Arc<[u8]>) {
        self.slots.lock().entry(sid).or_default().last_message_sent = Some(m);
    }

    pub fn is_connected(&self, sid: i64) -> bool {
        self.slots.lock().get(&sid).is_some_and(|s| s.connection().is_some())
    }

    /// Sorted sids of the peers we are connected to.
    pub fn connected_sids(&self) -> Vec<i64> {
        self.sids_where(|s| s.connection().is_some())
    }

    /// Sorted sids of the peers known to be unreachable right now.
    pub fn down_sids(&self) -> Vec<i64> {
        self.sids_where(|s| matches!(s.link, Link::Down))
    }

    fn sids_where(&self, f: impl Fn(&PeerSlot) -> bool) -> Vec<i64> {
        let mut v: Vec<i64> = self.slots.lock().iter().filter(|(_, s)| f(s)).map(|(sid, _)| *sid).collect();
        v.sort_unstable();
        v
    }

    /// `connectOne`'s check: the dial is ours to run unless connected or a dial is in flight, or,
    /// for a dial because a message was queued (`after_send`), the last dial failed less than
    /// [`QUIET_AFTER_FAILED_DIAL`] ago.
    pub fn begin_dial(&self, sid: i64, after_send: bool) -> Result<(), NoDial> {
        let mut slots = self.slots.lock();
        let slot = slots.entry(sid).or_default();
        if slot.connection().is_some() {
            return Err(NoDial::Connected);
        }
        if slot.dialing {
            return Err(NoDial::InProgress);
        }
        if let Some(t) = slot.dial_failed_at.filter(|t| after_send && t.elapsed() < QUIET_AFTER_FAILED_DIAL) {
            return Err(NoDial::FailedJustNow(t.elapsed()));
        }
        slot.dialing = true;
        Ok(())
    }

    /// The dial started by [`begin_dial`](Self::begin_dial) ended. A peer we were connected to
    /// that cannot be reached now is down (a suspect one, whose connection just broke, or one whose
    /// fresh connection broke and was left to it); one that answered is not. A peer that was never
    /// connected is not down: at start-up every peer deserves the full finalizeWait. True when the
    /// dial failed while another was asked for: the caller must dial again (`connectOne`).
    pub fn end_dial(&self, sid: i64, error: Option<String>) -> bool {
        let mut slots = self.slots.lock();
        let slot = slots.entry(sid).or_default();
        slot.dialing = false;
        let failed = error.is_some();
        let again = std::mem::take(&mut slot.redial) && failed && slot.connection().is_none();
        if let Some(e) = error {
            slot.last_connect_error = Some((e, SystemTime::now()));
            // Only while no connection came up meanwhile (the peer dialled us).
            if slot.connection().is_none() {
                slot.dial_failed_at = Some(Instant::now());
            }
        }
        let known = matches!(slot.link, Link::Suspect) || (matches!(slot.link, Link::Idle) && slot.connections > 0);
        if again {
            // The peer dialled us meanwhile, so it is there: not down, try once more.
            log::debug!("Dial to peer {sid} failed while it asked to be called back: dialling again");
        } else if known && failed {
            log::debug!("Dial to peer {sid}, connected before, failed: it is down");
            slot.link = Link::Down;
            (self.events.peer_down)(sid);
        } else if matches!(slot.link, Link::Suspect) {
            log::debug!("Dial to suspect peer {sid} answered");
            slot.link = Link::Idle;
        }
        again
    }

    /// `sid` dialled us to be called back (the tie-break). A dial to it already in flight is run
    /// again should it fail; without one, the caller's `connectOne` starts it.
    pub fn call_back_requested(&self, sid: i64) {
        if let Some(slot) = self.slots.lock().get_mut(&sid).filter(|s| s.dialing) {
            slot.redial = true;
        }
    }

    /// Registers a live connection to `sid`, replacing (and stopping) an older one. False once the
    /// table is closed: the connection is not registered and must be dropped.
    pub fn register(&self, sid: i64, conn: Arc<PeerConnection>) -> bool {
        let mut slots = self.slots.lock();
        if slots.closed {
            return false;
        }
        let slot = slots.entry(sid).or_default();
        if let Link::Connected(old) = std::mem::replace(&mut slot.link, Link::Connected(conn)) {
            log::debug!("There is a connection already for server {sid}, replacing it");
            old.stop(self.my_sid);
        }
        slot.connections += 1;
        slot.last_connect_error = None;
        slot.dial_failed_at = None;
        (self.events.peer_connected)(sid);
        true
    }

    /// `handleConnection`: the tie-break for a connection accepted from `sid`.
    pub fn accepted(&self, sid: i64, configured: bool) -> Accepted {
        let mut slots = self.slots.lock();
        let existing =
            slots.get(&sid).and_then(PeerSlot::connection).map(|c| Existing { age: c.age(), running: c.is_running() });
        match tie_break::on_accepted(self.my_sid, sid, configured, existing) {
            OnAccepted::Keep => Accepted::Keep,
            OnAccepted::KeepOurs => Accepted::KeepOurs(existing.map(|e| e.age).unwrap_or_default()),
            OnAccepted::DialBack => {
                let slot = slots.entry(sid).or_default();
                let old = match std::mem::take(&mut slot.link) {
                    Link::Connected(c) => Some(c),
                    other => {
                        slot.link = other;
                        None
                    }
                };
                Accepted::DialBack(old)
            }
            refused => Accepted::Refused(refused),
        }
    }

    /// A connection's workers are ending (`SendWorker.finish`): it leaves the table if it is still
    /// the registered one. `broken` (it failed, rather than being stopped by us) decides, with the
    /// tie-break, whether the peer becomes suspect: true when the caller must re-dial it now.
    pub fn ended(&self, conn: &Arc<PeerConnection>, broken: bool) -> bool {
        let sid = conn.sid();
        let mut slots = self.slots.lock();
        let Some(slot) = slots.get_mut(&sid) else { return false };
        let current = slot.connection().is_some_and(|c| Arc::ptr_eq(c, conn));
        if current {
            slot.link = Link::Idle;
        }
        if !broken || slot.connection().is_some() {
            return false;
        }
        // Its sibling worker, woken by the stop, may have taken it out of the table just before.
        (self.events.peer_disconnected)(sid);
        match tie_break::on_broken(self.my_sid, sid, conn.age()) {
            OnBroken::LeaveToPeer => {
                log::debug!("Fresh connection to {sid} broke after {:?}; leaving the dial-back to it", conn.age());
                false
            }
            OnBroken::Redial => {
                log::debug!("Connection to {sid} broke; re-dialling it to see whether it is down");
                if !matches!(slot.link, Link::Down) {
                    slot.link = Link::Suspect;
                }
                true
            }
        }
    }

    /// Takes every connection out of the table (`softHalt`), to be stopped by the caller.
    pub fn take_connections(&self) -> Vec<Arc<PeerConnection>> {
        take_connections(&mut self.slots.lock())
    }

    /// Closes the table (halt): takes every connection out, and no new one is registered.
    pub fn close(&self) -> Vec<Arc<PeerConnection>> {
        let mut slots = self.slots.lock();
        slots.closed = true;
        take_connections(&mut slots)
    }

    pub fn status(&self) -> HashMap<i64, PeerCnxStatus> {
        self.slots
            .lock()
            .iter()
            .map(|(sid, s)| {
                let (error, at) = s.last_connect_error.clone().map_or((None, None), |(e, t)| (Some(e), Some(t)));
                let st = PeerCnxStatus {
                    connected: s.connection().is_some(),
                    tls: s.connection().and_then(|c| c.tls()),
                    last_connect_error: error,
                    last_connect_error_at: at,
                    connections: s.connections,
                };
                (*sid, st)
            })
            .collect()
    }
}

fn take_connections(slots: &mut Slots) -> Vec<Arc<PeerConnection>> {
    slots
        .values_mut()
        .filter_map(|s| match std::mem::take(&mut s.link) {
            Link::Connected(c) => Some(c),
            other => {
                s.link = other;
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{PeerStream, Security, SocketOptions};
    use std::net::{SocketAddr, TcpListener};
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A real connection (to `l`, accepted and dropped at once), as peer `sid`'s.
    fn connection(sid: i64, l: &TcpListener, table: &PeerTable) -> Arc<PeerConnection> {
        let opts = SocketOptions { keep_alive: false, timeout: Duration::from_secs(5) };
        let addr: SocketAddr = l.local_addr().expect("addr");
        let stream = PeerStream::connect(addr, "127.0.0.1", Duration::from_secs(5), opts, &Security::plaintext())
            .expect("connect");
        drop(l.accept().expect("accept"));
        Arc::new(PeerConnection::new(sid, stream, table.send_queue(sid)))
    }

    fn listener() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").expect("bind")
    }

    /// Counts the events the table fires.
    fn counting() -> (CnxEvents, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (up, down) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (u, d) = (Arc::clone(&up), Arc::clone(&down));
        let events = CnxEvents {
            peer_connected: Box::new(move |_| {
                u.fetch_add(1, Ordering::SeqCst);
            }),
            peer_disconnected: Box::new(|_| {}),
            peer_down: Box::new(move |_| {
                d.fetch_add(1, Ordering::SeqCst);
            }),
            listener_failed: Box::new(|| {}),
        };
        (events, up, down)
    }

    /// Peer 2 (smaller than us, 5) was connected and its connection broke: suspect, re-dial in flight.
    fn suspect_peer(table: &PeerTable, l: &TcpListener) {
        let old = connection(2, l, table);
        assert!(table.register(2, Arc::clone(&old)));
        old.stop(5);
        assert!(table.ended(&old, true), "a broken connection to a smaller sid is re-dialled");
        assert_eq!(table.begin_dial(2, false), Ok(()));
    }

    #[test]
    fn a_suspect_peer_that_cannot_be_redialled_is_down_until_it_connects() {
        let l = listener();
        let (events, up, down) = counting();
        let table = PeerTable::new(5, events);
        suspect_peer(&table, &l);
        table.end_dial(2, Some("refused".into()));
        assert_eq!(table.down_sids(), vec![2]);
        assert_eq!(down.load(Ordering::SeqCst), 1);
        assert!(table.register(2, connection(2, &l, &table)));
        assert_eq!((table.down_sids(), table.connected_sids()), (vec![], vec![2]));
        assert_eq!(up.load(Ordering::SeqCst), 2);
        assert!(table.status()[&2].connected);
    }

    #[test]
    fn a_failed_dial_does_not_mark_a_connected_peer_down() {
        let l = listener();
        let (events, _, down) = counting();
        let table = PeerTable::new(5, events);
        suspect_peer(&table, &l);
        // The peer dialled in (it restarted) while our re-dial was failing.
        assert!(table.register(2, connection(2, &l, &table)));
        table.end_dial(2, Some("refused".into()));
        assert_eq!((table.down_sids(), table.connected_sids()), (vec![], vec![2]));
        assert_eq!(down.load(Ordering::SeqCst), 0);
        assert!(table.status()[&2].last_connect_error.is_some());
    }

    /// The race that once left a connected peer marked down: a failed re-dial and the peer's own
    /// new connection, at once. Each
    /// decision is taken under the one table lock, so whatever the interleaving, a connected peer
    /// is never left marked down.
    #[test]
    fn a_connected_peer_is_never_left_down_whatever_the_interleaving() {
        let l = listener();
        for round in 0..300 {
            let table = Arc::new(PeerTable::new(5, CnxEvents::default()));
            suspect_peer(&table, &l);
            let fresh = connection(2, &l, &table);
            let barrier = Arc::new(Barrier::new(2));
            let dial = {
                let (table, barrier) = (Arc::clone(&table), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    table.end_dial(2, Some("refused".into()));
                })
            };
            barrier.wait();
            assert!(table.register(2, fresh));
            dial.join().expect("dial thread");
            assert!(table.is_connected(2), "round {round}");
            assert!(table.down_sids().is_empty(), "round {round}: a connected peer is marked down");
        }
    }

    /// A peer that refused a dial comes back by dialling us: until then, or for
    /// [`QUIET_AFTER_FAILED_DIAL`], a queued message does not dial it again; anything else does.
    #[test]
    fn a_failed_dial_quiets_the_dials_of_queued_messages_only() {
        let l = listener();
        let table = PeerTable::new(5, CnxEvents::default());
        assert_eq!(table.begin_dial(2, true), Ok(()));
        table.end_dial(2, Some("refused".into()));
        assert!(matches!(table.begin_dial(2, true), Err(NoDial::FailedJustNow(_))));
        assert_eq!(table.begin_dial(2, false), Ok(()));
        assert_eq!(table.begin_dial(2, false), Err(NoDial::InProgress));
        table.end_dial(2, Some("refused again".into()));
        // The peer dials us: the next queued message goes over that connection, and once it is gone
        // the next one dials at once.
        let c = connection(2, &l, &table);
        assert!(table.register(2, Arc::clone(&c)));
        assert_eq!(table.begin_dial(2, true), Err(NoDial::Connected));
        c.stop(5);
        assert!(!table.ended(&c, false));
        assert_eq!(table.begin_dial(2, true), Ok(()));
        table.end_dial(2, None);
        assert_eq!(table.begin_dial(2, true), Ok(()));
    }

    /// A peer that asks to be called back while our dial to it is in flight gets the call even
    /// when that dial fails (it started before the peer listened); it is not down, having just
    /// dialled us. Without the request a failed dial is not repeated here.
    #[test]
    fn a_call_back_asked_for_during_a_failing_dial_is_not_lost() {
        let l = listener();
        let (events, _, down) = counting();
        let table = PeerTable::new(5, events);
        assert_eq!(table.begin_dial(2, true), Ok(()));
        assert!(!table.end_dial(2, Some("refused".into())), "nobody asked: no second dial");
        assert_eq!(table.begin_dial(2, false), Ok(()));
        table.call_back_requested(2);
        assert_eq!(table.begin_dial(2, false), Err(NoDial::InProgress));
        assert!(table.end_dial(2, Some("refused".into())), "the call back is owed");
        assert_eq!(table.begin_dial(2, false), Ok(()));
        assert!(!table.end_dial(2, Some("refused".into())), "asked once, dialled again once");
        // A dial that connects pays it.
        assert_eq!(table.begin_dial(2, false), Ok(()));
        table.call_back_requested(2);
        assert!(!table.end_dial(2, None));
        // No dial in flight: nothing is owed (the caller's connectOne starts one).
        table.call_back_requested(3);
        assert_eq!(table.begin_dial(3, false), Ok(()));
        assert!(!table.end_dial(3, Some("refused".into())));
        // A suspect peer that asks to be called back during the failing re-dial is not down.
        suspect_peer(&table, &l);
        table.call_back_requested(2);
        assert!(table.end_dial(2, Some("refused".into())));
        assert_eq!(down.load(Ordering::SeqCst), 0);
        assert_eq!(table.begin_dial(2, false), Ok(()));
        assert!(!table.end_dial(2, Some("refused".into())));
        assert_eq!(down.load(Ordering::SeqCst), 1, "the second failure, unasked, says it is down");
    }

    #[test]
    fn a_closed_table_registers_nothing() {
        let l = listener();
        let table = PeerTable::new(5, CnxEvents::default());
        let c = connection(1, &l, &table);
        assert!(table.register(1, Arc::clone(&c)));
        let taken = table.close();
        assert_eq!(taken.len(), 1);
        assert!(!table.register(1, connection(1, &l, &table)));
        assert!(table.connected_sids().is_empty());
    }

    #[test]
    fn the_tie_break_decides_under_the_lock() {
        let l = listener();
        let table = PeerTable::new(5, CnxEvents::default());
        assert!(matches!(table.accepted(7, true), Accepted::Keep));
        assert!(matches!(table.accepted(5, true), Accepted::Refused(OnAccepted::RefuseOwnId)));
        assert!(matches!(table.accepted(9, false), Accepted::Refused(OnAccepted::RefuseUnknown)));
        assert!(matches!(table.accepted(3, true), Accepted::DialBack(None)));
        // Our fresh dial-back to 3 is on its way: a dial from 3 does not replace it.
        assert!(table.register(3, connection(3, &l, &table)));
        assert!(matches!(table.accepted(3, true), Accepted::KeepOurs(_)));
    }
}
