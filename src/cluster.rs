//! Who is where: node names, the original port rule, and peer URLs.
//!
//! The original finds a peer from its name alone: `port = 8000 + ord(name) - ord('P')` on
//! `localhost`. We keep that rule (with the base and host configurable) so Rust and Python
//! nodes find each other, and let `--peer NAME=URL` place a node anywhere else. Resolution
//! reproduces Python's errors for names the rule cannot handle, because those errors are what
//! a caller of the original sees.
//!
//! Every node's URL is parsed once, when the cluster is built (from the port rule, a `--peer`,
//! a cluster file): a [`NodeUrl`], which every outgoing call to the node uses as it is.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use dxr::Value;

use crate::protocol::fault::PyFault;
use crate::protocol::python_type_name;
use crate::protocol::{self, fault};

/// A node's URL (`http://HOST:PORT/...`), parsed once when the cluster is built: what every
/// call to the node is made with ([`NodeUrl::uri`]), and what messages show, as it was given
/// ([`NodeUrl::as_str`]). Cheap to clone; equal and hashed as its text.
#[derive(Clone)]
pub struct NodeUrl(Arc<ParsedUrl>);

struct ParsedUrl {
    /// As given (a `--peer`, a cluster file) or made by the port rule.
    text: String,
    /// Parsed (and normalized: lower-case host, a path of at least `/`).
    url: url::Url,
    /// The same, as the HTTP client takes it.
    uri: hyper::Uri,
    /// `HOST:PORT` as written in the text.
    authority: std::ops::Range<usize>,
    /// HOST as written in the text (brackets of an IPv6 address included).
    host: std::ops::Range<usize>,
    port: u16,
}

/// A URL that is not `http://HOST:PORT[/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("URL {0:?} must look like http://HOST:PORT/")]
pub struct BadUrl(pub(crate) String);

impl NodeUrl {
    /// `text` if it is `http://HOST:PORT[/PATH]`, with an explicit port (0 included: the
    /// cluster refuses it where a node must be found there).
    pub(crate) fn parse(text: &str) -> Result<NodeUrl, BadUrl> {
        let bad = || BadUrl(text.to_string());
        let rest = text.strip_prefix("http://").ok_or_else(bad)?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let url = url::Url::parse(text).map_err(|_| bad())?;
        // What the HTTP client calls is where the text says: the same port, some host.
        if host.is_empty() || url.host().is_none() || url.port_or_known_default() != Some(port) {
            return Err(bad());
        }
        let uri: hyper::Uri = url.as_str().parse().map_err(|_| bad())?;
        let start = "http://".len();
        Ok(NodeUrl(Arc::new(ParsedUrl {
            text: text.to_string(),
            url,
            uri,
            authority: start..start + authority.len(),
            host: start..start + host.len(),
            port,
        })))
    }

    /// The URL as it was given.
    pub fn as_str(&self) -> &str {
        &self.0.text
    }

    /// The URL parsed and normalized (what errors of calls to it name).
    pub(crate) fn url(&self) -> &url::Url {
        &self.0.url
    }

    /// The URL as the HTTP client calls it (the normalized [`NodeUrl::url`]).
    pub fn uri(&self) -> &hyper::Uri {
        &self.0.uri
    }

    /// `HOST:PORT`, as written.
    pub fn authority(&self) -> &str {
        &self.0.text[self.0.authority.clone()]
    }

    /// The host, as written (an IPv6 address in its brackets).
    pub(crate) fn host(&self) -> &str {
        &self.0.text[self.0.host.clone()]
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.0.port
    }
}

impl std::str::FromStr for NodeUrl {
    type Err = BadUrl;
    fn from_str(text: &str) -> Result<Self, BadUrl> {
        NodeUrl::parse(text)
    }
}

impl std::fmt::Display for NodeUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for NodeUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for NodeUrl {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for NodeUrl {}

impl std::hash::Hash for NodeUrl {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// Where every node of a cluster can be reached.
#[derive(Debug, Clone)]
pub struct Cluster {
    host: String,
    port_base: u16,
    /// Nodes placed by a URL (`--peer`, a cluster file, `--cluster-size`, an ephemeral port).
    peers: HashMap<String, NodeUrl>,
    /// The other members' URLs, by the port rule (a member whose rule gives no port has none).
    ruled: HashMap<String, NodeUrl>,
    /// Every node of the cluster in order: P, Q, R, S (or the generated names), then any
    /// other `--peer`.
    members: Vec<String>,
    /// Address hosted nodes bind to when it is not their URL's host (`server --host`).
    bind_host: Option<String>,
}

/// A `NAME=URL` pair that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The host the port rule places nodes on cannot be written in a URL.
    #[error(
        "host {0:?} cannot be written in a URL (http://HOST:PORT/): give a host name or an IP address"
    )]
    BadHost(String),
    /// The argument has no `=`, or an empty name or URL.
    #[error("expected NAME=URL (e.g. Q=http://10.0.0.2:8001/), got {0:?}")]
    BadPeer(String),
    /// The URL is not `http://HOST:PORT[/PATH]`.
    #[error("peer {name}: URL {url:?} must look like http://HOST:PORT/")]
    BadUrl {
        /// The node's name.
        name: String,
        /// The URL given.
        url: String,
    },
    /// The port rule does not give this node a valid port and no `--peer` places it.
    #[error(
        "node {0:?} has no port: the port rule needs a one-character name (or give --peer {0}=URL)"
    )]
    NoPort(String),
    /// The port rule (or `--cluster-size`'s consecutive ports) puts this node outside
    /// 0..65535.
    #[error("node {name} would listen on port {port}, outside 0..65535")]
    PortOutOfRange {
        /// The node's name.
        name: String,
        /// The port the rule gives it.
        port: i64,
    },
    /// A name no flag could name, or no line could show as it is ([`name_problem`]).
    #[error("node name '{}': {why}", crate::protocol::printed::value(.name))]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A URL with port 0: the node would bind a port the system picks, which no peer can find.
    #[error("peer {name}: URL {url:?} has port 0; give the port the node listens on")]
    PortZero {
        /// The node's name.
        name: String,
        /// The URL given.
        url: String,
    },
}

/// Why `name` cannot be a node's name, if it cannot: the same rule for `--peer`, cluster
/// files and so for every name a node can be called by. A name must be one `--nodes` and
/// `--peer` can give (not empty, no `,` or `=`, no spaces around it, which `--nodes` trims)
/// and one a console line shows as it is (no control, bidi or invisible character: `Q\u{200B}`
/// would print as `Q`, and U+202E makes a line read backwards).
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("a node needs a name")
    } else if name.contains(',') {
        Some("',' separates names in --nodes, so no flag could name this node")
    } else if name.contains('=') {
        Some("'=' ends the name in --peer and --behaviour, so no flag could name this node")
    } else if name.trim() != name {
        Some("spaces around a name are trimmed by --nodes, so no flag could name this node")
    } else if name.chars().any(crate::protocol::printed::is_control) {
        Some("control, bidi and invisible characters are not allowed in names")
    } else {
        None
    }
}

impl Default for Cluster {
    /// P, Q, R, S on 127.0.0.1:8000-8003.
    fn default() -> Self {
        Cluster::local(protocol::DEFAULT_PORT_BASE)
    }
}

impl Cluster {
    /// A cluster where every node follows the port rule on `host` (an IPv6 address with or
    /// without its brackets); refused when `host` cannot be written in a URL.
    pub(crate) fn new(host: impl Into<String>, port_base: u16) -> Result<Self, ClusterError> {
        let host = host.into();
        // An IPv6 address is written in brackets in a URL (and is bound as well with them).
        let host = match host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{host}]"),
            Err(_) => host,
        };
        if NodeUrl::parse(&format!("http://{host}:{port_base}/")).is_err() {
            return Err(ClusterError::BadHost(host));
        }
        Ok(Cluster::on(host, port_base))
    }

    /// A cluster where every node follows the port rule on [`protocol::DEFAULT_HOST`].
    pub fn local(port_base: u16) -> Self {
        Cluster::on(protocol::DEFAULT_HOST.to_string(), port_base)
    }

    /// [`Cluster::new`] of a host that can be written in a URL.
    fn on(host: String, port_base: u16) -> Self {
        let mut cluster = Cluster {
            host,
            port_base,
            peers: HashMap::new(),
            ruled: HashMap::new(),
            members: Vec::new(),
            bind_host: None,
        };
        let members = protocol::DEFAULT_NODES.map(str::to_string);
        cluster.add_members(&members);
        cluster
    }

    /// Add the `names` that are not members yet, each with its URL by the port rule unless
    /// it has one already.
    fn add_members(&mut self, names: &[String]) {
        for name in names {
            if self.members.contains(name) {
                continue;
            }
            self.members.push(name.clone());
            if !self.peers.contains_key(name)
                && let Some(url) = self.rule_url(name)
            {
                self.ruled.insert(name.clone(), url);
            }
        }
    }

    /// `name`'s URL by the port rule, if the rule gives it a port.
    fn rule_url(&self, name: &str) -> Option<NodeUrl> {
        let port = u16::try_from(rule_port(self.port_base, name).ok()?).ok()?;
        NodeUrl::parse(&format!("http://{}:{port}/", self.host)).ok()
    }

    /// Place `name` at `url`, overriding the port rule for it.
    pub(crate) fn with_peer(mut self, name: &str, url: &str) -> Result<Self, ClusterError> {
        if let Some(why) = name_problem(name) {
            return Err(ClusterError::BadName {
                name: name.into(),
                why,
            });
        }
        let parsed = match NodeUrl::parse(url) {
            Err(_) => {
                return Err(ClusterError::BadUrl {
                    name: name.into(),
                    url: url.into(),
                });
            }
            Ok(parsed) if parsed.port() == 0 => {
                return Err(ClusterError::PortZero {
                    name: name.into(),
                    url: url.into(),
                });
            }
            Ok(parsed) => parsed,
        };
        self.peers.insert(name.to_string(), parsed);
        self.ruled.remove(name);
        self.add_members(&[name.to_string()]);
        Ok(self)
    }

    /// Add the generated nodes `N0`..`N{size-1}` on consecutive ports from the port base, for
    /// clusters larger than P..S (the port rule gives one-letter names only).
    pub(crate) fn with_cluster_size(mut self, size: usize) -> Result<Self, ClusterError> {
        self.members = generated_names(size);
        self.ruled.clear();
        for i in 0..size {
            let port = u16::try_from(i)
                .ok()
                .and_then(|i| self.port_base.checked_add(i))
                .ok_or_else(|| ClusterError::PortOutOfRange {
                    name: generated_name(i),
                    port: i64::from(self.port_base) + i64::try_from(i).unwrap_or(i64::MAX),
                })?;
            let url = NodeUrl::parse(&format!("http://{}:{port}/", self.host))
                .map_err(|_| ClusterError::BadHost(self.host.clone()))?;
            self.peers.insert(generated_name(i), url);
        }
        Ok(self)
    }

    /// Parse `NAME=URL` and add it (see [`Cluster::with_peer`]).
    pub(crate) fn with_peer_arg(self, arg: &str) -> Result<Self, ClusterError> {
        match arg.split_once('=') {
            Some((name, url)) if !name.is_empty() && !url.is_empty() => self.with_peer(name, url),
            _ => Err(ClusterError::BadPeer(arg.to_string())),
        }
    }

    /// Every node of the cluster, in order.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// The host nodes bind to and peers are called on.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Bind hosted nodes to `host` whatever their URLs say (e.g. `0.0.0.0` behind NAT).
    pub(crate) fn with_bind_host(mut self, host: impl Into<String>) -> Self {
        self.bind_host = Some(host.into());
        self
    }

    /// Put the members in this order (a cluster file's order): these and no others.
    pub(crate) fn with_members(mut self, members: Vec<String>) -> Self {
        let kept: HashSet<&String> = members.iter().collect();
        self.ruled.retain(|name, _| kept.contains(name));
        self.members.clear();
        self.add_members(&members);
        self
    }

    /// Where a hosted node listens: its URL's host and port when it has a URL (a `--peer` or a
    /// cluster file), else the cluster's host and the port rule; `with_bind_host` overrides
    /// the host.
    pub(crate) fn listen_addr(&self, name: &str) -> Result<(String, u16), ClusterError> {
        let port = self.listen_port(name)?;
        let url_host = self.peers.get(name).map(|u| u.host().to_string());
        let host = self
            .bind_host
            .clone()
            .or(url_host)
            .unwrap_or_else(|| self.host.clone());
        Ok((host, port))
    }

    /// The port a node listens on: its `--peer` URL's port, else the port rule.
    pub(crate) fn listen_port(&self, name: &str) -> Result<u16, ClusterError> {
        if let Some(url) = self.peers.get(name) {
            return Ok(url.port());
        }
        match rule_port(self.port_base, name) {
            Ok(p) => u16::try_from(p).map_err(|_| ClusterError::PortOutOfRange {
                name: name.to_string(),
                port: p,
            }),
            Err(_) => Err(ClusterError::NoPort(name.to_string())),
        }
    }

    /// Add `names` to the members that are not yet (a server's hosted nodes, a client's
    /// `--nodes`): they are nodes of the cluster, so [`Cluster::url_of`] finds them.
    pub(crate) fn with_known(mut self, names: &[String]) -> Self {
        self.add_members(names);
        self
    }

    /// Whether `name` is a node of this cluster: a member (P..S, the generated nodes, a
    /// cluster file's), a `--peer`, or added by [`Cluster::with_known`].
    pub(crate) fn knows(&self, name: &str) -> bool {
        self.peers.contains_key(name) || self.members.iter().any(|m| m == name)
    }

    /// The URL of a node by name, or the fault Python raises for that name.
    ///
    /// Only nodes of the cluster are ever called ([`Cluster::knows`]): the port rule is no
    /// way to reach any port of the host. The original computes `8000 + ord(name) - ord('P')`
    /// for any one-character name, and its resolver keeps the low 16 bits of the result, so
    /// one character reached any local port (U+A6F2 from base 22900 is port 22) with a body
    /// the caller chose. Here a name outside the cluster, or whose port is past 65535, gets
    /// the fault the original gives when nobody listens there (`ConnectionRefusedError`),
    /// without any connection being made. Python's `ord()` faults come first, as in the
    /// original.
    pub(crate) fn url_of(&self, name: &str) -> Result<NodeUrl, PyFault> {
        if let Some(url) = self.peers.get(name).or_else(|| self.ruled.get(name)) {
            return Ok(url.clone());
        }
        // Every member the rule gives a port has its URL above: what is left is a fault.
        let port = rule_port(self.port_base, name)?;
        if port < 0 {
            return Err(fault::bad_port());
        }
        Err(fault::connection_refused())
    }

    /// [`Cluster::url_of`] for an XML-RPC argument: non-strings get Python's `ord()` fault.
    pub fn resolve(&self, recipient: &Value) -> Result<NodeUrl, PyFault> {
        match recipient {
            Value::String(name) => self.url_of(name),
            other => Err(fault::ord_type(python_type_name(other))),
        }
    }
}

/// The name of the `i`-th generated node (`--cluster-size`): `N0`, `N1`, ...
pub(crate) fn generated_name(i: usize) -> String {
    format!("N{i}")
}

/// The names `N0`..`N{size-1}` (see [`Cluster::with_cluster_size`]).
pub(crate) fn generated_names(size: usize) -> Vec<String> {
    (0..size).map(generated_name).collect()
}

/// `base + ord(name) - ord('P')`, with Python's `ord()` errors.
fn rule_port(base: u16, name: &str) -> Result<i64, PyFault> {
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(i64::from(base) + i64::from(u32::from(c))
            - i64::from(u32::from(protocol::PORT_RULE_ORIGIN))),
        _ => Err(fault::ord_length(name.chars().count())),
    }
}

/// The nodes a binary works with: the `--nodes` list if given, else all generated nodes with
/// `--cluster-size`, else the original P, Q, R, S.
pub(crate) fn node_names(nodes: Option<&str>, cluster_size: Option<usize>) -> Vec<String> {
    match (nodes, cluster_size) {
        (Some(list), _) => parse_names(list),
        (None, Some(size)) => generated_names(size),
        (None, None) => protocol::DEFAULT_NODES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

/// A cluster file (`--cluster FILE`, TOML): one `[[node]]` table per node, in order.
///
/// ```toml
/// [[node]]
/// name = "P"
/// url = "http://10.0.0.1:8000/"
/// faulty = true            # the original's flag (default false)
/// behaviour = "deny:R,S"   # optional, see `server --help`
/// ```
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterFile {
    /// The nodes, in order.
    #[serde(default, rename = "node")]
    pub(crate) nodes: Vec<NodeEntry>,
}

/// One node of a cluster file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeEntry {
    /// The node's name.
    pub(crate) name: String,
    /// Where it listens: `http://HOST:PORT/`.
    pub(crate) url: String,
    /// Faulty in the original's sense.
    #[serde(default)]
    pub(crate) faulty: bool,
    /// Sending behaviour (`honest`, `flip`, `deny:R,S`, ...), parsed as the file is read.
    #[serde(default)]
    pub(crate) behaviour: Option<crate::behaviour::Behaviour>,
}

/// Why a cluster file cannot be used. Displayed as one line naming the file (when read from
/// one) and the node at fault.
#[derive(Debug, thiserror::Error)]
pub enum ClusterFileError {
    /// The file could not be read.
    #[error("reading {}: {error}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error (shown once, in this message: not a `source`).
        error: std::io::Error,
    },
    /// The file is larger than [`MAX_CLUSTER_FILE`] (a device, or not a cluster file).
    #[error("{}: larger than {} bytes, which no cluster file is; is it the right file?", path.display(), MAX_CLUSTER_FILE)]
    TooLarge {
        /// The file.
        path: std::path::PathBuf,
    },
    /// The file was read but its content is not a usable cluster.
    #[error("{}: {problem}", path.display())]
    In {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong in it.
        problem: ClusterFileProblem,
    },
}

/// What is wrong in a cluster file's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterFileProblem {
    /// Not TOML, or not the cluster file's shape (unknown keys included).
    #[error("{0}")]
    Toml(String),
    /// No `[[node]]` table.
    #[error("no [[node]] in the cluster file")]
    Empty,
    /// A name given to two nodes.
    #[error("node {0} is listed twice")]
    Twice(String),
    /// A URL that is not `http://HOST:PORT/`.
    #[error("node {name}: url {url:?} must look like http://HOST:PORT/")]
    BadUrl {
        /// The node.
        name: String,
        /// The URL given.
        url: String,
    },
    /// A URL with port 0 (the node would bind a port no peer can find).
    #[error("node {name}: url {url:?} has port 0; give the port the node listens on")]
    PortZero {
        /// The node.
        name: String,
        /// The URL given.
        url: String,
    },
    /// A name no flag could name, or no line could show ([`name_problem`]).
    #[error("node name '{}': {why}", crate::protocol::printed::value(.name))]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// The largest cluster file read, in bytes: a cluster of thousands of nodes fits, and
/// `--cluster /dev/zero` is refused after a mebibyte instead of filling memory.
pub(crate) const MAX_CLUSTER_FILE: u64 = 1024 * 1024;

impl ClusterFile {
    /// Read and check a cluster file.
    pub(crate) fn load(path: &std::path::Path) -> Result<Self, ClusterFileError> {
        use std::io::Read;
        let read = |error| ClusterFileError::Read {
            path: path.to_path_buf(),
            error,
        };
        // Read through a `take`: the cap is checked before the bytes are held, not after.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CLUSTER_FILE + 1).read_to_end(&mut bytes))
            .map_err(read)?;
        if bytes.len() as u64 > MAX_CLUSTER_FILE {
            return Err(ClusterFileError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            ))
        })?;
        Self::parse(&text).map_err(|problem| ClusterFileError::In {
            path: path.to_path_buf(),
            problem,
        })
    }

    /// Parse and check the TOML text of a cluster file.
    pub(crate) fn parse(text: &str) -> Result<Self, ClusterFileProblem> {
        let file: ClusterFile =
            toml::from_str(text).map_err(|e| ClusterFileProblem::Toml(e.to_string()))?;
        if file.nodes.is_empty() {
            return Err(ClusterFileProblem::Empty);
        }
        let mut seen = std::collections::HashSet::new();
        for n in &file.nodes {
            if let Some(why) = name_problem(&n.name) {
                return Err(ClusterFileProblem::BadName {
                    name: n.name.clone(),
                    why,
                });
            }
            if !seen.insert(n.name.as_str()) {
                return Err(ClusterFileProblem::Twice(n.name.clone()));
            }
            match NodeUrl::parse(&n.url) {
                Err(_) => {
                    return Err(ClusterFileProblem::BadUrl {
                        name: n.name.clone(),
                        url: n.url.clone(),
                    });
                }
                Ok(url) if url.port() == 0 => {
                    return Err(ClusterFileProblem::PortZero {
                        name: n.name.clone(),
                        url: n.url.clone(),
                    });
                }
                Ok(_) => {}
            }
        }
        Ok(file)
    }

    /// The names, in order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// The faulty nodes.
    pub(crate) fn faulty(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.faulty)
            .map(|n| n.name.clone())
            .collect()
    }

    /// The behaviours given in the file.
    pub(crate) fn behaviours(&self) -> Vec<(String, crate::behaviour::Behaviour)> {
        self.nodes
            .iter()
            .filter_map(|n| Some((n.name.clone(), n.behaviour.clone()?)))
            .collect()
    }

    /// `cluster` with every node of the file placed at its URL, in the file's order.
    pub(crate) fn apply(&self, mut cluster: Cluster) -> Result<Cluster, ClusterError> {
        for n in &self.nodes {
            cluster = cluster.with_peer(&n.name, &n.url)?;
        }
        Ok(cluster.with_members(self.names()))
    }
}

/// Split a comma-separated node list (`P,Q,R`), dropping empty items.
pub(crate) fn parse_names(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_rule_matches_the_original() {
        let c = Cluster::default();
        assert_eq!(c.url_of("Q").unwrap().as_str(), "http://127.0.0.1:8001/");
        let known = c.clone().with_known(&["T".to_string(), "A".to_string()]);
        assert_eq!(
            known.url_of("T").unwrap().as_str(),
            "http://127.0.0.1:8004/"
        );
        assert_eq!(
            known.url_of("A").unwrap().as_str(),
            "http://127.0.0.1:7985/"
        );
        assert_eq!(c.listen_port("S").unwrap(), 8003);
        assert_eq!(
            c.url_of("").unwrap_err(),
            "<class 'TypeError'>:ord() expected a character, but string of length 0 found"
        );
        assert_eq!(
            c.url_of("QQ").unwrap_err(),
            "<class 'TypeError'>:ord() expected a character, but string of length 2 found"
        );
        assert_eq!(
            c.resolve(&Value::Integer(5)).unwrap_err(),
            "<class 'TypeError'>:ord() expected string of length 1, but int found"
        );
    }

    #[test]
    fn only_cluster_nodes_are_called() {
        let refused = fault::connection_refused();
        let c = Cluster::local(22900);
        // Not a node of the cluster: refused without a URL, wherever the rule points.
        assert_eq!(c.url_of("T").unwrap_err(), refused);
        // U+A6F2 is port 22 in the original (modulo 65536); past 65535 is never called.
        assert_eq!(c.url_of("\u{A6F2}").unwrap_err(), refused);
        let wrapped = char::from_u32(u32::from('P') + 65536).unwrap().to_string();
        assert_eq!(c.url_of(&wrapped).unwrap_err(), refused);
        let c = c.with_known(&[wrapped.clone(), "\u{A6F2}".into()]);
        assert_eq!(c.url_of(&wrapped).unwrap_err(), refused);
        assert_eq!(c.url_of("\u{A6F2}").unwrap_err(), refused);
        // Members still resolve; ord() faults still come first.
        assert_eq!(c.url_of("S").unwrap().as_str(), "http://127.0.0.1:22903/");
        assert!(c.url_of("PP").unwrap_err().contains("ord()"));
    }

    #[test]
    fn peers_override_the_rule() {
        let c = Cluster::local(9000)
            .with_peer_arg("N10=http://10.1.2.3:7000/")
            .unwrap();
        assert_eq!(c.url_of("N10").unwrap().as_str(), "http://10.1.2.3:7000/");
        assert_eq!(c.listen_port("N10").unwrap(), 7000);
        assert_eq!(c.listen_port("Q").unwrap(), 9001);
        assert!(c.listen_port("QQ").is_err());
        assert!(Cluster::default().with_peer_arg("Q").is_err());
        assert!(Cluster::default().with_peer_arg("Q=ftp://x").is_err());
        assert!(matches!(
            Cluster::default().with_peer_arg("Q=http://h:0/"),
            Err(ClusterError::PortZero { .. })
        ));
        assert!(matches!(
            Cluster::default().with_peer_arg("Q,R=http://h:1/"),
            Err(ClusterError::BadName { .. })
        ));
    }

    #[test]
    fn cluster_files() {
        let text = "[[node]]\nname = \"P\"\nurl = \"http://10.0.0.1:8000/\"\nfaulty = true\nbehaviour = \"deny:R,S\"\n\n[[node]]\nname = \"Q\"\nurl = \"http://10.0.0.2:9001/\"\n";
        let f = ClusterFile::parse(text).unwrap();
        assert_eq!(f.names(), ["P", "Q"]);
        assert_eq!(f.faulty(), ["P"]);
        assert_eq!(f.behaviours().len(), 1);
        let c = f.apply(Cluster::default()).unwrap();
        assert_eq!(c.url_of("Q").unwrap().as_str(), "http://10.0.0.2:9001/");
        assert_eq!(c.listen_addr("Q").unwrap(), ("10.0.0.2".to_string(), 9001));
        assert_eq!(
            c.clone()
                .with_bind_host("0.0.0.0")
                .listen_addr("Q")
                .unwrap(),
            ("0.0.0.0".to_string(), 9001)
        );
        assert_eq!(c.members(), ["P", "Q"]);
        use ClusterFileProblem as P;
        let problem = |text: &str| ClusterFile::parse(text).unwrap_err();
        assert_eq!(problem(""), P::Empty);
        assert!(matches!(
            problem("[[node]]\nname = \"P\"\nurl = \"nope\"\n"),
            P::BadUrl { name, .. } if name == "P"
        ));
        // A behaviour is parsed as the file is read: the TOML error names its line.
        assert!(matches!(
            problem("[[node]]\nname = \"P\"\nurl = \"http://h:1/\"\nbehaviour = \"evil\"\n"),
            P::Toml(m) if m.contains("evil") && m.contains("line 4")
        ));
        assert!(matches!(
            problem("[[node]]\nname = \"P\"\nurl = \"http://h:1/\"\ncolour = 1\n"),
            P::Toml(_)
        ));
        let twice = "[[node]]\nname = \"P\"\nurl = \"http://h:1/\"\n";
        assert_eq!(problem(&twice.repeat(2)), P::Twice("P".into()));
        let missing = ClusterFile::load(std::path::Path::new("/nonexistent/cluster.toml"));
        assert!(matches!(missing, Err(ClusterFileError::Read { .. })));
        // Names and ports as --nodes and --peer take them.
        let named = |name: &str| format!("[[node]]\nname = \"{name}\"\nurl = \"http://h:1/\"\n");
        for bad in [
            "",
            "P,Q",
            "P=Q",
            " P",
            "Q\u{202e}",
            "Q\u{200b}",
            "\u{feff}Q",
            "Q\u{85}",
        ] {
            assert!(matches!(problem(&named(bad)), P::BadName { .. }), "{bad:?}");
        }
        assert!(matches!(
            problem("[[node]]\nname = \"P\"\nurl = \"http://h:0/\"\n"),
            P::PortZero { .. }
        ));
        // A bad name is shown escaped in the message.
        let shown = problem(&named("Q\u{202e}x")).to_string();
        assert!(shown.contains("Q\\u202ex"), "{shown}");
    }

    #[test]
    fn generated_names_follow_the_base() {
        let c = Cluster::local(9000).with_cluster_size(100).unwrap();
        assert_eq!(c.url_of("N0").unwrap().as_str(), "http://127.0.0.1:9000/");
        assert_eq!(c.url_of("N99").unwrap().as_str(), "http://127.0.0.1:9099/");
        assert_eq!(c.listen_port("N42").unwrap(), 9042);
        assert!(
            Cluster::new("h", 65500)
                .unwrap()
                .with_cluster_size(100)
                .is_err()
        );
    }

    /// URLs are parsed once, as the cluster is built: shown as given, called as parsed.
    #[test]
    fn urls_are_parsed_once_and_shown_as_given() {
        let url = NodeUrl::parse("http://10.0.0.2:9001").unwrap();
        assert_eq!(url.as_str(), "http://10.0.0.2:9001");
        assert_eq!(url.url().as_str(), "http://10.0.0.2:9001/");
        assert_eq!(
            (url.authority(), url.host(), url.port()),
            ("10.0.0.2:9001", "10.0.0.2", 9001)
        );
        let v6 = NodeUrl::parse("http://[::1]:8001/RPC2").unwrap();
        assert_eq!(
            (v6.authority(), v6.host(), v6.port()),
            ("[::1]:8001", "[::1]", 8001)
        );
        assert_eq!(NodeUrl::parse("http://h:0/").unwrap().port(), 0);
        for bad in [
            "nope",
            "ftp://h:1/",
            "http://h/",
            "http://:1/",
            "http://h:65536/",
            "http://h:x/",
            "http://a b:1/",
            "http://::1:8001/",
        ] {
            assert_eq!(NodeUrl::parse(bad), Err(BadUrl(bad.to_string())), "{bad}");
        }
        // The port rule's URLs too: a host that cannot be in a URL is refused at once, an
        // IPv6 address gets its brackets.
        assert_eq!(
            Cluster::new("a b", 8000).unwrap_err(),
            ClusterError::BadHost("a b".into())
        );
        assert!(Cluster::new("h/x", 8000).is_err());
        let v6 = Cluster::new("::1", 8000).unwrap();
        assert_eq!(v6.url_of("Q").unwrap().as_str(), "http://[::1]:8001/");
        assert_eq!(v6.listen_addr("Q").unwrap(), ("[::1]".to_string(), 8001));
        // Members a cluster file leaves out are no longer called by the rule.
        let file = ClusterFile::parse("[[node]]\nname = \"P\"\nurl = \"http://h:1/\"\n").unwrap();
        let c = file.apply(Cluster::default()).unwrap();
        assert_eq!(c.url_of("P").unwrap().as_str(), "http://h:1/");
        assert_eq!(c.url_of("Q").unwrap_err(), fault::connection_refused());
        let known = c.with_known(&["Q".to_string()]);
        assert_eq!(
            known.url_of("Q").unwrap().as_str(),
            "http://127.0.0.1:8001/"
        );
    }
}
