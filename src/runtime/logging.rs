//! env_logger set up with ZooKeeper's line layout:
//! `2026-11-25 13:24:21,107 - INFO  [ListenerHandler-127.0.0.1:3888:cnx::listener] - message`.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// The library's top-level modules: the targets log lines show, without the crate name.
const MODULES: &[&str] = &[
    "admin",
    "cnx",
    "config",
    "election",
    "lease",
    "messenger",
    "net",
    "node",
    "peer",
    "runtime",
    "sidecar",
    "snapshot",
    "wire",
];

/// Installs the logger. `RUST_LOG` controls the levels: a level (`debug`), module levels named as
/// the log lines show them (`cnx=debug`, `peer::leader=trace`, or with the crate name), or both;
/// without a level of its own, everything else logs at INFO.
pub fn init() {
    let (filters, notes) = understand(std::env::var("RUST_LOG").ok().as_deref());
    for note in notes {
        eprintln!("zkelect: {note}");
    }
    let _ = env_logger::Builder::new()
        .parse_filters(&filters)
        .format(|buf, record| {
            let thread = std::thread::current();
            let target = record.target().strip_prefix("zkelect::").unwrap_or(record.target());
            writeln!(
                buf,
                "{} - {:<5} [{}:{}] - {}",
                timestamp(SystemTime::now()),
                record.level(),
                thread.name().unwrap_or("main"),
                target,
                record.args()
            )
        })
        .try_init();
}

fn is_level(s: &str) -> bool {
    s.parse::<log::LevelFilter>().is_ok()
}

/// `RUST_LOG` as env_logger filters, and what to tell the operator about it: module names are
/// taken as the log lines show them, a default level is added when none is given (so that a
/// module filter does not silence WARN and ERROR elsewhere), and what cannot be understood is
/// named and left out.
fn understand(spec: Option<&str>) -> (String, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let mut global = false;
    for item in spec.unwrap_or("").split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (target, level) = match item.split_once('=') {
            Some((t, l)) => (Some(t.trim()), l.trim()),
            None if is_level(item) => (None, item),
            None => (Some(item), "trace"),
        };
        if !is_level(level) {
            notes.push(format!(
                "RUST_LOG: ignoring {item:?}: {level:?} is not a level (off, error, warn, info, debug, trace)"
            ));
            continue;
        }
        match target {
            None => {
                global = true;
                out.push(level.to_string());
            }
            Some(t) => {
                let first = t.split("::").next().unwrap_or(t);
                if MODULES.contains(&first) {
                    out.push(format!("zkelect::{t}={level}"));
                } else {
                    if first != "zkelect" {
                        notes.push(format!(
                            "RUST_LOG: {t:?} is not one of zkelect's modules ({}); kept as written",
                            MODULES.join(", ")
                        ));
                    }
                    out.push(format!("{t}={level}"));
                }
            }
        }
    }
    if !global {
        out.insert(0, "info".to_string());
    }
    (out.join(","), notes)
}

/// `yyyy-MM-dd HH:mm:ss,SSS` in UTC.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!("{y:04}-{m:02}-{day:02} {:02}:{:02}:{:02},{:03}", rem / 3600, rem % 3600 / 60, rem % 60, d.subsec_millis())
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_of_the_crate_is_known() {
        let lib = include_str!("../lib.rs");
        let declared: Vec<&str> = lib.lines().filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';')).collect();
        assert!(declared.len() > 5, "{declared:?}");
        for m in declared {
            assert!(MODULES.contains(&m), "RUST_LOG does not know module {m}");
        }
    }
    use std::time::Duration;

    #[test]
    fn rust_log_is_understood_as_the_lines_show_targets() {
        assert_eq!(understand(None), ("info".into(), vec![]));
        assert_eq!(understand(Some("cnx=debug")).0, "info,zkelect::cnx=debug");
        assert_eq!(understand(Some("warn,peer::leader=trace")).0, "warn,zkelect::peer::leader=trace");
        assert_eq!(understand(Some("zkelect::cnx=debug")).0, "info,zkelect::cnx=debug");
        assert_eq!(understand(Some("debug")).0, "debug");
        // A bare module name means all of that module, as in env_logger.
        assert_eq!(understand(Some("cnx")).0, "info,zkelect::cnx=trace");
        // Mistakes are named and do not silence WARN/ERROR.
        let (filters, notes) = understand(Some("cnx=loud,nonsense=debug"));
        assert_eq!(filters, "info,nonsense=debug");
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("\"loud\" is not a level") && notes[1].contains("\"nonsense\" is not one of"));
    }

    #[test]
    fn formats_like_zookeeper() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_613_061_107);
        assert_eq!(timestamp(t), "2026-11-25 13:24:21,107");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01 00:00:00,000");
    }
}
