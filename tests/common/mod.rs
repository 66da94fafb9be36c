//! Shared test helpers: free port blocks, spawning Rust and Python servers, polling for
//! readiness, raw HTTP and XML-RPC calls. Every helper has a deadline; nothing sleeps to wait.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dxr::Value;

/// Ports in a block; P sits in the middle so names a few letters away (T, A...) stay inside
/// the block and never reach another test's nodes.
pub const BLOCK: u16 = 64;
const RANGE: std::ops::Range<u32> = 20_000..32_000;
static NEXT_BLOCK: AtomicU32 = AtomicU32::new(0);

/// A port base (port of P) whose whole block of [`BLOCK`] ports was free when allocated.
/// Blocks lie below Linux's ephemeral range, so outgoing connections never take them.
pub fn port_base() -> u16 {
    let blocks = (RANGE.end - RANGE.start) / u32::from(BLOCK);
    let start = std::process::id().wrapping_mul(2_654_435_761) % blocks;
    for _ in 0..blocks {
        let i = (start + NEXT_BLOCK.fetch_add(1, Ordering::SeqCst)) % blocks;
        let first = RANGE.start + i * u32::from(BLOCK);
        if (first..first + u32::from(BLOCK))
            .all(|p| TcpListener::bind(("127.0.0.1", p as u16)).is_ok())
        {
            return (first + u32::from(BLOCK) / 2) as u16;
        }
    }
    panic!("no free port block in {RANGE:?}");
}

/// Port of a one-letter node under the original rule.
pub fn port_of(base: u16, name: char) -> u16 {
    (i32::from(base) + name as i32 - 'P' as i32) as u16
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn python_server_script() -> PathBuf {
    root().join("scripts/python/server.py")
}

pub fn python_client_script() -> PathBuf {
    root().join("scripts/python/client.py")
}

pub fn server_bin() -> &'static str {
    env!("CARGO_BIN_EXE_server")
}

pub fn client_bin() -> &'static str {
    env!("CARGO_BIN_EXE_client")
}

/// A spawned process whose stdout and stderr are collected in the background.
pub struct Proc {
    child: Child,
    out: Option<JoinHandle<String>>,
    err: Option<JoinHandle<String>>,
    out_so_far: Arc<Mutex<Vec<u8>>>,
}

type Shared = Arc<Mutex<Vec<u8>>>;

/// Copy `r` into `seen` as it arrives; the thread's result is everything, once `r` closes.
fn drain(mut r: impl Read + Send + 'static, seen: Shared) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
        String::from_utf8_lossy(&seen.lock().unwrap()).into_owned()
    })
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let out_so_far = Shared::default();
        let out = drain(child.stdout.take().unwrap(), out_so_far.clone());
        let err = drain(child.stderr.take().unwrap(), Shared::default());
        Proc {
            child,
            out: Some(out),
            err: Some(err),
            out_so_far,
        }
    }

    /// What the process has printed on stdout so far.
    pub fn stdout_so_far(&self) -> String {
        String::from_utf8_lossy(&self.out_so_far.lock().unwrap()).into_owned()
    }

    /// A Rust `server` with these arguments, ready when every port in `ports` accepts.
    pub fn rust_server(args: &[&str], ports: &[u16]) -> Proc {
        let mut cmd = Command::new(server_bin());
        cmd.args(args);
        let p = Proc::spawn(cmd);
        wait_ports(ports);
        p
    }

    /// The Python stand-in server with these arguments, ready when `ports` accept.
    pub fn python_server(args: &[&str], ports: &[u16]) -> Proc {
        let mut cmd = Command::new("python3");
        cmd.arg(python_server_script()).args(args);
        let p = Proc::spawn(cmd);
        wait_ports(ports);
        p
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the process to exit by itself (with a deadline), returning its status and output.
    pub fn wait(mut self, limit: Duration) -> (std::process::ExitStatus, String, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let (out, err) = self.collect();
                return (status, out, err);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let (out, err) = self.collect();
                panic!("process did not exit within {limit:?}\nstdout:\n{out}\nstderr:\n{err}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stop the process as an operator would (SIGTERM; SIGKILL if it is still running 10 s
    /// later) and return what it printed. A server writes its stdout lines from a queue of
    /// their own, and at a SIGTERM it writes what is queued before it exits.
    pub fn stop(mut self) -> (String, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.collect()
    }

    fn collect(&mut self) -> (String, String) {
        let out = self
            .out
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        let err = self
            .err
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        (out, err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Rust `server` hosting P, Q, R, S on a free port block (access log off), with extra
/// arguments; returns it and its port base.
pub fn rust_cluster(extra: &[&str]) -> (Proc, u16) {
    let base = port_base();
    let ports: Vec<u16> = "PQRS".chars().map(|c| port_of(base, c)).collect();
    let base_s = base.to_string();
    let mut args = vec!["--port-base", base_s.as_str(), "--quiet"];
    args.extend_from_slice(extra);
    (Proc::rust_server(&args, &ports), base)
}

/// Run a command to completion with a deadline: (exit code, stdout, stderr).
pub fn run(cmd: Command, limit: Duration) -> (i32, String, String) {
    let (status, out, err) = Proc::spawn(cmd).wait(limit);
    (status.code().unwrap_or(-1), out, err)
}

/// Poll until every port accepts a connection (deadline 15 s).
pub fn wait_ports(ports: &[u16]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    for &port in ports {
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "port {port} not ready within 15 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A raw HTTP exchange: send `request` as is, read until the server closes (or 15 s).
/// Returns (status, headers in lower case, body).
pub fn http_raw(port: u16, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
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

/// `client --port-base BASE --cluster-size N ARGS... --json`: (exit code, parsed JSON or null,
/// stderr). Global flags go in `args` before the subcommand.
pub fn client_json(base: u16, n: usize, args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut cmd = Command::new(client_bin());
    cmd.args([
        "--port-base",
        &base.to_string(),
        "--cluster-size",
        &n.to_string(),
    ])
    .args(args)
    .arg("--json");
    let (code, out, err) = run(cmd, Duration::from_secs(120));
    let json = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    (code, json, err)
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
}

impl HungPeer {
    pub fn bind(port: u16) -> HungPeer {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            // Polls accept() until dropped; a blocking accept could not be interrupted.
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HungPeer {
            _thread: thread,
            stop,
        }
    }
}

impl Drop for HungPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
