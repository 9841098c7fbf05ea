//! zkelect's AdminServer against Debian's Apache ZooKeeper 3.8 with `admin.enableServer=true`,
//! in one ensemble (tier `interop`): ZooKeeper's answers are captured here, for every command,
//! while LOOKING, as a follower and as a leader, and compared with zkelect's in the same states:
//! the same keys in the same order with the same JSON types (values differ), the same layout
//! byte for byte (zkelect's writer reproduces each ZooKeeper answer from its parsed value), the
//! same command list and the same HTTP status codes.

mod common;

use common::cluster::Cluster;
use common::http::{admin_cluster, admin_lines, get, request, try_request};
use common::tier::{self, Tier};
use common::{free_ports, wait_for};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use zkelect::admin::json::{Json, Obj};

const T: Duration = Duration::from_secs(40);
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

const COMMANDS: [&str; 26] = [
    "configuration",
    "connection_stat_reset",
    "connections",
    "dirs",
    "dump",
    "environment",
    "get_trace_mask",
    "hash",
    "initial_configuration",
    "is_read_only",
    "last_snapshot",
    "leader",
    "monitor",
    "observer_connection_stat_reset",
    "observers",
    "ruok",
    "server_stats",
    "set_trace_mask",
    "stat_reset",
    "stats",
    "system_properties",
    "voting_view",
    "watch_summary",
    "watches",
    "watches_by_path",
    "zabstate",
];

/// Each command's answer on one node: status and body.
type Capture = BTreeMap<&'static str, (u16, String)>;

fn capture(port: u16) -> Capture {
    COMMANDS
        .iter()
        .map(|c| {
            let a = get(port, &format!("/commands/{c}"));
            (*c, (a.status, a.body))
        })
        .collect()
}

fn parse(body: &str, what: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body}"))
}

/// serde_json's value as zkelect's, keeping integers and fractions apart as Jackson wrote them.
fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Json::Int(i),
            (None, Some(f)) => Json::Float(f),
            _ => Json::Null,
        },
        Value::String(s) => Json::Str(s.clone()),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Object(o) => Json::Object(o.iter().map(|(k, v)| (k.clone(), to_json(v))).collect::<Obj>()),
    }
}

/// The body is in Jackson's pretty layout: writing its parsed value gives it back byte for byte.
fn assert_layout(body: &str, what: &str) {
    let again = to_json(&parse(body, what)).pretty();
    assert_eq!(again, body, "{what}: the layout differs from Jackson's pretty printer");
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "fraction",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Objects that Jackson writes from a Java bean (`ServerStats`, `BufferStats`, `MultipleAddresses`)
/// rather than a map: their properties come in the order reflection lists the getters, which
/// differs between JVM runs (`provider_null` moves about in `server_stats`), so only the set of
/// their keys is compared. Maps keep their insertion order, which is compared.
const BEANS: [&str; 6] = [
    ".server_stats",
    ".client_response_stats",
    ".client_response",
    ".proposal_stats",
    ".quorum_address",
    ".election_address",
];

/// Where `ours` differs from `theirs` in keys, key order or types. ZooKeeper's null stands for
/// any value (3.8 never sets `initial_configuration` in a quorum) and its empty containers for
/// any content (connections, observers).
fn shape_diffs(ours: &Value, theirs: &Value, path: &str, out: &mut Vec<String>) {
    match (ours, theirs) {
        (_, Value::Null) => {}
        (Value::Object(o), Value::Object(t)) => {
            let (mut ok, mut tk): (Vec<&String>, Vec<&String>) = (o.keys().collect(), t.keys().collect());
            if BEANS.iter().any(|b| path.ends_with(b)) {
                ok.sort();
                tk.sort();
            }
            if ok != tk && !t.is_empty() {
                out.push(format!("{path}: keys {ok:?}, ZooKeeper has {tk:?}"));
                return;
            }
            for (k, tv) in t {
                if let Some(ov) = o.get(k) {
                    shape_diffs(ov, tv, &format!("{path}.{k}"), out);
                }
            }
        }
        (Value::Array(o), Value::Array(t)) => {
            if let (Some(ov), Some(tv)) = (o.first(), t.first()) {
                shape_diffs(ov, tv, &format!("{path}[0]"), out);
            }
        }
        _ if type_name(ours) != type_name(theirs) => {
            out.push(format!("{path}: {} where ZooKeeper has {}", type_name(ours), type_name(theirs)));
        }
        _ => {}
    }
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

/// Compares one command's answers from two nodes in the same state.
fn compare(command: &str, ours: &str, theirs: &str, state: &str, diffs: &mut Vec<String>) {
    let what = format!("{command} ({state})");
    let (o, t) = (parse(ours, &format!("zkelect {what}")), parse(theirs, &format!("ZooKeeper {what}")));
    match command {
        // Outside a JVM zkelect has only some of the keys: they come in ZooKeeper's order.
        "environment" => {
            let (ok, tk) = (keys(&o), keys(&t));
            let mut it = tk.iter();
            if !ok.iter().all(|k| it.any(|x| x == k)) {
                diffs.push(format!("{what}: keys {ok:?} are not in ZooKeeper's order {tk:?}"));
            }
            if o.as_object().into_iter().flatten().any(|(k, v)| k != "error" && !v.is_string()) {
                diffs.push(format!("{what}: a value is not a string"));
            }
        }
        // Different properties, the same form: sorted string values, then command and error.
        "system_properties" => {
            let ok = keys(&o);
            let props = &ok[..ok.len() - 2];
            let mut sorted = props.to_vec();
            sorted.sort();
            if props != sorted.as_slice() || ok[ok.len() - 2..] != ["command", "error"] {
                diffs.push(format!("{what}: keys are not sorted, then command and error: {ok:?}"));
            }
        }
        // ZooKeeper has hundreds of metrics; the first three keys, and every common one's type.
        "monitor" => {
            let (ok, tk) = (keys(&o), keys(&t));
            if ok[..3] != tk[..3] || ok[ok.len() - 2..] != ["command", "error"] {
                diffs.push(format!("{what}: starts {:?} where ZooKeeper starts {:?}", &ok[..3], &tk[..3]));
            }
            for k in ok.iter().filter(|k| t.get(k.as_str()).is_some()) {
                shape_diffs(&o[k.as_str()], &t[k.as_str()], &format!("{what}.{k}"), diffs);
            }
        }
        _ => shape_diffs(&o, &t, &what, diffs),
    }
}

#[test]
fn admin_server_answers_have_zookeepers_shapes_and_layout() {
    if !tier::enabled(Tier::Interop) {
        return;
    }
    // 1 is zkelect, 2 and 3 are ZooKeeper: a zkelect leader runs no Zab sessions, so a ZooKeeper
    // follower serves only under a ZooKeeper leader (zkelect follows one in election-only mode).
    let mut c = Cluster::new(3, 0, "tickTime=200\n").with_zookeeper(&[2, 3]);
    let admin: BTreeMap<i64, u16> = (1..=3).zip(free_ports(3)).collect();
    for (sid, port) in &admin {
        c.append_config(&[*sid], &admin_lines(*port));
    }
    let serving =
        |port: u16| try_request(port, "GET", "/commands/ruok").is_some_and(|a| a.body.contains("\"error\" : null"));

    // LOOKING: zkelect 1 alone, then ZooKeeper 2 alone.
    c.start(1);
    wait_for(T, "zkelect's AdminServer", || try_request(admin[&1], "GET", "/commands/ruok"));
    let zk_looking = capture(admin[&1]);
    c.kill(1);
    c.start(2);
    wait_for(T, "ZooKeeper's AdminServer", || try_request(admin[&2], "GET", "/commands/ruok"));
    let zoo_looking = capture(admin[&2]);
    let zoo_listing = get(admin[&2], "/commands").body;
    let zoo_statuses: Vec<u16> = http_rules().iter().map(|(m, p)| request(admin[&2], m, p).status).collect();

    // ZooKeeper 3 leads; ZooKeeper 2 and zkelect 1 follow.
    c.start(3);
    wait_for(T, "ZooKeeper 3 leading", || [2, 3].iter().all(|s| serving(admin[s])).then_some(()));
    c.start(1);
    wait_for(T, "all three serving", || [1, 2, 3].iter().all(|s| serving(admin[s])).then_some(()));
    assert_eq!(get(admin[&1], "/leader").json()["leader"], 3);
    let (zk_follower, zoo_follower, zoo_leader) = (capture(admin[&1]), capture(admin[&2]), capture(admin[&3]));
    let zk_listing = get(admin[&1], "/commands").body;
    let zk_statuses: Vec<u16> = http_rules().iter().map(|(m, p)| request(admin[&1], m, p).status).collect();
    drop(c);

    // A zkelect leader, of zkelect followers.
    let (mut z, zadmin) = admin_cluster(3, "tickTime=200\n");
    z.start_all();
    wait_for(T, "zkelect 3 leading and serving", || {
        let v: Value = serde_json::from_str(&try_request(zadmin[&3], "GET", "/commands/leader")?.body).ok()?;
        (v["is_leader"] == true && v["error"].is_null()).then_some(())
    });
    let zk_leader = capture(zadmin[&3]);
    drop(z);

    let mut diffs = Vec::new();
    for command in COMMANDS {
        for (ours, theirs, state) in [(&zk_follower, &zoo_follower, "follower"), (&zk_leader, &zoo_leader, "leader")] {
            let ((os, ob), (ts, tb)) = (&ours[command], &theirs[command]);
            assert_eq!((*os, *ts), (200, 200), "{command} ({state})");
            compare(command, ob, tb, state, &mut diffs);
            assert_layout(tb, &format!("ZooKeeper {command} ({state})"));
            assert_layout(ob, &format!("zkelect {command} ({state})"));
        }
        // LOOKING: where ZooKeeper answers only with its error, zkelect ends with the same
        // command and error (and has the data before them).
        let ((os, ob), (ts, tb)) = (&zk_looking[command], &zoo_looking[command]);
        assert_eq!(*os, 200, "{command} (looking)");
        if command == "monitor" {
            assert_eq!(*ts, 500, "ZooKeeper 3.8 fails monitor while LOOKING");
            continue;
        }
        assert_eq!(*ts, 200, "{command} (looking)");
        assert_layout(tb, &format!("ZooKeeper {command} (looking)"));
        assert_layout(ob, &format!("zkelect {command} (looking)"));
        let (o, t) = (parse(ob, command), parse(tb, command));
        if t["error"] == NOT_SERVING {
            assert_eq!((&o["command"], &o["error"]), (&t["command"], &t["error"]), "{command} (looking)");
            let ok = keys(&o);
            assert_eq!(ok[ok.len() - 2..], ["command", "error"], "{command} (looking)");
        } else if command != "zabstate" {
            // zabstate: ZooKeeper's empty form while LOOKING, zkelect's whole one (documented).
            compare(command, ob, tb, "looking", &mut diffs);
        }
    }
    assert!(diffs.is_empty(), "shape differences from ZooKeeper 3.8:\n{}", diffs.join("\n"));
    assert_eq!(zk_listing, zoo_listing, "the /commands page");
    assert_eq!(zk_statuses, zoo_statuses, "status codes for {:?}", http_rules());
}

/// Requests whose status codes must be ZooKeeper's.
fn http_rules() -> Vec<(&'static str, &'static str)> {
    vec![
        ("GET", "/commands/nope"),
        ("GET", "/commands/ruok/"),
        ("GET", "/nothing"),
        ("POST", "/commands/ruok"),
        ("PUT", "/commands/ruok"),
        ("DELETE", "/commands/ruok"),
        ("TRACE", "/commands/ruok"),
        ("PATCH", "/commands/ruok"),
        ("OPTIONS", "/commands/ruok"),
        ("HEAD", "/commands/ruok"),
    ]
}
