//! A body's bytes as text, decoded as expat (the parser under CPython's `xmlrpc.client.loads`)
//! decodes them: UTF-8 unless a byte order mark or the XML declaration says otherwise.
//!
//! Why: a peer or a caller may send ISO-8859-1 or UTF-16, which CPython reads, and a body
//! declared `us-ascii` holding other bytes, which CPython refuses; before this, every body was
//! read as UTF-8 whatever it declared (issue 27, item 2). What we decode: UTF-8, UTF-16 (either
//! byte order, with or without a byte order mark), ISO-8859-1 and US-ASCII, under expat's
//! names and under the Python codec names pyexpat lets through (`latin-1`, `ascii`, `utf8`,
//! which pyexpat maps byte by byte, so `utf8` takes ASCII only). Other single-byte codecs that
//! CPython maps the same way (`windows-1252`, `koi8-r`...) are refused as unknown encodings:
//! a deliberate divergence (README, divergence 26); multi-byte ones CPython refuses too.
//!
//! The common body (no byte order mark, a declaration without `encoding`, or none) costs one
//! search for the declaration's end and is not copied.

use std::borrow::Cow;

use super::DecodeError;

/// How a document's bytes become characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    /// Bytes below 0x80 only (US-ASCII, and what pyexpat makes of `utf8`).
    Ascii,
    Latin1,
    Utf16 {
        big_endian: bool,
    },
}

/// What a body is as text, and the first flaw in its bytes (where, and expat's error there).
type Text<'a> = (Cow<'a, str>, Option<(usize, DecodeError)>);

/// `body` as text, decoded as expat decodes it: byte order mark, then the declaration. A
/// byte the encoding does not allow is not an error here but the text's flaw, at its offset:
/// the text up to it is exact (a lossy rest follows), and the reader meets the flaw in order.
pub(super) fn document_text(body: &[u8]) -> Result<Text<'_>, DecodeError> {
    let (bom, skip) = match body {
        [0xEF, 0xBB, 0xBF, ..] => (Some(Encoding::Utf8), 3),
        [0xFE, 0xFF, ..] => (Some(Encoding::Utf16 { big_endian: true }), 2),
        [0xFF, 0xFE, ..] => (Some(Encoding::Utf16 { big_endian: false }), 2),
        // No mark: expat recognises UTF-16 by a NUL byte next to the first `<`.
        [0, b'<', ..] => (Some(Encoding::Utf16 { big_endian: true }), 0),
        [b'<', 0, ..] => (Some(Encoding::Utf16 { big_endian: false }), 0),
        _ => (None, 0),
    };
    let rest = &body[skip..];
    match bom {
        Some(Encoding::Utf16 { big_endian }) => {
            let (text, flaw) = utf16(rest, big_endian);
            // The declaration, read in the decoded text, may only confirm UTF-16.
            match declared(text.as_bytes())? {
                None | Some(Encoding::Utf16 { .. }) => Ok((Cow::Owned(text), flaw)),
                Some(_) => Err(incorrect(text.as_bytes())),
            }
        }
        // A UTF-8 mark and an 8-bit declaration: expat follows the declaration.
        _ => match declared(rest)? {
            None | Some(Encoding::Utf8) => Ok(utf8(rest)),
            Some(Encoding::Ascii) => Ok(ascii(rest)),
            Some(Encoding::Latin1) => Ok((
                Cow::Owned(rest.iter().map(|&b| char::from(b)).collect()),
                None,
            )),
            Some(Encoding::Utf16 { .. }) => Err(incorrect(rest)),
        },
    }
}

/// Expat's error for a byte or unit the encoding does not allow, at `at` in `text`.
fn invalid_at(text: &str, at: usize) -> DecodeError {
    let (line, column) = super::line_column(text, at);
    DecodeError::Malformed(format!(
        "not well-formed (invalid token): line {line}, column {column}"
    ))
}

/// `doc` as UTF-8 (not copied when it is).
fn utf8(doc: &[u8]) -> Text<'_> {
    match std::str::from_utf8(doc) {
        Ok(text) => (Cow::Borrowed(text), None),
        Err(e) => {
            let text = String::from_utf8_lossy(doc);
            let at = e.valid_up_to();
            let flaw = invalid_at(&text, at);
            (text, Some((at, flaw)))
        }
    }
}

/// `doc` as ASCII: a byte from 0x80 up is expat's invalid token.
fn ascii(doc: &[u8]) -> Text<'_> {
    match doc.iter().position(|b| !b.is_ascii()) {
        None => utf8(doc),
        Some(at) => {
            let text = String::from_utf8_lossy(doc);
            let flaw = invalid_at(&text, at);
            (text, Some((at, flaw)))
        }
    }
}

/// `doc` as UTF-16 in the given byte order; an odd length or a lone surrogate is the flaw.
fn utf16(doc: &[u8], big_endian: bool) -> (String, Option<(usize, DecodeError)>) {
    let units = doc.chunks(2).map(|pair| match pair {
        [a, b] if big_endian => u16::from_be_bytes([*a, *b]),
        [a, b] => u16::from_le_bytes([*a, *b]),
        _ => 0xDC00, // a lone byte: never a whole character
    });
    let mut out = String::with_capacity(doc.len() / 2);
    let mut flaw = None;
    for c in char::decode_utf16(units) {
        match c {
            Ok(c) => out.push(c),
            Err(_) => {
                if flaw.is_none() {
                    flaw = Some((out.len(), invalid_at(&out, out.len())));
                }
                out.push(char::REPLACEMENT_CHARACTER);
            }
        }
    }
    (out, flaw)
}

/// Expat's fault for a declaration that contradicts the bytes.
fn incorrect(doc: &[u8]) -> DecodeError {
    let column = find(doc, b"encoding").unwrap_or(0);
    DecodeError::Malformed(format!(
        "encoding specified in XML declaration is incorrect: line 1, column {column}"
    ))
}

/// The encoding the XML declaration at the start of `doc` names, if any. A declaration
/// expat refuses (no version, not at the start) is refused here too; an encoding name neither
/// expat nor pyexpat maps is Python's `LookupError`.
fn declared(doc: &[u8]) -> Result<Option<Encoding>, DecodeError> {
    // The declarations Python's client and dxr write, taken without parsing: every call of
    // the protocol starts with one of them, or with none.
    if doc.starts_with(b"<?xml version='1.0'?>") || doc.starts_with(b"<?xml version=\"1.0\"?>") {
        return Ok(None);
    }
    if !doc.starts_with(b"<?xml") {
        // A declaration anywhere else is the reader's to refuse (`read::loads`).
        return Ok(None);
    }
    match doc.get(5) {
        Some(c) if c.is_ascii_whitespace() => {}
        // `<?xml-stylesheet ...?>` and the like: a processing instruction, not a declaration.
        Some(c) if *c != b'?' => return Ok(None),
        _ => return Err(not_well_formed_declaration(5)),
    }
    let end = find(doc, b"?>").ok_or_else(|| not_well_formed_declaration(5))?;
    let decl = std::str::from_utf8(&doc[5..end]).map_err(|_| not_well_formed_declaration(5))?;
    let attrs = pseudo_attributes(decl).ok_or_else(|| not_well_formed_declaration(5))?;
    // version first, then encoding, then standalone, each at most once (XML 1.0, [23]).
    let order = ["version", "encoding", "standalone"];
    let mut last = None;
    for (name, _) in &attrs {
        let i = order.iter().position(|o| o == name);
        match (i, last) {
            (Some(i), Some(l)) if i <= l => return Err(not_well_formed_declaration(5)),
            (Some(i), _) => last = Some(i),
            (None, _) => return Err(not_well_formed_declaration(5)),
        }
    }
    if attrs.first().map(|(n, _)| *n) != Some("version") {
        return Err(not_well_formed_declaration(5));
    }
    match attrs.iter().find(|(n, _)| *n == "encoding") {
        None => Ok(None),
        Some((_, name)) => encoding_named(name).map(Some),
    }
}

fn not_well_formed_declaration(column: usize) -> DecodeError {
    DecodeError::Malformed(format!(
        "XML declaration not well-formed: line 1, column {column}"
    ))
}

/// `name="value"` pairs of a declaration's inside (after `<?xml`, before `?>`), each after
/// whitespace; `None` when it is not such a list.
fn pseudo_attributes(mut s: &str) -> Option<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    loop {
        let trimmed = s.trim_start_matches([' ', '\t', '\r', '\n']);
        if trimmed.is_empty() {
            return Some(out);
        }
        if trimmed.len() == s.len() {
            return None;
        }
        let eq = trimmed.find('=')?;
        let name = trimmed[..eq].trim_end_matches([' ', '\t', '\r', '\n']);
        let after = trimmed[eq + 1..].trim_start_matches([' ', '\t', '\r', '\n']);
        let quote = after.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let close = after[1..].find(quote)?;
        out.push((name, &after[1..1 + close]));
        s = &after[close + 2..];
    }
}

/// The encoding a declaration's name selects: expat's own names (any case), then the Python
/// codecs pyexpat maps byte by byte, under Python's names for them.
fn encoding_named(name: &str) -> Result<Encoding, DecodeError> {
    let upper = name.to_ascii_uppercase();
    match upper.as_str() {
        "UTF-8" => return Ok(Encoding::Utf8),
        "US-ASCII" => return Ok(Encoding::Ascii),
        "ISO-8859-1" => return Ok(Encoding::Latin1),
        "UTF-16" => return Ok(Encoding::Utf16 { big_endian: true }),
        "UTF-16BE" => return Ok(Encoding::Utf16 { big_endian: true }),
        "UTF-16LE" => return Ok(Encoding::Utf16 { big_endian: false }),
        _ => {}
    }
    // Python's `encodings.normalize_encoding`, then its alias table for the three codecs.
    let normal: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || c == '.' => c,
            _ => '_',
        })
        .collect();
    const UTF_8: [&str; 8] = [
        "utf_8",
        "utf8",
        "u8",
        "utf",
        "utf8_ucs2",
        "utf8_ucs4",
        "cp65001",
        "utf_8_sig",
    ];
    const LATIN_1: [&str; 11] = [
        "latin_1",
        "latin1",
        "latin",
        "l1",
        "iso_8859_1",
        "iso8859_1",
        "8859",
        "cp819",
        "iso_ir_100",
        "csisolatin1",
        "ibm819",
    ];
    const ASCII: [&str; 13] = [
        "ascii",
        "646",
        "us",
        "us_ascii",
        "ansi_x3.4_1968",
        "ansi_x3_4_1968",
        "ansi_x3.4_1986",
        "cp367",
        "csascii",
        "ibm367",
        "iso646_us",
        "iso_646.irv_1991",
        "iso_ir_6",
    ];
    /// Python codecs that decode a byte into other than one character: pyexpat refuses them.
    const MULTI_BYTE: [&str; 30] = [
        "utf_16",
        "utf16",
        "u16",
        "utf_16le",
        "utf_16be",
        "utf_16_le",
        "utf_16_be",
        "utf_32",
        "utf32",
        "u32",
        "utf_32le",
        "utf_32be",
        "utf_32_le",
        "utf_32_be",
        "shift_jis",
        "sjis",
        "s_jis",
        "shiftjis",
        "cp932",
        "ms932",
        "euc_jp",
        "eucjp",
        "euc_kr",
        "euckr",
        "gb2312",
        "gbk",
        "gb18030",
        "big5",
        "cp949",
        "cp950",
    ];
    if MULTI_BYTE.contains(&normal.as_str()) {
        Err(DecodeError::Python {
            class: "ValueError",
            message: "multi-byte encodings are not supported".into(),
        })
    } else if UTF_8.contains(&normal.as_str()) || ASCII.contains(&normal.as_str()) {
        // pyexpat maps a codec byte by byte: what UTF-8 decodes alone is ASCII.
        Ok(Encoding::Ascii)
    } else if LATIN_1.contains(&normal.as_str()) {
        Ok(Encoding::Latin1)
    } else {
        Err(DecodeError::Python {
            class: "LookupError",
            message: format!("unknown encoding: {name}"),
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "<methodCall><methodName>m\u{e9}</methodName></methodCall>";

    fn with_decl(encoding: &str) -> String {
        format!("<?xml version='1.0' encoding='{encoding}'?>{BODY}")
    }

    #[test]
    fn utf8_bodies_are_not_copied() {
        for body in [
            BODY.to_string(),
            format!("<?xml version='1.0'?>\n{BODY}"),
            with_decl("UTF-8"),
        ] {
            assert!(matches!(
                document_text(body.as_bytes()),
                Ok((Cow::Borrowed(_), None))
            ));
        }
    }

    /// The text, once it has no flaw.
    fn text(body: &[u8]) -> String {
        match document_text(body) {
            Ok((text, None)) => text.into_owned(),
            other => panic!("{other:?}"),
        }
    }

    /// Where the flaw is.
    fn flaw(body: &[u8]) -> Option<usize> {
        document_text(body).ok()?.1.map(|(at, _)| at)
    }

    #[test]
    fn declared_and_marked_encodings_decode_as_expat_does() {
        let latin: Vec<u8> = with_decl("iso-8859-1")
            .chars()
            .map(|c| c as u32 as u8)
            .collect();
        assert_eq!(text(&latin), with_decl("iso-8859-1"));
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                with_decl("utf-16")
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        assert_eq!(text(&utf16), with_decl("utf-16"));
        let be: Vec<u8> = BODY.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(text(&be), BODY);
        // Declared US-ASCII (or utf8, which pyexpat maps byte by byte) but not ASCII: the
        // flaw is the first byte from 0x80 up.
        for name in ["us-ascii", "utf8", "ascii"] {
            let body = with_decl(name);
            assert_eq!(flaw(body.as_bytes()), body.find('\u{e9}'), "{name}");
        }
        assert_eq!(flaw(b"<a>\xff</a>"), Some(3));
        assert!(matches!(
            document_text(with_decl("x-foo").as_bytes()),
            Err(DecodeError::Python {
                class: "LookupError",
                ..
            })
        ));
        assert!(matches!(
            document_text(with_decl("shift_jis").as_bytes()),
            Err(DecodeError::Python {
                class: "ValueError",
                ..
            })
        ));
        assert!(matches!(
            document_text(with_decl("utf-16").as_bytes()),
            Err(DecodeError::Malformed(m)) if m.starts_with("encoding specified")
        ));
        assert!(document_text(format!("<?xml encoding='utf-8'?>{BODY}").as_bytes()).is_err());
        assert!(document_text(format!("<?xml-stylesheet x?>{BODY}").as_bytes()).is_ok());
    }
}
