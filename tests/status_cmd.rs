//! `zkelect status` against real nodes: address forms and defaults, a whole ensemble's summary
//! and exit status, `--json`, the missing per-peer view, and usage errors with their own exit
//! status.

mod common;

use common::cluster::Cluster;
use common::daemon::BIN;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn status(args: &[String]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN).arg("status").args(["--timeout-ms", "2000"]).args(args).output().expect("status");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn client(c: &Cluster, sid: i64) -> String {
    format!("127.0.0.1:{}", c.ports[&sid].2)
}

#[test]
fn a_whole_ensemble_at_once() {
    let mut c = Cluster::new(3, 0, "");
    c.start_all();
    c.wait_broadcast(&[1, 2, 3], T);
    let all: Vec<String> = (1..=3).map(|s| client(&c, s)).collect();
    let (code, out, _) = status(&all);
    assert_eq!(code, Some(0), "{out}");
    for (sid, line) in (1..=3).zip(out.lines()) {
        let role = if sid == 3 { "leader" } else { "follower of server 3" };
        // The leader also says where its lease stands (`lease waiting 480 ms`, `lease active (…)`).
        assert_eq!(line.contains(", lease "), sid == 3, "{line}");
        let line = match line.split_once(", lease ") {
            Some((head, rest)) if sid == 3 => format!("{head} — {}", rest.rsplit_once(" — ").map_or("", |(_, q)| q)),
            _ => line.to_string(),
        };
        assert_eq!(line, format!("{}: {role}, epoch 1, session broadcast — in quorum", client(&c, sid)));
    }
    assert!(out.ends_with("ensemble: leader is server 3 (epoch 1); 3 of 3 nodes in a quorum with it\n"), "{out}");

    // One more address where nothing listens: the worst status wins.
    let unused = format!("127.0.0.1:{}", common::free_ports(1)[0]);
    let (code, out, _) = status(&[all.clone(), vec![unused.clone()]].concat());
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("3 of 4 nodes in a quorum with it") && out.contains(&format!("  unreachable: {unused}")),
        "{out}"
    );

    // The leader gone: the other two elect again; asked while they do, or after.
    c.kill(3);
    c.wait_new_epoch(&[1, 2], 1, T);
    let (code, out, _) = status(&all);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("ensemble: leader is server 2 (epoch 2); 2 of 3 nodes in a quorum with it"), "{out}");

    let (code, json, _) = status(&[vec!["--json".to_string()], all[..2].to_vec()].concat());
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json.lines().count(), 1, "{json}");
    for part in [
        format!(r#"{{"nodes":[{{"address":"{}","status":"in_quorum","exit_code":0,"mode":"follower","leader":2,"epoch":2,"session":"broadcast""#, all[0]),
        format!(r#"{{"address":"{}","status":"in_quorum","exit_code":0,"mode":"leader","leader":2,"epoch":2"#, all[1]),
        r#""elec":["State: "#.to_string(),
        r#""elec_missing":null"#.to_string(),
        r#""ensemble":{"leader":2,"epoch":2,"agree":true,"disagreeing":[],"in_quorum":2,"with_leader":2,"nodes":2},"exit_code":0}"#.to_string(),
    ] {
        assert!(json.contains(&part), "{part}\nnot in\n{json}");
    }
}

#[test]
fn address_forms_and_the_missing_peer_view() {
    let mut c = Cluster::new(3, 0, "4lw.commands.whitelist=srvr\n");
    c.start(1);
    let port = c.ports[&1].2;
    common::wait_for(T, "the client port", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
    // `:port` means 127.0.0.1; a name is resolved.
    for form in [format!(":{port}"), format!("localhost:{port}")] {
        let (code, out, err) = status(std::slice::from_ref(&form));
        assert_eq!(code, Some(1), "{form}: {out}{err}");
        assert!(out.contains("looking for a leader, epoch 0, session none — not in a quorum"), "{form}: {out}");
        assert!(
            out.contains(
                "  no per-peer view: elec is not in the node's 4lw.commands.whitelist (add it, e.g. srvr,elec"
            ),
            "{form}: {out}"
        );
    }
    // No address: ZooKeeper's client port on this machine.
    let (_, out, _) = status(&[]);
    assert!(out.starts_with("127.0.0.1:2181: "), "{out}");
}

#[test]
fn usage_errors_have_their_own_exit_status() {
    for args in [vec!["status", "zk1:port"], vec!["status", "zk1:70000"], vec!["status", "--no-such-option"], vec![]] {
        let out = Command::new(BIN).args(&args).output().expect("run");
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let help = Command::new(BIN).args(["status", "--help"]).output().expect("run");
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("64 usage error"));
}
