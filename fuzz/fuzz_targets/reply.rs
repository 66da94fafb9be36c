//! Fuzz the reader of relay-batch replies: `generals::xmlrpc::decode_response`, which reads what
//! a peer (any peer, hostile ones too) answers to a `system.multicall` batch.
//!
//! Checks, besides "no panic, no stack overflow, no unbounded allocation":
//! - a value it reads, written again by `encode_response`, reads back to the same value;
//! - a fault it reads is the one `encode_fault` writes for it;
//! - wherever dxr's reader (`peer::dxr_reply`) also accepts the body and the body is in the
//!   schema (no stray values, nothing dxr ignores), both give the same value or fault.
#![no_main]

use generals::peer::dxr_reply;
use generals::xmlrpc::{decode_response, encode_fault, encode_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(reply) = decode_response(data) else {
        return;
    };
    let again = match &reply {
        Ok(value) => decode_response(encode_response(value).as_bytes()),
        Err(fault) => decode_response(encode_fault(fault).as_bytes()),
    };
    assert_eq!(again.as_ref(), Ok(&reply), "not stable through our writer");
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // dxr reads `<int>` wider than 32 bits, untyped whitespace and stray values differently
    // (README, divergence 17): compare only bodies our own writers could have produced.
    let canonical = match &reply {
        Ok(value) => encode_response(value),
        Err(fault) => encode_fault(fault),
    };
    if text == canonical {
        if let Ok(theirs) = dxr_reply(text) {
            assert_eq!(theirs, reply, "dxr reads {text:?} otherwise");
        }
    }
});
