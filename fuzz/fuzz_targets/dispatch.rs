//! Fuzz what the server runs for each request body: `generals::dispatch::respond` (decode,
//! route through the node's method table, `system.multicall` and the extensions included,
//! render), on a `server::Offline` node whose peers are a port nobody listens on.
//!
//! Input: the first byte picks the node (bit 0: loyal Q if 0, faulty P if 1; the other bits
//! are ignored: bit 1 picked dxr's codec until production had one codec per direction, issue
//! 29); the rest is the body. One node per thread and node is reused, reset to a fresh node's
//! state before every input.
//! Checks, besides "no panic, no stack overflow, no unbounded allocation, no timeout":
//! - the answer reads back (`peer::read_reply`, the reader of every outgoing call) as a
//!   value or a fault that `dispatch::render` renders to the same bytes;
//! - every fault (alone, or an entry of a batch) has code 1 and a string that starts with
//!   `<class '`;
//! - a fault never quotes more than 200 consecutive bytes of the body (for bodies longer than
//!   200 bytes, no 201-byte window of the body appears in the fault string), except the
//!   unknown-method fault, which quotes the method name whole as Python's does;
//! - nothing is reached: no round delivers a message (a forwarded `send_message` is answered
//!   `ConnectionRefusedError`; an SM start calls nobody, the driver hands it the keys);
//! - the node can still `finalize_decision` afterwards.
#![no_main]

use std::collections::HashSet;

use dxr::{Fault, Value};
use generals::dispatch::render;
use generals::server::Offline;
use generals::peer::read_reply as decode_response;
use libfuzzer_sys::fuzz_target;

/// Longest run of body bytes a fault may quote.
const MAX_ECHO: usize = 200;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (name, faulty) = match selector & 1 {
        0 => ("Q", false),
        _ => ("P", true),
    };
    OFFLINE.with(|nodes| {
        let mut nodes = nodes.borrow_mut();
        let node = nodes
            .entry(selector & 1)
            .or_insert_with(|| Offline::new(name, faulty).expect("an offline node"));
        // Every input starts from a fresh node's state: findings replay alone.
        node.reset();
        check(node, body);
    });
});

thread_local! {
    /// One offline node per thread and node name, reused input after input: building one
    /// takes a runtime, a socket, an HTTP client and a key, far more than most inputs cost.
    static OFFLINE: std::cell::RefCell<std::collections::HashMap<u8, Offline>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The target's checks of one answer, and of the node after it.
fn check(node: &Offline, body: &[u8]) {
    let answer = node.respond(body);

    let back = decode_response(&answer)
        .unwrap_or_else(|e| panic!("answer does not decode: {e}\n{answer}"));
    assert_eq!(render(back.clone()), answer, "round trip");
    match &back {
        Ok(value) => check_value(value, body),
        Err(fault) => check_fault(fault, body),
    }

    // Whatever was stored must still finalize without panicking.
    let node = node.node();
    let finalized = node.finalize_decision();
    if !node.is_faulty() && !node.messages().is_empty() {
        assert!(finalized.is_ok(), "{finalized:?}");
    }
}

/// Faults inside a batch's answer, and what says whether something was reached.
fn check_value(value: &Value, body: &[u8]) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| check_value(v, body)),
        Value::Struct(m) => {
            if let (Some(Value::Integer(code)), Some(Value::String(text)), 2) =
                (m.get("faultCode"), m.get("faultString"), m.len())
            {
                check_fault(&Fault::new(*code, text.clone()), body);
            }
            if let Some(delivered) = m.get("delivered") {
                assert_eq!(
                    delivered,
                    &Value::Integer(0),
                    "a round reached a peer: {m:?}"
                );
            }
            m.values().for_each(|v| check_value(v, body));
        }
        _ => {}
    }
}

fn check_fault(fault: &Fault, body: &[u8]) {
    assert_eq!(fault.code(), 1, "fault code");
    let fault = fault.string();
    assert!(fault.starts_with("<class '"), "fault string {fault:?}");
    // The unknown-method fault quotes the whole method name, exactly as Python's does.
    if fault.starts_with("<class 'Exception'>:method \"") {
        return;
    }
    let window = MAX_ECHO + 1;
    if body.len() <= MAX_ECHO || fault.len() < window {
        return;
    }
    let quoted: HashSet<&[u8]> = fault.as_bytes().windows(window).collect();
    if let Some(w) = body.windows(window).find(|w| quoted.contains(w)) {
        panic!(
            "fault quotes {window}+ bytes of the body: {:?}\nfault: {fault:?}",
            String::from_utf8_lossy(w)
        );
    }
}
