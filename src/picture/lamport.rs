//! The Lamport space-time diagram of a run's calls ([`lamport_svg`]): lifelines, one arrow
//! per call, laid out on a time line (the original scenario) or round by round in bands
//! (OM/SM), summarised past [`DETAIL_LIMIT`] calls.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use super::svg::{esc, svg_open};
use super::{LABEL_CHARS, NAME_CHARS, is_denied, is_ignored, label, lanes, shorten};
use crate::trace::Event;

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

/// The tooltip of an arrow: everything known about the call.
fn tooltip(e: &Event) -> String {
    let mut tip = format!("{} -> {}: {}", e.from, e.to, e.method);
    if let Some(path) = e.path().filter(|p| !p.is_empty()) {
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

/// Arrows an OM/SM diagram draws one by one; past this many calls each round is summarised
/// (see [`lamport_svg`]). 40 rows of `BAND_ROW` and the headers fit a 1080-pixel screen.
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
    /// A send the sender refused: a stub that stops short of the receiver.
    denied: bool,
    /// A message the receiver ignored: marked at its end.
    ignored: bool,
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
        let denied = is_denied(e);
        let mut text = if denied {
            format!("denied to {}", shorten(&e.to, NAME_CHARS))
        } else {
            shorten(label(e), LABEL_CHARS)
        };
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
            denied,
            ignored: is_ignored(e),
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
            denied: false,
            ignored: calls.iter().any(|e| is_ignored(e)),
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
        if self.denied {
            self.draw_stub(out, &class, label_class, x1, x2);
        } else if self.from == self.to {
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
        if self.ignored {
            // Beyond the receiver's lifeline, away from the sender.
            let away = if x2 < x1 { -1.0 } else { 1.0 };
            let anchor = if away < 0.0 { "end" } else { "start" };
            let _ = write!(
                out,
                "<g class=\"ignored\" data-node=\"{}\" data-from=\"{}\"><circle cx=\"{x2:.1}\" \
                 cy=\"{y2:.1}\" r=\"4.5\"/><text x=\"{:.1}\" y=\"{:.1}\" \
                 text-anchor=\"{anchor}\">ignored</text></g>",
                esc(self.to),
                esc(self.from),
                x2 + away * 8.0,
                y2 + 4.0,
            );
        }
        out.push_str("</g>\n");
    }

    /// A refused send: a short level stub from the sender towards the receiver, ended by a
    /// bar (nothing left the sender), labelled "denied to" the receiver.
    fn draw_stub(&self, out: &mut String, class: &str, label_class: &str, x1: f64, x2: f64) {
        let toward = if x2 < x1 { -1.0 } else { 1.0 };
        let end = x1 + toward * STUB.min((x2 - x1).abs() * 0.45);
        // The label starts clear of the sender's lifeline, on the stub's side.
        let anchor = if toward < 0.0 { "end" } else { "start" };
        let y = self.y1;
        let _ = write!(
            out,
            "<line class=\"{class} denied\" data-from=\"{}\" data-to=\"{}\" x1=\"{x1:.1}\" \
             y1=\"{y:.1}\" x2=\"{end:.1}\" y2=\"{y:.1}\"/><line class=\"stop\" x1=\"{end:.1}\" \
             y1=\"{:.1}\" x2=\"{end:.1}\" y2=\"{:.1}\"/><text class=\"{label_class}\" \
             x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            esc(self.from),
            esc(self.to),
            y - 5.0,
            y + 5.0,
            x1 + toward * 6.0,
            y - 6.0,
            esc(&self.text),
        );
    }
}

/// Length of the stub of a refused send.
const STUB: f64 = 56.0;

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
        let matrix = summary.then(|| count_matrix(&calls, lanes, &lane_of));
        let rows = if summary {
            focus_rows(&calls, focus, lanes)
        } else {
            calls.iter().copied().map(Row::Call).collect()
        };
        let mut drawn = band_arrows(&rows, y + BAND_HEAD, is_traitor);
        place_ends(&mut drawn);
        let rows_h = drawn.len() as f64 * BAND_ROW;
        arrows.extend(drawn);
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

/// A round's calls counted by sender (row) and receiver (column), in lane order: (sent,
/// failed) per cell.
fn count_matrix(
    calls: &[&Event],
    lanes: &[String],
    lane_of: &HashMap<&str, usize>,
) -> Vec<Vec<(usize, usize)>> {
    let mut m = vec![vec![(0, 0); lanes.len()]; lanes.len()];
    for e in calls {
        let cell = &mut m[lane_of[e.from.as_str()]][lane_of[e.to.as_str()]];
        cell.0 += 1;
        cell.1 += usize::from(e.fault.is_some());
    }
    m
}

/// What one row of a band draws: a call, or in a summary a bundle of calls to one receiver.
enum Row<'a> {
    Call(&'a Event),
    Bundle(Vec<&'a Event>),
}

/// What a summary draws of a round: the calls sent by `focus`, one arrow each, or past
/// [`FOCUS_LIMIT`] one bundle per receiver (in lane order), so a round keeps to a few rows.
fn focus_rows<'a>(calls: &[&'a Event], focus: Option<&str>, lanes: &[String]) -> Vec<Row<'a>> {
    let mine: Vec<&Event> = calls
        .iter()
        .copied()
        .filter(|e| Some(e.from.as_str()) == focus)
        .collect();
    if mine.len() <= FOCUS_LIMIT {
        return mine.into_iter().map(Row::Call).collect();
    }
    lanes
        .iter()
        .map(|to| {
            mine.iter()
                .copied()
                .filter(|e| e.to == *to)
                .collect::<Vec<_>>()
        })
        .filter(|group| !group.is_empty())
        .map(Row::Bundle)
        .collect()
}

/// One arrow per row, from `top` down. Each slopes down a fixed amount until [`place_ends`]
/// moves its end.
fn band_arrows<'a>(
    rows: &[Row<'a>],
    top: f64,
    is_traitor: &dyn Fn(&str) -> bool,
) -> Vec<Arrow<'a>> {
    rows.iter()
        .enumerate()
        .map(|(k, row)| {
            let y1 = top + k as f64 * BAND_ROW + 2.0;
            let y2 = y1 + BAND_ROW * 0.6;
            match row {
                Row::Call(e) => Arrow::call(e, is_traitor(&e.from), y1, y2),
                Row::Bundle(group) => Arrow::bundle(group, is_traitor(&group[0].from), y1, y2),
            }
        })
        .collect()
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
    if let Some(matrix) = &band.matrix {
        draw_matrix(out, band, matrix, lanes, mx, is_traitor);
    }
}

/// A band's count matrix with its left edge at `mx`: a header row of receivers, then per
/// sender its name and one cell per receiver (the count, the failures in the tooltip).
fn draw_matrix(
    out: &mut String,
    band: &Band,
    matrix: &[Vec<(usize, usize)>],
    lanes: &[String],
    mx: f64,
    is_traitor: &dyn Fn(&str) -> bool,
) {
    let data = data_round(band.round);
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
/// A send the sender refused (a `send_message` answered `P denied communication to R`) is a
/// short level stub ended by a bar (`<line class="msg denied">`, no arrowhead), labelled
/// "denied to R"; a message the receiver ignored (answered `P (faulty) ignored message from
/// Q`) has a circle and "ignored" at its end (`<g class="ignored" data-node="P">`). A legend
/// line explains both when present, and `note` (where the calls come from, when not all from
/// the nodes' trace) is a legend line of its own; the picture widens to fit them.
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
    note: Option<&str>,
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
    // The count matrices stand right of the last lifeline.
    let last_x = LEFT + lanes.len().saturating_sub(1) as f64 * COLUMN;
    let matrix_x = last_x + 70.0;
    let mut width = (last_x + LEFT).max(420.0);
    if layout.bands.iter().any(|b| b.matrix.is_some()) {
        width = width.max(matrix_x + MATRIX_NAMES + lanes.len() as f64 * CELL_W + 20.0);
    }
    // The legend lines fit (11-pixel text, about 6 pixels a character).
    let legend = [marks(&layout), note.map(str::to_string)];
    let longest = legend.iter().flatten().map(|l| l.chars().count()).max();
    width = width.max(24.0 + 6.0 * longest.unwrap_or(0) as f64);
    let height = layout.bottom + 44.0;

    let mut out = String::new();
    svg_open(&mut out, width, height, title);
    out.push_str(DEFS);
    draw_legend(&mut out, title, &layout, events.len(), note);
    for band in &layout.bands {
        draw_band(&mut out, band, &lanes, width, matrix_x, &is_traitor);
    }
    draw_lanes(&mut out, &lanes, decisions, layout.bottom, &is_traitor);
    for arrow in &layout.arrows {
        arrow.draw(&mut out, &x_of);
    }
    out.push_str("</svg>\n");
    out
}

/// The arrowhead (defined once, coloured like the line it ends) and the styles.
const DEFS: &str = "<defs>\n\
     <marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"9\" \
     markerHeight=\"9\" markerUnits=\"userSpaceOnUse\" orient=\"auto-start-reverse\">\
     <path d=\"M0,0 L10,5 L0,10 z\" fill=\"context-stroke\"/></marker>\n\
     <style>\n\
     .lifeline { stroke: #999; stroke-width: 1.5; }\n\
     .msg { stroke: #222; stroke-width: 1.3; fill: none; }\n\
     .msg.traitor { stroke: crimson; }\n\
     .msg.fault { stroke-dasharray: 5 4; }\n\
     .msg.bundle { stroke-width: 2.6; }\n\
     .msg.denied { stroke-width: 2.2; }\n\
     .stop { stroke: crimson; stroke-width: 2.2; }\n\
     .ignored circle { fill: white; stroke: crimson; stroke-width: 1.5; }\n\
     .ignored text { font-size: 10px; font-style: italic; fill: crimson; }\n\
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
     </defs>\n";

/// The legend line of refused sends and ignored messages, when there are any.
fn marks(layout: &Layout<'_>) -> Option<String> {
    let mut marks = Vec::new();
    if layout.arrows.iter().any(|a| a.denied) {
        marks.push("short stub ending in a bar, \"denied\": a send the sender refused");
    }
    if layout.arrows.iter().any(|a| a.ignored) {
        marks.push("circle, \"ignored\": the receiver dropped the message");
    }
    (!marks.is_empty()).then(|| marks.join("; "))
}

/// The title, how to read the picture, where its calls come from (`note`), and for a summary
/// what it leaves out.
fn draw_legend(
    out: &mut String,
    title: &str,
    layout: &Layout<'_>,
    calls: usize,
    note: Option<&str>,
) {
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
        "<text class=\"legend\" x=\"12\" y=\"42\">{flow}; {calls} calls; \
         <tspan fill=\"{TRAITOR}\">crimson: sent by a traitor</tspan>; dashed: failed call</text>",
    );
    let mut y = 56;
    if let Some(marks) = marks(layout) {
        let _ = writeln!(
            out,
            "<text class=\"legend marks\" x=\"12\" y=\"{y}\">{}</text>",
            esc(&marks)
        );
        y += 12;
    }
    if let Some(note) = note {
        let _ = writeln!(
            out,
            "<text class=\"legend source\" x=\"12\" y=\"{y}\">{}</text>",
            esc(note)
        );
        y += 12;
    }
    if let Some(f) = layout.focus {
        let _ = writeln!(
            out,
            "<text class=\"legend summary\" x=\"12\" y=\"{y}\">summary of {calls} calls: arrows are \
             only those sent by {} (one per receiver past {FOCUS_LIMIT} in a round; --focus \
             NODE picks another); each round's matrix counts all of them, sender by row, \
             receiver by column</text>",
            esc(&shorten(f, NAME_CHARS)),
        );
    }
}

/// Per node: its header (name, "(traitor)"), its lifeline down to `bottom`, and its decision
/// below it.
fn draw_lanes(
    out: &mut String,
    lanes: &[String],
    decisions: &BTreeMap<String, String>,
    bottom: f64,
    is_traitor: &dyn Fn(&str) -> bool,
) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picture::tests::ev;

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
