//! docs/protocol.md as tables: every fault row, the replies of the three methods, and the HTTP
//! routes, each checked against the Rust server AND the Python stand-in, so the table is known
//! to be what the original does and the Rust node is known to match it.

use crate::common::*;
use dxr::Value;

/// One server process of `side` hosting P..S, access log on (as the original's).
fn cluster(side: Side) -> Cluster {
    Cluster::builder().server(side, &[]).start()
}

/// (node, method, params, expected value or fault string).
type Row = (
    char,
    &'static str,
    Vec<Value>,
    Result<&'static str, &'static str>,
);

/// Faults all have code 1.
/// The strings are docs/protocol.md's fault table, copied literally.
fn fault_table() -> Vec<Row> {
    let i = Value::Integer;
    vec![
        (
            'Q',
            "nope",
            vec![],
            Err("<class 'Exception'>:method \"nope\" is not supported"),
        ),
        (
            'Q',
            "_private",
            vec![],
            Err("<class 'Exception'>:method \"_private\" is not supported"),
        ),
        (
            'Q',
            "send_message.x",
            vec![],
            Err("<class 'Exception'>:method \"send_message.x\" is not supported"),
        ),
        (
            'Q',
            "system.listMethods",
            vec![],
            Err("<class 'Exception'>:method \"system.listMethods\" is not supported"),
        ),
        (
            'Q',
            "send_message",
            vec![],
            Err(
                "<class 'TypeError'>:Process.send_message() missing 2 required positional arguments: 'recipient_name' and 'decision'",
            ),
        ),
        (
            'Q',
            "send_message",
            vec![s("R")],
            Err(
                "<class 'TypeError'>:Process.send_message() missing 1 required positional argument: 'decision'",
            ),
        ),
        (
            'Q',
            "send_message",
            vec![s("R"), s("attack"), s("x")],
            Err(
                "<class 'TypeError'>:Process.send_message() takes 3 positional arguments but 4 were given",
            ),
        ),
        (
            'Q',
            "receive_message",
            vec![],
            Err(
                "<class 'TypeError'>:Process.receive_message() missing 2 required positional arguments: 'sender' and 'decision'",
            ),
        ),
        (
            'Q',
            "receive_message",
            vec![s("A")],
            Err(
                "<class 'TypeError'>:Process.receive_message() missing 1 required positional argument: 'decision'",
            ),
        ),
        (
            'Q',
            "receive_message",
            vec![s("A"), s("b"), s("c")],
            Err(
                "<class 'TypeError'>:Process.receive_message() takes 3 positional arguments but 4 were given",
            ),
        ),
        (
            'Q',
            "finalize_decision",
            vec![i(1)],
            Err(
                "<class 'TypeError'>:Process.finalize_decision() takes 1 positional argument but 2 were given",
            ),
        ),
        (
            'Q',
            "finalize_decision",
            vec![],
            Err("<class 'ValueError'>:max() arg is an empty sequence"),
        ),
        (
            'Q',
            "send_message",
            vec![s("T"), s("attack")],
            Err("<class 'ConnectionRefusedError'>:[Errno 111] Connection refused"),
        ),
        (
            'Q',
            "send_message",
            vec![s(""), s("attack")],
            Err("<class 'TypeError'>:ord() expected a character, but string of length 0 found"),
        ),
        (
            'Q',
            "send_message",
            vec![s("QQ"), s("attack")],
            Err("<class 'TypeError'>:ord() expected a character, but string of length 2 found"),
        ),
        (
            'Q',
            "send_message",
            vec![i(5), s("attack")],
            Err("<class 'TypeError'>:ord() expected string of length 1, but int found"),
        ),
        // The replies of the three methods.
        ('P', "finalize_decision", vec![], Ok("faulty")),
        (
            'P',
            "receive_message",
            vec![s("Q"), s("attack")],
            Ok("P (faulty) ignored message from Q"),
        ),
        (
            'P',
            "send_message",
            vec![s("R"), s("attack")],
            Ok("P denied communication to R"),
        ),
        (
            'P',
            "send_message",
            vec![s("S"), s("retreat")],
            Ok("P denied communication to S"),
        ),
        (
            'P',
            "send_message",
            vec![s("Q"), s("attack")],
            Ok("P sent decision 'attack' to Q"),
        ),
        (
            'R',
            "receive_message",
            vec![s("X"), s("retreat")],
            Ok("R received decision 'retreat' from X"),
        ),
        (
            'R',
            "receive_message",
            vec![s("Y"), s("attack")],
            Ok("R received decision 'attack' from Y"),
        ),
        (
            'R',
            "receive_message",
            vec![s("X"), s("attack")],
            Ok("R received decision 'attack' from X"),
        ),
        // X's later message replaced its first: attack 2, retreat 0.
        ('R', "finalize_decision", vec![], Ok("attack")),
        ('R', "finalize_decision", vec![], Ok("attack")),
        // A tie goes to the smallest value (our deterministic rule, in both stand-ins).
        (
            'S',
            "receive_message",
            vec![s("A"), s("retreat")],
            Ok("S received decision 'retreat' from A"),
        ),
        (
            'S',
            "receive_message",
            vec![s("B"), s("attack")],
            Ok("S received decision 'attack' from B"),
        ),
        ('S', "finalize_decision", vec![], Ok("attack")),
        (
            'S',
            "send_message",
            vec![s("Q"), s("<&>'\"é")],
            Ok("S sent decision '<&>'\"é' to Q"),
        ),
    ]
}

fn check_fault_table(side: Side) {
    let c = cluster(side);
    for (row, (node, method, params, expected)) in fault_table().into_iter().enumerate() {
        let got = call(port_of(c.base, node), method, &params);
        let want = expected.map(s).map_err(|f| (1, f.to_string()));
        assert_eq!(got, want, "{side:?} row {row}: {node}.{method}{params:?}");
    }
}

#[test]
fn fault_table_rust() {
    check_fault_table(Side::Rust);
}

#[test]
fn fault_table_python_stand_in() {
    check_fault_table(Side::Python);
}

/// The request Python's client sends, byte for byte, and an untyped `<value>` string.
fn check_wire_bodies(side: Side) {
    let c = cluster(side);
    let q = c.port("Q");
    let python_request = "<?xml version='1.0'?>\n<methodCall>\n<methodName>receive_message</methodName>\n<params>\n<param>\n<value><string>P</string></value>\n</param>\n<param>\n<value><string>attack</string></value>\n</param>\n</params>\n</methodCall>\n";
    let (status, head, body) = post(q, "/", python_request.as_bytes());
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/xml"), "{head}");
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><string>Q received decision 'attack' from P</string></value>\n</param>\n</params>\n</methodResponse>\n"
    );
    let untyped = "<?xml version='1.0'?><methodCall><methodName>receive_message</methodName><params><param><value>R</value></param><param><value>retreat</value></param></params></methodCall>";
    assert_eq!(
        call_body(q, untyped.as_bytes()),
        Ok(s("Q received decision 'retreat' from R"))
    );
    // A fault, byte for byte as Python writes it.
    let (_, _, body) = post(
        q,
        "/",
        generals::peer::call_body("nope", &[]).unwrap().as_bytes(),
    );
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>1</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>&lt;class 'Exception'&gt;:method \"nope\" is not supported</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n"
    );
    // A malformed body: code 1 and expat's class (the message after it is each parser's own).
    let (code, string) = call_body(q, b"garbage<").unwrap_err();
    assert_eq!(code, 1);
    assert!(
        string.starts_with("<class 'xml.parsers.expat.ExpatError'>:"),
        "{string}"
    );
}

#[test]
fn wire_bodies_rust() {
    check_wire_bodies(Side::Rust);
}

#[test]
fn wire_bodies_python_stand_in() {
    check_wire_bodies(Side::Python);
}

/// Paths `/` and `/RPC2` serve XML-RPC; other paths get 404 `No such page`; GET gets 501.
fn check_routes(side: Side) {
    let c = cluster(side);
    let q = c.port("Q");
    let finalize = generals::peer::call_body("finalize_decision", &[]).unwrap();
    for path in ["/", "/RPC2"] {
        let (status, _, body) = post(q, path, finalize.as_bytes());
        assert_eq!(status, 200, "{path}");
        assert!(String::from_utf8_lossy(&body).contains("max() arg is an empty sequence"));
    }
    for path in ["/nope", "/RPC3", "/RPC2/x"] {
        let (status, head, body) = post(q, path, finalize.as_bytes());
        assert_eq!(status, 404, "{path}");
        assert!(head.contains("content-type: text/plain"), "{head}");
        assert_eq!(body, b"No such page");
    }
    for path in ["/", "/RPC2", "/nope"] {
        let req = format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
        let (status, _, _) = http_raw(q, req.as_bytes());
        assert_eq!(status, 501, "GET {path}");
    }
}

#[test]
fn routes_rust() {
    check_routes(Side::Rust);
}

#[test]
fn routes_python_stand_in() {
    check_routes(Side::Python);
}

/// Python's client sends HTTP/1.1 with keep-alive: several calls on one connection work.
#[test]
fn keep_alive_connection_serves_many_calls() {
    use std::io::{BufRead, BufReader, Read, Write};
    let c = cluster(Side::Rust);
    let q = c.port("Q");
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", q)).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    for i in 0..5 {
        let body =
            generals::peer::call_body("receive_message", &[s(&format!("N{i}")), s("attack")])
                .unwrap();
        write!(
            conn,
            "POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut length = 0;
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert!(String::from_utf8_lossy(&body).contains(&format!("from N{i}")));
    }
}

/// What a node answers when the peer it forwards to fails, and what it prints first: as
/// CPython's node, a peer's fault is passed on unchanged (code and string), an HTTP error is a
/// `ProtocolError` with the reason phrase the peer sent, and the `sent` line is printed before
/// the call, even to a name nothing answers (issue 27, items 7, 10, 11).
#[test]
fn peer_failures_reach_the_caller_as_cpython_passes_them() {
    let fault = "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>7</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>boom</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n";
    let http = |status: &str, body: &str| {
        format!(
            "HTTP/1.0 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let mut answers: Vec<Vec<(i32, String)>> = Vec::new();
    for side in [Side::Python, Side::Rust] {
        let base = port_base();
        let t = port_of(base, 'T');
        let answer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        canned_peer(t, answer.clone());
        let peer = format!("T=http://127.0.0.1:{t}/");
        let args: &[&str] = match side {
            Side::Rust => &["--peer", &peer],
            Side::Python => &[],
        };
        let c = Cluster::at(base).hosting(side, "Q", args).start();
        let q = c.port("Q");
        let mut got = Vec::new();
        for canned in [
            http("200 OK", fault),
            http("500 Internal Server Error", "x"),
            http("503 Busy now", ""),
        ] {
            *answer.lock().unwrap() = canned;
            let f = call(q, "send_message", &[s("T"), s("attack")]).unwrap_err();
            // Python calls its peers `localhost`, ours by address.
            got.push((f.0, f.1.replace("localhost:", "127.0.0.1:")));
        }
        // A name nothing answers: refused, and the line printed before it.
        let f = call(q, "send_message", &[s("A"), s("attack")]).unwrap_err();
        got.push(f);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !c
            .process(0)
            .stdout_so_far()
            .contains("Q sent decision 'attack' to A")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{side:?}: no line for A: {}",
                c.process(0).stdout_so_far()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        answers.push(got);
    }
    let t = "127.0.0.1:"; // both answers name the peer by address now
    assert_eq!(
        answers[0][0],
        (7, "boom".to_string()),
        "Python passes the fault on"
    );
    assert!(
        answers[0][1].1.ends_with(": 500 Internal Server Error>") && answers[0][1].1.contains(t),
        "{:?}",
        answers[0][1]
    );
    assert!(
        answers[0][2].1.ends_with(": 503 Busy now>"),
        "{:?}",
        answers[0][2]
    );
    assert_eq!(
        answers[0][3].1,
        "<class 'ConnectionRefusedError'>:[Errno 111] Connection refused"
    );
    // Ours: the same, but for the peer's port, which each side's cluster picked.
    for (py, rust) in answers[0].iter().zip(&answers[1]) {
        let port = |s: &str| {
            s.split(t)
                .nth(1)
                .map(|r| r.split('/').next().unwrap_or("").to_string())
        };
        let strip = |s: &str| match port(s) {
            Some(p) => s.replace(&p, "PORT"),
            None => s.to_string(),
        };
        assert_eq!((py.0, strip(&py.1)), (rust.0, strip(&rust.1)));
    }
}

/// docs/protocol.md's fault rows for bodies no client writes, copied literally, each sent raw
/// to node Q of both servers: (body, the answer's fault code and string).
fn raw_fault_table() -> Vec<(&'static str, i32, &'static str)> {
    let bad_value = |v: &'static str| -> &'static str {
        Box::leak(format!("<methodCall><methodName>receive_message</methodName><params><param><value>A</value></param><param><value>{v}</value></param></params></methodCall>").into_boxed_str())
    };
    let batch = |list: &'static str| -> &'static str {
        Box::leak(format!("<methodCall><methodName>system.multicall</methodName><params><param><value>{list}</value></param></params></methodCall>").into_boxed_str())
    };
    vec![
        (
            "<methodCall><params/></methodCall>",
            1,
            "<class 'Exception'>:method \"None\" is not supported",
        ),
        (
            "<methodCall/>",
            1,
            "<class 'xmlrpc.client.ResponseError'>:ResponseError()",
        ),
        (
            bad_value("<foo>x</foo>"),
            1,
            "<class 'xmlrpc.client.ResponseError'>:ResponseError(\"unknown tag 'foo'\")",
        ),
        (
            bad_value("<struct><member><value>x</value></member></struct>"),
            1,
            "<class 'IndexError'>:list index out of range",
        ),
        (
            bad_value("<boolean>2</boolean>"),
            1,
            "<class 'TypeError'>:bad boolean value",
        ),
        (
            bad_value("<int>abc</int>"),
            1,
            "<class 'ValueError'>:invalid literal for int() with base 10: 'abc'",
        ),
        (
            bad_value("<base64>QQ=</base64>"),
            1,
            "<class 'binascii.Error'>:Incorrect padding",
        ),
        (
            batch(
                "<array><data><value><struct><member><name>params</name><value><array><data/></array></value></member></struct></value></data></array>",
            ),
            1,
            "<class 'KeyError'>:'methodName'",
        ),
        (
            batch("<string>AB</string>"),
            1,
            "<class 'TypeError'>:string indices must be integers, not 'str'",
        ),
        (
            "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>7</int></value></member><member><name>faultString</name><value>boom</value></member></struct></value></fault></methodResponse>",
            7,
            "boom",
        ),
    ]
}

#[test]
fn raw_fault_table_both_servers() {
    for side in [Side::Python, Side::Rust] {
        // The stand-in registers system.multicall with --agreement, as our nodes serve it.
        let args: &[&str] = match side {
            Side::Python => &["--agreement"],
            Side::Rust => &[],
        };
        let c = Cluster::builder().hosting(side, "Q", args).start();
        for (body, code, string) in raw_fault_table() {
            let got = call_body(c.port("Q"), body.as_bytes());
            assert_eq!(got, Err((code, string.to_string())), "{side:?}: {body}");
        }
    }
}
