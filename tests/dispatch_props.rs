//! Property tests for the request path, `generals::dispatch::respond`: the function the HTTP
//! server runs on every request body, here through `server::Offline` (a node whose peers are
//! a port nobody listens on). Random, mutated and hostile bodies, calls of the original
//! methods and of the extensions, and `system.multicall` batches of them go to a loyal node
//! `Q`. After each body:
//! - the answer reads back (`peer::read_reply`, the reader of every outgoing call) as a value
//!   that renders to the same bytes, or as a fault with code 1 whose string starts with
//!   `<class '` and quotes at most 200 bytes of the body (but the unknown-method fault);
//! - for the original methods (alone or inside a batch), the answer is exactly what a plain
//!   `Node` (the pure logic, `Node::handle`) fed the same decoded calls answers, rendered; a
//!   call that node forwards is answered `ConnectionRefusedError` (the offline node reaches
//!   nothing), and no agreement round delivers a message or fetches a key.
//!
//! At the end the node must hold exactly what the valid `receive_message(string, string)`
//! calls among the bodies (alone or in batches) store, and finalize as a fresh node fed only
//! those calls. Which calls count as valid is decided by `generals::xmlrpc::decode_call`
//! itself, and a batch is taken apart as CPython's `system_multicall` does (the model below;
//! `tests/cpython_oracle.rs` holds the node to CPython on every shape): a mutated call can
//! still be a perfectly good `receive_message`, and must then be stored.
//!
//! The table at the end replays fixed inputs, including what the fuzz target
//! (`fuzz/fuzz_targets/dispatch.rs`) found.

use std::collections::{BTreeMap, HashMap};

use dxr::{DateTime, Fault, Value};
use generals::calls::{Call, Method, Protocol};
use generals::dispatch::{decode_fault, render};
use generals::methods::python_fault;
use generals::node::{Node, Step};
use generals::peer::{call_body, read_reply as decode_response};
use generals::protocol::{self, ext, fault};
use generals::server::Offline;
use generals::xmlrpc::decode_call;
use proptest::prelude::*;
use proptest::sample::{Index, select};

fn s(x: &str) -> Value {
    Value::String(x.into())
}

/// `Some((sender, decision))` iff `body` is a `receive_message` with exactly two strings.
fn valid_receive(body: &[u8]) -> Option<(String, String)> {
    match decode_call(body) {
        Ok(call) if call.name == Method::ReceiveMessage.name() => match call.params.as_slice() {
            [Value::String(a), Value::String(b)] => Some((a.clone(), b.clone())),
            _ => None,
        },
        _ => None,
    }
}

/// A fresh offline node.
fn offline(name: &str, faulty: bool) -> Offline {
    Offline::new(name, faulty).expect("an offline node")
}

/// What a call of the original methods is answered, by the pure model: `model`'s step, with a
/// forward refused as the offline node's peers refuse it.
fn model_answer(
    model: &mut Node,
    offline: &Offline,
    method: &str,
    params: &[Value],
) -> Result<Value, Fault> {
    let call = Method::from_name(method)
        .ok_or_else(|| fault::unsupported_method(method))
        .and_then(|m| Call::decode(m, params))
        .map_err(python_fault)?;
    match model.handle(&call, |v| offline.cluster().resolve(v)) {
        Step::Reply { result, .. } => result.map_err(python_fault),
        Step::Forward(_) => Err(python_fault(fault::connection_refused())),
    }
}

/// The answer of one call (alone or inside a batch) as the model sees it: `Some` for the
/// original methods and unknown names (the model answers those), `None` for the extensions
/// (the engine's; checked only for their shape). The model node stores what the call stores.
fn expect_call(
    model: &mut Node,
    offline: &Offline,
    method: &str,
    params: &[Value],
) -> Option<Result<Value, Fault>> {
    match Method::from_name(method) {
        Some(m) if m.is_original() => Some(model_answer(model, offline, method, params)),
        // A batch inside a batch is refused as an unknown method (divergence 12).
        Some(m) if m != Method::Multicall => None,
        _ => Some(Err(python_fault(fault::unsupported_method(method)))),
    }
}

/// The agreement methods' names (every method but the original ones and the batch).
fn agreement_methods() -> Vec<&'static str> {
    (Method::ALL.into_iter())
        .filter(|m| !m.is_original() && *m != Method::Multicall)
        .map(Method::name)
        .collect()
}

/// A batch entry as `system.multicall` writes it.
fn entry(result: Result<Value, Fault>) -> Value {
    match result {
        Ok(v) => Value::Array(vec![v]),
        Err(f) => Value::Struct(BTreeMap::from([
            ("faultCode".to_string(), Value::Integer(f.code())),
            (
                "faultString".to_string(),
                Value::String(f.string().to_string()),
            ),
        ])),
    }
}

/// What the model expects of one body: the whole answer (`Some`), or for a batch, each entry
/// it can predict (`None` for extension calls).
enum Expected {
    /// An extension call alone: only its shape is checked.
    Engine,
    Answer(Result<Value, Fault>),
    Batch(Vec<Option<Result<Value, Fault>>>),
}

/// Feed one body to the model: what the offline node should answer, and (in `stored`) what a
/// valid `receive_message` among its calls stores.
fn expect(
    model: &mut Node,
    offline: &Offline,
    body: &[u8],
    stored: &mut Vec<(String, String)>,
) -> Expected {
    let call = match decode_call(body) {
        Ok(call) => call,
        Err(e) => return Expected::Answer(Err(decode_fault(&e))),
    };
    if call.name != Method::Multicall.name() {
        let expected = expect_call(model, offline, &call.name, &call.params);
        note_store(model, &call.name, &call.params, &expected, stored);
        return match expected {
            Some(answer) => Expected::Answer(answer),
            None => Expected::Engine,
        };
    }
    // A batch, as CPython's `system_multicall` takes it (tests/cpython_oracle.rs holds our
    // node to CPython's on every shape): the list and each entry taken apart as Python does,
    // a malformed entry failing the whole call once the entries before it have run.
    let mut params = call.params.clone();
    if params.len() != 1 {
        return Expected::Answer(Err(python_fault(fault::multicall_arity(params.len()))));
    }
    let entries = match python_iter(params.remove(0)) {
        Ok(entries) => entries,
        Err(t) => {
            let f = fault::python("TypeError", &fault::not_iterable(t));
            return Expected::Answer(Err(python_fault(f)));
        }
    };
    if entries.len() > protocol::MAX_BATCH {
        return Expected::Answer(Err(python_fault(fault::python(
            "ValueError",
            &format!(
                "{} takes at most {} calls, not {}",
                Method::Multicall.name(),
                protocol::MAX_BATCH,
                entries.len()
            ),
        ))));
    }
    let mut out = Vec::new();
    for entry in entries {
        let Value::Struct(mut m) = entry else {
            return Expected::Answer(Err(python_fault(fault::not_subscriptable(&entry))));
        };
        let Some(name) = m.remove("methodName") else {
            return Expected::Answer(Err(python_fault(fault::key_error("methodName"))));
        };
        let Some(params) = m.remove("params") else {
            return Expected::Answer(Err(python_fault(fault::key_error("params"))));
        };
        let name = match name {
            Value::String(name) => name,
            Value::Array(_) | Value::Struct(_) | Value::Base64(_) | Value::DateTime(_) => {
                let f = fault::unhashable(protocol::python_type_name(&name));
                out.push(Some(Err(python_fault(f))));
                continue;
            }
            other => {
                let f = fault::unsupported_method(&protocol::python_str(&other));
                out.push(Some(Err(python_fault(f))));
                continue;
            }
        };
        let known = Method::from_name(&name).is_some_and(|m| m != Method::Multicall);
        if !known {
            out.push(Some(Err(python_fault(fault::unsupported_method(&name)))));
            continue;
        }
        let args = match python_iter(params) {
            Ok(args) => args,
            Err(t) => {
                out.push(Some(Err(python_fault(fault::args_not_iterable(&name, t)))));
                continue;
            }
        };
        let expected = expect_call(model, offline, &name, &args);
        note_store(model, &name, &args, &expected, stored);
        out.push(expected);
    }
    Expected::Batch(out)
}

/// A `receive_message(string, string)` the model answered: what a loyal node stores.
fn note_store(
    model: &Node,
    name: &str,
    params: &[Value],
    expected: &Option<Result<Value, Fault>>,
    stored: &mut Vec<(String, String)>,
) {
    if let (Some(Method::ReceiveMessage), Some(Ok(_)), [Value::String(a), Value::String(b)]) =
        (Method::from_name(name), expected, params)
        && !model.is_faulty()
    {
        stored.push((a.clone(), b.clone()));
    }
}

/// Python's `iter()` of a value: an array's items, a string's characters, a struct's keys;
/// else its type name.
fn python_iter(value: Value) -> Result<Vec<Value>, &'static str> {
    match value {
        Value::Array(items) => Ok(items),
        Value::String(s) => Ok(s.chars().map(|c| Value::String(c.to_string())).collect()),
        Value::Struct(m) => Ok(m.into_keys().map(Value::String).collect()),
        other => Err(protocol::python_type_name(&other)),
    }
}

/// Faults may quote at most this many consecutive bytes of the body.
const MAX_ECHO: usize = 200;

/// A fault string is Python's, and quotes at most [`MAX_ECHO`] bytes of the body (but the
/// unknown-method fault, which quotes the whole name as Python's does).
fn check_fault(f: &Fault, body: &[u8], ctx: &dyn Fn() -> String) {
    assert_eq!(f.code(), protocol::FAULT_CODE, "{}", ctx());
    let text = f.string();
    assert!(text.starts_with("<class '"), "fault {text:?} for {}", ctx());
    if text.starts_with("<class 'Exception'>:method \"") || body.len() <= MAX_ECHO {
        return;
    }
    let quoted = body
        .windows(MAX_ECHO + 1)
        .any(|w| text.as_bytes().windows(MAX_ECHO + 1).any(|x| x == w));
    assert!(!quoted, "fault quotes 201+ bytes of the body: {text:?}");
}

/// Nothing was reached: no round delivered a message, no SM start fetched another's key.
fn reached_nothing(v: &Value, ctx: &dyn Fn() -> String) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| reached_nothing(i, ctx)),
        Value::Struct(m) => {
            if let Some(d) = m.get("delivered") {
                assert_eq!(d, &Value::Integer(0), "{v:?} for {}", ctx());
            }
            if let (Some(Value::Integer(keys)), true) = (m.get("keys"), m.contains_key("nonce")) {
                assert!(*keys <= 1, "{v:?} for {}", ctx());
            }
            m.values().for_each(|i| reached_nothing(i, ctx));
        }
        _ => {}
    }
}

/// The answer to one body: it reads back and renders again to the same bytes; its faults are
/// Python's; it is what the model expects.
fn check_answer(answer: &str, body: &[u8], expected: Expected) {
    let ctx = || format!("body {:?}", String::from_utf8_lossy(body));
    let back = decode_response(answer).unwrap_or_else(|e| panic!("{e}\nfor {}", ctx()));
    assert_eq!(render(back.clone()), answer, "round trip, {}", ctx());
    match &back {
        Ok(v) => reached_nothing(v, &ctx),
        Err(f) => check_fault(f, body, &ctx),
    }
    match expected {
        Expected::Engine => {}
        Expected::Answer(want) => assert_eq!(answer, render(want), "{}", ctx()),
        Expected::Batch(want) => {
            let Ok(Value::Array(got)) = &back else {
                panic!("batch answered {back:?} for {}", ctx());
            };
            assert_eq!(got.len(), want.len(), "{}", ctx());
            for (got, want) in got.iter().zip(want) {
                match (got, want) {
                    (Value::Struct(m), None) => {
                        let (Some(Value::Integer(code)), Some(Value::String(text))) =
                            (m.get("faultCode"), m.get("faultString"))
                        else {
                            panic!("batch entry {got:?} for {}", ctx());
                        };
                        check_fault(&Fault::new(*code, text.clone()), body, &ctx);
                    }
                    (Value::Array(one), None) => assert_eq!(one.len(), 1, "{}", ctx()),
                    (got, Some(want)) => assert_eq!(*got, entry(want), "{}", ctx()),
                    (got, None) => panic!("batch entry {got:?} for {}", ctx()),
                }
            }
        }
    }
}

/// Feed `bodies` to a fresh node `name`, checking every answer;
/// return its messages afterwards, after checking them against the stored calls and against a
/// fresh node fed only the valid `receive_message` calls.
fn run_on(name: &str, faulty: bool, bodies: &[Vec<u8>]) -> HashMap<String, String> {
    let q = offline(name, faulty);
    let mut model = Node::new(name, faulty).with_receivers(q.cluster().members());
    let mut stored = Vec::new();
    for body in bodies {
        let expected = expect(&mut model, &q, body, &mut stored);
        let answer = q.respond(body);
        check_answer(&answer, body, expected);
    }
    let only_valid = offline(name, faulty);
    let mut want = HashMap::new();
    for (sender, decision) in &stored {
        let body = call_body(Method::ReceiveMessage.name(), &[s(sender), s(decision)]).unwrap();
        let answer = only_valid.respond(body.as_bytes());
        let line = protocol::received_line(name, decision, sender);
        assert_eq!(answer, render(Ok(Value::String(line))));
        want.insert(sender.clone(), decision.clone());
    }
    let node = q.node();
    assert_eq!(node.messages(), &want);
    assert_eq!(node.messages(), model.messages());
    assert_eq!(node.messages(), only_valid.node().messages());
    assert_eq!(
        node.finalize_decision(),
        only_valid.node().finalize_decision()
    );
    want
}

/// [`run_on`] a loyal Q.
fn run(bodies: &[Vec<u8>]) -> HashMap<String, String> {
    run_on("Q", false, bodies)
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Strings senders and decisions are made of: anything, XML's special characters, and a few
/// that matter to the protocol.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 <&>'\"é€🙂\t\n;#]{0,12}",
        select(vec![
            "", "attack", "retreat", "P", "Q", "R", "S", "<&>'\"", "]]>", "&amp;", "&#13;", " x ",
            "é", "🙂",
        ])
        .prop_map(String::from),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::String),
        any::<i32>().prop_map(Value::Integer),
        any::<i64>().prop_map(Value::Long),
        any::<bool>().prop_map(Value::Boolean),
        (-1e9f64..1e9).prop_map(Value::Double),
        Just(Value::Nil),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::Base64),
        Just(Value::DateTime(
            "20261124T12:54:29".parse::<DateTime>().unwrap()
        )),
    ]
}

/// Any XML-RPC value, strings included, nested at most two levels.
fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{0,3}", inner, 0..3)
                .prop_map(|m: BTreeMap<String, Value>| Value::Struct(m)),
        ]
    })
}

/// A value that is not a string.
fn non_string() -> impl Strategy<Value = Value> {
    value().prop_filter("not a string", |v| !matches!(v, Value::String(_)))
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec![
            Method::ReceiveMessage.name(),
            Method::SendMessage.name(),
            Method::FinalizeDecision.name(),
            Method::GetMessages.name(),
        ])
        .prop_map(String::from),
        2 => select(agreement_methods()).prop_map(String::from),
        1 => Just(Method::Multicall.name().to_string()),
        1 => select(vec!["nope", "_private", "send_message.x", "system.listMethods", ""])
            .prop_map(String::from),
        1 => text(),
    ]
}

fn receive_call() -> impl Strategy<Value = Vec<u8>> {
    (text(), text()).prop_map(|(a, b)| {
        call_body(Method::ReceiveMessage.name(), &[s(&a), s(&b)])
            .unwrap()
            .into_bytes()
    })
}

/// Run ids: a few, so that calls meet the runs other calls started.
fn run_id() -> impl Strategy<Value = Value> {
    select(vec!["r1", "r2", "", "original"]).prop_map(s)
}

fn name() -> impl Strategy<Value = String> {
    select(vec!["P", "Q", "R", "S", "Q", "Z", ""]).prop_map(String::from)
}

fn names() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(Value::Array(["P", "Q", "R", "S"].map(s).to_vec())),
        1 => prop::collection::vec(name(), 0..6)
            .prop_map(|n| Value::Array(n.iter().map(|x| s(x)).collect())),
    ]
}

fn small_int() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (0i32..4).prop_map(Value::Integer),
        1 => any::<i32>().prop_map(Value::Integer),
        1 => (0i64..3).prop_map(Value::Long),
    ]
}

/// A secret (capability or pair key) the calls share, so that calls meet the runs other calls
/// started; now and then one that is not a secret.
const SECRET: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn secret() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => Just(s(SECRET)),
        1 => select(vec!["", "x", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="]).prop_map(s),
    ]
}

/// A start's `keys` (or `public_keys`): the shared secret for the other nodes, or anything.
fn keys() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(Value::Struct(
            ["P", "R", "S"].iter().map(|n| (n.to_string(), s(SECRET))).collect()
        )),
        1 => prop::collection::btree_map(name(), secret(), 0..5).prop_map(Value::Struct),
        1 => value(),
    ]
}

/// The parameters `om_start` (8) and `sm_start` (9, with `public_keys`) take.
fn start_params() -> impl Strategy<Value = Vec<Value>> {
    (
        (run_id(), name().prop_map(|n| s(&n)), names(), small_int()),
        prop_oneof![
            3 => select(vec![1, 50, 200]).prop_map(Value::Integer),
            1 => select(vec![0, 600_001]).prop_map(Value::Integer),
        ],
        select(vec!["0", "42", "x"]).prop_map(s),
        secret(),
        keys(),
        prop::option::of(keys()),
    )
        .prop_map(
            |((run, commander, nodes, m), timeout, seed, cap, keys, more)| {
                let mut params = vec![run, commander, nodes, m, timeout, seed, cap, keys];
                params.extend(more);
                params
            },
        )
}

/// A call of one extension method with parameters of the right shape (mostly), values that
/// meet each other (run ids, node names, the shared secret), or anything.
fn ext_params() -> impl Strategy<Value = (String, Vec<Value>)> {
    let text_v = || text().prop_map(Value::String);
    let path = || {
        prop::collection::vec(name(), 0..4)
            .prop_map(|n| Value::Array(n.iter().map(|x| s(x)).collect()))
    };
    let call =
        |m: &'static str, p: BoxedStrategy<Vec<Value>>| p.prop_map(move |p| (m.to_string(), p));
    let driven = |last: BoxedStrategy<Value>| {
        (run_id(), secret(), last)
            .prop_map(|(a, b, c)| vec![a, b, c])
            .boxed()
    };
    prop_oneof![
        call(Method::NodeInfo.name(), Just(vec![]).boxed()),
        call(Method::SmPublicKey.name(), Just(vec![]).boxed()),
        call(Method::Start(Protocol::Om).name(), start_params().boxed()),
        call(Method::Start(Protocol::Sm).name(), start_params().boxed()),
        call(Method::Order(Protocol::Om).name(), driven(text_v().boxed())),
        call(Method::Order(Protocol::Sm).name(), driven(text_v().boxed())),
        call(
            Method::Round(Protocol::Om).name(),
            driven(small_int().boxed())
        ),
        call(
            Method::Round(Protocol::Sm).name(),
            driven(small_int().boxed())
        ),
        call(
            Method::Message(Protocol::Om).name(),
            (run_id(), path(), text_v(), text_v())
                .prop_map(|(a, b, c, d)| vec![a, b, c, d])
                .boxed()
        ),
        call(
            Method::Message(Protocol::Sm).name(),
            (run_id(), path(), text_v(), path(), text_v())
                .prop_map(|(a, b, c, d, e)| vec![a, b, c, d, e])
                .boxed()
        ),
        call(
            Method::Decide(Protocol::Om).name(),
            (run_id(), secret()).prop_map(|(a, b)| vec![a, b]).boxed()
        ),
        call(
            Method::Decide(Protocol::Sm).name(),
            (run_id(), secret()).prop_map(|(a, b)| vec![a, b]).boxed()
        ),
        call(
            Method::TraceEvents.name(),
            driven(select(vec!["0", "x"]).prop_map(s).boxed())
        ),
        call(
            Method::Round(Protocol::Om).name(),
            prop::collection::vec(value(), 0..4).boxed()
        ),
    ]
}

fn ext_call() -> impl Strategy<Value = Vec<u8>> {
    ext_params().prop_map(|(m, p)| call_body(&m, &p).unwrap().into_bytes())
}

/// A call of the original protocol with its two string arguments.
fn original_params() -> impl Strategy<Value = (String, Vec<Value>)> {
    prop_oneof![
        (text(), text()).prop_map(|(a, b)| (
            Method::ReceiveMessage.name().to_string(),
            vec![s(&a), s(&b)]
        )),
        (name(), text())
            .prop_map(|(a, b)| (Method::SendMessage.name().to_string(), vec![s(&a), s(&b)])),
        Just((Method::FinalizeDecision.name().to_string(), vec![])),
        Just((Method::GetMessages.name().to_string(), vec![])),
    ]
}

/// `system.multicall` of zero to five calls (extensions, the original methods, anything, a
/// batch in the batch), or of something that is not a batch.
fn batch() -> impl Strategy<Value = Vec<u8>> {
    let one = prop_oneof![
        3 => ext_params(),
        3 => original_params(),
        1 => (method(), prop::collection::vec(value(), 0..3)),
    ]
    .prop_map(|(m, p)| {
        Value::Struct(BTreeMap::from([
            ("methodName".to_string(), s(&m)),
            ("params".to_string(), Value::Array(p)),
        ]))
    });
    prop_oneof![
        6 => prop::collection::vec(one, 0..6).prop_map(|calls| vec![Value::Array(calls)]),
        1 => prop::collection::vec(value(), 0..3),
        1 => prop::collection::vec(value(), 0..3).prop_map(|v| vec![Value::Array(v)]),
    ]
    .prop_map(|params| {
        call_body(Method::Multicall.name(), &params)
            .unwrap()
            .into_bytes()
    })
}

/// A well-formed call of any method with zero to four values of any type.
fn any_call() -> impl Strategy<Value = Vec<u8>> {
    (method(), prop::collection::vec(value(), 0..5))
        .prop_map(|(m, params)| call_body(&m, &params).unwrap().into_bytes())
}

/// The three methods with the wrong number of string arguments.
fn wrong_arity() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (
            select(vec![
                Method::ReceiveMessage.name(),
                Method::SendMessage.name()
            ]),
            prop_oneof![0usize..2, 3usize..6]
        ),
        (select(vec![Method::FinalizeDecision.name()]), 1usize..4),
    ]
    .prop_flat_map(|(m, n)| {
        prop::collection::vec(text(), n).prop_map(move |args| {
            call_body(m, &args.iter().map(|a| s(a)).collect::<Vec<_>>()).unwrap()
        })
    })
    .prop_map(String::into_bytes)
}

/// `receive_message` / `send_message` with at least one non-string argument.
fn non_string_params() -> impl Strategy<Value = Vec<u8>> {
    (
        select(vec![
            Method::ReceiveMessage.name(),
            Method::SendMessage.name(),
        ]),
        non_string(),
        value(),
        any::<bool>(),
    )
        .prop_map(|(m, bad, other, bad_first)| {
            let params = if bad_first {
                [bad, other]
            } else {
                [other, bad]
            };
            call_body(m, &params).unwrap().into_bytes()
        })
}

/// `receive_message` written by hand with untyped `<value>X</value>` (a string in XML-RPC).
fn untyped_receive() -> impl Strategy<Value = Vec<u8>> {
    ("[a-zA-Z0-9 é]{0,8}", "[a-zA-Z0-9 é]{0,8}").prop_map(|(a, b)| {
        format!(
            "<?xml version='1.0'?>\n<methodCall><methodName>receive_message</methodName>\
             <params><param><value>{a}</value></param><param><value>{b}</value></param>\
             </params></methodCall>"
        )
        .into_bytes()
    })
}

/// Snippets a mutation may insert: XML syntax that changes how a body parses.
const SNIPPETS: &[&str] = &[
    "<",
    ">",
    "&",
    "&amp;",
    "&#13;",
    "&#0;",
    "&lt;",
    "&bogus;",
    "</",
    "/>",
    "<value>",
    "</value>",
    "<string>",
    "</string>",
    "<param>",
    "</param>",
    "<int>5</int>",
    "<nil/>",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<?pi?>",
    "<!DOCTYPE x>",
    "\u{0}",
    "\r",
    "\u{FEFF}",
    "é",
    "🙂",
    "\"",
    "'",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    /// Overwrite one byte with a letter: often keeps the body well-formed.
    Letter(Index, u8),
    Truncate(Index),
    Delete(Index, usize),
    Insert(Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<Index>(), b'a'..=b'z').prop_map(|(i, c)| Mutation::Letter(i, c)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<Index>(),
            prop_oneof![
                select(SNIPPETS).prop_map(|s| s.as_bytes().to_vec()),
                prop::collection::vec(any::<u8>(), 1..6),
            ]
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn apply(body: &mut Vec<u8>, m: &Mutation) {
    let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
    match m {
        Mutation::Flip(i, mask) if !body.is_empty() => {
            let k = i.index(body.len());
            body[k] ^= mask;
        }
        Mutation::Letter(i, c) if !body.is_empty() => {
            let k = i.index(body.len());
            body[k] = *c;
        }
        Mutation::Flip(..) | Mutation::Letter(..) => {}
        Mutation::Truncate(i) => body.truncate(at(i, body.len())),
        Mutation::Delete(i, n) => {
            let k = at(i, body.len());
            let end = (k + n).min(body.len());
            body.drain(k..end);
        }
        Mutation::Insert(i, bytes) => {
            let k = at(i, body.len());
            body.splice(k..k, bytes.iter().copied());
        }
    }
}

/// A valid call (mostly `receive_message`) after one to four mutations.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![3 => receive_call(), 1 => any_call(), 1 => ext_call(), 1 => batch()],
        prop::collection::vec(mutation(), 1..5),
    )
        .prop_map(|(mut body, ms)| {
            for m in &ms {
                apply(&mut body, m);
            }
            body
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => receive_call(),
        1 => untyped_receive(),
        2 => any_call(),
        1 => wrong_arity(),
        2 => non_string_params(),
        1 => prop::collection::vec(any::<u8>(), 0..300),
        4 => mutated(),
        3 => ext_call(),
        2 => batch(),
    ]
}

proptest! {
    #[test]
    fn random_bodies_keep_state_and_answer_well(bodies in prop::collection::vec(body(), 1..24)) {
        run(&bodies);
    }

    #[test]
    fn agreement_runs_among_noise(
        noise in prop::collection::vec(body(), 0..12),
        at in prop::collection::vec(any::<Index>(), 12),
        order in text(),
    ) {
        // An OM(1) and an SM(1) run commanded by Q, each call at a random place in the noise:
        // rounds are opened and refused by every peer, the decisions are taken.
        let run = |m: &str, p: Vec<Value>| call_body(m, &p).unwrap().into_bytes();
        let all = Value::Array(["P", "Q", "R", "S"].map(s).to_vec());
        let start = |id: &str| {
            vec![s(id), s("Q"), all.clone(), Value::Integer(1), Value::Integer(50), s("0")]
        };
        let session = vec![
            run(Method::Start(Protocol::Om).name(), start("r1")),
            run(Method::Order(Protocol::Om).name(), vec![s("r1"), s(&order)]),
            run(Method::Round(Protocol::Om).name(), vec![s("r1"), Value::Integer(1)]),
            run(Method::Round(Protocol::Om).name(), vec![s("r1"), Value::Integer(2)]),
            run(Method::Decide(Protocol::Om).name(), vec![s("r1")]),
            run(Method::Start(Protocol::Sm).name(), start("r2")),
            run(Method::Order(Protocol::Sm).name(), vec![s("r2"), s(&order)]),
            run(Method::Round(Protocol::Sm).name(), vec![s("r2"), Value::Integer(1)]),
            run(Method::Decide(Protocol::Sm).name(), vec![s("r2")]),
            run(Method::TraceEvents.name(), vec![s("r1"), s("0")]),
            run(Method::NodeInfo.name(), vec![]),
        ];
        let mut bodies = noise;
        for (body, i) in session.into_iter().zip(&at) {
            let k = i.index(bodies.len() + 1);
            bodies.insert(k, body);
        }
        run_on("Q", false, &bodies);
    }

    #[test]
    fn valid_receives_survive_any_noise(
        calls in prop::collection::vec((text(), text()), 1..8),
        noise in prop::collection::vec(prop_oneof![mutated(), non_string_params()], 0..8),
    ) {
        // Interleave: every valid call is stored whatever garbage surrounds it.
        let mut bodies = Vec::new();
        let mut noise = noise.into_iter();
        for (a, b) in &calls {
            bodies.extend(noise.next());
            bodies.push(call_body(Method::ReceiveMessage.name(), &[s(a), s(b)]).unwrap().into_bytes());
        }
        bodies.extend(noise);
        let stored = run(&bodies);
        for (a, b) in &calls {
            let (a2, _) = valid_receive(
                call_body(Method::ReceiveMessage.name(), &[s(a), s(b)]).unwrap().as_bytes(),
            ).expect("an encoded call of two strings decodes");
            prop_assert!(stored.contains_key(&a2), "{a:?} not stored");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Regression table

fn call(method: &str, params: &[&str]) -> Vec<u8> {
    call_body(method, &params.iter().map(|p| s(p)).collect::<Vec<_>>())
        .unwrap()
        .into_bytes()
}

/// The exact bytes Python's client sends for `send_message('Q', 'attack')` (docs/protocol.md).
const PYTHON_SEND: &str = "<?xml version='1.0'?>\n<methodCall>\n<methodName>send_message</methodName>\n<params>\n<param>\n<value><string>Q</string></value>\n</param>\n<param>\n<value><string>attack</string></value>\n</param>\n</params>\n</methodCall>\n";

/// What `cargo fuzz run dispatch` found (artifact name, body without the node-selector byte).
/// None is a crash of `dispatch`; each breaks one of the fuzz target's strict checks (see
/// `fuzz/README.md`): a CR copied raw into a fault string comes back as LF, or a fault quotes
/// more than 200 bytes of the body.
const FUZZ_FINDINGS: &[(&str, &[u8])] = &[
    // CR inside an end tag, quoted raw by quick-xml's mismatch message.
    (
        "crash-c754bd38",
        b"<?xml version='1.0'?>\n<methodCall>\n<methodName>receive_message</methodNa\re>\n<params>\n/><param>\n<value><string>Q</string></value>\n</param>\n<param>\n<value><string>retreat</string></value>\n</param>\n</params>\n</methodCall>\n",
    ),
    (
        "crash-e3a38fa2",
        b"<?xml version='1.0'?>\n<methodCall>\n<methodName>receive_message</meth\r\r\r\r</methodName>0<?xm, \x1a<pa",
    ),
    // CR inside the body excerpt of "not an XML-RPC methodCall (no methodName): ...".
    (
        "crash-bad888a7",
        b"<?xml\x1a\x00 veraram'?>\n<methodCall\nm\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\rUUUUUU[UU%''''''''''''''''''''UUUUUUU[UU%''''''''''''''''''''''''''''7>\n</methodCall>\n",
    ),
    // "root element is <NAME>": '<' plus a 200-byte excerpt is a 201-byte copy.
    (
        "crash-81b75d61",
        b"<:=\x00\x00z\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x001<=\x00\x00z\x00aat\x00\x00\x00?\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00>r",
    ),
    // quick-xml's "expected `</A>`, but `</B>` was found" quotes whole tag names.
    (
        "crash-33609673",
        b"<?xml >\x00\x00\x00iot='10.0'?>\n<methodCall>'''''''''e</val'0:?<x\x01\x00\x00\x00U\x0b\x00VVVVVVVVVVVUU0<?xml ve.r=\x00\x00\x00s\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00ion='2.0'?>\n<m\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00ethodUUUU)m'=Call>\n<",
    ),
    // quick-xml's "close tag `</A>` does not match any open tag" quotes the whole name.
    (
        "crash-e78d1a3d",
        b"</xml ve\x07\x07\x07\x08\x08\x08\x08\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07rsion='1<me|l versiodName>\n<params>\n</params>\n</methodCall\n\n\n\n\nm>ll>\n\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\n<methodCall>\n<methodName>receive_message</meth\"D.a0'?>\n<methodC\x01",
    ),
    // "undefined entity &NAME;: byte N": '&' plus a 200-byte excerpt of the name is a 201-byte
    // copy; with a 198-byte name, "&NAME;:" was one too (the body had ':' after ';').
    (
        "crash-d8a64b56",
        b"<?xm='1.0'?>\n<methodCall>\n<methodName>osaram>\n<value><base64>U22\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00&aD\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00e\xef\xbf\xbf\x00\x00\x00\x00\x00\x00\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x00;\x00\x00\x00\x00\x00\x00222222222222222\x12015;0594867Q==</base64></value>\n<ram1.=i'ns\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00o022\x12015;>\n><l>\n",
    ),
    (
        "crash-175cff4a",
        b"<?xilxml versnio=~'0.0'?>\n<methodCall>\n<methodram>\n<value><dateTime.iso8601>\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00ion='1.0'?>\n<methodCall>\n<methodNae<0>msa\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\x01\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\x00\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t&\t\t\t\t\t\t\t\t\t\t\t\tnnnnnnnnnnnNnnn!DOCnnnnnnnnnnnnnnnnnnnnnn0nnnnn2me\n22\x00\x00\x00\x00\x00\x00\n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00#\x00-\x00\x00\x00\x00\x00s\x00\x00\x00\x00\x00\x00\x00\x00\x00\n\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00/\t\x00\x00\x00/thC/>n=///////////////////////////\x01\x00\x00\x00\x00\x00\x008/////////////////////0;:54////\x01\x00ateT555555555555555555555555555555555555555555555555555555ime.iso8601></\x00\x00\x00?\x00\x00\x00para111111111111111222222222222222m>\n<\x00\x00\x00\x00\x00\x00\x00\x00val",
    ),
];

/// One table entry: name, body, and the messages a fresh Q holds after it alone.
type Case = (&'static str, Vec<u8>, Vec<(&'static str, &'static str)>);

/// Fixed inputs: the protocol's requests, hostile documents, and the fuzz findings.
fn table() -> Vec<Case> {
    let deep = format!(
        "<methodCall><methodName>receive_message</methodName><params><param>{}{}</param></params></methodCall>",
        "<value><array><data>".repeat(200),
        "</data></array></value>".repeat(200)
    );
    let long_name = "m".repeat(300);
    let mut table = vec![
        ("python send_message", PYTHON_SEND.into(), vec![]),
        (
            "receive_message",
            call("receive_message", &["P", "attack"]),
            vec![("P", "attack")],
        ),
        (
            "escapes and unicode",
            call("receive_message", &["<&>'\"", "é🙂"]),
            vec![("<&>'\"", "é🙂")],
        ),
        (
            "untyped values are strings",
            b"<methodCall><methodName>receive_message</methodName><params><param><value>R</value></param><param><value>retreat</value></param></params></methodCall>".to_vec(),
            vec![("R", "retreat")],
        ),
        (
            "empty value is the empty string",
            b"<methodCall><methodName>receive_message</methodName><params><param><value/></param><param><value><string/></value></param></params></methodCall>".to_vec(),
            vec![("", "")],
        ),
        (
            "CDATA and comments inside a string",
            b"<methodCall><methodName>receive_message</methodName><params><param><value><string>a<!--c-->b</string></value></param><param><value><string><![CDATA[<&>]]></string></value></param></params></methodCall>".to_vec(),
            vec![("ab", "<&>")],
        ),
        ("finalize_decision, nothing stored", call("finalize_decision", &[]), vec![]),
        ("finalize_decision(1)", call("finalize_decision", &["x"]), vec![]),
        ("receive_message()", call("receive_message", &[]), vec![]),
        ("receive_message('A')", call("receive_message", &["A"]), vec![]),
        ("receive_message x3", call("receive_message", &["A", "b", "c"]), vec![]),
        ("send_message('R')", call("send_message", &["R"]), vec![]),
        ("send_message('')", call("send_message", &["", "x"]), vec![]),
        ("unknown method", call("nope", &[]), vec![]),
        ("get_messages", call("get_messages", &[]), vec![]),
        (
            "int sender",
            call_body("receive_message", &[Value::Integer(5), s("x")]).unwrap().into_bytes(),
            vec![],
        ),
        (
            "array decision",
            call_body("receive_message", &[s("A"), Value::Array(vec![s("x")])]).unwrap().into_bytes(),
            vec![],
        ),
        (
            "struct, nil",
            call_body(
                "receive_message",
                &[Value::Struct(BTreeMap::new()), Value::Nil],
            ).unwrap()
            .into_bytes(),
            vec![],
        ),
        (
            "base64 recipient",
            call_body("send_message", &[Value::Base64(b"Q".to_vec()), s("x")]).unwrap().into_bytes(),
            vec![],
        ),
        (
            "dateTime",
            b"<methodCall><methodName>receive_message</methodName><params><param><value><dateTime.iso8601>20261124T12:54:29</dateTime.iso8601></value></param><param><value>x</value></param></params></methodCall>".to_vec(),
            vec![],
        ),
        (
            "DOCTYPE with an entity",
            b"<?xml version='1.0'?><!DOCTYPE methodCall [<!ENTITY a 'attack'>]><methodCall><methodName>receive_message</methodName><params><param><value>P</value></param><param><value>&a;</value></param></params></methodCall>".to_vec(),
            vec![],
        ),
        ("garbage<", b"garbage<".to_vec(), vec![]),
        ("empty body", Vec::new(), vec![]),
        ("invalid UTF-8", vec![0xff, 0xfe, b'<'], vec![]),
        ("nested 200 deep", deep.into_bytes(), vec![]),
        (
            "long method name",
            call(&long_name, &[]),
            vec![],
        ),
        (
            "long mismatched tags",
            format!("<methodCall><{long_name}></{long_name}x></methodCall>").into_bytes(),
            vec![],
        ),
        (
            "CR from a character reference",
            b"<methodCall><methodName>receive_message</methodName><params><param><value><string>a&#13;b</string></value></param><param><value><string>x</string></value></param></params></methodCall>".to_vec(),
            vec![("a\rb", "x")],
        ),
        (
            "long root element",
            format!("<{long_name}/>").into_bytes(),
            vec![],
        ),
    ];
    table.extend(
        FUZZ_FINDINGS
            .iter()
            .map(|(name, body)| (*name, body.to_vec(), vec![])),
    );
    table
}

#[test]
fn regression_table() {
    let mut all = Vec::new();
    let mut expected_all = HashMap::new();
    for (name, body, expected) in table() {
        let expected: HashMap<String, String> = expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(run(std::slice::from_ref(&body)), expected, "{name}");
        expected_all.extend(expected);
        all.push(body);
    }
    // All of them in one sequence, and in reverse order.
    assert_eq!(run(&all), expected_all);
    all.reverse();
    assert_eq!(run(&all), expected_all);
}

/// The protocol's fault strings come back byte for byte; what the node's logic forwards is
/// refused, as the original's call to a node nobody runs.
#[test]
fn protocol_faults() {
    let refused = "<class 'ConnectionRefusedError'>:[Errno 111] Connection refused";
    let cases: &[(Vec<u8>, &str)] = &[
        (
            call("nope", &[]),
            "<class 'Exception'>:method \"nope\" is not supported",
        ),
        (
            call("receive_message", &["A"]),
            "<class 'TypeError'>:Process.receive_message() missing 1 required positional argument: 'decision'",
        ),
        (
            call("finalize_decision", &[]),
            "<class 'ValueError'>:max() arg is an empty sequence",
        ),
        (
            call("send_message", &["QQ", "x"]),
            "<class 'TypeError'>:ord() expected a character, but string of length 2 found",
        ),
        (call("send_message", &["R", "attack"]), refused),
        (call("send_message", &["Q", "attack"]), refused),
        (call("send_message", &["Z", "attack"]), refused),
        (PYTHON_SEND.into(), refused),
    ];
    for (body, fault) in cases {
        let answer = offline("Q", false).respond(body);
        let back = decode_response(&answer).unwrap();
        let Err(f) = &back else { panic!("{back:?}") };
        assert_eq!(f.string(), *fault);
        assert_eq!(f.code(), protocol::FAULT_CODE);
    }
    let answer = offline("Q", false).respond(b"garbage<");
    let Err(f) = decode_response(&answer).unwrap() else {
        panic!("{answer}")
    };
    assert!(
        f.string()
            .starts_with("<class 'xml.parsers.expat.ExpatError'>:"),
        "{f:?}"
    );
}

/// What the fuzz target checks, on every table entry (fuzz findings included) for both of its
/// nodes (loyal Q, faulty P): each answer comes back unchanged (a carriage
/// return is written as `&#13;`), and no fault quotes more than 200 consecutive bytes of the
/// body, except the unknown-method fault, which quotes the whole method name exactly as
/// Python's does.
#[test]
fn strict_fuzz_properties() {
    for (name, body, _) in table() {
        for (node, faulty) in [("Q", false), ("P", true)] {
            let run =
                std::panic::catch_unwind(|| run_on(node, faulty, std::slice::from_ref(&body)));
            assert!(run.is_ok(), "{name} on {node}");
        }
    }
}

/// The original's run on the offline node: P, faulty, denies R and S and forwards to Q (refused
/// here); the extensions answer; a batch stores its `receive_message` calls in order.
#[test]
fn extensions_and_batches() {
    let p = offline("P", true);
    let reply = |o: &Offline, m: &str, params: &[Value]| {
        decode_response(&o.respond(call_body(m, params).unwrap().as_bytes())).unwrap()
    };
    assert_eq!(
        reply(&p, Method::SendMessage.name(), &[s("R"), s("attack")]),
        Ok(Value::String(protocol::denied_reply("P", "R")))
    );
    let Err(f) = reply(&p, Method::SendMessage.name(), &[s("Q"), s("attack")]) else {
        panic!()
    };
    assert_eq!(
        f.string(),
        "<class 'ConnectionRefusedError'>:[Errno 111] Connection refused"
    );
    let Ok(Value::Struct(info)) = reply(&p, Method::NodeInfo.name(), &[]) else {
        panic!()
    };
    assert_eq!(info.get("name"), Some(&s("P")));

    let q = offline("Q", false);
    let one = |m: &str, params: Vec<Value>| {
        Value::Struct(BTreeMap::from([
            ("methodName".to_string(), s(m)),
            ("params".to_string(), Value::Array(params)),
        ]))
    };
    let batch = Value::Array(vec![
        one(Method::ReceiveMessage.name(), vec![s("P"), s("retreat")]),
        one(Method::Decide(Protocol::Om).name(), vec![s("none"), s("x")]),
        one(Method::ReceiveMessage.name(), vec![s("P"), s("attack")]),
        one(Method::ReceiveMessage.name(), vec![s("R"), s("attack")]),
    ]);
    let Ok(Value::Array(entries)) = reply(&q, Method::Multicall.name(), &[batch]) else {
        panic!()
    };
    assert_eq!(entries.len(), 4);
    assert!(matches!(&entries[1], Value::Struct(m) if m.contains_key("faultString")));
    assert_eq!(
        q.node().messages(),
        &HashMap::from([("P".into(), "attack".into()), ("R".into(), "attack".into())])
    );
    assert_eq!(
        reply(&q, Method::FinalizeDecision.name(), &[]),
        Ok(s("attack"))
    );

    // An OM(1) run commanded by Q: round 1 sends to P, R and S, and every send is refused.
    let nodes: Vec<String> = ["P", "Q", "R", "S"].map(String::from).to_vec();
    let secrets = generals::agreement::auth::Credentials::new(Protocol::Om, &nodes).unwrap();
    let capability = secrets.capability("Q").unwrap().to_base64();
    let (id, cap) = (s(secrets.run.as_str()), s(&capability));
    let keys = Value::Struct(
        (secrets.keys_of("Q").into_iter())
            .map(|(k, v)| (k, s(&v.to_base64())))
            .collect(),
    );
    let all = Value::Array(nodes.iter().map(|n| s(n)).collect());
    let start = [
        id.clone(),
        s("Q"),
        all,
        Value::Integer(1),
        Value::Integer(50),
        s("0"),
        cap.clone(),
        keys,
    ];
    assert_eq!(
        reply(&q, Method::Start(Protocol::Om).name(), &start),
        Ok(s(ext::OK))
    );
    let order = [id.clone(), cap.clone(), s("attack")];
    let Ok(Value::Struct(queued)) = reply(&q, Method::Order(Protocol::Om).name(), &order) else {
        panic!()
    };
    assert_eq!(queued.get("queued"), Some(&Value::Integer(3)));
    let round = [id.clone(), cap.clone(), Value::Integer(1)];
    let Ok(Value::Struct(round)) = reply(&q, Method::Round(Protocol::Om).name(), &round) else {
        panic!()
    };
    assert_eq!(round.get("sent"), Some(&Value::Integer(3)), "{round:?}");
    assert_eq!(
        round.get("delivered"),
        Some(&Value::Integer(0)),
        "{round:?}"
    );
    let decide = [id.clone(), cap.clone()];
    let Ok(Value::Struct(decided)) = reply(&q, Method::Decide(Protocol::Om).name(), &decide) else {
        panic!()
    };
    assert_eq!(decided.get("decision"), Some(&s("attack")));
    let trace = [id, cap, s("0")];
    let Ok(Value::Array(events)) = reply(&q, Method::TraceEvents.name(), &trace) else {
        panic!()
    };
    assert_eq!(events.len(), 3, "{events:?}");
}

/// Every seed of the fuzz target (`fuzz/seeds/dispatch/`: the first byte picks the node, bit
/// 0) passes the target's checks and the model's.
#[test]
fn fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/dispatch");
    let mut seeds = 0;
    for file in std::fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let Some((&selector, body)) = data.split_first() else {
            continue;
        };
        let (node, faulty) = if selector & 1 == 0 {
            ("Q", false)
        } else {
            ("P", true)
        };
        let run = std::panic::catch_unwind(|| run_on(node, faulty, &[body.to_vec()]));
        assert!(run.is_ok(), "seed {}", path.display());
        seeds += 1;
    }
    assert!(seeds >= 40, "{seeds} seeds in {}", dir.display());
}
