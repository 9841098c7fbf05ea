//! env_logger set up with ZooKeeper's line layout:
//! `2026-11-25 13:24:21,107 - INFO  [ListenerHandler-127.0.0.1:3888:cnx::listener] - message`.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Installs the logger; `RUST_LOG` controls the levels (default `info`).
pub fn init() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
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
    use std::time::Duration;

    #[test]
    fn formats_like_zookeeper() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_613_061_107);
        assert_eq!(timestamp(t), "2026-11-25 13:24:21,107");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01 00:00:00,000");
    }
}
