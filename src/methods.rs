//! A node's method table: one `dxr_server::Handler` per XML-RPC method (the original three,
//! `get_messages` and the extensions) in one `dxr_server::HandlerMap`. The request path that
//! reads a body, looks the method up here and renders the answer is
//! [`dispatch`](crate::dispatch).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dxr::{Fault, Value};
use dxr_server::axum::http::HeaderMap;
use dxr_server::{Handler, HandlerMap, HandlerResult, async_trait};

use crate::agreement::engine::Engine;
use crate::calls::{Call, Method};
use crate::cluster::Cluster;
use crate::node::{Node, Step};
use crate::peer::{PeerError, Peers};
use crate::protocol;
use crate::protocol::fault::PyFault;
use crate::trace::{self, Recorder};

/// What the handlers of the original methods share: the general and how it reaches others.
#[derive(Debug)]
pub(crate) struct General {
    /// The node's state (held only for one synchronous step, never across a call).
    pub(crate) node: Mutex<Node>,
    /// Print the original's stdout lines (off for in-process clusters).
    pub(crate) print: bool,
    /// Where node-to-node calls are recorded.
    pub(crate) recorder: Arc<Recorder>,
    /// Where every node lives.
    pub(crate) cluster: Arc<Cluster>,
    /// Outgoing calls.
    pub(crate) peers: Peers,
    /// Turns to forward a `send_message` (shared by the process's nodes, see
    /// [`MAX_FORWARDS`]).
    pub(crate) forwards: Arc<tokio::sync::Semaphore>,
}

/// `send_message` calls a process forwards at once; more wait for a turn (within the call's
/// timeout). Each forward may read a reply up to the node's reply cap, so this bounds what
/// replies in flight can hold (RELIABILITY.md, worst-case memory).
pub(crate) const MAX_FORWARDS: usize = 256;

impl General {
    /// The node, locked. A panic while holding the lock cannot leave a half-written map entry
    /// behind (each update is one insert), so a poisoned lock is still safe to use.
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Node> {
        self.node.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One of the original methods (or `get_messages`) of one general.
struct Original {
    general: Arc<General>,
    method: Method,
}

#[async_trait]
impl Handler for Original {
    async fn handle(&self, params: &[Value], _headers: HeaderMap) -> HandlerResult {
        let g = &self.general;
        let call = Call::decode(self.method, params).map_err(python_fault)?;
        let step = g.lock().handle(&call, |v| g.cluster.resolve(v));
        match step {
            Step::Reply { result, print } => {
                if let Some(line) = print.filter(|_| g.print) {
                    crate::console::print_line(line);
                }
                result.map_err(python_fault)
            }
            Step::Forward(f) => {
                if g.print {
                    crate::console::print_line(&f.print);
                }
                let forwarded = Call::ReceiveMessage {
                    sender: Value::String(f.sender.clone()),
                    decision: Value::String(f.decision),
                };
                let (method, args) = forwarded.into_wire();
                let start_us = trace::now_us();
                let timeout = g.peers.timeout();
                // The peer's own slot first, then the process's turn: calls to a dead peer
                // wait among themselves, not ahead of calls to live ones (`Peers::slot`).
                let result = match g.peers.slot(&f.target).await {
                    Err(e) => Err(e),
                    Ok(slot) => match tokio::time::timeout(timeout, g.forwards.acquire()).await {
                        Ok(_turn) => {
                            let result = (g.peers).call(&f.target, method.name(), &args).await;
                            slot.finish(&result);
                            result
                        }
                        Err(_) => Err(PeerError::Timeout(timeout)),
                    },
                };
                if g.recorder.is_on() {
                    let args = trace::to_json(&Value::Array(args.to_vec()));
                    let recorded = result.as_ref().map_err(|e| e.python_fault()).cloned();
                    let event = trace::Event::call(
                        trace::ORIGINAL_RUN,
                        &f.sender,
                        &f.recipient,
                        method,
                        args,
                        &recorded,
                    );
                    g.recorder.record(event.at(start_us, trace::now_us()));
                }
                // As CPython's server: the peer's fault goes back to our caller as it is (its
                // code and string), any other failure as the exception's fault.
                match result {
                    Ok(_) => Ok(Value::String(f.line)),
                    Err(e) => Err(e.into_fault()),
                }
            }
        }
    }
}

/// One agreement method, answered by the node's agreement engine.
struct Extension {
    engine: Arc<Engine>,
    method: Method,
}

#[async_trait]
impl Handler for Extension {
    async fn handle(&self, params: &[Value], _headers: HeaderMap) -> HandlerResult {
        let call = Call::decode(self.method, params).map_err(python_fault)?;
        self.engine.call(call).await.map_err(python_fault)
    }
}

/// The method table of one general: every [`Method`] but `system.multicall`, which the
/// request path answers by calling this table ([`crate::dispatch`]). Nothing else is
/// callable, as in the original (no other `system.*`).
pub(crate) fn table(general: Arc<General>, engine: Arc<Engine>) -> HandlerMap {
    let mut map: HashMap<&'static str, Box<dyn Handler>> = HashMap::new();
    for method in Method::ALL {
        let handler: Box<dyn Handler> = match method {
            Method::Multicall => continue,
            m if m.is_original() => Box::new(Original {
                general: general.clone(),
                method,
            }),
            _ => Box::new(Extension {
                engine: engine.clone(),
                method,
            }),
        };
        map.insert(method.name(), handler);
    }
    Arc::new(map)
}

/// A fault as the original raises it: code 1 and the `<class '...'>` string (which the
/// [`protocol::fault`] functions have already cut to [`protocol::fault::MAX_FAULT`] bytes).
/// Every fault a node answers, alone or inside a `system.multicall`, goes out through here.
pub fn python_fault(fault: PyFault) -> Fault {
    Fault::new(protocol::FAULT_CODE, fault.into_string())
}
