//! XML-RPC bodies as Python's `xmlrpc.client` writes them, and a guarded reader for calls.
//!
//! Writing: the layout (newlines, `<?xml version='1.0'?>`, `<int>` for integers, escaping only
//! `&`, `<`, `>`) is Python's byte for byte, so a capture of a Rust node looks like a capture
//! of the original. Reading: `dxr` parses calls and responses; before it sees a body, [`scan`]
//! walks it once with quick-xml to refuse what a node must never process (DOCTYPE and entity
//! declarations, nesting deeper than [`MAX_DEPTH`]) and to get a parser message worth showing,
//! since `dxr` reports only "invalid data" plus the whole body.

use std::fmt::Write as _;

use dxr::{Fault, MethodCall, Value};
use quick_xml::events::Event;

/// Deepest element nesting a request may have. XML-RPC calls of this protocol are 6 deep; a
/// deeper document would only make the recursive deserializer use more stack.
pub const MAX_DEPTH: usize = 64;

/// Longest excerpt of a bad request quoted back in a fault.
pub const MAX_ECHO: usize = 200;

/// Why a request body is not a call we can dispatch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not well-formed XML (or not UTF-8); the message is the parser's.
    #[error("{0}")]
    Malformed(String),
    /// Well-formed but refused: DOCTYPE/entities, too deep, not a `methodCall`.
    #[error("{0}")]
    Refused(String),
}

/// Parse an XML-RPC `methodCall` body.
pub fn decode_call(body: &[u8]) -> Result<(String, Vec<Value>), DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        DecodeError::Malformed(format!(
            "not well-formed (invalid UTF-8 at byte {})",
            e.valid_up_to()
        ))
    })?;
    scan(text)?;
    match MethodCall::from_xml(text) {
        Ok(call) => Ok((call.name.into_owned(), call.params)),
        Err(_) => Err(DecodeError::Refused(format!(
            "not an XML-RPC methodCall: {}",
            excerpt(text)
        ))),
    }
}

/// At most [`MAX_ECHO`] bytes of `text`, cut at a character boundary.
pub fn excerpt(text: &str) -> &str {
    if text.len() <= MAX_ECHO {
        return text;
    }
    let mut end = MAX_ECHO;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// One pass over the document: well-formedness, no DTD, bounded depth, root `methodCall`.
fn scan(text: &str) -> Result<(), DecodeError> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let event = reader.read_event().map_err(|e| {
            DecodeError::Malformed(format!(
                "not well-formed ({e}): byte {}",
                reader.error_position()
            ))
        })?;
        match event {
            Event::DocType(_) => {
                return Err(DecodeError::Refused(
                    "DOCTYPE and entity declarations are not accepted".into(),
                ));
            }
            Event::Start(start) => {
                if depth == 0 {
                    check_root(&start, &mut seen_root)?;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(DecodeError::Refused(format!(
                        "document nested deeper than {MAX_DEPTH} elements"
                    )));
                }
            }
            Event::Empty(start) if depth == 0 => check_root(&start, &mut seen_root)?,
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) if depth == 0 && !t.as_ref().trim().is_empty() => {
                return Err(DecodeError::Malformed(
                    "not well-formed (text outside the root element)".into(),
                ));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err(DecodeError::Malformed(
            "no element found: unclosed element".into(),
        ));
    }
    if !seen_root {
        return Err(DecodeError::Malformed("no element found".into()));
    }
    Ok(())
}

fn check_root(
    start: &quick_xml::events::BytesStart<'_>,
    seen: &mut bool,
) -> Result<(), DecodeError> {
    if *seen {
        return Err(DecodeError::Malformed("junk after document element".into()));
    }
    *seen = true;
    let name = start.name().into_inner();
    if name != "methodCall" {
        return Err(DecodeError::Refused(format!(
            "not an XML-RPC methodCall: root element is <{}>",
            excerpt(name)
        )));
    }
    Ok(())
}

/// Parse a `methodResponse` body: `Ok(Ok(value))`, `Ok(Err(fault))`, or why it is not one.
pub fn decode_response(body: &str) -> Result<Result<Value, Fault>, String> {
    match dxr_client::utils::response_to_result(body) {
        Ok(Ok(response)) => Ok(Ok(response.value)),
        Ok(Err(fault)) => Ok(Err(fault.fault)),
        Err(_) => Err(format!("malformed XML-RPC response: {}", excerpt(body))),
    }
}

const HEADER: &str = "<?xml version='1.0'?>\n";

/// A `methodCall` body, as Python's `xmlrpc.client.dumps(params, methodname)` writes it.
pub fn encode_call(method: &str, params: &[Value]) -> String {
    let mut out = String::with_capacity(128 + 64 * params.len());
    out.push_str(HEADER);
    out.push_str("<methodCall>\n<methodName>");
    escape_into(&mut out, method);
    out.push_str("</methodName>\n<params>\n");
    for p in params {
        out.push_str("<param>\n");
        write_value(&mut out, p);
        out.push_str("</param>\n");
    }
    out.push_str("</params>\n</methodCall>\n");
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

/// A fault `methodResponse` body.
pub fn encode_fault(code: i32, string: &str) -> String {
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
    match value {
        Value::String(s) => {
            out.push_str("<value><string>");
            escape_into(out, s);
            out.push_str("</string></value>\n");
        }
        Value::Integer(i) => {
            let _ = writeln!(out, "<value><int>{i}</int></value>");
        }
        Value::Long(i) => {
            let _ = writeln!(out, "<value><i8>{i}</i8></value>");
        }
        Value::Boolean(b) => {
            let _ = writeln!(out, "<value><boolean>{}</boolean></value>", u8::from(*b));
        }
        Value::Double(d) => {
            let _ = writeln!(out, "<value><double>{d:?}</double></value>");
        }
        Value::Struct(members) => {
            out.push_str("<value><struct>\n");
            for (name, v) in members {
                out.push_str("<member>\n<name>");
                escape_into(out, name);
                out.push_str("</name>\n");
                write_value(out, v);
                out.push_str("</member>\n");
            }
            out.push_str("</struct></value>\n");
        }
        Value::Array(items) => {
            out.push_str("<value><array><data>\n");
            for v in items {
                write_value(out, v);
            }
            out.push_str("</data></array></value>\n");
        }
        Value::Nil => out.push_str("<value><nil/></value>"),
        // dateTime and base64 never occur in this protocol's replies; dxr writes them.
        other => {
            out.push_str(&other.to_xml().unwrap_or_default());
            out.push('\n');
        }
    }
}

/// Python's `xmlrpc.client.escape`: only `&`, `<` and `>`.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// Python's name for the type an XML-RPC value becomes (`int`, `str`, ...), as it appears in
/// Python's error messages.
pub fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Integer(_) | Value::Long(_) => "int",
        Value::Boolean(_) => "bool",
        Value::String(_) => "str",
        Value::Double(_) => "float",
        Value::DateTime(_) => "DateTime",
        Value::Base64(_) => "Binary",
        Value::Struct(_) => "dict",
        Value::Array(_) => "list",
        Value::Nil => "NoneType",
        _ => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_is_python_bytes() {
        let body = encode_call(
            "send_message",
            &[Value::String("Q".into()), Value::String("attack".into())],
        );
        assert_eq!(
            body,
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>send_message</methodName>\n<params>\n<param>\n<value><string>Q</string></value>\n</param>\n<param>\n<value><string>attack</string></value>\n</param>\n</params>\n</methodCall>\n"
        );
        let (name, params) = decode_call(body.as_bytes()).unwrap();
        assert_eq!(name, "send_message");
        assert_eq!(params.len(), 2);
    }

    #[test]
    fn fault_is_python_bytes() {
        assert_eq!(
            encode_fault(1, "<class 'Exception'>:method \"nope\" is not supported"),
            "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>1</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>&lt;class 'Exception'&gt;:method \"nope\" is not supported</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n"
        );
    }

    #[test]
    fn response_round_trips() {
        let body = encode_response(&Value::String("a<&>'\"é".into()));
        assert_eq!(
            decode_response(&body).unwrap().unwrap(),
            Value::String("a<&>'\"é".into())
        );
        let fault = encode_fault(1, "x<y");
        let f = decode_response(&fault).unwrap().unwrap_err();
        assert_eq!((f.code(), f.string()), (1, "x<y"));
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
}
