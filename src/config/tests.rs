//! Configuration tests: Java-written files that must load, and tables pinning the exact error
//! (file, line, key, message) of each bad configuration.

use super::*;
use std::path::{Path, PathBuf};

const BASE: &str = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/zk\n";

fn parse(extra: &str) -> Result<QuorumPeerConfig, ConfigError> {
    QuorumPeerConfig::parse(&format!("{BASE}{extra}"), "zoo.cfg")
}

const THREE: &str = "server.1=127.0.0.1:2881:3881\nserver.2=127.0.0.1:2882:3882\nserver.3=127.0.0.1:2883:3883\n";

#[test]
fn golden_java_config_loads() {
    let text = include_str!("../../tests/golden/node1.zoo.cfg");
    let mut cfg = QuorumPeerConfig::parse(text, "node1.zoo.cfg").expect("Java-written zoo.cfg must load");
    cfg.set_my_id("1\n", "myid").unwrap();
    assert_eq!(cfg.tick_time, 2000);
    assert_eq!((cfg.init_limit, cfg.sync_limit), (10, 5));
    assert_eq!(cfg.client_port, Some(21911));
    assert_eq!(cfg.four_letter_whitelist, vec!["srvr", "mntr", "stat", "ruok"]);
    assert_eq!(cfg.me().unwrap().addrs[0].election(), HostPort::new("127.0.0.1", 38981));
    assert_eq!(cfg.socket_timeout_ms(), 10_000);
    assert_eq!(
        cfg.quorum_verifier.config_text(),
        "server.1=127.0.0.1:28981:38981:participant\nserver.2=127.0.0.1:28982:38982:participant\n\
         server.3=127.0.0.1:28983:38983:participant\nversion=0"
    );
}

#[test]
fn defaults_and_system_property_keys() {
    let cfg = parse(THREE).unwrap();
    assert_eq!(cfg.cnx_timeout_ms, 5000);
    assert_eq!(cfg.election_port_bind_retry, 3);
    assert_eq!(cfg.quorum_cnxn_threads_size, 20);
    assert_eq!((cfg.min_notification_interval_ms, cfg.max_notification_interval_ms), (200, 60_000));
    assert!(!cfg.tcp_keep_alive && !cfg.multi_address_enabled);
    assert_eq!(cfg.four_letter_whitelist, vec!["srvr"]);

    let cfg = parse(&format!(
        "{THREE}cnxTimeout=700\nzookeeper.electionPortBindRetry=0\nquorumCnxnTimeoutMs=1500\ntcpKeepAlive=true\n\
         quorum.cnxn.threads.size=4\nfastleader.minNotificationInterval=50\nfastleader.maxNotificationInterval=800\n\
         maxClientCnxns=60\nautopurge.snapRetainCount=3\nadmin.enableServer=false\nsomeFutureKey=1\n"
    ))
    .unwrap();
    assert_eq!(cfg.cnx_timeout_ms, 700);
    assert_eq!(cfg.election_port_bind_retry, 0);
    assert_eq!(cfg.socket_timeout_ms(), 1500);
    assert!(cfg.tcp_keep_alive);
    assert_eq!(cfg.quorum_cnxn_threads_size, 4);
    assert_eq!((cfg.min_notification_interval_ms, cfg.max_notification_interval_ms), (50, 800));
    assert_eq!(cfg.metrics_http_host, None);

    let cfg = parse(&format!("{THREE}metricsProvider.httpPort=7000\nmetricsProvider.httpHost=[::1]\n")).unwrap();
    assert_eq!((cfg.metrics_http_port, cfg.metrics_http_host.as_deref()), (Some(7000), Some("::1")));
    assert_eq!(cfg.raw["metricsProvider.httpHost"], "[::1]");
}

#[test]
fn ipv6_multi_address_observer_hierarchy() {
    let cfg = parse(
        "multiAddress.enabled=true\nserver.1=[::1]:2881:3881|127.0.0.2:2881:3881\nserver.2=[::1]:2882:3882\n\
         server.3=[::1]:2883:3883\nserver.4=[::1]:2884:3884:observer\n\
         group.1=1:2\ngroup.2=3\nweight.3=0\n",
    )
    .unwrap();
    assert_eq!(cfg.quorum_verifier.members[&1].addrs.len(), 2);
    assert_eq!(cfg.quorum_verifier.members[&4].learner_type, LearnerType::Observer);
    let h = cfg.quorum_verifier.hierarchy.as_ref().unwrap();
    assert_eq!(h.server_weight[&1], 1);
    assert_eq!(cfg.quorum_verifier.weight(3), 0);
    // group 2 weighs 0, so only group 1 counts: {1,2} hold it, {1} does not.
    assert!(cfg.quorum_verifier.contains_quorum([1, 2]));
    assert!(!cfg.quorum_verifier.contains_quorum([1, 3]));
    assert!(cfg.quorum_verifier.config_text().contains("group.1=1:2\ngroup.2=3\nweight.1=1\nweight.2=1\nweight.3=0\n"));
}

/// Every bad configuration gives one exact error naming file, line and key.
#[test]
fn error_table() {
    let cases: &[(&str, &str)] = &[
        (
            "server.1=h:1:2\nserver.2=h:3:4\nserver.1=h:5:6\n",
            "zoo.cfg:7: server.1: duplicate server id 1 (already defined on line 5)",
        ),
        (
            "server.1=h:1:2\nserver.01=h:3:4\n",
            "zoo.cfg:6: server.01: duplicate server id 1 (already defined on line 5)",
        ),
        ("server.1=h:2888\nserver.2=h:3:4\n", "zoo.cfg:5: server.1: missing election port in 'h:2888' (server.1)"),
        ("server.1=h:1:99999\n", "zoo.cfg:5: server.1: election port 99999 is out of range 0..65535"),
        ("server.x=h:1:2\n", "zoo.cfg:5: server.x: server id 'x' is not a number"),
        ("electionAlg=1\n", "zoo.cfg:5: electionAlg: Invalid electionAlg value 1. Only 3 is supported."),
        ("clientPort=abc\n", "zoo.cfg:5: clientPort: bad number 'abc'"),
        ("clientPort=70000\n", "zoo.cfg:5: clientPort: port 70000 is out of range 0..65535"),
        ("tcpKeepAlive=yes\n", "zoo.cfg:5: tcpKeepAlive: Invalid option yes for this key. Choose 'true' or 'false.'"),
        ("cnxTimeout=-5\n", "zoo.cfg:5: cnxTimeout: bad number '-5'"),
        (
            "server.1=h:1:2|g:1:2\n",
            "zoo.cfg:5: server.1: Multiple address feature is disabled, but multiple addresses were specified for sid 1",
        ),
        ("server.1=h:1:2:leader\n", "zoo.cfg:5: server.1: Unrecognised peertype: leader"),
        (
            "server.1=h:7:7\n",
            "zoo.cfg:5: server.1: quorum port 7 and election port 7 must be different; change one of them",
        ),
        ("initLimit=4294967306\n", "zoo.cfg:5: initLimit: 4294967306 is out of range 0..2147483647"),
        ("syncLimit=-1\n", "zoo.cfg:5: syncLimit: -1 is out of range 0..2147483647"),
        ("tickTime=2147483648\n", "zoo.cfg:5: tickTime: 2147483648 is out of range 1..2147483647"),
        ("server.1=h:1:2:observer\n", "zoo.cfg: Observers w/o participants is an invalid configuration"),
        ("", "zoo.cfg: no server.N lines: zkelect needs an ensemble to elect a leader"),
        (
            "quorum.auth.enableSasl=true\n",
            "zoo.cfg:5: quorum.auth.enableSasl: quorum SASL authentication is not supported by zkelect; peers must have it off (quorum TLS is: sslQuorum)",
        ),
        (
            "quorum.auth.serverRequireSasl=TRUE\n",
            "zoo.cfg:5: quorum.auth.serverRequireSasl: quorum SASL authentication is not supported by zkelect; peers must have it off (quorum TLS is: sslQuorum)",
        ),
        ("server.1=h:1:2\nserver.2=h:3:4\ngroup.1=1\n", "zoo.cfg: server.2: Server 2 is not in a group"),
        (
            "server.1=h:1:2\nserver.2=h:3:4\ngroup.1=1:2\ngroup.2=2\n",
            "zoo.cfg:8: group.2: Server 2 is in multiple groups (1 and 2)",
        ),
    ];
    for (extra, want) in cases {
        let got = parse(extra).map(|_| ()).unwrap_err().to_string();
        assert_eq!(&got, want, "for input {extra:?}");
    }
    let no_limits = QuorumPeerConfig::parse(&format!("dataDir=/d\n{THREE}"), "zoo.cfg").unwrap_err();
    assert_eq!(no_limits.to_string(), "zoo.cfg: initLimit is not set");
    let no_dir = QuorumPeerConfig::parse(&format!("initLimit=1\nsyncLimit=1\n{THREE}"), "zoo.cfg").unwrap_err();
    assert_eq!(no_dir.to_string(), "zoo.cfg: dataDir is not set");
    let tick0 = parse(&format!("{THREE}tickTime=0\n")).unwrap_err();
    assert_eq!(
        tick0.to_string(),
        "zoo.cfg:8: tickTime: tickTime must be positive: set it in milliseconds, e.g. tickTime=2000"
    );
}

/// A fresh directory under the system temp directory, removed by the caller.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zkelect-cfg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// How a case of [`mistakes_caught_before_start`] reaches its error.
enum Case {
    /// `BASE` plus these lines.
    Parse(&'static str),
    /// `BASE` plus these lines, then this `myid` text.
    MyId(&'static str, &'static str),
    /// A `zoo.cfg` whose dataDir is `<dir>/data`, loaded; `myid` is written when given, and the
    /// data directory is created unless `no_data_dir`.
    Load { myid: Option<&'static str>, no_data_dir: bool },
}

/// Configuration mistakes that ZooKeeper reports late, misleadingly or not at all: each gives
/// one error that names the place and says what to change.
#[test]
fn mistakes_caught_before_start() {
    let dir = temp_dir("mistakes");
    let data = dir.join("data");
    let d = data.display();
    let three_and = |extra: &str| format!("{THREE}{extra}");
    let cases: Vec<(&str, Case, String)> = vec![
        (
            "two servers with one election address",
            Case::Parse("server.1=h:1:2\nserver.2=h:3:4\nserver.3=H:5:2\n"),
            "zoo.cfg:7: server.3: election address H:2 is also the election address of server.1 (line 5); every quorum \
             and election address must be unique: change the port on one of the lines"
                .into(),
        ),
        (
            "two servers with one quorum address",
            Case::Parse("server.1=[::1]:1:2\nserver.2=[0:0::1]:1:4\nserver.3=h:5:6\n"),
            "zoo.cfg:6: server.2: quorum address [0:0::1]:1 is also the quorum address of server.1 (line 5); every \
             quorum and election address must be unique: change the port on one of the lines"
                .into(),
        ),
        (
            "a quorum address that is another server's election address",
            Case::Parse("server.1=h:1:2\nserver.2=h:2:4\nserver.3=h:5:6\n"),
            "zoo.cfg:6: server.2: quorum address h:2 is also the election address of server.1 (line 5); every quorum \
             and election address must be unique: change the port on one of the lines"
                .into(),
        ),
        (
            "quorum port equal to election port",
            Case::Parse("server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:2888:2888\n"),
            "zoo.cfg:7: server.3: quorum port 2888 and election port 2888 must be different; change one of them".into(),
        ),
        (
            "clientPort equal to the own quorum port",
            Case::MyId("clientPort=2881\nserver.1=127.0.0.1:2881:3881\nserver.2=127.0.0.1:2882:3882\nserver.3=127.0.0.1:2883:3883\n", "1"),
            "zoo.cfg:5: clientPort: client port 2881 is also this node's quorum port (server.1=127.0.0.1:2881:3881); \
             change one of them"
                .into(),
        ),
        (
            "client part of the own server line equal to its election port",
            Case::MyId("server.1=h:1:2\nserver.2=h:3:4;4\nserver.3=h:5:6\n", "2"),
            "zoo.cfg:6: server.2: client port 4 is also this node's election port (server.2=h:3:4); change one of them"
                .into(),
        ),
        (
            "port 0 in a server line",
            Case::Parse("server.1=h:1:2\nserver.2=h:0:4\nserver.3=h:5:6\n"),
            "zoo.cfg:6: server.2: quorum port 0: a peer cannot dial port 0; give a port in 1..65535".into(),
        ),
        (
            "client port 0 in a server line",
            Case::Parse("server.1=h:1:2;0\nserver.2=h:3:4\nserver.3=h:5:6\n"),
            "zoo.cfg:5: server.1: client port 0: clients cannot connect to port 0; give a port in 1..65535 or drop \
             the ;client part"
                .into(),
        ),
        (
            "myid missing",
            Case::Load { myid: None, no_data_dir: false },
            format!(
                "{d}/myid: myid file is missing; the configured server ids are 1, 2, 3: write this node's id with: \
                 echo <id> > {d}/myid"
            ),
        ),
        (
            "myid empty",
            Case::Load { myid: Some("\n"), no_data_dir: false },
            format!(
                "{d}/myid: myid file is empty; the configured server ids are 1, 2, 3: write this node's id with: \
                 echo <id> > {d}/myid"
            ),
        ),
        (
            "myid not in the list",
            Case::MyId("server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\nserver.9=h:7:8:observer\n", "7"),
            "myid:1: My id 7 not in the peer list; the configured server ids are 1, 2, 3, 9 (observer): write this \
             node's id with: echo <id> > /tmp/zk/myid"
                .into(),
        ),
        ("myid not a number", Case::MyId(THREE, "one"), "myid:1: serverid one is not a number".into()),
        (
            "dataDir missing",
            Case::Load { myid: None, no_data_dir: true },
            format!(
                "{}:4: dataDir: dataDir {d} does not exist: create it with mkdir -p {d} and write this node's id in \
                 it; the configured server ids are 1, 2, 3: write this node's id with: echo <id> > {d}/myid",
                dir.join("zoo.cfg").display()
            ),
        ),
        (
            "tickTime=0",
            Case::Parse("tickTime=0\nserver.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\n"),
            "zoo.cfg:5: tickTime: tickTime must be positive: set it in milliseconds, e.g. tickTime=2000".into(),
        ),
    ];
    for (what, case, want) in cases {
        let got = match case {
            Case::Parse(extra) => parse(extra).map(drop),
            Case::MyId(extra, myid) => parse(extra).and_then(|mut c| c.set_my_id(myid, "myid")),
            Case::Load { myid, no_data_dir } => {
                let _ = std::fs::remove_dir_all(&data);
                if !no_data_dir {
                    std::fs::create_dir_all(&data).unwrap();
                }
                if let Some(m) = myid {
                    std::fs::write(data.join("myid"), m).unwrap();
                }
                let cfg = dir.join("zoo.cfg");
                std::fs::write(&cfg, format!("tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={d}\n{THREE}")).unwrap();
                QuorumPeerConfig::load(&cfg).map(drop)
            }
        };
        assert_eq!(got.map_err(|e| e.to_string()), Err(want), "{what}");
    }
    // An unknown key close to a known one is a warning with a hint, not an error.
    assert!(parse(&three_and("initLimt=5\n")).is_ok());
    assert_eq!(keys::suggest_key("initLimt").as_deref(), Some("initLimit"));
    assert_eq!(keys::suggest_key("zookeeper.ssl.quorum.clientauth").as_deref(), Some("ssl.quorum.clientAuth"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn myid_sets_id_and_role() {
    let mut cfg = parse(&format!("{THREE}server.4=127.0.0.1:2884:3884:observer\n")).unwrap();
    cfg.set_my_id("2\n", "myid").unwrap();
    assert_eq!((cfg.my_id, cfg.peer_type), (2, LearnerType::Participant));
    cfg.set_my_id(" 4 \nignored", "myid").unwrap();
    assert_eq!((cfg.my_id, cfg.peer_type), (4, LearnerType::Observer));
}

#[test]
fn load_reads_myid_and_the_dynamic_file() {
    let dir = temp_dir("load");
    let cfg_path = dir.join("zoo.cfg");
    std::fs::write(&cfg_path, format!("tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={}\n{THREE}", dir.display()))
        .unwrap();
    std::fs::write(dir.join("myid"), "3\n").unwrap();
    assert_eq!(QuorumPeerConfig::load(&cfg_path).unwrap().my_id, 3);

    let dynamic = dir.join("zoo.cfg.dynamic.2a");
    std::fs::write(&dynamic, THREE).unwrap();
    std::fs::write(
        &cfg_path,
        format!(
            "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={}\ndynamicConfigFile={}\n",
            dir.display(),
            dynamic.display()
        ),
    )
    .unwrap();
    let cfg = QuorumPeerConfig::load(&cfg_path).unwrap();
    assert_eq!((cfg.my_id, cfg.quorum_verifier.version), (3, 0x2a));
    std::fs::remove_file(&dynamic).unwrap();
    let e = QuorumPeerConfig::load(&cfg_path).unwrap_err();
    assert_eq!((e.line, e.key.as_deref()), (Some(5), Some("dynamicConfigFile")));
    assert!(e.message.starts_with(&format!("cannot read {}: ", dynamic.display())), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `server.N=...;[host:]port` gives the client address when `clientPort` is absent; with both,
/// they must agree as ZooKeeper's setupClientPort requires.
#[test]
fn client_address_from_the_server_line() {
    let servers = "server.1=h:1:2;127.0.0.1:2181\nserver.2=h:3:4;2182\nserver.3=[::1]:5:6;[::1]:2183\n";
    let own = |extra: &str, id: &str| -> Result<QuorumPeerConfig, String> {
        let mut cfg = parse(&format!("{servers}{extra}")).map_err(|e| e.to_string())?;
        cfg.set_my_id(id, "myid").map_err(|e| e.to_string())?;
        Ok(cfg)
    };
    let addr = |extra: &str, id: &str| own(extra, id).map(|c| c.client_address());
    assert_eq!(parse(servers).unwrap().client_address(), None, "before myid only clientPort counts");
    assert_eq!(addr("", "1"), Ok(Some(HostPort::new("127.0.0.1", 2181))));
    assert_eq!(addr("", "2"), Ok(Some(HostPort::new("0.0.0.0", 2182))));
    assert_eq!(addr("", "3"), Ok(Some(HostPort::new("::1", 2183))));
    let cfg = own("", "1").unwrap();
    assert_eq!((cfg.client_port, cfg.client_port_address.as_deref()), (Some(2181), Some("127.0.0.1")));
    // The client part stays in the config text, as Java prints it.
    assert!(cfg.quorum_verifier.config_text().contains("server.2=h:3:4:participant;0.0.0.0:2182\n"));

    // Static and server line agree: a wildcard static address needs the same port only.
    assert_eq!(addr("clientPort=2181\n", "1"), Ok(Some(HostPort::new("127.0.0.1", 2181))));
    assert_eq!(addr("clientPort=2183\nclientPortAddress=[0:0:0::1]\n", "3"), Ok(Some(HostPort::new("::1", 2183))));
    assert_eq!(
        addr("clientPort=2999\n", "1"),
        Err("zoo.cfg:8: clientPort: client address for this server (id = 1) in static config file is 0.0.0.0:2999, \
             which is different from the client address in its server.1 line: 127.0.0.1:2181; make \
             clientPort/clientPortAddress agree with that line, or remove them"
            .into())
    );
    assert_eq!(
        addr("clientPort=2182\nclientPortAddress=127.0.0.1\n", "2"),
        Err("zoo.cfg:9: clientPortAddress: client address for this server (id = 2) in static config file is \
             127.0.0.1:2182, which is different from the client address in its server.2 line: 0.0.0.0:2182; make \
             clientPort/clientPortAddress agree with that line, or remove them"
            .into())
    );
    // Another server's client part does not matter to this node, and set_my_id can be repeated.
    let mut cfg = parse(&format!("{servers}server.4=h:7:8\nclientPort=2999\n")).unwrap();
    cfg.set_my_id("4", "myid").unwrap();
    assert_eq!(cfg.client_address(), Some(HostPort::new("0.0.0.0", 2999)));
    cfg.set_my_id("2", "myid").unwrap_err();
    cfg.set_my_id("4", "myid").unwrap();
    assert_eq!(cfg.client_address(), Some(HostPort::new("0.0.0.0", 2999)));
    // clientPort=0 is "not set", as in ZooKeeper.
    assert_eq!(parse(&format!("{THREE}clientPort=0\n")).unwrap().client_address(), None);
}

#[test]
fn received_config_text() {
    let cfg = parse(THREE).unwrap();
    let text = cfg.quorum_verifier.config_text();
    let back = parse_config_text(text.as_bytes()).unwrap();
    assert!(back.same_membership(&cfg.quorum_verifier));
    assert_eq!(parse_config_text(b"server.1=h:1:2\nversion=1a").unwrap().version, 0x1a);
    for bad in [
        &b"my very invalid config string"[..],
        b"server.x=h:1:2\nversion=0",
        b"server.1=h:1:99999\nversion=0",
        b"server.1=h:1:2\nversion=zz",
        b"server.1=h:1:2:observer\nversion=0",
        b"\xff\xfe",
        b"",
    ] {
        assert!(parse_config_text(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
}

fn parse_dyn(extra: &str, name: &str, dynamic: &str) -> Result<QuorumPeerConfig, ConfigError> {
    let text = format!("{BASE}dynamicConfigFile={name}\n{extra}");
    QuorumPeerConfig::parse_with_dynamic(&text, "zoo.cfg", |p| {
        assert_eq!(p, Path::new(name));
        Ok(dynamic.to_string())
    })
}

#[test]
fn dynamic_config_file() {
    let cfg = parse_dyn("", "/etc/zk/zoo.cfg.dynamic.100000000", THREE).unwrap();
    assert_eq!(cfg.quorum_verifier.version, 0x1_0000_0000);
    assert_eq!(cfg.dynamic_config_file.as_deref(), Some(Path::new("/etc/zk/zoo.cfg.dynamic.100000000")));
    assert_eq!(cfg.quorum_verifier.members.len(), 3);
    assert!(cfg.quorum_verifier.config_text().ends_with("\nversion=100000000"));
    // No hex suffix: version 0. A `version` line in zoo.cfg does not count with a dynamic file.
    let cfg = parse_dyn("version=5\n", "dyn.cfg", THREE).unwrap();
    assert_eq!(cfg.quorum_verifier.version, 0);
    // Without a dynamic file it does (QuorumMaj reads it).
    assert_eq!(parse(&format!("{THREE}version=1a\n")).unwrap().quorum_verifier.version, 0x1a);

    let hier = "server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\ngroup.1=1:2:3\nweight.3=2\n";
    let cfg = parse_dyn("", "zoo.cfg.dynamic.0", hier).unwrap();
    assert_eq!(cfg.quorum_verifier.weight(3), 2);

    let cases: &[(&str, &str, &str)] = &[
        (
            "server.1=h:1:2\n",
            THREE,
            "zoo.cfg:6: server.1: parameter: server.1 must be in a separate dynamic config file; \
             move it to zoo.cfg.dynamic.1 or remove dynamicConfigFile",
        ),
        (
            "weight.1=2\n",
            THREE,
            "zoo.cfg:6: weight.1: parameter: weight.1 must be in a separate dynamic config file; \
             move it to zoo.cfg.dynamic.1 or remove dynamicConfigFile",
        ),
        ("", "server.1=h:1:2\nversion=1\n", "zoo.cfg.dynamic.1:2: version: dynamic file shouldn't have version inside"),
        (
            "",
            "server.1=h:1:2\ntickTime=2000\n",
            "zoo.cfg.dynamic.1:2: tickTime: Unrecognised parameter: tickTime; a dynamic file holds only \
             server.N, group.G and weight.S lines, move it to the static configuration",
        ),
        (
            "",
            "server.1=h:1:2\nserver.2=h:3\n",
            "zoo.cfg.dynamic.1:2: server.2: missing election port in 'h:3' (server.2)",
        ),
        ("", "server.1=h:1:2:observer\n", "zoo.cfg: Observers w/o participants is an invalid configuration"),
    ];
    for (extra, dynamic, want) in cases {
        let got = parse_dyn(extra, "zoo.cfg.dynamic.1", dynamic).map(|_| ()).unwrap_err().to_string();
        assert_eq!(&got, want, "for {extra:?} / {dynamic:?}");
    }
    let neg = parse_dyn("", "zoo.cfg.dynamic.-1", THREE).unwrap_err();
    assert!(neg.to_string().starts_with("zoo.cfg.dynamic.-1: the version -1 at the end of the file name is negative"));

    let e = QuorumPeerConfig::parse_with_dynamic(
        &format!("{BASE}dynamicConfigFile=conf/zoo.cfg.dynamic\n"),
        "zoo.cfg",
        |_| Err(std::io::ErrorKind::NotFound.into()),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "zoo.cfg:5: dynamicConfigFile: cannot read conf/zoo.cfg.dynamic: entity not found \
         (a relative path is read from the working directory, as ZooKeeper does)"
    );
    // parse reads no files.
    let e = parse("dynamicConfigFile=zoo.cfg.dynamic.1\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "zoo.cfg:5: dynamicConfigFile: cannot read zoo.cfg.dynamic.1: QuorumPeerConfig::parse reads no files; \
         use QuorumPeerConfig::load"
    );
}

/// The store keys of the PEM setup that ZooKeeper 3.8 and zkelect both accept.
const TLS: &str = "sslQuorum=true\nssl.quorum.keyStore.location=/certs/node1.pem\n\
                   ssl.quorum.trustStore.location=/certs/truststore.pem\n";

#[test]
fn quorum_tls_defaults_and_values() {
    let off = parse(THREE).unwrap().quorum_tls;
    assert_eq!(off, QuorumTlsConfig::default());
    assert!(!off.in_use());
    assert_eq!(off.versions(), vec![TlsVersion::Tls12]);
    assert_eq!(off.cipher_suites(), tls::DEFAULT_CIPHER_SUITES);
    assert_eq!(
        (off.client_auth, off.hostname_verification, off.handshake_detection_timeout_ms),
        (ClientAuth::Need, true, 5000)
    );
    assert!(off.binds_sid_to_certificate());

    let t = parse(&format!("{THREE}{TLS}")).unwrap().quorum_tls;
    assert!(t.ssl_quorum && t.in_use() && !t.port_unification);
    assert_eq!(t.key_store.location.as_deref(), Some(Path::new("/certs/node1.pem")));
    assert_eq!((t.key_store.store_type, t.trust_store.store_type), (Some(StoreType::Pem), Some(StoreType::Pem)));

    let t = parse(&format!(
        "{THREE}portUnification=true\nsslQuorumReloadCertFiles=true\n\
         ssl.quorum.keyStore.location=/c/ks.p12\nssl.quorum.keyStore.password=s3cret\n\
         ssl.quorum.trustStore.location=/c/ts\nzookeeper.ssl.quorum.trustStore.type=jks\n\
         ssl.quorum.trustStore.passwordPath=/c/ts.pass\nssl.quorum.enabledProtocols=TLSv1.3,TLSv1.2,\n\
         ssl.quorum.ciphersuites=TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA\n\
         ssl.quorum.clientAuth=Want\nssl.quorum.hostnameVerification=yes\nssl.quorum.crl=TRUE\n\
         ssl.quorum.handshakeDetectionTimeoutMillis=0\nzkelect.sslQuorum.bindSidToCertificate=false\n\
         ssl.quorum.protocol=tlsv1.3\n"
    ))
    .unwrap()
    .quorum_tls;
    assert!(!t.ssl_quorum && t.port_unification && t.reload_cert_files && t.in_use());
    assert_eq!((t.key_store.store_type, t.trust_store.store_type), (Some(StoreType::Pkcs12), Some(StoreType::Jks)));
    assert_eq!(t.key_store.password.expose(), "s3cret");
    assert_eq!(t.trust_store.password_path.as_deref(), Some(Path::new("/c/ts.pass")));
    assert_eq!(t.protocol, "TLSv1.3");
    assert_eq!(t.versions(), vec![TlsVersion::Tls13, TlsVersion::Tls12], "Java drops the trailing empty entry");
    assert_eq!(t.cipher_suites(), vec!["TLS_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]);
    assert_eq!(t.client_auth, ClientAuth::Want);
    // Boolean.parseBoolean: 'yes' is false.
    assert!(!t.hostname_verification && t.crl && !t.ocsp);
    assert_eq!(t.handshake_detection_timeout_ms, 5000, "values below 1 fall back to the default");
    assert!(!t.bind_sid_to_certificate && !t.binds_sid_to_certificate());
    let on = parse(&format!("{THREE}{TLS}ssl.quorum.hostnameVerification=false\n")).unwrap().quorum_tls;
    assert!(on.bind_sid_to_certificate && !on.binds_sid_to_certificate(), "binding needs hostname verification");
}

#[test]
fn quorum_tls_passwords_are_never_shown() {
    let cfg =
        parse(&format!("{THREE}{TLS}ssl.quorum.keyStore.password=hunter2\nssl.quorum.trustStore.password=swordfish\n"))
            .unwrap();
    assert_eq!(cfg.quorum_tls.trust_store.password.expose(), "swordfish");
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("hunter2") && !shown.contains("swordfish"), "{shown}");
    assert!(shown.contains("Secret(<redacted>)"));
    assert_eq!(cfg.raw["ssl.quorum.keyStore.password"], "<redacted>");
    assert_eq!(format!("{:?}", Secret::default()), "Secret(<empty>)");
    assert_eq!(Secret::from_file_contents("pw\n").expose(), "pw");
    assert_eq!(Secret::from_file_contents("pw\n\n").expose(), "pw\n");
}

/// Each TLS mistake that ZooKeeper would only hit at its first TLS connection, or that zkelect
/// cannot serve, is an error naming the key.
#[test]
fn quorum_tls_errors() {
    let cases: &[(bool, &str, &str)] = &[
        (
            false,
            "sslQuorum=true\nssl.quorum.trustStore.location=/c/t.pem\n",
            "zoo.cfg:5: sslQuorum: sslQuorum=true needs ssl.quorum.keyStore.location: set it to the file with this \
             node's private key and certificate chain",
        ),
        (
            false,
            "portUnification=true\nssl.quorum.keyStore.location=/c/k.pem\n",
            "zoo.cfg:5: portUnification: portUnification=true needs ssl.quorum.trustStore.location: set it to the file \
             with the CA certificates that sign the peers' certificates",
        ),
        (
            false,
            "sslQuorum=true\nssl.quorum.keyStore.location=/c/k.crt\nssl.quorum.trustStore.location=/c/t.pem\n",
            "zoo.cfg:6: ssl.quorum.keyStore.location: Unable to auto-detect store file type from file name: /c/k.crt; \
             name the file *.pem, *.p12, *.jks or *.bcfks, or set ssl.quorum.keyStore.type",
        ),
        (
            false,
            "ssl.quorum.keyStore.type=PKCS11\n",
            "zoo.cfg:5: ssl.quorum.keyStore.type: unknown store type PKCS11: write PEM, PKCS12, JKS or BCFKS",
        ),
        (
            false,
            "ssl.quorum.clientAuth=maybe\n",
            "zoo.cfg:5: ssl.quorum.clientAuth: maybe is not one of need, want, none",
        ),
        (
            false,
            "ssl.quorum.protocol=TLSv1.1\n",
            "zoo.cfg:5: ssl.quorum.protocol: protocol TLSv1.1 is not supported: zkelect speaks TLSv1.2 (ZooKeeper \
             3.8's default) and TLSv1.3, written exactly so",
        ),
        (
            false,
            "ssl.quorum.enabledProtocols=TLSv1.3, TLSv1.2\n",
            "zoo.cfg:5: ssl.quorum.enabledProtocols: ' TLSv1.2' has blanks around it, which ZooKeeper keeps and Java \
             then refuses; write the list without blanks, e.g. TLSv1.3,TLSv1.2",
        ),
        (
            false,
            "ssl.quorum.ciphersuites=,TLS_AES_128_GCM_SHA256\n",
            "zoo.cfg:5: ssl.quorum.ciphersuites: an entry of the list is empty; write names separated by ',' only",
        ),
        (
            false,
            "ssl.quorum.handshakeDetectionTimeoutMillis=5s\n",
            "zoo.cfg:5: ssl.quorum.handshakeDetectionTimeoutMillis: bad number '5s'",
        ),
        (false, "sslQuorum=yes\n", "zoo.cfg:5: sslQuorum: Invalid option yes for this key. Choose 'true' or 'false.'"),
        (
            false,
            "zkelect.sslQuorum.bindSidToCertificate=1\n",
            "zoo.cfg:5: zkelect.sslQuorum.bindSidToCertificate: Invalid option 1 for this key. Choose 'true' or 'false.'",
        ),
        // The following need TLS to be on.
        (
            true,
            "ssl.quorum.enabledProtocols=TLSv1.3\n",
            "zoo.cfg:8: ssl.quorum.enabledProtocols: no cipher suite zkelect can use with TLSv1.3: add one of \
             TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256 to ssl.quorum.ciphersuites",
        ),
        (
            true,
            "ssl.quorum.ciphersuites=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA\n",
            "zoo.cfg:8: ssl.quorum.ciphersuites: no cipher suite zkelect can use with TLSv1.2: add one of \
             TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,\
             TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,\
             TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 to \
             ssl.quorum.ciphersuites",
        ),
        (
            true,
            "ssl.quorum.protocol=TLS\n",
            "zoo.cfg:8: ssl.quorum.protocol: protocol TLS names no TLS version, so without \
             ssl.quorum.enabledProtocols it is unclear which to enable; write TLSv1.2 (ZooKeeper's default) or \
             TLSv1.3, or set ssl.quorum.enabledProtocols",
        ),
        (
            true,
            "ssl.quorum.context.supplier.class=com.example.Ctx\n",
            "zoo.cfg:8: ssl.quorum.context.supplier.class: zkelect cannot load a Java SSLContext supplier; remove it \
             and name the stores with ssl.quorum.keyStore.location and ssl.quorum.trustStore.location",
        ),
    ];
    for (with_tls, extra, want) in cases {
        // With TLS on, the case's lines follow the three TLS lines (5 to 7).
        let tls = if *with_tls { TLS } else { "" };
        let got = parse(&format!("{tls}{extra}{THREE}")).map(drop).unwrap_err().to_string();
        assert_eq!(&got, want, "for {extra:?}");
    }
    // Without TLS in use, the same keys are only parsed, as ZooKeeper builds no TLS context.
    assert!(parse(&format!("{THREE}ssl.quorum.protocol=TLS\nssl.quorum.keyStore.location=/c/k.crt\n")).is_ok());
    // TLS with the protocol given generically but the versions listed is fine.
    assert!(parse(&format!("{THREE}{TLS}ssl.quorum.protocol=TLS\nssl.quorum.enabledProtocols=TLSv1.2\n")).is_ok());
}

#[test]
fn lease_settings_default_from_the_ticks_and_are_checked() {
    let cfg = parse(THREE).unwrap();
    // BASE: tickTime 2000, syncLimit 5 (see above).
    assert_eq!((cfg.lease_ms(), cfg.lease_drift_margin_ms(), cfg.run_grace_period_ms()), (10_000, 1000, 2500));
    let cfg = parse(&format!("{THREE}zkelect.leaseMs=30000\nzkelect.leaseDriftMarginMs=0\n")).unwrap();
    assert_eq!((cfg.lease_ms(), cfg.lease_drift_margin_ms(), cfg.run_grace_period_ms()), (30_000, 0, 5000));
    let err = parse(&format!("zkelect.run.gracePeriodMs=9500\n{THREE}")).map(drop).unwrap_err().to_string();
    assert_eq!(
        err,
        "zoo.cfg:5: zkelect.run.gracePeriodMs: the lease (10000 ms) must be longer than zkelect.run.gracePeriodMs \
         (9500 ms) plus half a tick (1000 ms): a leader renews its lease every half tick; raise zkelect.leaseMs (or \
         syncLimit) or lower the grace period"
    );
    let err = parse(&format!("zkelect.leaseMs=1000\n{THREE}")).map(drop).unwrap_err().to_string();
    assert!(err.starts_with("zoo.cfg:5: zkelect.leaseMs: the lease (1000 ms)"), "{err}");
    assert!(parse(&format!("zkelect.leaseMs=x\n{THREE}")).is_err());
}
