//! `zkelect status [HOST][:PORT]...`: asks each node's client port for `srvr` (and `elec` when
//! allowed) and prints a short summary; with several addresses, also whether the ensemble agrees
//! on one leader. Works against ZooKeeper servers too (they have no `Session:` line; serving means
//! in a quorum). Usable as a readiness probe; the exit status:
//!
//! - 0 ([`IN_QUORUM`]): every node is in a working quorum, and they name one leader and epoch;
//! - 1 ([`NOT_IN_QUORUM`]): every node answered, but one is not in a quorum (LOOKING, or its
//!   session is not up yet) or the nodes name different leaders;
//! - 2 ([`UNREACHABLE`]): a node could not be reached or did not answer `srvr`;
//! - 64 ([`USAGE`], sysexits' EX_USAGE): the command line is wrong (an address that is no
//!   address, an unknown option); nothing was asked.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

pub const IN_QUORUM: u8 = 0;
pub const NOT_IN_QUORUM: u8 = 1;
pub const UNREACHABLE: u8 = 2;
pub const USAGE: u8 = 64;

/// Where `zkelect status` looks when no host or port is given: ZooKeeper's client port on this
/// machine.
pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 2181;

pub struct Options {
    /// As typed; none means the default address.
    pub addresses: Vec<String>,
    pub timeout: Duration,
    pub json: bool,
}

/// A node's address as typed, completed with the defaults: `host`, `:port`, `host:port`, `[v6]`,
/// `[v6]:port`, or a bare IPv6 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

pub fn parse_target(text: &str) -> Result<Target, String> {
    let port = |p: &str| {
        p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("{text:?}: {p:?} is not a port (1-65535)"))
    };
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| format!("{text:?}: no ']' after the IPv6 address"))?;
        match after {
            "" => (host, DEFAULT_PORT),
            _ => match after.strip_prefix(':') {
                Some(p) => (host, port(p)?),
                None => return Err(format!("{text:?}: expected ':port' after ']'")),
            },
        }
    } else if text.matches(':').count() > 1 {
        // A bare IPv6 address: its colons are not a port separator.
        (text, DEFAULT_PORT)
    } else {
        match text.split_once(':') {
            Some((h, p)) => (h, port(p)?),
            None => (text, DEFAULT_PORT),
        }
    };
    if host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(format!("{text:?}: {host:?} is not a host name or address"));
    }
    let host = if host.is_empty() { DEFAULT_HOST } else { host };
    Ok(Target { host: host.to_string(), port })
}

/// What a node said.
#[derive(Debug, Clone, PartialEq)]
enum Probe {
    /// No connection, or no answer to `srvr`.
    Unreachable(String),
    /// A ZooKeeper server answers "not currently serving requests" while it elects.
    NotServing,
    Answered(Answer),
}

#[derive(Debug, Clone, PartialEq)]
struct Answer {
    mode: String,
    /// zkelect's `Leader:` line (`none` while looking); ZooKeeper has none.
    leader: Option<i64>,
    epoch: Option<i64>,
    /// zkelect's `Session:` line; ZooKeeper has none.
    session: Option<String>,
    /// zkelect's `Lease:` line (`active (confirmed for 412 ms)`, `waiting 380 ms`, `inactive`).
    lease: Option<String>,
    version: String,
    in_quorum: bool,
    peers: PeerView,
}

/// The per-peer view of `elec`, or why there is none.
#[derive(Debug, Clone, PartialEq)]
enum PeerView {
    Lines(Vec<String>),
    NotWhitelisted,
    /// Connection closed without an answer: ZooKeeper does not know `elec`.
    Unknown,
    Failed(String),
}

impl PeerView {
    fn missing_reason(&self) -> Option<String> {
        match self {
            PeerView::Lines(_) => None,
            PeerView::NotWhitelisted => Some(
                "elec is not in the node's 4lw.commands.whitelist (add it, e.g. srvr,elec, to see its peers)".into(),
            ),
            PeerView::Unknown => Some("the node does not answer elec (a ZooKeeper server?)".into()),
            PeerView::Failed(e) => Some(format!("elec failed: {e}")),
        }
    }
}

struct Report {
    target: Target,
    probe: Probe,
}

impl Report {
    fn code(&self) -> u8 {
        match &self.probe {
            Probe::Unreachable(_) => UNREACHABLE,
            Probe::NotServing => NOT_IN_QUORUM,
            Probe::Answered(a) if a.in_quorum => IN_QUORUM,
            Probe::Answered(_) => NOT_IN_QUORUM,
        }
    }

    /// (leader, epoch) a node in a quorum names, if it says.
    fn leadership(&self) -> Option<(i64, i64)> {
        match &self.probe {
            Probe::Answered(a) if a.in_quorum => Some((a.leader?, a.epoch?)),
            _ => None,
        }
    }

    fn is_leader(&self) -> bool {
        matches!(&self.probe, Probe::Answered(a) if a.in_quorum && a.mode == "leader")
    }
}

/// Connects to the first of the target's addresses that accepts, in resolver order.
fn connect(target: &Target, timeout: Duration) -> Result<(TcpStream, SocketAddr), String> {
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .collect();
    connect_any(target, &addrs, timeout)
}

fn connect_any(target: &Target, addrs: &[SocketAddr], timeout: Duration) -> Result<(TcpStream, SocketAddr), String> {
    let mut errors = Vec::new();
    for a in addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => return Ok((s, *a)),
            Err(e) => errors.push(format!("{a}: {e}")),
        }
    }
    if errors.is_empty() {
        return Err(format!("{} resolves to no address", target.host));
    }
    Err(errors.join("; "))
}

/// Sends `word` (a four-letter word, and what follows it) to the node and reads its answer.
pub fn ask(target: &Target, word: &str, timeout: Duration) -> Result<String, String> {
    let (stream, addr) = connect(target, timeout)?;
    ask_stream(stream, word, timeout).map_err(|e| format!("{addr}: {e}"))
}

fn ask_stream(mut s: TcpStream, word: &str, timeout: Duration) -> Result<String, String> {
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.write_all(word.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key)).map(str::trim)
}

fn refused(answer: &str) -> bool {
    answer.contains("not in the whitelist")
}

fn probe(target: &Target, timeout: Duration) -> Probe {
    let (stream, addr) = match connect(target, timeout) {
        Ok(c) => c,
        Err(e) => return Probe::Unreachable(e),
    };
    let srvr = match ask_stream(stream, "srvr", timeout) {
        Ok(t) if t.is_empty() => return Probe::Unreachable("connected, but no answer to srvr".into()),
        Ok(t) if refused(&t) => return Probe::Unreachable("srvr is not in 4lw.commands.whitelist".into()),
        Ok(t) => t,
        Err(e) => return Probe::Unreachable(format!("{addr}: {e}")),
    };
    if srvr.contains("not currently serving requests") {
        return Probe::NotServing;
    }
    let peers = match TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string()) {
        Ok(s) => match ask_stream(s, "elec", timeout) {
            Ok(t) if refused(&t) => PeerView::NotWhitelisted,
            Ok(t) if t.is_empty() => PeerView::Unknown,
            Ok(t) => PeerView::Lines(t.lines().map(str::to_string).collect()),
            // ZooKeeper resets the connection of a word it does not know.
            Err(e) if e.contains("reset") => PeerView::Unknown,
            Err(e) => PeerView::Failed(e),
        },
        Err(e) => PeerView::Failed(e),
    };
    Probe::Answered(parse_srvr(&srvr, peers))
}

fn parse_srvr(srvr: &str, peers: PeerView) -> Answer {
    let mode = field(srvr, "Mode:").unwrap_or("unknown").to_string();
    let session = field(srvr, "Session:").map(str::to_string);
    let in_quorum = match session.as_deref() {
        // zkelect: established leadership, or a ZooKeeper leader confirmed through the election.
        Some(s) => mode != "looking" && (s == "broadcast" || s == "election-only"),
        // ZooKeeper answers srvr only while serving.
        None => matches!(mode.as_str(), "leader" | "follower" | "observer" | "standalone" | "read-only"),
    };
    Answer {
        leader: field(srvr, "Leader:").and_then(|l| l.parse().ok()),
        epoch: field(srvr, "Epoch:").and_then(|e| e.parse().ok()),
        version: field(srvr, "Zookeeper version:").unwrap_or("?").to_string(),
        lease: field(srvr, "Lease:").map(str::to_string),
        mode,
        session,
        in_quorum,
        peers,
    }
}

/// One line per node: `127.0.0.1:2181: follower of server 3, epoch 1, session broadcast — in quorum`.
fn summary(r: &Report) -> String {
    let a = match &r.probe {
        Probe::Unreachable(e) => return format!("{}: unreachable ({e})", r.target),
        Probe::NotServing => {
            return format!("{}: not serving (ZooKeeper is electing a leader) — not in a quorum", r.target);
        }
        Probe::Answered(a) => a,
    };
    let role = match (a.mode.as_str(), a.leader) {
        ("leader", _) => "leader".to_string(),
        ("looking", _) => "looking for a leader".to_string(),
        (m, Some(l)) => format!("{m} of server {l}"),
        (m, None) => m.to_string(),
    };
    let mut line = format!("{}: {role}", r.target);
    if let Some(e) = a.epoch {
        let _ = write!(line, ", epoch {e}");
    }
    if let Some(s) = &a.session {
        let _ = write!(line, ", session {s}");
    }
    // Only a leader has a lease worth showing (`zkelect run` acts on it).
    if let (Some(l), "leader") = (&a.lease, a.mode.as_str()) {
        let _ = write!(line, ", lease {l}");
    }
    line.push_str(if a.in_quorum { " — in quorum" } else { " — not in a quorum" });
    line
}

/// Whether the nodes agree, and the exit status of the whole run.
#[derive(Debug, PartialEq)]
struct Verdict {
    /// The (leader, epoch) most nodes in a quorum name.
    leadership: Option<(i64, i64)>,
    /// Nodes in a quorum that name another leadership, or a second node claiming to lead.
    disagreeing: Vec<usize>,
    /// Nodes in a quorum, each by its own account.
    in_quorum: usize,
    /// Of those, the ones that do not disagree: in a quorum under the leadership.
    with_leader: usize,
    code: u8,
}

fn verdict(reports: &[Report]) -> Verdict {
    let mut counts: Vec<((i64, i64), usize)> = Vec::new();
    for l in reports.iter().filter_map(Report::leadership) {
        match counts.iter_mut().find(|(k, _)| *k == l) {
            Some((_, n)) => *n += 1,
            None => counts.push((l, 1)),
        }
    }
    // Most named first; on a tie, the newer epoch.
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.1.cmp(&a.0.1)));
    let leadership = counts.first().map(|c| c.0);
    let mut disagreeing: Vec<usize> = reports
        .iter()
        .enumerate()
        .filter(|(_, r)| r.leadership().is_some_and(|l| Some(l) != leadership))
        .map(|(i, _)| i)
        .collect();
    // ZooKeeper nodes do not say whom they follow, but two leaders is a disagreement.
    let leaders: Vec<usize> = reports.iter().enumerate().filter(|(_, r)| r.is_leader()).map(|(i, _)| i).collect();
    if leaders.len() > 1 {
        for i in leaders {
            let named = reports[i].leadership();
            if !disagreeing.contains(&i) && (named.is_none() || named != leadership) {
                disagreeing.push(i);
            }
        }
        disagreeing.sort_unstable();
    }
    let worst = reports.iter().map(Report::code).max().unwrap_or(UNREACHABLE);
    let code = if !disagreeing.is_empty() { worst.max(NOT_IN_QUORUM) } else { worst };
    let in_quorum = reports.iter().filter(|r| r.code() == IN_QUORUM).count();
    let with_leader = in_quorum.saturating_sub(disagreeing.len());
    Verdict { leadership, disagreeing, in_quorum, with_leader, code }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn ensemble_lines(reports: &[Report], v: &Verdict) -> Vec<String> {
    let mut out = Vec::new();
    let total = reports.len();
    let leaders: Vec<&Report> = reports.iter().filter(|r| r.is_leader()).collect();
    let mut line = match (v.leadership, leaders.as_slice()) {
        (Some((l, e)), _) => format!("ensemble: leader is server {l} (epoch {e})"),
        (None, [one]) => format!("ensemble: leader is {}", one.target),
        (None, []) => "ensemble: no leader".to_string(),
        (None, _) => "ensemble: several nodes claim to lead".to_string(),
    };
    let _ = write!(line, "; {} of {} in a quorum with it", v.with_leader, plural(total, "node", "nodes"));
    out.push(line);
    let named = |i: usize| reports.get(i).map(|r| r.target.to_string());
    let who: Vec<String> = v
        .disagreeing
        .iter()
        .filter_map(|i| {
            let r = reports.get(*i)?;
            Some(match r.leadership() {
                Some((l, e)) => format!("{} (server {l}, epoch {e})", r.target),
                None => format!("{} (leads)", r.target),
            })
        })
        .collect();
    if !who.is_empty() {
        out.push(format!("  disagreeing: {}", who.join(", ")));
    }
    let looking: Vec<String> = (0..total).filter(|i| reports[*i].code() == NOT_IN_QUORUM).filter_map(named).collect();
    if !looking.is_empty() {
        out.push(format!("  not in a quorum: {}", looking.join(", ")));
    }
    let down: Vec<String> = (0..total).filter(|i| reports[*i].code() == UNREACHABLE).filter_map(named).collect();
    if !down.is_empty() {
        out.push(format!("  unreachable: {}", down.join(", ")));
    }
    out
}

/// Asks every node (in parallel) and prints the result; returns the exit status.
pub fn run(opts: Options) -> u8 {
    let texts = if opts.addresses.is_empty() { vec![String::new()] } else { opts.addresses.clone() };
    let mut targets = Vec::new();
    for t in &texts {
        match parse_target(t) {
            Ok(t) => targets.push(t),
            Err(e) => {
                eprintln!("zkelect status: {e}");
                return USAGE;
            }
        }
    }
    let reports = probe_all(&targets, opts.timeout);
    let v = verdict(&reports);
    if opts.json {
        say!("{}", json(&reports, &v));
        return v.code;
    }
    for r in &reports {
        say!("{}", summary(r));
        if reports.len() > 1 {
            continue;
        }
        if let Probe::Answered(a) = &r.probe {
            say!("  version {}", a.version);
            match &a.peers {
                PeerView::Lines(lines) => lines.iter().for_each(|l| say!("  {l}")),
                other => say!("  no per-peer view: {}", other.missing_reason().unwrap_or_default()),
            }
        }
    }
    if reports.len() > 1 {
        for l in ensemble_lines(&reports, &v) {
            say!("{l}");
        }
    }
    v.code
}

fn probe_all(targets: &[Target], timeout: Duration) -> Vec<Report> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .iter()
            .map(|t| {
                let spawned = std::thread::Builder::new()
                    .name(format!("status-{t}"))
                    .spawn_scoped(scope, move || probe(t, timeout));
                (t, spawned)
            })
            .collect();
        handles
            .into_iter()
            .map(|(t, h)| {
                let probe = match h {
                    Ok(h) => h.join().unwrap_or_else(|_| Probe::Unreachable("the probe failed".into())),
                    Err(e) => Probe::Unreachable(format!("cannot start a thread: {e}")),
                };
                Report { target: t.clone(), probe }
            })
            .collect()
    })
}

/// A minimal JSON value: enough for this output, without a serialisation framework.
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(&'static str, Json)>),
}

impl Json {
    fn opt_int(v: Option<i64>) -> Json {
        v.map_or(Json::Null, Json::Int)
    }
    fn opt_str(v: Option<String>) -> Json {
        v.map_or(Json::Null, Json::Str)
    }
}

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Int(i) => write!(f, "{i}"),
            Json::Str(s) => {
                f.write_char('"')?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\r' => f.write_str("\\r")?,
                        '\t' => f.write_str("\\t")?,
                        c if u32::from(c) < 0x20 => write!(f, "\\u{:04x}", u32::from(c))?,
                        c => f.write_char(c)?,
                    }
                }
                f.write_char('"')
            }
            Json::Arr(items) => {
                f.write_char('[')?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_char(']')
            }
            Json::Obj(fields) => {
                f.write_char('{')?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{}:{v}", Json::Str((*k).to_string()))?;
                }
                f.write_char('}')
            }
        }
    }
}

fn status_name(code: u8) -> &'static str {
    match code {
        IN_QUORUM => "in_quorum",
        NOT_IN_QUORUM => "not_in_quorum",
        _ => "unreachable",
    }
}

/// `{"nodes":[…],"ensemble":{…},"exit_code":N}`; see the README for the fields.
fn json(reports: &[Report], v: &Verdict) -> Json {
    let nodes = reports
        .iter()
        .map(|r| {
            let mut fields = vec![
                ("address", Json::Str(r.target.to_string())),
                ("status", Json::Str(status_name(r.code()).into())),
                ("exit_code", Json::Int(i64::from(r.code()))),
            ];
            match &r.probe {
                Probe::Unreachable(e) => fields.push(("error", Json::Str(e.clone()))),
                Probe::NotServing => fields.push(("mode", Json::Str("not serving".into()))),
                Probe::Answered(a) => {
                    fields.push(("mode", Json::Str(a.mode.clone())));
                    fields.push(("leader", Json::opt_int(a.leader)));
                    fields.push(("epoch", Json::opt_int(a.epoch)));
                    fields.push(("session", Json::opt_str(a.session.clone())));
                    fields.push(("lease", Json::opt_str(a.lease.clone())));
                    fields.push(("version", Json::Str(a.version.clone())));
                    let (elec, missing) = match &a.peers {
                        PeerView::Lines(l) => (Json::Arr(l.iter().cloned().map(Json::Str).collect()), Json::Null),
                        other => (Json::Null, Json::opt_str(other.missing_reason())),
                    };
                    fields.push(("elec", elec));
                    fields.push(("elec_missing", missing));
                }
            }
            Json::Obj(fields)
        })
        .collect();
    let disagreeing =
        v.disagreeing.iter().filter_map(|i| reports.get(*i)).map(|r| Json::Str(r.target.to_string())).collect();
    let ensemble = Json::Obj(vec![
        ("leader", Json::opt_int(v.leadership.map(|l| l.0))),
        ("epoch", Json::opt_int(v.leadership.map(|l| l.1))),
        ("agree", Json::Bool(v.disagreeing.is_empty())),
        ("disagreeing", Json::Arr(disagreeing)),
        ("in_quorum", Json::Int(v.in_quorum as i64)),
        ("with_leader", Json::Int(v.with_leader as i64)),
        ("nodes", Json::Int(reports.len() as i64)),
    ]);
    Json::Obj(vec![("nodes", Json::Arr(nodes)), ("ensemble", ensemble), ("exit_code", Json::Int(i64::from(v.code)))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let ok = |s: &str, host: &str, port: u16| {
            assert_eq!(parse_target(s), Ok(Target { host: host.into(), port }), "{s:?}");
        };
        ok("", "127.0.0.1", 2181);
        ok("zk1", "zk1", 2181);
        ok(":2182", "127.0.0.1", 2182);
        ok("zk1:2183", "zk1", 2183);
        ok("[::1]", "::1", 2181);
        ok("[::1]:2184", "::1", 2184);
        ok("::1", "::1", 2181);
        ok("fe80::1", "fe80::1", 2181);
        for bad in ["zk1:", "zk1:x", "zk1:0", "zk1:65536", "[::1", "[::1]x", "[::1]:", "a b:1", "http://x"] {
            assert!(parse_target(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(parse_target("[::1]:5").map(|t| t.to_string()), Ok("[::1]:5".into()));
        assert_eq!(parse_target("").map(|t| t.to_string()), Ok("127.0.0.1:2181".into()));
    }

    const FOLLOWER: &str = "Zookeeper version: 3.8.0-zkelect-0.1.0, built on unknown\nMode: follower\nLeader: 3\nEpoch: 2\nSession: broadcast\nLease: inactive\n";

    fn answered(mode: &str, leader: Option<i64>, epoch: i64, session: Option<&str>) -> Probe {
        let mut srvr = format!("Zookeeper version: x\nMode: {mode}\n");
        if let Some(s) = session {
            srvr.push_str(&format!(
                "Leader: {}\nEpoch: {epoch}\nSession: {s}\n",
                leader.map_or("none".into(), |l| l.to_string())
            ));
        }
        Probe::Answered(parse_srvr(&srvr, PeerView::NotWhitelisted))
    }

    fn report(port: u16, probe: Probe) -> Report {
        Report { target: Target { host: "h".into(), port }, probe }
    }

    #[test]
    fn srvr_answers() {
        let a = parse_srvr(FOLLOWER, PeerView::Unknown);
        assert_eq!((a.mode.as_str(), a.leader, a.epoch, a.in_quorum), ("follower", Some(3), Some(2), true));
        let looking = parse_srvr("Mode: looking\nLeader: none\nEpoch: 0\nSession: none\n", PeerView::Unknown);
        assert_eq!((looking.leader, looking.in_quorum), (None, false));
        let confirming =
            parse_srvr("Mode: follower\nLeader: 5\nEpoch: 1\nSession: election-only (confirming)\n", PeerView::Unknown);
        assert!(!confirming.in_quorum);
        let zookeeper = parse_srvr("Zookeeper version: 3.8.0\nMode: follower\n", PeerView::Unknown);
        assert!(zookeeper.in_quorum && zookeeper.leader.is_none());
    }

    /// A named ensemble: what its nodes say, the exit status, the leadership, how many disagree.
    type Case = (&'static str, Vec<Probe>, u8, Option<(i64, i64)>, usize);

    #[test]
    fn ensemble_verdicts() {
        let f = |l: i64, e: i64| answered("follower", Some(l), e, Some("broadcast"));
        let lead = |l: i64, e: i64| answered("leader", Some(l), e, Some("broadcast"));
        let cases: Vec<Case> = vec![
            ("healthy", vec![f(3, 2), f(3, 2), lead(3, 2)], IN_QUORUM, Some((3, 2)), 0),
            (
                "one looking",
                vec![f(3, 2), lead(3, 2), answered("looking", None, 2, Some("none"))],
                NOT_IN_QUORUM,
                Some((3, 2)),
                0,
            ),
            ("one down", vec![f(3, 2), lead(3, 2), Probe::Unreachable("refused".into())], UNREACHABLE, Some((3, 2)), 0),
            ("split", vec![f(3, 2), lead(3, 2), f(2, 3)], NOT_IN_QUORUM, Some((3, 2)), 1),
            (
                "ZooKeeper",
                vec![answered("follower", None, 0, None), answered("leader", None, 0, None)],
                IN_QUORUM,
                None,
                0,
            ),
            (
                "two ZooKeeper leaders",
                vec![answered("leader", None, 0, None), answered("leader", None, 0, None)],
                NOT_IN_QUORUM,
                None,
                2,
            ),
            ("ZooKeeper electing", vec![Probe::NotServing, answered("leader", None, 0, None)], NOT_IN_QUORUM, None, 0),
        ];
        for (name, probes, code, leadership, disagreeing) in cases {
            let reports: Vec<Report> = probes.into_iter().enumerate().map(|(i, p)| report(i as u16 + 1, p)).collect();
            let v = verdict(&reports);
            assert_eq!((v.code, v.leadership, v.disagreeing.len()), (code, leadership, disagreeing), "{name}");
            let text = ensemble_lines(&reports, &v).join("\n");
            assert!(text.contains(&format!("of {} nodes in a quorum", reports.len())), "{name}: {text}");
            assert_eq!(text.contains("disagreeing"), disagreeing > 0, "{name}: {text}");
        }
        let split = [report(1, f(3, 2)), report(2, lead(3, 2)), report(3, f(2, 3))];
        let text = ensemble_lines(&split, &verdict(&split)).join("\n");
        assert!(
            text.contains("leader is server 3 (epoch 2); 2 of 3 nodes") && text.contains("h:3 (server 2, epoch 3)"),
            "{text}"
        );
        let one = [report(1, f(3, 2))];
        assert!(ensemble_lines(&one, &verdict(&one))[0].ends_with("1 of 1 node in a quorum with it"));
    }

    #[test]
    fn every_resolved_address_is_tried() {
        let ports = crate::cli::localports::free_ports(2).expect("ports");
        let listener = std::net::TcpListener::bind(("127.0.0.1", ports[1])).expect("bind");
        let refused: SocketAddr = ([127, 0, 0, 1], ports[0]).into();
        let open = listener.local_addr().expect("addr");
        let t = Target { host: "h".into(), port: 1 };
        let timeout = Duration::from_secs(5);
        assert_eq!(connect_any(&t, &[refused, open], timeout).map(|c| c.1), Ok(open));
        let e = connect_any(&t, &[refused, refused], timeout).map(|c| c.1).expect_err("nothing listens");
        assert_eq!(e.matches(&refused.to_string()).count(), 2, "{e}");
        assert!(connect_any(&t, &[], timeout).is_err());
    }

    #[test]
    fn json_output() {
        assert_eq!(Json::Str("a\"b\\c\nd\u{1}é".into()).to_string(), r#""a\"b\\c\nd\u0001é""#);
        let reports = [
            report(1, Probe::Answered(parse_srvr(FOLLOWER, PeerView::Lines(vec!["State: x".into()])))),
            report(2, Probe::Unreachable("refused".into())),
        ];
        let text = json(&reports, &verdict(&reports)).to_string();
        assert_eq!(
            text,
            concat!(
                r#"{"nodes":[{"address":"h:1","status":"in_quorum","exit_code":0,"mode":"follower","leader":3,"epoch":2,"#,
                r#""session":"broadcast","lease":"inactive","version":"3.8.0-zkelect-0.1.0, built on unknown","elec":["State: x"],"#,
                r#""elec_missing":null},"#,
                r#"{"address":"h:2","status":"unreachable","exit_code":2,"error":"refused"}],"#,
                r#""ensemble":{"leader":3,"epoch":2,"agree":true,"disagreeing":[],"in_quorum":1,"with_leader":1,"nodes":2},"exit_code":2}"#
            )
        );
    }
}
