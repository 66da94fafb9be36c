//! Every XML-RPC method a node serves or calls, as a typed call (the shape of mini-redis's
//! `cmd/`): [`Method`] names each one and is the only place its name is written; [`Call`] is
//! one call with typed arguments, read from a method call's params by [`Call::decode`] with
//! the faults Python gives (arity first, then each parameter in order, docs/protocol.md and
//! docs/protocol-extensions.md), and written back by [`Call::into_params`] for the driver and
//! for node-to-node calls. Whether a call is heavy (its answer grows with the node's data) is a
//! property of its method ([`Method::is_heavy`]).
//!
//! The call layer owns its argument types ([`Start`], [`Driven`], [`Message`]...): the engine,
//! the node, the driver, the trace and the pictures import them; nothing here imports them.
//!
//! Adding a method: a variant of [`Method`] (its name, its parameters' names, heavy or not), a
//! variant of [`Call`] and its arms in `decode` / `into_params`; then its behaviour where it
//! is handled (the node, the engine).

mod params;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use dxr::Value;

use crate::protocol::fault::{self, PyFault};

pub(crate) use self::params::Params;

/// Which algorithm a run uses: the one `Protocol` of the crate (the calls of a run, the
/// engine's run table, the driver, `client explore --protocol om|sm`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Oral messages, OM(m): needs n >= 3m + 1.
    Om,
    /// Signed messages, SM(m): needs n >= m + 2.
    Sm,
}

impl Protocol {
    /// `om` / `sm`: the prefix of its method names and run ids.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Om => "om",
            Protocol::Sm => "sm",
        }
    }

    /// The fewest nodes that tolerate `m` traitors.
    pub(crate) fn min_nodes(self, m: usize) -> usize {
        match self {
            Protocol::Om => 3 * m + 1,
            Protocol::Sm => m + 2,
        }
    }

    /// How a run of this protocol is named for people and for the `random` behaviour:
    /// `om-42`, `sm-7`. Never the run's id on the wire, which is random ([`RunId::random`]).
    pub(crate) fn label(self, seed: u64) -> String {
        format!("{}-{seed}", self.name())
    }
}

/// Every method a node serves or calls. The original three (and our `get_messages`) take
/// any values, as Python does, and fail in their bodies; the agreement methods check their
/// parameters' types first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `send_message(recipient_name, decision)`: the client makes a node send its decision.
    SendMessage,
    /// `receive_message(sender, decision)`: a node delivers a decision to another.
    ReceiveMessage,
    /// `finalize_decision()`: the node's majority decision.
    FinalizeDecision,
    /// `get_messages()` (ours): the node's stored messages as a struct.
    GetMessages,
    /// `node_info()` (ours): name, behaviour, traitor flag, SM public key.
    NodeInfo,
    /// `sm_public_key()` (ours): the node's ed25519 public key, base64.
    SmPublicKey,
    /// `om_start` / `sm_start` (ours): hold a new run ([`Start`]).
    Start(Protocol),
    /// `om_order` / `sm_order(run, capability, order)` (ours): the commander's order.
    Order(Protocol),
    /// `om_round` / `sm_round(run, capability, round)` (ours): open a round, send what it
    /// owes, report.
    Round(Protocol),
    /// `om_message` / `sm_message` (ours): one message node to node ([`Message`]); the answer
    /// is when the receiver stored it (microseconds since the Unix epoch, decimal).
    Message(Protocol),
    /// `om_decide` / `sm_decide(run, capability)` (ours): close every round, decide.
    Decide(Protocol),
    /// `trace_events(run, capability, since_us)` (ours): the node's outgoing calls of a run.
    TraceEvents,
    /// `system.multicall(calls)`: XML-RPC's standard batch (the original does not register
    /// it); the engine sends each round's messages to a peer this way.
    Multicall,
}

/// How a method's answer is built.
impl Method {
    /// Every method, in the order docs/protocol-extensions.md lists them after the original.
    pub const ALL: [Method; 18] = [
        Method::SendMessage,
        Method::ReceiveMessage,
        Method::FinalizeDecision,
        Method::GetMessages,
        Method::NodeInfo,
        Method::Start(Protocol::Om),
        Method::Order(Protocol::Om),
        Method::Round(Protocol::Om),
        Method::Message(Protocol::Om),
        Method::Decide(Protocol::Om),
        Method::SmPublicKey,
        Method::Start(Protocol::Sm),
        Method::Order(Protocol::Sm),
        Method::Round(Protocol::Sm),
        Method::Message(Protocol::Sm),
        Method::Decide(Protocol::Sm),
        Method::TraceEvents,
        Method::Multicall,
    ];

    /// Its name on the wire: the one place it is written.
    pub fn name(self) -> &'static str {
        use Protocol::{Om, Sm};
        match self {
            Method::SendMessage => "send_message",
            Method::ReceiveMessage => "receive_message",
            Method::FinalizeDecision => "finalize_decision",
            Method::GetMessages => "get_messages",
            Method::NodeInfo => "node_info",
            Method::SmPublicKey => "sm_public_key",
            Method::Start(Om) => "om_start",
            Method::Start(Sm) => "sm_start",
            Method::Order(Om) => "om_order",
            Method::Order(Sm) => "sm_order",
            Method::Round(Om) => "om_round",
            Method::Round(Sm) => "sm_round",
            Method::Message(Om) => "om_message",
            Method::Message(Sm) => "sm_message",
            Method::Decide(Om) => "om_decide",
            Method::Decide(Sm) => "sm_decide",
            Method::TraceEvents => "trace_events",
            Method::Multicall => "system.multicall",
        }
    }

    /// The method named `name`, if we serve or call one.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Its parameters' names, in order (what arity faults list).
    pub(crate) fn params(self) -> &'static [&'static str] {
        match self {
            Method::SendMessage => &["recipient_name", "decision"],
            Method::ReceiveMessage => &["sender", "decision"],
            Method::FinalizeDecision | Method::GetMessages => &[],
            Method::NodeInfo | Method::SmPublicKey => &[],
            Method::Start(Protocol::Om) => &START[..8],
            Method::Start(Protocol::Sm) => &START,
            Method::Order(_) => &["run", "capability", "order"],
            Method::Round(_) => &["run", "capability", "round"],
            Method::Message(Protocol::Om) => &["run", "path", "value", "mac"],
            Method::Message(Protocol::Sm) => &["run", "path", "value", "signatures", "mac"],
            Method::Decide(_) => &["run", "capability"],
            Method::TraceEvents => &["run", "capability", "since_us"],
            Method::Multicall => &["call_list"],
        }
    }

    /// One of the original protocol's methods (or `get_messages`): answered by the general
    /// ([`crate::node`]), not by the agreement engine.
    pub fn is_original(self) -> bool {
        matches!(
            self,
            Method::SendMessage
                | Method::ReceiveMessage
                | Method::FinalizeDecision
                | Method::GetMessages
        )
    }

    /// Whether its work grows with the node's data, not with the request (the stored
    /// messages, the trace, an OM lieutenant's tree): a call of it, alone or inside a batch,
    /// takes a heavy turn and room in the answer budget before its answer is built
    /// (`dispatch::Shares`).
    pub(crate) fn is_heavy(self) -> bool {
        matches!(
            self,
            Method::GetMessages | Method::TraceEvents | Method::Decide(Protocol::Om)
        )
    }

    /// For a method that carries a message (`receive_message`, `om_message`, `sm_message`):
    /// the positions of its value and (agreement messages) its relay path among its params.
    pub(crate) fn message_params(self) -> Option<(usize, Option<usize>)> {
        match self {
            Method::ReceiveMessage => Some((1, None)),
            Method::Message(_) => Some((2, Some(1))),
            _ => None,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Method {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Method {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Method::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("no method is named {name:?}")))
    }
}

/// `om_start`'s parameters; `sm_start` adds `public_keys`.
const START: [&str; 9] = [
    "run",
    "commander",
    "nodes",
    "m",
    "round_timeout_ms",
    "seed",
    "capability",
    "keys",
    "public_keys",
];

/// Bytes of a capability or pair key.
pub const SECRET_BYTES: usize = 32;

/// A capability or a pair key: 32 random bytes, base64 on the wire. Shown as `Secret(..)`,
/// so no log or debug print reveals one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Secret(pub [u8; SECRET_BYTES]);

/// A capability or key that is not base64 of [`SECRET_BYTES`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be {SECRET_BYTES} bytes in base64 (44 characters)")]
pub(crate) struct MalformedSecret {
    /// What was read (`capability`, `the key for Q`).
    pub(crate) what: String,
}

impl Secret {
    /// A secret received from a caller: base64 of exactly [`SECRET_BYTES`] bytes.
    pub(crate) fn parse(text: &str, what: &str) -> Result<Secret, MalformedSecret> {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()
            .and_then(|raw| <[u8; SECRET_BYTES]>::try_from(raw).ok())
            .map(Secret)
            .ok_or_else(|| MalformedSecret {
                what: what.to_string(),
            })
    }

    /// As it travels: base64.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Equal, in time that depends on the length only: a caller timing our answers learns
    /// nothing about how much of a capability it guessed.
    pub(crate) fn same(&self, other: &Secret) -> bool {
        std::hint::black_box((self.0.iter().zip(&other.0)).fold(0u8, |acc, (x, y)| acc | (x ^ y)))
            == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A run's id on the wire. A driver of ours makes it random ([`RunId::random`]: `om-` and 32
/// hex digits); a node takes any string a driver gives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(String);

/// Random bytes in a run id made by [`RunId::random`].
pub const RUN_ID_BYTES: usize = 16;

impl RunId {
    /// A fresh id for a run of `protocol`: its name, `-` and [`RUN_ID_BYTES`] random bytes in
    /// lowercase hex, e.g. `om-3f9c...` (35 characters). The seed of a run never enters it.
    pub(crate) fn random(protocol: Protocol) -> Result<RunId, getrandom::Error> {
        let mut raw = [0u8; RUN_ID_BYTES];
        getrandom::fill(&mut raw)?;
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        Ok(RunId(format!("{}-{hex}", protocol.name())))
    }

    /// The id as it travels.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for RunId {
    fn from(s: String) -> Self {
        RunId(s)
    }
}

impl From<&str> for RunId {
    fn from(s: &str) -> Self {
        RunId(s.to_string())
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for RunId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Longest round timeout a start takes, in milliseconds.
pub(crate) const MAX_ROUND_TIMEOUT_MS: u64 = 600_000;
/// Most nodes a run may have.
pub(crate) const MAX_NODES: usize = 64;
/// Largest `m` a run may have.
pub(crate) const MAX_M: usize = 8;
/// Longest value an agreement message or order may carry (orders are `attack` / `retreat`;
/// a traitor's may be anything, but not a node's memory).
pub(crate) const MAX_VALUE: usize = 1024;

/// What `om_start` / `sm_start` carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// OM or SM.
    pub(crate) protocol: Protocol,
    /// The run's id.
    pub(crate) run: RunId,
    /// Who gives the order.
    pub(crate) commander: String,
    /// Every participant, commander included.
    pub(crate) nodes: Vec<String>,
    /// Traitors tolerated.
    pub(crate) m: usize,
    /// How long a round may take.
    pub(crate) round_timeout: Duration,
    /// The driver's seed of the run (before the server's `--seed` is mixed in).
    pub(crate) seed: u64,
    /// What the run's driver must show on every later call.
    pub(crate) capability: Secret,
    /// The key this node shares with each other participant, by name.
    pub(crate) keys: BTreeMap<String, Secret>,
    /// SM: every participant's public key as the driver read it from `node_info` (base64; a
    /// key that is not valid is simply missing, and that node's messages are rejected).
    pub(crate) public_keys: BTreeMap<String, String>,
}

/// A driver's call about a run it started: the run and the capability it was started with.
#[derive(Debug, Clone, PartialEq)]
pub struct Driven {
    /// OM or SM.
    pub(crate) protocol: Protocol,
    /// The run.
    pub(crate) run: RunId,
    /// The capability it was started with.
    pub(crate) capability: Secret,
}

/// One agreement message, node to node: `om_message(run, path, value, mac)` or
/// `sm_message(run, path, value, signatures, mac)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// OM or SM.
    pub(crate) protocol: Protocol,
    /// The run.
    pub(crate) run: RunId,
    /// The relay path, commander first, the sender last.
    pub(crate) path: Vec<String>,
    /// The value.
    pub(crate) value: String,
    /// SM: one signature per name of the path (empty for OM).
    pub(crate) signatures: Vec<String>,
    /// The MAC that proves the sender (base64).
    pub(crate) mac: String,
}

/// Whose calls `trace_events` may read: the original run's (anyone's) or a driven run's.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceAccess {
    /// `original`: no driver; any string is taken as the capability.
    Original,
    /// A run: only its driver, with the capability it was started with.
    Run(Secret),
}

/// What a call is, with its arguments typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `send_message(recipient_name, decision)`: values as given (Python takes any).
    SendMessage {
        /// Who to send to.
        recipient: Value,
        /// What to send.
        decision: Value,
    },
    /// `receive_message(sender, decision)`: values as given.
    ReceiveMessage {
        /// Who sent it.
        sender: Value,
        /// What it says.
        decision: Value,
    },
    /// `finalize_decision()`.
    FinalizeDecision,
    /// `get_messages()`.
    GetMessages,
    /// `node_info()`.
    NodeInfo,
    /// `sm_public_key()`.
    SmPublicKey,
    /// `om_start` / `sm_start`.
    Start(Start),
    /// `om_order` / `sm_order`.
    Order(Driven, String),
    /// `om_round` / `sm_round`: the round as given (0 and negatives are refused by the run).
    Round(Driven, i64),
    /// `om_message` / `sm_message`.
    Message(Message),
    /// `om_decide` / `sm_decide`.
    Decide(Driven),
    /// `trace_events(run, capability, since_us)`.
    TraceEvents {
        /// The run (`original` for the original run's calls).
        run: RunId,
        /// Who may read them.
        access: TraceAccess,
        /// Only calls that started at or after this time (microseconds since the epoch).
        since_us: u64,
    },
}

impl Call {
    /// The call of `method` with `params`, or the fault Python gives for them: arity first,
    /// then each parameter in the order the method lists it. The original methods take any
    /// values (their bodies fail, [`crate::node`]); a batch is taken apart by the request
    /// path (`dispatch`), not here.
    pub fn decode(method: Method, params: &[Value]) -> Result<Call, PyFault> {
        let p = Params::new(method, params);
        Ok(match method {
            Method::SendMessage => {
                let [recipient, decision] = p.original_two()?;
                Call::SendMessage {
                    recipient,
                    decision,
                }
            }
            Method::ReceiveMessage => {
                let [sender, decision] = p.original_two()?;
                Call::ReceiveMessage { sender, decision }
            }
            Method::FinalizeDecision => {
                p.original_none()?;
                Call::FinalizeDecision
            }
            Method::GetMessages => {
                p.original_none()?;
                Call::GetMessages
            }
            Method::NodeInfo => {
                p.arity()?;
                Call::NodeInfo
            }
            Method::SmPublicKey => {
                p.arity()?;
                Call::SmPublicKey
            }
            Method::Start(protocol) => Call::Start(p.start(protocol)?),
            Method::Order(protocol) => {
                let driven = p.driven(protocol)?;
                let order = p.string(2)?;
                if order.len() > MAX_VALUE {
                    return Err(too_long());
                }
                Call::Order(driven, order)
            }
            Method::Round(protocol) => {
                let driven = p.driven(protocol)?;
                Call::Round(driven, p.int(2)?)
            }
            Method::Message(protocol) => {
                p.arity()?;
                let (run, path, value) = (p.string(0)?, p.strings(1)?, p.string(2)?);
                let (signatures, mac) = match protocol {
                    Protocol::Om => (Vec::new(), p.string(3)?),
                    Protocol::Sm => (p.strings(3)?, p.string(4)?),
                };
                if value.len() > MAX_VALUE {
                    return Err(too_long());
                }
                Call::Message(Message {
                    protocol,
                    run: run.into(),
                    path,
                    value,
                    signatures,
                    mac,
                })
            }
            Method::Decide(protocol) => Call::Decide(p.driven(protocol)?),
            Method::TraceEvents => {
                p.arity()?;
                let run = p.string(0)?;
                let access = if run == ORIGINAL_RUN {
                    p.string(1)?;
                    TraceAccess::Original
                } else {
                    TraceAccess::Run(p.capability(1)?)
                };
                let since_us = p.string(2)?.parse::<u64>().map_err(|_| {
                    fault::python("ValueError", "since_us must be a decimal u64 in a string")
                })?;
                Call::TraceEvents {
                    run: run.into(),
                    access,
                    since_us,
                }
            }
            Method::Multicall => return Err(fault::unsupported_method(method.name())),
        })
    }

    /// Its method.
    pub(crate) fn method(&self) -> Method {
        match self {
            Call::SendMessage { .. } => Method::SendMessage,
            Call::ReceiveMessage { .. } => Method::ReceiveMessage,
            Call::FinalizeDecision => Method::FinalizeDecision,
            Call::GetMessages => Method::GetMessages,
            Call::NodeInfo => Method::NodeInfo,
            Call::SmPublicKey => Method::SmPublicKey,
            Call::Start(s) => Method::Start(s.protocol),
            Call::Order(d, _) => Method::Order(d.protocol),
            Call::Round(d, _) => Method::Round(d.protocol),
            Call::Message(m) => Method::Message(m.protocol),
            Call::Decide(d) => Method::Decide(d.protocol),
            Call::TraceEvents { .. } => Method::TraceEvents,
        }
    }

    /// Its params as they travel (what [`Call::decode`] reads back to the same call).
    pub(crate) fn into_params(self) -> Vec<Value> {
        let s = Value::String;
        let strings = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
        let driven = |d: Driven| vec![s(d.run.0), s(d.capability.to_base64())];
        match self {
            Call::SendMessage {
                recipient,
                decision,
            } => vec![recipient, decision],
            Call::ReceiveMessage { sender, decision } => vec![sender, decision],
            Call::FinalizeDecision | Call::GetMessages | Call::NodeInfo | Call::SmPublicKey => {
                Vec::new()
            }
            Call::Start(start) => {
                let map = |m: BTreeMap<String, String>| {
                    Value::Struct(m.into_iter().map(|(k, v)| (k, s(v))).collect())
                };
                let keys = (start.keys.iter())
                    .map(|(k, v)| (k.clone(), v.to_base64()))
                    .collect();
                let ms = u64::try_from(start.round_timeout.as_millis()).unwrap_or(u64::MAX);
                let mut params = vec![
                    s(start.run.0),
                    s(start.commander),
                    strings(start.nodes),
                    Value::Integer(i32::try_from(start.m).unwrap_or(i32::MAX)),
                    Value::Integer(i32::try_from(ms).unwrap_or(i32::MAX)),
                    s(start.seed.to_string()),
                    s(start.capability.to_base64()),
                    map(keys),
                ];
                if start.protocol == Protocol::Sm {
                    params.push(map(start.public_keys));
                }
                params
            }
            Call::Order(d, order) => {
                let mut params = driven(d);
                params.push(s(order));
                params
            }
            Call::Round(d, round) => {
                let mut params = driven(d);
                params.push(Value::Integer(i32::try_from(round).unwrap_or(i32::MAX)));
                params
            }
            Call::Message(m) => {
                let mut params = vec![s(m.run.0), strings(m.path), s(m.value)];
                if m.protocol == Protocol::Sm {
                    params.push(strings(m.signatures));
                }
                params.push(s(m.mac));
                params
            }
            Call::Decide(d) => driven(d),
            Call::TraceEvents {
                run,
                access,
                since_us,
            } => {
                let capability = match access {
                    TraceAccess::Original => String::new(),
                    TraceAccess::Run(c) => c.to_base64(),
                };
                vec![s(run.0), s(capability), s(since_us.to_string())]
            }
        }
    }

    /// Its method and params, as a call on the wire carries them.
    pub(crate) fn into_wire(self) -> (Method, Vec<Value>) {
        (self.method(), self.into_params())
    }
}

/// The run id of the original run's calls in `trace_events`: it has no driver.
pub(crate) const ORIGINAL_RUN: &str = "original";

/// A value longer than [`MAX_VALUE`].
fn too_long() -> PyFault {
    fault::python(
        "ValueError",
        &format!("a value is at most {MAX_VALUE} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_one_name_and_reads_back() {
        let mut names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
        for m in Method::ALL {
            assert_eq!(Method::from_name(m.name()), Some(m));
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Method::ALL.len());
        assert_eq!(Method::from_name("om_x"), None);
    }

    fn secret(b: u8) -> Secret {
        Secret([b; SECRET_BYTES])
    }

    /// Every agreement call written by `into_params` reads back to itself.
    #[test]
    fn calls_read_back_to_themselves() {
        let driven = |protocol| Driven {
            protocol,
            run: "om-1".into(),
            capability: secret(7),
        };
        let start = |protocol| Start {
            protocol,
            run: "r".into(),
            commander: "A".into(),
            nodes: vec!["A".into(), "B".into()],
            m: 1,
            round_timeout: Duration::from_millis(250),
            seed: u64::MAX,
            capability: secret(1),
            keys: [("B".to_string(), secret(2))].into(),
            public_keys: match protocol {
                Protocol::Om => BTreeMap::new(),
                Protocol::Sm => [("A".to_string(), "k".to_string())].into(),
            },
        };
        let mut calls = vec![
            Call::FinalizeDecision,
            Call::GetMessages,
            Call::NodeInfo,
            Call::SmPublicKey,
            Call::SendMessage {
                recipient: Value::String("Q".into()),
                decision: Value::Integer(3),
            },
            Call::ReceiveMessage {
                sender: Value::Nil,
                decision: Value::String("attack".into()),
            },
            Call::TraceEvents {
                run: "r".into(),
                access: TraceAccess::Run(secret(3)),
                since_us: 12,
            },
            Call::TraceEvents {
                run: ORIGINAL_RUN.into(),
                access: TraceAccess::Original,
                since_us: 0,
            },
        ];
        for p in [Protocol::Om, Protocol::Sm] {
            calls.push(Call::Start(start(p)));
            calls.push(Call::Order(driven(p), "attack".into()));
            calls.push(Call::Round(driven(p), 2));
            calls.push(Call::Decide(driven(p)));
            calls.push(Call::Message(Message {
                protocol: p,
                run: "r".into(),
                path: vec!["A".into(), "B".into()],
                value: "retreat".into(),
                signatures: match p {
                    Protocol::Om => Vec::new(),
                    Protocol::Sm => vec!["s1".into(), "s2".into()],
                },
                mac: "m".into(),
            }));
        }
        for call in calls {
            let (method, params) = call.clone().into_wire();
            assert_eq!(params.len(), method.params().len(), "{method}");
            assert_eq!(Call::decode(method, &params), Ok(call));
        }
    }

    #[test]
    fn secrets_do_not_show() {
        assert_eq!(format!("{:?}", secret(9)), "Secret(..)");
        assert!(secret(1).same(&secret(1)) && !secret(1).same(&secret(2)));
        let text = secret(4).to_base64();
        assert_eq!(Secret::parse(&text, "capability"), Ok(secret(4)));
        assert_eq!(
            Secret::parse("abc", "capability").unwrap_err().to_string(),
            "capability must be 32 bytes in base64 (44 characters)"
        );
    }

    #[test]
    fn heavy_methods() {
        let heavy: Vec<&str> = (Method::ALL.into_iter())
            .filter(|m| m.is_heavy())
            .map(Method::name)
            .collect();
        assert_eq!(heavy, ["get_messages", "om_decide", "trace_events"]);
    }
}
