//! Deterministic simulation: thousands of seeded elections of the pure `FastLeaderElection` and
//! the messenger's reply rules over a simulated network with delay, reordering, duplication,
//! loss and temporary partitions. No sockets, threads or sleeps.
//!
//! Two fault classes, each asserting what the algorithm guarantees under it:
//! * **bounded**: every node starts within 10 ms, every message arrives within 100 ms (less than
//!   finalizeWait), FIFO per link, with duplicates. Asserted: every node decides, in the same
//!   round, the same leader, and that leader is the highest (epoch, zxid, sid).
//! * **chaos**: staggered starts, delays up to 600 ms, 20 % loss and random partitions until a
//!   heal time H, then a quiet network. Fast leader election alone does not promise agreement
//!   under such faults (a partition that heals during one node's finalizeWait can make two nodes
//!   decide differently in one round; ZooKeeper resolves that in Zab, zkelect in its peer
//!   sessions). So the run also models the session layer's verdict: a leader without a quorum
//!   of connected followers, or a follower whose leader does not lead, goes back to LOOKING after
//!   a sync window. Asserted: once the network is whole, every node ends following one leader
//!   that leads, within a bounded time. Same-round disagreements are counted and printed.
//!
//! A failing seed is printed; `SIM_SEED=<seed> cargo test --test simulation -- --nocapture`
//! replays it with a trace.

mod common;

use common::Rng;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use zkelect::config::{QuorumPeerConfig, QuorumVerifier};
use zkelect::election::ServerState;
use zkelect::election::{Action, FastLeaderElection, FleSettings, PeerView, ToSend, Vote, receive};
use zkelect::wire::notification::{Layout, WireNotification};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Bounded,
    Chaos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Start(usize),
    Deliver { from: usize, to: usize, t: (i64, i64, i64, i32, i64, i64) },
    Timer { node: usize, generation: u64 },
    Check { node: usize, generation: u64 },
}

struct Node {
    id: i64,
    fle: FastLeaderElection,
    state: ServerState,
    current: Vote,
    init: (i64, i64),
    timer_gen: u64,
    check_gen: u64,
    started: bool,
}

const SYNC_WINDOW: u64 = 1000;

struct Sim {
    rng: Rng,
    class: Class,
    now: u64,
    seq: u64,
    heal_at: u64,
    events: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    nodes: Vec<Node>,
    qv: Arc<QuorumVerifier>,
    link_clock: HashMap<(usize, usize), u64>,
    /// (from, until, side A) — links across the cut are down.
    partitions: Vec<(u64, u64, BTreeSet<usize>)>,
    /// (time, node, round, leader, state)
    decisions: Vec<(u64, usize, i64, i64, ServerState)>,
    trace: bool,
    delivered: u64,
}

fn config(voters: usize, observers: usize) -> Arc<QuorumVerifier> {
    let mut text = String::from("tickTime=100\ninitLimit=10\nsyncLimit=5\ndataDir=/d\nstandaloneEnabled=false\n");
    for i in 1..=voters + observers {
        let role = if i > voters { ":observer" } else { "" };
        text.push_str(&format!("server.{i}=127.0.0.1:{}:{}{role}\n", 2000 + i, 3000 + i));
    }
    Arc::new(QuorumPeerConfig::parse(&text, "sim").expect("config").quorum_verifier)
}

impl Sim {
    fn new(seed: u64, trace: bool) -> Sim {
        let mut rng = Rng(seed);
        let class = if seed.is_multiple_of(3) { Class::Bounded } else { Class::Chaos };
        let voters = [3, 5, 7, 9][(rng.next() % 4) as usize];
        let observers = if rng.chance(0.25) { 1 } else { 0 };
        let qv = config(voters, observers);
        let settings =
            FleSettings { finalize_wait: 200, min_notification_interval: 200, max_notification_interval: 1600 };
        let nodes = (1..=voters + observers)
            .map(|i| {
                let init = (rng.range(0, 2) as i64, rng.range(0, 2) as i64);
                Node {
                    id: i as i64,
                    fle: FastLeaderElection::new(i as i64, qv.clone(), settings),
                    state: ServerState::Looking,
                    current: Vote::new(i as i64, init.1, -1, init.0),
                    init,
                    timer_gen: 0,
                    check_gen: 0,
                    started: false,
                }
            })
            .collect();
        let mut sim = Sim {
            rng,
            class,
            now: 0,
            seq: 0,
            heal_at: 0,
            events: BinaryHeap::new(),
            nodes,
            qv,
            link_clock: HashMap::new(),
            partitions: Vec::new(),
            decisions: Vec::new(),
            trace,
            delivered: 0,
        };
        let n = sim.nodes.len();
        for i in 0..n {
            let at = match class {
                Class::Bounded => sim.rng.range(0, 10),
                Class::Chaos => sim.rng.range(0, 2000),
            };
            sim.schedule(at, Ev::Start(i));
        }
        if class == Class::Chaos {
            sim.heal_at = sim.rng.range(2500, 5000);
            for _ in 0..sim.rng.range(1, 4) {
                let from = sim.rng.range(0, sim.heal_at - 500);
                let until = (from + sim.rng.range(200, 2000)).min(sim.heal_at);
                let side: BTreeSet<usize> = (0..n).filter(|_| sim.rng.chance(0.4)).collect();
                sim.partitions.push((from, until, side));
            }
        }
        sim
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, ev)));
    }

    fn link_up(&self, a: usize, b: usize) -> bool {
        !self
            .partitions
            .iter()
            .any(|(from, until, side)| self.now >= *from && self.now < *until && side.contains(&a) != side.contains(&b))
    }

    fn transmit(&mut self, from: usize, t: ToSend) {
        let to = (t.sid - 1) as usize;
        let payload = (t.leader, t.zxid, t.election_epoch, t.state as i32, t.peer_epoch, 0);
        if to == from {
            self.schedule(self.now, Ev::Deliver { from, to, t: payload });
            return;
        }
        let chaos = self.class == Class::Chaos && self.now < self.heal_at;
        if !self.link_up(from, to) || (chaos && self.rng.chance(0.2)) {
            return;
        }
        let delay = if chaos {
            self.rng.range(1, 600)
        } else if self.class == Class::Chaos {
            self.rng.range(1, 20)
        } else {
            self.rng.range(1, 100)
        };
        // TCP keeps each link in order; reordering happens across links.
        let clock = self.link_clock.entry((from, to)).or_insert(0);
        let at = (self.now + delay).max(*clock);
        *clock = at;
        self.schedule(at, Ev::Deliver { from, to, t: payload });
        if self.rng.chance(0.1) {
            // A re-sent lastMessageSent after a reconnect.
            let again = at + self.rng.range(0, 50);
            self.schedule(again, Ev::Deliver { from, to, t: payload });
        }
    }

    fn run_actions(&mut self, i: usize, actions: Vec<Action>) {
        for a in actions {
            if let Action::Send(t) = a {
                self.transmit(i, t);
            }
        }
    }

    fn arm_timer(&mut self, i: usize) {
        self.nodes[i].timer_gen += 1;
        let (generation, wait) = (self.nodes[i].timer_gen, self.nodes[i].fle.wait_ms());
        self.schedule(self.now + wait, Ev::Timer { node: i, generation });
    }

    fn go_looking(&mut self, i: usize) {
        let mut out = Vec::new();
        let n = &mut self.nodes[i];
        n.state = ServerState::Looking;
        n.check_gen += 1;
        n.fle.start(n.init.1, n.init.0, &mut out);
        self.run_actions(i, out);
        self.arm_timer(i);
    }

    fn decide(&mut self, i: usize, vote: Vote, state: ServerState) {
        let n = &mut self.nodes[i];
        n.state = state;
        n.current = vote;
        n.check_gen += 1;
        let generation = n.check_gen;
        if self.trace {
            println!("{:>6} node {} decides {:?} {} round {}", self.now, n.id, state, vote.id, vote.election_epoch);
        }
        self.decisions.push((self.now, i, vote.election_epoch, vote.id, state));
        if self.class == Class::Chaos {
            self.schedule(self.now + SYNC_WINDOW, Ev::Check { node: i, generation });
        }
    }

    /// The session layer's verdict, abstracted: does this decided node still hold?
    fn session_holds(&self, i: usize) -> bool {
        let n = &self.nodes[i];
        let leader = (n.current.id - 1) as usize;
        if n.state == ServerState::Leading {
            let followers = (0..self.nodes.len()).filter(|&j| {
                j == i
                    || (self.nodes[j].state == ServerState::Following
                        && self.nodes[j].current.id == n.id
                        && self.link_up(i, j))
            });
            self.qv.contains_quorum(followers.map(|j| self.nodes[j].id))
        } else {
            leader < self.nodes.len()
                && self.nodes[leader].state == ServerState::Leading
                && self.nodes[leader].current.id == n.current.id
                && self.link_up(i, leader)
        }
    }

    fn step(&mut self) -> bool {
        let Some(Reverse((at, _, ev))) = self.events.pop() else {
            return false;
        };
        self.now = at;
        match ev {
            Ev::Start(i) => {
                self.nodes[i].started = true;
                self.go_looking(i);
            }
            Ev::Timer { node, generation } => {
                let n = &mut self.nodes[node];
                if generation != n.timer_gen || n.state != ServerState::Looking {
                    return true;
                }
                let mut out = Vec::new();
                let d = n.fle.on_timeout(true, &mut out);
                self.run_actions(node, out);
                match d {
                    Some(d) => self.decide(node, d.vote, d.state),
                    None => self.arm_timer(node),
                }
            }
            Ev::Check { node, generation } => {
                if generation != self.nodes[node].check_gen || self.nodes[node].state == ServerState::Looking {
                    return true;
                }
                if self.session_holds(node) {
                    self.schedule(self.now + SYNC_WINDOW, Ev::Check { node, generation });
                } else {
                    if self.trace {
                        println!("{:>6} node {} loses its session", self.now, self.nodes[node].id);
                    }
                    self.go_looking(node);
                }
            }
            Ev::Deliver { from, to, t } => {
                if !self.nodes[to].started {
                    return true;
                }
                self.delivered += 1;
                let n = &self.nodes[to];
                let view = PeerView {
                    my_id: n.id,
                    state: n.state,
                    current_vote: n.current,
                    logicalclock: n.fle.logicalclock(),
                    proposal: n.fle.proposal(),
                    confirming: false,
                };
                let w = WireNotification {
                    state: t.3,
                    leader: t.0,
                    zxid: t.1,
                    election_epoch: t.2,
                    peer_epoch: t.4,
                    version: 2,
                    config: None,
                    layout: Layout::Versioned,
                };
                let r = receive(&view, &self.qv, self.nodes[from].id, &w, Some(0));
                if let Some(reply) = r.reply {
                    self.transmit(to, reply);
                }
                if let Some(notif) = r.forward {
                    let mut out = Vec::new();
                    let d = self.nodes[to].fle.on_notification(&notif, &mut out);
                    self.run_actions(to, out);
                    match d {
                        Some(d) => self.decide(to, d.vote, d.state),
                        None => self.arm_timer(to),
                    }
                }
            }
        }
        true
    }

    /// Everyone decided on one leader that leads.
    fn settled(&self) -> Option<i64> {
        let leader = self.nodes.first()?.current.id;
        let ok = self.nodes.iter().all(|n| n.started && n.state != ServerState::Looking && n.current.id == leader)
            && self.nodes.iter().any(|n| n.id == leader && n.state == ServerState::Leading);
        ok.then_some(leader)
    }

    fn highest(&self) -> i64 {
        self.nodes
            .iter()
            .filter(|n| self.qv.is_voter(n.id))
            .max_by_key(|n| (n.init.0, n.init.1, n.id))
            .map(|n| n.id)
            .unwrap_or(0)
    }

    fn same_round_disagreements(&self) -> usize {
        let mut by_round: HashMap<i64, BTreeSet<i64>> = HashMap::new();
        for (_, _, round, leader, _) in &self.decisions {
            by_round.entry(*round).or_default().insert(*leader);
        }
        by_round.values().filter(|s| s.len() > 1).count()
    }
}

/// Runs one seed; returns the number of same-round disagreements (chaos only) or an error text.
fn run_seed(seed: u64, trace: bool) -> Result<usize, String> {
    let mut sim = Sim::new(seed, trace);
    let n = sim.nodes.len();
    let deadline = match sim.class {
        Class::Bounded => 5_000,
        Class::Chaos => sim.heal_at + 30_000,
    };
    let mut stable_since: Option<u64> = None;
    while sim.now <= deadline {
        if !sim.step() {
            break;
        }
        if sim.class == Class::Bounded {
            if sim.nodes.iter().all(|x| x.state != ServerState::Looking && x.started) {
                break;
            }
        } else if sim.now >= sim.heal_at {
            match sim.settled() {
                Some(_) if stable_since.is_none() => stable_since = Some(sim.now),
                Some(_) if sim.now - stable_since.unwrap_or(0) >= 2 * SYNC_WINDOW => break,
                Some(_) => {}
                None => stable_since = None,
            }
        }
    }
    let undecided: Vec<i64> = sim.nodes.iter().filter(|x| x.state == ServerState::Looking).map(|x| x.id).collect();
    match sim.class {
        Class::Bounded => {
            if !undecided.is_empty() {
                return Err(format!("bounded, {n} nodes: {undecided:?} never decided"));
            }
            let leaders: BTreeSet<i64> = sim.nodes.iter().map(|x| x.current.id).collect();
            let rounds: BTreeSet<i64> = sim.nodes.iter().map(|x| x.current.election_epoch).collect();
            if leaders.len() != 1 || rounds.len() != 1 {
                return Err(format!("bounded: leaders {leaders:?} in rounds {rounds:?}"));
            }
            let l = *leaders.iter().next().unwrap_or(&0);
            if l != sim.highest() {
                return Err(format!("bounded: elected {l}, highest (epoch, zxid, sid) is {}", sim.highest()));
            }
            Ok(0)
        }
        Class::Chaos => {
            if sim.settled().is_none() {
                let states: Vec<String> =
                    sim.nodes.iter().map(|x| format!("{}:{:?}->{}", x.id, x.state, x.current.id)).collect();
                return Err(format!(
                    "chaos, {n} nodes: not settled 30 s after the heal at {} ms: {states:?}",
                    sim.heal_at
                ));
            }
            Ok(sim.same_round_disagreements())
        }
    }
}

#[test]
fn seeded_elections() {
    if let Ok(s) = std::env::var("SIM_SEED") {
        let seed: u64 = s.parse().expect("SIM_SEED is a number");
        let result = run_seed(seed, true);
        println!("seed {seed}: {result:?}");
        if let Err(e) = result {
            panic!("seed {seed}: {e}");
        }
        return;
    }
    let seeds: u64 = std::env::var("SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2400);
    let t0 = std::time::Instant::now();
    let mut disagreements = 0;
    let mut failures = Vec::new();
    for seed in 1..=seeds {
        match run_seed(seed, false) {
            Ok(d) => disagreements += d,
            Err(e) => failures.push(format!("seed {seed}: {e}")),
        }
    }
    println!(
        "{seeds} seeded elections in {:?}; chaos runs with a same-round disagreement resolved by the session layer: {disagreements}",
        t0.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} failing seeds (replay with SIM_SEED=<seed> cargo test --test simulation -- --nocapture):\n{}",
        failures.len(),
        failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}
