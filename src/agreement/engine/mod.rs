//! The agreement engine of one node: runs OM and SM between nodes over XML-RPC, in explicit
//! rounds.
//!
//! [`OmRun`] and [`SmRun`] decide; [`Rounds`] keeps the round structure; the run table
//! ([`table`]) says which runs the node holds; this module answers the extension's calls and
//! moves the messages ([`send`]). The driver opens round r on every participant (`om_round` /
//! `sm_round`): the node sends what round r owes (the commander's order in round 1, the
//! relays of round r - 1's messages after that) through its behaviour, and answers when each
//! has been stored by its receiver or has failed. An incoming message is answered at once:
//! its sender proven by its MAC ([`crate::agreement::auth`]), then stored and its relays
//! queued for the next round, or refused as late when its round is closed here. `*_decide`
//! closes every round and answers at once; nothing waits for a wall-clock deadline. The
//! node's state lock is never held across a network call.
//!
//! Only a run's driver drives it: `*_order`, `*_round`, `*_decide` and `trace_events` carry
//! the capability the run was started with, and a call without it changes nothing. Every
//! driver call is idempotent for its run, so a driver may retry one it could not see
//! answered: a repeated start, order or round gets the first call's answer.

mod faults;
mod script;
mod send;
mod state;
pub(crate) mod table;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use dxr::Value;
use ed25519_dalek::SigningKey;

use self::state::State;
use self::table::{Entry, Key, Life, Room, Table};
use super::Protocol;
use super::auth::PairKey;
use super::om;
use super::reply::{Decided, NodeInfo, Ordered, Role, RoundDone};
use super::rounds::{RoundReport, Rounds};
use super::sm::{self, Accepted, KeyRing};
use crate::behaviour::Behaviour;
use crate::calls::{Call, Driven, Message, Method, RunId, Secret, Start, TraceAccess};
use crate::cluster::Cluster;
use crate::peer::Peers;
use crate::protocol::fault::{self, PyFault};
use crate::protocol::{ext, python_repr};
use crate::trace::{self, Recorder};

pub(crate) use self::table::{MAX_RUNS, START_GRACE};
pub(crate) use crate::calls::MAX_NODES;

/// What one node's engine may hold, set by the server's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budgets {
    /// Largest run accepted, in messages (`server --max-run-messages`).
    pub(crate) run_messages: u64,
    /// Runs remembered (`server --max-runs`); see [`table`] for what is forgotten when.
    pub(crate) runs: usize,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            run_messages: DEFAULT_MAX_RUN_MESSAGES,
            runs: MAX_RUNS,
        }
    }
}

/// Batches one node has in flight at once: a round of OM(m) fans out to every other node,
/// and each batch holds a connection and its buffers on both ends.
pub(crate) const MAX_SENDS_IN_FLIGHT: usize = 8;
/// Messages for one receiver in one `system.multicall`; a round's messages for a receiver go
/// in as many batches as needed.
pub(crate) const BATCH: usize = 64;
/// Default of `server --max-run-messages`: the largest run (all its messages, by the
/// protocol's formula) a node takes part in.
pub(crate) const DEFAULT_MAX_RUN_MESSAGES: u64 = 1_000_000;
/// Bytes of stored and queued messages all remembered runs of a node may hold; beyond, the
/// oldest finished (or abandoned) runs are forgotten, and when only driven runs are left,
/// messages are refused.
pub(crate) const MAX_RUNS_BYTES: usize = 64 * 1024 * 1024;
/// How long a repeated round call waits for the first one's answer beyond the run's round
/// timeout (the first call's batches end within three quarters of it).
const ROUND_RETRY_SLACK: Duration = Duration::from_secs(5);

/// One node's agreement engine.
#[derive(Debug)]
pub struct Engine {
    me: String,
    /// How this node sends in the runs it starts from now on (a run keeps the behaviour it
    /// started with; see [`Engine::set_behaviour`]).
    behaviour: RwLock<Arc<Behaviour>>,
    seed: u64,
    key: SigningKey,
    cluster: Arc<Cluster>,
    peers: Peers,
    table: Mutex<Table<Run>>,
    recorder: Arc<Recorder>,
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Woken when a round's sending ends, for repeated round calls waiting on its answer.
    rounds_done: tokio::sync::Notify,
    budgets: Budgets,
}

/// One run as this node holds it.
#[derive(Debug)]
struct Run {
    state: State,
    /// How this node sends in this run: the engine's behaviour when the run started.
    behaviour: Arc<Behaviour>,
    /// The run's seed XOR the server's `--seed`, for the `random` behaviour.
    seed: u64,
    /// The run's name from its seed (`om-42`), for the `random` behaviour: the same messages
    /// for the same seed, whatever the run's random id.
    label: Arc<str>,
    round_timeout: Duration,
    rounds: Rounds<Pending>,
    /// The order given to this node as commander, and the messages it made.
    order: Option<(String, usize)>,
    /// The key this node shares with each other participant.
    keys: Arc<HashMap<String, PairKey>>,
    /// SM: the participants' public keys (this node's own included).
    ring: KeyRing,
    /// A scripted SM traitor's chains (empty for every other behaviour).
    held: script::Held,
    /// Messages refused because their MAC did not prove their sender.
    unauthenticated: u64,
    /// Each round's answer, once its sending ended (what a repeated round call gets).
    answers: Vec<Option<RoundDone>>,
    /// OM: a lieutenant's decision, evaluated once (a decide asked again, or 1,024 times in
    /// one batch, costs nothing more).
    decision: Arc<tokio::sync::OnceCell<String>>,
}

/// What a node owes a round: one received message's relay (or the commander's order) to all
/// its receivers, before the behaviour.
#[derive(Debug)]
struct Pending {
    /// The message and its receivers.
    broadcast: om::Broadcast,
    /// SM: the signatures of the path before this node.
    prior: Vec<String>,
    /// A scripted message: its value goes, as is, to this receiver only.
    only: Option<String>,
}

impl Pending {
    /// Approximate bytes it holds while queued.
    fn bytes(&self) -> usize {
        96 + self.broadcast.value().len() + self.prior.iter().map(|p| p.len() + 24).sum::<usize>()
    }
}

impl From<om::Broadcast> for Pending {
    fn from(broadcast: om::Broadcast) -> Self {
        Pending {
            broadcast,
            prior: Vec::new(),
            only: None,
        }
    }
}

impl From<sm::SmBroadcast> for Pending {
    fn from(s: sm::SmBroadcast) -> Self {
        Pending {
            broadcast: s.broadcast,
            prior: s.prior,
            only: None,
        }
    }
}

impl Engine {
    /// How this node sends in the runs it starts from now on.
    pub(crate) fn behaviour(&self) -> Arc<Behaviour> {
        self.behaviour
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Send with `behaviour` in the runs started from now on; runs already started keep
    /// theirs. Not reachable over the wire (no caller may turn a node into a traitor): the
    /// in-process explorer uses it to reuse one cluster for many cases.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.behaviour.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(behaviour);
    }

    /// The engine of node `me`, sending with `behaviour`; `seed` is the server's `--seed`.
    pub(crate) fn new(
        me: &str,
        behaviour: Behaviour,
        seed: u64,
        cluster: Arc<Cluster>,
        peers: Peers,
        recorder: Arc<Recorder>,
        budgets: Budgets,
    ) -> Result<Self, String> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("no randomness for the SM key: {e}"))?;
        Ok(Engine {
            me: me.to_string(),
            behaviour: RwLock::new(Arc::new(behaviour)),
            seed,
            key: SigningKey::from_bytes(&secret),
            cluster,
            peers,
            table: Mutex::new(Table::new(budgets.runs)),
            recorder,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_SENDS_IN_FLIGHT)),
            rounds_done: tokio::sync::Notify::new(),
            budgets,
        })
    }

    /// Forget every run, as a fresh engine has none (an offline node reused for independent
    /// cases: `server::Offline::reset`).
    pub(crate) fn forget_runs(&self) {
        *self.lock() = Table::new(self.budgets.runs);
    }

    /// Answer one agreement call (its params already read, with Python's faults, by
    /// [`Call::decode`]): the value, or a fault.
    pub(crate) async fn call(self: &Arc<Self>, call: Call) -> Result<Value, PyFault> {
        match call {
            Call::NodeInfo => Ok(self.node_info()),
            Call::SmPublicKey => Ok(Value::String(self.public_key())),
            Call::Start(start) => self.start(start),
            Call::Order(driven, order) => self.order(driven, order),
            Call::Round(driven, round) => self.round(driven, round).await,
            Call::Message(message) => {
                self.message(&message)?;
                Ok(Value::String(trace::now_us().to_string()))
            }
            Call::Decide(driven) => self.decide(driven).await,
            Call::TraceEvents {
                run,
                access,
                since_us,
            } => self.trace_events(&run, &access, since_us),
            other => Err(fault::unsupported_method(other.method().name())),
        }
    }

    /// This node's SM public key, as `sm_public_key` and `node_info` give it.
    fn public_key(&self) -> String {
        sm::encode(self.key.verifying_key().as_bytes())
    }

    /// `node_info()`: who this node is and how it sends in the runs it starts now.
    fn node_info(&self) -> Value {
        let behaviour = self.behaviour();
        NodeInfo {
            name: self.me.clone(),
            behaviour: Some(behaviour.to_string()),
            traitor: behaviour.is_traitor(),
            public_key: self.public_key(),
        }
        .to_value()
    }

    fn lock(&self) -> MutexGuard<'_, Table<Run>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The run `key` for a call of its driver: unknown run, or not its capability, is refused
    /// before anything changes; otherwise the run counts as advanced now.
    fn driven<'t>(
        table: &'t mut Table<Run>,
        key: &Key,
        capability: &Secret,
        now: Instant,
    ) -> Result<&'t mut Entry<Run>, PyFault> {
        let entry = table
            .get_mut(key)
            .ok_or_else(|| faults::unknown_run(key.1.as_str()))?;
        if !entry.is_driven_by(capability) {
            return Err(faults::not_the_driver(key.1.as_str()));
        }
        entry.life.advance(now);
        Ok(entry)
    }

    /// `om_start(...)` / `sm_start(..., public_keys)`: hold a new run, or answer a retried
    /// start of a run already held with the same capability.
    fn start(&self, start: Start) -> Result<Value, PyFault> {
        let protocol = start.protocol;
        let count = protocol.max_messages(start.nodes.len(), start.m);
        if count > self.budgets.run_messages {
            return Err(faults::over_budget(count, self.budgets.run_messages));
        }
        let state =
            State::new(&start, &self.me).map_err(|e| faults::value_error(&e.to_string()))?;
        check_keys(&start, &self.me)?;
        let run = self.new_run(protocol, &start, state);
        let now = Instant::now();
        let key = (protocol, start.run.clone());
        let mut table = self.lock();
        match table
            .room(&key, &start.capability, now)
            .map_err(|why| faults::refused_start(start.run.as_str(), why))?
        {
            Room::Again => {}
            Room::Fresh => {
                self.recorder.restart(start.run.as_str());
                let life = Life::new(now, start.round_timeout, start.m);
                table.insert(key, Entry::new(run, life, start.capability));
            }
        }
        Ok(Value::String(ext::OK.into()))
    }

    /// This node's state of a new run.
    fn new_run(&self, protocol: Protocol, start: &Start, state: State) -> Run {
        let n = start.nodes.len();
        // OM stores each path once, so its store is bounded by the formula; SM accepts each
        // (path, value) once, and a sender has at most two values per path.
        let per_sender = match protocol {
            Protocol::Om => u64::MAX,
            Protocol::Sm => 2 * om::paths_per_sender(n, start.m),
        };
        let mut ring = KeyRing::new();
        if protocol == Protocol::Sm {
            for (name, text) in &start.public_keys {
                if *name != self.me
                    && let Ok(k) = sm::decode_key(text)
                {
                    ring.insert(name.clone(), k);
                }
            }
            ring.insert(self.me.clone(), self.key.verifying_key());
        }
        Run {
            state,
            behaviour: self.behaviour(),
            seed: start.seed ^ self.seed,
            label: protocol.label(start.seed).into(),
            round_timeout: start.round_timeout,
            rounds: Rounds::new(start.m + 1, per_sender),
            order: None,
            keys: Arc::new(
                (start.keys.iter())
                    .map(|(name, key)| (name.clone(), PairKey::new(key)))
                    .collect(),
            ),
            ring,
            held: script::Held::default(),
            unauthenticated: 0,
            answers: vec![None; start.m + 1],
            decision: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// `om_order(run, capability, order)` / `sm_order(...)`: the commander's order, queued for
    /// round 1. The same order again gets the same answer (a retry); another is refused.
    fn order(&self, driven: Driven, order: String) -> Result<Value, PyFault> {
        let now = Instant::now();
        let key = (driven.protocol, driven.run);
        let mut table = self.lock();
        let entry = Self::driven(&mut table, &key, &driven.capability, now)?;
        let r = &mut entry.value;
        if !r.state.is_commander() {
            return Err(faults::not_commander(&self.me, key.1.as_str()));
        }
        let queued = match &r.order {
            Some((given, queued)) if *given == order => *queued,
            Some(_) => return Err(faults::has_order(key.1.as_str())),
            None => {
                let sends = r.state.command(&order);
                let (queued, bytes) = (sends.broadcast.len(), sends.bytes());
                r.order = Some((order, queued));
                r.rounds.queue(1, vec![sends]);
                table.add_bytes(&key, bytes as isize, MAX_RUNS_BYTES, now);
                queued
            }
        };
        Ok(Ordered {
            queued: queued as u64,
        }
        .to_value())
    }

    /// `om_round(run, capability, round)` / `sm_round(...)`: open round `round` here and
    /// send what it owes; the answer says how it went. The sending runs in its own task, so a
    /// driver that stops waiting (its round timeout) does not cancel it: the messages still
    /// go out, and arrive late. The round just opened asked again waits for that answer.
    async fn round(self: &Arc<Self>, driven: Driven, round: i64) -> Result<Value, PyFault> {
        let round = usize::try_from(round).unwrap_or(0);
        let key = (driven.protocol, driven.run);
        let now = Instant::now();
        let step = {
            let mut table = self.lock();
            let entry = Self::driven(&mut table, &key, &driven.capability, now)?;
            let r = &entry.value;
            if round >= 1 && round == r.rounds.opened() {
                Err(r.round_timeout + ROUND_RETRY_SLACK)
            } else {
                Ok(self.open_round(&mut table, &key, round, now)?)
            }
        };
        let (items, plan, due) = match step {
            Ok(opened) => opened,
            Err(wait) => return self.answer_of(&key, round, wait).await,
        };
        let engine = self.clone();
        let task = tokio::spawn(async move {
            let done = engine.send_round(items, plan).await;
            let answer = RoundDone {
                round: round as u64,
                due,
                sent: done.sent,
                delivered: done.delivered,
                failed: done.sent - done.delivered,
                failed_to: done.failed_to,
            };
            if let Some(entry) = engine.lock().get_mut(&key) {
                let r = &mut entry.value;
                r.rounds.report(
                    round,
                    RoundReport {
                        due,
                        sent: answer.sent,
                        delivered: answer.delivered,
                        failed: answer.failed,
                    },
                );
                if let Some(slot) = r.answers.get_mut(round - 1) {
                    *slot = Some(answer.clone());
                }
            }
            engine.rounds_done.notify_waiters();
            answer
        });
        let answer = task.await.unwrap_or_default();
        Ok(answer.to_value())
    }

    /// Open round `round` of run `key` (whose driver is checked): what it owes, in the order
    /// of their paths, and how to send it.
    fn open_round(
        &self,
        table: &mut Table<Run>,
        key: &Key,
        round: usize,
        now: Instant,
    ) -> Result<(Vec<Pending>, send::Plan, u64), PyFault> {
        let entry = table
            .get_mut(key)
            .ok_or_else(|| faults::unknown_run(key.1.as_str()))?;
        let r = &mut entry.value;
        let mut items = r
            .rounds
            .open(round)
            .map_err(|e| faults::value_error(&e.to_string()))?;
        // The same messages in the same order whatever order they arrived in: batches,
        // traces and (SM) which path of a value is relayed are then reproducible.
        items.sort_by(|a, b| a.broadcast.order_key().cmp(b.broadcast.order_key()));
        if let State::Sm(sm) = &mut r.state {
            items.retain(|p| sm.take_relay(p.broadcast.value()));
        }
        let released: usize = items.iter().map(Pending::bytes).sum();
        let due: u64 = items.iter().map(|p| p.broadcast.len() as u64).sum();
        let ctx = r.state.sm_context();
        // A scripted traitor owes what the protocol says (`due`) but sends its script.
        let (held, key_pair) = (&mut r.held, &self.key);
        let scripted = script::messages(
            &r.behaviour,
            r.state.nodes(),
            &self.me,
            round,
            |path, value| match &ctx {
                Some(ctx) => held.chain(key_pair, ctx, path, value, round),
                None => Vec::new(),
            },
        );
        // A batch must be answered well within the round, so that a slow receiver (a
        // delayed traitor, a crashed node) makes its messages fail, not the sender late.
        let plan = send::Plan {
            protocol: key.0,
            run: key.1.as_str().into(),
            label: r.label.clone(),
            seed: r.seed,
            timeout: r.round_timeout * 3 / 4,
            behaviour: r.behaviour.clone(),
            sm: ctx,
            keys: r.keys.clone(),
        };
        table.add_bytes(key, -(released as isize), MAX_RUNS_BYTES, now);
        Ok((scripted.unwrap_or(items), plan, due))
    }

    /// The answer of round `round` of `key`, once its sending ends (at most `wait`).
    async fn answer_of(&self, key: &Key, round: usize, wait: Duration) -> Result<Value, PyFault> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.rounds_done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let table = self.lock();
                let entry = (table.get(key)).ok_or_else(|| faults::unknown_run(key.1.as_str()))?;
                if let Some(Some(answer)) = entry.value.answers.get(round - 1) {
                    return Ok(answer.to_value());
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(faults::round_busy(round));
            }
        }
    }

    /// One message from a peer: its sender proven, then admitted by the rounds, taken by the
    /// algorithm and its relays queued. Refused, and counted, when its MAC does not prove its
    /// sender (before anything else about it: an outsider can make no message count as late).
    fn message(&self, m: &Message) -> Result<(), PyFault> {
        let (run, path, value, sigs) = (m.run.as_str(), &m.path, m.value.as_str(), &m.signatures);
        let now = Instant::now();
        let key = (m.protocol, m.run.clone());
        let mut table = self.lock();
        let total = table.bytes();
        let entry = table
            .get_mut(&key)
            .ok_or_else(|| faults::unknown_run(run))?;
        let r = &mut entry.value;
        if let Err(why) = authenticate(&r.keys, &self.me, m) {
            r.unauthenticated += 1;
            return Err(faults::not_authenticated(&why));
        }
        // A copy of a message already taken (a retried batch, a replay) is answered as
        // stored and nothing more, before the late check: whoever replays a loyal node's
        // message after its round cannot make that node look late.
        if r.state.is_duplicate(path, value) {
            return Ok(());
        }
        check_bytes(entry.bytes, total)?;
        let sender = path.last().map_or("?", String::as_str);
        (r.rounds.admit(path.len(), sender)).map_err(|e| faults::refused_message(run, e))?;
        let relay = match &mut r.state {
            State::Om(om) => Some(Pending::from(
                om.receive(path, value)
                    .map_err(|e| faults::value_error(&e.to_string()))?,
            )),
            State::Sm(sm) => {
                (r.rounds.can_spend(sender)).map_err(|e| faults::refused_message(run, e))?;
                let taken = sm
                    .receive(&r.ring, path, value, sigs)
                    .map_err(|e| faults::value_error(&format!("message rejected: {e}")))?;
                match taken {
                    Accepted::Duplicate => None,
                    Accepted::New(b) => {
                        (r.rounds.spend(sender)).map_err(|e| faults::refused_message(run, e))?;
                        if r.behaviour.script().is_some() {
                            r.held.keep(path, value, sigs);
                        }
                        Some(Pending::from(b))
                    }
                }
            }
        };
        if let Some(relay) = relay {
            let bytes = message_bytes(value) + relay.bytes();
            if !relay.broadcast.is_empty() {
                r.rounds.queue(path.len() + 1, vec![relay]);
            }
            table.add_bytes(&key, bytes as isize, MAX_RUNS_BYTES, now);
        }
        Ok(())
    }

    /// `om_decide(run, capability)` / `sm_decide(...)`: close every round of the run and
    /// decide. An OM lieutenant's evaluation runs once, on a blocking thread, on a copy of
    /// what it received, without the engine's lock: however large the tree, the other nodes of
    /// the process and their methods keep answering (its size is bounded by what was
    /// received, see `OmRun::decide`); asked again, the decide answers from it at once.
    async fn decide(&self, driven: Driven) -> Result<Value, PyFault> {
        let key = (driven.protocol, driven.run);
        let (om, cell) = {
            let mut table = self.lock();
            let entry = Self::driven(&mut table, &key, &driven.capability, Instant::now())?;
            entry.life.decide();
            let r = &mut entry.value;
            r.rounds.close_all();
            let om = match &r.state {
                State::Om(om) if !om.is_commander() && r.decision.get().is_none() => {
                    Some(om.clone())
                }
                _ => None,
            };
            (om, r.decision.clone())
        };
        if let Some(om) = om {
            cell.get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || om.decide())
                    .await
                    .map_err(|e| faults::evaluation_failed(&e))
            })
            .await?;
        }
        let mut table = self.lock();
        // Decided, so finished: gone meanwhile only if the table needed its place for a new
        // run; then it is unknown, as it would be now.
        let entry = table
            .get_mut(&key)
            .ok_or_else(|| faults::unknown_run(key.1.as_str()))?;
        let answer = decide_answer(&entry.value).to_value();
        // The decision is kept; the messages behind it serve nothing now (every later message
        // is late), and a node keeps up to --max-runs decided runs.
        entry.value.state.release();
        let held = entry.bytes;
        table.add_bytes(&key, -(held as isize), MAX_RUNS_BYTES, Instant::now());
        Ok(answer)
    }

    /// `trace_events(run, capability, since_us)`: this process's recorded calls of `run`
    /// made by this node, for the run's driver (any caller for the original run, which has
    /// no driver).
    fn trace_events(
        &self,
        run: &RunId,
        access: &TraceAccess,
        since: u64,
    ) -> Result<Value, PyFault> {
        if let TraceAccess::Run(capability) = access {
            let table = self.lock();
            let held: Vec<&Entry<Run>> = [Protocol::Om, Protocol::Sm]
                .into_iter()
                .filter_map(|p| table.get(&(p, run.clone())))
                .collect();
            if held.is_empty() {
                return Err(faults::unknown_run(run.as_str()));
            }
            if !held.iter().any(|e| e.is_driven_by(capability)) {
                return Err(faults::not_the_driver(run.as_str()));
            }
        }
        let events = self.recorder.events(run.as_str(), &self.me, since);
        Ok(Value::Array(events.iter().map(trace::to_value).collect()))
    }
}

/// The keys of a start must name every other participant and nobody else: a missing key
/// would make that pair's messages unprovable, an extra one names a stranger.
pub(crate) fn check_keys(start: &Start, me: &str) -> Result<(), PyFault> {
    for name in &start.nodes {
        if name != me && !start.keys.contains_key(name) {
            return Err(fault::python(
                "ValueError",
                &format!("keys has no key for {name}: every other participant needs one"),
            ));
        }
    }
    let stranger = start
        .keys
        .keys()
        .filter(|k| *k == me || !start.nodes.contains(k))
        .min();
    if let Some(name) = stranger {
        return Err(fault::python(
            "ValueError",
            &format!(
                "keys names {}, {}",
                python_repr(name),
                if name == me {
                    "this node itself"
                } else {
                    "which takes no part in this run"
                }
            ),
        ));
    }
    Ok(())
}

/// Whether the message's MAC proves that its path's last node sent it to `me`: the key of
/// that pair, given to both at the start, made it. The reason when it does not.
fn authenticate(keys: &HashMap<String, PairKey>, me: &str, m: &Message) -> Result<(), String> {
    let sender = m.path.last().ok_or("the path names no sender")?;
    let key = keys
        .get(sender)
        .ok_or_else(|| format!("{sender:?} shares no key with {me} in this run"))?;
    let method = Method::Message(m.protocol).name();
    let (run, value) = (m.run.as_str(), m.value.as_str());
    if !key.verify(method, run, me, &m.path, value, &m.signatures, &m.mac) {
        return Err(format!("its MAC does not prove that {sender:?} sent it"));
    }
    Ok(())
}

/// What `*_decide` answers: the role and decision, and per round what this node delivered
/// (`sent`), what failed and what its behaviour withheld, who sent it late messages, how
/// many messages were refused unproven; and each protocol's own counts.
fn decide_answer(r: &Run) -> Decided {
    let reports = r.rounds.reports();
    let per = |f: &dyn Fn(&RoundReport) -> u64| reports.iter().map(f).collect();
    let commander = r.state.is_commander();
    let (role, decision) = match (&r.state, commander) {
        (_, true) => (
            Role::Commander,
            r.order.as_ref().map(|o| o.0.clone()).unwrap_or_default(),
        ),
        (State::Om(_), false) => (
            Role::Lieutenant,
            r.decision.get().cloned().unwrap_or_default(),
        ),
        (State::Sm(sm), false) => (Role::Lieutenant, sm.decide()),
    };
    let base = Decided {
        role: Some(role),
        decision: Some(decision),
        sent: per(&|x| x.delivered),
        failed: per(&|x| x.failed),
        withheld: per(&|x| x.due - x.sent.min(x.due)),
        late: r.rounds.late().clone(),
        unauthenticated: Some(r.unauthenticated),
        ..Decided::default()
    };
    match &r.state {
        State::Om(om) => Decided {
            received: om.received() as u64,
            expected: Some(om.expected() as u64),
            ..base
        },
        State::Sm(sm) => Decided {
            received: sm.accepted(),
            rejected: Some(sm.rejected()),
            values: Some(sm.values()),
            reasons: Some(sm.reasons().to_vec()),
            forged: r.behaviour.script().map(|_| r.held.forged),
            ..base
        },
    }
}

/// Refuse a message when its run, or all runs together, hold more than [`MAX_RUNS_BYTES`]
/// (finished and abandoned runs were forgotten first).
fn check_bytes(run: usize, total: usize) -> Result<(), PyFault> {
    if run > MAX_RUNS_BYTES {
        return Err(faults::too_many_bytes(false));
    }
    if total > MAX_RUNS_BYTES {
        return Err(faults::too_many_bytes(true));
    }
    Ok(())
}

/// What storing one message costs a run: a packed path and a value id in the run's table
/// (`OmRun`), or a signature chain checked and dropped (`SmRun` keeps its value set and the
/// (path, value) pairs seen); the value itself only when new, which the 1 KiB cap bounds.
fn message_bytes(value: &str) -> usize {
    24 + value.len().min(64)
}
