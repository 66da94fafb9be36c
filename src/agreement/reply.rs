//! The answers of the agreement methods as types, for both ends of the wire: the engine makes
//! them, the driver reads them. `to_value` / `from_value` are the one place their members are
//! written and read (the names live in [`crate::protocol::ext::member`]; the shapes are
//! documented in `docs/protocol-extensions.md`), as [`crate::trace`] does for its events.
//!
//! Reading is lenient, as the driver always was: a member that is absent or of another type
//! reads as absent (no value, zero, empty), so a node that answers less than this engine (the
//! Python stand-in's decide has no `rejected`) is taken for what it says. Only an answer that
//! is not a struct is refused (`None`); what that means is the caller's to say.

use std::collections::BTreeMap;

use dxr::Value;

use crate::protocol::ext::{self, member};

/// `node_info`'s answer: who the node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's name.
    pub name: String,
    /// Its behaviour, as written in `--behaviour` (`honest`, `two-faced`, `deny:R,S`, ...);
    /// `None` when a node does not say.
    pub behaviour: Option<String>,
    /// Whether that behaviour lies or withholds (true for all but `honest`).
    pub traitor: bool,
    /// Its SM public key, as `sm_public_key` answers it.
    pub public_key: String,
}

/// `om_order` / `sm_order`'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ordered {
    /// Messages the order makes for round 1.
    pub queued: u64,
}

/// `om_round` / `sm_round`'s answer: how sending one round went on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundDone {
    /// The round.
    pub round: u64,
    /// Messages the round owed, before the behaviour.
    pub due: u64,
    /// Messages sent (the behaviour kept them).
    pub sent: u64,
    /// Messages sent and stored by their receiver.
    pub delivered: u64,
    /// Messages sent and not stored.
    pub failed: u64,
    /// Messages not delivered, by receiver (only receivers with failures).
    pub failed_to: BTreeMap<String, u64>,
}

/// The role a node had in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It gave the order.
    Commander,
    /// It received and relayed.
    Lieutenant,
}

impl Role {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Commander => ext::COMMANDER,
            Role::Lieutenant => ext::LIEUTENANT,
        }
    }

    fn from_name(name: &str) -> Option<Role> {
        match name {
            ext::COMMANDER => Some(Role::Commander),
            ext::LIEUTENANT => Some(Role::Lieutenant),
            _ => None,
        }
    }
}

/// `om_decide` / `sm_decide`'s answer: the node's decision and what it counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decided {
    /// Commander or lieutenant.
    pub role: Option<Role>,
    /// Commander: its order (`""` without one); lieutenant: its decision. `None` when a node
    /// answered without one.
    pub decision: Option<String>,
    /// OM: distinct paths received; SM: messages accepted, duplicates included.
    pub received: u64,
    /// OM: paths a complete run delivers to this node.
    pub expected: Option<u64>,
    /// SM: messages rejected.
    pub rejected: Option<u64>,
    /// SM: the set of values accepted, sorted.
    pub values: Option<Vec<String>>,
    /// SM: the first rejection reasons.
    pub reasons: Option<Vec<String>>,
    /// SM, a scripted traitor only: messages it sent with a chain it did not hold.
    pub forged: Option<u64>,
    /// Per round: messages this node delivered.
    pub sent: Vec<u64>,
    /// Per round: messages this node sent that were not stored.
    pub failed: Vec<u64>,
    /// Per round: messages its behaviour did not send.
    pub withheld: Vec<u64>,
    /// Sender -> messages of that sender this node refused as late.
    pub late: BTreeMap<String, u64>,
    /// Messages this node refused because their MAC did not prove their sender (`None` from
    /// a node that does not say).
    pub unauthenticated: Option<u64>,
}

impl NodeInfo {
    /// As the wire carries it.
    pub fn to_value(&self) -> Value {
        let mut m = BTreeMap::new();
        m.insert(member::NAME.into(), string(&self.name));
        if let Some(b) = &self.behaviour {
            m.insert(member::BEHAVIOUR.into(), string(b));
        }
        m.insert(member::TRAITOR.into(), Value::Boolean(self.traitor));
        m.insert(member::PUBLIC_KEY.into(), string(&self.public_key));
        Value::Struct(m)
    }

    /// Read from the wire; `None` unless a struct. Only a `traitor` of `true` counts.
    pub fn from_value(v: &Value) -> Option<NodeInfo> {
        let m = members(v)?;
        Some(NodeInfo {
            name: string_of(m, member::NAME).unwrap_or_default(),
            behaviour: string_of(m, member::BEHAVIOUR),
            traitor: matches!(m.get(member::TRAITOR), Some(Value::Boolean(true))),
            public_key: string_of(m, member::PUBLIC_KEY).unwrap_or_default(),
        })
    }
}

impl Ordered {
    /// As the wire carries it.
    pub fn to_value(&self) -> Value {
        Value::Struct(BTreeMap::from([(member::QUEUED.into(), int(self.queued))]))
    }

    /// Read from the wire; `None` unless a struct.
    pub fn from_value(v: &Value) -> Option<Ordered> {
        let m = members(v)?;
        Some(Ordered {
            queued: count_of(m, member::QUEUED),
        })
    }
}

impl RoundDone {
    /// As the wire carries it.
    pub fn to_value(&self) -> Value {
        Value::Struct(BTreeMap::from([
            (member::ROUND.into(), int(self.round)),
            (member::DUE.into(), int(self.due)),
            (member::SENT.into(), int(self.sent)),
            (member::DELIVERED.into(), int(self.delivered)),
            (member::FAILED.into(), int(self.failed)),
            (member::FAILED_TO.into(), count_map(&self.failed_to)),
        ]))
    }

    /// Read from the wire; `None` unless a struct.
    pub fn from_value(v: &Value) -> Option<RoundDone> {
        let m = members(v)?;
        Some(RoundDone {
            round: count_of(m, member::ROUND),
            due: count_of(m, member::DUE),
            sent: count_of(m, member::SENT),
            delivered: count_of(m, member::DELIVERED),
            failed: count_of(m, member::FAILED),
            failed_to: count_map_of(m, member::FAILED_TO),
        })
    }
}

impl Decided {
    /// As the wire carries it: OM's answer has `expected`, SM's `rejected`, `values` and
    /// `reasons`; a member that is `None` here is left out.
    pub fn to_value(&self) -> Value {
        let mut m = BTreeMap::new();
        if let Some(role) = self.role {
            m.insert(member::ROLE.into(), string(role.name()));
        }
        if let Some(d) = &self.decision {
            m.insert(member::DECISION.into(), string(d));
        }
        m.insert(member::RECEIVED.into(), int(self.received));
        if let Some(e) = self.expected {
            m.insert(member::EXPECTED.into(), int(e));
        }
        if let Some(r) = self.rejected {
            m.insert(member::REJECTED.into(), int(r));
        }
        if let Some(v) = &self.values {
            m.insert(member::VALUES.into(), strings(v));
        }
        if let Some(r) = &self.reasons {
            m.insert(member::REASONS.into(), strings(r));
        }
        if let Some(f) = self.forged {
            m.insert(member::FORGED.into(), int(f));
        }
        m.insert(member::SENT.into(), counts(&self.sent));
        m.insert(member::FAILED.into(), counts(&self.failed));
        m.insert(member::WITHHELD.into(), counts(&self.withheld));
        m.insert(member::LATE.into(), count_map(&self.late));
        if let Some(n) = self.unauthenticated {
            m.insert(member::UNAUTHENTICATED.into(), int(n));
        }
        Value::Struct(m)
    }

    /// Read from the wire; `None` unless a struct. An item of `sent`, `failed` or `withheld`
    /// that is not an int counts 0 (it keeps its round's place).
    pub fn from_value(v: &Value) -> Option<Decided> {
        let m = members(v)?;
        let some_count = |key: &str| m.contains_key(key).then(|| count_of(m, key));
        Some(Decided {
            role: string_of(m, member::ROLE).and_then(|r| Role::from_name(&r)),
            decision: string_of(m, member::DECISION),
            received: count_of(m, member::RECEIVED),
            expected: some_count(member::EXPECTED),
            rejected: some_count(member::REJECTED),
            values: strings_of(m, member::VALUES),
            reasons: strings_of(m, member::REASONS),
            forged: some_count(member::FORGED),
            sent: counts_of(m, member::SENT),
            failed: counts_of(m, member::FAILED),
            withheld: counts_of(m, member::WITHHELD),
            late: count_map_of(m, member::LATE),
            unauthenticated: some_count(member::UNAUTHENTICATED),
        })
    }
}

/// An XML-RPC int from a count (saturating: counts stay far below 2^31 in practice).
fn int(n: u64) -> Value {
    Value::Integer(i32::try_from(n).unwrap_or(i32::MAX))
}

fn string(s: &str) -> Value {
    Value::String(s.to_string())
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| string(s)).collect())
}

fn counts(items: &[u64]) -> Value {
    Value::Array(items.iter().map(|&n| int(n)).collect())
}

fn count_map(items: &BTreeMap<String, u64>) -> Value {
    Value::Struct(items.iter().map(|(k, &n)| (k.clone(), int(n))).collect())
}

type Members = BTreeMap<String, Value>;

fn members(v: &Value) -> Option<&Members> {
    match v {
        Value::Struct(m) => Some(m),
        _ => None,
    }
}

/// A count: a non-negative int, else 0.
fn count(v: &Value) -> u64 {
    match v {
        Value::Integer(n) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

fn count_of(m: &Members, key: &str) -> u64 {
    m.get(key).map_or(0, count)
}

fn string_of(m: &Members, key: &str) -> Option<String> {
    match m.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// An array's strings (other items skipped); `None` unless an array.
fn strings_of(m: &Members, key: &str) -> Option<Vec<String>> {
    match m.get(key) {
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

fn counts_of(m: &Members, key: &str) -> Vec<u64> {
    match m.get(key) {
        Some(Value::Array(items)) => items.iter().map(count).collect(),
        _ => Vec::new(),
    }
}

fn count_map_of(m: &Members, key: &str) -> BTreeMap<String, u64> {
    match m.get(key) {
        Some(Value::Struct(items)) => items.iter().map(|(k, v)| (k.clone(), count(v))).collect(),
        _ => BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn every_answer_reads_back_as_written() {
        let info = NodeInfo {
            name: "Q".into(),
            behaviour: Some("deny:R,S".into()),
            traitor: true,
            public_key: "a2V5".into(),
        };
        assert_eq!(NodeInfo::from_value(&info.to_value()), Some(info));
        let ordered = Ordered { queued: 3 };
        assert_eq!(Ordered::from_value(&ordered.to_value()), Some(ordered));
        let round = RoundDone {
            round: 2,
            due: 6,
            sent: 5,
            delivered: 4,
            failed: 1,
            failed_to: BTreeMap::from([("S".into(), 1)]),
        };
        assert_eq!(RoundDone::from_value(&round.to_value()), Some(round));
        for decided in [
            lieutenant_decided(),
            Decided {
                role: Some(Role::Commander),
                decision: Some(String::new()),
                rejected: Some(1),
                values: Some(vec!["attack".into()]),
                reasons: Some(vec!["bad signature".into()]),
                late: BTreeMap::from([("R".into(), 2)]),
                ..Decided::default()
            },
        ] {
            assert_eq!(Decided::from_value(&decided.to_value()), Some(decided));
        }
    }

    /// A lieutenant's `om_decide` answer: the documented example's values.
    fn lieutenant_decided() -> Decided {
        Decided {
            role: Some(Role::Lieutenant),
            decision: Some("attack".into()),
            received: 3,
            expected: Some(3),
            sent: vec![0, 2],
            failed: vec![0, 0],
            withheld: vec![0, 0],
            unauthenticated: Some(0),
            ..Decided::default()
        }
    }

    /// The members of `docs/protocol-extensions.md`'s example answer of `om_decide`.
    #[test]
    fn the_documented_decide_answer_has_these_members() {
        let Value::Struct(m) = lieutenant_decided().to_value() else {
            panic!("not a struct");
        };
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "decision",
                "expected",
                "failed",
                "late",
                "received",
                "role",
                "sent",
                "unauthenticated",
                "withheld"
            ]
        );
        assert_eq!(m["role"], s("lieutenant"));
    }

    #[test]
    fn reading_is_lenient_and_refuses_only_non_structs() {
        assert_eq!(Decided::from_value(&s("attack")), None);
        assert_eq!(NodeInfo::from_value(&Value::Integer(1)), None);
        let odd = Value::Struct(BTreeMap::from([
            ("decision".into(), Value::Integer(1)),
            (
                "sent".into(),
                Value::Array(vec![Value::Integer(2), s("x"), Value::Integer(-1)]),
            ),
            (
                "late".into(),
                Value::Struct(BTreeMap::from([("R".into(), s("2"))])),
            ),
            ("rejected".into(), s("many")),
        ]));
        let d = Decided::from_value(&odd).unwrap();
        assert_eq!(d.decision, None);
        assert_eq!(d.sent, [2, 0, 0]);
        assert_eq!(d.late, BTreeMap::from([("R".into(), 0)]));
        assert_eq!(d.rejected, Some(0));
        let info = NodeInfo::from_value(&Value::Struct(BTreeMap::from([(
            "traitor".into(),
            s("true"),
        )])))
        .unwrap();
        assert!(!info.traitor && info.behaviour.is_none());
    }
}
