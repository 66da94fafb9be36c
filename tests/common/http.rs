//! Talking to a node by hand: raw HTTP exchanges, XML-RPC calls over fresh or kept-alive
//! connections, and a peer that accepts and never answers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dxr::Value;

/// A raw HTTP exchange: send `request` as is, read until the server closes (or 60 s: the
/// deadline only ends a hung test; a loaded machine may take seconds to build a large answer).
/// Returns (status, headers in lower case, body).
pub fn http_raw(port: u16, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_http(&buf)
        .unwrap_or_else(|| panic!("no HTTP response: {:?}", String::from_utf8_lossy(&buf)))
}

pub fn parse_http(buf: &[u8]) -> Option<(u16, String, Vec<u8>)> {
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..split]).to_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head, buf[split + 4..].to_vec()))
}

/// POST `body` to `path` with HTTP/1.0 and `Connection: close`.
pub fn post(port: u16, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut req = format!(
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    http_raw(port, &req)
}

/// An XML-RPC call over a fresh connection: the value, or (fault code, fault string).
pub fn call(port: u16, method: &str, params: &[Value]) -> Result<Value, (i32, String)> {
    call_body(
        port,
        generals::peer::call_body(method, params)
            .unwrap()
            .as_bytes(),
    )
}

/// POST a raw XML-RPC body and decode the answer (panics on a non-200 or non-XML-RPC answer).
pub fn call_body(port: u16, body: &[u8]) -> Result<Value, (i32, String)> {
    let (status, _, body) = post(port, "/", body);
    assert_eq!(status, 200, "body: {}", String::from_utf8_lossy(&body));
    match generals::peer::read_reply(&String::from_utf8_lossy(&body)).expect("XML-RPC response") {
        Ok(v) => Ok(v),
        Err(f) => Err((f.code(), f.string().to_string())),
    }
}

/// Member `key` of an XML-RPC struct (panics, naming it, when absent or not a struct).
pub fn member<'a>(v: &'a Value, key: &str) -> &'a Value {
    match v {
        Value::Struct(m) => m.get(key).unwrap_or_else(|| panic!("no {key} in {v:?}")),
        other => panic!("not a struct: {other:?}"),
    }
}

pub fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

/// Sorted lines, for comparing output as a multiset.
pub fn sorted_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// A keep-alive HTTP/1.1 connection for many calls in a row.
pub struct Conn {
    stream: TcpStream,
    reader: std::io::BufReader<TcpStream>,
}

impl Conn {
    pub fn open(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        // One write per request, sent at once: with Nagle's algorithm a request written in
        // two parts waits for the server's delayed ACK (about 40 ms a call).
        stream.set_nodelay(true).unwrap();
        let reader = std::io::BufReader::new(stream.try_clone().unwrap());
        Conn { stream, reader }
    }

    /// POST `body` to `/` with extra header lines (each ending in `\r\n`); read one response.
    pub fn request(&mut self, extra_headers: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        use std::io::BufRead;
        let head = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n{extra_headers}\r\n",
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.stream.write_all(&request).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"))
            .parse()
            .unwrap();
        let mut headers = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            let lower = line.to_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            headers.push_str(&lower);
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        (status, headers, body)
    }

    /// Wait until the server closes the connection (reading and discarding); how long it took.
    pub fn wait_closed(&mut self) -> Duration {
        let started = Instant::now();
        let mut sink = Vec::new();
        let _ = self.reader.read_to_end(&mut sink);
        started.elapsed()
    }

    pub fn call(&mut self, method: &str, params: &[Value]) -> Result<Value, (i32, String)> {
        let body = generals::peer::call_body(method, params).unwrap();
        let (status, _, body) = self.request("", body.as_bytes());
        assert_eq!(status, 200);
        match generals::peer::read_reply(&String::from_utf8_lossy(&body)).expect("XML-RPC") {
            Ok(v) => Ok(v),
            Err(f) => Err((f.code(), f.string().to_string())),
        }
    }
}

/// The node's stored messages through our `get_messages` extension, sorted.
pub fn messages(port: u16) -> Vec<(String, String)> {
    match call(port, "get_messages", &[]) {
        Ok(Value::Struct(map)) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(v) => (k, v),
                other => panic!("non-string decision {other:?}"),
            })
            .collect(),
        other => panic!("get_messages gave {other:?}"),
    }
}

/// A listener that accepts connections and never answers (a hung peer). Dropping it closes
/// the port and every accepted connection.
pub struct HungPeer {
    _thread: std::thread::JoinHandle<()>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl HungPeer {
    pub fn bind(port: u16) -> HungPeer {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            // Polls accept() until dropped; a blocking accept could not be interrupted.
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        held.push(s);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HungPeer {
            _thread: thread,
            stop,
            accepted,
        }
    }

    /// Connections accepted so far: a caller that has one open is waiting for an answer.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for HungPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Bytes of the first whole request in `buf` (its head and its `Content-Length` body), once
/// they have all arrived.
pub fn request_len(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let length = (head.lines())
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let whole = head_end + 4 + length;
    (buf.len() >= whole).then_some(whole)
}

/// A peer at `port` answering every request with the current `answer`, closing after each.
pub fn canned_peer(port: u16, answer: std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            while let Ok(n) = stream.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                if request_len(&buf).is_some() {
                    break;
                }
            }
            let _ = stream.write_all(&answer.lock().unwrap());
        }
    });
}
