//! Every string the original simulation puts on the wire or on the console, in one place.
//!
//! The original is `server.py` / `client.py` (see `docs/protocol.md`). Each
//! constant or function here reproduces one observed string byte for byte, so the protocol can
//! be read (and reviewed against the original) without reading any other module. Extensions of
//! ours are marked as such.

/// Extension methods of ours for Byzantine agreement (documented with their signatures in
/// `docs/protocol-extensions.md`). The original three methods are untouched.
pub mod ext {
    /// The reply of methods that only acknowledge.
    pub const OK: &str = "ok";
    /// Why a driver's call for a run is refused without its capability; the fault reads
    /// `run 'ID' ` and this.
    pub(crate) const NOT_THE_DRIVER: &str = "is driven by another caller: the capability given is \
        not the one it was started with";
    /// Why a message is refused when its MAC does not prove its sender; the fault reads this,
    /// a space and the reason.
    pub(crate) const NOT_AUTHENTICATED: &str = "message not authenticated:";
    /// Why a `*_start` is refused while a run of that id is unfinished on the node; the fault
    /// reads `run 'ID' ` and this.
    pub(crate) const RUN_NOT_FINISHED: &str = "is not finished on this node (neither decided nor \
        expired): a live run is never replaced";
    /// Why a `*_start` is refused when the node holds `--max-runs` unfinished runs; the fault
    /// reads `this node holds N unfinished runs ` and this.
    pub(crate) const RUNS_FULL: &str = "(server --max-runs): a new run can start when one of them \
        is decided, expires or is left by its driver; try again in a few seconds";
    /// Why a message is refused when its round is closed at the receiver: the fault reads
    /// this, then ` in run 'ID'` ([`late_round`] reads it back).
    pub(crate) fn late(round: usize, current: usize) -> String {
        format!("{LATE_MARK}{round} is closed (this node is in round {current})")
    }

    /// The round of a message a receiver refused as late, from its fault string (any node's:
    /// the Python stand-in words it the same).
    pub(crate) fn late_round(fault: &str) -> Option<usize> {
        let rest = &fault[fault.find(LATE_MARK)? + LATE_MARK.len()..];
        let digits = rest.split(' ').next()?;
        digits.parse().ok()
    }

    const LATE_MARK: &str = "late: round ";

    /// The role of a run's commander, in `om_decide` / `sm_decide`'s `role`.
    pub(crate) const COMMANDER: &str = "commander";
    /// The role of every other participant.
    pub(crate) const LIEUTENANT: &str = "lieutenant";
    /// Members of the methods' struct answers (the types that write and read them are in
    /// `agreement::reply`).
    pub(crate) mod member {
        /// `node_info`: the node's name.
        pub(crate) const NAME: &str = "name";
        /// `node_info`: its behaviour, as written in `--behaviour`.
        pub(crate) const BEHAVIOUR: &str = "behaviour";
        /// `node_info`: whether that behaviour lies or withholds.
        pub(crate) const TRAITOR: &str = "traitor";
        /// `node_info`: its SM public key.
        pub(crate) const PUBLIC_KEY: &str = "public_key";
        /// `*_order`: messages the order makes.
        pub(crate) const QUEUED: &str = "queued";
        /// `*_round`: the round.
        pub(crate) const ROUND: &str = "round";
        /// `*_round`: messages the round owed.
        pub(crate) const DUE: &str = "due";
        /// `*_round`: messages sent; `*_decide`: per round, messages delivered.
        pub(crate) const SENT: &str = "sent";
        /// `*_round`: messages sent and stored.
        pub(crate) const DELIVERED: &str = "delivered";
        /// `*_round`: messages sent and not stored; `*_decide`: the same per round.
        pub(crate) const FAILED: &str = "failed";
        /// `*_round`: receiver -> messages not delivered to it.
        pub(crate) const FAILED_TO: &str = "failed_to";
        /// `*_decide`: `commander` or `lieutenant`.
        pub(crate) const ROLE: &str = "role";
        /// `*_decide`: the decision (a commander's: its order).
        pub(crate) const DECISION: &str = "decision";
        /// `*_decide`: messages received (OM: distinct paths; SM: accepted).
        pub(crate) const RECEIVED: &str = "received";
        /// `om_decide`: paths a complete run delivers here.
        pub(crate) const EXPECTED: &str = "expected";
        /// `sm_decide`: messages rejected.
        pub(crate) const REJECTED: &str = "rejected";
        /// `sm_decide`: the values accepted.
        pub(crate) const VALUES: &str = "values";
        /// `sm_decide`: the first rejection reasons.
        pub(crate) const REASONS: &str = "reasons";
        /// `sm_decide`, a scripted traitor only: messages it sent with a chain it did not
        /// hold (altered or forged).
        pub(crate) const FORGED: &str = "forged";
        /// `*_decide`: per round, messages the behaviour did not send.
        pub(crate) const WITHHELD: &str = "withheld";
        /// `*_decide`: sender -> messages refused as late.
        pub(crate) const LATE: &str = "late";
        /// `*_decide`: messages refused because their MAC did not prove their sender.
        pub(crate) const UNAUTHENTICATED: &str = "unauthenticated";
    }
}

/// Most calls one `system.multicall` may carry.
pub const MAX_BATCH: usize = 1024;

/// The decision the original client makes every node send.
pub(crate) const DEFAULT_DECISION: &str = "attack";
/// What a faulty node answers to `finalize_decision`.
pub(crate) const FAULTY_DECISION: &str = "faulty";
/// The name of the original's faulty node, which alone denies communication.
pub(crate) const ORIGINAL_FAULTY: &str = "P";
/// Nodes the original faulty P refuses to send to.
pub(crate) const DENIED_BY_P: [&str; 2] = ["R", "S"];
/// The name the original's port rule counts from: `port = base + ord(name) - ord('P')`.
pub(crate) const PORT_RULE_ORIGIN: char = 'P';
/// The first port of the original cluster (node P).
pub(crate) const DEFAULT_PORT_BASE: u16 = 8000;
/// The original cluster's node names in the order the original iterates them.
pub(crate) const DEFAULT_NODES: [&str; 4] = ["P", "Q", "R", "S"];
/// The host the original binds and calls (`localhost`).
pub(crate) const DEFAULT_HOST: &str = "127.0.0.1";
/// The XML-RPC paths Python's `SimpleXMLRPCRequestHandler` serves (`rpc_paths`).
pub(crate) const RPC_PATHS: [&str; 2] = ["/", "/RPC2"];
/// Body of the HTTP 404 answer for any other path.
pub(crate) const NO_SUCH_PAGE: &str = "No such page";
/// The fault code Python gives every exception.
pub const FAULT_CODE: i32 = 1;

/// `Process P running on port 8000...`: printed once per node at startup.
pub(crate) fn running_line(name: &str, port: u16) -> String {
    format!("Process {name} running on port {port}...")
}

/// `P sent decision 'attack' to Q`: printed before the call and returned after it.
pub fn sent_line(name: &str, decision: &str, recipient: &str) -> String {
    [name, " sent decision '", decision, "' to ", recipient].concat()
}

/// `Process P is denying communication to R`: printed by the faulty P.
pub(crate) fn denying_line(name: &str, recipient: &str) -> String {
    format!("Process {name} is denying communication to {recipient}")
}

/// `P denied communication to R`: returned by the faulty P.
pub fn denied_reply(name: &str, recipient: &str) -> String {
    format!("{name} denied communication to {recipient}")
}

/// `Q received decision 'attack' from P`: printed and returned by a loyal receiver.
///
/// The lines a node writes on every call are `concat`enated rather than `format!`ted, whose
/// machinery cost more than the copying (BENCHMARKS.md, "Close to the limit").
pub fn received_line(name: &str, decision: &str, sender: &str) -> String {
    [name, " received decision '", decision, "' from ", sender].concat()
}

/// `P (faulty) ignored message from Q`: returned by a faulty receiver.
pub fn ignored_reply(name: &str, sender: &str) -> String {
    [name, " (faulty) ignored message from ", sender].concat()
}

/// `majority is : attack`: printed by a loyal node when it finalizes.
pub(crate) fn majority_line(decision: &str) -> String {
    ["majority is : ", decision].concat()
}

/// The console lines above with each value as [`printed::value`] shows it: what a node and the
/// client print, where the functions above are what they answer. The original prints values
/// as given, so a decision holding `\n` and `Process Q finalized decision 'x'` forges a line,
/// and one holding ESC sequences moves the cursor or clears the screen; a 1 MB decision is a
/// 1 MB line. An ordinary value (no control characters, at most [`printed::MAX_VALUE`] bytes)
/// prints exactly as the original prints it.
pub(crate) mod printed {
    use std::borrow::Cow;
    use std::fmt::Write as _;

    /// Longest value a console line shows, in bytes; the rest is cut.
    pub(crate) const MAX_VALUE: usize = 200;

    /// Whether a console shows `c` as something other than itself: a C0 control (tab, line
    /// feed and carriage return included), DEL, a C1 control (NEL among them) or Unicode's
    /// line and paragraph separators, all of which can end a line or drive a terminal; or an
    /// [`is_invisible`] character.
    pub(crate) fn is_control(c: char) -> bool {
        c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') || is_invisible(c)
    }

    /// Whether `c` is a bidirectional control or a character shown as nothing at all. A bidi
    /// override (U+202E) or isolate (U+2066-U+2069) makes the rest of a line read backwards,
    /// so `Q received decision '\u{202e}kcatta' from P` shows `attack`; a zero-width space,
    /// joiner or BOM (U+200B-U+200F, U+FEFF) makes `Q\u{200b}` print as `Q`; tag characters
    /// (U+E0000-U+E0FFF) carry hidden text. The list is Unicode's default-ignorable format
    /// characters and bidi controls, less the variation selectors of emoji.
    pub(crate) fn is_invisible(c: char) -> bool {
        matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FEFF}'
            | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}' | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
    }

    /// `value` for a console line: controls ([`is_control`]) escaped as Python's `repr` writes
    /// them (`\n`, `\t`, `\r`, `\x1b`, `\x7f`, `\x85`, `\u2028`, `\u202e`, `\U000e0041`), and cut after
    /// [`MAX_VALUE`] bytes of output with `... [N bytes cut]` (N counts the value's bytes not
    /// shown). Backslashes are left as they are, so an ordinary value prints unchanged: a
    /// literal `\x1b` in a value reads like an escaped ESC, but neither forges a line.
    pub(crate) fn value(value: &str) -> Cow<'_, str> {
        if value.len() <= MAX_VALUE && !value.chars().any(is_control) {
            return Cow::Borrowed(value);
        }
        let mut out = String::with_capacity(MAX_VALUE + 32);
        for (at, c) in value.char_indices() {
            if out.len() >= MAX_VALUE {
                let _ = write!(out, "... [{} bytes cut]", value.len() - at);
                break;
            }
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if is_control(c) && (c as u32) < 0x100 => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if is_control(c) && (c as u32) < 0x10000 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c if is_control(c) => {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
                c => out.push(c),
            }
        }
        Cow::Owned(out)
    }

    /// [`super::running_line`], as printed.
    pub(crate) fn running_line(name: &str, port: u16) -> String {
        super::running_line(&value(name), port)
    }

    /// [`super::sent_line`], as printed.
    pub(crate) fn sent_line(name: &str, decision: &str, recipient: &str) -> String {
        super::sent_line(&value(name), &value(decision), &value(recipient))
    }

    /// [`super::denying_line`], as printed.
    pub(crate) fn denying_line(name: &str, recipient: &str) -> String {
        super::denying_line(&value(name), &value(recipient))
    }

    /// [`super::received_line`], as printed.
    pub(crate) fn received_line(name: &str, decision: &str, sender: &str) -> String {
        super::received_line(&value(name), &value(decision), &value(sender))
    }

    /// [`super::majority_line`], as printed.
    pub(crate) fn majority_line(decision: &str) -> String {
        super::majority_line(&value(decision))
    }

    /// [`super::client_send_line`], as printed (`reply` is what a node answered).
    pub(crate) fn client_send_line(reply: &str) -> String {
        super::client_send_line(&value(reply))
    }

    /// [`super::client_final_line`], as printed.
    pub(crate) fn client_final_line(name: &str, decision: &str) -> String {
        super::client_final_line(&value(name), &value(decision))
    }
}

/// `Process Q sent decision 'attack' to P`: the client's line per send (the original README's
/// shape: `Process ` followed by what `send_message` returned).
pub(crate) fn client_send_line(reply: &str) -> String {
    format!("Process {reply}")
}

/// `Process Q finalized decision: attack`: the client's final line per node.
pub(crate) fn client_final_line(name: &str, decision: &str) -> String {
    format!("Process {name} finalized decision: {decision}")
}

/// The stderr access-log line Python's `BaseHTTPRequestHandler` writes per request, e.g.
/// `127.0.0.1 - - [24/Nov/2026 12:54:29] "POST / HTTP/1.1" 200 -` (`status`: the code's digits).
/// The request line is the caller's: shown as [`printed::value`] shows a value (controls,
/// bidi and invisible characters escaped, cut after 200 bytes), as Python escapes controls
/// in its log.
pub(crate) fn access_log_line(
    client_ip: &str,
    when: &str,
    request_line: &str,
    status: &str,
) -> String {
    [
        client_ip,
        " - - [",
        when,
        "] \"",
        &printed::value(request_line),
        "\" ",
        status,
        " -",
    ]
    .concat()
}

/// The timestamp format of [`access_log_line`] (`%d/%b/%Y %H:%M:%S`, local time).
pub(crate) const ACCESS_LOG_TIME_FORMAT: &str = "%d/%b/%Y %H:%M:%S";

#[cfg(test)]
mod tests {
    use super::fault::{MAX_FAULT, cut, python};

    #[test]
    fn access_log_lines_are_pythons() {
        assert_eq!(
            super::access_log_line(
                "127.0.0.1",
                "24/Nov/2026 12:54:29",
                "POST / HTTP/1.1",
                "200"
            ),
            "127.0.0.1 - - [24/Nov/2026 12:54:29] \"POST / HTTP/1.1\" 200 -"
        );
        assert_eq!(
            super::access_log_line("::1", "t", "POST /\u{202e}\u{85}x HTTP/1.1", "404"),
            "::1 - - [t] \"POST /\\u202e\\x85x HTTP/1.1\" 404 -"
        );
        for status in [0, 7, 404, 65535] {
            assert!(
                super::access_log_line("::1", "t", "GET /x HTTP/1.0", &status.to_string())
                    .ends_with(&format!("\" {status} -"))
            );
        }
    }

    #[test]
    fn printed_values_cannot_forge_a_line() {
        use super::printed;
        for ordinary in [
            "attack",
            "",
            "attaque à l'aube",
            "<&>'\"",
            "a\\x1b",
            "🙂 smile",
        ] {
            assert!(matches!(
                printed::value(ordinary),
                std::borrow::Cow::Borrowed(_)
            ));
        }
        assert_eq!(
            printed::received_line("Q", "x\n Process Q finalized decision 'y'", "A"),
            "Q received decision 'x\\n Process Q finalized decision 'y'' from A"
        );
        assert_eq!(
            printed::value("\u{1b}[2J\t\r\u{7f}\u{85}\u{9b}\u{2028}\u{2029}\u{0}"),
            "\\x1b[2J\\t\\r\\x7f\\x85\\x9b\\u2028\\u2029\\x00"
        );
        // Bidi controls and invisible characters, as Python's repr writes them.
        assert_eq!(
            printed::received_line("Q", "\u{202e}kcatta", "P\u{200b}"),
            "Q received decision '\\u202ekcatta' from P\\u200b"
        );
        assert_eq!(
            printed::value("\u{2066}a\u{2069}\u{feff}\u{e0041}\u{ad}"),
            "\\u2066a\\u2069\\ufeff\\U000e0041\\xad"
        );
        // Emoji keep their variation selector; accents and scripts print as they are.
        for ordinary in [
            "\u{2764}\u{fe0f}",
            "\u{1f642}",
            "\u{5d0}\u{5d1}",
            "\u{627}\u{644}",
        ] {
            assert!(matches!(
                printed::value(ordinary),
                std::borrow::Cow::Borrowed(_)
            ));
        }
        let long = "é".repeat(1000);
        let shown = printed::value(&long);
        assert_eq!(shown, format!("{}... [1800 bytes cut]", "é".repeat(100)));
        let escapes = "\u{1}".repeat(1000);
        let shown = printed::value(&escapes);
        assert!(shown.len() < printed::MAX_VALUE + 32, "{shown}");
        assert!(shown.ends_with("... [950 bytes cut]"), "{shown}");
    }

    #[test]
    fn faults_are_cut_to_max_fault_bytes() {
        let ordinary = python("ValueError", "max() arg is an empty sequence");
        assert_eq!(
            ordinary,
            "<class 'ValueError'>:max() arg is an empty sequence"
        );
        let exact = "x".repeat(MAX_FAULT);
        assert_eq!(cut(exact.clone()), exact);
        for long in [
            "x".repeat(MAX_FAULT + 1),
            "é".repeat(3_000_000),
            "日".repeat(99),
        ] {
            let c = cut(long.clone());
            assert!(c.len() <= MAX_FAULT, "{} bytes: {c}", c.len());
            let (kept, marker) = c.split_once("... [").unwrap();
            assert!(long.starts_with(kept));
            assert_eq!(marker, format!("{} bytes cut]", long.len() - kept.len()));
            assert_eq!(cut(c.clone()), c, "idempotent");
        }
    }
}

/// Python's `repr()` of a string, as it appears inside `<Fault 1: '...'>`.
pub(crate) fn python_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !python_printable(c) => {
                let n = u32::from(c);
                let _ = match n {
                    0..=0xFF => std::fmt::Write::write_fmt(&mut out, format_args!("\\x{n:02x}")),
                    0x100..=0xFFFF => {
                        std::fmt::Write::write_fmt(&mut out, format_args!("\\u{n:04x}"))
                    }
                    _ => std::fmt::Write::write_fmt(&mut out, format_args!("\\U{n:08x}")),
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable()` for one character, which `repr()` escapes when false: control
/// and format characters, separators other than the space, private use and noncharacters
/// (Unicode categories Cc, Cf, Zs, Zl, Zp, Co, and Cn for the noncharacters; unassigned code
/// points, which Python escapes too, are shown as they are).
pub(crate) fn python_printable(c: char) -> bool {
    !matches!(u32::from(c),
        0..=0x1F | 0x7F..=0xA0 | 0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891
        | 0x8E2 | 0x1680 | 0x180E | 0x2000..=0x200F | 0x2028..=0x202F | 0x205F..=0x2064
        | 0x2066..=0x206F | 0x3000 | 0xD800..=0xF8FF | 0xFDD0..=0xFDEF | 0xFEFF
        | 0xFFF9..=0xFFFB | 0xFFFE..=0xFFFF | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F
        | 0xF0000..=0x10FFFF)
        && (u32::from(c) & 0xFFFE) != 0xFFFE
}

/// Python's name for the type an XML-RPC value becomes (`int`, `str`, ...), as it appears in
/// Python's error messages.
pub fn python_type_name(value: &dxr::Value) -> &'static str {
    match value {
        dxr::Value::Integer(_) | dxr::Value::Long(_) => "int",
        dxr::Value::Boolean(_) => "bool",
        dxr::Value::String(_) => "str",
        dxr::Value::Double(_) => "float",
        dxr::Value::DateTime(_) => "DateTime",
        dxr::Value::Base64(_) => "Binary",
        dxr::Value::Struct(_) => "dict",
        dxr::Value::Array(_) => "list",
        dxr::Value::Nil => "NoneType",
        _ => "object",
    }
}

/// Python's `str()` of a value as CPython's `xmlrpc.client` reads it: what the original
/// client prints of an answer (`print(f"... {decision}")`) and what a method name that is not
/// a string becomes in `method "5" is not supported`. Strings as they are, `None`, `True`,
/// integers, floats as Python's `repr` writes them, lists and dicts with `repr` of their items
/// (a dict in key order), `Binary` as its bytes in Latin-1, `DateTime` as its text.
pub fn python_str(value: &dxr::Value) -> String {
    match value {
        dxr::Value::String(s) => s.clone(),
        dxr::Value::Base64(bytes) => bytes.iter().map(|&b| char::from(b)).collect(),
        dxr::Value::DateTime(d) => d.to_string(),
        other => python_value_repr(other),
    }
}

/// Python's `repr()` of a value (items of a list or dict are shown this way).
pub(crate) fn python_value_repr(value: &dxr::Value) -> String {
    use dxr::Value;
    match value {
        Value::String(s) => python_repr(s),
        Value::Integer(i) => i.to_string(),
        Value::Long(i) => i.to_string(),
        Value::Boolean(true) => "True".into(),
        Value::Boolean(false) => "False".into(),
        Value::Double(d) => python_float_repr(*d),
        Value::Nil => "None".into(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(python_value_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Struct(members) => {
            let items: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{}: {}", python_repr(k), python_value_repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        // Python shows these with an object address, which has no equal here.
        Value::Base64(_) => "<xmlrpc.client.Binary object>".into(),
        Value::DateTime(d) => format!("<DateTime '{d}'>"),
        _ => "<object>".into(),
    }
}

/// Python's `repr()` of a float: the shortest digits that read back the same, in positional
/// notation when the decimal exponent is from -4 to 15 (`0.0001`, `1234567890123456.0`), else
/// in scientific notation with a signed exponent of at least two digits (`1e-05`, `1e+16`).
pub(crate) fn python_float_repr(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the same shortest digits: `-1.5e16`.
    let sci = format!("{d:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let point = exponent + 1; // digits[..point] are the integer part
    if !(-4 < point && point <= 16) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}e{esign}{:02}", exponent.abs());
    }
    let len = digits.len() as i32;
    if point <= 0 {
        let zeros = "0".repeat((-point) as usize);
        return format!("{sign}0.{zeros}{digits}");
    }
    if point >= len {
        let zeros = "0".repeat((point - len) as usize);
        return format!("{sign}{digits}{zeros}.0");
    }
    let (whole, fraction) = digits.split_at(point as usize);
    format!("{sign}{whole}.{fraction}")
}

/// The product in the `Server` header of every answer of ours (`generals/0.1.0`): how our
/// client tells one of our nodes, which serves connections concurrently, from a peer that
/// must not be kept waiting on an idle connection (`peer::Connections`). Python's server
/// sends a `Server` header too (`BaseHTTP/0.6 Python/3.11.7`).
pub(crate) const SERVER_PRODUCT: &str = "generals/";
/// The whole `Server` header value.
pub const SERVER: &str = concat!("generals/", env!("CARGO_PKG_VERSION"));

/// How nodes of other XML-RPC libraries say "no such method", which a driver must take as
/// "a node without the extension" (as the original's `is not supported`), not as a node that
/// is down (issue 27, item 12).
pub(crate) mod other_libraries {
    /// An HTTP answer of this status (a server that routes methods as paths, or refuses an
    /// unknown method at the HTTP level).
    pub(crate) const NOT_FOUND_STATUS: u16 = 404;
    /// Fault codes for an unknown method: the XML-RPC "fault code interoperability"
    /// convention (-32601, PHP's `ext-xmlrpc`, xmlrpc-c), and those the libraries tried for
    /// issue 27 use (-99, 200; dxr_server's 404; xmlrpc-c's -506).
    pub(crate) const CODES: [i32; 5] = [-32601, -99, 200, 404, -506];
    /// Phrases of such faults, in any case (Python's, Ruby's, Perl's, dxr's...).
    pub(crate) const PHRASES: [&str; 6] = [
        super::UNSUPPORTED_MARK,
        "method not found",
        "no such method",
        "unknown method",
        "does not exist",
        "missing or wrong number of parameters",
    ];

    /// Whether a fault says the method does not exist.
    pub(crate) fn no_such_method(code: i32, string: &str) -> bool {
        let lower = string.to_lowercase();
        CODES.contains(&code) || PHRASES.iter().any(|p| lower.contains(p))
    }
}

/// How the fault for an unknown method ends ([`fault::unsupported_method`]): what a caller
/// looks for to tell "this node has no such method" from any other fault.
pub(crate) const UNSUPPORTED_MARK: &str = "is not supported";

/// Fault strings: Python's `<class 'TYPE'>:MESSAGE` for every exception we reproduce.
pub mod fault {
    /// Longest fault string a node sends, in bytes (the marker of [`cut`] included). Every
    /// fault Python gives for this protocol is shorter; a longer one only quotes a caller's
    /// argument back (a 1 MB argument made a 6 MB fault), so it is cut.
    pub(crate) const MAX_FAULT: usize = 200;

    /// `string` if it is at most [`MAX_FAULT`] bytes; else its start, cut at a character
    /// boundary, and `... [N bytes cut]`, at most [`MAX_FAULT`] bytes in all. [`python`] cuts
    /// every string it makes, and only this module makes a [`PyFault`], so every fault on the
    /// wire is cut (idempotent).
    pub fn cut(string: String) -> String {
        if string.len() <= MAX_FAULT {
            return string;
        }
        let marker = |n: usize| format!("... [{n} bytes cut]");
        // The marker for the whole length is at least as long as the one finally written.
        let mut keep = MAX_FAULT.saturating_sub(marker(string.len()).len());
        while !string.is_char_boundary(keep) {
            keep -= 1;
        }
        let cut = string.len() - keep;
        let mut out = string;
        out.truncate(keep);
        out.push_str(&marker(cut));
        out
    }

    /// `<class 'TYPE'>:MESSAGE`, the shape of every fault string; cut to [`MAX_FAULT`] bytes.
    pub fn python(class: &str, message: &str) -> PyFault {
        PyFault(cut(format!("<class '{class}'>:{message}")))
    }

    /// A fault string as a node answers it: `<class 'TYPE'>:MESSAGE`, at most [`MAX_FAULT`]
    /// bytes. Only the functions of this module make one, so every fault on the wire has
    /// Python's shape and length whichever path made it; code that passes a fault on (the
    /// node, the cluster, the engine, the server) cannot make up a string of its own.
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub struct PyFault(String);

    impl PyFault {
        /// The fault string.
        pub fn as_str(&self) -> &str {
            &self.0
        }

        /// The fault string, owned.
        pub(crate) fn into_string(self) -> String {
            self.0
        }
    }

    /// Read as the string it is (`contains`, `starts_with`...); it can only be made here.
    impl std::ops::Deref for PyFault {
        type Target = str;
        fn deref(&self) -> &str {
            &self.0
        }
    }

    impl std::fmt::Display for PyFault {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl PartialEq<str> for PyFault {
        fn eq(&self, other: &str) -> bool {
            self.0 == other
        }
    }

    impl PartialEq<&str> for PyFault {
        fn eq(&self, other: &&str) -> bool {
            self.0 == *other
        }
    }

    impl From<PyFault> for String {
        fn from(f: PyFault) -> String {
            f.0
        }
    }

    /// Unknown, private (`_x`) or dotted method names.
    pub fn unsupported_method(method: &str) -> PyFault {
        python(
            "Exception",
            &format!("method \"{method}\" {}", super::UNSUPPORTED_MARK),
        )
    }

    /// Too few arguments, e.g. `Process.send_message() missing 1 required positional
    /// argument: 'decision'`. `missing` are the names of the missing parameters in order.
    pub(crate) fn missing_arguments(method: &str, missing: &[&str]) -> PyFault {
        let names: Vec<String> = missing.iter().map(|n| format!("'{n}'")).collect();
        let list = match names.as_slice() {
            [one] => one.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
            [] => String::new(),
        };
        let (count, noun) = if missing.len() == 1 {
            ("1".to_string(), "argument")
        } else {
            (missing.len().to_string(), "arguments")
        };
        python(
            "TypeError",
            &format!("Process.{method}() missing {count} required positional {noun}: {list}"),
        )
    }

    /// Too many arguments, e.g. `Process.finalize_decision() takes 1 positional argument but
    /// 2 were given`. Counts include Python's `self`.
    pub(crate) fn too_many_arguments(method: &str, takes: usize, given: usize) -> PyFault {
        let noun = if takes == 1 { "argument" } else { "arguments" };
        let verb = if given == 1 { "was" } else { "were" };
        python(
            "TypeError",
            &format!("Process.{method}() takes {takes} positional {noun} but {given} {verb} given"),
        )
    }

    /// `finalize_decision()` on a loyal node with nothing stored.
    pub(crate) fn empty_majority() -> PyFault {
        python("ValueError", "max() arg is an empty sequence")
    }

    /// `ord()` of a string that is not exactly one character.
    pub(crate) fn ord_length(len: usize) -> PyFault {
        python(
            "TypeError",
            &format!("ord() expected a character, but string of length {len} found"),
        )
    }

    /// `ord()` of a value that is not a string; `type_name` is Python's name for its type.
    pub(crate) fn ord_type(type_name: &str) -> PyFault {
        python(
            "TypeError",
            &format!("ord() expected string of length 1, but {type_name} found"),
        )
    }

    /// A large answer with no room in the process's budget of unread answers (`server
    /// --max-answer-bytes`), which holds `budget` bytes.
    pub(crate) fn answers_full(budget: usize) -> PyFault {
        python(
            "MemoryError",
            &format!(
                "answers not yet read by their callers hold {budget} bytes (server --max-answer-bytes); try again"
            ),
        )
    }

    /// A peer whose last call timed out, not called again (`server --rpc-timeout` passed
    /// without an answer, and the next try is due within a second).
    pub(crate) fn peer_down() -> PyFault {
        python(
            "TimeoutError",
            "timed out: the peer's last call timed out, so it was not called (tried again once a second)",
        )
    }

    /// The peer's port refused the connection.
    pub fn connection_refused() -> PyFault {
        python("ConnectionRefusedError", "[Errno 111] Connection refused")
    }

    /// A peer port that the port rule puts below 0 (Python's `getaddrinfo` error).
    pub(crate) fn bad_port() -> PyFault {
        python(
            "socket.gaierror",
            "[Errno -8] Servname not supported for ai_socktype",
        )
    }

    /// The peer accepted the call but did not answer within the timeout.
    pub(crate) fn timed_out() -> PyFault {
        python("TimeoutError", "timed out")
    }

    /// Any other failure to reach a peer (DNS, reset connection, bad answer...).
    pub(crate) fn peer_error(message: &str) -> PyFault {
        python("OSError", message)
    }

    /// A peer answered with a fault; Python wraps it as `xmlrpc.client.Fault`.
    pub(crate) fn peer_fault(code: i32, string: &str) -> PyFault {
        python(
            "xmlrpc.client.Fault",
            &format!("<Fault {code}: {}>", super::python_repr(string)),
        )
    }

    /// `system.multicall` called with other than one argument (Python's arity error for
    /// `SimpleXMLRPCDispatcher.system_multicall(self, call_list)`).
    pub fn multicall_arity(given: usize) -> PyFault {
        let message = match given {
            0 => "missing 1 required positional argument: 'call_list'".to_string(),
            n => format!("takes 2 positional arguments but {} were given", n + 1),
        };
        python(
            "TypeError",
            &format!("SimpleXMLRPCDispatcher.system_multicall() {message}"),
        )
    }

    /// Python's message for iterating a value of type `type_name` that is not iterable.
    pub fn not_iterable(type_name: &str) -> String {
        format!("'{type_name}' object is not iterable")
    }

    /// Python's `TypeError` for `value['methodName']` on a batch entry that is not a struct.
    pub fn not_subscriptable(value: &dxr::Value) -> PyFault {
        let message = match value {
            dxr::Value::Array(_) => "list indices must be integers or slices, not str".into(),
            dxr::Value::String(_) => "string indices must be integers, not 'str'".into(),
            other => format!(
                "'{}' object is not subscriptable",
                super::python_type_name(other)
            ),
        };
        python("TypeError", &message)
    }

    /// Python's `KeyError` for a missing struct member.
    pub fn key_error(key: &str) -> PyFault {
        python("KeyError", &super::python_repr(key))
    }

    /// Python's `TypeError` for a value of type `type_name` used as a dictionary key.
    pub fn unhashable(type_name: &str) -> PyFault {
        python("TypeError", &format!("unhashable type: '{type_name}'"))
    }

    /// Python's `TypeError` for `method(*params)` with `params` of type `type_name`, not
    /// iterable: the original's methods are `__main__.Process`'s (it runs as a script).
    pub fn args_not_iterable(method: &str, type_name: &str) -> PyFault {
        python(
            "TypeError",
            &format!(
                "__main__.Process.{method}() argument after * must be an iterable, not {type_name}"
            ),
        )
    }

    /// Extension of ours: a new sender beyond the node's cap (`--max-senders`).
    pub(crate) fn too_many_senders(node: &str, max: usize) -> PyFault {
        python(
            "OverflowError",
            &format!("node {node} stores at most {max} senders; new senders are refused"),
        )
    }

    /// Extension of ours: a sender or decision longer than the node's cap (`--max-value`).
    pub(crate) fn too_long(what: &str, len: usize, max: usize) -> PyFault {
        python(
            "ValueError",
            &format!(
                "{what} of {len} bytes: this node takes at most {max} bytes (server --max-value)"
            ),
        )
    }

    /// Extension of ours: the node's stored messages would pass its byte budget
    /// (`--max-stored-bytes`).
    pub(crate) fn store_full(node: &str, max: usize) -> PyFault {
        python(
            "OverflowError",
            &format!(
                "node {node} stores at most {max} bytes of messages; new and longer ones are refused (server --max-stored-bytes)"
            ),
        )
    }

    /// The request body is not a well-formed XML-RPC call (Python: expat's message). Our
    /// message is quick-xml's; the class prefix is Python's.
    pub(crate) fn parse_error(message: &str) -> PyFault {
        python("xml.parsers.expat.ExpatError", message)
    }

    /// Deliberate divergence: `sender`/`decision` must be XML-RPC strings.
    pub(crate) fn not_a_string(param: &str, type_name: &str) -> PyFault {
        python(
            "TypeError",
            &format!("{param} must be a string, not {type_name}"),
        )
    }
}
