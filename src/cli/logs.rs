//! Reading zkelect's and ZooKeeper's logs: the timestamp and the milestone line
//! (`Peer state changed: following - broadcast (leader 3, epoch 2)`, written by
//! `zkelect::snapshot::Milestone`). Shared by `zkelect ensemble`, `zkelect bench` and the tests
//! (which include this file): nothing else parses these lines.

/// A milestone line, parsed. ZooKeeper writes the same line without the leader and the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Milestone {
    /// `leading`, `following` or `observing`.
    pub state: String,
    /// `discovery`, `synchronization`, `broadcast`, `election-only`, …
    pub phase: String,
    /// zkelect only.
    pub leader: Option<i64>,
    pub epoch: Option<i64>,
}

const STATE_CHANGED: &str = "Peer state changed: ";

/// What follows `Peer state changed: ` in a log line: the state, then `- <phase>…` if any.
fn state_change(line: &str) -> Option<&str> {
    Some(line[line.find(STATE_CHANGED)? + STATE_CHANGED.len()..].trim_end())
}

/// The state a `Peer state changed: …` line names (`looking`, `following`, …), with or without
/// a session phase after it.
pub fn parse_state(line: &str) -> Option<&str> {
    let rest = state_change(line)?;
    Some(rest.split_once(" - ").map_or(rest, |(state, _)| state))
}

/// The milestone in a log line, if it has one.
pub fn parse_milestone(line: &str) -> Option<Milestone> {
    let (state, rest) = state_change(line)?.split_once(" - ")?;
    let (phase, leader, epoch) = match rest.rsplit_once(" (leader ") {
        Some((phase, tail)) => {
            let (leader, epoch) = tail.strip_suffix(')')?.split_once(", epoch ")?;
            (phase, Some(leader.parse().ok()?), Some(epoch.parse().ok()?))
        }
        None => (rest, None, None),
    };
    Some(Milestone { state: state.to_string(), phase: phase.to_string(), leader, epoch })
}

/// A cheap first look: only a line that passes can be a milestone or a LOOKING line (both say
/// "Peer"); the notification lines around them, thousands in a large election, do not.
pub fn may_be_state_line(line: &str) -> bool {
    line.contains("Peer")
}

/// Whether a log line says the node went LOOKING (zkelect or ZooKeeper).
pub fn is_looking_line(line: &str) -> bool {
    parse_state(line) == Some("looking") || line.contains("PeerState set to LOOKING")
}

/// Milliseconds since the epoch, now: what [`parse_timestamp_ms`] gives for a line logged now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Milliseconds since the epoch of a line starting with `yyyy-MM-dd HH:mm:ss,SSS` (UTC): the
/// inverse of [`timestamp`], for tools that read zkelect's and ZooKeeper's logs.
pub fn parse_timestamp_ms(line: &str) -> Option<u64> {
    let (date, rest) = line.split_once(' ')?;
    let (hms, ms) = rest.get(..12)?.split_once(',')?;
    let d: Vec<i64> = date.split('-').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    if d.len() != 3 || t.len() != 3 {
        return None;
    }
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let days =
        365 * y + y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400) + (153 * m + 2) / 5 + d[2] - 1 - 719_468;
    u64::try_from((days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1000 + ms.parse::<i64>().ok()?).ok()
}
