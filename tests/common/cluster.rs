//! Clusters and clients as tests start them: one builder for Rust, Python and mixed clusters
//! on a free port block (each server ready when its nodes' ports accept), and one runner for
//! the Rust `client` and Python's `client.py`.

use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;

use super::{Pipe, Proc, client_bin, port_base, port_of, python_client_script, run};

/// Which implementation runs a process: ours, or the Python stand-in for the original.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Python,
    Rust,
}

/// One server process of a cluster to be started.
struct ServerSpec {
    side: Side,
    /// `--nodes` (comma-separated names), or every node of the cluster.
    nodes: Option<String>,
    args: Vec<String>,
}

/// A cluster to start: its port base, its names (P..S, or N0.. with [`ClusterBuilder::size`])
/// and its server processes. [`ClusterBuilder::start`] starts them in order.
#[must_use]
pub struct ClusterBuilder {
    base: u16,
    size: Option<usize>,
    shared: Vec<String>,
    servers: Vec<ServerSpec>,
    stdout: Pipe,
    stderr: Pipe,
}

impl ClusterBuilder {
    /// `--cluster-size n` for every server (and client): nodes N0..N{n-1} on base + i.
    pub fn size(mut self, n: usize) -> Self {
        self.size = Some(n);
        self
    }

    /// Flags every server of the cluster gets (e.g. `--seed`).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.shared.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// A server process hosting every node, with its own flags.
    pub fn server(mut self, side: Side, args: &[&str]) -> Self {
        self.servers.push(ServerSpec {
            side,
            nodes: None,
            args: args.iter().map(|a| a.to_string()).collect(),
        });
        self
    }

    /// A server process hosting `nodes` (`--nodes`, comma-separated), with its own flags.
    pub fn hosting(mut self, side: Side, nodes: &str, args: &[&str]) -> Self {
        self.servers.push(ServerSpec {
            side,
            nodes: Some(nodes.to_string()),
            args: args.iter().map(|a| a.to_string()).collect(),
        });
        self
    }

    /// What becomes of every server's stdout and stderr (default: both read).
    pub fn pipes(mut self, stdout: Pipe, stderr: Pipe) -> Self {
        self.stdout = stdout;
        self.stderr = stderr;
        self
    }

    /// Every node's name, in order.
    fn all_names(&self) -> Vec<String> {
        match self.size {
            Some(n) => (0..n).map(|i| format!("N{i}")).collect(),
            None => "PQRS".chars().map(String::from).collect(),
        }
    }

    /// Start every server in order, each ready (its ports accept, deadline 15 s) before the
    /// next one starts.
    pub fn start(self) -> Cluster {
        let mut procs = Vec::new();
        for spec in &self.servers {
            let mut args = vec!["--port-base".to_string(), self.base.to_string()];
            if let Some(n) = self.size {
                args.extend(["--cluster-size".to_string(), n.to_string()]);
            }
            let hosted = match &spec.nodes {
                Some(nodes) => {
                    args.extend(["--nodes".to_string(), nodes.clone()]);
                    nodes.split(',').map(str::to_string).collect()
                }
                None => self.all_names(),
            };
            args.extend(self.shared.iter().cloned());
            args.extend(spec.args.iter().cloned());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let ports: Vec<u16> = hosted.iter().map(|n| node_port(self.base, n)).collect();
            procs.push(Proc::server(
                spec.side,
                &args,
                &ports,
                self.stdout,
                self.stderr,
            ));
        }
        Cluster {
            base: self.base,
            size: self.size,
            procs,
        }
    }
}

/// Port of node `name`: N<i> sits on base + i, a letter on the original rule.
pub fn node_port(base: u16, name: &str) -> u16 {
    match name.strip_prefix('N').and_then(|i| i.parse::<u16>().ok()) {
        Some(i) => base + i,
        None => {
            let mut letters = name.chars();
            match (letters.next(), letters.next()) {
                (Some(c), None) => port_of(base, c),
                _ => panic!("no port rule for node {name:?}"),
            }
        }
    }
}

/// Running server processes on one port block; dropping it kills them.
pub struct Cluster {
    /// The port of P (or of N0).
    pub base: u16,
    size: Option<usize>,
    procs: Vec<Proc>,
}

impl Cluster {
    /// A cluster to build on a free port block.
    pub fn builder() -> ClusterBuilder {
        Cluster::at(port_base())
    }

    /// A cluster to build on `base` (shared with another cluster or a fake node).
    pub fn at(base: u16) -> ClusterBuilder {
        ClusterBuilder {
            base,
            size: None,
            shared: Vec::new(),
            servers: Vec::new(),
            stdout: Pipe::Read,
            stderr: Pipe::Read,
        }
    }

    /// One Rust `server --quiet` hosting P, Q, R, S, with extra flags.
    pub fn rust(extra: &[&str]) -> Cluster {
        Cluster::builder()
            .server(Side::Rust, &[&["--quiet"], extra].concat())
            .start()
    }

    /// One Rust `server --quiet` hosting only `nodes` of P..S, with extra flags.
    pub fn rust_nodes(nodes: &str, extra: &[&str]) -> Cluster {
        Cluster::builder()
            .hosting(Side::Rust, nodes, &[&["--quiet"], extra].concat())
            .start()
    }

    /// One Rust `server --quiet --cluster-size n` hosting N0..N{n-1}, with extra flags.
    pub fn rust_generated(n: usize, extra: &[&str]) -> Cluster {
        Cluster::builder()
            .size(n)
            .server(Side::Rust, &[&["--quiet"], extra].concat())
            .start()
    }

    /// Port of node `name` (P..S, or N0..).
    pub fn port(&self, name: &str) -> u16 {
        node_port(self.base, name)
    }

    /// The `i`-th server process, in the order they were added.
    pub fn process(&self, i: usize) -> &Proc {
        &self.procs[i]
    }

    /// The one server process, to stop or wait for (panics if there are more).
    pub fn into_process(mut self) -> Proc {
        assert_eq!(self.procs.len(), 1, "a cluster of several processes");
        self.procs.remove(0)
    }

    /// The server processes, to stop or wait for one by one.
    pub fn into_processes(self) -> Vec<Proc> {
        self.procs
    }

    /// The Rust client pointed at this cluster (`--port-base`, and `--cluster-size` if the
    /// names are generated).
    pub fn client(&self) -> Client {
        let c = Client::rust().at(self.base);
        match self.size {
            Some(n) => c.size(n),
            None => c,
        }
    }

    /// `client ARGS --json` on this cluster: (exit code, parsed JSON or null, stderr). An
    /// agreement run without its own `--round-timeout-ms` gets [`GENEROUS_ROUND_MS`]: a loyal
    /// run never waits for the timeout (a round ends when every node has answered), so a long
    /// one costs nothing on an idle machine and keeps a loaded one from making the run void.
    pub fn client_json(&self, args: &[&str]) -> (i32, Json, String) {
        let agreement = args.first().is_some_and(|a| ["om", "sm"].contains(a));
        let timed = args.contains(&"--round-timeout-ms");
        let mut c = self.client().args(args);
        if agreement && !timed {
            c = c.args(&["--round-timeout-ms", GENEROUS_ROUND_MS]);
        }
        if agreement {
            // Only a hung run is ended: a large one on a loaded machine takes minutes.
            c = c.timeout(Duration::from_secs(900));
        }
        c.json()
    }
}

/// The round timeout of the tests' agreement runs when they set none (the longest a node
/// takes): only a hung test waits for it.
pub const GENEROUS_ROUND_MS: &str = "600000";

/// A client run to make: the Rust `client` or Python's `client.py`, its arguments, its
/// deadline (120 s unless set).
#[must_use]
pub struct Client {
    side: Side,
    args: Vec<String>,
    limit: Duration,
}

impl Client {
    /// The Rust `client`, no arguments yet.
    pub fn rust() -> Client {
        Client {
            side: Side::Rust,
            args: Vec::new(),
            limit: Duration::from_secs(120),
        }
    }

    /// Python's `client.py`, no arguments yet.
    pub fn python() -> Client {
        Client {
            side: Side::Python,
            ..Client::rust()
        }
    }

    /// The client of `side`.
    pub fn of(side: Side) -> Client {
        match side {
            Side::Rust => Client::rust(),
            Side::Python => Client::python(),
        }
    }

    /// `--port-base base`.
    pub fn at(self, base: u16) -> Self {
        self.args(&["--port-base", &base.to_string()])
    }

    /// `--cluster-size n`.
    pub fn size(self, n: usize) -> Self {
        self.args(&["--cluster-size", &n.to_string()])
    }

    /// More arguments, after those given so far.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// The deadline of the run (it panics past it).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// Run to completion: (exit code, stdout, stderr).
    pub fn run(self) -> (i32, String, String) {
        let mut cmd = match self.side {
            Side::Rust => Command::new(client_bin()),
            Side::Python => {
                let mut cmd = Command::new("python3");
                cmd.arg(python_client_script());
                cmd
            }
        };
        cmd.args(&self.args);
        run(cmd, self.limit)
    }

    /// Run with `--json` last: (exit code, parsed JSON or null, stderr).
    pub fn json(self) -> (i32, Json, String) {
        let (code, out, err) = self.args(&["--json"]).run();
        let json = serde_json::from_str(&out).unwrap_or(Json::Null);
        (code, json, err)
    }
}
