//! Run integrity (issue 13): no caller can disturb an agreement run. A live run is never
//! evicted or replaced (a full table refuses new runs), an SM signature from one run never
//! verifies in another with the same id, `sm_start` floods stay within the key-fetch limit,
//! and a run where no loyal lieutenant decided is void. Each test starts its own nodes on a
//! free port block.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use dxr::Value;

fn int(i: i32) -> Value {
    Value::Integer(i)
}

fn arr(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|x| s(x)).collect())
}

/// `om_start`'s (or `sm_start`'s first six) arguments: run `run` among P..S, `commander`
/// commanding, m = 1, 1 s rounds.
fn start_args(run: &str, commander: &str) -> Vec<Value> {
    vec![
        s(run),
        s(commander),
        arr(&["P", "Q", "R", "S"]),
        int(1),
        int(1000),
        s("1"),
    ]
}

fn text(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

/// What the driver does after the starts, call by call: the commander's order, rounds 1 and
/// 2 on every node, then decide on every node; the lieutenants' decide answers.
fn finish(base: u16, proto: &str, run: &str, order: &str) -> BTreeMap<char, Value> {
    let port = |c| port_of(base, c);
    call(port('P'), &format!("{proto}_order"), &[s(run), s(order)]).unwrap();
    for round in 1..=2 {
        for node in "PQRS".chars() {
            let report = call(port(node), &format!("{proto}_round"), &[s(run), int(round)])
                .unwrap_or_else(|e| panic!("{node} round {round}: {e:?}"));
            assert_eq!(member(&report, "failed"), &int(0), "{node} {report:?}");
        }
    }
    let mut decided: BTreeMap<char, Value> = "PQRS"
        .chars()
        .map(|c| {
            (
                c,
                call(port(c), &format!("{proto}_decide"), &[s(run)]).unwrap(),
            )
        })
        .collect();
    assert_eq!(member(&decided[&'P'], "decision"), &s(order));
    decided.remove(&'P');
    decided
}

/// Finding: 1,028 `om_start` in 0.21 s evicted a live run. Now a flood of fresh ids during a
/// live run gets refusals once the table is full of live runs, and the run decides as it
/// should; a client run that cannot start on a full table is void, not "holds".
#[test]
fn a_flood_of_starts_during_a_live_run_is_refused_and_the_run_holds() {
    let server = Cluster::rust(&["--faulty", "", "--max-runs", "16"]);
    let base = server.base;
    for node in "PQRS".chars() {
        assert_eq!(
            call(port_of(base, node), "om_start", &start_args("om-live", "P")),
            Ok(s("ok"))
        );
    }
    let full = "<class 'ValueError'>:this node holds 16 unfinished runs (server --max-runs): a \
                new run can start when one of them is decided or expires";
    for node in "PQRS".chars() {
        let (mut taken, mut refused) = (0, 0);
        for i in 0..100 {
            match call(
                port_of(base, node),
                "om_start",
                &start_args(&format!("flood-{i}"), "P"),
            ) {
                Ok(_) => taken += 1,
                Err((1, f)) if f == full => refused += 1,
                Err(other) => panic!("{node}: {other:?}"),
            }
        }
        assert_eq!(
            (taken, refused),
            (15, 85),
            "{node}: the live run kept its place"
        );
    }
    for (node, d) in finish(base, "om", "om-live", "attack") {
        assert_eq!(member(&d, "decision"), &s("attack"), "{node}: {d:?}");
        assert_eq!(
            member(&d, "received"),
            member(&d, "expected"),
            "{node}: {d:?}"
        );
    }
    // The decided run makes room for one more of the flood; then the table is full of live
    // runs, and a client run is refused at the start and says so (void, exit 3).
    for node in "PQRS".chars() {
        assert_eq!(
            call(
                port_of(base, node),
                "om_start",
                &start_args("flood-last", "P")
            ),
            Ok(s("ok"))
        );
    }
    let (code, j, err) = server
        .client()
        .args(&["om", "-m", "1", "--seed", "9"])
        .timeout(Duration::from_secs(60))
        .json();
    assert_eq!(
        (code, j["verdict"].as_str()),
        (3, Some("void")),
        "{j} {err}"
    );
    assert!(
        j["void_reasons"].to_string().contains("unfinished runs"),
        "{j}"
    );
}

/// Finding: `om_start` with a live run's id replaced it (IC1 and IC2 then failed). Now it is
/// refused and the run holds; once decided everywhere, the id may be started again (a client
/// re-run with the same seed).
#[test]
fn a_start_with_a_live_id_is_refused_and_the_run_holds() {
    let server = Cluster::rust(&["--faulty", ""]);
    let base = server.base;
    for node in "PQRS".chars() {
        assert_eq!(
            call(port_of(base, node), "om_start", &start_args("om-5", "P")),
            Ok(s("ok"))
        );
    }
    let live = "<class 'ValueError'>:run 'om-5' is not finished on this node (neither decided \
                nor expired): a live run is never replaced";
    for node in "PQRS".chars() {
        // The attacker makes Q the commander of "the same" run.
        let refused = call(port_of(base, node), "om_start", &start_args("om-5", "Q"));
        assert_eq!(refused, Err((1, live.to_string())), "{node}");
    }
    for (node, d) in finish(base, "om", "om-5", "attack") {
        assert_eq!(member(&d, "decision"), &s("attack"), "{node}: {d:?}");
    }
    // Decided everywhere: finished, so the driver may reuse the id (seed 5 -> om-5).
    let (code, j, err) = server
        .client()
        .args(&["om", "-m", "1", "--seed", "5", "--order", "retreat"])
        .timeout(Duration::from_secs(60))
        .json();
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(j["run"], "om-5");
    assert_eq!(j["verdict"], "holds", "{j}");
    assert_eq!(j["decisions"]["Q"], "retreat", "{j}");
}

/// Finding: P's signature on "retreat", read from `trace_events` of one run, replayed into a
/// later run with the same id made every loyal lieutenant decide retreat. Now signatures bind
/// the commander's per-run nonce: the replay is rejected and counted, and the lieutenants
/// decide the commander's real order. A lieutenant started without the nonce is refused.
#[test]
fn a_replayed_sm_signature_is_rejected_and_counted() {
    let server = Cluster::rust(&["--faulty", ""]);
    let base = server.base;
    let port = |c| port_of(base, c);
    // The attacker: a run sm-7 on P alone, P ordering retreat; round 1 goes nowhere, but P's
    // trace keeps the signed message.
    let first = call(port('P'), "sm_start", &start_args("sm-7", "P")).unwrap();
    let first_nonce = text(member(&first, "nonce"));
    call(port('P'), "sm_order", &[s("sm-7"), s("retreat")]).unwrap();
    call(port('P'), "sm_round", &[s("sm-7"), int(1)]).unwrap();
    let events = match call(port('P'), "trace_events", &[s("sm-7"), s("0")]).unwrap() {
        Value::Array(events) => events,
        other => panic!("{other:?}"),
    };
    let args = match member(&events[0], "args") {
        Value::Array(args) => args.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!((&args[1], &args[2]), (&arr(&["P"]), &s("retreat")));
    let stolen = args[3].clone();
    call(port('P'), "sm_decide", &[s("sm-7")]).unwrap();

    // The real run, same id: the commander first, its nonce to the lieutenants.
    let started = call(port('P'), "sm_start", &start_args("sm-7", "P")).unwrap();
    let nonce = text(member(&started, "nonce"));
    assert_eq!(nonce.len(), 24, "16 bytes in base64");
    assert_ne!(nonce, first_nonce, "a fresh nonce per start");
    let old_form = call(port('Q'), "sm_start", &start_args("sm-7", "P")).unwrap_err();
    assert!(old_form.1.contains("needs the run's nonce"), "{old_form:?}");
    let mut with_nonce = start_args("sm-7", "P");
    with_nonce.push(s(&nonce));
    for node in "QRS".chars() {
        let answer = call(port(node), "sm_start", &with_nonce).unwrap();
        assert_eq!(member(&answer, "keys"), &int(4), "{node}");
        assert_eq!(member(&answer, "nonce"), &s(&nonce), "{node}");
    }
    for node in "QRS".chars() {
        let replay = [s("sm-7"), arr(&["P"]), s("retreat"), stolen.clone()];
        let refused = call(port(node), "sm_message", &replay).unwrap_err();
        assert!(
            refused
                .1
                .starts_with("<class 'ValueError'>:message rejected: bad signature of P"),
            "{node}: {refused:?}"
        );
    }
    for (node, d) in finish(base, "sm", "sm-7", "attack") {
        assert_eq!(member(&d, "decision"), &s("attack"), "{node}: {d:?}");
        assert_eq!(member(&d, "values"), &arr(&["attack"]), "{node}: {d:?}");
        assert_eq!(
            member(&d, "rejected"),
            &int(1),
            "{node}: the replay is counted"
        );
    }
}

/// A stand-in node: answers each XML-RPC call by its method name, holding every answer for
/// `hold` so calls overlap; counts calls and the most in progress at once.
struct FakeNode {
    calls: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

type Answer = Arc<dyn Fn(&str) -> Result<Value, String> + Send + Sync>;

impl FakeNode {
    fn start(port: u16, hold: Duration, answer: Answer) -> FakeNode {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let (calls, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let now = Arc::new(Mutex::new(0usize));
        let (c, m, flag) = (calls.clone(), most.clone(), stop.clone());
        // Polls accept() until dropped; a blocking accept could not be interrupted.
        std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                };
                stream.set_nonblocking(false).unwrap();
                let (c, m, now, answer) = (c.clone(), m.clone(), now.clone(), answer.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = line.to_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let body = String::from_utf8_lossy(&body);
                    let method = body
                        .split("<methodName>")
                        .nth(1)
                        .and_then(|r| r.split("</methodName>").next())
                        .unwrap_or("")
                        .to_string();
                    c.fetch_add(1, Ordering::SeqCst);
                    {
                        let mut n = now.lock().unwrap();
                        *n += 1;
                        m.fetch_max(*n, Ordering::SeqCst);
                    }
                    std::thread::sleep(hold); // holds the call open, so calls overlap
                    *now.lock().unwrap() -= 1;
                    let reply = match answer(&method) {
                        Ok(v) => generals::xmlrpc::encode_response(&v),
                        Err(f) => generals::xmlrpc::encode_fault(&dxr::Fault::new(1, f)),
                    };
                    let mut stream = stream;
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                        reply.len()
                    );
                });
            }
        });
        FakeNode { calls, most, stop }
    }
}

/// Finding: 100 concurrent `sm_start` opened 6,361 connections (key fetches skipped the
/// in-flight limit). Now the key fetches of all starts share a few slots: the peer never sees
/// more `sm_public_key` calls at once than the limit, and every start still gets its keys.
#[test]
fn concurrent_sm_starts_stay_within_the_key_fetch_limit() {
    let base = port_base();
    let r = port_of(base, 'R');
    // The doc's test vector key: any valid key will do.
    let key = "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=";
    let fake = FakeNode::start(
        r,
        Duration::from_millis(40),
        Arc::new(move |method| match method {
            "sm_public_key" => Ok(s(key)),
            other => Err(format!("unexpected {other}")),
        }),
    );
    let q = port_of(base, 'Q');
    let peer = format!("R=http://127.0.0.1:{r}/");
    let _server = Cluster::at(base)
        .hosting(Side::Rust, "Q", &["--quiet", "--peer", &peer])
        .start();
    let starts: Vec<_> = (0..100)
        .map(|i| {
            std::thread::spawn(move || {
                let args = [
                    s(&format!("k-{i}")),
                    s("Q"),
                    arr(&["Q", "R"]),
                    int(0),
                    int(1000),
                    s("1"),
                ];
                call(q, "sm_start", &args)
            })
        })
        .collect();
    for (i, t) in starts.into_iter().enumerate() {
        let answer = t
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("start {i}: {e:?}"));
        assert_eq!(member(&answer, "keys"), &int(2), "start {i}: {answer:?}");
    }
    let limit = 4;
    let most = fake.most.load(Ordering::SeqCst);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 100);
    assert!(
        (2..=limit).contains(&most),
        "{most} key fetches at once (limit {limit})"
    );
}

/// Four stand-ins for P..S on `base`: P commands and answers like a node; the lieutenants
/// answer their decide with `decide`.
fn fake_cluster(base: u16, decide: fn() -> Result<Value, String>) -> Vec<FakeNode> {
    let pairs = |m: &[(&str, Value)]| {
        Value::Struct(m.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    };
    "PQRS"
        .chars()
        .map(|node| {
            let commander = node == 'P';
            let answer: Answer = Arc::new(move |method| match method {
                "node_info" => Ok(pairs(&[
                    ("name", s(&node.to_string())),
                    ("behaviour", s("honest")),
                    ("traitor", Value::Boolean(false)),
                    ("public_key", s("")),
                ])),
                "om_start" => Ok(s("ok")),
                "om_order" => Ok(pairs(&[("queued", int(3))])),
                "om_round" => Ok(pairs(&[("failed", int(0)), ("failed_to", pairs(&[]))])),
                "om_decide" if commander => Ok(pairs(&[
                    ("role", s("commander")),
                    ("decision", s("attack")),
                    ("sent", Value::Array(vec![int(3), int(0)])),
                    ("late", pairs(&[])),
                ])),
                "om_decide" => decide(),
                "trace_events" => Ok(Value::Array(vec![])),
                other => Err(format!(
                    "<class 'Exception'>:method \"{other}\" is not supported"
                )),
            });
            FakeNode::start(port_of(base, node), Duration::ZERO, answer)
        })
        .collect()
}

/// Finding: lieutenants answering `unknown run` (their run evicted) still gave "IC1 holds,
/// IC2 holds". A run where no loyal lieutenant decided is void (exit 3), whether they fault
/// or answer without a decision.
#[test]
fn a_run_no_loyal_lieutenant_decided_is_void() {
    fn unknown() -> Result<Value, String> {
        Err("<class 'KeyError'>:unknown run 'om-1'".into())
    }
    fn no_decision() -> Result<Value, String> {
        Ok(Value::Struct(BTreeMap::from([(
            "role".into(),
            s("lieutenant"),
        )])))
    }
    for (decide, reason) in [
        (unknown as fn() -> _, "unknown run"),
        (no_decision, "without a decision"),
    ] {
        let base = port_base();
        let _fakes = fake_cluster(base, decide);
        let client = || {
            Client::rust()
                .at(base)
                .args(&["om", "-m", "1", "--seed", "1"])
                .timeout(Duration::from_secs(60))
        };
        let (code, j, err) = client().json();
        assert_eq!(code, 3, "{reason}: {j} {err}");
        assert_eq!(j["verdict"], "void", "{reason}: {j}");
        assert!(j["void_reasons"].to_string().contains(reason), "{j}");
        let (code, out, _) = client().run();
        assert_eq!(code, 3);
        assert!(out.contains("VOID") && !out.contains("holds"), "{out}");
    }
}

/// The Python stand-in keeps its runs by the same rules, with the same faults: a mixed
/// cluster behaves the same whichever node a caller floods.
#[test]
fn python_and_rust_nodes_keep_live_runs_alike() {
    let rust = Cluster::rust_nodes("Q", &["--max-runs", "2"]);
    let python = Cluster::builder()
        .hosting(Side::Python, "Q", &["--agreement", "--max-runs", "2"])
        .start();
    let (rq, pq) = (rust.port("Q"), python.port("Q"));
    let steps: Vec<(&str, &str, Result<&str, &str>)> = vec![
        ("om_start", "r1", Ok("ok")),
        ("om_start", "r2", Ok("ok")),
        ("om_start", "r3", Err("this node holds 2 unfinished runs")),
        (
            "om_start",
            "r1",
            Err("run 'r1' is not finished on this node"),
        ),
        ("om_decide", "r1", Ok("")),
        ("om_start", "r3", Ok("ok")),
        ("om_decide", "r1", Err("unknown run 'r1'")),
        ("om_start", "r2", Err("run 'r2' is not finished")),
        ("om_start", "r1", Err("this node holds 2 unfinished runs")),
        ("om_decide", "r2", Ok("")),
        ("om_start", "r2", Ok("ok")),
    ];
    for (i, (method, run, want)) in steps.into_iter().enumerate() {
        let params = match method {
            "om_start" => start_args(run, "P"),
            _ => vec![s(run)],
        };
        let rust = call(rq, method, &params);
        let python = call(pq, method, &params);
        assert_eq!(rust, python, "step {i}: {method}({run})");
        match (want, &rust) {
            (Ok(""), Ok(_)) => {}
            (Ok(v), Ok(got)) => assert_eq!(got, &s(v), "step {i}"),
            (Err(part), Err((1, f))) => assert!(f.contains(part), "step {i}: {f}"),
            (want, got) => panic!("step {i}: {method}({run}) wanted {want:?}, got {got:?}"),
        }
    }
}
