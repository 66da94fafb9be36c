//! Pictures of runs, drawn by hand (no crates): the node-to-node calls as a Lamport
//! space-time diagram in SVG ([`lamport_svg`]) or as a Mermaid `sequenceDiagram`
//! ([`mermaid`]), and one lieutenant's OM(m) evaluation tree in SVG ([`tree_svg`], fed by
//! [`OmRun::tree`] or [`om_tree_from_events`]).
//!
//! Everything here is pure: names, events and decisions in, text out. Every string that
//! comes from the wire is escaped (SVG) or sanitised (Mermaid), characters XML cannot carry
//! are replaced, and long labels are shortened (in SVG the full text stays in a tooltip).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::agreement::om::{OmRun, TreeNode};
use crate::trace::Event;

/// Characters of a value or method shown on an arrow or in a tree box.
const LABEL_CHARS: usize = 28;
/// Characters of a node name shown in a header.
const NAME_CHARS: usize = 20;
/// Characters of the tooltip of an arrow.
const TIP_CHARS: usize = 400;
/// Horizontal distance between lifelines.
const COLUMN: f64 = 150.0;
/// x of the first lifeline.
const LEFT: f64 = 90.0;
/// y where lifelines start (below the title, legend and headers).
const TOP: f64 = 96.0;
/// Smallest vertical distance between two distinct instants, when it fits in [`TALLEST`].
const GAP: f64 = 16.0;
/// Smallest gap ever used, however many instants there are.
const MIN_GAP: f64 = 3.0;
/// Extra height shared between the gaps in proportion to the time elapsed.
const SPREAD: f64 = 320.0;
/// Height the minimum gaps may take before they shrink.
const TALLEST: f64 = 30_000.0;
/// Vertical distance between two calls when they are drawn in order (no usable times).
const ROW: f64 = 30.0;
/// Colour of everything a traitor did.
const TRAITOR: &str = "crimson";

/// `s` as XML text or attribute content: `& < > " '` escaped, tabs and line breaks as
/// spaces, and characters XML 1.0 cannot carry (other control characters, U+FFFE, U+FFFF)
/// replaced with U+FFFD.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}' => {
                out.push(c)
            }
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// At most `max` characters of `s`, ending with `…` when cut.
fn shorten(s: &str, max: usize) -> String {
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

/// The tooltip of an arrow: everything known about the call.
fn tooltip(e: &Event) -> String {
    let mut tip = format!("{} -> {}: {}", e.from, e.to, e.method);
    let path = e.path();
    if !path.is_empty() {
        let _ = write!(tip, " path {}", path.join(">"));
    }
    if let Some(v) = e.value() {
        let _ = write!(tip, " value {v}");
    }
    let _ = write!(tip, "; args {}", e.args);
    if let Some(r) = &e.result {
        let _ = write!(tip, "; result {r}");
    }
    if let Some(f) = &e.fault {
        let _ = write!(tip, "; FAILED: {f}");
    }
    let _ = write!(
        tip,
        "; {} us; run {}",
        e.end_us.saturating_sub(e.start_us),
        e.run
    );
    shorten(&tip, TIP_CHARS)
}

/// Where each call starts and ends on the page.
///
/// With usable times, every distinct instant gets its own row: consecutive instants are at
/// least a minimum gap apart, plus a share of [`SPREAD`] in proportion to the time between
/// them, so order is exact and durations show without crowding. When the times collapse
/// (fewer distinct instants than calls: missing or coarse clocks), calls are drawn one row
/// each in order of start.
fn timeline(events: &[Event]) -> (Vec<(f64, f64)>, f64) {
    let first = TOP + 24.0;
    let mut instants: Vec<u64> = events
        .iter()
        .flat_map(|e| [e.start_us, e.end_us.max(e.start_us)])
        .collect();
    instants.sort_unstable();
    instants.dedup();
    if events.is_empty() {
        return (Vec::new(), first);
    }
    if instants.len() <= events.len() {
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| events[i].start_us);
        let mut out = vec![(0.0, 0.0); events.len()];
        for (rank, i) in order.into_iter().enumerate() {
            let y = first + rank as f64 * ROW;
            out[i] = (y, y + ROW * 0.6);
        }
        let last = first + (events.len() - 1) as f64 * ROW + ROW * 0.6;
        return (out, last);
    }
    let gaps = (instants.len() - 1) as f64;
    let gap = (TALLEST / gaps).clamp(MIN_GAP, GAP);
    let span = (instants[instants.len() - 1] - instants[0]) as f64;
    let mut ys = Vec::with_capacity(instants.len());
    let mut y = first;
    for (k, t) in instants.iter().enumerate() {
        if k > 0 {
            y += gap + SPREAD * (t - instants[k - 1]) as f64 / span;
        }
        ys.push(y);
    }
    let at = |t: u64| ys[instants.binary_search(&t).unwrap_or(0)];
    let out = events
        .iter()
        .map(|e| (at(e.start_us), at(e.end_us.max(e.start_us))))
        .collect();
    (out, y)
}

/// The opening of an SVG document of this size.
fn svg_open(out: &mut String, width: f64, height: f64, title: &str) {
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\">\n\
         <title>{}</title>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        esc(title)
    );
}

/// A Lamport space-time diagram of `events` as a standalone SVG document.
///
/// One lifeline per node (`<line class="lifeline" data-node="NAME">`, `nodes` first, then any
/// other node that appears in `events` or `decisions`) under a header with its name
/// (traitors in crimson, marked "(traitor)"); time flows down. Each call is exactly one arrow
/// (`<line class="msg">`, or `<path class="msg">` for a node calling itself) from the sender's
/// lifeline at its start to the receiver's at its end, labelled with the value it carried
/// ([`Event::value`], else the method) and with every detail in a tooltip. Arrows sent by
/// traitors are crimson (class `msg traitor`); failed calls are dashed (class `msg fault`).
/// Each node's decision is written at the foot of its lifeline.
///
/// Instants are spaced by at least a minimum gap plus a share in proportion to elapsed time;
/// when times are missing or too coarse to order the calls, calls are drawn in order of start.
pub fn lamport_svg(
    nodes: &[String],
    events: &[Event],
    traitors: &[String],
    decisions: &BTreeMap<String, String>,
    title: &str,
) -> String {
    let lanes = lanes(nodes, events, decisions);
    let x_of: HashMap<&str, f64> = lanes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), LEFT + i as f64 * COLUMN))
        .collect();
    let is_traitor = |n: &str| traitors.iter().any(|t| t == n);
    let (rows, last) = timeline(events);
    let bottom = last + 24.0;
    let width = (2.0 * LEFT + lanes.len().saturating_sub(1) as f64 * COLUMN).max(420.0);
    let height = bottom + 44.0;

    let mut out = String::new();
    svg_open(&mut out, width, height, title);
    out.push_str(
        "<defs>\n\
         <marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"9\" \
         markerHeight=\"9\" markerUnits=\"userSpaceOnUse\" orient=\"auto-start-reverse\">\
         <path d=\"M0,0 L10,5 L0,10 z\" fill=\"context-stroke\"/></marker>\n\
         <style>\n\
         .lifeline { stroke: #999; stroke-width: 1.5; }\n\
         .msg { stroke: #222; stroke-width: 1.3; fill: none; }\n\
         .msg.traitor { stroke: crimson; }\n\
         .msg.fault { stroke-dasharray: 5 4; }\n\
         .label { font-size: 11px; fill: #222; paint-order: stroke; stroke: white; \
         stroke-width: 3px; stroke-linejoin: round; }\n\
         .label.traitor { fill: crimson; }\n\
         .node { font-size: 13px; font-weight: bold; fill: #222; }\n\
         .node.traitor, .decision.traitor { fill: crimson; }\n\
         .decision { font-size: 12px; fill: #222; }\n\
         .legend { font-size: 11px; fill: #666; }\n\
         </style>\n\
         </defs>\n",
    );
    let _ = writeln!(
        out,
        "<text x=\"12\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{}</text>",
        esc(title)
    );
    let _ = writeln!(
        out,
        "<text class=\"legend\" x=\"12\" y=\"42\">time flows down; {} calls; \
         <tspan fill=\"{TRAITOR}\">crimson: sent by a traitor</tspan>; dashed: failed call</text>",
        events.len()
    );

    for (i, name) in lanes.iter().enumerate() {
        let x = LEFT + i as f64 * COLUMN;
        let traitor = is_traitor(name);
        let class = if traitor { "node traitor" } else { "node" };
        let shown = esc(&shorten(name, NAME_CHARS));
        let tag = if traitor {
            format!("<tspan x=\"{x:.1}\" dy=\"14\" font-size=\"11\">(traitor)</tspan>")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "<text class=\"{class}\" data-node=\"{node}\" x=\"{x:.1}\" y=\"68\" \
             text-anchor=\"middle\">{shown}{tag}</text>",
            node = esc(name)
        );
        let _ = writeln!(
            out,
            "<line class=\"lifeline\" data-node=\"{}\" x1=\"{x:.1}\" y1=\"{TOP:.1}\" \
             x2=\"{x:.1}\" y2=\"{bottom:.1}\"/>",
            esc(name)
        );
        if let Some(d) = decisions.get(name) {
            let class = if traitor {
                "decision traitor"
            } else {
                "decision"
            };
            let _ = writeln!(
                out,
                "<text class=\"{class}\" data-node=\"{}\" x=\"{x:.1}\" y=\"{:.1}\" \
                 text-anchor=\"middle\">decided {}</text>",
                esc(name),
                bottom + 18.0,
                esc(&shorten(d, LABEL_CHARS))
            );
        }
    }

    for (e, &(y1, y2)) in events.iter().zip(&rows) {
        let traitor = is_traitor(&e.from);
        let mut class = String::from("msg");
        if traitor {
            class.push_str(" traitor");
        }
        if e.fault.is_some() {
            class.push_str(" fault");
        }
        let label_class = if traitor { "label traitor" } else { "label" };
        let (x1, x2) = (x_of[e.from.as_str()], x_of[e.to.as_str()]);
        let mut text = shorten(label(e), LABEL_CHARS);
        if e.fault.is_some() {
            text.push_str(" ✗");
        }
        let ends = format!(
            "data-from=\"{}\" data-to=\"{}\" marker-end=\"url(#arrow)\"",
            esc(&e.from),
            esc(&e.to)
        );
        let _ = write!(out, "<g class=\"call\"><title>{}</title>", esc(&tooltip(e)));
        if e.from == e.to {
            let y2 = y2.max(y1 + 12.0);
            let _ = write!(
                out,
                "<path class=\"{class}\" {ends} d=\"M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} \
                 {x1:.1},{y2:.1}\"/><text class=\"{label_class}\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x1 + 40.0,
                x1 + 40.0,
                x1 + 34.0,
                (y1 + y2) / 2.0 + 4.0,
                esc(&text)
            );
        } else {
            let _ = write!(
                out,
                "<line class=\"{class}\" {ends} x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" \
                 y2=\"{y2:.1}\"/><text class=\"{label_class}\" x=\"{:.1}\" y=\"{:.1}\" \
                 text-anchor=\"middle\">{}</text>",
                (x1 + x2) / 2.0,
                (y1 + y2) / 2.0 - 3.0,
                esc(&text)
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

/// `s` made safe for a Mermaid label or participant alias: `;` as `,`, `#` and line breaks
/// and other control characters as spaces, `<` and `>` as `‹` and `›` (Mermaid reads labels
/// as HTML), spaces collapsed, at most [`LABEL_CHARS`] characters, never empty.
fn mermaid_text(s: &str) -> String {
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
    let joined = shorten(&words.join(" "), LABEL_CHARS);
    if joined.is_empty() {
        "?".to_string()
    } else {
        joined
    }
}

/// The calls as a Mermaid `sequenceDiagram`.
///
/// Participants are declared in lane order (as in [`lamport_svg`]) under generated ids
/// (`n0`, `n1`, ...) with the node's name as alias, so any name parses; traitors are marked
/// "(traitor)". Then one arrow line per call in order of start: `A->>B: value`, or
/// `A--xB: value (failed: ...)` for a failed call; consecutive calls sent by traitors are
/// shaded by a `rect` block. Last, a `Note over` per decision. Labels are sanitised (no `;`,
/// `#`, `<`, `>` or line breaks).
pub fn mermaid(
    nodes: &[String],
    events: &[Event],
    traitors: &[String],
    decisions: &BTreeMap<String, String>,
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
            None => {
                let _ = writeln!(out, "{indent}{from}->>{to}: {}", mermaid_text(label(e)));
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

/// Rebuild a lieutenant's OM(`m`) evaluation tree from a run's trace: every `om_message`
/// delivered to `lieutenant` (no fault), in order of start, is fed to a fresh
/// [`OmRun`] among `nodes` with this `commander`, and its [`OmRun::tree`] returned.
/// `events` should hold one run only; messages the run refuses are skipped, as the node
/// refused them too. An error when the run itself is invalid (unknown names, `m` too large).
pub fn om_tree_from_events(
    lieutenant: &str,
    commander: &str,
    nodes: &[String],
    m: usize,
    events: &[Event],
) -> Result<Vec<TreeNode>, String> {
    let mut run = OmRun::new(lieutenant, commander, nodes, m)?;
    let mut mine: Vec<&Event> = events
        .iter()
        .filter(|e| e.method == "om_message" && e.to == lieutenant && e.fault.is_none())
        .collect();
    mine.sort_by_key(|e| e.start_us);
    for e in mine {
        if let Some(v) = e.value() {
            let _ = run.receive(&e.path(), v);
        }
    }
    Ok(run.tree())
}

/// One lieutenant's OM(`m`) evaluation tree (as [`OmRun::tree`] lists it) as a standalone SVG
/// document.
///
/// The root `[commander]` is at the top and each path length is one level below (labelled
/// with its round on the left), with an edge from each path to its extensions. Each path is
/// exactly one `<g class="tree-node" data-path="P>Q">` box showing the path (`P>Q`), the
/// value received and the majority computed there (`recv attack / maj attack`; a missing
/// message shows as `recv missing (retreat)`, in a dashed box). Boxes whose majority differs
/// from what was received have a crimson border; the root also shows the decision.
pub fn tree_svg(lieutenant: &str, tree: &[TreeNode], m: usize) -> String {
    const BOX_H: f64 = 40.0;
    const LEVEL_H: f64 = 80.0;
    const MARGIN: f64 = 90.0;
    const HEAD: f64 = 78.0;

    let decision = tree.first().map(|t| t.value.as_str());
    let title = match decision {
        Some(d) => format!("OM({m}) evaluation tree of {lieutenant}: decides {d}"),
        None => format!("OM({m}) evaluation tree of {lieutenant}: nothing to evaluate"),
    };
    let texts: Vec<(String, String)> = tree
        .iter()
        .map(|t| {
            let recv = match &t.received {
                Some(v) => shorten(v, LABEL_CHARS / 2),
                None => "missing (retreat)".to_string(),
            };
            (
                shorten(&t.path.join(">"), LABEL_CHARS + 4),
                format!("recv {recv} / maj {}", shorten(&t.value, LABEL_CHARS / 2)),
            )
        })
        .collect();
    let widest = texts
        .iter()
        .map(|(a, b)| a.chars().count().max(b.chars().count()))
        .max()
        .unwrap_or(0);
    let box_w = (widest as f64 * 6.6 + 16.0).clamp(110.0, 300.0);
    let slot = box_w + 14.0;

    // Parents and children from the paths; a path whose parent is absent starts a new root.
    let index: HashMap<&[String], usize> = tree
        .iter()
        .enumerate()
        .map(|(i, t)| (t.path.as_slice(), i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); tree.len()];
    let mut roots = Vec::new();
    for (i, t) in tree.iter().enumerate() {
        let parent = t
            .path
            .split_last()
            .and_then(|(_, prefix)| index.get(prefix))
            .filter(|&&p| p != i);
        match parent {
            Some(&p) => children[p].push(i),
            None => roots.push(i),
        }
    }
    // Leaves take consecutive slots; a parent sits over the middle of its children.
    let mut x = vec![0.0; tree.len()];
    let mut next = 0usize;
    let mut stack: Vec<(usize, bool)> = roots.iter().rev().map(|&r| (r, false)).collect();
    while let Some((i, done)) = stack.pop() {
        if children[i].is_empty() {
            x[i] = MARGIN + next as f64 * slot + box_w / 2.0;
            next += 1;
        } else if done {
            let (a, b) = (children[i][0], children[i][children[i].len() - 1]);
            x[i] = (x[a] + x[b]) / 2.0;
        } else {
            stack.push((i, true));
            stack.extend(children[i].iter().rev().map(|&c| (c, false)));
        }
    }
    let min_len = tree.iter().map(|t| t.path.len()).min().unwrap_or(1);
    let levels = tree
        .iter()
        .map(|t| t.path.len() - min_len + 1)
        .max()
        .unwrap_or(0);
    let y_of = |t: &TreeNode| HEAD + (t.path.len() - min_len) as f64 * LEVEL_H;

    let width = (MARGIN + next as f64 * slot + 20.0).max(600.0);
    let height = HEAD + levels.saturating_sub(1) as f64 * LEVEL_H + BOX_H + 36.0;
    let mut out = String::new();
    svg_open(&mut out, width, height, &title);
    out.push_str(
        "<style>\n\
         .edge { stroke: #999; stroke-width: 1.2; }\n\
         .box { fill: #f4f4f4; stroke: #555; stroke-width: 1.2; }\n\
         .box.attack { fill: #e3f4e6; }\n\
         .box.retreat { fill: #fdf0dc; }\n\
         .box.missing { stroke-dasharray: 4 3; }\n\
         .box.outvoted { stroke: crimson; stroke-width: 2; }\n\
         .path { font-size: 12px; font-weight: bold; fill: #222; }\n\
         .values { font-size: 11px; fill: #222; }\n\
         .level { font-size: 11px; fill: #666; }\n\
         </style>\n",
    );
    let _ = writeln!(
        out,
        "<text x=\"12\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{}</text>",
        esc(&title)
    );
    let _ = writeln!(
        out,
        "<text class=\"level\" x=\"12\" y=\"42\">recv: value received for the path \
         (missing counts as retreat); maj: the majority computed there</text>\n\
         <text class=\"level\" x=\"12\" y=\"56\">one level per round; a crimson border: \
         the majority differs from what was received</text>"
    );
    for level in 0..levels {
        let round = min_len + level;
        let _ = writeln!(
            out,
            "<text class=\"level\" x=\"12\" y=\"{:.1}\">round {round}</text>",
            HEAD + level as f64 * LEVEL_H + BOX_H / 2.0 + 4.0
        );
    }
    for (i, t) in tree.iter().enumerate() {
        for &c in &children[i] {
            let _ = writeln!(
                out,
                "<line class=\"edge\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
                x[i],
                y_of(t) + BOX_H,
                x[c],
                y_of(&tree[c])
            );
        }
    }
    for (i, (t, (path, values))) in tree.iter().zip(&texts).enumerate() {
        let mut class = String::from("box");
        if t.value == "attack" || t.value == "retreat" {
            class.push(' ');
            class.push_str(&t.value);
        }
        if t.received.is_none() {
            class.push_str(" missing");
        }
        if t.received.as_deref().unwrap_or("retreat") != t.value {
            class.push_str(" outvoted");
        }
        let root = roots.first() == Some(&i);
        let h = if root { BOX_H + 16.0 } else { BOX_H };
        let (cx, y) = (x[i], y_of(t));
        let tip = format!(
            "{}: received {}, value {}",
            t.path.join(">"),
            t.received
                .as_deref()
                .unwrap_or("nothing (counts as retreat)"),
            t.value
        );
        let _ = write!(
            out,
            "<g class=\"tree-node\" data-path=\"{}\"><title>{}</title>\
             <rect class=\"{class}\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{box_w:.1}\" \
             height=\"{h:.1}\" rx=\"5\"/>\
             <text class=\"path\" x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text class=\"values\" x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            esc(&t.path.join(">")),
            esc(&tip),
            cx - box_w / 2.0,
            y + 16.0,
            esc(path),
            y + 32.0,
            esc(values)
        );
        if root {
            let _ = write!(
                out,
                "<text class=\"path\" x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">\
                 {} decides {}</text>",
                y + 48.0,
                esc(&shorten(lieutenant, NAME_CHARS)),
                esc(&shorten(&t.value, LABEL_CHARS))
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::events::Event as Xml;

    /// Every element of a well-formed document: (name, attributes, text inside it).
    fn elements(doc: &str) -> Vec<(String, HashMap<String, String>, String)> {
        let mut reader = quick_xml::Reader::from_str(doc);
        reader.config_mut().check_end_names = true;
        let mut all = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        loop {
            let event = reader.read_event().expect("well-formed");
            let text = match event {
                Xml::Start(ref s) | Xml::Empty(ref s) => {
                    let attrs = s
                        .attributes()
                        .map(|a| {
                            let a = a.expect("attribute");
                            let v = a
                                .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                .expect("value")
                                .into_owned();
                            (a.key.into_inner().to_string(), v)
                        })
                        .collect();
                    all.push((s.name().into_inner().to_string(), attrs, String::new()));
                    if matches!(event, Xml::Start(_)) {
                        open.push(all.len() - 1);
                    }
                    continue;
                }
                Xml::End(_) => {
                    open.pop();
                    continue;
                }
                Xml::Text(t) => t.xml10_content().into_owned(),
                Xml::GeneralRef(r) => match r.resolve_char_ref().expect("char ref") {
                    Some(c) => c.to_string(),
                    None => match r.as_ref() {
                        "lt" => "<",
                        "gt" => ">",
                        "amp" => "&",
                        "quot" => "\"",
                        "apos" => "'",
                        other => panic!("unknown entity {other}"),
                    }
                    .to_string(),
                },
                Xml::Eof => break,
                _ => continue,
            };
            for &i in &open {
                all[i].2.push_str(&text);
            }
        }
        assert!(open.is_empty(), "unclosed elements");
        all
    }

    fn ev(from: &str, to: &str, path: &[&str], value: &str, start: u64, end: u64) -> Event {
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
    fn escaping_and_shortening() {
        assert_eq!(esc("<&>\"'"), "&lt;&amp;&gt;&quot;&apos;");
        assert_eq!(esc("a\nb\u{0}c\u{FFFF}"), "a b\u{FFFD}c\u{FFFD}");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("ééé", 3), "ééé");
        assert_eq!(mermaid_text("a;b#c\nd<e>"), "a,b c d‹e›");
        assert_eq!(mermaid_text(" \n"), "?");
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
    fn rows_keep_a_minimum_gap_and_fall_back_to_order() {
        // Times: one instant a microsecond after another still gets its own row.
        let events = [
            ev("P", "Q", &["P"], "a", 1_000, 1_001),
            ev("P", "R", &["P"], "a", 1_002, 900_000),
        ];
        let (rows, _) = timeline(&events);
        assert!(rows[0].1 - rows[0].0 >= GAP);
        assert!(rows[1].0 - rows[0].1 >= GAP);
        assert!(
            rows[1].1 - rows[1].0 > SPREAD * 0.9,
            "a long call looks long"
        );
        // No usable times: one row per call, in order of start.
        let same = [
            ev("P", "Q", &["P"], "a", 5, 5),
            ev("P", "R", &["P"], "a", 5, 5),
            ev("Q", "R", &["P", "Q"], "a", 0, 0),
        ];
        let (rows, _) = timeline(&same);
        assert_eq!(rows[2].0 + ROW, rows[0].0);
        assert_eq!(rows[0].0 + ROW, rows[1].0);
        assert!(rows.iter().all(|(a, b)| b > a));
    }

    #[test]
    fn lamport_basics() {
        let mut failed = ev("Q", "Q", &["P", "Q"], "x<y", 30, 40);
        failed.fault = Some("refused".into());
        let events = [ev("P", "Q", &["P"], "attack", 10, 20), failed];
        let decisions = BTreeMap::from([("Q".to_string(), "attack".to_string())]);
        let svg = lamport_svg(&names("P,Q"), &events, &names("Q"), &decisions, "t&t");
        let els = elements(&svg);
        assert_eq!(els[0].0, "svg");
        assert_eq!(els[0].1["xmlns"], "http://www.w3.org/2000/svg");
        let msgs: Vec<_> = els
            .iter()
            .filter(|e| e.1.get("class").is_some_and(|c| c.starts_with("msg")))
            .collect();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].0, "line");
        assert_eq!(msgs[1].0, "path", "a self-call is a loop");
        assert_eq!(msgs[1].1["class"], "msg traitor fault");
        assert!(els.iter().any(|e| e.2 == "x<y ✗"));
        assert!(els.iter().any(|e| e.2 == "decided attack"));
        assert!(els.iter().any(|e| e.2 == "Q(traitor)"));
        assert_eq!(els.iter().filter(|e| e.0 == "marker").count(), 1);
    }

    #[test]
    fn empty_pictures_are_still_documents() {
        let none = BTreeMap::new();
        let svg = lamport_svg(&[], &[], &[], &none, "");
        assert!(elements(&svg).iter().all(|e| e.0 != "line"));
        assert_eq!(mermaid(&[], &[], &[], &none), "sequenceDiagram\n");
        let svg = tree_svg("P", &[], 1);
        let els = elements(&svg);
        assert!(els.iter().any(|e| e.2.contains("nothing to evaluate")));
    }

    #[test]
    fn mermaid_marks_traitors_and_faults() {
        let mut failed = ev("R", "Q", &["P", "R"], "retreat", 30, 40);
        failed.fault = Some("timed out;\nagain".into());
        let events = [
            ev("P", "Q", &["P"], "attack", 10, 20),
            failed,
            ev("P", "R", &["P"], "attack", 12, 20),
        ];
        let decisions = BTreeMap::from([("Q".to_string(), "attack".to_string())]);
        let text = mermaid(&names("P,Q,R"), &events, &names("R"), &decisions);
        assert_eq!(
            text,
            "sequenceDiagram\n\
             \x20   participant n0 as P\n\
             \x20   participant n1 as Q\n\
             \x20   participant n2 as R (traitor)\n\
             \x20   n0->>n1: attack\n\
             \x20   n0->>n2: attack\n\
             \x20   rect rgb(255, 228, 225)\n\
             \x20       n2--xn1: retreat (failed: timed out, again)\n\
             \x20   end\n\
             \x20   Note over n1: decided attack\n"
        );
    }

    #[test]
    fn trees_from_events_and_their_pictures() {
        let nodes = names("P,Q,R,S");
        let events = [
            ev("P", "Q", &["P"], "attack", 1, 2),
            ev("R", "Q", &["P", "R"], "retreat", 3, 4),
            ev("S", "Q", &["P", "S"], "attack", 3, 4),
            ev("S", "R", &["P", "S"], "attack", 3, 4),
        ];
        let tree = om_tree_from_events("Q", "P", &nodes, 1, &events).unwrap();
        assert_eq!(tree.len(), 3);
        assert_eq!(tree[0].value, "attack");
        assert_eq!(tree[1].received.as_deref(), Some("retreat"));
        assert!(om_tree_from_events("Q", "X", &nodes, 1, &events).is_err());
        let svg = tree_svg("Q", &tree, 1);
        let els = elements(&svg);
        let boxes: Vec<_> = els
            .iter()
            .filter(|e| e.1.get("class").map(String::as_str) == Some("tree-node"))
            .collect();
        assert_eq!(boxes.len(), 3);
        assert_eq!(boxes[0].1["data-path"], "P");
        assert!(boxes[0].2.contains("Q decides attack"));
        assert!(boxes[1].2.contains("P>R"));
        assert!(boxes[1].2.contains("recv retreat / maj retreat"));
        assert_eq!(els.iter().filter(|e| e.0 == "line").count(), 2, "edges");
        // A root's children sit below it, the root over their middle.
        let xs: Vec<f64> = els
            .iter()
            .filter(|e| e.0 == "rect" && e.1.contains_key("rx"))
            .map(|e| e.1["x"].parse::<f64>().unwrap())
            .collect();
        assert!((xs[0] - (xs[1] + xs[2]) / 2.0).abs() < 0.2, "{xs:?}");
    }
}
