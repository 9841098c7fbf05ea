//! The status page at `/` of the admin port: this node, the leader and epoch, every configured
//! server with its election connection, the last vote it sent us and the last connect error, and
//! the recent elections. One self-contained HTML document (no external assets: the machine that
//! shows it may be offline), rendered here so that it reads without JavaScript too; a small
//! script refreshes it in place every two seconds and says so when the node stops answering.

use super::http::iso_time;
use super::text;
use super::watch::Event;
use crate::config::QuorumPeerConfig;
use crate::election::ServerState;
use crate::snapshot::Snapshot;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

/// Refresh interval of the page's script, in ms.
pub const REFRESH_MS: u64 = 2000;

/// The page's Content-Security-Policy: nothing is loaded from anywhere, the inline style and
/// script run, and the script may fetch this page again.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
     connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1.2 s ago`, `3 min ago`: how long before `now` `t` was.
fn ago(t: SystemTime, now: SystemTime) -> String {
    let d = now.duration_since(t).unwrap_or(Duration::ZERO);
    let s = d.as_secs();
    if d < Duration::from_secs(10) {
        format!("{:.1} s ago", d.as_secs_f64())
    } else if s < 120 {
        format!("{s} s ago")
    } else if s < 7200 {
        format!("{} min ago", s / 60)
    } else {
        format!("{} h ago", s / 3600)
    }
}

/// A time as `<time>`: the age as text, the UTC time on hover.
fn when(t: SystemTime, now: SystemTime) -> String {
    let iso = iso_time(t);
    format!("<time datetime=\"{iso}\" title=\"{iso}\">{}</time>", ago(t, now))
}

pub fn render(snap: &Snapshot, cfg: &QuorumPeerConfig, changes: &[Event], now: SystemTime) -> String {
    let st = &snap.status;
    let in_quorum = st.in_quorum();
    let leader = if in_quorum { st.leader() } else { None };
    let title = match leader {
        Some(l) => format!("zkelect {}: {}, leader {l}, epoch {}", st.my_id, st.state.lower(), st.current_epoch),
        None => format!("zkelect {}: {}", st.my_id, st.peer_state()),
    };
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>{}</title><style>{STYLE}</style></head>\n\
         <body data-refreshes=\"0\"><header><h1>zkelect &middot; server {}</h1>\
         <p id=\"stale\" role=\"alert\" hidden></p></header>\n<main id=\"main\">\n",
        esc(&title),
        st.my_id
    );
    summary(&mut h, snap, cfg, leader, now);
    servers(&mut h, snap, cfg, leader, now);
    elections(&mut h, snap, now);
    leadership_changes(&mut h, changes, now);
    let _ = write!(
        h,
        "<p class=\"meta\">{} &middot; rendered <time id=\"updated\" datetime=\"{t}\">{t}</time> &middot; \
         refreshes every {} s &middot; <a href=\"{cmd}\">commands</a> &middot; <a href=\"/leader\">/leader</a> \
         &middot; <a href=\"/ready\">/ready</a> &middot; <a href=\"/metrics\">/metrics</a></p>\n</main>\n\
         <script>{SCRIPT}</script></body></html>\n",
        esc(text::VERSION),
        REFRESH_MS / 1000,
        t = iso_time(now),
        cmd = esc(&cfg.admin_server.command_url),
    );
    h
}

fn summary(h: &mut String, snap: &Snapshot, cfg: &QuorumPeerConfig, leader: Option<i64>, now: SystemTime) {
    let st = &snap.status;
    let phase = st.phase.map_or("", |p| p.as_str());
    let voters: Vec<i64> = cfg.quorum_verifier.voters().filter(|s| *s != cfg.my_id).collect();
    let reachable = voters.iter().filter(|s| snap.peers.get(s).is_some_and(|p| p.connected)).count();
    let quorum_class = if st.in_quorum() { "ok" } else { "bad" };
    let (leader_text, leader_class) = match leader {
        Some(l) if l == st.my_id => (format!("{l} (this node)"), "ok"),
        Some(l) => (l.to_string(), "ok"),
        None => ("none (electing)".to_string(), "bad"),
    };
    let e = &st.election;
    let avg = e.sum_ms.checked_div(e.count).unwrap_or(0);
    let _ = writeln!(
        h,
        "<section class=\"cards\">\
         <div class=\"card\"><div class=\"label\">This node</div><div class=\"value\" id=\"state\">{}</div>\
         <div class=\"sub\">{}since {}</div></div>\
         <div class=\"card {leader_class}\"><div class=\"label\">Leader</div><div class=\"value\" id=\"leader\">{}</div>\
         <div class=\"sub\">election round 0x{:x}</div></div>\
         <div class=\"card\"><div class=\"label\">Epoch</div><div class=\"value\" id=\"epoch\">{}</div>\
         <div class=\"sub\">accepted {}</div></div>\
         <div class=\"card {quorum_class}\"><div class=\"label\">Quorum</div><div class=\"value\" id=\"quorum\">{}</div>\
         <div class=\"sub\">{reachable} of {} other voters connected</div></div>\
         <div class=\"card\"><div class=\"label\">Elections</div><div class=\"value\" id=\"election-count\">{}</div>\
         <div class=\"sub\">last {} ms, average {avg} ms, longest {} ms</div></div>\
         </section>",
        esc(st.state.lower()),
        if phase.is_empty() { String::new() } else { format!("{} &middot; ", esc(phase)) },
        when(st.state_since, now),
        esc(&leader_text),
        st.logicalclock,
        st.current_epoch,
        st.accepted_epoch,
        if st.in_quorum() { "in a quorum" } else { "not in a quorum" },
        voters.len(),
        e.count,
        e.last_ms,
        e.max_ms,
    );
}

fn servers(h: &mut String, snap: &Snapshot, cfg: &QuorumPeerConfig, leader: Option<i64>, now: SystemTime) {
    h.push_str(
        "<section><h2>Servers</h2><table id=\"servers\"><thead><tr><th>Server</th><th>Role</th>\
         <th>Election address</th><th>Election connection</th><th>Last vote received</th>\
         <th>Last connect error</th></tr></thead><tbody>\n",
    );
    for (sid, server) in &cfg.quorum_verifier.members {
        let addrs: Vec<String> = server.election_addrs().iter().map(ToString::to_string).collect();
        let role = server.learner_type.as_str();
        let mut name = sid.to_string();
        if *sid == cfg.my_id {
            name.push_str(" (this node)");
        }
        if leader == Some(*sid) {
            name.push_str(" (leader)");
        }
        if *sid == cfg.my_id {
            let _ = writeln!(
                h,
                "<tr id=\"server-{sid}\" data-connection=\"self\" class=\"self\"><td>{name}</td><td>{role}</td>\
                 <td>{}</td><td class=\"conn\">&mdash;</td><td>&mdash;</td><td>&mdash;</td></tr>",
                esc(&addrs.join(" | ")),
            );
            continue;
        }
        let c = snap.peers.get(sid).cloned().unwrap_or_default();
        let (conn, class) = if c.connected {
            (format!("connected{}", c.tls.as_deref().map(|t| format!(" (TLS {})", esc(t))).unwrap_or_default()), "ok")
        } else {
            ("not connected".to_string(), "down")
        };
        // The peer's state as it was when it sent the vote: it does not send another once settled.
        let vote = match snap.last_votes.get(sid) {
            Some((n, t)) => format!(
                "<b>{}</b>, for {} &middot; round 0x{:x} &middot; peerEpoch {} &middot; zxid 0x{:x} &middot; {}",
                n.state.lower(),
                n.leader,
                n.election_epoch,
                n.peer_epoch,
                n.zxid,
                when(*t, now)
            ),
            None => "none yet".to_string(),
        };
        let error = match (&c.last_connect_error, c.last_connect_error_at) {
            (Some(e), Some(t)) => format!("<td class=\"error\">{} &middot; {}</td>", esc(e), when(t, now)),
            (Some(e), None) => format!("<td class=\"error\">{}</td>", esc(e)),
            _ => "<td>&mdash;</td>".to_string(),
        };
        let _ = writeln!(
            h,
            "<tr id=\"server-{sid}\" data-connection=\"{}\" class=\"{class}\"><td>{name}</td><td>{role}</td><td>{}</td>\
             <td class=\"conn\">{conn}</td><td>{vote}</td>{error}</tr>",
            if c.connected { "connected" } else { "disconnected" },
            esc(&addrs.join(" | ")),
        );
    }
    h.push_str("</tbody></table></section>\n");
}

fn elections(h: &mut String, snap: &Snapshot, now: SystemTime) {
    h.push_str(
        "<section><h2>Recent elections</h2><table id=\"elections\"><thead><tr><th>Ended</th><th>Took</th>\
         <th>Winner</th><th>This node became</th></tr></thead><tbody>\n",
    );
    let recent = &snap.status.recent_elections;
    if recent.is_empty() {
        h.push_str("<tr><td colspan=\"4\">none yet</td></tr>\n");
    }
    for e in recent.iter().rev() {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{} ms</td><td>{}</td><td>{}</td></tr>",
            when(e.ended, now),
            e.took_ms,
            e.leader,
            e.state.lower()
        );
    }
    h.push_str("</tbody></table></section>\n");
}

fn leadership_changes(h: &mut String, changes: &[Event], now: SystemTime) {
    h.push_str(
        "<section><h2>Leadership changes</h2><table id=\"changes\"><thead><tr><th>When</th><th>State</th>\
         <th>Leader</th><th>Epoch</th></tr></thead><tbody>\n",
    );
    for e in changes.iter().rev() {
        let c = &e.change;
        let leader = if c.state == ServerState::Looking { "&mdash;".to_string() } else { c.leader.to_string() };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{leader}</td><td>{}</td></tr>",
            when(e.at, now),
            c.state.lower(),
            c.epoch
        );
    }
    h.push_str("</tbody></table></section>\n");
}

const STYLE: &str = "\
body{font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:0;color:#1d2430;background:#f4f6f9}\
header{background:#1d2430;color:#fff;padding:.8em 1.5em;display:flex;align-items:center;gap:1.5em;flex-wrap:wrap}\
h1{font-size:1.25em;margin:0}h2{font-size:1.05em;margin:1.4em 0 .5em}\
main{padding:.5em 1.5em 1.5em}\
#stale{margin:0;background:#b3261e;color:#fff;padding:.3em .8em;border-radius:4px}\
body.stale main{opacity:.55}\
.cards{display:flex;flex-wrap:wrap;gap:.8em;margin-top:1em}\
.card{background:#fff;border-radius:6px;padding:.7em 1em;min-width:10em;box-shadow:0 1px 2px rgba(0,0,0,.12);border-top:4px solid #8a94a6}\
.card.ok{border-top-color:#2e7d32}.card.bad{border-top-color:#b3261e}\
.label{font-size:.8em;text-transform:uppercase;letter-spacing:.05em;color:#5a6475}\
.value{font-size:1.6em;font-weight:600}.sub{font-size:.85em;color:#5a6475}\
table{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 2px rgba(0,0,0,.12)}\
th,td{text-align:left;padding:.4em .7em;border-bottom:1px solid #e3e7ee;vertical-align:top}\
th{font-size:.8em;text-transform:uppercase;letter-spacing:.04em;color:#5a6475;background:#fafbfc}\
tr.ok td.conn{color:#2e7d32;font-weight:600}tr.down td.conn{color:#b3261e;font-weight:600}\
tr.down{background:#fdf0ef}tr.self{background:#f0f4fb}td.error{color:#8c1d18;max-width:28em}\
.meta{color:#5a6475;font-size:.85em;margin-top:1.5em}a{color:#1a56b0}";

const SCRIPT: &str = "(function(){\
var since=null;\
function stale(msg){if(!since){since=new Date();}var s=document.getElementById('stale');\
s.textContent='Cannot reach this node since '+since.toLocaleTimeString()+' ('+msg+'); showing its last answer.';\
s.hidden=false;document.body.classList.add('stale');}\
function refresh(){fetch(location.pathname,{cache:'no-store'}).then(function(r){\
if(!r.ok){throw new Error('HTTP '+r.status);}return r.text();}).then(function(t){\
var d=new DOMParser().parseFromString(t,'text/html');var m=d.getElementById('main');\
if(!m){throw new Error('unexpected answer');}\
document.getElementById('main').replaceWith(document.adoptNode(m));document.title=d.title;\
document.body.dataset.refreshes=String(Number(document.body.dataset.refreshes)+1);\
since=null;document.getElementById('stale').hidden=true;document.body.classList.remove('stale');\
}).catch(function(e){stale(e.message);});}\
setInterval(refresh,2000);})();";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cnx::PeerCnxStatus;
    use crate::election::{Notification, Vote};
    use crate::snapshot::{NodeStatus, SessionPhase, StateChange};

    #[test]
    fn shows_leader_peers_errors_and_elections_escaped() {
        let text = "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=/nonexistent\nserver.1=127.0.0.1:2888:3888\n\
                    server.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n";
        let mut cfg = QuorumPeerConfig::parse(text, "zoo.cfg").expect("parses");
        cfg.set_my_id("1", "myid").expect("myid");
        let mut st = NodeStatus::new(1, Vote::new(3, 0, 1, 1), 1, 1);
        st.state = ServerState::Following;
        st.phase = Some(SessionPhase::Broadcast);
        st.election_ended(3, ServerState::Following, 212);
        let mut snap = Snapshot::of_status(st);
        let now = SystemTime::now();
        snap.peers.insert(3, PeerCnxStatus { connected: true, ..Default::default() });
        snap.peers.insert(
            2,
            PeerCnxStatus {
                connected: false,
                last_connect_error: Some("Connection refused <os error 111>".into()),
                last_connect_error_at: Some(now - Duration::from_secs(2)),
                ..Default::default()
            },
        );
        let vote = Notification {
            version: 2,
            leader: 3,
            zxid: 0,
            election_epoch: 1,
            state: ServerState::Leading,
            sid: 3,
            peer_epoch: 1,
            config_version: None,
        };
        snap.last_votes.insert(3, (vote, now - Duration::from_millis(1500)));
        let changes = [Event {
            seq: 2,
            at: now,
            change: StateChange { state: ServerState::Following, leader: 3, epoch: 1, lease: "inactive" },
        }];
        let page = render(&snap, &cfg, &changes, now);
        assert!(page.contains("<div class=\"value\" id=\"leader\">3</div>"), "{page}");
        assert!(page.contains("<div class=\"value\" id=\"epoch\">1</div>"), "{page}");
        assert!(page.contains("<tr id=\"server-2\" data-connection=\"disconnected\" class=\"down\">"), "{page}");
        assert!(page.contains("Connection refused &lt;os error 111&gt; &middot; <time"), "{page}");
        assert!(page.contains("<tr id=\"server-3\" data-connection=\"connected\" class=\"ok\">"), "{page}");
        assert!(page.contains("<td>3 (leader)</td>"), "{page}");
        assert!(page.contains("<td><b>leading</b>, for 3 &middot; round 0x1"), "{page}");
        assert!(page.contains("<td>212 ms</td><td>3</td><td>following</td>"), "{page}");
        assert!(!page.contains("http://") && !page.contains("https://"), "no external assets");
        // While electing there is no leader to show.
        let mut electing = snap.clone();
        electing.status.state = ServerState::Looking;
        electing.status.phase = None;
        let page = render(&electing, &cfg, &[], now);
        assert!(page.contains("id=\"leader\">none (electing)</div>"), "{page}");
    }

    #[test]
    fn ages() {
        let now = SystemTime::now();
        assert_eq!(ago(now - Duration::from_millis(1500), now), "1.5 s ago");
        assert_eq!(ago(now - Duration::from_secs(30), now), "30 s ago");
        assert_eq!(ago(now - Duration::from_secs(600), now), "10 min ago");
        assert_eq!(ago(now + Duration::from_secs(1), now), "0.0 s ago");
        assert_eq!(esc("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    }
}
