//! The status page in a real browser (tier `browser`): headless Chromium from Debian's `chromium`
//! package loads `/` from a node of a running ensemble; the test reads the DOM Chromium rendered
//! (after the page's own script refreshed it) before and after the leader is killed.
//!
//! `ZKELECT_STATUS_PAGE_SCREENSHOT=<file.png>` also saves a screenshot of the page after the kill
//! (the README's picture).

mod common;

use common::http::{admin_cluster, get};
use common::tier::{self, Tier};
use common::wait_for;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt;

const T: Duration = Duration::from_secs(20);
/// Sessions of 5 ticks: 1.25 s, enough not to time out on a loaded test machine.
const TICK: &str = "tickTime=250\n";

/// Runs headless Chromium on `url` with `args` in its own process group (killed whole if it
/// hangs), with a fresh profile under `dir`; returns what it wrote to stdout.
fn chromium(dir: &Path, args: &[&str], url: &str) -> String {
    let profile = tempfile::Builder::new().prefix("chromium-").tempdir_in(dir).expect("profile dir");
    let out_path = dir.join("chromium.out");
    let out = std::fs::File::create(&out_path).expect("stdout file");
    let err = std::fs::File::create(dir.join("chromium.err")).expect("stderr file");
    // Below the nodes' priority: the browser stands for an operator's, which runs elsewhere.
    let mut child = Command::new("nice")
        .args(["-n", "10", "chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start chromium");
    let done = child.wait_timeout(Duration::from_secs(60)).expect("wait for chromium");
    if done.is_none() {
        // Hung: end its whole group (its helper processes) while it is still unreaped, so that
        // the group id cannot belong to anyone else yet.
        let _ = Command::new("kill").args(["-KILL", &format!("-{}", child.id())]).stderr(Stdio::null()).status();
        let _ = child.wait();
    }
    assert!(done.is_some_and(|s| s.success()), "chromium failed or hung: {done:?}");
    std::fs::read_to_string(out_path).expect("chromium's output")
}

/// The DOM after the page's script ran for 5 s of virtual time (two refreshes).
fn rendered(dir: &Path, port: u16) -> String {
    chromium(dir, &["--virtual-time-budget=5000", "--dump-dom"], &format!("http://127.0.0.1:{port}/"))
}

/// This node's (leader, epoch) as `/leader` says.
fn leadership(port: u16) -> (Option<i64>, i64) {
    let v = get(port, "/leader").json();
    (v["leader"].as_i64(), v["epoch"].as_i64().unwrap_or(-1))
}

/// The rendered DOM and the leadership it must show: the page is rendered again if the node's
/// leadership changed meanwhile (a loaded test machine can cost an extra election).
fn rendered_stable(dir: &Path, port: u16) -> (String, i64, i64) {
    for _ in 0..3 {
        let before = leadership(port);
        let dom = rendered(dir, port);
        if let ((Some(leader), epoch), true) = (before, leadership(port) == before) {
            return (dom, leader, epoch);
        }
    }
    panic!("node on port {port} kept changing its leadership");
}

fn refreshes(dom: &str) -> u32 {
    dom.split("data-refreshes=\"").nth(1).and_then(|r| r.split('"').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[test]
fn status_page_renders_the_leadership_and_a_killed_peer() {
    if !tier::enabled(Tier::Browser) {
        return;
    }
    let (mut c, admin) = admin_cluster(3, TICK);
    c.start_all();
    assert_eq!(c.wait_broadcast(&[1, 2, 3], T).0, 3);
    let p1 = admin[&1];
    wait_for(T, "node 1 ready", || (get(p1, "/ready").status == 200).then_some(()));

    let (dom, leader, epoch) = rendered_stable(&c.dir, p1);
    assert_eq!(leader, 3);
    assert!(refreshes(&dom) >= 1, "the page's script did not refresh it:\n{dom}");
    assert!(dom.contains(&format!("<div class=\"value\" id=\"leader\">{leader}</div>")), "{dom}");
    assert!(dom.contains(&format!("<div class=\"value\" id=\"epoch\">{epoch}</div>")), "{dom}");
    assert!(dom.contains("<tr id=\"server-3\" data-connection=\"connected\" class=\"ok\">"), "{dom}");
    assert!(dom.contains("<tr id=\"server-1\" data-connection=\"self\""), "{dom}");

    c.kill(3);
    c.wait_new_epoch(&[1, 2], epoch, T);
    wait_for(T, "node 1 to show server 3 down", || {
        get(p1, "/").body.contains("<tr id=\"server-3\" data-connection=\"disconnected\"").then_some(())
    });
    let (dom, new_leader, new_epoch) = rendered_stable(&c.dir, p1);
    assert!(new_leader == 2 && new_epoch > epoch, "leader {new_leader}, epoch {new_epoch}");
    assert!(refreshes(&dom) >= 1, "{dom}");
    assert!(dom.contains(&format!("<div class=\"value\" id=\"leader\">{new_leader}</div>")), "{dom}");
    assert!(dom.contains(&format!("<div class=\"value\" id=\"epoch\">{new_epoch}</div>")), "{dom}");
    let row = dom.split("<tr id=\"server-3\"").nth(1).and_then(|r| r.split("</tr>").next()).unwrap_or("");
    assert!(row.contains("data-connection=\"disconnected\" class=\"down\""), "{row}");
    assert!(row.contains("<td class=\"conn\">not connected</td>"), "{row}");
    // A connect error shows only if node 1 dialled 3 after the kill (it may decide from the votes
    // it already has); when it shows, it is the refused dial.
    assert!(!row.contains("class=\"error\"") || row.contains("Connection refused"), "{row}");
    // The elections are listed, the latest first: 3 won the first, 2 the latest.
    let elections = dom.split("<table id=\"elections\">").nth(1).and_then(|t| t.split("</table>").next()).unwrap_or("");
    let winners: Vec<&str> =
        elections.split("</time></td><td>").skip(1).filter_map(|r| r.split("</td><td>").nth(1)).collect();
    assert!(winners.len() >= 2 && winners[0] == "2" && winners[winners.len() - 1] == "3", "{elections}");

    if let Some(path) = std::env::var_os("ZKELECT_STATUS_PAGE_SCREENSHOT") {
        let shot = format!("--screenshot={}", Path::new(&path).display());
        chromium(
            &c.dir,
            &["--virtual-time-budget=3000", "--hide-scrollbars", "--window-size=1280,1000", &shot],
            &format!("http://127.0.0.1:{p1}/"),
        );
        assert!(std::fs::metadata(&path).is_ok_and(|m| m.len() > 0), "no screenshot at {path:?}");
    }
}
