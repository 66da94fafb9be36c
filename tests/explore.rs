//! Issue "See it": the explorer, seeded replayable runs and traces.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value as Json;

fn client(args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(client_bin());
    cmd.args(args);
    run(cmd, Duration::from_secs(120))
}

fn field(out: &str, name: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name:?} in\n{out}"))
}

#[test]
fn explorer_covers_every_case_of_om_4_1() {
    let (code, out, err) = client(&["explore", "--protocol", "om", "-n", "4", "-m", "1", "--seed", "9"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // (1 + C(4,1) * 3 behaviours) * 2 orders.
    assert!(out.contains("; 26 cases, seed 9"), "{out}");
    assert_eq!(field(&out, "cases run"), 26);
    assert_eq!(field(&out, "IC1 held"), 26);
    assert_eq!(field(&out, "IC2 held"), 26);
    assert!(out.contains("no counterexample"), "{out}");
}

#[test]
fn explorer_finds_the_classic_counterexample_with_three_generals() {
    let (code, _, err) = client(&["explore", "-n", "3", "-m", "1"]);
    assert_eq!(code, 2, "below the bound without --allow-unsafe: {err}");
    let (code, out, err) = client(&["explore", "-n", "3", "-m", "1", "--allow-unsafe", "--behaviours", "flip", "--orders", "attack"]);
    assert_eq!(code, 1, "{out}\n{err}");
    // (1 + 3 placements) * 1 behaviour * 1 order.
    assert_eq!(field(&out, "cases run"), 4);
    assert!(out.contains("first counterexample: order attack, traitors: "), "{out}");
    assert!(out.contains("VIOLATED"), "{out}");
}

#[test]
fn explorer_sm_holds_where_om_cannot() {
    let (code, out, err) = client(&["explore", "--protocol", "sm", "-n", "3", "-m", "1", "--behaviours", "flip,two-faced", "--round-timeout-ms", "60"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(field(&out, "cases run"), 14);
    assert_eq!(field(&out, "IC1 held"), 14);
}

/// The trace of a run, without its times and in a canonical order.
fn canonical(trace: &str) -> Vec<Json> {
    let mut lines: Vec<Json> = trace
        .lines()
        .map(|l| {
            let mut j: Json = serde_json::from_str(l).unwrap();
            let o = j.as_object_mut().unwrap();
            assert!(o.remove("start_us").unwrap().as_u64().unwrap() <= o.remove("end_us").unwrap().as_u64().unwrap());
            j
        })
        .collect();
    lines.sort_by_key(|j| j.to_string());
    lines
}

#[test]
fn same_seed_same_trace() {
    let base = port_base();
    let ports: Vec<u16> = (0..5).map(|i| base + i).collect();
    let _s = Proc::rust_server(
        &["--port-base", &base.to_string(), "--cluster-size", "5", "--quiet", "--behaviour", "N1=random", "--behaviour", "N3=random"],
        &ports,
    );
    let dir = std::env::temp_dir().join(format!("generals-trace-{}-{base}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut traces = Vec::new();
    for (i, seed) in ["77", "77", "78"].iter().enumerate() {
        let file = dir.join(format!("t{i}.jsonl"));
        let (code, out, err) = client(&[
            "--port-base", &base.to_string(), "--cluster-size", "5", "om", "-m", "1", "--seed", seed, "--json", "--trace", file.to_str().unwrap(),
        ]);
        assert!(code == 0 || code == 1, "{out}\n{err}");
        traces.push((serde_json::from_str::<Json>(&out).unwrap(), std::fs::read_to_string(&file).unwrap()));
    }
    let (a, b, c) = (&traces[0], &traces[1], &traces[2]);
    // OM(1) among 5: 4 + 12 messages, every one traced, with the run id and its path.
    assert_eq!(a.1.lines().count(), 16);
    assert_eq!(canonical(&a.1), canonical(&b.1), "same seed, different messages");
    assert_eq!(a.0["decisions"], b.0["decisions"]);
    assert_eq!(a.0["traitor_decisions"], b.0["traitor_decisions"]);
    assert_ne!(canonical(&a.1), canonical(&c.1), "another seed should change the random traitors' messages");
    for line in a.1.lines() {
        let j: Json = serde_json::from_str(line).unwrap();
        assert_eq!(j["run"], "om-77");
        assert_eq!(j["method"], "om_message");
        assert_eq!(j["result"], "ok");
        assert!(j["from"].is_string() && j["to"].is_string());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_original_scenario_can_be_traced() {
    let base = port_base();
    let ports: Vec<u16> = "PQRS".chars().map(|c| port_of(base, c)).collect();
    let _s = Proc::rust_server(&["--port-base", &base.to_string(), "--quiet"], &ports);
    let file = std::env::temp_dir().join(format!("generals-original-{}-{base}.jsonl", std::process::id()));
    let (code, _, err) = client(&["--port-base", &base.to_string(), "--quiet", "--trace", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let trace = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    // 12 sends, of which P denies 2: 10 receive_message calls between nodes.
    let lines = canonical(&trace);
    assert_eq!(lines.len(), 10);
    assert!(lines.iter().all(|j| j["method"] == "receive_message" && j["run"] == "original"));
    assert!(lines.iter().any(|j| j["from"] == "P" && j["to"] == "Q" && j["args"] == serde_json::json!(["P", "attack"])));
}
