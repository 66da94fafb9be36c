//! A server process: its nodes assembled ([`hosted`], the one way a node is built), bound and
//! served through the crate's accept loop ([`accept`]) with Python's routes and limits
//! ([`http`]) and the access log ([`log`]), until a graceful and bounded shutdown. The
//! in-process test node ([`Offline`]) is the same node without a socket.

pub(crate) mod accept;
mod hosted;
mod http;
mod log;
mod offline;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dxr_server::axum::http::Request;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::agreement::engine::Engine;
use crate::behaviour::Behaviour;
use crate::cluster::{Cluster, ClusterError};
use crate::gate;
use crate::node;
use crate::peer::{self, PeerError};
use crate::protocol;
use crate::trace;
pub(crate) use accept::{Accept, Crowded};
use hosted::Hosted;
pub(crate) use log::print_line;
pub use offline::{OFFLINE_TIMEOUT, Offline, OfflineError};

/// Limits and timeouts of a server process. Every one has a flag in the `server` binary.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Timeout of each outgoing call (`--rpc-timeout`).
    pub(crate) rpc_timeout: Duration,
    /// Largest request body accepted (`--max-body`); beyond: HTTP 413.
    pub(crate) max_body: usize,
    /// Distinct senders a node stores (`--max-senders`).
    pub(crate) max_senders: usize,
    /// Time a client has to send a request's head, and to send its body.
    pub request_timeout: Duration,
    /// Node-to-node calls remembered for `trace_events` (`--trace-events`; 0 turns it off).
    pub(crate) trace_events: usize,
    /// Largest agreement run a node takes part in, in messages (`--max-run-messages`).
    pub(crate) max_run_messages: u64,
    /// Agreement runs a node remembers (`--max-runs`); beyond, only finished runs are
    /// forgotten, and a new run is refused while all are unfinished.
    pub(crate) max_runs: usize,
    /// Longest sender or decision a node stores or sends, in bytes (`--max-value`).
    pub(crate) max_value: usize,
    /// Bytes of stored messages per node (`--max-stored-bytes`).
    pub(crate) max_stored_bytes: usize,
    /// Bytes of node-to-node calls remembered for traces, per process (`--trace-bytes`).
    pub(crate) trace_bytes: usize,
    /// Connections the process serves at once (`--max-connections`); past it, HTTP 429.
    pub(crate) max_connections: usize,
    /// Connections one client address may hold (`--max-connections-per-client`).
    pub(crate) max_connections_per_client: usize,
    /// Bytes of request bodies received and not yet answered, per process
    /// (`--max-buffered-bytes`); past it, further bodies wait within the request timeout.
    pub(crate) buffered_bytes: usize,
    /// Bytes of answers not yet read by their callers, per process (`--max-answer-bytes`);
    /// past it, a large answer is replaced by a short fault.
    pub(crate) answer_bytes: usize,
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
    nodes: Vec<(Arc<Hosted>, TcpListener)>,
    config: Config,
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

/// The nodes of `config` (assembled as every node is, [`hosted::assemble`]), served on
/// `listeners` (same order).
fn serve_on(mut config: Config, listeners: Vec<TcpListener>) -> Result<Bound, ServerError> {
    let hosted = hosted::assemble(&mut config)?;
    let nodes = hosted.into_iter().map(Arc::new).zip(listeners).collect();
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
    pub(crate) fn addrs(&self) -> Vec<(String, SocketAddr)> {
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

/// Serve one node on `listener` until `stop` turns: the crate's accept loop with the
/// node's gate and timeouts, Python's routes, and the access log line of every request
/// (unless `log` is off).
async fn serve_node(
    state: Arc<Hosted>,
    listener: TcpListener,
    log: bool,
    mut stop: watch::Receiver<bool>,
) {
    let request_timeout = state.limits.request_timeout;
    let accept = Accept {
        gate: state.gate.clone(),
        head_timeout: request_timeout,
        keep_alive: true,
        half_close: true,
        nodelay: true,
        // A caller that stops reading its answers is dropped after the request timeout.
        // Sooner while others wait for room its unread answer holds.
        write_timeout: request_timeout,
        pressure: Some(state.answers.pressure()),
        crowded: Crowded::Answer(http::too_many),
        // Most of the request timeout: the `server` binary exits at the whole of it, whatever
        // still runs, and in-flight requests should be answered before then.
        drain: Some(request_timeout.mul_f64(0.8)),
        what: "connection",
    };
    let make = |remote: SocketAddr, conn_state: Arc<gate::ConnState>| {
        let state = state.clone();
        // The access log's client address, written once per connection.
        let ip: Option<Arc<str>> = log.then(|| remote.ip().to_string().into());
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let state = state.clone();
            let logged = ip.clone().map(|ip| (ip, log::request_line(&req)));
            // Not idle, so never closed to make room, while the request is in hand.
            let busy = conn_state.busy();
            async move {
                let response = http::route(&state, req).await;
                drop(busy);
                if let Some((ip, line)) = logged {
                    log::access_log(&ip, &line, response.status());
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let stopped = async move {
        let _ = stop.changed().await;
    };
    accept.serve(listener, make, stopped).await;
}
