//! Unit tests of the modules the CLI shares with the integration tests (kept apart so that the
//! test binaries, which include those modules, do not run them again).

mod localports {
    use super::super::localports::*;
    use std::net::TcpListener;

    #[test]
    fn ports_are_distinct_free_and_outside_the_ephemeral_range() {
        let a = free_ports(50).expect("ports");
        let b = free_ports(50).expect("ports");
        let all: std::collections::BTreeSet<u16> = a.iter().chain(&b).copied().collect();
        assert_eq!(all.len(), 100, "a port was handed out twice");
        for p in &all {
            assert!(TcpListener::bind(("127.0.0.1", *p)).is_ok(), "port {p} is not free");
        }
        if let Some(start) = window_start() {
            assert!(all.iter().all(|p| (start..start + WINDOW).contains(&u32::from(*p))));
        }
    }
}

mod logs {
    use super::super::logs::*;
    use std::time::{Duration, UNIX_EPOCH};
    use zkelect::election::ServerState;
    use zkelect::runtime::logging::timestamp;
    use zkelect::snapshot::{Milestone as Written, SessionPhase};

    #[test]
    fn timestamps_read_back() {
        assert_eq!(parse_timestamp_ms("2026-11-25 13:24:21,107 - INFO  [x] - y"), Some(1_795_613_061_107));
        assert_eq!(parse_timestamp_ms(&timestamp(UNIX_EPOCH)), Some(0));
        let t = UNIX_EPOCH + Duration::from_millis(1_795_613_061_107);
        assert_eq!(parse_timestamp_ms(&timestamp(t)), Some(1_795_613_061_107));
        assert_eq!(parse_timestamp_ms("garbage"), None);
    }

    #[test]
    fn milestones_read_back_what_the_daemon_writes() {
        for phase in [
            SessionPhase::Discovery,
            SessionPhase::Broadcast,
            SessionPhase::ElectionOnly { confirmed: false },
            SessionPhase::ElectionOnly { confirmed: true },
        ] {
            let written = Written { state: ServerState::Following, phase, leader: 3, epoch: 12 };
            let line = format!("2026-11-25 13:24:21,107 - INFO  [QuorumPeer[myid=1]:peer] - {written}");
            let m = parse_milestone(&line).expect("parses");
            assert_eq!((m.state.as_str(), m.phase.as_str()), ("following", phase.as_str()));
            assert_eq!((m.leader, m.epoch), (Some(3), Some(12)));
        }
        assert_eq!(parse_milestone("Peer state changed: looking"), None);
        assert_eq!(parse_state("x - INFO  [QuorumPeer] - Peer state changed: looking"), Some("looking"));
        assert_eq!(parse_state("Peer state changed: following - broadcast (leader 3, epoch 2)"), Some("following"));
        assert_eq!(parse_state("PeerState set to LOOKING"), None);
        assert!(is_looking_line("Peer state changed: looking") && is_looking_line("PeerState set to LOOKING"));
        // ZooKeeper's own line has no leader and epoch.
        let zk =
            parse_milestone("2026-11-25 13:24:21,107 - INFO  [QuorumPeer] - Peer state changed: leading - broadcast");
        assert_eq!(zk.map(|m| (m.state, m.phase, m.leader)), Some(("leading".into(), "broadcast".into(), None)));
    }
}

mod zoocfg {
    use super::super::zoocfg::*;
    use std::path::Path;

    #[test]
    fn writes_the_keys_servers_and_extra_lines_in_order() {
        let cfg = ZooCfg::new(200)
            .data_dir(Path::new("/data/n1"))
            .client("127.0.0.1", 2181)
            .server(1, "127.0.0.1", 2888, 3888)
            .add_server(Server {
                sid: 2,
                addrs: vec![ServerAddr::new("127.0.0.1", 2889, 3889), ServerAddr::new("127.0.0.2", 2889, 3889)],
                role: Role::Observer,
            })
            .extra("4lw.commands.whitelist=*")
            .extra("initLimit=20\n");
        assert_eq!(
            cfg.text(),
            "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=/data/n1\nclientPort=2181\nclientPortAddress=127.0.0.1\n\
             server.1=127.0.0.1:2888:3888\n\
             server.2=127.0.0.1:2889:3889:observer|127.0.0.2:2889:3889:observer\n\
             4lw.commands.whitelist=*\ninitLimit=20\n"
        );
    }

    #[test]
    fn a_local_node_parses_with_its_own_data_dir_and_client_port() {
        let root = tempfile::tempdir().expect("temp dir");
        let shared = local_ensemble(100, &[(1001, 1002, 1003), (1004, 1005, 1006)]);
        let path = write_local_node(&shared, root.path(), 2, 1006).expect("written");
        assert_eq!(path, root.path().join("n2/zoo.cfg"));
        assert_eq!(std::fs::read_to_string(root.path().join("n2/myid")).expect("myid"), "2\n");
        let cfg = zkelect::config::QuorumPeerConfig::load(&path).expect("parses");
        assert_eq!(cfg.my_id, 2);
        assert_eq!(cfg.data_dir, root.path().join("n2"));
        assert_eq!(cfg.quorum_verifier.members.len(), 2);
    }
}

mod zookeeper {
    use super::super::zookeeper::*;
    use std::path::Path;

    #[test]
    fn the_command_names_every_jar_and_the_node_files() {
        let cmd = server_command(Path::new("/n1"), &["-Xmx96m".to_string()]);
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args.first().map(String::as_str), Some("-Xmx96m"), "JVM options come first");
        let cp = &args[args.iter().position(|a| a == "-cp").expect("-cp") + 1];
        for jar in ["zookeeper.jar", "slf4j-log4j12.jar", "log4j-1.2.jar", "netty-codec.jar", "servlet-api.jar"] {
            assert!(cp.contains(&format!("/usr/share/java/{jar}")), "{cp}");
        }
        assert!(args.contains(&"-Dlog4j.configuration=file:/n1/log4j.properties".to_string()));
        assert_eq!(args[args.len() - 2..], [MAIN_CLASS.to_string(), "/n1/zoo.cfg".to_string()]);
        assert!(log4j_properties(Path::new("/n1/node.log")).contains("log4j.appender.F.File=/n1/node.log\n"));
    }
}
