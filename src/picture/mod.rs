//! Pictures of runs, drawn by hand (no crates): the node-to-node calls as a Lamport
//! space-time diagram in SVG ([`lamport_svg`]) or as a Mermaid `sequenceDiagram`
//! ([`mermaid`]), and one lieutenant's OM(m) evaluation tree in SVG ([`tree_svg`], fed by
//! [`OmRun::tree`](crate::agreement::om::OmRun::tree) or [`om_tree_from_events`]).
//!
//! The original run's refused sends (a `send_message` answered `P denied communication to R`)
//! are drawn as stubs marked "denied", and messages a faulty receiver ignored (answered `P
//! (faulty) ignored message from Q`) are marked at the receiver.
//!
//! Everything here is pure: names, events and decisions in, text out. Every string that
//! comes from the wire is escaped (SVG) or sanitised (Mermaid), characters XML cannot carry
//! are replaced, and long labels are shortened (in SVG the full text stays in a tooltip).
//!
//! The files: `lamport.rs` the Lamport diagram (a time line, or round bands and summaries),
//! `tree.rs` the OM evaluation tree (folded when large), `mermaid.rs` the Mermaid diagram,
//! `svg.rs` what the two SVG pictures share (escaping, a document's opening), and this one
//! what every picture shares (lanes, labels, shortening).

use std::collections::BTreeMap;

use crate::protocol;
use crate::trace::Event;

mod lamport;
mod mermaid;
mod svg;
mod tree;

pub use lamport::{DETAIL_LIMIT, lamport_svg};
pub use mermaid::mermaid;
pub use tree::{om_tree_from_events, tree_svg};

/// Characters of a value or method shown on an arrow or in a tree box.
const LABEL_CHARS: usize = 28;
/// Characters of a node name shown in a header.
const NAME_CHARS: usize = 20;

/// At most `max` characters of `s`, ending with `…` when cut.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// What an arrow says: the value carried, else the method.
fn label(e: &Event) -> &str {
    e.value().unwrap_or(&e.method)
}

/// Whether `e` is a send its sender refused: a `send_message` the client made whose reply
/// is [`protocol::denied_reply`] (`P denied communication to R`). Drawn as a stub.
fn is_denied(e: &Event) -> bool {
    e.method == protocol::SEND_MESSAGE
        && e.result.as_ref().and_then(|r| r.as_str())
            == Some(protocol::denied_reply(&e.from, &e.to).as_str())
}

/// Whether the receiver of `e` ignored it: a `receive_message` whose answer is
/// [`protocol::ignored_reply`] (`P (faulty) ignored message from Q`). Marked at the receiver.
fn is_ignored(e: &Event) -> bool {
    e.method == protocol::RECEIVE_MESSAGE
        && e.result.as_ref().and_then(|r| r.as_str())
            == Some(protocol::ignored_reply(&e.to, &e.from).as_str())
}

/// How a picture shows one call: the one classification the SVG, the Mermaid diagram and the
/// live page (`client ui`) share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shown {
    /// Delivered: a solid arrow.
    Delivered,
    /// Refused by its sender (the original's `P denied communication to R`): a stub.
    Denied,
    /// Delivered to a faulty receiver that ignored it: marked at the receiver.
    Ignored,
    /// Refused by the receiver because its round was closed: dashed.
    Late,
    /// Failed otherwise (refused connection, timeout, fault): dashed.
    Failed,
}

impl Shown {
    /// How `e` is shown.
    pub fn of(e: &Event) -> Shown {
        match &e.fault {
            Some(f) if f.contains(LATE_FAULT) => Shown::Late,
            Some(_) => Shown::Failed,
            None if is_denied(e) => Shown::Denied,
            None if is_ignored(e) => Shown::Ignored,
            None => Shown::Delivered,
        }
    }
}

/// What a receiver's fault says when a message came after its round closed
/// ([`crate::agreement::rounds`]'s `late: round R is closed`).
const LATE_FAULT: &str = "late: round ";

/// `nodes` without repeats, then every other node named by an event (sender first) or a
/// decision, in order of appearance.
fn lanes(nodes: &[String], events: &[Event], decisions: &BTreeMap<String, String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let named = nodes
        .iter()
        .chain(events.iter().flat_map(|e| [&e.from, &e.to]))
        .chain(decisions.keys());
    for n in named {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `om_message` from `from` to `to` on path `path`, from `start` to `end` us.
    pub(super) fn ev(
        from: &str,
        to: &str,
        path: &[&str],
        value: &str,
        start: u64,
        end: u64,
    ) -> Event {
        Event {
            run: "om-1".into(),
            from: from.into(),
            to: to.into(),
            method: "om_message".into(),
            args: serde_json::json!(["om-1", path, value]),
            result: Some(serde_json::json!(true)),
            fault: None,
            start_us: start,
            end_us: end,
        }
    }

    fn names(s: &str) -> Vec<String> {
        s.split(',').map(str::to_string).collect()
    }

    #[test]
    fn shortening() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("ééé", 3), "ééé");
    }

    #[test]
    fn lanes_keep_order_and_append_strangers() {
        let events = [ev("X", "P", &["X"], "attack", 1, 2)];
        let decisions = BTreeMap::from([("Z".to_string(), "attack".to_string())]);
        assert_eq!(
            lanes(&names("P,Q,P"), &events, &decisions),
            ["P", "Q", "X", "Z"]
        );
    }

    #[test]
    fn each_call_is_shown_one_way() {
        let ok = ev("P", "Q", &["P"], "attack", 1, 2);
        assert_eq!(Shown::of(&ok), Shown::Delivered);
        // A late message's fault is what the receiver's rounds say, wrapped as a fault.
        let late = crate::agreement::rounds::Refused::Late {
            round: 1,
            current: 2,
        };
        let fault = crate::protocol::fault::python("ValueError", &late.to_string());
        let late = Event {
            fault: Some(fault.as_str().to_string()),
            result: None,
            ..ok.clone()
        };
        assert_eq!(Shown::of(&late), Shown::Late);
        let failed = Event {
            fault: Some("connection refused".into()),
            ..late.clone()
        };
        assert_eq!(Shown::of(&failed), Shown::Failed);
        let denied = Event {
            method: protocol::SEND_MESSAGE.into(),
            result: Some(protocol::denied_reply("P", "Q").into()),
            ..ok.clone()
        };
        assert_eq!(Shown::of(&denied), Shown::Denied);
        let ignored = Event {
            method: protocol::RECEIVE_MESSAGE.into(),
            result: Some(protocol::ignored_reply("Q", "P").into()),
            ..ok
        };
        assert_eq!(Shown::of(&ignored), Shown::Ignored);
    }
}
