//! Mixed Python/Rust Byzantine runs: `client om` over clusters where some generals are Rust
//! nodes and the others are the Python stand-in with `--agreement` (the OM extension of
//! `scripts/python/server.py`, docs/protocol-extensions.md). Traitors sit on either side, the
//! commander too; the Python node must answer, fault and lie exactly as a Rust node does.
//! Without `--agreement` the stand-in must still refuse every extension method.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use dxr::Value;
use serde_json::Value as Json;

/// `--behaviour` before each of `values`.
fn behaviour_flags<'a>(values: &[&'a str]) -> Vec<&'a str> {
    values.iter().flat_map(|b| ["--behaviour", b]).collect()
}

/// A cluster of `n` generated nodes split between a Rust server hosting `rust` and a Python
/// (`--agreement`) one hosting `python` (comma-separated names), with `--behaviour` flags for
/// each side (and `extra` flags for both, e.g. `--seed`).
fn mixed(
    n: usize,
    rust: &str,
    python: &str,
    rust_behaviours: &[&str],
    python_behaviours: &[&str],
    extra: &[&str],
) -> Cluster {
    Cluster::builder()
        .size(n)
        .args(extra)
        .hosting(
            Side::Rust,
            rust,
            &[&["--quiet"], &behaviour_flags(rust_behaviours)[..]].concat(),
        )
        .hosting(
            Side::Python,
            python,
            &[&["--agreement"], &behaviour_flags(python_behaviours)[..]].concat(),
        )
        .start()
}

/// `client ... om ARGS --json` against the cluster: (exit code, parsed JSON or null, stderr).
fn om(c: &Cluster, args: &[&str]) -> (i32, Json, String) {
    c.client_json(&[&["om"], args].concat())
}

/// `om` with `--trace`: also every node-to-node call of the run, as the client gathered them
/// (with the run's capabilities, which only the driver holds).
fn om_traced(c: &Cluster, args: &[&str]) -> (i32, Json, String, Vec<Json>) {
    let file = std::env::temp_dir().join(format!(
        "mixed-traced-{}-{}.jsonl",
        std::process::id(),
        c.base
    ));
    let file_arg = file.to_str().unwrap().to_string();
    let (code, j, err) = om(c, &[args, &["--trace", &file_arg]].concat());
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    let events = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (code, j, err, events)
}

fn decisions(j: &Json) -> Vec<(String, String)> {
    j["decisions"]
        .as_object()
        .unwrap_or_else(|| panic!("no decisions in {j}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

fn per_round(j: &Json) -> Vec<u64> {
    j["messages_per_round"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages_per_round in {j}"))
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

/// IC1 and IC2 hold, no node was unreachable, and every message of a complete run was sent.
fn assert_agreement(j: &Json, err: &str, code: i32, messages: u64, rounds: &[u64]) {
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(j["ic1"], true, "{j}");
    assert_eq!(j["ic2"], true, "{j}");
    assert!(!j.to_string().contains("unreachable"), "{j} {err}");
    assert_eq!(j["messages"], messages, "{j}");
    assert_eq!(per_round(j), rounds, "{j}");
    assert_eq!(j["expected_per_round"], serde_json::json!(rounds), "{j}");
}

/// (a) OM(1), n = 4: Rust hosts N0, N2, Python hosts N1, N3; the two-faced traitor is the
/// Python N3.
#[test]
fn om1_n4_two_faced_traitor_on_python() {
    let c = mixed(4, "N0,N2", "N1,N3", &[], &["N3=two-faced"], &[]);
    let info = call(c.port("N3"), "node_info", &[]).unwrap();
    assert_eq!(member(&info, "name"), &s("N3"));
    assert_eq!(member(&info, "behaviour"), &s("two-faced"));
    assert_eq!(member(&info, "traitor"), &Value::Boolean(true));
    assert_eq!(member(&info, "public_key"), &s(""));
    assert_eq!(
        member(&call(c.port("N1"), "node_info", &[]).unwrap(), "traitor"),
        &Value::Boolean(false)
    );
    for (order, seed) in [("attack", "1"), ("retreat", "2")] {
        let (code, j, err, events) = om_traced(&c, &["-m", "1", "--order", order, "--seed", seed]);
        assert_agreement(&j, &err, code, 9, &[3, 6]);
        assert_eq!(j["traitors"], serde_json::json!(["N3"]));
        assert_eq!(j["behaviours"]["N3"], "two-faced");
        assert_eq!(
            decisions(&j),
            [("N1".into(), order.into()), ("N2".into(), order.into())]
        );
        // What N3 actually sent, from its own trace_events: its receivers of [N0] are N1, N2
        // (nodes order), so index 0 < 2/2 gets attack and index 1 retreat, whatever the order.
        let mut sent: Vec<(Json, Json, Json)> = events
            .iter()
            .filter(|e| e["from"] == "N3")
            .map(|e| {
                let stored = e["result"].as_str().unwrap_or_else(|| panic!("{e}"));
                assert!(stored.parse::<u64>().is_ok(), "stored at: {e}");
                (e["to"].clone(), e["args"][1].clone(), e["args"][2].clone())
            })
            .collect();
        sent.sort_by_key(|t| format!("{t:?}"));
        let path = serde_json::json!(["N0", "N3"]);
        assert_eq!(
            sent,
            [
                (
                    serde_json::json!("N1"),
                    path.clone(),
                    serde_json::json!("attack")
                ),
                (serde_json::json!("N2"), path, serde_json::json!("retreat"))
            ]
        );
    }
}

/// (a) The same split with the two-faced traitor on the Rust side (N2).
#[test]
fn om1_n4_two_faced_traitor_on_rust() {
    let c = mixed(4, "N0,N2", "N1,N3", &["N2=two-faced"], &[], &[]);
    for order in ["attack", "retreat"] {
        let (code, j, err) = om(&c, &["-m", "1", "--order", order, "--seed", "2"]);
        assert_agreement(&j, &err, code, 9, &[3, 6]);
        assert_eq!(j["traitors"], serde_json::json!(["N2"]));
        assert_eq!(
            decisions(&j),
            [("N1".into(), order.into()), ("N3".into(), order.into())]
        );
    }
}

/// (b) OM(2), n = 7: Rust hosts N0..N3, Python N4..N6; a flipping Python traitor and a
/// two-faced Rust one. 6 + 30 + 120 messages cross the language boundary both ways.
#[test]
fn om2_n7_flip_on_python_and_two_faced_on_rust() {
    let c = mixed(
        7,
        "N0,N1,N2,N3",
        "N4,N5,N6",
        &["N2=two-faced"],
        &["N5=flip"],
        &[],
    );
    for (order, seed) in [("attack", "21"), ("retreat", "22")] {
        let (code, j, err) = om(&c, &["-m", "2", "--order", order, "--seed", seed]);
        assert_agreement(&j, &err, code, 156, &[6, 30, 120]);
        assert_eq!(j["traitors"], serde_json::json!(["N2", "N5"]));
        assert_eq!(j["behaviours"]["N5"], "flip");
        assert_eq!(j["behaviours"]["N2"], "two-faced");
        let d = decisions(&j);
        assert_eq!(d.len(), 4, "{j}");
        for (node, decision) in d {
            assert_eq!(decision, order, "{node}: {j}");
        }
    }
}

/// (c) A Python commander. Loyal, with a two-faced Rust lieutenant: every loyal lieutenant
/// obeys. Then the doc's worked example with the Python commander itself two-faced: its
/// receivers N0, N2, N3 get attack, retreat, retreat, so all of them decide retreat.
#[test]
fn om1_n4_python_commander() {
    let c = mixed(4, "N0,N2", "N1,N3", &["N2=two-faced"], &[], &[]);
    for order in ["attack", "retreat"] {
        let (code, j, err) = om(&c, &["--commander", "N1", "-m", "1", "--order", order]);
        assert_agreement(&j, &err, code, 9, &[3, 6]);
        assert_eq!(j["commander"], "N1");
        assert_eq!(
            decisions(&j),
            [("N0".into(), order.into()), ("N3".into(), order.into())]
        );
    }

    let c = mixed(4, "N0,N2", "N1,N3", &[], &["N1=two-faced"], &[]);
    for order in ["attack", "retreat"] {
        let (code, j, err) = om(&c, &["--commander", "N1", "-m", "1", "--order", order]);
        assert_agreement(&j, &err, code, 9, &[3, 6]);
        assert_eq!(j["traitors"], serde_json::json!(["N1"]));
        assert_eq!(
            decisions(&j),
            [
                ("N0".into(), "retreat".into()),
                ("N2".into(), "retreat".into()),
                ("N3".into(), "retreat".into())
            ]
        );
    }
}

/// (c) OM(2), n = 7 under a Python commander with two Rust traitors.
#[test]
fn om2_n7_python_commander() {
    let c = mixed(
        7,
        "N0,N1,N2,N3",
        "N4,N5,N6",
        &["N1=flip", "N3=two-faced"],
        &[],
        &[],
    );
    let (code, j, err) = om(&c, &["--commander", "N5", "-m", "2", "--order", "attack"]);
    assert_agreement(&j, &err, code, 156, &[6, 30, 120]);
    for (node, decision) in decisions(&j) {
        if node != "N1" && node != "N3" {
            assert_eq!(decision, "attack", "{node}: {j}");
        }
    }
}

/// A silent Python lieutenant relays nothing: its 2 round-2 messages are missing, count as
/// retreat, and the loyal lieutenants (waiting until the deadline) still obey.
#[test]
fn om1_n4_silent_python_lieutenant() {
    let c = mixed(4, "N0,N2", "N1,N3", &[], &["N1=silent"], &[]);
    let (code, j, err) = om(&c, &["-m", "1"]);
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(per_round(&j), [3, 4]);
    assert_eq!(j["behaviours"]["N1"], "silent");
    assert_eq!(
        decisions(&j),
        [
            ("N2".into(), "attack".into()),
            ("N3".into(), "attack".into())
        ]
    );
}

/// `delay:MS` and `deny:A,B` on Python nodes, OM(2) with n = 7. The delayed N4 still gets
/// everything through in time; N6 withholds from N1 and N2: 2 of its 5 round-2 messages, 8 of
/// its 20 round-3 ones (1 per path through N1 or N2, 2 per other path), and N1 and N2, never
/// getting [N0, N6], cannot relay it (4 each): [6, 28, 104], as an all-Rust cluster sends.
#[test]
fn om2_n7_delay_and_deny_on_python() {
    let c = mixed(
        7,
        "N0,N1,N2,N3",
        "N4,N5,N6",
        &[],
        &["N4=delay:30", "N6=deny:N1,N2"],
        &[],
    );
    let info = call(c.port("N4"), "node_info", &[]).unwrap();
    assert_eq!(member(&info, "behaviour"), &s("delay:30"));
    assert_eq!(member(&info, "traitor"), &Value::Boolean(true));
    let (code, j, err) = om(&c, &["-m", "2", "--seed", "3"]);
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(j["traitors"], serde_json::json!(["N4", "N6"]));
    assert_eq!(j["behaviours"]["N6"], "deny:N1,N2");
    assert_eq!(per_round(&j), [6, 28, 104], "{j}");
    assert_eq!(j["ic1"], true, "{j}");
    assert_eq!(j["ic2"], true, "{j}");
    for (node, decision) in decisions(&j) {
        assert_eq!(decision, "attack", "{node}: {j}");
    }
}

/// `random` is drawn from the message's identity: a Python node and a Rust node with the same
/// seeds send exactly the same values. Two random traitors on Python N4, N5 against the same
/// run on an all-Rust cluster; the traces (gathered with `trace_events`, Python's included)
/// must list the same messages with the same values.
#[test]
fn random_behaviour_is_the_same_in_python_and_rust() {
    let traitors = ["N4=random", "N5=random"];
    let all_rust = Cluster::rust_generated(
        7,
        &[&["--seed", "99"], &behaviour_flags(&traitors)[..]].concat(),
    );
    let mixed = mixed(
        7,
        "N0,N1,N2,N3",
        "N4,N5,N6",
        &[],
        &traitors,
        &["--seed", "99"],
    );

    let messages = |c: &Cluster| {
        let file = std::env::temp_dir().join(format!(
            "mixed-agreement-{}-{}.jsonl",
            std::process::id(),
            c.base
        ));
        let file_arg = file.to_str().unwrap().to_string();
        let args = ["-m", "2", "--seed", "4242", "--trace", &file_arg];
        let (code, j, err) = om(c, &args);
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let _ = std::fs::remove_file(&file);
        assert_eq!(j["ic1"], true, "{j} {err}");
        assert_eq!(code, 0, "{j} {err}");
        let mut sent: Vec<String> = text
            .lines()
            .map(|l| {
                let e: Json = serde_json::from_str(l).unwrap();
                let stored: u64 = e["result"].as_str().unwrap().parse().unwrap();
                let (start, end) = (
                    e["start_us"].as_u64().unwrap(),
                    e["end_us"].as_u64().unwrap(),
                );
                assert!(start <= stored && stored <= end, "{l}");
                format!(
                    "{} -> {}: {} {}",
                    e["from"], e["to"], e["args"][1], e["args"][2]
                )
            })
            .collect();
        sent.sort();
        (j, sent)
    };
    let (rust_json, rust_sent) = messages(&all_rust);
    let (mixed_json, mixed_sent) = messages(&mixed);
    assert_eq!(rust_sent.len(), 156);
    assert!(
        mixed_sent
            .iter()
            .filter(|m| m.starts_with("\"N5\""))
            .count()
            == 25,
        "the Python N5's own trace is in: {mixed_sent:?}"
    );
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|m| !b.contains(m)).cloned().collect()
    };
    assert!(
        rust_sent == mixed_sent,
        "all-Rust only: {:?}\nmixed only: {:?}",
        only(&rust_sent, &mixed_sent),
        only(&mixed_sent, &rust_sent)
    );
    assert_eq!(rust_json["decisions"], mixed_json["decisions"]);
    assert_eq!(
        rust_json["traitor_decisions"],
        mixed_json["traitor_decisions"]
    );
    drop(all_rust);
}

/// A Rust node pair and a Python `--agreement` node pair, each hosting P and Q of P..S (R
/// and S do not exist, so Q's relays are refused).
fn node_pairs() -> (Cluster, Cluster) {
    let rust = Cluster::rust_nodes("P,Q", &[]);
    let python = Cluster::builder()
        .hosting(Side::Python, "P,Q", &["--agreement"])
        .start();
    (rust, python)
}

/// The same calls, in order, to the Rust and to the Python node get the same answers
/// (`node_info`'s SM key and `om_message`'s time compared in kind; `sm_start` is Rust only).
fn assert_answers_alike(rust: &Cluster, python: &Cluster, calls: &[(char, &str, Vec<Value>)]) {
    let mut mismatches = Vec::new();
    for (node, method, params) in calls {
        let rust_answer = call(port_of(rust.base, *node), method, params);
        let python_answer = call(port_of(python.base, *node), method, params);
        let (r, p) = match (rust_answer, python_answer) {
            // Rust's node_info carries its SM key; Python takes no part in SM.
            (Ok(Value::Struct(mut r)), Ok(Value::Struct(p))) if *method == "node_info" => {
                r.insert("public_key".into(), s(""));
                (Ok(Value::Struct(r)), Ok(Value::Struct(p)))
            }
            // om_message answers when it stored the message: a time, so equal in kind only.
            (Ok(Value::String(r)), Ok(Value::String(p))) if *method == "om_message" => {
                let kind = |t: &str| {
                    s(if t.parse::<u64>().is_ok() {
                        "a time"
                    } else {
                        t
                    })
                };
                (Ok(kind(&r)), Ok(kind(&p)))
            }
            // SM is Rust only: the Python node does not know the method.
            (_, p) if *method == "sm_start" => {
                assert_eq!(
                    p,
                    Err((
                        1,
                        "<class 'Exception'>:method \"sm_start\" is not supported".into()
                    ))
                );
                continue;
            }
            other => other,
        };
        if r != p {
            mismatches.push(format!(
                "{node}.{method}{params:?}\n  rust:   {r:?}\n  python: {p:?}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

fn arr(v: &[&str]) -> Value {
    Value::Array(v.iter().map(|x| s(x)).collect())
}

fn pqrs() -> Value {
    arr(&["P", "Q", "R", "S"])
}

fn int(i: i32) -> Value {
    Value::Integer(i)
}

/// The capability and pair key every hand-made start of these tests uses.
const SECRET: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// `om_start`'s arguments for node Q: the six of the run, then the capability and a key for
/// every other name of `nodes` (none when `nodes` is not an array of strings).
fn start(run: &str, commander: &str, nodes: Value, m: Value, ms: Value, seed: Value) -> Vec<Value> {
    let keys = match &nodes {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(n) if n != "Q" => Some((n.clone(), s(SECRET))),
                _ => None,
            })
            .collect(),
        _ => Default::default(),
    };
    vec![
        s(run),
        s(commander),
        nodes,
        m,
        ms,
        seed,
        s(SECRET),
        Value::Struct(keys),
    ]
}

/// A Rust node and a Python `--agreement` node answer `node_info` alike, its faults too.
#[test]
fn python_node_answers_node_info_like_a_rust_node() {
    let (rust, python) = node_pairs();
    let calls: Vec<(char, &str, Vec<Value>)> = vec![
        ('Q', "node_info", vec![]),
        ('P', "node_info", vec![]),
        ('Q', "node_info", vec![s("x")]),
    ];
    assert_answers_alike(&rust, &python, &calls);
}

/// Every bad `om_start` gets the same fault from a Rust and a Python node, in the documented
/// check order.
#[test]
fn python_node_refuses_om_starts_like_a_rust_node() {
    let (rust, python) = node_pairs();
    let many: Vec<String> = (0..65).map(|i| format!("X{i}")).collect();
    let many = Value::Array(many.into_iter().map(Value::String).collect());
    let calls: Vec<(char, &str, Vec<Value>)> = vec![
        ('Q', "om_start", vec![s("a"); 5]),
        (
            'Q',
            "om_start",
            start("r", "P", int(1), int(1), int(1), s("1")),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", pqrs(), s("1"), int(1), s("1")),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", pqrs(), Value::Boolean(true), int(1), s("1")),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", pqrs(), int(1), s("1"), s("1")),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", many, int(1), int(1), s("1")),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", pqrs(), int(9), int(1), s("1")),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", pqrs(), int(-1), int(1), s("1")),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", pqrs(), int(1), int(0), s("1")),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", pqrs(), int(1), int(600_001), s("1")),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", pqrs(), int(1), int(1), int(1)),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", pqrs(), int(1), int(1), s("-1")),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", pqrs(), int(1), int(1), s(" 1")),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", pqrs(), int(1), int(1), s("18446744073709551616")),
        ),
        (
            'Q',
            "om_start",
            vec![int(1), s("P"), pqrs(), int(1), int(1), s("1")],
        ),
        (
            'Q',
            "om_start",
            vec![s("r"), int(1), pqrs(), int(1), int(1), s("1")],
        ),
        (
            'Q',
            "om_start",
            start("r", "X", pqrs(), int(1), int(1), s("1")),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", arr(&["P", "R"]), int(0), int(1), s("1")),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", arr(&["P", "Q", "P"]), int(0), int(1), s("1")),
        ),
        (
            'Q',
            "om_start",
            start("r", "P", arr(&["P", "Q", "R"]), int(2), int(1), s("1")),
        ),
        // The secrets: a capability that is not one, keys that are not a struct, a key
        // missing, a key too many, a key for Q itself, a key that is not one.
        {
            let mut bad = start("r", "P", pqrs(), int(1), int(1), s("1"));
            bad[6] = s("not base64");
            ('Q', "om_start", bad)
        },
        {
            let mut bad = start("r", "P", pqrs(), int(1), int(1), s("1"));
            bad[7] = arr(&["P"]);
            ('Q', "om_start", bad)
        },
        {
            let mut bad = start("r", "P", pqrs(), int(1), int(1), s("1"));
            bad[7] = start("r", "P", arr(&["P", "R"]), int(1), int(1), s("1"))[7].clone();
            ('Q', "om_start", bad)
        },
        {
            let mut bad = start("r", "P", pqrs(), int(1), int(1), s("1"));
            bad[7] = start("r", "P", arr(&["P", "R", "S", "T"]), int(1), int(1), s("1"))[7].clone();
            ('Q', "om_start", bad)
        },
        {
            let mut bad = start("r", "P", pqrs(), int(1), int(1), s("1"));
            if let Value::Struct(keys) = &mut bad[7] {
                keys.insert("Q".into(), s(SECRET));
            }
            ('Q', "om_start", bad)
        },
        {
            let mut bad = start("r", "P", pqrs(), int(1), int(1), s("1"));
            if let Value::Struct(keys) = &mut bad[7] {
                keys.insert("R".into(), s("AAAA"));
            }
            ('Q', "om_start", bad)
        },
    ];
    assert_answers_alike(&rust, &python, &calls);
}

/// A run with Q a lieutenant, call by call: messages (genuine ones with their MACs, forged
/// and malformed ones), rounds, orders, the decide struct and the trace get the same answers
/// and faults from a Rust and a Python node.
#[test]
fn python_node_runs_om_as_a_lieutenant_like_a_rust_node() {
    let (rust, python) = node_pairs();
    let mut run = HandRun::new("om", "P", "P,Q,R,S", 1, 300);
    run.secrets.run = "om-1".into();
    run.seed = "+42".into();
    let id = s(run.id());
    let cap = run.cap("Q");
    let mac = s("bm90IGEgTUFD");
    let mut start = run.start("Q");
    start[3] = Value::Long(1);
    let calls: Vec<(char, &str, Vec<Value>)> = vec![
        ('Q', "om_start", start),
        ('Q', "om_message", vec![id.clone(), arr(&["P"])]),
        (
            'Q',
            "om_message",
            vec![id.clone(), s("P"), s("attack"), mac.clone()],
        ),
        (
            'Q',
            "om_message",
            vec![id.clone(), arr(&["P"]), int(1), mac.clone()],
        ),
        (
            'Q',
            "om_message",
            vec![id.clone(), arr(&["P"]), s("attack"), int(1)],
        ),
        (
            'Q',
            "om_message",
            vec![s("om-2"), arr(&["P"]), s("attack"), mac.clone()],
        ),
        // Not proven: no sender, a stranger, Q itself, a MAC of nobody's.
        (
            'Q',
            "om_message",
            vec![id.clone(), arr(&[]), s("attack"), mac.clone()],
        ),
        (
            'Q',
            "om_message",
            vec![id.clone(), arr(&["P", "X\"y"]), s("attack"), mac.clone()],
        ),
        (
            'Q',
            "om_message",
            vec![id.clone(), arr(&["P", "Q"]), s("attack"), mac.clone()],
        ),
        (
            'Q',
            "om_message",
            vec![id.clone(), arr(&["P"]), s("attack"), mac.clone()],
        ),
        // Proven, but not a path of this run.
        (
            'Q',
            "om_message",
            run.om_message("Q", &["P", "R", "S"], "attack"),
        ),
        (
            'Q',
            "om_message",
            run.om_message("Q", &["P", "P"], "attack"),
        ),
        ('Q', "om_message", run.om_message("Q", &["R"], "attack")),
        // Genuine: stored; again (another value on the same path): a duplicate.
        ('Q', "om_message", run.om_message("Q", &["P"], "attack")),
        ('Q', "om_message", run.om_message("Q", &["P"], "retreat")),
        (
            'Q',
            "om_message",
            run.om_message("Q", &["P", "R"], "attack"),
        ),
        // The rounds: round 1 (Q owes nothing), round 2 (Q relays [P] to R and S, which
        // do not exist, so both fail); round 2 asked again answers the same.
        ('Q', "om_round", run.round("Q", 1)),
        ('Q', "om_round", run.round("Q", 2)),
        ('Q', "om_round", run.round("Q", 2)),
        ('Q', "om_round", run.round("Q", 1)),
        ('Q', "om_round", run.round("Q", 3)),
        ('Q', "om_round", run.round("Q", 0)),
        ('Q', "om_round", vec![id.clone(), cap.clone()]),
        ('Q', "om_round", vec![s("nope"), cap.clone(), int(1)]),
        ('Q', "om_round", vec![id.clone(), s(SECRET), int(2)]),
        // A duplicate is not late; a message no one sent before in a closed round would be.
        ('Q', "om_message", run.om_message("Q", &["P"], "attack")),
        ('Q', "om_order", vec![id.clone(), cap.clone(), s("attack")]),
        ('Q', "om_order", vec![s("it's"), cap.clone(), s("attack")]),
        ('Q', "om_decide", vec![]),
        ('Q', "om_decide", vec![s("it's"), cap.clone()]),
        ('Q', "om_decide", vec![id.clone(), s(SECRET)]),
        // [P]=attack, [P,R]=attack, [P,S] missing: majority attack; the relays failed; five
        // messages were not proven.
        ('Q', "om_decide", run.decide("Q")),
        ('Q', "om_decide", run.decide("Q")),
        ('Q', "trace_events", vec![id.clone(), cap.clone()]),
        ('Q', "trace_events", vec![id.clone(), cap.clone(), s("x")]),
        ('Q', "trace_events", vec![id.clone(), cap.clone(), int(0)]),
        ('Q', "trace_events", vec![id.clone(), s(SECRET), s("0")]),
    ];
    assert_answers_alike(&rust, &python, &calls);

    // Q's outgoing calls of om-1, as trace_events lists them: two failed relays of [P].
    let events = |port| match call(port, "trace_events", &run.trace("Q", 0)) {
        Ok(Value::Array(items)) => {
            let mut v: Vec<String> = items
                .iter()
                .map(|e| {
                    let fault = match member(e, "fault") {
                        Value::String(f) => f.clone(),
                        other => panic!("{other:?}"),
                    };
                    format!(
                        "{:?} {:?} {:?} {:?} {fault}",
                        member(e, "from"),
                        member(e, "to"),
                        member(e, "method"),
                        member(e, "args")
                    )
                })
                .collect();
            v.sort();
            v
        }
        other => panic!("trace_events gave {other:?}"),
    };
    let rust_events = events(rust.port("Q"));
    assert_eq!(rust_events.len(), 2, "{rust_events:?}");
    assert_eq!(rust_events, events(python.port("Q")));
}

/// A run with Q the commander: every round-1 call is refused alike by a Rust and a Python
/// node; `sm_start` is Rust only.
#[test]
fn python_node_runs_om_as_the_commander_like_a_rust_node() {
    let (rust, python) = node_pairs();
    let mut run = HandRun::new("om", "Q", "P,Q,R,S", 1, 50);
    run.secrets.run = "om-2".into();
    run.seed = "7".into();
    let mut sm_start = run.start("Q");
    sm_start[0] = s("sm-1");
    sm_start.push(Value::Struct(Default::default()));
    let calls: Vec<(char, &str, Vec<Value>)> = vec![
        ('Q', "om_start", run.start("Q")),
        ('Q', "om_message", run.om_message("Q", &["P"], "attack")),
        ('Q', "om_order", run.order("attack")),
        ('Q', "om_order", run.order("attack")),
        ('Q', "om_order", run.order("retreat")),
        ('Q', "om_decide", run.decide("Q")),
        ('Q', "sm_start", sm_start),
    ];
    assert_answers_alike(&rust, &python, &calls);
}

/// (d) Without `--agreement` the stand-in is the original: every extension method is
/// unsupported, and the agreement flags are refused.
#[test]
fn python_without_agreement_refuses_the_extension() {
    let py = Cluster::builder().server(Side::Python, &[]).start();
    let (p, q) = (py.port("P"), py.port("Q"));
    for method in [
        "node_info",
        "om_start",
        "om_order",
        "om_message",
        "om_decide",
        "trace_events",
    ] {
        assert_eq!(
            call(q, method, &[]),
            Err((
                1,
                format!("<class 'Exception'>:method \"{method}\" is not supported")
            )),
            "{method}"
        );
    }
    // The original methods are unchanged.
    assert_eq!(
        call(p, "send_message", &[s("R"), s("attack")]),
        Ok(s("P denied communication to R"))
    );

    let mut cmd = Command::new("python3");
    cmd.arg(python_server_script()).args([
        "--port-base",
        &port_base().to_string(),
        "--behaviour",
        "Q=flip",
    ]);
    let (code, _, err) = run(cmd, Duration::from_secs(15));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("need --agreement"), "{err}");
}

/// A scripted strategy (`script:`, the adversary of `client explore --adversary`) executed by
/// the Python stand-in in mixed runs: the n = 3 counterexample with the Python lieutenant N2
/// as the liar (one lie breaks IC2), and a Python commander telling each lieutenant something
/// else (attack, retreat, nothing), which OM(1) over 4 survives.
#[test]
fn python_executes_a_scripted_strategy() {
    let c = mixed(3, "N0,N1", "N2", &[], &["N2=script:N0>N2>N1=retreat"], &[]);
    let info = call(c.port("N2"), "node_info", &[]).unwrap();
    assert_eq!(member(&info, "behaviour"), &s("script:N0>N2>N1=retreat"));
    let (code, j, err) = om(
        &c,
        &[
            "-m",
            "1",
            "--allow-unsafe",
            "--order",
            "attack",
            "--seed",
            "3",
        ],
    );
    assert_eq!(code, 1, "{j} {err}");
    assert_eq!(j["ic2"], false, "{j}");
    assert_eq!(decisions(&j), [("N1".into(), "retreat".into())]);
    assert_eq!(per_round(&j), [2, 2]);

    let script = "N1=script:N1>N0=attack;N1>N2=retreat;N1>N3=-";
    let c = mixed(4, "N0,N2", "N1,N3", &[], &[script], &[]);
    // Printed as the Rust node prints it: entries sorted by (path, receiver).
    let info = call(c.port("N1"), "node_info", &[]).unwrap();
    assert_eq!(
        member(&info, "behaviour"),
        &s("script:N1>N0=attack;N1>N2=retreat;N1>N3=-")
    );
    let rust: generals::behaviour::Behaviour = script["N1=".len()..].parse().unwrap();
    assert_eq!(member(&info, "behaviour"), &s(&rust.to_string()));
    let (code, j, err) = om(&c, &["--commander", "N1", "-m", "1", "--seed", "4"]);
    assert_eq!(code, 0, "{j} {err}");
    // Round 1: only the two scripted messages; N3 got nothing and relays nothing of [N1].
    assert_eq!(per_round(&j), [2, 4], "{j}");
    let decided: Vec<String> = decisions(&j).into_iter().map(|(_, d)| d).collect();
    assert!(decided.windows(2).all(|w| w[0] == w[1]), "{j}");
    let (_, _, _, events) = om_traced(&c, &["--commander", "N1", "-m", "1", "--seed", "4"]);
    let mut sent: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["from"] == "N1")
        .map(|e| {
            let to = e["to"].as_str().unwrap().to_string();
            (to, e["args"][2].as_str().unwrap().to_string())
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            ("N0".into(), "attack".into()),
            ("N2".into(), "retreat".into())
        ],
        "exactly the script"
    );
}

/// Two `client om --seed 7` at once on a mixed cluster: each run has its own random id, so
/// both run on every node, Python's included, and both hold; an outsider's forged message and
/// decide meanwhile change nothing (the Python node checks MACs and capabilities as a Rust
/// node does).
#[test]
fn two_same_seed_runs_at_once_on_a_mixed_cluster_both_hold() {
    let c = mixed(4, "N0,N2", "N1,N3", &[], &["N3=two-faced"], &[]);
    let n1 = c.port("N1");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let outsider = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut refused = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let forged = [s("om-7"), arr(&["N0"]), s("retreat"), s("bm90IGEgTUFD")];
                refused += usize::from(call(n1, "om_message", &forged).is_err());
                let decide = [s("om-7"), s(SECRET)];
                refused += usize::from(call(n1, "om_decide", &decide).is_err());
            }
            refused
        })
    };
    for _ in 0..2 {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let client = c.client().args(&["om", "-m", "1", "--seed", "7"]);
                std::thread::spawn(move || client.json())
            })
            .collect();
        for t in runs {
            let (code, j, err) = t.join().unwrap();
            assert_agreement(&j, &err, code, 9, &[3, 6]);
            assert_eq!(j["run"], "om-7");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(outsider.join().unwrap() > 0);
}

/// The stand-in runs OM only: an SM run over a mixed cluster is refused (exit 2) with the
/// Python node named and what to do, never judged with it counted as unreachable.
#[test]
fn an_sm_run_with_a_python_node_is_refused_naming_it() {
    let c = mixed(4, "N0,N1,N2", "N3", &[], &[], &[]);
    let (code, out, err) = c.client().args(&["sm", "-m", "1", "--seed", "1"]).run();
    assert_eq!(code, 2, "{out} {err}");
    assert!(err.contains("node N3 ("), "{err}");
    assert!(err.contains("does not run SM"), "{err}");
    assert!(err.contains("the Python stand-in runs OM only"), "{err}");
    assert!(
        !out.contains("holds") && !err.contains("unreachable"),
        "{out} {err}"
    );
}
