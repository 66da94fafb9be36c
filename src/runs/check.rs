//! `client check`: docs/protocol.md as rows a cluster of ANY implementation is run against,
//! one row per promise of the contract (the transport, the three methods, the faults, the
//! original run's outcome), and docs/protocol-extensions.md's when the nodes claim the
//! extension through `node_info`. Each row is a few requests to named roles of the cluster (a
//! loyal node, another one, a faulty one, the faulty P that denies R and S), each with the
//! answer the contract gives; a row that may differ as one of the README's divergences says
//! so and which answer the original gives instead.
//!
//! The rows run in a fixed order that keeps every node's store known: the empty-store row
//! first (a freshly started cluster), then the rows that only ask, the original run (which
//! stores `attack` from every sender), the rows that overwrite what it stored, the extension,
//! and last, one at a time with a short timeout, the two calls that hang the original (a
//! self-send, a peer that never answers), so that a node stuck in one spoils nothing after
//! it. Rows that store messages say so ([`Row::writes`]).
//!
//! The same rows, as requests and expected answers without a server, are the golden
//! transcripts of `docs/conformance/` ([`transcripts`]), which any implementation's own test
//! suite can replay.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use dxr::{Fault, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::driver::{self, RunOptions};
use crate::agreement::checker::Verdict;
use crate::calls::{Call, Driven, Method, Protocol, Secret, TraceAccess};
use crate::cluster::Cluster;
use crate::protocol::{self, fault};
use crate::xmlrpc;

/// Where a row's requests go: roles of the cluster, named at [`Topology::roles`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// The first loyal node.
    Loyal,
    /// The second loyal node.
    Other,
    /// The first faulty node.
    Faulty,
    /// The faulty node named P, which denies R and S.
    Denier,
}

/// The cluster as the check sees it: the nodes in order, which are faulty, and where they
/// are.
#[derive(Debug, Clone)]
pub(crate) struct Topology {
    /// Every node, in order.
    pub(crate) nodes: Vec<String>,
    /// The faulty ones (the original's sense).
    pub(crate) faulty: BTreeSet<String>,
    /// Each node's URL.
    pub(crate) urls: BTreeMap<String, String>,
}

impl Topology {
    /// The node of each role, when the cluster has one.
    pub(crate) fn roles(&self) -> BTreeMap<Role, String> {
        let loyal: Vec<&String> = (self.nodes.iter())
            .filter(|n| !self.faulty.contains(*n))
            .collect();
        let mut out = BTreeMap::new();
        if let Some(l) = loyal.first() {
            out.insert(Role::Loyal, l.to_string());
        }
        if let Some(l) = loyal.get(1) {
            out.insert(Role::Other, l.to_string());
        }
        if let Some(f) = self.nodes.iter().find(|n| self.faulty.contains(*n)) {
            out.insert(Role::Faulty, f.clone());
        }
        let p = protocol::ORIGINAL_FAULTY;
        if self.faulty.contains(p) && self.nodes.iter().any(|n| n == p) {
            out.insert(Role::Denier, p.to_string());
        }
        out
    }
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Request {
    /// An XML-RPC call as Python's client writes it, POSTed to `path`.
    Call {
        /// `/RPC2` or `/`.
        path: &'static str,
        /// The method name (any string: rows call methods that do not exist).
        method: String,
        /// Its params.
        params: Vec<Value>,
    },
    /// Bytes no well-behaved client writes: a `POST` of `body` (or a `GET` without one).
    Raw {
        /// `POST` or `GET`.
        verb: &'static str,
        /// The request target.
        path: &'static str,
        /// Headers besides Host, Content-Length and Connection.
        headers: Vec<(&'static str, &'static str)>,
        /// The body.
        body: Vec<u8>,
    },
}

impl Request {
    fn call(method: impl Into<String>, params: Vec<Value>) -> Request {
        Request::Call {
            path: "/RPC2",
            method: method.into(),
            params,
        }
    }

    fn body(&self) -> Vec<u8> {
        match self {
            Request::Call { method, params, .. } => python_call(method, params).into_bytes(),
            Request::Raw { body, .. } => body.clone(),
        }
    }

    /// The whole HTTP request for `host:port`, as it goes on the wire.
    fn http(&self, authority: &str) -> Vec<u8> {
        let body = self.body();
        let (verb, path, headers): (&str, &str, Vec<(&str, &str)>) = match self {
            Request::Call { path, .. } => ("POST", path, vec![("Content-Type", "text/xml")]),
            Request::Raw {
                verb,
                path,
                headers,
                ..
            } => (verb, path, headers.clone()),
        };
        let mut head = format!("{verb} {path} HTTP/1.1\r\nHost: {authority}\r\n");
        for (k, v) in headers {
            let _ = write!(head, "{k}: {v}\r\n");
        }
        if verb == "POST" {
            let _ = write!(head, "Content-Length: {}\r\n", body.len());
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&body);
        out
    }

    /// A curl command that sends it to `url` (the node's base URL).
    fn curl(&self, url: &str) -> String {
        let base = url.trim_end_matches('/');
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        match self {
            Request::Call { path, .. } => format!(
                "curl -s -H 'Content-Type: text/xml' --data-binary {} {base}{path}",
                quote(&String::from_utf8_lossy(&self.body()))
            ),
            Request::Raw {
                verb: "GET", path, ..
            } => format!("curl -s -i {base}{path}"),
            Request::Raw {
                path,
                headers,
                body,
                ..
            } => {
                let mut cmd = String::from("curl -s -i");
                for (k, v) in headers {
                    let _ = write!(cmd, " -H {}", quote(&format!("{k}: {v}")));
                }
                let shown = match std::str::from_utf8(body) {
                    Ok(text) => quote(text),
                    Err(_) => format!("\"$(printf '{}')\"", printf_bytes(body)),
                };
                format!("{cmd} --data-binary {shown} {base}{path}")
            }
        }
    }
}

/// `bytes` for a shell's `printf`: printable ASCII as it is, the rest as `\ooo`.
fn printf_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b'\'' | b'\\' | b'%' => format!("\\{b:03o}"),
            0x20..=0x7e => (b as char).to_string(),
            _ => format!("\\{b:03o}"),
        })
        .collect()
}

/// A `methodCall` in the layout Python's `xmlrpc.client` writes (docs/protocol.md, section 2).
pub(crate) fn python_call(method: &str, params: &[Value]) -> String {
    let mut out = String::from("<?xml version='1.0'?>\n<methodCall>\n<methodName>");
    out.push_str(method);
    out.push_str("</methodName>\n<params>\n");
    for p in params {
        out.push_str("<param>\n");
        out.push_str(&xmlrpc::encode_value(p));
        out.push_str("</param>\n");
    }
    out.push_str("</params>\n</methodCall>\n");
    out
}

/// What an answer must be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expect {
    /// HTTP 200 and this value.
    Value(Value),
    /// HTTP 200 and a fault with code 1 and this string.
    Fault(String),
    /// HTTP 200 and a fault with code 1 whose string starts with this.
    FaultStartingWith(String),
    /// HTTP 200 and any fault.
    AnyFault,
    /// This HTTP status, and this body when given.
    Status(u16, Option<String>),
    /// HTTP 200 and a struct with at least these members of these types (`string`,
    /// `boolean`), and these values where given.
    Struct(Vec<(&'static str, &'static str, Option<Value>)>),
    /// HTTP 200 and an array.
    AnyArray,
}

impl Expect {
    fn string(s: impl Into<String>) -> Expect {
        Expect::Value(Value::String(s.into()))
    }

    fn fault(f: fault::PyFault) -> Expect {
        Expect::Fault(f.into_string())
    }

    /// What it says, for a report line.
    fn describe(&self) -> String {
        match self {
            Expect::Value(v) => shown(v),
            Expect::Fault(s) => format!("fault {s:?}"),
            Expect::FaultStartingWith(s) => format!("a fault starting {s:?}"),
            Expect::AnyFault => "a fault".into(),
            Expect::Status(code, Some(body)) => format!("HTTP {code} {body:?}"),
            Expect::Status(code, None) => format!("HTTP {code}"),
            Expect::Struct(members) => {
                let names: Vec<&str> = members.iter().map(|m| m.0).collect();
                format!("a struct with {}", names.join(", "))
            }
            Expect::AnyArray => "an array".into(),
        }
    }
}

/// A value as a report shows it: a string quoted, anything else as Python's `str()`.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => protocol::python_str(other),
    }
}

/// One request of a row and the answer it must get, or a whole agreement run.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Ask `node` and compare its answer.
    Ask {
        /// Who is asked.
        node: String,
        /// What.
        request: Request,
        /// The answer the contract gives.
        expect: Expect,
    },
    /// An OM(1) run among the cluster commanded by `commander`, driven as `client om` drives
    /// it: its verdict must not be `violated`.
    Run {
        /// The commander.
        commander: String,
    },
}
/// A documented difference: the answer the original (or another implementation the README
/// names) gives instead, and which divergence of the README says why.
#[derive(Debug, Clone)]
pub(crate) struct Documented {
    /// The README's divergence number.
    pub(crate) divergence: u8,
    /// Why, in a few words.
    pub(crate) why: &'static str,
    /// What is then answered; `None`: no answer within the row's timeout (a hang).
    pub(crate) instead: Option<Expect>,
}

/// Which contract a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Contract {
    /// docs/protocol.md: the original's three methods and their wire.
    Original,
    /// docs/protocol-extensions.md: ours, when the nodes claim it.
    Extensions,
}

/// One row of the contract.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Its id, `section.what` (stable: JUnit test names, transcript names).
    pub(crate) id: String,
    /// Which document.
    pub(crate) contract: Contract,
    /// What it checks.
    pub(crate) title: String,
    /// Whether it stores messages on a node.
    pub(crate) writes: bool,
    /// Its requests, in order; the row passes when each gets its answer.
    pub(crate) steps: Vec<Step>,
    /// A documented difference it may show instead.
    pub(crate) documented: Option<Documented>,
    /// It hangs the original: run last, with [`HANG_TIMEOUT`].
    pub(crate) hangs: bool,
    /// What the check itself must arrange around it.
    pub(crate) needs: Option<Needs>,
}

/// What the check arranges for a row: a port the port rule sends a node's call to, free or
/// held by a peer that accepts and never answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Nothing may listen on this port (the row is skipped if something does).
    Nobody(u16),
    /// The check listens on this port and never answers, for the row's length.
    Silent(u16),
}

/// How long a call of a hanging row is given.
pub(crate) const HANG_TIMEOUT: Duration = Duration::from_secs(5);
/// How long any other call is given.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(20);

fn s(v: &str) -> Value {
    Value::String(v.into())
}

/// The contract's rows for `t`, in the order they run. Rows whose roles the cluster lacks
/// are left out (and listed by [`missing_roles`]).
pub(crate) fn rows(t: &Topology, extensions: bool) -> Vec<Row> {
    let roles = t.roles();
    let mut b = Rows::default();
    let (Some(l), other) = (roles.get(&Role::Loyal), roles.get(&Role::Other)) else {
        return b.0;
    };
    let send = Method::SendMessage.name();
    let receive = Method::ReceiveMessage.name();
    let finalize = Method::FinalizeDecision.name();

    // The empty store first: the node must be fresh.
    b.original(
        "methods.finalize.empty",
        "finalize_decision() with nothing stored fails as max() of nothing",
        false,
    )
    .ask(
        l,
        Request::call(finalize, vec![]),
        Expect::fault(fault::empty_majority()),
    );

    // Transport (section 2): asked of the loyal node, changing nothing.
    let nope = || python_call("nope", &[]).into_bytes();
    let unsupported = || Expect::fault(fault::unsupported_method("nope"));
    b.original(
        "transport.rpc2",
        "a call POSTed to /RPC2 is answered (ServerProxy(\"http://host:port\"))",
        false,
    )
    .ask(l, Request::call("nope", vec![]), unsupported());
    b.original(
        "transport.root",
        "a call POSTed to / is answered (ServerProxy(\"http://host:port/\"))",
        false,
    )
    .ask(
        l,
        Request::Call {
            path: "/",
            method: "nope".into(),
            params: vec![],
        },
        unsupported(),
    );
    b.original(
        "transport.other-path",
        "a POST to another path is HTTP 404 \"No such page\"",
        false,
    )
    .ask(
        l,
        Request::Raw {
            verb: "POST",
            path: "/other",
            headers: vec![("Content-Type", "text/xml")],
            body: nope(),
        },
        Expect::Status(404, Some(protocol::NO_SUCH_PAGE.into())),
    );
    b.original("transport.get", "a GET is HTTP 501", false).ask(
        l,
        Request::Raw {
            verb: "GET",
            path: "/RPC2",
            headers: vec![],
            body: vec![],
        },
        Expect::Status(501, None),
    );
    b.original("transport.untyped-value", "an untyped <value>QQ</value> is a string (its ord() fault)", false)
        .ask(
            l,
            Request::Raw {
                verb: "POST",
                path: "/RPC2",
                headers: vec![("Content-Type", "text/xml")],
                body: b"<?xml version='1.0'?>\n<methodCall>\n<methodName>send_message</methodName>\n<params>\n<param>\n<value>QQ</value>\n</param>\n<param>\n<value>attack</value>\n</param>\n</params>\n</methodCall>\n".to_vec(),
            },
            Expect::fault(fault::ord_length(2)),
        );
    b.original(
        "transport.gzip-request",
        "a request body with Content-Encoding: gzip is read",
        false,
    )
    .ask(
        l,
        Request::Raw {
            verb: "POST",
            path: "/RPC2",
            headers: vec![("Content-Type", "text/xml"), ("Content-Encoding", "gzip")],
            body: gzip(&nope()),
        },
        unsupported(),
    );

    // Faults (section 4): none stores anything.
    for name in ["nope", "_private", "send_message.x", "system.listMethods"] {
        b.original(
            &format!(
                "faults.unknown-method.{}",
                name.replace(['.', '_'], "-").trim_matches('-')
            ),
            &format!("{name}() is not supported"),
            false,
        )
        .ask(
            l,
            Request::call(name, vec![]),
            Expect::fault(fault::unsupported_method(name)),
        );
    }
    let arity: [(&str, &str, Vec<Value>, fault::PyFault); 7] = [
        (
            "send",
            "send_message()",
            vec![],
            fault::missing_arguments(send, &["recipient_name", "decision"]),
        ),
        (
            "send-one",
            "send_message('R')",
            vec![s("R")],
            fault::missing_arguments(send, &["decision"]),
        ),
        (
            "send-three",
            "send_message('R', 'attack', 'x')",
            vec![s("R"), s("attack"), s("x")],
            fault::too_many_arguments(send, 3, 4),
        ),
        (
            "receive",
            "receive_message()",
            vec![],
            fault::missing_arguments(receive, &["sender", "decision"]),
        ),
        (
            "receive-one",
            "receive_message('A')",
            vec![s("A")],
            fault::missing_arguments(receive, &["decision"]),
        ),
        (
            "receive-three",
            "receive_message('A', 'b', 'c')",
            vec![s("A"), s("b"), s("c")],
            fault::too_many_arguments(receive, 3, 4),
        ),
        (
            "finalize-one",
            "finalize_decision(1)",
            vec![Value::Integer(1)],
            fault::too_many_arguments(finalize, 1, 2),
        ),
    ];
    for (id, title, params, f) in arity {
        let method = title.split('(').next().unwrap_or(title).to_string();
        b.original(
            &format!("faults.arity.{id}"),
            &format!("{title} is Python's TypeError"),
            false,
        )
        .ask(l, Request::call(method, params), Expect::fault(f));
    }
    let ord: [(&str, &str, Value, fault::PyFault); 3] = [
        ("empty", "''", s(""), fault::ord_length(0)),
        ("two", "'QQ'", s("QQ"), fault::ord_length(2)),
        ("int", "5", Value::Integer(5), fault::ord_type("int")),
    ];
    for (id, shown, recipient, f) in ord {
        b.original(
            &format!("faults.ord.{id}"),
            &format!("send_message({shown}, 'attack') is ord()'s TypeError"),
            false,
        )
        .ask(
            l,
            Request::call(send, vec![recipient, s("attack")]),
            Expect::fault(f),
        );
    }
    if let Some((stranger, port)) = stranger(t, l) {
        let row = b.original(
            "faults.refused",
            &format!("send_message('{stranger}', 'attack'), nothing listening at {stranger}'s port, is ConnectionRefusedError"),
            false,
        );
        row.ask(
            l,
            Request::call(send, vec![s(&stranger), s("attack")]),
            Expect::fault(fault::connection_refused()),
        );
        row.needs = Some(Needs::Nobody(port));
    }
    let raw = |body: &str| Request::Raw {
        verb: "POST",
        path: "/RPC2",
        headers: vec![("Content-Type", "text/xml")],
        body: body.as_bytes().to_vec(),
    };
    let bodies: [(&str, &str, &str, Expect); 8] = [
        (
            "not-xml",
            "a body that is not XML",
            "garbage<",
            Expect::FaultStartingWith("<class 'xml.parsers.expat.ExpatError'>:".into()),
        ),
        (
            "no-method-name",
            "a call without <methodName>",
            "<?xml version='1.0'?>\n<methodCall>\n<params>\n</params>\n</methodCall>\n",
            Expect::fault(fault::unsupported_method("None")),
        ),
        (
            "neither",
            "a document with neither <methodName> nor <params>",
            "<?xml version='1.0'?>\n<methodCall>\n</methodCall>\n",
            Expect::Fault("<class 'xmlrpc.client.ResponseError'>:ResponseError()".into()),
        ),
        (
            "unknown-tag",
            "a value of an unknown type",
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>nope</methodName>\n<params>\n<param>\n<value><foo>x</foo></value>\n</param>\n</params>\n</methodCall>\n",
            Expect::Fault(
                "<class 'xmlrpc.client.ResponseError'>:ResponseError(\"unknown tag 'foo'\")".into(),
            ),
        ),
        (
            "nameless-member",
            "a struct member without a name",
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>nope</methodName>\n<params>\n<param>\n<value><struct><member><value><int>1</int></value></member></struct></value>\n</param>\n</params>\n</methodCall>\n",
            Expect::Fault("<class 'IndexError'>:list index out of range".into()),
        ),
        (
            "boolean",
            "<boolean>2</boolean>",
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>nope</methodName>\n<params>\n<param>\n<value><boolean>2</boolean></value>\n</param>\n</params>\n</methodCall>\n",
            Expect::Fault("<class 'TypeError'>:bad boolean value".into()),
        ),
        (
            "int",
            "<int>abc</int>",
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>nope</methodName>\n<params>\n<param>\n<value><int>abc</int></value>\n</param>\n</params>\n</methodCall>\n",
            Expect::Fault(
                "<class 'ValueError'>:invalid literal for int() with base 10: 'abc'".into(),
            ),
        ),
        (
            "base64",
            "<base64>QQ=</base64>",
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>nope</methodName>\n<params>\n<param>\n<value><base64>QQ=</base64></value>\n</param>\n</params>\n</methodCall>\n",
            Expect::Fault("<class 'binascii.Error'>:Incorrect padding".into()),
        ),
    ];
    for (id, title, body, expect) in bodies {
        b.original(
            &format!("faults.body.{id}"),
            &format!("{title} is answered with Python's fault"),
            false,
        )
        .ask(l, raw(body), expect);
    }

    // The denial (section 3): asks, stores nothing.
    if roles.contains_key(&Role::Denier) {
        let p = protocol::ORIGINAL_FAULTY;
        for to in protocol::DENIED_BY_P
            .into_iter()
            .filter(|n| t.nodes.iter().any(|x| x == n))
        {
            b.original(
                &format!("methods.send.denied-{}", to.to_lowercase()),
                &format!("the faulty P denies {to}: send_message('{to}', 'attack') on P"),
                false,
            )
            .ask(
                p,
                Request::call(send, vec![s(to), s("attack")]),
                Expect::string(protocol::denied_reply(p, to)),
            );
        }
    }
    // The faulty node (section 3).
    if let Some(f) = roles.get(&Role::Faulty) {
        b.original(
            "methods.faulty.ignores",
            &format!("the faulty {f} ignores a receive_message"),
            false,
        )
        .ask(
            f,
            Request::call(receive, vec![s("A"), s("attack")]),
            Expect::string(protocol::ignored_reply(f, "A")),
        );
        b.original(
            "methods.faulty.finalize",
            &format!("the faulty {f} finalizes 'faulty'"),
            false,
        )
        .ask(
            f,
            Request::call(finalize, vec![]),
            Expect::string(protocol::FAULTY_DECISION),
        );
    }

    // The original run (section 5): every node sends attack to every other, then finalizes.
    let run = b.original(
        "run.original",
        "the original run: every node sends 'attack' to every other, then each finalizes (client.py's outcome)",
        true,
    );
    let stores = original_stores(t);
    for from in &t.nodes {
        for to in t.nodes.iter().filter(|n| *n != from) {
            let denied = t.faulty.contains(from)
                && from == protocol::ORIGINAL_FAULTY
                && protocol::DENIED_BY_P.contains(&to.as_str());
            let answer = match denied {
                true => protocol::denied_reply(from, to),
                false => protocol::sent_line(from, "attack", to),
            };
            run.ask(
                from,
                Request::call(send, vec![s(to), s("attack")]),
                Expect::string(answer),
            );
        }
    }
    for node in &t.nodes {
        let decision = if t.faulty.contains(node) {
            protocol::FAULTY_DECISION
        } else if stores.get(node).is_some_and(|s| !s.is_empty()) {
            "attack"
        } else {
            continue;
        };
        run.ask(
            node,
            Request::call(finalize, vec![]),
            Expect::string(decision),
        );
    }

    // Majority, replacement, repeat (section 3), on what the original run stored.
    let senders: Vec<String> = stores.get(l).cloned().unwrap_or_default();
    if senders.len() >= 3 {
        let row = b.original(
            "methods.finalize.majority",
            &format!("{l} takes the majority, not the first message: {} stays 'attack', the others say 'retreat'", senders[0]),
            true,
        );
        for sender in &senders[1..] {
            row.ask(
                l,
                Request::call(receive, vec![s(sender), s("retreat")]),
                Expect::string(protocol::received_line(l, "retreat", sender)),
            );
        }
        row.ask(
            l,
            Request::call(finalize, vec![]),
            Expect::string("retreat"),
        );
        let row = b.original(
            "methods.finalize.replaced",
            &format!(
                "a sender's second message replaces its first: the others say 'attack' again on {l}"
            ),
            true,
        );
        for sender in &senders[1..] {
            row.ask(
                l,
                Request::call(receive, vec![s(sender), s("attack")]),
                Expect::string(protocol::received_line(l, "attack", sender)),
            );
        }
        row.ask(l, Request::call(finalize, vec![]), Expect::string("attack"));
        b.original(
            "methods.finalize.again",
            &format!("finalize_decision() on {l} again gives the same answer"),
            false,
        )
        .ask(l, Request::call(finalize, vec![]), Expect::string("attack"));
    }
    if let Some(o) = other {
        let mut senders = stores.get(o).cloned().unwrap_or_default();
        if senders.len() % 2 == 1 {
            senders.push("tie".into());
        }
        if !senders.is_empty() {
            let half = senders.len() / 2;
            let row = b.original(
                "methods.finalize.tie",
                &format!("a tie on {o} goes to the smallest value ('attack' over 'retreat')"),
                true,
            );
            for (i, sender) in senders.iter().enumerate() {
                let v = if i < half { "attack" } else { "retreat" };
                row.ask(
                    o,
                    Request::call(receive, vec![s(sender), s(v)]),
                    Expect::string(protocol::received_line(o, v, sender)),
                );
            }
            row.ask(o, Request::call(finalize, vec![]), Expect::string("attack"));
            row.documented = Some(Documented {
                divergence: 4,
                why: "the original's pick of a tie follows Python's string hashing, which changes from run to run",
                instead: Some(Expect::string("retreat")),
            });
        }
        b.original(
            "methods.receive.xml-specials",
            &format!("XML specials in a sender and a decision come back as they went, on {o}"),
            true,
        )
        .ask(
            o,
            Request::call(receive, vec![s("A&B"), s("<&>\"'")]),
            Expect::string(protocol::received_line(o, "<&>\"'", "A&B")),
        );
        b.original(
            "methods.send.forwarded",
            &format!("send_message('{o}', 'attack') on {l} reaches {o} and answers the sent line"),
            true,
        )
        .ask(
            l,
            Request::call(send, vec![s(o), s("attack")]),
            Expect::string(protocol::sent_line(l, "attack", o)),
        );
    }

    if extensions {
        extension_rows(t, &roles, &mut b);
    }

    // Last, one at a time: what hangs the original.
    if let Some(o) = other {
        let row = b.original(
            "hangs.self-send",
            &format!("send_message('{o}', 'attack') on {o} itself stores its own message"),
            true,
        );
        row.ask(
            o,
            Request::call(send, vec![s(o), s("attack")]),
            Expect::string(protocol::sent_line(o, "attack", o)),
        );
        row.hangs = true;
        row.documented = Some(Documented {
            divergence: 1,
            why: "a self-send deadlocks a single-threaded Python node forever",
            instead: None,
        });
    }
    if let Some((stranger, port)) = stranger(t, l) {
        let row = b.original(
            "hangs.silent-peer",
            &format!("send_message('{stranger}', 'attack') on {l}, a peer at {stranger}'s port that never answers, fails"),
            false,
        );
        row.ask(
            l,
            Request::call(send, vec![s(&stranger), s("attack")]),
            Expect::AnyFault,
        );
        row.hangs = true;
        row.needs = Some(Needs::Silent(port));
        row.documented = Some(Documented {
            divergence: 2,
            why: "the original waits for a peer forever",
            instead: None,
        });
    }
    b.0
}

/// The extension's rows (docs/protocol-extensions.md), asked of the loyal node.
fn extension_rows(t: &Topology, roles: &BTreeMap<Role, String>, b: &mut Rows) {
    let Some(l) = roles.get(&Role::Loyal) else {
        return;
    };
    let multicall = Method::Multicall.name();
    b.extension(
        "ext.node-info",
        &format!("node_info() on {l}: its name, behaviour, traitor flag and SM key"),
        false,
    )
    .ask(
        l,
        Request::call(Method::NodeInfo.name(), vec![]),
        Expect::Struct(vec![
            ("name", "string", Some(s(l))),
            ("behaviour", "string", None),
            ("traitor", "boolean", Some(Value::Boolean(false))),
        ]),
    );
    let entry = |m: &str, params: Value| {
        Value::Struct(
            [
                ("methodName".to_string(), s(m)),
                ("params".to_string(), params),
            ]
            .into(),
        )
    };
    b.extension(
        "ext.multicall.batch",
        "system.multicall runs each call and answers [value] or a fault struct per call",
        false,
    )
    .ask(
        l,
        Request::call(
            multicall,
            vec![Value::Array(vec![entry("nope", Value::Array(vec![]))])],
        ),
        Expect::Value(Value::Array(vec![Value::Struct(
            [
                ("faultCode".to_string(), Value::Integer(1)),
                (
                    "faultString".to_string(),
                    s(fault::unsupported_method("nope").as_str()),
                ),
            ]
            .into(),
        )])),
    );
    b.extension(
        "ext.multicall.no-method-name",
        "a system.multicall entry without methodName fails the whole call",
        false,
    )
    .ask(
        l,
        Request::call(
            multicall,
            vec![Value::Array(vec![Value::Struct(
                [("params".to_string(), Value::Array(vec![]))].into(),
            )])],
        ),
        Expect::fault(fault::key_error("methodName")),
    );
    b.extension(
        "ext.multicall.string",
        "system.multicall of a string fails the whole call",
        false,
    )
    .ask(
        l,
        Request::call(multicall, vec![s("AB")]),
        Expect::Fault("<class 'TypeError'>:string indices must be integers, not 'str'".into()),
    );
    b.extension(
        "ext.multicall.string-params",
        "a system.multicall entry whose params is \"AB\" runs as receive_message('A', 'B')",
        true,
    )
    .ask(
        l,
        Request::call(
            multicall,
            vec![Value::Array(vec![entry(
                Method::ReceiveMessage.name(),
                s("AB"),
            )])],
        ),
        Expect::Value(Value::Array(vec![Value::Array(vec![s(
            &protocol::received_line(l, "B", "A"),
        )])])),
    );
    let start = Method::Start(Protocol::Om);
    b.extension(
        "ext.om-start.arity",
        "om_start() lists its parameters in its TypeError",
        false,
    )
    .ask(
        l,
        Request::call(start.name(), vec![]),
        Expect::Fault(format!(
            "<class 'TypeError'>:{}({}) takes {} arguments but 0 were given",
            start.name(),
            start.params().join(", "),
            start.params().len()
        )),
    );
    let (method, params) = Call::Decide(Driven {
        protocol: Protocol::Om,
        run: "check-no-such-run".into(),
        capability: Secret([7; crate::calls::SECRET_BYTES]),
    })
    .into_wire();
    b.extension(
        "ext.om-decide.unknown-run",
        "om_decide of a run the node does not hold is a KeyError",
        false,
    )
    .ask(
        l,
        Request::call(method.name(), params),
        Expect::Fault("<class 'KeyError'>:unknown run 'check-no-such-run'".into()),
    );
    b.extension(
        "ext.om-order.capability",
        "a capability that is not 32 bytes of base64 is a ValueError",
        false,
    )
    .ask(
        l,
        Request::call(
            Method::Order(Protocol::Om).name(),
            vec![s("r"), s("abc"), s("attack")],
        ),
        Expect::Fault(
            "<class 'ValueError'>:capability must be 32 bytes in base64 (44 characters)".into(),
        ),
    );
    let (method, params) = Call::TraceEvents {
        run: crate::calls::ORIGINAL_RUN.into(),
        access: TraceAccess::Original,
        since_us: 0,
    }
    .into_wire();
    b.extension(
        "ext.trace-events.original",
        "trace_events of the original run answers an array (anyone may read it)",
        false,
    )
    .ask(l, Request::call(method.name(), params), Expect::AnyArray);
    if t.nodes.len() >= 4 {
        b.extension(
            "ext.om-run",
            &format!("an OM(1) run among the cluster, commanded by the loyal {l}, is not violated"),
            false,
        )
        .steps
        .push(Step::Run {
            commander: l.clone(),
        });
    }
}

/// The rows being built.
#[derive(Default)]
struct Rows(Vec<Row>);

impl Rows {
    fn add(&mut self, contract: Contract, id: &str, title: &str, writes: bool) -> &mut Row {
        self.0.push(Row {
            id: id.to_string(),
            contract,
            title: title.to_string(),
            writes,
            steps: Vec::new(),
            documented: None,
            hangs: false,
            needs: None,
        });
        self.0.last_mut().expect("just pushed")
    }

    fn original(&mut self, id: &str, title: &str, writes: bool) -> &mut Row {
        self.add(Contract::Original, id, title, writes)
    }

    fn extension(&mut self, id: &str, title: &str, writes: bool) -> &mut Row {
        self.add(Contract::Extensions, id, title, writes)
    }
}

impl Row {
    fn ask(&mut self, node: &str, request: Request, expect: Expect) -> &mut Row {
        self.steps.push(Step::Ask {
            node: node.to_string(),
            request,
            expect,
        });
        self
    }
}

/// Who stores what after the original run, per node: the senders in the order their first
/// message arrived (a faulty node stores nothing; the faulty P sends only to Q).
fn original_stores(t: &Topology) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for to in &t.nodes {
        let senders = (t.nodes.iter())
            .filter(|from| *from != to && !t.faulty.contains(to))
            .filter(|from| {
                !(t.faulty.contains(*from)
                    && *from == protocol::ORIGINAL_FAULTY
                    && protocol::DENIED_BY_P.contains(&to.as_str()))
            })
            .cloned()
            .collect();
        out.insert(to.clone(), senders);
    }
    out
}

/// A one-letter name after the cluster's that no node of it has (`T` for P, Q, R, S), and
/// the port the port rule gives it as seen from `from` (a one-letter node at its URL).
fn stranger(t: &Topology, from: &str) -> Option<(String, u16)> {
    let name = ('T'..='Z')
        .map(|c| c.to_string())
        .find(|c| !t.nodes.contains(c))?;
    let port = url::Url::parse(t.urls.get(from)?)
        .ok()?
        .port_or_known_default()?;
    let (Some(a), Some(b)) = (single(from), single(&name)) else {
        return None;
    };
    let port = i64::from(port) + i64::from(b as u32) - i64::from(a as u32);
    Some((name, u16::try_from(port).ok()?))
}

/// The one character of a one-character name.
fn single(name: &str) -> Option<char> {
    let mut chars = name.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

/// `data` gzipped.
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// What a row came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Every request got the contract's answer.
    Pass,
    /// One did not.
    Fail,
    /// It differs as one of the README's divergences says the original does.
    Documented,
    /// Not run (a role the cluster lacks, the extension not claimed, a port in use).
    Skip,
}

/// A row's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Outcome {
    /// The row's id.
    pub(crate) id: String,
    /// Its contract.
    pub(crate) contract: Contract,
    /// What it checks.
    pub(crate) title: String,
    /// Whether it stores messages on a node.
    pub(crate) writes: bool,
    /// Pass, fail, documented or skip.
    pub(crate) status: Status,
    /// The README's divergence, when it differs as documented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) divergence: Option<u8>,
    /// What was expected and what came, or why it was skipped.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) detail: String,
    /// The request to reproduce a failure with (curl).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reproduce: Option<String>,
    /// Its wall time.
    pub(crate) seconds: f64,
}

impl Outcome {
    fn skipped(row: &Row, why: &str) -> Outcome {
        Outcome {
            id: row.id.clone(),
            contract: row.contract,
            title: row.title.clone(),
            writes: row.writes,
            status: Status::Skip,
            divergence: None,
            detail: why.to_string(),
            reproduce: None,
            seconds: 0.0,
        }
    }
}

/// What a node answered one request.
#[derive(Debug, Clone)]
enum Answer {
    /// An HTTP answer: its status and (decoded from gzip) body.
    Http(u16, Vec<u8>),
    /// No answer within the timeout.
    Silent(Duration),
    /// The connection failed.
    Broken(String),
}

impl Answer {
    /// The methodResponse it carries, when it is a 200 that reads as one.
    fn reply(&self) -> Option<Result<Value, Fault>> {
        match self {
            Answer::Http(200, body) => xmlrpc::decode_response(body).ok(),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match (self, self.reply()) {
            (_, Some(Ok(v))) => shown(&v),
            (_, Some(Err(f))) => format!("fault {} {:?}", f.code(), f.string()),
            (Answer::Http(code, body), None) => {
                let text = String::from_utf8_lossy(body);
                let text: String = text.chars().take(200).collect();
                format!("HTTP {code} {text:?}")
            }
            (Answer::Silent(d), None) => format!("no answer within {} s", d.as_secs()),
            (Answer::Broken(e), None) => e.clone(),
        }
    }

    fn meets(&self, expect: &Expect) -> bool {
        let reply = self.reply();
        match expect {
            Expect::Value(v) => matches!(&reply, Some(Ok(got)) if got == v),
            Expect::Fault(s) => matches!(&reply, Some(Err(f)) if f.code() == 1 && f.string() == s),
            Expect::FaultStartingWith(s) => {
                matches!(&reply, Some(Err(f)) if f.code() == 1 && f.string().starts_with(s.as_str()))
            }
            Expect::AnyFault => matches!(reply, Some(Err(_))),
            Expect::AnyArray => matches!(reply, Some(Ok(Value::Array(_)))),
            Expect::Status(code, body) => match self {
                Answer::Http(got, text) => {
                    got == code && body.as_ref().is_none_or(|b| text == b.as_bytes())
                }
                _ => false,
            },
            Expect::Struct(members) => match &reply {
                Some(Ok(Value::Struct(m))) => members.iter().all(|(name, kind, value)| {
                    let Some(got) = m.get(*name) else {
                        return false;
                    };
                    let typed = match *kind {
                        "string" => matches!(got, Value::String(_)),
                        "boolean" => matches!(got, Value::Boolean(_)),
                        _ => true,
                    };
                    typed && value.as_ref().is_none_or(|v| v == got)
                }),
                _ => false,
            },
        }
    }
}

/// Send `request` to `url` (a node's base URL) and read the whole answer, within `timeout`.
async fn ask(url: &str, request: &Request, timeout: Duration) -> Answer {
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return Answer::Broken(format!("bad URL {url}: {e}")),
    };
    let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
        return Answer::Broken(format!("bad URL {url}: no host or port"));
    };
    let host = host.trim_matches(['[', ']']).to_string();
    let authority = format!("{}:{port}", parsed.host_str().unwrap_or(&host));
    let bytes = request.http(&authority);
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        stream.write_all(&bytes).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Answer::Silent(timeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Answer::Broken("connection refused".into())
        }
        Ok(Err(e)) => Answer::Broken(e.to_string()),
        Ok(Ok(raw)) => parse_http(&raw),
    }
}

/// An HTTP/1.x answer read to its end: status and body (a gzipped one unzipped).
fn parse_http(raw: &[u8]) -> Answer {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Answer::Broken(format!("not an HTTP answer ({} bytes)", raw.len()));
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = (lines.next().unwrap_or(""))
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok());
    let Some(status) = status else {
        return Answer::Broken(format!(
            "not an HTTP status line: {:?}",
            head.lines().next()
        ));
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if let Some(len) = (headers.iter())
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    let gzipped =
        (headers.iter()).any(|(k, v)| k == "content-encoding" && v.eq_ignore_ascii_case("gzip"));
    if gzipped {
        use std::io::Read as _;
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .is_ok()
        {
            body = out;
        }
    }
    Answer::Http(status, body)
}

/// A peer on `port` that accepts every connection and never answers, until dropped.
async fn silent_peer(port: u16) -> std::io::Result<SilentPeer> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    Ok(SilentPeer(task))
}

/// The silent peer's task: stopped (its connections closed) when dropped.
struct SilentPeer(tokio::task::JoinHandle<()>);

impl Drop for SilentPeer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether the nodes claim the extension: `node_info` on `node` answers a struct. The
/// answer otherwise, for the skip line.
pub(crate) async fn claims_extension(url: &str) -> Result<(), String> {
    let request = Request::call(Method::NodeInfo.name(), vec![]);
    match ask(url, &request, CALL_TIMEOUT).await {
        a if matches!(a.reply(), Some(Ok(Value::Struct(_)))) => Ok(()),
        a => Err(format!("node_info answered {}", a.describe())),
    }
}

/// Run `rows` against `t`, in order; `each` is told every outcome as it comes.
pub(crate) async fn run(
    t: &Topology,
    rows: &[Row],
    mut each: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let outcome = run_row(t, row).await;
        each(&outcome);
        out.push(outcome);
    }
    out
}

async fn run_row(t: &Topology, row: &Row) -> Outcome {
    let _silent = match row.needs {
        None => None,
        Some(Needs::Nobody(port)) => {
            let at = ("127.0.0.1", port);
            if tokio::net::TcpStream::connect(at).await.is_ok() {
                return Outcome::skipped(row, &format!("something listens on port {port}"));
            }
            None
        }
        Some(Needs::Silent(port)) => match silent_peer(port).await {
            Ok(peer) => Some(peer),
            Err(e) => return Outcome::skipped(row, &format!("cannot listen on port {port}: {e}")),
        },
    };
    let started = Instant::now();
    let timeout = if row.hangs {
        HANG_TIMEOUT
    } else {
        CALL_TIMEOUT
    };
    let mut outcome = Outcome::skipped(row, "");
    outcome.status = Status::Pass;
    for step in &row.steps {
        let (node, request, expect) = match step {
            Step::Ask {
                node,
                request,
                expect,
            } => (node, request, expect),
            Step::Run { commander } => {
                if let Err(why) = agreement_run(t, commander).await {
                    outcome.status = Status::Fail;
                    outcome.detail = why;
                    let peers: String = (t.nodes.iter())
                        .filter_map(|n| Some(format!(" --peer {n}={}", t.urls.get(n)?)))
                        .collect();
                    outcome.reproduce = Some(format!(
                        "client --nodes {}{peers} om -m 1 --commander {commander} --seed 1",
                        t.nodes.join(",")
                    ));
                    break;
                }
                continue;
            }
        };
        let Some(url) = t.urls.get(node) else {
            return Outcome::skipped(row, &format!("{node} has no address"));
        };
        let answer = ask(url, request, timeout).await;
        if answer.meets(expect) {
            continue;
        }
        let documented = row
            .documented
            .as_ref()
            .filter(|d| match (&d.instead, &answer) {
                (Some(e), a) => a.meets(e),
                (None, Answer::Silent(_)) => true,
                (None, _) => false,
            });
        if let Some(d) = documented {
            outcome.status = Status::Documented;
            outcome.divergence = Some(d.divergence);
            outcome.detail = format!(
                "differs as documented (divergence {}: {}): {}",
                d.divergence,
                d.why,
                answer.describe()
            );
            break;
        }
        outcome.status = Status::Fail;
        outcome.detail = format!(
            "{node}: expected {}, got {}",
            expect.describe(),
            answer.describe()
        );
        outcome.reproduce = Some(request.curl(url));
        break;
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome
}

/// An OM(1) run among the cluster commanded by `commander`, as `client om` drives it; why it
/// does not count as passing (violated, void, or not run).
async fn agreement_run(t: &Topology, commander: &str) -> Result<(), String> {
    let mut cluster = Cluster::local(0);
    for (name, url) in &t.urls {
        cluster = cluster.with_peer(name, url).map_err(|e| e.to_string())?;
    }
    let opts = RunOptions {
        protocol: Protocol::Om,
        m: 1,
        order: "attack".into(),
        commander: commander.to_string(),
        nodes: t.nodes.clone(),
        round_timeout: driver::default_round_timeout(Protocol::Om, t.nodes.len(), 1),
        seed: 1,
        allow_unsafe: false,
        rpc_timeout: Duration::from_secs(10),
        max_messages: driver::DEFAULT_MAX_MESSAGES,
    };
    let driven = driver::drive(&cluster, &opts)
        .await
        .map_err(|e| e.to_string())?;
    let report = driven.report;
    match report.verdict {
        Verdict::Violated => Err(format!("violated: {}", report.problems.join("; "))),
        Verdict::Void => Err(format!("void: {}", report.void_reasons.join("; "))),
        _ => Ok(()),
    }
}

/// One report line: status, id, title; a failure's detail and its request below it.
pub(crate) fn line(o: &Outcome, width: usize) -> String {
    let status = match o.status {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Documented => "DIFF",
        Status::Skip => "SKIP",
    };
    let writes = if o.writes { " [writes]" } else { "" };
    let mut out = format!("{status}  {:<width$}  {}{writes}", o.id, o.title);
    if !o.detail.is_empty() {
        let _ = write!(out, "\n      {}", o.detail);
    }
    if let Some(r) = &o.reproduce {
        let _ = write!(out, "\n      reproduce: {r}");
    }
    out
}

/// The counts, for the last line.
pub(crate) fn summary(outcomes: &[Outcome]) -> String {
    let count = |s: Status| outcomes.iter().filter(|o| o.status == s).count();
    let writing: Vec<&str> = (outcomes.iter())
        .filter(|o| o.writes && o.status != Status::Skip)
        .map(|o| o.id.as_str())
        .collect();
    format!(
        "{} rows: {} passed, {} failed, {} differ as documented, {} skipped; rows that stored \
         messages: {}",
        outcomes.len(),
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Documented),
        count(Status::Skip),
        if writing.is_empty() {
            "none".to_string()
        } else {
            writing.join(", ")
        }
    )
}

/// The outcomes as JUnit XML: one test suite per contract, one test case per row (a
/// documented difference passes, with the difference in its output).
pub(crate) fn junit(outcomes: &[Outcome]) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("generals check");
    for (contract, name) in [
        (Contract::Original, "original"),
        (Contract::Extensions, "extensions"),
    ] {
        let mut suite = TestSuite::new(name);
        for o in outcomes.iter().filter(|o| o.contract == contract) {
            let status = match o.status {
                Status::Pass | Status::Documented => TestCaseStatus::success(),
                Status::Fail => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(o.detail.clone());
                    if let Some(r) = &o.reproduce {
                        s.set_description(r.clone());
                    }
                    s
                }
                Status::Skip => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(o.detail.clone());
                    s
                }
            };
            let mut case = TestCase::new(o.id.clone(), status);
            case.set_classname(format!("check.{name}"));
            case.set_time(Duration::from_secs_f64(o.seconds));
            if o.status == Status::Documented {
                case.set_system_out(o.detail.clone());
            }
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string().unwrap_or_default()
}

/// The golden transcripts of `rows` (made for the original's cluster: P, Q, R, S on 8000-8003, P faulty):
/// one JSON document per contract, `(file name, text)`, every request as it goes on the wire
/// and the answer the contract gives. What they hold is in docs/conformance/README.md.
pub(crate) fn transcripts(t: &Topology, rows: &[Row]) -> Vec<(String, String)> {
    use serde_json::json;
    let mut out = Vec::new();
    for (contract, name) in [
        (Contract::Original, "original"),
        (Contract::Extensions, "extensions"),
    ] {
        let rows: Vec<serde_json::Value> = (rows.iter())
            .filter(|r| r.contract == contract)
            .map(|r| {
                let steps: Vec<serde_json::Value> = (r.steps.iter())
                    .map(|step| match step {
                        Step::Run { commander } => json!({
                            "run": { "protocol": "om", "m": 1, "commander": commander, "order": "attack" },
                            "expect": { "verdict_not": "violated" },
                        }),
                        Step::Ask { node, request, expect } => json!({
                            "node": node,
                            "request": transcript_request(request),
                            "expect": transcript_expect(expect),
                        }),
                    })
                    .collect();
                let mut row = json!({
                    "id": r.id,
                    "title": r.title,
                    "writes": r.writes,
                    "hangs_the_original": r.hangs,
                    "steps": steps,
                });
                if let Some(d) = &r.documented {
                    row["differs_as_documented"] = json!({
                        "divergence": d.divergence,
                        "why": d.why,
                        "instead": d.instead.as_ref().map_or(json!("no answer"), transcript_expect),
                    });
                }
                if let Some(needs) = r.needs {
                    row["needs"] = match needs {
                        Needs::Nobody(port) => json!({ "nothing_listening_on_port": port }),
                        Needs::Silent(port) => json!({ "silent_peer_on_port": port }),
                    };
                }
                row
            })
            .collect();
        let nodes: Vec<serde_json::Value> = (t.nodes.iter())
            .map(|n| json!({ "name": n, "url": t.urls.get(n), "faulty": t.faulty.contains(n) }))
            .collect();
        let doc = json!({
            "contract": name,
            "generated_by": "client check --transcripts DIR (src/runs/check.rs)",
            "cluster": nodes,
            "rows": rows,
        });
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
        out.push((format!("{name}.json"), text));
    }
    out
}

fn transcript_request(r: &Request) -> serde_json::Value {
    use serde_json::json;
    let (verb, path, headers) = match r {
        Request::Call { path, .. } => ("POST", *path, vec![("Content-Type", "text/xml")]),
        Request::Raw {
            verb,
            path,
            headers,
            ..
        } => (*verb, *path, headers.clone()),
    };
    let headers: serde_json::Map<String, serde_json::Value> = (headers.into_iter())
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let body = r.body();
    let mut out = json!({ "method": verb, "path": path, "headers": headers });
    match String::from_utf8(body) {
        Ok(text) => out["body"] = json!(text),
        Err(e) => {
            use base64::Engine as _;
            out["body_base64"] =
                json!(base64::engine::general_purpose::STANDARD.encode(e.as_bytes()));
        }
    }
    out
}

fn transcript_expect(e: &Expect) -> serde_json::Value {
    use serde_json::json;
    match e {
        Expect::Value(v) => json!({ "status": 200, "body": xmlrpc::encode_response(v) }),
        Expect::Fault(s) => json!({
            "status": 200,
            "body": xmlrpc::encode_fault(&Fault::new(1, s.clone())),
        }),
        Expect::FaultStartingWith(s) => {
            json!({ "status": 200, "fault_code": 1, "fault_string_starts_with": s })
        }
        Expect::AnyFault => json!({ "status": 200, "any_fault": true }),
        Expect::AnyArray => json!({ "status": 200, "any_array": true }),
        Expect::Status(code, body) => json!({ "status": code, "body": body }),
        Expect::Struct(members) => json!({
            "status": 200,
            "struct_members": members.iter().map(|(name, kind, value)| json!({
                "name": name,
                "type": kind,
                "value": value.as_ref().map(crate::trace::to_json),
            })).collect::<Vec<_>>(),
        }),
    }
}
