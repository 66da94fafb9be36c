//! The codec figures of `scripts/bench.sh`: our XML-RPC reader and writer (`generals::xmlrpc`)
//! against dxr's, on the bodies the hot paths carry, in one run (BENCHMARKS.md, "One codec per
//! direction (issue 29)"). It is what production's choice of one codec per direction stands
//! on; docs/guide/architecture.md ("Crates") says which one each direction uses.
//!
//! Each row is one body and one operation, timed for both codecs in alternation (a sample of
//! ours, a sample of dxr's, and so on), so that the machine's load falls on both alike; the
//! figure is the median over the samples, in nanoseconds per operation. Each side does what
//! production needs before its result can be used or its bytes can go on the wire:
//! - reading a call: ours is `xmlrpc::decode_call` (bytes in, CPython's reader); dxr's is UTF-8
//!   validation, the checks `decode_call` makes first (forbidden characters as expat refuses
//!   them, no DOCTYPE), then `MethodCall::from_xml`;
//! - reading a reply: ours is `xmlrpc::decode_response`; dxr's is UTF-8 validation and
//!   `MethodResponse::from_xml` (the cheapest of dxr's readers: `dxr_client`'s
//!   `response_to_result` tries every body as a fault first);
//! - writing a call: ours is `xmlrpc::encode_call`; dxr's is `dxr_client::utils::request_to_body`
//!   (what `peer::call_body` writes);
//! - writing an answer: ours is `xmlrpc::encode_response` (a batch's answer item by item, as
//!   `dispatch` writes it); dxr's is `MethodResponse::to_xml` behind an XML declaration, and the
//!   scan for characters XML 1.0 forbids, which dxr writes raw.
//!
//! Before timing, each row checks that both sides agree (the same call or value read; bytes
//! that read back to the same value written), so the figures compare the same work.
//!
//! Usage: `cargo run --release --example codec_bench [-- --quick]` (`--quick`: fewer and
//! shorter samples, for `scripts/bench.sh --quick`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use dxr::{MethodCall, MethodResponse, Value};
use generals::calls::{Method, Protocol};
use generals::protocol;
use generals::xmlrpc;

/// One operation on one body, by both codecs.
struct Row {
    body: &'static str,
    /// Which production direction this is (where the operation happens).
    direction: &'static str,
    ours: Box<dyn Fn()>,
    dxr: Box<dyn Fn()>,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (samples, sample_time) = match quick {
        true => (5, Duration::from_millis(10)),
        false => (15, Duration::from_millis(40)),
    };
    let rows = rows();
    println!(
        "{:<44} {:<34} {:>10} {:>10} {:>9}",
        "body", "operation (direction)", "ours ns", "dxr ns", "dxr/ours"
    );
    println!("{}", "-".repeat(111));
    for row in &rows {
        let (ours, dxr) = time_both(&row.ours, &row.dxr, samples, sample_time);
        println!(
            "{:<44} {:<34} {:>10.0} {:>10.0} {:>8.1}x",
            row.body,
            row.direction,
            ours,
            dxr,
            dxr / ours
        );
    }
}

/// Median ns per operation of `ours` and of `dxr`, sampled in alternation.
fn time_both(ours: &dyn Fn(), dxr: &dyn Fn(), samples: usize, sample_time: Duration) -> (f64, f64) {
    let ours_n = iterations(ours, sample_time);
    let dxr_n = iterations(dxr, sample_time);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        a.push(per_op(ours, ours_n));
        b.push(per_op(dxr, dxr_n));
    }
    (median(a), median(b))
}

/// How many calls of `f` take about `target` (after a warm-up).
fn iterations(f: &dyn Fn(), target: Duration) -> u64 {
    let mut n = 1u64;
    loop {
        let started = Instant::now();
        for _ in 0..n {
            f();
        }
        let took = started.elapsed();
        if took >= target / 4 {
            let per = took.as_secs_f64() / n as f64;
            return ((target.as_secs_f64() / per) as u64).max(1);
        }
        n *= 2;
    }
}

fn per_op(f: &dyn Fn(), n: u64) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed().as_secs_f64() * 1e9 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

/// A `receive_message("P", "attack")` call as CPython's `xmlrpc.client` writes it.
const PYTHON_RECEIVE: &str = "<?xml version='1.0'?>\n<methodCall>\n<methodName>receive_message</methodName>\n<params>\n<param>\n<value><string>P</string></value>\n</param>\n<param>\n<value><string>attack</string></value>\n</param>\n</params>\n</methodCall>\n";

/// The relay batch of a round of OM: 64 `om_message` calls (a run id as the engine makes
/// them, a path of two names, the value, a MAC), as one `system.multicall` parameter.
fn relay_batch() -> Value {
    let run = "om-5f0e3b2a9c4d4e21a7b6c8d9e0f1a2b3";
    let calls = (0..64)
        .map(|i| {
            let path = Value::Array(vec![s("N0"), s(&format!("N{}", 1 + i % 12))]);
            let value = if i % 3 == 0 { "retreat" } else { "attack" };
            Value::Struct(
                [
                    (
                        "methodName".to_string(),
                        s(Method::Message(Protocol::Om).name()),
                    ),
                    (
                        "params".to_string(),
                        Value::Array(vec![s(run), path, s(value), s("EFN5WPFHrrOBbcUVV9VTdg==")]),
                    ),
                ]
                .into(),
            )
        })
        .collect();
    Value::Array(calls)
}

/// The answer to [`relay_batch`]: each call's result (the time it was stored, in
/// microseconds) as a one-element array.
fn relay_answer() -> Vec<Value> {
    (0..64)
        .map(|i| Value::Array(vec![s(&(1_765_000_000_000_000u64 + i).to_string())]))
        .collect()
}

/// What `get_messages` answers after 100 senders: sender -> decision.
fn stored_messages() -> Value {
    Value::Struct(
        (0..100)
            .map(|i| {
                let decision = if i % 4 == 0 { "retreat" } else { "attack" };
                (format!("N{i}"), s(decision))
            })
            .collect(),
    )
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();

    // receive_message: read at every node (requests in); written by a node that forwards a
    // send_message (calls out), in dxr_client's layout.
    let receive = vec![s("P"), s("attack")];
    let dxr_receive = dxr_call_body(Method::ReceiveMessage.name(), &receive);
    for (body, text) in [
        (
            "receive_message call (CPython's layout)",
            PYTHON_RECEIVE.to_string(),
        ),
        (
            "receive_message call (dxr_client's layout)",
            dxr_receive.clone(),
        ),
    ] {
        rows.push(read_call(body, "read (requests in)", text));
    }
    rows.push(write_call(
        "receive_message call",
        "write (calls out)",
        Method::ReceiveMessage.name(),
        receive,
    ));

    // send_message's answer: written by the node (answers out), read by the caller (replies
    // in; a forward reads receive_message's answer, the same shape).
    let line = s(&protocol::sent_line("Q", "attack", "R"));
    rows.push(write_answer("send_message answer", line.clone()));
    rows.push(read_reply("send_message answer", line));

    // A relay batch of 64 om_message calls: written by the relaying node (calls out), read by
    // the receiver (requests in); then its answer, both ways.
    let batch = vec![relay_batch()];
    rows.push(write_call(
        "system.multicall of 64 om_message",
        "write (calls out)",
        Method::Multicall.name(),
        batch.clone(),
    ));
    rows.push(read_call(
        "system.multicall of 64 om_message",
        "read (requests in)",
        xmlrpc::encode_call(Method::Multicall.name(), &batch),
    ));
    let items = relay_answer();
    rows.push(write_batch_answer("its answer (64 results)", items.clone()));
    rows.push(read_reply("its answer (64 results)", Value::Array(items)));

    // get_messages after 100 senders: written by the node, read by the client.
    rows.push(write_answer(
        "get_messages answer (100 entries)",
        stored_messages(),
    ));
    rows.push(read_reply(
        "get_messages answer (100 entries)",
        stored_messages(),
    ));
    rows
}

/// `method(params)` as `dxr_client` writes it (`peer::call_body`).
fn dxr_call_body(method: &str, params: &[Value]) -> String {
    dxr_client::utils::request_to_body(&MethodCall {
        name: method.into(),
        params: params.to_vec(),
    })
    .expect("dxr writes the call")
}

/// dxr's reader of a call, behind what a node must check first (see the module doc).
fn dxr_decode_call(body: &[u8]) -> Option<MethodCall<'_>> {
    let text = std::str::from_utf8(body).ok()?;
    xmlrpc::check_chars(text).ok()?;
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return None;
    }
    MethodCall::from_xml(text).ok()
}

/// dxr's reader of a value reply.
fn dxr_decode_reply(body: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(body).ok()?;
    MethodResponse::from_xml(text).ok().map(|r| r.value)
}

/// dxr's writer of an answer, as a node would have to send it (see the module doc).
fn dxr_encode_response(response: &MethodResponse) -> String {
    let xml = response.to_xml().expect("dxr writes the value");
    let xml = format!("<?xml version=\"1.0\"?>\n{xml}");
    assert!(xml.chars().all(xmlrpc::is_xml_char));
    xml
}

fn read_call(body: &'static str, direction: &'static str, text: String) -> Row {
    let ours = xmlrpc::decode_call(text.as_bytes()).expect("our reader reads it");
    let theirs = dxr_decode_call(text.as_bytes()).expect("dxr reads it");
    assert_eq!(
        (ours.name.as_ref(), &ours.params),
        (theirs.name.as_ref(), &theirs.params)
    );
    let (a, b) = (text.clone().into_bytes(), text.into_bytes());
    Row {
        body,
        direction,
        ours: Box::new(move || {
            black_box(xmlrpc::decode_call(black_box(&a)).ok());
        }),
        dxr: Box::new(move || {
            black_box(dxr_decode_call(black_box(&b)));
        }),
    }
}

fn write_call(
    body: &'static str,
    direction: &'static str,
    method: &'static str,
    params: Vec<Value>,
) -> Row {
    let ours = xmlrpc::encode_call(method, &params);
    let theirs = dxr_call_body(method, &params);
    let read = |t: &str| xmlrpc::decode_call(t.as_bytes()).map(|c| (c.name, c.params));
    assert_eq!(read(&ours), read(&theirs));
    let call = MethodCall {
        name: method.into(),
        params: params.clone(),
    };
    Row {
        body,
        direction,
        ours: Box::new(move || {
            black_box(xmlrpc::encode_call(black_box(method), black_box(&params)));
        }),
        dxr: Box::new(move || {
            black_box(dxr_client::utils::request_to_body(black_box(&call)).ok());
        }),
    }
}

fn write_answer(body: &'static str, value: Value) -> Row {
    let response = MethodResponse {
        value: value.clone(),
    };
    let read = |t: &str| xmlrpc::decode_response(t.as_bytes());
    assert_eq!(
        read(&xmlrpc::encode_response(&value)),
        read(&dxr_encode_response(&response))
    );
    Row {
        body,
        direction: "write (answers out)",
        ours: Box::new(move || {
            black_box(xmlrpc::encode_response(black_box(&value)));
        }),
        dxr: Box::new(move || {
            black_box(dxr_encode_response(black_box(&response)));
        }),
    }
}

/// A batch's answer as `dispatch` writes it: each result when its call ends, then the whole.
fn write_batch_answer(body: &'static str, items: Vec<Value>) -> Row {
    let ours = |items: &[Value]| {
        xmlrpc::encode_array_response(items.iter().map(xmlrpc::encode_value).collect())
    };
    let response = MethodResponse {
        value: Value::Array(items.clone()),
    };
    let read = |t: &str| xmlrpc::decode_response(t.as_bytes());
    assert_eq!(read(&ours(&items)), read(&dxr_encode_response(&response)));
    Row {
        body,
        direction: "write (answers out)",
        ours: Box::new(move || {
            black_box(ours(black_box(&items)));
        }),
        dxr: Box::new(move || {
            black_box(dxr_encode_response(black_box(&response)));
        }),
    }
}

fn read_reply(body: &'static str, value: Value) -> Row {
    // The body as a node writes it (ours); dxr must read it to the same value.
    let text = xmlrpc::encode_response(&value).into_bytes();
    assert_eq!(xmlrpc::decode_response(&text), Ok(Ok(value.clone())));
    assert_eq!(dxr_decode_reply(&text), Some(value));
    let other = text.clone();
    Row {
        body,
        direction: "read (replies in)",
        ours: Box::new(move || {
            black_box(xmlrpc::decode_response(black_box(&text)).ok());
        }),
        dxr: Box::new(move || {
            black_box(dxr_decode_reply(black_box(&other)));
        }),
    }
}
