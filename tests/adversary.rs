//! Issue 17: the adversary that tries every lie (`client explore --adversary all|fuzz`), each
//! case a real run over XML-RPC on in-process clusters, each case id replayable.

use crate::common::*;
use serde_json::Value as Json;

/// `client explore ARGS --json`: (exit code, the JSON object, stderr).
fn explore(args: &[&str]) -> (i32, Json, String) {
    let args = [&["explore"], args, &["--json"]].concat();
    let (code, out, err) = Client::rust().args(&args).run();
    let json = serde_json::from_str(out.trim()).unwrap_or(Json::Null);
    (code, json, err)
}

/// (node, decision) of a run's loyal lieutenants and traitors alike.
fn decisions(run: &Json) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = ["decisions", "traitor_decisions"]
        .iter()
        .flat_map(|k| run[k].as_object().cloned().unwrap_or_default())
        .map(|(n, d)| (n, d.as_str().unwrap_or_default().to_string()))
        .collect();
    all.sort();
    all
}

/// OM(1) over n: no traitor (1 strategy), the commander (3^(n-1): a value or nothing for each
/// lieutenant), or one of the n-1 lieutenants (3^(n-2): its relays of [P]); twice, one per order.
fn om1_space(n: u32) -> u64 {
    2 * (1 + 3u64.pow(n - 1) + u64::from(n - 1) * 3u64.pow(n - 2))
}

#[test]
fn om1_over_four_survives_every_strategy_and_the_count_is_the_formula() {
    let (code, j, err) = explore(&["--adversary", "all", "-n", "4", "-m", "1", "--seed", "1"]);
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(om1_space(4), 110);
    assert_eq!(j["space"], "110", "{j}");
    assert_eq!(j["cases"], 110, "{j}");
    assert_eq!(j["held"], 110, "{j}");
    assert_eq!(
        (j["violated"].as_u64(), j["void"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(j["skipped"], 0);
    assert!(j["counterexample"].is_null(), "{j}");
    assert!(
        err.contains("110 strategies"),
        "the count comes first: {err}"
    );

    // Above --max-cases: refused with the count, before any case.
    let (code, _, err) = Client::rust()
        .args(&["explore", "--adversary", "all", "--max-cases", "100"])
        .run();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("110 strategies, more than --max-cases 100"),
        "{err}"
    );
}

#[test]
fn om1_over_three_breaks_with_one_lie_and_the_case_replays() {
    let (code, j, err) = explore(&[
        "--adversary",
        "all",
        "-n",
        "3",
        "-m",
        "1",
        "--allow-unsafe",
        "--seed",
        "1",
    ]);
    assert_eq!(code, 1, "{j} {err}");
    assert_eq!(j["cases"], om1_space(3), "{j}");
    let cx = &j["counterexample"];
    // The smallest lie: Q relays P's attack to R as retreat.
    assert_eq!(cx["id"], "attack:Q:1", "{cx}");
    assert_eq!(cx["lies"], 1);
    assert_eq!(
        cx["messages"],
        serde_json::json!([{"round": 2, "path": ["P", "Q"], "to": "R", "value": "retreat", "lie": true}])
    );
    assert_eq!(cx["run"]["verdict"], "violated");
    assert_eq!(
        decisions(&cx["run"]),
        [
            ("Q".into(), "attack".into()),
            ("R".into(), "retreat".into())
        ]
    );
    let replay = cx["replay"].as_str().unwrap();
    assert!(replay.ends_with("--case attack:Q:1"), "{replay}");
    // The printed command runs the very case: the same run (label and seed).
    let words: Vec<&str> = replay.split_whitespace().skip(2).collect();
    let (code, again, err) = explore(&words);
    assert_eq!(code, 1, "{again} {err}");
    assert_eq!(again["case"]["run"]["run"], cx["run"]["run"], "{replay}");
    assert_eq!(again["case"]["run"]["seed"], cx["run"]["seed"], "{replay}");

    // The printed id replays it, with its picture.
    let svg = std::env::temp_dir().join(format!("generals-adversary-{}.svg", std::process::id()));
    let svg_arg = svg.to_str().unwrap();
    let (code, r, err) = explore(&[
        "--adversary",
        "all",
        "-n",
        "3",
        "-m",
        "1",
        "--allow-unsafe",
        "--case",
        "attack:Q:1",
        "--svg",
        svg_arg,
    ]);
    assert_eq!(code, 1, "{r} {err}");
    assert_eq!(r["cases"], 1);
    assert_eq!(r["case"]["messages"], cx["messages"]);
    assert_eq!(decisions(&r["case"]["run"]), decisions(&cx["run"]));
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.contains("case attack:Q:1"), "{picture}");
    assert!(picture.contains("decided retreat"), "{picture}");
    let _ = std::fs::remove_file(&svg);

    // The human report names the smallest lie and its exact message.
    let (code, out, err) = Client::rust()
        .args(&[
            "explore",
            "--adversary",
            "all",
            "-n",
            "3",
            "-m",
            "1",
            "--allow-unsafe",
        ])
        .run();
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains("smallest counterexample: case attack:Q:1 (1 lie(s))"),
        "{out}"
    );
    assert!(
        out.contains("round 2: P>Q -> R: retreat (LIE: a loyal node sends attack)"),
        "{out}"
    );
}

#[test]
fn a_fuzzed_case_replays_to_the_same_decisions() {
    // Below the bound fuzzing finds counterexamples; the one reported replays exactly.
    let (code, j, err) = explore(&[
        "--adversary",
        "fuzz",
        "--cases",
        "40",
        "--seed",
        "5",
        "-n",
        "3",
        "-m",
        "1",
        "--allow-unsafe",
    ]);
    assert_eq!(code, 1, "{j} {err}");
    assert_eq!(j["cases"], 40);
    let cx = &j["counterexample"];
    let id = cx["id"].as_str().unwrap();
    assert!(id.starts_with("fuzz:5:"), "{id}");
    let (code, r, err) = explore(&[
        "--adversary",
        "fuzz",
        "-n",
        "3",
        "-m",
        "1",
        "--allow-unsafe",
        "--case",
        id,
    ]);
    assert_eq!(code, 1, "{r} {err}");
    assert_eq!(r["case"]["messages"], cx["messages"]);
    assert_eq!(decisions(&r["case"]["run"]), decisions(&cx["run"]));

    // OM(2) over 7: a sample holds; any of its cases replays to the same decisions twice.
    let (code, j, err) = explore(&[
        "--adversary",
        "fuzz",
        "--cases",
        "30",
        "--seed",
        "7",
        "-n",
        "7",
        "-m",
        "2",
    ]);
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(
        (j["cases"].as_u64(), j["held"].as_u64()),
        (Some(30), Some(30))
    );
    let runs: Vec<Json> = (0..2)
        .map(|_| {
            let (code, r, err) = explore(&[
                "--adversary",
                "fuzz",
                "-n",
                "7",
                "-m",
                "2",
                "--case",
                "fuzz:7:11",
            ]);
            assert_eq!(code, 0, "{r} {err}");
            r
        })
        .collect();
    assert_eq!(runs[0]["case"]["messages"], runs[1]["case"]["messages"]);
    assert!(runs[0]["case"]["lies"].as_u64().unwrap() > 0, "{}", runs[0]);
    assert_eq!(
        decisions(&runs[0]["case"]["run"]),
        decisions(&runs[1]["case"]["run"])
    );
}

#[test]
fn sm1_over_three_survives_every_strategy_and_rejects_every_forgery() {
    let (code, j, err) = explore(&[
        "--adversary",
        "all",
        "--protocol",
        "sm",
        "-n",
        "3",
        "-m",
        "1",
        "--seed",
        "3",
    ]);
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(j["space"], "32");
    assert_eq!(j["held"], 32, "{j}");
    // A lieutenant traitor relaying the other order holds no commander's signature on it:
    // Q or R, order attack or retreat, one altered chain each.
    assert_eq!(j["forged"], 4, "{j}");
    assert!(j["rejected"].as_u64().unwrap() >= 4, "{j}");
    assert_eq!(j["forgeries_accepted"], 0);
    // One of them, replayed: R rejects Q's altered chain and still obeys.
    let (code, r, err) = explore(&[
        "--adversary",
        "all",
        "--protocol",
        "sm",
        "-n",
        "3",
        "-m",
        "1",
        "--case",
        "attack:Q:1",
    ]);
    assert_eq!(code, 0, "{r} {err}");
    assert_eq!(
        (
            r["case"]["run"]["forged"].as_u64(),
            r["case"]["run"]["rejected"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        r["case"]["run"]["decisions"],
        serde_json::json!({"R": "attack"})
    );
}
