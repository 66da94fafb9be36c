//! CPython's `xmlrpc.client.loads`, event for event: its `Unmarshaller` (a stack of finished
//! values, marks where open arrays and structs begin, the text since the last start tag, the
//! "inside a bare `<value>`" flag, the document's type) over quick-xml's events, and the
//! conversions its element handlers make (`int()`, `float()`, `Decimal()`, `base64.decodebytes`,
//! `DateTime`), with the exceptions they raise. Both directions read through it: request
//! bodies (`super::decode_call`) and answers (`super::decode_response`), so whatever CPython's
//! server or client accepts, we accept, and what they refuse, we refuse with the same class.
//!
//! Why a port and not a schema: CPython's reader is "fairly tolerant, and gladly accepts bogus
//! XML-RPC data without complaining" (its own doc string): it collects every value wherever it
//! stands, ignores unknown tags outside a `<value>`, strips namespace prefixes, and never looks
//! at the root. Callers and peers (Perl, Ruby, npm libraries) rely on some of that, and a
//! reader of our own shape dropped or refused what CPython reads (issue 27). The differences
//! left are where dxr's [`Value`] cannot hold what Python holds (integers beyond 64 bits, free
//! dateTime text, `Decimal`, non-string struct keys, non-integer fault codes): README,
//! divergence 26, each a row of `tests/cpython_oracle.rs`.

use std::collections::BTreeMap;
use std::str::FromStr;

use dxr::{Fault, Value};
use quick_xml::events::Event;

use super::{DecodeError, MAX_DEPTH, excerpt_to};
use crate::protocol::{python_repr, python_type_name};

/// What `xmlrpc.client.loads` returns for a document, or the fault it raises.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// The values collected (a call's params, a response's) and the method name, if any.
    Values {
        /// Every value of the document, in order.
        params: Vec<Value>,
        /// The text of the last `<methodName>`, if there is one.
        method: Option<String>,
    },
    /// The document is a fault: `loads` raises it.
    Fault(Fault),
}

/// Which end tag last set the document's type (CPython's `_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Params,
    Fault,
    MethodName,
}

/// The element handlers CPython's `Unmarshaller.dispatch` has: a start tag inside a bare
/// `<value>` must be one of them.
const HANDLED: [&str; 21] = [
    "nil",
    "boolean",
    "i1",
    "i2",
    "i4",
    "i8",
    "int",
    "biginteger",
    "double",
    "float",
    "bigdecimal",
    "string",
    "name",
    "array",
    "struct",
    "base64",
    "dateTime.iso8601",
    "value",
    "params",
    "fault",
    "methodName",
];

/// The name after the last `:` (CPython strips namespace prefixes this way).
fn local(tag: &str) -> &str {
    tag.rsplit(':').next().unwrap_or(tag)
}

/// CPython's `Unmarshaller`.
#[derive(Default)]
struct Unmarshaller {
    stack: Vec<Value>,
    marks: Vec<usize>,
    /// Text since the last start tag (an end tag does not clear it, as in CPython).
    data: String,
    /// Right after a `<value>` start tag: the next start tag must be a handled one, and the
    /// value's end makes a string of the text.
    value: bool,
    method: Option<String>,
    kind: Option<Kind>,
}

fn python(class: &'static str, message: String) -> DecodeError {
    DecodeError::Python { class, message }
}

impl Unmarshaller {
    fn start(&mut self, tag: &str) -> Result<(), DecodeError> {
        let tag = local(tag);
        if tag == "array" || tag == "struct" {
            self.marks.push(self.stack.len());
        }
        self.data.clear();
        if self.value && !HANDLED.contains(&tag) {
            let message = format!("unknown tag {}", python_repr(tag));
            return Err(python(
                "xmlrpc.client.ResponseError",
                format!("ResponseError({})", python_repr(&message)),
            ));
        }
        self.value = tag == "value";
        Ok(())
    }

    fn end(&mut self, tag: &str) -> Result<(), DecodeError> {
        let tag = match tag {
            t if HANDLED.contains(&t) => t,
            t if t.contains(':') && HANDLED.contains(&local(t)) => local(t),
            _ => return Ok(()),
        };
        let value = match tag {
            "nil" => Value::Nil,
            "boolean" => match self.data.as_str() {
                "0" => Value::Boolean(false),
                "1" => Value::Boolean(true),
                _ => return Err(python("TypeError", "bad boolean value".into())),
            },
            "i1" | "i2" | "i4" | "i8" | "int" | "biginteger" => python_int(&self.data)?,
            "double" | "float" => Value::Double(python_float(&self.data)?),
            "bigdecimal" => Value::Double(python_decimal(&self.data)?),
            "string" | "name" => Value::String(self.data.clone()),
            "array" => {
                let mark = self.marks.pop().unwrap_or(0).min(self.stack.len());
                Value::Array(self.stack.split_off(mark))
            }
            "struct" => {
                let mark = self.marks.pop().unwrap_or(0).min(self.stack.len());
                let items = self.stack.split_off(mark);
                Value::Struct(python_dict(items)?)
            }
            "base64" => Value::Base64(python_base64(&self.data)?),
            "dateTime.iso8601" => {
                // CPython's end_dateTime leaves the bare-value flag as it is (it is already
                // off: the dateTime's start tag turned it off).
                let value = Value::DateTime(date_time(&self.data));
                self.stack.push(value);
                return Ok(());
            }
            "value" => {
                if !self.value {
                    return Ok(());
                }
                Value::String(self.data.clone())
            }
            "params" => {
                self.kind = Some(Kind::Params);
                return Ok(());
            }
            "fault" => {
                self.kind = Some(Kind::Fault);
                return Ok(());
            }
            _ => {
                // methodName
                self.method = Some(self.data.clone());
                self.kind = Some(Kind::MethodName);
                return Ok(());
            }
        };
        self.stack.push(value);
        self.value = false;
        Ok(())
    }

    /// CPython's `close()`: the values and method name, or the fault the document is.
    fn close(mut self) -> Result<Loaded, DecodeError> {
        let response_error = || python("xmlrpc.client.ResponseError", "ResponseError()".into());
        match self.kind {
            None => Err(response_error()),
            Some(_) if !self.marks.is_empty() => Err(response_error()),
            Some(Kind::Fault) => {
                if self.stack.is_empty() {
                    return Err(python("IndexError", "list index out of range".into()));
                }
                fault_of(self.stack.swap_remove(0)).map(Loaded::Fault)
            }
            Some(_) => Ok(Loaded::Values {
                params: self.stack,
                method: self.method,
            }),
        }
    }
}

/// CPython's `Fault(**value)`: a struct with `faultCode` and `faultString` (other members
/// are ignored). A code that is not an integer of 32 bits (or a string of one), or a string
/// that is not a string, is refused: dxr's [`Fault`] holds an `i32` and a `String`.
pub(super) fn fault_of(value: Value) -> Result<Fault, DecodeError> {
    let Value::Struct(mut members) = value else {
        return Err(python(
            "TypeError",
            format!(
                "xmlrpc.client.Fault() argument after ** must be a mapping, not {}",
                python_type_name(&value)
            ),
        ));
    };
    let (code, string) = (members.remove("faultCode"), members.remove("faultString"));
    let missing: Vec<&str> = [("faultCode", &code), ("faultString", &string)]
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    let (Some(code), Some(string)) = (code, string) else {
        let message = match missing.as_slice() {
            [one] => format!("missing 1 required positional argument: '{one}'"),
            _ => "missing 2 required positional arguments: 'faultCode' and 'faultString'".into(),
        };
        return Err(python("TypeError", format!("Fault.__init__() {message}")));
    };
    let code = match code {
        Value::Integer(c) => Some(c),
        Value::Long(c) => i32::try_from(c).ok(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match (code, string) {
        (Some(code), Value::String(string)) => Ok(Fault::new(code, string)),
        (None, _) => Err(DecodeError::Refused(
            "a fault whose faultCode is not an integer of 32 bits".into(),
        )),
        (_, other) => Err(DecodeError::Refused(format!(
            "a fault whose faultString is not a string but {}",
            python_type_name(&other)
        ))),
    }
}

/// CPython's `end_struct`: `dict[items[i]] = items[i + 1]` for each pair in order, with its
/// exceptions (an odd count is an `IndexError`; a list, struct, Binary or DateTime key is
/// unhashable). A key of another type (int, float, bool, nil), which only a struct outside
/// the schema has, is refused: our struct keys are strings.
fn python_dict(items: Vec<Value>) -> Result<BTreeMap<String, Value>, DecodeError> {
    let mut map = BTreeMap::new();
    // A key we cannot hold is refused once every pair is in: CPython takes it and goes on, so
    // an exception a later pair raises comes first.
    let mut refused = None;
    let mut it = items.into_iter();
    while let Some(key) = it.next() {
        let Some(value) = it.next() else {
            return Err(python("IndexError", "list index out of range".into()));
        };
        match key {
            Value::String(k) => {
                map.insert(k, value);
            }
            Value::Array(_) | Value::Struct(_) | Value::Base64(_) | Value::DateTime(_) => {
                return Err(python(
                    "TypeError",
                    format!("unhashable type: '{}'", python_type_name(&key)),
                ));
            }
            other => {
                refused.get_or_insert_with(|| {
                    DecodeError::Refused(format!(
                        "a struct member named by {}, not a string",
                        python_type_name(&other)
                    ))
                });
            }
        }
    }
    match refused {
        Some(e) => Err(e),
        None => Ok(map),
    }
}

/// Python's `int()` of an element's text: surrounding whitespace, a sign, decimal digits with
/// single underscores between them. An `i4` when it fits, else an `i8`; beyond 64 bits the
/// nearest 64-bit value (README, divergence 26: Python holds any size, dxr 64 bits).
pub(super) fn python_int(data: &str) -> Result<Value, DecodeError> {
    let invalid = || {
        python(
            "ValueError",
            format!(
                "invalid literal for int() with base 10: {}",
                python_repr(excerpt_to(data, 200))
            ),
        )
    };
    let s = data.trim();
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if !digits_with_underscores(digits) {
        return Err(invalid());
    }
    let mut n: i128 = 0;
    for c in digits.bytes().filter(u8::is_ascii_digit) {
        n = (n * 10 + i128::from(c - b'0')).min(i128::from(u64::MAX) + 1);
    }
    let n = if negative { -n } else { n };
    let n = i64::try_from(n).unwrap_or(if negative { i64::MIN } else { i64::MAX });
    Ok(i32::try_from(n)
        .map(Value::Integer)
        .unwrap_or(Value::Long(n)))
}

/// ASCII digits, at least one, with single underscores only between two digits.
fn digits_with_underscores(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_digit()
        && b[b.len() - 1].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'_')
        && !s.contains("__")
}

/// Python's `float()` of an element's text.
pub(super) fn python_float(data: &str) -> Result<f64, DecodeError> {
    parse_float(data.trim()).ok_or_else(|| {
        python(
            "ValueError",
            format!(
                "could not convert string to float: {}",
                python_repr(excerpt_to(data, 200))
            ),
        )
    })
}

/// A float in Python's syntax (`1_0.5`, `.5`, `5.`, `1e5`, `inf`, `-nan`, `Infinity`).
fn parse_float(s: &str) -> Option<f64> {
    let (sign, body) = match s.as_bytes().first() {
        Some(b'-') => (-1.0, &s[1..]),
        Some(b'+') => (1.0, &s[1..]),
        _ => (1.0, s),
    };
    match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => return Some(sign * f64::INFINITY),
        "nan" => return Some(f64::NAN.copysign(sign)),
        _ => {}
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (whole, fraction) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
        None => (mantissa, None),
    };
    let part = |p: &str| p.is_empty() || digits_with_underscores(p);
    if !part(whole)
        || !fraction.is_none_or(part)
        || (whole.is_empty() && fraction.is_none_or(str::is_empty))
    {
        return None;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if !digits_with_underscores(e) {
            return None;
        }
    }
    let plain: String = body.chars().filter(|c| *c != '_').collect();
    plain.parse::<f64>().ok().map(|v| sign * v)
}

/// Python's `Decimal()` of an element's text, held as the nearest float (README, divergence
/// 26: dxr has no decimal type). Its syntax error is `decimal.InvalidOperation`.
fn python_decimal(data: &str) -> Result<f64, DecodeError> {
    let s = data.trim();
    let special = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
    let value = match special.as_str() {
        "inf" | "infinity" | "nan" | "snan" => parse_float(s.trim_end_matches(['s', 'S'])),
        _ if s.contains(['i', 'I', 'n', 'N']) => None,
        _ => parse_float(s),
    };
    value.ok_or_else(|| {
        python(
            "decimal.InvalidOperation",
            "[<class 'decimal.ConversionSyntax'>]".into(),
        )
    })
}

/// `base64.decodebytes(data.encode("ascii"))`, as CPython's `binascii.a2b_base64` decodes
/// (not strict): characters outside the alphabet are skipped, a pad ends the data once a
/// quad has two characters, and a quad left with one or with two or three characters and no
/// pad is an error.
pub(super) fn python_base64(data: &str) -> Result<Vec<u8>, DecodeError> {
    if let Some(i) = data.chars().position(|c| !c.is_ascii()) {
        // Python names the run of characters ASCII cannot encode that starts there.
        let run = data.chars().skip(i).take_while(|c| !c.is_ascii()).count();
        let what = match run {
            1 => {
                let c = data.chars().nth(i).unwrap_or_default();
                let shown = match u32::from(c) {
                    n if n < 0x100 => format!("\\x{n:02x}"),
                    n if n < 0x10000 => format!("\\u{n:04x}"),
                    n => format!("\\U{n:08x}"),
                };
                format!("character '{shown}' in position {i}")
            }
            n => format!("characters in position {i}-{}", i + n - 1),
        };
        return Err(python(
            "UnicodeEncodeError",
            format!("'ascii' codec can't encode {what}: ordinal not in range(128)"),
        ));
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3);
    let (mut quad, mut left, mut pads) = (0u8, 0u8, 0u8);
    for c in data.bytes() {
        if c == b'=' {
            pads += 1;
            if quad >= 2 && quad + pads >= 4 {
                return Ok(out);
            }
            continue;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        pads = 0;
        match quad {
            0 => {
                quad = 1;
                left = v;
            }
            1 => {
                quad = 2;
                out.push((left << 2) | (v >> 4));
                left = v & 0x0f;
            }
            2 => {
                quad = 3;
                out.push((left << 4) | (v >> 2));
                left = v & 0x03;
            }
            _ => {
                quad = 0;
                out.push((left << 6) | v);
                left = 0;
            }
        }
    }
    match quad {
        0 => Ok(out),
        1 => Err(python(
            "binascii.Error",
            format!(
                "Invalid base64-encoded string: number of data characters ({}) cannot be 1 more than a multiple of 4",
                out.len() / 3 * 4 + 1
            ),
        )),
        _ => Err(python("binascii.Error", "Incorrect padding".into())),
    }
}

/// The date a dateTime's text names, as dxr holds one. CPython keeps the text itself
/// (stripped), whatever it says; dxr holds a date and time, so text in its format or in the
/// extended ISO 8601 one (`2024-01-02T03:04:05`) is read as that date and any other text as
/// 0000-01-01T00:00:00 (README, divergence 26: no method of the protocol reads a dateTime's
/// content, only its type).
fn date_time(data: &str) -> dxr::DateTime {
    let text = data.trim();
    let basic = text.replacen('-', "", 2);
    dxr::DateTime::from_str(text)
        .or_else(|_| dxr::DateTime::from_str(&basic))
        .unwrap_or_else(|_| unreadable_date())
}

/// What a dateTime whose text names no date is held as.
pub const UNREADABLE_DATE_TIME: &str = "00000101T00:00:00";

/// [`UNREADABLE_DATE_TIME`] as dxr holds it.
fn unreadable_date() -> dxr::DateTime {
    // A constant in dxr's own format (unit-tested below): the parse cannot fail.
    dxr::DateTime::from_str(UNREADABLE_DATE_TIME).expect("a date in dxr's format")
}

/// One pass over `text` (a whole document): what `xmlrpc.client.loads` returns for it.
///
/// Longer than the crate's other functions on purpose: it is one loop over quick-xml's events
/// with one arm per event kind (each guard a few lines: depth, DOCTYPE, references, what
/// expat refuses), the hot path of every request that is not a plain call; split into
/// functions, each arm would need the loop's whole state passed in.
/// [`Unmarshaller::end`] is the same for the element ends, as CPython's `Unmarshaller` has one
/// dispatch table for them.
pub(super) fn loads(
    text: &str,
    mut flaw: Option<(usize, DecodeError)>,
) -> Result<Loaded, DecodeError> {
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
            super::excerpt(&message),
            reader.error_position()
        ))
    };
    loop {
        let at_start = reader.buffer_position() == 0;
        let event = reader.read_event();
        // The text's flaw, once the reader gets to it: expat stops at the token holding it,
        // before any handler runs for that token.
        let reached = match &event {
            Ok(_) => reader.buffer_position(),
            Err(_) => reader.error_position() + 1,
        };
        if let Some((_, e)) = flaw.take_if(|(at, _)| reached as usize > *at) {
            return Err(e);
        }
        let event = event.map_err(|e| malformed(&reader, &e))?;
        let position = reader.buffer_position();
        let not_well_formed = |what: &str| {
            DecodeError::Malformed(format!("not well-formed ({what}): byte {position}"))
        };
        match event {
            Event::Start(start) => {
                root = check_root(root, depth)?;
                check_tag(&start).map_err(&not_well_formed)?;
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(DecodeError::Refused(format!(
                        "document nested deeper than {MAX_DEPTH} elements"
                    )));
                }
                u.start(start.name().into_inner())?;
            }
            Event::Empty(start) => {
                root = check_root(root, depth)?;
                check_tag(&start).map_err(&not_well_formed)?;
                let name = start.name().into_inner();
                u.start(name)?;
                u.end(name)?;
            }
            Event::End(end) => {
                depth = depth.saturating_sub(1);
                u.end(end.name().into_inner())?;
            }
            Event::Text(t) => {
                if depth == 0 {
                    if !t
                        .as_ref()
                        .chars()
                        .all(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
                    {
                        return Err(DecodeError::Malformed(format!(
                            "not well-formed (text outside the root element): byte {}",
                            reader.buffer_position()
                        )));
                    }
                } else {
                    if t.as_ref().contains("]]>") {
                        return Err(not_well_formed("]]> in text"));
                    }
                    u.data.push_str(&t.xml10_content());
                }
            }
            Event::CData(c) => {
                if depth == 0 {
                    return Err(DecodeError::Malformed(
                        "not well-formed (CDATA outside the root element)".into(),
                    ));
                }
                u.data.push_str(&c.xml10_content());
            }
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
            Event::PI(pi) => {
                // `<?xml ...?>` anywhere but at the start, in any case, is expat's error.
                let target = pi.target();
                if target.eq_ignore_ascii_case("xml") || !is_xml_name(target) {
                    return Err(not_well_formed("invalid processing instruction"));
                }
            }
            Event::Decl(_) => {
                // Only the document's first bytes may be the declaration (expat's error
                // otherwise, in any case of `xml`).
                if !at_start {
                    return Err(DecodeError::Malformed(
                        "XML or text declaration not at start of entity".into(),
                    ));
                }
            }
            Event::Eof => break,
            Event::Comment(c) => {
                let c: &str = c.as_ref();
                if c.contains("--") || c.ends_with('-') {
                    return Err(not_well_formed("-- in a comment"));
                }
            }
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
    u.close()
}

/// Whether `name` is an XML name as expat reads names: ASCII letters, `_` and `:` first,
/// then digits, `-` and `.` too, and beyond ASCII the letters (and, after the first, digits
/// and combining marks). Expat follows XML 1.0's fourth edition, whose name characters are
/// letters, not the fifth edition's wide ranges (where U+FFFD, a symbol, is a name start).
fn is_xml_name(name: &str) -> bool {
    fn start(c: char) -> bool {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (!c.is_ascii() && c.is_alphabetic())
    }
    let mut chars = name.chars();
    chars.next().is_some_and(start)
        && chars.all(|c| {
            start(c)
                || c.is_ascii_digit()
                || matches!(c, '-' | '.' | '\u{B7}' | '\u{300}'..='\u{36F}')
                || (!c.is_ascii() && c.is_alphanumeric())
        })
}

/// What expat checks in a start tag and quick-xml does not: the name, and each attribute
/// (a name, `=`, a quoted value without `<` whose references are defined, once each,
/// whitespace between them). Unmarshaller ignores attributes, but a document with a bad one
/// is not XML.
fn check_tag(start: &quick_xml::events::BytesStart<'_>) -> Result<(), &'static str> {
    if !is_xml_name(start.name().into_inner()) {
        return Err("invalid element name");
    }
    let raw = &start.as_ref()[start.name().as_ref().len()..];
    if !raw.is_empty() && !raw.starts_with(|c: char| c.is_ascii_whitespace()) {
        return Err("invalid element name");
    }
    let mut seen = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|_| "invalid attribute")?;
        let name = attr.key.into_inner();
        let value: &str = &attr.value;
        if !is_xml_name(name) || seen.contains(&name) {
            return Err("invalid or duplicated attribute");
        }
        seen.push(name);
        if value.contains('<') || !references_defined(value) {
            return Err("invalid attribute value");
        }
    }
    // Quoted values must be separated by whitespace: `a="x"b="y"` is not XML.
    let mut quote = None;
    let mut after_value = false;
    for c in raw.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                after_value = true;
            }
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if after_value && !c.is_ascii_whitespace() && c != '/' => {
                return Err("attributes not separated");
            }
            None => after_value = after_value && !c.is_ascii_whitespace(),
        }
    }
    Ok(())
}

/// Whether every `&` in an attribute value starts a predefined entity or a character
/// reference.
fn references_defined(value: &str) -> bool {
    value.split('&').skip(1).all(|rest| {
        let Some(end) = rest.find(';') else {
            return false;
        };
        let name = &rest[..end];
        matches!(name, "lt" | "gt" | "amp" | "apos" | "quot")
            || name
                .strip_prefix("#x")
                .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
            || name
                .strip_prefix('#')
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
    })
}

/// A start tag at `depth`: the root if it is the first one, else `junk after document element`.
fn check_root(seen: bool, depth: usize) -> Result<bool, DecodeError> {
    if depth == 0 && seen {
        return Err(DecodeError::Malformed("junk after document element".into()));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(body: &str) -> Vec<Value> {
        match loads(body, None) {
            Ok(Loaded::Values { params, .. }) => params,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn the_unreadable_date_is_in_dxrs_format() {
        assert!(dxr::DateTime::from_str(UNREADABLE_DATE_TIME).is_ok());
        assert_eq!(
            date_time(" 2024-01-02T03:04:05 ").to_string(),
            "20240102T03:04:05"
        );
        assert_eq!(date_time("yesterday").to_string(), UNREADABLE_DATE_TIME);
    }

    #[test]
    fn no_value_vanishes() {
        let call = |v: &str| {
            format!(
                "<methodCall><methodName>m</methodName><params><param><value>{v}</value></param></params></methodCall>"
            )
        };
        assert_eq!(values(&call("<ex:nil/>")), [Value::Nil]);
        assert_eq!(
            values(&call("<x:string>a</x:string>")),
            [Value::String("a".into())]
        );
        assert!(matches!(
            loads(&call("<foo>x</foo>"), None),
            Err(DecodeError::Python { class: "xmlrpc.client.ResponseError", message })
                if message == "ResponseError(\"unknown tag 'foo'\")"
        ));
        // Text left from an inner element's end counts, as in CPython.
        assert_eq!(
            values(&call("<int><string>5</string></int>")),
            [Value::String("5".into()), Value::Integer(5)]
        );
    }

    #[test]
    fn python_numbers() {
        assert_eq!(python_int(" +1_000 ").unwrap(), Value::Integer(1000));
        assert_eq!(python_int("4294967296").unwrap(), Value::Long(1 << 32));
        assert_eq!(
            python_int("9".repeat(30).as_str()).unwrap(),
            Value::Long(i64::MAX)
        );
        for bad in ["", "1__0", "_1", "0x1", "5.0"] {
            assert!(python_int(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_float("1_0.5"), Some(10.5));
        assert_eq!(parse_float("1e1_0"), Some(1e10));
        assert_eq!(parse_float(".5"), Some(0.5));
        assert_eq!(parse_float("5."), Some(5.0));
        assert_eq!(parse_float("-Infinity"), Some(f64::NEG_INFINITY));
        for bad in ["", ".", "1__0", "_1", "1e", "e5", "0x10", "1_"] {
            assert_eq!(parse_float(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base64_as_binascii() {
        assert_eq!(python_base64("QUJD\nREVG").unwrap(), b"ABCDEF");
        assert_eq!(python_base64("QQ==QQ==").unwrap(), b"A");
        assert_eq!(python_base64("=QQ==").unwrap(), b"A");
        assert_eq!(python_base64("Q*U*J*D").unwrap(), b"ABC");
        assert!(python_base64("QQ=").is_err());
        assert!(python_base64("Q===").is_err());
        assert!(python_base64("\u{e9}").is_err());
    }
}
