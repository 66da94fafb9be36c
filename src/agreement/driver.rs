//! The driver of an agreement run: what `client om` and `client sm` do. It starts the run on
//! every node, tells the commander to give its order, collects each node's decision and
//! message counts, and hands them to the checker. It decides nothing itself: every decision
//! comes from a node, reached only through XML-RPC messages between nodes.

use std::collections::BTreeMap;
use std::time::Duration;

use dxr::Value;

use super::checker::{self, Outcome};
use super::om;
use crate::cluster::Cluster;
use crate::peer::Peers;
use crate::protocol::ext;

/// Which algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// How long a round may take; a message missing after `(m + 1)` rounds counts as retreat.
    pub round_timeout: Duration,
    /// Seed of the run; random behaviours draw from it.
    pub seed: u64,
    /// Run even when n is below the bound, to watch the impossibility.
    pub allow_unsafe: bool,
    /// Timeout of each call the driver makes (on top of the run's own deadline for decisions).
    pub rpc_timeout: Duration,
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
}

/// A node the driver could not use, and why (reported on stderr by the client).
#[derive(Debug, Clone)]
pub struct Unreachable {
    /// The node.
    pub node: String,
    /// Its URL, if it has one.
    pub url: String,
    /// What went wrong.
    pub error: String,
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
    Ok(())
}

/// Run the protocol over the cluster and judge it. Nodes that cannot be reached are listed
/// (and count as traitors: their messages are missing).
pub async fn drive(
    cluster: &Cluster,
    opts: &RunOptions,
) -> Result<(Outcome, Vec<Unreachable>), DriveError> {
    check(opts)?;
    let p = opts.protocol;
    let run = format!("{}-{}", p.name(), opts.seed);
    let rounds = opts.m as u32 + 1;
    let peers = Peers::new(opts.rpc_timeout).map_err(|e| DriveError::Invalid(e.to_string()))?;
    let patient = Peers::new(opts.rpc_timeout + opts.round_timeout * rounds + opts.round_timeout)
        .map_err(|e| DriveError::Invalid(e.to_string()))?;
    let mut unreachable = Vec::new();
    let mut outcome = Outcome::new(
        p.name(),
        &run,
        opts.seed,
        opts.nodes.len(),
        opts.m,
        &opts.commander,
        &opts.order,
    );

    // Who is who: behaviours decide who counts as loyal.
    let infos = each(cluster, &peers, &opts.nodes, ext::NODE_INFO, vec![]).await;
    let mut live = Vec::new();
    for (node, url, result) in infos {
        match result {
            Ok(Value::Struct(info)) => {
                if let Some(Value::Boolean(true)) = info.get("traitor") {
                    outcome.traitors.push(node.clone());
                    let b = match info.get("behaviour") {
                        Some(Value::String(b)) => b.clone(),
                        _ => "?".into(),
                    };
                    outcome.behaviours.insert(node.clone(), b);
                }
                live.push(node);
            }
            other => {
                let error = match other {
                    Err(e) => e,
                    Ok(v) => format!("node_info answered {v:?}"),
                };
                lost(
                    &mut outcome,
                    &mut unreachable,
                    Unreachable { node, url, error },
                );
            }
        }
    }

    let nodes_value = Value::Array(opts.nodes.iter().cloned().map(Value::String).collect());
    let start = vec![
        Value::String(run.clone()),
        Value::String(opts.commander.clone()),
        nodes_value,
        Value::Integer(opts.m as i32),
        Value::Integer(i32::try_from(opts.round_timeout.as_millis()).unwrap_or(i32::MAX)),
        Value::String(opts.seed.to_string()),
    ];
    let started = each(
        cluster,
        &patient,
        &live,
        p.method(ext::OM_START, ext::SM_START),
        start,
    )
    .await;
    let mut ready = Vec::new();
    for (node, url, result) in started {
        match result {
            Ok(_) => ready.push(node),
            Err(error) => {
                lost(
                    &mut outcome,
                    &mut unreachable,
                    Unreachable { node, url, error },
                );
            }
        }
    }

    if ready.contains(&opts.commander) {
        let order = [
            Value::String(run.clone()),
            Value::String(opts.order.clone()),
        ];
        let method = p.method(ext::OM_ORDER, ext::SM_ORDER);
        if let Err(error) = call(cluster, &patient, &opts.commander, method, &order).await {
            unreachable.push(Unreachable {
                node: opts.commander.clone(),
                url: cluster.url_of(&opts.commander).unwrap_or_default(),
                error,
            });
        }
    }

    let decided = each(
        cluster,
        &patient,
        &ready,
        p.method(ext::OM_DECIDE, ext::SM_DECIDE),
        vec![Value::String(run.clone())],
    )
    .await;
    let mut decisions = BTreeMap::new();
    let mut per_round = vec![0u64; opts.m + 1];
    for (node, url, result) in decided {
        match result {
            Ok(Value::Struct(d)) => {
                if let Some(Value::Array(sent)) = d.get("sent") {
                    for (i, v) in sent.iter().enumerate() {
                        if let (Some(slot), Value::Integer(c)) = (per_round.get_mut(i), v) {
                            *slot += u64::try_from(*c).unwrap_or(0);
                        }
                    }
                }
                if let Some(Value::Integer(r)) = d.get("rejected") {
                    outcome.rejected += u64::try_from(*r).unwrap_or(0);
                }
                if node != opts.commander
                    && let Some(Value::String(decision)) = d.get("decision")
                {
                    decisions.insert(node, decision.clone());
                }
            }
            other => {
                // No decision from this node: it cannot count as a loyal lieutenant that
                // agreed, so it is counted with the traitors (its messages may be missing).
                let error = match other {
                    Err(e) => e,
                    Ok(v) => format!("decide answered {v:?}"),
                };
                lost(
                    &mut outcome,
                    &mut unreachable,
                    Unreachable { node, url, error },
                );
            }
        }
    }
    outcome.messages_per_round = per_round;
    if p == Protocol::Om {
        outcome.expected_per_round = om::expected_per_round(opts.nodes.len(), opts.m);
    }
    outcome.traitors.sort();
    Ok((checker::judge(outcome, &decisions), unreachable))
}

/// A node the run could not use: it counts as a traitor (its messages are missing) and is
/// reported.
fn lost(outcome: &mut Outcome, unreachable: &mut Vec<Unreachable>, u: Unreachable) {
    if !outcome.traitors.contains(&u.node) {
        outcome.traitors.push(u.node.clone());
    }
    outcome
        .behaviours
        .insert(u.node.clone(), "unreachable".into());
    unreachable.push(u);
}

/// Call `method(args)` on every node concurrently: (node, url, result) in the nodes' order.
async fn each(
    cluster: &Cluster,
    peers: &Peers,
    nodes: &[String],
    method: &'static str,
    args: Vec<Value>,
) -> Vec<(String, String, Result<Value, String>)> {
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
) -> Result<Value, String> {
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
        return super::behaviour::mix(t);
    }
    u64::from_le_bytes(b) >> 11 // fits in a double exactly, friendly to JSON readers
}
