//! Four-letter words on the client port (`NIOServerCnxn.checkFourLetterWord`): the first four
//! bytes of a connection name a command; its text is written and the connection closed. Anything
//! else (a ZooKeeper client's length-prefixed handshake, garbage) is closed at once.

use super::server::{AdminError, AdminServer, Handler, close_gracefully};
use super::text;
use crate::config::QuorumPeerConfig;
use crate::runtime::Shutdown;
use crate::snapshot::Snapshot;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Every word ZooKeeper 3.8 knows (so a known but refused word gets ZooKeeper's answer), plus
/// zkelect's `elec` and `rsgn`.
pub const KNOWN: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "ruok", "stmk", "srst", "srvr", "stat", "wchc",
    "wchp", "wchs", "mntr", "isro", "elec", "rsgn",
];

/// `rsgn` (zkelect only, and only when whitelisted): the leader resigns. An optional server id
/// may follow the word on the same line (`rsgn 3`), as `zkelect resign --to 3` sends it.
pub type Resign = Arc<dyn Fn(Option<i64>) -> Result<String, String> + Send + Sync>;

/// Longest argument line after `rsgn`, and how long the client may take to send it.
const MAX_ARGUMENT: usize = 32;
const ARGUMENT_DEADLINE: Duration = Duration::from_millis(500);

/// How long a client may take to send its four bytes.
const READ_DEADLINE: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: usize = 32;

pub fn allowed(cfg: &QuorumPeerConfig, word: &str) -> bool {
    cfg.four_letter_whitelist.iter().any(|w| w == "*" || w == word)
}

/// The answer to `word`, or `None` when the connection should just be closed.
pub fn answer(word: &str, snap: &Snapshot, cfg: &QuorumPeerConfig, client: &str) -> Option<String> {
    if !KNOWN.contains(&word) {
        return None;
    }
    if !allowed(cfg, word) {
        return Some(format!("{word} is not executed because it is not in the whitelist.\n"));
    }
    Some(match word {
        "ruok" => "imok".into(),
        "srvr" => text::srvr(snap),
        "stat" => text::stat(snap, client),
        "mntr" => text::mntr(snap, cfg),
        "conf" => text::conf(cfg),
        "elec" => text::elec(snap, cfg),
        "isro" => "rw".into(),
        "envi" => format!(
            "Environment:\nzookeeper.version={}, built on unknown\nhost.name={}\nos.name={}\nos.arch={}\nuser.dir={}\n",
            text::VERSION,
            std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim(),
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default()
        ),
        other => format!("{other}: zkelect has no data tree or client sessions to report on.\n"),
    })
}

/// Serves the four-letter words on the client address, if one is configured.
pub fn start(
    cfg: Arc<QuorumPeerConfig>,
    snapshot: Arc<dyn Fn() -> Snapshot + Send + Sync>,
    resign: Resign,
) -> Result<Option<AdminServer>, AdminError> {
    let Some(addr) = cfg.client_address() else {
        log::info!("clientPort is not set");
        return Ok(None);
    };
    let handler: Handler = {
        let cfg = Arc::clone(&cfg);
        Arc::new(move |s: TcpStream, remote: SocketAddr, _: &Shutdown| serve(&s, remote, &cfg, &*snapshot, &resign))
    };
    AdminServer::start("FourLetterWordServer", &addr, MAX_CONNECTIONS, handler).map(Some)
}

fn serve(
    mut s: &TcpStream,
    remote: SocketAddr,
    cfg: &QuorumPeerConfig,
    snapshot: &dyn Fn() -> Snapshot,
    resign: &Resign,
) {
    let _ = s.set_read_timeout(Some(READ_DEADLINE));
    let _ = s.set_write_timeout(Some(READ_DEADLINE));
    let mut word = [0u8; 4];
    if let Err(e) = s.read_exact(&mut word) {
        log::debug!("Closing client connection from {remote}: {e}");
        return;
    }
    let w = String::from_utf8_lossy(&word).to_string();
    if w == "rsgn" && allowed(cfg, "rsgn") {
        let text = match read_argument(s).and_then(|arg| parse_target(&arg)) {
            Ok(to) => {
                log::info!("Processing rsgn command from {remote} (to {to:?})");
                match resign(to) {
                    Ok(what) => format!("ok: {what}\n"),
                    Err(why) => format!("error: {why}\n"),
                }
            }
            Err(why) => format!("error: {why}\n"),
        };
        let _ = s.write_all(text.as_bytes());
        return close_gracefully(s);
    }
    match answer(&w, &snapshot(), cfg, &remote.to_string()) {
        Some(text) => {
            log::debug!("Processing {w} command from {remote}");
            let _ = s.write_all(text.as_bytes());
        }
        None => log::debug!(
            "Closing connection from {remote}: {:?} is not a four-letter word (zkelect serves no clients)",
            word
        ),
    }
    close_gracefully(s);
}

/// The rest of the line after `rsgn` (possibly empty: `echo rsgn | nc` sends only a newline, and a
/// client that sends just the word and waits gets an answer after the short deadline).
fn read_argument(mut s: &TcpStream) -> Result<String, String> {
    let _ = s.set_read_timeout(Some(ARGUMENT_DEADLINE));
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() <= MAX_ARGUMENT {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    if line.len() > MAX_ARGUMENT {
        return Err(format!("the argument after rsgn is longer than {MAX_ARGUMENT} bytes"));
    }
    Ok(String::from_utf8_lossy(&line).trim().to_string())
}

/// `""` → no target; `"3"` → server 3.
fn parse_target(arg: &str) -> Result<Option<i64>, String> {
    if arg.is_empty() {
        return Ok(None);
    }
    arg.parse::<i64>().map(Some).map_err(|_| format!("{arg:?} is not a server id: send `rsgn` or `rsgn <server id>`"))
}

#[cfg(test)]
mod tests {
    use super::parse_target;

    #[test]
    fn rsgn_arguments() {
        assert_eq!(parse_target(""), Ok(None));
        assert_eq!(parse_target("3"), Ok(Some(3)));
        assert!(parse_target("three").unwrap_err().contains("not a server id"));
    }
}
