//! `server`: host XML-RPC generals. With no arguments it is `python server.py`: nodes P, Q, R,
//! S on 127.0.0.1:8000-8003, P faulty. See `server --help` and the README.

/// See `generals::allocator` for why.
#[global_allocator]
static ALLOC: generals::allocator::Allocator = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use generals::agreement::behaviour::{self, Behaviour};
use generals::cluster::{Cluster, ClusterFile, node_names, parse_names};
use generals::protocol;
use generals::server::{self, Config, Limits};

/// Host generals of the Byzantine-generals simulation over XML-RPC, wire-compatible with the
/// original server.py.
///
/// A node's port is PORT_BASE + ord(NAME) - ord('P') (P=8000, Q=8001, ...), the original's
/// rule, used both to bind and to find peers; --peer overrides it per node.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Address to bind and to call peers on [default: 127.0.0.1]. With --cluster, nodes bind
    /// their URL's host unless --host is given. Anything but loopback exposes unauthenticated
    /// XML-RPC to the network.
    #[arg(long)]
    host: Option<String>,
    /// A cluster file (TOML): every node's name, URL, faulty flag and behaviour; each host runs
    /// `server --cluster FILE --nodes ITS_NODES`. Other flags override the file.
    #[arg(long, value_name = "FILE")]
    cluster: Option<std::path::PathBuf>,
    /// Port of node P; other nodes follow the port rule.
    #[arg(long, default_value_t = protocol::DEFAULT_PORT_BASE)]
    port_base: u16,
    /// Nodes this process hosts, comma-separated [default: P,Q,R,S, or all generated nodes
    /// with --cluster-size].
    #[arg(long)]
    nodes: Option<String>,
    /// Nodes faulty in the original's sense, comma-separated ('' for none) [default: P, or the
    /// cluster file's]. A faulty node ignores what it receives and answers 'faulty'; a faulty P
    /// also refuses to send to R and S.
    #[arg(long)]
    faulty: Option<String>,
    /// A cluster of N generated nodes N0..N{N-1} on consecutive ports from --port-base
    /// (for clusters larger than P..S). Without --nodes, all of them take part.
    #[arg(long, value_name = "N")]
    cluster_size: Option<usize>,
    /// Where a peer lives when the port rule does not apply, as NAME=URL
    /// (e.g. Q=http://10.0.0.2:8001/). Repeatable.
    #[arg(long = "peer", value_name = "NAME=URL")]
    peers: Vec<String>,
    /// How a node sends, as NAME=KIND (repeatable): honest, deny:A,B (refuses to send to A
    /// and B; the original faulty P is deny:R,S), silent, flip (the opposite order), two-faced
    /// (attack to the first half of its receivers, retreat to the rest), random (per message,
    /// from --seed and the run's seed), delay:MS (sends and answers MS late). Applies to the
    /// original send_message and to OM/SM runs alike.
    #[arg(long = "behaviour", value_name = "NAME=KIND", value_parser = parse_behaviour)]
    behaviours: Vec<(String, Behaviour)>,
    /// Seed of the random behaviour (mixed with each run's seed).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// No access log on stderr.
    #[arg(long)]
    quiet: bool,
    /// Timeout of each node-to-node call, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    rpc_timeout: f64,
    /// Largest request body accepted, in bytes (larger: HTTP 413).
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    max_body: usize,
    /// Time a client has to send a request's head (else the connection is closed) and its
    /// body (else HTTP 408); also how long an idle keep-alive connection is kept, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    request_timeout: f64,
    /// Node-to-node calls this process remembers for traces (`client --trace/--svg`); the
    /// oldest are dropped beyond this; 0 records nothing.
    #[arg(long, default_value_t = generals::trace::DEFAULT_MAX_EVENTS, value_name = "N")]
    trace_events: usize,
    /// Distinct senders one node stores; a new sender beyond this gets a fault.
    #[arg(long, default_value_t = generals::node::DEFAULT_MAX_SENDERS, value_name = "N")]
    max_senders: usize,
    /// Largest Byzantine-agreement run a node takes part in, in messages (all rounds, by the
    /// protocol's formula; SM counts twice OM's); a larger om_start/sm_start gets a fault.
    #[arg(long, default_value_t = generals::agreement::engine::DEFAULT_MAX_RUN_MESSAGES, value_name = "N")]
    max_run_messages: u64,
    /// Agreement runs a node holds (for om_decide, trace_events); beyond, the oldest finished
    /// run (decided, or expired) is forgotten and calls for it get `unknown run`. When all are
    /// unfinished, a new run is refused: a live run is never dropped or replaced.
    #[arg(long, default_value_t = generals::agreement::engine::MAX_RUNS as u64, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_runs: u64,
    /// Longest sender name or decision a node stores or sends, in bytes (longer: a fault).
    #[arg(long, default_value_t = generals::node::DEFAULT_MAX_VALUE, value_name = "BYTES")]
    max_value: usize,
    /// Bytes of stored messages per node (each counts its sender, its decision and 64 bytes);
    /// a message that would pass it gets a fault, and known senders can still shorten theirs.
    #[arg(long, default_value_t = generals::node::DEFAULT_MAX_STORED_BYTES, value_name = "BYTES")]
    max_stored_bytes: usize,
    /// Bytes of node-to-node calls remembered for traces, per process; the oldest are dropped
    /// beyond this (and beyond --trace-events).
    #[arg(long, default_value_t = generals::trace::DEFAULT_MAX_BYTES, value_name = "BYTES")]
    trace_bytes: usize,
    /// Connections the process serves at once (at most half its open-file limit); past it a
    /// new connection gets HTTP 429 and is closed.
    #[arg(long, default_value_t = generals::gate::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    max_connections: usize,
    /// Connections one client address may hold at once; past it, HTTP 429.
    #[arg(long, default_value_t = generals::gate::DEFAULT_MAX_PER_CLIENT, value_name = "N")]
    max_connections_per_client: usize,
    /// Bytes of request bodies the process holds at once (received, not yet answered); past
    /// it further bodies wait, and get HTTP 408 if no room is made within --request-timeout.
    #[arg(long, default_value_t = generals::gate::DEFAULT_BUFFERED_BYTES, value_name = "BYTES")]
    max_buffered_bytes: usize,
    /// Bytes of answers not yet read by their callers, per process; past it a large answer
    /// (over 16 KiB) is replaced by a short fault. A caller that reads nothing of its answer
    /// for --request-timeout is disconnected.
    #[arg(long, default_value_t = generals::gate::DEFAULT_ANSWER_BYTES, value_name = "BYTES")]
    max_answer_bytes: usize,
    /// Reader and writer of request bodies and relay batches: fast (our one-pass reader, the
    /// default) or dxr (dxr::MethodCall::from_xml, dxr_client for batches). For measuring one
    /// against the other (scripts/bench.sh); answers are the same wherever both accept.
    #[arg(long, default_value = "fast", value_name = "CODEC", hide = true)]
    xml_codec: generals::methods::Codec,
}

fn main() -> ExitCode {
    generals::allocator::configure();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => {
            let code = runtime.block_on(serve());
            // serve() returns once its connections are done (within --request-timeout); a
            // blocking evaluation still running must not hold the exit.
            runtime.shutdown_timeout(Duration::from_millis(100));
            // Lines still queued get a second to reach stdout; a stdout nobody reads must not
            // hold the exit either.
            generals::console::flush(generals::console::SHUTDOWN_WAIT);
            code
        }
        Err(e) => {
            eprintln!("server: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let host = args
        .host
        .clone()
        .unwrap_or_else(|| protocol::DEFAULT_HOST.to_string());
    let mut cluster = Cluster::new(host.clone(), args.port_base);
    if let Some(size) = args.cluster_size {
        cluster = cluster.with_cluster_size(size).context("--cluster-size")?;
    }
    let file = match &args.cluster {
        Some(path) => Some(
            ClusterFile::load(path)
                .map_err(anyhow::Error::msg)
                .context("--cluster")?,
        ),
        None => None,
    };
    if let Some(f) = &file {
        cluster = f.apply(cluster).context("--cluster")?;
    }
    for p in &args.peers {
        cluster = cluster.with_peer_arg(p).context("--peer")?;
    }
    if args.host.is_some() {
        cluster = cluster.with_bind_host(host.clone());
    }
    let nodes = match (&args.nodes, &file) {
        (None, Some(f)) if args.cluster_size.is_none() => f.names(),
        _ => node_names(args.nodes.as_deref(), args.cluster_size),
    };
    let faulty = match (&args.faulty, &file) {
        (Some(list), _) => parse_names(list),
        (None, Some(f)) => f.faulty(),
        (None, None) => vec![protocol::ORIGINAL_FAULTY.to_string()],
    };
    // The file's behaviours first: a --behaviour flag for the same node wins.
    let mut behaviours = file
        .as_ref()
        .map(ClusterFile::behaviours)
        .unwrap_or_default();
    behaviours.extend(args.behaviours);
    for name in &nodes {
        let (bind, _) = cluster.listen_addr(name).context("--nodes")?;
        if !is_loopback(&bind) {
            eprintln!(
                "server: warning: binding {bind} exposes XML-RPC without authentication to the network"
            );
            break;
        }
    }
    let rpc_timeout = seconds("--rpc-timeout", args.rpc_timeout)?;
    let request_timeout = seconds("--request-timeout", args.request_timeout)?;
    let config = Config {
        cluster,
        nodes,
        faulty,
        behaviours,
        seed: args.seed,
        quiet: args.quiet,
        print: true,
        limits: Limits {
            rpc_timeout,
            max_body: args.max_body,
            max_senders: args.max_senders,
            request_timeout,
            trace_events: args.trace_events,
            max_run_messages: args.max_run_messages,
            max_runs: usize::try_from(args.max_runs).unwrap_or(usize::MAX),
            max_value: args.max_value,
            max_stored_bytes: args.max_stored_bytes,
            trace_bytes: args.trace_bytes,
            max_connections: args.max_connections,
            max_connections_per_client: args.max_connections_per_client,
            buffered_bytes: args.max_buffered_bytes,
            answer_bytes: args.max_answer_bytes,
        },
        codec: args.xml_codec,
    };
    let bound = server::bind(config).await?;
    bound
        .run(async {
            shutdown_signal().await;
            exit_by(request_timeout);
        })
        .await;
    Ok(())
}

/// After a stop signal, the server finishes what is in flight for most of `limit` (see
/// `Bound::run`); whatever still runs then (a blocking evaluation, a task stuck on a
/// peer) must not hold the exit: this thread ends the process at `limit`, exit code 1.
fn exit_by(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("server: work still running {limit:?} after the stop signal; exiting anyway");
        std::process::exit(1);
    });
}

fn parse_behaviour(arg: &str) -> Result<(String, Behaviour), String> {
    behaviour::parse_assignment(arg)
}

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} must be a positive number of seconds, got {value}"))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
