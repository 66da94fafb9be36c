//! HTTP and XML-RPC glue: one listener per hosted node, the routes Python serves, limits and
//! timeouts, dispatch to [`Node`], the access log, and graceful shutdown.
//!
//! Connections are served with hyper's HTTP/1 connection builder (not `axum::serve`) because
//! it can time out a client that never finishes its request head; routing is an axum
//! [`Router`] (through `dxr_server`'s re-export). The XML-RPC methods are a `dxr_server`
//! method table behind our own front ([`methods`]): dxr_server's own front answers unknown
//! methods and bad bodies with codes 404/400 and echoes the whole body, where the original
//! answers code 1.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dxr::{Fault, Value};
use dxr_server::HandlerMap;
use dxr_server::axum::Router;
use dxr_server::axum::body::Body;
use dxr_server::axum::extract::State;
use dxr_server::axum::http::{
    HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header,
};
use dxr_server::axum::routing::post;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::agreement::behaviour::Behaviour;
use crate::agreement::engine::Engine;
use crate::cluster::{Cluster, ClusterError};
use crate::methods::{self, Codec, General};
use crate::node::{self, Node};
use crate::peer::{self, PeerError, Peers};
use crate::protocol::{self, fault};
use crate::trace::{self, Recorder};

/// Limits and timeouts of a server process. Every one has a flag in the `server` binary.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Timeout of each outgoing call (`--rpc-timeout`).
    pub rpc_timeout: Duration,
    /// Largest request body accepted (`--max-body`); beyond: HTTP 413.
    pub max_body: usize,
    /// Distinct senders a node stores (`--max-senders`).
    pub max_senders: usize,
    /// Time a client has to send a request's head, and to send its body.
    pub request_timeout: Duration,
    /// Node-to-node calls remembered for `trace_events` (`--trace-events`; 0 turns it off).
    pub trace_events: usize,
    /// Largest agreement run a node takes part in, in messages (`--max-run-messages`).
    pub max_run_messages: u64,
    /// Agreement runs a node remembers (`--max-runs`); the oldest is forgotten beyond.
    pub max_runs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rpc_timeout: peer::DEFAULT_RPC_TIMEOUT,
            max_body: 1024 * 1024,
            max_senders: node::DEFAULT_MAX_SENDERS,
            request_timeout: Duration::from_secs(10),
            trace_events: trace::DEFAULT_MAX_EVENTS,
            max_run_messages: crate::agreement::engine::DEFAULT_MAX_RUN_MESSAGES,
            max_runs: crate::agreement::engine::MAX_RUNS,
        }
    }
}

/// What a server process hosts and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where every node lives (hosted ones are bound there).
    pub cluster: Cluster,
    /// The nodes this process hosts, in startup order.
    pub nodes: Vec<String>,
    /// Nodes faulty in the original's sense.
    pub faulty: Vec<String>,
    /// Sending behaviours by node (`--behaviour NAME=KIND`); others keep the original's.
    pub behaviours: Vec<(String, Behaviour)>,
    /// Seed of the `random` behaviour (`--seed`).
    pub seed: u64,
    /// No access log on stderr.
    pub quiet: bool,
    /// Print the original's stdout lines (startup, sent, received, majority).
    pub print: bool,
    /// Limits and timeouts.
    pub limits: Limits,
    /// Reader of request bodies (`--xml-codec`; the fast path unless measuring dxr).
    pub codec: Codec,
}

impl Default for Config {
    /// The original: P, Q, R, S on 127.0.0.1:8000-8003, P faulty.
    fn default() -> Self {
        Config {
            cluster: Cluster::default(),
            nodes: protocol::DEFAULT_NODES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            faulty: vec![protocol::ORIGINAL_FAULTY.to_string()],
            behaviours: Vec::new(),
            seed: 0,
            quiet: false,
            print: true,
            limits: Limits::default(),
            codec: Codec::default(),
        }
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A node has no usable port.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The listener could not be bound (port in use, address not local...).
    #[error("cannot bind node {name} on {addr}: {source}")]
    Bind {
        /// The node.
        name: String,
        /// host:port tried.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The outgoing HTTP client could not be built.
    #[error("{0}")]
    Peer(#[from] PeerError),
    /// No node to host.
    #[error("no node to host: --nodes is empty")]
    NoNodes,
    /// The agreement engine could not start (no randomness for its key).
    #[error("{0}")]
    Engine(String),
}

/// A server whose listeners are bound; [`Bound::run`] serves them.
#[derive(Debug)]
pub struct Bound {
    nodes: Vec<(Arc<NodeState>, TcpListener)>,
    config: Config,
}

struct NodeState {
    general: Arc<General>,
    engine: Arc<Engine>,
    /// The node's methods (dxr_server handlers), behind [`methods::answer`].
    table: HandlerMap,
    delay: Option<Duration>,
    limits: Limits,
    codec: Codec,
}

impl std::fmt::Debug for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeState")
            .field("general", &self.general)
            .finish_non_exhaustive()
    }
}

/// Bind every hosted node's listener. Nothing is printed yet, so a port in use fails cleanly.
pub async fn bind(config: Config) -> Result<Bound, ServerError> {
    if config.nodes.is_empty() {
        return Err(ServerError::NoNodes);
    }
    let mut listeners = Vec::with_capacity(config.nodes.len());
    for name in &config.nodes {
        let (host, port) = config.cluster.listen_addr(name)?;
        listeners.push(listen(name, &host, port).await?);
    }
    serve_on(config, listeners)
}

/// Bind every hosted node on a port the OS picks, and place the nodes there: the cluster's
/// URLs for them are replaced. For in-process clusters (the explorer, tests).
pub async fn bind_ephemeral(mut config: Config) -> Result<Bound, ServerError> {
    if config.nodes.is_empty() {
        return Err(ServerError::NoNodes);
    }
    let mut listeners = Vec::with_capacity(config.nodes.len());
    for name in &config.nodes {
        let listener = listen(name, config.cluster.host(), 0).await?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let url = format!("http://{}:{port}/", config.cluster.host());
        config.cluster = config.cluster.with_peer(name, &url)?;
        listeners.push(listener);
    }
    serve_on(config, listeners)
}

async fn listen(name: &str, host: &str, port: u16) -> Result<TcpListener, ServerError> {
    let addr = format!("{host}:{port}");
    TcpListener::bind(&addr)
        .await
        .map_err(|source| ServerError::Bind {
            name: name.to_string(),
            addr,
            source,
        })
}

/// The node states for `config.nodes`, served on `listeners` (same order).
fn serve_on(config: Config, listeners: Vec<TcpListener>) -> Result<Bound, ServerError> {
    let cluster = Arc::new(config.cluster.clone());
    let peers = Peers::new(config.limits.rpc_timeout)?.with_codec(config.codec);
    let recorder = Arc::new(Recorder::with_capacity(config.limits.trace_events));
    let mut nodes = Vec::with_capacity(config.nodes.len());
    for (name, listener) in config.nodes.iter().zip(listeners) {
        let mut node = Node::new(name.clone(), config.faulty.contains(name))
            .with_max_senders(config.limits.max_senders)
            .with_receivers(cluster.members())
            .with_seed(config.seed);
        if let Some((_, b)) = config.behaviours.iter().rev().find(|(n, _)| n == name) {
            node = node.with_behaviour(b.clone());
        }
        let behaviour = node.behaviour().clone();
        let engine = Engine::new(
            name,
            behaviour.clone(),
            config.seed,
            cluster.clone(),
            peers.clone(),
            recorder.clone(),
            crate::agreement::engine::Budgets {
                run_messages: config.limits.max_run_messages,
                runs: config.limits.max_runs,
            },
        )
        .map_err(ServerError::Engine)?;
        let general = Arc::new(General {
            node: Mutex::new(node),
            print: config.print,
            recorder: recorder.clone(),
            cluster: cluster.clone(),
            peers: peers.clone(),
        });
        let engine = Arc::new(engine);
        let state = NodeState {
            table: methods::table(general.clone(), engine.clone()),
            general,
            engine,
            delay: behaviour.delay(),
            limits: config.limits.clone(),
            codec: config.codec,
        };
        nodes.push((Arc::new(state), listener));
    }
    Ok(Bound { nodes, config })
}

impl Bound {
    /// Where every node lives, hosted ones included (after [`bind_ephemeral`], their real
    /// ports).
    pub fn cluster(&self) -> &Cluster {
        &self.config.cluster
    }

    /// The agreement engine of each hosted node, by name in startup order: the in-process
    /// explorer changes their behaviours between runs ([`Engine::set_behaviour`]).
    pub fn engines(&self) -> Vec<(String, Arc<Engine>)> {
        self.nodes
            .iter()
            .map(|(s, _)| (s.general.lock().name().to_string(), s.engine.clone()))
            .collect()
    }

    /// The bound address of each hosted node, in startup order.
    pub fn addrs(&self) -> Vec<(String, SocketAddr)> {
        self.nodes
            .iter()
            .filter_map(|(s, l)| Some((s.general.lock().name().to_string(), l.local_addr().ok()?)))
            .collect()
    }

    /// Print the startup lines and serve until `shutdown` resolves; then stop accepting, let
    /// in-flight requests finish (for at most the request timeout) and return.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        if self.config.print {
            for (name, addr) in self.addrs() {
                print_line(&protocol::printed::running_line(&name, addr.port()));
            }
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for (state, listener) in self.nodes {
            let stop = stop_rx.clone();
            let log = !self.config.quiet;
            tasks.spawn(serve_node(state, listener, log, stop));
        }
        shutdown.await;
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
    }
}

/// Bind and serve until `shutdown` (what the `server` binary does).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    bind(config).await?.run(shutdown).await;
    Ok(())
}

async fn serve_node(
    state: Arc<NodeState>,
    listener: TcpListener,
    log: bool,
    mut stop: watch::Receiver<bool>,
) {
    let request_timeout = state.limits.request_timeout;
    let router = router(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(request_timeout)
        .keep_alive(true);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let router = router.clone();
            let line = log.then(|| format!("{} {} {:?}", req.method(), req.uri(), req.version()));
            async move {
                let response = router.oneshot(req).await?;
                if let Some(line) = line {
                    access_log(remote, &line, response.status());
                }
                Ok::<_, Infallible>(response)
            }
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection from {remote}: {e}");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(request_timeout, graceful.shutdown()).await;
}

fn router(state: Arc<NodeState>) -> Router {
    let rpc = post(rpc).fallback(not_implemented);
    let mut router = Router::new();
    for path in protocol::RPC_PATHS {
        router = router.route(path, rpc.clone());
    }
    router.fallback(no_such_page).with_state(state)
}

/// Python answers POST on other paths with 404 and every other method with 501.
async fn no_such_page(method: Method) -> Response<Body> {
    if method == Method::POST {
        plain(StatusCode::NOT_FOUND, protocol::NO_SUCH_PAGE)
    } else {
        not_implemented(method).await
    }
}

async fn not_implemented(method: Method) -> Response<Body> {
    plain(
        StatusCode::NOT_IMPLEMENTED,
        &format!("Unsupported method ('{method}')"),
    )
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(text.to_string()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

async fn rpc(
    State(state): State<Arc<NodeState>>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let gzip_ok = accepts_gzip(&headers);
    let codec = state.codec;
    let xml = |result| xml_response(codec, result, gzip_ok);
    let body = match read_body(&state.limits, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(delay) = state.delay {
        // A `delay:MS` node answers late.
        tokio::time::sleep(delay).await;
    }
    xml(methods::answer(&state.table, state.codec, &body).await)
}

/// The request body within the limits, or the HTTP answer that refuses it.
async fn read_body(
    limits: &Limits,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, Response<Body>> {
    let Some(length) = headers.get(header::CONTENT_LENGTH) else {
        return Err(xml_response(
            Codec::Fast,
            Err(methods::python_fault(fault::python(
                "ValueError",
                "request has no Content-Length (chunked bodies are not accepted)",
            ))),
            false,
        ));
    };
    let too_large = || {
        plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body larger than {} bytes", limits.max_body),
        )
    };
    match length
        .to_str()
        .ok()
        .and_then(|l| l.trim().parse::<u64>().ok())
    {
        Some(n) if n > limits.max_body as u64 => {
            // Lingering close: a caller still sending would get a reset, not this answer, if
            // the connection closed on its unread body (Python: `BrokenPipeError` at 8 MB).
            drain(body, limits.request_timeout.min(LINGER_TIME)).await;
            let mut refused = too_large();
            refused
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Err(refused);
        }
        Some(_) => {}
        None => return Err(plain(StatusCode::BAD_REQUEST, "invalid Content-Length")),
    }
    let read = dxr_server::axum::body::to_bytes(body, limits.max_body);
    let bytes = match tokio::time::timeout(limits.request_timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return Err(too_large()),
        Err(_) => {
            return Err(plain(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time",
            ));
        }
    };
    match headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes()) {
        None | Some(b"identity") => Ok(bytes),
        Some(b"gzip") => gunzip(&bytes, limits.max_body)
            .map(Bytes::from)
            .map_err(|m| plain(StatusCode::BAD_REQUEST, &m)),
        Some(other) => Err(plain(
            StatusCode::NOT_IMPLEMENTED,
            &format!(
                "encoding {:?} not supported",
                String::from_utf8_lossy(other)
            ),
        )),
    }
}

/// Most a refused body is read for, in bytes: a caller sending more still gets a reset.
const LINGER_BYTES: usize = 256 * 1024 * 1024;
/// Longest a refused body is read for (or `--request-timeout`, if shorter).
const LINGER_TIME: Duration = Duration::from_secs(10);
/// A refused body is read only while it keeps coming: a pause this long ends it (a caller that
/// claims a terabyte and sends nothing gets its 413 after this).
const LINGER_IDLE: Duration = Duration::from_secs(1);

/// Read and drop `body` while it keeps coming, at most [`LINGER_BYTES`] of it and for at most
/// `within`, so that a caller still sending it reads our refusal before the connection closes
/// (the "lingering close" of nginx and Apache). Nothing is kept: memory does not grow with
/// the bytes dropped.
async fn drain(mut body: Body, within: Duration) {
    use http_body_util::BodyExt;
    let mut seen = 0usize;
    let _ = tokio::time::timeout(within, async {
        while let Ok(Some(Ok(frame))) = tokio::time::timeout(LINGER_IDLE, body.frame()).await {
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > LINGER_BYTES {
                break;
            }
        }
    })
    .await;
}

/// Decompress a gzip body, refusing (HTTP 400) when it would exceed `max` bytes: the output is
/// read through a `take`, so a gzip bomb never allocates more than `max + 1` bytes.
fn gunzip(compressed: &[u8], max: usize) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    // Every member, as Python's `gzip.decompress` does (`cat a.gz b.gz` is one valid body).
    match flate2::read::MultiGzDecoder::new(compressed)
        .take(limit)
        .read_to_end(&mut out)
    {
        Ok(_) if out.len() > max => Err(format!("decompressed body larger than {max} bytes")),
        Ok(_) => Ok(out),
        Err(e) => Err(format!("error decoding gzip content: {e}")),
    }
}

/// Python's server gzips answers above this size when the client accepts gzip.
const GZIP_THRESHOLD: usize = 1400;

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// An XML-RPC answer: a value, or a fault with Python's code; gzipped like Python's when large.
fn xml_response(codec: Codec, result: Result<Value, Fault>, gzip_ok: bool) -> Response<Body> {
    let body = methods::answer_body(codec, result);
    let gzipped = if gzip_ok && body.len() > GZIP_THRESHOLD {
        gzip(body.as_bytes())
    } else {
        None
    };
    let mut r = match gzipped {
        Some(z) => {
            let mut r = Response::new(Body::from(z));
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        }
        None => Response::new(Body::from(body)),
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    r
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).ok()?;
    enc.finish().ok()
}

/// The original's stdout lines: output, not logs, so they always go to stdout, in order,
/// through [`console`](crate::console)'s queue (a stalled stdout never blocks the caller).
pub fn print_line(line: &str) {
    crate::console::print_line(line);
}

fn access_log(remote: SocketAddr, request_line: &str, status: StatusCode) {
    use std::io::Write;
    let ip = remote.ip().to_string();
    let line = protocol::access_log_line(&ip, &log_time(), request_line, status.as_u16());
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The access log's timestamp, formatted once per second per thread (formatting local time
/// is the costly part of a log line under load).
fn log_time() -> String {
    use std::cell::RefCell;
    thread_local! {
        static CACHE: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let now = chrono::Local::now();
    let second = now.timestamp();
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != second {
            *cache = (
                second,
                now.format(protocol::ACCESS_LOG_TIME_FORMAT).to_string(),
            );
        }
        cache.1.clone()
    })
}
