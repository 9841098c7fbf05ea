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
        // ZooKeeper's own line has no leader and epoch.
        let zk =
            parse_milestone("2026-11-25 13:24:21,107 - INFO  [QuorumPeer] - Peer state changed: leading - broadcast");
        assert_eq!(zk.map(|m| (m.state, m.phase, m.leader)), Some(("leading".into(), "broadcast".into(), None)));
    }
}
