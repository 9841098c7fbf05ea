//! The Markdown table of `zkelect bench`: one row per size and implementation, medians with their
//! range, and the ratios when both implementations ran.

use super::{Impl, Options, Results, Series};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

const HEADER: &str = "| N | implementation | launch → all elected | leader kill → survivors elected | restart → following | RSS per node (anonymous) | threads per node (max) | idle CPU per node per minute: median node (leader) | notifications per election | CPU of all nodes: launch / failover | failover: notifications (CPU per notification) |";

pub(super) fn markdown(results: &BTreeMap<(usize, Impl), Results>, o: &Options) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Median (min–max) of {} runs, {}, tickTime {} ms, {} cores. Times are from the action to the last \
         node logging `… - broadcast`. The CPU of all nodes is the run time (user + system) of every thread \
         still alive when the benchmark saw that line (it reads the logs every {} ms), from the first start \
         (launch) or from the kill (the survivors, failover); threads that ended before are not counted. RSS \
         and threads are read {} s after the ensemble settled{}.\n",
        o.runs,
        if o.tls {
            "quorum TLS (sslQuorum=true, TLS 1.2, EC P-256 certificates), node N on 127.0.1.N"
        } else {
            "plaintext, 127.0.0.1"
        },
        o.tick_time,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        super::POLL.as_millis(),
        super::SETTLED_FOR.as_secs(),
        if o.idle.is_zero() {
            String::new()
        } else {
            format!(
                "; then the CPU time (user + system, every thread) each node uses over {} s while nothing happens, \
                 scaled to a minute, in the first run",
                o.idle.as_secs()
            )
        }
    );
    let _ = writeln!(t, "{HEADER}");
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|---|");
    let sizes: BTreeSet<usize> = results.keys().map(|k| k.0).collect();
    for n in sizes {
        let z = results.get(&(n, Impl::Zkelect));
        let j = results.get(&(n, Impl::ZooKeeper));
        for (kind, r) in [(Impl::Zkelect, z), (Impl::ZooKeeper, j)] {
            if let Some(r) = r {
                row(&mut t, n, kind, r, o.tls);
            }
        }
        if let (Some(z), Some(j)) = (z, j) {
            ratio_row(&mut t, n, z, j);
        }
    }
    t
}

fn row(t: &mut String, n: usize, kind: Impl, r: &Results, tls: bool) {
    let _ = writeln!(
        t,
        "| {n} | {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        kind.name(),
        if tls { " (TLS)" } else { "" },
        r.launch.cell("ms"),
        r.kill.cell("ms"),
        r.restart.cell("ms"),
        match (r.rss_mib.median(), r.anon_mib.median()) {
            (Some(v), Some(a)) => format!("{v:.1} MiB ({a:.1})"),
            (Some(v), None) => format!("{v:.1} MiB"),
            _ => "–".into(),
        },
        r.threads.median().map_or("–".into(), |v| format!("{v:.0}")),
        idle_cell(r),
        r.notifications.cell(""),
        election_cpu_cell(r),
        match (r.kill_notifications.median(), r.kill_us_per_notification.median()) {
            (Some(n), Some(us)) => format!("{n:.0} ({us:.0} µs)"),
            _ => "–".into(),
        },
    );
}

/// The medians of the CPU time all nodes used for the launch and for the failover.
fn election_cpu_cell(r: &Results) -> String {
    match (r.launch_cpu_ms.median(), r.kill_cpu_ms.median()) {
        (Some(l), Some(k)) => format!("{l:.0} / {k:.0} ms"),
        _ => "–".into(),
    }
}

/// CPU milliseconds per minute: two decimals below 10 ms, whole milliseconds above.
fn cpu_ms(v: f64) -> String {
    if v < 10.0 { format!("{v:.2} ms") } else { format!("{v:.0} ms") }
}

fn idle_cell(r: &Results) -> String {
    match (r.idle_cpu_ms.median(), r.idle_cpu_leader_ms.median()) {
        (Some(m), Some(l)) => format!("{} ({})", cpu_ms(m), cpu_ms(l)),
        (Some(m), None) => cpu_ms(m),
        _ => "–".into(),
    }
}

/// ZooKeeper's medians over zkelect's.
fn ratio_row(t: &mut String, n: usize, z: &Results, j: &Results) {
    let ratio = |a: &Series, b: &Series| match (a.median(), b.median()) {
        (Some(a), Some(b)) if a > 0.0 => format!("{:.0}×", b / a),
        _ => "–".into(),
    };
    let _ = writeln!(
        t,
        "| {n} | ratio ZooKeeper / zkelect | {} | {} | {} | {} | {} | {} | | {} / {} | |",
        ratio(&z.launch, &j.launch),
        ratio(&z.kill, &j.kill),
        ratio(&z.restart, &j.restart),
        ratio(&z.rss_mib, &j.rss_mib),
        ratio(&z.threads, &j.threads),
        ratio(&z.idle_cpu_ms, &j.idle_cpu_ms),
        ratio(&z.launch_cpu_ms, &j.launch_cpu_ms),
        ratio(&z.kill_cpu_ms, &j.kill_cpu_ms),
    );
}
