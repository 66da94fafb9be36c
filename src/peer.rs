//! Outgoing XML-RPC calls: a call at a node's URL ([`Peers::call`]), a call to a node by its
//! name ([`Peers::call_node`]), and a batch of calls in one `system.multicall`
//! ([`Peers::multicall`]), all through one HTTP part (`Peers::post`).
//!
//! The codec of each direction (`xmlrpc`'s module doc has the table): a single call's body is
//! `dxr_client::utils::request_to_body`'s ([`call_body`]), a batch's is `xmlrpc::encode_call`'s
//! (the one call whose size grows with a run), and every reply is read as CPython's client
//! reads it ([`read_reply`], `xmlrpc::decode_response`), since peers of other libraries write
//! what CPython reads and dxr refuses (issue 27). The HTTP part is ours, on one pooled
//! hyper-util client (`hyper_util::client::legacy`) shared by every call the process makes,
//! because `dxr_client::Client` sends no `Content-Type`, never looks at the HTTP status and
//! reads replies of any size. Here every call has a timeout, sends `Content-Type: text/xml`,
//! turns a status other than 200 into [`PeerError::Http`] (with the reason phrase), decodes a
//! gzip reply, and stops reading a reply at [`DEFAULT_MAX_REPLY`] bytes. The pool keeps idle
//! keep-alive connections per host, so node-to-node traffic reuses TCP connections instead of
//! opening one per message as Python's `ServerProxy` does, but only to peers that serve others
//! meanwhile (our own nodes; see `Connections`). Calls go to a [`NodeUrl`], parsed once when
//! the cluster was built.
//!
//! Until issue 32 the client was reqwest (over the same hyper-util pool): its redirect,
//! proxy, cookie and per-request machinery cost instructions on every node-to-node send and
//! none of it was used. The requests' bytes and the transport errors' words stayed reqwest's
//! (`tests/peer.rs` holds them; BENCHMARKS.md, "Issue 32", the figures).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dxr::{Fault, MethodCall, Value};
use dxr_client::utils::request_to_body;
use http_body_util::{BodyExt, Full};
use hyper::header::{
    ACCEPT, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue, SERVER, USER_AGENT,
};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::calls::{Call, Method};
use crate::cluster::{Cluster, NodeUrl};
use crate::protocol::fault;
use crate::protocol::fault::PyFault;
use crate::xmlrpc;

/// Default timeout of one outgoing call (`--rpc-timeout`).
pub(crate) const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest reply body read from a peer; a longer reply fails the call ([`PeerError::Other`])
/// without being read further. Large enough for a `trace_events` or `get_messages` answer of
/// a node at its default limits.
pub(crate) const DEFAULT_MAX_REPLY: usize = 64 * 1024 * 1024;

/// How long an idle keep-alive connection stays in the pool: well under the keep-alive of
/// the servers it calls (ours closes idle connections after `--request-timeout`, 10 s by
/// default), so a call never takes a connection the server is closing at that very moment.
/// A call that still meets such a connection is retried once ([`Peers::post`]).
pub(crate) const POOL_IDLE: Duration = Duration::from_secs(4);

/// Longest excerpt of a bad reply written to the debug log.
const MAX_EXCERPT: usize = 200;

/// User-Agent of our outgoing calls.
const USER_AGENT_VALUE: &str = concat!("generals/", env!("CARGO_PKG_VERSION"), " (dxr_client)");

/// Why a call to a node of the cluster (a driver's, a client's) did not give what it needed.
/// Displayed as one line, without the node's name (the caller's report puts it in front).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NodeCallError {
    /// The cluster gives the node no address.
    #[error("no address: {fault}")]
    NoAddress {
        /// The node.
        node: String,
        /// The fault resolving its name gave (Python's `ord()` faults, or no such node).
        fault: PyFault,
    },
    /// The call failed.
    #[error("{method}: {source}")]
    Call {
        /// The node.
        node: String,
        /// Where it was called.
        url: String,
        /// The method.
        method: String,
        /// What went wrong.
        source: PeerError,
    },
    /// The node answered, but not what the caller needs.
    #[error("{method} answered {message}")]
    Answer {
        /// The node.
        node: String,
        /// The method.
        method: String,
        /// What was wrong with the answer.
        message: String,
    },
}

impl NodeCallError {
    /// The node answered that it does not know the method: an original `server.py` (fault
    /// `method "..." is not supported`), or a node of another XML-RPC library, which says so
    /// its own way: HTTP 404, or a fault of one of the codes or phrases of
    /// [`crate::protocol::other_libraries`] (issue 27: such nodes were counted unreachable).
    pub fn is_unsupported_method(&self) -> bool {
        match self {
            NodeCallError::Call {
                source: PeerError::Fault(f),
                ..
            } => crate::protocol::other_libraries::no_such_method(f.code(), f.string()),
            NodeCallError::Call {
                source: PeerError::Http { status, .. },
                ..
            } => *status == crate::protocol::other_libraries::NOT_FOUND_STATUS,
            _ => false,
        }
    }

    /// Nobody listened at the node's address.
    pub(crate) fn is_refused(&self) -> bool {
        matches!(
            self,
            NodeCallError::Call {
                source: PeerError::Refused,
                ..
            }
        )
    }
}

/// Why an outgoing call did not return a value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PeerError {
    /// Nobody listens on the peer's port.
    #[error("connection refused")]
    Refused,
    /// The peer did not answer within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The peer answered with an XML-RPC fault.
    #[error("fault {}: {}", .0.code(), .0.string())]
    Fault(Fault),
    /// The peer answered with an HTTP status other than 200 (as Python's client, which
    /// reads only a 200).
    #[error("HTTP {status} {reason} from {url}")]
    Http {
        /// The status code.
        status: u16,
        /// The reason phrase the peer sent with it (Python's `ProtocolError` shows it).
        reason: Box<str>,
        /// The URL called (boxed, as the reason: a `PeerError` travels in every `Result` of
        /// a call and stays small).
        url: Box<str>,
    },
    /// Anything else: unreachable host, reset connection, a reply too large or not XML-RPC.
    #[error("{0}")]
    Other(String),
    /// Not called: the peer's last call timed out and its next try is not due yet
    /// ([`Peers::slot`]).
    #[error("not called: its last call timed out (tried again once a second)")]
    Down,
}

impl PeerError {
    /// What a node answers when this happens to a call it makes for its caller (a
    /// `send_message`'s `receive_message`): as CPython's server, the peer's own fault passed
    /// on unchanged (cut to 200 bytes, divergence 21), anything else as the fault of
    /// [`PeerError::python_fault`].
    pub(crate) fn into_fault(self) -> Fault {
        match self {
            PeerError::Fault(f) => Fault::new(f.code(), fault::cut(f.string().to_string())),
            other => Fault::new(
                crate::protocol::FAULT_CODE,
                other.python_fault().into_string(),
            ),
        }
    }

    /// The fault string a Python node would answer with when this happens to its call (a
    /// peer's fault as Python's `str()` of the `Fault` it raises; what traces record).
    pub fn python_fault(&self) -> fault::PyFault {
        match self {
            PeerError::Refused => fault::connection_refused(),
            PeerError::Timeout(_) => fault::timed_out(),
            PeerError::Fault(f) => fault::peer_fault(f.code(), f.string()),
            PeerError::Http {
                status,
                reason,
                url,
            } => {
                let hostport = url.trim_start_matches("http://");
                fault::python(
                    "xmlrpc.client.ProtocolError",
                    &format!("<ProtocolError for {hostport}: {status} {reason}>"),
                )
            }
            PeerError::Other(m) => fault::peer_error(m),
            PeerError::Down => fault::peer_down(),
        }
    }
}

/// The body of a (single) call of `method(params)`, as `dxr_client` writes it.
pub fn call_body(method: &str, params: &[Value]) -> Result<String, PeerError> {
    let call = MethodCall {
        name: method.into(),
        params: params.to_vec(),
    };
    request_to_body(&call).map_err(|e| PeerError::Other(format!("cannot write the call: {e}")))
}

/// Read a `methodResponse` body as CPython's client reads it (`xmlrpc::decode_response`):
/// `Ok(Ok(value))`, `Ok(Err(fault))`, or why it is not one (the body is not quoted, see
/// [`bad_reply`]). Every reply of an outgoing call is read here: a peer of another library
/// writes what CPython reads, not what dxr reads (fault members in another order, an
/// ISO-8859-1 answer, an untyped `<nil/>`, an empty member name; issue 27).
pub fn read_reply(body: &str) -> Result<Result<Value, Fault>, String> {
    read_reply_bytes(body.as_bytes())
}

/// [`read_reply`] of the body's bytes, in whatever encoding it declares.
pub fn read_reply_bytes(body: &[u8]) -> Result<Result<Value, Fault>, String> {
    xmlrpc::decode_response(body).map_err(|_| bad_reply(&String::from_utf8_lossy(body)))
}

/// The error for a reply that is not XML-RPC. It does not quote the reply: the error reaches
/// callers (in a fault, in `trace_events`), and a node must not be a way to read what some
/// service answers (the original quoted it, which with its port rule let any caller read
/// any local port). The start of the reply goes to the debug log instead.
fn bad_reply(body: &str) -> String {
    let mut end = body.len().min(MAX_EXCERPT);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    tracing::debug!("not an XML-RPC methodResponse: {:?}", &body[..end]);
    format!(
        "not an XML-RPC methodResponse ({} bytes, not quoted)",
        body.len()
    )
}

/// The HTTP client under every outgoing call: hyper-util's pooled client over plain TCP.
type Http = Client<HttpConnector, Full<Bytes>>;

/// The outgoing side of a process: a connection pool, a timeout and a reply size cap.
#[derive(Debug, Clone)]
pub struct Peers {
    http: Http,
    timeout: Duration,
    max_reply: usize,
    /// Which peers keep a connection usefully ([`Connections`]).
    connections: Connections,
    /// Each peer's calls in flight and health, shared by every clone ([`Peers::slot`]).
    gates: Arc<Mutex<HashMap<NodeUrl, Arc<PeerGate>>>>,
}

/// Calls one process makes to one peer at once through [`Peers::slot`]; more wait for a slot
/// of that peer, holding nothing that calls to other peers need.
pub(crate) const MAX_PER_PEER: usize = 64;

/// How often a peer known down ([`Peers::slot`]) is tried again: one call goes through, the
/// others fail at once.
pub(crate) const DOWN_RETRY: Duration = Duration::from_secs(1);

/// One peer's slots and health.
#[derive(Debug)]
struct PeerGate {
    slots: Arc<Semaphore>,
    /// When the peer's last call timed out, the time its next try is due; `None` while it
    /// answers.
    retry_at: Mutex<Option<Instant>>,
}

/// Whether a call may go to a peer now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// It answers.
    Up,
    /// It is known down and this call is the one try of this [`DOWN_RETRY`].
    Try,
    /// It is known down: not now.
    No,
}

impl PeerGate {
    fn pass(&self) -> Pass {
        let mut retry_at = self.retry_at.lock().unwrap_or_else(|e| e.into_inner());
        match *retry_at {
            None => Pass::Up,
            Some(at) if Instant::now() >= at => {
                *retry_at = Some(Instant::now() + DOWN_RETRY);
                Pass::Try
            }
            Some(_) => Pass::No,
        }
    }
}

/// A call's place among the calls to one peer ([`Peers::slot`]); [`PeerSlot::finish`] with
/// the call's result keeps the peer's health.
#[derive(Debug)]
pub(crate) struct PeerSlot {
    gate: Arc<PeerGate>,
    _slot: OwnedSemaphorePermit,
}

impl PeerSlot {
    /// Record how the call went: a timeout makes the peer known down (further calls fail at
    /// once, but one per [`DOWN_RETRY`]); any answer, a fault or an HTTP error included,
    /// makes it known up.
    pub(crate) fn finish<T>(self, result: &Result<T, PeerError>) {
        let mut retry_at = self.gate.retry_at.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Err(PeerError::Timeout(_)) => *retry_at = Some(Instant::now() + DOWN_RETRY),
            Ok(_) | Err(PeerError::Fault(_) | PeerError::Http { .. }) => *retry_at = None,
            Err(_) => {}
        }
    }
}

impl Peers {
    /// A pool whose calls each time out after `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, PeerError> {
        // Plain TCP to the address the URL names: no proxy from the environment (an
        // HTTP_PROXY must not send node-to-node traffic, loopback included, elsewhere), the
        // TCP options reqwest set by default before issue 32 (keep-alive probes, user timeout).
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(timeout));
        tcp.set_keepalive(Some(Duration::from_secs(15)));
        tcp.set_keepalive_interval(Some(Duration::from_secs(15)));
        tcp.set_keepalive_retries(Some(3));
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        tcp.set_tcp_user_timeout(Some(Duration::from_secs(30)));
        let http = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(32)
            .build(tcp);
        Ok(Peers {
            http,
            timeout,
            max_reply: DEFAULT_MAX_REPLY,
            connections: Connections::default(),
            gates: Arc::default(),
        })
    }

    /// A place among the calls to `url`, for a call about to be made: at once while fewer
    /// than [`MAX_PER_PEER`] are in flight to it, else when one ends (within the pool's
    /// timeout). A peer whose last call timed out is not waited for: [`PeerError::Down`] at
    /// once, but for one call per [`DOWN_RETRY`], which tries it again.
    ///
    /// Why: one stopped peer took every forward turn of its process (hundreds of
    /// `send_message` calls to it, each waiting the whole timeout), and a forward between two
    /// healthy nodes waited seconds behind them. Taken before the process-wide turn, a slot
    /// keeps a dead peer's calls from queueing ahead of calls to live ones.
    pub(crate) async fn slot(&self, url: &NodeUrl) -> Result<PeerSlot, PeerError> {
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
            gates
                .entry(url.clone())
                .or_insert_with(|| {
                    Arc::new(PeerGate {
                        slots: Arc::new(Semaphore::new(MAX_PER_PEER)),
                        retry_at: Mutex::new(None),
                    })
                })
                .clone()
        };
        let first = gate.pass();
        if first == Pass::No {
            return Err(PeerError::Down);
        }
        let wait = gate.slots.clone().acquire_owned();
        let slot = match tokio::time::timeout(self.timeout, wait).await {
            Ok(Ok(slot)) => slot,
            _ => return Err(PeerError::Timeout(self.timeout)),
        };
        // Known down while this call waited (the calls ahead of it timed out): no call now,
        // unless it is the try.
        if first == Pass::Up && gate.pass() == Pass::No {
            return Err(PeerError::Down);
        }
        Ok(PeerSlot { gate, _slot: slot })
    }

    /// The same pool (connections included) with calls timing out after `timeout`.
    pub(crate) fn with_timeout(&self, timeout: Duration) -> Self {
        Peers {
            timeout,
            ..self.clone()
        }
    }

    /// The timeout of each call.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same pool, reading replies of at most `bytes` bytes.
    pub fn with_max_reply(mut self, bytes: usize) -> Self {
        self.max_reply = bytes;
        self
    }

    /// Call `method(params)` at `url`, within the pool's timeout: the body written by
    /// `dxr_client` ([`call_body`]), the reply read by [`read_reply_bytes`].
    pub async fn call(
        &self,
        url: &NodeUrl,
        method: &str,
        params: &[Value],
    ) -> Result<Value, PeerError> {
        let reply = self
            .post(url, call_body(method, params)?, self.timeout)
            .await?;
        answer(&reply)
    }

    /// The HTTP part of a call: post `body` to `url`, check the status, read the reply (at most
    /// the pool's cap; a gzip answer decoded, as Python's client decodes one whether it asked
    /// for it or not).
    ///
    /// A call whose connection closed before any byte of the answer came (the server closed
    /// an idle keep-alive connection just as the call took it from the pool) is sent once
    /// more, on another connection, within what is left of the timeout. Every call the
    /// project makes may be asked twice: the agreement methods are idempotent per run (a
    /// start, order or round asked again is answered as the first one), and a request the
    /// server never read has done nothing.
    async fn post(
        &self,
        url: &NodeUrl,
        body: String,
        timeout: Duration,
    ) -> Result<Vec<u8>, PeerError> {
        let body = Bytes::from(body);
        let started = tokio::time::Instant::now();
        let timed_out = |_| PeerError::Timeout(timeout);
        let first = tokio::time::timeout(timeout, self.exchange(url, body.clone()));
        match first.await.map_err(timed_out)? {
            Err(Failed::Send(e)) if closed_before_answer(&e) => {
                let left = timeout.saturating_sub(started.elapsed());
                tracing::debug!("{url}: {e}; sending once more on a new connection");
                let again = tokio::time::timeout(left, self.exchange(url, body));
                again.await.map_err(timed_out)?
            }
            other => other,
        }
        .map_err(|failed| failed.classify(url, timeout))
    }

    /// One try of [`Peers::post`], without its timeout.
    async fn exchange(&self, url: &NodeUrl, body: Bytes) -> Result<Vec<u8>, Failed> {
        let mut request = hyper::Request::new(Full::new(body));
        *request.method_mut() = hyper::Method::POST;
        *request.uri_mut() = url.uri().clone();
        // The head reqwest wrote before issue 32, in its order (hyper-util adds `host`, hyper
        // `content-length`): `tests/peer.rs` holds the bytes.
        let headers = request.headers_mut();
        if !self.connections.keeps(url) {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        // dxr_client's bodies go out without a Content-Type; Python's clients send text/xml.
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/xml"));
        let response = self.http.request(request).await.map_err(Failed::Send)?;
        self.connections.learn(url, response.headers());
        let status = response.status();
        if status != hyper::StatusCode::OK {
            return Err(Failed::Peer(http_error(&response, url.as_str())));
        }
        let too_large = || {
            Failed::Peer(PeerError::Other(format!(
                "reply larger than {} bytes",
                self.max_reply
            )))
        };
        let length = hyper::body::Body::size_hint(response.body()).exact();
        if length.is_some_and(|n| n > self.max_reply as u64) {
            return Err(too_large());
        }
        let gzip =
            (response.headers().get(CONTENT_ENCODING)).is_some_and(|v| v.as_bytes() == b"gzip");
        let mut bytes = Vec::with_capacity(length.map_or(1024, |n| n as usize));
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(Failed::Body)?;
            if let Ok(chunk) = frame.into_data() {
                if bytes.len() + chunk.len() > self.max_reply {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&chunk);
            }
        }
        // Python's client compares the header with "gzip" exactly, and reads any other
        // answer as it is.
        match gzip {
            true => gunzip(&bytes, self.max_reply).map_err(Failed::Peer),
            false => Ok(bytes),
        }
    }

    /// [`Peers::call`] of the node `name` of `cluster`: the error names the node and its URL
    /// (or says it has none).
    pub async fn call_node(
        &self,
        cluster: &Cluster,
        name: &str,
        method: &str,
        args: &[Value],
    ) -> Result<Value, NodeCallError> {
        let url = cluster
            .url_of(name)
            .map_err(|fault| NodeCallError::NoAddress {
                node: name.to_string(),
                fault,
            })?;
        self.call(&url, method, args)
            .await
            .map_err(|source| NodeCallError::Call {
                node: name.to_string(),
                url: url.to_string(),
                method: method.to_string(),
                source,
            })
    }

    /// `method` on every node of `nodes` at once (see [`each_node`]), with the arguments
    /// `args` gives for each: per node, in the order of `nodes`, its name, its URL (empty when
    /// it has none) and what it answered.
    pub(crate) async fn each(
        &self,
        cluster: &Cluster,
        nodes: &[String],
        call: impl Fn(&str) -> Call,
    ) -> Vec<(String, String, Result<Value, NodeCallError>)> {
        let answers = each_node(nodes, |node| {
            let (method, args) = call(&node).into_wire();
            let (cluster, peers) = (cluster.clone(), self.clone());
            async move {
                let url = cluster
                    .url_of(&node)
                    .map(|url| url.to_string())
                    .unwrap_or_default();
                (
                    url,
                    peers.call_node(&cluster, &node, method.name(), &args).await,
                )
            }
        })
        .await;
        answers
            .into_iter()
            .map(|(node, (url, answer))| (node, url, answer))
            .collect()
    }

    /// Several calls to one peer in one `system.multicall` (the standard XML-RPC batch, which
    /// Python serves after `register_multicall_functions()`), giving up after `timeout`: one
    /// result per call, in order, or the failure of the whole batch. The body is written by
    /// `xmlrpc::encode_call` (the one call whose size grows with a run: BENCHMARKS.md, "One
    /// codec per direction (issue 29)"), the reply read by [`read_reply_bytes`].
    pub(crate) async fn multicall(
        &self,
        url: &NodeUrl,
        calls: Vec<(String, Vec<Value>)>,
        timeout: Duration,
    ) -> Result<Vec<Result<Value, Fault>>, PeerError> {
        let expected = calls.len();
        // What dxr's `into_multicall_params` builds, with the values moved instead of copied
        // twice.
        let params = Value::Array(
            calls
                .into_iter()
                .map(|(name, params)| {
                    Value::Struct(
                        [
                            ("methodName".to_string(), Value::String(name)),
                            ("params".to_string(), Value::Array(params)),
                        ]
                        .into(),
                    )
                })
                .collect(),
        );
        let body = xmlrpc::encode_call(Method::Multicall.name(), &[params]);
        let answer = answer(&self.post(url, body, timeout).await?)?;
        let bad = |why: &str| PeerError::Other(format!("{} answer {why}", Method::Multicall));
        let Value::Array(items) = answer else {
            return Err(bad("is not an array"));
        };
        if items.len() != expected {
            return Err(bad(&format!(
                "has {} results for {expected} calls",
                items.len()
            )));
        }
        items
            .into_iter()
            .map(|item| match item {
                // A result is a one-element array; a fault a struct (the XML-RPC convention).
                Value::Array(mut one) if one.len() == 1 => Ok(Ok(one.remove(0))),
                Value::Struct(f) => match (f.get("faultCode"), f.get("faultString")) {
                    (Some(Value::Integer(code)), Some(Value::String(string))) => {
                        Ok(Err(Fault::new(*code, string.clone())))
                    }
                    _ => Err(bad("has a fault without faultCode and faultString")),
                },
                _ => Err(bad("has an element that is neither a result nor a fault")),
            })
            .collect()
    }
}

/// The value of a reply, or the peer's fault, or why the reply is not XML-RPC.
fn answer(reply: &[u8]) -> Result<Value, PeerError> {
    match read_reply_bytes(reply) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(f)) => Err(PeerError::Fault(f)),
        Err(m) => Err(PeerError::Other(m)),
    }
}

/// How one try of a call failed ([`Peers::exchange`]).
#[derive(Debug)]
enum Failed {
    /// Sending the request or reading the answer's head.
    Send(hyper_util::client::legacy::Error),
    /// Reading the answer's body.
    Body(hyper::Error),
    /// Known already.
    Peer(PeerError),
}

impl Failed {
    /// The caller's error: a refused connection and a timeout by their kind; anything else
    /// in the words reqwest used before issue 32 (they reach callers in faults, as Python's
    /// `OSError`: `tests/peer.rs` holds them): what failed, then each cause.
    fn classify(self, url: &NodeUrl, timeout: Duration) -> PeerError {
        let (what, error): (String, &(dyn std::error::Error + 'static)) = match &self {
            Failed::Peer(e) => return e.clone(),
            Failed::Send(e) => (format!("error sending request for url ({})", url.url()), e),
            Failed::Body(e) => (
                "error decoding response body: request or response body error".to_string(),
                e,
            ),
        };
        let mut chain = vec![what];
        let mut source = Some(error);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => return PeerError::Refused,
                    std::io::ErrorKind::TimedOut => return PeerError::Timeout(timeout),
                    _ => {}
                }
            }
            chain.push(s.to_string());
            source = s.source();
        }
        chain.dedup();
        PeerError::Other(chain.join(": "))
    }
}

/// Whether a call failed because its connection was closed or reset before any byte of the
/// answer came (not a refused connection): the race of a reused keep-alive connection that
/// the server closed meanwhile.
fn closed_before_answer(e: &hyper_util::client::legacy::Error) -> bool {
    if e.is_connect() {
        return false;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_canceled())
        {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
            if matches!(io.kind(), ConnectionReset | BrokenPipe | ConnectionAborted) {
                return true;
            }
        }
        source = s.source();
    }
    false
}

/// A status other than 200, with the reason phrase the peer sent (hyper keeps one that is not
/// the canonical phrase; the canonical one otherwise).
fn http_error<B>(response: &hyper::Response<B>, url: &str) -> PeerError {
    let status = response.status();
    let reason = match response.extensions().get::<hyper::ext::ReasonPhrase>() {
        Some(r) => String::from_utf8_lossy(r.as_bytes()).into_owned(),
        None => status.canonical_reason().unwrap_or_default().to_string(),
    };
    PeerError::Http {
        status: status.as_u16(),
        reason: reason.into(),
        url: url.into(),
    }
}

/// A gzip reply decoded, at most `max` bytes of it (a bomb allocates no more).
fn gunzip(compressed: &[u8], max: usize) -> Result<Vec<u8>, PeerError> {
    use std::io::Read;
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    match flate2::read::MultiGzDecoder::new(compressed)
        .take(limit)
        .read_to_end(&mut out)
    {
        Ok(_) if out.len() > max => Err(PeerError::Other(format!("reply larger than {max} bytes"))),
        Ok(_) => Ok(out),
        Err(e) => Err(PeerError::Other(format!("reply is not valid gzip: {e}"))),
    }
}

/// Which peers keep a connection usefully, so ours stays open for the next call.
///
/// Why: a peer that serves one connection at a time (Perl's `HTTP::Daemon` loop) and keeps it
/// open after answering waits on our idle pooled connection while every other caller
/// stalls, 10 s until one side times out (issue 27, item 13); Python's `ServerProxy`, which
/// closes after its call, never meets this. So a call says `Connection: close` unless its
/// peer is known to serve connections concurrently: one of ours, which names itself in its
/// `Server` header ([`crate::protocol::SERVER`]) on every answer. The first call to each of
/// our nodes closes; every later one reuses the pool. A peer that answers HTTP/1.0 or
/// `Connection: close` (Python's) is never reused anyway.
#[derive(Debug, Clone, Default)]
struct Connections {
    /// Authorities (`host:port`) whose answers named our server.
    concurrent: std::sync::Arc<std::sync::RwLock<std::collections::HashSet<String>>>,
}

impl Connections {
    /// Whether a call to `url` may keep its connection: its peer is known to serve
    /// connections concurrently. Else the call asks the peer to close after answering.
    fn keeps(&self, url: &NodeUrl) -> bool {
        self.concurrent
            .read()
            .map(|set| set.contains(url.authority()))
            .unwrap_or(false)
    }

    /// Remember `url`'s peer as one of ours when its answer says so.
    fn learn(&self, url: &NodeUrl, headers: &HeaderMap) {
        let ours = headers.get(SERVER).is_some_and(|v| {
            v.as_bytes()
                .starts_with(crate::protocol::SERVER_PRODUCT.as_bytes())
        });
        let a = url.authority();
        if ours
            && let Ok(mut set) = self.concurrent.write()
            && !set.contains(a)
        {
            // Bounded by the cluster: only the nodes a process calls are ever added.
            set.insert(a.to_string());
        }
    }
}

/// Calls to distinct nodes [`each_node`] has in flight at once: as many as a run may have
/// nodes (the agreement engine's `MAX_NODES`), so that every participant of a round is called
/// at once, as a round needs (a node's round ends on its peers' relays, not on the driver).
pub(crate) const FAN_OUT: usize = 64;

/// The one fan-out to every node: `call(node)` for each of `nodes`, at most [`FAN_OUT`] at
/// once, each on a task of its own (a slow node delays nobody else's answer); each node's
/// result, in the order of `nodes`. The driver's phases, trace gathering, the traitor listing
/// and the live page all ask their nodes through it.
pub(crate) async fn each_node<T, F, Fut>(nodes: &[String], call: F) -> Vec<(String, T)>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    let mut results: Vec<Option<T>> = nodes.iter().map(|_| None).collect();
    let mut next = nodes.iter().enumerate();
    loop {
        while tasks.len() < FAN_OUT {
            let Some((i, node)) = next.next() else { break };
            let answer = call(node.clone());
            tasks.spawn(async move { (i, answer.await) });
        }
        match tasks.join_next().await {
            Some(Ok((i, answer))) => results[i] = Some(answer),
            // A call that panicked has no result (and takes no place any more).
            Some(Err(_)) => {}
            None => break,
        }
    }
    nodes
        .iter()
        .zip(results)
        .filter_map(|(node, r)| Some((node.clone(), r?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(value_xml: &str) -> String {
        format!(
            "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n{value_xml}</param>\n</params>\n</methodResponse>\n"
        )
    }

    #[test]
    fn the_fan_out_keeps_the_nodes_order_and_its_bound() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let nodes: Vec<String> = (0..FAN_OUT * 2 + 3).map(|i| format!("N{i}")).collect();
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let got = runtime.block_on(each_node(&nodes, |node| {
            let (now, most) = (now.clone(), most.clone());
            async move {
                most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                // Later nodes answer first.
                let i: u64 = node[1..].parse().unwrap();
                tokio::time::sleep(Duration::from_micros(500 - i)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                node.to_lowercase()
            }
        }));
        let want: Vec<(String, String)> = nodes
            .iter()
            .map(|n| (n.clone(), n.to_lowercase()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(most.load(Ordering::SeqCst), FAN_OUT);
    }

    #[test]
    fn empty_and_blank_member_names_read_as_python_writes_them() {
        let body = reply(
            "<value><struct>\n<member>\n<name></name>\n<value><string>attack</string></value>\n</member>\n<member>\n<name>  </name>\n<value><string>retreat</string></value>\n</member>\n<member>\n<name/>\n<value><string>x</string></value>\n</member>\n<member>\n<name> Q </name>\n<value><struct>\n<member>\n<name></name>\n<value><int>1</int></value>\n</member>\n</struct></value>\n</member>\n</struct></value>\n",
        );
        // dxr refuses it: one reason replies are read by CPython's reader, not dxr's.
        assert!(dxr_client::utils::response_to_result(&body).is_err());
        let Ok(Ok(Value::Struct(m))) = read_reply(&body) else {
            panic!("{:?}", read_reply(&body));
        };
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["", "  ", " Q "]);
        assert_eq!(
            m[""],
            Value::String("x".into()),
            "a later member replaces an earlier one"
        );
        assert_eq!(m["  "], Value::String("retreat".into()));
        let Value::Struct(inner) = &m[" Q "] else {
            panic!()
        };
        assert_eq!(inner[""], Value::Integer(1));
    }

    #[test]
    fn bad_replies_are_quoted_briefly() {
        let junk = format!("<html>{}</html>", "x".repeat(10_000));
        let e = read_reply(&junk).unwrap_err();
        assert!(e.len() < 300, "{e}");
    }

    #[test]
    fn faults_and_values_read() {
        let fault = "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>1</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>&lt;class 'Exception'&gt;:method \"nope\" is not supported</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n";
        let f = read_reply(fault).unwrap().unwrap_err();
        assert_eq!(
            (f.code(), f.string()),
            (1, "<class 'Exception'>:method \"nope\" is not supported")
        );
        assert_eq!(
            read_reply(&reply("<value><string>a\u{e9}&lt;</string></value>\n"))
                .unwrap()
                .unwrap(),
            Value::String("a\u{e9}<".into())
        );
    }
}
