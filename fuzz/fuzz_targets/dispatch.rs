//! Fuzz what the server runs for each request body: `generals::dispatch::dispatch`.
//!
//! Input: the first byte picks the node (even: loyal Q, odd: faulty P), the rest is the body.
//! Checks, besides "no panic, no stack overflow, no unbounded allocation":
//! - a `Reply` renders (`reply_body`) to a `methodResponse` that dxr (`peer::read_reply`, the
//!   reader of every outgoing call) reads back to the same value, or to a fault with code 1
//!   and the same string;
//! - a `Forward` targets an `http://` URL;
//! - every fault string starts with `<class '`;
//! - a fault never quotes more than 200 consecutive bytes of the body (for bodies longer than
//!   200 bytes, no 201-byte window of the body appears in the fault string), except the
//!   unknown-method fault, which quotes the method name whole as Python's does.
#![no_main]

use std::collections::HashSet;

use generals::cluster::Cluster;
use generals::dispatch::{dispatch, reply_body};
use generals::node::{Node, Step};
use generals::peer::read_reply as decode_response;
use libfuzzer_sys::fuzz_target;

/// Longest run of body bytes a fault may quote.
const MAX_ECHO: usize = 200;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let mut node = if selector % 2 == 0 {
        Node::new("Q", false)
    } else {
        Node::new("P", true)
    };
    let cluster = Cluster::default();
    let step = dispatch(&mut node, &cluster, body);

    match &step {
        Step::Forward(fwd) => {
            assert!(
                fwd.target.starts_with("http://"),
                "forward target {:?}",
                fwd.target
            );
            assert!(reply_body(&step).is_none());
        }
        Step::Reply { result, .. } => {
            let rendered = reply_body(&step).expect("a reply renders");
            let decoded = decode_response(&rendered)
                .unwrap_or_else(|e| panic!("reply does not decode: {e}\n{rendered}"));
            match (result, decoded) {
                (Ok(value), Ok(back)) => assert_eq!(*value, back, "value round trip"),
                (Err(fault), Err(back)) => {
                    assert_eq!(back.code(), 1, "fault code");
                    assert_eq!(fault, back.string(), "fault string round trip");
                    check_fault(fault, body);
                }
                (sent, back) => panic!("reply changed kind: {sent:?} -> {back:?}"),
            }
        }
    }

    // Whatever was stored must still finalize without panicking.
    let finalized = node.finalize_decision();
    if !node.is_faulty() && !node.messages().is_empty() {
        assert!(finalized.is_ok(), "{finalized:?}");
    }
});

fn check_fault(fault: &str, body: &[u8]) {
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
