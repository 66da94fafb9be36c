//! What the client drives: the original `client.py` run. Every node sends the decision to every
//! other node, then each node is asked for its majority. Failures are reported one line each
//! and the run goes on with the other nodes, so one dead node never hides the rest.

use std::io::Write;
use std::time::Duration;

use dxr::Value;

use crate::cluster::Cluster;
use crate::peer::{PeerError, Peers};
use crate::protocol;

/// The knobs of the original scenario.
#[derive(Debug, Clone)]
pub struct Options {
    /// Nodes taking part, in the order they send and finalize.
    pub nodes: Vec<String>,
    /// The decision every node sends.
    pub decision: String,
    /// Pause after each send (the original sleeps 100 ms).
    pub delay: Duration,
    /// Print only the final lines (byte for byte as `client.py`).
    pub quiet: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: protocol::DEFAULT_NODES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            decision: protocol::DEFAULT_DECISION.to_string(),
            delay: Duration::ZERO,
            quiet: false,
        }
    }
}

/// What a run of the original scenario gave.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Calls that failed (each reported on `err`).
    pub failures: usize,
    /// Each node's final decision, for the nodes that gave one.
    pub decisions: std::collections::BTreeMap<String, String>,
    /// Nodes that refused the connection (nothing listens there), in the order found: each
    /// is reported once, and its later calls are skipped.
    pub unreachable: Vec<String>,
}

/// Run the scenario, writing its lines to `out` and one line per failure to `err`.
pub async fn run_original(
    cluster: &Cluster,
    peers: &Peers,
    opts: &Options,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<Report> {
    let mut tally = Tally::default();
    send_all(cluster, peers, opts, &mut tally, out, err).await?;
    let decisions = finalize_all(cluster, peers, opts, &mut tally, out, err).await?;
    Ok(Report {
        failures: tally.failures,
        decisions,
        unreachable: tally.unreachable,
    })
}

/// Failures so far, and the nodes that refused the connection (their further calls are
/// skipped, and count as failures).
#[derive(Default)]
struct Tally {
    failures: usize,
    unreachable: Vec<String>,
}

impl Tally {
    /// A call to `node` failed: count it, remember a refusal, write its line.
    fn failed(&mut self, node: &str, e: Failed, err: &mut dyn Write) -> std::io::Result<()> {
        self.failures += 1;
        if e.refused {
            self.unreachable.push(node.to_string());
        }
        writeln!(err, "{}", e.line)
    }

    /// Whether `node` refused a connection before: then its call is skipped and fails.
    fn skip(&mut self, node: &str) -> bool {
        let skip = self.unreachable.iter().any(|u| u == node);
        self.failures += usize::from(skip);
        skip
    }
}

/// Phase one, as `client.py`: every node sends the decision to every other node.
async fn send_all(
    cluster: &Cluster,
    peers: &Peers,
    opts: &Options,
    tally: &mut Tally,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<()> {
    for sender in &opts.nodes {
        for recipient in opts.nodes.iter().filter(|r| *r != sender) {
            if tally.skip(sender) {
                continue;
            }
            let args = [
                Value::String(recipient.clone()),
                Value::String(opts.decision.clone()),
            ];
            let what = format!(
                "{}({recipient:?}, {:?})",
                protocol::SEND_MESSAGE,
                opts.decision
            );
            match call(cluster, peers, sender, protocol::SEND_MESSAGE, &args, &what).await {
                Ok(reply) if !opts.quiet => {
                    writeln!(out, "{}", protocol::printed::client_send_line(&reply))?;
                }
                Ok(_) => {}
                Err(e) => tally.failed(sender, e, err)?,
            }
            out.flush()?;
            if !opts.delay.is_zero() {
                tokio::time::sleep(opts.delay).await;
            }
        }
    }
    Ok(())
}

/// Phase two: every node's majority, by name.
async fn finalize_all(
    cluster: &Cluster,
    peers: &Peers,
    opts: &Options,
    tally: &mut Tally,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<std::collections::BTreeMap<String, String>> {
    let mut decisions = std::collections::BTreeMap::new();
    for name in &opts.nodes {
        if tally.skip(name) {
            continue;
        }
        let what = format!("{}()", protocol::FINALIZE_DECISION);
        let method = protocol::FINALIZE_DECISION;
        match call(cluster, peers, name, method, &[], &what).await {
            Ok(decision) => {
                let line = protocol::printed::client_final_line(name, &decision);
                writeln!(out, "{line}")?;
                decisions.insert(name.clone(), decision);
            }
            Err(e) => tally.failed(name, e, err)?,
        }
        out.flush()?;
    }
    Ok(decisions)
}

/// A failed call of the scenario.
struct Failed {
    /// The stderr line.
    line: String,
    /// The node refused the connection: nothing listens there.
    refused: bool,
}

/// Call a method expected to return a string. The error's line is the whole stderr line:
/// `error: node Q (http://127.0.0.1:8001/): send_message("R", "attack"): connection refused`.
async fn call(
    cluster: &Cluster,
    peers: &Peers,
    node: &str,
    method: &str,
    args: &[Value],
    what: &str,
) -> Result<String, Failed> {
    let url = cluster.url_of(node).map_err(|f| Failed {
        line: format!("error: node {node} has no address: {f}"),
        refused: false,
    })?;
    let (problem, refused) = match peers.call(&url, method, args).await {
        Ok(Value::String(s)) => return Ok(s),
        Ok(other) => (format!("expected a string, got {other:?}"), false),
        Err(e) => (e.to_string(), matches!(e, PeerError::Refused)),
    };
    Err(Failed {
        line: format!("error: node {node} ({url}): {what}: {problem}"),
        refused,
    })
}
