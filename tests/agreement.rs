//! Byzantine agreement over XML-RPC: OM(m) and SM(m) runs between server processes, driven
//! by `client om` / `client sm`, with the checker's verdict and the message counts. Each test
//! starts its own cluster (generated names N0.. or P..S) on a free port block.

use std::time::Duration;

use crate::common::*;
use serde_json::Value as Json;

/// A Rust cluster of `n` generated nodes N0..N{n-1} with these behaviours.
fn cluster(n: usize, behaviours: &[&str]) -> Cluster {
    let flags: Vec<&str> = behaviours.iter().flat_map(|b| ["--behaviour", b]).collect();
    Cluster::rust_generated(n, &flags)
}

fn decisions(j: &Json) -> Vec<(String, String)> {
    j["decisions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

fn rounds(j: &Json, key: &str) -> Vec<u64> {
    j[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

#[test]
fn om_n4_m1_two_faced_lieutenant() {
    let c = cluster(4, &["N2=two-faced"]);
    let (code, j, err) = c.client_json(&["om", "-m", "1", "--order", "attack"]);
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(j["traitors"], serde_json::json!(["N2"]));
    assert_eq!(
        decisions(&j),
        [
            ("N1".into(), "attack".into()),
            ("N3".into(), "attack".into())
        ]
    );
    assert!(j["ic1"].as_bool().unwrap() && j["ic2"].as_bool().unwrap());
    assert_eq!(rounds(&j, "messages_per_round"), [3, 6]);
    assert_eq!(rounds(&j, "expected_per_round"), [3, 6]);
    assert_eq!(j["messages"], 9);
}

#[test]
fn om_n4_m1_two_faced_commander() {
    let c = cluster(4, &["N0=two-faced"]);
    for order in ["attack", "retreat"] {
        let (code, j, err) = c.client_json(&["om", "-m", "1", "--order", order]);
        assert_eq!(code, 0, "{j} {err}");
        let d = decisions(&j);
        assert_eq!(d.len(), 3);
        assert!(
            d.iter().all(|(_, v)| *v == d[0].1),
            "loyal lieutenants disagree: {d:?}"
        );
        assert_eq!(j["ic1"], true);
        assert_eq!(j["ic2"], true, "vacuous: the commander is a traitor");
    }
}

#[test]
fn om_n7_m2_two_traitors_of_different_kinds() {
    let c = cluster(7, &["N2=flip", "N5=two-faced"]);
    let (code, j, err) = c.client_json(&["om", "-m", "2", "--order", "retreat", "--seed", "11"]);
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(j["traitors"], serde_json::json!(["N2", "N5"]));
    assert_eq!(j["messages"], 156);
    assert_eq!(rounds(&j, "messages_per_round"), [6, 30, 120]);
    for (node, d) in decisions(&j) {
        assert_eq!(d, "retreat", "{node}");
    }
}

#[test]
fn om_below_the_bound_is_refused_unless_unsafe() {
    let c = cluster(3, &["N2=flip"]);
    let (code, _, err) = c.client_json(&["om", "-m", "1"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("needs at least 4 nodes") && err.contains("--allow-unsafe"),
        "{err}"
    );
    // With --allow-unsafe the impossibility shows: the loyal N1 hears attack from the loyal
    // commander and retreat from the traitor N2, has no majority, and retreats.
    let (code, j, err) = c.client_json(&["om", "-m", "1", "--allow-unsafe", "--order", "attack"]);
    assert_eq!(code, 1, "{j} {err}");
    assert_eq!(j["ic2"], false);
    assert_eq!(decisions(&j), [("N1".into(), "retreat".into())]);
    let problems = j["problems"].to_string();
    assert!(
        problems.contains("IC2 violated") && problems.contains("N1 decided retreat"),
        "{problems}"
    );
}

#[test]
fn om_human_report_shows_counts_and_verdicts() {
    let c = cluster(4, &["N3=flip"]);
    let (code, out, err) = c
        .client()
        .args(&["om", "-m", "1", "--seed", "5"])
        .timeout(Duration::from_secs(60))
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("OM(1) with n=4 nodes, commander N0 orders attack (run om-5, seed 5)\n"),
        "{out}"
    );
    assert!(out.contains("traitors: N3 (flip)\n"), "{out}");
    assert!(
        out.contains("messages per round (measured / expected): r1: 3/3 r2: 6/6; total 9/9\n"),
        "{out}"
    );
    assert!(
        out.contains("IC1 (loyal lieutenants agree): holds\n"),
        "{out}"
    );
    assert!(
        out.contains("IC2 (loyal commander obeyed): holds\n"),
        "{out}"
    );
}

#[test]
fn om_silent_traitor_messages_count_as_missing() {
    let c = cluster(4, &["N1=silent"]);
    let (code, j, err) = c.client_json(&["om", "-m", "1"]);
    assert_eq!(code, 0, "{j} {err}");
    // N1 relays nothing: 2 of round 2's 6 messages are missing.
    assert_eq!(rounds(&j, "messages_per_round"), [3, 4]);
    assert!(decisions(&j).iter().all(|(_, d)| d == "attack"));
}

#[test]
fn sm_n3_m1_two_faced_commander_agrees() {
    let c = cluster(3, &["N0=two-faced"]);
    let (code, j, err) = c.client_json(&["sm", "-m", "1"]);
    assert_eq!(code, 0, "{j} {err}");
    let d = decisions(&j);
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].1, d[1].1, "{d:?}");
    assert_eq!(
        d[0].1, "retreat",
        "both saw attack and retreat: choice is retreat"
    );
    assert_eq!(j["rejected"], 0);
}

/// A traitor that alters a signed order (flip) cannot re-sign the commander's part: every
/// altered message is rejected and counted, and the loyal lieutenants still obey.
#[test]
fn sm_altered_messages_are_rejected() {
    let c = cluster(4, &["N2=flip"]);
    let (code, j, err) = c.client_json(&["sm", "-m", "1"]);
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(j["rejected"], 2, "N2's two relays are forgeries");
    assert!(decisions(&j).iter().all(|(_, d)| d == "attack"));
    assert_eq!(j["protocol"], "sm");
}

#[test]
fn sm_below_its_bound_is_refused() {
    let c = cluster(3, &[]);
    let (code, _, err) = c.client_json(&["sm", "-m", "2"]);
    assert_eq!(code, 2);
    assert!(err.contains("SM(2) needs at least 4 nodes"), "{err}");
}

/// Behaviours apply to the original scenario too: a flipping Q sends retreat.
#[test]
fn behaviours_apply_to_the_original_send_message() {
    let c = Cluster::rust(&["--behaviour", "Q=flip"]);
    let (code, out, _) = c.client().timeout(Duration::from_secs(30)).run();
    assert_eq!(code, 0);
    assert!(
        out.contains("Process Q sent decision 'retreat' to R\n"),
        "{out}"
    );
    let (stdout, _) = c.into_process().stop();
    assert!(
        stdout.contains("R received decision 'retreat' from Q\n"),
        "{stdout}"
    );
}

/// `delay:MS` answers late: a caller with a shorter timeout gets the timeout fault.
#[test]
fn delay_behaviour_exercises_timeouts() {
    let c = Cluster::rust(&["--rpc-timeout", "0.3", "--behaviour", "S=delay:1000"]);
    let q = c.port("Q");
    assert_eq!(
        call(q, "send_message", &[s("S"), s("attack")]),
        Err((1, "<class 'TimeoutError'>:timed out".to_string()))
    );
    assert_eq!(
        call(q, "send_message", &[s("R"), s("attack")]),
        Ok(s("Q sent decision 'attack' to R"))
    );
}
