//! Outgoing XML-RPC calls: one pooled HTTP client shared by every call a process makes, a
//! timeout on each call, and errors sorted into what the caller needs to tell apart.
//!
//! `reqwest` keeps idle keep-alive connections per host, so node-to-node traffic reuses TCP
//! connections instead of opening one per message as Python's `ServerProxy` does.

use std::time::Duration;

use dxr::{Fault, Value};

use crate::protocol::fault;
use crate::xmlrpc;

/// Default timeout of one outgoing call (`--rpc-timeout`).
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// User-Agent of our outgoing calls.
const USER_AGENT: &str = concat!("generals/", env!("CARGO_PKG_VERSION"), " (xmlrpc)");

/// Why an outgoing call did not return a value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PeerError {
    /// Nobody listens on the peer's port.
    #[error("connection refused")]
    Refused,
    /// The peer did not answer within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The peer answered with an XML-RPC fault.
    #[error("fault {}: {}", .0.code(), .0.string())]
    Fault(Fault),
    /// The peer answered with an HTTP error status.
    #[error("HTTP {status} from {url}")]
    Http {
        /// The status code.
        status: u16,
        /// The URL called.
        url: String,
    },
    /// Anything else: unreachable host, reset connection, a body that is not XML-RPC.
    #[error("{0}")]
    Other(String),
}

impl PeerError {
    /// The fault string a Python node would answer with when this happens to its call.
    pub fn python_fault(&self) -> String {
        match self {
            PeerError::Refused => fault::connection_refused(),
            PeerError::Timeout(_) => fault::timed_out(),
            PeerError::Fault(f) => fault::peer_fault(f.code(), f.string()),
            PeerError::Http { status, url } => {
                let hostport = url.trim_start_matches("http://");
                fault::python(
                    "xmlrpc.client.ProtocolError",
                    &format!("<ProtocolError for {hostport}: {status} >"),
                )
            }
            PeerError::Other(m) => fault::peer_error(m),
        }
    }
}

/// The outgoing side of a process: a connection pool and a timeout.
#[derive(Debug, Clone)]
pub struct Peers {
    http: reqwest::Client,
    timeout: Duration,
}

impl Peers {
    /// A pool whose calls each time out after `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, PeerError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| PeerError::Other(format!("cannot build HTTP client: {e}")))?;
        Ok(Peers { http, timeout })
    }

    /// Call `method(params)` at `url`.
    pub async fn call(
        &self,
        url: &str,
        method: &str,
        params: &[Value],
    ) -> Result<Value, PeerError> {
        let body = xmlrpc::encode_call(method, params);
        let response = self
            .http
            .post(url)
            .header("Content-Type", "text/xml")
            .body(body)
            .send()
            .await
            .map_err(|e| self.classify(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(PeerError::Http {
                status: status.as_u16(),
                url: url.to_string(),
            });
        }
        let text = response.text().await.map_err(|e| self.classify(&e))?;
        match xmlrpc::decode_response(&text) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(f)) => Err(PeerError::Fault(f)),
            Err(m) => Err(PeerError::Other(m)),
        }
    }

    /// Call `method(args)` on the node `name` of `cluster`. The error is one line: the node
    /// has no address, or what went wrong calling it.
    pub async fn call_node(
        &self,
        cluster: &crate::cluster::Cluster,
        name: &str,
        method: &str,
        args: &[Value],
    ) -> Result<Value, String> {
        let url = cluster
            .url_of(name)
            .map_err(|f| format!("no address: {f}"))?;
        self.call(&url, method, args)
            .await
            .map_err(|e| format!("{method}: {e}"))
    }

    fn classify(&self, e: &reqwest::Error) -> PeerError {
        if e.is_timeout() {
            return PeerError::Timeout(self.timeout);
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        let mut chain = Vec::new();
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => return PeerError::Refused,
                    std::io::ErrorKind::TimedOut => return PeerError::Timeout(self.timeout),
                    _ => {}
                }
            }
            chain.push(s.to_string());
            source = s.source();
        }
        chain.dedup();
        PeerError::Other(chain.join(": "))
    }
}
