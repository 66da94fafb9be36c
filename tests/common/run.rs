//! An agreement run driven by hand, call by call, as a test does when it wants to stand
//! between the driver's steps: the run's secrets (the same [`Credentials`] the driver makes)
//! and the arguments of every call, per node, as docs/protocol-extensions.md gives them.

use std::collections::BTreeMap;

use dxr::Value;
use generals::agreement::auth::{self, Credentials, Secret};
use generals::calls::Protocol;

/// One run's parameters and secrets.
pub struct HandRun {
    /// `om` or `sm`.
    pub proto: &'static str,
    pub secrets: Credentials,
    pub commander: String,
    pub nodes: Vec<String>,
    pub m: i32,
    pub round_timeout_ms: i32,
    pub seed: String,
    /// SM: every node's public key (from `node_info`).
    pub public_keys: BTreeMap<String, String>,
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}

fn struct_of(m: BTreeMap<String, String>) -> Value {
    Value::Struct(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

impl HandRun {
    /// A run of `proto` among `nodes` (names, comma-separated), `commander` commanding, with
    /// fresh secrets, seed 1.
    pub fn new(proto: &'static str, commander: &str, nodes: &str, m: i32, round_ms: i32) -> Self {
        let nodes: Vec<String> = nodes.split(',').map(str::to_string).collect();
        HandRun {
            proto,
            secrets: Credentials::new(
                if proto == "sm" {
                    Protocol::Sm
                } else {
                    Protocol::Om
                },
                &nodes,
            )
            .unwrap(),
            commander: commander.to_string(),
            nodes,
            m,
            round_timeout_ms: round_ms,
            seed: "1".into(),
            public_keys: BTreeMap::new(),
        }
    }

    /// The run's id.
    pub fn id(&self) -> &str {
        self.secrets.run.as_str()
    }

    /// Node `node`'s capability.
    pub fn cap(&self, node: &str) -> Value {
        Value::String(self.secrets.capability(node).unwrap().to_base64())
    }

    /// `*_start`'s arguments for `node`.
    pub fn start(&self, node: &str) -> Vec<Value> {
        let mut args = vec![
            Value::String(self.id().to_string()),
            Value::String(self.commander.clone()),
            strings(&self.nodes),
            Value::Integer(self.m),
            Value::Integer(self.round_timeout_ms),
            Value::String(self.seed.clone()),
            self.cap(node),
            struct_of(self.keys_of(node)),
        ];
        if self.proto == "sm" {
            args.push(struct_of(self.public_keys.clone()));
        }
        args
    }

    /// `[run, capability of node] + more`: a driver's call on `node`.
    pub fn driven(&self, node: &str, more: &[Value]) -> Vec<Value> {
        let mut args = vec![Value::String(self.id().to_string()), self.cap(node)];
        args.extend_from_slice(more);
        args
    }

    /// `*_order`'s arguments (on the commander).
    pub fn order(&self, order: &str) -> Vec<Value> {
        self.driven(&self.commander, &[Value::String(order.into())])
    }

    /// `*_round`'s arguments for `node`.
    pub fn round(&self, node: &str, round: i32) -> Vec<Value> {
        self.driven(node, &[Value::Integer(round)])
    }

    /// `*_decide`'s arguments for `node`.
    pub fn decide(&self, node: &str) -> Vec<Value> {
        self.driven(node, &[])
    }

    /// `trace_events`'s arguments for `node`.
    pub fn trace(&self, node: &str, since_us: u64) -> Vec<Value> {
        self.driven(node, &[Value::String(since_us.to_string())])
    }

    /// The keys `node` shares with the others, as its start carries them (base64).
    pub fn keys_of(&self, node: &str) -> BTreeMap<String, String> {
        (self.secrets.keys_of(node).into_iter())
            .map(|(k, v)| (k, v.to_base64()))
            .collect()
    }

    /// The key `from` and `to` share.
    pub fn key(&self, from: &str, to: &str) -> Secret {
        self.secrets.keys_of(from)[to]
    }

    /// `om_message`'s arguments: `value` along `path` (its last name the sender) to `to`,
    /// with the MAC of the pair (the sender's, so the message is genuine).
    pub fn om_message(&self, to: &str, path: &[&str], value: &str) -> Vec<Value> {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        let from = path.last().unwrap();
        let mac = auth::mac(
            &self.key(from, to),
            "om_message",
            self.id(),
            to,
            &path,
            value,
            &[],
        );
        vec![
            Value::String(self.id().to_string()),
            strings(&path),
            Value::String(value.into()),
            Value::String(mac),
        ]
    }
}
