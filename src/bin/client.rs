//! `client`: drive the generals. With no subcommand it is `python client.py` against
//! 127.0.0.1:8000-8003, printing a line per send as the original README shows; `client om` and
//! `client sm` run real Byzantine agreement between the nodes and check the result.

/// See `generals::allocator` for why.
#[global_allocator]
static ALLOC: generals::allocator::Allocator = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use generals::agreement::behaviour::Behaviour;
use generals::agreement::driver::{self, Protocol, RunOptions};
use generals::agreement::explore::{self, Explore};
use generals::cluster::{Cluster, ClusterFile, node_names, parse_names};
use generals::peer::Peers;
use generals::protocol;
use generals::scenario::{self, Options};
use generals::{picture, trace};
use std::collections::BTreeMap;

/// Drive a cluster of XML-RPC generals.
///
/// Without a subcommand: the original scenario. Every node sends --decision to every other
/// node, then each node reports its majority decision. Exit 0 when every call succeeded, 1 when
/// a node could not be reached or answered with a fault (one line each on stderr), 2 on bad
/// arguments.
///
/// `client om` / `client sm`: Byzantine agreement (oral / signed messages) between the nodes,
/// in explicit rounds, judged by the checker. Exit 0 when IC1 and IC2 hold, 1 when one is
/// violated, 2 when the run is refused (too few nodes for -m, over --max-messages, a node
/// without the extension) or the arguments are bad, 3 when the run is void: the simulation
/// could not keep the algorithm's assumptions (a loyal node late, failing or lost), so it
/// shows nothing about the algorithm.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    original: Original,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where the nodes are (valid before or after a subcommand).
#[derive(Debug, Args)]
struct Common {
    /// Host of the nodes.
    #[arg(long, global = true, default_value = protocol::DEFAULT_HOST)]
    host: String,
    /// Port of node P; node NAME listens on PORT_BASE + ord(NAME) - ord('P').
    #[arg(long, global = true, default_value_t = protocol::DEFAULT_PORT_BASE)]
    port_base: u16,
    /// Nodes taking part, comma-separated, in order [default: P,Q,R,S, or all generated
    /// nodes with --cluster-size].
    #[arg(long, global = true)]
    nodes: Option<String>,
    /// A cluster of N generated nodes N0..N{N-1} on consecutive ports from --port-base
    /// (for clusters larger than P..S). Without --nodes, all of them take part.
    #[arg(long, global = true, value_name = "N")]
    cluster_size: Option<usize>,
    /// Where a node lives when the port rule does not apply, as NAME=URL. Repeatable.
    #[arg(long = "peer", global = true, value_name = "NAME=URL")]
    peers: Vec<String>,
    /// A cluster file (TOML) naming every node and its URL; its nodes take part, in its
    /// order, unless --nodes says otherwise.
    #[arg(long, global = true, value_name = "FILE")]
    cluster: Option<std::path::PathBuf>,
    /// Timeout of each call, in seconds.
    #[arg(long, global = true, default_value_t = 10.0, value_name = "SECS")]
    rpc_timeout: f64,
    /// Write the run's node-to-node calls to FILE, one JSON object per line (run, from, to,
    /// method, args, result or fault, start_us, end_us).
    #[arg(long, global = true, value_name = "FILE")]
    trace: Option<std::path::PathBuf>,
    /// Draw the run as a Lamport (space-time) diagram in FILE (SVG): a line per node, an
    /// arrow per message labelled with its value, traitors in red, decisions at the bottom.
    /// With --tree NODE: that lieutenant's OM tree of received values and majorities.
    #[arg(long, global = true, value_name = "FILE")]
    svg: Option<std::path::PathBuf>,
    /// With --svg, draw this lieutenant's OM evaluation tree instead of the diagram.
    #[arg(long, global = true, value_name = "NODE")]
    tree: Option<String>,
    /// With --tree: draw K levels of the tree (default: all of a tree of up to 15 boxes,
    /// else 2) and fold the rest, counted under the boxes above.
    #[arg(long, global = true, value_name = "K", value_parser = clap::value_parser!(u16).range(1..))]
    depth: Option<u16>,
    /// With --svg, in the summary of a large OM/SM run (over 40 messages): the node whose
    /// messages are drawn as arrows (default: a traitor lieutenant, else the first
    /// lieutenant).
    #[arg(long, global = true, value_name = "NODE")]
    focus: Option<String>,
    /// Print the run as a Mermaid sequenceDiagram (for pasting into Markdown).
    #[arg(long, global = true)]
    mermaid: bool,
}

/// The original scenario's options.
#[derive(Debug, Args)]
struct Original {
    /// The decision every node sends.
    #[arg(long, default_value = protocol::DEFAULT_DECISION)]
    decision: String,
    /// Pause after each send, in milliseconds (the original sleeps 100).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    delay_ms: u64,
    /// Print only the final decisions, byte for byte as client.py.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run OM(m), oral messages (Lamport, Shostak, Pease 1982); needs n >= 3m+1.
    /// Exit 0 holds, 1 violated, 2 refused, 3 void.
    Om(Agreement),
    /// Run SM(m), signed messages with ed25519; needs n >= m+2.
    /// Exit 0 holds, 1 violated, 2 refused, 3 void.
    Sm(Agreement),
    /// Try every placement of up to m traitors (commander included), every behaviour and
    /// every order, each as a real run against a cluster started in-process on free ports.
    /// Exit 0 when every case holds, 1 when a counterexample was found, 3 when no case
    /// failed but some were void (a loyal node late or lost).
    Explore(ExploreArgs),
}

/// Options of `client explore`.
#[derive(Debug, Args)]
struct ExploreArgs {
    /// om or sm.
    #[arg(long, default_value = "om", value_parser = ["om", "sm"])]
    protocol: String,
    /// Nodes, commander included (named P, Q, R, ...).
    #[arg(short = 'n', default_value_t = 4)]
    n: usize,
    /// Traitors to tolerate; up to m traitors are placed.
    #[arg(short = 'm', default_value_t = 1)]
    m: usize,
    /// Behaviours a traitor may have, comma-separated [default: silent,flip,two-faced].
    #[arg(long, value_delimiter = ',')]
    behaviours: Vec<String>,
    /// Orders the commander may give.
    #[arg(long, value_delimiter = ',', default_value = "attack,retreat")]
    orders: Vec<String>,
    /// Explore below the bound (to find the classic counterexamples).
    #[arg(long)]
    allow_unsafe: bool,
    /// Round timeout of each run, in milliseconds (a round ends as soon as every node has
    /// answered; only a delayed or lost node makes a case wait this long).
    #[arg(long, default_value_t = driver::DEFAULT_ROUND_TIMEOUT_MS, value_name = "MS")]
    round_timeout_ms: u64,
    /// Seed of the first case (case i uses seed + i) [default: random, printed].
    #[arg(long)]
    seed: Option<u64>,
    /// Cases run at once, each against its own in-process cluster [default: the number of
    /// cores]. The report is the same whatever this is.
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
}

/// Options of an agreement run.
#[derive(Debug, Args)]
struct Agreement {
    /// Traitors to tolerate (the depth of the recursion).
    #[arg(short = 'm', long, default_value_t = 1)]
    m: usize,
    /// The commander's order.
    #[arg(long, default_value = "attack", value_parser = ["attack", "retreat"])]
    order: String,
    /// The commander [default: the first of --nodes].
    #[arg(long)]
    commander: Option<String>,
    /// How long one round may take, in milliseconds. A round ends as soon as every node has
    /// answered; a traitor's message still missing then counts as retreat, a loyal node's
    /// makes the run void (exit 3).
    #[arg(long, default_value_t = driver::DEFAULT_ROUND_TIMEOUT_MS, value_name = "MS")]
    round_timeout_ms: u64,
    /// Seed of the run (random behaviours draw from it) [default: random, printed].
    #[arg(long)]
    seed: Option<u64>,
    /// Run even when there are too few nodes for -m, to watch agreement fail.
    #[arg(long)]
    allow_unsafe: bool,
    /// Refuse (exit 2) a run that sends more messages than this, by the protocol's formula.
    #[arg(long, default_value_t = driver::DEFAULT_MAX_MESSAGES, value_name = "N")]
    max_messages: u64,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    // mimalloc's defaults here (no `allocator::configure`): purging freed memory at once costs
    // the explorer 3% of its speed, and the client has no memory target to keep.
    let cli = Cli::parse();
    // One thread is fastest for a client that only makes calls; the explorer hosts whole
    // clusters in-process and runs cases in parallel, so it gets every core.
    let runtime = match &cli.command {
        Some(Command::Explore(_)) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("client: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            None => original(&cli).await,
            Some(Command::Om(a)) => agreement(&cli.common, Protocol::Om, a).await,
            Some(Command::Sm(a)) => agreement(&cli.common, Protocol::Sm, a).await,
            Some(Command::Explore(e)) => explore(e).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("client: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn cluster(c: &Common) -> anyhow::Result<Cluster> {
    let mut cluster = Cluster::new(c.host.clone(), c.port_base);
    if let Some(size) = c.cluster_size {
        cluster = cluster.with_cluster_size(size).context("--cluster-size")?;
    }
    if let Some(path) = &c.cluster {
        let file = ClusterFile::load(path)
            .map_err(anyhow::Error::msg)
            .context("--cluster")?;
        cluster = file.apply(cluster).context("--cluster")?;
    }
    for p in &c.peers {
        cluster = cluster.with_peer_arg(p).context("--peer")?;
    }
    // The nodes named on the command line are nodes of the cluster (the port rule places
    // them); no other name is ever called.
    if let Some(list) = &c.nodes {
        cluster = cluster.with_known(&parse_names(list));
    }
    Ok(cluster)
}

/// The nodes taking part: --nodes, else the cluster file's, else --cluster-size's, else P..S.
fn nodes(c: &Common, cluster: &Cluster) -> Vec<String> {
    if c.nodes.is_none() && c.cluster.is_some() && c.cluster_size.is_none() {
        return cluster.members().to_vec();
    }
    node_names(c.nodes.as_deref(), c.cluster_size)
}

fn rpc_timeout(c: &Common) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(c.rpc_timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .context("--rpc-timeout must be a positive number of seconds")
}

/// What to do when nodes refused the connection: start them (all of them, or only those
/// missing), with the options this client was given, so the command works as printed.
fn start_hint(c: &Common, down: &[String], nodes: &[String]) -> String {
    let mut cmd = String::from("server");
    match &c.cluster {
        Some(file) => {
            let _ = write!(cmd, " --cluster {}", file.display());
        }
        None => {
            if c.host != protocol::DEFAULT_HOST {
                let _ = write!(cmd, " --host {}", c.host);
            }
            let _ = write!(cmd, " --port-base {}", c.port_base);
            if let Some(n) = c.cluster_size {
                let _ = write!(cmd, " --cluster-size {n}");
            }
        }
    }
    if down.len() == nodes.len() {
        if let Some(list) = &c.nodes {
            let _ = write!(cmd, " --nodes {list}");
        }
        format!("hint: no node is running; start the cluster first: {cmd}")
    } else {
        // Only the missing ones: the others are running on their ports.
        let _ = write!(cmd, " --nodes {}", down.join(","));
        let verb = if down.len() == 1 { "is" } else { "are" };
        format!(
            "hint: {} {verb} not running (connection refused); start it first: {cmd}",
            down.join(", ")
        )
    }
}

/// What a run leaves for the pictures.
struct Drawn<'a> {
    run: &'a str,
    title: String,
    traitors: Vec<String>,
    decisions: BTreeMap<String, String>,
    /// (commander, m) of an OM run, for --tree.
    om: Option<(&'a str, usize)>,
}

/// Gather the run's calls from every node and write what was asked for: the trace, the
/// Lamport diagram or an OM tree, the Mermaid diagram.
async fn outputs(
    common: &Common,
    cluster: &Cluster,
    nodes: &[String],
    drawn: Drawn<'_>,
    since_us: u64,
) -> anyhow::Result<()> {
    if common.trace.is_none() && common.svg.is_none() && !common.mermaid {
        return Ok(());
    }
    if let Some(f) = common
        .focus
        .as_deref()
        .filter(|f| !nodes.iter().any(|n| n == f))
    {
        anyhow::bail!("--focus {f}: no such node in this run");
    }
    let peers = Peers::new(rpc_timeout(common)?)?;
    let (events, errors) = trace::gather(cluster, &peers, nodes, drawn.run, since_us).await;
    for (node, e) in errors {
        eprintln!("warning: no trace from node {node}: {e}");
    }
    if let Some(path) = &common.trace {
        std::fs::write(path, trace::to_json_lines(&events))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &common.svg {
        let svg = match (&common.tree, drawn.om) {
            (Some(node), Some((commander, m))) => {
                let tree = picture::om_tree_from_events(node, commander, nodes, m, &events)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("--tree {node}"))?;
                picture::tree_svg(node, &tree, m, common.depth.map(usize::from))
            }
            (Some(_), None) => anyhow::bail!("--tree draws an OM run: use it with `client om`"),
            (None, _) => picture::lamport_svg(
                nodes,
                &events,
                &drawn.traitors,
                &drawn.decisions,
                &drawn.title,
                common.focus.as_deref(),
            ),
        };
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    if common.mermaid {
        print!(
            "{}",
            picture::mermaid(nodes, &events, &drawn.traitors, &drawn.decisions)
        );
    }
    Ok(())
}

/// The nodes whose `node_info` says they are traitors (nodes without it count as honest).
async fn traitors(common: &Common, cluster: &Cluster, nodes: &[String]) -> Vec<String> {
    let Ok(peers) = rpc_timeout(common).and_then(|t| Ok(Peers::new(t)?)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for node in nodes {
        let info = peers
            .call_node(cluster, node, protocol::ext::NODE_INFO, &[])
            .await;
        if let Ok(dxr::Value::Struct(info)) = info
            && let Some(dxr::Value::Boolean(true)) = info.get("traitor")
        {
            out.push(node.clone());
        }
    }
    out
}

async fn original(cli: &Cli) -> anyhow::Result<ExitCode> {
    let since_us = trace::now_us();
    let cluster = cluster(&cli.common)?;
    let peers = Peers::new(rpc_timeout(&cli.common)?)?;
    let opts = Options {
        nodes: nodes(&cli.common, &cluster),
        decision: cli.original.decision.clone(),
        delay: Duration::from_millis(cli.original.delay_ms),
        quiet: cli.original.quiet,
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let report = scenario::run_original(
        &cluster,
        &peers,
        &opts,
        &mut stdout.lock(),
        &mut stderr.lock(),
    )
    .await
    .context("writing output")?;
    if !report.unreachable.is_empty() {
        eprintln!(
            "{}",
            start_hint(&cli.common, &report.unreachable, &opts.nodes)
        );
    }
    if cli.common.tree.is_some() {
        anyhow::bail!("--tree draws an OM run: use it with `client om`");
    }
    let drawing = cli.common.svg.is_some() || cli.common.mermaid;
    let drawn = Drawn {
        run: trace::ORIGINAL_RUN,
        title: "the original run: all-to-all, then finalize".into(),
        traitors: if drawing {
            traitors(&cli.common, &cluster, &opts.nodes).await
        } else {
            Vec::new()
        },
        decisions: report.decisions.clone(),
        om: None,
    };
    outputs(&cli.common, &cluster, &opts.nodes, drawn, since_us).await?;
    Ok(if report.failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn agreement(common: &Common, protocol: Protocol, a: &Agreement) -> anyhow::Result<ExitCode> {
    let since_us = trace::now_us();
    let cluster = cluster(common)?;
    let nodes = nodes(common, &cluster);
    let commander = a
        .commander
        .clone()
        .or_else(|| nodes.first().cloned())
        .context("no nodes")?;
    let seed = a.seed.unwrap_or_else(driver::random_seed);
    let opts = RunOptions {
        protocol,
        m: a.m,
        order: a.order.clone(),
        commander,
        nodes,
        round_timeout: Duration::from_millis(a.round_timeout_ms.max(1)),
        seed,
        allow_unsafe: a.allow_unsafe,
        rpc_timeout: rpc_timeout(common)?,
        max_messages: a.max_messages,
    };
    let (outcome, unreachable) = match driver::drive(&cluster, &opts).await {
        Ok(r) => r,
        // Refused before it started: bound, budget, parameters, a node without the extension.
        Err(e) => {
            eprintln!("client: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    for u in &unreachable {
        eprintln!("error: node {} ({}): {}", u.node, u.url, u.error);
    }
    if a.json {
        println!("{}", outcome.to_json());
    } else {
        print!("{}", outcome.human());
    }
    let mut decisions = outcome.decisions.clone();
    decisions.extend(outcome.traitor_decisions.clone());
    let drawn = Drawn {
        run: &outcome.run,
        title: format!(
            "{}({}) run {}: commander {} orders {}",
            outcome.protocol.to_uppercase(),
            outcome.m,
            outcome.run,
            outcome.commander,
            outcome.order
        ),
        traitors: outcome.traitors.clone(),
        decisions,
        om: (protocol == Protocol::Om).then_some((opts.commander.as_str(), opts.m)),
    };
    outputs(common, &cluster, &opts.nodes, drawn, since_us).await?;
    Ok(ExitCode::from(outcome.exit_code()))
}

async fn explore(a: &ExploreArgs) -> anyhow::Result<ExitCode> {
    use std::io::{IsTerminal, Write};
    let protocol = if a.protocol == "sm" {
        Protocol::Sm
    } else {
        Protocol::Om
    };
    let behaviours = if a.behaviours.is_empty() {
        explore::default_behaviours()
    } else {
        a.behaviours
            .iter()
            .map(|b| b.parse::<Behaviour>().map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()
            .context("--behaviours")?
    };
    let seed = a.seed.unwrap_or_else(driver::random_seed);
    let e = Explore {
        protocol,
        n: a.n,
        m: a.m,
        behaviours,
        orders: a.orders.clone(),
        allow_unsafe: a.allow_unsafe,
        round_timeout: Duration::from_millis(a.round_timeout_ms.max(1)),
        seed,
        jobs: a
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1),
    };
    let total = explore::case_count(e.n, e.m, e.behaviours.len(), e.orders.len());
    let names: Vec<String> = e.behaviours.iter().map(ToString::to_string).collect();
    println!(
        "exploring {}({}) with n={} ({}): up to {} traitor(s), behaviours {}, orders {}; {total} cases, seed {seed}",
        protocol.name().to_uppercase(),
        e.m,
        e.n,
        explore::names(e.n).join(","),
        e.m,
        names.join(","),
        e.orders.join(","),
    );
    let tty = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let progress = |done: usize, total: usize| {
        if tty {
            let width = 30;
            let filled = done * width / total.max(1);
            eprint!(
                "\r[{}{}] {done}/{total}",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
            if done == total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
    };
    let summary = match explore::explore(&e, progress).await {
        Ok(s) => s,
        Err(err) => {
            eprintln!("client: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    println!("cases run   {:>6}", summary.cases);
    println!("IC1 held    {:>6}", summary.ic1_held);
    println!("IC2 held    {:>6}", summary.ic2_held);
    println!("void        {:>6}", summary.void);
    println!("time        {:>6.2} s", started.elapsed().as_secs_f64());
    match &summary.counterexample {
        None if summary.void > 0 => {
            println!(
                "no counterexample, but {} case(s) were void (a loyal node late or lost): they \
                 show nothing; try a longer --round-timeout-ms",
                summary.void
            );
            Ok(ExitCode::from(3))
        }
        None => {
            println!("no counterexample: every case satisfies IC1 and IC2");
            Ok(ExitCode::SUCCESS)
        }
        Some((case, outcome)) => {
            println!("first counterexample: {case}");
            print!("{}", outcome.human());
            Ok(ExitCode::FAILURE)
        }
    }
}
