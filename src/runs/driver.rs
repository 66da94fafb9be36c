//! The driver of an agreement run: what `client om` and `client sm` do. It starts the run on
//! every node, tells the commander to give its order, collects each node's decision and
//! message counts, and hands them to the checker. It decides nothing itself: every decision
//! comes from a node, reached only through XML-RPC messages between nodes.

use std::collections::BTreeMap;
use std::time::Duration;

use dxr::Value;

use crate::agreement::checker::{self, Facts, Faulty, Report};
use crate::agreement::reply::{Decided, NodeInfo, RoundDone, SmStarted};
use crate::agreement::{om, sm};
use crate::cluster::Cluster;
use crate::peer::{NodeCallError, Peers};
use crate::protocol::ext;

/// Which algorithm (`client explore --protocol om|sm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// Oral messages, OM(m): needs n >= 3m + 1.
    Om,
    /// Signed messages, SM(m): needs n >= m + 2.
    Sm,
}

impl Protocol {
    /// `om` / `sm`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Om => "om",
            Protocol::Sm => "sm",
        }
    }

    /// The fewest nodes that tolerate `m` traitors.
    pub fn min_nodes(self, m: usize) -> usize {
        match self {
            Protocol::Om => 3 * m + 1,
            Protocol::Sm => m + 2,
        }
    }

    fn method(self, om: &'static str, sm: &'static str) -> &'static str {
        match self {
            Protocol::Om => om,
            Protocol::Sm => sm,
        }
    }
}

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
    /// has passed. A loyal node slower than this makes the run void.
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

/// Default of `client --round-timeout-ms`: generous, because a round ends as soon as every
/// node has answered; only a crashed or delayed node makes a run wait this long.
pub const DEFAULT_ROUND_TIMEOUT_MS: u64 = 2000;

impl Protocol {
    /// Messages a whole run sends at most: OM's formula; SM relays each of (at most) two
    /// values once per path, so twice that.
    pub fn max_messages(self, n: usize, m: usize) -> u64 {
        let om = om::total_messages(n, m);
        match self {
            Protocol::Om => om,
            Protocol::Sm => om.saturating_mul(2),
        }
    }
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
}

/// A node the driver could not use, and why (reported on stderr by the client).
#[derive(Debug, Clone)]
pub struct Unreachable {
    /// The node.
    pub node: String,
    /// Its URL, if it has one.
    pub url: String,
    /// What went wrong.
    pub error: NodeCallError,
}

/// Check the bound and the parameters.
pub fn check(opts: &RunOptions) -> Result<(), DriveError> {
    om::check_run(&opts.commander, &opts.commander, &opts.nodes).map_err(DriveError::Invalid)?;
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

/// Run the protocol over the cluster and judge it. Nodes that cannot be reached are listed:
/// before the run they count as traitors (a crash is one way to be faulty); a loyal node lost
/// during the run makes it void.
pub async fn drive(
    cluster: &Cluster,
    opts: &RunOptions,
) -> Result<(Report, Vec<Unreachable>), DriveError> {
    let peers = Peers::new(opts.rpc_timeout).map_err(|e| DriveError::Invalid(e.to_string()))?;
    drive_with(cluster, opts, &peers).await
}

/// [`drive`] over the connections of `pool` (the explorer runs thousands of cases over the
/// same connections); its calls time out as `opts` says, not as `pool` does.
///
/// The phases, each a method of [`Drive`]: who is who (`node_info`), start, the order, the
/// rounds, the decisions, then the checker's judgement of the facts gathered.
pub async fn drive_with(
    cluster: &Cluster,
    opts: &RunOptions,
    pool: &Peers,
) -> Result<(Report, Vec<Unreachable>), DriveError> {
    check(opts)?;
    let mut d = Drive::new(cluster, opts, pool);
    let live = d.who_is_who().await?;
    if d.hopeless() {
        return Ok(d.judge());
    }
    let ready = d.start(&live).await;
    d.order(&ready).await;
    for r in 1..=opts.m + 1 {
        d.round(&ready, r).await;
    }
    d.decide(&ready).await;
    Ok(d.judge())
}

/// One run as the driver carries it through: the facts gathered so far and the nodes it could
/// not use. Every phase adds to both; none decides anything.
struct Drive<'a> {
    cluster: &'a Cluster,
    opts: &'a RunOptions,
    /// Calls outside the rounds, within `opts.rpc_timeout`.
    peers: Peers,
    /// A round's calls end when the round does: answered, or its timeout passed.
    round_peers: Peers,
    facts: Facts,
    unreachable: Vec<Unreachable>,
}

impl<'a> Drive<'a> {
    fn new(cluster: &'a Cluster, opts: &'a RunOptions, pool: &Peers) -> Self {
        let p = opts.protocol;
        let facts = Facts {
            protocol: p.name().to_string(),
            run: format!("{}-{}", p.name(), opts.seed),
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
            void_reasons: Vec::new(),
        };
        Drive {
            cluster,
            opts,
            peers: pool.with_timeout(opts.rpc_timeout),
            round_peers: pool.with_timeout(opts.round_timeout),
            facts,
            unreachable: Vec::new(),
        }
    }

    /// `node_info` on every node: a declared traitor's behaviour decides who counts as loyal;
    /// a node that does not answer counts as a traitor. Returns the nodes that answered. A node
    /// without the extension refuses the whole run: it is no participant at all.
    async fn who_is_who(&mut self) -> Result<Vec<String>, DriveError> {
        let opts = self.opts;
        let infos = each(
            self.cluster,
            &self.peers,
            &opts.nodes,
            ext::NODE_INFO,
            vec![],
        )
        .await;
        let mut live = Vec::new();
        for (node, url, result) in infos {
            match read(&node, ext::NODE_INFO, result, NodeInfo::from_value) {
                Ok(info) => {
                    if info.traitor {
                        let why = info.behaviour.map_or(Faulty::Undeclared, Faulty::Behaviour);
                        self.facts.count_traitor(&node, why);
                    }
                    live.push(node);
                }
                Err(error) if error.is_unsupported_method() => {
                    let error = error.to_string();
                    return Err(DriveError::NotAgreement { node, url, error });
                }
                Err(error) => self.lost(Unreachable { node, url, error }),
            }
        }
        Ok(live)
    }

    /// More than `m` traitors once the unreachable nodes count as traitors: no run can show
    /// anything, so none is started (the run is void).
    fn hopeless(&mut self) -> bool {
        let opts = self.opts;
        if self.unreachable.is_empty() || self.facts.traitors.len() <= opts.m {
            return false;
        }
        let down: Vec<&str> = self.unreachable.iter().map(|u| u.node.as_str()).collect();
        // In the nodes' order, as they were found out.
        let traitors: Vec<&str> = (opts.nodes.iter())
            .filter(|n| !self.facts.is_loyal(n))
            .map(String::as_str)
            .collect();
        self.facts.void_reasons.push(format!(
            "{} of {} nodes are traitors or unreachable ({}; unreachable: {}), more than m = {}: \
             no run can show anything",
            traitors.len(),
            opts.nodes.len(),
            traitors.join(", "),
            down.join(", "),
            opts.m
        ));
        true
    }

    /// `om_start` / `sm_start` on every live node; returns the nodes that started. A loyal
    /// node that cannot start makes the run void.
    async fn start(&mut self, live: &[String]) -> Vec<String> {
        let opts = self.opts;
        let start = vec![
            Value::String(self.facts.run.clone()),
            Value::String(opts.commander.clone()),
            Value::Array(opts.nodes.iter().cloned().map(Value::String).collect()),
            Value::Integer(opts.m as i32),
            Value::Integer(i32::try_from(opts.round_timeout.as_millis()).unwrap_or(i32::MAX)),
            Value::String(opts.seed.to_string()),
        ];
        let (cluster, peers) = (self.cluster, &self.peers);
        let started = match opts.protocol {
            Protocol::Om => done(each(cluster, peers, live, ext::OM_START, start).await),
            Protocol::Sm => start_sm(cluster, peers, live, &opts.commander, start).await,
        };
        let mut ready = Vec::new();
        for (node, url, result) in started {
            match result {
                Ok(()) => ready.push(node),
                Err(error) => {
                    if self.facts.is_loyal(&node) {
                        self.facts
                            .void_reasons
                            .push(format!("{node} (loyal) could not start the run: {error}"));
                    }
                    self.lost(Unreachable { node, url, error });
                }
            }
        }
        ready
    }

    /// The commander's order, if it started. A commander that does not take it is reported
    /// (and makes the run void if loyal); it still takes part in the rounds.
    async fn order(&mut self, ready: &[String]) {
        let opts = self.opts;
        if !ready.contains(&opts.commander) {
            return;
        }
        let args = [
            Value::String(self.facts.run.clone()),
            Value::String(opts.order.clone()),
        ];
        let method = opts.protocol.method(ext::OM_ORDER, ext::SM_ORDER);
        let (cluster, commander) = (self.cluster, &opts.commander);
        if let Err(error) = call(cluster, &self.peers, commander, method, &args).await {
            if self.facts.is_loyal(commander) {
                self.facts.void_reasons.push(format!(
                    "the commander {commander} (loyal) did not take its order: {error}"
                ));
            }
            self.unreachable.push(Unreachable {
                node: commander.clone(),
                url: cluster.url_of(commander).unwrap_or_default(),
                error,
            });
        }
    }

    /// Round `r` on every started node at once, within the round timeout. A loyal node that
    /// does not finish it, or cannot deliver its messages to a loyal node, makes the run void;
    /// messages that did not reach a traitor do not matter.
    async fn round(&mut self, ready: &[String], r: usize) {
        let round_ms = self.opts.round_timeout.as_millis();
        let method = self.opts.protocol.method(ext::OM_ROUND, ext::SM_ROUND);
        let args = vec![
            Value::String(self.facts.run.clone()),
            Value::Integer(r as i32),
        ];
        for (node, _url, result) in each(self.cluster, &self.round_peers, ready, method, args).await
        {
            if !self.facts.is_loyal(&node) {
                continue;
            }
            let reason = match result.map(|v| RoundDone::from_value(&v).ok_or(v)) {
                Ok(Ok(done)) => {
                    let lost: Vec<String> = (done.failed_to.iter())
                        .filter(|(to, _)| self.facts.is_loyal(to))
                        .map(|(to, n)| format!("{n} to {to}"))
                        .collect();
                    if lost.is_empty() {
                        continue;
                    }
                    format!(
                        "{node} (loyal) could not deliver messages of round {r} to loyal nodes: {}",
                        lost.join(", ")
                    )
                }
                Ok(Err(other)) => format!("{node} (loyal) answered round {r} with {other:?}"),
                Err(error) => {
                    format!("{node} (loyal) did not finish round {r} within {round_ms} ms: {error}")
                }
            };
            self.facts.void_reasons.push(reason);
        }
    }

    /// `om_decide` / `sm_decide` on every started node: the lieutenants' decisions and every
    /// node's counts. A loyal node lost here, answering without a decision, or whose messages
    /// arrived late anywhere makes the run void.
    async fn decide(&mut self, ready: &[String]) {
        let method = self.opts.protocol.method(ext::OM_DECIDE, ext::SM_DECIDE);
        let args = vec![Value::String(self.facts.run.clone())];
        for (node, url, result) in each(self.cluster, &self.peers, ready, method, args).await {
            match read(&node, method, result, Decided::from_value) {
                Ok(decided) => self.decided(node, decided),
                Err(error) => {
                    if self.facts.is_loyal(&node) {
                        self.facts
                            .void_reasons
                            .push(format!("{node} (loyal) was lost before deciding: {error}"));
                    }
                    self.lost(Unreachable { node, url, error });
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
        for (sender, &n) in &d.late {
            if n > 0 && facts.is_loyal(sender) {
                facts.void_reasons.push(format!(
                    "{n} message(s) of {sender} (loyal) arrived at {node} after their round had closed"
                ));
            }
        }
        if node == facts.commander {
            return;
        }
        match d.decision {
            Some(decision) => {
                facts.decisions.insert(node, decision);
            }
            // "(None)": the words of the reports before replies were typed, kept as they were.
            None if facts.is_loyal(&node) => {
                facts
                    .void_reasons
                    .push(format!("{node} (loyal) answered without a decision (None)"));
            }
            None => {}
        }
    }

    /// A node the run could not use: it counts as a traitor (its messages are missing) and is
    /// reported.
    fn lost(&mut self, u: Unreachable) {
        self.facts.count_traitor(&u.node, Faulty::Unreachable);
        self.unreachable.push(u);
    }

    /// The checker's judgement of what was gathered, and the nodes that could not be used.
    fn judge(self) -> (Report, Vec<Unreachable>) {
        (checker::report(self.facts), self.unreachable)
    }
}

/// `sm_start` on the commander first: it makes the run's nonce and answers it; then on every
/// lieutenant at once, with that nonce as a 7th argument. A commander that did not start (or
/// answered no nonce) is lost like any node that cannot start; the lieutenants then get a
/// nonce of the driver's, so the run goes on as one whose commander crashed.
async fn start_sm(
    cluster: &Cluster,
    peers: &Peers,
    live: &[String],
    commander: &str,
    start: Vec<Value>,
) -> Vec<(String, String, Result<(), NodeCallError>)> {
    let mut nonce = None;
    let mut first = None;
    if live.iter().any(|n| n == commander) {
        let url = cluster.url_of(commander).unwrap_or_default();
        let answer = call(cluster, peers, commander, ext::SM_START, &start).await;
        let started = read(commander, ext::SM_START, answer, SmStarted::from_value);
        let result = match started {
            Ok(started) => match started.nonce {
                Some(n) if sm::check_nonce(&n).is_ok() => {
                    nonce = Some(n);
                    Ok(())
                }
                other => Err(NodeCallError::Answer {
                    node: commander.to_string(),
                    method: ext::SM_START.to_string(),
                    message: format!(
                        "no valid nonce ({other:?}); is it a node from before run nonces?"
                    ),
                }),
            },
            Err(e) => Err(e),
        };
        first = Some((commander.to_string(), url, result));
    }
    let nonce = nonce.unwrap_or_else(|| {
        sm::new_nonce().unwrap_or_else(|_| sm::encode(&random_seed().to_le_bytes().repeat(2)))
    });
    let mut args = start;
    args.push(Value::String(nonce));
    let lieutenants: Vec<String> = live.iter().filter(|n| *n != commander).cloned().collect();
    let mut out = done(each(cluster, peers, &lieutenants, ext::SM_START, args).await);
    if let Some(c) = first {
        let at = live.iter().position(|n| n == commander).unwrap_or(0);
        out.insert(at.min(out.len()), c);
    }
    out
}

/// What `node` answered to `method`, read by `from` (a `from_value` of [`crate::agreement::reply`]); an
/// answer that is not one (not a struct) is an error of the call, showing what came.
fn read<T>(
    node: &str,
    method: &str,
    result: Result<Value, NodeCallError>,
    from: fn(&Value) -> Option<T>,
) -> Result<T, NodeCallError> {
    let answer = result?;
    from(&answer).ok_or_else(|| NodeCallError::Answer {
        node: node.to_string(),
        method: method.to_string(),
        message: format!("{answer:?}"),
    })
}

/// Which calls of [`each`] were answered, whatever the answer.
fn done(
    results: Vec<(String, String, Result<Value, NodeCallError>)>,
) -> Vec<(String, String, Result<(), NodeCallError>)> {
    (results.into_iter())
        .map(|(node, url, r)| (node, url, r.map(|_| ())))
        .collect()
}

/// Call `method(args)` on every node concurrently: (node, url, result) in the nodes' order.
pub async fn each(
    cluster: &Cluster,
    peers: &Peers,
    nodes: &[String],
    method: &'static str,
    args: Vec<Value>,
) -> Vec<(String, String, Result<Value, NodeCallError>)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, node) in nodes.iter().enumerate() {
        let (cluster, peers, node, args) =
            (cluster.clone(), peers.clone(), node.clone(), args.clone());
        tasks.spawn(async move {
            let url = cluster.url_of(&node).unwrap_or_default();
            let result = call(&cluster, &peers, &node, method, &args).await;
            (i, node, url, result)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(r) = done {
            out.push(r);
        }
    }
    out.sort_by_key(|r| r.0);
    out.into_iter().map(|(_, n, u, r)| (n, u, r)).collect()
}

async fn call(
    cluster: &Cluster,
    peers: &Peers,
    node: &str,
    method: &str,
    args: &[Value],
) -> Result<Value, NodeCallError> {
    peers.call_node(cluster, node, method, args).await
}

/// A fresh random seed.
pub fn random_seed() -> u64 {
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
