//! The agreement engine of one node: runs OM and SM between nodes over XML-RPC.
//!
//! [`OmRun`] and [`SmRun`] decide; this module moves their messages. Each incoming message is
//! answered at once and its relays are sent in the background (a relay never waits for the
//! relays it causes downstream), every outgoing message goes through the node's behaviour,
//! and `*_decide` waits until every expected message has arrived or the run's deadline
//! (`(m + 1)` round timeouts after the start) has passed; what is missing then counts as
//! `retreat`. The node's state lock is never held across a network call.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dxr::Value;
use ed25519_dalek::SigningKey;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::behaviour::{Behaviour, entropy};
use super::om::OmRun;
use super::sm::{self, KeyRing, SmRun};
use crate::cluster::Cluster;
use crate::peer::Peers;
use crate::protocol::{ext, fault};
use crate::trace::{self, Recorder};

/// Runs remembered per node; the oldest is forgotten beyond this.
pub const MAX_RUNS: usize = 256;
/// Largest run accepted: OM's message count grows as n^(m+1).
pub const MAX_NODES: usize = 64;
/// Largest `m` accepted.
pub const MAX_M: usize = 8;
/// Messages one node has in flight at once. OM(m) relays fan out as n^m; without a bound a
/// node would open a connection per message in flight (thousands for n=10, m=3), each with
/// its buffers on both ends. Sends wait for a slot in the background, so this never blocks
/// an answer.
pub const MAX_SENDS_IN_FLIGHT: usize = 16;

/// One node's agreement engine.
#[derive(Debug)]
pub struct Engine {
    me: String,
    behaviour: Behaviour,
    seed: u64,
    key: SigningKey,
    cluster: Arc<Cluster>,
    peers: Peers,
    state: Mutex<Runs>,
    changed: Notify,
    recorder: Arc<Recorder>,
    in_flight: Arc<tokio::sync::Semaphore>,
}

#[derive(Debug, Default)]
struct Runs {
    om: HashMap<String, Run<OmRun>>,
    sm: HashMap<String, Run<SmRun>>,
    started: VecDeque<String>,
}

#[derive(Debug)]
struct Run<R> {
    run: R,
    seed: u64,
    deadline: Instant,
    /// Messages delivered by this node, per round (round = path length).
    sent: Vec<u64>,
    /// Sends started and not finished.
    pending: usize,
    /// The order given to this node as commander.
    order: Option<String>,
    keys: KeyRing,
}

/// Parameters common to `om_start` and `sm_start`.
struct Start {
    run: String,
    commander: String,
    nodes: Vec<String>,
    m: usize,
    round_timeout: Duration,
    seed: u64,
}

impl Engine {
    /// The engine of node `me`, sending with `behaviour`; `seed` is the server's `--seed`.
    pub fn new(
        me: &str,
        behaviour: Behaviour,
        seed: u64,
        cluster: Arc<Cluster>,
        peers: Peers,
        recorder: Arc<Recorder>,
    ) -> Result<Self, String> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("no randomness for the SM key: {e}"))?;
        Ok(Engine {
            me: me.to_string(),
            behaviour,
            seed,
            key: SigningKey::from_bytes(&secret),
            cluster,
            peers,
            state: Mutex::new(Runs::default()),
            changed: Notify::new(),
            recorder,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_SENDS_IN_FLIGHT)),
        })
    }

    /// Whether `method` is one of ours.
    pub fn handles(method: &str) -> bool {
        ext::METHODS.contains(&method)
    }

    /// Handle one extension call: the value, or a fault string.
    pub async fn call(self: &Arc<Self>, method: &str, params: &[Value]) -> Result<Value, String> {
        let args = Args { method, params };
        match method {
            ext::NODE_INFO => {
                args.arity(&[])?;
                Ok(structure([
                    ("name", Value::String(self.me.clone())),
                    ("behaviour", Value::String(self.behaviour.to_string())),
                    ("traitor", Value::Boolean(self.behaviour.is_traitor())),
                    (
                        "public_key",
                        Value::String(sm::encode(self.key.verifying_key().as_bytes())),
                    ),
                ]))
            }
            ext::SM_PUBLIC_KEY => {
                args.arity(&[])?;
                Ok(Value::String(sm::encode(
                    self.key.verifying_key().as_bytes(),
                )))
            }
            ext::OM_START => {
                let start = args.start()?;
                let om = OmRun::new(&self.me, &start.commander, &start.nodes, start.m)
                    .map_err(|e| fault::python("ValueError", &e))?;
                self.insert(&start, |runs, run| {
                    runs.om.insert(start.run.clone(), run.with(om));
                });
                Ok(Value::String(ext::OK.into()))
            }
            ext::SM_START => {
                let start = args.start()?;
                let sm = SmRun::new(
                    &start.run,
                    &self.me,
                    &start.commander,
                    &start.nodes,
                    start.m,
                )
                .map_err(|e| fault::python("ValueError", &e))?;
                let (keys, missing) = self.fetch_keys(&start.nodes).await;
                let fetched = keys.len();
                self.insert(&start, |runs, run| {
                    let mut run = run.with(sm);
                    run.keys = keys;
                    runs.sm.insert(start.run.clone(), run);
                });
                Ok(structure([
                    ("keys", Value::Integer(fetched as i32)),
                    (
                        "missing",
                        Value::Array(missing.into_iter().map(Value::String).collect()),
                    ),
                ]))
            }
            ext::OM_ORDER | ext::SM_ORDER => {
                args.arity(&["run", "order"])?;
                let (run, order) = (args.string(0)?, args.string(1)?);
                let protocol = if method == ext::OM_ORDER {
                    Protocol::Om
                } else {
                    Protocol::Sm
                };
                let sent = self.order(protocol, &run, &order).await?;
                Ok(structure([("sent", Value::Integer(sent as i32))]))
            }
            ext::OM_MESSAGE => {
                args.arity(&["run", "path", "value"])?;
                let (run, path, value) = (args.string(0)?, args.strings(1)?, args.string(2)?);
                self.om_message(&run, &path, &value)?;
                Ok(Value::String(ext::OK.into()))
            }
            ext::SM_MESSAGE => {
                args.arity(&["run", "path", "value", "signatures"])?;
                let (run, path, value, sigs) = (
                    args.string(0)?,
                    args.strings(1)?,
                    args.string(2)?,
                    args.strings(3)?,
                );
                self.sm_message(&run, &path, &value, &sigs)?;
                Ok(Value::String(ext::OK.into()))
            }
            ext::OM_DECIDE => {
                args.arity(&["run"])?;
                self.om_decide(&args.string(0)?).await
            }
            ext::SM_DECIDE => {
                args.arity(&["run"])?;
                self.sm_decide(&args.string(0)?).await
            }
            ext::TRACE_EVENTS => {
                args.arity(&["run", "since_us"])?;
                let since = args.string(1)?.parse::<u64>().map_err(|_| {
                    fault::python("ValueError", "since_us must be a decimal u64 in a string")
                })?;
                let events = self.recorder.events(&args.string(0)?, &self.me, since);
                Ok(Value::Array(events.iter().map(trace::to_value).collect()))
            }
            other => Err(fault::unsupported_method(other)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Runs> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remember a new run (forgetting the oldest beyond [`MAX_RUNS`]).
    fn insert(&self, start: &Start, put: impl FnOnce(&mut Runs, Run<()>)) {
        let template = Run {
            run: (),
            seed: start.seed ^ self.seed,
            deadline: Instant::now() + start.round_timeout * (start.m as u32 + 1),
            sent: vec![0; start.m + 1],
            pending: 0,
            order: None,
            keys: KeyRing::new(),
        };
        let mut runs = self.lock();
        // Starting a run id again replaces that run (one slot in the eviction queue).
        runs.started.retain(|r| *r != start.run);
        put(&mut runs, template);
        runs.started.push_back(start.run.clone());
        while runs.started.len() > MAX_RUNS {
            if let Some(old) = runs.started.pop_front() {
                runs.om.remove(&old);
                runs.sm.remove(&old);
            }
        }
    }

    /// Public keys of the participants, fetched from each (our own needs no call).
    async fn fetch_keys(&self, nodes: &[String]) -> (KeyRing, Vec<String>) {
        let mut keys = KeyRing::new();
        let mut missing = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        for name in nodes {
            if *name == self.me {
                keys.insert(name.clone(), self.key.verifying_key());
                continue;
            }
            let (name, url, peers) = (name.clone(), self.cluster.url_of(name), self.peers.clone());
            tasks.spawn(async move {
                let key = match url {
                    Ok(url) => match peers.call(&url, ext::SM_PUBLIC_KEY, &[]).await {
                        Ok(Value::String(k)) => sm::decode_key(&k).ok(),
                        _ => None,
                    },
                    Err(_) => None,
                };
                (name, key)
            });
        }
        while let Some(Ok((name, key))) = tasks.join_next().await {
            match key {
                Some(k) => {
                    keys.insert(name, k);
                }
                None => missing.push(name),
            }
        }
        missing.sort();
        (keys, missing)
    }

    /// The commander's round 1 (`om_order` / `sm_order`): returns how many were delivered.
    async fn order(
        self: &Arc<Self>,
        protocol: Protocol,
        run: &str,
        order: &str,
    ) -> Result<usize, String> {
        let (sends, seed) = {
            let mut runs = self.lock();
            match protocol {
                Protocol::Om => take_order(&self.me, run, runs.om.get_mut(run), order)?,
                Protocol::Sm => take_order(&self.me, run, runs.sm.get_mut(run), order)?,
            }
        };
        Ok(self.send_all(protocol, run, seed, sends).await)
    }

    /// Wake `*_decide` and send a received message's relays in the background.
    fn relay(self: &Arc<Self>, protocol: Protocol, run: &str, seed: u64, sends: Vec<Outgoing>) {
        self.changed.notify_waiters();
        if !sends.is_empty() {
            let engine = self.clone();
            let run = run.to_string();
            tokio::spawn(async move { engine.send_all(protocol, &run, seed, sends).await });
        }
    }

    fn om_message(self: &Arc<Self>, run: &str, path: &[String], value: &str) -> Result<(), String> {
        let (sends, seed) = {
            let mut runs = self.lock();
            let r = runs.om.get_mut(run).ok_or_else(|| unknown_run(run))?;
            let relays = r
                .run
                .receive(path, value)
                .map_err(|e| fault::python("ValueError", &e))?;
            r.pending += relays.len();
            (relays.into_iter().map(Outgoing::from).collect(), r.seed)
        };
        self.relay(Protocol::Om, run, seed, sends);
        Ok(())
    }

    fn sm_message(
        self: &Arc<Self>,
        run: &str,
        path: &[String],
        value: &str,
        sigs: &[String],
    ) -> Result<(), String> {
        let (sends, seed) = {
            let mut runs = self.lock();
            let r = runs.sm.get_mut(run).ok_or_else(|| unknown_run(run))?;
            let relays = r
                .run
                .receive(&r.keys, path, value, sigs)
                .map_err(|e| fault::python("ValueError", &format!("message rejected: {e}")))?;
            r.pending += relays.len();
            (relays.into_iter().map(Outgoing::from).collect(), r.seed)
        };
        self.relay(Protocol::Sm, run, seed, sends);
        Ok(())
    }

    /// Send every message concurrently through the behaviour; returns how many were
    /// delivered. Each finished send updates the run's counters and wakes `*_decide`.
    async fn send_all(
        self: &Arc<Self>,
        protocol: Protocol,
        run: &str,
        seed: u64,
        sends: Vec<Outgoing>,
    ) -> usize {
        let mut tasks = tokio::task::JoinSet::new();
        for out in sends {
            let engine = self.clone();
            let run = run.to_string();
            tasks.spawn(async move {
                let round = out.path.len();
                // The semaphore is never closed; without a permit the send just goes ahead.
                let _slot = engine.in_flight.clone().acquire_owned().await.ok();
                let delivered = engine.send_one(protocol, &run, seed, out).await;
                engine.finish_send(protocol, &run, round, delivered);
                delivered
            });
        }
        let mut delivered = 0;
        while let Some(done) = tasks.join_next().await {
            delivered += usize::from(done.unwrap_or(false));
        }
        delivered
    }

    async fn send_one(&self, protocol: Protocol, run: &str, seed: u64, out: Outgoing) -> bool {
        let mut parts: Vec<&str> = vec![run];
        parts.extend(out.path.iter().map(String::as_str));
        parts.push(&out.to);
        let noise = entropy(seed, &parts);
        let Some(value) = self
            .behaviour
            .outgoing(&out.value, &out.to, out.index, out.count, noise)
        else {
            return false;
        };
        if let Some(d) = self.behaviour.delay() {
            tokio::time::sleep(d).await;
        }
        let Ok(url) = self.cluster.url_of(&out.to) else {
            return false;
        };
        let path = Value::Array(out.path.iter().cloned().map(Value::String).collect());
        let (method, args) = match protocol {
            Protocol::Om => (
                ext::OM_MESSAGE,
                vec![Value::String(run.to_string()), path, Value::String(value)],
            ),
            Protocol::Sm => {
                let mut sigs = out.prior;
                sigs.push(sm::sign(&self.key, run, &value, &out.path));
                let sigs = Value::Array(sigs.into_iter().map(Value::String).collect());
                let args = vec![
                    Value::String(run.to_string()),
                    path,
                    Value::String(value),
                    sigs,
                ];
                (ext::SM_MESSAGE, args)
            }
        };
        let start_us = trace::now_us();
        let result = self.peers.call(&url, method, &args).await;
        if self.recorder.is_on() {
            self.recorder.record(trace::Event {
                run: run.to_string(),
                from: self.me.clone(),
                to: out.to.clone(),
                method: method.to_string(),
                args: trace::to_json(&Value::Array(args)),
                result: result.as_ref().ok().map(trace::to_json),
                fault: result.as_ref().err().map(|e| e.to_string()),
                start_us,
                end_us: trace::now_us(),
            });
        }
        if let Err(e) = &result {
            tracing::debug!("{} -> {}: {e}", self.me, out.to);
        }
        result.is_ok()
    }

    fn finish_send(&self, protocol: Protocol, run: &str, round: usize, delivered: bool) {
        {
            let mut runs = self.lock();
            let counters = match protocol {
                Protocol::Om => runs.om.get_mut(run).map(|r| (&mut r.sent, &mut r.pending)),
                Protocol::Sm => runs.sm.get_mut(run).map(|r| (&mut r.sent, &mut r.pending)),
            };
            if let Some((sent, pending)) = counters {
                *pending = pending.saturating_sub(1);
                if delivered && round >= 1 && round <= sent.len() {
                    sent[round - 1] += 1;
                }
            }
        }
        self.changed.notify_waiters();
    }

    /// Wait until `done` holds for the run or its deadline passes.
    async fn wait(
        &self,
        run: &str,
        done: impl Fn(&Runs) -> Option<bool>,
        deadline_of: impl Fn(&Runs) -> Option<Instant>,
    ) -> Result<(), String> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let deadline = {
                let runs = self.lock();
                match done(&runs) {
                    None => return Err(unknown_run(run)),
                    Some(true) => return Ok(()),
                    Some(false) => deadline_of(&runs).unwrap_or_else(Instant::now),
                }
            };
            if Instant::now() >= deadline {
                return Ok(());
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    async fn om_decide(&self, run: &str) -> Result<Value, String> {
        self.wait(
            run,
            |runs| {
                runs.om
                    .get(run)
                    .map(|r| r.run.is_complete() && r.pending == 0)
            },
            |runs| runs.om.get(run).map(|r| r.deadline),
        )
        .await?;
        let runs = self.lock();
        let r = runs.om.get(run).ok_or_else(|| unknown_run(run))?;
        let (role, decision) = role_and_decision(r);
        Ok(structure([
            ("role", Value::String(role.into())),
            ("decision", Value::String(decision)),
            ("received", Value::Integer(r.run.received() as i32)),
            ("expected", Value::Integer(r.run.expected() as i32)),
            ("sent", counts(&r.sent)),
        ]))
    }

    async fn sm_decide(&self, run: &str) -> Result<Value, String> {
        // SM has no fixed message count: a lieutenant decides at the deadline, or as soon
        // as two values make `choice` retreat whatever else arrives.
        self.wait(
            run,
            |runs| {
                runs.sm
                    .get(run)
                    .map(|r| r.run.is_settled() && r.pending == 0)
            },
            |runs| runs.sm.get(run).map(|r| r.deadline),
        )
        .await?;
        // Let this node's own relays finish before reporting its counts.
        self.wait(
            run,
            |runs| runs.sm.get(run).map(|r| r.pending == 0),
            |runs| runs.sm.get(run).map(|r| r.deadline),
        )
        .await?;
        let runs = self.lock();
        let r = runs.sm.get(run).ok_or_else(|| unknown_run(run))?;
        let (role, decision) = role_and_decision(r);
        Ok(structure([
            ("role", Value::String(role.into())),
            ("decision", Value::String(decision)),
            (
                "values",
                Value::Array(r.run.values().into_iter().map(Value::String).collect()),
            ),
            ("received", Value::Integer(r.run.accepted() as i32)),
            ("rejected", Value::Integer(r.run.rejected() as i32)),
            (
                "reasons",
                Value::Array(r.run.reasons().iter().cloned().map(Value::String).collect()),
            ),
            ("sent", counts(&r.sent)),
        ]))
    }
}

#[derive(Debug, Clone, Copy)]
enum Protocol {
    Om,
    Sm,
}

/// A message about to go through the behaviour.
struct Outgoing {
    to: String,
    path: Vec<String>,
    value: String,
    prior: Vec<String>,
    index: usize,
    count: usize,
}

impl From<super::om::Relay> for Outgoing {
    fn from(r: super::om::Relay) -> Self {
        Outgoing {
            to: r.to,
            path: r.path,
            value: r.value,
            prior: Vec::new(),
            index: r.index,
            count: r.count,
        }
    }
}

impl From<sm::SmRelay> for Outgoing {
    fn from(r: sm::SmRelay) -> Self {
        Outgoing {
            to: r.to,
            path: r.path,
            value: r.value,
            prior: r.prior,
            index: r.index,
            count: r.count,
        }
    }
}

/// What `*_order` needs of a run, OM or SM.
trait Commanded {
    fn is_commander(&self) -> bool;
    fn command(&self, order: &str) -> Vec<Outgoing>;
    fn decide(&self) -> String;
}

/// What `*_decide` reports first: the commander's own order, or the lieutenant's decision.
fn role_and_decision<R: Commanded>(r: &Run<R>) -> (&'static str, String) {
    if r.run.is_commander() {
        ("commander", r.order.clone().unwrap_or_default())
    } else {
        ("lieutenant", r.run.decide())
    }
}

impl Commanded for OmRun {
    fn is_commander(&self) -> bool {
        OmRun::is_commander(self)
    }
    fn command(&self, order: &str) -> Vec<Outgoing> {
        OmRun::command(self, order)
            .into_iter()
            .map(Outgoing::from)
            .collect()
    }
    fn decide(&self) -> String {
        OmRun::decide(self)
    }
}

impl Commanded for SmRun {
    fn is_commander(&self) -> bool {
        SmRun::is_commander(self)
    }
    fn command(&self, order: &str) -> Vec<Outgoing> {
        SmRun::command(self, order)
            .into_iter()
            .map(Outgoing::from)
            .collect()
    }
    fn decide(&self) -> String {
        SmRun::decide(self)
    }
}

/// Record the commander's order once and return its round-1 messages and the run's seed.
fn take_order<R: Commanded>(
    me: &str,
    id: &str,
    run: Option<&mut Run<R>>,
    order: &str,
) -> Result<(Vec<Outgoing>, u64), String> {
    let r = run.ok_or_else(|| unknown_run(id))?;
    if !r.run.is_commander() {
        return Err(fault::python(
            "ValueError",
            &format!("{me} is not the commander of run {id}"),
        ));
    }
    if r.order.is_some() {
        return Err(fault::python(
            "ValueError",
            &format!("run {id} already has its order"),
        ));
    }
    r.order = Some(order.to_string());
    let sends = r.run.command(order);
    r.pending += sends.len();
    Ok((sends, r.seed))
}

impl Run<()> {
    fn with<R>(self, run: R) -> Run<R> {
        Run {
            run,
            seed: self.seed,
            deadline: self.deadline,
            sent: self.sent,
            pending: self.pending,
            order: self.order,
            keys: self.keys,
        }
    }
}

fn unknown_run(run: &str) -> String {
    fault::python(
        "KeyError",
        &format!("unknown run {}", crate::protocol::python_repr(run)),
    )
}

fn counts(sent: &[u64]) -> Value {
    Value::Array(
        sent.iter()
            .map(|&c| Value::Integer(c.min(i32::MAX as u64) as i32))
            .collect(),
    )
}

/// An XML-RPC struct from pairs.
pub fn structure<const N: usize>(members: [(&str, Value); N]) -> Value {
    Value::Struct(
        members
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<BTreeMap<_, _>>(),
    )
}

/// Typed access to an extension call's parameters, with faults in Python's style.
struct Args<'a> {
    method: &'a str,
    params: &'a [Value],
}

impl Args<'_> {
    fn arity(&self, names: &[&str]) -> Result<(), String> {
        if self.params.len() == names.len() {
            return Ok(());
        }
        Err(fault::python(
            "TypeError",
            &format!(
                "{}({}) takes {} argument{} but {} {} given",
                self.method,
                names.join(", "),
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                self.params.len(),
                if self.params.len() == 1 {
                    "was"
                } else {
                    "were"
                }
            ),
        ))
    }

    fn bad(&self, i: usize, want: &str) -> String {
        fault::python(
            "TypeError",
            &format!("{}() argument {} must be {want}", self.method, i + 1),
        )
    }

    fn string(&self, i: usize) -> Result<String, String> {
        match self.params.get(i) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(self.bad(i, "a string")),
        }
    }

    fn strings(&self, i: usize) -> Result<Vec<String>, String> {
        match self.params.get(i) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.bad(i, "an array of strings")),
                })
                .collect(),
            _ => Err(self.bad(i, "an array of strings")),
        }
    }

    fn int(&self, i: usize) -> Result<i64, String> {
        match self.params.get(i) {
            Some(Value::Integer(n)) => Ok(i64::from(*n)),
            Some(Value::Long(n)) => Ok(*n),
            _ => Err(self.bad(i, "an integer")),
        }
    }

    fn start(&self) -> Result<Start, String> {
        self.arity(&["run", "commander", "nodes", "m", "round_timeout_ms", "seed"])?;
        let nodes = self.strings(2)?;
        let m = self.int(3)?;
        let timeout = self.int(4)?;
        if nodes.len() > MAX_NODES {
            return Err(fault::python(
                "ValueError",
                &format!("at most {MAX_NODES} nodes take part in a run"),
            ));
        }
        let m = usize::try_from(m)
            .ok()
            .filter(|&m| m <= MAX_M)
            .ok_or_else(|| fault::python("ValueError", &format!("m must be 0..={MAX_M}")))?;
        let timeout = u64::try_from(timeout)
            .ok()
            .filter(|&t| (1..=600_000).contains(&t))
            .ok_or_else(|| fault::python("ValueError", "round_timeout_ms must be 1..=600000"))?;
        let seed = self
            .string(5)?
            .parse::<u64>()
            .map_err(|_| fault::python("ValueError", "seed must be a decimal u64 in a string"))?;
        Ok(Start {
            run: self.string(0)?,
            commander: self.string(1)?,
            nodes,
            m,
            round_timeout: Duration::from_millis(timeout),
            seed,
        })
    }
}
