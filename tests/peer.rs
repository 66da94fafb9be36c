//! The one outgoing call function (`generals::peer::Peers::call`, on `dxr_client`) against
//! peers that answer badly: each row is a canned HTTP answer and the error kind the caller must
//! see, plus what the request looked like on the wire.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dxr::Value;
use generals::peer::{PeerError, Peers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A peer on an ephemeral port that answers every request with `answer` and keeps the last
/// request's bytes.
async fn canned_peer(answer: Vec<u8>) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
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
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let length = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= head_end + 4 + length {
                            break;
                        }
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
            &format!("http://127.0.0.1:{port}/"),
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
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let r = peers.call(&url, "finalize_decision", &[]).await;
    assert!(matches!(r, Err(PeerError::Timeout(_))), "{r:?}");
}

/// The keep-alive race (issue 25): a peer that keeps the first connection open, then closes
/// it as the next request arrives on it (as a server does whose keep-alive just ran out),
/// unanswered. The call is sent once more on a new connection and succeeds; the peer saw two
/// connections and three requests in all. A peer that closes before answering on every
/// connection gets two tries, no more.
#[tokio::test]
async fn a_call_on_a_connection_closed_before_any_answer_is_sent_once_more() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (connections, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, r) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let first = c.fetch_add(1, Ordering::SeqCst) == 0;
            let r = r.clone();
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
                    if first && served == 1 {
                        return; // the second request on the first connection: closed unanswered
                    }
                    let body = OK_REPLY;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
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
    assert!(peers.call(&url, "finalize_decision", &[]).await.is_ok());
    let again = peers.call(&url, "finalize_decision", &[]).await;
    assert!(again.is_ok(), "{again:?}");
    assert_eq!(connections.load(Ordering::SeqCst), 2);
    assert_eq!(requests.load(Ordering::SeqCst), 3);

    // Every connection closed unanswered: the call fails after its one retry.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
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
