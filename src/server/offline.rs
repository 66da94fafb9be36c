//! The in-process test node: a node assembled as the server assembles every node
//! ([`hosted::assemble`]), answering request bodies through [`dispatch::respond`] without a
//! socket, for the fuzz target and the property tests.

use std::sync::MutexGuard;
use std::time::Duration;

use super::hosted::{self, Hosted};
use super::{Config, Limits, ServerError};
use crate::cluster::{Cluster, ClusterError};
use crate::dispatch::respond;
use crate::node::Node;

/// Timeout of an [`Offline`] node's outgoing calls: they are refused at once, this only bounds
/// what cannot happen.
pub const OFFLINE_TIMEOUT: Duration = Duration::from_secs(1);

/// One node with its method table, answering request bodies without a server and without any
/// possible network effect: every node of its cluster (P, Q, R, S and itself) is placed at a
/// local port that is bound but never listens, so a `send_message`, a round's relays or an SM
/// key fetch fail at once with the original's `ConnectionRefusedError`, and any other name is
/// refused without a connection ([`Cluster::url_of`]). Assembled as the server assembles a
/// hosted node, with the default limits and no stdout lines. [`Offline::respond`] blocks on a
/// current-thread runtime of its own.
pub struct Offline {
    hosted: Hosted,
    config: Config,
    runtime: tokio::runtime::Runtime,
    /// The port every member's URL names: held (bound, not listening) while the node lives,
    /// so nothing else can listen there.
    _closed: tokio::net::TcpSocket,
}

/// Why an [`Offline`] node could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// No runtime, or no local port to hold.
    #[error("offline node: {0}")]
    Io(#[from] std::io::Error),
    /// The closed port's URL was refused (cannot happen for `127.0.0.1`).
    #[error("offline node: {0}")]
    Cluster(#[from] ClusterError),
    /// The node could not be assembled (no HTTP client, no randomness for its key).
    #[error("offline node: {0}")]
    Node(#[from] ServerError),
}

impl std::fmt::Debug for Offline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offline")
            .field("general", &self.hosted.general)
            .finish_non_exhaustive()
    }
}

impl Offline {
    /// Node `name` (faulty in the original's sense if `faulty`) of the cluster P, Q, R, S (and
    /// `name`).
    pub fn new(name: &str, faulty: bool) -> Result<Self, OfflineError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let closed = {
            let _in_runtime = runtime.enter();
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(([127, 0, 0, 1], 0).into())?;
            socket
        };
        let url = format!("http://127.0.0.1:{}/", closed.local_addr()?.port());
        let mut cluster = Cluster::default().with_known(&[name.to_string()]);
        for member in cluster.members().to_vec() {
            cluster = cluster.with_peer(&member, &url)?;
        }
        let mut config = Config {
            cluster,
            nodes: vec![name.to_string()],
            faulty: if faulty {
                vec![name.to_string()]
            } else {
                Vec::new()
            },
            quiet: true,
            print: false,
            limits: Limits {
                rpc_timeout: OFFLINE_TIMEOUT,
                ..Limits::default()
            },
            ..Config::default()
        };
        let hosted = {
            let _in_runtime = runtime.enter();
            hosted::assemble(&mut config)?
        };
        let hosted = hosted.into_iter().next().ok_or(ServerError::NoNodes)?;
        Ok(Offline {
            hosted,
            config,
            runtime,
            _closed: closed,
        })
    }

    /// The answer to `body`: [`respond`], as the server runs it.
    pub fn respond(&self, body: &[u8]) -> String {
        self.runtime.block_on(respond(&self.hosted.table, body))
    }

    /// The node's state (stored messages, `finalize_decision`), locked: drop it before the
    /// next [`Offline::respond`].
    pub fn node(&self) -> MutexGuard<'_, Node> {
        self.hosted.general.lock()
    }

    /// Forget every stored message and every agreement run, as a fresh node (for tests and
    /// the fuzz target, which run many independent cases on one node: building one takes a
    /// runtime, a socket, an HTTP client and a key).
    pub fn reset(&self) {
        {
            let mut node = self.hosted.general.lock();
            let name = node.name().to_string();
            *node = hosted::general_of(&self.config, &name);
        }
        self.hosted.engine.forget_runs();
    }

    /// Where its peers are (all at the closed port).
    pub fn cluster(&self) -> &Cluster {
        &self.hosted.general.cluster
    }
}
