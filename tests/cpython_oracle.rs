//! CPython is the oracle of the wire: the same request bodies go to CPython's own
//! `SimpleXMLRPCDispatcher._marshaled_dispatch` (with the stand-in's `Process`, the methods the
//! original registers, and `system.multicall`, which our nodes serve) and to our request path
//! (`server::Offline`, the function the server runs on every body), and the same answer bodies
//! to CPython's `xmlrpc.client.loads` and to our reader (`xmlrpc::loads`, what every reply of an
//! outgoing call goes through). Status, fault code, fault string and value must agree, and our
//! answers must read in CPython's client to what CPython's own answers read to.
//!
//! The bodies come from a seeded generator of valid, edge and malformed XML-RPC: every value
//! type and its odd spellings, namespace prefixes, unknown tags, declared encodings and byte
//! order marks, entities and character references, CDATA, comments, `system.multicall` in
//! every shape Python takes apart, requests that are faults, and random cuts and insertions.
//! CPython runs in one long-lived `python3 tests/cpython_oracle.py` fed on stdin; ours runs
//! in process. The seed is random per run (`CPYTHON_ORACLE_SEED=N` repeats one) and printed on
//! failure, with the case.
//!
//! Where we differ on purpose, the difference is a row of [`ROWS`]: a name, the deliberate
//! divergence that declares it (docs/guide/divergences.md), and a predicate that recognises
//! it. The guide's table ("Where we differ from CPython, row by row") is read by the test: its
//! rows and [`ROWS`] must be the same set with the same divergence numbers, so the test and
//! the guide cannot disagree. Any other difference fails the test; a row no case needed fails it too (a row
//! nothing exercises cannot be told from a stale one).
//!
//! The HTTP framing (paths, `Content-Length` forms, folded headers, `Content-Encoding`) is a
//! table of its own, [`http_framing_as_cpython`], against a running stand-in and a running
//! Rust node.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use base64::Engine as _;
use dxr::Value;
use generals::server::Offline;
use generals::xmlrpc::{self, DecodeError, Loaded};
use serde_json::{Value as Json, json};

// ---------------------------------------------------------------------------------------------
// The oracle process
// ---------------------------------------------------------------------------------------------

/// `python3 tests/cpython_oracle.py`, fed one JSON line per case.
struct Oracle {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    fn start() -> Oracle {
        let mut child = Command::new("python3")
            .arg(crate::common::root().join("tests/cpython_oracle.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (the tests need it)");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("a pipe"));
        Oracle {
            child,
            stdin,
            stdout,
        }
    }

    /// Every request answered, in order. A writer thread feeds stdin while this one reads, so
    /// neither pipe fills up.
    fn ask(&mut self, requests: Vec<Json>) -> Vec<Json> {
        let mut stdin = self.stdin.take().expect("stdin");
        let n = requests.len();
        let writer = std::thread::spawn(move || {
            for r in &requests {
                let mut line = serde_json::to_vec(r).expect("JSON");
                line.push(b'\n');
                stdin.write_all(&line).expect("the oracle reads its input");
            }
            stdin.flush().expect("flush");
            stdin
        });
        let mut out = Vec::with_capacity(n);
        let mut line = String::new();
        for _ in 0..n {
            line.clear();
            let read = self
                .stdout
                .read_line(&mut line)
                .expect("the oracle answers");
            assert!(read > 0, "the oracle stopped (see its stderr above)");
            out.push(serde_json::from_str(&line).expect("the oracle writes JSON"));
        }
        self.stdin = Some(writer.join().expect("writer"));
        out
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------------

/// SplitMix64: small, seeded, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

/// Pieces of text a string or name is made of: plain, whitespace, markup as entities and
/// references, non-ASCII, CDATA, and now and then something malformed.
const TEXT_PIECES: &[&str] = &[
    "a",
    "b",
    "attack",
    "retreat",
    "Q",
    "P",
    " ",
    "\n",
    "\t",
    "\r\n",
    "\r",
    "&amp;",
    "&lt;",
    "&gt;",
    "&apos;",
    "&quot;",
    "&#65;",
    "&#x42;",
    "&#13;",
    "&#10;",
    "&#9;",
    "'",
    "\"",
    ">",
    "\u{e9}",
    "\u{8a9e}",
    "\u{1f980}",
    "\u{85}",
    "<![CDATA[x<y&z]]>",
    "<!-- c -->",
];

const BAD_TEXT_PIECES: &[&str] = &["&bogus;", "&", "<", "&#1;", "\u{1}", "]]>", "&#xD800;"];

const INT_TEXTS: &[&str] = &[
    "0",
    "1",
    "-1",
    "42",
    " 7 ",
    "+5",
    "007",
    "1_000",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999999",
    "1__0",
    "_1",
    "",
    "abc",
    "5.0",
    "0x10",
    "\n3\n",
];

const DOUBLE_TEXTS: &[&str] = &[
    "0",
    "1.5",
    "-0.0",
    "-0",
    ".5",
    "5.",
    "1e16",
    "1.5e-7",
    "1e400",
    "inf",
    "-Infinity",
    "nan",
    "-nan",
    " 2.5 ",
    "1_0.5",
    "1__0",
    "abc",
    "",
    "1e",
    "0.1",
    "123456789012345678",
];

const BASE64_TEXTS: &[&str] = &[
    "",
    "QUJD",
    "QUJD\nREVG",
    "QQ==",
    "QQ=",
    "Q===",
    "QUJDR",
    "QU=JD",
    "QQ==QQ==",
    "=QQ==",
    "Q*U*J*D",
    " Q Q = = ",
    "\u{e9}",
    "YXR0YWNr",
];

const DATE_TEXTS: &[&str] = &[
    "20240102T03:04:05",
    " 20240102T03:04:05 ",
    "2024-01-02T03:04:05",
    "yesterday",
    "",
    "20241302T03:04:05",
    "20240102T03:04:05Z",
];

const BOOL_TEXTS: &[&str] = &["0", "1", "2", "true", "", " 1"];

const METHOD_NAMES: &[&str] = &[
    "receive_message",
    "receive_message",
    "receive_message",
    "send_message",
    "send_message",
    "finalize_decision",
    "finalize_decision",
    "system.multicall",
    "nope",
    "_private",
    "send_message.x",
    "system.listMethods",
    "",
    " receive_message",
    "name",
    "messages",
    "faulty",
    "get_messages",
    "node_info",
    "receive&#95;message",
    "<![CDATA[finalize_decision]]>",
];

const RECIPIENTS: &[&str] = &["P", "Q", "R", "S", "T", "A", "", "QQ", "\u{e9}", "\u{a6f2}"];

/// One case: bodies sent in order to a fresh node `node` (P is faulty, as in the original).
#[derive(Debug, Clone)]
struct Case {
    node: &'static str,
    bodies: Vec<Vec<u8>>,
}

struct Gen {
    rng: Rng,
}

impl Gen {
    fn text(&mut self, max: usize) -> String {
        let n = self.rng.below(max + 1);
        let mut out = String::new();
        for _ in 0..n {
            if self.rng.chance(2) {
                out.push_str(self.rng.pick(BAD_TEXT_PIECES));
            } else {
                out.push_str(self.rng.pick(TEXT_PIECES));
            }
        }
        out
    }

    /// A decision-like string: mostly a plain word, so stores and majorities mean something.
    fn word(&mut self) -> String {
        if self.rng.chance(70) {
            self.rng
                .pick(&["attack", "retreat", "attack", "wait"])
                .to_string()
        } else {
            self.text(4)
        }
    }

    fn string_value(&mut self, s: &str) -> String {
        match self.rng.below(10) {
            0..=5 => format!("<value><string>{s}</string></value>"),
            6..=7 => format!("<value>{s}</value>"),
            8 => format!("<value><x:string>{s}</x:string></value>"),
            _ => format!(
                "<value><string><![CDATA[{}]]></string></value>",
                s.replace("]]>", "")
            ),
        }
    }

    fn value(&mut self, depth: usize) -> String {
        let leaf = depth >= 3 || self.rng.chance(60);
        if leaf {
            let pick = self.rng.below(22);
            return match pick {
                0..=4 => {
                    let t = self.text(6);
                    self.string_value(&t)
                }
                5 | 6 => {
                    let tag =
                        self.rng
                            .pick(&["int", "i4", "i8", "i1", "i2", "biginteger", "ex:int"]);
                    let n = self.rng.pick(INT_TEXTS);
                    format!("<value><{tag}>{n}</{tag}></value>")
                }
                7 => format!(
                    "<value><boolean>{}</boolean></value>",
                    self.rng.pick(BOOL_TEXTS)
                ),
                8 => {
                    let tag = self.rng.pick(&["double", "float"]);
                    format!(
                        "<value><{tag}>{}</{tag}></value>",
                        self.rng.pick(DOUBLE_TEXTS)
                    )
                }
                9 => format!(
                    "<value><base64>{}</base64></value>",
                    self.rng.pick(BASE64_TEXTS)
                ),
                10 => format!(
                    "<value><dateTime.iso8601>{}</dateTime.iso8601></value>",
                    self.rng.pick(DATE_TEXTS)
                ),
                11 => self
                    .rng
                    .pick(&[
                        "<value><nil/></value>",
                        "<value><nil></nil></value>",
                        "<value><ex:nil/></value>",
                    ])
                    .to_string(),
                12 => format!(
                    "<value><bigdecimal>{}</bigdecimal></value>",
                    self.rng.pick(&["1.5", " 2 ", "x", "1e5", "-0"])
                ),
                13 => self
                    .rng
                    .pick(&[
                        "<value><foo>x</foo></value>",
                        "<value><ex:foo/></value>",
                        "<value>a<string>b</string>c</value>",
                        "<value><value>x</value></value>",
                        "<value>a<foo/>c</value>",
                        "<value><int><string>5</string></int></value>",
                        "<value><string:>x</string:></value>",
                        "<value><a:b:string>x</a:b:string></value>",
                        "<value/>",
                        "<value></value>",
                        "<value>  </value>",
                        "<value type='x'>y</value>",
                    ])
                    .to_string(),
                _ => {
                    let w = self.word();
                    self.string_value(&w)
                }
            };
        }
        if self.rng.chance(50) {
            let n = self.rng.below(4);
            let mut out = String::from("<value><array><data>");
            for _ in 0..n {
                out.push_str(&self.value(depth + 1));
            }
            out.push_str("</data></array></value>");
            if self.rng.chance(5) {
                out = "<value><array></array></value>".into();
            }
            out
        } else {
            let n = self.rng.below(4);
            let mut out = String::from("<value><struct>");
            for _ in 0..n {
                let name = if self.rng.chance(80) {
                    self.word()
                } else {
                    self.text(3)
                };
                let v = self.value(depth + 1);
                let member = match self.rng.below(14) {
                    0 => "<member><value>x</value></member>".to_string(),
                    1 => format!("<member><name>{name}</name></member>"),
                    2 => format!("<member><name>{name}</name>{v}<value>y</value></member>"),
                    3 => format!("<member><value><int>1</int></value>{v}</member>"),
                    4 => format!("<member><name/>{v}</member>"),
                    _ => format!("<member><name>{name}</name>{v}</member>"),
                };
                out.push_str(&member);
            }
            out.push_str("</struct></value>");
            out
        }
    }

    fn method_name(&mut self) -> String {
        self.rng.pick(METHOD_NAMES).to_string()
    }

    /// The params of an original method, mostly well-typed so calls get far.
    fn original_params(&mut self, method: &str) -> Vec<String> {
        let sv = |g: &mut Gen, s: &str| g.string_value(s);
        match method {
            "receive_message" | "send_message" if self.rng.chance(80) => {
                let first = if method == "send_message" {
                    self.rng.pick(RECIPIENTS).to_string()
                } else {
                    self.word()
                };
                let mut params = vec![sv(self, &first), {
                    let w = self.word();
                    sv(self, &w)
                }];
                if self.rng.chance(20) {
                    let i = self.rng.below(2);
                    params[i] = self.value(1);
                }
                if self.rng.chance(10) {
                    params.truncate(self.rng.below(2));
                }
                if self.rng.chance(5) {
                    params.push(self.value(1));
                }
                params
            }
            "finalize_decision" if self.rng.chance(80) => Vec::new(),
            _ => (0..self.rng.below(4)).map(|_| self.value(1)).collect(),
        }
    }

    fn params_xml(&mut self, params: &[String]) -> String {
        match self.rng.below(30) {
            0 if params.is_empty() => String::new(),
            1 if params.is_empty() => "<params/>".into(),
            2 => format!(
                "<params>{}</params>",
                params
                    .iter()
                    .map(|p| format!("<param>{p}<value>extra</value></param>"))
                    .collect::<String>()
            ),
            3 => format!(
                "<params>{}<param></param></params>",
                params
                    .iter()
                    .map(|p| format!("<param>{p}</param>"))
                    .collect::<String>()
            ),
            4 => format!("<params>{}</params>", params.concat()),
            _ => {
                let sep = if self.rng.chance(50) { "\n" } else { "" };
                format!(
                    "<params>{sep}{}</params>{sep}",
                    params
                        .iter()
                        .map(|p| format!("<param>{sep}{p}{sep}</param>{sep}"))
                        .collect::<String>()
                )
            }
        }
    }

    /// A `system.multicall` batch entry.
    fn batch_entry(&mut self) -> String {
        let method = self
            .rng
            .pick(&[
                "receive_message",
                "receive_message",
                "send_message",
                "finalize_decision",
                "nope",
                "system.multicall",
            ])
            .to_string();
        let params = self.original_params(&method);
        let array = format!(
            "<value><array><data>{}</data></array></value>",
            params.concat()
        );
        let name_value = match self.rng.below(12) {
            0 => self.value(2),
            1 => "<value><int>5</int></value>".into(),
            _ => self.string_value(&method),
        };
        let params_value = match self.rng.below(14) {
            0 => {
                let s = ["AB", "", "A", "ABC"][self.rng.below(4)];
                self.string_value(s)
            }
            1 => "<value><struct><member><name>a</name><value>x</value></member><member><name>b</name><value>y</value></member></struct></value>".into(),
            2 => "<value><int>5</int></value>".into(),
            3 => self.value(2),
            _ => array,
        };
        let name_m = format!("<member><name>methodName</name>{name_value}</member>");
        let params_m = format!("<member><name>params</name>{params_value}</member>");
        match self.rng.below(16) {
            0 => format!("<value><struct>{name_m}</struct></value>"),
            1 => format!("<value><struct>{params_m}</struct></value>"),
            2 => format!(
                "<value><struct>{params_m}{name_m}<member><name>extra</name><value>1</value></member></struct></value>"
            ),
            3 => self.value(2),
            _ => format!("<value><struct>{name_m}{params_m}</struct></value>"),
        }
    }

    fn multicall_params(&mut self) -> Vec<String> {
        let entries: String = (0..self.rng.below(4)).map(|_| self.batch_entry()).collect();
        let list = format!("<value><array><data>{entries}</data></array></value>");
        match self.rng.below(12) {
            0 => vec![],
            1 => vec![list.clone(), list],
            2 => vec![self.value(1)],
            3 => {
                let t = ["AB", ""][self.rng.below(2)];
                vec![self.string_value(t)]
            }
            _ => vec![list],
        }
    }

    fn call_body(&mut self) -> String {
        let method = self.method_name();
        let params = if method == "system.multicall" {
            self.multicall_params()
        } else {
            self.original_params(&method)
        };
        let params = self.params_xml(&params);
        let name = match self.rng.below(20) {
            0 => String::new(),
            1 => format!("<x:methodName>{method}</x:methodName>"),
            2 => format!(
                "<methodName>{method}</methodName><methodName>finalize_decision</methodName>"
            ),
            _ => format!("<methodName>{method}</methodName>"),
        };
        let (name, params) = if self.rng.chance(5) {
            (params, name)
        } else {
            (name, params)
        };
        let root = match self.rng.below(40) {
            0 => "methodResponse",
            1 => "foo",
            2 => "x:methodCall",
            _ => "methodCall",
        };
        let nl = if self.rng.chance(50) { "\n" } else { "" };
        format!("<{root}>{nl}{name}{nl}{params}</{root}>{nl}")
    }

    fn special_body(&mut self) -> String {
        let fault = |code: &str, string: &str| {
            format!(
                "<methodResponse><fault><value><struct><member><name>faultCode</name><value>{code}</value></member><member><name>faultString</name><value>{string}</value></member></struct></value></fault></methodResponse>"
            )
        };
        let deep = format!(
            "<methodCall><methodName>receive_message</methodName><params><param>{}x{}</param></params></methodCall>",
            "<value><array><data>".repeat(30),
            "</data></array></value>".repeat(30)
        );
        let bodies = [
            String::new(),
            "garbage<".into(),
            "<methodCall>".into(),
            "<methodCall/>".into(),
            "<foo/>".into(),
            "<methodCall><params/></methodCall>".into(),
            "<methodCall><methodName>finalize_decision</methodName></methodCall><junk/>".into(),
            "<methodCall><methodName>finalize_decision</methodName></methodCall>junk".into(),
            "junk<methodCall><methodName>finalize_decision</methodName></methodCall>".into(),
            "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'attack'>]><methodCall><methodName>finalize_decision</methodName></methodCall>".into(),
            "<methodCall><methodName>receive_message</methodName><params><param><value>&a;</value></param></params></methodCall>".into(),
            fault("<int>7</int>", "boom"),
            fault("<i8>-99</i8>", "<string>b&amp;oom</string>"),
            fault("<string>-99</string>", "boom"),
            fault("<string>x</string>", "boom"),
            fault("<int>7</int>", "<int>5</int>"),
            "<methodResponse><fault></fault></methodResponse>".into(),
            "<methodResponse><fault><value>x</value></fault></methodResponse>".into(),
            "<methodResponse><fault><value><struct></struct></value></fault></methodResponse>".into(),
            "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>3</int></value></member></struct></value></fault></methodResponse>".into(),
            "<methodResponse><params><param><value>x</value></param></params></methodResponse>".into(),
            "<methodCall><methodName>finalize_decision</methodName><params><param><value><array><data><value>x</value></param></params></methodCall>".into(),
            "<?XML version='1.0'?><methodCall><methodName>finalize_decision</methodName></methodCall>".into(),
            " <?xml version='1.0'?><methodCall><methodName>finalize_decision</methodName></methodCall>".into(),
            "<?xml encoding='utf-8'?><methodCall><methodName>finalize_decision</methodName></methodCall>".into(),
            "<methodCall><?xml version='1.0'?><methodName>finalize_decision</methodName></methodCall>".into(),
            "<methodCall><?pi x?><methodName>finalize_decision</methodName></methodCall>".into(),
            "<methodCall xmlns='urn:x' a='1'><methodName>finalize_decision</methodName></methodCall>".into(),
            "<methodCall a='1' a='2'><methodName>finalize_decision</methodName></methodCall>".into(),
            "<methodCall a=1><methodName>finalize_decision</methodName></methodCall>".into(),
            "<methodCall a='<'><methodName>finalize_decision</methodName></methodCall>".into(),
            "<methodCall><methodName>finalize_decision</methodName></methodcall>".into(),
            "<methodCall><methodName>finalize_decision</methodName><!-- a -- b --></methodCall>".into(),
            "<methodCall><methodName>finalize_decision</methodName></methodCall ><!-- end -->\n".into(),
            "<methodCall><1methodName>finalize_decision</1methodName></methodCall>".into(),
            "<methodCall><methodName>finalize&#x5f;decision</methodName></methodCall>".into(),
            "<methodCall><methodName>finalize_decision</methodName>&#65;</methodCall>".into(),
            deep,
        ];
        bodies[self.rng.below(bodies.len())].clone()
    }

    /// One cut, duplication or insertion somewhere in `body`.
    fn mutate(&mut self, body: &str) -> String {
        const FRAGMENTS: &[&str] = &[
            "<!-- c -->",
            " ",
            "&#65;",
            "&amp;",
            "<![CDATA[x]]>",
            "\r\n",
            "<?pi x?>",
            "<foo/>",
            "<x:foo>y</x:foo>",
            "</value>",
            "<value>",
            "&bogus;",
            "<param><value><i4>7</i4></value></param>",
            "<value>  </value>",
            "\u{1}",
            "<",
        ];
        let b = body.as_bytes();
        let at = self.rng.below(b.len() + 1);
        let end = (at + self.rng.below(30)).min(b.len());
        let mut out = b[..at].to_vec();
        match self.rng.below(4) {
            0 => out.extend_from_slice(&b[end..]),
            1 => {
                out.extend_from_slice(&b[at..end]);
                out.extend_from_slice(&b[at..]);
            }
            _ => {
                out.extend_from_slice(self.rng.pick(FRAGMENTS).as_bytes());
                out.extend_from_slice(&b[at..]);
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// `doc` behind a declaration (or none), in the bytes of the encoding it declares (and
    /// sometimes in other bytes).
    fn encoded(&mut self, doc: &str) -> Vec<u8> {
        let decl = |enc: &str| format!("<?xml version='1.0' encoding='{enc}'?>\n{doc}");
        let latin = |text: &str| -> Vec<u8> {
            let mut out = Vec::new();
            for c in text.chars() {
                match u32::from(c) {
                    n if n < 0x100 => out.push(n as u8),
                    n => out.extend_from_slice(format!("&#{n};").as_bytes()),
                }
            }
            out
        };
        let utf16 = |text: &str, big: bool, bom: bool| -> Vec<u8> {
            let mut out: Vec<u8> = Vec::new();
            if bom {
                out.extend_from_slice(if big { &[0xFE, 0xFF] } else { &[0xFF, 0xFE] });
            }
            for u in text.encode_utf16() {
                out.extend_from_slice(&if big {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                });
            }
            out
        };
        match self.rng.below(40) {
            0..=11 => format!("<?xml version='1.0'?>\n{doc}").into_bytes(),
            12..=14 => format!("<?xml version=\"1.0\"?>{doc}").into_bytes(),
            15..=16 => decl("utf-8").into_bytes(),
            17 => decl("UTF-8").into_bytes(),
            18 => latin(&decl("iso-8859-1")),
            19 => latin(&decl("latin-1")),
            20 => decl("iso-8859-1").into_bytes(), // UTF-8 bytes, declared Latin-1
            21 => decl("us-ascii").into_bytes(),
            22 => decl("utf8").into_bytes(),
            23 => latin(&decl("windows-1252")),
            24 => decl("x-foo").into_bytes(),
            25 => decl("shift_jis").into_bytes(),
            26 => utf16(&decl("utf-16"), false, true),
            27 => utf16(&decl("utf-16"), true, true),
            28 => utf16(doc, false, true),
            29 => utf16(&decl("utf-16"), false, false),
            30 => decl("utf-16").into_bytes(),
            31 => utf16(&decl("utf-8"), false, true),
            32 => [&[0xEF, 0xBB, 0xBF][..], doc.as_bytes()].concat(),
            33 => format!("<?xml version='1.0' standalone='yes'?>{doc}").into_bytes(),
            34 => format!("<?xml version='1.1'?>{doc}").into_bytes(),
            _ => doc.as_bytes().to_vec(),
        }
    }

    fn body(&mut self) -> Vec<u8> {
        let doc = if self.rng.chance(8) {
            self.special_body()
        } else {
            self.call_body()
        };
        let doc = if self.rng.chance(20) {
            self.mutate(&doc)
        } else {
            doc
        };
        self.encoded(&doc)
    }

    fn case(&mut self) -> Case {
        let node = if self.rng.chance(20) { "P" } else { "Q" };
        let mut bodies: Vec<Vec<u8>> = (0..1 + self.rng.below(3)).map(|_| self.body()).collect();
        // What the calls left stored shows in the majority.
        bodies.push(
            generals::peer::call_body("finalize_decision", &[])
                .unwrap()
                .into_bytes(),
        );
        Case { node, bodies }
    }

    /// An answer body, as a peer of any library might write one.
    fn reply(&mut self) -> Vec<u8> {
        let doc = match self.rng.below(10) {
            0..=4 => {
                let n = match self.rng.below(10) {
                    0 => 0,
                    1 => 2,
                    _ => 1,
                };
                let params: String = (0..n)
                    .map(|_| format!("<param>{}</param>", self.value(0)))
                    .collect();
                format!("<methodResponse><params>{params}</params></methodResponse>")
            }
            5..=7 => {
                let code = self.rng.pick(&[
                    "<int>1</int>",
                    "<int>-99</int>",
                    "<i4>200</i4>",
                    "<i8>7</i8>",
                    "<string>-99</string>",
                    "<string>x</string>",
                    "<int>4294967296</int>",
                    "<nil/>",
                ]);
                let string = match self.rng.below(6) {
                    0 => self.value(2),
                    _ => {
                        let t = self.text(5);
                        self.string_value(&t)
                    }
                };
                let code_m =
                    format!("<member><name>faultCode</name><value>{code}</value></member>");
                let string_m = format!("<member><name>faultString</name>{string}</member>");
                let members = match self.rng.below(6) {
                    0 => format!("{string_m}{code_m}"),
                    1 => format!(
                        "{code_m}{string_m}<member><name>extra</name><value>1</value></member>"
                    ),
                    2 => code_m,
                    _ => format!("{code_m}{string_m}"),
                };
                format!(
                    "<methodResponse><fault><value><struct>{members}</struct></value></fault></methodResponse>"
                )
            }
            // A call where an answer is expected: CPython's client reads it all the same.
            8 => self.call_body(),
            _ => self.special_body(),
        };
        let doc = if self.rng.chance(15) {
            self.mutate(&doc)
        } else {
            doc
        };
        self.encoded(&doc)
    }
}

// ---------------------------------------------------------------------------------------------
// Our side, as tagged JSON (the shapes tests/cpython_oracle.py writes)
// ---------------------------------------------------------------------------------------------

fn tag(v: &Value) -> Json {
    match v {
        Value::String(s) => json!({ "s": s }),
        Value::Integer(i) => json!({ "i": i.to_string() }),
        Value::Long(i) => json!({ "i": i.to_string() }),
        Value::Boolean(b) => json!({ "b": b }),
        Value::Double(d) => json!({ "d": format!("{:016x}", d.to_bits()) }),
        Value::Nil => json!({ "n": null }),
        Value::Array(items) => json!({ "a": items.iter().map(tag).collect::<Vec<_>>() }),
        Value::Struct(m) => {
            json!({ "m": m.iter().map(|(k, v)| json!([k, tag(v)])).collect::<Vec<_>>() })
        }
        Value::Base64(b) => {
            json!({ "bin": b.iter().map(|x| format!("{x:02x}")).collect::<String>() })
        }
        Value::DateTime(d) => json!({ "dt": d.to_string() }),
        other => json!({ "other": format!("{other:?}") }),
    }
}

/// Python's exception class name (`type(e).__name__`) for our refusal.
fn class_of(e: &DecodeError) -> String {
    match e {
        DecodeError::Malformed(_) => "ExpatError".into(),
        DecodeError::Refused(_) => "ValueError (ours)".into(),
        DecodeError::Python { class, .. } => class.rsplit('.').next().unwrap_or(class).to_string(),
        DecodeError::Raised(_) => "Fault".into(),
    }
}

/// Our reading of an answer body, as the oracle writes CPython's.
fn our_reading(body: &[u8]) -> Json {
    match xmlrpc::loads(body) {
        Ok(Loaded::Values { params, method }) => {
            json!({ "params": params.iter().map(tag).collect::<Vec<_>>(), "method": method })
        }
        Ok(Loaded::Fault(f)) => {
            json!({ "fault": [{ "i": f.code().to_string() }, { "s": f.string() }] })
        }
        Err(e) => json!({ "error": class_of(&e), "why": e.to_string() }),
    }
}

/// Whether two readings agree: the same values or fault, or both refused with the same
/// exception class (messages are compared where they are answers, not here).
fn same_reading(theirs: &Json, ours: &Json) -> bool {
    match (theirs.get("error"), ours.get("error")) {
        (Some(t), Some(o)) => t == o,
        _ => theirs == ours,
    }
}

/// What a node stores, tagged as the oracle tags CPython's `messages` dict.
fn stored(node: &Offline) -> Json {
    let items: Vec<Json> = node
        .node()
        .messages()
        .iter()
        .map(|(k, v)| json!([k, { "s": v }]))
        .collect();
    json!({ "m": items })
}

/// Struct members sorted the same way on both sides (Python sorts by its JSON of the key).
fn normal(j: &Json) -> Json {
    match j {
        Json::Object(o) => {
            let mut out = serde_json::Map::new();
            for (k, v) in o {
                let mut v = normal(v);
                if k == "m"
                    && let Json::Array(items) = &mut v
                {
                    items.sort_by_key(|kv| kv[0].to_string());
                }
                out.insert(k.clone(), v);
            }
            Json::Object(out)
        }
        Json::Array(items) => Json::Array(items.iter().map(normal).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// The rows: where we differ on purpose (README, "Where we differ from CPython, row by row")
// ---------------------------------------------------------------------------------------------

/// What a row sees of one difference.
struct Diff<'a> {
    /// The body as text (lossy; UTF-16 decoded), for looking at it.
    text: String,
    /// CPython's answer (or reading).
    theirs: &'a Json,
    /// Ours, the same shape.
    ours: &'a Json,
    /// Where: "call" (a request's answer), "reply" (an answer read), "str" (what the client
    /// prints of a reply).
    scope: &'static str,
}

impl Diff<'_> {
    fn fault_string(j: &Json) -> Option<&str> {
        j.get("fault")?.get(1)?.get("s")?.as_str()
    }
    fn theirs_fault(&self) -> Option<&str> {
        Self::fault_string(self.theirs)
    }
    fn ours_fault(&self) -> Option<&str> {
        Self::fault_string(self.ours)
    }
    fn ours_says(&self, needle: &str) -> bool {
        self.ours.to_string().contains(needle)
    }
    fn theirs_say(&self, needle: &str) -> bool {
        self.theirs.to_string().contains(needle)
    }
    fn body_has(&self, needle: &str) -> bool {
        self.text.contains(needle)
    }
}

/// A row: its name in the README's table, the divergence that declares it, what it
/// recognises, and an example the row must be needed for ([`every_row_is_needed`]).
struct Row {
    name: &'static str,
    divergence: u32,
    matches: fn(&Diff) -> bool,
    example: Example,
}

/// A body that shows a row's difference: a request to node Q (scope "call", or "state" when
/// only what the node stores differs), or an answer read (scope "reply", or "str" for what
/// the original client prints of it).
struct Example {
    scope: &'static str,
    body: &'static str,
}

/// Bodies whose text CPython reads with a codec we do not have (README, divergence 26).
fn declares_other_codec(text: &str) -> bool {
    ["windows-1252"]
        .iter()
        .any(|e| text.contains(&format!("encoding='{e}'")))
}

/// A body as text, for the rows to look at and the report to show (UTF-16 decoded).
fn shown(body: &[u8]) -> String {
    let utf16 = |big: bool, b: &[u8]| {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|p| match big {
                true => u16::from_be_bytes([p[0], p[1]]),
                false => u16::from_le_bytes([p[0], p[1]]),
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    match body {
        [0xFE, 0xFF, rest @ ..] => utf16(true, rest),
        [0xFF, 0xFE, rest @ ..] => utf16(false, rest),
        [0, b'<', ..] => utf16(true, body),
        [b'<', 0, ..] => utf16(false, body),
        _ => String::from_utf8_lossy(body).into_owned(),
    }
}

/// Ours with every carriage return a line feed, as Python's raw `\r` reads back.
fn without_cr(j: &Json) -> Json {
    let text = j.to_string().replace("\\r\\n", "\\n").replace("\\r", "\\n");
    serde_json::from_str(&text).expect("JSON")
}

/// The fault cut as ours cuts every fault (README, divergence 21).
fn cut(s: &str) -> String {
    generals::protocol::fault::cut(s.to_string())
}

/// Whether a tagged struct (a node's stored messages) holds a key or value that is not a
/// string.
fn holds_non_strings(j: &Json) -> bool {
    j["m"].as_array().is_some_and(|items| {
        items
            .iter()
            .any(|kv| !kv[0].is_string() || kv[1].get("s").is_none())
    })
}

/// Whether a tagged value holds an integer beyond 64 bits.
fn has_big_int(j: &Json) -> bool {
    match j {
        Json::Object(o) => o.iter().any(|(k, v)| {
            k == "i" && v.as_str().is_some_and(|n| n.parse::<i64>().is_err()) || has_big_int(v)
        }),
        Json::Array(items) => items.iter().any(has_big_int),
        _ => false,
    }
}

/// Whether a text holds a run of digits beyond 64 bits.
fn has_big_literal(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|run| run.len() >= 19 && run.parse::<i64>().is_err())
}

/// The characters of a JSON string, sorted (the same text in another order).
fn sorted_chars(j: &Json) -> Vec<char> {
    let mut c: Vec<char> = j.as_str().unwrap_or_default().chars().collect();
    c.sort_unstable();
    c
}

const LONG_NAME: &str = "<methodCall><methodName>xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx</methodName></methodCall>";

const ROWS: &[Row] = &[
    Row {
        name: "expat-messages",
        divergence: 5,
        matches: |d| {
            let e = "<class 'xml.parsers.expat.ExpatError'>:";
            d.theirs_fault().is_some_and(|t| t.starts_with(e))
                && d.ours_fault().is_some_and(|o| o.starts_with(e))
        },
        example: Example {
            scope: "call",
            body: "garbage<",
        },
    },
    Row {
        name: "doctype",
        divergence: 5,
        matches: |d| d.ours_says("DOCTYPE and entity declarations are not accepted"),
        example: Example {
            scope: "call",
            body: "<!DOCTYPE x><methodCall><methodName>finalize_decision</methodName></methodCall>",
        },
    },
    Row {
        name: "depth",
        divergence: 5,
        matches: |d| d.ours_says("nested deeper than 64"),
        example: Example {
            scope: "reply",
            body: "<methodResponse><params><param><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data><value><array><data></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></data></array></value></param></params></methodResponse>",
        },
    },
    Row {
        name: "types",
        divergence: 3,
        matches: |d| {
            d.scope == "call"
                && d.ours_says("<class 'TypeError'>:")
                && d.ours_says(" must be a string, not ")
                || d.scope == "state" && holds_non_strings(d.theirs)
        },
        example: Example {
            scope: "call",
            body: "<methodCall><methodName>receive_message</methodName><params><param><value>A</value></param><param><value><int>5</int></value></param></params></methodCall>",
        },
    },
    Row {
        name: "attributes",
        divergence: 11,
        matches: |d| d.theirs_say("object is not callable") && d.ours_says("is not supported"),
        example: Example {
            scope: "call",
            body: "<methodCall><methodName>name</methodName></methodCall>",
        },
    },
    Row {
        name: "extensions",
        divergence: 12,
        matches: |d| {
            d.scope == "call"
                && ["get_messages", "node_info"]
                    .iter()
                    .any(|m| d.theirs_say(&format!("method \\\"{m}\\\" is not supported")))
        },
        example: Example {
            scope: "call",
            body: "<methodCall><methodName>get_messages</methodName></methodCall>",
        },
    },
    Row {
        name: "batch-in-batch",
        divergence: 12,
        matches: |d| {
            d.scope == "call" && d.ours_says("method \\\"system.multicall\\\" is not supported")
        },
        example: Example {
            scope: "call",
            body: "<methodCall><methodName>system.multicall</methodName><params><param><value><array><data><value><struct><member><name>methodName</name><value>system.multicall</value></member><member><name>params</name><value><array><data><value><array><data></data></array></value></data></array></value></member></struct></value></data></array></value></param></params></methodCall>",
        },
    },
    Row {
        name: "carriage-return",
        divergence: 14,
        matches: |d| d.scope != "str" && d.theirs == &without_cr(d.ours),
        example: Example {
            scope: "call",
            body: "<methodCall><methodName>receive_message</methodName><params><param><value>A</value></param><param><value>a&#13;b</value></param></params></methodCall>",
        },
    },
    Row {
        name: "fault-length",
        divergence: 21,
        matches: |d| {
            let (Some(t), Some(o)) = (d.theirs_fault(), d.ours_fault()) else {
                return false;
            };
            t.len() > 200 && o == cut(t)
        },
        example: Example {
            scope: "call",
            body: LONG_NAME,
        },
    },
    Row {
        name: "big-integers",
        divergence: 26,
        matches: |d| {
            has_big_int(d.theirs)
                || d.scope == "call"
                    && has_big_literal(&d.text)
                    && (d.ours_says("9223372036854775807") || d.ours_says("-9223372036854775808"))
        },
        example: Example {
            scope: "reply",
            body: "<methodResponse><params><param><value><i8>99999999999999999999999</i8></value></param></params></methodResponse>",
        },
    },
    Row {
        name: "datetime-text",
        divergence: 26,
        matches: |d| {
            d.scope != "call"
                && d.body_has("dateTime.iso8601")
                && d.theirs_say("\"dt\"")
                && d.ours_says("\"dt\"")
        },
        example: Example {
            scope: "reply",
            body: "<methodResponse><params><param><value><dateTime.iso8601>yesterday</dateTime.iso8601></value></param></params></methodResponse>",
        },
    },
    Row {
        name: "decimal",
        divergence: 26,
        matches: |d| d.body_has("<bigdecimal"),
        example: Example {
            scope: "reply",
            body: "<methodResponse><params><param><value><bigdecimal>1.5</bigdecimal></value></param></params></methodResponse>",
        },
    },
    Row {
        name: "struct-keys",
        divergence: 26,
        matches: |d| d.ours_says("a struct member named by "),
        example: Example {
            scope: "reply",
            body: "<methodResponse><params><param><value><struct><value><int>1</int></value><value>x</value></struct></value></param></params></methodResponse>",
        },
    },
    Row {
        name: "struct-order",
        divergence: 26,
        matches: |d| {
            d.scope == "call" && d.body_has("<name>params</name><value><struct>")
                || d.scope == "str"
                    && d.ours_says("{")
                    && sorted_chars(d.theirs) == sorted_chars(d.ours)
        },
        example: Example {
            scope: "str",
            body: "<methodResponse><params><param><value><struct><member><name>b</name><value>1</value></member><member><name>a</name><value>2</value></member></struct></value></param></params></methodResponse>",
        },
    },
    Row {
        name: "fault-types",
        divergence: 26,
        matches: |d| {
            d.ours_says("a fault whose fault")
                || d.ours_says("\"fault\"") && d.theirs_say("\"fault\":[{\"s\"")
        },
        example: Example {
            scope: "reply",
            body: "<methodResponse><fault><value><struct><member><name>faultCode</name><value>x</value></member><member><name>faultString</name><value>boom</value></member></struct></value></fault></methodResponse>",
        },
    },
    Row {
        name: "codecs",
        divergence: 26,
        matches: |d| declares_other_codec(&d.text) && d.ours_says("unknown encoding"),
        example: Example {
            scope: "reply",
            body: "<?xml version='1.0' encoding='windows-1252'?><methodResponse><params><param><value>x</value></param></params></methodResponse>",
        },
    },
    Row {
        name: "no-content-length",
        divergence: 6,
        matches: |d| {
            d.scope == "http"
                && d.theirs["status"] == 500
                && d.ours_says("request has no Content-Length")
        },
        example: Example {
            scope: "http",
            body: "POST / HTTP/1.0 (no Content-Length)",
        },
    },
    Row {
        name: "content-length",
        divergence: 27,
        matches: |d| {
            let length = d
                .text
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length:"))
                .unwrap_or("");
            d.scope == "http"
                && d.ours["status"] == 400
                && !length.trim().chars().all(|c| c.is_ascii_digit())
        },
        example: Example {
            scope: "http",
            body: "Content-Length: +218",
        },
    },
    Row {
        name: "folded-headers",
        divergence: 27,
        matches: |d| {
            d.scope == "http"
                && d.ours["status"] == 400
                && (d.body_has("\r\n ") || d.body_has("\r\n\t"))
        },
        example: Example {
            scope: "http",
            body: "X-A: a\r\n b",
        },
    },
    Row {
        name: "tuples",
        divergence: 26,
        matches: |d| d.scope == "str" && d.theirs.as_str().is_some_and(|t| t.starts_with('(')),
        example: Example {
            scope: "str",
            body: "<methodResponse><params></params></methodResponse>",
        },
    },
];

/// The divergences chapter of the guide (docs/guide/divergences.md), once the README's.
fn divergences() -> String {
    std::fs::read_to_string(crate::common::root().join("docs/guide/divergences.md"))
        .expect("docs/guide/divergences.md")
}

/// The guide's table: (row name, divergence number).
fn readme_rows() -> BTreeMap<String, u32> {
    let readme = divergences();
    let start = readme
        .find("## Where we differ from CPython, row by row")
        .expect("the guide has the table of differences from CPython");
    let mut rows = BTreeMap::new();
    for line in readme[start..].lines().skip(1) {
        if line.starts_with("## ") || line.starts_with("### ") {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let name = cells[1].trim_matches('`').to_string();
        let divergence = cells[2]
            .parse()
            .unwrap_or_else(|_| panic!("guide row {name}: divergence {:?}", cells[2]));
        rows.insert(name, divergence);
    }
    rows
}

/// Whether the guide's numbered divergence list has item `n`.
fn readme_has_divergence(n: u32) -> bool {
    let readme = divergences();
    let list = readme
        .split("# Deliberate divergences from the original")
        .nth(1)
        .and_then(|l| l.split("## Where we differ from CPython").next())
        .expect("the divergence list");
    list.lines().any(|l| l.starts_with(&format!("{n}. ")))
}

#[test]
fn the_readme_table_is_the_tests_table() {
    let readme = readme_rows();
    let ours: BTreeMap<String, u32> = ROWS
        .iter()
        .map(|r| (r.name.to_string(), r.divergence))
        .collect();
    assert_eq!(
        readme, ours,
        "the guide's rows (left) and tests/cpython_oracle.rs's ROWS (right)"
    );
    for row in ROWS {
        assert!(
            readme_has_divergence(row.divergence),
            "row {}: the guide has no divergence {}",
            row.name,
            row.divergence
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// Cases per run: each is 2-4 request bodies, plus as many answer bodies read
/// (`CPYTHON_ORACLE_CASES=N` runs more).
const CASES: usize = 3000;

fn case_count() -> usize {
    std::env::var("CPYTHON_ORACLE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES)
}

fn seed() -> u64 {
    match std::env::var("CPYTHON_ORACLE_SEED") {
        Ok(s) => s.parse().expect("CPYTHON_ORACLE_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}

/// Which row explains a difference, or `None`.
fn explained(d: &Diff) -> Option<&'static Row> {
    ROWS.iter().find(|r| (r.matches)(d))
}

struct Report {
    seed: u64,
    compared: usize,
    failures: Vec<String>,
    used: BTreeMap<&'static str, usize>,
}

impl Report {
    fn differ(&mut self, d: Diff, context: impl Fn() -> String) -> bool {
        match explained(&d) {
            Some(row) => {
                *self.used.entry(row.name).or_default() += 1;
                true
            }
            None => {
                if self.failures.len() < 8 {
                    self.failures.push(format!(
                        "{}\n  body:   {:?}\n  CPython: {}\n  ours:    {}",
                        context(),
                        d.text,
                        d.theirs,
                        d.ours
                    ));
                }
                true
            }
        }
    }
}

#[test]
fn cpython_and_we_answer_and_read_alike() {
    let seed = seed();
    let started = Instant::now();
    let mut g = Gen { rng: Rng(seed) };
    let cases: Vec<Case> = (0..case_count()).map(|_| g.case()).collect();
    let replies: Vec<Vec<u8>> = (0..case_count()).map(|_| g.reply()).collect();
    let loyal = Offline::new("Q", false).expect("an offline node");
    let faulty = Offline::new("P", true).expect("an offline node");
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut requests = Vec::new();
    let mut states = Vec::new();
    for case in &cases {
        let node = if case.node == "P" { &faulty } else { &loyal };
        node.reset();
        let mut ours = Vec::new();
        let mut state = Vec::new();
        for body in &case.bodies {
            ours.push(b64(node.respond(body).as_bytes()));
            state.push(stored(node));
        }
        states.push(state);
        requests.push(json!({
            "t": "call", "node": case.node, "faulty": case.node == "P",
            "bodies": case.bodies.iter().map(|b| b64(b)).collect::<Vec<_>>(), "ours": ours,
        }));
    }
    for body in &replies {
        requests.push(json!({ "t": "reply", "body": b64(body) }));
    }
    let mut oracle = Oracle::start();
    let answers = oracle.ask(requests);
    let mut report = Report {
        seed,
        compared: 0,
        failures: Vec::new(),
        used: BTreeMap::new(),
    };
    for (i, (case, answer)) in cases.iter().zip(&answers).enumerate() {
        let theirs = answer["theirs"].as_array().expect("theirs");
        let ours = answer["ours"].as_array().expect("ours");
        let their_state = answer["state"].as_array().expect("state");
        for (k, body) in case.bodies.iter().enumerate() {
            report.compared += 1;
            let (mut t, mut o) = (normal(&theirs[k]), normal(&ours[k]));
            let mut scope = "call";
            if t == o {
                // The same answer, and the same messages stored?
                (t, o) = (normal(&their_state[k]), normal(&states[i][k]));
                scope = "state";
                if t == o {
                    continue;
                }
            }
            let d = Diff {
                text: shown(body),
                theirs: &t,
                ours: &o,
                scope,
            };
            report.differ(d, || {
                let earlier: Vec<String> = case.bodies[..k].iter().map(|b| shown(b)).collect();
                format!(
                    "case {i} (node {}), request {k} of {}; before it: {earlier:?}",
                    case.node,
                    case.bodies.len()
                )
            });
            // The node's state may differ from here on (a refused store): the rest of the
            // case says nothing.
            break;
        }
    }
    for (i, (body, answer)) in replies.iter().zip(&answers[cases.len()..]).enumerate() {
        report.compared += 1;
        let theirs = normal(&answer["read"]);
        let ours = normal(&our_reading(body));
        if !same_reading(&theirs, &ours) {
            let d = Diff {
                text: shown(body),
                theirs: &theirs,
                ours: &ours,
                scope: "reply",
            };
            report.differ(d, || format!("reply {i}"));
            continue;
        }
        // What the original client prints of the value ServerProxy returns.
        if let (Some(python_shows), Ok(Ok(value))) =
            (answer["str"].as_str(), xmlrpc::decode_response(body))
        {
            let printed = generals::protocol::python_str(&value);
            if printed != python_shows {
                let (t, o) = (
                    Json::String(python_shows.to_string()),
                    Json::String(printed),
                );
                let d = Diff {
                    text: shown(body),
                    theirs: &t,
                    ours: &o,
                    scope: "str",
                };
                report.differ(d, || format!("reply {i}, as printed"));
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "cpython oracle: seed {seed}: {} bodies compared ({} cases, {} replies) in {:.1} s; rows used: {:?}",
        report.compared,
        cases.len(),
        replies.len(),
        elapsed.as_secs_f64(),
        report.used
    );
    assert!(
        report.failures.is_empty(),
        "CPython and we differ, and no row of ROWS explains it (seed {}: CPYTHON_ORACLE_SEED={} repeats the run):\n{}",
        report.seed,
        report.seed,
        report.failures.join("\n")
    );
    assert!(
        report.compared >= 5000,
        "only {} bodies compared",
        report.compared
    );
}

/// Each row's example differs between CPython and us, and the row explains it: no row is
/// stale, and each is needed.
#[test]
fn every_row_is_needed() {
    let mut oracle = Oracle::start();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let node = Offline::new("Q", false).expect("an offline node");
    let mut requests = Vec::new();
    let mut ours_all = Vec::new();
    for row in ROWS.iter().filter(|r| r.example.scope != "http") {
        let body = row.example.body.as_bytes();
        match row.example.scope {
            "call" | "state" => {
                node.reset();
                let answer = node.respond(body);
                ours_all.push(stored(&node));
                requests.push(json!({
                    "t": "call", "node": "Q", "faulty": false,
                    "bodies": [b64(body)], "ours": [b64(answer.as_bytes())],
                }));
            }
            _ => {
                ours_all.push(Json::Null);
                requests.push(json!({ "t": "reply", "body": b64(body) }));
            }
        }
    }
    let answers = oracle.ask(requests);
    let rows = ROWS.iter().filter(|r| r.example.scope != "http");
    for ((row, answer), state) in rows.zip(&answers).zip(&ours_all) {
        let body = row.example.body.as_bytes();
        let (theirs, ours) = match row.example.scope {
            "call" => (normal(&answer["theirs"][0]), normal(&answer["ours"][0])),
            "state" => (normal(&answer["state"][0]), normal(state)),
            "reply" => (normal(&answer["read"]), normal(&our_reading(body))),
            _ => {
                let value = xmlrpc::decode_response(body)
                    .expect("a reply")
                    .expect("a value");
                (
                    answer["str"].clone(),
                    Json::String(generals::protocol::python_str(&value)),
                )
            }
        };
        let differ = match row.example.scope {
            "reply" => !same_reading(&theirs, &ours),
            _ => theirs != ours,
        };
        assert!(
            differ,
            "row {}: its example reads the same on both sides: {theirs}",
            row.name
        );
        let d = Diff {
            text: shown(body),
            theirs: &theirs,
            ours: &ours,
            scope: row.example.scope,
        };
        assert!(
            (row.matches)(&d),
            "row {} does not recognise its example:\n CPython: {theirs}\n ours:    {ours}",
            row.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP framing, against running servers
// ---------------------------------------------------------------------------------------------

/// One raw exchange: send `request`, half-close when asked (a server reading to the end of
/// the connection needs it), read until the server closes. The status, and the body.
fn exchange(port: u16, request: &[u8], half_close: bool) -> (u16, Vec<u8>) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .expect("timeout");
    s.write_all(request).expect("write");
    if half_close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, buf.get(split + 4..).unwrap_or_default().to_vec())
}

/// An exchange as the rows see it: the status, and for a 200 the answer as our client reads
/// it (the node answers the same call on both sides: CPython's answers are ours byte for
/// byte there, `cpython_and_we_answer_and_read_alike`).
fn http_answer(status: u16, body: &[u8]) -> Json {
    match (status, generals::peer::read_reply_bytes(body)) {
        (200, Ok(Ok(v))) => json!({ "status": 200, "value": tag(&v) }),
        (200, Ok(Err(f))) => {
            json!({ "status": 200, "fault": [{ "i": f.code().to_string() }, { "s": f.string() }] })
        }
        (status, _) => json!({ "status": status }),
    }
}

/// Paths, `Content-Length` forms, folded headers and `Content-Encoding`s, sent to the
/// stand-in (CPython's `SimpleXMLRPCServer`) and to our server, each hosting node Q: the same
/// status and answer, or a row of [`ROWS`] (scope "http"), each of which is needed once.
#[test]
fn http_framing_as_cpython() {
    let python = crate::common::Cluster::builder()
        .hosting(crate::common::Side::Python, "Q", &[])
        .start();
    let rust = crate::common::Cluster::builder()
        .hosting(crate::common::Side::Rust, "Q", &["--quiet"])
        .start();
    let call = generals::peer::call_body(
        "receive_message",
        &[Value::String("H".into()), Value::String("attack".into())],
    )
    .expect("a call");
    let gz = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).expect("gzip");
        e.finish().expect("gzip")
    };
    let n = call.len();
    // (what, head lines after the request line, body, half-close)
    let post = |target: &str, headers: &str, body: &[u8]| -> Vec<u8> {
        [
            format!("POST {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n")
                .into_bytes(),
            body.to_vec(),
        ]
        .concat()
    };
    let length = format!("Content-Length: {n}\r\n");
    /// The request for a server on a port.
    type Request<'a> = Box<dyn Fn(u16) -> Vec<u8> + 'a>;
    let rows: Vec<(&str, Request, bool)> = vec![
        (
            "POST /",
            Box::new(|_| post("/", &length, call.as_bytes())),
            false,
        ),
        (
            "POST /RPC2",
            Box::new(|_| post("/RPC2", &length, call.as_bytes())),
            false,
        ),
        (
            "a query",
            Box::new(|_| post("/RPC2?x=1", &length, call.as_bytes())),
            false,
        ),
        (
            "//",
            Box::new(|_| post("//", &length, call.as_bytes())),
            false,
        ),
        (
            "//RPC2",
            Box::new(|_| post("//RPC2", &length, call.as_bytes())),
            false,
        ),
        (
            "/rpc2",
            Box::new(|_| post("/rpc2", &length, call.as_bytes())),
            false,
        ),
        (
            "/RPC2/",
            Box::new(|_| post("/RPC2/", &length, call.as_bytes())),
            false,
        ),
        (
            "absolute form",
            Box::new(|port| {
                post(
                    &format!("http://127.0.0.1:{port}/RPC2"),
                    &length,
                    call.as_bytes(),
                )
            }),
            false,
        ),
        (
            "GET",
            Box::new(|_| b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec()),
            false,
        ),
        (
            "HTTP/1.0",
            Box::new(|_| {
                [
                    format!("POST / HTTP/1.0\r\n{length}\r\n").into_bytes(),
                    call.as_bytes().to_vec(),
                ]
                .concat()
            }),
            false,
        ),
        (
            "Content-Encoding: GZIP",
            Box::new(|_| {
                let z = gz(call.as_bytes());
                post(
                    "/",
                    &format!("Content-Encoding: GZIP\r\nContent-Length: {}\r\n", z.len()),
                    &z,
                )
            }),
            false,
        ),
        (
            "Content-Encoding: identity",
            Box::new(|_| {
                post(
                    "/",
                    &format!("Content-Encoding: Identity\r\n{length}"),
                    call.as_bytes(),
                )
            }),
            false,
        ),
        (
            "Content-Encoding: gzip, not gzip",
            Box::new(|_| {
                post(
                    "/",
                    &format!("Content-Encoding: gzip\r\n{length}"),
                    call.as_bytes(),
                )
            }),
            false,
        ),
        (
            "Content-Encoding: deflate",
            Box::new(|_| {
                post(
                    "/",
                    &format!("Content-Encoding: deflate\r\n{length}"),
                    call.as_bytes(),
                )
            }),
            false,
        ),
        (
            "Content-Length: +N",
            Box::new(|_| post("/", &format!("Content-Length: +{n}\r\n"), call.as_bytes())),
            false,
        ),
        (
            "Content-Length: abc",
            Box::new(|_| post("/", "Content-Length: abc\r\n", call.as_bytes())),
            false,
        ),
        (
            "Content-Length: -1",
            Box::new(|_| post("/", "Content-Length: -1\r\n", call.as_bytes())),
            true,
        ),
        (
            "a folded header",
            Box::new(|_| post("/", &format!("X-A: a\r\n b\r\n{length}"), call.as_bytes())),
            false,
        ),
        ("no Content-Length", Box::new(|_| post("/", "", b"")), false),
    ];
    let mut used = BTreeMap::new();
    let mut failures = Vec::new();
    for (what, request, half_close) in &rows {
        let their_request = request(python.port("Q"));
        let (ts, tb) = exchange(python.port("Q"), &their_request, *half_close);
        let (os, ob) = exchange(rust.port("Q"), &request(rust.port("Q")), *half_close);
        let (theirs, ours) = (http_answer(ts, &tb), http_answer(os, &ob));
        if theirs == ours {
            continue;
        }
        let d = Diff {
            text: String::from_utf8_lossy(&their_request).into_owned(),
            theirs: &theirs,
            ours: &ours,
            scope: "http",
        };
        match explained(&d) {
            Some(row) => *used.entry(row.name).or_insert(0) += 1,
            None => failures.push(format!("{what}: CPython {theirs}, ours {ours}")),
        }
    }
    eprintln!("HTTP rows used: {used:?}");
    assert!(
        failures.is_empty(),
        "HTTP framing differs from CPython's:\n{}",
        failures.join("\n")
    );
    for row in ROWS.iter().filter(|r| r.example.scope == "http") {
        assert!(
            used.contains_key(row.name),
            "row {} is needed by no request of the table",
            row.name
        );
    }
}
