//! The one outgoing call function (`generals::peer::Peers::call`, on `dxr_client`) against
//! peers that answer badly: each row is a canned HTTP answer and the error kind the caller must
//! see, plus what the request looked like on the wire.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::request_len;
use dxr::Value;
use generals::cluster::NodeUrl;
use generals::peer::{PeerError, Peers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A listener on an ephemeral port of loopback, and its URL.
async fn listen() -> (TcpListener, NodeUrl) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    (listener, url)
}

/// A peer on an ephemeral port that answers every request with `answer` and keeps the last
/// request's bytes.
async fn canned_peer(answer: Vec<u8>) -> (NodeUrl, Arc<Mutex<Vec<u8>>>) {
    let (listener, url) = listen().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read until the whole request (head and Content-Length body) is in.
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if request_len(&buf).is_some() {
                        break;
                    }
                }
                *kept.lock().unwrap() = buf;
                let _ = stream.write_all(&answer).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, seen)
}

fn http(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const OK_REPLY: &str = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><string>Q received decision 'attack' from P</string></value>\n</param>\n</params>\n</methodResponse>\n";

#[tokio::test]
async fn answers_and_failures_map_to_error_kinds() {
    let fault = "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>1</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>&lt;class 'ValueError'&gt;:max() arg is an empty sequence</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n";
    let big = format!("{}{}", &OK_REPLY[..OK_REPLY.len() - 1], " ".repeat(70_000));
    // (name, canned answer, reply cap, expected)
    type Check = fn(&Result<Value, PeerError>) -> bool;
    let rows: Vec<(&str, Vec<u8>, usize, Check)> = vec![
        (
            "value",
            http("200 OK", "text/xml", OK_REPLY),
            1 << 20,
            |r| *r == Ok(Value::String("Q received decision 'attack' from P".into())),
        ),
        (
            "fault",
            http("200 OK", "text/xml", fault),
            1 << 20,
            |r| matches!(r, Err(PeerError::Fault(f)) if f.code() == 1 && f.string() == "<class 'ValueError'>:max() arg is an empty sequence"),
        ),
        // Python's answer on another path: an HTTP error, not a parse error.
        (
            "404 No such page",
            http("404 Not Found", "text/plain", "No such page"),
            1 << 20,
            |r| matches!(r, Err(PeerError::Http { status: 404, .. })),
        ),
        // A 500 carrying a valid XML-RPC value is still a failure.
        (
            "500 with XML",
            http("500 Internal Server Error", "text/xml", OK_REPLY),
            1 << 20,
            |r| matches!(r, Err(PeerError::Http { status: 500, .. })),
        ),
        // Larger than the cap (announced by Content-Length): refused unread.
        (
            "reply over the cap",
            http("200 OK", "text/xml", &big),
            64 * 1024,
            |r| matches!(r, Err(PeerError::Other(m)) if m.contains("larger than 65536 bytes")),
        ),
        // Not XML-RPC: an error that quotes nothing of the reply.
        (
            "junk",
            http(
                "200 OK",
                "text/html",
                &format!("<html>{}</html>", "x".repeat(5000)),
            ),
            1 << 20,
            |r| matches!(r, Err(PeerError::Other(m)) if m.contains("not an XML-RPC methodResponse") && !m.contains("html") && !m.contains("xxx")),
        ),
    ];
    for (name, answer, cap, check) in rows {
        let (url, seen) = canned_peer(answer).await;
        let peers = Peers::new(Duration::from_secs(5))
            .unwrap()
            .with_max_reply(cap);
        let args = [Value::String("P".into()), Value::String("attack".into())];
        let result = peers.call(&url, "receive_message", &args).await;
        assert!(check(&result), "{name}: {result:?}");
        // The request is dxr_client's body with Python's Content-Type.
        let request = String::from_utf8(seen.lock().unwrap().clone()).unwrap();
        let lower = request.to_ascii_lowercase();
        assert!(
            lower.contains("\r\ncontent-type: text/xml\r\n"),
            "{name}: {request}"
        );
        assert!(
            request.contains("<methodCall><methodName>receive_message</methodName><params><param><value><string>P</string></value></param>"),
            "{name}: {request}"
        );
    }
}

/// A 200 answer carrying `body` in 8 KiB chunks, with no Content-Length.
fn chunked(body: &str) -> Vec<u8> {
    let mut answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for chunk in body.as_bytes().chunks(8192) {
        answer.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        answer.extend_from_slice(chunk);
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"0\r\n\r\n");
    answer
}

#[tokio::test]
async fn chunked_reply_over_the_cap_is_cut_off() {
    // No Content-Length: the cap must hold while reading.
    let body = format!("{}{}", &OK_REPLY[..OK_REPLY.len() - 1], " ".repeat(200_000));
    let (url, _) = canned_peer(chunked(&body)).await;
    let peers = Peers::new(Duration::from_secs(5))
        .unwrap()
        .with_max_reply(100_000);
    let r = peers.call(&url, "finalize_decision", &[]).await;
    assert!(
        matches!(&r, Err(PeerError::Other(m)) if m.contains("larger than 100000 bytes")),
        "{r:?}"
    );
    // Under the cap the same reply reads fine.
    let peers = Peers::new(Duration::from_secs(5))
        .unwrap()
        .with_max_reply(1 << 20);
    let (url, _) = canned_peer(chunked(&body)).await;
    assert!(peers.call(&url, "finalize_decision", &[]).await.is_ok());
}

#[tokio::test]
async fn refused_and_timed_out() {
    // A port nobody listens on: bind, note the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let peers = Peers::new(Duration::from_millis(300)).unwrap();
    let r = peers
        .call(
            &format!("http://127.0.0.1:{port}/").parse().unwrap(),
            "finalize_decision",
            &[],
        )
        .await;
    assert_eq!(r, Err(PeerError::Refused));
    assert_eq!(
        PeerError::Refused.python_fault(),
        "<class 'ConnectionRefusedError'>:[Errno 111] Connection refused"
    );
    // A peer that accepts and never answers.
    let (listener, url) = listen().await;
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let r = peers.call(&url, "finalize_decision", &[]).await;
    assert!(matches!(r, Err(PeerError::Timeout(_))), "{r:?}");
}

/// The keep-alive race (issue 25): a peer (one of ours, by its `Server` header, so its
/// connections are kept after the first call) that closes a kept connection as the next
/// request arrives on it (as a server does whose keep-alive just ran out), unanswered, once.
/// The call is sent once more on a new connection and succeeds: the peer saw three
/// connections (the first call's, closed as every first call to a peer is; the kept one; the
/// retry's) and four requests. A peer that closes before answering on every connection gets
/// two tries, no more.
#[tokio::test]
async fn a_call_on_a_connection_closed_before_any_answer_is_sent_once_more() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (listener, url) = listen().await;
    let (connections, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, r) = (connections.clone(), requests.clone());
    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let (r, closed) = (r.clone(), closed.clone());
            tokio::spawn(async move {
                let mut served = 0;
                let mut buf = vec![0u8; 8192];
                loop {
                    // One request per read is enough for these small calls.
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    r.fetch_add(1, Ordering::SeqCst);
                    if served == 1 && !closed.swap(true, Ordering::SeqCst) {
                        return; // a kept connection's next request: closed unanswered, once
                    }
                    let body = OK_REPLY;
                    // Named as one of our servers, so the caller keeps the connection.
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nServer: {}\r\nContent-Type: text/xml\r\n\
                         Content-Length: {}\r\n\r\n",
                        generals::protocol::SERVER,
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                    served += 1;
                }
            });
        }
    });
    let peers = Peers::new(Duration::from_secs(10)).unwrap();
    for call in 0..3 {
        let answer = peers.call(&url, "finalize_decision", &[]).await;
        assert!(answer.is_ok(), "call {call}: {answer:?}");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 3);
    assert_eq!(requests.load(Ordering::SeqCst), 4);

    // Every connection closed unanswered: the call fails after its one retry.
    let (listener, url) = listen().await;
    let tries = Arc::new(AtomicUsize::new(0));
    let t = tries.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let _ = stream.read(&mut buf).await;
            t.fetch_add(1, Ordering::SeqCst);
        }
    });
    let r = peers.call(&url, "finalize_decision", &[]).await;
    assert!(matches!(r, Err(PeerError::Other(_))), "{r:?}");
    assert_eq!(tries.load(Ordering::SeqCst), 2);
}

/// Answers as XML-RPC libraries other than CPython's write them, and as a 200 only: read as
/// CPython's client reads them (issue 27, items 8, 9 and 11).
#[tokio::test]
async fn answers_of_other_libraries_read_as_cpython_reads_them() {
    let reply = |value: &str| {
        format!("<?xml version='1.0'?><methodResponse><params>{value}</params></methodResponse>")
    };
    let one = |v: &str| reply(&format!("<param><value>{v}</value></param>"));
    let fault = |members: &str| {
        format!(
            "<?xml version='1.0'?><methodResponse><fault><value><struct>{members}</struct></value></fault></methodResponse>"
        )
    };
    let code = |c: &str| format!("<member><name>faultCode</name><value>{c}</value></member>");
    let string = "<member><name>faultString</name><value><string>boom</string></value></member>";
    let xml = |body: &str| http("200 OK", "text/xml", body);
    let latin: Vec<u8> = "<?xml version='1.0' encoding='iso-8859-1'?><methodResponse><params><param><value>\u{e9}t\u{e9}</value></param></params></methodResponse>"
        .chars()
        .map(|c| c as u32 as u8)
        .collect();
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            one("<string>\u{e9}t\u{e9}</string>")
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    let gzip = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(one("<string>zipped</string>").as_bytes())
            .unwrap();
        e.finish().unwrap()
    };
    let raw = |head: &str, body: &[u8]| {
        [
            format!(
                "HTTP/1.1 200 OK\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes(),
            body.to_vec(),
        ]
        .concat()
    };
    let s = |v: &str| Value::String(v.into());
    /// A value, or a fault's code and string.
    type Expected<'a> = Result<Value, (i32, &'a str)>;
    let rows: Vec<(&str, Vec<u8>, Expected)> = vec![
        // Perl's RPC::XML::Server writes the members in either order.
        (
            "faultString first",
            xml(&fault(&format!("{string}{}", code("<int>7</int>")))),
            Err((7, "boom")),
        ),
        (
            "an extra member",
            xml(&fault(&format!(
                "{}{string}<member><name>x</name><value>1</value></member>",
                code("<int>7</int>")
            ))),
            Err((7, "boom")),
        ),
        (
            "faultCode a string",
            xml(&fault(&format!("{}{string}", code("<string>-99</string>")))),
            Err((-99, "boom")),
        ),
        (
            "ISO-8859-1",
            raw("Content-Type: text/xml\r\n", &latin),
            Ok(s("\u{e9}t\u{e9}")),
        ),
        (
            "UTF-16",
            raw("Content-Type: text/xml\r\n", &utf16),
            Ok(s("\u{e9}t\u{e9}")),
        ),
        (
            "gzip not asked for",
            raw("Content-Encoding: gzip\r\n", &gzip),
            Ok(s("zipped")),
        ),
        ("no value", xml(&reply("")), Ok(Value::Array(vec![]))),
        (
            "two values",
            xml(&reply(
                "<param><value>a</value></param><param><value>b</value></param>",
            )),
            Ok(Value::Array(vec![s("a"), s("b")])),
        ),
        ("nil", xml(&one("<nil/>")), Ok(Value::Nil)),
        ("i8", xml(&one("<i8>5</i8>")), Ok(Value::Integer(5))),
        (
            "a namespaced value",
            xml(&one("<ex:i8>5</ex:i8>")),
            Ok(Value::Integer(5)),
        ),
    ];
    for (name, answer, expected) in rows {
        let (url, _) = canned_peer(answer).await;
        let peers = Peers::new(Duration::from_secs(5)).unwrap();
        let got = peers.call(&url, "finalize_decision", &[]).await;
        match (&got, &expected) {
            (Ok(v), Ok(want)) => assert_eq!(v, want, "{name}"),
            (Err(PeerError::Fault(f)), Err((c, m))) => {
                assert_eq!((f.code(), f.string()), (*c, *m), "{name}")
            }
            _ => panic!("{name}: {got:?}, expected {expected:?}"),
        }
    }
    // Python's client reads a 200 only, and its ProtocolError shows the reason phrase sent.
    for (status, reason) in [
        ("500 Internal Server Error", "Internal Server Error"),
        ("500 Boom", "Boom"),
        ("201 Created", "Created"),
    ] {
        let (url, _) = canned_peer(http(status, "text/xml", OK_REPLY)).await;
        let peers = Peers::new(Duration::from_secs(5)).unwrap();
        let got = peers
            .call(&url, "finalize_decision", &[])
            .await
            .unwrap_err();
        let code: u16 = status[..3].parse().unwrap();
        assert!(
            matches!(&got, PeerError::Http { status, reason: r, .. } if *status == code && &**r == reason),
            "{got:?}"
        );
        let hostport = url.as_str().trim_start_matches("http://");
        assert_eq!(
            got.python_fault().as_str(),
            format!(
                "<class 'xmlrpc.client.ProtocolError'>:<ProtocolError for {hostport}: {code} {reason}>"
            )
        );
    }
}

/// A node of another library that answers an unknown method its own way is a node without
/// the extension, not a node that is down (issue 27, item 12).
#[test]
fn other_libraries_say_no_such_method_their_way() {
    use generals::peer::NodeCallError;
    let call = |source: PeerError| NodeCallError::Call {
        node: "X".into(),
        url: "http://127.0.0.1:1/".into(),
        method: "node_info".into(),
        source,
    };
    let fault = |code: i32, s: &str| call(PeerError::Fault(dxr::Fault::new(code, s.into())));
    let http = |status: u16| {
        call(PeerError::Http {
            status,
            reason: "".into(),
            url: "".into(),
        })
    };
    for unsupported in [
        fault(
            1,
            "<class 'Exception'>:method \"node_info\" is not supported",
        ),
        fault(-99, "Unknown method"),
        fault(200, "whatever it says"),
        fault(-32601, "server error. requested method not found"),
        fault(1, "Method node_info missing or wrong number of parameters!"),
        http(404),
    ] {
        assert!(unsupported.is_unsupported_method(), "{unsupported:?}");
    }
    for other in [
        fault(1, "<class 'ValueError'>:boom"),
        http(500),
        call(PeerError::Refused),
    ] {
        assert!(!other.is_unsupported_method(), "{other:?}");
    }
}

/// A peer that serves one connection at a time and keeps each open until its caller closes it
/// or asks it to (Perl's `HTTP::Daemon` loop): every request it answers is counted per
/// connection. Its answers name `server` in a `Server` header, if given.
async fn serial_peer(server: Option<&'static str>) -> (NodeUrl, Arc<Mutex<Vec<usize>>>) {
    let (listener, url) = listen().await;
    let served = Arc::new(Mutex::new(Vec::new()));
    let counts = served.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counts.lock().unwrap().push(0);
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            'connection: loop {
                // One request: head, then Content-Length bytes.
                let (head_end, length) = loop {
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            break (end, length);
                        }
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => break 'connection,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                buf.drain(..head_end + 4 + length);
                let close = head.contains("\r\nconnection: close");
                let server = server.map_or(String::new(), |s| format!("Server: {s}\r\n"));
                let answer = format!(
                    "HTTP/1.1 200 OK\r\n{server}Content-Type: text/xml\r\nContent-Length: {}\r\n\r\n{OK_REPLY}",
                    OK_REPLY.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                *counts.lock().unwrap().last_mut().unwrap() += 1;
                if close {
                    break;
                }
            }
        }
    });
    (url, served)
}

/// Our client keeps a connection open only to a peer that keeps it usefully: one of our own
/// nodes (which name themselves in `Server`). A single-threaded keep-alive peer of another
/// library gets `Connection: close`, so a second caller is served at once instead of waiting
/// on our idle connection (issue 27, item 13).
#[tokio::test]
async fn connections_stay_open_only_where_the_peer_serves_others_meanwhile() {
    let (url, served) = serial_peer(None).await;
    let peers = Peers::new(Duration::from_secs(5)).unwrap();
    for _ in 0..2 {
        assert!(peers.call(&url, "finalize_decision", &[]).await.is_ok());
    }
    // Another caller, while `peers` (and its pool) lives: answered, not held behind us.
    let mut other = tokio::net::TcpStream::connect(url.authority())
        .await
        .unwrap();
    let body = generals::peer::call_body("finalize_decision", &[]).unwrap();
    other
        .write_all(
            format!(
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut first = [0u8; 12];
    let read = tokio::time::timeout(Duration::from_secs(20), other.read_exact(&mut first)).await;
    assert!(
        matches!(read, Ok(Ok(_))),
        "the second caller waited on our idle connection"
    );
    assert_eq!(&first, b"HTTP/1.1 200");
    assert_eq!(
        served.lock().unwrap()[..2],
        [1, 1],
        "one request per connection"
    );
    drop(peers);
    // Our own node names itself: its connection is kept and reused.
    let (url, served) = serial_peer(Some(generals::protocol::SERVER)).await;
    let peers = Peers::new(Duration::from_secs(5)).unwrap();
    for _ in 0..3 {
        assert!(peers.call(&url, "finalize_decision", &[]).await.is_ok());
    }
    // The first call closed (nothing was known of the peer); the next two shared one.
    assert_eq!(*served.lock().unwrap(), [1, 2]);
}

/// `client om` with a node of another library among the nodes (one that answers an unknown
/// method with HTTP 404, or with fault -99): refused before the run as a node without the
/// extension, exit 2, naming it, as the original server.py is; not counted unreachable.
#[test]
fn a_node_of_another_library_is_refused_by_name() {
    let not_found =
        b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nNot Found"
            .to_vec();
    let fault = "<?xml version='1.0'?><methodResponse><fault><value><struct><member><name>faultString</name><value><string>Unknown method</string></value></member><member><name>faultCode</name><value><int>-99</int></value></member></struct></value></fault></methodResponse>";
    let fault = format!("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{fault}", fault.len()).into_bytes();
    for answer in [not_found, fault] {
        let base = crate::common::port_base();
        crate::common::canned_peer(
            crate::common::port_of(base, 'S'),
            Arc::new(Mutex::new(answer)),
        );
        let c = crate::common::Cluster::at(base)
            .hosting(
                crate::common::Side::Rust,
                "P,Q,R",
                &["--quiet", "--faulty", ""],
            )
            .start();
        let (code, out, err) = c
            .client()
            .args(&["om", "-m", "1", "--seed", "1"])
            .timeout(Duration::from_secs(60))
            .run();
        assert_eq!(code, 2, "{out} {err}");
        assert!(
            err.contains("node S (") && err.contains("does not speak the agreement extension"),
            "{err}"
        );
        assert!(
            !out.contains("VOID") && !err.contains("unreachable"),
            "{out} {err}"
        );
    }
}

/// A peer that keeps the bytes of every request it reads and does `answer` with the
/// connection after each (writes bytes, resets, or closes); it reads a next request on the
/// same connection only after an answer that is not empty, to a request that did not ask it
/// to close.
async fn scripted_peer(
    answer: fn(&mut tokio::net::TcpStream) -> Vec<u8>,
) -> (NodeUrl, Arc<Mutex<Vec<Vec<u8>>>>) {
    let (listener, url) = listen().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    if let Some(whole) = request_len(&buf) {
                        let request: Vec<u8> = buf.drain(..whole).collect();
                        let close = String::from_utf8_lossy(&request)
                            .to_ascii_lowercase()
                            .contains("\r\nconnection: close\r\n");
                        kept.lock().unwrap().push(request);
                        let bytes = answer(&mut stream);
                        let _ = stream.write_all(&bytes).await;
                        if bytes.is_empty() || close {
                            return; // dropped: closed, or reset after a zero linger
                        }
                        continue;
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (url, seen)
}

/// A `receive_message` call as our client sends it to a peer not known to serve others
/// meanwhile (issue 27, item 13), then to one of ours.
const CLOSE: &str = "POST / HTTP/1.1\r\nconnection: close\r\naccept: */*\r\nuser-agent: generals/0.1.0 (dxr_client)\r\ncontent-type: text/xml\r\nhost: 127.0.0.1:PORT\r\ncontent-length: 206\r\n\r\n<?xml version=\"1.0\"?>\n<methodCall><methodName>receive_message</methodName><params><param><value><string>P</string></value></param><param><value><string>attack</string></value></param></params></methodCall>\n";
const KEEP: &str = "POST / HTTP/1.1\r\naccept: */*\r\nuser-agent: generals/0.1.0 (dxr_client)\r\ncontent-type: text/xml\r\nhost: 127.0.0.1:PORT\r\ncontent-length: 206\r\n\r\n<?xml version=\"1.0\"?>\n<methodCall><methodName>receive_message</methodName><params><param><value><string>P</string></value></param><param><value><string>attack</string></value></param></params></methodCall>\n";

/// Issue 32 changed the HTTP client under every outgoing call: the bytes of its requests and
/// the words of its transport errors (which reach callers inside faults, as Python's
/// `OSError`) are those recorded from the client before it (reqwest, commit cacd246), the
/// peer's port written as PORT.
#[tokio::test]
async fn requests_and_transport_errors_are_the_bytes_of_before() {
    fn reset(s: &mut tokio::net::TcpStream) -> Vec<u8> {
        #[allow(deprecated)]
        let _ = s.set_linger(Some(Duration::ZERO));
        Vec::new()
    }
    type Answer = fn(&mut tokio::net::TcpStream) -> Vec<u8>;
    let rows: Vec<(&str, Answer, &str)> = vec![
        (
            "closed unanswered",
            |_| Vec::new(),
            "Other(\"error sending request for url (http://127.0.0.1:PORT/): client error (SendRequest): connection closed before message completed\") / <class 'OSError'>:error sending request for url (http://127.0.0.1:PORT/): client error (SendRequest): connection closed before message completed",
        ),
        (
            "reset unanswered",
            reset,
            "Other(\"error sending request for url (http://127.0.0.1:PORT/): client error (SendRequest): connection error: Connection reset by peer (os error 104)\") / <class 'OSError'>:error sending request for url (http://127.0.0.1:PORT/): client error (SendRequest): connection error: Connection reset by peer (os error 104)",
        ),
        (
            "not HTTP",
            |_| b"HELLO THERE\r\n\r\n".to_vec(),
            "Other(\"error sending request for url (http://127.0.0.1:PORT/): client error (SendRequest): invalid HTTP version parsed\") / <class 'OSError'>:error sending request for url (http://127.0.0.1:PORT/): client error (SendRequest): invalid HTTP version parsed",
        ),
        (
            "a body cut short",
            |_| {
                b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<?xml"
                    .to_vec()
            },
            "Other(\"error decoding response body: request or response body error: error reading a body from connection: end of file before message length reached\") / <class 'OSError'>:error decoding response body: request or response body error: error reading a body from connection: end of file before message length reached",
        ),
        (
            "a chunk cut short",
            |_| b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n<?xml".to_vec(),
            "Other(\"error decoding response body: request or response body error: error reading a body from connection: end of file before message length reached\") / <class 'OSError'>:error decoding response body: request or response body error: error reading a body from connection: end of file before message length reached",
        ),
        (
            "a bad header",
            |_| b"HTTP/1.1 200 OK\r\nContent Type: text/xml\r\n\r\n".to_vec(),
            "Other(\"error sending request for url (http://127.0.0.1:PORT/): client error (SendRequest): invalid HTTP header parsed\") / <class 'OSError'>:error sending request for url (http://127.0.0.1:PORT/): client error (SendRequest): invalid HTTP header parsed",
        ),
        (
            "a reason of its own",
            |_| b"HTTP/1.1 400 Nope Nope\r\nContent-Length: 0\r\n\r\n".to_vec(),
            "Http { status: 400, reason: \"Nope Nope\", url: \"http://127.0.0.1:PORT/\" } / <class 'xmlrpc.client.ProtocolError'>:<ProtocolError for 127.0.0.1:PORT/: 400 Nope Nope>",
        ),
    ];
    let args = [Value::String("P".into()), Value::String("attack".into())];
    let mut requests = Vec::new();
    for (name, answer, want) in rows {
        let (url, seen) = scripted_peer(answer).await;
        let port = url.port().to_string();
        let peers = Peers::new(Duration::from_secs(5)).unwrap();
        let got = match peers.call(&url, "receive_message", &args).await {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("{e:?} / {}", e.python_fault()),
        }
        .replace(&port, "PORT");
        assert_eq!(got, want, "{name}");
        let seen = seen.lock().unwrap().clone();
        requests.extend(
            seen.into_iter()
                .map(|r| String::from_utf8(r).unwrap().replace(&port, "PORT")),
        );
    }
    // Every request, the retried ones included, was the same first call: nothing kept.
    requests.dedup();
    assert_eq!(requests, [CLOSE]);

    // One of our nodes, which names itself: its first call closes, the next ones keep the
    // connection.
    let (url, seen) = scripted_peer(|_| {
        format!(
            "HTTP/1.1 200 OK\r\nServer: {}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{OK_REPLY}",
            generals::protocol::SERVER,
            OK_REPLY.len()
        )
        .into_bytes()
    })
    .await;
    let port = url.port().to_string();
    let peers = Peers::new(Duration::from_secs(5)).unwrap();
    for _ in 0..3 {
        assert!(peers.call(&url, "receive_message", &args).await.is_ok());
    }
    let seen: Vec<String> = (seen.lock().unwrap().iter())
        .map(|r| String::from_utf8(r.clone()).unwrap().replace(&port, "PORT"))
        .collect();
    assert_eq!(seen, [CLOSE, KEEP, KEEP]);
}
