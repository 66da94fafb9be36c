//! The command lines of `server` and `client`, as clap structs the binaries parse, and the
//! one rule that turns "where the nodes are" flags into a topology.
//!
//! Both binaries flatten [`ClusterArgs`]; [`ClusterArgs::resolve`] applies them in one order
//! (the port rule, `--cluster-size`, the cluster file, `--peer`, `--host`) and picks the nodes:
//! `--nodes`, else the cluster file's, else `--cluster-size`'s, else P..S. The nodes picked are
//! nodes of the cluster ([`Cluster::with_known`]): a server's hosted nodes and a client's
//! `--nodes` are called by name, and no name outside the cluster ever is.
//!
//! Each subcommand takes only the flags it honours; a flag that cannot apply is a clap error
//! (exit 2), never silently ignored ([`client::Cli::try_parse_checked`]).

pub mod client;
pub mod manual;
pub mod server;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::behaviour::{self, Behaviour};
use crate::cluster::{Cluster, ClusterError, ClusterFile, node_names, parse_names};
use crate::protocol;

/// Default of `--rpc-timeout`.
pub(crate) const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the nodes are and how long a call to one may take: the flags `server`, `client`,
/// `client om` and `client sm` share.
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterArgs {
    /// Host of the nodes, to call them and (server) to bind them [default: 127.0.0.1]. With
    /// --cluster, a server's nodes bind their URL's host unless --host is given. Anything but
    /// loopback exposes unauthenticated XML-RPC to the network.
    #[arg(long)]
    pub(crate) host: Option<String>,
    /// Port of node P; node NAME listens on PORT_BASE + ord(NAME) - ord('P') [default: 8000].
    #[arg(long)]
    pub(crate) port_base: Option<u16>,
    /// The nodes, comma-separated, in order: those a server hosts, those a client runs
    /// [default: the cluster file's, else all generated nodes with --cluster-size, else
    /// P,Q,R,S].
    #[arg(long)]
    pub(crate) nodes: Option<String>,
    /// A cluster of N generated nodes N0..N{N-1} on consecutive ports from --port-base (for
    /// clusters larger than P..S). Without --nodes, all of them take part.
    #[arg(long, value_name = "N", value_parser = positive)]
    pub(crate) cluster_size: Option<usize>,
    /// A cluster file (TOML): every node's name, URL, faulty flag and behaviour, in order; each
    /// host runs `server --cluster FILE --nodes ITS_NODES`, a client finds every node in it.
    /// Other flags override the file.
    #[arg(long, value_name = "FILE")]
    pub(crate) cluster: Option<PathBuf>,
    /// Where a node lives when the port rule does not apply, as NAME=URL
    /// (e.g. Q=http://10.0.0.2:8001/). Repeatable.
    #[arg(long = "peer", value_name = "NAME=URL")]
    pub(crate) peers: Vec<String>,
    /// Timeout of each call to a node, in seconds [default: 10].
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub(crate) rpc_timeout: Option<Duration>,
}

/// Who is faulty and how a node sends: the server's flags beside [`ClusterArgs`] (a cluster
/// file may say the same; these override it).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct Roles {
    /// Nodes faulty in the original's sense, comma-separated ('' for none) [default: P, or the
    /// cluster file's]. A faulty node ignores what it receives and answers 'faulty'; a faulty P
    /// also refuses to send to R and S.
    #[arg(long)]
    pub(crate) faulty: Option<String>,
    /// How a node sends, as NAME=KIND (repeatable): honest, deny:A,B (refuses to send to A
    /// and B; the original faulty P is deny:R,S), silent, flip (the opposite order), two-faced
    /// (attack to the first half of its receivers, retreat to the rest), random (per message,
    /// from --seed and the run's seed), delay:MS (sends and answers MS late). Applies to the
    /// original send_message and to OM/SM runs alike.
    #[arg(long = "behaviour", value_name = "NAME=KIND", value_parser = behaviour::parse_assignment)]
    pub(crate) behaviours: Vec<(String, Behaviour)>,
}

/// How much the process logs on stderr: `--log-level`, shared by `server` and `client`.
#[derive(Debug, Clone, Default, Args)]
pub struct LogArgs {
    /// What to log on stderr: off, error, warn, info, debug or trace, or per module as
    /// RUST_LOG takes it (e.g. generals=debug,hyper=info) [default: RUST_LOG, else error].
    /// Colour only when stderr is a terminal.
    #[arg(long, value_name = "LEVEL", global = true, value_parser = log_filter)]
    pub(crate) log_level: Option<String>,
}

impl LogArgs {
    /// Send `tracing` events to stderr at `--log-level` (else `RUST_LOG`, else errors only),
    /// without colour codes unless stderr is a terminal (a file or a pipe gets plain text).
    pub fn init(&self) {
        use std::io::IsTerminal;
        use tracing_subscriber::EnvFilter;
        let filter = match &self.log_level {
            Some(level) => EnvFilter::new(level),
            None => EnvFilter::from_default_env(),
        };
        // A second call (tests that run `main`'s work twice) keeps the first subscriber.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init();
    }
}

/// A `--log-level` the filter understands, as a clap value parser.
/// A bare word must be a level: RUST_LOG would read `--log-level verbose` as "everything of
/// a module named verbose", which is never what was meant.
fn log_filter(arg: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let expected = "expected off, error, warn, info, debug, trace, or TARGET=LEVEL,... as RUST_LOG";
    let bare_word =
        |d: &str| !d.contains('=') && !LEVELS.contains(&d.trim().to_lowercase().as_str());
    if arg.split(',').any(bare_word) {
        return Err(format!("{arg:?}: {expected}"));
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(arg)
        .map(|_| arg.to_string())
        .map_err(|e| format!("{arg:?}: {e}; {expected}"))
}

/// What [`ClusterArgs::resolve`] gives: the cluster and the nodes of this process's work.
#[derive(Debug, Clone)]
pub(crate) struct Topology {
    /// Where every node lives; the nodes below are members of it.
    pub(crate) cluster: Cluster,
    /// The nodes a server hosts or a client runs, in order.
    pub(crate) nodes: Vec<String>,
    /// Nodes faulty in the original's sense (a server's business).
    pub(crate) faulty: Vec<String>,
    /// Sending behaviours by node, the cluster file's first (a later one for the same node
    /// wins).
    pub(crate) behaviours: Vec<(String, Behaviour)>,
}

/// A flag whose value cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A node cannot be placed as the flag says.
    #[error("{flag}: {error}")]
    Cluster {
        /// The flag, e.g. `--peer`.
        flag: &'static str,
        /// What is wrong.
        error: ClusterError,
    },
    /// The cluster file cannot be read or is not a cluster file.
    #[error("--cluster: {0}")]
    ClusterFile(crate::cluster::ClusterFileError),
    /// The port rule puts a node taking part outside 0..65535.
    #[error(
        "--port-base {base}: node {name} would listen on port {port}, {}; {} (or place {name} \
         with --peer {name}=URL)",
        if *port < 0 { "below 0" } else { "past 65535" },
        match fix { Some(b) if *port < 0 => format!("raise --port-base to {b} or more"),
                    Some(b) => format!("lower --port-base to {b} or less"),
                    None => "no --port-base places every node".to_string() }
    )]
    PortBase {
        /// `--port-base` (or its default).
        base: u16,
        /// The first node out of range.
        name: String,
        /// The port the rule gives it.
        port: i64,
        /// A `--port-base` that places every node taking part, if there is one.
        fix: Option<u16>,
    },
    /// A flag names no node at all.
    #[error("{flag}: no node named; give at least one (e.g. {flag} P,Q)")]
    NoNodes {
        /// The flag.
        flag: &'static str,
    },
    /// A flag names the same node twice.
    #[error("{flag}: {name} is listed twice; name each node once")]
    Twice {
        /// The flag.
        flag: &'static str,
        /// The node.
        name: String,
    },
    /// A flag names a node the cluster does not have.
    #[error("{flag}: {name} is not a node of this cluster ({members}); {hint}")]
    NotANode {
        /// The flag.
        flag: &'static str,
        /// The name given.
        name: String,
        /// The cluster's nodes, listed.
        members: String,
        /// What to do.
        hint: String,
    },
}

fn flag(flag: &'static str) -> impl FnOnce(ClusterError) -> CliError {
    move |error| CliError::Cluster { flag, error }
}

impl ClusterArgs {
    /// Port of node P.
    pub(crate) fn port_base(&self) -> u16 {
        self.port_base.unwrap_or(protocol::DEFAULT_PORT_BASE)
    }

    /// Timeout of each call to a node.
    pub(crate) fn rpc_timeout(&self) -> Duration {
        self.rpc_timeout.unwrap_or(DEFAULT_RPC_TIMEOUT)
    }

    /// These flags, given after a subcommand, with `before` (the same flags given before it,
    /// as in `client --nodes P,Q,S om`): a flag given on both sides takes the later value;
    /// `--peer`s add up.
    pub(crate) fn or(self, before: ClusterArgs) -> ClusterArgs {
        ClusterArgs {
            host: self.host.or(before.host),
            port_base: self.port_base.or(before.port_base),
            nodes: self.nodes.or(before.nodes),
            cluster_size: self.cluster_size.or(before.cluster_size),
            cluster: self.cluster.or(before.cluster),
            peers: [before.peers, self.peers].concat(),
            rpc_timeout: self.rpc_timeout.or(before.rpc_timeout),
        }
    }

    /// The topology these flags (and a server's `roles`; a client passes none) describe, for
    /// a process that calls the nodes: each node it names must be a node of the cluster.
    pub(crate) fn resolve(&self, roles: &Roles) -> Result<Topology, CliError> {
        self.resolve_as(roles, false)
    }

    /// The topology of a server's flags: as [`ClusterArgs::resolve`], except that a node the
    /// server hosts is a node of its cluster by definition when the port rule places it as it
    /// places P..S, a capital letter (`server --nodes P,Q,R,S,T,U,V`); a name nobody hosts is
    /// still never called.
    pub(crate) fn resolve_hosted(&self, roles: &Roles) -> Result<Topology, CliError> {
        self.resolve_as(roles, true)
    }

    fn resolve_as(&self, roles: &Roles, hosted: bool) -> Result<Topology, CliError> {
        let host = self.host.as_deref().unwrap_or(protocol::DEFAULT_HOST);
        let mut cluster = Cluster::new(host, self.port_base()).map_err(flag("--host"))?;
        if let Some(size) = self.cluster_size {
            cluster = cluster
                .with_cluster_size(size)
                .map_err(|error| match error {
                    // Consecutive ports from the base: the last one is base + size - 1.
                    ClusterError::PortOutOfRange { name, port } => CliError::PortBase {
                        base: self.port_base(),
                        name,
                        port,
                        fix: u16::try_from(size - 1).ok().map(|last| u16::MAX - last),
                    },
                    error => flag("--cluster-size")(error),
                })?;
        }
        let file = match &self.cluster {
            Some(path) => Some(ClusterFile::load(path).map_err(CliError::ClusterFile)?),
            None => None,
        };
        if let Some(f) = &file {
            cluster = f.apply(cluster).map_err(flag("--cluster"))?;
        }
        for p in &self.peers {
            cluster = cluster.with_peer_arg(p).map_err(flag("--peer"))?;
        }
        if let Some(host) = &self.host {
            cluster = cluster.with_bind_host(host.clone());
        }
        // The rule, once: --nodes, else the cluster file's, else --cluster-size's, else P..S.
        let nodes = match (&self.nodes, &file) {
            (None, Some(f)) if self.cluster_size.is_none() => f.names(),
            _ => node_names(self.nodes.as_deref(), self.cluster_size),
        };
        let faulty = match (&roles.faulty, &file) {
            (Some(list), _) => parse_names(list),
            (None, Some(f)) => f.faulty(),
            (None, None) => vec![protocol::ORIGINAL_FAULTY.to_string()],
        };
        let mut behaviours = file
            .as_ref()
            .map(ClusterFile::behaviours)
            .unwrap_or_default();
        behaviours.extend(roles.behaviours.iter().cloned());
        check_nodes(&cluster, &nodes, self.port_base(), hosted)?;
        if let Some(list) = &roles.faulty {
            for name in parse_names(list) {
                one_of(&cluster, "--faulty", &name, false)?;
            }
        }
        for (name, _) in &roles.behaviours {
            one_of(&cluster, "--behaviour", name, false)?;
        }
        Ok(Topology {
            cluster: cluster.with_known(&nodes),
            nodes,
            faulty,
            behaviours,
        })
    }
}

/// The nodes taking part: at least one, each once, each a node of the cluster (or, `hosted`,
/// one the port rule places) with a port.
fn check_nodes(
    cluster: &Cluster,
    nodes: &[String],
    base: u16,
    hosted: bool,
) -> Result<(), CliError> {
    if nodes.is_empty() {
        return Err(CliError::NoNodes { flag: "--nodes" });
    }
    for (i, name) in nodes.iter().enumerate() {
        if nodes[..i].contains(name) {
            return Err(CliError::Twice {
                flag: "--nodes",
                name: name.clone(),
            });
        }
        // A capital letter the port rule places, as P..S are (`p` is more likely a typo of
        // P than a node of its own: it keeps the hint).
        let ruled = name.len() == 1
            && name.bytes().all(|b| b.is_ascii_uppercase())
            && cluster.listen_port(name).is_ok();
        if !(hosted && ruled) {
            one_of(cluster, "--nodes", name, true)?;
        }
    }
    // Ports out of range: the first such node, and the base that would place every node.
    let mut offsets = Vec::new();
    let mut first = None;
    for name in nodes {
        match cluster.listen_port(name) {
            Ok(port) => offsets.push(i64::from(port) - i64::from(base)),
            Err(ClusterError::PortOutOfRange { name, port }) => {
                offsets.push(port - i64::from(base));
                first.get_or_insert((name, port));
            }
            Err(error) => {
                return Err(CliError::Cluster {
                    flag: "--nodes",
                    error,
                });
            }
        }
    }
    let Some((name, port)) = first else {
        return Ok(());
    };
    let (lo, hi) = (
        offsets.iter().copied().min().unwrap_or(0),
        offsets.iter().copied().max().unwrap_or(0),
    );
    let fix = if port < 0 {
        -lo
    } else {
        i64::from(u16::MAX) - hi
    };
    Err(CliError::PortBase {
        base,
        name,
        port,
        fix: u16::try_from(fix).ok().filter(|b| i64::from(*b) + lo >= 0),
    })
}

/// `name` is a node of the cluster, else the error for `flag`, with the likely fix.
fn one_of(
    cluster: &Cluster,
    flag: &'static str,
    name: &str,
    placeable: bool,
) -> Result<(), CliError> {
    if cluster.knows(name) {
        return Ok(());
    }
    let members = cluster.members();
    let listed = if members.len() <= 8 {
        members.join(", ")
    } else {
        format!(
            "{}, ..., {}",
            members[..4].join(", "),
            members[members.len() - 1]
        )
    };
    let upper = name.to_uppercase();
    let hint = if upper != name && cluster.knows(&upper) {
        format!("names are case-sensitive: did you mean {upper}?")
    } else if placeable {
        format!("place it with --peer {name}=URL, or use --cluster-size N for nodes N0..N{{N-1}}")
    } else {
        "name one of its nodes".to_string()
    };
    Err(CliError::NotANode {
        flag,
        name: name.to_string(),
        members: if listed.is_empty() {
            "none".into()
        } else {
            listed
        },
        hint,
    })
}

/// Parse the process's arguments as `P`: help and version as clap prints them, a usage error
/// kept to its point ([`usage_error`]). Every binary parses through this.
pub fn parse_or_exit<P: clap::Parser>() -> P {
    P::try_parse().unwrap_or_else(|e| exit(e))
}

/// End the process for `e` as clap would (help or version on stdout, exit 0), except that a
/// usage error is printed as [`usage_error`] makes it, exit 2.
pub fn exit(e: clap::Error) -> ! {
    if !e.use_stderr() {
        e.exit()
    }
    eprint!("{}", usage_error(&e.render().to_string()));
    std::process::exit(2)
}

/// A usage error as clap renders it, kept to what helps: the error itself, then clap's tips
/// (`a similar argument exists: '--nodes'`) or, when it has none, where to read more. Clap's
/// `Usage:` line goes: it shows the whole command line's shape, which read as the fix for
/// errors it has nothing to do with (`--mermaid - --json` printed a usage with both).
pub fn usage_error(rendered: &str) -> String {
    let mut kept = Vec::new();
    let mut tips = false;
    let mut in_usage = false;
    for line in rendered.lines() {
        let text = line.trim();
        if text.is_empty() {
            in_usage = false;
        } else if text.starts_with("Usage:") || in_usage {
            // The usage and its continuation lines, up to the next blank line.
            in_usage = true;
        } else if text.starts_with("tip:") {
            tips = true;
            kept.push(text.to_string());
        } else if !text.starts_with("For more information") {
            kept.push(line.trim_end().to_string());
        }
    }
    if !tips {
        kept.push("For more information, try '--help'.".into());
    }
    kept.join("\n") + "\n"
}

/// A positive number of seconds (`--rpc-timeout 0.5`), as a clap value parser.
pub(crate) fn seconds(arg: &str) -> Result<Duration, String> {
    match seconds_or_zero(arg)? {
        d if d.is_zero() => Err(format!("must be a positive number of seconds, got {arg}")),
        d => Ok(d),
    }
}

/// A count of at least 1 (`--cluster-size`), as a clap value parser.
pub(crate) fn positive(arg: &str) -> Result<usize, String> {
    match arg.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1 (a cluster of N nodes N0..N{N-1})".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("must be a whole number of nodes, got {arg}")),
    }
}

/// A number of seconds, zero allowed (`loadgen --duration`), as a clap value parser.
pub fn seconds_or_zero(arg: &str) -> Result<Duration, String> {
    arg.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("must be a non-negative number of seconds, got {arg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_keep_the_error_and_the_tips() {
        let rendered = "error: unexpected argument '--nodse' found\n\n  tip: a similar argument \
                        exists: '--nodes'\n\nUsage: client --nodes <NODES>\n       client om\n\n\
                        For more information, try '--help'.\n";
        assert_eq!(
            usage_error(rendered),
            "error: unexpected argument '--nodse' found\ntip: a similar argument exists: \
             '--nodes'\n"
        );
        let rendered = "error: '--mermaid -' and '--json' both write to stdout\n\nUsage: client \
                        om --json --mermaid <FILE>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_error(rendered),
            "error: '--mermaid -' and '--json' both write to stdout\nFor more information, try \
             '--help'.\n"
        );
    }

    fn args(f: impl FnOnce(&mut ClusterArgs)) -> ClusterArgs {
        let mut a = ClusterArgs::default();
        f(&mut a);
        a
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nodes_come_from_nodes_else_the_file_else_the_size_else_p_to_s() {
        let file = std::env::temp_dir().join(format!("generals-cli-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            "[[node]]\nname = \"A\"\nurl = \"http://127.0.0.1:9000/\"\nfaulty = true\n\
             [[node]]\nname = \"B\"\nurl = \"http://127.0.0.1:9001/\"\nbehaviour = \"flip\"\n",
        )
        .unwrap();
        let none = Roles::default();
        // A server's hosted nodes are its cluster's: the port rule places T..V.
        let seven = args(|a| a.nodes = Some("P,Q,R,S,T,U,V".into()));
        let t = seven.resolve_hosted(&none).unwrap();
        assert_eq!(t.nodes.len(), 7);
        assert!(t.cluster.knows("V"));
        assert!(
            seven.resolve(&none).is_err(),
            "a client calls only known nodes"
        );
        assert!(
            args(|a| a.nodes = Some("TT".into()))
                .resolve_hosted(&none)
                .is_err()
        );
        let t = ClusterArgs::default().resolve(&none).unwrap();
        assert_eq!(t.nodes, names(&["P", "Q", "R", "S"]));
        assert_eq!(t.faulty, names(&["P"]));
        let t = args(|a| a.cluster_size = Some(3)).resolve(&none).unwrap();
        assert_eq!(t.nodes, names(&["N0", "N1", "N2"]));
        let t = args(|a| a.cluster = Some(file.clone()))
            .resolve(&none)
            .unwrap();
        assert_eq!(t.nodes, names(&["A", "B"]));
        assert_eq!(t.faulty, names(&["A"]));
        assert_eq!(t.behaviours.len(), 1);
        assert_eq!(
            t.cluster.url_of("B").unwrap().as_str(),
            "http://127.0.0.1:9001/"
        );
        let t = args(|a| {
            a.cluster = Some(file.clone());
            a.nodes = Some("B,T".into());
            a.peers = vec!["T=http://127.0.0.1:9002/".into()];
        })
        .resolve(&Roles {
            faulty: Some(String::new()),
            behaviours: vec![("B".into(), Behaviour::Silent)],
        })
        .unwrap();
        assert_eq!(t.nodes, names(&["B", "T"]));
        assert!(t.faulty.is_empty());
        // The file's behaviour first, the flag's after it (it wins).
        assert_eq!(t.behaviours.last().unwrap().1, Behaviour::Silent);
        // A named node is a node of the cluster, so it is called; no other name is.
        assert!(t.cluster.knows("T"));
        assert!(!t.cluster.knows("U"));
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let none = Roles::default();
        let e = args(|a| a.peers = vec!["nonsense".into()])
            .resolve(&none)
            .unwrap_err();
        assert!(
            e.to_string().starts_with("--peer: expected NAME=URL"),
            "{e}"
        );
        let e = args(|a| a.cluster = Some("/nonexistent/c.toml".into()))
            .resolve(&none)
            .unwrap_err();
        assert!(e.to_string().starts_with("--cluster: reading"), "{e}");
    }

    /// One row per input refused before anything runs: the flags, what the message starts with.
    #[test]
    fn names_and_ports_are_checked_against_the_cluster() {
        let faulty = |list: &str| Roles {
            faulty: Some(list.into()),
            ..Roles::default()
        };
        let flip = |name: &str| Roles {
            behaviours: vec![(name.into(), Behaviour::Flip)],
            ..Roles::default()
        };
        let none = Roles::default();
        for (a, roles, expected) in [
            (
                args(|a| a.nodes = Some("P,Q,P".into())),
                &none,
                "--nodes: P is listed twice",
            ),
            (
                args(|a| a.nodes = Some(",".into())),
                &none,
                "--nodes: no node named",
            ),
            (
                args(|a| a.nodes = Some("p,q".into())),
                &none,
                "--nodes: p is not a node of this cluster (P, Q, R, S); names are case-sensitive: did you mean P?",
            ),
            (
                args(|a| a.nodes = Some("T".into())),
                &none,
                "--nodes: T is not a node of this cluster (P, Q, R, S); place it with --peer T=URL",
            ),
            (
                ClusterArgs::default(),
                &faulty("P,X"),
                "--faulty: X is not a node",
            ),
            (
                ClusterArgs::default(),
                &flip("X"),
                "--behaviour: X is not a node",
            ),
            (
                args(|a| a.cluster_size = Some(3)),
                &faulty("P"),
                "--faulty: P is not a node of this cluster (N0, N1, N2)",
            ),
            (
                args(|a| a.port_base = Some(65534)),
                &none,
                "--port-base 65534: node R would listen on port 65536, past 65535; lower \
                 --port-base to 65532 or less",
            ),
            (
                args(|a| {
                    a.port_base = Some(65533);
                    a.cluster_size = Some(5);
                }),
                &none,
                "--port-base 65533: node N3 would listen on port 65536, past 65535; lower \
                 --port-base to 65531 or less",
            ),
        ] {
            let e = a.resolve(roles).unwrap_err().to_string();
            assert!(e.starts_with(expected), "{e}");
        }
        // Nodes placed by --peer, the default faulty P of a generated cluster: accepted.
        let t = args(|a| {
            a.nodes = Some("P,T".into());
            a.peers = vec!["T=http://127.0.0.1:9000/".into()];
        });
        assert!(t.resolve(&none).is_ok());
        assert!(args(|a| a.cluster_size = Some(3)).resolve(&none).is_ok());
        assert!(args(|a| a.port_base = Some(65532)).resolve(&none).is_ok());
    }

    #[test]
    fn flags_after_a_subcommand_win_and_peers_add_up() {
        let before = args(|a| {
            a.port_base = Some(9000);
            a.nodes = Some("P,Q".into());
            a.peers = vec!["T=http://h:1/".into()];
        });
        let after = args(|a| {
            a.nodes = Some("P,Q,R".into());
            a.peers = vec!["U=http://h:2/".into()];
        });
        let both = after.or(before);
        assert_eq!(both.port_base(), 9000);
        assert_eq!(both.nodes.as_deref(), Some("P,Q,R"));
        assert_eq!(both.peers.len(), 2);
        assert_eq!(both.rpc_timeout(), DEFAULT_RPC_TIMEOUT);
    }

    #[test]
    fn log_levels_are_levels_or_rust_log_directives() {
        for good in [
            "debug",
            "INFO",
            "off",
            "generals=debug,hyper=info",
            "warn,generals=trace",
        ] {
            assert_eq!(log_filter(good).as_deref(), Ok(good), "{good}");
        }
        for bad in ["verbose", "", "debug,loud", "generals=loud"] {
            assert!(log_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seconds_are_positive_numbers() {
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(seconds("10"), Ok(Duration::from_secs(10)));
        for bad in ["0", "-1", "nan", "inf", "ten", ""] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(seconds_or_zero("0"), Ok(Duration::ZERO));
        assert_eq!(positive("3"), Ok(3));
        assert!(positive("0").unwrap_err().contains("at least 1"));
    }
}
