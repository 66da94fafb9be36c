//! `server`'s command line: where the nodes are ([`ClusterArgs`]), who is faulty
//! ([`Roles`]), and the limits, turned into a [`Config`].

use std::time::Duration;

use clap::Parser;

use super::manual::Shell;
use super::{CliError, ClusterArgs, LogArgs, Roles, seconds};
use crate::server::{Config, Limits};
use crate::{gate, node, trace};

/// Host generals of the Byzantine-generals simulation over XML-RPC, wire-compatible with the
/// original server.py.
///
/// A node's port is PORT_BASE + ord(NAME) - ord('P') (P=8000, Q=8001, ...), the original's
/// rule, used both to bind and to find peers; --peer overrides it per node.
#[derive(Debug, Parser)]
#[command(name = "server", version, about, long_about)]
pub struct ServerArgs {
    /// Where the nodes are, and which of them this process hosts (--nodes).
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// Who is faulty and how each node sends.
    #[command(flatten)]
    pub(crate) roles: Roles,
    /// Seed of the random behaviour (mixed with each run's seed).
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// No access log on stderr.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Largest request body accepted, in bytes (larger: HTTP 413).
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub(crate) max_body: usize,
    /// Time a client has to send a request's head (else the connection is closed) and its
    /// body (else HTTP 408); also how long an idle keep-alive connection is kept, in seconds.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = seconds)]
    pub(crate) request_timeout: Duration,
    /// Node-to-node calls this process remembers for traces (`client --trace/--svg`); the
    /// oldest are dropped beyond this; 0 records nothing.
    #[arg(long, default_value_t = trace::DEFAULT_MAX_EVENTS, value_name = "N")]
    pub(crate) trace_events: usize,
    /// Distinct senders one node stores; a new sender beyond this gets a fault.
    #[arg(long, default_value_t = node::DEFAULT_MAX_SENDERS, value_name = "N")]
    pub(crate) max_senders: usize,
    /// Largest Byzantine-agreement run a node takes part in, in messages (all rounds, by the
    /// protocol's formula; SM counts twice OM's); a larger om_start/sm_start gets a fault.
    #[arg(long, default_value_t = crate::agreement::engine::DEFAULT_MAX_RUN_MESSAGES, value_name = "N")]
    pub(crate) max_run_messages: u64,
    /// Agreement runs a node holds (for om_decide, trace_events); beyond, the oldest finished
    /// run (decided, or expired) is forgotten, then the oldest abandoned one (its driver left
    /// it 5 s after its start, or a round timeout and 5 s after its last call), and calls for
    /// it get `unknown run`. When all are driven and unfinished, a new run is refused: a
    /// driven run is never dropped or replaced.
    #[arg(long, default_value_t = crate::agreement::engine::MAX_RUNS as u64, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub(crate) max_runs: u64,
    /// Longest sender name or decision a node stores or sends, in bytes (longer: a fault).
    #[arg(long, default_value_t = node::DEFAULT_MAX_VALUE, value_name = "BYTES")]
    pub(crate) max_value: usize,
    /// Bytes of stored messages per node (each counts its sender, its decision and 64 bytes);
    /// a message that would pass it gets a fault, and known senders can still shorten theirs.
    #[arg(long, default_value_t = node::DEFAULT_MAX_STORED_BYTES, value_name = "BYTES")]
    pub(crate) max_stored_bytes: usize,
    /// Bytes of node-to-node calls remembered for traces, per process; the oldest are dropped
    /// beyond this (and beyond --trace-events).
    #[arg(long, default_value_t = trace::DEFAULT_MAX_BYTES, value_name = "BYTES")]
    pub(crate) trace_bytes: usize,
    /// Connections the process serves at once (at most half its open-file limit); past it a
    /// new connection gets HTTP 429 and is closed.
    #[arg(long, default_value_t = gate::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    pub(crate) max_connections: usize,
    /// Connections one client address may hold at once; past it, HTTP 429.
    #[arg(long, default_value_t = gate::DEFAULT_MAX_PER_CLIENT, value_name = "N")]
    pub(crate) max_connections_per_client: usize,
    /// Bytes of request bodies the process holds at once (received, not yet answered); past
    /// it further bodies wait, and get HTTP 408 if no room is made within --request-timeout.
    #[arg(long, default_value_t = gate::DEFAULT_BUFFERED_BYTES, value_name = "BYTES")]
    pub(crate) max_buffered_bytes: usize,
    /// Bytes of answers not yet read by their callers, per process; past it a large answer
    /// (over 16 KiB) is replaced by a short fault. A caller that reads nothing of its answer
    /// for --request-timeout is disconnected.
    #[arg(long, default_value_t = gate::DEFAULT_ANSWER_BYTES, value_name = "BYTES")]
    pub(crate) max_answer_bytes: usize,
    /// What to log on stderr.
    #[command(flatten)]
    pub log: LogArgs,
    /// Print the completion script for SHELL (bash, elvish, fish, powershell, zsh) and exit,
    /// e.g. `server --completions bash > ~/.local/share/bash-completion/completions/server`.
    #[arg(long, value_enum, value_name = "SHELL", exclusive = true)]
    pub completions: Option<Shell>,
    /// Print this manual as a man page (roff) and exit, e.g. `server --man | man -l -`.
    #[arg(long, exclusive = true)]
    pub man: bool,
}

impl ServerArgs {
    /// What to host and how.
    pub fn config(&self) -> Result<Config, CliError> {
        let topology = self.cluster.resolve_hosted(&self.roles)?;
        Ok(Config {
            cluster: topology.cluster,
            nodes: topology.nodes,
            faulty: topology.faulty,
            behaviours: topology.behaviours,
            seed: self.seed,
            quiet: self.quiet,
            print: true,
            limits: Limits {
                rpc_timeout: self.cluster.rpc_timeout(),
                max_body: self.max_body,
                max_senders: self.max_senders,
                request_timeout: self.request_timeout,
                trace_events: self.trace_events,
                max_run_messages: self.max_run_messages,
                max_runs: usize::try_from(self.max_runs).unwrap_or(usize::MAX),
                max_value: self.max_value,
                max_stored_bytes: self.max_stored_bytes,
                trace_bytes: self.trace_bytes,
                max_connections: self.max_connections,
                max_connections_per_client: self.max_connections_per_client,
                buffered_bytes: self.max_buffered_bytes,
                answer_bytes: self.max_answer_bytes,
            },
        })
    }
}

/// The first address a hosted node would bind that is not loopback (worth a warning: this
/// XML-RPC has no authentication), or the node that cannot be placed at all.
pub fn exposed(config: &Config) -> Result<Option<String>, CliError> {
    for name in &config.nodes {
        let (bind, _) = config
            .cluster
            .listen_addr(name)
            .map_err(|error| CliError::Cluster {
                flag: "--nodes",
                error,
            })?;
        if !is_loopback(&bind) {
            return Ok(Some(bind));
        }
    }
    Ok(None)
}

/// Whether `host` (as `--host` or a URL gives it) names this machine's loopback only:
/// `localhost`, 127.0.0.0/8, `::1`, written bare or in brackets (`[::1]`, as in a URL), and
/// the IPv4-mapped `::ffff:127.0.0.1`. The bracketed and mapped forms were taken for the
/// network, and warned about.
pub(crate) fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_loopback_however_written() {
        for host in [
            "localhost",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "::ffff:127.0.0.1",
            "[::ffff:127.0.0.1]",
            "0:0:0:0:0:0:0:1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "0.0.0.0",
            "::",
            "[::]",
            "10.0.0.1",
            "example.org",
            "[::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn defaults_are_the_original_server() {
        let config = ServerArgs::parse_from(["server"]).config().unwrap();
        assert_eq!(config.nodes, ["P", "Q", "R", "S"]);
        assert_eq!(config.faulty, ["P"]);
        assert_eq!(config.limits.rpc_timeout, Duration::from_secs(10));
        assert_eq!(config.limits.request_timeout, Duration::from_secs(10));
        assert_eq!(exposed(&config).unwrap(), None);
    }

    #[test]
    fn a_public_host_is_exposed_and_a_bad_name_is_an_error() {
        let a = ServerArgs::parse_from(["server", "--host", "0.0.0.0", "--nodes", "Q"]);
        assert_eq!(
            exposed(&a.config().unwrap()).unwrap(),
            Some("0.0.0.0".into())
        );
        let a = ServerArgs::parse_from(["server", "--nodes", "QQ"]);
        let e = a.config().unwrap_err().to_string();
        assert!(
            e.starts_with("--nodes: QQ is not a node of this cluster"),
            "{e}"
        );
        assert!(ServerArgs::try_parse_from(["server", "--rpc-timeout", "0"]).is_err());
    }
}
