//! The Mermaid `sequenceDiagram` of a run's calls ([`mermaid`]), to paste into Markdown.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use super::{LABEL_CHARS, is_denied, is_ignored, label, lanes, shorten};
use crate::trace::Event;

/// `s` made safe for a Mermaid label or participant alias: `;` as `,`, `#` and line breaks
/// and other control characters as spaces, `<` and `>` as `‹` and `›` (Mermaid reads labels
/// as HTML), spaces collapsed, at most [`LABEL_CHARS`] characters, never empty.
fn mermaid_text(s: &str) -> String {
    shorten(&sanitised(s), LABEL_CHARS)
}

/// `s` made safe as [`mermaid_text`] says, whatever its length.
fn sanitised(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| match c {
            ';' => ',',
            '<' => '‹',
            '>' => '›',
            '#' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    if words.is_empty() {
        "?".to_string()
    } else {
        words.join(" ")
    }
}

/// The calls as a Mermaid `sequenceDiagram`.
///
/// Participants are declared in lane order (as in [`lamport_svg`](super::lamport_svg)) under generated ids
/// (`n0`, `n1`, ...) with the node's name as alias, so any name parses; traitors are marked
/// "(traitor)". Then one arrow line per call in order of start: `A->>B: value`, or
/// `A--xB: value (failed: ...)` for a failed call; consecutive calls sent by traitors are
/// shaded by a `rect` block. A send the sender refused is `A-xB: denied` (a line ending in a
/// cross); a message the receiver ignored is followed by `Note over B: ignored from A`. Last,
/// a `Note over` per decision. `note` (where the calls come from, when not from the nodes'
/// trace) is a note over every participant before the first call. Labels are sanitised (no
/// `;`, `#`, `<`, `>` or line breaks).
pub fn mermaid(
    nodes: &[String],
    events: &[Event],
    traitors: &[String],
    decisions: &BTreeMap<String, String>,
    note: Option<&str>,
) -> String {
    let lanes = lanes(nodes, events, decisions);
    let id: HashMap<&str, String> = lanes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), format!("n{i}")))
        .collect();
    let is_traitor = |n: &str| traitors.iter().any(|t| t == n);
    let mut out = String::from("sequenceDiagram\n");
    for name in &lanes {
        let mark = if is_traitor(name) { " (traitor)" } else { "" };
        let _ = writeln!(
            out,
            "    participant {} as {}{mark}",
            id[name.as_str()],
            mermaid_text(name)
        );
    }
    if let (Some(note), Some(first), Some(last)) = (note, lanes.first(), lanes.last()) {
        // Not cut: it says where the whole picture comes from.
        let over = if first == last {
            id[first.as_str()].clone()
        } else {
            format!("{},{}", id[first.as_str()], id[last.as_str()])
        };
        let _ = writeln!(out, "    Note over {over}: {}", sanitised(note));
    }
    let mut order: Vec<&Event> = events.iter().collect();
    order.sort_by_key(|e| e.start_us);
    let mut shaded = false;
    for e in order {
        let traitor = is_traitor(&e.from);
        if traitor != shaded {
            out.push_str(if traitor {
                "    rect rgb(255, 228, 225)\n"
            } else {
                "    end\n"
            });
            shaded = traitor;
        }
        let indent = if shaded { "        " } else { "    " };
        let (from, to) = (&id[e.from.as_str()], &id[e.to.as_str()]);
        match &e.fault {
            None if is_denied(e) => {
                let _ = writeln!(out, "{indent}{from}-x{to}: denied");
            }
            None => {
                let _ = writeln!(out, "{indent}{from}->>{to}: {}", mermaid_text(label(e)));
                if is_ignored(e) {
                    let who = mermaid_text(&e.from);
                    let _ = writeln!(out, "{indent}Note over {to}: ignored from {who}");
                }
            }
            Some(f) => {
                let _ = writeln!(
                    out,
                    "{indent}{from}--x{to}: {} (failed: {})",
                    mermaid_text(label(e)),
                    mermaid_text(f)
                );
            }
        }
    }
    if shaded {
        out.push_str("    end\n");
    }
    for name in &lanes {
        if let Some(d) = decisions.get(name) {
            let _ = writeln!(
                out,
                "    Note over {}: decided {}",
                id[name.as_str()],
                mermaid_text(d)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mermaid_labels_are_sanitised() {
        assert_eq!(mermaid_text("a;b#c\nd<e>"), "a,b c d‹e›");
        assert_eq!(mermaid_text(" \n"), "?");
    }
}
