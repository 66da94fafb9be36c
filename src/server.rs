//! HTTP and XML-RPC glue: one listener per hosted node, the routes Python serves, limits and
//! timeouts, each body through [`dispatch`], the access log, and graceful shutdown.
//!
//! Connections are served with hyper's HTTP/1 connection builder (not `axum::serve`) because
//! it can time out a client that never finishes its request head. Routing is [`route`], a
//! `match` on the method and the path: Python's routes are two paths and two refusals, and an
//! axum `Router` in front of them cost a measurable share of a call (BENCHMARKS.md, "Close to
//! the limit"). Each request body goes through
//! [`dispatch::respond`] (decode, route through the node's `dxr_server` method table
//! ([`methods`]), render); this file holds what is HTTP about it: the body and answer budgets,
//! gzip, the heavy-request turns.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use dxr_server::HandlerMap;
use dxr_server::axum::http::{
    HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::agreement::engine::Engine;
use crate::behaviour::Behaviour;
use crate::cluster::{Cluster, ClusterError};
use crate::dispatch;
use crate::gate::{self, ByteBudget, ConnGate};
use crate::methods::{self, General};
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
    /// Agreement runs a node remembers (`--max-runs`); beyond, only finished runs are
    /// forgotten, and a new run is refused while all are unfinished.
    pub max_runs: usize,
    /// Longest sender or decision a node stores or sends, in bytes (`--max-value`).
    pub max_value: usize,
    /// Bytes of stored messages per node (`--max-stored-bytes`).
    pub max_stored_bytes: usize,
    /// Bytes of node-to-node calls remembered for traces, per process (`--trace-bytes`).
    pub trace_bytes: usize,
    /// Connections the process serves at once (`--max-connections`); past it, HTTP 429.
    pub max_connections: usize,
    /// Connections one client address may hold (`--max-connections-per-client`).
    pub max_connections_per_client: usize,
    /// Bytes of request bodies received and not yet answered, per process
    /// (`--max-buffered-bytes`); past it, further bodies wait within the request timeout.
    pub buffered_bytes: usize,
    /// Bytes of answers not yet read by their callers, per process (`--max-answer-bytes`);
    /// past it, a large answer is replaced by a short fault.
    pub answer_bytes: usize,
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
            max_value: node::DEFAULT_MAX_VALUE,
            max_stored_bytes: node::DEFAULT_MAX_STORED_BYTES,
            trace_bytes: trace::DEFAULT_MAX_BYTES,
            max_connections: gate::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: gate::DEFAULT_MAX_PER_CLIENT,
            buffered_bytes: gate::DEFAULT_BUFFERED_BYTES,
            answer_bytes: gate::DEFAULT_ANSWER_BYTES,
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
    #[error("cannot bind node {name} on {addr}: {error}{}", bind_hint(error))]
    Bind {
        /// The node.
        name: String,
        /// host:port tried.
        addr: String,
        /// The OS error (shown once, in this message: not a `source`).
        error: std::io::Error,
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
    /// The node's methods (dxr_server handlers), behind [`dispatch::respond`].
    table: HandlerMap,
    delay: Option<Duration>,
    limits: Limits,
    /// The process's connections (shared by its nodes).
    gate: Arc<ConnGate>,
    /// Bytes of request bodies held by the process (shared by its nodes).
    bodies: ByteBudget,
    /// Bytes of answers not yet read (shared by its nodes).
    answers: ByteBudget,
    /// What each call may take of the process's heavy turns and answer budget.
    shares: dispatch::Shares,
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
        .map_err(|error| ServerError::Bind {
            name: name.to_string(),
            addr,
            error,
        })
}

/// What to do about a bind error, where there is a usual fix.
fn bind_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            "; is another server running? stop it, or pick another --port-base"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "; --host must be an address of this machine (or 0.0.0.0)"
        }
        std::io::ErrorKind::PermissionDenied => {
            "; ports below 1024 need privileges: pick a --port-base of 1024 or more"
        }
        _ => "",
    }
}

/// The node states for `config.nodes`, served on `listeners` (same order).
fn serve_on(mut config: Config, listeners: Vec<TcpListener>) -> Result<Bound, ServerError> {
    // A hosted node is a node of the cluster even when the port rule alone places it.
    config.cluster = config.cluster.with_known(&config.nodes);
    let cluster = Arc::new(config.cluster.clone());
    let limits = &config.limits;
    // A node's peers answer short strings and relay receipts; nothing they say legitimately
    // is larger than what this node accepts itself.
    let peers = Peers::new(limits.rpc_timeout)?.with_max_reply(limits.max_body.max(64 * 1024));
    let recorder =
        Arc::new(Recorder::with_capacity(limits.trace_events).with_max_bytes(limits.trace_bytes));
    let max_connections = match gate::fd_limit_half() {
        Some(half) => limits.max_connections.min(half),
        None => limits.max_connections,
    };
    let conn_gate = ConnGate::new(max_connections, limits.max_connections_per_client);
    let bodies = ByteBudget::new(limits.buffered_bytes);
    let answers = ByteBudget::new(limits.answer_bytes);
    let heavy = Arc::new(tokio::sync::Semaphore::new(HEAVY_BUILDS));
    let forwards = Arc::new(tokio::sync::Semaphore::new(methods::MAX_FORWARDS));
    let mut nodes = Vec::with_capacity(config.nodes.len());
    for (name, listener) in config.nodes.iter().zip(listeners) {
        let mut node = Node::new(name.clone(), config.faulty.contains(name))
            .with_max_senders(config.limits.max_senders)
            .with_byte_budget(config.limits.max_value, config.limits.max_stored_bytes)
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
            forwards: forwards.clone(),
        });
        let engine = Arc::new(engine);
        let shares = dispatch::Shares {
            heavy: heavy.clone(),
            answers: answers.clone(),
            hint: answer_hint(general.clone()),
        };
        let state = NodeState {
            table: methods::table(general.clone(), engine.clone()),
            general,
            engine,
            delay: behaviour.delay(),
            limits: config.limits.clone(),
            gate: conn_gate.clone(),
            bodies: bodies.clone(),
            answers: answers.clone(),
            shares,
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
    let conn_gate = state.gate.clone();
    let pressure = state.answers.pressure();
    let refusing = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(request_timeout)
        .keep_alive(true)
        // A caller may send its request and shut its write side (`shutdown(SHUT_WR)`), as
        // CPython's server allows: hyper's default takes that end of input for a caller gone
        // and drops the request, answered or not (one call in nine, stored or not).
        .half_close(true);
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
        let entered = match conn_gate.enter_soon(remote.ip()).await {
            Ok(entered) => entered,
            Err(crowded) => {
                refuse(stream, crowded.message(remote.ip()), &refusing);
                continue;
            }
        };
        let state = state.clone();
        // The access log's client address, written once per connection.
        let ip: Option<Arc<str>> = log.then(|| remote.ip().to_string().into());
        let conn_state = entered.state();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let state = state.clone();
            let logged = ip.clone().map(|ip| (ip, request_line(&req)));
            // Not idle, so never closed to make room, while the request is in hand.
            let busy = conn_state.busy();
            async move {
                let response = route(&state, req).await;
                drop(busy);
                if let Some((ip, line)) = logged {
                    access_log(&ip, &line, response.status());
                }
                Ok::<_, Infallible>(response)
            }
        });
        // A caller that stops reading its answers is dropped after the request timeout.
        // Sooner while others wait for room its unread answer holds.
        let io = TokioIo::new(
            gate::WriteTimeout::new(entered.watch(stream), request_timeout)
                .with_pressure(pressure.clone()),
        );
        let conn = http.serve_connection(io, service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Closed when the gate needs its place for a new connection while it is idle.
            tokio::select! {
                served = conn => if let Err(e) = served {
                    tracing::debug!("connection from {remote}: {e}");
                },
                () = entered.evicted() => {
                    tracing::debug!("closed idle connection from {remote} to make room");
                }
            }
            drop(entered);
        });
    }
    drop(listener);
    // Most of the request timeout: the `server` binary exits at the whole of it, whatever
    // still runs, and in-flight requests should be answered before then.
    let _ = tokio::time::timeout(request_timeout.mul_f64(0.8), graceful.shutdown()).await;
}

/// Connections being refused at once, at most; past it a crowded connection is closed
/// without an answer (each refusal holds a descriptor for up to a second).
const MAX_REFUSING: usize = 64;

/// Answer HTTP 429 on a connection the gate refused, and close it. The request head is read
/// first (for at most a second) so the caller reads the answer rather than a reset.
fn refuse(
    stream: tokio::net::TcpStream,
    message: String,
    refusing: &Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering;
    if refusing.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let refusing = refusing.clone();
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
            let mut r = plain(StatusCode::TOO_MANY_REQUESTS, &message);
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            async move { Ok::<_, Infallible>(r) }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(1))
            .keep_alive(false);
        let io = TokioIo::new(gate::WriteTimeout::new(stream, Duration::from_secs(1)));
        let _ =
            tokio::time::timeout(Duration::from_secs(2), http.serve_connection(io, service)).await;
        refusing.fetch_sub(1, Ordering::Relaxed);
    });
}

/// A node's HTTP answer: every body a node sends is bytes it has in full (hyper's `Full`, no
/// boxed body per answer).
type Answer = Response<Full<Bytes>>;

/// Python's routes: a POST to one of [`protocol::RPC_PATHS`] is a call; a POST elsewhere is
/// HTTP 404, any other method HTTP 501.
async fn route(state: &NodeState, req: Request<Incoming>) -> Answer {
    let rpc_path = protocol::RPC_PATHS.contains(&python_path(req.uri()).as_ref());
    match (req.method() == Method::POST, rpc_path) {
        (true, true) => {
            let (parts, body) = req.into_parts();
            rpc(state, &parts.headers, body).await
        }
        (true, false) => no_such_page(),
        (false, _) => not_implemented(req.method()),
    }
}

/// The path Python's `SimpleXMLRPCRequestHandler` compares with its `rpc_paths`: the request
/// target as sent, query included (`/RPC2?x=1` is no RPC path), a target in absolute form
/// whole (`http://host/RPC2` is none either), and leading slashes reduced to one (`//` is
/// `/`, as `http.server` reduces them).
fn python_path(uri: &hyper::Uri) -> std::borrow::Cow<'_, str> {
    if uri.scheme().is_some() {
        return std::borrow::Cow::Owned(uri.to_string());
    }
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    match target.starts_with("//") {
        true => std::borrow::Cow::Owned(format!("/{}", target.trim_start_matches('/'))),
        false => std::borrow::Cow::Borrowed(target),
    }
}

/// The access log's request line, `POST /RPC2 HTTP/1.1`, as Python's log shows it.
fn request_line(req: &Request<Incoming>) -> String {
    let uri = req.uri();
    let target = match (uri.scheme(), uri.path_and_query()) {
        (None, Some(pq)) => std::borrow::Cow::Borrowed(pq.as_str()),
        _ => std::borrow::Cow::Owned(uri.to_string()),
    };
    let version = match req.version() {
        hyper::Version::HTTP_10 => "HTTP/1.0",
        hyper::Version::HTTP_11 => "HTTP/1.1",
        other => return format!("{} {target} {other:?}", req.method()),
    };
    [req.method().as_str(), " ", &target, " ", version].concat()
}

/// Python answers POST on other paths with 404.
fn no_such_page() -> Answer {
    plain(StatusCode::NOT_FOUND, protocol::NO_SUCH_PAGE)
}

/// Python answers every method but POST with 501.
fn not_implemented(method: &Method) -> Answer {
    plain(
        StatusCode::NOT_IMPLEMENTED,
        &format!("Unsupported method ('{method}')"),
    )
}

fn plain(status: StatusCode, text: &str) -> Answer {
    let mut r = Response::new(Full::new(Bytes::copy_from_slice(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    name_server(&mut r);
    r
}

/// `Server: generals/VERSION` on every answer, as Python's server names itself: our client
/// keeps its connections open only to servers that serve connections concurrently, which it
/// knows ours by (`peer`'s `Connections`).
fn name_server(r: &mut Answer) {
    r.headers_mut()
        .insert(header::SERVER, HeaderValue::from_static(protocol::SERVER));
}

async fn rpc(state: &NodeState, headers: &HeaderMap, body: Incoming) -> Answer {
    let gzip_ok = accepts_gzip(headers);
    // The body's bytes are held against the process's budget until it is answered.
    let (body, _held) = match read_body(&state.limits, &state.bodies, headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(delay) = state.delay {
        // A `delay:MS` node answers late.
        tokio::time::sleep(delay).await;
    }
    // Calls whose work grows with what the node holds, not with the request (the stored
    // messages, the trace, an OM evaluation), alone or inside a batch, each take room for
    // their answer and then one of HEAVY_BUILDS turns of the process for their build
    // (`dispatch::Shares`): each takes a copy of the data (and its XML, several times the
    // data) before its answer's exact size is known.
    let answer = dispatch::respond_within(&state.table, &body, Some(&state.shares)).await;
    drop(body);
    xml_response(answer, gzip_ok, Some(&state.answers))
}

/// Calls whose work grows with the node's data ([`dispatch::HEAVY_METHODS`]) built at once in
/// a process.
pub const HEAVY_BUILDS: usize = 2;

/// About the size of a heavy method's answer before it is built: what it copies (the node's
/// stored messages, or the process's trace) plus a little. Exact once written.
fn answer_hint(general: Arc<General>) -> Box<dyn Fn(&str) -> usize + Send + Sync> {
    Box::new(move |method| {
        let copied = match method {
            protocol::GET_MESSAGES => general.lock().stored_bytes(),
            protocol::ext::TRACE_EVENTS => general.recorder.bytes(),
            _ => 0,
        };
        copied + gate::SMALL_ANSWER
    })
}

/// The request body within the limits, or the HTTP answer that refuses it.
async fn read_body(
    limits: &Limits,
    budget: &ByteBudget,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<(Bytes, Option<tokio::sync::OwnedSemaphorePermit>), Answer> {
    let length = match declared_length(limits, headers) {
        Ok(length) => length,
        Err(Refusal::Answer(r)) => return Err(*r),
        Err(Refusal::TooLarge) => {
            // Lingering close: a caller still sending would get a reset, not this answer, if
            // the connection closed on its unread body (Python: `BrokenPipeError` at 8 MB).
            drain(body, limits.request_timeout.min(LINGER_TIME)).await;
            let mut refused = too_large(limits);
            refused
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Err(refused);
        }
    };
    let encoding = content_encoding(headers);
    let gzipped = encoding.as_deref() == Some("gzip");
    let held = hold_room(limits, budget, length, gzipped).await?;
    let mut read = std::pin::pin!(http_body_util::Limited::new(body, limits.max_body).collect());
    // A body that has already arrived (nearly every call: it comes with its head) is taken
    // without making a timeout, whose clock reading and runtime lookup cost a share of a call
    // (BENCHMARKS.md, "Close to the limit"); one still on its way is read within the timeout.
    let ready = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
    let read = match ready {
        Poll::Ready(read) => Ok(read),
        Poll::Pending => tokio::time::timeout(limits.request_timeout, read).await,
    };
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => return Err(too_large(limits)),
        Err(_) => {
            return Err(plain(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time",
            ));
        }
    };
    match encoding.as_deref() {
        None | Some("identity") => Ok((bytes, held)),
        Some("gzip") => gunzip(&bytes, limits.max_body)
            .map(|b| (Bytes::from(b), held))
            .map_err(|m| plain(StatusCode::BAD_REQUEST, &m)),
        Some(other) => Err(plain(
            StatusCode::NOT_IMPLEMENTED,
            &format!("encoding {other:?} not supported"),
        )),
    }
}

/// The request's `Content-Encoding` in lower case, as Python's handler compares it (`GZIP`
/// is gzip); `None` when there is none.
fn content_encoding(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_ENCODING)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_lowercase())
}

/// Why a request's declared length refuses it.
enum Refusal {
    /// Over `--max-body`: answered 413 once the body has been drained.
    TooLarge,
    /// Any other answer, at once.
    Answer(Box<Answer>),
}

/// The body's `Content-Length`, within the cap: no length is a fault (as Python's server has
/// no chunked reader), a bad one HTTP 400.
fn declared_length(limits: &Limits, headers: &HeaderMap) -> Result<usize, Refusal> {
    let Some(length) = headers.get(header::CONTENT_LENGTH) else {
        let refused = fault::python(
            "ValueError",
            "request has no Content-Length (chunked bodies are not accepted)",
        );
        let answer = dispatch::render(Err(methods::python_fault(refused)));
        let answer = xml_response(unheld(answer), false, None);
        return Err(Refusal::Answer(Box::new(answer)));
    };
    match length
        .to_str()
        .ok()
        .and_then(|l| l.trim().parse::<u64>().ok())
    {
        Some(n) if n > limits.max_body as u64 => Err(Refusal::TooLarge),
        Some(n) => Ok(n as usize),
        None => Err(Refusal::Answer(Box::new(plain(
            StatusCode::BAD_REQUEST,
            "invalid Content-Length",
        )))),
    }
}

fn too_large(limits: &Limits) -> Answer {
    plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body larger than {} bytes", limits.max_body),
    )
}

/// Room in the process's body budget for a body of `length` bytes: itself, and its
/// decompressed form (at most the cap) when gzipped. Small plain bodies (every call of the
/// original) are not counted: the connection cap bounds them, and callers trickling large
/// bodies must not make them wait. No room within the request timeout: HTTP 408.
async fn hold_room(
    limits: &Limits,
    budget: &ByteBudget,
    length: usize,
    gzipped: bool,
) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Answer> {
    let holds = length + if gzipped { limits.max_body } else { 0 };
    if holds <= gate::SMALL_BODY {
        return Ok(None);
    }
    match budget.hold(holds, limits.request_timeout).await {
        Some(permit) => Ok(Some(permit)),
        None => Err(plain(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "request bodies being handled hold {} bytes (server --max-buffered-bytes); try again",
                budget.bytes()
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
async fn drain(mut body: Incoming, within: Duration) {
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

fn unheld(body: String) -> dispatch::Answered {
    dispatch::Answered { body, held: None }
}

/// The HTTP response carrying a rendered XML-RPC `answer`;
/// gzipped like Python's when large. An answer larger than [`gate::SMALL_ANSWER`] holds its
/// bytes against `budget` until it has been written (or its connection dropped): the room
/// taken before it was built, fitted to its size; when the budget has no room for it, a
/// short fault is answered instead.
fn xml_response(answer: dispatch::Answered, gzip_ok: bool, budget: Option<&ByteBudget>) -> Answer {
    let dispatch::Answered { body, held } = answer;
    let body = body.into_bytes();
    let (body, gzipped) = match gzip_ok && body.len() > GZIP_THRESHOLD {
        true => match gzip(&body) {
            Some(z) => (z, true),
            None => (body, false),
        },
        false => (body, false),
    };
    let body = match budget.filter(|_| body.len() > gate::SMALL_ANSWER) {
        None => Bytes::from(body),
        Some(budget) => {
            let fitted = match held {
                Some(room) => budget.resize(room, body.len()).ok(),
                None => budget.try_hold(body.len()),
            };
            match fitted {
                Some(permit) => gate::held_bytes(body, permit),
                None => {
                    drop(body);
                    let busy = fault::answers_full(budget.bytes());
                    let answer = dispatch::render(Err(methods::python_fault(busy)));
                    return xml_response(unheld(answer), false, None);
                }
            }
        }
    };
    let mut r = Response::new(Full::new(body));
    if gzipped {
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    name_server(&mut r);
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

fn access_log(ip: &str, request_line: &str, status: StatusCode) {
    let line =
        with_log_time(|when| protocol::access_log_line(ip, when, request_line, status.as_str()));
    crate::console::log_line(line);
}

/// `f` of the access log's timestamp, formatted once per second per thread. The second is
/// read from the system clock and local time is only worked out when it changes: formatting
/// local time, and even finding the local offset (`chrono::Local::now`), is the costly part of
/// a log line under load (BENCHMARKS.md, "Close to the limit").
fn with_log_time<T>(f: impl FnOnce(&str) -> T) -> T {
    use std::cell::RefCell;
    thread_local! {
        static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = std::time::SystemTime::now();
    let second = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != second {
            let text = chrono::DateTime::<chrono::Local>::from(now)
                .format(protocol::ACCESS_LOG_TIME_FORMAT)
                .to_string();
            *cache = (second, text);
        }
        f(&cache.1)
    })
}
