//! Fuzz the reader of relay-batch replies: `generals::xmlrpc::decode_response`, which reads what
//! a peer (any peer, hostile ones too) answers to a `system.multicall` batch.
//!
//! Checks, besides "no panic, no stack overflow, no unbounded allocation":
//! - a value it reads, written again by `encode_response`, reads back to the same value;
//! - a fault it reads is the one `encode_fault` writes for it;
//! - wherever dxr's reader (`MethodResponse::from_xml`, `FaultResponse::from_xml`) also accepts
//!   the body and the body is in the schema (no stray values, nothing dxr ignores), both give
//!   the same value or fault. (dxr refuses empty member names: such bodies are not compared
//!   here; `tests/codec_oracle.rs` reads them through a narrow wrap.)
#![no_main]

use dxr::{FaultResponse, MethodResponse};
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
        let theirs = match &reply {
            Ok(_) => MethodResponse::from_xml(text).map(|r| Ok(r.value)),
            Err(_) => FaultResponse::from_xml(text).map(|f| Err(f.fault)),
        };
        if let Ok(theirs) = theirs {
            assert_eq!(theirs, reply, "dxr reads {text:?} otherwise");
        }
    }
});
