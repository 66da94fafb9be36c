//! Differential test: a Python stand-in cluster and a Rust cluster get the same seeded
//! pseudo-random sequence of XML-RPC calls (valid and invalid), and every answer must be equal
//! (the value, or the fault code and string).
//!
//! The calls where docs/protocol.md / the README allow the two to differ are sent to the Rust
//! cluster only, where their fault shape is checked and that nothing was stored (through the
//! `get_messages` extension), so the two clusters keep the same state all along.
//!
//! The seed is fixed ([`DEFAULT_SEED`]); `DIFFERENTIAL_SEED=<u64 or 0xHEX>` runs another one.
//! Every mismatch is collected and reported at the end with its call index and the seed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::common::*;
use dxr::Value;

/// The seed of the default run (printed in every failure message).
const DEFAULT_SEED: u64 = 0x0DEC_15E0_2026_B12A;
/// Pseudo-random calls per run (checkpoints and fixed scenarios come on top).
const RANDOM_CALLS: usize = 320;
/// A checkpoint (finalize_decision on every node, state check) every this many calls.
const CHECKPOINT_EVERY: usize = 64;

const NODES: [char; 4] = ['P', 'Q', 'R', 'S'];
/// The faulty node of both clusters (the default).
const FAULTY: char = 'P';
/// Single letters with no node behind them. With P in the middle of a 64-port block they map
/// to ports inside our own free block: the connection is refused and never reaches anyone.
const UNKNOWN_LETTERS: [&str; 5] = ["T", "U", "Z", "A", "O"];

const DECISIONS: &[&str] = &[
    "attack",
    "retreat",
    "hold",
    "",
    "attaque à l'aube",
    "<&>'\"",
    "a&b<c>d\"e'f",
    "&amp; is not an entity here",
    "]]>",
    "日本語の決定",
    "🙂 smile",
    "Ωμέγα",
    "tab\there",
    "two\nlines",
    "  padded  ",
    "x",
];

const SENDERS: &[&str] = &[
    "P",
    "Q",
    "R",
    "S",
    "T",
    "",
    "general",
    "Général Ünïcødé",
    "<&>'\"",
    "日本",
    "🙂",
    "  spaced  ",
    "P ",
];

/// Recipients that are strings but not one character: Python's `ord()` refuses them.
const BAD_RECIPIENTS: &[&str] = &[
    "", "QQ", "PQRS", "Q ", " Q", "RS", "ÉÉ", "日本", "<&>", "\"'",
];

const UNKNOWN_METHODS: &[&str] = &[
    "nope",
    " ",
    "",
    "_private",
    "__init__",
    "_dispatch",
    "__class__",
    "send_message.x",
    "receive_message.__call__",
    "finalize_decision.x.y",
    "system.listMethods",
    "system.methodHelp",
    // system.multicall is one of our extensions (the agreement engine batches with it), like
    // om_start: not in this table.
    "Send_Message",
    "SEND_MESSAGE",
    "send-message",
    "sendMessage",
    "finalize",
    "décision",
    "a<b>&c",
    "quote'\"",
    "日本",
];

/// Attributes (not methods) of Python's `Process`: deliberate divergence 11 of the README.
const PYTHON_ATTRIBUTES: &[&str] = &["name", "faulty", "messages"];

/// Bodies that are not well-formed XML.
const MALFORMED_BODIES: &[&[u8]] = &[
    b"garbage<",
    b"",
    b"not xml at all",
    b"<methodCall><methodName>finalize_decision</methodName>",
    b"<methodCall><methodName>x</methodName></methodResponse>",
    b"<?xml version='1.0'?>\n<methodCall><methodName>finalize_decision</methodName><params></params></methodCall><extra/>",
    b"<methodCall><methodName>a&b</methodName><params></params></methodCall>",
    b"\xff\xfe<methodCall/>",
];

const EXPAT_PREFIX: &str = "<class 'xml.parsers.expat.ExpatError'>:";

/// xorshift64: tiny, deterministic, good enough to pick test cases.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x2545_F491_4F6C_DD1D
        } else {
            seed
        })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

fn seed() -> u64 {
    match std::env::var("DIFFERENTIAL_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("DIFFERENTIAL_SEED={s:?}: {e}"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

/// A random string of up to `max_len` characters, XML specials and non-ASCII included.
fn random_string(rng: &mut Rng, min_len: usize, max_len: usize) -> String {
    const ALPHABET: &[char] = &[
        'a', 'b', 'z', 'P', 'Q', '0', ' ', '<', '&', '>', '\'', '"', ';', 'é', 'ß', 'Ω', '日',
        '本', '🙂', '-', '_', '.',
    ];
    let len = min_len + rng.below(max_len - min_len + 1);
    (0..len).map(|_| rng.pick(ALPHABET)).collect()
}

fn decision(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 => random_string(rng, 0, 40),
        1 => "long decision ".repeat(100 + rng.below(50)),
        _ => rng.pick(DECISIONS).to_string(),
    }
}

fn sender(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => random_string(rng, 0, 30),
        1 => "s".repeat(300),
        _ => rng.pick(SENDERS).to_string(),
    }
}

fn bad_recipient(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => random_string(rng, 2, 30),
        1 => "Q".repeat(500 + rng.below(100)),
        _ => rng.pick(BAD_RECIPIENTS).to_string(),
    }
}

/// Any XML-RPC value but a string. `depth` bounds the nesting of arrays and structs.
fn non_string(rng: &mut Rng, depth: usize) -> Value {
    let kinds = if depth == 0 { 5 } else { 7 };
    match rng.below(kinds) {
        0 => Value::Integer(rng.pick(&[0, 1, -1, 5, 80, 81, i32::MAX, i32::MIN])),
        1 => Value::Boolean(rng.percent(50)),
        2 => Value::Double(rng.pick(&[0.0, 1.5, -2.25, 1e10, 3.125, -0.5])),
        3 => Value::Long(rng.pick(&[i64::from(i32::MAX) + 1, -5_000_000_000, 1 << 40])),
        4 => Value::Nil,
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| any_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let members: BTreeMap<String, Value> = (0..rng.below(4))
                .map(|_| (random_string(rng, 0, 8), any_value(rng, depth - 1)))
                .collect();
            Value::Struct(members)
        }
    }
}

fn any_value(rng: &mut Rng, depth: usize) -> Value {
    if rng.percent(60) {
        Value::String(match rng.below(3) {
            0 => decision(rng),
            1 => sender(rng),
            _ => rng.pick(&NODES).to_string(),
        })
    } else {
        non_string(rng, depth)
    }
}

/// Python's name for the type of a (non-string) value, as in its error messages.
fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) | Value::Long(_) => "int",
        Value::Boolean(_) => "bool",
        Value::String(_) => "str",
        Value::Double(_) => "float",
        Value::Struct(_) => "dict",
        Value::Array(_) => "list",
        Value::Nil => "NoneType",
        other => panic!("no such value in this test: {other:?}"),
    }
}

fn other_node(rng: &mut Rng, node: char) -> char {
    let others: Vec<char> = NODES.iter().copied().filter(|&n| n != node).collect();
    rng.pick(&others)
}

/// Params for a wrong arity of a two-parameter method: 0, 1, 3 or 4 of them.
fn wrong_arity(rng: &mut Rng) -> Vec<Value> {
    let n = rng.pick(&[0, 1, 3, 4]);
    (0..n).map(|_| any_value(rng, 2)).collect()
}

/// Where a call goes.
#[derive(Debug)]
enum Route {
    /// To both clusters; the answers must be equal.
    Both,
    /// A deliberate divergence: to the Rust cluster only, which must answer with this fault
    /// and store nothing anywhere.
    RustOnlyFault(String),
}

#[derive(Debug)]
struct Call {
    kind: &'static str,
    node: char,
    method: String,
    params: Vec<Value>,
    route: Route,
}

impl Call {
    fn both(kind: &'static str, node: char, method: &str, params: Vec<Value>) -> Call {
        Call {
            kind,
            node,
            method: method.to_string(),
            params,
            route: Route::Both,
        }
    }
}

/// One pseudo-random call.
fn generate(rng: &mut Rng) -> Call {
    let node = rng.pick(&NODES);
    let roll = rng.below(100);
    match roll {
        // send_message to a real node that is not the sender itself (a Python node sending to
        // itself deadlocks forever). P -> R / P -> S are denied on both sides.
        0..=21 => {
            let to = other_node(rng, node).to_string();
            Call::both(
                "send_message(node, str)",
                node,
                "send_message",
                vec![s(&to), s(&decision(rng))],
            )
        }
        22..=27 => {
            let to = rng.pick(&UNKNOWN_LETTERS);
            Call::both(
                "send_message(unknown letter, str)",
                node,
                "send_message",
                vec![s(to), s(&decision(rng))],
            )
        }
        28..=33 => {
            let to = bad_recipient(rng);
            let d = if rng.percent(80) {
                s(&decision(rng))
            } else {
                non_string(rng, 2)
            };
            Call::both(
                "send_message(bad string recipient, any)",
                node,
                "send_message",
                vec![s(&to), d],
            )
        }
        34..=39 => {
            let to = non_string(rng, 2);
            let d = any_value(rng, 2);
            Call::both(
                "send_message(non-string recipient, any)",
                node,
                "send_message",
                vec![to, d],
            )
        }
        40..=45 => {
            let to = if rng.percent(70) {
                other_node(rng, node).to_string()
            } else {
                rng.pick(&UNKNOWN_LETTERS).to_string()
            };
            let d = non_string(rng, 2);
            if node == 'P' && (to == "R" || to == "S") {
                // The faulty P denies before looking at the decision, on both sides.
                Call::both(
                    "send_message(node, non-string)",
                    node,
                    "send_message",
                    vec![s(&to), d],
                )
            } else {
                // Deliberate divergence (README 3, docs/protocol.md send_message): Python would
                // forward the non-string decision (and the recipient would store it); Rust
                // answers a TypeError fault and sends nothing. Rust cluster only.
                let fault = format!(
                    "<class 'TypeError'>:decision must be a string, not {}",
                    py_type(&d)
                );
                Call {
                    kind: "send_message(node, non-string) [rust only]",
                    node,
                    method: "send_message".into(),
                    params: vec![s(&to), d],
                    route: Route::RustOnlyFault(fault),
                }
            }
        }
        46..=50 => Call::both(
            "send_message(wrong arity)",
            node,
            "send_message",
            wrong_arity(rng),
        ),
        51..=72 => Call::both(
            "receive_message(str, str)",
            node,
            "receive_message",
            vec![s(&sender(rng)), s(&decision(rng))],
        ),
        73..=78 => {
            let (snd, dec) = match rng.below(3) {
                0 => (non_string(rng, 2), s(&decision(rng))),
                1 => (s(&sender(rng)), non_string(rng, 2)),
                _ => (non_string(rng, 2), non_string(rng, 2)),
            };
            // Deliberate divergence (README 3, docs/protocol.md receive_message): Python stores any
            // value (and a stored list breaks its later finalize_decision); Rust answers a
            // TypeError fault (the sender is checked first, on faulty nodes too) and stores
            // nothing. Rust cluster only.
            let fault = match (&snd, &dec) {
                (Value::String(_), d) => format!(
                    "<class 'TypeError'>:decision must be a string, not {}",
                    py_type(d)
                ),
                (v, _) => format!(
                    "<class 'TypeError'>:sender must be a string, not {}",
                    py_type(v)
                ),
            };
            Call {
                kind: "receive_message(non-string) [rust only]",
                node,
                method: "receive_message".into(),
                params: vec![snd, dec],
                route: Route::RustOnlyFault(fault),
            }
        }
        79..=82 => Call::both(
            "receive_message(wrong arity)",
            node,
            "receive_message",
            wrong_arity(rng),
        ),
        83..=88 => Call::both("finalize_decision()", node, "finalize_decision", vec![]),
        89..=91 => {
            let params = (0..1 + rng.below(3)).map(|_| any_value(rng, 1)).collect();
            Call::both("finalize_decision(args)", node, "finalize_decision", params)
        }
        92..=93 => {
            // Deliberate divergence (README 11): Python looks these attributes up on its
            // Process object and fails calling them ('str' object is not callable); Rust says
            // the method is not supported. Rust cluster only.
            let method = rng.pick(PYTHON_ATTRIBUTES);
            let params = (0..rng.below(3)).map(|_| any_value(rng, 1)).collect();
            Call {
                kind: "Process attribute as method [rust only]",
                node,
                method: method.to_string(),
                params,
                route: Route::RustOnlyFault(format!(
                    "<class 'Exception'>:method \"{method}\" is not supported"
                )),
            }
        }
        _ => {
            let method = if rng.percent(75) {
                rng.pick(UNKNOWN_METHODS).to_string()
            } else {
                format!("m{}", random_string(rng, 0, 12))
            };
            let params = (0..rng.below(4)).map(|_| any_value(rng, 1)).collect();
            Call::both("unknown method", node, &method, params)
        }
    }
}

/// Both clusters and what the test learned so far.
struct Harness {
    seed: u64,
    py_base: u16,
    rs_base: u16,
    /// What every loyal Rust node must have stored (Python's state is the same by construction).
    model: BTreeMap<char, BTreeMap<String, String>>,
    counts: BTreeMap<&'static str, usize>,
    calls: usize,
    mismatches: Vec<String>,
}

type Answer = Result<Value, (i32, String)>;

fn show_params(params: &[Value]) -> String {
    let shown: Vec<String> = params.iter().map(|p| format!("{p:?}")).collect();
    shown.join(", ")
}

impl Harness {
    fn py(&self, node: char, method: &str, params: &[Value]) -> Answer {
        call(port_of(self.py_base, node), method, params)
    }

    fn rs(&self, node: char, method: &str, params: &[Value]) -> Answer {
        call(port_of(self.rs_base, node), method, params)
    }

    fn mismatch(&mut self, what: String) {
        self.mismatches
            .push(format!("seed {:#x}, {what}", self.seed));
    }

    fn run(&mut self, c: &Call) {
        let index = self.calls;
        self.calls += 1;
        *self.counts.entry(c.kind).or_default() += 1;
        let shown = format!(
            "call #{index} to {}: {:?}({})",
            c.node,
            c.method,
            show_params(&c.params)
        );
        match &c.route {
            Route::Both => {
                let py = self.py(c.node, &c.method, &c.params);
                let rs = self.rs(c.node, &c.method, &c.params);
                if py != rs {
                    self.mismatch(format!("{shown}\n  python: {py:?}\n  rust:   {rs:?}"));
                    return;
                }
                if rs.is_ok() {
                    self.learn(c);
                }
            }
            Route::RustOnlyFault(expected) => {
                let before = self.rust_states();
                let rs = self.rs(c.node, &c.method, &c.params);
                let want: Answer = Err((1, expected.clone()));
                if rs != want {
                    self.mismatch(format!(
                        "{shown} [rust only]\n  expected: {want:?}\n  rust:     {rs:?}"
                    ));
                }
                let after = self.rust_states();
                if before != after {
                    self.mismatch(format!(
                        "{shown} [rust only] changed Rust state\n  before: {before:?}\n  after:  {after:?}"
                    ));
                }
            }
        }
    }

    /// Update the model after a call both clusters answered with the same value.
    fn learn(&mut self, c: &Call) {
        let strings: Vec<&str> = c
            .params
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        if c.params.len() != 2 || strings.len() != 2 {
            return;
        }
        let (a, b) = (strings[0], strings[1]);
        match c.method.as_str() {
            "receive_message" if c.node != FAULTY => {
                self.model
                    .entry(c.node)
                    .or_default()
                    .insert(a.to_string(), b.to_string());
            }
            "send_message" => {
                let denied = c.node == FAULTY && (a == "R" || a == "S");
                let mut chars = a.chars();
                if let (Some(to), None) = (chars.next(), chars.next())
                    && !denied
                    && to != FAULTY
                    && NODES.contains(&to)
                {
                    self.model
                        .entry(to)
                        .or_default()
                        .insert(c.node.to_string(), b.to_string());
                }
            }
            _ => {}
        }
    }

    /// The raw `get_messages` answer of one Rust node (our extension, README 12: Python has no
    /// such method, so it is never sent to the Python cluster). Raw, because the struct may
    /// hold a sender "" (`<name></name>`), which `dxr` cannot decode.
    fn rust_state(&self, node: char) -> String {
        let body = generals::peer::call_body("get_messages", &[]).unwrap();
        let (status, _, answer) = post(port_of(self.rs_base, node), "/", body.as_bytes());
        assert_eq!(status, 200, "get_messages on {node}");
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// [`Harness::rust_state`] of every node.
    fn rust_states(&self) -> Vec<String> {
        NODES.iter().map(|&n| self.rust_state(n)).collect()
    }

    /// finalize_decision on every node of both clusters, and the Rust state against the model.
    fn checkpoint(&mut self) {
        for node in NODES {
            self.run(&Call::both(
                "finalize_decision() [checkpoint]",
                node,
                "finalize_decision",
                vec![],
            ));
        }
        for node in NODES {
            let want: BTreeMap<String, Value> = self
                .model
                .get(&node)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
                .unwrap_or_default();
            let want = generals::xmlrpc::encode_response(&Value::Struct(want));
            let got = self.rust_state(node);
            if got != want {
                self.mismatch(format!(
                    "after call #{}: Rust state of {node} is not what the calls stored\n  expected: {want}\n  rust:     {got}",
                    self.calls
                ));
            }
        }
    }

    /// A malformed body to the same node of both: fault 1 with expat's class prefix on both
    /// (the message after the prefix differs by design, README 5).
    fn malformed(&mut self, node: char, body: &[u8]) {
        let index = self.calls;
        self.calls += 1;
        *self.counts.entry("malformed body").or_default() += 1;
        let py = call_body(port_of(self.py_base, node), body);
        let rs = call_body(port_of(self.rs_base, node), body);
        let ok = |a: &Answer| matches!(a, Err((1, f)) if f.starts_with(EXPAT_PREFIX));
        if !ok(&py) || !ok(&rs) {
            self.mismatch(format!(
                "call #{index} to {node}: malformed body {:?}: want fault 1 {EXPAT_PREFIX}...\n  python: {py:?}\n  rust:   {rs:?}",
                String::from_utf8_lossy(body)
            ));
        }
    }
}

#[test]
fn python_and_rust_clusters_answer_the_same() {
    let seed = seed();
    let python = Cluster::builder().server(Side::Python, &[]).start();
    let rust = Cluster::rust(&[]);
    let (py_base, rs_base) = (python.base, rust.base);

    let mut h = Harness {
        seed,
        py_base,
        rs_base,
        model: BTreeMap::new(),
        counts: BTreeMap::new(),
        calls: 0,
        mismatches: Vec::new(),
    };
    let mut rng = Rng::new(seed);

    // Nothing stored yet: P answers `faulty`, the others max()'s ValueError.
    h.checkpoint();

    // A deliberate two-way tie on R (and a three-way one on S): both sides give it to the
    // smallest value in code-point order (README 4).
    for (node, snd, dec) in [
        ('R', "tie-1", "retreat"),
        ('R', "tie-2", "attack"),
        ('S', "tie-1", "zulu"),
        ('S', "tie-2", "Ωμέγα"),
        ('S', "tie-3", "alpha"),
    ] {
        h.run(&Call::both(
            "receive_message(str, str) [tie]",
            node,
            "receive_message",
            vec![s(snd), s(dec)],
        ));
    }
    for (node, want) in [('R', "attack"), ('S', "alpha")] {
        h.run(&Call::both(
            "finalize_decision() [tie]",
            node,
            "finalize_decision",
            vec![],
        ));
        // Equal answers are not enough here: both must follow the rule.
        let answers = [
            ("python", h.py(node, "finalize_decision", &[])),
            ("rust", h.rs(node, "finalize_decision", &[])),
        ];
        for (side, got) in answers {
            if got != Ok(s(want)) {
                h.mismatch(format!(
                    "tie on {node}: {side} answered {got:?}, want {want:?} (smallest tied value)"
                ));
            }
        }
    }

    // Fixed edge cases, before the random ones: docs/protocol.md's fault table, plus names the
    // XML-RPC spec allows to be empty or blank (a method name, a struct member name).
    let one = || Value::Integer(1);
    let blank_struct = |key: &str| Value::Struct(BTreeMap::from([(key.to_string(), one())]));
    let fixed: Vec<(char, &str, Vec<Value>)> = vec![
        ('Q', "nope", vec![]),
        ('Q', "_private", vec![]),
        ('Q', "send_message.x", vec![s("R"), s("attack")]),
        ('Q', "system.listMethods", vec![]),
        ('Q', "", vec![]),
        ('R', " ", vec![s("R")]),
        ('Q', "send_message", vec![]),
        ('Q', "send_message", vec![s("R")]),
        ('Q', "send_message", vec![s("R"), s("attack"), s("x")]),
        ('Q', "receive_message", vec![]),
        ('Q', "receive_message", vec![s("A")]),
        ('Q', "receive_message", vec![s("A"), s("b"), s("c")]),
        ('Q', "finalize_decision", vec![one()]),
        ('Q', "send_message", vec![s("T"), s("attack")]),
        ('Q', "send_message", vec![s(""), s("attack")]),
        ('Q', "send_message", vec![s("QQ"), s("attack")]),
        ('Q', "send_message", vec![Value::Integer(5), s("attack")]),
        ('S', "send_message", vec![blank_struct(""), s("attack")]),
        ('S', "send_message", vec![blank_struct(" "), s("attack")]),
        ('S', "finalize_decision", vec![blank_struct("")]),
    ];
    for (node, method, params) in fixed {
        h.run(&Call::both("fixed edge case", node, method, params));
    }

    h.malformed(rng.pick(&NODES), b"garbage<");

    for i in 1..=RANDOM_CALLS {
        if rng.below(100) < 3 {
            let body = rng.pick(MALFORMED_BODIES);
            h.malformed(rng.pick(&NODES), body);
        }
        let c = generate(&mut rng);
        h.run(&c);
        if i % CHECKPOINT_EVERY == 0 {
            h.checkpoint();
        }
    }
    for body in MALFORMED_BODIES {
        h.malformed(rng.pick(&NODES), body);
    }
    h.checkpoint();

    let mut summary = format!("seed {seed:#x}: {} calls\n", h.calls);
    for (kind, n) in &h.counts {
        let _ = writeln!(summary, "  {n:4}  {kind}");
    }
    eprintln!("{summary}");
    if !h.mismatches.is_empty() {
        let shown: Vec<&str> = h.mismatches.iter().take(30).map(String::as_str).collect();
        panic!(
            "{} mismatch(es) between the Python and the Rust cluster (rerun with DIFFERENTIAL_SEED={seed:#x}):\n{}\n\n{summary}",
            h.mismatches.len(),
            shown.join("\n")
        );
    }
}
