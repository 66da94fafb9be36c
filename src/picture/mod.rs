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

use crate::trace::{Event, Outcome};

mod lamport;
mod mermaid;
mod svg;
mod tree;

pub use lamport::{DETAIL_LIMIT, lamport_svg};
pub use mermaid::mermaid;
pub(crate) use tree::TREE_LIMIT;
pub use tree::{Unfold, om_tree_from_events, tree_svg, tree_svg_with};

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
    e.value().unwrap_or(e.method.name())
}

/// Whether `e` is a send its sender refused (the original's `P denied communication to R`):
/// drawn as a stub.
fn is_denied(e: &Event) -> bool {
    e.outcome == Outcome::Denied
}

/// Whether the receiver of `e` ignored it (`P (faulty) ignored message from Q`): marked at the
/// receiver.
fn is_ignored(e: &Event) -> bool {
    e.outcome == Outcome::Ignored
}

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
        let method = crate::calls::Method::Message(crate::calls::Protocol::Om);
        let args = serde_json::json!(["om-1", path, value]);
        Event::call(
            "om-1",
            from,
            to,
            method,
            args,
            &Ok(dxr::Value::Boolean(true)),
        )
        .at(start, end)
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
}
