//! Agreement in explicit rounds: late messages are refused and counted, verdicts are never
//! false (a run whose loyal nodes were late, failed or were lost is void, exit 3), budgets
//! refuse runs too large, and a participant that does not speak the extension is named.
//! Each test starts its own cluster on a free port block.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::*;
use dxr::Value;

fn int(i: i32) -> Value {
    Value::Integer(i)
}

/// Round closing on one node, over the wire: a message of a closed round is refused as late
/// and counted by sender; rounds run in order and once; decide closes everything.
#[test]
fn late_messages_are_refused_and_counted() {
    let c = Cluster::rust(&["--faulty", ""]);
    let q = c.port("Q");
    let run = HandRun::new("om", "P", "P,Q,R,S", 1, 1000);
    let id = run.id().to_string();
    assert_eq!(call(q, "om_start", &run.start("Q")), Ok(s("ok")));
    // Before any round opens, a round-2 message is stored (messages may come early), and the
    // answer says when.
    let before = generals::trace::now_us();
    let stored = call(q, "om_message", &run.om_message("Q", &["P", "R"], "attack"));
    let Ok(Value::String(stored)) = stored else {
        panic!("{stored:?}")
    };
    let stored: u64 = stored.parse().expect("microseconds, decimal");
    assert!(before <= stored && stored <= generals::trace::now_us());
    let r1 = call(q, "om_round", &run.round("Q", 1)).unwrap();
    assert_eq!(member(&r1, "due"), &int(0), "Q owes nothing in round 1");
    // The round just opened, asked again (a driver's retry), gets the same answer.
    assert_eq!(call(q, "om_round", &run.round("Q", 1)), Ok(r1));
    // Round 2: Q received nothing of round 1, so it owes nothing.
    let r2 = call(q, "om_round", &run.round("Q", 2)).unwrap();
    assert_eq!(member(&r2, "due"), &int(0), "{r2:?}");
    let again = call(q, "om_round", &run.round("Q", 1)).unwrap_err();
    assert!(again.1.contains("round 1 already ran"), "{again:?}");
    // Round 1 is closed now: P's order, never received, is late.
    let late = call(q, "om_message", &run.om_message("Q", &["P"], "attack")).unwrap_err();
    assert_eq!(
        late,
        (
            1,
            format!(
                "<class 'ValueError'>:late: round 1 is closed (this node is in round 2) in run '{id}'"
            )
        )
    );
    // Round 2 is still open: S's relay is stored.
    assert_eq!(
        call(
            q,
            "om_message",
            &run.om_message("Q", &["P", "S"], "retreat")
        )
        .map(|v| matches!(v, Value::String(t) if t.parse::<u64>().is_ok())),
        Ok(true)
    );
    let decided = call(q, "om_decide", &run.decide("Q")).unwrap();
    // [P] missing (retreat), [P,R] attack, [P,S] retreat: retreat.
    assert_eq!(member(&decided, "decision"), &s("retreat"));
    assert_eq!(member(&decided, "received"), &int(2));
    assert_eq!(
        member(&decided, "late"),
        &Value::Struct([("P".to_string(), int(1))].into())
    );
    // After decide every round is closed and the node keeps only the decision: every message
    // is late, a copy of one received too; the decide asked again answers the same, with the
    // late ones counted.
    let after = call(q, "om_message", &run.om_message("Q", &["P"], "attack")).unwrap_err();
    assert!(after.1.contains("late: round 1 is closed"), "{after:?}");
    let copy = call(q, "om_message", &run.om_message("Q", &["P", "R"], "attack")).unwrap_err();
    assert!(copy.1.contains("late: round 2 is closed"), "{copy:?}");
    let again = call(q, "om_decide", &run.decide("Q")).unwrap();
    assert_eq!(member(&again, "decision"), &s("retreat"));
    assert_eq!(member(&again, "received"), &int(2));
    assert_eq!(
        member(&again, "late"),
        &Value::Struct([("P".to_string(), int(2)), ("R".to_string(), int(1))].into())
    );
}

/// A traitor slower than the round timeout: its messages arrive after their round closed,
/// are refused as late, and count as missing; IC1 and IC2 still hold and the run is valid.
#[test]
fn delay_traitor_beyond_the_round_timeout_leaves_agreement_holding() {
    // Margins wide enough for a loaded debug build: loyal rounds take milliseconds, N2 waits
    // 2.5 s before answering anything, the round timeout is 1 s.
    let c = Cluster::rust_generated(4, &["--faulty", "", "--behaviour", "N2=delay:2500"]);
    let (code, j, err) =
        c.client_json(&["om", "-m", "1", "--seed", "3", "--round-timeout-ms", "1000"]);
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(j["verdict"], "holds", "{j}");
    assert_eq!(j["traitors"], serde_json::json!(["N2"]));
    for d in j["decisions"].as_object().unwrap().values() {
        assert_eq!(d, "attack", "{j}");
    }
    // N2's two relays of round 2 came late (or not at all): at most 4 of 6 delivered.
    let r2 = j["messages_per_round"][1].as_u64().unwrap();
    assert!(r2 <= 4, "{j}");
}

/// A TCP proxy in front of one node that passes everything until it has answered one
/// `om_round`, then cuts every connection and refuses new ones: the node "dies" between
/// rounds 1 and 2, seen from everyone else.
struct Cutter {
    port: u16,
}

impl Cutter {
    fn start(upstream: u16) -> Cutter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let armed = Arc::new(AtomicBool::new(false));
                let pipe = |mut from: TcpStream, mut to: TcpStream, request: bool| {
                    let (cut, armed) = (cut.clone(), armed.clone());
                    std::thread::spawn(move || {
                        from.set_read_timeout(Some(Duration::from_millis(20)))
                            .unwrap();
                        let mut buf = [0u8; 65536];
                        loop {
                            if cut.load(Ordering::SeqCst) {
                                break;
                            }
                            match from.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    let chunk = &buf[..n];
                                    if request && chunk.windows(8).any(|w| w == b"om_round") {
                                        armed.store(true, Ordering::SeqCst);
                                    }
                                    if to.write_all(chunk).is_err() {
                                        break;
                                    }
                                    if !request && armed.load(Ordering::SeqCst) {
                                        // The om_round answer went through: the node dies.
                                        cut.store(true, Ordering::SeqCst);
                                        break;
                                    }
                                }
                                Err(e)
                                    if e.kind() == std::io::ErrorKind::WouldBlock
                                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                                Err(_) => break,
                            }
                        }
                        let _ = from.shutdown(Shutdown::Both);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                };
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    true,
                );
                pipe(server, client, false);
            }
        });
        Cutter { port }
    }
}

/// A loyal node lost between rounds is faulty for the run, as a crashed node is: with one
/// faulty node in OM(1) the run is judged, and it holds; the report names the node and what
/// it failed to do. A run with more faulty nodes than m where one failed on its own is void
/// (`unreachable_cluster_is_void_not_holding`, and the checker's own tests).
#[test]
fn loyal_node_lost_between_rounds_is_faulty_and_the_run_holds() {
    // N3 alone in its own process, the others in another; everyone reaches N3 through the
    // cutter.
    let n3 = Cluster::builder()
        .size(4)
        .hosting(Side::Rust, "N3", &["--quiet"])
        .start();
    let cutter = Cutter::start(n3.port("N3"));
    let peer = format!("N3=http://127.0.0.1:{}/", cutter.port);
    let c = Cluster::at(n3.base)
        .size(4)
        .hosting(Side::Rust, "N0,N1,N2", &["--quiet", "--peer", &peer])
        .start();
    let (code, j, err) = c.client_json(&["--peer", &peer, "om", "-m", "1", "--seed", "5"]);
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(j["verdict"], "holds", "{j}");
    assert_eq!(j["traitors"], serde_json::json!(["N3"]), "{j}");
    assert_eq!(j["behaviours"]["N3"], "failed round 2", "{j}");
    for lieutenant in ["N1", "N2"] {
        assert_eq!(j["decisions"][lieutenant], "attack", "{j}");
    }
    assert!(err.contains("error: node N3"), "{err}");
    // N3 is down from now on: a node lost before the run counts as faulty too.
    let (code, j, err) = c.client_json(&["--peer", &peer, "om", "-m", "1", "--seed", "6"]);
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(j["verdict"], "holds", "{j}");
    assert_eq!(j["behaviours"]["N3"], "unreachable", "{j}");
}

/// No node answers: not "holds" (as it once was), but void, exit 3.
#[test]
fn unreachable_cluster_is_void_not_holding() {
    let base = port_base(); // nothing listens there
    let (code, j, err) = Client::rust()
        .at(base)
        .size(4)
        .args(&["om", "-m", "1", "--seed", "1"])
        .json();
    assert_eq!(code, 3, "{j} {err}");
    assert_eq!(j["verdict"], "void");
    assert!(
        j["void_reasons"][0]
            .as_str()
            .unwrap()
            .contains("more than m = 1"),
        "{j}"
    );
    // Each cause once: no line per node, the start hint as the plain `client` gives it.
    assert!(
        err.contains("hint: no node is running; start the cluster first"),
        "{err}"
    );
}

/// The original server (the Python stand-in without --agreement) is named and refused before
/// any run starts: exit 2.
#[test]
fn original_server_is_refused_before_the_run() {
    let py = Cluster::builder().server(Side::Python, &[]).start();
    let (code, out, err) = py
        .client()
        .args(&["om", "-m", "1", "--seed", "1"])
        .timeout(Duration::from_secs(60))
        .run();
    assert_eq!(code, 2, "{out} {err}");
    assert!(err.contains("node P ("), "{err}");
    assert!(err.contains("looks like the original server.py"), "{err}");
    assert!(!out.contains("holds"), "{out}");
}

/// Budgets: the driver refuses a run over --max-messages with the count (exit 2, at once);
/// a node refuses an om_start over its --max-run-messages.
#[test]
fn runs_over_budget_are_refused_by_driver_and_node() {
    // With its access log (no --quiet): a line per request it got.
    let c = Cluster::builder()
        .size(16)
        .server(Side::Rust, &["--faulty", "", "--max-run-messages", "100"])
        .start();
    // OM(5) over 16 nodes: 15 + 210 + 2,730 + 32,760 + 360,360 + 3,603,600 messages.
    let (code, _, err) = c.client_json(&["om", "-m", "5", "--seed", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("sends up to 3999675 messages, more than --max-messages 1000000"),
        "{err}"
    );
    // Refused before anything is sent: no node got a single request.
    let log = c.process(0).stderr_so_far();
    assert!(!log.contains("POST"), "the driver called a node: {log}");
    // OM(1) over 16 nodes (15 + 210 = 225 messages) passes the driver but not the nodes' 100.
    let q = c.port("N1");
    let nodes: Vec<String> = (0..16).map(|i| format!("N{i}")).collect();
    let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let big = HandRun::new("om", "N0", &nodes.join(","), 1, 500);
    let refused = call(q, "om_start", &big.start("N1")).unwrap_err();
    assert_eq!(
        refused.1,
        "<class 'ValueError'>:a run of 225 messages is over this node's budget of 100 (server --max-run-messages)"
    );
    // Through the client: the nodes' refusals make the run void (loyal nodes could not start).
    let (code, j, _) = c.client_json(&["om", "-m", "1", "--seed", "1"]);
    assert_eq!(code, 3, "{j}");
    assert!(
        j["void_reasons"]
            .to_string()
            .contains("over this node's budget"),
        "{j}"
    );
}

/// OM(4) over 13 loyal nodes (108,384 messages): holds, every message delivered. Release
/// timing is in the benchmark; here only correctness (debug build, generous round timeout).
#[test]
fn om4_over_13_nodes_holds() {
    let c = Cluster::rust_generated(13, &["--faulty", ""]);
    let (code, j, err) = c.client_json(&[
        "om",
        "-m",
        "4",
        "--seed",
        "1",
        "--round-timeout-ms",
        GENEROUS_ROUND_MS,
    ]);
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(j["verdict"], "holds");
    assert_eq!(j["messages"], 108_384);
    assert_eq!(
        j["messages_per_round"],
        serde_json::json!([12, 132, 1320, 11880, 95040])
    );
}

/// `server --max-runs N`: a node holds N runs; a full table of unfinished runs refuses a new
/// one (nothing live is dropped); once a run is decided it is finished, and the next start
/// forgets it (calls for it then get `unknown run`), the others still answer.
#[test]
fn a_node_remembers_its_last_max_runs_runs() {
    let c = Cluster::rust_nodes("Q", &["--max-runs", "2"]);
    let q = c.port("Q");
    let runs: Vec<HandRun> = (0..3)
        .map(|_| HandRun::new("om", "P", "P,Q,R,S", 1, 1000))
        .collect();
    for run in &runs[..2] {
        assert_eq!(call(q, "om_start", &run.start("Q")), Ok(s("ok")));
        // Driven: advanced by its driver, so not taken for abandoned.
        call(q, "om_round", &run.round("Q", 1)).unwrap();
    }
    let full = call(q, "om_start", &runs[2].start("Q")).unwrap_err();
    assert!(full.1.contains("holds 2 unfinished runs"), "{full:?}");
    assert_eq!(
        member(&call(q, "om_decide", &runs[0].decide("Q")).unwrap(), "role"),
        &s("lieutenant")
    );
    assert_eq!(call(q, "om_start", &runs[2].start("Q")), Ok(s("ok")));
    let forgotten = call(q, "om_decide", &runs[0].decide("Q")).unwrap_err();
    assert_eq!(
        forgotten.1,
        format!("<class 'KeyError'>:unknown run '{}'", runs[0].id())
    );
    for run in &runs[1..] {
        let decided = call(q, "om_decide", &run.decide("Q")).unwrap();
        assert_eq!(member(&decided, "role"), &s("lieutenant"), "{}", run.id());
    }
}
