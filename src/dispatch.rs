//! The request path: body -> decoded call -> the node's method table (original methods,
//! extensions, `system.multicall` batches of them) -> rendered `methodResponse`. The server
//! runs [`respond`] on every request body; the fuzz target and the property tests run the same
//! function through [`Offline`], a node whose peers are a port nobody listens on.
//!
//! Why a front of our own rather than `dxr_server::server`'s: that one answers an unknown
//! method with fault 404, a bad body with fault 400 quoting the whole body, and a missing
//! Content-Length with HTTP 411, and has no hook for a fallback; the original answers all of
//! these with fault code 1 and `<class '...'>` strings (docs/protocol.md). The handlers and the map
//! are dxr_server's ([`methods`]); decoding, routing and rendering are here.

use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use dxr::{Fault, FaultResponse, MethodResponse, Value};
use dxr_server::HandlerMap;
use dxr_server::axum::http::HeaderMap;

use crate::agreement::engine::{Budgets, Engine};
use crate::cluster::{Cluster, ClusterError};
use crate::methods::{self, Codec, General, python_fault};
use crate::node::Node;
use crate::peer::{PeerError, Peers};
use crate::protocol::{self, fault, python_type_name};
use crate::trace::{self, Recorder};
use crate::xmlrpc::{self, DecodeError};

/// The answer to one request body: decode it with `codec`, route the call (or each call of a
/// `system.multicall` batch) through `table`, run the handlers, and render the result or the
/// fault as the `methodResponse` text, with `codec`'s writer.
pub async fn respond(table: &HandlerMap, codec: Codec, body: &[u8]) -> String {
    render(codec, answer(table, codec, body).await)
}

/// Read `body` with `codec`, look the method up in `table`, run its handler. Every failure is
/// a fault as CPython's `SimpleXMLRPCDispatcher._marshaled_dispatch` makes it: code 1 and a
/// `<class '...'>` string, or the fault a `<fault>` body is.
async fn answer(table: &HandlerMap, codec: Codec, body: &[u8]) -> Result<Value, Fault> {
    let call = match codec {
        Codec::Fast => xmlrpc::decode_call(body),
        Codec::Dxr => xmlrpc::decode_call_dxr(body),
    }
    .map_err(|e| decode_fault(&e))?;
    if call.name == protocol::MULTICALL {
        return multicall(table, call.params).await;
    }
    let Some(handler) = table.get(call.name.as_ref()) else {
        return Err(python_fault(fault::unsupported_method(&call.name)));
    };
    handler.handle(&call.params, HeaderMap::new()).await
}

/// `system.multicall`, as CPython's `SimpleXMLRPCDispatcher.system_multicall` runs it: each
/// call of the list through the table, in order, a failing call a fault struct in its place.
/// The list and its entries are taken as Python takes them (a string is a sequence of
/// characters, a struct of its keys, `params` anything iterable), and what Python cannot
/// take (an entry without `methodName` or `params`, an entry that is not a struct) fails the
/// whole call at that entry, after the calls before it have run. Two differences, both
/// deliberate (README, divergences 12 and 13): a batch inside a batch is refused as an
/// unknown method, and a list of more than [`protocol::MAX_BATCH`] entries is refused.
async fn multicall(table: &HandlerMap, mut params: Vec<Value>) -> Result<Value, Fault> {
    if well_formed_batch(&params) {
        let calls = split_batch(params);
        check_batch_size(calls.len())?;
        let mut results = Vec::with_capacity(calls.len());
        for (name, params) in calls {
            let result = match table.get(name.as_str()) {
                Some(handler) => handler.handle(&params, HeaderMap::new()).await,
                None => Err(python_fault(fault::unsupported_method(&name))),
            };
            results.push(result);
        }
        return Ok(multicall_response(results));
    }
    if params.len() != 1 {
        return Err(python_fault(fault::multicall_arity(params.len())));
    }
    let list = params.pop().unwrap_or(Value::Nil);
    let entries = python_iter(list)
        .map_err(|t| python_fault(fault::python("TypeError", &fault::not_iterable(t))))?;
    check_batch_size(entries.len())?;
    let mut results = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Struct(mut members) = entry else {
            return Err(python_fault(fault::not_subscriptable(&entry)));
        };
        let name = members
            .remove("methodName")
            .ok_or_else(|| python_fault(fault::key_error("methodName")))?;
        let params = members
            .remove("params")
            .ok_or_else(|| python_fault(fault::key_error("params")))?;
        results.push(batch_call(table, name, params).await);
    }
    Ok(multicall_response(results))
}

/// One entry of a batch, as CPython's `_dispatch(method_name, params)`: a method name that
/// cannot be hashed is a `TypeError`, any other that is not a method's name is not
/// supported, and the method is called with `*params`.
async fn batch_call(table: &HandlerMap, name: Value, params: Value) -> Result<Value, Fault> {
    let name = match name {
        Value::String(name) => name,
        Value::Array(_) | Value::Struct(_) | Value::Base64(_) | Value::DateTime(_) => {
            return Err(python_fault(fault::unhashable(python_type_name(&name))));
        }
        other => {
            let shown = protocol::python_str(&other);
            return Err(python_fault(fault::unsupported_method(&shown)));
        }
    };
    let Some(handler) = table.get(name.as_str()) else {
        return Err(python_fault(fault::unsupported_method(&name)));
    };
    let args = python_iter(params).map_err(|t| python_fault(fault::args_not_iterable(&name, t)))?;
    handler.handle(&args, HeaderMap::new()).await
}

/// The items Python's `iter()` gives for a value: an array's items, a string's characters, a
/// struct's keys (in key order: dxr's structs keep no document order, README divergence 26);
/// for anything else, its type name (`int`, `NoneType`...), which is not iterable.
fn python_iter(value: Value) -> Result<Vec<Value>, &'static str> {
    match value {
        Value::Array(items) => Ok(items),
        Value::String(s) => Ok(s.chars().map(|c| Value::String(c.to_string())).collect()),
        Value::Struct(members) => Ok(members.into_keys().map(Value::String).collect()),
        other => Err(python_type_name(&other)),
    }
}

/// A batch of more than [`protocol::MAX_BATCH`] calls is refused (ours: a limit).
fn check_batch_size(len: usize) -> Result<(), Fault> {
    if len <= protocol::MAX_BATCH {
        return Ok(());
    }
    Err(python_fault(fault::python(
        "ValueError",
        &format!(
            "{} takes at most {} calls, not {len}",
            protocol::MULTICALL,
            protocol::MAX_BATCH,
        ),
    )))
}

/// Whether `params` is one array of `{methodName: string, params: array}` structs, the shape
/// every well-behaved batch has: then [`split_batch`] takes it apart without a copy. Anything
/// else is taken as Python takes it ([`multicall`]).
fn well_formed_batch(params: &[Value]) -> bool {
    match params {
        [Value::Array(calls)] => calls.iter().all(|c| {
            matches!(c, Value::Struct(m) if m.len() == 2
                && matches!(m.get("methodName"), Some(Value::String(_)))
                && matches!(m.get("params"), Some(Value::Array(_))))
        }),
        _ => false,
    }
}

/// The calls of a [`well_formed_batch`], taken apart by moving the values out instead of
/// copying them (dxr's `from_multicall_params` copies each call twice: a tenth of an
/// exploration's CPU).
fn split_batch(mut params: Vec<Value>) -> Vec<(String, Vec<Value>)> {
    let Some(Value::Array(calls)) = params.pop() else {
        return Vec::new();
    };
    calls
        .into_iter()
        .filter_map(|call| {
            let Value::Struct(mut m) = call else {
                return None;
            };
            match (m.remove("methodName"), m.remove("params")) {
                (Some(Value::String(name)), Some(Value::Array(params))) => Some((name, params)),
                _ => None,
            }
        })
        .collect()
}

/// The answer of `system.multicall`, as dxr's `into_multicall_response` writes it (`[value]`
/// for a result, `{faultCode, faultString}` for a fault), without its copies.
fn multicall_response(results: Vec<Result<Value, Fault>>) -> Value {
    Value::Array(
        results
            .into_iter()
            .map(|r| match r {
                Ok(value) => Value::Array(vec![value]),
                Err(f) => Value::Struct(
                    [
                        ("faultCode".to_string(), Value::Integer(f.code())),
                        (
                            "faultString".to_string(),
                            Value::String(f.string().to_string()),
                        ),
                    ]
                    .into(),
                ),
            })
            .collect(),
    )
}

/// The answer body for `result`, written by `codec`'s writer: Python's layout (fast), or
/// dxr's `MethodResponse`/`FaultResponse::to_xml` behind an XML declaration (dxr).
pub fn render(codec: Codec, result: Result<Value, Fault>) -> String {
    match (codec, result) {
        (Codec::Fast, Ok(value)) => xmlrpc::encode_response(&value),
        (Codec::Fast, Err(fault)) => xmlrpc::encode_fault(&fault),
        (Codec::Dxr, result) => {
            let xml = match result {
                Ok(value) => MethodResponse { value }.to_xml(),
                Err(fault) => FaultResponse { fault }.to_xml(),
            };
            match xml {
                Ok(xml) => format!("<?xml version=\"1.0\"?>\n{}", xmlrpc::xml_safe(xml)),
                // dxr cannot write the value: answer with a fault it can write.
                Err(e) => render(
                    Codec::Fast,
                    Err(python_fault(fault::python("ValueError", &e.to_string()))),
                ),
            }
        }
    }
}

/// The fault for a body that is not a call we accept: code 1 and the class CPython's server
/// names (`ExpatError` for malformed XML, `ValueError` for what we refuse on purpose, the
/// class of what CPython raises), or the fault a `<fault>` body is (cut as every fault).
pub fn decode_fault(e: &DecodeError) -> Fault {
    match e {
        DecodeError::Malformed(m) => python_fault(fault::parse_error(m)),
        DecodeError::Refused(m) => python_fault(fault::python("ValueError", m)),
        DecodeError::Python { class, message } => python_fault(fault::python(class, message)),
        DecodeError::Raised(f) => Fault::new(f.code(), fault::cut(f.string().to_string())),
    }
}

/// Timeout of an [`Offline`] node's outgoing calls: they are refused at once, this only bounds
/// what cannot happen.
pub const OFFLINE_TIMEOUT: Duration = Duration::from_secs(1);

/// One node with its method table, answering request bodies without a server and without any
/// possible network effect: every node of its cluster (P, Q, R, S and itself) is placed at a
/// local port that is bound but never listens, so a `send_message`, a round's relays or an SM
/// key fetch fail at once with the original's `ConnectionRefusedError`, and any other name is
/// refused without a connection ([`Cluster::url_of`]). Built as the server builds a hosted node
/// (`server::serve_on`), with the default limits and no stdout lines. For the fuzz target and
/// the property tests; [`Offline::respond`] blocks on a current-thread runtime of its own.
pub struct Offline {
    general: Arc<General>,
    engine: Arc<Engine>,
    table: HandlerMap,
    codec: Codec,
    runtime: tokio::runtime::Runtime,
    /// The port every member's URL names: held (bound, not listening) while the node lives,
    /// so nothing else can listen there.
    _closed: tokio::net::TcpSocket,
}

/// Why an [`Offline`] node could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// No runtime, or no local port to hold.
    #[error("offline node: {0}")]
    Io(#[from] std::io::Error),
    /// The closed port's URL was refused (cannot happen for `127.0.0.1`).
    #[error("offline node: {0}")]
    Cluster(#[from] ClusterError),
    /// The HTTP client could not be built.
    #[error("offline node: {0}")]
    Peer(#[from] PeerError),
    /// The agreement engine could not start (no randomness for its key).
    #[error("offline node: {0}")]
    Engine(String),
}

impl std::fmt::Debug for Offline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offline")
            .field("general", &self.general)
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

impl Offline {
    /// Node `name` (faulty in the original's sense if `faulty`) of the cluster P, Q, R, S (and
    /// `name`), reading bodies with the fast codec.
    pub fn new(name: &str, faulty: bool) -> Result<Self, OfflineError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let closed = {
            let _in_runtime = runtime.enter();
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(([127, 0, 0, 1], 0).into())?;
            socket
        };
        let url = format!("http://127.0.0.1:{}/", closed.local_addr()?.port());
        let mut cluster = Cluster::default().with_known(&[name.to_string()]);
        for member in cluster.members().to_vec() {
            cluster = cluster.with_peer(&member, &url)?;
        }
        let cluster = Arc::new(cluster);
        let peers = Peers::new(OFFLINE_TIMEOUT)?;
        let recorder = Arc::new(
            Recorder::with_capacity(trace::DEFAULT_MAX_EVENTS)
                .with_max_bytes(trace::DEFAULT_MAX_BYTES),
        );
        let node = Node::new(name, faulty).with_receivers(cluster.members());
        let engine = Engine::new(
            name,
            node.behaviour().clone(),
            0,
            cluster.clone(),
            peers.clone(),
            recorder.clone(),
            Budgets::default(),
        )
        .map_err(OfflineError::Engine)?;
        let general = Arc::new(General {
            node: std::sync::Mutex::new(node),
            print: false,
            recorder,
            cluster,
            peers,
            forwards: Arc::new(tokio::sync::Semaphore::new(methods::MAX_FORWARDS)),
        });
        let engine = Arc::new(engine);
        Ok(Offline {
            table: methods::table(general.clone(), engine.clone()),
            general,
            engine,
            codec: Codec::Fast,
            runtime,
            _closed: closed,
        })
    }

    /// The same node, reading bodies and writing answers with `codec`.
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The answer to `body`: [`respond`], as the server runs it.
    pub fn respond(&self, body: &[u8]) -> String {
        self.runtime
            .block_on(respond(&self.table, self.codec, body))
    }

    /// The node's state (stored messages, `finalize_decision`), locked: drop it before the
    /// next [`Offline::respond`].
    pub fn node(&self) -> MutexGuard<'_, Node> {
        self.general.lock()
    }

    /// Forget every stored message, as a fresh node (for tests that run many independent
    /// cases on one node: building one takes a runtime, a socket and a key).
    pub fn reset(&self) {
        let mut node = self.general.lock();
        *node = Node::new(node.name(), node.is_faulty()).with_receivers(self.cluster().members());
    }

    /// The node's agreement engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Where its peers are (all at the closed port).
    pub fn cluster(&self) -> &Cluster {
        &self.general.cluster
    }
}
