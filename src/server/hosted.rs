//! One way to assemble a node: the general, its agreement engine, its method table and what
//! it shares with the other nodes of its process (the HTTP client, the trace recorder, the
//! connection gate, the byte budgets, the heavy turns). The server hosts what
//! [`assemble`] returns, and so does the in-process test node ([`super::Offline`]): a
//! property or fuzz case runs against the very node a server would serve.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dxr_server::HandlerMap;

use super::{Config, Limits, ServerError};
use crate::agreement::engine::{Budgets, Engine};
use crate::calls::Method;
use crate::dispatch;
use crate::gate::{self, ByteBudget, ConnGate};
use crate::methods::{self, General};
use crate::node::Node;
use crate::peer::Peers;
use crate::trace::Recorder;

/// Calls whose work grows with the node's data ([`dispatch::HEAVY_METHODS`]) built at once in
/// a process.
pub(crate) const HEAVY_BUILDS: usize = 2;

/// A node as its process hosts it: everything a request to it needs.
pub(crate) struct Hosted {
    pub(crate) general: Arc<General>,
    pub(crate) engine: Arc<Engine>,
    /// The node's methods (dxr_server handlers), behind [`dispatch::respond`].
    pub(crate) table: HandlerMap,
    pub(crate) delay: Option<Duration>,
    pub limits: Limits,
    /// The process's connections (shared by its nodes).
    pub(crate) gate: Arc<ConnGate>,
    /// Bytes of request bodies held by the process (shared by its nodes).
    pub(crate) bodies: ByteBudget,
    /// Bytes of answers not yet read (shared by its nodes).
    pub(crate) answers: ByteBudget,
    /// What each call may take of the process's heavy turns and answer budget.
    pub(crate) shares: dispatch::Shares,
}

impl std::fmt::Debug for Hosted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosted")
            .field("general", &self.general)
            .finish_non_exhaustive()
    }
}

/// The general `name` of `config`, fresh: no message stored, its behaviour and limits as
/// configured (a later `--behaviour` for the same node wins).
pub(crate) fn general_of(config: &Config, name: &str) -> Node {
    let limits = &config.limits;
    let mut node = Node::new(name.to_string(), config.faulty.iter().any(|f| f == name))
        .with_max_senders(limits.max_senders)
        .with_byte_budget(limits.max_value, limits.max_stored_bytes)
        .with_receivers(config.cluster.members())
        .with_seed(config.seed);
    if let Some((_, b)) = config.behaviours.iter().rev().find(|(n, _)| n == name) {
        node = node.with_behaviour(b.clone());
    }
    node
}

/// Every node of `config.nodes`, in order, sharing one process's client, recorder, gate and
/// budgets. A hosted node is made a node of the cluster even when the port rule alone places
/// it (`config.cluster` is updated).
pub(crate) fn assemble(config: &mut Config) -> Result<Vec<Hosted>, ServerError> {
    config.cluster = std::mem::take(&mut config.cluster).with_known(&config.nodes);
    let config = &*config;
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
    for name in &config.nodes {
        let node = general_of(config, name);
        let behaviour = node.behaviour().clone();
        let engine = Engine::new(
            name,
            behaviour.clone(),
            config.seed,
            cluster.clone(),
            peers.clone(),
            recorder.clone(),
            Budgets {
                run_messages: limits.max_run_messages,
                runs: limits.max_runs,
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
        nodes.push(Hosted {
            table: methods::table(general.clone(), engine.clone()),
            general,
            engine,
            delay: behaviour.delay(),
            limits: limits.clone(),
            gate: conn_gate.clone(),
            bodies: bodies.clone(),
            answers: answers.clone(),
            shares,
        });
    }
    Ok(nodes)
}

/// About the size of a heavy method's answer before it is built: what it copies (the node's
/// stored messages, or the process's trace) plus a little. Exact once written.
fn answer_hint(general: Arc<General>) -> Box<dyn Fn(Method) -> usize + Send + Sync> {
    Box::new(move |method| {
        let copied = match method {
            Method::GetMessages => general.lock().stored_bytes(),
            Method::TraceEvents => general.recorder.bytes(),
            _ => 0,
        };
        copied + gate::SMALL_ANSWER
    })
}
