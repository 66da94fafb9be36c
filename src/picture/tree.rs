//! One lieutenant's OM(m) evaluation tree as SVG ([`tree_svg`]), rebuilt from a trace by
//! [`om_tree_from_events`] when the run is over; large trees are folded below a depth.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::svg::{esc, svg_open};
use super::{LABEL_CHARS, NAME_CHARS, shorten};
use crate::agreement::RunError;
use crate::agreement::om::{OmRun, TreeNode};
use crate::calls::{Method, Protocol};
use crate::trace::Event;

/// Boxes a tree draws whole when no depth is asked for; past this, it is folded.
pub(crate) const TREE_LIMIT: usize = 15;
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
) -> Result<Vec<TreeNode>, RunError> {
    let mut run = OmRun::new(lieutenant, commander, nodes, m)?;
    let mut mine: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.method == Method::Message(Protocol::Om) && e.to == lieutenant && e.fault.is_none()
        })
        .collect();
    mine.sort_by_key(|e| e.start_us);
    for e in mine {
        if let (Some(v), Some(path)) = (e.value(), e.path()) {
            let _ = run.receive(&path, v);
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
    tree_svg_with(lieutenant, tree, m, depth, Unfold::DepthFlag)
}

/// What a folded tree's legend offers to draw the boxes it folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfold {
    /// `--depth N draws them all`: the command line's pictures, where the flag exists.
    DepthFlag,
    /// Nothing: the picture is shown where that flag does not exist (the live page, which
    /// says beside it what it can draw instead).
    Beside,
}

/// [`tree_svg`], its legend offering `unfold` when the tree is folded.
pub fn tree_svg_with(
    lieutenant: &str,
    tree: &[TreeNode],
    m: usize,
    depth: Option<usize>,
    unfold: Unfold,
) -> String {
    let folded = Folded::new(tree, depth);
    let kept = &folded.kept[..];
    let title = match kept.first() {
        Some(root) => format!(
            "OM({m}) evaluation tree of {lieutenant}: decides {}",
            root.value
        ),
        None => format!("OM({m}) evaluation tree of {lieutenant}: nothing to evaluate"),
    };
    let texts: Vec<BoxText> = kept.iter().map(|t| BoxText::of(t)).collect();
    let shape = TreeLayout::new(kept, &texts, folded.min_len);

    let mut out = String::new();
    svg_open(&mut out, shape.width(), shape.height(), &title);
    out.push_str(STYLE);
    draw_legend(&mut out, &title, &folded, shape.levels, unfold);
    draw_edges(&mut out, &shape, kept);
    for (i, (t, text)) in kept.iter().zip(&texts).enumerate() {
        let root = shape.roots.first() == Some(&i);
        let decides = root.then_some(lieutenant);
        let at = (shape.x[i], shape.y_of(t));
        draw_box(&mut out, t, text, at, shape.box_w, decides, folded.below(t));
    }
    out.push_str("</svg>\n");
    out
}

/// Height of a box (the root's is taller: it also says what the lieutenant decides).
const BOX_H: f64 = 40.0;
/// Vertical distance from one level to the next.
const LEVEL_H: f64 = 80.0;
/// x where the first slot starts (the round labels are left of it).
const MARGIN: f64 = 90.0;
/// y of the first level, below the title and the legend.
const HEAD: f64 = 78.0;

/// The styles of a tree picture.
const STYLE: &str = "<style>\n\
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
     </style>\n";

/// The part of a tree that is drawn: its first `depth` levels. Every deeper box is counted
/// under its ancestor at the last level drawn, so that box can say how many it hides.
struct Folded<'t> {
    /// The boxes drawn, in the tree's order.
    kept: Vec<&'t TreeNode>,
    /// Boxes folded under each path of the last level drawn.
    under: HashMap<&'t [String], usize>,
    /// Boxes folded in all.
    hidden: usize,
    /// Length of the shortest path: the root's level.
    min_len: usize,
    /// Levels drawn.
    depth: usize,
    /// Levels of the whole tree.
    all_levels: usize,
}

impl<'t> Folded<'t> {
    /// `depth` levels of `tree`; `None`: all of them up to [`TREE_LIMIT`] boxes, else
    /// [`FOLDED_DEPTH`].
    fn new(tree: &'t [TreeNode], depth: Option<usize>) -> Self {
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
        let mut under: HashMap<&[String], usize> = HashMap::new();
        for t in tree.iter().filter(|t| t.path.len() - min_len >= depth) {
            *under.entry(&t.path[..min_len + depth - 1]).or_default() += 1;
        }
        Folded {
            kept: tree
                .iter()
                .filter(|t| t.path.len() - min_len < depth)
                .collect(),
            hidden: under.values().sum(),
            under,
            min_len,
            depth,
            all_levels,
        }
    }

    /// Boxes folded below `t` (0 when it is not at the last level drawn).
    fn below(&self, t: &TreeNode) -> usize {
        self.under.get(t.path.as_slice()).copied().unwrap_or(0)
    }
}

/// The two lines of a box: the path, and what was received and the majority computed.
struct BoxText {
    path: String,
    values: String,
}

impl BoxText {
    fn of(t: &TreeNode) -> Self {
        let recv = match &t.received {
            Some(v) => shorten(v, LABEL_CHARS / 2),
            None => "missing (retreat)".to_string(),
        };
        BoxText {
            path: shorten(&t.path.join(">"), LABEL_CHARS + 4),
            values: format!("recv {recv} / maj {}", shorten(&t.value, LABEL_CHARS / 2)),
        }
    }
}

/// Where the boxes go: one width for all (the widest text's), parents and children from the
/// paths, and x by slots: leaves take consecutive slots, a parent sits over the middle of its
/// children. y is by level (path length).
struct TreeLayout {
    box_w: f64,
    /// Centre of each box.
    x: Vec<f64>,
    children: Vec<Vec<usize>>,
    /// Boxes whose parent is not drawn (the first is the tree's root).
    roots: Vec<usize>,
    /// Leaves, hence slots, across the page.
    slots: usize,
    levels: usize,
    min_len: usize,
}

impl TreeLayout {
    fn new(tree: &[&TreeNode], texts: &[BoxText], min_len: usize) -> Self {
        let widest = texts
            .iter()
            .map(|b| b.path.chars().count().max(b.values.chars().count()))
            .max()
            .unwrap_or(0);
        let box_w = (widest as f64 * 6.6 + 16.0).clamp(110.0, 300.0);
        let (children, roots) = Self::family(tree);
        let (x, slots) = Self::place(&children, &roots, box_w);
        let levels = tree
            .iter()
            .map(|t| t.path.len() - min_len + 1)
            .max()
            .unwrap_or(0);
        TreeLayout {
            box_w,
            x,
            children,
            roots,
            slots,
            levels,
            min_len,
        }
    }

    /// The children of each box and the roots, from the paths: a path whose parent is absent
    /// starts a new root.
    fn family(tree: &[&TreeNode]) -> (Vec<Vec<usize>>, Vec<usize>) {
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
        (children, roots)
    }

    /// The centre x of each box and the number of slots used: leaves take consecutive slots,
    /// a parent sits over the middle of its children (depth first, without recursion, as a
    /// tree can be deep).
    fn place(children: &[Vec<usize>], roots: &[usize], box_w: f64) -> (Vec<f64>, usize) {
        let slot = box_w + 14.0;
        let mut x = vec![0.0; children.len()];
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
        (x, next)
    }

    /// Top of the boxes of `t`'s level.
    fn y_of(&self, t: &TreeNode) -> f64 {
        HEAD + (t.path.len() - self.min_len) as f64 * LEVEL_H
    }

    fn width(&self) -> f64 {
        (MARGIN + self.slots as f64 * (self.box_w + 14.0) + 20.0).max(600.0)
    }

    fn height(&self) -> f64 {
        HEAD + self.levels.saturating_sub(1) as f64 * LEVEL_H + BOX_H + 36.0
    }
}

/// The title, what the boxes say, what was folded, and the round of each level.
fn draw_legend(out: &mut String, title: &str, folded: &Folded<'_>, levels: usize, unfold: Unfold) {
    let _ = writeln!(
        out,
        "<text x=\"12\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{}</text>",
        esc(title)
    );
    let _ = writeln!(
        out,
        "<text class=\"level\" x=\"12\" y=\"42\">recv: value received for the path \
         (missing counts as retreat); maj: the majority computed there</text>\n\
         <text class=\"level\" x=\"12\" y=\"56\">one level per round; a crimson border: \
         the majority differs from what was received</text>"
    );
    let Folded {
        hidden,
        min_len,
        depth,
        all_levels,
        ..
    } = *folded;
    if hidden > 0 {
        let offer = match unfold {
            Unfold::DepthFlag => format!(" (--depth {all_levels} draws them all)"),
            Unfold::Beside => String::new(),
        };
        let _ = writeln!(
            out,
            "<text class=\"level folded\" x=\"12\" y=\"70\">rounds {}..{} folded: {hidden} \
             boxes not drawn, counted under their ancestor{offer}</text>",
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
}

/// An edge from the bottom of each box to the top of each of its children.
fn draw_edges(out: &mut String, shape: &TreeLayout, tree: &[&TreeNode]) {
    for (i, children) in shape.children.iter().enumerate() {
        for &c in children {
            let _ = writeln!(
                out,
                "<line class=\"edge\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
                shape.x[i],
                shape.y_of(tree[i]) + BOX_H,
                shape.x[c],
                shape.y_of(tree[c])
            );
        }
    }
}

/// One box, centred on `cx` with its top at `y`: the path, the values, a tooltip; for the
/// root, what the lieutenant `decides`; for a box of the last level drawn, how many boxes are
/// folded `below` it.
fn draw_box(
    out: &mut String,
    t: &TreeNode,
    text: &BoxText,
    (cx, y): (f64, f64),
    box_w: f64,
    decides: Option<&str>,
    below: usize,
) {
    let class = box_class(t);
    let group = if below > 0 {
        "tree-node folded"
    } else {
        "tree-node"
    };
    let mut h = if decides.is_some() {
        BOX_H + 16.0
    } else {
        BOX_H
    };
    let fold_y = y + h + 10.0;
    if below > 0 {
        h += 14.0;
    }
    let tip = box_tip(t, below);
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
        esc(&text.path),
        y + 32.0,
        esc(&text.values)
    );
    if let Some(lieutenant) = decides {
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

/// The classes of a box's rectangle: its value when it is an order (the fill), `missing` when
/// no message arrived (dashed), `outvoted` when the majority differs from what was received
/// (crimson).
fn box_class(t: &TreeNode) -> String {
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
    class
}

/// A box's tooltip: the whole path and values (the box shortens them), and what is folded.
fn box_tip(t: &TreeNode, below: usize) -> String {
    let tip = format!(
        "{}: received {}, value {}",
        t.path.join(">"),
        t.received
            .as_deref()
            .unwrap_or("nothing (counts as retreat)"),
        t.value
    );
    match below {
        0 => tip,
        n => format!("{tip}; {n} boxes below it are folded"),
    }
}
