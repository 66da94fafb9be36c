//! `loadgen`: put XML-RPC load on one node and print calls/s and latency percentiles.
//! `scripts/bench.sh` drives it against the Rust server and the Python stand-in.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use generals::cli::seconds_or_zero;
use generals::load::{self, Plan};

/// Load a node with XML-RPC calls over keep-alive connections and print calls/s, p50, p99,
/// p99.9 latency and errors as one line of key=value pairs.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about, long_about)]
struct Args {
    /// The node, as HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:8001")]
    addr: String,
    /// Concurrent connections.
    #[arg(short = 'c', long, default_value_t = 1)]
    connections: usize,
    /// Run for this many seconds (ignored when --calls is given).
    #[arg(short = 'd', long, default_value = "5", value_name = "SECS", value_parser = seconds_or_zero)]
    duration: Duration,
    /// Stop after this many calls in total.
    #[arg(short = 'n', long)]
    calls: Option<u64>,
    /// Weighted method mix: METHOD[=RECIPIENT][:WEIGHT],... e.g.
    /// `receive_message:9,send_message=R:1` (send_message makes the node call RECIPIENT).
    #[arg(long, default_value = "receive_message")]
    mix: String,
    /// Timeout of one call in seconds (counted as an error).
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = seconds_or_zero)]
    timeout: Duration,
}

fn main() -> ExitCode {
    let args: Args = generals::cli::parse_or_exit();
    // One connection is one chain of calls: a single-threaded runtime measures it without
    // cross-thread wake-ups in the generator itself.
    let runtime = if args.connections <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    match runtime {
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> ExitCode {
    let mix = match load::parse_mix(&args.mix) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("loadgen: --mix: {e}");
            return ExitCode::from(2);
        }
    };
    let plan = Plan {
        addr: args.addr,
        connections: args.connections.max(1),
        duration: args.calls.is_none().then_some(args.duration),
        calls: args.calls,
        mix,
        timeout: args.timeout,
    };
    if let Err(e) = load::reach(&plan.addr, plan.timeout).await {
        eprintln!("loadgen: {e}");
        return ExitCode::FAILURE;
    }
    let report = load::run(&plan).await;
    println!("{}", report.line());
    if report.ok == 0 {
        eprintln!(
            "loadgen: no call succeeded against {}: the node accepts connections but answered \
             none of {} calls (errors={}); try one with `client` or read its log",
            plan.addr,
            report.errors + report.unfinished,
            report.errors
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
