//! Issue 13, "A node no caller can break": what a node reads and writes stays clean. Characters
//! XML 1.0 forbids are refused as expat refuses them and never written back; console lines
//! cannot forge a line or move the cursor; a stdout nobody reads cannot block a node; no fault
//! string is longer than 200 bytes. Each test makes the attack, then checks that the node still
//! answers the original methods within 100 ms and that nothing stored is lost.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use dxr::Value;

const EXPAT: &str = "<class 'xml.parsers.expat.ExpatError'>:";

/// `receive_message("A", VALUE)` in Python's layout (VALUE at line 9, column 15), unescaped.
fn receive_body(value: &str) -> Vec<u8> {
    format!(
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>receive_message</methodName>\n<params>\n<param>\n<value><string>A</string></value>\n</param>\n<param>\n<value><string>{value}</string></value>\n</param>\n</params>\n</methodCall>\n"
    )
    .into_bytes()
}

/// The original methods answer, and the node stores `sender`'s decision; the stored
/// messages afterwards. A node blocked on a stream nobody reads answers nothing at all: the
/// harness's read timeout (15 s) ends such a test, no latency figure is needed.
fn still_answers(port: u16, sender: &str) -> Vec<(String, String)> {
    let timed = |method: &str, params: &[Value]| call(port, method, params);
    assert_eq!(
        timed("receive_message", &[s(sender), s("attack")]),
        Ok(s(&format!("Q received decision 'attack' from {sender}")))
    );
    let Ok(Value::Struct(stored)) = timed("get_messages", &[]) else {
        panic!("get_messages is not a struct");
    };
    assert!(timed("finalize_decision", &[]).is_ok());
    stored
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(v) => (k, v),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Python's own client reads `get_messages` and `finalize_decision` (it fails on every answer
/// once a forbidden character is written back); returns its `repr` of the messages.
fn python_reads(port: u16) -> String {
    let script = format!(
        r#"
import xmlrpc.client
q = xmlrpc.client.ServerProxy("http://127.0.0.1:{port}/")
print(sorted(q.get_messages().items()))
print(q.finalize_decision())
"#
    );
    let mut cmd = Command::new("python3");
    cmd.args(["-c", &script]);
    let (code, out, err) = run(cmd, Duration::from_secs(30));
    assert_eq!(code, 0, "python3 could not read the node: {err}");
    out
}

/// Raw control characters and references to forbidden characters are refused with the fault
/// Python's `SimpleXMLRPCServer` gives (expat's class, message and position); nothing is
/// stored, and Python's client still reads every answer.
#[test]
fn forbidden_xml_characters_get_python_faults() {
    let server = Cluster::rust_nodes("Q", &[]);
    let q = server.port("Q");
    assert!(call(q, "receive_message", &[s("before"), s("retreat")]).is_ok());
    let rows: [(&str, &str); 6] = [
        (
            "x\u{1}y",
            "not well-formed (invalid token): line 9, column 16",
        ),
        (
            "\u{1b}[2J",
            "not well-formed (invalid token): line 9, column 15",
        ),
        (
            "&#x1b;[2J",
            "reference to invalid character number: line 9, column 15",
        ),
        (
            "&#1;",
            "reference to invalid character number: line 9, column 15",
        ),
        (
            "&#0;",
            "reference to invalid character number: line 9, column 15",
        ),
        (
            "&#xFFFF;",
            "reference to invalid character number: line 9, column 15",
        ),
    ];
    for (value, message) in rows {
        assert_eq!(
            call_body(q, &receive_body(value)),
            Err((1, format!("{EXPAT}{message}"))),
            "{value:?}"
        );
    }
    let stored = still_answers(q, "after");
    assert_eq!(
        stored,
        [
            ("after".to_string(), "attack".to_string()),
            ("before".to_string(), "retreat".to_string())
        ]
    );
    assert_eq!(
        python_reads(q),
        "[('after', 'attack'), ('before', 'retreat')]\nattack\n"
    );
}

/// A 1 MB argument to extension methods that quote their arguments (an unknown run id, a
/// message path) gives a fault of at most 200 bytes, which says how much was cut; ordinary
/// faults are Python's strings unchanged; the node keeps serving with its messages intact.
#[test]
fn faults_are_at_most_200_bytes_whatever_the_arguments() {
    let server = Cluster::rust_nodes("Q", &[]);
    let q = server.port("Q");
    assert!(call(q, "receive_message", &[s("before"), s("retreat")]).is_ok());
    // DEL grows to `\x7f` in Python's repr: the quoted argument would be 4 MB.
    let huge = "\u{7f}".repeat(1_000_000);
    let cap = s(&generals::agreement::auth::new_secret().unwrap().to_base64());
    let calls: [(&str, Vec<Value>); 4] = [
        ("om_decide", vec![s(&huge), cap.clone()]),
        (
            "om_message",
            vec![s(&huge), Value::Array(vec![s("P")]), s("x"), s("mac")],
        ),
        ("om_round", vec![s(&huge), cap.clone(), Value::Integer(1)]),
        ("sm_decide", vec![s(&huge), cap]),
    ];
    for (method, params) in calls {
        let body = generals::peer::call_body(method, &params).unwrap();
        let (status, _, answer) = post(q, "/", body.as_bytes());
        assert_eq!(status, 200, "{method}");
        let fault = match generals::peer::read_reply(&String::from_utf8_lossy(&answer)) {
            Ok(Err(f)) => f,
            other => panic!("{method}: {other:?}"),
        };
        assert!(
            answer.len() < 1024,
            "{method}: a {} byte answer",
            answer.len()
        );
        let string = fault.string();
        assert!(string.len() <= 200, "{method}: {} bytes", string.len());
        assert!(string.ends_with(" bytes cut]"), "{method}: {string}");
    }
    // A fault of ordinary size is Python's, byte for byte.
    assert_eq!(
        call(q, "finalize_decision", &[s("x")]),
        Err((
            1,
            "<class 'TypeError'>:Process.finalize_decision() takes 1 positional argument but 2 were given".to_string()
        ))
    );
    let stored = still_answers(q, "after");
    assert_eq!(
        stored,
        [
            ("after".to_string(), "attack".to_string()),
            ("before".to_string(), "retreat".to_string())
        ]
    );
}

/// Poll `server`'s stdout until it holds `lines` lines (deadline 10 s); return them.
fn wait_lines(server: &Proc, lines: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = server.stdout_so_far();
        if out.lines().count() >= lines && out.ends_with('\n') {
            return out.lines().map(str::to_string).collect();
        }
        assert!(
            Instant::now() < deadline,
            "waited for {lines} lines, stdout so far:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Decisions that would forge a line (`\n`, `\r`, U+2028), drive a terminal (C1's CSI, DEL)
/// or fill it (60 KB, under the 64 KiB value cap) print as one escaped, cut line each; the replies are the original's
/// full lines; what is stored is the value as given.
#[test]
fn console_lines_cannot_forge_a_line_or_move_the_cursor() {
    let cluster = Cluster::rust_nodes("Q", &[]);
    let (q, server) = (cluster.port("Q"), cluster.process(0));
    let forged = "x\n Process Q finalized decision 'x'\r\u{2028}\u{9b}2J\u{7f}";
    let long = format!("{}{}", "y".repeat(60_000), "\n");
    assert_eq!(
        call(q, "receive_message", &[s("A"), s(forged)]),
        Ok(s(&format!("Q received decision '{forged}' from A")))
    );
    assert_eq!(
        call(q, "receive_message", &[s("B\nC"), s(&long)]),
        Ok(s(&format!("Q received decision '{long}' from B\nC")))
    );
    // Sending to oneself prints a "sent" line and a "received" line.
    assert_eq!(
        call(q, "send_message", &[s("Q"), s(forged)]),
        Ok(s(&format!("Q sent decision '{forged}' to Q")))
    );
    assert_eq!(call(q, "finalize_decision", &[]), Ok(s(forged)));
    let shown = r"x\n Process Q finalized decision 'x'\r\u2028\x9b2J\x7f";
    let cut = format!("{}... [59801 bytes cut]", "y".repeat(200));
    assert_eq!(
        wait_lines(server, 6),
        [
            "Process Q running on port PORT...".replace("PORT", &q.to_string()),
            format!("Q received decision '{shown}' from A"),
            format!(r"Q received decision '{cut}' from B\nC"),
            format!("Q sent decision '{shown}' to Q"),
            format!("Q received decision '{shown}' from Q"),
            format!("majority is : {shown}"),
        ]
    );
    let stored = still_answers(q, "after");
    assert_eq!(
        stored,
        [
            ("A".to_string(), forged.to_string()),
            ("B\nC".to_string(), long),
            ("Q".to_string(), forged.to_string()),
            ("after".to_string(), "attack".to_string()),
        ]
    );
}

/// A `server --nodes Q --quiet` whose stdout is a pipe nobody reads until
/// [`Proc::read_stdout`], and whose stderr is collected; and Q's port.
fn stalled() -> (Proc, u16) {
    let c = Cluster::builder()
        .pipes(Pipe::Unread, Pipe::Read)
        .hosting(Side::Rust, "Q", &["--quiet"])
        .start();
    let q = c.port("Q");
    (c.into_process(), q)
}

/// Decisions of 60 KB, then batches of 1024 `receive_message` calls: far more lines than a
/// pipe and the console queue hold. Every call must be answered. Returns what the node must
/// store (the last decision of each sender) and how many lines the calls printed.
fn flood(q: u16) -> (Vec<(String, String)>, usize) {
    let mut conn = Conn::open(q);
    let mut lines = 0;
    let mut expected = std::collections::BTreeMap::new();
    for i in 0..20 {
        let big = format!("{i}{}", "z".repeat(60_000));
        assert!(conn.call("receive_message", &[s("big"), s(&big)]).is_ok());
        expected.insert("big".to_string(), big);
        lines += 1;
    }
    for b in 0..9 {
        let decision = format!("w{b}");
        let calls = (0..1024)
            .map(|i| {
                expected.insert(format!("s{i}"), decision.clone());
                Value::Struct(
                    [
                        ("methodName".to_string(), s("receive_message")),
                        (
                            "params".to_string(),
                            Value::Array(vec![s(&format!("s{i}")), s(&decision)]),
                        ),
                    ]
                    .into(),
                )
            })
            .collect();
        let Ok(Value::Array(results)) = conn.call("system.multicall", &[Value::Array(calls)])
        else {
            panic!("batch {b} failed");
        };
        assert_eq!(results.len(), 1024);
        if let Some(fault) = results.iter().find(|r| !matches!(r, Value::Array(_))) {
            panic!("batch {b}: {fault:?}");
        }
        lines += 1024;
    }
    (expected.into_iter().collect(), lines)
}

/// The node still answers within 100 ms and stores exactly `expected` and the new sender.
fn nothing_lost(q: u16, mut expected: Vec<(String, String)>) {
    let stored = still_answers(q, "after");
    expected.push(("after".to_string(), "attack".to_string()));
    expected.sort();
    assert!(stored == expected, "stored messages differ");
}

/// With stdout a pipe nobody reads, 60 KB decisions and ten thousand lines leave every node
/// answering within 100 ms with everything stored, and SIGTERM ends the process promptly
/// (pending lines get one second).
#[test]
fn a_stdout_nobody_reads_blocks_no_node_and_no_exit() {
    let (server, q) = stalled();
    let (expected, _) = flood(q);
    nothing_lost(q, expected);
    server.sigterm();
    let (status, _, err) = server.wait(Duration::from_secs(5));
    assert!(status.success(), "{status:?}\n{err}");
}

/// Lines that found the queue full are counted and dropped; once stdout is read again, a note
/// on stderr says how many, and the lines written plus the lines dropped are every line
/// printed, each whole and in order.
#[test]
fn dropped_lines_are_counted_in_a_note_once_stdout_drains() {
    let (mut server, q) = stalled();
    let (expected, flood_lines) = flood(q);
    nothing_lost(q, expected);
    // The running line, one per call of the flood, and still_answers' received and majority
    // lines.
    let printed = 1 + flood_lines + 2;
    server.read_stdout();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (lines, dropped) = loop {
        let dropped: usize = server
            .stderr_so_far()
            .lines()
            .filter_map(|l| l.strip_prefix("console: "))
            .filter_map(|l| l.split_whitespace().next()?.parse::<usize>().ok())
            .sum();
        let text = server.stdout_so_far();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if dropped > 0 && lines.len() + dropped == printed && text.ends_with('\n') {
            break (lines, dropped);
        }
        assert!(
            Instant::now() < deadline,
            "{} lines written, {dropped} dropped, of {printed}; stderr:\n{}",
            lines.len(),
            server.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(dropped > 1000, "{dropped}");
    assert_eq!(lines[0], format!("Process Q running on port {q}..."));
    let mut last_batch_index = None;
    for line in &lines[1..] {
        assert!(
            line.starts_with("Q received decision '") || line.starts_with("majority is : "),
            "{line}"
        );
        // Lines of the batches come in the order of their calls.
        if let Some(rest) = line
            .strip_suffix("")
            .and_then(|l| l.rsplit(" from b").next())
            && let Some((b, i)) = rest.split_once('-')
            && let (Ok(b), Ok(i)) = (b.parse::<usize>(), i.parse::<usize>())
        {
            let index = b * 1024 + i;
            assert!(last_batch_index < Some(index), "{line} out of order");
            last_batch_index = Some(index);
        }
    }
}

/// The access log is stderr's: with stderr a pipe nobody reads (and no `--quiet`), thousands
/// of requests leave the node answering (a blocked one would not answer at all), and SIGTERM
/// still ends the process.
#[test]
fn a_stderr_nobody_reads_blocks_no_node_and_no_exit() {
    let cluster = Cluster::builder()
        .pipes(Pipe::Null, Pipe::Unread)
        .hosting(Side::Rust, "Q", &[])
        .start();
    let q = cluster.port("Q");
    // About 80 bytes of access log per call: 3,000 calls are several times a 64 KB pipe.
    let mut conn = Conn::open(q);
    for i in 0..3000 {
        let r = conn.call(
            "receive_message",
            &[s(&format!("s{}", i % 50)), s("attack")],
        );
        assert!(r.is_ok(), "call {i}: {r:?}");
    }
    assert_eq!(call(q, "finalize_decision", &[]), Ok(s("attack")));
    assert_eq!(messages(q).len(), 50);
    let server = cluster.into_process();
    server.sigterm();
    let (status, _, _) = server.wait(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
}

/// Poll `read` (what a process wrote so far) until `done` says it is complete, for at most
/// `limit`; whether it completed, and the text.
fn poll_until(
    read: impl Fn() -> String,
    done: impl Fn(&str) -> bool,
    limit: Duration,
) -> (bool, String) {
    let deadline = Instant::now() + limit;
    loop {
        let text = read();
        if done(&text) {
            return (true, text);
        }
        if Instant::now() >= deadline {
            return (false, text);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `read` once it holds at least `n` complete lines, polled for up to 10 s (`what` names the
/// stream in the failure).
fn lines_within(read: impl Fn() -> String, n: usize, what: &str) -> String {
    let complete = |text: &str| text.lines().count() >= n && text.ends_with('\n');
    let (arrived, text) = poll_until(read, complete, Duration::from_secs(10));
    assert!(
        arrived,
        "{what}: {} of {n} lines after 10 s; last {:?}",
        text.lines().count(),
        text.lines().last()
    );
    text
}

/// `calls` `receive_message` calls on one keep-alive connection, sender `{prefix}{i}`; the
/// lines Q prints for them, in order.
fn burst(q: u16, prefix: &str, calls: usize) -> Vec<String> {
    let mut conn = Conn::open(q);
    (0..calls)
        .map(|i| {
            let sender = format!("{prefix}{i}");
            assert!(
                conn.call("receive_message", &[s(&sender), s("attack")])
                    .is_ok()
            );
            format!("Q received decision 'attack' from {sender}")
        })
        .collect()
}

/// Into a pipe, stdout and the access log are written in batches (at most every 100 ms, see
/// `console`), yet every line arrives, in order, while the server keeps running: a burst's
/// lines and, after it, a single line, each well within a generous deadline.
#[test]
fn piped_lines_arrive_promptly_while_the_server_runs() {
    let cluster = Cluster::builder().hosting(Side::Rust, "Q", &[]).start();
    let (q, server) = (cluster.port("Q"), cluster.process(0));
    let mut expected = vec![format!("Process Q running on port {q}...")];
    expected.extend(burst(q, "b", 2000));
    let out = lines_within(|| server.stdout_so_far(), expected.len(), "stdout");
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
    let err = lines_within(|| server.stderr_so_far(), 2000, "the access log");
    assert!(
        err.lines()
            .all(|l| l.ends_with("\"POST / HTTP/1.1\" 200 -")),
        "{err}"
    );
    // One more call after the burst: its line too, without anything else to push it out.
    expected.extend(burst(q, "single", 1));
    let out = lines_within(|| server.stdout_so_far(), expected.len(), "the single line");
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}

/// Lines still gathered in the writer when SIGTERM comes are written before the exit: a
/// burst, a SIGTERM at once, and every line is on the pipe (and every access-log line).
#[test]
fn piped_lines_gathered_at_sigterm_are_all_written() {
    let cluster = Cluster::builder().hosting(Side::Rust, "Q", &[]).start();
    let q = cluster.port("Q");
    let mut expected = vec![format!("Process Q running on port {q}...")];
    expected.extend(burst(q, "t", 1500));
    let server = cluster.into_process();
    server.sigterm();
    let (status, out, err) = server.wait(Duration::from_secs(10));
    assert!(status.success(), "{status:?}\n{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("\"POST / HTTP/1.1\" 200 -"))
            .count(),
        1500
    );
}

/// Characters a console does not show as themselves, besides controls: bidi overrides and
/// isolates (U+202E, U+2066-U+2069), zero-width and invisible characters (U+200B, U+FEFF).
const HIDDEN: [char; 7] = [
    '\u{202e}', '\u{2066}', '\u{2069}', '\u{200b}', '\u{feff}', '\u{85}', '\u{1b}',
];

fn shows_no_hidden(what: &str, text: &str) {
    for c in HIDDEN {
        assert!(
            !text.contains(c),
            "{what} shows U+{:04X} raw:\n{text}",
            c as u32
        );
    }
}

/// Issue 26: bidi and invisible characters in decisions and sender names were printed raw on
/// the server's stdout lines (a line could read backwards: `'\u{202e}kcatta'` shows `attack`)
/// and, with C1 characters of a request path, in the access log. Now they are escaped as C1
/// characters were, in both; the answers and what is stored are the values as given.
#[test]
fn bidi_and_invisible_characters_are_escaped_in_stdout_and_the_access_log() {
    let cluster = Cluster::builder().hosting(Side::Rust, "Q", &[]).start();
    let q = cluster.port("Q");
    let (sender, decision) = ("P\u{200b}", "\u{202e}kcatta\u{2066}\u{feff}\u{2069}");
    assert_eq!(
        call(q, "receive_message", &[s(sender), s(decision)]),
        Ok(s(&format!(
            "Q received decision '{decision}' from {sender}"
        )))
    );
    assert_eq!(call(q, "finalize_decision", &[]), Ok(s(decision)));
    // A request path with a bidi override and a C1 control (NEL), as raw UTF-8 bytes.
    let (status, _, _) = http_raw(
        q,
        b"POST /\xe2\x80\xae\xc2\x85x HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status, 404);
    let lines = wait_lines(cluster.process(0), 3);
    assert_eq!(
        lines[1..],
        [
            r"Q received decision '\u202ekcatta\u2066\ufeff\u2069' from P\u200b",
            r"majority is : \u202ekcatta\u2066\ufeff\u2069",
        ]
    );
    let (out, err) = cluster.into_process().stop();
    shows_no_hidden("stdout", &out);
    shows_no_hidden("the access log", &err);
    assert!(
        err.contains(r#""POST /\u202e\x85x HTTP/1.0" 404 -"#),
        "{err}"
    );
}

/// A node that answers with bidi, invisible and control characters: in its first
/// `send_message` reply, in a fault for the second, and in its decision.
fn hostile_node(port: u16) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        let mut sends = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read up to the end of the body (the calls are small).
            while !String::from_utf8_lossy(&request).contains("</methodCall>") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            let request = String::from_utf8_lossy(&request);
            let value = |v: &str| {
                format!(
                    "<methodResponse><params><param><value><string>{v}</string></value></param></params></methodResponse>"
                )
            };
            let sending = request.contains("send_message");
            sends += usize::from(sending);
            let body = if sending && sends == 1 {
                value("Q got \u{202e}kcatta\u{200b}")
            } else if sending {
                "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member><member><name>faultString</name><value><string>no \u{202e}kcatta\u{9b}2J\u{2066}</string></value></member></struct></value></fault></methodResponse>".to_string()
            } else {
                value("\u{2066}retreat\u{2069}\u{feff}\u{85}")
            };
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

/// The client's output of a hostile node's answers (its replies, decision and faults) shows
/// no bidi, invisible or control character raw, on stdout or stderr (issue 26).
#[test]
fn the_client_escapes_what_a_hostile_node_answers() {
    let base = port_base();
    let p = port_of(base, 'P');
    hostile_node(p);
    let url = format!("http://127.0.0.1:{p}/");
    let (code, out, err) = Client::rust()
        .args(&["--peer", &format!("P={url}"), "--peer", &format!("Q={url}")])
        .args(&["--nodes", "P,Q", "--rpc-timeout", "5"])
        .run();
    assert_eq!(code, 1, "the fault is a failed call: {out}{err}");
    for c in HIDDEN.into_iter().chain(['\u{9b}']) {
        assert!(
            !out.contains(c) && !err.contains(c),
            "U+{:04X} raw:\n{out}\n{err}",
            c as u32
        );
    }
    assert!(out.contains(r"Process Q got \u202ekcatta\u200b"), "{out}");
    assert!(
        out.contains(r"finalized decision: \u2066retreat\u2069\ufeff\x85"),
        "{out}"
    );
    assert!(err.contains(r"no \u202ekcatta\u009b2J\u2066"), "{err}");
}
