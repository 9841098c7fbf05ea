use super::*;
use crate::election::Vote;
use crate::snapshot::NodeStatus;

fn cfg() -> QuorumPeerConfig {
    let text = "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=/nonexistent/n1\nclientPort=2181\n\
                clientPortAddress=127.0.0.1\nserver.1=127.0.0.1:2888:3888\nserver.2=h2:2889:3889;2182\n\
                server.3=[::1]:2890:3890\nserver.4=h4:2891:3891:observer\n";
    let mut c = QuorumPeerConfig::parse(text, "zoo.cfg").expect("parses");
    c.set_my_id("1", "myid").expect("myid");
    c
}

fn looking() -> Snapshot {
    Snapshot::of_status(NodeStatus::new(1, Vote::new(1, 0, -1, 0), 0, 0))
}

/// Following 3 in epoch 2, in broadcast.
fn following() -> Snapshot {
    let mut st = NodeStatus::new(1, Vote::new(3, 0, 1, 2), 2, 2);
    st.state = ServerState::Following;
    st.phase = Some(SessionPhase::Broadcast);
    Snapshot::of_status(st)
}

fn answer(name: &str, snap: &Snapshot, args: &[(String, String)]) -> Obj {
    let (cfg, mask) = (cfg(), AtomicI64::new(DEFAULT_TRACE_MASK));
    run(name, &Context { snap, cfg: &cfg, trace_mask: &mask, args })
}

fn keys(o: &Obj) -> Vec<&str> {
    o.keys().collect()
}

#[test]
fn the_command_list_is_zookeepers() {
    assert_eq!(COMMANDS.len(), 26);
    let list = listing("/commands");
    assert!(list.starts_with("<a href=\"/commands/configuration\">configuration</a>\n<br/>\n"), "{list}");
    assert!(list.ends_with("<a href=\"/commands/zabstate\">zabstate</a>\n<br/>\n"), "{list}");
    let names: Vec<&str> =
        list.lines().filter(|l| l.starts_with("<a ")).filter_map(|l| l.split('>').nth(1)?.split('<').next()).collect();
    assert_eq!(names.len(), 26);
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    assert_eq!(find("srvr").map(Command::primary), Some("server_stats"));
    assert!(find("vvw").is_none());
}

#[test]
fn envelope_puts_command_and_error_last() {
    let a = answer("srvr", &following(), &[]);
    assert_eq!(keys(&a), ["version", "read_only", "server_stats", "client_response", "node_count", "command", "error"]);
    assert_eq!(a.get("command"), Some(&Json::from("server_stats")));
    assert_eq!(a.get("error"), Some(&Json::Null));
    let pretty = Json::Object(a).pretty();
    assert!(pretty.contains("\n    \"server_state\" : \"follower\",\n"), "{pretty}");
    assert!(pretty.ends_with("\n  \"command\" : \"server_stats\",\n  \"error\" : null\n}"), "{pretty}");

    let unknown = answer("foo", &following(), &[]);
    assert_eq!(
        Json::Object(unknown).pretty(),
        "{\n  \"command\" : \"foo\",\n  \"error\" : \"Unknown command: foo\"\n}"
    );
    // A command's own error key stays first, as in ZooKeeper.
    let stmk = answer("stmk", &following(), &[]);
    assert_eq!(keys(&stmk), ["error", "command"]);
    assert_eq!(stmk.get("error"), Some(&Json::from("setTraceMask requires long traceMask argument")));
}

#[test]
fn outside_a_quorum_commands_answer_with_data_and_zookeepers_error() {
    let ruok = answer("ruok", &looking(), &[]);
    assert_eq!(
        Json::Object(ruok).pretty(),
        format!("{{\n  \"command\" : \"ruok\",\n  \"error\" : \"{NOT_SERVING}\"\n}}")
    );
    let srvr = answer("srvr", &looking(), &[]);
    assert_eq!(srvr.get("command"), Some(&Json::from("srvr")), "named as asked, as ZooKeeper does");
    assert_eq!(srvr.get("error"), Some(&Json::from(NOT_SERVING)));
    let Some(Json::Object(stats)) = srvr.get("server_stats") else { panic!("server_stats") };
    assert_eq!(stats.get("server_state"), Some(&Json::from("looking")));
    // Commands that do not need a server answer without an error.
    let zab = answer("zabstate", &looking(), &[]);
    assert_eq!(zab.get("zabstate"), Some(&Json::from("election")));
    assert_eq!(zab.get("error"), Some(&Json::Null));
    let mntr = answer("mntr", &looking(), &[]);
    assert_eq!(mntr.get("server_state"), Some(&Json::from("looking")));
    assert_eq!(mntr.get("avg_latency"), Some(&Json::Float(0.0)));
    assert_eq!(answer("ruok", &following(), &[]).get("error"), Some(&Json::Null));
}

#[test]
fn leader_voting_view_and_zabstate() {
    let lead = answer("lead", &following(), &[]);
    assert_eq!(lead.get("is_leader"), Some(&Json::Bool(false)));
    assert_eq!(lead.get("leader_id"), Some(&Json::Int(3)));
    assert_eq!(lead.get("leader_ip"), Some(&Json::from("::1")));
    assert_eq!(answer("leader", &looking(), &[]).get("leader_id"), Some(&Json::Int(-1)));

    let view = Json::Object(answer("voting_view", &following(), &[])).pretty();
    let want = r#"{
  "current_config" : {
    "1" : {
      "server_addresses" : [ "127.0.0.1:2888" ],
      "election_addresses" : [ "127.0.0.1:3888" ],
      "client_address" : "127.0.0.1:2181",
      "learner_type" : "participant"
    },
    "2" : {
      "server_addresses" : [ "h2:2889" ],
      "election_addresses" : [ "h2:3889" ],
      "client_address" : "0.0.0.0:2182",
      "learner_type" : "participant"
    },
    "3" : {
      "server_addresses" : [ "[::1]:2890" ],
      "election_addresses" : [ "[::1]:3890" ],
      "client_address" : "",
      "learner_type" : "participant"
    }
  },
  "command" : "voting_view",
  "error" : null
}"#;
    assert_eq!(view, want);

    let zab = answer("zabstate", &following(), &[]);
    assert_eq!(
        keys(&zab),
        [
            "myid",
            "is_leader",
            "quorum_address",
            "election_address",
            "client_address",
            "voting",
            "last_zxid",
            "zab_epoch",
            "zab_counter",
            "zabstate",
            "command",
            "error"
        ]
    );
    assert_eq!(zab.get("last_zxid"), Some(&Json::from("0x200000000")));
    assert_eq!(zab.get("zab_epoch"), Some(&Json::Int(2)));
    assert_eq!(zab.get("zabstate"), Some(&Json::from("broadcast")));
    let Some(Json::Object(q)) = zab.get("quorum_address") else { panic!("quorum_address") };
    assert_eq!(q.get("wildcard_addresses"), Some(&Json::array(["0.0.0.0:2888"])));
    assert_eq!(q.get("all_ports"), Some(&Json::array([2888])));
}

#[test]
fn trace_mask_is_kept() {
    let (cfg, mask) = (cfg(), AtomicI64::new(DEFAULT_TRACE_MASK));
    let snap = following();
    let ctx = |args| Context { snap: &snap, cfg: &cfg, trace_mask: &mask, args };
    assert_eq!(run("gtmk", &ctx(&[])).get("tracemask"), Some(&Json::Int(306)));
    let bad = [("traceMask".to_string(), "x".to_string())];
    assert_eq!(
        run("stmk", &ctx(&bad)).get("error"),
        Some(&Json::from("setTraceMask requires long traceMask argument, got x"))
    );
    let set = [("traceMask".to_string(), "0".to_string())];
    assert_eq!(run("set_trace_mask", &ctx(&set)).get("tracemask"), Some(&Json::Int(0)));
    assert_eq!(run("get_trace_mask", &ctx(&[])).get("tracemask"), Some(&Json::Int(0)));
}

#[test]
fn data_tree_commands_have_zookeepers_shape_and_no_content() {
    let f = following();
    for (name, want) in [
        ("dump", vec!["expiry_time_to_session_ids", "session_id_to_ephemeral_paths"]),
        ("hash", vec!["digests"]),
        ("wchc", vec!["session_id_to_watched_paths"]),
        ("wchp", vec!["path_to_session_ids"]),
        ("wchs", vec!["num_connections", "num_paths", "num_total_watches"]),
        ("cons", vec!["connections", "secure_connections"]),
        ("lsnp", vec!["zxid", "timestamp"]),
        ("dirs", vec!["datadir_size", "logdir_size"]),
        ("crst", vec![]),
    ] {
        let a = answer(name, &f, &[]);
        let mut want = want;
        want.extend(["command", "error"]);
        assert_eq!(keys(&a), want, "{name}");
    }
    assert_eq!(answer("lsnp", &f, &[]).get("zxid"), Some(&Json::from("ffffffffffffffff")));
    let sysp = answer("sysp", &f, &[]);
    let k: Vec<&str> = keys(&sysp);
    let mut sorted = k[..k.len() - 2].to_vec();
    sorted.sort_unstable();
    assert_eq!(&k[..k.len() - 2], sorted.as_slice());
    assert_eq!(sysp.get("zookeeper.tickTime"), Some(&Json::from("200")));
}
