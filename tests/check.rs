//! Issue 30, the test bench for any implementation: `client check` runs docs/protocol.md's rows
//! (and the extension's) against a cluster; `client explore --under-test` attacks a node it
//! did not start. Four outcomes: our server passes every row, the Python stand-in passes or
//! differs as documented, and each of the two wrong generals of `examples/` is caught, by the
//! rows and by the explorer, whose replay command reproduces the failure. The golden
//! transcripts of docs/conformance/ are kept current and replayed without our binaries.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use serde_json::Value as Json;

/// `client check` against the cluster at `base`: (exit code, the rows' outcomes by id).
fn check(base: u16, extra: &[&str]) -> (i32, Vec<Json>, String) {
    let (code, out, err) = Client::rust()
        .args(&["check", "--port-base", &base.to_string(), "--json"])
        .args(extra)
        .timeout(Duration::from_secs(120))
        .run();
    let rows: Vec<Json> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (code, rows, err)
}

fn with_status<'a>(rows: &'a [Json], status: &str) -> Vec<&'a str> {
    (rows.iter())
        .filter(|r| r["status"] == status)
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

/// A Python general of `examples/` (or the stand-in) hosting every node at `base`.
fn python_general(script: &str, base: u16, agreement: bool) -> Proc {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join(script))
        .args(["--port-base", &base.to_string()]);
    if agreement {
        cmd.arg("--agreement");
    }
    let p = Proc::spawn_with(cmd, Pipe::Read, Pipe::Read);
    wait_ports(&['P', 'Q', 'R', 'S'].map(|n| port_of(base, n)));
    p
}

#[test]
fn our_server_passes_every_row() {
    let base = port_base();
    let _c = Cluster::at(base).server(Side::Rust, &["--quiet"]).start();
    let (code, rows, err) = check(base, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(rows.len() >= 50, "{} rows", rows.len());
    assert_eq!(with_status(&rows, "pass").len(), rows.len(), "{rows:#?}");
    // Both contracts ran, and the rows that store messages say so.
    assert!(rows.iter().any(|r| r["contract"] == "extensions"));
    let writing: Vec<&str> = (rows.iter())
        .filter(|r| r["writes"] == true)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(writing.contains(&"run.original") && !writing.contains(&"transport.rpc2"));
}

#[test]
fn the_python_stand_in_passes_or_differs_as_documented() {
    for agreement in [false, true] {
        let base = port_base();
        let _p = python_general("scripts/python/server.py", base, agreement);
        let (code, rows, err) = check(base, &[]);
        assert_eq!(code, 0, "agreement {agreement}: {err} {rows:#?}");
        assert!(with_status(&rows, "fail").is_empty(), "{rows:#?}");
        // A single-threaded node deadlocks on a self-send; every Python node waits for a
        // silent peer forever: both reported as the README's divergences, last.
        let diff = with_status(&rows, "documented");
        assert!(diff.contains(&"hangs.silent-peer"), "{diff:?}");
        assert_eq!(diff.contains(&"hangs.self-send"), !agreement, "{diff:?}");
        let skipped = with_status(&rows, "skip");
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(
            rows.iter().any(|r| r["contract"] == "extensions"),
            agreement,
            "the extension's rows run when node_info answers"
        );
        assert_eq!(rows.last().unwrap()["id"], "hangs.silent-peer");
    }
}

#[test]
fn the_rows_catch_each_wrong_general() {
    for (script, failing) in [
        ("examples/wrong_first.py", "methods.finalize.majority"),
        ("examples/wrong_relay.py", "ext.om-run"),
    ] {
        let base = port_base();
        let _p = python_general(script, base, true);
        let junit = std::env::temp_dir().join(format!("check-{base}.xml"));
        let (code, rows, err) = check(base, &["--junit", junit.to_str().unwrap()]);
        assert_eq!(code, 1, "{script}: {err}");
        assert_eq!(with_status(&rows, "fail"), [failing], "{script}");
        let row = rows.iter().find(|r| r["id"] == failing).unwrap();
        let reproduce = row["reproduce"].as_str().unwrap();
        assert!(
            reproduce.starts_with("curl ") || reproduce.starts_with("client "),
            "{reproduce}"
        );
        // The JUnit file: one test case per row, the failing one marked.
        let xml = std::fs::read_to_string(&junit).unwrap();
        let _ = std::fs::remove_file(&junit);
        let (cases, failures) = junit_counts(&xml);
        assert_eq!(
            (cases, failures),
            (rows.len(), vec![failing.to_string()]),
            "{xml}"
        );
        let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("JUnit XML");
        assert_eq!(parsed.tests, rows.len());
        assert_eq!(parsed.failures, 1);
    }
}

/// Test cases and the names of failed ones in a JUnit document, read with a plain XML parser
/// (not the crate that wrote it).
fn junit_counts(xml: &str) -> (usize, Vec<String>) {
    use quick_xml::events::Event as Xml;
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut cases, mut failed, mut current) = (0, Vec::new(), String::new());
    let mut roots = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Xml::Start(e) | Xml::Empty(e) => {
                let name = e.name().into_inner().to_string();
                if roots.is_empty() {
                    roots.push(name.clone());
                }
                if name == "testcase" {
                    cases += 1;
                    current = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.into_inner() == "name")
                        .map(|a| a.value.to_string())
                        .unwrap_or_default();
                }
                if name == "failure" {
                    failed.push(current.clone());
                }
            }
            Xml::Eof => break,
            _ => {}
        }
    }
    assert_eq!(roots, ["testsuites"]);
    (cases, failed)
}

/// The explorer attacks a node it did not start: each wrong general's counterexample at n=4,
/// m=1, and the one command printed with it reproduces the failure against that node.
#[test]
fn explore_under_test_finds_each_wrong_general_and_its_replay_reproduces_it() {
    for (script, traitor) in [
        ("examples/wrong_relay.py", "R=silent"),
        ("examples/wrong_first.py", "P=two-faced"),
    ] {
        let base = port_base();
        let q = port_of(base, 'Q');
        let mut cmd = Command::new("python3");
        cmd.arg(root().join(script)).args([
            "--port-base",
            &base.to_string(),
            "--nodes",
            "Q",
            "--agreement",
        ]);
        let _p = Proc::spawn_with(cmd, Pipe::Read, Pipe::Read);
        wait_ports(&[q]);
        let under_test = format!("Q=http://127.0.0.1:{q}/");
        let (code, out, err) = Client::rust()
            .args(&["explore", "-n", "4", "-m", "1", "--seed", "1"])
            .args(&["--under-test", &under_test])
            .run();
        assert_eq!(code, 1, "{script}: {out}{err}");
        assert!(out.contains(&format!("traitors: {traitor}")), "{out}");
        let replay = (out.lines())
            .find_map(|l| l.strip_prefix("replay: "))
            .unwrap_or_else(|| panic!("no replay line: {out}"));
        assert!(
            replay.contains(&format!("--under-test {under_test}")),
            "{replay}"
        );
        assert!(
            replay.contains(&format!("--behaviour {traitor}")),
            "{replay}"
        );
        // The replay, word by word (it quotes only the empty --faulty).
        let words: Vec<String> = (replay.split(' '))
            .skip(1)
            .map(|w| {
                if w == "''" {
                    String::new()
                } else {
                    w.to_string()
                }
            })
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let (code, again, err) = Client::rust().args(&words).run();
        assert_eq!(code, 1, "{replay}: {again}{err}");
        assert!(again.contains("VIOLATED"), "{again}");
    }
}

/// Nodes under test are never traitors, and one that does not speak the extension is refused
/// with one line.
#[test]
fn explore_under_test_keeps_the_node_loyal_and_refuses_the_original() {
    let base = port_base();
    let q = port_of(base, 'Q');
    let _rust = Proc::rust_server(
        &["--port-base", &base.to_string(), "--nodes", "Q", "--quiet"],
        &[q],
    );
    let under_test = format!("Q=http://127.0.0.1:{q}/");
    let (code, out, err) = Client::rust()
        .args(&["explore", "-n", "4", "-m", "1", "--seed", "3"])
        .args(&["--under-test", &under_test])
        .run();
    // Our own node: no counterexample; 3 candidates, 3 behaviours, 2 orders.
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("; 20 cases"), "{out}");
    let (code, out, err) = Client::rust()
        .args(&[
            "explore",
            "-n",
            "4",
            "-m",
            "1",
            "--adversary",
            "all",
            "--json",
        ])
        .args(&["--under-test", &under_test])
        .run();
    assert_eq!(code, 0, "{out}{err}");
    let found: Json = serde_json::from_str(&out).unwrap();
    assert!(found["cases"].as_u64().unwrap() > 0);
    let (code, _, err) = Client::rust()
        .args(&["explore", "--adversary", "all", "--case", "attack:Q:1"])
        .args(&["--under-test", &under_test])
        .run();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("Q is under test: it is never a traitor"),
        "{err}"
    );
    drop(_rust);
    // The original server.py has no node_info.
    let base = port_base();
    let _py = Proc::python_server(
        &["--port-base", &base.to_string(), "--nodes", "Q"],
        &[port_of(base, 'Q')],
    );
    let under_test = format!("Q=http://127.0.0.1:{}/", port_of(base, 'Q'));
    let (code, _, err) = Client::rust()
        .args(&["explore", "--under-test", &under_test])
        .run();
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("does not speak the agreement extension"),
        "{err}"
    );
}

/// docs/conformance/ is what `client check --transcripts` writes today, and its replayer
/// (standard-library Python, no binary of ours) passes our server byte for byte.
#[test]
fn the_golden_transcripts_are_current_and_replay_against_our_server() {
    let dir = std::env::temp_dir().join(format!("transcripts-{}", port_base()));
    let (code, out, err) = Client::rust()
        .args(&["check", "--transcripts", dir.to_str().unwrap()])
        .run();
    assert_eq!(code, 0, "{out}{err}");
    for name in ["original.json", "extensions.json"] {
        let written = std::fs::read_to_string(dir.join(name)).unwrap();
        let committed =
            std::fs::read_to_string(root().join("docs/conformance").join(name)).unwrap_or_default();
        assert!(
            written == committed,
            "docs/conformance/{name} is stale: run `client check --transcripts docs/conformance`"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let base = port_base();
    let _c = Cluster::at(base).server(Side::Rust, &["--quiet"]).start();
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("docs/conformance/replay.py"))
        .args(["--port-base", &base.to_string(), "--bytes"])
        .arg(root().join("docs/conformance/original.json"))
        .arg(root().join("docs/conformance/extensions.json"));
    let (code, out, err) = run(cmd, Duration::from_secs(120));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("0 row(s) failed\n"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}
