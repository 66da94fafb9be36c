//! One lieutenant's OM(m) evaluation tree as SVG ([`tree_svg`]), rebuilt from a trace by
//! [`om_tree_from_events`] when the run is over; large trees are folded below a depth.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::svg::{esc, svg_open};
use super::{LABEL_CHARS, NAME_CHARS, shorten};
use crate::agreement::om::{OmRun, TreeNode};
use crate::trace::Event;

/// Boxes a tree draws whole when no depth is asked for; past this, it is folded.
const TREE_LIMIT: usize = 15;
/// Levels a folded tree keeps: the root and the messages of the next round.
const FOLDED_DEPTH: usize = 2;

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
///
/// `depth` levels are drawn (`None`: all of them up to 15 boxes, else the root and the next
/// round's messages, as OM(2) over 7 nodes already has 26 boxes and OM(3) over 10 a
/// 67,848-pixel-wide row of leaves). Deeper boxes are folded: each box of the last level
/// drawn says how many are folded below it (class `folded`), and the legend says which
/// rounds were folded and how many boxes that is.
pub fn tree_svg(lieutenant: &str, tree: &[TreeNode], m: usize, depth: Option<usize>) -> String {
    const BOX_H: f64 = 40.0;
    const LEVEL_H: f64 = 80.0;
    const MARGIN: f64 = 90.0;
    const HEAD: f64 = 78.0;

    let min_len = tree.iter().map(|t| t.path.len()).min().unwrap_or(1);
    let all_levels = tree
        .iter()
        .map(|t| t.path.len() - min_len + 1)
        .max()
        .unwrap_or(0);
    let depth = match depth {
        Some(k) => k.max(1),
        None if tree.len() > TREE_LIMIT => FOLDED_DEPTH,
        None => all_levels,
    };
    // What is folded: every box below `depth` levels, counted under its ancestor at the
    // last level shown.
    let mut folded: HashMap<&[String], usize> = HashMap::new();
    for t in tree.iter().filter(|t| t.path.len() - min_len >= depth) {
        *folded.entry(&t.path[..min_len + depth - 1]).or_default() += 1;
    }
    let hidden: usize = folded.values().sum();
    let kept: Vec<TreeNode> = tree
        .iter()
        .filter(|t| t.path.len() - min_len < depth)
        .cloned()
        .collect();
    let folded_below = |t: &TreeNode| folded.get(t.path.as_slice()).copied().unwrap_or(0);
    let tree = &kept[..];

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
         .fold { font-size: 11px; font-style: italic; fill: #555; }\n\
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
    if hidden > 0 {
        let _ = writeln!(
            out,
            "<text class=\"level folded\" x=\"12\" y=\"70\">rounds {}..{} folded: {hidden} \
             boxes not drawn, counted under their ancestor (--depth {all_levels} draws them \
             all)</text>",
            min_len + depth,
            min_len + all_levels - 1,
        );
    }
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
        let below = folded_below(t);
        let group = if below > 0 {
            "tree-node folded"
        } else {
            "tree-node"
        };
        let mut h = if root { BOX_H + 16.0 } else { BOX_H };
        let fold_y = y_of(t) + h + 10.0;
        if below > 0 {
            h += 14.0;
        }
        let (cx, y) = (x[i], y_of(t));
        let tip = format!(
            "{}: received {}, value {}",
            t.path.join(">"),
            t.received
                .as_deref()
                .unwrap_or("nothing (counts as retreat)"),
            t.value
        );
        let tip = match below {
            0 => tip,
            n => format!("{tip}; {n} boxes below it are folded"),
        };
        let _ = write!(
            out,
            "<g class=\"{group}\" data-path=\"{}\"><title>{}</title>\
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
        if below > 0 {
            let _ = write!(
                out,
                "<text class=\"fold\" x=\"{cx:.1}\" y=\"{fold_y:.1}\" text-anchor=\"middle\">\
                 +{below} folded below</text>"
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}
