//! One run watched live: the form that asks for it, read and checked against the configured
//! cluster ([`RunRequest::parse`], pure: the run's parameters through the app's one check,
//! [`params::check`]); the run made by the app, whose typed events ([`app::events::Event`])
//! are handed on one by one as [`Item`]s, which the page receives as Server-Sent Events.
//!
//! An OM or SM run's messages come from the nodes' traces, read while the run goes
//! ([`app::agreement::run`], watched). An original run's messages come from the client's own
//! `send_message` calls as each is answered (the original `server.py` keeps no trace), as
//! `--svg` draws them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use crate::agreement::reply::NodeInfo;
use crate::app::agreement::Ran;
use crate::app::events::Event as Happened;
use crate::app::params::{self, Asked, ParamError};
use crate::app::{self};
use crate::behaviour::ATTACK;
use crate::calls::Call;
use crate::cluster::Cluster;
use crate::peer::Peers;
use crate::picture;
use crate::protocol;
use crate::runs::driver::{self, Protocol, RunOptions};
use crate::runs::original::{self, Said};
use crate::trace::{self, Event};
/// The longest value (order, decision) a run takes from a query, as the agreement runs'
/// nodes take at most 1 KiB values.
const MAX_VALUE: usize = 1024;
/// The longest pause between the original run's sends a query may ask for.
const MAX_DELAY_MS: u64 = 5_000;
/// The most nodes a replayed trace may name (the agreement runs' own limit).
pub(crate) const MAX_REPLAY_NODES: usize = 64;
/// The deepest OM run a replayed trace may be (the agreement runs' own limit, m <= 8).
const MAX_REPLAY_M: usize = 8;

/// A spawned task that is stopped when this handle is dropped: a run's own tasks end with it
/// (a page closed in the middle stops the run, see `ui::start_run`).
struct Owned<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a run's form cannot be used: the message names the parameter as the form does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FormError {
    /// A parameter no run takes.
    #[error("unknown parameter '{}': a run takes {}", clip(.0), PARAMETERS.join(", "))]
    Unknown(String),
    /// A parameter given twice.
    #[error("'{0}' is given twice")]
    Twice(String),
    /// No `run=`.
    #[error("no run given: add run=original, run=om or run=sm")]
    NoRun,
    /// A `run=` that names no run.
    #[error("run={}: not a run; use run=original, run=om or run=sm", clip(.0))]
    NotARun(String),
    /// A number out of its range.
    #[error("{key}={}: not a whole number from 0 to {max}", clip(.value))]
    Number {
        /// The parameter.
        key: &'static str,
        /// What was given.
        value: String,
        /// The largest it may be.
        max: u64,
    },
    /// A value of another set.
    #[error("{key}={}: use {}", clip(.value), .allowed.join(" or "))]
    OneOf {
        /// The parameter.
        key: &'static str,
        /// What was given.
        value: String,
        /// What it may be.
        allowed: Vec<&'static str>,
    },
    /// A value too long or empty.
    #[error("{key}: from 1 to {MAX_VALUE} bytes, not {len}")]
    Length {
        /// The parameter.
        key: &'static str,
        /// Its length.
        len: usize,
    },
    /// The commander is not a node of the cluster.
    #[error("commander={}: not a node of this cluster ({})", clip(.name), .nodes.join(", "))]
    Commander {
        /// The name given.
        name: String,
        /// The cluster's nodes.
        nodes: Vec<String>,
    },
    /// The cluster has no nodes.
    #[error("the cluster has no nodes")]
    NoNodes,
    /// The run's parameters, checked as every run's ([`params::check`]).
    #[error(transparent)]
    Run(ParamError),
}

impl From<ParamError> for FormError {
    /// The app's check, in the form's words where a parameter is named.
    fn from(e: ParamError) -> Self {
        match e {
            ParamError::Commander { name, nodes } => FormError::Commander { name, nodes },
            ParamError::Order(value) => FormError::OneOf {
                key: "order",
                value,
                allowed: params::ORDERS.to_vec(),
            },
            ParamError::NoNodes => FormError::NoNodes,
            e => FormError::Run(e),
        }
    }
}

/// Which run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The original scenario: all-to-all, then finalize.
    Original,
    /// OM(m) or SM(m).
    Agreement(Protocol),
}

/// A run the page asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunRequest {
    /// Which run.
    pub(crate) kind: Kind,
    /// Traitors to tolerate (OM/SM).
    pub(crate) m: usize,
    /// The commander (OM/SM).
    pub(crate) commander: String,
    /// The commander's order (OM/SM).
    pub(crate) order: String,
    /// The seed (OM/SM).
    pub(crate) seed: u64,
    /// Run below the bound.
    pub(crate) allow_unsafe: bool,
    /// The decision every node sends (original).
    pub(crate) decision: String,
    /// Pause after each send, in milliseconds (original).
    pub(crate) delay_ms: u64,
}

/// What a run may be asked with: the parameters a query may carry.
const PARAMETERS: &[&str] = &[
    "run",
    "m",
    "commander",
    "order",
    "seed",
    "allow_unsafe",
    "decision",
    "delay_ms",
];

impl RunRequest {
    /// Read a query (`run=om&m=1&commander=P&seed=42`) against the cluster's `nodes`: a clear
    /// message naming the parameter when a value cannot be used. `seed` defaults to a random
    /// one, `m` to 1, the commander to the first node, the order and decision to `attack`, the
    /// original's pause to its 100 ms.
    pub(crate) fn parse(
        query: &str,
        nodes: &[String],
        max_messages: u64,
        round_timeout: Duration,
    ) -> Result<RunRequest, FormError> {
        let mut given: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if !PARAMETERS.contains(&key.as_ref()) {
                return Err(FormError::Unknown(key.into_owned()));
            }
            if given.insert(key.to_string(), value.to_string()).is_some() {
                return Err(FormError::Twice(key.into_owned()));
            }
        }
        let get = |k: &str| given.get(k).map(String::as_str);
        let kind = match get("run") {
            Some("original") => Kind::Original,
            Some("om") => Kind::Agreement(Protocol::Om),
            Some("sm") => Kind::Agreement(Protocol::Sm),
            Some(other) => return Err(FormError::NotARun(other.to_string())),
            None => return Err(FormError::NoRun),
        };
        let number = |k: &'static str, default: u64, max: u64| -> Result<u64, FormError> {
            match get(k) {
                None => Ok(default),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n <= max => Ok(n),
                    _ => Err(FormError::Number {
                        key: k,
                        value: v.to_string(),
                        max,
                    }),
                },
            }
        };
        let value = |k: &'static str, allowed: Option<&[&'static str]>| {
            let v = get(k).unwrap_or(ATTACK);
            match allowed {
                Some(list) if !list.contains(&v) => Err(FormError::OneOf {
                    key: k,
                    value: v.to_string(),
                    allowed: list.to_vec(),
                }),
                _ if v.is_empty() || v.len() > MAX_VALUE => Err(FormError::Length {
                    key: k,
                    len: v.len(),
                }),
                _ => Ok(v.to_string()),
            }
        };
        let allow_unsafe = match get("allow_unsafe") {
            None | Some("0" | "false" | "") => false,
            Some("1" | "true" | "on") => true,
            Some(v) => {
                return Err(FormError::OneOf {
                    key: "allow_unsafe",
                    value: v.to_string(),
                    allowed: vec!["1", "0"],
                });
            }
        };
        let commander = match get("commander") {
            Some(c) if !nodes.iter().any(|n| n == c) => {
                return Err(FormError::Commander {
                    name: c.to_string(),
                    nodes: nodes.to_vec(),
                });
            }
            Some(c) => c.to_string(),
            None => nodes.first().cloned().ok_or(FormError::NoNodes)?,
        };
        let request = RunRequest {
            kind,
            m: number("m", 1, 64)? as usize,
            commander,
            order: value("order", Some(&params::ORDERS))?,
            seed: match get("seed") {
                None | Some("") => driver::random_seed(),
                Some(_) => number("seed", 0, u64::MAX)?,
            },
            allow_unsafe,
            decision: value("decision", None)?,
            delay_ms: number("delay_ms", 100, MAX_DELAY_MS)?,
        };
        if let Kind::Agreement(p) = kind {
            request.options(p, nodes, max_messages, round_timeout, round_timeout)?;
        }
        Ok(request)
    }

    /// The driver's options for an OM/SM run of this request, through the app's one check of
    /// a run's parameters.
    fn options(
        &self,
        protocol: Protocol,
        nodes: &[String],
        max_messages: u64,
        round_timeout: Duration,
        rpc_timeout: Duration,
    ) -> Result<RunOptions, FormError> {
        let asked = Asked {
            protocol,
            m: self.m,
            order: self.order.clone(),
            commander: Some(self.commander.clone()),
            seed: Some(self.seed),
            round_timeout: Some(round_timeout),
            allow_unsafe: self.allow_unsafe,
            max_messages,
            rpc_timeout,
        };
        Ok(params::check(&asked, nodes)?)
    }

    /// The run's id as the nodes tag its calls (`om-42`, `original`).
    pub(crate) fn run_id(&self) -> String {
        match self.kind {
            Kind::Original => trace::ORIGINAL_RUN.to_string(),
            Kind::Agreement(p) => p.label(self.seed),
        }
    }
}

/// At most 40 characters of a value quoted back in a message.
fn clip(s: &str) -> String {
    picture::shorten(s, 40)
}

/// One thing the page is told about a run, in order: `start`, then `message`s and (original)
/// `line`s, then `result` (or `error`), then `end`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    /// The run began: its parameters and the nodes, as `node_info` described them.
    Start(serde_json::Value),
    /// One node-to-node message, as the nodes recorded it.
    Message(serde_json::Value),
    /// One line the original client prints (`stream` stdout or stderr).
    Line(serde_json::Value),
    /// The run's outcome.
    Result(serde_json::Value),
    /// The run could not be made.
    Error(String),
    /// Nothing follows.
    End,
}

impl Item {
    /// The SSE event name.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Item::Start(_) => "start",
            Item::Message(_) => "message",
            Item::Line(_) => "line",
            Item::Result(_) => "result",
            Item::Error(_) => "error",
            Item::End => "end",
        }
    }

    /// What the event carries: one line of JSON (serde_json writes no raw newline, so the
    /// data is one SSE line).
    pub(crate) fn data(&self) -> String {
        match self {
            Item::Start(v) | Item::Message(v) | Item::Line(v) | Item::Result(v) => v.to_string(),
            Item::Error(e) => json!({ "error": e }).to_string(),
            Item::End => "{}".to_string(),
        }
    }

    /// The event as the stream carries it, numbered `id`: `event`, `id`, `data`, in that
    /// order.
    pub(crate) fn to_event(&self, id: u64) -> axum::response::sse::Event {
        axum::response::sse::Event::default()
            .event(self.name())
            .id(id.to_string())
            .data(self.data())
    }
}

/// One node as the page lists it (`behaviour` null when the node does not say).
pub(crate) fn node_view(
    name: &str,
    url: &str,
    info: Result<NodeInfo, String>,
) -> serde_json::Value {
    match info {
        Ok(i) => json!({
            "name": name, "url": url, "reachable": true,
            "behaviour": i.behaviour, "traitor": i.traitor,
        }),
        Err(error) => json!({
            "name": name, "url": url, "reachable": false, "error": error,
            "behaviour": null, "traitor": false,
        }),
    }
}

/// `node_info` of every node, as the page lists them (a node without the extension, the
/// original `server.py`, is reachable with an unknown behaviour).
pub(crate) async fn nodes_view(
    cluster: &Cluster,
    peers: &Peers,
    nodes: &[String],
) -> Vec<serde_json::Value> {
    let answers = peers.each(cluster, nodes, |_| Call::NodeInfo).await;
    answers
        .into_iter()
        .map(|(node, url, answer)| {
            let info = match answer {
                Ok(v) => NodeInfo::from_value(&v).map_err(|e| format!("node_info: {e}")),
                Err(e) if e.is_unsupported_method() => Ok(NodeInfo {
                    name: node.clone(),
                    behaviour: None,
                    traitor: false,
                    public_key: String::new(),
                }),
                Err(e) => Err(e.to_string()),
            };
            node_view(&node, &url, info)
        })
        .collect()
}

/// One message as the page draws it.
pub(crate) fn message_view(e: &Event) -> serde_json::Value {
    json!({
        "from": e.from, "to": e.to, "method": e.method.name(),
        "value": e.value().unwrap_or(e.method.name()),
        "round": e.round(), "path": if e.round().is_some() { json!(e.path()) } else { json!(null) },
        "start_us": e.start_us, "end_us": e.end_us,
        "shown": e.outcome.kind(), "fault": e.fault,
    })
}

/// Where a run is made and how.
#[derive(Debug, Clone)]
pub(crate) struct RunSetup {
    /// Where the nodes are.
    pub(crate) cluster: Cluster,
    /// The nodes taking part.
    pub(crate) nodes: Vec<String>,
    /// Calls outside the rounds (and the traces) time out after this.
    pub(crate) rpc_timeout: Duration,
    /// A round of an OM/SM run ends at the latest after this.
    pub(crate) round_timeout: Duration,
    /// The largest OM/SM run, in messages by the formula.
    pub(crate) max_messages: u64,
}

/// Make the run `req` on `bench`, handing each [`Item`] to `tx` as it happens. Dropping this
/// future (the page's reader went away) stops the run and the tasks it started: an OM/SM
/// run's driver stops calling, and the nodes expire the unfinished run on their own.
pub(crate) async fn run(bench: RunSetup, req: RunRequest, tx: mpsc::Sender<Item>) {
    let peers = match Peers::new(bench.rpc_timeout) {
        Ok(p) => p,
        Err(e) => {
            let _ = tx.send(Item::Error(e.to_string())).await;
            let _ = tx.send(Item::End).await;
            return;
        }
    };
    let nodes = nodes_view(&bench.cluster, &peers, &bench.nodes).await;
    let start = json!({
        "kind": match req.kind { Kind::Original => "original", Kind::Agreement(p) => p.name() },
        "run": req.run_id(), "nodes": nodes, "commander": req.commander, "m": req.m,
        "order": req.order, "seed": req.seed, "decision": req.decision,
        "expected_per_round": match req.kind {
            Kind::Agreement(Protocol::Om) => json!(crate::agreement::om::expected_per_round(bench.nodes.len(), req.m)),
            _ => json!(null),
        },
    });
    let _ = tx.send(Item::Start(start)).await;
    match req.kind {
        Kind::Original => run_original(&bench, &peers, &req, &tx).await,
        Kind::Agreement(p) => run_agreement(&bench, &peers, &req, p, &tx).await,
    }
    let _ = tx.send(Item::End).await;
}

/// The original run: the client's lines and its calls' messages as they come, then the
/// decisions. A receiver whose `finalize_decision` answered `faulty` ignored what it got:
/// the result says so, and the page marks its messages.
async fn run_original(bench: &RunSetup, peers: &Peers, req: &RunRequest, tx: &mpsc::Sender<Item>) {
    // The run tells its events at once (it never waits for the page); they are handed on
    // here, in order, as the page reads them.
    let (events, mut events_rx) = mpsc::unbounded_channel();
    let opts = original::Options {
        nodes: bench.nodes.clone(),
        decision: req.decision.clone(),
        delay: Duration::from_millis(req.delay_ms),
    };
    let (cluster, peers2) = (bench.cluster.clone(), peers.clone());
    let mut running = Owned(tokio::spawn(async move {
        let mut tell = |said: Said| {
            events
                .send(said)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        };
        original::run_original(&cluster, &peers2, &opts, &mut tell).await
    }));
    while let Some(said) = events_rx.recv().await {
        for item in items(&Happened::Said(said), &req.decision) {
            let _ = tx.send(item).await;
        }
    }
    let report = match (&mut running.0).await {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => return send_error(tx, e.to_string()).await,
        Err(e) => return send_error(tx, format!("the run stopped: {e}")).await,
    };
    let ignoring: Vec<&String> = if req.decision == protocol::FAULTY_DECISION {
        Vec::new()
    } else {
        (report.decisions.iter())
            .filter(|(_, d)| *d == protocol::FAULTY_DECISION)
            .map(|(n, _)| n)
            .collect()
    };
    let result = json!({
        "kind": "original", "decisions": report.decisions, "failures": report.failures,
        "unreachable": report.unreachable, "ignoring": ignoring,
        "sends": report.calls.len(),
    });
    let _ = tx.send(Item::Result(result)).await;
}

/// What the page is told of one of a run's events: a message drawn, a line of the client's
/// (as the command line prints it), nothing (the verdict and the lost nodes are in the
/// result). `decision` is the original run's, for the message a send made.
fn items(event: &Happened, decision: &str) -> Vec<Item> {
    let mut items = Vec::new();
    match event {
        Happened::Said(Said::Sent(call)) => {
            let m = original::sent_message(call, decision);
            items.push(Item::Message(message_view(&m)));
        }
        Happened::Message(e) => items.push(Item::Message(message_view(e))),
        _ => {}
    }
    if let (Happened::Said(_), Some((stream, text))) = (event, event.line(false)) {
        items.push(Item::Line(json!({ "stream": stream.name(), "text": text })));
    }
    items
}

async fn send_error(tx: &mpsc::Sender<Item>, e: String) {
    let _ = tx.send(Item::Error(e)).await;
}

/// An OM/SM run: the app runs it, watched, while its messages are handed on; then the report,
/// and for OM every lieutenant's tree.
async fn run_agreement(
    bench: &RunSetup,
    peers: &Peers,
    req: &RunRequest,
    protocol: Protocol,
    tx: &mpsc::Sender<Item>,
) {
    let opts = req.options(
        protocol,
        &bench.nodes,
        bench.max_messages,
        bench.round_timeout,
        bench.rpc_timeout,
    );
    let secrets = match opts.and_then(|o| {
        driver::credentials(&o)
            .map(|s| (o, s))
            .map_err(|e| ParamError::from(e).into())
    }) {
        Ok(ok) => ok,
        Err(e) => return send_error(tx, refused(&e)).await,
    };
    let (opts, secrets) = secrets;
    let (events, mut events_rx) = mpsc::unbounded_channel();
    let (cluster, pool) = (bench.cluster.clone(), peers.clone());
    let mut running = Owned(tokio::spawn(async move {
        let mut all = Vec::new();
        let mut tell = |event: Happened| {
            if let Happened::Message(e) = &event {
                all.push(e.clone());
            }
            events
                .send(event)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        };
        let driven = app::agreement::run(&cluster, &opts, &pool, secrets, true, &mut tell).await;
        driven.map(|d| (d, all))
    }));
    while let Some(event) = events_rx.recv().await {
        for item in items(&event, "") {
            let _ = tx.send(item).await;
        }
    }
    let (report, events) = match (&mut running.0).await {
        Ok(Ok((driven, events))) => (driven.report, events),
        Ok(Err(Ran::Refused(e))) => {
            return send_error(tx, refused(&FormError::Run(e.into()))).await;
        }
        Ok(Err(e)) => return send_error(tx, e.to_string()).await,
        Err(e) => return send_error(tx, format!("the run stopped: {e}")).await,
    };
    let trees = match protocol {
        Protocol::Om => PageTrees::of(&req.commander, &bench.nodes, req.m, &events),
        Protocol::Sm => PageTrees::default(),
    };
    let mut result = serde_json::to_value(&report).unwrap_or_default();
    result["kind"] = json!(protocol.name());
    result["text"] = json!(report.human());
    trees.into_json(&mut result);
    let _ = tx.send(Item::Result(result)).await;
}

fn refused(e: &FormError) -> String {
    format!("the run was refused: {e}")
}

/// Why a trace cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TraceError {
    /// A line that is not a recorded call.
    #[error("line {line}: not a call recorded by --trace ({error}): {text}")]
    Line {
        /// Its number, from 1.
        line: usize,
        /// What the JSON reader said.
        error: String,
        /// The line, clipped.
        text: String,
    },
    /// No call at all.
    #[error("the trace holds no calls: is it a file written by --trace?")]
    Empty,
    /// More nodes than a replay draws.
    #[error("the trace names {0} nodes; a replay draws at most {MAX_REPLAY_NODES}")]
    Nodes(usize),
    /// A path longer than the nodes.
    #[error("the trace has a path of {rounds} nodes among {nodes} nodes: not a run's trace")]
    Path {
        /// The longest path.
        rounds: usize,
        /// The nodes named.
        nodes: usize,
    },
    /// An OM run larger than the page's budget.
    #[error(
        "the trace is of OM({m}) over {nodes} nodes, {messages} messages by the formula: over this \
         page's --max-messages {max} (start client ui with a larger one)"
    )]
    Budget {
        /// Its m.
        m: usize,
        /// Its nodes.
        nodes: usize,
        /// Its messages by the formula (or "too many").
        messages: String,
        /// The page's `--max-messages`.
        max: u64,
    },
}

/// A trace file (JSON lines, as `--trace` writes them) as the page replays it: the messages in
/// order of start, the nodes in order of appearance, and for an OM run each lieutenant's tree
/// and decision rebuilt from the messages it received (a trace holds calls only: who was a
/// traitor is not in it). An error names the line that is not a recorded call.
///
/// What the trace names sizes the work, so it is bounded before any: at most
/// [`MAX_REPLAY_NODES`] nodes, paths no longer than the nodes, and an OM run of at most
/// `max_messages` messages by the formula (the page's `--max-messages`, as for the runs it
/// starts). A trace of a few kilobytes naming 13 nodes once built every OM path over them,
/// gigabytes of them.
pub(crate) fn trace_view(text: &str, max_messages: u64) -> Result<serde_json::Value, TraceError> {
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let e: Event = serde_json::from_str(line).map_err(|e| TraceError::Line {
            line: i + 1,
            error: e.to_string(),
            text: clip(line),
        })?;
        events.push(e);
    }
    if events.is_empty() {
        return Err(TraceError::Empty);
    }
    events.sort_by(|a, b| (a.start_us, &a.from, &a.to).cmp(&(b.start_us, &b.from, &b.to)));
    let mut runs: Vec<&str> = events.iter().map(|e| e.run.as_str()).collect();
    runs.dedup();
    runs.sort_unstable();
    runs.dedup();
    let run = runs.join(", ");
    let kind = match run.split('-').next() {
        Some("om") if runs.len() == 1 => "om",
        Some("sm") if runs.len() == 1 => "sm",
        _ => "original",
    };
    let mut nodes: Vec<String> = Vec::new();
    for name in events.iter().flat_map(|e| [&e.from, &e.to]) {
        if !nodes.contains(name) {
            nodes.push(name.clone());
        }
    }
    // In the clusters' own order: P, Q, R, S; N2 before N10.
    nodes.sort_by_cached_key(|n| {
        let digits = n.len() - n.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (stem, number) = n.split_at(n.len() - digits);
        (stem.to_string(), number.parse::<u64>().ok(), n.clone())
    });
    let commander = (events.iter())
        .find(|e| e.round() == Some(1))
        .map(|e| e.from.clone());
    let rounds = events.iter().filter_map(Event::round).max().unwrap_or(0);
    let m = rounds.saturating_sub(1);
    if nodes.len() > MAX_REPLAY_NODES {
        return Err(TraceError::Nodes(nodes.len()));
    }
    if rounds > nodes.len() {
        return Err(TraceError::Path {
            rounds,
            nodes: nodes.len(),
        });
    }
    if kind == "om" {
        let messages = match m <= MAX_REPLAY_M {
            true => crate::agreement::om::total_messages(nodes.len(), m),
            false => u64::MAX,
        };
        if messages > max_messages {
            return Err(TraceError::Budget {
                m,
                nodes: nodes.len(),
                messages: if messages == u64::MAX {
                    "too many".to_string()
                } else {
                    messages.to_string()
                },
                max: max_messages,
            });
        }
    }
    let mut per_round = vec![0u64; rounds];
    for e in events.iter().filter(|e| e.fault.is_none()) {
        if let Some(r) = e.round().filter(|r| *r >= 1) {
            per_round[r - 1] += 1;
        }
    }
    let mut view = json!({
        "kind": kind, "run": run, "nodes": nodes, "commander": commander, "m": m,
        "messages": events.iter().map(message_view).collect::<Vec<_>>(),
        "messages_per_round": per_round,
    });
    if let (Some(commander), "om") = (&commander, kind) {
        let trees = PageTrees::of(commander, &nodes, m, &events);
        view["decisions"] = json!(trees.decisions);
        view["expected_per_round"] =
            json!(crate::agreement::om::expected_per_round(nodes.len(), m));
        trees.into_json(&mut view);
    }
    Ok(view)
}

/// The most boxes of a whole OM tree the page is sent besides the folded one: OM(2) over 7
/// nodes has 26 per lieutenant; OM(3) over 10 has 401, a row of leaves too wide to read,
/// which only the command line's `--tree NAME --depth N` draws.
const FULL_TREE_BOXES: usize = 100;

/// Each lieutenant's OM tree as the page shows it (rebuilt from the run's messages).
#[derive(Debug, Default)]
struct PageTrees {
    /// As the pictures draw it by default (a large one folded), its legend offering nothing
    /// the page lacks.
    trees: BTreeMap<String, String>,
    /// The whole tree, for one that was folded and has at most [`FULL_TREE_BOXES`] boxes: the
    /// page offers it ("all rounds").
    full: BTreeMap<String, String>,
    /// Boxes of each whole tree (the page names them when it cannot offer the whole tree).
    boxes: BTreeMap<String, usize>,
    /// What each lieutenant decides: its tree's root.
    decisions: BTreeMap<String, String>,
}

impl PageTrees {
    fn of(commander: &str, nodes: &[String], m: usize, events: &[Event]) -> PageTrees {
        let mut trees = PageTrees::default();
        for node in nodes.iter().filter(|n| *n != commander) {
            let Ok(tree) = picture::om_tree_from_events(node, commander, nodes, m, events) else {
                continue;
            };
            if let Some(root) = tree.first() {
                trees.decisions.insert(node.clone(), root.value.clone());
            }
            let svg =
                |depth| picture::tree_svg_with(node, &tree, m, depth, picture::Unfold::Beside);
            trees.trees.insert(node.clone(), svg(None));
            if tree.len() > picture::TREE_LIMIT && tree.len() <= FULL_TREE_BOXES {
                trees.full.insert(node.clone(), svg(Some(m + 1)));
            }
            trees.boxes.insert(node.clone(), tree.len());
        }
        trees
    }

    /// Into the result the page reads: `trees`, `full_trees`, `tree_boxes`.
    fn into_json(self, result: &mut serde_json::Value) {
        result["trees"] = json!(self.trees);
        result["full_trees"] = json!(self.full);
        result["tree_boxes"] = json!(self.boxes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<String> {
        ["P", "Q", "R", "S"].map(String::from).to_vec()
    }

    fn parse(q: &str) -> Result<RunRequest, String> {
        RunRequest::parse(q, &nodes(), 1_000_000, Duration::from_secs(2)).map_err(|e| e.to_string())
    }

    #[test]
    fn a_query_is_a_run() {
        let r = parse("run=om&m=1&commander=Q&seed=42&order=retreat").unwrap();
        assert_eq!(r.kind, Kind::Agreement(Protocol::Om));
        assert_eq!((r.m, r.commander.as_str(), r.seed), (1, "Q", 42));
        assert_eq!(
            (r.order.as_str(), r.run_id().as_str()),
            ("retreat", "om-42")
        );
        let r = parse("run=original&decision=it%27s+here").unwrap();
        assert_eq!((r.kind, r.decision.as_str()), (Kind::Original, "it's here"));
        assert_eq!((r.delay_ms, r.run_id().as_str()), (100, "original"));
        let r = parse("run=sm&m=2").unwrap();
        assert_eq!((r.commander.as_str(), r.order.as_str()), ("P", "attack"));
    }

    #[test]
    fn bad_values_say_which_and_why() {
        for (query, says) in [
            ("", "no run given"),
            ("run=xx", "run=xx: not a run"),
            ("run=om&m=-1", "m=-1: not a whole number"),
            (
                "run=om&m=99999999999999999999",
                "not a whole number from 0 to 64",
            ),
            (
                "run=om&commander=Z",
                "commander=Z: not a node of this cluster (P, Q, R, S)",
            ),
            ("run=om&order=maybe", "order=maybe: use attack or retreat"),
            ("run=om&seed=x", "seed=x"),
            ("run=om&m=2", "needs at least 7 nodes"),
            ("run=om&bogus=1", "unknown parameter 'bogus'"),
            ("run=om&run=sm", "'run' is given twice"),
            (
                "run=om&allow_unsafe=maybe",
                "allow_unsafe=maybe: use 1 or 0",
            ),
            (
                "run=original&decision=",
                "decision: from 1 to 1024 bytes, not 0",
            ),
            ("run=original&delay_ms=9999999", "delay_ms=9999999"),
        ] {
            let e = parse(query).expect_err(query);
            assert!(e.contains(says), "{query}: {e}");
        }
        let long = format!("run=original&decision={}", "x".repeat(2000));
        assert!(parse(&long).unwrap_err().contains("not 2000"));
        // Quoted values are clipped.
        let e = parse(&format!("run={}", "y".repeat(500))).unwrap_err();
        assert!(e.len() < 120, "{e}");
        assert!(parse("run=om&m=2&allow_unsafe=1").is_ok());
    }

    #[test]
    fn events_are_one_sse_line_each() {
        let item = Item::Line(json!({"stream": "stdout", "text": "a\nb"}));
        assert_eq!(item.data().lines().count(), 1);
        assert_eq!(item.name(), "line");
        assert_eq!(Item::End.data(), "{}");
    }
}
