//! `client`: drive the generals. With no arguments it is `python client.py` against
//! 127.0.0.1:8000-8003, printing a line per send as the original README shows.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use generals::cluster::{Cluster, node_names};
use generals::peer::Peers;
use generals::protocol;
use generals::scenario::{self, Options};

/// Run the original scenario against a cluster of XML-RPC generals: every node sends the
/// decision to every other node, then each node reports its majority decision.
///
/// Exit status: 0 when every call succeeded, 1 when a node could not be reached or answered
/// with a fault (each reported as one line on stderr), 2 on bad arguments.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Host of the nodes.
    #[arg(long, default_value = protocol::DEFAULT_HOST)]
    host: String,
    /// Port of node P; node NAME listens on PORT_BASE + ord(NAME) - ord('P').
    #[arg(long, default_value_t = protocol::DEFAULT_PORT_BASE)]
    port_base: u16,
    /// Nodes taking part, comma-separated, in sending order [default: P,Q,R,S, or all
    /// generated nodes with --cluster-size].
    #[arg(long)]
    nodes: Option<String>,
    /// The decision every node sends.
    #[arg(long, default_value = protocol::DEFAULT_DECISION)]
    decision: String,
    /// Pause after each send, in milliseconds (the original sleeps 100).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    delay_ms: u64,
    /// A cluster of N generated nodes N0..N{N-1} on consecutive ports from --port-base
    /// (for clusters larger than P..S). Without --nodes, all of them take part.
    #[arg(long, value_name = "N")]
    cluster_size: Option<usize>,
    /// Where a node lives when the port rule does not apply, as NAME=URL. Repeatable.
    #[arg(long = "peer", value_name = "NAME=URL")]
    peers: Vec<String>,
    /// Print only the final decisions, byte for byte as client.py.
    #[arg(long)]
    quiet: bool,
    /// Timeout of each call, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    rpc_timeout: f64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("client: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<usize> {
    let mut cluster = Cluster::new(args.host.clone(), args.port_base);
    if let Some(size) = args.cluster_size {
        cluster = cluster.with_cluster_size(size).context("--cluster-size")?;
    }
    for p in &args.peers {
        cluster = cluster.with_peer_arg(p).context("--peer")?;
    }
    if !(args.rpc_timeout > 0.0 && args.rpc_timeout.is_finite()) {
        anyhow::bail!("--rpc-timeout must be a positive number of seconds");
    }
    let peers = Peers::new(Duration::from_secs_f64(args.rpc_timeout))?;
    let opts = Options {
        nodes: node_names(args.nodes.as_deref(), args.cluster_size),
        decision: args.decision,
        delay: Duration::from_millis(args.delay_ms),
        quiet: args.quiet,
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let failures = scenario::run_original(
        &cluster,
        &peers,
        &opts,
        &mut stdout.lock(),
        &mut stderr.lock(),
    )
    .await
    .context("writing output")?;
    Ok(failures)
}
