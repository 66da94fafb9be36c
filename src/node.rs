//! One general: its name, whether it is faulty, the messages it stored, and what it does with
//! each of the three methods. Plain Rust, no sockets: [`Node::handle`] takes a decoded call and
//! returns a [`Step`], either the reply (plus the line to print) or a [`Forward`] that the
//! server layer performs over the network before replying. Replies are the original's strings;
//! printed lines show values as [`protocol::printed`] does, so they cannot forge a line.
//!
//! The checks run in the order Python's would raise, so a bad call gets the same fault from a
//! Rust node as from the original: arity (Python's call), the faulty P's denial, the recipient's
//! port (`ord()`), then our own type checks (a deliberate divergence).

use std::collections::{BTreeMap, HashMap};

use dxr::Value;

use crate::behaviour::{Behaviour, entropy};
use crate::calls::{Call, Method};
use crate::protocol::fault::PyFault;
use crate::protocol::python_type_name;
use crate::protocol::{self, fault};

/// Default cap on distinct senders one node stores (see [`Node::with_max_senders`]).
pub(crate) const DEFAULT_MAX_SENDERS: usize = 10_000;
/// Default cap on one sender name or decision, in bytes (see [`Node::with_byte_budget`]).
pub(crate) const DEFAULT_MAX_VALUE: usize = 64 * 1024;
/// Default cap on the bytes of stored messages of one node (see [`Node::with_byte_budget`]).
pub(crate) const DEFAULT_MAX_STORED_BYTES: usize = 16 * 1024 * 1024;
/// What one stored message costs besides its two strings: the map slot and two `String`
/// headers, rounded up. Counted so that ten thousand empty senders still cost something.
pub(crate) const ENTRY_OVERHEAD: usize = 64;

/// A general of the simulation.
#[derive(Debug, Clone)]
pub struct Node {
    name: String,
    faulty: bool,
    messages: HashMap<String, String>,
    max_senders: usize,
    /// Longest sender or decision stored or sent, in bytes.
    max_value: usize,
    /// Most bytes of stored messages ([`stored_cost`] summed).
    max_stored: usize,
    /// Bytes of stored messages now.
    stored: usize,
    behaviour: Behaviour,
    /// The cluster's other nodes in order: where a two-faced node splits its receivers.
    receivers: Vec<String>,
    seed: u64,
    sends: u64,
}

/// What a call asks of the I/O layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Step<T> {
    /// Answer now. `print` is the line the original prints on stdout for this call, if any.
    Reply {
        /// The value, or the fault string (code [`protocol::FAULT_CODE`]).
        result: Result<Value, PyFault>,
        /// Stdout line to print before answering.
        print: Option<String>,
    },
    /// Call `receive_message(sender, decision)` on `target`, then answer.
    Forward(Forward<T>),
}

/// A `send_message` that must reach another node before it can be answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward<T> {
    /// Where the recipient lives, as the resolver given to [`Node::handle`] found it.
    pub(crate) target: T,
    /// The recipient's name as the caller gave it.
    pub(crate) recipient: String,
    /// This node's name (the `sender` argument of the forwarded call).
    pub(crate) sender: String,
    /// The decision to deliver.
    pub(crate) decision: String,
    /// The reply on success: `N sent decision 'D' to X`, as the original answers it.
    pub(crate) line: String,
    /// Printed before the call: [`Forward::line`] with its values as [`protocol::printed`]
    /// shows them.
    pub(crate) print: String,
}

impl<T> Step<T> {
    fn reply(result: Result<String, PyFault>, print: Option<String>) -> Self {
        Step::Reply {
            result: result.map(Value::String),
            print,
        }
    }

    fn fault(string: PyFault) -> Self {
        Step::Reply {
            result: Err(string),
            print: None,
        }
    }
}

impl Node {
    /// A node with nothing stored. `faulty` is the original's flag: a faulty node ignores what
    /// it receives, answers `faulty` to `finalize_decision`, and, when named P, denies R and S
    /// (its default behaviour is [`original_behaviour`]).
    pub fn new(name: impl Into<String>, faulty: bool) -> Self {
        let name = name.into();
        Node {
            behaviour: original_behaviour(&name, faulty),
            name,
            faulty,
            messages: HashMap::new(),
            max_senders: DEFAULT_MAX_SENDERS,
            max_value: DEFAULT_MAX_VALUE,
            max_stored: DEFAULT_MAX_STORED_BYTES,
            stored: 0,
            receivers: Vec::new(),
            seed: 0,
            sends: 0,
        }
    }

    /// Send with `behaviour` instead of the original's (see [`Behaviour`]).
    pub(crate) fn with_behaviour(mut self, behaviour: Behaviour) -> Self {
        self.behaviour = behaviour;
        self
    }

    /// The cluster's nodes in order (this node is skipped): a two-faced node tells the first
    /// half of the others `attack` and the rest `retreat`.
    pub fn with_receivers(mut self, members: &[String]) -> Self {
        self.receivers = members
            .iter()
            .filter(|n| **n != self.name)
            .cloned()
            .collect();
        self
    }

    /// Seed for the `random` behaviour.
    pub(crate) fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How this node sends.
    pub(crate) fn behaviour(&self) -> &Behaviour {
        &self.behaviour
    }

    /// Cap the number of distinct senders stored; a new sender beyond it gets a fault, a known
    /// sender can still update its decision.
    pub(crate) fn with_max_senders(mut self, max: usize) -> Self {
        self.max_senders = max;
        self
    }

    /// Cap what the node holds in bytes: one sender name or decision at most `max_value`
    /// bytes (stored or sent), all stored messages together at most `max_stored` bytes (each
    /// costs its two strings plus [`ENTRY_OVERHEAD`]). The original has no cap: 10,000
    /// senders with 1 MiB decisions took 10 GiB per node, and one `get_messages` three times
    /// that. Beyond a cap the call gets a fault and nothing stored changes.
    pub(crate) fn with_byte_budget(mut self, max_value: usize, max_stored: usize) -> Self {
        self.max_value = max_value;
        self.max_stored = max_stored;
        self
    }

    /// Bytes of stored messages, as counted against the budget.
    pub(crate) fn stored_bytes(&self) -> usize {
        self.stored
    }

    /// The node's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether the node is faulty in the original's sense.
    pub fn is_faulty(&self) -> bool {
        self.faulty
    }

    /// The stored messages, sender -> decision.
    pub fn messages(&self) -> &HashMap<String, String> {
        &self.messages
    }

    /// Handle one call of the original protocol (its params read by [`Call::decode`], which
    /// gives the arity faults). `resolve` turns a recipient argument into a target the I/O
    /// layer can call, or the fault Python raises for it (the port rule's `ord()` errors).
    pub fn handle<T>(
        &mut self,
        call: &Call,
        resolve: impl FnOnce(&Value) -> Result<T, PyFault>,
    ) -> Step<T> {
        match call {
            Call::SendMessage {
                recipient,
                decision,
            } => self.send_message(recipient, decision, resolve),
            Call::ReceiveMessage { sender, decision } => self.receive_message(sender, decision),
            Call::FinalizeDecision => match self.finalize_decision() {
                Ok((decision, print)) => Step::reply(Ok(decision), print),
                Err(f) => Step::fault(f),
            },
            Call::GetMessages => {
                let map: BTreeMap<String, Value> = self
                    .messages
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                Step::Reply {
                    result: Ok(Value::Struct(map)),
                    print: None,
                }
            }
            other => Step::fault(fault::unsupported_method(other.method().name())),
        }
    }

    fn send_message<T>(
        &mut self,
        recipient: &Value,
        decision: &Value,
        resolve: impl FnOnce(&Value) -> Result<T, PyFault>,
    ) -> Step<T> {
        if let Value::String(r) = recipient
            && self.behaviour.refuses(r)
        {
            return Step::reply(
                Ok(protocol::denied_reply(&self.name, r)),
                Some(protocol::printed::denying_line(&self.name, r)),
            );
        }
        // Python's `ord()` faults come before our checks of the decision; a recipient that is
        // no node of the cluster is refused as the original's connection would be, so after
        // them (see `Cluster::url_of`).
        let target = resolve(recipient);
        if let Err(f) = &target
            && *f != fault::connection_refused()
        {
            return Step::fault(f.clone());
        }
        let (Value::String(recipient), Value::String(decision)) = (recipient, decision) else {
            return Step::fault(fault::not_a_string("decision", python_type_name(decision)));
        };
        if decision.len() > self.max_value {
            return Step::fault(fault::too_long("decision", decision.len(), self.max_value));
        }
        let target = match target {
            Ok(t) => t,
            // A name outside the cluster is refused as the original's connection would be, and
            // the original prints its line before it tries to connect (issue 27, item 7).
            Err(f) => {
                return Step::Reply {
                    result: Err(f),
                    print: Some(protocol::printed::sent_line(
                        &self.name, decision, recipient,
                    )),
                };
            }
        };
        // What the behaviour makes of the decision (an honest node sends it unchanged).
        self.sends += 1;
        let index = self
            .receivers
            .iter()
            .position(|r| r == recipient)
            .unwrap_or(0);
        let noise = entropy(
            self.seed,
            &[
                Method::SendMessage.name(),
                &self.name,
                recipient,
                &self.sends.to_string(),
            ],
        );
        let decision = &self
            .behaviour
            .outgoing(decision, recipient, index, self.receivers.len(), noise)
            .unwrap_or_else(|| decision.clone());
        Step::Forward(Forward {
            target,
            recipient: recipient.clone(),
            sender: self.name.clone(),
            decision: decision.clone(),
            line: protocol::sent_line(&self.name, decision, recipient),
            print: protocol::printed::sent_line(&self.name, decision, recipient),
        })
    }

    /// Store a decision (unless faulty) and say so.
    pub(crate) fn receive_message<T>(&mut self, sender: &Value, decision: &Value) -> Step<T> {
        let Value::String(sender) = sender else {
            return Step::fault(fault::not_a_string("sender", python_type_name(sender)));
        };
        let Value::String(decision) = decision else {
            return Step::fault(fault::not_a_string("decision", python_type_name(decision)));
        };
        for (what, v) in [("sender", sender), ("decision", decision)] {
            if v.len() > self.max_value {
                return Step::fault(fault::too_long(what, v.len(), self.max_value));
            }
        }
        if self.faulty {
            return Step::reply(Ok(protocol::ignored_reply(&self.name, sender)), None);
        }
        let old = self.messages.get(sender).map(|d| stored_cost(sender, d));
        if old.is_none() && self.messages.len() >= self.max_senders {
            return Step::fault(fault::too_many_senders(&self.name, self.max_senders));
        }
        let total = self.stored - old.unwrap_or(0) + stored_cost(sender, decision);
        if total > self.max_stored {
            return Step::fault(fault::store_full(&self.name, self.max_stored));
        }
        self.stored = total;
        if let Some(stored) = self.messages.get_mut(sender) {
            stored.clone_from(decision);
        } else {
            self.messages.insert(sender.clone(), decision.clone());
        }
        Step::reply(
            Ok(protocol::received_line(&self.name, decision, sender)),
            Some(protocol::printed::received_line(
                &self.name, decision, sender,
            )),
        )
    }

    /// The majority of the stored decisions; `faulty` for a faulty node. A tie goes to the
    /// smallest tied value in code-point order (Python's pick depends on hash randomisation).
    /// Returns the decision and the line to print.
    pub fn finalize_decision(&self) -> Result<(String, Option<String>), PyFault> {
        if self.faulty {
            return Ok((protocol::FAULTY_DECISION.to_string(), None));
        }
        let majority = plurality(self.messages.values().map(String::as_str))
            .ok_or_else(fault::empty_majority)?
            .to_string();
        let line = protocol::printed::majority_line(&majority);
        Ok((majority, Some(line)))
    }
}

/// The original's only fault behaviour: a faulty node *named P* refuses R and S
/// (`deny:R,S`); every other node is honest unless given a behaviour.
pub(crate) fn original_behaviour(name: &str, faulty: bool) -> Behaviour {
    if faulty && name == protocol::ORIGINAL_FAULTY {
        Behaviour::Deny(
            protocol::DENIED_BY_P
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    } else {
        Behaviour::Honest
    }
}

/// What one stored message counts against a node's byte budget.
pub(crate) fn stored_cost(sender: &str, decision: &str) -> usize {
    sender.len() + decision.len() + ENTRY_OVERHEAD
}

/// The most frequent value (the original's `max(set(decisions), key=decisions.count)`, not a
/// strict majority); ties go to the smallest value. `None` when empty.
pub(crate) fn plurality<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for v in values {
        *counts.entry(v).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .max_by(|(a, ca), (b, cb)| ca.cmp(cb).then_with(|| b.cmp(a)))
        .map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    fn reply(step: Step<()>) -> Result<Value, PyFault> {
        match step {
            Step::Reply { result, .. } => result,
            Step::Forward(_) => panic!("unexpected forward"),
        }
    }

    #[test]
    fn majority_and_ties() {
        assert_eq!(plurality(["a", "b", "b"]), Some("b"));
        assert_eq!(plurality(["retreat", "attack"]), Some("attack"));
        assert_eq!(plurality(["b", "a", "b", "a"]), Some("a"));
        assert_eq!(plurality([]), None);
    }

    #[test]
    fn loyal_node_stores_and_finalizes() {
        let mut q = Node::new("Q", false);
        let receive = |sender: &str, decision: &str| Call::ReceiveMessage {
            sender: s(sender),
            decision: s(decision),
        };
        let r = reply(q.handle(&receive("P", "attack"), |_| Ok(())));
        assert_eq!(r, Ok(s("Q received decision 'attack' from P")));
        q.handle::<()>(&receive("R", "retreat"), |_| Ok(()));
        q.handle::<()>(&receive("S", "retreat"), |_| Ok(()));
        // A later message from the same sender replaces the earlier one.
        q.handle::<()>(&receive("R", "attack"), |_| Ok(()));
        assert_eq!(q.finalize_decision().unwrap().0, "attack");
        assert_eq!(q.finalize_decision().unwrap().0, "attack");
    }

    #[test]
    fn faulty_p_denies_r_and_s_only() {
        let mut p = Node::new("P", true);
        let step = p.send_message(&s("R"), &s("attack"), |_| Ok(()));
        assert_eq!(
            step,
            Step::Reply {
                result: Ok(s("P denied communication to R")),
                print: Some("Process P is denying communication to R".into())
            }
        );
        assert!(matches!(
            p.send_message(&s("Q"), &s("attack"), |_| Ok(())),
            Step::Forward(_)
        ));
        let mut q = Node::new("Q", true);
        assert!(matches!(
            q.send_message(&s("R"), &s("attack"), |_| Ok(())),
            Step::Forward(_)
        ));
    }

    #[test]
    fn a_send_outside_the_cluster_prints_its_line_before_the_refusal() {
        // CPython: `Q sent decision 'attack' to T` is printed, then the connection is refused.
        let mut q = Node::new("Q", false);
        let step: Step<()> =
            q.send_message(&s("T"), &s("attack"), |_| Err(fault::connection_refused()));
        assert_eq!(
            step,
            Step::Reply {
                result: Err(fault::connection_refused()),
                print: Some("Q sent decision 'attack' to T".into())
            }
        );
        // ord() faults come before any line, as in CPython.
        let step: Step<()> = q.send_message(&s("TT"), &s("attack"), |_| Err(fault::ord_length(2)));
        assert!(matches!(step, Step::Reply { print: None, .. }));
    }

    #[test]
    fn behaviours_change_what_send_message_sends() {
        let members: Vec<String> = ["P", "Q", "R", "S"].iter().map(|s| s.to_string()).collect();
        let sent = |n: &mut Node, to: &str| match n.send_message(&s(to), &s("attack"), |_| Ok(())) {
            Step::Forward(f) => f.decision,
            Step::Reply { result, .. } => format!("{result:?}"),
        };
        let mut q = Node::new("Q", false)
            .with_behaviour(Behaviour::TwoFaced)
            .with_receivers(&members);
        // Q's receivers are P, R, S: the first half (P) gets attack, the rest retreat.
        assert_eq!(
            [sent(&mut q, "P"), sent(&mut q, "R"), sent(&mut q, "S")],
            ["attack", "retreat", "retreat"]
        );
        let mut f = Node::new("R", false).with_behaviour(Behaviour::Flip);
        assert_eq!(sent(&mut f, "Q"), "retreat");
        let mut silent = Node::new("S", false).with_behaviour(Behaviour::Silent);
        assert!(sent(&mut silent, "Q").contains("S denied communication to Q"));
        // An explicit behaviour replaces the faulty P's denial.
        let mut p = Node::new("P", true).with_behaviour(Behaviour::Honest);
        assert_eq!(sent(&mut p, "R"), "attack");
    }

    #[test]
    fn sender_cap_allows_updates() {
        let mut n = Node::new("Q", false).with_max_senders(1);
        assert!(reply(n.receive_message(&s("A"), &s("x"))).is_ok());
        assert!(reply(n.receive_message(&s("A"), &s("y"))).is_ok());
        let f = reply(n.receive_message(&s("B"), &s("x"))).unwrap_err();
        assert!(f.contains("at most 1"), "{f}");
        assert_eq!(n.messages().len(), 1);
    }

    #[test]
    fn byte_budget_refuses_without_changing_the_store() {
        let room = 2 * stored_cost("A", "xxxx");
        let mut n = Node::new("Q", false).with_byte_budget(8, room);
        let long = "y".repeat(9);
        for (sender, decision) in [("A", long.as_str()), (long.as_str(), "x")] {
            let f = reply(n.receive_message(&s(sender), &s(decision))).unwrap_err();
            assert!(f.contains("at most 8 bytes"), "{f}");
        }
        assert!(reply(n.receive_message(&s("A"), &s("xxxx"))).is_ok());
        assert!(reply(n.receive_message(&s("B"), &s("xxxx"))).is_ok());
        assert_eq!(n.stored_bytes(), room);
        // Full: a new sender and a longer value are refused, the same size or shorter is not.
        let f = reply(n.receive_message(&s("C"), &s("x"))).unwrap_err();
        assert!(f.contains(&format!("at most {room} bytes")), "{f}");
        assert!(reply(n.receive_message(&s("B"), &s("xxxxx"))).is_err());
        assert!(reply(n.receive_message(&s("B"), &s("zz"))).is_ok());
        assert!(reply(n.receive_message(&s("C"), &s(""))).is_err());
        assert_eq!(n.messages().len(), 2);
        assert_eq!(n.messages()["B"], "zz");
        assert_eq!(
            n.stored_bytes(),
            n.messages()
                .iter()
                .map(|(k, v)| stored_cost(k, v))
                .sum::<usize>()
        );
        // A send of a decision past the cap is refused before anything is forwarded.
        assert!(matches!(
            n.send_message(&s("R"), &s(&long), |_| Ok(())),
            Step::Reply { result: Err(_), .. }
        ));
    }
}
