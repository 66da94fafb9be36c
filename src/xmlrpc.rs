//! XML-RPC bodies over dxr's types (`Value`, `MethodCall`, `Fault`, the data model
//! everywhere): one reader and one writer per direction, chosen by measurement (BENCHMARKS.md,
//! "One codec per direction (issue 29)"; `examples/codec_bench.rs` times them against dxr's).
//!
//! | direction | who | here |
//! |---|---|---|
//! | requests in (every body a node serves) | ours, CPython's reader | [`decode_call`] |
//! | answers out | ours, Python's layout | [`encode_response`], [`encode_fault`] |
//! | calls out: the relay batches of agreement rounds | ours, compact | [`encode_call`] |
//! | calls out: every other (single) call | `dxr_client` | `peer::call_body` |
//! | replies in (every outgoing call's) | ours, CPython's reader | [`decode_response`] |
//!
//! Why ours where it is: the wire is CPython's, which reads much that dxr refuses (issue 27:
//! fault members in another order, declared encodings, `<nil/>` untyped, empty member names),
//! and ours costs a fraction of dxr's on every body the hot paths carry. Single outgoing calls
//! stay with `dxr_client`, the design card's crate on that path: a call of two short strings,
//! which every XML-RPC reader takes. CPython is the oracle of the reader
//! (`tests/cpython_oracle.rs`: thousands of generated bodies, both directions, every
//! difference a row of the README's table), and dxr the second one for what both agree on
//! (`tests/codec_oracle.rs`), which also reads every answer and batch we write back.
//!
//! Writing: the layout of answers (newlines, `<?xml version='1.0'?>`, `<int>` for integers,
//! escaping only `&`, `<`, `>`) is Python's byte for byte, so a capture of a Rust node looks
//! like a capture of the original; batches are compact. Reading: a plain call (string
//! parameters, the layout Python and dxr write) is taken by [`plain_call`] without the general
//! reader, and so is a plain reply (strings, integers, arrays and structs of them in the layout
//! CPython and we write: [`plain_response`]); anything else goes through [`read`], CPython's
//! `Unmarshaller` event for event. We
//! refuse what a node must never process (DOCTYPE and entity declarations, nesting deeper than
//! [`MAX_DEPTH`]). Characters XML 1.0 forbids are refused with expat's own fault
//! ([`check_chars`]), where expat meets them, and never written ([`escape_into`]).

use std::borrow::Cow;
use std::fmt::Write as _;

use dxr::{Fault, MethodCall, Value};

mod encoding;
mod read;

pub use read::{Loaded, UNREADABLE_DATE_TIME};

/// Deepest element nesting a body may have. Calls of this protocol are 6 deep; a deeper
/// document only costs memory and stack.
pub(crate) const MAX_DEPTH: usize = 64;

/// Longest excerpt of a bad request quoted back in a fault.
pub(crate) const MAX_ECHO: usize = 200;

/// Why a body is not a call (or response) we can use. Each variant says which Python
/// exception class the original raises for the same input, so faults keep Python's prefixes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not well-formed XML (or not in its encoding); the message is ours (Python:
    /// `ExpatError`, with expat's message: README, divergence 5).
    #[error("{0}")]
    Malformed(String),
    /// Refused by us although CPython reads it (DOCTYPE, nesting, what dxr's types cannot
    /// hold): `ValueError`, a deliberate divergence (README, divergences 5 and 26).
    #[error("{0}")]
    Refused(String),
    /// What CPython's `loads` raises for the same body: its class and message.
    #[error("{class}: {message}")]
    Python {
        /// The exception's class as Python's fault names it (`TypeError`,
        /// `xmlrpc.client.ResponseError`, `binascii.Error`...).
        class: &'static str,
        /// Its message, `str()` of the exception.
        message: String,
    },
    /// The body is a `<fault>`: `loads` raises that fault, and CPython's server answers it.
    #[error("fault {}: {}", .0.code(), .0.string())]
    Raised(Fault),
}

/// Parse an XML-RPC `methodCall` body as CPython's server does (`xmlrpc.client.loads`, see
/// [`read`]): the method name and every value, whatever the root. A body without
/// `<methodName>` is a call of the name `None`, which is what CPython's dispatcher then looks
/// up and refuses (`method "None" is not supported`); a `<fault>` body is
/// [`DecodeError::Raised`], which CPython's server answers as that fault.
pub fn decode_call(body: &[u8]) -> Result<MethodCall<'static>, DecodeError> {
    let doc = document(body)?;
    if doc.flaw.is_none()
        && let Some(call) = plain_call(&doc.text)
    {
        return Ok(call);
    }
    match read::loads(&doc.text, doc.flaw)? {
        Loaded::Values { params, method } => Ok(MethodCall {
            name: method.unwrap_or_else(|| NO_METHOD_NAME.to_string()).into(),
            params,
        }),
        Loaded::Fault(f) => Err(DecodeError::Raised(f)),
    }
}

/// The method name of a call without `<methodName>`: Python's `str(None)`.
pub(crate) const NO_METHOD_NAME: &str = "None";

/// Parse an XML-RPC `methodResponse` body as CPython's `ServerProxy` does: the one value, or
/// the tuple of all of them when there are none or several (held as an array), or the fault.
/// Every reply of an outgoing call is read here (`peer`).
pub fn decode_response(body: &[u8]) -> Result<Result<Value, Fault>, DecodeError> {
    let doc = document(body)?;
    if doc.flaw.is_none()
        && let Some(reply) = plain_response(&doc.text)
    {
        return Ok(reply);
    }
    match read::loads(&doc.text, doc.flaw)? {
        Loaded::Values { mut params, .. } => Ok(Ok(match params.len() {
            1 => params.remove(0),
            _ => Value::Array(params),
        })),
        Loaded::Fault(f) => Ok(Err(f)),
    }
}

/// CPython's `xmlrpc.client.loads` of a body: every value and the method name, or the fault
/// the body is, or why it is refused.
pub fn loads(body: &[u8]) -> Result<Loaded, DecodeError> {
    let doc = document(body)?;
    read::loads(&doc.text, doc.flaw)
}

/// The calls nearly every caller sends, read without the general reader: a `methodCall` laid
/// out as Python's `xmlrpc.client`, dxr or our writers write it (an optional declaration, line
/// breaks only between elements), a method name without `<`, `>`, `&` or carriage return, and
/// parameters of the kinds [`plain_value`] reads (strings, integers, booleans, and arrays and
/// structs of them). That is `receive_message` and `send_message` (two strings), the driver's
/// calls, and the relay batches of agreement rounds (`system.multicall` of 64 structs, each a
/// method name and an array of strings and a path). `None` for anything else, which
/// [`read::loads`] then reads; what this reads, [`read::loads`] reads the same (tests below,
/// and `tests/codec_oracle.rs` against dxr).
///
/// Why: the general reader (quick-xml events through the value stack) was the largest part of
/// a `receive_message` call's cost, more than a bare hyper server spends on a whole request;
/// this is a small fraction of it (BENCHMARKS.md, "Close to the limit"). A relay batch read by
/// it cost about 8.6 us a message, the largest single part of an exploration (BENCHMARKS.md,
/// "Issue 32").
fn plain_call(text: &str) -> Option<MethodCall<'static>> {
    let mut rest = after_declaration(text);
    rest = tag(rest, "<methodCall>")?;
    rest = tag(rest, "<methodName>")?;
    let (name, after) = plain(rest, "</methodName>")?;
    let (params, after) = plain_params(tag(after, "<params>")?)?;
    rest = tag(after, "</methodCall>")?;
    rest.trim_start_matches('\n')
        .is_empty()
        .then(|| MethodCall {
            name: name.to_string().into(),
            params,
        })
}

/// The reply nearly every outgoing call gets, read without the general reader: a
/// `methodResponse` laid out as CPython's `xmlrpc.server` and our nodes write it (an optional
/// declaration without an encoding, line breaks only between elements), whose values are
/// `<string>`s whose text has no `>`, carriage return or reference but the five predefined
/// entities (Python's `escape` writes `&amp;`, `&lt;`, `&gt;`), `<int>`/`<i8>` of plain
/// decimal digits, `<boolean>` 0 or 1, and arrays and structs of them (a few levels deep); or a
/// fault of such a struct. That is the answer of `receive_message`, `send_message` and
/// `om_message` (one string), of a relay batch (`system.multicall`: an array of one-string
/// arrays and fault structs, whose strings start `<class '...'>`), and of the driver's calls
/// (`node_info`, `om_round`, `om_decide`: structs of strings, integers, booleans, arrays).
/// `None` for anything else (character references, CDATA, comments, attributes, other
/// whitespace, other types, a declared encoding), which [`read::loads`] then reads; what this
/// reads, [`read::loads`] reads the same (tests below; `tests/codec_oracle.rs` and
/// `tests/cpython_oracle.rs` read replies through it against dxr and CPython).
///
/// Why: the general reader was a fifth of an exploration's instructions and, per
/// `send_message`, as much as the whole outgoing call's body writer (BENCHMARKS.md, "Issue
/// 32").
fn plain_response(text: &str) -> Option<Result<Value, Fault>> {
    let mut rest = tag(after_declaration(text), "<methodResponse>")?;
    let reply = if let Some(after) = tag(rest, "<params>") {
        let (mut params, after) = plain_params(after)?;
        rest = after;
        // As [`decode_response`]: the one value, or all of them as an array.
        Ok(match params.len() {
            1 => params.pop()?,
            _ => Value::Array(params),
        })
    } else {
        let (value, after) = plain_value(tag(rest, "<fault>")?, 0)?;
        rest = tag(after, "</fault>")?;
        // A struct that is no fault of ours is the general reader's to refuse.
        Err(read::fault_of(value).ok()?)
    };
    rest = tag(rest, "</methodResponse>")?;
    rest.trim_start_matches('\n').is_empty().then_some(reply)
}

/// The `<param>`s of [`plain_call`] or [`plain_response`] after `<params>`, each a
/// [`plain_value`], and the text after `</params>`; `None` when one is not plain.
fn plain_params(mut rest: &str) -> Option<(Vec<Value>, &str)> {
    let mut params = Vec::new();
    loop {
        if let Some(after) = tag(rest, "</params>") {
            return Some((params, after));
        }
        let (value, after) = plain_value(tag(rest, "<param>")?, 0)?;
        rest = tag(after, "</param>")?;
        params.push(value);
    }
}

/// How many arrays and structs deep [`plain_value`] reads; deeper is the general reader's
/// (which refuses documents deeper than [`MAX_DEPTH`] elements: this stays well within it).
const PLAIN_NESTING: usize = 8;

/// One `<value>` of [`plain_call`] or [`plain_response`], `nesting` arrays and structs deep, and the text after
/// it; `None` when it is not a plain one.
fn plain_value(rest: &str, nesting: usize) -> Option<(Value, &str)> {
    let rest = tag(rest, "<value>")?.trim_start_matches('\n');
    let (value, rest) = if let Some(rest) = rest.strip_prefix("<string>") {
        let (text, rest) = plain_text(rest, "</string>")?;
        (Value::String(text), rest)
    } else if let Some(rest) = rest.strip_prefix("<int>") {
        let (digits, rest) = plain(rest, "</int>")?;
        (plain_int(digits)?, rest)
    } else if let Some(rest) = rest.strip_prefix("<i8>") {
        let (digits, rest) = plain(rest, "</i8>")?;
        (plain_int(digits)?, rest)
    } else if let Some(rest) = rest.strip_prefix("<boolean>") {
        // Exactly `0` or `1`, as CPython's `end_boolean` takes; anything else is its
        // `TypeError`, the general reader's to raise.
        match plain(rest, "</boolean>")? {
            ("0", rest) => (Value::Boolean(false), rest),
            ("1", rest) => (Value::Boolean(true), rest),
            _ => return None,
        }
    } else if nesting >= PLAIN_NESTING {
        return None;
    } else if let Some(mut rest) = rest.strip_prefix("<array>") {
        rest = tag(rest, "<data>")?;
        let mut items = Vec::new();
        loop {
            if let Some(after) = tag(rest, "</data>") {
                rest = after;
                break;
            }
            let (item, after) = plain_value(rest, nesting + 1)?;
            items.push(item);
            rest = after;
        }
        (Value::Array(items), tag(rest, "</array>")?)
    } else if let Some(mut rest) = rest.strip_prefix("<struct>") {
        let mut members = std::collections::BTreeMap::new();
        loop {
            if let Some(after) = tag(rest, "</struct>") {
                rest = after;
                break;
            }
            let (name, after) = plain_text(tag(tag(rest, "<member>")?, "<name>")?, "</name>")?;
            let (value, after) = plain_value(after, nesting + 1)?;
            rest = tag(after, "</member>")?;
            // A later member of the same name wins, as in Python's dict.
            members.insert(name, value);
        }
        (Value::Struct(members), rest)
    } else {
        return None;
    };
    Some((value, tag(rest, "</value>")?))
}

/// An integer's text as Python's `int()` reads it, for the plain form only: an optional `-`
/// and at most 19 ASCII digits that fit 64 bits (an `i4` when it fits, as the general reader
/// holds it); `None` for anything else (whitespace, `+`, `_`, beyond 64 bits).
fn plain_int(text: &str) -> Option<Value> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = text.parse().ok()?;
    Some(i32::try_from(n).map_or(Value::Long(n), Value::Integer))
}

/// The text up to the next `<`, which must start `close`, with the five predefined entities
/// replaced, and the rest after `close`; `None` when the text holds `>` (`]]>` is not
/// allowed in text), a carriage return (line ends are normalized) or any other reference.
fn plain_text<'a>(rest: &'a str, close: &str) -> Option<(String, &'a str)> {
    let end = memchr::memchr(b'<', rest.as_bytes())?;
    let raw = &rest[..end];
    let rest = rest[end..].strip_prefix(close)?;
    if memchr::memchr2(b'>', b'\r', raw.as_bytes()).is_some() {
        return None;
    }
    if memchr::memchr(b'&', raw.as_bytes()).is_none() {
        return Some((raw.to_string(), rest));
    }
    let mut pieces = raw.split('&');
    let mut text = String::with_capacity(raw.len());
    text.push_str(pieces.next()?);
    for piece in pieces {
        let (c, after) = [
            ("lt;", '<'),
            ("gt;", '>'),
            ("amp;", '&'),
            ("quot;", '"'),
            ("apos;", '\''),
        ]
        .iter()
        .find_map(|(entity, c)| Some((*c, piece.strip_prefix(entity)?)))?;
        text.push(c);
        text.push_str(after);
    }
    Some((text, rest))
}

/// `text` after the declaration Python's `xmlrpc`, dxr and our writers put first (none of them
/// names an encoding), or all of `text` when it has neither.
fn after_declaration(text: &str) -> &str {
    ["<?xml version='1.0'?>", "<?xml version=\"1.0\"?>"]
        .iter()
        .find_map(|decl| text.strip_prefix(decl))
        .unwrap_or(text)
}

/// `rest` after line breaks and then `tag`, for the plain readers ([`plain_call`],
/// [`plain_response`]).
fn tag<'a>(rest: &'a str, tag: &str) -> Option<&'a str> {
    rest.trim_start_matches('\n').strip_prefix(tag)
}

/// The text up to the next `<`, which must start `close`, and the rest after `close`; `None`
/// when the text holds `&`, `>` or a carriage return (references, `]]>` and line-end
/// normalization are the general reader's).
fn plain<'a>(rest: &'a str, close: &str) -> Option<(&'a str, &'a str)> {
    let end = memchr::memchr(b'<', rest.as_bytes())?;
    let text = &rest[..end];
    if memchr::memchr3(b'&', b'>', b'\r', text.as_bytes()).is_some() {
        return None;
    }
    Some((text, rest[end..].strip_prefix(close)?))
}

/// A body as text ([`encoding`]) and its first lexical flaw, with its byte offset in the
/// text: a byte its encoding does not allow, or a character XML 1.0 forbids ([`check_chars`]).
/// Expat meets a flaw only when it gets there, so an error CPython's reader raises on an
/// element before it comes first ([`read::loads`] checks the flaw event by event).
pub(crate) struct Document<'a> {
    text: Cow<'a, str>,
    flaw: Option<(usize, DecodeError)>,
}

fn document(body: &[u8]) -> Result<Document<'_>, DecodeError> {
    let (text, mut flaw) = encoding::document_text(body)?;
    if let Some((at, e)) = first_forbidden(&text)
        && flaw.as_ref().is_none_or(|(f, _)| at < *f)
    {
        flaw = Some((at, e));
    }
    Ok(Document { text, flaw })
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
/// Why before the reader: quick-xml (and dxr) take such characters, and a value holding one,
/// stored and written back, makes every later answer unreadable to Python's `xmlrpc.client`
/// (expat refuses the whole reply). One pass over the bytes; a malformed reference
/// (`&#xZZ;`) is left to the reader.
pub fn check_chars(text: &str) -> Result<(), DecodeError> {
    match first_forbidden(text) {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// The first character XML 1.0 forbids in `text` ([`check_chars`]), with its byte offset.
fn first_forbidden(text: &str) -> Option<(usize, DecodeError)> {
    let b = text.as_bytes();
    // Without a `&` there is no reference to check, and without a 0xEF byte no U+FFFE or
    // U+FFFF: one branch-free pass over the bytes for raw control characters says it all
    // (the pass below, byte by byte, cost a call a noticeable share: BENCHMARKS.md, "Close to
    // the limit").
    if memchr::memchr2(b'&', 0xEF, b).is_none() && !has_raw_control(b) {
        return None;
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
            c if c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r') => {
                return Some((i, invalid_token(i)));
            }
            0xEF if matches!(b.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])) => {
                return Some((i, invalid_token(i)));
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
                        return Some((start + at, invalid_token(start + at)));
                    }
                    i = (end + close.len()).min(b.len());
                    continue;
                }
            }
            b'&' if b.get(i + 1) == Some(&b'#')
                && char_ref(&b[i + 2..]).is_some_and(|c| !c.is_some_and(is_xml_char)) =>
            {
                let (line, column) = line_column(text, i);
                return Some((
                    i,
                    DecodeError::Malformed(format!(
                        "reference to invalid character number: line {line}, column {column}"
                    )),
                ));
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether `b` holds a control character other than tab, line feed and carriage return. Each
/// 32-byte block is folded with comparisons only, which the compiler turns into a few vector
/// instructions per block (a count or an early exit per byte cost several instructions a
/// byte: BENCHMARKS.md, "Close to the limit").
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
pub(crate) fn line_column(text: &str, at: usize) -> (usize, usize) {
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

/// At most [`MAX_ECHO`] bytes of `text`, cut at a character boundary.
pub(crate) fn excerpt(text: &str) -> &str {
    excerpt_to(text, MAX_ECHO)
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub(crate) fn excerpt_to(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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
        // Pieces pushed one by one, not `write!`: the formatting machinery was a tenth of
        // writing a relay batch (BENCHMARKS.md, "Issue 32").
        Value::Struct(members) => {
            out.push_str("<value><struct>");
            out.push_str(nl);
            for (name, v) in members {
                out.push_str("<member>");
                out.push_str(nl);
                out.push_str("<name>");
                escape_into(out, name);
                out.push_str("</name>");
                out.push_str(nl);
                write_value_in(out, v, nl);
                out.push_str("</member>");
                out.push_str(nl);
            }
            out.push_str("</struct></value>");
            out.push_str(nl);
        }
        Value::Array(items) => {
            out.push_str("<value><array><data>");
            out.push_str(nl);
            for v in items {
                write_value_in(out, v, nl);
            }
            out.push_str("</data></array></value>");
            out.push_str(nl);
        }
        Value::Nil => out.push_str("<value><nil/></value>"),
        // dateTime and base64 never occur in this protocol's replies; dxr writes them.
        other => {
            out.push_str(&other.to_xml().unwrap_or_default());
            out.push_str(nl);
        }
    }
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
        match read::loads(text, None).ok()? {
            Loaded::Values { params, method } => Some((method?, params)),
            Loaded::Fault(_) => None,
        }
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
            "<methodCall><methodName>m</methodName><params><param><value><string>a&amp;b&lt;</string></value></param><param><value><int>1</int></value></param></params></methodCall>",
        ];
        let mut taken: Vec<String> = taken.iter().map(|b| b.to_string()).collect();
        // A relay batch as the engine writes it, and a call of every plain kind in Python's
        // layout.
        let message = |i: i32| {
            Value::Struct(
                [
                    ("methodName".to_string(), Value::String("om_message".into())),
                    (
                        "params".to_string(),
                        Value::Array(vec![
                            Value::String("om-5f0e3b2a9c4d4e21a7b6c8d9e0f1a2b3".into()),
                            Value::Array(vec![
                                Value::String("P".into()),
                                Value::String(format!("N{i}")),
                            ]),
                            Value::String("attack".into()),
                            Value::String("EFN5WPFHrrOBbcUVV9VTdg==".into()),
                        ]),
                    ),
                ]
                .into(),
            )
        };
        taken.push(encode_call(
            "system.multicall",
            &[Value::Array((0..64).map(message).collect())],
        ));
        taken.push(format!(
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>om_round</methodName>\n<params>\n<param>\n{}</param>\n<param>\n{}</param>\n</params>\n</methodCall>\n",
            encode_value(&message(1)),
            encode_value(&Value::Array(vec![Value::Integer(-7), Value::Long(1 << 40), Value::Boolean(true)])),
        ));
        for body in &taken {
            let plain = plain_call(body).unwrap_or_else(|| panic!("not taken: {body:?}"));
            assert_eq!(
                Some((plain.name.to_string(), plain.params)),
                general(body),
                "{body:?}"
            );
        }
        // Left to the general reader: references in the name, other references, markup
        // characters, carriage returns, other types, other whitespace, comments, untyped
        // values, anything after the root.
        let left = [
            "<methodCall><methodName>a&amp;b</methodName><params></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><string>&#65;</string></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><string>a>b</string></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><string>a\rb</string></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><double>1.5</double></value></param></params></methodCall>",
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

    /// The general reader's reply (as [`decode_response`] makes it), for comparing
    /// [`plain_response`] with it.
    fn general_reply(text: &str) -> Option<Result<Value, Fault>> {
        match read::loads(text, None).ok()? {
            Loaded::Values { mut params, .. } => Some(Ok(match params.len() {
                1 => params.remove(0),
                _ => Value::Array(params),
            })),
            Loaded::Fault(f) => Some(Err(f)),
        }
    }

    /// A reply carrying `value` in CPython's layout (`xmlrpc.server`), byte for byte.
    fn cpython_reply(value_xml: &str) -> String {
        format!(
            "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n{value_xml}</param>\n</params>\n</methodResponse>\n"
        )
    }

    /// A relay batch's answer as CPython's `system.multicall` and our nodes write it: a stored
    /// message, then a refused one.
    const MULTICALL_ANSWER: &str = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n<value><array><data>\n<value><string>1765130000000001</string></value>\n</data></array></value>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>1</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>&lt;class 'ValueError'&gt;:late: round 1 is closed (this node is in round 2) in run 'om-1'</string></value>\n</member>\n</struct></value>\n</data></array></value>\n</param>\n</params>\n</methodResponse>\n";

    #[test]
    fn plain_replies_read_as_the_general_reader_reads_them() {
        let s = |t: &str| Value::String(t.into());
        let late =
            "<class 'ValueError'>:late: round 1 is closed (this node is in round 2) in run 'om-1'";
        let fault = Value::Struct(
            [
                ("faultCode".to_string(), Value::Integer(1)),
                ("faultString".to_string(), s(late)),
            ]
            .into(),
        );
        // Each row: the body, and what both readers read.
        let taken: Vec<(String, Result<Value, Fault>)> = vec![
            // send_message / receive_message / om_message, CPython's bytes and ours.
            (
                cpython_reply("<value><string>Message received from Q: attack</string></value>\n"),
                Ok(s("Message received from Q: attack")),
            ),
            (encode_response(&s("1765130000000001")), Ok(s("1765130000000001"))),
            (
                MULTICALL_ANSWER.to_string(),
                Ok(Value::Array(vec![
                    Value::Array(vec![s("1765130000000001")]),
                    fault.clone(),
                ])),
            ),
            (
                encode_array_response(vec![
                    encode_value(&Value::Array(vec![s("1")])),
                    encode_value(&fault),
                ]),
                Ok(Value::Array(vec![Value::Array(vec![s("1")]), fault.clone()])),
            ),
            // om_round's report: a struct of integers and a struct.
            (
                encode_response(&Value::Struct(
                    [
                        ("round".to_string(), Value::Integer(2)),
                        ("sent".to_string(), Value::Integer(-2_147_483_648)),
                        ("big".to_string(), Value::Long(i64::MAX)),
                        ("failed_to".to_string(), Value::Struct([("R".to_string(), Value::Integer(0))].into())),
                    ]
                    .into(),
                )),
                Ok(Value::Struct(
                    [
                        ("round".to_string(), Value::Integer(2)),
                        ("sent".to_string(), Value::Integer(-2_147_483_648)),
                        ("big".to_string(), Value::Long(i64::MAX)),
                        ("failed_to".to_string(), Value::Struct([("R".to_string(), Value::Integer(0))].into())),
                    ]
                    .into(),
                )),
            ),
            // A fault reply, as encode_fault (Python's bytes) writes it.
            (
                encode_fault(&Fault::new(1, late.into())),
                Err(Fault::new(1, late.into())),
            ),
            // Compact, without a declaration, dxr's declaration; empty and entity-only strings;
            // whitespace and non-ASCII kept; no params and two params are an array.
            (
                "<methodResponse><params><param><value><string></string></value></param></params></methodResponse>".into(),
                Ok(s("")),
            ),
            (
                "<?xml version=\"1.0\"?><methodResponse><params><param><value><string>&amp;&lt;&gt;&quot;&apos;</string></value></param></params></methodResponse>".into(),
                Ok(s("&<>\"'")),
            ),
            (
                cpython_reply("<value><string> é 語\t\n🦀 '\"</string></value>\n"),
                Ok(s(" é 語\t\n🦀 '\"")),
            ),
            (
                "<?xml version='1.0'?>\n<methodResponse>\n<params>\n</params>\n</methodResponse>\n".into(),
                Ok(Value::Array(vec![])),
            ),
            (
                "<methodResponse><params><param><value><string>a</string></value></param><param><value><int>007</int></value></param></params></methodResponse>".into(),
                Ok(Value::Array(vec![s("a"), Value::Integer(7)])),
            ),
            (
                cpython_reply("<value><int>2147483648</int></value>\n</param>\n<param>\n<value><i8>-0</i8></value>\n"),
                Ok(Value::Array(vec![Value::Long(2_147_483_648), Value::Integer(0)])),
            ),
            // node_info's answer: strings and a boolean.
            (
                cpython_reply("<value><struct>\n<member>\n<name>name</name>\n<value><string>Q</string></value>\n</member>\n<member>\n<name>traitor</name>\n<value><boolean>0</boolean></value>\n</member>\n</struct></value>\n</param>\n<param>\n<value><boolean>1</boolean></value>\n"),
                Ok(Value::Array(vec![
                    Value::Struct(
                        [
                            ("name".to_string(), s("Q")),
                            ("traitor".to_string(), Value::Boolean(false)),
                        ]
                        .into(),
                    ),
                    Value::Boolean(true),
                ])),
            ),
            // The same member twice: the later one, as Python's dict.
            (
                cpython_reply("<value><struct>\n<member>\n<name>a</name>\n<value><int>1</int></value>\n</member>\n<member>\n<name>a</name>\n<value><int>2</int></value>\n</member>\n</struct></value>\n"),
                Ok(Value::Struct([("a".to_string(), Value::Integer(2))].into())),
            ),
            (
                cpython_reply("<value><array><data>\n</data></array></value>\n</param>\n<param>\n<value><struct>\n</struct></value>\n"),
                Ok(Value::Array(vec![Value::Array(vec![]), Value::Struct(Default::default())])),
            ),
        ];
        for (body, want) in &taken {
            let plain = plain_response(body).unwrap_or_else(|| panic!("not taken: {body:?}"));
            assert_eq!(&plain, want, "{body:?}");
            assert_eq!(Some(plain), general_reply(body), "{body:?}");
            assert_eq!(
                decode_response(body.as_bytes()),
                Ok(want.clone()),
                "{body:?}"
            );
        }
        let deep = |n: usize| {
            cpython_reply(&format!(
                "{}<value><string>x</string></value>{}",
                "<value><array><data>".repeat(n),
                "</data></array></value>".repeat(n)
            ))
        };
        assert!(plain_response(&deep(PLAIN_NESTING)).is_some());
        // Left to the general reader: character references and unknown entities, markup
        // characters, carriage returns, CDATA, comments, processing instructions, attributes,
        // other whitespace, namespace prefixes, other types, untyped values, integers in
        // another form, declared encodings, text or elements after the root, unclosed or
        // mismatched elements, faults that are not ours, deeper nesting.
        let left: Vec<String> = vec![
            cpython_reply("<value><int>1</int></value>\n<value><int>2</int></value>\n"),
            cpython_reply("<value><string>&#65;</string></value>\n"),
            cpython_reply("<value><string>&#x41;</string></value>\n"),
            cpython_reply("<value><string>&nbsp;</string></value>\n"),
            cpython_reply("<value><string>a&b</string></value>\n"),
            cpython_reply("<value><string>&amp</string></value>\n"),
            cpython_reply("<value><string>a>b</string></value>\n"),
            cpython_reply("<value><string>]]></string></value>\n"),
            cpython_reply("<value><string>a\rb</string></value>\n"),
            cpython_reply("<value><string><![CDATA[x]]></string></value>\n"),
            cpython_reply("<value><string>a<!-- c -->b</string></value>\n"),
            cpython_reply("<value><string>a<?pi x?>b</string></value>\n"),
            cpython_reply("<value><string a='1'>x</string></value>\n"),
            cpython_reply("<value a='1'><string>x</string></value>\n"),
            cpython_reply("<value><string/></value>\n"),
            cpython_reply("<value> <string>x</string></value>\n"),
            cpython_reply("<value><string>x</string> </value>\n"),
            cpython_reply("<value><string>x</string></value>\r\n"),
            cpython_reply("<value><x:string>x</x:string></value>\n"),
            cpython_reply("<value>x</value>\n"),
            cpython_reply("<value><nil/></value>"),
            cpython_reply("<value><boolean>2</boolean></value>\n"),
            cpython_reply("<value><boolean> 1</boolean></value>\n"),
            cpython_reply("<value><boolean></boolean></value>\n"),
            cpython_reply("<value><double>1.5</double></value>\n"),
            cpython_reply("<value><i4>1</i4></value>\n"),
            cpython_reply("<value><int> 1</int></value>\n"),
            cpython_reply("<value><int>+1</int></value>\n"),
            cpython_reply("<value><int>1_0</int></value>\n"),
            cpython_reply("<value><int>-</int></value>\n"),
            cpython_reply("<value><int></int></value>\n"),
            cpython_reply("<value><i8>9223372036854775808</i8></value>\n"),
            cpython_reply("<value><int>99999999999999999999</int></value>\n"),
            cpython_reply("<value><struct>\n<member>\n<value><int>1</int></value>\n</member>\n</struct></value>\n"),
            cpython_reply("<value><array>\n<value><int>1</int></value>\n</array></value>\n"),
            cpython_reply("<value><string>x</string></value>\n").replace("</params>", "</param>"),
            cpython_reply("<value><string>x</string></value>\n").replace("</methodResponse>\n", ""),
            cpython_reply("<value><string>x</string></value>\n") + "<x/>",
            cpython_reply("<value><string>x</string></value>\n") + " ",
            cpython_reply("<value><string>x</string></value>\n").replace("'1.0'?>", "'1.0' encoding='iso-8859-1'?>"),
            format!("\n{}", cpython_reply("<value><string>x</string></value>\n")),
            "<methodResponse><fault><value><struct><member><name>faultCode</name><value><string>x</string></value></member><member><name>faultString</name><value><string>boom</string></value></member></struct></value></fault></methodResponse>".into(),
            "<methodResponse><fault><value><string>x</string></value></fault></methodResponse>".into(),
            "<methodResponse><fault></fault></methodResponse>".into(),
            "<methodCall><params></params></methodCall>".into(),
            deep(PLAIN_NESTING + 1),
        ];
        for body in &left {
            assert!(plain_response(body).is_none(), "taken: {body:?}");
        }
    }

    /// A value of the kinds [`plain_response`] reads, and of a few it leaves (nil, double),
    /// with strings of markup, whitespace and non-ASCII characters.
    fn reply_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let text = "[a-z \t\n\r<>&;'\"\u{85}\u{2028}é語\\]]{0,8}";
        let leaf = prop_oneof![
            6 => text.prop_map(Value::String),
            2 => any::<i32>().prop_map(Value::Integer),
            1 => any::<i64>().prop_map(Value::Long),
            1 => any::<bool>().prop_map(Value::Boolean),
            1 => Just(Value::Nil),
            1 => (-1e3f64..1e3).prop_map(Value::Double),
        ];
        leaf.prop_recursive(4, 24, 4, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(text, inner, 0..4).prop_map(Value::Struct),
            ]
        })
    }

    /// Whether [`plain_response`] must take a reply carrying `v`: strings without a carriage
    /// return (written as a reference), integers, booleans, and arrays and structs of them.
    fn plain_kinds(v: &Value) -> bool {
        match v {
            Value::String(s) => !s.contains('\r'),
            Value::Integer(_) | Value::Long(_) | Value::Boolean(_) => true,
            Value::Array(items) => items.iter().all(plain_kinds),
            Value::Struct(members) => members
                .iter()
                .all(|(k, v)| !k.contains('\r') && plain_kinds(v)),
            _ => false,
        }
    }

    /// What may be put into a reply to perturb it: whitespace, markup, references, other
    /// types' tags, prefixes, characters expat refuses.
    const PERTURBATIONS: [&str; 32] = [
        " ",
        "\n",
        "\r\n",
        "\r",
        "\t",
        "<",
        ">",
        "&",
        "&amp;",
        "&lt;",
        "&#65;",
        "&#x3c;",
        "&nbsp;",
        "<![CDATA[x]]>",
        "<!--c-->",
        "<?pi x?>",
        " a='1'",
        "<x/>",
        "x",
        "-",
        "+",
        "0",
        "9",
        "_",
        "ns:",
        "</value>",
        "<value>",
        "<string>",
        "</data>",
        "<nil/>",
        "]]>",
        "\u{1}",
    ];

    proptest::proptest! {
        /// Whatever [`plain_response`] takes, the general reader reads the same; a reply
        /// written as CPython and our nodes write it (or compact) of plain kinds is taken.
        #[test]
        fn plain_replies_agree_with_the_general_reader(
            v in reply_value(),
            layout in 0..3u8,
            code in proptest::prelude::any::<i32>(),
            edits in proptest::collection::vec(
                (proptest::prelude::any::<proptest::sample::Index>(), 0..PERTURBATIONS.len() + 1),
                0..3,
            ),
        ) {
            let mut body = match (layout, &v) {
                (0, _) => encode_response(&v),
                (1, _) => format!(
                    "<methodResponse><params><param>{}</param></params></methodResponse>",
                    {
                        let mut out = String::new();
                        write_value_in(&mut out, &v, "");
                        out
                    }
                ),
                (_, Value::String(s)) => encode_fault(&Fault::new(code, s.clone())),
                _ => encode_array_response(vec![
                    encode_value(&Value::Array(vec![v.clone()])),
                    encode_fault(&Fault::new(code, "<class 'ValueError'>:late".into()))
                        .split_once("<fault>\n")
                        .and_then(|(_, f)| f.split_once("</fault>"))
                        .map(|(f, _)| f.to_string())
                        .unwrap_or_default(),
                ]),
            };
            if edits.is_empty() && plain_kinds(&v) {
                proptest::prop_assert!(plain_response(&body).is_some(), "not taken: {body:?}");
            }
            perturb(&mut body, &edits);
            if let Some(plain) = plain_response(&body) {
                proptest::prop_assert_eq!(Some(plain), general_reply(&body), "{:?}", body);
            }
        }

        /// Whatever [`plain_call`] takes, the general reader reads the same, for parameters of
        /// every kind and perturbed bodies; a call written as Python's `xmlrpc.client` or our
        /// [`encode_call`] writes it, of plain kinds, is taken.
        #[test]
        fn plain_calls_of_any_value_agree_with_the_general_reader(
            params in proptest::collection::vec(reply_value(), 0..3),
            python in proptest::bool::ANY,
            edits in proptest::collection::vec(
                (proptest::prelude::any::<proptest::sample::Index>(), 0..PERTURBATIONS.len() + 1),
                0..3,
            ),
        ) {
            let mut body = if python {
                let mut body = "<?xml version='1.0'?>\n<methodCall>\n<methodName>system.multicall</methodName>\n<params>\n".to_string();
                for p in &params {
                    body.push_str("<param>\n");
                    body.push_str(&encode_value(p));
                    body.push_str("</param>\n");
                }
                body + "</params>\n</methodCall>\n"
            } else {
                encode_call("om_message", &params)
            };
            if edits.is_empty() && params.iter().all(plain_kinds) {
                proptest::prop_assert!(plain_call(&body).is_some(), "not taken: {body:?}");
            }
            perturb(&mut body, &edits);
            if let Some(plain) = plain_call(&body) {
                proptest::prop_assert_eq!(
                    Some((plain.name.to_string(), plain.params)),
                    general(&body),
                    "{:?}",
                    body
                );
            }
        }
    }

    /// `body` with each edit made: a [`PERTURBATIONS`] item put in at a character position, or
    /// (an index past the list) the character there taken out.
    fn perturb(body: &mut String, edits: &[(proptest::sample::Index, usize)]) {
        for (at, which) in edits {
            let chars: Vec<(usize, char)> = body.char_indices().collect();
            let i = at.index(chars.len() + 1);
            let byte = chars.get(i).map_or(body.len(), |(b, _)| *b);
            match PERTURBATIONS.get(*which) {
                Some(p) => body.insert_str(byte, p),
                None if byte < body.len() => {
                    body.remove(byte);
                }
                None => {}
            }
        }
    }

    #[test]
    fn reads_python_call_as_dxr_does() {
        let ours = decode_call(PYTHON_CALL.as_bytes()).unwrap();
        let dxr = MethodCall::from_xml(PYTHON_CALL).unwrap();
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
    fn forbidden_characters_get_expat_faults() {
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
            match (&expat, decode_call(body.as_bytes())) {
                (Some(m), Err(e)) => assert_eq!(e, DecodeError::Malformed(m.clone()), "{value:?}"),
                (None, Ok(_)) => {}
                (want, got) => panic!("{value:?}: want {want:?}, got {got:?}"),
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
