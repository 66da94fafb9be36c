//! The agreement engine of one node: runs OM and SM between nodes over XML-RPC, in explicit
//! rounds.
//!
//! [`OmRun`] and [`SmRun`] decide; [`Rounds`] keeps the round structure; this module moves the
//! messages. The driver opens round r on every participant (`om_round` / `sm_round`): the node
//! sends what round r owes (the commander's order in round 1, the relays of round r - 1's
//! messages after that) through its behaviour, the messages for one receiver batched in
//! `system.multicall` calls of at most [`BATCH`] messages, and answers when each has been
//! stored by its receiver or has failed. An incoming message is answered at once: stored and
//! its relays queued for the next round, or refused as late when its round is closed here.
//! `*_decide` closes every round and answers at once; nothing waits for a wall-clock deadline.
//! The node's state lock is never held across a network call.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dxr::Value;
use ed25519_dalek::SigningKey;

use super::om::{self, OmRun};
use super::reply::{Decided, NodeInfo, Ordered, Role, RoundDone, SmStarted};
use super::rounds::{Refused, RoundReport, Rounds};
use super::sm::{self, KeyRing, SmRun};
use crate::behaviour::{Behaviour, entropy};
use crate::cluster::Cluster;
use crate::peer::{PeerError, Peers};
use crate::protocol::fault::PyFault;
use crate::protocol::{ext, fault};
use crate::trace::{self, Recorder};

/// Runs remembered per node by default (`server --max-runs`). Beyond, the oldest *finished* run
/// is forgotten; when none is finished, a new run is refused (see [`Life`]).
pub const MAX_RUNS: usize = 256;

/// What one node's engine may hold, set by the server's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Largest run accepted, in messages (`server --max-run-messages`).
    pub run_messages: u64,
    /// Runs remembered (`server --max-runs`); beyond, the oldest finished run is forgotten, and
    /// a new run is refused when none is finished.
    pub runs: usize,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            run_messages: DEFAULT_MAX_RUN_MESSAGES,
            runs: MAX_RUNS,
        }
    }
}
/// Largest run accepted: OM's message count grows as n^(m+1).
pub const MAX_NODES: usize = 64;
/// Largest `m` accepted.
pub const MAX_M: usize = 8;
/// Batches one node has in flight at once: a round of OM(m) fans out to every other node,
/// and each batch holds a connection and its buffers on both ends.
pub const MAX_SENDS_IN_FLIGHT: usize = 8;
/// Messages for one receiver in one `system.multicall`; a round's messages for a receiver go
/// in as many batches as needed.
pub const BATCH: usize = 64;
/// Default of `server --max-run-messages`: the largest run (all its messages, by the
/// protocol's formula) a node takes part in.
pub const DEFAULT_MAX_RUN_MESSAGES: u64 = 1_000_000;
/// Longest value a message may carry (orders are `attack` / `retreat`; a traitor's may be
/// anything, but not this node's memory).
pub const MAX_VALUE: usize = 1024;
/// Bytes of stored and queued messages all remembered runs of a node may hold; beyond, the
/// oldest finished runs are forgotten, and when only unfinished runs are left, messages are
/// refused.
pub const MAX_RUNS_BYTES: usize = 64 * 1024 * 1024;
/// Key fetches (`sm_public_key` calls made by `sm_start`) one node has in flight at once, over
/// all its starts: a flood of `sm_start` waits for these slots instead of opening a connection
/// per participant per start. Separate from [`MAX_SENDS_IN_FLIGHT`], so such a flood cannot
/// hold up the rounds of live runs.
pub const MAX_KEY_FETCHES_IN_FLIGHT: usize = 4;
/// What a run's expiry adds to its rounds: room for the driver's calls around them (the other
/// nodes' starts, the order, the decide: each within `client --rpc-timeout`, 10 s by default).
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The longest a run that is never decided holds its place: without it, starts with the
/// largest parameters (600 s rounds, m = 8) would hold a full table for 6,060 s each. A run
/// slower than this is taken for abandoned; it still answers until a new run needs its place.
pub const MAX_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// How long after its start a run holds its place in the table if it is never decided:
/// `round_timeout * (m + 2) + EXPIRY_MARGIN`, at most [`MAX_EXPIRY`]. A run the driver
/// carries through is decided within `m + 1` round timeouts and a few calls; one round
/// timeout spare and the margin cover the calls. Measured from the start, not from the last
/// call: no caller can keep a run alive by poking it.
pub fn expiry(round_timeout: Duration, m: usize) -> Duration {
    (round_timeout.saturating_mul(u32::try_from(m + 2).unwrap_or(u32::MAX)) + EXPIRY_MARGIN)
        .min(MAX_EXPIRY)
}

/// Whether a run still holds its place in the node's table. A run is *finished* once it is
/// decided here (`om_decide` / `sm_decide` called) or its [`expiry`] has passed since it
/// started. A finished run still answers every call until it is forgotten, and only finished
/// runs are forgotten (oldest start first), when the table is full (`--max-runs`) or over its
/// bytes ([`MAX_RUNS_BYTES`]); a finished run's id may be started again. An unfinished run is
/// never forgotten nor replaced: a start with its id, or a start when the table holds only
/// unfinished runs, is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Life {
    /// When it expires if not decided.
    pub expires: Instant,
    /// Decided here.
    pub decided: bool,
}

impl Life {
    /// The life of a run started at `now` with these parameters.
    pub fn new(now: Instant, round_timeout: Duration, m: usize) -> Self {
        Life {
            expires: now + expiry(round_timeout, m),
            decided: false,
        }
    }

    /// Decided, or expired at `now`.
    pub fn finished(&self, now: Instant) -> bool {
        self.decided || now >= self.expires
    }
}

/// One node's agreement engine.
#[derive(Debug)]
pub struct Engine {
    me: String,
    /// How this node sends in the runs it starts from now on (a run keeps the behaviour it
    /// started with; see [`Engine::set_behaviour`]).
    behaviour: std::sync::RwLock<Arc<Behaviour>>,
    seed: u64,
    key: SigningKey,
    cluster: Arc<Cluster>,
    peers: Peers,
    state: Mutex<Runs>,
    recorder: Arc<Recorder>,
    in_flight: Arc<tokio::sync::Semaphore>,
    key_fetches: Arc<tokio::sync::Semaphore>,
    budgets: Budgets,
}

/// The node's runs: OM and SM in separate tables (an id names one run of each), sharing one
/// limit (`--max-runs`) and one byte budget. See [`Life`] for what is forgotten when.
#[derive(Debug, Default)]
struct Runs {
    om: HashMap<String, Run<OmRun>>,
    sm: HashMap<String, Run<SmRun>>,
    /// Every run, oldest start first.
    started: VecDeque<(Protocol, String)>,
    /// Bytes of all runs' stored and queued messages.
    bytes: usize,
}

#[derive(Debug)]
struct Run<R> {
    run: R,
    /// How this node sends in this run: the engine's behaviour when the run started.
    behaviour: Arc<Behaviour>,
    seed: u64,
    round_timeout: Duration,
    rounds: Rounds<Pending>,
    /// The order given to this node as commander.
    order: Option<String>,
    keys: KeyRing,
    /// Approximate bytes of its stored and queued messages.
    bytes: usize,
    /// Whether it still holds its place in the table.
    life: Life,
    /// A scripted traitor's (SM) signature chains received, by path prefix and value: what it
    /// can send validly. Empty for every other behaviour.
    held: HashMap<Vec<String>, BTreeMap<String, Vec<String>>>,
    /// SM messages a scripted traitor sent with a chain it did not hold (altered or forged).
    forged: u64,
}

/// How a node sends one round of a run.
#[derive(Clone)]
struct How {
    /// The run's seed (this node's share), for the `random` behaviour.
    seed: u64,
    /// Timeout of each batch: well within the round.
    timeout: Duration,
    /// The behaviour the run started with.
    behaviour: Arc<Behaviour>,
    /// SM: what this run's signatures bind.
    sm: Option<Arc<sm::Context>>,
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
    /// How this node sends in the runs it starts from now on.
    pub fn behaviour(&self) -> Arc<Behaviour> {
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
    pub fn new(
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
            behaviour: std::sync::RwLock::new(Arc::new(behaviour)),
            seed,
            key: SigningKey::from_bytes(&secret),
            cluster,
            peers,
            state: Mutex::new(Runs::default()),
            recorder,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_SENDS_IN_FLIGHT)),
            key_fetches: Arc::new(tokio::sync::Semaphore::new(MAX_KEY_FETCHES_IN_FLIGHT)),
            budgets,
        })
    }

    /// Whether `method` is one of ours.
    pub fn handles(method: &str) -> bool {
        ext::METHODS.contains(&method)
    }

    /// Handle one extension call: the value, or a fault string. One handler per method
    /// family; each checks its arguments (arity first, then each argument in order, as
    /// Python reports them) before it touches a run.
    pub async fn call(self: &Arc<Self>, method: &str, params: &[Value]) -> Result<Value, PyFault> {
        let args = Args { method, params };
        match method {
            ext::NODE_INFO => self.node_info(&args),
            ext::SM_PUBLIC_KEY => {
                args.arity(&[])?;
                Ok(Value::String(self.public_key()))
            }
            ext::OM_START => self.om_start(&args),
            ext::SM_START => self.sm_start(&args).await,
            ext::OM_ORDER => self.order_call(Protocol::Om, &args),
            ext::SM_ORDER => self.order_call(Protocol::Sm, &args),
            ext::OM_ROUND => self.round_call(Protocol::Om, &args).await,
            ext::SM_ROUND => self.round_call(Protocol::Sm, &args).await,
            ext::OM_MESSAGE => {
                args.arity(&["run", "path", "value"])?;
                let (run, path, value) = (args.string(0)?, args.strings(1)?, args.string(2)?);
                self.om_message(&run, &path, &value)?;
                Ok(Value::String(trace::now_us().to_string()))
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
                Ok(Value::String(trace::now_us().to_string()))
            }
            ext::OM_DECIDE => {
                args.arity(&["run"])?;
                self.om_decide(&args.string(0)?).await
            }
            ext::SM_DECIDE => {
                args.arity(&["run"])?;
                self.sm_decide(&args.string(0)?)
            }
            ext::TRACE_EVENTS => self.trace_events(&args),
            other => Err(fault::unsupported_method(other)),
        }
    }

    /// This node's SM public key, as `sm_public_key` and `node_info` give it.
    fn public_key(&self) -> String {
        sm::encode(self.key.verifying_key().as_bytes())
    }

    /// `node_info()`: who this node is and how it sends in the runs it starts now.
    fn node_info(&self, args: &Args<'_>) -> Result<Value, PyFault> {
        args.arity(&[])?;
        let behaviour = self.behaviour();
        Ok(NodeInfo {
            name: self.me.clone(),
            behaviour: Some(behaviour.to_string()),
            traitor: behaviour.is_traitor(),
            public_key: self.public_key(),
        }
        .to_value())
    }

    /// `om_start(run, commander, nodes, m, round_timeout_ms, seed)`.
    fn om_start(&self, args: &Args<'_>) -> Result<Value, PyFault> {
        let start = args.start()?;
        self.check_budget(&start, 1)?;
        let om = OmRun::new(&self.me, &start.commander, &start.nodes, start.m)
            .map_err(|e| fault::python("ValueError", &e))?;
        let budget = om.expected() as u64;
        self.insert(Protocol::Om, &start, budget, |runs, run| {
            runs.om.insert(start.run.clone(), run.with(om));
        })?;
        Ok(Value::String(ext::OK.into()))
    }

    /// `sm_start(run, commander, nodes, m, round_timeout_ms, seed[, nonce])`: as `om_start`,
    /// plus the run's nonce and the participants' public keys, fetched before the run is
    /// remembered (so a start that cannot have a place is refused before any fetch).
    async fn sm_start(&self, args: &Args<'_>) -> Result<Value, PyFault> {
        let (start, given) = args.sm_start()?;
        self.check_budget(&start, 2)?;
        om::check_run(&self.me, &start.commander, &start.nodes)
            .map_err(|e| fault::python("ValueError", &e))?;
        let nonce = self.nonce(&start, given)?;
        let sm = SmRun::new(
            &start.run,
            &nonce,
            &self.me,
            &start.commander,
            &start.nodes,
            start.m,
        )
        .map_err(|e| fault::python("ValueError", &e))?;
        // Refused now rather than after fetching keys; checked again when inserting.
        self.lock()
            .make_room(Protocol::Sm, &start.run, self.budgets.runs, Instant::now())?;
        let (keys, missing) = self.fetch_keys(&start.nodes).await;
        let fetched = keys.len();
        // SM relays each distinct value once per path: two values, twice OM's paths.
        let budget = 2 * om::expected_received(start.nodes.len(), start.m);
        self.insert(Protocol::Sm, &start, budget, |runs, run| {
            let mut run = run.with(sm);
            run.keys = keys;
            runs.sm.insert(start.run.clone(), run);
        })?;
        Ok(SmStarted {
            keys: fetched as u64,
            missing,
            nonce: Some(nonce),
        }
        .to_value())
    }

    /// `om_order(run, order)` / `sm_order(run, order)`.
    fn order_call(&self, protocol: Protocol, args: &Args<'_>) -> Result<Value, PyFault> {
        args.arity(&["run", "order"])?;
        let (run, order) = (args.string(0)?, args.string(1)?);
        let queued = self.order(protocol, &run, &order)?;
        Ok(Ordered {
            queued: queued as u64,
        }
        .to_value())
    }

    /// `om_round(run, round)` / `sm_round(run, round)`.
    async fn round_call(
        self: &Arc<Self>,
        protocol: Protocol,
        args: &Args<'_>,
    ) -> Result<Value, PyFault> {
        args.arity(&["run", "round"])?;
        let run = args.string(0)?;
        let round = usize::try_from(args.int(1)?).unwrap_or(0);
        self.round(protocol, &run, round).await
    }

    /// `trace_events(run, since_us)`: this process's recorded calls of `run` made by this node.
    fn trace_events(&self, args: &Args<'_>) -> Result<Value, PyFault> {
        args.arity(&["run", "since_us"])?;
        let since = args.string(1)?.parse::<u64>().map_err(|_| {
            fault::python("ValueError", "since_us must be a decimal u64 in a string")
        })?;
        let events = self.recorder.events(&args.string(0)?, &self.me, since);
        Ok(Value::Array(events.iter().map(trace::to_value).collect()))
    }
    fn lock(&self) -> MutexGuard<'_, Runs> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuse a run whose message count (by the protocol's formula, `factor` times OM's) is
    /// over this node's budget (`server --max-run-messages`).
    fn check_budget(&self, start: &Start, factor: u64) -> Result<(), PyFault> {
        let count = factor.saturating_mul(om::total_messages(start.nodes.len(), start.m));
        if count > self.budgets.run_messages {
            return Err(fault::python(
                "ValueError",
                &format!(
                    "a run of {count} messages is over this node's budget of {} (server --max-run-messages)",
                    self.budgets.run_messages
                ),
            ));
        }
        Ok(())
    }

    /// The nonce of an SM run: the commander makes it (and takes none from the caller); a
    /// lieutenant takes the commander's, which the driver passes on. A lieutenant started
    /// without one is refused: its signatures would bind nothing a later run cannot repeat.
    fn nonce(&self, start: &Start, given: Option<String>) -> Result<String, PyFault> {
        let commander = start.commander == self.me;
        match given {
            None if commander => sm::new_nonce().map_err(|e| fault::python("RuntimeError", &e)),
            Some(_) if commander => Err(fault::python(
                "ValueError",
                &format!(
                    "{} is the commander of run {}: it makes the run's nonce, start it without one",
                    self.me, start.run
                ),
            )),
            Some(nonce) => sm::check_nonce(&nonce)
                .map(|()| nonce)
                .map_err(|e| fault::python("ValueError", &e)),
            None => Err(fault::python(
                "ValueError",
                &format!(
                    "{} is a lieutenant of run {}: sm_start needs the run's nonce (7th argument, \
                     from the commander's sm_start answer)",
                    self.me, start.run
                ),
            )),
        }
    }

    /// Remember a new run, which admits at most `budget` messages; refused while a run with
    /// its id is unfinished here, or when the table is full of unfinished runs (see [`Life`]).
    fn insert(
        &self,
        protocol: Protocol,
        start: &Start,
        budget: u64,
        put: impl FnOnce(&mut Runs, Run<()>),
    ) -> Result<(), PyFault> {
        let now = Instant::now();
        let template = Run {
            run: (),
            behaviour: self.behaviour(),
            seed: start.seed ^ self.seed,
            round_timeout: start.round_timeout,
            rounds: Rounds::new(start.m + 1, budget),
            order: None,
            keys: KeyRing::new(),
            bytes: 0,
            life: Life::new(now, start.round_timeout, start.m),
            held: HashMap::new(),
            forged: 0,
        };
        let mut runs = self.lock();
        runs.make_room(protocol, &start.run, self.budgets.runs, now)?;
        self.recorder.restart(&start.run);
        put(&mut runs, template);
        runs.started.push_back((protocol, start.run.clone()));
        Ok(())
    }

    /// Public keys of the participants, fetched from each (our own needs no call), at most
    /// [`MAX_KEY_FETCHES_IN_FLIGHT`] at once over all of this node's starts.
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
            let slots = self.key_fetches.clone();
            tasks.spawn(async move {
                // The semaphore is never closed; without a permit the call just goes.
                let _slot = slots.acquire_owned().await.ok();
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

    /// The commander's order (`om_order` / `sm_order`): queued for round 1; returns how many
    /// messages it makes.
    fn order(&self, protocol: Protocol, run: &str, order: &str) -> Result<usize, PyFault> {
        if order.len() > MAX_VALUE {
            return Err(too_long());
        }
        let mut runs = self.lock();
        let (count, bytes) = match protocol {
            Protocol::Om => take_order(&self.me, run, runs.om.get_mut(run), order),
            Protocol::Sm => take_order(&self.me, run, runs.sm.get_mut(run), order),
        }?;
        runs.add_bytes(protocol, run, bytes as isize, Instant::now());
        Ok(count)
    }

    /// Open round `round` of `run` here and send what it owes; the answer says how it went.
    /// The sending runs in its own task, so a driver that stops waiting (its round timeout)
    /// does not cancel it: the messages still go out, and arrive late.
    async fn round(
        self: &Arc<Self>,
        protocol: Protocol,
        run: &str,
        round: usize,
    ) -> Result<Value, PyFault> {
        let (items, scripted, how) = {
            let mut runs = self.lock();
            let (rounds, seed, timeout, behaviour, ctx) = match protocol {
                Protocol::Om => runs.om.get_mut(run).map(|r| {
                    let b = r.behaviour.clone();
                    (&mut r.rounds, r.seed, r.round_timeout, b, None)
                }),
                Protocol::Sm => runs.sm.get_mut(run).map(|r| {
                    let (b, ctx) = (r.behaviour.clone(), r.run.context().clone());
                    (&mut r.rounds, r.seed, r.round_timeout, b, Some(ctx))
                }),
            }
            .ok_or_else(|| unknown_run(run))?;
            let items = rounds
                .open(round)
                .map_err(|e| fault::python("ValueError", &e))?;
            let scripted = match protocol {
                Protocol::Om => (runs.om.get_mut(run)).and_then(|r| {
                    self.scripted(r.behaviour.clone(), r.run.nodes(), round, |_, _| None)
                }),
                Protocol::Sm => runs.sm.get_mut(run).and_then(|r| {
                    let key = &self.key;
                    let (held, ctx) = (&r.held, r.run.context().clone());
                    let mut forged = 0;
                    let nodes = r.run.nodes().clone();
                    let out = self.scripted(r.behaviour.clone(), &nodes, round, |path, value| {
                        let (prior, valid) = chain(held, key, &ctx, path, value);
                        forged += u64::from(!valid);
                        Some(prior)
                    });
                    r.forged += forged;
                    out
                }),
            };
            // A batch must be answered well within the round, so that a slow receiver (a
            // delayed traitor, a crashed node) makes its messages fail, not the sender late.
            let how = How {
                seed,
                timeout: timeout * 3 / 4,
                behaviour,
                sm: ctx,
            };
            (items, scripted, how)
        };
        let released: usize = items.iter().map(Pending::bytes).sum();
        self.lock()
            .add_bytes(protocol, run, -(released as isize), Instant::now());
        let due: u64 = items.iter().map(|p| p.b.len() as u64).sum();
        // A scripted traitor owes what the protocol says (`due`) but sends its script.
        let items = scripted.unwrap_or(items);
        let engine = self.clone();
        let id = run.to_string();
        let task = tokio::spawn(async move {
            let done = engine.send_round(protocol, &id, round, items, how).await;
            let mut runs = engine.lock();
            let rounds = match protocol {
                Protocol::Om => runs.om.get_mut(&id).map(|r| &mut r.rounds),
                Protocol::Sm => runs.sm.get_mut(&id).map(|r| &mut r.rounds),
            };
            if let Some(rounds) = rounds {
                rounds.report(
                    round,
                    RoundReport {
                        due,
                        sent: done.sent,
                        delivered: done.delivered,
                        failed: done.sent - done.delivered,
                    },
                );
            }
            done
        });
        let done = task.await.unwrap_or_default();
        Ok(RoundDone {
            round: round as u64,
            due,
            sent: done.sent,
            delivered: done.delivered,
            failed: done.sent - done.delivered,
            failed_to: done.failed_to,
        }
        .to_value())
    }

    /// Send one round's messages through the behaviour, batched per receiver; returns what
    /// was sent and delivered, and what failed per receiver. One task per receiver walks the
    /// round's broadcasts ([`Engine::send_to`]), so only the batches in flight are ever
    /// expanded in memory.
    async fn send_round(
        self: &Arc<Self>,
        protocol: Protocol,
        run: &str,
        round: usize,
        items: Vec<Pending>,
        how: How,
    ) -> RoundSent {
        let receivers: std::collections::BTreeSet<String> = items
            .iter()
            .flat_map(|p| p.b.receivers().cloned())
            .collect();
        if let Some(d) = how.behaviour.delay() {
            tokio::time::sleep(d).await;
        }
        let items = Arc::new(items);
        let mut tasks = tokio::task::JoinSet::new();
        for to in receivers {
            let (engine, run, items, how) =
                (self.clone(), run.to_string(), items.clone(), how.clone());
            tasks.spawn(async move {
                let (sent, delivered) = engine
                    .send_to(protocol, &run, round, &to, &items, &how)
                    .await;
                (to, sent, delivered)
            });
        }
        let mut out = RoundSent::default();
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
    async fn send_to(
        &self,
        protocol: Protocol,
        run: &str,
        round: usize,
        to: &str,
        items: &[Pending],
        how: &How,
    ) -> (u64, u64) {
        let (mut sent, mut delivered) = (0, 0);
        let mut batch: Vec<(&Pending, String)> = Vec::new();
        let ctx = how.sm.as_deref();
        for p in items {
            let Some(index) = p.b.slot(to) else {
                continue;
            };
            let path = p.b.path();
            let mut parts: Vec<&str> = vec![run];
            parts.extend(path.iter().map(String::as_str));
            parts.push(to);
            let noise = entropy(how.seed, &parts);
            let value = match &p.only {
                Some(only) => (only == to).then(|| p.b.value().to_string()),
                None => (how.behaviour).outgoing(p.b.value(), to, index, p.b.len(), noise),
            };
            if let Some(value) = value {
                batch.push((p, value));
            }
            if batch.len() == BATCH {
                let (s, d) =
                    (self.send_batch(protocol, run, round, to, &batch, how.timeout, ctx)).await;
                (sent, delivered) = (sent + s, delivered + d);
                batch.clear();
            }
        }
        if !batch.is_empty() {
            let (s, d) =
                (self.send_batch(protocol, run, round, to, &batch, how.timeout, ctx)).await;
            (sent, delivered) = (sent + s, delivered + d);
        }
        (sent, delivered)
    }

    /// One `system.multicall` of `batch` to `to` (waiting for a slot first); returns
    /// (sent, delivered). Each message is traced as its own event; SM messages are signed
    /// over `ctx`.
    #[allow(clippy::too_many_arguments)]
    async fn send_batch(
        &self,
        protocol: Protocol,
        run: &str,
        round: usize,
        to: &str,
        batch: &[(&Pending, String)],
        timeout: Duration,
        ctx: Option<&sm::Context>,
    ) -> (u64, u64) {
        // The semaphore is never closed; without a permit the batch just goes.
        let _slot = self.in_flight.acquire().await.ok();
        let sent = batch.len() as u64;
        let method = match protocol {
            Protocol::Om => ext::OM_MESSAGE,
            Protocol::Sm => ext::SM_MESSAGE,
        };
        let calls: Vec<(String, Vec<Value>)> = batch
            .iter()
            .map(|(p, value)| {
                let names = p.b.path();
                let path = Value::Array(names.iter().cloned().map(Value::String).collect());
                let mut args = vec![
                    Value::String(run.to_string()),
                    path,
                    Value::String(value.clone()),
                ];
                if let (Protocol::Sm, Some(ctx)) = (protocol, ctx) {
                    let mut sigs = p.prior.clone();
                    sigs.push(sm::sign(&self.key, ctx, value, &names));
                    args.push(Value::Array(sigs.into_iter().map(Value::String).collect()));
                }
                (method.to_string(), args)
            })
            .collect();
        let traced: Vec<serde_json::Value> = calls
            .iter()
            .take(self.recorder.quota(run, calls.len()))
            .map(|(_, args)| serde_json::Value::Array(args.iter().map(trace::to_json).collect()))
            .collect();
        let n = calls.len();
        let start_us = trace::now_us();
        let results: Vec<Result<Value, PyFault>> = match self.cluster.url_of(to) {
            Ok(url) => match self.peers.multicall(&url, calls, timeout).await {
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
            tracing::debug!("{} -> {to}, round {round}: {e}", self.me);
        }
        self.recorder
            .record_all(traced.into_iter().zip(results).map(|(args, result)| {
                trace::Event::call(run, &self.me, to, method, args, &result).at(start_us, end_us)
            }));
        (sent, delivered)
    }

    /// A scripted traitor's messages for `round` ([`crate::behaviour::Script::round`]), in
    /// place of what the protocol owes; `None` for any other behaviour. `prior(path, value)`
    /// gives an SM message's signatures before this node's.
    fn scripted(
        &self,
        behaviour: Arc<Behaviour>,
        nodes: &Arc<[String]>,
        round: usize,
        mut prior: impl FnMut(&[String], &str) -> Option<Vec<String>>,
    ) -> Option<Vec<Pending>> {
        let script = behaviour.script()?;
        let mut out = Vec::new();
        for (path, to, value) in script.round(&self.me, round) {
            let before = &path[..path.len() - 1];
            let Some(taken) = (before.iter())
                .map(|n| nodes.iter().position(|x| x == n))
                .collect::<Option<Vec<usize>>>()
            else {
                continue;
            };
            out.push(Pending {
                b: om::broadcast(nodes, &self.me, &taken, &Arc::from(value)),
                prior: prior(path, value).unwrap_or_default(),
                only: Some(to.to_string()),
            });
        }
        Some(out)
    }

    fn om_message(&self, run: &str, path: &[String], value: &str) -> Result<(), PyFault> {
        if value.len() > MAX_VALUE {
            return Err(too_long());
        }
        let now = Instant::now();
        let mut runs = self.lock();
        let total = runs.bytes;
        let r = runs.om.get_mut(run).ok_or_else(|| unknown_run(run))?;
        check_bytes(r.bytes, total)?;
        admit(&mut r.rounds, run, path)?;
        let relay = Pending::from(
            r.run
                .receive(path, value)
                .map_err(|e| fault::python("ValueError", &e))?,
        );
        let bytes = stored(&mut r.rounds, path, value, relay);
        runs.add_bytes(Protocol::Om, run, bytes as isize, now);
        Ok(())
    }

    fn sm_message(
        &self,
        run: &str,
        path: &[String],
        value: &str,
        sigs: &[String],
    ) -> Result<(), PyFault> {
        if value.len() > MAX_VALUE {
            return Err(too_long());
        }
        let now = Instant::now();
        let mut runs = self.lock();
        let total = runs.bytes;
        let r = runs.sm.get_mut(run).ok_or_else(|| unknown_run(run))?;
        check_bytes(r.bytes, total)?;
        admit(&mut r.rounds, run, path)?;
        let relay = Pending::from(
            r.run
                .receive(&r.keys, path, value, sigs)
                .map_err(|e| fault::python("ValueError", &format!("message rejected: {e}")))?,
        );
        if r.behaviour.script().is_some() {
            // What a scripted traitor may send validly later: this chain and its prefixes.
            for k in 1..=path.len() {
                (r.held.entry(path[..k].to_vec()).or_default())
                    .entry(value.to_string())
                    .or_insert_with(|| sigs[..k].to_vec());
            }
        }
        // OM stores each path once, so its store is bounded by the formula; SM accepts
        // replays of a valid message, so it counts them against the run's budget.
        r.rounds
            .spend()
            .map_err(|e| fault::python("ValueError", &e.to_string()))?;
        let bytes = stored(&mut r.rounds, path, value, relay);
        runs.add_bytes(Protocol::Sm, run, bytes as isize, now);
        Ok(())
    }

    /// Close every round of `run` and decide. A lieutenant's evaluation runs on a blocking
    /// thread, on a copy of what it received, without the engine's lock: however large the
    /// tree, the other nodes of the process and their methods keep answering (its size is
    /// bounded by what was received, see `OmRun::decide`).
    async fn om_decide(&self, run: &str) -> Result<Value, PyFault> {
        let lieutenant = {
            let mut runs = self.lock();
            let r = runs.om.get_mut(run).ok_or_else(|| unknown_run(run))?;
            r.rounds.close_all();
            r.life.decided = true;
            (!r.run.is_commander()).then(|| r.run.clone())
        };
        let decided = match lieutenant {
            Some(om) => Some(
                tokio::task::spawn_blocking(move || om.decide())
                    .await
                    .map_err(|e| {
                        fault::python("RuntimeError", &format!("evaluation failed: {e}"))
                    })?,
            ),
            None => None,
        };
        let mut runs = self.lock();
        // Decided, so finished: gone meanwhile only if the table needed its place for a new
        // run; then it is unknown, as it would be now.
        let r = runs.om.get_mut(run).ok_or_else(|| unknown_run(run))?;
        let (role, decision) = match decided {
            Some(d) => (Role::Lieutenant, d),
            None => (Role::Commander, r.order.clone().unwrap_or_default()),
        };
        Ok(Decided {
            received: r.run.received() as u64,
            expected: Some(r.run.expected() as u64),
            ..decide_answer(r, role, decision)
        }
        .to_value())
    }

    fn sm_decide(&self, run: &str) -> Result<Value, PyFault> {
        let mut runs = self.lock();
        let r = runs.sm.get_mut(run).ok_or_else(|| unknown_run(run))?;
        r.rounds.close_all();
        r.life.decided = true;
        let (role, decision) = role_and_decision(r);
        Ok(Decided {
            received: r.run.accepted(),
            rejected: Some(r.run.rejected()),
            values: Some(r.run.values()),
            reasons: Some(r.run.reasons().to_vec()),
            forged: r.behaviour.script().map(|_| r.forged),
            ..decide_answer(r, role, decision)
        }
        .to_value())
    }
}

impl Runs {
    fn life(&self, protocol: Protocol, id: &str) -> Option<Life> {
        match protocol {
            Protocol::Om => self.om.get(id).map(|r| r.life),
            Protocol::Sm => self.sm.get(id).map(|r| r.life),
        }
    }

    /// Forget run `id` and what it held.
    fn forget(&mut self, protocol: Protocol, id: &str) {
        let freed = match protocol {
            Protocol::Om => self.om.remove(id).map_or(0, |r| r.bytes),
            Protocol::Sm => self.sm.remove(id).map_or(0, |r| r.bytes),
        };
        self.bytes = self.bytes.saturating_sub(freed);
        self.started.retain(|(p, r)| !(*p == protocol && r == id));
    }

    /// Forget the oldest run finished at `now`, other than `keep`; false if there is none.
    fn forget_oldest_finished(&mut self, now: Instant, keep: Option<(Protocol, &str)>) -> bool {
        let oldest = self.started.iter().find(|(p, r)| {
            keep != Some((*p, r.as_str())) && self.life(*p, r).is_some_and(|l| l.finished(now))
        });
        match oldest.cloned() {
            Some((p, r)) => {
                self.forget(p, &r);
                true
            }
            None => false,
        }
    }

    /// Make room for a new run `id` within `limit` runs: forget a finished run of that id,
    /// then the oldest finished runs as needed. Refused while a run of that id is unfinished,
    /// and when every run held is unfinished.
    fn make_room(
        &mut self,
        protocol: Protocol,
        id: &str,
        limit: usize,
        now: Instant,
    ) -> Result<(), PyFault> {
        match self.life(protocol, id) {
            Some(life) if !life.finished(now) => {
                return Err(fault::python(
                    "ValueError",
                    &format!(
                        "run {} {}",
                        crate::protocol::python_repr(id),
                        ext::RUN_NOT_FINISHED
                    ),
                ));
            }
            Some(_) => self.forget(protocol, id),
            None => {}
        }
        while self.started.len() >= limit.max(1) {
            if !self.forget_oldest_finished(now, None) {
                return Err(fault::python(
                    "ValueError",
                    &format!(
                        "this node holds {} unfinished runs {}",
                        self.started.len(),
                        ext::RUNS_FULL
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Account `delta` bytes to `run`; beyond [`MAX_RUNS_BYTES`], forget the oldest finished
    /// other runs.
    fn add_bytes(&mut self, protocol: Protocol, run: &str, delta: isize, now: Instant) {
        let slot = match protocol {
            Protocol::Om => self.om.get_mut(run).map(|r| &mut r.bytes),
            Protocol::Sm => self.sm.get_mut(run).map(|r| &mut r.bytes),
        };
        if let Some(b) = slot {
            *b = b.saturating_add_signed(delta);
        }
        self.bytes = self.bytes.saturating_add_signed(delta);
        while self.bytes > MAX_RUNS_BYTES && self.forget_oldest_finished(now, Some((protocol, run)))
        {
        }
    }
}

/// The signatures a scripted SM traitor puts before its own on `value` along `path` (which
/// ends with it), and whether they are valid: the chain it holds for the path's prefix and
/// that value (the commander holds every chain of its own); else the chain it holds for
/// another value (altered), else its own signatures in the other signers' places (forged).
/// Receivers reject both; the node counts them (`forged`).
fn chain(
    held: &HashMap<Vec<String>, BTreeMap<String, Vec<String>>>,
    key: &SigningKey,
    ctx: &sm::Context,
    path: &[String],
    value: &str,
) -> (Vec<String>, bool) {
    let prefix = &path[..path.len().saturating_sub(1)];
    if prefix.is_empty() {
        return (Vec::new(), true);
    }
    let chains = held.get(prefix);
    if let Some(sigs) = chains.and_then(|c| c.get(value)) {
        return (sigs.clone(), true);
    }
    if let Some(sigs) = chains.and_then(|c| c.values().next()) {
        return (sigs.clone(), false);
    }
    let forged = (1..=prefix.len())
        .map(|k| sm::sign(key, ctx, value, &prefix[..k]))
        .collect();
    (forged, false)
}

/// Admit a message of `path` (its round is its length; its sender the path's last node).
fn admit(rounds: &mut Rounds<Pending>, run: &str, path: &[String]) -> Result<(), PyFault> {
    let sender = path.last().map_or("?", String::as_str);
    rounds.admit(path.len(), sender).map_err(|e| match e {
        Refused::Late { .. } => fault::python(
            "ValueError",
            &format!("{e} in run {}", crate::protocol::python_repr(run)),
        ),
        Refused::Budget(_) => fault::python("ValueError", &e.to_string()),
    })
}

/// What `*_decide` answers for both protocols: the role and decision, and per round what
/// this node delivered (`sent`, as before rounds were explicit), what failed and what its
/// behaviour withheld, and who sent it late messages. The caller adds its protocol's counts.
fn decide_answer<R>(r: &Run<R>, role: Role, decision: String) -> Decided {
    let reports = r.rounds.reports();
    let per = |f: &dyn Fn(&RoundReport) -> u64| reports.iter().map(f).collect();
    Decided {
        role: Some(role),
        decision: Some(decision),
        sent: per(&|x| x.delivered),
        failed: per(&|x| x.failed),
        withheld: per(&|x| x.due - x.sent.min(x.due)),
        late: r.rounds.late().clone(),
        ..Decided::default()
    }
}

/// Refuse a message when its run, or all runs together (only unfinished ones are left when
/// they are over: finished ones were forgotten), hold more than [`MAX_RUNS_BYTES`].
fn check_bytes(run: usize, total: usize) -> Result<(), PyFault> {
    if run > MAX_RUNS_BYTES {
        return Err(fault::python(
            "ValueError",
            &format!("the run holds more than {MAX_RUNS_BYTES} bytes of messages"),
        ));
    }
    if total > MAX_RUNS_BYTES {
        return Err(fault::python(
            "ValueError",
            &format!(
                "this node's unfinished runs hold more than {MAX_RUNS_BYTES} bytes of messages"
            ),
        ));
    }
    Ok(())
}

/// Queue the relays a stored message of `path` causes for the next round; returns the bytes
/// the run now holds for it.
fn stored(rounds: &mut Rounds<Pending>, path: &[String], value: &str, relay: Pending) -> usize {
    let bytes = message_bytes(value) + relay.bytes();
    if !relay.b.is_empty() {
        rounds.queue(path.len() + 1, vec![relay]);
    }
    bytes
}

/// What storing one message costs a run: a packed path and a value id in the run's table
/// (`OmRun`), or a signature chain checked and dropped (`SmRun` keeps only its value set); the
/// value itself only when new, which the 1 KiB cap bounds.
fn message_bytes(value: &str) -> usize {
    24 + value.len().min(64)
}

fn too_long() -> PyFault {
    fault::python(
        "ValueError",
        &format!("a value is at most {MAX_VALUE} bytes"),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Om,
    Sm,
}

/// What sending one round did.
#[derive(Debug, Default)]
struct RoundSent {
    sent: u64,
    delivered: u64,
    /// Messages not delivered, by receiver.
    failed_to: BTreeMap<String, u64>,
}

/// What a node owes a round: one received message's relay (or the commander's order) to all
/// its receivers, before the behaviour.
#[derive(Debug)]
struct Pending {
    b: om::Broadcast,
    /// SM: the signatures of the path before this node.
    prior: Vec<String>,
    /// A scripted message: its value goes, as is, to this receiver only.
    only: Option<String>,
}

impl Pending {
    /// Approximate bytes it holds while queued.
    fn bytes(&self) -> usize {
        96 + self.b.value().len() + self.prior.iter().map(|p| p.len() + 24).sum::<usize>()
    }
}

impl From<om::Broadcast> for Pending {
    fn from(b: om::Broadcast) -> Self {
        Pending {
            b,
            prior: Vec::new(),
            only: None,
        }
    }
}

impl From<sm::SmBroadcast> for Pending {
    fn from(s: sm::SmBroadcast) -> Self {
        Pending {
            b: s.broadcast,
            prior: s.prior,
            only: None,
        }
    }
}

/// What `*_order` needs of a run, OM or SM.
trait Commanded {
    fn is_commander(&self) -> bool;
    fn command(&self, order: &str) -> Pending;
    fn decide(&self) -> String;
}

/// What `*_decide` reports first: the commander's own order, or the lieutenant's decision.
fn role_and_decision<R: Commanded>(r: &Run<R>) -> (Role, String) {
    if r.run.is_commander() {
        (Role::Commander, r.order.clone().unwrap_or_default())
    } else {
        (Role::Lieutenant, r.run.decide())
    }
}

impl Commanded for OmRun {
    fn is_commander(&self) -> bool {
        OmRun::is_commander(self)
    }
    fn command(&self, order: &str) -> Pending {
        Pending::from(OmRun::command(self, order))
    }
    fn decide(&self) -> String {
        OmRun::decide(self)
    }
}

impl Commanded for SmRun {
    fn is_commander(&self) -> bool {
        SmRun::is_commander(self)
    }
    fn command(&self, order: &str) -> Pending {
        Pending::from(SmRun::command(self, order))
    }
    fn decide(&self) -> String {
        SmRun::decide(self)
    }
}

/// Record the commander's order once and queue its round-1 messages; returns their number
/// and the bytes queued.
fn take_order<R: Commanded>(
    me: &str,
    id: &str,
    run: Option<&mut Run<R>>,
    order: &str,
) -> Result<(usize, usize), PyFault> {
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
    let (count, bytes) = (sends.b.len(), sends.bytes());
    r.rounds.queue(1, vec![sends]);
    Ok((count, bytes))
}

impl Run<()> {
    fn with<R>(self, run: R) -> Run<R> {
        Run {
            run,
            behaviour: self.behaviour,
            seed: self.seed,
            round_timeout: self.round_timeout,
            rounds: self.rounds,
            order: self.order,
            keys: self.keys,
            bytes: self.bytes,
            life: self.life,
            held: self.held,
            forged: self.forged,
        }
    }
}

fn unknown_run(run: &str) -> PyFault {
    fault::python(
        "KeyError",
        &format!("unknown run {}", crate::protocol::python_repr(run)),
    )
}

/// The params of `om_start` (and the first six of `sm_start`).
const START: [&str; 6] = ["run", "commander", "nodes", "m", "round_timeout_ms", "seed"];

/// Typed access to an extension call's parameters, with faults in Python's style.
struct Args<'a> {
    method: &'a str,
    params: &'a [Value],
}

impl Args<'_> {
    fn arity(&self, names: &[&str]) -> Result<(), PyFault> {
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

    fn bad(&self, i: usize, want: &str) -> PyFault {
        fault::python(
            "TypeError",
            &format!("{}() argument {} must be {want}", self.method, i + 1),
        )
    }

    fn string(&self, i: usize) -> Result<String, PyFault> {
        match self.params.get(i) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(self.bad(i, "a string")),
        }
    }

    fn strings(&self, i: usize) -> Result<Vec<String>, PyFault> {
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

    fn int(&self, i: usize) -> Result<i64, PyFault> {
        match self.params.get(i) {
            Some(Value::Integer(n)) => Ok(i64::from(*n)),
            Some(Value::Long(n)) => Ok(*n),
            _ => Err(self.bad(i, "an integer")),
        }
    }

    fn start(&self) -> Result<Start, PyFault> {
        self.arity(&START)?;
        self.start_fields()
    }

    /// `sm_start`'s params: `om_start`'s, and the run's nonce from a lieutenant's caller (the
    /// commander makes its own).
    fn sm_start(&self) -> Result<(Start, Option<String>), PyFault> {
        let given = self.params.len();
        if !(START.len()..=START.len() + 1).contains(&given) {
            return Err(fault::python(
                "TypeError",
                &format!(
                    "{}({}[, nonce]) takes 6 (commander) or 7 (lieutenant) arguments but {given} {} given",
                    self.method,
                    START.join(", "),
                    if given == 1 { "was" } else { "were" }
                ),
            ));
        }
        let start = self.start_fields()?;
        let nonce = match given > START.len() {
            true => Some(self.string(START.len())?),
            false => None,
        };
        Ok((start, nonce))
    }

    fn start_fields(&self) -> Result<Start, PyFault> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ROUND: Duration = Duration::from_millis(100);

    fn nodes() -> Vec<String> {
        ["P", "Q", "R", "S"].map(String::from).to_vec()
    }

    /// What `Engine::insert` does, on a bare table: an OM(1) run `id` of Q's started at `now`.
    fn start(
        runs: &mut Runs,
        p: Protocol,
        id: &str,
        limit: usize,
        now: Instant,
    ) -> Result<(), String> {
        runs.make_room(p, id, limit, now)?;
        let template = Run {
            run: (),
            behaviour: Arc::new(Behaviour::Honest),
            seed: 0,
            round_timeout: ROUND,
            rounds: Rounds::new(2, 10),
            order: None,
            keys: KeyRing::new(),
            bytes: 0,
            life: Life::new(now, ROUND, 1),
            held: HashMap::new(),
            forged: 0,
        };
        match p {
            Protocol::Om => {
                let om = OmRun::new("Q", "P", &nodes(), 1).unwrap();
                runs.om.insert(id.into(), template.with(om));
            }
            Protocol::Sm => {
                let nonce = sm::new_nonce().unwrap();
                let sm = SmRun::new(id, &nonce, "Q", "P", &nodes(), 1).unwrap();
                runs.sm.insert(id.into(), template.with(sm));
            }
        }
        runs.started.push_back((p, id.into()));
        Ok(())
    }

    fn decide(runs: &mut Runs, id: &str) {
        runs.om.get_mut(id).unwrap().life.decided = true;
    }

    fn held(runs: &Runs) -> Vec<&str> {
        runs.started.iter().map(|(_, r)| r.as_str()).collect()
    }

    #[test]
    fn a_full_table_of_live_runs_refuses_new_runs_and_forgets_only_finished_ones() {
        let t0 = Instant::now();
        let mut runs = Runs::default();
        for id in ["a", "b", "c"] {
            start(&mut runs, Protocol::Om, id, 3, t0).unwrap();
        }
        let refused = start(&mut runs, Protocol::Om, "d", 3, t0).unwrap_err();
        assert_eq!(
            refused,
            "<class 'ValueError'>:this node holds 3 unfinished runs (server --max-runs): a new \
             run can start when one of them is decided or expires"
        );
        assert_eq!(held(&runs), ["a", "b", "c"], "nothing live was dropped");
        // b is decided: finished, so it makes room (a, older, is live and stays).
        decide(&mut runs, "b");
        start(&mut runs, Protocol::Om, "d", 3, t0).unwrap();
        assert_eq!(held(&runs), ["a", "c", "d"]);
        // Once every run expired, the oldest goes first.
        let later = t0 + expiry(ROUND, 1);
        start(&mut runs, Protocol::Om, "e", 3, later).unwrap();
        assert_eq!(held(&runs), ["c", "d", "e"]);
    }

    #[test]
    fn a_live_id_is_refused_and_a_finished_one_starts_again() {
        let t0 = Instant::now();
        let mut runs = Runs::default();
        start(&mut runs, Protocol::Om, "om-7", 8, t0).unwrap();
        let refused = start(&mut runs, Protocol::Om, "om-7", 8, t0).unwrap_err();
        assert_eq!(
            refused,
            "<class 'ValueError'>:run 'om-7' is not finished on this node (neither decided nor \
             expired): a live run is never replaced"
        );
        // OM and SM ids are separate: an SM run of that id starts.
        start(&mut runs, Protocol::Sm, "om-7", 8, t0).unwrap();
        runs.om.get_mut("om-7").unwrap().order = Some("attack".into());
        decide(&mut runs, "om-7");
        start(&mut runs, Protocol::Om, "om-7", 8, t0).unwrap();
        let fresh = &runs.om["om-7"];
        assert_eq!((fresh.order.as_deref(), fresh.life.decided), (None, false));
        assert_eq!(
            runs.started.len(),
            2,
            "one slot per run, the restarted one last"
        );
        assert_eq!(
            runs.started.back(),
            Some(&(Protocol::Om, "om-7".to_string()))
        );
    }

    #[test]
    fn a_run_expires_by_its_own_parameters() {
        assert_eq!(
            expiry(Duration::from_millis(2000), 1),
            Duration::from_secs(6) + EXPIRY_MARGIN
        );
        assert_eq!(
            expiry(Duration::from_secs(60), 2),
            Duration::from_secs(240) + EXPIRY_MARGIN
        );
        assert_eq!(expiry(Duration::from_secs(600), MAX_M), MAX_EXPIRY);
        let t0 = Instant::now();
        let life = Life::new(t0, ROUND, 1);
        let end = t0 + expiry(ROUND, 1);
        assert!(!life.finished(end - Duration::from_millis(1)));
        assert!(life.finished(end));
        let mut runs = Runs::default();
        start(&mut runs, Protocol::Om, "x", 1, t0).unwrap();
        assert!(
            start(
                &mut runs,
                Protocol::Om,
                "y",
                1,
                end - Duration::from_millis(1)
            )
            .is_err()
        );
        assert!(
            start(
                &mut runs,
                Protocol::Om,
                "x",
                1,
                end - Duration::from_millis(1)
            )
            .is_err()
        );
        start(&mut runs, Protocol::Om, "x", 1, end).unwrap();
    }

    #[test]
    fn the_byte_budget_forgets_only_finished_runs() {
        let t0 = Instant::now();
        let mut runs = Runs::default();
        for id in ["old", "live", "done", "busy"] {
            start(&mut runs, Protocol::Om, id, 8, t0).unwrap();
        }
        decide(&mut runs, "done");
        runs.add_bytes(Protocol::Om, "old", 1000, t0);
        runs.add_bytes(Protocol::Om, "done", 1000, t0);
        runs.add_bytes(Protocol::Om, "busy", MAX_RUNS_BYTES as isize, t0);
        assert_eq!(
            held(&runs),
            ["old", "live", "busy"],
            "the finished run went"
        );
        assert_eq!(runs.bytes, MAX_RUNS_BYTES + 1000);
        // Only live runs are left over the budget: their messages are refused, not dropped.
        let refused = check_bytes(runs.om["live"].bytes, runs.bytes).unwrap_err();
        assert!(
            refused.contains("unfinished runs hold more than"),
            "{refused}"
        );
        // A live run's round releases what it queued: under the budget again.
        runs.add_bytes(Protocol::Om, "busy", -2000, t0);
        assert!(check_bytes(runs.om["live"].bytes, runs.bytes).is_ok());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Start(u8),
        Decide(u8),
        Wait(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..8).prop_map(Op::Start),
            1 => (0u8..8).prop_map(Op::Decide),
            1 => (0u64..400).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Any sequence of starts, decides and waits: the table never exceeds its limit, an
        /// unfinished run is never dropped or replaced, and a start is refused exactly when its
        /// id is live or every run held is live and the table is full.
        #[test]
        fn the_table_rules_hold(ops in proptest::collection::vec(op(), 1..80), limit in 1usize..5) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut runs = Runs::default();
            for op in ops {
                let live_before: Vec<String> = runs
                    .om
                    .iter()
                    .filter(|(_, r)| !r.life.finished(now))
                    .map(|(id, _)| id.clone())
                    .collect();
                match op {
                    Op::Start(i) => {
                        let id = format!("r{i}");
                        let id_live = live_before.contains(&id);
                        let finished = runs.om.len() - live_before.len();
                        let room = runs.om.len() < limit || finished > 0;
                        let done = start(&mut runs, Protocol::Om, &id, limit, now);
                        prop_assert_eq!(done.is_ok(), !id_live && room, "{:?}", done);
                        if done.is_ok() {
                            prop_assert!(!runs.om[&id].life.decided);
                        }
                    }
                    Op::Decide(i) => {
                        if let Some(r) = runs.om.get_mut(&format!("r{i}")) {
                            r.life.decided = true;
                        }
                    }
                    Op::Wait(ms) => now += Duration::from_millis(ms) * 200,
                }
                prop_assert!(runs.om.len() <= limit);
                prop_assert_eq!(runs.om.len(), runs.started.len());
                for id in &live_before {
                    prop_assert!(runs.om.contains_key(id), "live run {} was dropped", id);
                }
            }
        }
    }
}
