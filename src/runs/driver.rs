//! The driver of an agreement run: what `client om` and `client sm` do. It makes the run's
//! secrets (a random id, a capability per node, a key per pair of nodes), starts the run on
//! every node, tells the commander to give its order, opens the rounds, collects each node's
//! decision and message counts, and hands them to the checker. It decides nothing itself:
//! every decision comes from a node, reached only through XML-RPC messages between nodes.
//!
//! Every call it makes is idempotent for its run (a start, an order or a round asked again is
//! answered as the first time), so the one retry [`Peers`] makes of a call that failed on a
//! reused connection before any answer cannot do anything twice.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dxr::Value;

use crate::agreement::auth::{Credentials, SECRET_BYTES, Secret};
use crate::agreement::checker::{
    self, Facts, Failure, Faulty, Late, Problem, Report, Step, Undelivered,
};
use crate::agreement::engine::START_GRACE;
use crate::agreement::om;
use crate::agreement::reply::{Decided, NodeInfo, ReplyError, RoundDone};
use crate::calls::{self, Call, Method};
use crate::cluster::Cluster;
use crate::peer::{NodeCallError, PeerError, Peers};
use crate::protocol::ext;

pub use crate::agreement::Protocol;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// OM or SM.
    pub protocol: Protocol,
    /// Traitors to tolerate (the recursion depth).
    pub m: usize,
    /// The commander's order.
    pub order: String,
    /// The commander.
    pub commander: String,
    /// Every node taking part, commander included.
    pub nodes: Vec<String>,
    /// How long a round may take: a round ends when every participant has answered or this
    /// has passed. A node slower than this is faulty for the run.
    pub round_timeout: Duration,
    /// Seed of the run; random behaviours draw from it.
    pub seed: u64,
    /// Run even when n is below the bound, to watch the impossibility.
    pub allow_unsafe: bool,
    /// Timeout of each call the driver makes outside the rounds.
    pub rpc_timeout: Duration,
    /// The largest run (messages, by the protocol's formula) the driver starts.
    pub max_messages: u64,
}

/// Default of `client --max-messages`.
pub const DEFAULT_MAX_MESSAGES: u64 = 1_000_000;

/// The part of `client --round-timeout-ms`'s default every run gets: generous, because a round
/// ends as soon as every node has answered; only a crashed or delayed node makes a run wait
/// this long.
pub(crate) const DEFAULT_ROUND_TIMEOUT_MS: u64 = 2000;

/// What `client --round-timeout-ms`'s default adds per message of the run's largest round.
/// A round's time grows with its messages, and a flat 2 s made large runs void on a busy
/// machine although every node was working (issue 31: OM(4) over 13 nodes). Nothing waits
/// for the timeout unless a node is slow or gone, so the default errs long: enough for a
/// loaded two-core machine (BENCHMARKS.md has the round times), and a void report says by
/// how much a late node missed it.
pub(crate) const ROUND_TIMEOUT_PER_MESSAGE: Duration = Duration::from_micros(100);

/// The default round timeout of a run: [`DEFAULT_ROUND_TIMEOUT_MS`] plus
/// [`ROUND_TIMEOUT_PER_MESSAGE`] for each message of its largest round (the last; SM counts
/// twice OM's), at most the 600 s a node takes. Every round of the run gets it (the nodes are
/// told one timeout at the start).
pub(crate) fn default_round_timeout(protocol: Protocol, n: usize, m: usize) -> Duration {
    let last = om::expected_in_round(n, m + 1);
    let messages = match protocol {
        Protocol::Om => last,
        Protocol::Sm => last.saturating_mul(2),
    };
    let extra =
        ROUND_TIMEOUT_PER_MESSAGE.saturating_mul(u32::try_from(messages).unwrap_or(u32::MAX));
    (Duration::from_millis(DEFAULT_ROUND_TIMEOUT_MS) + extra).min(Duration::from_secs(600))
}

/// Why a run was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriveError {
    /// Too few nodes for `m` traitors.
    #[error(
        "{protocol}({m}) needs at least {need} nodes to tolerate {m} traitor(s), but {n} take part; \
         add nodes, lower -m, or pass --allow-unsafe to watch it fail"
    )]
    Unsafe {
        /// OM or SM.
        protocol: String,
        /// m.
        m: usize,
        /// Nodes taking part.
        n: usize,
        /// The bound.
        need: usize,
    },
    /// Bad run parameters.
    #[error("{0}")]
    Invalid(String),
    /// More messages than `--max-messages` allows.
    #[error(
        "{protocol}({m}) over {n} nodes sends up to {count} messages, more than --max-messages {max}; \
         use fewer nodes or a smaller -m, or raise --max-messages (the servers have their own \
         --max-run-messages)"
    )]
    Budget {
        /// OM or SM.
        protocol: String,
        /// m.
        m: usize,
        /// Nodes.
        n: usize,
        /// Messages of the run by the formula.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// A participant does not speak the agreement extension.
    #[error(
        "node {node} ({url}) does not speak the agreement extension ({error}); it looks like \
         the original server.py: run `server` from this project, or `server.py --agreement`"
    )]
    NotAgreement {
        /// The node.
        node: String,
        /// Its URL.
        url: String,
        /// What it answered.
        error: String,
    },
    /// A participant speaks the extension but not this protocol (the Python stand-in has OM
    /// only).
    #[error(
        "node {node} ({url}) does not run {protocol} ({error}); the Python stand-in runs OM \
         only: host that node with `server` from this project, or run `client om`"
    )]
    NotThisProtocol {
        /// The node.
        node: String,
        /// Its URL.
        url: String,
        /// `SM` or `OM`.
        protocol: String,
        /// What it answered.
        error: String,
    },
}

/// A node the driver could not use, and why (reported on stderr by the client).
#[derive(Debug, Clone)]
pub(crate) struct Unreachable {
    /// The node.
    pub(crate) node: String,
    /// Its URL, if it has one.
    pub(crate) url: String,
    /// What went wrong.
    pub(crate) error: NodeCallError,
}

/// Check the bound and the parameters.
pub(crate) fn check(opts: &RunOptions) -> Result<(), DriveError> {
    om::check_run(&opts.commander, &opts.commander, &opts.nodes)
        .map_err(|e| DriveError::Invalid(e.to_string()))?;
    if opts.nodes.len() < 2 {
        return Err(DriveError::Invalid(
            "a run needs a commander and at least one lieutenant".into(),
        ));
    }
    let need = opts.protocol.min_nodes(opts.m);
    if opts.nodes.len() < need && !opts.allow_unsafe {
        return Err(DriveError::Unsafe {
            protocol: opts.protocol.name().to_uppercase(),
            m: opts.m,
            n: opts.nodes.len(),
            need,
        });
    }
    if opts.m + 1 >= opts.nodes.len() && opts.m > 0 {
        return Err(DriveError::Invalid(format!(
            "m = {} needs more than {} nodes",
            opts.m,
            opts.m + 1
        )));
    }
    let count = opts.protocol.max_messages(opts.nodes.len(), opts.m);
    if count > opts.max_messages {
        return Err(DriveError::Budget {
            protocol: opts.protocol.name().to_uppercase(),
            m: opts.m,
            n: opts.nodes.len(),
            count,
            max: opts.max_messages,
        });
    }
    Ok(())
}

/// A run driven to its end: the checker's report, the nodes the driver could not use (each
/// with the error, for stderr), and the run's secrets (to read its traces afterwards).
#[derive(Debug)]
pub struct Driven {
    /// The judged facts.
    pub report: Report,
    /// Nodes that could not be used, and why.
    pub(crate) unreachable: Vec<Unreachable>,
    /// The run's id and each node's capability.
    pub(crate) credentials: Credentials,
}

/// Fresh secrets for a run of `opts`.
pub fn credentials(opts: &RunOptions) -> Result<Credentials, DriveError> {
    Credentials::new(opts.protocol, &opts.nodes).map_err(|e| DriveError::Invalid(e.to_string()))
}

/// Run the protocol over the cluster and judge it. Nodes that cannot be reached, or stop
/// doing their part, are faulty for the run (a crash is one way to be faulty); the run is
/// judged as long as the faulty nodes are at most m, void beyond.
pub async fn drive(cluster: &Cluster, opts: &RunOptions) -> Result<Driven, DriveError> {
    check(opts)?;
    let peers = Peers::new(opts.rpc_timeout).map_err(|e| DriveError::Invalid(e.to_string()))?;
    drive_with(cluster, opts, &peers, credentials(opts)?).await
}

/// [`drive`] over the connections of `pool` (the explorer runs thousands of cases over the
/// same connections) with secrets made by the caller (the live page reads the run's traces
/// while it goes); its calls time out as `opts` says, not as `pool` does.
///
/// The phases, each a method of [`Drive`]: who is who (`node_info`), start, the order, the
/// rounds, the decisions, then the checker's judgement of the facts gathered.
pub async fn drive_with(
    cluster: &Cluster,
    opts: &RunOptions,
    pool: &Peers,
    credentials: Credentials,
) -> Result<Driven, DriveError> {
    check(opts)?;
    let mut d = Drive::new(cluster, opts, pool, credentials);
    let live = d.who_is_who().await?;
    if d.hopeless() {
        return Ok(d.judge());
    }
    let mut ready = d.start(&live).await?;
    d.order(&mut ready).await;
    for r in 1..=opts.m + 1 {
        d.round(&mut ready, r).await;
    }
    d.decide(&ready).await;
    Ok(d.judge())
}

/// One run as the driver carries it through: the facts gathered so far and the nodes it could
/// not use. Every phase adds to both; none decides anything.
struct Drive<'a> {
    cluster: &'a Cluster,
    opts: &'a RunOptions,
    secrets: Credentials,
    /// Calls outside the rounds, within `opts.rpc_timeout`.
    peers: Peers,
    /// A round's calls end when the round does: answered, or its timeout passed.
    round_peers: Peers,
    /// Every node's SM public key, as its `node_info` gave it.
    public_keys: BTreeMap<String, String>,
    /// Nodes that did not answer a round in time: faulty for the run, but perhaps only slow,
    /// so their decide is asked too (within a round timeout) for what they delivered.
    stragglers: Vec<String>,
    /// For each loyal straggler, its round asked again: when it answers, how long the round
    /// took it (what a round timeout must allow on this machine).
    probes: Vec<Probe>,
    facts: Facts,
    unreachable: Vec<Unreachable>,
}

/// A loyal node's round asked again after the round timeout passed without its answer (a
/// round asked again waits for the first answer: the calls are idempotent), to measure how
/// long it needed: up to [`probe_window`] from the round's start.
struct Probe {
    node: String,
    round: usize,
    waited_ms: u64,
    window: Duration,
    took: tokio::task::JoinHandle<Option<Duration>>,
}

/// How long a late node's round is waited for, from the round's start, to measure what it
/// needs: twice the round timeout, and at least two seconds more than it (a short timeout
/// on a busy machine is the case to measure). A node asked again waits at most the round
/// timeout and five seconds for its answer, so this is what it can give.
pub fn probe_window(round_timeout: Duration) -> Duration {
    round_timeout + round_timeout.max(Duration::from_secs(2))
}

impl<'a> Drive<'a> {
    fn new(cluster: &'a Cluster, opts: &'a RunOptions, pool: &Peers, secrets: Credentials) -> Self {
        let p = opts.protocol;
        let facts = Facts {
            protocol: p,
            run: p.label(opts.seed),
            seed: opts.seed,
            n: opts.nodes.len(),
            m: opts.m,
            commander: opts.commander.clone(),
            order: opts.order.clone(),
            round_timeout_ms: u64::try_from(opts.round_timeout.as_millis()).unwrap_or(u64::MAX),
            traitors: BTreeMap::new(),
            decisions: BTreeMap::new(),
            messages_per_round: vec![0; opts.m + 1],
            expected_per_round: match p {
                Protocol::Om => om::expected_per_round(opts.nodes.len(), opts.m),
                Protocol::Sm => Vec::new(),
            },
            rejected: 0,
            forged: 0,
            unauthenticated: 0,
            undelivered: Vec::new(),
            late: Vec::new(),
            undecided: Vec::new(),
        };
        Drive {
            cluster,
            opts,
            secrets,
            peers: pool.with_timeout(opts.rpc_timeout),
            round_peers: pool.with_timeout(opts.round_timeout),
            public_keys: BTreeMap::new(),
            stragglers: Vec::new(),
            probes: Vec::new(),
            facts,
            unreachable: Vec::new(),
        }
    }

    /// What a driver's call for `node` carries first: the run and `node`'s capability.
    fn driven(&self, node: &str) -> calls::Driven {
        calls::Driven {
            protocol: self.opts.protocol,
            run: self.secrets.run.clone(),
            // Every node of the run has one; a name outside it is never asked (and its node
            // would refuse an all-zero capability, which no run is started with).
            capability: (self.secrets.capability(node)).unwrap_or(Secret([0; SECRET_BYTES])),
        }
    }

    /// `node_info` on every node: a declared traitor's behaviour decides who counts as loyal;
    /// a node that does not answer counts as faulty. Returns the nodes that answered. A node
    /// without the extension refuses the whole run: it is no participant at all.
    async fn who_is_who(&mut self) -> Result<Vec<String>, DriveError> {
        let opts = self.opts;
        let infos = self
            .peers
            .each(self.cluster, &opts.nodes, |_| Call::NodeInfo)
            .await;
        let mut live = Vec::new();
        for (node, url, result) in infos {
            match read_answer(&node, Method::NodeInfo, result, NodeInfo::from_value) {
                Ok(info) => {
                    if info.traitor {
                        let why = info.behaviour.map_or(Faulty::Undeclared, Faulty::Behaviour);
                        self.facts.count_traitor(&node, why);
                    }
                    self.public_keys.insert(node.clone(), info.public_key);
                    live.push(node);
                }
                Err(error) if error.is_unsupported_method() => {
                    let error = error.to_string();
                    return Err(DriveError::NotAgreement { node, url, error });
                }
                Err(error) => {
                    let problem = self.problem(&error, self.opts.rpc_timeout);
                    self.lost(Unreachable { node, url, error }, Step::Info, problem);
                }
            }
        }
        Ok(live)
    }

    /// More than `m` faulty nodes once the unreachable ones count: no run can show anything,
    /// so none is started (the checker says why the run is void).
    fn hopeless(&self) -> bool {
        !self.facts.failed().is_empty() && self.facts.traitors.len() > self.opts.m
    }

    /// `node`'s `*_start`.
    fn start_call(&self, node: &str) -> Call {
        let opts = self.opts;
        let driven = self.driven(node);
        Call::Start(calls::Start {
            protocol: opts.protocol,
            run: driven.run,
            commander: opts.commander.clone(),
            nodes: opts.nodes.clone(),
            m: opts.m,
            round_timeout: opts.round_timeout,
            seed: opts.seed,
            capability: driven.capability,
            keys: self.secrets.keys_of(node),
            public_keys: match opts.protocol {
                Protocol::Sm => self.public_keys.clone(),
                Protocol::Om => BTreeMap::new(),
            },
        })
    }

    /// `om_start` / `sm_start` on every live node, the loyal ones first (no traitor learns the
    /// run's id before every loyal node holds the run, so none can take its id first); returns
    /// the nodes that started. A start refused because the node's table is full of runs is
    /// asked again until the table's grace for undriven runs has passed: a flood of starts
    /// nobody drives delays a run, it does not void it. A node that cannot start is faulty;
    /// a node that does not know the method (a Python node in an SM run) refuses the run.
    async fn start(&mut self, live: &[String]) -> Result<Vec<String>, DriveError> {
        let (loyal, traitors): (Vec<String>, Vec<String>) =
            live.iter().cloned().partition(|n| self.facts.is_loyal(n));
        let deadline = Instant::now() + START_GRACE + Duration::from_secs(1);
        let mut ready = Vec::new();
        for group in [loyal, traitors] {
            let mut todo = group;
            while !todo.is_empty() {
                let results = self
                    .peers
                    .each(self.cluster, &todo, |n| self.start_call(n))
                    .await;
                let mut again = Vec::new();
                for (node, url, result) in results {
                    match result {
                        Ok(_) => ready.push(node),
                        Err(e) if is_full(&e) && Instant::now() < deadline => again.push(node),
                        Err(e) if e.is_unsupported_method() => {
                            let (error, protocol) = (e.to_string(), self.opts.protocol);
                            let protocol = protocol.name().to_uppercase();
                            return Err(DriveError::NotThisProtocol {
                                node,
                                url,
                                protocol,
                                error,
                            });
                        }
                        Err(error) => {
                            let problem = self.problem(&error, self.opts.rpc_timeout);
                            self.lost(Unreachable { node, url, error }, Step::Start, problem);
                        }
                    }
                }
                if !again.is_empty() {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                todo = again;
            }
        }
        // In the nodes' order, as the rounds call them.
        ready.sort_by_key(|n| self.opts.nodes.iter().position(|x| x == n));
        Ok(ready)
    }

    /// The commander's order, if it started. A commander that does not take it is faulty
    /// (and takes no further part).
    async fn order(&mut self, ready: &mut Vec<String>) {
        let opts = self.opts;
        if !ready.contains(&opts.commander) {
            return;
        }
        let call = Call::Order(self.driven(&opts.commander), opts.order.clone());
        let (method, args) = call.into_wire();
        let (cluster, commander) = (self.cluster, &opts.commander);
        if let Err(error) = self
            .peers
            .call_node(cluster, commander, method.name(), &args)
            .await
        {
            let url = cluster
                .url_of(commander)
                .map(|u| u.to_string())
                .unwrap_or_default();
            let node = commander.clone();
            ready.retain(|n| *n != node);
            let problem = self.problem(&error, opts.rpc_timeout);
            self.lost(Unreachable { node, url, error }, Step::Order, problem);
        }
    }

    /// Round `r` on every started node at once, within the round timeout. A node that does
    /// not finish it in time is faulty for the run and takes no further part; what a node
    /// could not deliver is kept, and judged at the end with the final set of faulty nodes.
    async fn round(&mut self, ready: &mut Vec<String>, r: usize) {
        let method = Method::Round(self.opts.protocol);
        let round = i64::try_from(r).unwrap_or(i64::MAX);
        let began = Instant::now();
        let answers = self
            .round_peers
            .each(self.cluster, ready, |n| Call::Round(self.driven(n), round))
            .await;
        for (node, url, result) in answers {
            let failure = match read_answer(&node, method, result, RoundDone::from_value) {
                Ok(round_done) => {
                    for (to, &count) in &round_done.failed_to {
                        self.facts.undelivered.push(Undelivered {
                            round: r,
                            from: node.clone(),
                            to: to.clone(),
                            count,
                        });
                    }
                    continue;
                }
                Err(error) => error,
            };
            let problem = self.problem(&failure, self.opts.round_timeout);
            if let Problem::Late { waited_ms, .. } = problem {
                self.stragglers.push(node.clone());
                if self.facts.is_loyal(&node) {
                    self.probe(&node, r, waited_ms, began);
                }
            }
            ready.retain(|n| *n != node);
            let error = failure;
            self.lost(Unreachable { node, url, error }, Step::Round(r), problem);
        }
    }

    /// Ask `node`'s round `r` again, on connections of its own (the pool's count the node
    /// down for a second after its timeout), until twice the round timeout from `began`.
    fn probe(&mut self, node: &str, r: usize, waited_ms: u64, began: Instant) {
        let window = probe_window(self.opts.round_timeout);
        let limit = window.saturating_sub(began.elapsed());
        let Ok(peers) = Peers::new(limit.max(Duration::from_millis(1))) else {
            return;
        };
        let round = i64::try_from(r).unwrap_or(i64::MAX);
        let (method, args) = Call::Round(self.driven(node), round).into_wire();
        let (cluster, name) = (self.cluster.clone(), node.to_string());
        let took = tokio::spawn(async move {
            let answer = peers.call_node(&cluster, &name, method.name(), &args).await;
            answer.ok().map(|_| began.elapsed())
        });
        self.probes.push(Probe {
            node: node.to_string(),
            round: r,
            waited_ms,
            window,
            took,
        });
    }

    /// What the probes measured, into the stragglers' failures: how long each needed.
    fn measured(&mut self, probes: Vec<(Probe, Option<u64>)>) {
        for (p, took_ms) in probes {
            if let Some(Faulty::Failed(f)) = self.facts.traitors.get_mut(&p.node)
                && f.step == Step::Round(p.round)
            {
                f.problem = Problem::Late {
                    waited_ms: p.waited_ms,
                    took_ms,
                    silent_ms: u64::try_from(p.window.as_millis()).unwrap_or(u64::MAX),
                };
            }
        }
    }

    /// What went wrong with a call that failed, as the report's remedies need it: nothing
    /// answered, the node lacks the method, its run id collided, it was late (`waited`
    /// passed), or it answered with an error.
    fn problem(&self, error: &NodeCallError, waited: Duration) -> Problem {
        let waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
        let late = Problem::Late {
            waited_ms,
            took_ms: None,
            silent_ms: waited_ms,
        };
        match error {
            e if e.is_unsupported_method() => Problem::Lacks,
            e if e.is_refused() => Problem::Down,
            NodeCallError::NoAddress { .. } => Problem::Down,
            NodeCallError::Call { source, .. } => match source {
                // Not called: its last call timed out a moment ago.
                PeerError::Timeout(_) | PeerError::Down => late,
                // The transport's own errors: the connection could not be made, or broke
                // before an answer.
                PeerError::Other(_) => Problem::Down,
                PeerError::Fault(f)
                    if f.string().contains(ext::RUN_NOT_FINISHED)
                        || f.string().contains(ext::NOT_THE_DRIVER) =>
                {
                    Problem::Collides
                }
                _ => Problem::Failed,
            },
            NodeCallError::Answer { .. } => Problem::Failed,
        }
    }

    /// `om_decide` / `sm_decide` on every started node: the lieutenants' decisions and every
    /// node's counts. A node lost here is faulty; a loyal node answering without a decision
    /// makes the run void.
    async fn decide(&mut self, ready: &[String]) {
        let method = Method::Decide(self.opts.protocol);
        let probes = std::mem::take(&mut self.probes);
        let decide = |n: &str| Call::Decide(self.driven(n));
        // A straggler's decide waits for its round asked again: a decide closes the node's
        // last round, and the round asked again would then answer that it already ran.
        let stragglers = async {
            let measured = measure(probes).await;
            let late = (self.round_peers)
                .each(self.cluster, &self.stragglers, decide)
                .await;
            (measured, late)
        };
        let (answers, (measured, late)) =
            tokio::join!(self.peers.each(self.cluster, ready, decide), stragglers);
        self.measured(measured);
        // A straggler is faulty already; what it answers adds its counts, else nothing.
        for (node, _, result) in late {
            if let Ok(decided) = read_answer(&node, method, result, Decided::from_value) {
                self.decided(node, decided);
            }
        }
        for (node, url, result) in answers {
            match read_answer(&node, method, result, Decided::from_value) {
                Ok(decided) => self.decided(node, decided),
                Err(error) => {
                    let problem = self.problem(&error, self.opts.rpc_timeout);
                    self.lost(Unreachable { node, url, error }, Step::Decide, problem);
                }
            }
        }
    }

    /// What one node's decide answer adds to the facts.
    fn decided(&mut self, node: String, d: Decided) {
        let facts = &mut self.facts;
        for (slot, sent) in facts.messages_per_round.iter_mut().zip(&d.sent) {
            *slot += sent;
        }
        facts.rejected += d.rejected.unwrap_or(0);
        facts.forged += d.forged.unwrap_or(0);
        facts.unauthenticated += d.unauthenticated.unwrap_or(0);
        for (sender, &count) in &d.late {
            facts.late.push(Late {
                at: node.clone(),
                from: sender.clone(),
                count,
            });
        }
        if node == facts.commander {
            return;
        }
        match d.decision {
            Some(decision) => {
                facts.decisions.insert(node, decision);
            }
            None => facts.undecided.push(node),
        }
    }

    /// A node the run could not use at `step`: faulty for the run, and reported.
    fn lost(&mut self, u: Unreachable, step: Step, problem: Problem) {
        let error = u.error.to_string();
        let failure = Failure {
            step,
            problem,
            error,
        };
        self.facts.count_traitor(&u.node, Faulty::Failed(failure));
        self.unreachable.push(u);
    }

    /// The checker's judgement of what was gathered, the nodes that could not be used and the
    /// run's secrets.
    fn judge(self) -> Driven {
        Driven {
            report: checker::report(self.facts),
            unreachable: self.unreachable,
            credentials: self.secrets,
        }
    }
}

/// Each probe with how long its node took (ms), when it answered.
async fn measure(probes: Vec<Probe>) -> Vec<(Probe, Option<u64>)> {
    let mut out = Vec::with_capacity(probes.len());
    for mut p in probes {
        let took = (&mut p.took).await.ok().flatten();
        out.push((
            p,
            took.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        ));
    }
    out
}

/// A start refused because the node's run table is full of runs (it may have room in a few
/// seconds, when undriven runs count as abandoned).
fn is_full(e: &NodeCallError) -> bool {
    matches!(e, NodeCallError::Call { source: PeerError::Fault(f), .. }
        if f.string().contains(ext::RUNS_FULL))
}

/// What `node` answered to `method`, read by `from` (a `from_value` of [`crate::agreement::reply`]); an
/// answer that is not one (not a struct) is an error of the call, showing what came.
fn read_answer<T>(
    node: &str,
    method: Method,
    result: Result<Value, NodeCallError>,
    from: fn(&Value) -> Result<T, ReplyError>,
) -> Result<T, NodeCallError> {
    let answer = result?;
    from(&answer).map_err(|e| NodeCallError::Answer {
        node: node.to_string(),
        method: method.name().to_string(),
        message: e.to_string(),
    })
}

/// A fresh random seed.
pub(crate) fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return crate::behaviour::mix(t);
    }
    u64::from_le_bytes(b) >> 11 // fits in a double exactly, friendly to JSON readers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_round_timeout_grows_with_the_largest_round() {
        let ms = |p, n, m| default_round_timeout(p, n, m).as_millis();
        // OM(1) over 4 nodes: a round of 6 messages.
        assert_eq!(ms(Protocol::Om, 4, 1), 2000);
        // OM(4) over 13: 95,040 messages in round 5, 9.504 s more.
        assert_eq!(ms(Protocol::Om, 13, 4), 11_504);
        // SM counts twice OM's.
        assert_eq!(ms(Protocol::Sm, 13, 4), 2000 + 19_008);
        // Never past what a node takes.
        assert_eq!(ms(Protocol::Om, 64, 8), 600_000);
    }
}
