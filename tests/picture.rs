//! Pictures of runs, checked by parsing them: Lamport diagrams and OM trees as SVG (with
//! quick-xml), and Mermaid sequence diagrams as text. Pure: events are built by hand or by
//! running the OM state machines in memory, no servers.

use std::collections::{BTreeMap, HashMap};

use generals::agreement::om::{OmRun, TreeNode};
use generals::picture::{lamport_svg, mermaid, om_tree_from_events, tree_svg};
use generals::trace::Event;
use quick_xml::events::Event as Xml;

/// One element of a parsed document.
#[derive(Debug)]
struct Element {
    name: String,
    attrs: HashMap<String, String>,
    /// All text inside, references resolved.
    text: String,
    /// Names of the enclosing elements, outermost first.
    ancestors: Vec<String>,
}

impl Element {
    fn attr(&self, key: &str) -> &str {
        self.attrs.get(key).map_or("", String::as_str)
    }
    fn classes(&self) -> Vec<&str> {
        self.attr("class").split_whitespace().collect()
    }
    fn has_class(&self, class: &str) -> bool {
        self.classes().contains(&class)
    }
    fn num(&self, key: &str) -> f64 {
        self.attr(key)
            .parse()
            .unwrap_or_else(|_| panic!("{key} of {self:?}"))
    }
}

/// Parse `doc` strictly (end names checked, one root, no text outside it) and list its
/// elements in document order; panics when it is not well-formed.
fn parse(doc: &str) -> Vec<Element> {
    let mut reader = quick_xml::Reader::from_str(doc);
    reader.config_mut().check_end_names = true;
    let mut all: Vec<Element> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut roots = 0;
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed at {}: {e}", reader.error_position()));
        let text = match event {
            Xml::Start(ref s) | Xml::Empty(ref s) => {
                if open.is_empty() {
                    roots += 1;
                }
                let attrs = s
                    .attributes()
                    .map(|a| {
                        let a = a.expect("well-formed attribute");
                        let v = a
                            .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .expect("attribute value");
                        (a.key.into_inner().to_string(), v.into_owned())
                    })
                    .collect();
                let ancestors = open.iter().map(|&i| all[i].name.clone()).collect();
                all.push(Element {
                    name: s.name().into_inner().to_string(),
                    attrs,
                    text: String::new(),
                    ancestors,
                });
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
            Xml::CData(c) => c.xml10_content().into_owned(),
            Xml::GeneralRef(r) => match r.resolve_char_ref().expect("character reference") {
                Some(c) => c.to_string(),
                None => match r.as_ref() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("undefined entity &{other};"),
                }
                .to_string(),
            },
            Xml::DocType(_) => panic!("no DOCTYPE expected"),
            Xml::Eof => break,
            Xml::Decl(_) | Xml::PI(_) | Xml::Comment(_) => continue,
        };
        if open.is_empty() {
            assert!(text.trim().is_empty(), "text outside the root: {text:?}");
        }
        for &i in &open {
            all[i].text.push_str(&text);
        }
    }
    assert!(open.is_empty(), "unclosed elements");
    assert_eq!(roots, 1, "exactly one root element");
    all
}

/// The root is an SVG element in the SVG namespace with a consistent size.
fn check_svg_root(els: &[Element]) {
    let svg = &els[0];
    assert_eq!(svg.name, "svg");
    assert_eq!(svg.attr("xmlns"), "http://www.w3.org/2000/svg");
    let (w, h) = (svg.num("width"), svg.num("height"));
    assert!(w > 0.0 && h > 0.0);
    assert_eq!(svg.attr("viewBox"), format!("0 0 {w} {h}"));
}

fn names(s: &str) -> Vec<String> {
    s.split(',').map(str::to_string).collect()
}

/// An event as a trace file holds it (its outcome worked out from its answer).
fn event(json: serde_json::Value) -> Event {
    serde_json::from_value(json).unwrap()
}

/// `e` answered `fault` instead, as a trace file would hold it.
fn failing(mut e: Event, fault: &str) -> Event {
    e.result = None;
    e.fault = Some(fault.into());
    event(serde_json::to_value(&e).unwrap())
}

fn om(from: &str, to: &str, path: &[&str], value: &str, start_us: u64) -> Event {
    event(serde_json::json!({
        "run": "om-7", "from": from, "to": to, "method": "om_message",
        "args": ["om-7", path, value], "result": true,
        "start_us": start_us, "end_us": start_us + 180,
    }))
}

const NASTY: &str = "<&>\"'";
const T0: u64 = 1_700_000_000_000_000;

/// A 4-node OM(1) run, commander P: 3 round-1 and 6 round-2 calls. S is a traitor: it
/// relays a nasty value to R, and its call to Q fails.
fn om1_run() -> (Vec<String>, Vec<Event>, Vec<String>) {
    let mut events = vec![
        om("P", "Q", &["P"], "attack", T0),
        om("P", "R", &["P"], "attack", T0 + 20),
        om("P", "S", &["P"], "attack", T0 + 40),
        om("Q", "R", &["P", "Q"], "attack", T0 + 300),
        om("Q", "S", &["P", "Q"], "attack", T0 + 310),
        om("R", "Q", &["P", "R"], "attack", T0 + 330),
        om("R", "S", &["P", "R"], "attack", T0 + 345),
        om("S", "Q", &["P", "S"], "retreat", T0 + 400),
        om("S", "R", &["P", "S"], NASTY, T0 + 410),
    ];
    events[7] = failing(events[7].clone(), "timed out");
    (names("P,Q,R,S"), events, names("S"))
}

fn decisions(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// An `om_message` from `from` to `to` that started at `start_us` and ended at `end_us`.
fn om_timed(from: &str, to: &str, path: &[&str], value: &str, start_us: u64, end_us: u64) -> Event {
    Event {
        end_us,
        ..om(from, to, path, value, start_us)
    }
}

#[test]
fn lamport_basics() {
    let failed = failing(om_timed("Q", "Q", &["P", "Q"], "x<y", 30, 40), "refused");
    let events = [om_timed("P", "Q", &["P"], "attack", 10, 20), failed];
    let decided = decisions(&[("Q", "attack")]);
    let svg = lamport_svg(
        &names("P,Q"),
        &events,
        &names("Q"),
        &decided,
        "t&t",
        None,
        None,
    );
    let els = parse(&svg);
    assert_eq!(els[0].name, "svg");
    assert_eq!(els[0].attr("xmlns"), "http://www.w3.org/2000/svg");
    let msgs: Vec<&Element> = els
        .iter()
        .filter(|e| e.attr("class").starts_with("msg"))
        .collect();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].name, "line");
    assert_eq!(msgs[1].name, "path", "a self-call is a loop");
    assert_eq!(msgs[1].attr("class"), "msg traitor fault");
    assert!(els.iter().any(|e| e.text == "x<y ✗"));
    assert!(els.iter().any(|e| e.text == "decided attack"));
    assert!(els.iter().any(|e| e.text == "Q(traitor)"));
    assert_eq!(els.iter().filter(|e| e.name == "marker").count(), 1);
}

#[test]
fn empty_pictures_are_still_documents() {
    let none = BTreeMap::new();
    let svg = lamport_svg(&[], &[], &[], &none, "", None, None);
    assert!(parse(&svg).iter().all(|e| e.name != "line"));
    assert_eq!(mermaid(&[], &[], &[], &none, None), "sequenceDiagram\n");
    let svg = tree_svg("P", &[], 1, None);
    let els = parse(&svg);
    assert!(els.iter().any(|e| e.text.contains("nothing to evaluate")));
}

#[test]
fn mermaid_marks_traitors_and_faults() {
    let failed = failing(
        om_timed("R", "Q", &["P", "R"], "retreat", 30, 40),
        "timed out;\nagain",
    );
    let events = [
        om_timed("P", "Q", &["P"], "attack", 10, 20),
        failed,
        om_timed("P", "R", &["P"], "attack", 12, 20),
    ];
    let decided = decisions(&[("Q", "attack")]);
    let text = mermaid(&names("P,Q,R"), &events, &names("R"), &decided, None);
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
        om_timed("P", "Q", &["P"], "attack", 1, 2),
        om_timed("R", "Q", &["P", "R"], "retreat", 3, 4),
        om_timed("S", "Q", &["P", "S"], "attack", 3, 4),
        om_timed("S", "R", &["P", "S"], "attack", 3, 4),
    ];
    let tree = om_tree_from_events("Q", "P", &nodes, 1, &events).unwrap();
    assert_eq!(tree.len(), 3);
    assert_eq!(tree[0].value, "attack");
    assert_eq!(tree[1].received.as_deref(), Some("retreat"));
    assert!(om_tree_from_events("Q", "X", &nodes, 1, &events).is_err());
    let svg = tree_svg("Q", &tree, 1, None);
    let els = parse(&svg);
    let boxes: Vec<&Element> = els
        .iter()
        .filter(|e| e.attr("class") == "tree-node")
        .collect();
    assert_eq!(boxes.len(), 3);
    assert_eq!(boxes[0].attr("data-path"), "P");
    assert!(boxes[0].text.contains("Q decides attack"));
    assert!(boxes[1].text.contains("P>R"));
    assert!(boxes[1].text.contains("recv retreat / maj retreat"));
    assert_eq!(els.iter().filter(|e| e.name == "line").count(), 2, "edges");
    // A root's children sit below it, the root over their middle.
    let xs: Vec<f64> = els
        .iter()
        .filter(|e| e.name == "rect" && e.attrs.contains_key("rx"))
        .map(|e| e.num("x"))
        .collect();
    assert!((xs[0] - (xs[1] + xs[2]) / 2.0).abs() < 0.2, "{xs:?}");
}

#[test]
fn lamport_diagram_of_an_om1_run() {
    let (nodes, events, traitors) = om1_run();
    let decided = decisions(&[("Q", "attack"), ("R", "attack"), ("S", "retreat")]);
    let svg = lamport_svg(
        &nodes,
        &events,
        &traitors,
        &decided,
        "OM(1) <run> & co",
        None,
        None,
    );
    let els = parse(&svg);
    check_svg_root(&els);

    // Exactly one lifeline per node, in order, left to right.
    let lifelines: Vec<&Element> = els.iter().filter(|e| e.has_class("lifeline")).collect();
    let lanes: Vec<&str> = lifelines.iter().map(|e| e.attr("data-node")).collect();
    assert_eq!(lanes, ["P", "Q", "R", "S"]);
    assert!(lifelines.iter().all(|e| e.name == "line"));
    assert!(
        lifelines
            .windows(2)
            .all(|w| w[0].num("x1") < w[1].num("x1"))
    );
    let x_of: HashMap<&str, f64> = lifelines
        .iter()
        .map(|e| (e.attr("data-node"), e.num("x1")))
        .collect();
    let lifeline_bottom = lifelines[0].num("y2");

    // Headers: every name, the traitor marked.
    for n in &nodes {
        let header = els
            .iter()
            .find(|e| e.name == "text" && e.has_class("node") && e.attr("data-node") == n)
            .unwrap_or_else(|| panic!("header of {n}"));
        assert!(header.text.starts_with(n.as_str()));
        assert_eq!(header.has_class("traitor"), n == "S");
    }
    assert!(els.iter().any(|e| e.text == "S(traitor)"));

    // One arrow per call, from the sender at start to the receiver at end, down the page.
    let msgs: Vec<&Element> = els.iter().filter(|e| e.has_class("msg")).collect();
    assert_eq!(msgs.len(), events.len());
    for (m, e) in msgs.iter().zip(&events) {
        assert_eq!(m.name, "line");
        assert_eq!((m.attr("data-from"), m.attr("data-to")), (&*e.from, &*e.to));
        assert_eq!(m.num("x1"), x_of[e.from.as_str()]);
        assert_eq!(m.num("x2"), x_of[e.to.as_str()]);
        assert!(m.num("y2") > m.num("y1"), "time flows down: {m:?}");
        assert!(m.num("y2") <= lifeline_bottom);
        assert_eq!(m.attr("marker-end"), "url(#arrow)");
        assert_eq!(m.has_class("traitor"), e.from == "S", "{m:?}");
        assert_eq!(m.has_class("fault"), e.fault.is_some(), "{m:?}");
    }
    // The arrowhead is defined once.
    let markers: Vec<&Element> = els.iter().filter(|e| e.name == "marker").collect();
    assert_eq!(markers.len(), 1);
    assert_eq!(markers[0].attr("id"), "arrow");
    assert!(markers[0].ancestors.iter().any(|a| a == "defs"));
    // Readable: arrows starting at different times are well apart, even 10 us apart.
    let mut starts: Vec<f64> = msgs.iter().map(|m| m.num("y1")).collect();
    starts.sort_by(f64::total_cmp);
    assert!(starts.windows(2).all(|w| w[1] - w[0] >= 10.0), "{starts:?}");

    // Labels: the values carried, escaped on the way in and intact on the way out.
    let labels: Vec<&str> = els
        .iter()
        .filter(|e| e.has_class("label"))
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(labels.len(), events.len());
    assert_eq!(labels[0], "attack");
    assert_eq!(labels[7], "retreat ✗", "a failed call says so");
    assert_eq!(labels[8], NASTY);
    assert!(!svg.contains(NASTY), "raw markup characters leaked");
    assert!(svg.contains("&lt;&amp;&gt;&quot;&apos;"));
    assert!(
        els.iter()
            .any(|e| e.name == "title" && e.text == "OM(1) <run> & co")
    );
    // The failed call's details are in its tooltip.
    assert!(
        els.iter()
            .any(|e| e.name == "title" && e.text.contains("FAILED: timed out"))
    );

    // Decisions at the foot of the lifelines.
    for (n, d) in &decided {
        let text = els
            .iter()
            .find(|e| e.has_class("decision") && e.attr("data-node") == n)
            .unwrap_or_else(|| panic!("decision of {n}"));
        assert_eq!(text.text, format!("decided {d}"));
        assert!(text.num("y") > lifeline_bottom);
        assert_eq!(text.num("x"), x_of[n.as_str()]);
    }
}

#[test]
fn lamport_diagram_odd_cases() {
    // No usable times, a self-call, a node missing from `nodes`, a call that carries no value.
    let mut self_call = om("Q", "Q", &["P", "Q"], "attack", 0);
    self_call.end_us = 0;
    let mut other = self_call.clone();
    other.from = "Q".into();
    other.to = "X".into();
    other.method = generals::calls::Method::NodeInfo;
    other.args = serde_json::json!([]);
    let mut first = om("P", "Q", &["P"], "attack", 0);
    first.end_us = 0;
    let events = [first, self_call, other];
    let svg = lamport_svg(
        &names("P,Q"),
        &events,
        &[],
        &BTreeMap::new(),
        "collapsed times",
        None,
        None,
    );
    let els = parse(&svg);
    check_svg_root(&els);
    let lanes: Vec<&str> = els
        .iter()
        .filter(|e| e.has_class("lifeline"))
        .map(|e| e.attr("data-node"))
        .collect();
    assert_eq!(lanes, ["P", "Q", "X"], "strangers appended");
    let msgs: Vec<&Element> = els.iter().filter(|e| e.has_class("msg")).collect();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[1].name, "path", "a self-call is a loop");
    assert!(msgs[1].attr("d").starts_with('M'));
    // Drawn in order, one row each, though every time is 0.
    let y1 = |m: &Element| match m.name.as_str() {
        "line" => m.num("y1"),
        _ => m.attr("d")[1..]
            .split(',')
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap()
            .parse::<f64>()
            .unwrap(),
    };
    assert!(y1(msgs[0]) + 10.0 <= y1(msgs[1]));
    assert!(y1(msgs[1]) + 10.0 <= y1(msgs[2]));
    let labels: Vec<&str> = els
        .iter()
        .filter(|e| e.has_class("label"))
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(
        labels,
        ["attack", "attack", "node_info"],
        "method when no value"
    );
}

#[test]
fn mermaid_of_an_om1_run() {
    let (nodes, events, traitors) = om1_run();
    let decided = decisions(&[("Q", "attack"), ("R", "attack")]);
    let text = mermaid(&nodes, &events, &traitors, &decided, None);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "sequenceDiagram");
    let participants: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("participant "))
        .collect();
    assert_eq!(
        participants,
        ["n0 as P", "n1 as Q", "n2 as R", "n3 as S (traitor)"]
    );
    let arrows: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.contains("->>") || l.contains("--x"))
        .collect();
    assert_eq!(arrows.len(), events.len(), "one arrow per call");
    assert_eq!(arrows[0], "n0->>n1: attack");
    assert_eq!(arrows[7], "n3--xn1: retreat (failed: timed out)");
    assert!(arrows[8].starts_with("n3->>n2: "));
    let notes: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("Note over "))
        .collect();
    assert_eq!(
        notes,
        [
            "Note over n1: decided attack",
            "Note over n2: decided attack"
        ]
    );
    // Sanitised: nothing that would break Mermaid's parser in any label.
    for l in &lines[1..] {
        let label = l.split_once(": ").map_or(*l, |(_, b)| b);
        assert!(!label.contains([';', '#', '<', '>']), "{l}");
    }
    // Blocks opened are closed.
    let opened = lines
        .iter()
        .filter(|l| l.trim().starts_with("rect "))
        .count();
    let closed = lines.iter().filter(|l| l.trim() == "end").count();
    assert_eq!(opened, closed);
    assert!(opened >= 1, "traitor calls are shaded");
}

/// The lieutenant's tree: one box per path, edges to extensions, root showing the decision.
fn check_tree(lieutenant: &str, tree: &[TreeNode], m: usize) -> Vec<Element> {
    let svg = tree_svg(lieutenant, tree, m, Some(m + 1));
    let els = parse(&svg);
    check_svg_root(&els);
    let boxes: Vec<&Element> = els.iter().filter(|e| e.has_class("tree-node")).collect();
    assert_eq!(boxes.len(), tree.len(), "one tree-node per TreeNode");
    for (b, t) in boxes.iter().zip(tree) {
        assert_eq!(b.name, "g");
        assert_eq!(b.attr("data-path"), t.path.join(">"));
        assert!(b.text.contains(&t.path.join(">")), "{b:?}");
        let recv = t.received.as_deref().unwrap_or("missing (retreat)");
        assert!(
            b.text.contains(&format!("recv {recv} / maj {}", t.value)),
            "{b:?}"
        );
    }
    assert!(
        boxes[0]
            .text
            .contains(&format!("{lieutenant} decides {}", tree[0].value)),
        "the root shows the decision: {:?}",
        boxes[0]
    );
    let edges = els.iter().filter(|e| e.has_class("edge")).count();
    assert_eq!(edges, tree.len() - 1, "a tree has one edge less than nodes");
    els
}

#[test]
fn om1_trees_rebuilt_from_the_trace() {
    let (nodes, events, _) = om1_run();
    // Q: its call from S failed, so [P,S] is missing; attack, attack, retreat: attack.
    let q = om_tree_from_events("Q", "P", &nodes, 1, &events).unwrap();
    let paths: Vec<String> = q.iter().map(|t| t.path.join(">")).collect();
    assert_eq!(paths, ["P", "P>R", "P>S"]);
    assert_eq!(q[2].received, None);
    assert_eq!(q[0].value, "attack");
    let els = check_tree("Q", &q, 1);
    let missing = els
        .iter()
        .find(|e| e.attr("data-path") == "P>S")
        .expect("P>S box");
    assert!(
        missing
            .text
            .contains("recv missing (retreat) / maj retreat")
    );

    // R: the nasty value is escaped in its box and outvoted.
    let r = om_tree_from_events("R", "P", &nodes, 1, &events).unwrap();
    assert_eq!(r[2].received.as_deref(), Some(NASTY));
    assert_eq!(r[0].value, "attack");
    let svg = tree_svg("R", &r, 1, None);
    assert!(!svg.contains(NASTY));
    let els = check_tree("R", &r, 1);
    // Levels: the root above its children, the children side by side, root centred.
    let rects: Vec<&Element> = els
        .iter()
        .filter(|e| e.name == "rect" && e.attrs.contains_key("rx"))
        .collect();
    assert_eq!(rects.len(), 3);
    assert!(rects[0].num("y") < rects[1].num("y"));
    assert_eq!(rects[1].num("y"), rects[2].num("y"));
    let centre = |e: &Element| e.num("x") + e.num("width") / 2.0;
    assert!((centre(rects[0]) - (centre(rects[1]) + centre(rects[2])) / 2.0).abs() < 0.2);

    // The commander evaluates nothing; its picture is still a document.
    let p = om_tree_from_events("P", "P", &nodes, 1, &events).unwrap();
    assert!(p.is_empty());
    check_svg_root(&parse(&tree_svg("P", &p, 1, None)));
}

/// Run OM(m) in memory, loyal nodes only, recording each delivery as an event.
fn simulate(nodes: &[String], m: usize) -> (Vec<Event>, BTreeMap<String, String>) {
    let commander = &nodes[0];
    let mut runs: HashMap<&str, OmRun> = nodes
        .iter()
        .map(|n| (n.as_str(), OmRun::new(n, commander, nodes, m).unwrap()))
        .collect();
    let mut queue: std::collections::VecDeque<(String, generals::agreement::om::Relay)> = runs
        [commander.as_str()]
    .command("attack")
    .into_iter()
    .map(|r| (commander.clone(), r))
    .collect();
    let mut events = Vec::new();
    let mut t = T0;
    while let Some((from, r)) = queue.pop_front() {
        t += 7;
        events.push(event(serde_json::json!({
            "run": "om-big", "from": from, "to": r.to, "method": "om_message",
            "args": ["om-big", r.path, r.value], "result": true,
            "start_us": t, "end_us": t + 50,
        })));
        let relays = runs
            .get_mut(r.to.as_str())
            .unwrap()
            .receive(&r.path, &r.value)
            .unwrap();
        queue.extend(relays.into_iter().map(|x| (r.to.clone(), x)));
    }
    let decided = nodes[1..]
        .iter()
        .map(|n| (n.clone(), runs[n.as_str()].decide()))
        .collect();
    (events, decided)
}

/// Approximate boxes of the texts of class `class`: (left, top, right, bottom), from the font
/// size, the anchor and 0.62 em per character (the real check runs in a browser).
fn text_boxes(els: &[Element], class: &str, font: f64) -> Vec<(f64, f64, f64, f64, String)> {
    els.iter()
        .filter(|e| e.name == "text" && e.has_class(class))
        .map(|e| {
            let w = e.text.chars().count() as f64 * font * 0.62;
            let (x, y) = (e.num("x"), e.num("y"));
            let left = if e.attr("text-anchor") == "middle" {
                x - w / 2.0
            } else {
                x
            };
            (
                left,
                y - font * 0.8,
                left + w,
                y + font * 0.25,
                e.text.clone(),
            )
        })
        .collect()
}

fn assert_no_overlap(boxes: &[(f64, f64, f64, f64, String)]) {
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            let apart = a.2 <= b.0 || b.2 <= a.0 || a.3 <= b.1 || b.3 <= a.1;
            assert!(apart, "labels overlap: {a:?} and {b:?}");
        }
    }
}

#[test]
fn om2_among_seven_is_summarised_round_by_round() {
    let nodes = names("N0,N1,N2,N3,N4,N5,N6");
    let (events, decided) = simulate(&nodes, 2);
    assert_eq!(events.len(), 156);
    let text = mermaid(&nodes, &events, &[], &decided, None);
    assert_eq!(text.lines().filter(|l| l.contains("->>")).count(), 156);

    let svg = lamport_svg(
        &nodes,
        &events,
        &names("N4"),
        &decided,
        "OM(2), n = 7",
        None,
        None,
    );
    let els = parse(&svg);
    check_svg_root(&els);
    assert!(els[0].num("width") <= 1920.0 && els[0].num("height") <= 1080.0);
    assert_eq!(els.iter().filter(|e| e.has_class("lifeline")).count(), 7);

    // One band per round, stacked down the page.
    let bands: Vec<&Element> = els.iter().filter(|e| e.has_class("band")).collect();
    let rounds: Vec<&str> = bands.iter().map(|b| b.attr("data-round")).collect();
    assert_eq!(rounds, ["1", "2", "3"]);
    let span = |b: &Element| (b.num("y"), b.num("y") + b.num("height"));
    assert!(bands.windows(2).all(|w| span(w[0]).1 <= span(w[1]).0));

    // Each round's matrix counts every message, cell by cell.
    let mut expected: HashMap<(String, String, String), usize> = HashMap::new();
    for e in &events {
        let key = (e.round().unwrap().to_string(), e.from.clone(), e.to.clone());
        *expected.entry(key).or_default() += 1;
    }
    let cells: Vec<&Element> = els
        .iter()
        .filter(|e| e.name == "g" && e.has_class("cell"))
        .collect();
    assert_eq!(cells.len(), 3 * 7 * 7);
    for c in &cells {
        let key = (
            c.attr("data-round").to_string(),
            c.attr("data-from").to_string(),
            c.attr("data-to").to_string(),
        );
        let n = expected.get(&key).copied().unwrap_or(0);
        assert_eq!(c.num("data-count") as usize, n, "{key:?}");
        assert_eq!(c.has_class("empty"), n == 0);
    }

    // Arrows: only the traitor lieutenant N4's, one by one in round 2 (5), one bundle per
    // receiver in round 3 (20 messages), each inside its round's band.
    let msgs: Vec<&Element> = els.iter().filter(|e| e.has_class("msg")).collect();
    assert!(msgs.iter().all(|m| m.attr("data-from") == "N4"));
    assert!(msgs.iter().all(|m| m.has_class("traitor")));
    let singles = msgs.iter().filter(|m| !m.has_class("bundle")).count();
    let bundled: Vec<usize> = msgs
        .iter()
        .filter(|m| m.has_class("bundle"))
        .map(|m| m.num("data-count") as usize)
        .collect();
    assert_eq!((singles, bundled.len(), bundled.iter().sum()), (5, 5, 20));
    let groups: Vec<&Element> = els.iter().filter(|e| e.has_class("call")).collect();
    assert_eq!(groups.len(), msgs.len());
    for (g, m) in groups.iter().zip(&msgs) {
        let band = bands
            .iter()
            .find(|b| b.attr("data-round") == g.attr("data-round"))
            .unwrap();
        let (top, bottom) = span(band);
        assert!(top < m.num("y1") && m.num("y1") < m.num("y2") && m.num("y2") < bottom);
    }
    assert!(
        els.iter()
            .any(|e| e.has_class("summary") && e.text.contains("sent by N4"))
    );
    let mut labels = text_boxes(&els, "label", 11.0);
    labels.extend(text_boxes(&els, "band-head", 11.0));
    labels.extend(text_boxes(&els, "node", 13.0));
    assert_no_overlap(&labels);

    // Another node on request; an unknown one falls back to the default.
    let svg = lamport_svg(&nodes, &events, &[], &decided, "t", Some("N1"), None);
    let els = parse(&svg);
    let msgs: Vec<&Element> = els.iter().filter(|e| e.has_class("msg")).collect();
    assert!(!msgs.is_empty() && msgs.iter().all(|m| m.attr("data-from") == "N1"));
    let svg = lamport_svg(&nodes, &events, &[], &decided, "t", Some("X"), None);
    assert!(svg.contains("sent by N1"), "the first lieutenant");

    // The tree: 26 boxes, folded past the first two levels unless asked.
    let tree = om_tree_from_events("N3", "N0", &nodes, 2, &events).unwrap();
    assert_eq!(tree.len(), 1 + 5 + 5 * 4);
    assert_eq!(tree[0].value, decided["N3"]);
    assert!(tree.iter().all(|t| t.received.as_deref() == Some("attack")));
    check_tree("N3", &tree, 2);
    let els = parse(&tree_svg("N3", &tree, 2, None));
    let boxes: Vec<&Element> = els.iter().filter(|e| e.has_class("tree-node")).collect();
    assert_eq!(boxes.len(), 6);
    let folded: Vec<&&Element> = boxes.iter().filter(|b| b.has_class("folded")).collect();
    assert_eq!(folded.len(), 5);
    assert!(folded.iter().all(|b| b.text.contains("+4 folded below")));
    assert!(
        els.iter()
            .any(|e| e.has_class("folded") && e.text.contains("rounds 3..3 folded: 20 boxes"))
    );
    assert!(els[0].num("width") <= 1920.0);
    let els = parse(&tree_svg("N3", &tree, 2, Some(1)));
    let boxes: Vec<&Element> = els.iter().filter(|e| e.has_class("tree-node")).collect();
    assert_eq!(boxes.len(), 1);
    assert!(boxes[0].text.contains("+25 folded below"), "{:?}", boxes[0]);
}

/// An OM(1) run in detail: a band per round, every call inside its round's band.
#[test]
fn small_runs_are_drawn_call_by_call_in_round_bands() {
    let (nodes, events, traitors) = om1_run();
    let svg = lamport_svg(
        &nodes,
        &events,
        &traitors,
        &BTreeMap::new(),
        "t",
        None,
        None,
    );
    let els = parse(&svg);
    let bands: Vec<&Element> = els.iter().filter(|e| e.has_class("band")).collect();
    assert_eq!(bands.len(), 2);
    let heads: Vec<&str> = els
        .iter()
        .filter(|e| e.has_class("band-head"))
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(
        heads,
        ["round 1: 3 messages", "round 2: 6 messages, 1 failed"]
    );
    let groups: Vec<&Element> = els.iter().filter(|e| e.has_class("call")).collect();
    let msgs: Vec<&Element> = els.iter().filter(|e| e.has_class("msg")).collect();
    assert_eq!(msgs.len(), 9);
    for (g, m) in groups.iter().zip(&msgs) {
        let b = bands
            .iter()
            .find(|b| b.attr("data-round") == g.attr("data-round"))
            .unwrap();
        assert!(b.num("y") < m.num("y1") && m.num("y2") < b.num("y") + b.num("height"));
    }
    assert!(!els.iter().any(|e| e.has_class("cell")), "no summary");
    assert_no_overlap(&text_boxes(&els, "label", 11.0));
}

/// In a round band an arrow ends at the instant its receiver stored the message (the
/// `om_message` answer), placed among the round's sending instants: below every message sent
/// before it was stored, above every message sent after.
#[test]
fn arrows_end_when_the_receiver_stored_the_message() {
    let stored = |mut e: Event, at: u64| {
        e.result = Some(serde_json::json!(at.to_string()));
        e.end_us = at + 1_000;
        e
    };
    let events = vec![
        stored(om("Q", "R", &["P", "Q"], "attack", T0), T0 + 150),
        stored(om("R", "S", &["P", "R"], "attack", T0 + 100), T0 + 120),
        stored(om("S", "Q", &["P", "S"], "attack", T0 + 200), T0 + 300),
    ];
    let svg = lamport_svg(
        &names("P,Q,R,S"),
        &events,
        &[],
        &BTreeMap::new(),
        "t",
        None,
        None,
    );
    let els = parse(&svg);
    let msgs: Vec<&Element> = els.iter().filter(|e| e.has_class("msg")).collect();
    let (a, b, c) = (msgs[0], msgs[1], msgs[2]);
    // A was stored after B was sent and before C was: it ends between their starts.
    assert!(
        b.num("y1") < a.num("y2") && a.num("y2") < c.num("y1"),
        "{a:?} {b:?} {c:?}"
    );
    // B was stored before C was sent: it ends above C's start, and below its own.
    assert!(b.num("y1") < b.num("y2") && b.num("y2") < c.num("y1"));
    assert!(c.num("y2") > c.num("y1"));
    // The tooltip says when.
    assert!(
        els.iter()
            .any(|e| e.name == "title" && e.text.contains("stored by R 150 us after sending"))
    );
    // Labels keep to their rows: each one just below its arrow's start.
    let labels: Vec<&Element> = els.iter().filter(|e| e.has_class("label")).collect();
    for (l, m) in labels.iter().zip(&msgs) {
        let dy = l.num("y") - m.num("y1");
        assert!((0.0..8.0).contains(&dy), "{l:?} {m:?}");
    }
}

/// The default run as the client and the nodes see it: every node asked to send `attack` to
/// every other (the client's calls; P, faulty, denies R and S), and the `receive_message`
/// calls the nodes traced (P, faulty, ignores what it receives).
fn default_run() -> (Vec<Event>, Vec<Event>, BTreeMap<String, String>) {
    use generals::protocol::{denied_reply, ignored_reply, received_line, sent_line};
    let call = |from: &str, to: &str, method: &str, args, result: String, at: u64| {
        event(serde_json::json!({
            "run": "original", "from": from, "to": to, "method": method, "args": args,
            "result": result, "start_us": at, "end_us": at + 400,
        }))
    };
    let (mut calls, mut traced) = (Vec::new(), Vec::new());
    let mut at = 1_000;
    for from in ["P", "Q", "R", "S"] {
        for to in ["P", "Q", "R", "S"].into_iter().filter(|t| *t != from) {
            at += 1_000;
            let args = serde_json::json!([to, "attack"]);
            if from == "P" && to != "Q" {
                calls.push(call(
                    from,
                    to,
                    "send_message",
                    args,
                    denied_reply(from, to),
                    at,
                ));
                continue;
            }
            let sent = sent_line(from, "attack", to);
            calls.push(call(from, to, "send_message", args, sent, at));
            let answer = if to == "P" {
                ignored_reply(to, from)
            } else {
                received_line(to, "attack", from)
            };
            let args = serde_json::json!([from, "attack"]);
            traced.push(call(from, to, "receive_message", args, answer, at + 100));
        }
    }
    let decided = decisions(&[
        ("P", "faulty"),
        ("Q", "attack"),
        ("R", "attack"),
        ("S", "attack"),
    ]);
    (calls, traced, decided)
}

/// Pairs of node names.
type Pairs = Vec<(String, String)>;

/// Stubs marked "denied" (sender, receiver) and ignored marks (receiver, sender) of a diagram.
fn refusals(els: &[Element]) -> (Pairs, Pairs) {
    let denied = els
        .iter()
        .filter(|e| e.name == "line" && e.has_class("denied"))
        .map(|e| {
            (
                e.attr("data-from").to_string(),
                e.attr("data-to").to_string(),
            )
        })
        .collect();
    let ignored = els
        .iter()
        .filter(|e| e.name == "g" && e.has_class("ignored"))
        .map(|e| {
            (
                e.attr("data-node").to_string(),
                e.attr("data-from").to_string(),
            )
        })
        .collect();
    (denied, ignored)
}

fn pairs(list: &[(&str, &str)]) -> Pairs {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn the_default_run_shows_refused_sends_and_ignored_messages() {
    use generals::runs::original::drawable;
    let (calls, traced, decided) = default_run();
    let nodes = names("P,Q,R,S");
    let d = drawable(traced, &calls, &decided, "attack");
    assert_eq!(d.note, None, "everything but the refusals is in the trace");
    let svg = lamport_svg(&nodes, &d.events, &names("P"), &decided, "t", None, None);
    let els = parse(&svg);
    check_svg_root(&els);
    let (denied, ignored) = refusals(&els);
    assert_eq!(denied, pairs(&[("P", "R"), ("P", "S")]));
    assert_eq!(ignored, pairs(&[("P", "Q"), ("P", "R"), ("P", "S")]));
    // A stub stops short of its receiver, labelled "denied"; an ignored mark sits at P.
    let x_of = |n: &str| {
        els.iter()
            .find(|e| e.has_class("lifeline") && e.attr("data-node") == n)
            .unwrap()
            .num("x1")
    };
    for stub in els.iter().filter(|e| e.has_class("denied")) {
        let (x1, x2) = (stub.num("x1"), stub.num("x2"));
        assert_eq!(x1, x_of("P"));
        assert!(x2 > x1 && x2 < x_of("Q"), "{stub:?}");
        assert_eq!(stub.num("y1"), stub.num("y2"));
        assert!(
            stub.attr("marker-end").is_empty(),
            "no arrowhead: nothing arrived"
        );
    }
    let labels: Vec<&str> = els
        .iter()
        .filter(|e| e.name == "text" && e.has_class("label"))
        .map(|e| e.text.as_str())
        .collect();
    assert!(labels.contains(&"denied to R") && labels.contains(&"denied to S"));
    for mark in els.iter().filter(|e| e.name == "circle") {
        assert_eq!(mark.num("cx"), x_of("P"));
    }
    let legend: String = els
        .iter()
        .filter(|e| e.has_class("legend"))
        .map(|e| e.text.clone())
        .collect();
    assert!(legend.contains("12 calls"), "{legend}");
    assert!(legend.contains("a send the sender refused"), "{legend}");
    assert!(
        legend.contains("the receiver dropped the message"),
        "{legend}"
    );

    let text = mermaid(&nodes, &d.events, &names("P"), &decided, None);
    let stubs: Vec<&str> = text.lines().filter(|l| l.contains("-x")).collect();
    assert_eq!(
        stubs,
        ["        n0-xn2: denied", "        n0-xn3: denied"],
        "{text}"
    );
    assert_eq!(
        text.matches("Note over n0: ignored from").count(),
        3,
        "{text}"
    );
    assert_eq!(text.matches("->>").count(), 10, "{text}");
}

#[test]
fn without_a_trace_the_default_run_is_drawn_from_the_clients_calls() {
    use generals::runs::original::drawable;
    let (calls, _, decided) = default_run();
    let nodes = names("P,Q,R,S");
    let d = drawable(Vec::new(), &calls, &decided, "attack");
    let note = d
        .note
        .as_deref()
        .expect("the picture says where its calls come from");
    assert!(note.contains("drawn from the client's own calls"), "{note}");
    assert!(note.contains("the nodes keep no trace"), "{note}");
    let svg = lamport_svg(&nodes, &d.events, &[], &decided, "t", None, Some(note));
    let els = parse(&svg);
    check_svg_root(&els);
    let msgs = els.iter().filter(|e| e.has_class("msg")).count();
    assert_eq!(msgs, 12, "10 messages and 2 refusals");
    let (denied, ignored) = refusals(&els);
    assert_eq!(denied.len(), 2);
    assert_eq!(
        ignored.len(),
        3,
        "P answered faulty: it ignores what it receives"
    );
    let source = els
        .iter()
        .find(|e| e.has_class("source"))
        .expect("a legend line for the source");
    assert_eq!(source.text, note);
    let width = els[0].num("width");
    assert!(width >= 6.0 * note.len() as f64, "the note fits: {width}");
    let text = mermaid(&nodes, &d.events, &[], &decided, Some(note));
    let first_call = text.find("->>").unwrap();
    let said = text
        .find("Note over n0,n3: drawn from the client's own calls")
        .expect(&text);
    assert!(said < first_call, "{text}");
}
