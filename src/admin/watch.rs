//! Leadership changes in order, and `GET /watch`, a Server-Sent Events stream of them.
//!
//! The [`LeadershipJournal`] records what the state-change hook is told (LOOKING, then each
//! established leadership with its leader and epoch), numbered in order. A watcher gets the
//! current state first, then every change as it happens. Each event carries an id
//! `<incarnation>-<seq>`; a client that reconnects with `Last-Event-ID` (browsers do it on their
//! own) gets every change it missed, from the journal's last [`RETAINED`] changes. When the
//! journal cannot prove that nothing was missed (the node restarted, so the incarnation differs,
//! or the id is older than what is kept), the stream starts with a `reset` event, then the current
//! state.

use super::http::{EventStream, StreamFn, iso_time};
use super::json::{Json, Obj};
use crate::snapshot::StateChange;
use crossbeam_channel::{Receiver, Sender, TrySendError, select};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Changes kept for replay.
pub const RETAINED: usize = 1024;

/// A comment line sent when nothing happened for this long: it keeps proxies from closing an
/// idle stream.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// How often an idle stream checks that its client is still there.
const CLIENT_CHECK: Duration = Duration::from_secs(1);

/// One recorded change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    pub at: SystemTime,
    pub change: StateChange,
}

pub struct LeadershipJournal {
    /// Tells this process's sequence numbers from an earlier run's: its start time in ms.
    incarnation: u64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_seq: u64,
    events: VecDeque<Event>,
    /// One wake-up channel per watcher; a full one already has a wake-up pending.
    watchers: Vec<Sender<()>>,
}

/// What a watcher is to be sent: `events` in order, after a `reset` if continuity is not proven.
#[derive(Debug, PartialEq, Eq)]
pub struct Replay {
    pub reset: bool,
    pub events: Vec<Event>,
}

impl Default for LeadershipJournal {
    fn default() -> Self {
        Self::new()
    }
}

impl LeadershipJournal {
    pub fn new() -> LeadershipJournal {
        let incarnation = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        LeadershipJournal { incarnation, inner: Mutex::new(Inner { next_seq: 1, ..Inner::default() }) }
    }

    /// Records `change` unless it repeats the latest one, and wakes the watchers. Never blocks.
    pub fn record(&self, change: StateChange) {
        let mut inner = self.inner.lock();
        if inner.events.back().is_some_and(|e| e.change == change) {
            return;
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        if inner.events.len() == RETAINED {
            inner.events.pop_front();
        }
        inner.events.push_back(Event { seq, at: SystemTime::now(), change });
        inner.watchers.retain(|w| !matches!(w.try_send(()), Err(TrySendError::Disconnected(_))));
    }

    /// The current state (the latest change), if any was recorded.
    pub fn latest(&self) -> Option<Event> {
        self.inner.lock().events.back().copied()
    }

    /// The latest `n` changes, oldest first.
    pub fn recent(&self, n: usize) -> Vec<Event> {
        let inner = self.inner.lock();
        inner.events.iter().skip(inner.events.len().saturating_sub(n)).copied().collect()
    }

    /// A channel that gets a message (at most one pending) after each change.
    pub fn subscribe(&self) -> Receiver<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.inner.lock().watchers.push(tx);
        rx
    }

    /// The id of event `seq`: `<incarnation>-<seq>`.
    pub fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.incarnation)
    }

    /// What a watcher that last saw `last_id` (an event id, or nothing for a new watcher) is sent.
    pub fn replay(&self, last_id: Option<&str>) -> Replay {
        let seen = match last_id.map(|id| self.seq_of(id)) {
            None => return Replay { reset: false, events: self.latest().into_iter().collect() },
            Some(seen) => seen,
        };
        let inner = self.inner.lock();
        let first = inner.events.front().map_or(inner.next_seq, |e| e.seq);
        match seen {
            // Every change after `seen` is still kept (`seen` may be the latest itself).
            Some(seen) if seen + 1 >= first && seen < inner.next_seq => {
                Replay { reset: false, events: inner.events.iter().filter(|e| e.seq > seen).copied().collect() }
            }
            _ => Replay { reset: true, events: inner.events.back().copied().into_iter().collect() },
        }
    }

    /// The sequence number in `id` when it is one of this incarnation's.
    fn seq_of(&self, id: &str) -> Option<u64> {
        let (incarnation, seq) = id.trim().split_once('-')?;
        (incarnation.parse::<u64>().ok()? == self.incarnation).then_some(())?;
        seq.parse().ok()
    }

    /// The event as JSON (one line in the stream).
    pub fn event_json(&self, e: &Event) -> Obj {
        let c = &e.change;
        Obj::new()
            .field("id", self.id(e.seq))
            .field("seq", e.seq)
            .field("state", c.state.lower())
            .field("leader", (c.leader >= 0).then_some(c.leader))
            .field("epoch", c.epoch)
            .field("lease", c.lease)
            .field("at", iso_time(e.at))
    }

    /// One event in the stream's wire form.
    fn frame(&self, e: &Event) -> String {
        format!("id: {}\nevent: leadership\ndata: {}\n\n", self.id(e.seq), Json::Object(self.event_json(e)).compact())
    }
}

/// `GET /watch`: the stream for a client that last saw `last_id`.
pub fn stream(journal: Arc<LeadershipJournal>, last_id: Option<String>) -> StreamFn {
    Box::new(move |out: &mut EventStream<'_>| {
        let stop = out.shutdown().clone();
        // Subscribed before the first read: a change in between is then a wake-up, not a loss.
        let wake = journal.subscribe();
        let replay = journal.replay(last_id.as_deref());
        let mut text = String::from("retry: 1000\n\n");
        if replay.reset {
            text.push_str("event: reset\ndata: {\"reason\":\"the changes since the given Last-Event-ID are not known here; the current state follows\"}\n\n");
        }
        let mut last = None;
        for e in &replay.events {
            text.push_str(&journal.frame(e));
            last = Some(e.seq);
        }
        if out.send(text.as_bytes()).is_err() {
            return;
        }
        let mut quiet_since = Instant::now();
        loop {
            select! {
                recv(wake) -> msg => if msg.is_err() { return },
                recv(stop.receiver()) -> _ => return,
                default(CLIENT_CHECK) => {
                    if out.client_gone() {
                        return;
                    }
                    if quiet_since.elapsed() >= HEARTBEAT {
                        if out.send(b": keep-alive\n\n").is_err() {
                            return;
                        }
                        quiet_since = Instant::now();
                    }
                    continue;
                }
            }
            quiet_since = Instant::now();
            let id = last.map(|seq| journal.id(seq));
            let replay = journal.replay(id.as_deref());
            let mut text = String::new();
            if replay.reset {
                text.push_str("event: reset\ndata: {\"reason\":\"this watcher fell too far behind\"}\n\n");
            }
            for e in &replay.events {
                text.push_str(&journal.frame(e));
                last = Some(e.seq);
            }
            if !text.is_empty() && out.send(text.as_bytes()).is_err() {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::election::ServerState;

    fn change(state: ServerState, leader: i64, epoch: i64) -> StateChange {
        StateChange { state, leader, epoch, lease: "inactive" }
    }

    #[test]
    fn replay_after_an_id_gives_every_later_change_or_a_reset() {
        let j = LeadershipJournal::new();
        assert_eq!(j.replay(None), Replay { reset: false, events: vec![] });
        j.record(change(ServerState::Looking, -1, 0));
        j.record(change(ServerState::Looking, -1, 0));
        j.record(change(ServerState::Following, 3, 1));
        j.record(change(ServerState::Looking, -1, 1));
        j.record(change(ServerState::Leading, 2, 2));
        let seqs = |r: Replay| (r.reset, r.events.iter().map(|e| e.seq).collect::<Vec<_>>());
        assert_eq!(seqs(j.replay(None)), (false, vec![4]));
        assert_eq!(seqs(j.replay(Some(&j.id(1)))), (false, vec![2, 3, 4]));
        assert_eq!(seqs(j.replay(Some(&j.id(4)))), (false, vec![]));
        // Another incarnation, a future id, garbage: the current state after a reset.
        assert_eq!(seqs(j.replay(Some("1-2"))), (true, vec![4]));
        assert_eq!(seqs(j.replay(Some(&j.id(9)))), (true, vec![4]));
        assert_eq!(seqs(j.replay(Some("garbage"))), (true, vec![4]));
        let json = Json::Object(j.event_json(&j.latest().expect("latest"))).compact();
        assert!(
            json.starts_with(&format!(
                "{{\"id\":\"{}\",\"seq\":4,\"state\":\"leading\",\"leader\":2,\"epoch\":2,\"lease\":\"inactive\",\"at\":\"",
                j.id(4)
            )),
            "{json}"
        );
        let looking = Json::Object(j.event_json(&j.recent(4)[2])).compact();
        assert!(looking.contains("\"state\":\"looking\",\"leader\":null,\"epoch\":1"), "{looking}");
    }

    #[test]
    fn only_the_retained_changes_are_replayed() {
        let j = LeadershipJournal::new();
        for i in 0..RETAINED as i64 + 10 {
            j.record(change(ServerState::Following, 1, i));
        }
        assert_eq!(j.recent(usize::MAX).len(), RETAINED);
        assert!(j.replay(Some(&j.id(5))).reset);
        let r = j.replay(Some(&j.id(10)));
        assert!(!r.reset);
        assert_eq!(r.events.len(), RETAINED);
    }

    #[test]
    fn watchers_are_woken_and_forgotten_when_gone() {
        let j = LeadershipJournal::new();
        let a = j.subscribe();
        let b = j.subscribe();
        drop(b);
        j.record(change(ServerState::Looking, -1, 0));
        j.record(change(ServerState::Leading, 1, 1));
        assert!(a.try_recv().is_ok());
        assert!(a.try_recv().is_err(), "at most one wake-up is pending");
        assert_eq!(j.inner.lock().watchers.len(), 1);
    }
}
