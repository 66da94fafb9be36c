//! The answers of the agreement methods as types, for both ends of the wire: the engine makes
//! them, the driver reads them. `to_value` / `from_value` are the one place their members are
//! written and read (the names live in [`crate::protocol::ext::member`]; the shapes are
//! documented in `docs/protocol-extensions.md`), as [`crate::trace`] does for its events.
//!
//! Reading is lenient about what is absent and strict about what is there: a member a node
//! does not send reads as absent (no value, zero, empty), so a node that answers less than
//! this engine (the Python stand-in's decide has no `rejected`) is taken for what it says; a
//! member that is there with another type, or a count that is not a non-negative int, is an
//! error ([`ReplyError`]) that the driver reports, never a silent 0 in the counts a verdict is
//! made of.

use std::collections::BTreeMap;

use dxr::Value;

use crate::protocol::ext::{self, member};

/// Why an answer is not what its method answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReplyError {
    /// The answer is not a struct.
    #[error("not a struct: {0}")]
    NotAStruct(String),
    /// A member is there, but not as the method answers it.
    #[error("member {member:?} is not {want}: {found}")]
    Member {
        /// The member.
        member: &'static str,
        /// What it must be.
        want: &'static str,
        /// What it is (its debug rendering, cut).
        found: String,
    },
}

/// A value's debug rendering, at most 80 bytes.
fn shown(v: &Value) -> String {
    let text = format!("{v:?}");
    let mut end = text.len().min(80);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

fn bad(member: &'static str, want: &'static str, v: &Value) -> ReplyError {
    ReplyError::Member {
        member,
        want,
        found: shown(v),
    }
}

/// `node_info`'s answer: who the node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeInfo {
    /// The node's name.
    pub(crate) name: String,
    /// Its behaviour, as written in `--behaviour` (`honest`, `two-faced`, `deny:R,S`, ...);
    /// `None` when a node does not say.
    pub(crate) behaviour: Option<String>,
    /// Whether that behaviour lies or withholds (true for all but `honest`).
    pub(crate) traitor: bool,
    /// Its SM public key, as `sm_public_key` answers it.
    pub(crate) public_key: String,
}

/// `om_order` / `sm_order`'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ordered {
    /// Messages the order makes for round 1.
    pub(crate) queued: u64,
}

/// `om_round` / `sm_round`'s answer: how sending one round went on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RoundDone {
    /// The round.
    pub(crate) round: u64,
    /// Messages the round owed, before the behaviour.
    pub(crate) due: u64,
    /// Messages sent (the behaviour kept them).
    pub(crate) sent: u64,
    /// Messages sent and stored by their receiver.
    pub(crate) delivered: u64,
    /// Messages sent and not stored.
    pub(crate) failed: u64,
    /// Messages not delivered, by receiver (only receivers with failures).
    pub(crate) failed_to: BTreeMap<String, u64>,
}

/// The role a node had in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// It gave the order.
    Commander,
    /// It received and relayed.
    Lieutenant,
}

impl Role {
    /// The wire name.
    pub(crate) fn name(self) -> &'static str {
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
pub(crate) struct Decided {
    /// Commander or lieutenant.
    pub(crate) role: Option<Role>,
    /// Commander: its order (`""` without one); lieutenant: its decision. `None` when a node
    /// answered without one.
    pub(crate) decision: Option<String>,
    /// OM: distinct paths received; SM: messages accepted, duplicates included.
    pub(crate) received: u64,
    /// OM: paths a complete run delivers to this node.
    pub(crate) expected: Option<u64>,
    /// SM: messages rejected.
    pub(crate) rejected: Option<u64>,
    /// SM: the set of values accepted, sorted.
    pub(crate) values: Option<Vec<String>>,
    /// SM: the first rejection reasons.
    pub(crate) reasons: Option<Vec<String>>,
    /// SM, a scripted traitor only: messages it sent with a chain it did not hold.
    pub(crate) forged: Option<u64>,
    /// Per round: messages this node delivered.
    pub(crate) sent: Vec<u64>,
    /// Per round: messages this node sent that were not stored.
    pub(crate) failed: Vec<u64>,
    /// Per round: messages its behaviour did not send.
    pub(crate) withheld: Vec<u64>,
    /// Sender -> messages of that sender this node refused as late.
    pub(crate) late: BTreeMap<String, u64>,
    /// Messages this node refused because their MAC did not prove their sender (`None` from
    /// a node that does not say).
    pub(crate) unauthenticated: Option<u64>,
}

impl NodeInfo {
    /// As the wire carries it.
    pub(crate) fn to_value(&self) -> Value {
        let mut m = BTreeMap::new();
        m.insert(member::NAME.into(), string(&self.name));
        if let Some(b) = &self.behaviour {
            m.insert(member::BEHAVIOUR.into(), string(b));
        }
        m.insert(member::TRAITOR.into(), Value::Boolean(self.traitor));
        m.insert(member::PUBLIC_KEY.into(), string(&self.public_key));
        Value::Struct(m)
    }

    /// Read from the wire.
    pub(crate) fn from_value(v: &Value) -> Result<NodeInfo, ReplyError> {
        let m = members(v)?;
        let traitor = match m.get(member::TRAITOR) {
            None => false,
            Some(Value::Boolean(b)) => *b,
            Some(other) => return Err(bad(member::TRAITOR, "a boolean", other)),
        };
        Ok(NodeInfo {
            name: string_of(m, member::NAME)?.unwrap_or_default(),
            behaviour: string_of(m, member::BEHAVIOUR)?,
            traitor,
            public_key: string_of(m, member::PUBLIC_KEY)?.unwrap_or_default(),
        })
    }
}

impl Ordered {
    /// As the wire carries it.
    pub(crate) fn to_value(self) -> Value {
        Value::Struct(BTreeMap::from([(member::QUEUED.into(), int(self.queued))]))
    }

    /// Read from the wire.
    #[cfg(test)]
    pub(crate) fn from_value(v: &Value) -> Result<Ordered, ReplyError> {
        let m = members(v)?;
        Ok(Ordered {
            queued: count_of(m, member::QUEUED)?,
        })
    }
}

impl RoundDone {
    /// As the wire carries it.
    pub(crate) fn to_value(&self) -> Value {
        Value::Struct(BTreeMap::from([
            (member::ROUND.into(), int(self.round)),
            (member::DUE.into(), int(self.due)),
            (member::SENT.into(), int(self.sent)),
            (member::DELIVERED.into(), int(self.delivered)),
            (member::FAILED.into(), int(self.failed)),
            (member::FAILED_TO.into(), count_map(&self.failed_to)),
        ]))
    }

    /// Read from the wire.
    pub(crate) fn from_value(v: &Value) -> Result<RoundDone, ReplyError> {
        let m = members(v)?;
        Ok(RoundDone {
            round: count_of(m, member::ROUND)?,
            due: count_of(m, member::DUE)?,
            sent: count_of(m, member::SENT)?,
            delivered: count_of(m, member::DELIVERED)?,
            failed: count_of(m, member::FAILED)?,
            failed_to: count_map_of(m, member::FAILED_TO)?,
        })
    }
}

impl Decided {
    /// As the wire carries it: OM's answer has `expected`, SM's `rejected`, `values` and
    /// `reasons`; a member that is `None` here is left out.
    pub(crate) fn to_value(&self) -> Value {
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

    /// Read from the wire. An OM-only or SM-only member that a node leaves out is `None`.
    pub(crate) fn from_value(v: &Value) -> Result<Decided, ReplyError> {
        let m = members(v)?;
        let some_count = |key: &'static str| match m.contains_key(key) {
            true => count_of(m, key).map(Some),
            false => Ok(None),
        };
        let role =
            match string_of(m, member::ROLE)? {
                None => None,
                Some(r) => Some(Role::from_name(&r).ok_or_else(|| {
                    bad(member::ROLE, "commander or lieutenant", &Value::String(r))
                })?),
            };
        Ok(Decided {
            role,
            decision: string_of(m, member::DECISION)?,
            received: count_of(m, member::RECEIVED)?,
            expected: some_count(member::EXPECTED)?,
            rejected: some_count(member::REJECTED)?,
            values: strings_of(m, member::VALUES)?,
            reasons: strings_of(m, member::REASONS)?,
            forged: some_count(member::FORGED)?,
            sent: counts_of(m, member::SENT)?,
            failed: counts_of(m, member::FAILED)?,
            withheld: counts_of(m, member::WITHHELD)?,
            late: count_map_of(m, member::LATE)?,
            unauthenticated: some_count(member::UNAUTHENTICATED)?,
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

fn members(v: &Value) -> Result<&Members, ReplyError> {
    match v {
        Value::Struct(m) => Ok(m),
        other => Err(ReplyError::NotAStruct(shown(other))),
    }
}

/// A count: a non-negative int (`<int>`, or `<i8>` that fits).
fn count(member: &'static str, v: &Value) -> Result<u64, ReplyError> {
    let n = match v {
        Value::Integer(n) => i64::from(*n),
        Value::Long(n) => *n,
        other => return Err(bad(member, "a count (a non-negative int)", other)),
    };
    u64::try_from(n).map_err(|_| bad(member, "a count (a non-negative int)", v))
}

/// A count member; 0 when absent.
fn count_of(m: &Members, key: &'static str) -> Result<u64, ReplyError> {
    m.get(key).map_or(Ok(0), |v| count(key, v))
}

/// A string member; `None` when absent.
fn string_of(m: &Members, key: &'static str) -> Result<Option<String>, ReplyError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(key, "a string", other)),
    }
}

/// An array of strings; `None` when absent.
fn strings_of(m: &Members, key: &'static str) -> Result<Option<Vec<String>>, ReplyError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(bad(key, "an array of strings", other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(bad(key, "an array of strings", other)),
    }
}

/// An array of counts; empty when absent.
fn counts_of(m: &Members, key: &'static str) -> Result<Vec<u64>, ReplyError> {
    match m.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|v| count(key, v)).collect(),
        Some(other) => Err(bad(key, "an array of counts", other)),
    }
}

/// A struct of counts; empty when absent.
fn count_map_of(m: &Members, key: &'static str) -> Result<BTreeMap<String, u64>, ReplyError> {
    match m.get(key) {
        None => Ok(BTreeMap::new()),
        Some(Value::Struct(items)) => items
            .iter()
            .map(|(k, v)| count(key, v).map(|n| (k.clone(), n)))
            .collect(),
        Some(other) => Err(bad(key, "a struct of counts", other)),
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
        assert_eq!(NodeInfo::from_value(&info.to_value()), Ok(info));
        let ordered = Ordered { queued: 3 };
        assert_eq!(Ordered::from_value(&ordered.to_value()), Ok(ordered));
        let round = RoundDone {
            round: 2,
            due: 6,
            sent: 5,
            delivered: 4,
            failed: 1,
            failed_to: BTreeMap::from([("S".into(), 1)]),
        };
        assert_eq!(RoundDone::from_value(&round.to_value()), Ok(round));
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
            assert_eq!(Decided::from_value(&decided.to_value()), Ok(decided));
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
    fn reading_takes_what_is_absent_and_refuses_what_is_wrong() {
        assert!(matches!(
            Decided::from_value(&s("attack")),
            Err(ReplyError::NotAStruct(_))
        ));
        assert!(NodeInfo::from_value(&Value::Integer(1)).is_err());
        // Absent members: nothing, zero, empty.
        let bare = Decided::from_value(&Value::Struct(BTreeMap::new())).unwrap();
        assert_eq!(bare, Decided::default());
        // Each wrong member is an error naming it, never a silent 0.
        let wrong: [(&str, Value, &str); 7] = [
            ("decision", Value::Integer(1), "a string"),
            ("rejected", s("many"), "a count"),
            ("received", Value::Integer(-1), "a count"),
            (
                "sent",
                Value::Array(vec![Value::Integer(2), s("x")]),
                "a count",
            ),
            (
                "late",
                Value::Struct(BTreeMap::from([("R".into(), s("2"))])),
                "a count",
            ),
            (
                "values",
                Value::Array(vec![Value::Integer(1)]),
                "an array of strings",
            ),
            ("role", s("general"), "commander or lieutenant"),
        ];
        for (member, value, want) in wrong {
            let answer = Value::Struct(BTreeMap::from([(member.to_string(), value)]));
            let e = Decided::from_value(&answer).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains(member) && text.contains(want),
                "{member}: {text}"
            );
        }
        let info = Value::Struct(BTreeMap::from([("traitor".into(), s("true"))]));
        assert!(NodeInfo::from_value(&info).is_err());
        // A big count in an <i8> still reads.
        let long = Value::Struct(BTreeMap::from([("queued".into(), Value::Long(5))]));
        assert_eq!(Ordered::from_value(&long), Ok(Ordered { queued: 5 }));
    }
}
