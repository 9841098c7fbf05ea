//! A scripted election peer: a configured server played in-process by a `QuorumCnxManager` that
//! sends hand-made notifications.

use super::cluster::Cluster;
use super::wait_for;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zkelect::cnx::{CnxEvents, CnxSettings, QuorumCnxManager};
use zkelect::config::QuorumPeerConfig;
use zkelect::election::ServerState;
use zkelect::wire::notification;

/// Server `sid` of the cluster, played by the test: its own election transport and config text.
pub struct ScriptedPeer {
    pub sid: i64,
    pub m: QuorumCnxManager,
    config: Vec<u8>,
}

impl ScriptedPeer {
    pub fn new(c: &Cluster, sid: i64) -> ScriptedPeer {
        let cfg = QuorumPeerConfig::load(&c.node_dir(sid).join("zoo.cfg")).expect("scripted peer's config");
        let m = QuorumCnxManager::new(
            CnxSettings::from_config(&cfg),
            Arc::new(cfg.quorum_verifier.clone()),
            CnxEvents::default(),
        );
        m.start().expect("scripted peer's listener");
        ScriptedPeer { sid, m, config: cfg.quorum_verifier.config_text().into_bytes() }
    }

    /// Sends one notification (round 1, epoch 1) to `to`.
    pub fn vote(&self, to: i64, state: ServerState, leader: i64, zxid: i64) {
        self.m.to_send(to, notification::encode(state.ordinal(), leader, zxid, 1, 1, &self.config));
        while self.m.poll_recv_queue(Duration::ZERO).is_some() {}
    }
}

impl ScriptedPeer {
    /// Sends a notification with every field given.
    pub fn send(&self, to: i64, state: ServerState, leader: i64, round: i64, epoch: i64) {
        self.m.to_send(to, notification::encode(state.ordinal(), leader, 0, round, epoch, &self.config));
    }

    /// Drops what has arrived until nothing more comes for 200 ms.
    pub fn drain(&self) {
        while self.m.poll_recv_queue(Duration::from_millis(200)).is_some() {}
    }

    /// For `d`, answers every notification from `from` that `answer` says to (with the
    /// notification it returns) and counts what arrived from `from`.
    pub fn answer_for(
        &self,
        d: Duration,
        from: i64,
        mut answer: impl FnMut(&notification::WireNotification) -> Option<(ServerState, i64, i64, i64)>,
    ) -> u64 {
        let end = Instant::now() + d;
        let mut received = 0;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Some(msg) = self.m.poll_recv_queue(left) else { continue };
            let Ok(w) = notification::decode(&msg.buffer) else { continue };
            if msg.sid != from {
                continue;
            }
            received += 1;
            if let Some((state, leader, round, epoch)) = answer(&w) {
                self.send(from, state, leader, round, epoch);
            }
        }
        received
    }
}

impl Drop for ScriptedPeer {
    fn drop(&mut self) {
        self.m.halt();
    }
}

/// Repeats `send` every 50 ms until node `sid`'s log contains `line` (or 30 s pass).
pub fn until_logged(c: &Cluster, sid: i64, line: &str, mut send: impl FnMut()) -> Instant {
    wait_for(Duration::from_secs(30), line, || {
        send();
        std::thread::sleep(Duration::from_millis(50));
        c.log(sid).contains(line).then(Instant::now)
    })
}
