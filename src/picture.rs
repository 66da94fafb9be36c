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
/// Boxes a tree draws whole when no depth is asked for; past this, it is folded.
const TREE_LIMIT: usize = 15;
/// Levels a folded tree keeps: the root and the messages of the next round.
const FOLDED_DEPTH: usize = 2;
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
    if let Some(stored) = e.stored_us() {
        let after = stored as i128 - e.start_us as i128;
        let _ = write!(tip, "; stored by {} {after} us after sending", e.to);
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

/// Arrows an OM/SM diagram draws one by one; past this many calls each round is summarised
/// (see [`lamport_svg`]). 40 rows of [`BAND_ROW`] and the headers fit a 1080-pixel screen.
pub const DETAIL_LIMIT: usize = 40;
/// Messages of the chosen node a summary draws one by one in a round; past this many, one
/// bundled arrow per receiver.
const FOCUS_LIMIT: usize = 12;
/// Height of one arrow's row inside a round band: labels of consecutive rows never touch.
const BAND_ROW: f64 = 22.0;
/// Height of a band's header line.
const BAND_HEAD: f64 = 26.0;
/// Space below a band's content.
const BAND_FOOT: f64 = 8.0;
/// Width of a cell of a summary's count matrix (five digits fit).
const CELL_W: f64 = 34.0;
/// Height of a cell of a count matrix.
const CELL_H: f64 = 18.0;
/// Width of the sender names left of a count matrix.
const MATRIX_NAMES: f64 = 56.0;
/// Characters of a node name heading a matrix column (they fit a cell).
const CELL_CHARS: usize = 4;
/// Characters of a node name heading a matrix row.
const ROW_CHARS: usize = 7;
/// y of the node names above the lifelines.
const HEADER_Y: f64 = 76.0;

/// One arrow to draw: a call, or in a summary the bundle of a node's calls to one receiver.
struct Arrow<'a> {
    from: &'a str,
    to: &'a str,
    text: String,
    tip: String,
    traitor: bool,
    fault: bool,
    round: Option<usize>,
    /// Calls it stands for: `None` for a single call, the count for a bundle.
    bundle: Option<usize>,
    y1: f64,
    y2: f64,
    /// Where the label sits along the arrow, from 0 (start) to 1 (end): the middle, or in a
    /// round band a fixed distance below the start, so labels keep to their rows.
    label_at: f64,
    /// When it was sent and when the receiver stored it (the reply's time when the receiver
    /// did not say), microseconds.
    sent_us: u64,
    stored_us: u64,
}

impl<'a> Arrow<'a> {
    fn call(e: &'a Event, traitor: bool, y1: f64, y2: f64) -> Self {
        let mut text = shorten(label(e), LABEL_CHARS);
        if e.fault.is_some() {
            text.push_str(" ✗");
        }
        Arrow {
            from: &e.from,
            to: &e.to,
            text,
            tip: tooltip(e),
            traitor,
            fault: e.fault.is_some(),
            round: e.round(),
            bundle: None,
            y1,
            y2,
            label_at: 0.5,
            sent_us: e.start_us,
            stored_us: e.stored_us().unwrap_or(e.end_us),
        }
    }

    /// The calls `calls` (same sender and receiver) as one arrow labelled with their count and
    /// values, most frequent first.
    fn bundle(calls: &[&'a Event], traitor: bool, y1: f64, y2: f64) -> Self {
        let mut values: Vec<(&str, usize)> = Vec::new();
        for e in calls {
            let v = label(e);
            match values.iter_mut().find(|(w, _)| *w == v) {
                Some((_, n)) => *n += 1,
                None => values.push((v, 1)),
            }
        }
        values.sort_by_key(|v| std::cmp::Reverse(v.1));
        let failed = calls.iter().filter(|e| e.fault.is_some()).count();
        let listed: Vec<String> = values
            .iter()
            .map(|(v, n)| format!("{}×{n}", shorten(v, 10)))
            .collect();
        let mut text = shorten(
            &format!("{}: {}", calls.len(), listed.join(", ")),
            LABEL_CHARS,
        );
        if failed > 0 {
            let _ = write!(text, " ✗{failed}");
        }
        let (from, to) = (&calls[0].from, &calls[0].to);
        let tip = shorten(
            &format!(
                "{from} -> {to}: {} messages in round {}, {failed} failed; values: {}",
                calls.len(),
                calls[0].round().unwrap_or(0),
                values
                    .iter()
                    .map(|(v, n)| format!("{v} x{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TIP_CHARS,
        );
        Arrow {
            from,
            to,
            text,
            tip,
            traitor,
            fault: failed > 0,
            round: calls[0].round(),
            bundle: Some(calls.len()),
            y1,
            y2,
            label_at: 0.5,
            sent_us: calls.iter().map(|e| e.start_us).min().unwrap_or(0),
            stored_us: calls
                .iter()
                .map(|e| e.stored_us().unwrap_or(e.end_us))
                .max()
                .unwrap_or(0),
        }
    }

    /// The arrow as SVG: a `<g class="call">` holding the tooltip, the line (a loop for a
    /// node calling itself) and the label.
    fn draw(&self, out: &mut String, x_of: &HashMap<&str, f64>) {
        let mut class = String::from("msg");
        if self.traitor {
            class.push_str(" traitor");
        }
        if self.fault {
            class.push_str(" fault");
        }
        if self.bundle.is_some() {
            class.push_str(" bundle");
        }
        let label_class = if self.traitor {
            "label traitor"
        } else {
            "label"
        };
        let (x1, x2) = (x_of[self.from], x_of[self.to]);
        let (y1, y2) = (self.y1, self.y2);
        let mut ends = format!(
            "data-from=\"{}\" data-to=\"{}\" marker-end=\"url(#arrow)\"",
            esc(self.from),
            esc(self.to)
        );
        if let Some(n) = self.bundle {
            let _ = write!(ends, " data-count=\"{n}\"");
        }
        let round = data_round(self.round);
        let _ = write!(
            out,
            "<g class=\"call\"{round}><title>{}</title>",
            esc(&self.tip)
        );
        let text = esc(&self.text);
        if self.from == self.to {
            let y2 = y2.max(y1 + 12.0);
            let _ = write!(
                out,
                "<path class=\"{class}\" {ends} d=\"M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} \
                 {x1:.1},{y2:.1}\"/><text class=\"{label_class}\" x=\"{:.1}\" y=\"{:.1}\">{text}</text>",
                x1 + 40.0,
                x1 + 40.0,
                x1 + 34.0,
                (y1 + y2) / 2.0 + 4.0,
            );
        } else {
            let t = self.label_at;
            let _ = write!(
                out,
                "<line class=\"{class}\" {ends} x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" \
                 y2=\"{y2:.1}\"/><text class=\"{label_class}\" x=\"{:.1}\" y=\"{:.1}\" \
                 text-anchor=\"middle\">{text}</text>",
                x1 + (x2 - x1) * t,
                y1 + (y2 - y1) * t - 3.0,
            );
        }
        out.push_str("</g>\n");
    }
}

/// Where the single calls of a band end: at the height of the instant the receiver stored the
/// message (its answer; the reply's time when it has none) among the band's sending instants,
/// linear between two rows and past the last one, never less than 6 pixels below the start.
/// So an arrow ends below every message sent before it was stored and above every message
/// sent after. Labels stay a fixed distance below each arrow's start, so they keep to their
/// rows whatever the slope. Bundles keep their fixed slope.
fn place_ends(arrows: &mut [Arrow<'_>]) {
    let sends: Vec<(u64, f64)> = arrows
        .iter()
        .filter(|a| a.bundle.is_none())
        .map(|a| (a.sent_us, a.y1))
        .collect();
    if sends.windows(2).any(|w| w[1].0 < w[0].0) {
        return; // not in order of sending: leave the fixed slope
    }
    let Some(&(last_us, last_y)) = sends.last() else {
        return;
    };
    let latest = arrows
        .iter()
        .filter(|a| a.bundle.is_none())
        .map(|a| a.stored_us.max(a.sent_us))
        .max()
        .unwrap_or(last_us);
    for a in arrows
        .iter_mut()
        .filter(|a| a.bundle.is_none() && a.from != a.to)
    {
        let t = a.stored_us.max(a.sent_us);
        let i = sends.partition_point(|s| s.0 <= t).saturating_sub(1);
        let y = match sends.get(i + 1) {
            Some(&(next_us, next_y)) => {
                let (s_us, s_y) = sends[i];
                s_y + (next_y - s_y) * (t - s_us) as f64 / (next_us - s_us).max(1) as f64
            }
            None => {
                let span = latest.saturating_sub(last_us).max(1) as f64;
                last_y + BAND_ROW * 0.9 * (t.saturating_sub(last_us) as f64 / span)
            }
        };
        a.y2 = y.max(a.y1 + 6.0);
        a.label_at = (BAND_ROW * 0.3 / (a.y2 - a.y1)).min(0.5);
    }
}

/// The ` data-round="R"` attribute of an element of round `round`, or nothing.
fn data_round(round: Option<usize>) -> String {
    round
        .map(|r| format!(" data-round=\"{r}\""))
        .unwrap_or_default()
}

/// One round of an OM/SM diagram: a band across the page.
struct Band {
    /// `None`: calls that belong to no round (drawn last).
    round: Option<usize>,
    top: f64,
    height: f64,
    calls: usize,
    failed: usize,
    /// In a summary: (sent, failed) per sender lane and receiver lane.
    matrix: Option<Vec<Vec<(usize, usize)>>>,
}

/// The layout of a diagram: where each arrow goes, the round bands (none when the calls
/// have no rounds), where the lifelines end, and the node whose calls a summary draws.
struct Layout<'a> {
    arrows: Vec<Arrow<'a>>,
    bands: Vec<Band>,
    bottom: f64,
    focus: Option<&'a str>,
}

/// Calls without rounds (the original scenario): on the time line, see [`timeline`].
fn timed_layout<'a>(events: &'a [Event], is_traitor: &dyn Fn(&str) -> bool) -> Layout<'a> {
    let (rows, last) = timeline(events);
    let arrows = events
        .iter()
        .zip(rows)
        .map(|(e, (y1, y2))| Arrow::call(e, is_traitor(&e.from), y1, y2))
        .collect();
    Layout {
        arrows,
        bands: Vec::new(),
        bottom: last + 24.0,
        focus: None,
    }
}

/// The node a summary draws the messages of: `asked` when it is a lane, else the first
/// traitor among the lieutenants (the senders after round 1), else the first lieutenant.
fn focus_of<'a>(
    asked: Option<&str>,
    lanes: &'a [String],
    events: &[Event],
    is_traitor: &dyn Fn(&str) -> bool,
) -> Option<&'a str> {
    if let Some(n) = asked.and_then(|a| lanes.iter().find(|l| *l == a)) {
        return Some(n);
    }
    let relays = |n: &String| {
        events
            .iter()
            .any(|e| e.from == *n && e.round().is_some_and(|r| r > 1))
    };
    let lieutenants: Vec<&'a String> = lanes.iter().filter(|n| relays(n)).collect();
    lieutenants
        .iter()
        .find(|n| is_traitor(n))
        .or(lieutenants.first())
        .map(|n| n.as_str())
        .or(lanes.first().map(String::as_str))
}

/// Calls of OM/SM rounds: one band per round (calls without a round in a last band), one row
/// per arrow inside it in order of sending, so arrows of different rounds never cross and no
/// two labels share a row. Past [`DETAIL_LIMIT`] calls, a summary: per round the count
/// matrix of all calls and the arrows of the focus node only (bundled per receiver past
/// [`FOCUS_LIMIT`]).
fn round_layout<'a>(
    lanes: &'a [String],
    events: &'a [Event],
    is_traitor: &dyn Fn(&str) -> bool,
    asked: Option<&str>,
) -> Layout<'a> {
    let summary = events.len() > DETAIL_LIMIT;
    let focus = if summary {
        focus_of(asked, lanes, events, is_traitor)
    } else {
        None
    };
    let lane_of: HashMap<&str, usize> = lanes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut by_round: BTreeMap<usize, Vec<&Event>> = BTreeMap::new();
    for e in events {
        by_round
            .entry(e.round().unwrap_or(usize::MAX))
            .or_default()
            .push(e);
    }
    let mut arrows = Vec::new();
    let mut bands = Vec::new();
    let mut y = TOP + 8.0;
    for (round, mut calls) in by_round {
        calls.sort_by_key(|e| (e.start_us, e.stored_us().unwrap_or(e.end_us)));
        let first = arrows.len();
        let row = |k: usize| y + BAND_HEAD + k as f64 * BAND_ROW + 2.0;
        let matrix = if summary {
            let mut m = vec![vec![(0, 0); lanes.len()]; lanes.len()];
            for e in &calls {
                let cell = &mut m[lane_of[e.from.as_str()]][lane_of[e.to.as_str()]];
                cell.0 += 1;
                cell.1 += usize::from(e.fault.is_some());
            }
            let mine: Vec<&Event> = calls
                .iter()
                .copied()
                .filter(|e| Some(e.from.as_str()) == focus)
                .collect();
            if mine.len() <= FOCUS_LIMIT {
                for (k, e) in mine.into_iter().enumerate() {
                    let y1 = row(k);
                    arrows.push(Arrow::call(e, is_traitor(&e.from), y1, y1 + BAND_ROW * 0.6));
                }
            } else {
                let mut k = 0;
                for to in lanes {
                    let group: Vec<&Event> = mine.iter().copied().filter(|e| e.to == *to).collect();
                    if !group.is_empty() {
                        let y1 = row(k);
                        let traitor = is_traitor(&group[0].from);
                        arrows.push(Arrow::bundle(&group, traitor, y1, y1 + BAND_ROW * 0.6));
                        k += 1;
                    }
                }
            }
            Some(m)
        } else {
            for (k, e) in calls.iter().enumerate() {
                let y1 = row(k);
                arrows.push(Arrow::call(e, is_traitor(&e.from), y1, y1 + BAND_ROW * 0.6));
            }
            None
        };
        place_ends(&mut arrows[first..]);
        let rows_h = (arrows.len() - first) as f64 * BAND_ROW;
        let matrix_h = matrix
            .as_ref()
            .map_or(0.0, |_| (lanes.len() + 1) as f64 * CELL_H);
        let height = BAND_HEAD + rows_h.max(matrix_h) + BAND_FOOT;
        bands.push(Band {
            round: (round != usize::MAX).then_some(round),
            top: y,
            height,
            calls: calls.len(),
            failed: calls.iter().filter(|e| e.fault.is_some()).count(),
            matrix,
        });
        y += height;
    }
    Layout {
        arrows,
        bands,
        bottom: y,
        focus,
    }
}

/// A band's background, its header and, in a summary, its count matrix at `mx`.
fn draw_band(
    out: &mut String,
    band: &Band,
    lanes: &[String],
    width: f64,
    mx: f64,
    is_traitor: &dyn Fn(&str) -> bool,
) {
    let data = data_round(band.round);
    let _ = writeln!(
        out,
        "<rect class=\"band\"{data} x=\"0\" y=\"{:.1}\" width=\"{width:.0}\" height=\"{:.1}\"/>",
        band.top, band.height
    );
    let mut head = match band.round {
        Some(r) => format!("round {r}: {} messages", band.calls),
        None => format!("outside the rounds: {} calls", band.calls),
    };
    if band.failed > 0 {
        let _ = write!(head, ", {} failed", band.failed);
    }
    let _ = writeln!(
        out,
        "<text class=\"band-head\" x=\"12\" y=\"{:.1}\">{}</text>",
        band.top + 17.0,
        esc(&head)
    );
    let Some(matrix) = &band.matrix else { return };
    let top = band.top + BAND_HEAD;
    let _ = write!(out, "<g class=\"matrix\"{data}>");
    let _ = write!(
        out,
        "<text class=\"cell-head\" x=\"{mx:.1}\" y=\"{:.1}\">from\\to</text>",
        top + 12.0
    );
    for (j, name) in lanes.iter().enumerate() {
        let _ = write!(
            out,
            "<text class=\"cell-head\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            mx + MATRIX_NAMES + (j as f64 + 0.5) * CELL_W,
            top + 12.0,
            esc(&shorten(name, CELL_CHARS))
        );
    }
    for (i, (from, row)) in lanes.iter().zip(matrix).enumerate() {
        let y = top + (i + 1) as f64 * CELL_H;
        let class = if is_traitor(from) {
            "cell-head traitor"
        } else {
            "cell-head"
        };
        let _ = write!(
            out,
            "<text class=\"{class}\" x=\"{mx:.1}\" y=\"{:.1}\">{}</text>",
            y + 12.0,
            esc(&shorten(from, ROW_CHARS))
        );
        for (j, (to, &(sent, failed))) in lanes.iter().zip(row).enumerate() {
            let x = mx + MATRIX_NAMES + j as f64 * CELL_W;
            let mut class = String::from("cell");
            if sent == 0 {
                class.push_str(" empty");
            }
            if failed > 0 {
                class.push_str(" fault");
            }
            let _ = write!(
                out,
                "<g class=\"{class}\"{data} data-from=\"{}\" data-to=\"{}\" \
                 data-count=\"{sent}\" data-failed=\"{failed}\"><title>{}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" \
                 width=\"{CELL_W:.1}\" height=\"{CELL_H:.1}\"/>",
                esc(from),
                esc(to),
                esc(&format!("{from} -> {to}: {sent} messages, {failed} failed")),
            );
            if sent > 0 {
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{sent}</text>",
                    x + CELL_W / 2.0,
                    y + 13.0
                );
            }
            out.push_str("</g>");
        }
    }
    out.push_str("</g>\n");
}

/// A Lamport space-time diagram of `events` as a standalone SVG document.
///
/// One lifeline per node (`<line class="lifeline" data-node="NAME">`, `nodes` first, then any
/// other node that appears in `events` or `decisions`) under a header with its name
/// (traitors in crimson, marked "(traitor)"); time flows down. Each call is one arrow
/// (`<line class="msg">`, or `<path class="msg">` for a node calling itself) from the sender's
/// lifeline to the receiver's, labelled with the value it carried ([`Event::value`], else the
/// method) and with every detail in a tooltip (for OM/SM messages, when the receiver stored
/// it). Arrows sent by traitors are crimson (class `msg traitor`); failed calls are dashed
/// (class `msg fault`). Each node's decision is written at the foot of its lifeline.
///
/// Calls of OM/SM rounds are drawn round by round: each round is a band across the page
/// (`<rect class="band" data-round="R">`), its calls inside it one row each in order of
/// sending, so the arrows of different rounds never cross and no two labels overlap. (Within
/// a round no message causes another: relays wait for the next round.) Past
/// [`DETAIL_LIMIT`] calls the diagram is a summary, so that it stays readable: each band
/// holds a matrix counting the round's calls by sender and receiver (`<g class="cell"
/// data-count="N">`), and only the calls of one node (`focus` if given, else a traitor
/// lieutenant, else the first lieutenant), bundled per receiver (`msg bundle`) past 12 in a
/// round. The legend says what was summarised.
///
/// Other calls (the original scenario) are placed by time: instants are spaced by at least a
/// minimum gap plus a share in proportion to elapsed time; when times are missing or too
/// coarse to order the calls, calls are drawn in order of start.
pub fn lamport_svg(
    nodes: &[String],
    events: &[Event],
    traitors: &[String],
    decisions: &BTreeMap<String, String>,
    title: &str,
    focus: Option<&str>,
) -> String {
    let lanes = lanes(nodes, events, decisions);
    let x_of: HashMap<&str, f64> = lanes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), LEFT + i as f64 * COLUMN))
        .collect();
    let is_traitor = |n: &str| traitors.iter().any(|t| t == n);
    let layout = if events.iter().any(|e| e.round().is_some()) {
        round_layout(&lanes, events, &is_traitor, focus)
    } else {
        timed_layout(events, &is_traitor)
    };
    let bottom = layout.bottom;
    let last_x = LEFT + lanes.len().saturating_sub(1) as f64 * COLUMN;
    let matrix_x = last_x + 70.0;
    let mut width = (last_x + LEFT).max(420.0);
    if layout.bands.iter().any(|b| b.matrix.is_some()) {
        width = width.max(matrix_x + MATRIX_NAMES + lanes.len() as f64 * CELL_W + 20.0);
    }
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
         .msg.bundle { stroke-width: 2.6; }\n\
         .label { font-size: 11px; fill: #222; paint-order: stroke; stroke: white; \
         stroke-width: 3px; stroke-linejoin: round; }\n\
         .label.traitor { fill: crimson; }\n\
         .node { font-size: 13px; font-weight: bold; fill: #222; }\n\
         .node.traitor, .decision.traitor { fill: crimson; }\n\
         .decision { font-size: 12px; fill: #222; }\n\
         .legend { font-size: 11px; fill: #666; }\n\
         .band { fill: #f7f7f7; stroke: #ddd; }\n\
         .band-head { font-size: 11px; font-weight: bold; fill: #555; paint-order: stroke; \
         stroke: #f7f7f7; stroke-width: 4px; stroke-linejoin: round; }\n\
         .cell rect { fill: #eef3fb; stroke: #ccd; }\n\
         .cell.empty rect { fill: white; }\n\
         .cell.fault rect { stroke: crimson; stroke-dasharray: 3 2; }\n\
         .cell text, .cell-head { font-size: 10px; fill: #222; }\n\
         .cell-head.traitor { fill: crimson; }\n\
         </style>\n\
         </defs>\n",
    );
    let _ = writeln!(
        out,
        "<text x=\"12\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{}</text>",
        esc(title)
    );
    let flow = if layout.bands.is_empty() {
        "time flows down"
    } else {
        "time flows down, one band per round (in a round, in order of sending)"
    };
    let _ = writeln!(
        out,
        "<text class=\"legend\" x=\"12\" y=\"42\">{flow}; {} calls; \
         <tspan fill=\"{TRAITOR}\">crimson: sent by a traitor</tspan>; dashed: failed call</text>",
        events.len()
    );
    if let Some(f) = layout.focus {
        let _ = writeln!(
            out,
            "<text class=\"legend summary\" x=\"12\" y=\"56\">summary of {} calls: arrows are \
             only those sent by {} (one per receiver past {FOCUS_LIMIT} in a round; --focus \
             NODE picks another); each round's matrix counts all of them, sender by row, \
             receiver by column</text>",
            events.len(),
            esc(&shorten(f, NAME_CHARS)),
        );
    }
    for band in &layout.bands {
        draw_band(&mut out, band, &lanes, width, matrix_x, &is_traitor);
    }

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
            "<text class=\"{class}\" data-node=\"{node}\" x=\"{x:.1}\" y=\"{HEADER_Y:.1}\" \
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
    for arrow in &layout.arrows {
        arrow.draw(&mut out, &x_of);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
