//! A node's method table: one `dxr_server::Handler` per XML-RPC method (the original three,
//! `get_messages` and the extensions) in one `dxr_server::HandlerMap`, and the small front
//! that reads a request body, looks the method up and answers Python's faults.
//!
//! Why a front of our own: `dxr_server::server` answers an unknown method with fault 404, a
//! bad body with fault 400 quoting the whole body, and a missing Content-Length with HTTP 411,
//! and has no hook for a fallback; the original answers all of these with fault code 1 and
//! `<class '...'>` strings (PROTOCOL.md). The handlers and the map are dxr_server's; only
//! [`answer`] is ours.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dxr::{Fault, FaultResponse, MethodResponse, Value};
use dxr_server::axum::http::HeaderMap;
use dxr_server::{Handler, HandlerMap, HandlerResult, async_trait};

use crate::agreement::engine::Engine;
use crate::cluster::Cluster;
use crate::node::{Node, Step};
use crate::peer::{PeerError, Peers};
use crate::protocol::fault::PyFault;
use crate::protocol::{self, fault};
use crate::trace::{self, Recorder};
use crate::xmlrpc::{self, DecodeError};

pub use crate::xmlrpc::Codec;

/// What the handlers of the original methods share: the general and how it reaches others.
#[derive(Debug)]
pub struct General {
    /// The node's state (held only for one synchronous step, never across a call).
    pub node: Mutex<Node>,
    /// Print the original's stdout lines (off for in-process clusters).
    pub print: bool,
    /// Where node-to-node calls are recorded.
    pub recorder: Arc<Recorder>,
    /// Where every node lives.
    pub cluster: Arc<Cluster>,
    /// Outgoing calls.
    pub peers: Peers,
    /// Turns to forward a `send_message` (shared by the process's nodes, see
    /// [`MAX_FORWARDS`]).
    pub forwards: Arc<tokio::sync::Semaphore>,
}

/// `send_message` calls a process forwards at once; more wait for a turn (within the call's
/// timeout). Each forward may read a reply up to the node's reply cap, so this bounds what
/// replies in flight can hold (RELIABILITY.md, worst-case memory).
pub const MAX_FORWARDS: usize = 256;

impl General {
    /// The node, locked. A panic while holding the lock cannot leave a half-written map entry
    /// behind (each update is one insert), so a poisoned lock is still safe to use.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Node> {
        self.node.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One of the original methods (or `get_messages`) of one general.
struct Original {
    general: Arc<General>,
    method: &'static str,
}

#[async_trait]
impl Handler for Original {
    async fn handle(&self, params: &[Value], _headers: HeaderMap) -> HandlerResult {
        let g = &self.general;
        let step = g
            .lock()
            .handle(self.method, params, |v| g.cluster.resolve(v));
        match step {
            Step::Reply { result, print } => {
                if let Some(line) = print.filter(|_| g.print) {
                    crate::console::print_line(&line);
                }
                result.map_err(python_fault)
            }
            Step::Forward(f) => {
                if g.print {
                    crate::console::print_line(&f.print);
                }
                let args = [Value::String(f.sender.clone()), Value::String(f.decision)];
                let start_us = trace::now_us();
                let timeout = g.peers.timeout();
                let result = match tokio::time::timeout(timeout, g.forwards.acquire()).await {
                    Ok(_turn) => {
                        g.peers
                            .call(&f.target, protocol::RECEIVE_MESSAGE, &args)
                            .await
                    }
                    Err(_) => Err(PeerError::Timeout(timeout)),
                };
                let result = result.map_err(|e| e.python_fault());
                if g.recorder.is_on() {
                    let args = trace::to_json(&Value::Array(args.to_vec()));
                    let event = trace::Event::call(
                        trace::ORIGINAL_RUN,
                        &f.sender,
                        &f.recipient,
                        protocol::RECEIVE_MESSAGE,
                        args,
                        &result,
                    );
                    g.recorder.record(event.at(start_us, trace::now_us()));
                }
                match result {
                    Ok(_) => Ok(Value::String(f.line)),
                    Err(e) => Err(python_fault(e)),
                }
            }
        }
    }
}

/// One extension method, answered by the node's agreement engine.
struct Extension {
    engine: Arc<Engine>,
    method: &'static str,
}

#[async_trait]
impl Handler for Extension {
    async fn handle(&self, params: &[Value], _headers: HeaderMap) -> HandlerResult {
        self.engine
            .call(self.method, params)
            .await
            .map_err(python_fault)
    }
}

/// The method table of one general: [`protocol::ORIGINAL_METHODS`] and
/// [`protocol::ext::METHODS`]. Nothing else is callable, as in the original (no `system.*`).
pub fn table(general: Arc<General>, engine: Arc<Engine>) -> HandlerMap {
    let mut map: HashMap<&'static str, Box<dyn Handler>> = HashMap::new();
    for method in protocol::ORIGINAL_METHODS {
        let general = general.clone();
        map.insert(method, Box::new(Original { general, method }));
    }
    for method in protocol::ext::METHODS {
        let engine = engine.clone();
        map.insert(method, Box::new(Extension { engine, method }));
    }
    Arc::new(map)
}

/// The front: read `body` with `codec`, look the method up in `table`, run its handler. Every
/// failure is a fault with Python's code 1 and a `<class '...'>` string.
pub async fn answer(table: &HandlerMap, codec: Codec, body: &[u8]) -> Result<Value, Fault> {
    let call = match codec {
        Codec::Fast => xmlrpc::decode_call(body),
        Codec::Dxr => xmlrpc::decode_call_dxr(body),
    }
    .map_err(|e| python_fault(decode_fault(&e)))?;
    if call.name == protocol::MULTICALL {
        return multicall(table, call.params).await;
    }
    let Some(handler) = table.get(call.name.as_ref()) else {
        return Err(python_fault(fault::unsupported_method(&call.name)));
    };
    handler.handle(&call.params, HeaderMap::new()).await
}

/// `system.multicall`: each call of the batch through the table, in order, as Python's
/// `SimpleXMLRPCDispatcher.system_multicall` does (a failing call is a fault struct in its
/// place; a batch inside a batch is refused). At most [`protocol::MAX_BATCH`] calls.
async fn multicall(table: &HandlerMap, params: Vec<Value>) -> Result<Value, Fault> {
    let calls = match well_formed_batch(&params) {
        true => split_batch(params),
        false => dxr::multicall::from_multicall_params(params).map_err(|e| {
            python_fault(fault::python(
                "TypeError",
                &format!("{}: {e}", protocol::MULTICALL),
            ))
        })?,
    };
    if calls.len() > protocol::MAX_BATCH {
        return Err(python_fault(fault::python(
            "ValueError",
            &format!(
                "{} takes at most {} calls, not {}",
                protocol::MULTICALL,
                protocol::MAX_BATCH,
                calls.len()
            ),
        )));
    }
    let mut results = Vec::with_capacity(calls.len());
    for call in calls {
        let result = match call {
            Ok((name, params)) => match table.get(name.as_str()) {
                Some(handler) => handler.handle(&params, HeaderMap::new()).await,
                None => Err(python_fault(fault::unsupported_method(&name))),
            },
            Err(e) => Err(python_fault(fault::python("TypeError", &e.to_string()))),
        };
        results.push(result);
    }
    Ok(multicall_response(results))
}

/// Whether `params` is one array of `{methodName: string, params: array}` structs, the shape
/// every well-behaved batch has: then [`split_batch`] takes it apart without a copy.
/// Anything else goes to dxr's `from_multicall_params`, whose errors the faults quote.
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

/// What dxr's `from_multicall_params` returns for a [`well_formed_batch`], by moving the
/// values out instead of copying them (dxr's helper copies each call twice: a tenth of an
/// exploration's CPU).
#[allow(clippy::type_complexity)]
fn split_batch(mut params: Vec<Value>) -> Vec<Result<(String, Vec<Value>), dxr::Error>> {
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
                (Some(Value::String(name)), Some(Value::Array(params))) => Some(Ok((name, params))),
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
pub fn answer_body(codec: Codec, result: Result<Value, Fault>) -> String {
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
                Err(e) => answer_body(
                    Codec::Fast,
                    Err(python_fault(fault::python("ValueError", &e.to_string()))),
                ),
            }
        }
    }
}

/// The fault string for a body that is not a call we accept.
pub fn decode_fault(e: &DecodeError) -> PyFault {
    match e {
        DecodeError::Malformed(m) => fault::parse_error(m),
        DecodeError::Refused(m) => fault::python("ValueError", m),
        DecodeError::Type(m) => fault::python("TypeError", m),
    }
}

/// A fault as the original raises it: code 1 and the `<class '...'>` string (which the
/// [`fault`] functions have already cut to [`fault::MAX_FAULT`] bytes). Every fault a node
/// answers, alone or inside a `system.multicall`, goes out through here.
pub fn python_fault(fault: PyFault) -> Fault {
    Fault::new(protocol::FAULT_CODE, fault.into_string())
}
