//! Sending one round: each receiver's messages through the node's behaviour, in
//! `system.multicall` batches of at most [`BATCH`], each message with the MAC that proves its
//! sender (and, in SM, this node's signature). One task per receiver walks the round's
//! broadcasts, so only the batches in flight are ever expanded in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use dxr::Value;

use super::{BATCH, Engine, Pending};
use crate::agreement::auth::PairKey;
use crate::agreement::{Protocol, sm};
use crate::behaviour::{Behaviour, entropy};
use crate::calls::{Call, Message, Method};
use crate::peer::PeerError;
use crate::protocol::fault::PyFault;
use crate::trace;

/// How a node sends one round of a run.
#[derive(Clone)]
pub(crate) struct Plan {
    pub(crate) protocol: Protocol,
    /// The run's id on the wire.
    pub(crate) run: Arc<str>,
    /// The run's name for the `random` behaviour (`om-42`): the same for every run of a seed.
    pub(crate) label: Arc<str>,
    /// The run's seed (this node's share), for the `random` behaviour.
    pub(crate) seed: u64,
    /// Timeout of each batch: well within the round.
    pub(crate) timeout: Duration,
    /// The behaviour the run started with.
    pub(crate) behaviour: Arc<Behaviour>,
    /// SM: what this run's signatures bind.
    pub(crate) sm: Option<Arc<sm::Context>>,
    /// The key this node shares with each receiver.
    pub(crate) keys: Arc<HashMap<String, PairKey>>,
}

/// What sending one round did.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    pub(crate) sent: u64,
    pub(crate) delivered: u64,
    /// Messages not delivered, by receiver.
    pub(crate) failed_to: BTreeMap<String, u64>,
}

impl Engine {
    /// Send one round's messages through the behaviour, batched per receiver; returns what
    /// was sent and delivered, and what failed per receiver.
    pub(super) async fn send_round(self: &Arc<Self>, items: Vec<Pending>, plan: Plan) -> Sent {
        let receivers: BTreeSet<String> = items
            .iter()
            .flat_map(|p| p.broadcast.receivers().cloned())
            .collect();
        if let Some(d) = plan.behaviour.delay() {
            tokio::time::sleep(d).await;
        }
        let items = Arc::new(items);
        let mut tasks = tokio::task::JoinSet::new();
        for to in receivers {
            let (engine, items, plan) = (self.clone(), items.clone(), plan.clone());
            tasks.spawn(async move {
                let (sent, delivered) = engine.send_to(&to, &items, &plan).await;
                (to, sent, delivered)
            });
        }
        let mut out = Sent::default();
        while let Some(done) = tasks.join_next().await {
            if let Ok((to, s, d)) = done {
                out.sent += s;
                out.delivered += d;
                if s > d {
                    out.failed_to.insert(to, s - d);
                }
            }
        }
        out
    }

    /// What receiver `to` gets of a round: each broadcast's message for it, through the
    /// behaviour (which may change or withhold it), in batches of [`BATCH`]; returns (sent,
    /// delivered).
    async fn send_to(&self, to: &str, items: &[Pending], plan: &Plan) -> (u64, u64) {
        let (mut sent, mut delivered) = (0, 0);
        let mut batch: Vec<(&Pending, String)> = Vec::new();
        for p in items {
            let Some(index) = p.broadcast.slot(to) else {
                continue;
            };
            let path = p.broadcast.path();
            let mut parts: Vec<&str> = vec![&plan.label];
            parts.extend(path.iter().map(String::as_str));
            parts.push(to);
            let noise = entropy(plan.seed, &parts);
            let value = match &p.only {
                Some(only) => (only == to).then(|| p.broadcast.value().to_string()),
                None => (plan.behaviour).outgoing(
                    p.broadcast.value(),
                    to,
                    index,
                    p.broadcast.len(),
                    noise,
                ),
            };
            if let Some(value) = value {
                batch.push((p, value));
            }
            if batch.len() == BATCH {
                let (s, d) = self.send_batch(to, &batch, plan).await;
                (sent, delivered) = (sent + s, delivered + d);
                batch.clear();
            }
        }
        if !batch.is_empty() {
            let (s, d) = self.send_batch(to, &batch, plan).await;
            (sent, delivered) = (sent + s, delivered + d);
        }
        (sent, delivered)
    }

    /// One `system.multicall` of `batch` to `to` (waiting for a slot first); returns
    /// (sent, delivered). Each message is traced as its own event.
    async fn send_batch(&self, to: &str, batch: &[(&Pending, String)], plan: &Plan) -> (u64, u64) {
        // The semaphore is never closed; without a permit the batch just goes.
        let _slot = self.in_flight.acquire().await.ok();
        let sent = batch.len() as u64;
        let method = Method::Message(plan.protocol);
        let key = plan.keys.get(to);
        let calls: Vec<(String, Vec<Value>)> = batch
            .iter()
            .map(|(p, value)| {
                let names = p.broadcast.path();
                let mut sigs = Vec::new();
                if let Some(ctx) = &plan.sm {
                    sigs = p.prior.clone();
                    sigs.push(sm::sign(&self.key, ctx, value, &names));
                }
                // Every participant's key is checked at the start, so `key` is there; a
                // message without one is sent unproven and refused by the receiver.
                let mac = key.map_or(String::new(), |k| {
                    k.mac(method.name(), &plan.run, to, &names, value, &sigs)
                });
                let message = Message {
                    protocol: plan.protocol,
                    run: plan.run.as_ref().into(),
                    path: names,
                    value: value.clone(),
                    signatures: sigs,
                    mac,
                };
                (
                    method.name().to_string(),
                    Call::Message(message).into_params(),
                )
            })
            .collect();
        let traced: Vec<serde_json::Value> = calls
            .iter()
            .take(self.recorder.quota(&plan.run, calls.len()))
            .map(|(_, args)| serde_json::Value::Array(args.iter().map(trace::to_json).collect()))
            .collect();
        let n = calls.len();
        let start_us = trace::now_us();
        let results: Vec<Result<Value, PyFault>> = match self.cluster.url_of(to) {
            Ok(url) => match self.peers.multicall(&url, calls, plan.timeout).await {
                Ok(results) => results
                    .into_iter()
                    .map(|r| r.map_err(|f| PeerError::Fault(f).python_fault()))
                    .collect(),
                Err(e) => vec![Err(e.python_fault()); n],
            },
            Err(f) => vec![Err(f); n],
        };
        let end_us = trace::now_us();
        let delivered = results.iter().filter(|r| r.is_ok()).count() as u64;
        if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
            tracing::debug!("{} -> {to} in run {}: {e}", self.me, plan.run);
        }
        self.recorder
            .record_all(traced.into_iter().zip(results).map(|(args, result)| {
                trace::Event::call(&plan.run, &self.me, to, method, args, &result)
                    .at(start_us, end_us)
            }));
        (sent, delivered)
    }
}
