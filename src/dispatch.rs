//! From request body to [`Step`]: decode the XML-RPC call and hand it to the node, turning a
//! body that is not a call into the fault the original would give (code 1). No I/O, so the
//! fuzz target and property tests drive exactly what the server runs.

use crate::cluster::Cluster;
use crate::methods::{decode_fault, python_fault};
use crate::node::{Node, Step};
use crate::xmlrpc;

/// Decode `body` and apply it to `node`. A `send_message` comes back as [`Step::Forward`] with
/// the recipient's URL; the caller performs it.
pub fn dispatch(node: &mut Node, cluster: &Cluster, body: &[u8]) -> Step<String> {
    match xmlrpc::decode_call(body) {
        Ok(call) => apply(node, cluster, &call.name, &call.params),
        Err(e) => Step::Reply {
            result: Err(decode_fault(&e)),
            print: None,
        },
    }
}

/// Apply a decoded call of the original protocol (or `get_messages`) to `node`.
pub fn apply(
    node: &mut Node,
    cluster: &Cluster,
    method: &str,
    params: &[dxr::Value],
) -> Step<String> {
    node.handle(method, params, |v| cluster.resolve(v))
}

/// The complete answer body (a `methodResponse`) for a step that needs no network.
/// `None` for [`Step::Forward`].
pub fn reply_body(step: &Step<String>) -> Option<String> {
    match step {
        Step::Reply { result: Ok(v), .. } => Some(xmlrpc::encode_response(v)),
        Step::Reply { result: Err(f), .. } => Some(xmlrpc::encode_fault(&python_fault(f.clone()))),
        Step::Forward(_) => None,
    }
}
