//! CPU time a running process uses over a window, from /proc. `utime + stime` of
//! `/proc/<pid>/stat` counts every thread, exited ones included, but in clock ticks (10 ms): too
//! coarse for a node that uses a few milliseconds a minute. So each thread's own run time is read
//! from `/proc/<pid>/task/<tid>/schedstat` (nanoseconds), twice a second, so that a thread that
//! exits within the window loses at most its last half second. Without schedstat (a kernel built
//! without it) the ticks are used.

use std::collections::HashMap;
use std::time::{Duration, Instant};

const SAMPLE: Duration = Duration::from_millis(500);
/// `USER_HZ`, the unit of `utime` and `stime` (fixed by the kernel ABI).
const TICK_NS: u64 = 10_000_000;

/// Nanoseconds of CPU each process used while this waited `window`.
pub fn watch(pids: &[u32], window: Duration) -> Vec<u64> {
    let ticks_before: Vec<Option<u64>> = pids.iter().map(|p| stat_ticks(*p)).collect();
    let mut threads: Vec<HashMap<u32, (u64, u64)>> = pids.iter().map(|p| first_sample(*p)).collect();
    let end = Instant::now() + window;
    while let Some(left) = end.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        std::thread::sleep(left.min(SAMPLE));
        for (pid, seen) in pids.iter().zip(threads.iter_mut()) {
            for (tid, ns) in task_run_times(*pid) {
                // A thread born within the window counts from zero.
                seen.entry(tid).or_insert((0, 0)).1 = ns;
            }
        }
    }
    let ticks_after: Vec<Option<u64>> = pids.iter().map(|p| stat_ticks(*p)).collect();
    pids.iter()
        .enumerate()
        .map(|(i, _)| {
            if threads[i].is_empty() {
                let (a, b) = (ticks_after[i].unwrap_or(0), ticks_before[i].unwrap_or(0));
                a.saturating_sub(b) * TICK_NS
            } else {
                threads[i].values().map(|(first, last)| last.saturating_sub(*first)).sum()
            }
        })
        .collect()
}

/// The run time of every live thread of some processes at one moment.
pub struct Snapshot(HashMap<(u32, u32), u64>);

impl Snapshot {
    /// Nothing has run yet: every thread counts from zero (processes that just started).
    pub fn zero() -> Snapshot {
        Snapshot(HashMap::new())
    }

    pub fn take(pids: &[u32]) -> Snapshot {
        Snapshot(
            pids.iter().flat_map(|p| task_run_times(*p).into_iter().map(move |(tid, ns)| ((*p, tid), ns))).collect(),
        )
    }

    /// Nanoseconds the threads of `later` ran since `self`; a thread born since counts from zero. A
    /// thread that ended in between is missing from `later`, so this is a lower bound.
    pub fn used_until(&self, later: &Snapshot) -> u64 {
        later.0.iter().map(|(k, ns)| ns.saturating_sub(self.0.get(k).copied().unwrap_or(0))).sum()
    }
}

fn first_sample(pid: u32) -> HashMap<u32, (u64, u64)> {
    task_run_times(pid).into_iter().map(|(tid, ns)| (tid, (ns, ns))).collect()
}

/// Run time of each thread of `pid`, in ns (empty when schedstat cannot be read).
fn task_run_times(pid: u32) -> Vec<(u32, u64)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid: u32 = e.file_name().to_str()?.parse().ok()?;
        let text = std::fs::read_to_string(e.path().join("schedstat")).ok()?;
        Some((tid, text.split_whitespace().next()?.parse().ok()?))
    })
    .collect()
}

/// `utime + stime` of the whole process, in clock ticks.
fn stat_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields are counted after the last ')'.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_is_counted_and_an_idle_process_is_not() {
        let _one = ONE_AT_A_TIME.lock();
        let me = std::process::id();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let busy = std::thread::spawn(move || {
            let mut x = 0u64;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        });
        let used = watch(&[me], Duration::from_millis(600));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        busy.join().expect("busy thread");
        // The spinning thread ran for most of the window (on a loaded machine at least a tenth).
        assert!(used[0] >= 60_000_000, "{} ns", used[0]);
        assert!(used[0] < 5_000_000_000, "{} ns", used[0]);
        assert!(stat_ticks(me).is_some());
    }

    /// The tests here measure this whole process: one at a time.
    static ONE_AT_A_TIME: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

    /// The difference of two snapshots is what ran in between, not everything since the start;
    /// nothing ran between a snapshot and itself.
    #[test]
    fn a_snapshot_difference_counts_what_ran_in_between() {
        let _one = ONE_AT_A_TIME.lock();
        let me = [std::process::id()];
        let spinner = std::thread::spawn(|| {
            let end = Instant::now() + Duration::from_millis(600);
            let mut x = 0u64;
            while Instant::now() < end {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        let before = Snapshot::take(&me);
        let t = Instant::now();
        std::thread::sleep(Duration::from_millis(150));
        let after = Snapshot::take(&me);
        let window = t.elapsed().as_nanos() as u64;
        spinner.join().expect("spinner");
        assert_eq!(before.used_until(&before), 0);
        let used = before.used_until(&after);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        // The spinner ran for at least a tenth of the window (on a loaded machine), and nothing can
        // run longer than the window on every core.
        assert!(used >= window / 10, "{used} of {window} ns");
        assert!(used <= window * cores + 20_000_000, "{used} of {window} ns on {cores} cores");
        // Its first 300 ms are in the total since the start, not in the difference.
        let total = Snapshot::zero().used_until(&after);
        assert!(total >= used + 30_000_000, "total {total}, in the window {used}");
    }
}
