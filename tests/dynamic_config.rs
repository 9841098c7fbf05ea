//! A ZooKeeper 3.5+ configuration as it is laid out after a first reconfiguration: zoo.cfg with the
//! static keys and `dynamicConfigFile`, the membership in `zoo.cfg.dynamic.<hex version>` with
//! each server's client address after `;`, and no `clientPort` in zoo.cfg. Three `zkelect start`
//! processes read it, elect, serve the four-letter words on the client address of their own server
//! line, report the dynamic file's version, and warn once that they do not reconfigure.

mod common;

use common::cluster::broadcast_of;
use common::daemon::Daemon;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn ask(port: u16, word: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn a_dynamic_config_file_with_client_addresses_in_the_server_lines_runs() {
    let tmp = tempfile::Builder::new().prefix("zkelect-dynamic-").tempdir().expect("tmp");
    let root = tmp.path();
    let p = common::free_ports(9);
    let dynamic: String = (1..=3)
        .map(|i| {
            let (q, e, c) = (p[3 * (i - 1)], p[3 * (i - 1) + 1], p[3 * (i - 1) + 2]);
            format!("server.{i}=127.0.0.1:{q}:{e}:participant;127.0.0.1:{c}\n")
        })
        .collect();
    let mut nodes = Vec::new();
    for sid in 1..=3 {
        let dir = root.join(format!("n{sid}"));
        std::fs::create_dir_all(dir.join("data")).expect("mkdir");
        std::fs::write(dir.join("data/myid"), format!("{sid}\n")).expect("myid");
        let dynamic_file = dir.join("zoo.cfg.dynamic.100000000");
        std::fs::write(&dynamic_file, &dynamic).expect("dynamic file");
        std::fs::write(
            dir.join("zoo.cfg"),
            format!(
                "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\n4lw.commands.whitelist=srvr,conf\n\
                 admin.enableServer=false\nreconfigEnabled=true\nstandaloneEnabled=false\ndynamicConfigFile={}\n",
                dir.join("data").display(),
                dynamic_file.display()
            ),
        )
        .expect("zoo.cfg");
        nodes.push(Daemon::start(&dir.join("zoo.cfg"), &dir, &dir.join("zkelect.log"), &[]));
    }
    let log = |sid: i64| std::fs::read_to_string(root.join(format!("n{sid}/zkelect.log"))).unwrap_or_default();
    let all: Vec<(String, i64, i64)> = common::wait_for(T, "the three nodes in broadcast", || {
        let v: Vec<_> = (1..=3).map(|sid| broadcast_of(&log(sid))).collect::<Option<_>>()?;
        v.iter().all(|b| b.1 == v[0].1 && b.2 == v[0].2).then_some(v)
    });
    assert_eq!(all[0].1, 3, "the highest sid leads");
    for sid in 1..=3 {
        // One configuration warning only: reconfiguration is not done (the membership stays the file's).
        let warnings: Vec<String> = log(sid)
            .lines()
            .filter(|l| l.contains(" WARN ") && l.contains("[main:config"))
            .map(str::to_string)
            .collect();
        assert!(
            warnings.len() == 1 && warnings[0].contains("reconfigEnabled=true: zkelect has no dynamic reconfiguration"),
            "node {sid}: {warnings:#?}"
        );
        // The client address of its own server line.
        let port = p[3 * (sid as usize - 1) + 2];
        let srvr = ask(port, "srvr").unwrap_or_else(|| panic!("node {sid}: no srvr on 127.0.0.1:{port}"));
        assert!(srvr.contains("Mode: "), "node {sid}: {srvr}");
        let conf = ask(port, "conf").expect("conf");
        assert!(conf.contains("version=100000000"), "node {sid}: the dynamic file's version in conf: {conf}");
    }
    drop(nodes);
}
