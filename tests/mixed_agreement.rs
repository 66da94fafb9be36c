//! Mixed Python/Rust Byzantine runs: `client om` over clusters where some generals are Rust
//! nodes and the others are the Python stand-in with `--agreement` (the OM extension of
//! `scripts/python/server.py`, docs/protocol-extensions.md). Traitors sit on either side, the
//! commander too; the Python node must answer, fault and lie exactly as a Rust node does.
//! Without `--agreement` the stand-in must still refuse every extension method.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
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
        let (code, j, err) = om(&c, &["-m", "1", "--order", order, "--seed", seed]);
        assert_agreement(&j, &err, code, 9, &[3, 6]);
        assert_eq!(j["traitors"], serde_json::json!(["N3"]));
        assert_eq!(j["behaviours"]["N3"], "two-faced");
        assert_eq!(
            decisions(&j),
            [("N1".into(), order.into()), ("N2".into(), order.into())]
        );
        // What N3 actually sent, from its own trace_events: its receivers of [N0] are N1, N2
        // (nodes order), so index 0 < 2/2 gets attack and index 1 retreat, whatever the order.
        let run = format!("om-{seed}");
        let Ok(Value::Array(events)) = call(c.port("N3"), "trace_events", &[s(&run), s("0")])
        else {
            panic!("no trace from N3");
        };
        let mut sent: Vec<(Value, Value, Value)> = events
            .iter()
            .map(|e| {
                let Value::String(stored) = member(e, "result") else {
                    panic!("{e:?}")
                };
                assert!(stored.parse::<u64>().is_ok(), "stored at: {e:?}");
                let Value::Array(args) = member(e, "args") else {
                    panic!("{e:?}")
                };
                (member(e, "to").clone(), args[1].clone(), args[2].clone())
            })
            .collect();
        sent.sort_by_key(|t| format!("{t:?}"));
        let path = Value::Array(vec![s("N0"), s("N3")]);
        assert_eq!(
            sent,
            [
                (s("N1"), path.clone(), s("attack")),
                (s("N2"), path, s("retreat"))
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

/// `om_start`'s arguments.
fn start(run: &str, commander: &str, nodes: Value, m: Value, ms: Value, seed: Value) -> Vec<Value> {
    vec![s(run), s(commander), nodes, m, ms, seed]
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
    ];
    assert_answers_alike(&rust, &python, &calls);
}

/// A run with Q a lieutenant, call by call: messages, rounds, orders, the decide struct and
/// the trace get the same answers and faults from a Rust and a Python node.
#[test]
fn python_node_runs_om_as_a_lieutenant_like_a_rust_node() {
    let (rust, python) = node_pairs();
    let calls: Vec<(char, &str, Vec<Value>)> = vec![
        // A real run: Q a lieutenant, deadline 2 x 300 ms.
        (
            'Q',
            "om_start",
            start("om-1", "P", pqrs(), Value::Long(1), int(300), s("+42")),
        ),
        ('Q', "om_message", vec![s("om-1"), arr(&["P"])]),
        ('Q', "om_message", vec![s("om-1"), s("P"), s("attack")]),
        ('Q', "om_message", vec![s("om-1"), arr(&["P"]), int(1)]),
        ('Q', "om_message", vec![s("om-2"), arr(&["P"]), s("attack")]),
        ('Q', "om_message", vec![s("om-1"), arr(&[]), s("attack")]),
        (
            'Q',
            "om_message",
            vec![s("om-1"), arr(&["P", "R", "S"]), s("attack")],
        ),
        (
            'Q',
            "om_message",
            vec![s("om-1"), arr(&["P", "X\"y"]), s("attack")],
        ),
        (
            'Q',
            "om_message",
            vec![s("om-1"), arr(&["P", "P"]), s("attack")],
        ),
        (
            'Q',
            "om_message",
            vec![s("om-1"), arr(&["P", "Q"]), s("attack")],
        ),
        ('Q', "om_message", vec![s("om-1"), arr(&["R"]), s("attack")]),
        ('Q', "om_message", vec![s("om-1"), arr(&["P"]), s("attack")]),
        (
            'Q',
            "om_message",
            vec![s("om-1"), arr(&["P"]), s("retreat")],
        ),
        (
            'Q',
            "om_message",
            vec![s("om-1"), arr(&["P", "R"]), s("attack")],
        ),
        // The rounds: round 1 (Q owes nothing), round 2 (Q relays [P] to R and S, which
        // know no run om-1, so both are refused); then a message of round 1 is late.
        ('Q', "om_round", vec![s("om-1"), int(1)]),
        ('Q', "om_round", vec![s("om-1"), int(2)]),
        ('Q', "om_round", vec![s("om-1"), int(2)]),
        ('Q', "om_round", vec![s("om-1"), int(3)]),
        ('Q', "om_round", vec![s("om-1"), int(0)]),
        ('Q', "om_round", vec![s("om-1")]),
        ('Q', "om_round", vec![s("nope"), int(1)]),
        ('Q', "om_message", vec![s("om-1"), arr(&["P"]), s("attack")]),
        ('Q', "om_order", vec![s("om-1"), s("attack")]),
        ('Q', "om_order", vec![s("it's"), s("attack")]),
        ('Q', "om_decide", vec![]),
        ('Q', "om_decide", vec![s("it's")]),
        // [P]=attack, [P,R]=attack, [P,S] missing: majority attack; the relays were refused.
        ('Q', "om_decide", vec![s("om-1")]),
        ('Q', "trace_events", vec![s("om-1")]),
        ('Q', "trace_events", vec![s("om-1"), s("x")]),
        ('Q', "trace_events", vec![s("om-1"), int(0)]),
    ];
    assert_answers_alike(&rust, &python, &calls);

    // Q's outgoing calls of om-1, as trace_events lists them: two refused relays of [P].
    let events = |port| match call(port, "trace_events", &[s("om-1"), s("0")]) {
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
    let calls: Vec<(char, &str, Vec<Value>)> = vec![
        // Q as the commander: every round-1 call is refused.
        (
            'Q',
            "om_start",
            start("om-2", "Q", pqrs(), int(1), int(50), s("7")),
        ),
        ('Q', "om_message", vec![s("om-2"), arr(&["Q"]), s("attack")]),
        ('Q', "om_order", vec![s("om-2"), s("attack")]),
        ('Q', "om_order", vec![s("om-2"), s("attack")]),
        ('Q', "om_decide", vec![s("om-2")]),
        (
            'Q',
            "sm_start",
            start("sm-1", "Q", pqrs(), int(1), int(50), s("7")),
        ),
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
    let Ok(Value::Array(events)) = call(c.port("N1"), "trace_events", &[s("om-4"), s("0")]) else {
        panic!("no trace from N1");
    };
    let mut sent: Vec<(Value, Value)> = events
        .iter()
        .map(|e| {
            let Value::Array(args) = member(e, "args") else {
                panic!("{e:?}")
            };
            (member(e, "to").clone(), args[2].clone())
        })
        .collect();
    sent.sort_by_key(|(to, _)| format!("{to:?}"));
    assert_eq!(
        sent,
        [(s("N0"), s("attack")), (s("N2"), s("retreat"))],
        "exactly the script"
    );
}
