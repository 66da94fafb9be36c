//! The fast path for XML-RPC bodies over dxr's types: it reads a request into a
//! [`dxr::MethodCall`] and writes a [`dxr::Value`] or [`dxr::Fault`] answer, and it writes the
//! relay batches of agreement rounds ([`encode_call`]) and reads their replies
//! ([`decode_response`]); every other outgoing call and reply is dxr's own (`peer`). It exists
//! because, measured side by side, dxr's reader and writer cost the server more than the 10%
//! of throughput we allow (BENCHMARKS.md, "dxr on the server"), and dxr's writer and reader of
//! relay batches a third of an exploration's CPU ("Agreement in explicit rounds"). dxr is its
//! oracle: `tests/codec_oracle.rs` feeds both readers the same bodies and requires equal calls
//! (and replies) wherever both accept, and reads every answer and batch we write back through
//! dxr.
//!
//! Writing: the layout of answers (newlines, `<?xml version='1.0'?>`, `<int>` for integers,
//! escaping only `&`, `<`, `>`) is Python's byte for byte, so a capture of a Rust node looks
//! like a capture of the original; batches are compact. Reading: one pass of quick-xml events
//! through a value stack, the same algorithm as Python's `xmlrpc.client.Unmarshaller`, so we
//! accept what Python accepts (an untyped `<value>` is a string, empty method and member names
//! are fine) and reject what a node must never process (DOCTYPE and entity declarations,
//! nesting deeper than [`MAX_DEPTH`]). Characters XML 1.0 forbids are refused before either
//! reader runs, with expat's own fault ([`check_chars`]), and never written ([`escape_into`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use base64::Engine as _;
use dxr::{Fault, MethodCall, Value};
use quick_xml::events::{BytesStart, Event};

use crate::protocol::python_repr;

/// Deepest element nesting a body may have. Calls of this protocol are 6 deep; a deeper
/// document only costs memory and stack.
pub const MAX_DEPTH: usize = 64;

/// Longest excerpt of a bad request quoted back in a fault.
pub const MAX_ECHO: usize = 200;

/// Which reader and writer a node uses (`server --xml-codec`): for the bodies of the requests
/// it serves and their answers, and for the relay batches it sends in agreement rounds and
/// their replies. The fast path (this module) is the default; `dxr` exists so
/// `scripts/bench.sh` can measure dxr against it in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// [`decode_call`], [`encode_response`]; batches by [`encode_call`], [`decode_response`].
    #[default]
    Fast,
    /// dxr's `MethodCall::from_xml` (behind the same refusals), `MethodResponse::to_xml`;
    /// batches by `dxr_client`, as every other outgoing call.
    Dxr,
}

impl std::str::FromStr for Codec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fast" => Ok(Codec::Fast),
            "dxr" => Ok(Codec::Dxr),
            other => Err(format!("unknown codec {other:?}: fast or dxr")),
        }
    }
}

/// Why a body is not a call (or response) we can use. Each variant is the Python exception
/// class the same input raises in the original, so faults keep Python's prefixes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not well-formed XML (or not UTF-8); the message is quick-xml's (Python: `ExpatError`).
    #[error("{0}")]
    Malformed(String),
    /// Well-formed but refused or not a valid value (Python: `ValueError`).
    #[error("{0}")]
    Refused(String),
    /// A value of the wrong shape, e.g. `<boolean>2</boolean>` (Python: `TypeError`).
    #[error("{0}")]
    Type(String),
}

/// Parse an XML-RPC `methodCall` body.
pub fn decode_call(body: &[u8]) -> Result<MethodCall<'static>, DecodeError> {
    let text = checked_text(body)?;
    if let Some(call) = plain_call(text) {
        return Ok(call);
    }
    let u = parse(text, CALL)?;
    match u.method_name {
        Some(name) => Ok(MethodCall {
            name: name.into(),
            params: u.values,
        }),
        _ => Err(DecodeError::Refused(format!(
            "not an XML-RPC methodCall (no methodName): {}",
            excerpt(text)
        ))),
    }
}

/// Parse an XML-RPC `methodResponse` body: the value, or the fault. Used for the replies to
/// the relay batches of agreement rounds (see `peer::Peers::multicall`); the same one-pass
/// reader as [`decode_call`], so it reads whatever Python or dxr writes, and
/// `tests/codec_oracle.rs` holds it to dxr's reader.
pub fn decode_response(body: &[u8]) -> Result<Result<Value, Fault>, DecodeError> {
    let text = checked_text(body)?;
    let u = parse(text, RESPONSE)?;
    let not_one = || {
        DecodeError::Refused(format!(
            "not an XML-RPC methodResponse (one value or one fault): {}",
            excerpt(text)
        ))
    };
    let [value] = <[Value; 1]>::try_from(u.values).map_err(|_| not_one())?;
    if u.method_name.is_some() {
        return Err(not_one());
    }
    if !u.fault {
        return Ok(Ok(value));
    }
    match value {
        Value::Struct(m) if m.len() == 2 => match (m.get("faultCode"), m.get("faultString")) {
            (Some(Value::Integer(code)), Some(Value::String(string))) => {
                Ok(Err(Fault::new(*code, string.clone())))
            }
            _ => Err(not_one()),
        },
        _ => Err(not_one()),
    }
}

/// Parse a `methodCall` body with dxr's reader instead (`MethodCall::from_xml`), behind the
/// same refusals as [`decode_call`] (DOCTYPE, excerpts of at most [`MAX_ECHO`] bytes; dxr
/// itself stops at 128 levels of nesting). The server uses it with `--xml-codec dxr`, which
/// exists to measure dxr against the fast path in one run (`scripts/bench.sh`).
pub fn decode_call_dxr(body: &[u8]) -> Result<MethodCall<'static>, DecodeError> {
    let text = checked_text(body)?;
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err(DecodeError::Refused(
            "DOCTYPE and entity declarations are not accepted".into(),
        ));
    }
    match MethodCall::from_xml(text) {
        Ok(call) => Ok(MethodCall {
            name: call.name.into_owned().into(),
            params: call.params,
        }),
        // dxr's error is the whole body; say what it is and quote the start only.
        Err(_) => Err(DecodeError::Malformed(format!(
            "not a valid XML-RPC methodCall (dxr): {}",
            excerpt(text)
        ))),
    }
}

/// The call nearly every caller sends, read without the general reader: string parameters
/// only, laid out as Python's `xmlrpc.client` or dxr writes them (an optional declaration,
/// line breaks only between elements), and no `<`, `>`, `&` or carriage return in the method
/// name or any value. `None` for anything else, which [`parse`] then reads; what this reads,
/// [`parse`] reads the same (tests below, and `tests/codec_oracle.rs` against dxr).
///
/// Why: the general reader (quick-xml events through the value stack) took 17,000
/// instructions of a `receive_message` call's 43,000, more than a bare hyper server spends on
/// a whole request (BENCHMARKS.md, "Close to the limit"); this takes a few hundred.
fn plain_call(text: &str) -> Option<MethodCall<'static>> {
    fn tag<'a>(rest: &'a str, tag: &str) -> Option<&'a str> {
        rest.trim_start_matches('\n').strip_prefix(tag)
    }
    /// The text up to the next `<`, which must start `close`.
    fn plain<'a>(rest: &'a str, close: &str) -> Option<(&'a str, &'a str)> {
        let end = memchr::memchr(b'<', rest.as_bytes())?;
        let text = &rest[..end];
        if memchr::memchr3(b'&', b'>', b'\r', text.as_bytes()).is_some() {
            return None;
        }
        Some((text, rest[end..].strip_prefix(close)?))
    }
    let mut rest = ["<?xml version='1.0'?>", "<?xml version=\"1.0\"?>"]
        .iter()
        .find_map(|decl| text.strip_prefix(decl))
        .unwrap_or(text);
    rest = tag(rest, "<methodCall>")?;
    rest = tag(rest, "<methodName>")?;
    let (name, after) = plain(rest, "</methodName>")?;
    rest = tag(after, "<params>")?;
    let mut params = Vec::new();
    loop {
        if let Some(after) = tag(rest, "</params>") {
            rest = after;
            break;
        }
        rest = tag(tag(rest, "<param>")?, "<value><string>")?;
        let (value, after) = plain(rest, "</string></value>")?;
        rest = tag(after, "</param>")?;
        params.push(Value::String(value.to_string()));
    }
    rest = tag(rest, "</methodCall>")?;
    rest.trim_start_matches('\n')
        .is_empty()
        .then(|| MethodCall {
            name: name.to_string().into(),
            params,
        })
}

/// `body` as text, once it is UTF-8 and [`check_chars`] finds nothing XML 1.0 forbids.
fn checked_text(body: &[u8]) -> Result<&str, DecodeError> {
    let text = utf8(body)?;
    check_chars(text)?;
    Ok(text)
}

/// Whether XML 1.0 allows `c` in a document (its production `Char`): tab, line feed, carriage
/// return, and U+0020 and above but U+FFFE and U+FFFF (a Rust `char` is never a surrogate).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Refuse a document holding a character XML 1.0 forbids, as expat (the original's parser)
/// does, with expat's message and position, so the fault is Python's byte for byte:
/// - raw, anywhere (comments included): `not well-formed (invalid token): line 9, column 16`;
/// - as a character reference (`&#x1b;`, `&#1;`, `&#0;`, `&#xD800;`, `&#xFFFE;`, beyond
///   U+10FFFF), in text or attribute values but not inside comments, CDATA sections or
///   processing instructions, where `&` is plain text: `reference to invalid character number:
///   line 9, column 15` (the column of the `&`).
///
/// Why before the readers: quick-xml and dxr both take such characters, and a value holding
/// one, stored and written back, makes every later answer unreadable to Python's
/// `xmlrpc.client` (expat refuses the whole reply). One pass over the bytes, for both codecs;
/// a malformed reference (`&#xZZ;`) is left to the reader.
pub fn check_chars(text: &str) -> Result<(), DecodeError> {
    let b = text.as_bytes();
    // Without a `&` there is no reference to check, and without a 0xEF byte no U+FFFE or
    // U+FFFF: one branch-free pass over the bytes for raw control characters says it all
    // (the pass below, byte by byte, was a tenth of a call's instructions).
    if memchr::memchr2(b'&', 0xEF, b).is_none() && !has_raw_control(b) {
        return Ok(());
    }
    let invalid_token = |at: usize| {
        let (line, column) = line_column(text, at);
        DecodeError::Malformed(format!(
            "not well-formed (invalid token): line {line}, column {column}"
        ))
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r') => return Err(invalid_token(i)),
            0xEF if matches!(b.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])) => {
                return Err(invalid_token(i));
            }
            b'<' => {
                // Sections where `&` is text: only raw characters are checked there.
                let rest = &b[i..];
                let section = [("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>")]
                    .into_iter()
                    .find(|(open, _)| rest.starts_with(open.as_bytes()));
                if let Some((open, close)) = section {
                    let start = i + open.len();
                    let end = find(&b[start..], close.as_bytes()).map_or(b.len(), |e| start + e);
                    if let Some(at) = first_raw_forbidden(&b[start..end]) {
                        return Err(invalid_token(start + at));
                    }
                    i = (end + close.len()).min(b.len());
                    continue;
                }
            }
            b'&' if b.get(i + 1) == Some(&b'#')
                && char_ref(&b[i + 2..]).is_some_and(|c| !c.is_some_and(is_xml_char)) =>
            {
                let (line, column) = line_column(text, i);
                return Err(DecodeError::Malformed(format!(
                    "reference to invalid character number: line {line}, column {column}"
                )));
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Whether `b` holds a control character other than tab, line feed and carriage return. Each
/// 32-byte block is folded with comparisons only, which the compiler turns into a few vector
/// instructions per block (a count or an early exit per byte cost six instructions a byte,
/// BENCHMARKS.md, "Close to the limit").
fn has_raw_control(b: &[u8]) -> bool {
    b.chunks(32).any(|block| {
        block.iter().fold(0u8, |bad, &c| {
            bad | (u8::from(c < 0x20)
                & u8::from(c != b'\t')
                & u8::from(c != b'\n')
                & u8::from(c != b'\r'))
        }) != 0
    })
}

/// The first byte of `b` that starts a character XML 1.0 forbids.
fn first_raw_forbidden(b: &[u8]) -> Option<usize> {
    (0..b.len()).find(|&i| match b[i] {
        c if c < 0x20 => !matches!(c, b'\t' | b'\n' | b'\r'),
        0xEF => matches!(b.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])),
        _ => false,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The character of a reference whose text after `&#` starts `b` (`x1b;...`, `65;...`):
/// `None` when it is not a well-formed reference (left to the reader), `Some(None)` when its
/// number is no character at all (a surrogate, beyond U+10FFFF, too many digits).
fn char_ref(b: &[u8]) -> Option<Option<char>> {
    let (radix, digits) = match b.first() {
        Some(b'x') => (16, &b[1..]),
        _ => (10, b),
    };
    // Only the digits are read (never a search for the `;`), so the pass stays linear
    // whatever the body holds.
    let end = digits
        .iter()
        .position(|&c| !char::from(c).is_digit(radix))
        .unwrap_or(digits.len());
    if end == 0 || digits.get(end) != Some(&b';') {
        return None;
    }
    let digits = std::str::from_utf8(&digits[..end]).ok()?;
    Some(
        u32::from_str_radix(digits, radix)
            .ok()
            .and_then(char::from_u32),
    )
}

/// Expat's position of byte `at` in `text`: line from 1 (a line ends at LF, CR or CR LF),
/// column from 0, in characters.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let (mut line, mut column, mut after_cr) = (1, 0, false);
    for c in text[..at].chars() {
        match c {
            '\n' if after_cr => column = 0,
            '\n' | '\r' => {
                line += 1;
                column = 0;
            }
            _ => column += 1,
        }
        after_cr = c == '\r';
    }
    (line, column)
}

fn utf8(body: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(body).map_err(|e| {
        DecodeError::Malformed(format!(
            "not well-formed (invalid UTF-8 at byte {})",
            e.valid_up_to()
        ))
    })
}

/// At most [`MAX_ECHO`] bytes of `text`, cut at a character boundary.
pub fn excerpt(text: &str) -> &str {
    excerpt_to(text, MAX_ECHO)
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn excerpt_to(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Python's `Unmarshaller`: a stack of finished values, marks where open arrays and structs
/// begin, and the text of the element being read.
#[derive(Default)]
struct Unmarshaller {
    values: Vec<Value>,
    marks: Vec<usize>,
    data: String,
    /// Inside a `<value>` that has no typed child (yet): its text is a string.
    bare_value: bool,
    method_name: Option<String>,
    /// A `<fault>` element was closed (a fault response).
    fault: bool,
}

impl Unmarshaller {
    fn start(&mut self, tag: &str) {
        if tag == "array" || tag == "struct" {
            self.marks.push(self.values.len());
        }
        self.data.clear();
        self.bare_value = tag == "value";
    }

    fn end(&mut self, tag: &str) -> Result<(), DecodeError> {
        let data = std::mem::take(&mut self.data);
        let value = match tag {
            "string" | "name" => Value::String(data),
            "value" => {
                if !self.bare_value {
                    return Ok(());
                }
                self.bare_value = false;
                Value::String(data)
            }
            "int" | "i1" | "i2" | "i4" | "i8" | "biginteger" => int(&data)?,
            "boolean" => match data.as_str() {
                "0" => Value::Boolean(false),
                "1" => Value::Boolean(true),
                _ => return Err(DecodeError::Type("bad boolean value".into())),
            },
            "double" | "float" | "bigdecimal" => {
                Value::Double(data.trim().parse().map_err(|_| {
                    DecodeError::Refused(format!(
                        "could not convert string to float: {}",
                        python_repr(&data)
                    ))
                })?)
            }
            "base64" => {
                let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                Value::Base64(
                    base64::engine::general_purpose::STANDARD
                        .decode(compact)
                        .map_err(|e| DecodeError::Refused(format!("invalid base64: {e}")))?,
                )
            }
            "dateTime.iso8601" => {
                Value::DateTime(dxr::DateTime::from_str(data.trim()).map_err(|_| {
                    DecodeError::Refused(format!(
                        "invalid dateTime.iso8601 {}",
                        python_repr(excerpt(&data))
                    ))
                })?)
            }
            "nil" => Value::Nil,
            "array" => {
                let mark = self.marks.pop().unwrap_or(0).min(self.values.len());
                Value::Array(self.values.split_off(mark))
            }
            "struct" => {
                let mark = self.marks.pop().unwrap_or(0).min(self.values.len());
                let items = self.values.split_off(mark);
                if !items.len().is_multiple_of(2) {
                    return Err(DecodeError::Refused(
                        "struct member without a name or a value".into(),
                    ));
                }
                let mut map = BTreeMap::new();
                let mut it = items.into_iter();
                while let (Some(name), Some(v)) = (it.next(), it.next()) {
                    let Value::String(name) = name else {
                        return Err(DecodeError::Type(
                            "struct member name is not a string".into(),
                        ));
                    };
                    map.insert(name, v);
                }
                Value::Struct(map)
            }
            "methodName" => {
                self.method_name = Some(data);
                return Ok(());
            }
            "fault" => {
                self.fault = true;
                return Ok(());
            }
            // params, param, data, member, methodCall, methodResponse, and unknown tags
            // (which Python ignores too).
            _ => return Ok(()),
        };
        self.values.push(value);
        Ok(())
    }
}

/// Python's `int()` of an element's text, as `i4` when it fits and `i8` otherwise.
fn int(data: &str) -> Result<Value, DecodeError> {
    let n: i64 = data.trim().parse().map_err(|_| {
        DecodeError::Refused(format!(
            "invalid literal for int() with base 10: {}",
            python_repr(excerpt(data))
        ))
    })?;
    Ok(i32::try_from(n)
        .map(Value::Integer)
        .unwrap_or(Value::Long(n)))
}

/// The root element of a call body.
const CALL: &str = "methodCall";
/// The root element of a response body.
const RESPONSE: &str = "methodResponse";

/// One pass over the document, whose root must be `root`: the finished unmarshaller (method
/// name, values, whether a fault was read).
///
/// Longer than the crate's other functions on purpose: it is one loop over quick-xml's
/// events with one arm per event kind (each guard a few lines: depth, DOCTYPE, the root, the
/// forbidden characters), the hot path of every request; split into functions, each arm would
/// need the loop's whole state passed in, and the reader of a call would no longer be read
/// top to bottom. `Unmarshaller::end` is the same for the element ends, as Python's
/// `xmlrpc.client.Unmarshaller` has one dispatch table for them.
fn parse(text: &str, root_name: &str) -> Result<Unmarshaller, DecodeError> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut u = Unmarshaller::default();
    let mut depth = 0usize;
    let mut root = false;
    let malformed = |reader: &quick_xml::Reader<&[u8]>, e: &dyn std::fmt::Display| {
        // quick-xml's messages quote names from the document: cut them like any excerpt.
        let message = e.to_string();
        DecodeError::Malformed(format!(
            "not well-formed ({}): byte {}",
            excerpt(&message),
            reader.error_position()
        ))
    };
    loop {
        let event = reader.read_event().map_err(|e| malformed(&reader, &e))?;
        match event {
            Event::Start(start) => {
                if depth == 0 {
                    root = check_root(&start, root, root_name)?;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(DecodeError::Refused(format!(
                        "document nested deeper than {MAX_DEPTH} elements"
                    )));
                }
                u.start(start.name().into_inner());
            }
            Event::Empty(start) => {
                if depth == 0 {
                    root = check_root(&start, root, root_name)?;
                }
                let name = start.name().into_inner();
                u.start(name);
                u.end(name)?;
            }
            Event::End(end) => {
                depth = depth.saturating_sub(1);
                u.end(end.name().into_inner())?;
            }
            Event::Text(t) => {
                if depth == 0 {
                    if !t.as_ref().trim().is_empty() {
                        return Err(DecodeError::Malformed(format!(
                            "not well-formed (text outside the root element): byte {}",
                            reader.buffer_position()
                        )));
                    }
                } else {
                    u.data.push_str(&t.xml10_content());
                }
            }
            Event::CData(c) => u.data.push_str(&c.xml10_content()),
            Event::GeneralRef(r) => {
                if depth == 0 {
                    return Err(DecodeError::Malformed(
                        "not well-formed (reference outside the root element)".into(),
                    ));
                }
                let c = match r.resolve_char_ref().map_err(|e| malformed(&reader, &e))? {
                    Some(c) => c,
                    None => match r.as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => {
                            // Entity names are short; a long one is cut so the whole message
                            // stays under MAX_ECHO and cannot copy a run of the body.
                            return Err(DecodeError::Malformed(format!(
                                "undefined entity &{};: byte {}",
                                excerpt_to(other, 64),
                                reader.buffer_position()
                            )));
                        }
                    },
                };
                u.data.push(c);
            }
            Event::DocType(_) => {
                return Err(DecodeError::Refused(
                    "DOCTYPE and entity declarations are not accepted".into(),
                ));
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if depth != 0 {
        return Err(DecodeError::Malformed(
            "no element found: unclosed element".into(),
        ));
    }
    if !root {
        return Err(DecodeError::Malformed("no element found".into()));
    }
    if !u.marks.is_empty() {
        return Err(DecodeError::Refused(format!(
            "not an XML-RPC {root_name} (an array or struct is not closed): {}",
            excerpt(text)
        )));
    }
    Ok(u)
}

fn check_root(start: &BytesStart<'_>, seen: bool, root_name: &str) -> Result<bool, DecodeError> {
    if seen {
        return Err(DecodeError::Malformed("junk after document element".into()));
    }
    let name = start.name().into_inner();
    if name != root_name {
        return Err(DecodeError::Refused(format!(
            "not an XML-RPC {root_name}: root element is <{}>",
            excerpt_to(name, MAX_ECHO - 2)
        )));
    }
    Ok(true)
}

const HEADER: &str = "<?xml version='1.0'?>\n";

/// A `methodCall` body of `method(params)`, compact (no whitespace between elements, as dxr
/// writes: a batch of relays has a dozen elements per message, and every line break would be
/// one more event for the receiver's reader). Used for the relay batches of agreement rounds
/// (see `peer::Peers::multicall`); `tests/codec_oracle.rs` checks that dxr reads every such
/// body back to the same call.
pub fn encode_call(method: &str, params: &[Value]) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(HEADER);
    out.push_str("<methodCall><methodName>");
    escape_into(&mut out, method);
    out.push_str("</methodName><params>");
    for p in params {
        out.push_str("<param>");
        write_value_in(&mut out, p, "");
        out.push_str("</param>");
    }
    out.push_str("</params></methodCall>\n");
    out
}

/// A successful `methodResponse` body carrying `value`.
pub fn encode_response(value: &Value) -> String {
    let mut out = String::with_capacity(160);
    out.push_str(HEADER);
    out.push_str("<methodResponse>\n<params>\n<param>\n");
    write_value(&mut out, value);
    out.push_str("</param>\n</params>\n</methodResponse>\n");
    out
}

/// One `<value>...</value>\n` in Python's layout, as an answer carries it: the items of a
/// `system.multicall` answer are written one by one as their calls end (each counted against
/// the answer budget before the next is built), then put together by [`encode_array_response`].
pub fn encode_value(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// The `methodResponse` carrying an array whose items [`encode_value`] wrote: the same bytes
/// as [`encode_response`] of that array. Each item is dropped once copied.
pub fn encode_array_response(items: Vec<String>) -> String {
    const OPEN: &str = "<methodResponse>\n<params>\n<param>\n<value><array><data>\n";
    const CLOSE: &str = "</data></array></value>\n</param>\n</params>\n</methodResponse>\n";
    let len =
        HEADER.len() + OPEN.len() + items.iter().map(String::len).sum::<usize>() + CLOSE.len();
    let mut out = String::with_capacity(len);
    out.push_str(HEADER);
    out.push_str(OPEN);
    for item in items {
        out.push_str(&item);
    }
    out.push_str(CLOSE);
    out
}

/// A fault `methodResponse` body.
pub fn encode_fault(fault: &Fault) -> String {
    let (code, string) = (fault.code(), fault.string());
    let mut out = String::with_capacity(256 + string.len());
    out.push_str(HEADER);
    out.push_str("<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n");
    let _ = writeln!(out, "<value><int>{code}</int></value>");
    out.push_str("</member>\n<member>\n<name>faultString</name>\n<value><string>");
    escape_into(&mut out, string);
    out.push_str("</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n");
    out
}

/// One `<value>...</value>\n` in Python's layout.
fn write_value(out: &mut String, value: &Value) {
    write_value_in(out, value, "\n");
}

/// One `<value>...</value>`, with `nl` where Python's layout breaks lines: `"\n"` for Python's
/// layout, `""` for a compact body.
fn write_value_in(out: &mut String, value: &Value, nl: &str) {
    match value {
        Value::String(s) => {
            out.push_str("<value><string>");
            escape_into(out, s);
            out.push_str("</string></value>");
            out.push_str(nl);
        }
        Value::Integer(i) => {
            let _ = write!(out, "<value><int>{i}</int></value>{nl}");
        }
        Value::Long(i) => {
            let _ = write!(out, "<value><i8>{i}</i8></value>{nl}");
        }
        Value::Boolean(b) => {
            let _ = write!(
                out,
                "<value><boolean>{}</boolean></value>{nl}",
                u8::from(*b)
            );
        }
        Value::Double(d) => {
            let _ = write!(out, "<value><double>{d:?}</double></value>{nl}");
        }
        Value::Struct(members) => {
            let _ = write!(out, "<value><struct>{nl}");
            for (name, v) in members {
                let _ = write!(out, "<member>{nl}<name>");
                escape_into(out, name);
                let _ = write!(out, "</name>{nl}");
                write_value_in(out, v, nl);
                let _ = write!(out, "</member>{nl}");
            }
            let _ = write!(out, "</struct></value>{nl}");
        }
        Value::Array(items) => {
            let _ = write!(out, "<value><array><data>{nl}");
            for v in items {
                write_value_in(out, v, nl);
            }
            let _ = write!(out, "</data></array></value>{nl}");
        }
        Value::Nil => out.push_str("<value><nil/></value>"),
        // dateTime and base64 never occur in this protocol's replies; dxr writes them.
        other => {
            out.push_str(&other.to_xml().unwrap_or_default());
            out.push_str(nl);
        }
    }
}

/// `xml` with every character XML 1.0 forbids replaced by U+FFFD, for documents dxr wrote
/// (dxr writes them raw; see [`escape_into`] for why they must not reach the wire). No copy
/// when there is none.
pub fn xml_safe(xml: String) -> String {
    if xml.chars().all(is_xml_char) {
        return xml;
    }
    xml.chars()
        .map(|c| {
            if is_xml_char(c) {
                c
            } else {
                char::REPLACEMENT_CHARACTER
            }
        })
        .collect()
}

/// Python's `xmlrpc.client.escape`: only `&`, `<` and `>`; and a character XML 1.0 forbids
/// becomes U+FFFD. Why the replacement: such a character, written raw or as a reference, makes
/// the whole document unreadable to expat (Python's `xmlrpc.client`), so one bad value would
/// break every answer that carries it. [`check_chars`] refuses them on input, so nothing a
/// node stores holds one; this is the second line, for values made any other way.
fn escape_into(out: &mut String, s: &str) {
    // Printable ASCII without markup (most values) is written as it is.
    if s.bytes()
        .all(|b| (0x20..0x7F).contains(&b) && !matches!(b, b'&' | b'<' | b'>'))
    {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Python writes a carriage return raw, and every XML reader turns it into a line
            // feed; as a character reference it survives the trip.
            '\r' => out.push_str("&#13;"),
            c if !is_xml_char(c) => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTHON_CALL: &str = "<?xml version='1.0'?>\n<methodCall>\n<methodName>send_message</methodName>\n<params>\n<param>\n<value><string>Q</string></value>\n</param>\n<param>\n<value><string>attack</string></value>\n</param>\n</params>\n</methodCall>\n";

    /// The general reader's call, for comparing [`plain_call`] with it.
    fn general(text: &str) -> Option<(String, Vec<Value>)> {
        let u = parse(text, CALL).ok()?;
        Some((u.method_name?, u.values))
    }

    #[test]
    fn raw_controls_are_found_in_every_block_position() {
        for byte in 0..=255u8 {
            let forbidden = byte < 0x20 && !matches!(byte, b'\t' | b'\n' | b'\r');
            for len in [1, 31, 32, 33, 64, 70] {
                for at in 0..len {
                    let mut b = vec![b'a'; len];
                    b[at] = byte;
                    assert_eq!(has_raw_control(&b), forbidden, "{byte:#x} at {at} of {len}");
                }
            }
        }
        assert!(!has_raw_control(b""));
    }

    #[test]
    fn plain_calls_read_as_the_general_reader_reads_them() {
        let dxr = "<?xml version=\"1.0\"?>\n<methodCall><methodName>receive_message</methodName><params><param><value><string>load0</string></value></param><param><value><string>attack</string></value></param></params></methodCall>\n";
        let taken = [
            PYTHON_CALL,
            dxr,
            "<methodCall><methodName>finalize_decision</methodName><params></params></methodCall>",
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>f</methodName>\n<params>\n</params>\n</methodCall>\n",
            "<methodCall><methodName>m</methodName><params><param><value><string></string></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><string> é 語\t\n🦀 '\"</string></value></param></params></methodCall>",
        ];
        for body in taken {
            let plain = plain_call(body).unwrap_or_else(|| panic!("not taken: {body:?}"));
            assert_eq!(
                Some((plain.name.to_string(), plain.params)),
                general(body),
                "{body:?}"
            );
        }
        // Left to the general reader: entities, markup characters, carriage returns, other
        // types, other whitespace, comments, untyped values, anything after the root.
        let left = [
            "<methodCall><methodName>m</methodName><params><param><value><string>a&amp;b</string></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><string>a>b</string></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><string>a\rb</string></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><int>1</int></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value>x</value></param></params></methodCall>",
            "<methodCall> <methodName>m</methodName><params></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><!-- x --></params></methodCall>",
            "<methodCall><methodName>m</methodName><params></params></methodCall><x/>",
            "<methodCall><methodName>m</methodName></methodCall>",
            "\n<?xml version='1.0'?><methodCall><methodName>m</methodName><params></params></methodCall>",
            "<?xml version='1.0' encoding='utf-8'?><methodCall><methodName>m</methodName><params></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><string>a</string></value></param></params>",
        ];
        for body in left {
            assert!(plain_call(body).is_none(), "taken: {body:?}");
        }
    }

    proptest::proptest! {
        /// Whatever [`plain_call`] takes, the general reader reads the same.
        #[test]
        fn plain_calls_agree_with_the_general_reader(
            name in "[a-z_.<>&\r\n ]{0,8}",
            values in proptest::collection::vec("[a-z \t\n\r<>&;'\"é語]{0,8}", 0..4),
            python in proptest::bool::ANY,
        ) {
            let sep = if python { "\n" } else { "" };
            let mut body = format!("<?xml version='1.0'?>{sep}<methodCall>{sep}<methodName>{name}</methodName>{sep}<params>{sep}");
            for v in &values {
                body.push_str(&format!("<param>{sep}<value><string>{v}</string></value>{sep}</param>{sep}"));
            }
            body.push_str(&format!("</params>{sep}</methodCall>{sep}"));
            if let Some(plain) = plain_call(&body) {
                proptest::prop_assert_eq!(Some((plain.name.to_string(), plain.params)), general(&body));
            }
        }
    }

    #[test]
    fn reads_python_call_as_dxr_does() {
        let ours = decode_call(PYTHON_CALL.as_bytes()).unwrap();
        let dxr = decode_call_dxr(PYTHON_CALL.as_bytes()).unwrap();
        assert_eq!(ours.name, "send_message");
        assert_eq!(
            ours.params,
            [Value::String("Q".into()), Value::String("attack".into())]
        );
        assert_eq!((ours.name, ours.params), (dxr.name, dxr.params));
    }

    #[test]
    fn fault_is_python_bytes() {
        assert_eq!(
            encode_fault(&Fault::new(
                1,
                "<class 'Exception'>:method \"nope\" is not supported".into()
            )),
            "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>1</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>&lt;class 'Exception'&gt;:method \"nope\" is not supported</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n"
        );
    }

    /// A call of `receive_message("A", VALUE)` in Python's layout: VALUE starts at line 9,
    /// column 15.
    fn python_call(value: &str) -> String {
        format!(
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>receive_message</methodName>\n<params>\n<param>\n<value><string>A</string></value>\n</param>\n<param>\n<value><string>{value}</string></value>\n</param>\n</params>\n</methodCall>\n"
        )
    }

    /// Each row: the value, and expat's message as Python 3.11's `SimpleXMLRPCServer` gives it
    /// (after `<class 'xml.parsers.expat.ExpatError'>:`), or `None` where expat accepts it.
    #[test]
    fn forbidden_characters_get_expat_faults_from_both_readers() {
        let raw = |col: usize| {
            Some(format!(
                "not well-formed (invalid token): line 9, column {col}"
            ))
        };
        let reference = |col: usize| {
            Some(format!(
                "reference to invalid character number: line 9, column {col}"
            ))
        };
        let rows: Vec<(&str, Option<String>)> = vec![
            ("x\u{1}y", raw(16)),
            ("\u{1b}[2J", raw(15)),
            ("é\u{1}", raw(16)),
            ("😀\u{1}", raw(16)),
            ("\u{fffe}", raw(15)),
            ("\u{ffff}", raw(15)),
            ("<![CDATA[\u{1}]]>", raw(24)),
            (
                "a\r\nb\u{1}",
                Some("not well-formed (invalid token): line 10, column 1".into()),
            ),
            (
                "a\rb\u{1}",
                Some("not well-formed (invalid token): line 10, column 1".into()),
            ),
            ("&#x1b;", reference(15)),
            ("&#x1B;", reference(15)),
            ("&#1;", reference(15)),
            ("&#0;", reference(15)),
            ("&#xD800;", reference(15)),
            ("&#xFFFE;", reference(15)),
            ("&#xFFFF;", reference(15)),
            ("&#x110000;", reference(15)),
            ("&#99999999999;", reference(15)),
            ("ab\u{7f}", None),
            ("&#x85;", None),
            ("&#9;&#10;&#13;ok", None),
            ("&#0000065;", None),
            ("<![CDATA[&#1;]]>", None),
            ("<!-- &#1; -->x", None),
        ];
        for (value, expat) in rows {
            let body = python_call(value);
            for (codec, result) in [
                ("fast", decode_call(body.as_bytes())),
                ("dxr", decode_call_dxr(body.as_bytes())),
            ] {
                match (&expat, result) {
                    (Some(m), Err(e)) => {
                        assert_eq!(e, DecodeError::Malformed(m.clone()), "{codec} {value:?}")
                    }
                    (None, Ok(_)) => {}
                    (want, got) => panic!("{codec} {value:?}: want {want:?}, got {got:?}"),
                }
            }
        }
        let attribute = "<?xml version='1.0'?><methodCall><methodName>receive_message</methodName><params><param><value a='&#1;'>x</value></param></params></methodCall>";
        assert_eq!(
            decode_call(attribute.as_bytes()).err(),
            Some(DecodeError::Malformed(
                "reference to invalid character number: line 1, column 98".into()
            ))
        );
        assert_eq!(
            decode_call(b"\x01<?xml version='1.0'?>").err(),
            Some(DecodeError::Malformed(
                "not well-formed (invalid token): line 1, column 0".into()
            ))
        );
    }

    /// The check is one linear pass: a megabyte of unfinished references or sections costs
    /// a megabyte of reading (a search per `&#` for its `;` would be quadratic).
    #[test]
    fn char_check_is_linear() {
        for unit in ["&#", "&#1", "<?", "<!--"] {
            let body = unit.repeat(1 << 20 >> 2);
            let started = std::time::Instant::now();
            assert!(check_chars(&body).is_ok());
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "{unit}"
            );
        }
    }

    #[test]
    fn writers_never_emit_forbidden_characters() {
        let bad = Value::String("a\u{1}b\u{1b}c\u{fffe}\u{0}".into());
        let ours = encode_response(&bad);
        assert!(ours.chars().all(is_xml_char), "{ours:?}");
        assert!(
            ours.contains("a\u{fffd}b\u{fffd}c\u{fffd}\u{fffd}"),
            "{ours:?}"
        );
        let fault = encode_fault(&Fault::new(1, "x\u{1b}y".into()));
        assert!(fault.contains("x\u{fffd}y"), "{fault:?}");
        let batch = encode_call("om_message", std::slice::from_ref(&bad));
        assert!(batch.chars().all(is_xml_char), "{batch:?}");
        let dxr = xml_safe(dxr::MethodResponse { value: bad }.to_xml().unwrap());
        assert!(dxr.chars().all(is_xml_char), "{dxr:?}");
        assert_eq!(xml_safe("plain\t\n\r".into()), "plain\t\n\r");
    }

    #[test]
    fn refuses_hostile_documents() {
        let deep = format!(
            "<methodCall><methodName>f</methodName><params><param>{}{}</param></params></methodCall>",
            "<value><array><data>".repeat(100),
            "</data></array></value>".repeat(100)
        );
        for bad in [
            "garbage<",
            "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><methodCall/>",
            "<methodResponse/>",
            "",
            "<methodCall><methodName>f</methodName>",
            deep.as_str(),
        ] {
            assert!(decode_call(bad.as_bytes()).is_err(), "{bad:?}");
            assert!(decode_call_dxr(bad.as_bytes()).is_err(), "dxr: {bad:?}");
        }
        assert!(decode_call(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn an_array_answer_written_item_by_item_is_the_whole_answer() {
        let items = vec![
            Value::Array(vec![Value::String("a<&".into())]),
            Value::Struct(
                [
                    ("faultCode".to_string(), Value::Integer(1)),
                    ("faultString".to_string(), Value::String("x".into())),
                ]
                .into(),
            ),
            Value::Array(vec![Value::Struct(
                [("Q".to_string(), Value::String("attack".into()))].into(),
            )]),
        ];
        let parts = items.iter().map(encode_value).collect();
        assert_eq!(
            encode_array_response(parts),
            encode_response(&Value::Array(items))
        );
        assert_eq!(
            encode_array_response(Vec::new()),
            encode_response(&Value::Array(Vec::new()))
        );
    }
}
