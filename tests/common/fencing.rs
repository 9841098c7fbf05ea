//! The fencing checker for `zkelect run`: every node runs a command that appends a timestamp to
//! its own file every few milliseconds while it runs. Merged, the files must show no moment at
//! which two nodes' commands ran at once; the gaps between one command's last tick and the next
//! one's first are the failover gaps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One run of a command: from its first tick to its last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub sid: i64,
    pub pid: u32,
    pub epoch: i64,
    /// Wall-clock nanoseconds (one host, one clock).
    pub first: u128,
    pub last: u128,
}

/// The command every node runs: `<script> <dir>`. It writes `start`, then a `tick` every 5 ms, to
/// `<dir>/ticks.<myid>`; it exits by itself with status 3 when `<dir>/exit.<myid>` exists (the
/// file is removed first, so the next run goes on).
pub fn command(dir: &Path) -> Vec<String> {
    let script = dir.join("ticker.sh");
    let body = r#"#!/bin/sh
out="$1/ticks.$ZKELECT_MYID"
echo "start $$ $ZKELECT_EPOCH $(date +%s%N)" >> "$out"
trap 'exit 0' TERM
while :; do
  echo "tick $$ $ZKELECT_EPOCH $(date +%s%N)" >> "$out"
  if [ -e "$1/exit.$ZKELECT_MYID" ]; then rm -f "$1/exit.$ZKELECT_MYID"; exit 3; fi
  sleep 0.005
done
"#;
    std::fs::write(&script, body).expect("ticker script");
    let _ = std::process::Command::new("chmod").arg("+x").arg(&script).status();
    vec![script.display().to_string(), dir.display().to_string()]
}

pub fn ticks_file(dir: &Path, sid: i64) -> PathBuf {
    dir.join(format!("ticks.{sid}"))
}

/// Every run of every node's command, by first tick.
pub fn intervals(dir: &Path, sids: &[i64]) -> Vec<Interval> {
    let mut all = Vec::new();
    for &sid in sids {
        let text = std::fs::read_to_string(ticks_file(dir, sid)).unwrap_or_default();
        let mut runs: BTreeMap<u32, Interval> = BTreeMap::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(pid), Some(epoch), Some(t)) = (
                f.get(1).and_then(|p| p.parse::<u32>().ok()),
                f.get(2).and_then(|e| e.parse::<i64>().ok()),
                f.get(3).and_then(|t| t.parse::<u128>().ok()),
            ) else {
                continue; // a line cut short by SIGKILL
            };
            let run = runs.entry(pid).or_insert(Interval { sid, pid, epoch, first: t, last: t });
            run.first = run.first.min(t);
            run.last = run.last.max(t);
        }
        all.extend(runs.into_values());
    }
    all.sort_by_key(|i| i.first);
    all
}

/// Two runs on different nodes that overlap in time, if any.
pub fn overlap(intervals: &[Interval]) -> Option<(Interval, Interval)> {
    for (i, a) in intervals.iter().enumerate() {
        for b in &intervals[i + 1..] {
            if a.sid != b.sid && b.first <= a.last && a.first <= b.last {
                return Some((*a, *b));
            }
        }
    }
    None
}

/// Panics with both runs when two nodes' commands ran at the same time; returns the runs.
pub fn check(dir: &Path, sids: &[i64]) -> Vec<Interval> {
    let runs = intervals(dir, sids);
    if let Some((a, b)) = overlap(&runs) {
        panic!(
            "two commands ran at once: node {} (pid {}, epoch {}) until {}, node {} (pid {}, epoch {}) from {} \
             ({} µs of overlap)\nall runs: {runs:#?}",
            a.sid,
            a.pid,
            a.epoch,
            a.last,
            b.sid,
            b.pid,
            b.epoch,
            b.first,
            (a.last.min(b.last) - b.first.max(a.first)) / 1000
        );
    }
    // Epochs (fencing tokens) only grow from one run to the next.
    for w in runs.windows(2) {
        assert!(w[0].epoch <= w[1].epoch, "epochs went back: {:?} then {:?}", w[0], w[1]);
    }
    runs
}

/// The run that started after `after` (ns) and is still running: it ticks between two looks
/// (a run that just ended looks recent but does not tick again).
pub fn running(dir: &Path, sids: &[i64], after: u128) -> Option<Interval> {
    let before = intervals(dir, sids);
    std::thread::sleep(Duration::from_millis(30));
    intervals(dir, sids)
        .into_iter()
        .filter(|i| i.first > after)
        .find(|i| before.iter().any(|b| b.sid == i.sid && b.pid == i.pid && b.last < i.last))
}

/// The gap from the end of the run that ended last before `after` (ns) to the start of the first
/// run that began after it.
pub fn gap_after(runs: &[Interval], after: u128) -> Option<Duration> {
    let before = runs.iter().filter(|r| r.first <= after).map(|r| r.last).max()?;
    let next = runs.iter().filter(|r| r.first > after).map(|r| r.first).min()?;
    Some(Duration::from_nanos(next.saturating_sub(before) as u64))
}

pub fn now_ns() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}
