// The page of `client ui`: starts runs on the server that served it, reads each run as a
// stream of Server-Sent Events and draws the Lamport diagram as the messages come; replays
// trace files. Plain JavaScript, no libraries, nothing fetched from elsewhere.
//
// Page-only query parameters (the rest start a run, e.g. ?run=om&m=1&seed=42):
//   pace=MS     drawing pace, milliseconds per message (0: at once)
//   replay=1    replay the trace given to `client ui --replay FILE`
//   step=N|all  with replay=1: show the first N messages (or all, and the outcome) at once
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const RUN_PARAMS = ["run", "m", "commander", "order", "seed", "allow_unsafe", "decision", "delay_ms"];
const $ = (id) => document.getElementById(id);

// Geometry of the diagram.
const LEFT = 120;      // x of the first lifeline (row labels on its left)
const NAMES = 90;      // y of the node names (the title and three lines of legend above them)
const TOP = 120;       // y where the rows start
const STUB = 56;       // length of a denied or withheld send's stub
const BAND_HEAD = 20;  // height of a round's heading

// The run or replay on screen.
let view = null;
// Messages received and not drawn yet (drawn one per `pace` ms).
let queue = [];
let pumping = false;
// What to do once the queue is drawn (the outcome), if the stream has said it.
let finale = null;
// The replay, if one is loaded: all its messages and how far it is.
let replay = null;

function newView(kind, nodes, extra) {
  return Object.assign({
    kind, nodes, traitors: new Set(), behaviours: {}, commander: null,
    messages: [], rows: new Map(), rowList: [], decisions: {}, trees: {}, fullTrees: {}, treeBoxes: {},
    withheld: [],
    lastRound: undefined, height: TOP,
  }, extra || {});
}

function setState(state) {
  document.body.dataset.state = state;
  document.body.className = state;
}

function status(text) { $("status").textContent = text; }

function showError(text) {
  const e = $("error");
  e.textContent = text;
  e.hidden = false;
  setState("error");
  status("Nothing runs.");
}

function clearError() { $("error").hidden = true; $("error").textContent = ""; }

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function html(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function short(s, n) {
  s = String(s);
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

// ---- the cluster ------------------------------------------------------------------------

async function loadCluster() {
  let info;
  try {
    const r = await fetch("/api/cluster");
    info = await r.json();
  } catch (e) {
    showError("cannot ask the server for the cluster: " + e);
    return [];
  }
  if (info.error) { showError(info.error); return []; }
  const body = $("cluster").tBodies[0];
  body.textContent = "";
  for (const n of info.nodes) {
    const tr = html("tr", { class: "node" + (n.traitor ? " traitor" : "") + (n.reachable ? "" : " down"), "data-name": n.name });
    tr.append(html("td", { class: "name" }, n.name), html("td", { class: "url" }, n.url),
      n.behaviour === null && n.reachable
        ? html("td", { class: "behaviour", title: "this node does not say (the original server.py has no node_info)" }, "—")
        : html("td", { class: "behaviour" }, n.behaviour || ""),
      html("td", { class: "state", title: n.error || "" }, n.reachable ? "reachable" : "unreachable"));
    body.append(tr);
  }
  const commander = $("commander");
  commander.textContent = "";
  for (const n of info.nodes) commander.append(html("option", { value: n.name }, n.name));
  return info.nodes;
}

// ---- the form ---------------------------------------------------------------------------

function showKindFields() {
  const original = $("kind").value === "original";
  for (const l of document.querySelectorAll("label.agreement")) l.hidden = original;
  for (const l of document.querySelectorAll("label.original")) l.hidden = !original;
}

function formQuery() {
  const q = new URLSearchParams();
  const kind = $("kind").value;
  q.set("run", kind);
  if (kind === "original") {
    q.set("decision", $("decision").value);
    q.set("delay_ms", $("delay_ms").value || "0");
  } else {
    q.set("m", $("m").value);
    q.set("commander", $("commander").value);
    q.set("order", $("order").value);
    if ($("seed").value !== "") q.set("seed", $("seed").value);
    if ($("allow_unsafe").checked) q.set("allow_unsafe", "1");
  }
  return q;
}

// Put a query's values in the form, where the form has a place for them.
function fillForm(q) {
  const set = (id, v) => { if (v !== null && $(id)) $(id).value = v; };
  set("kind", q.get("run"));
  for (const k of ["m", "order", "seed", "decision", "delay_ms"]) set(k, q.get(k));
  if (q.get("commander") && [...$("commander").options].some((o) => o.value === q.get("commander"))) {
    set("commander", q.get("commander"));
  }
  $("allow_unsafe").checked = ["1", "true", "on"].includes(q.get("allow_unsafe"));
  set("pace", q.get("pace"));
  showKindFields();
}

function pace() {
  const p = Number($("pace").value);
  return Number.isFinite(p) && p >= 0 ? Math.min(p, 2000) : 25;
}

// ---- a live run -------------------------------------------------------------------------

async function startRun(query) {
  if (document.body.dataset.state === "running" || !$("replay-note").hidden) return;
  clearError();
  stopReplay();
  resetStage();
  setState("running");
  status("Starting " + query.get("run") + "…");
  let response;
  try {
    // A POST: no GET starts a run (an <img> on another site cannot), and the server takes
    // it only from this page's own origin.
    response = await fetch("/api/run", {
      method: "POST",
      body: query.toString(),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
  } catch (e) {
    showError("cannot reach the server: " + e);
    return;
  }
  if (!response.ok) {
    showError((await response.text()).trim() || ("HTTP " + response.status));
    return;
  }
  try {
    await readEvents(response, onItem);
  } catch (e) {
    showError("the stream broke: " + e);
  }
}

// Read a text/event-stream body, calling `on(name, data)` for each event.
async function readEvents(response, on) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let name = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) on(name, JSON.parse(data));
    }
  }
}

function onItem(name, data) {
  switch (name) {
    case "start": {
      view = newView(data.kind, data.nodes.map((n) => n.name), {
        run: data.run, commander: data.kind === "original" ? null : data.commander,
        m: data.m, expected: data.expected_per_round,
      });
      for (const n of data.nodes) {
        if (n.traitor) view.traitors.add(n.name);
        if (n.behaviour) view.behaviours[n.name] = n.behaviour;
      }
      const what = data.kind === "original"
        ? `the original run: every node sends ${short(data.decision, 20)} to every other`
        : `${data.kind.toUpperCase()}(${data.m}) run ${data.run}: commander ${data.commander} orders ${data.order}`;
      view.title = what;
      status("Running " + what + "…");
      render();
      break;
    }
    case "message": queue.push(data); pump(); break;
    case "line": addLine(data); break;
    case "result": finale = () => showOutcome(data); pump(); break;
    case "error": finale = () => showError(data.error); pump(); break;
    case "end": {
      const before = finale;
      finale = () => {
        if (before) before();
        if (document.body.dataset.state === "running") setState("done");
      };
      pump();
      break;
    }
  }
}

// Draw the queued messages, one per `pace` ms, then the finale.
function pump() {
  if (pumping) return;
  pumping = true;
  const step = () => {
    if (queue.length === 0) {
      pumping = false;
      if (finale) { const f = finale; finale = null; f(); }
      return;
    }
    const wait = pace();
    // One at a time, unless a backlog builds (a large run): then it is drawn in at most ~50
    // steps, so the page keeps up with any run.
    const take = wait === 0 ? queue.length : Math.max(1, Math.ceil(queue.length / 50));
    for (const m of queue.splice(0, take)) addMessage(m);
    setTimeout(step, wait);
  };
  step();
}

function addLine(line) {
  const pre = $("lines");
  pre.hidden = false;
  pre.append(html("div", { class: "line " + line.stream }, line.text));
}

function resetStage() {
  view = null;
  queue = [];
  finale = null;
  $("diagram").textContent = "";
  $("outcome").hidden = true;
  $("lines").hidden = true;
  $("lines").textContent = "";
  $("tree").hidden = true;
}

// ---- the diagram ------------------------------------------------------------------------

function column() {
  const n = Math.max(view.nodes.length, 2);
  const width = Math.max($("diagram").clientWidth || 900, 500);
  return Math.max(64, Math.min(150, (width - LEFT - 40) / (n - 1)));
}

function x(node) {
  const i = view.nodes.indexOf(node);
  return LEFT + (i < 0 ? view.nodes.length : i) * view.col;
}

function rowHeight() {
  const rows = view.expectedRows || 0;
  return rows > 120 ? 8 : rows > 60 ? 14 : 24;
}

// A denied or withheld send gets a row of its own: in its sender's row, its stub and label
// would run into the arrows that leave the same point.
function rowKey(m) {
  const own = m.shown === "denied" || m.shown === "withheld" ? "|" + m.shown + ">" + m.to : "";
  if (m.round === null || m.round === undefined) return "o|" + m.from + ">" + m.to + own;
  return m.round + "|" + (m.path || []).join(">") + own;
}

// What the labels left of the rows mean.
function rowsLegend() {
  if (view.kind === "original") {
    return "rows: one per send, in the order made, labelled with its sender";
  }
  const a = view.commander || view.nodes[0] || "P";
  const b = view.nodes.find((n) => n !== a) || "Q";
  const how = view.kind === "sm" ? `the order signed by ${a}, then by ${b}` : `the order as ${a} told it to ${b}`;
  return `rows: one per path, labelled with it, its sender last: ${a}>${b} is ${how}, which ${b} passes on to the others`;
}

// The whole diagram, from `view` (after a start, and when the traitors become known).
function render() {
  const d = $("diagram");
  d.textContent = "";
  view.col = column();
  view.rows = new Map();
  view.rowList = [];
  view.lastRound = undefined;
  view.height = TOP;
  view.lastLabel = undefined;
  view.expectedRows = expectedRows();
  const width = LEFT + (view.nodes.length - 1) * view.col + 90;
  const root = svg("svg", { id: "lamport", xmlns: SVGNS, width, height: TOP + 60, "font-family": "sans-serif" });
  root.append(svg("defs", {}, ""));
  root.firstChild.innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker>';
  root.append(svg("text", { x: 10, y: 18, class: "node" }, view.title || ""));
  root.append(svg("text", { x: 10, y: 34, class: "legend" },
    "time flows down; crimson: sent by a traitor; dashed: failed or late; circle: ignored by a faulty receiver"));
  root.append(svg("text", { x: 10, y: 48, class: "legend" }, "short stub ending in a bar: " +
    (view.kind === "original" ? "a send its sender denied (nothing was sent)" : "a message a traitor withheld (nothing was sent)")));
  root.append(svg("text", { x: 10, y: 62, class: "legend", id: "rows-legend" }, rowsLegend()));
  const bands = svg("g", { class: "bands" });
  const lanes = svg("g", { class: "lanes" });
  const msgs = svg("g", { class: "messages" });
  const ends = svg("g", { class: "decisions" });
  root.append(bands, lanes, msgs, ends);
  for (const n of view.nodes) {
    const traitor = view.traitors.has(n);
    const lieutenant = view.kind === "om" && n !== view.commander;
    const head = svg("text", {
      x: x(n), y: NAMES, "text-anchor": "middle", "data-node": n,
      class: "node" + (traitor ? " traitor" : "") + (lieutenant ? " lieutenant" : ""),
    }, short(n, 14) + (n === view.commander ? " (commander)" : ""));
    if (lieutenant) head.addEventListener("click", () => showTree(n));
    lanes.append(head);
    const b = view.behaviours[n];
    if (b && b !== "honest") {
      lanes.append(svg("text", { x: x(n), y: NAMES + 14, "text-anchor": "middle", class: "behaviour-label" + (traitor ? " traitor" : "") }, short(b, 18)));
    }
    lanes.append(svg("line", { class: "lifeline", x1: x(n), x2: x(n), y1: TOP - 8, y2: TOP + 40, "data-node": n }));
  }
  d.append(root);
  // The withheld messages' stubs, each after the last message of its path (else of its round
  // or an earlier one): in its round's band, under its path's row.
  const after = new Map();
  for (const w of view.withheld || []) {
    let i = view.messages.findLastIndex((m) => m.round === w.round && rowKey(m) === rowKey({ ...w, shown: "" }));
    if (i < 0) i = view.messages.findLastIndex((m) => m.round !== null && m.round <= w.round);
    if (!after.has(i)) after.set(i, []);
    after.get(i).push(w);
  }
  for (const w of after.get(-1) || []) drawMessage(w);
  view.messages.forEach((m, i) => {
    drawMessage(m);
    for (const w of after.get(i) || []) drawMessage(w);
  });
  if (Object.keys(view.decisions).length) drawDecisions();
}

// The messages of an OM run that traitors withheld: a node that received a path (the
// commander: its own order) owes it to every node not on it, one round later; what it owes
// and never sent is not in any trace (no call was made), so the page finds it here, for
// the traitors (a loyal node that failed to send left a failed call in the trace).
function withheldMessages() {
  if (view.kind !== "om" || !view.commander) return [];
  const key = (from, to, path) => from + "|" + to + "|" + path.join(">");
  const sent = new Set(view.messages.filter((m) => m.path).map((m) => key(m.from, m.to, m.path)));
  const owed = [{ from: view.commander, path: [view.commander], round: 1 }];
  for (const m of view.messages) {
    if (!m.path || !["delivered", "ignored"].includes(m.shown) || m.round > view.m) continue;
    owed.push({ from: m.to, path: [...m.path, m.to], round: m.round + 1 });
  }
  const out = [], seen = new Set();
  for (const o of owed) {
    if (!view.traitors.has(o.from)) continue;
    for (const to of view.nodes) {
      const k = key(o.from, to, o.path);
      if (o.path.includes(to) || sent.has(k) || seen.has(k)) continue;
      seen.add(k);
      out.push({ from: o.from, to, round: o.round, path: o.path, method: "om_message", value: "", shown: "withheld" });
    }
  }
  return out;
}

// How many rows a whole run takes (to pick a row height that keeps it on a screen or two).
function expectedRows() {
  const n = view.nodes.length;
  if (view.kind === "original") return n * (n - 1);
  let rows = 0, paths = 1;
  for (let r = 0; r <= (view.m || 0); r++) { rows += paths; paths *= Math.max(n - 1 - r, 1); }
  return rows;
}

function addMessage(m) {
  if (!view) return;
  view.messages.push(m);
  drawMessage(m);
  $("status").dataset.messages = view.messages.length;
}

// One message (or a withheld one's stub) in its row; a new row, and a round's band, as needed.
function drawMessage(m) {
  const root = $("lamport");
  if (!root) return;
  const h = rowHeight();
  const key = rowKey(m);
  let row = view.rows.get(key);
  if (row === undefined) {
    if (m.round !== null && m.round !== undefined && m.round !== view.lastRound) {
      view.lastRound = m.round;
      const band = svg("g", { class: "band-group", "data-round": m.round });
      band.append(svg("rect", { class: "band", x: 0, y: view.height, width: root.getAttribute("width"), height: BAND_HEAD - 4 }));
      band.append(svg("text", { class: "band-head", x: 8, y: view.height + 12 }, "round " + m.round));
      root.querySelector("g.bands").append(band);
      view.height += BAND_HEAD;
    }
    row = { y: view.height + 4 };
    view.rows.set(key, row);
    view.rowList.push(row);
    // A row's label: its path (OM/SM), or (original) its sender, once for its sends.
    const label = m.path ? m.path.join(">") : m.from;
    const same = view.lastLabel === label && !m.path;
    view.lastLabel = label;
    if (h >= 14 && !same) {
      root.querySelector("g.bands").append(svg("text", { class: "row-label", x: 8, y: row.y + 8 }, short(label, 16)));
    }
    view.height += h;
  }
  const traitor = view.traitors.has(m.from);
  const cls = "msg " + m.shown + (traitor ? " traitor" : "");
  const x1 = x(m.from), x2 = x(m.to), y1 = row.y, y2 = row.y + Math.max(h * 0.6, 5);
  const g = svg("g", { class: "message", "data-from": m.from, "data-to": m.to, "data-round": m.round === null ? "" : m.round, "data-shown": m.shown });
  const tip = m.shown === "withheld"
    ? `${m.from} → ${m.to}: withheld (${m.from} had path ${m.path.join(">")} to pass on and sent nothing)`
    : `${m.from} → ${m.to}: ${m.method}` + (m.path ? ` path ${m.path.join(">")}` : "") +
      ` value ${m.value}` + (m.fault ? `; FAILED: ${m.fault}` : "");
  g.append(svg("title", {}, tip));
  if (m.shown === "denied" || m.shown === "withheld") {
    // Level, as `--svg` draws it: nothing left the sender. The label above the stub.
    const dir = x2 >= x1 ? 1 : -1;
    const xs = x1 + dir * Math.min(STUB, Math.abs(x2 - x1) * 0.45);
    const ys = y1 + 8;
    g.append(svg("line", { class: cls, x1, y1: ys, x2: xs, y2: ys }));
    g.append(svg("line", { class: "stop" + (traitor ? " traitor" : ""), x1: xs, x2: xs, y1: ys - 5, y2: ys + 5 }));
    if (h >= 14) {
      g.append(svg("text", { class: "mark", x: x1 + dir * 4, y: ys - 4, "text-anchor": dir > 0 ? "start" : "end" },
        (m.shown === "denied" ? "denied to " : "withheld from ") + short(m.to, 10)));
    }
  } else {
    g.append(svg("line", { class: cls, x1, y1, x2, y2, "marker-end": "url(#arrow)" }));
    if (m.shown === "ignored") {
      // Beyond the receiver, clear of the arrow that comes in.
      const dir = x2 >= x1 ? 1 : -1;
      g.append(svg("circle", { class: "ignored-mark", cx: x2, cy: y2, r: 4 }));
      g.append(svg("text", { class: "mark", x: x2 + dir * 7, y: y2 + 3, "text-anchor": dir > 0 ? "start" : "end" }, "ignored"));
    } else if (h >= 14) {
      const dir = x2 > x1 ? -1 : 1;
      g.append(svg("text", { class: "value" + (traitor ? " traitor" : ""), x: x2 + dir * 18, y: y2 - 2, "text-anchor": "middle" },
        m.shown === "late" ? "late" : short(m.value, 8)));
    }
  }
  root.querySelector("g.messages").append(g);
  grow(root);
}

// Lifelines and the picture's height follow the rows.
function grow(root) {
  const bottom = view.height + 16;
  for (const l of root.querySelectorAll("line.lifeline")) l.setAttribute("y2", bottom);
  root.setAttribute("height", bottom + 44);
  for (const b of root.querySelectorAll("rect.band")) b.setAttribute("width", root.getAttribute("width"));
}

function drawDecisions() {
  const root = $("lamport");
  if (!root) return;
  const g = root.querySelector("g.decisions");
  g.textContent = "";
  for (const n of view.nodes) {
    const d = view.decisions[n];
    if (d === undefined) continue;
    g.append(svg("text", {
      x: x(n), y: view.height + 34, "text-anchor": "middle", "data-node": n,
      class: "decision" + (view.traitors.has(n) ? " traitor" : ""),
    }, short(d, 14)));
  }
}

// ---- the outcome ------------------------------------------------------------------------

// What the original run's sends came to, in the words of the counts beside it: delivered
// (the "messages" of the table, ignored ones included), denied by their sender, failed.
function sendsSaid(r) {
  const count = (shown) => view.messages.filter((m) => m.shown === shown);
  const ignored = count("ignored"), denied = count("denied"), failed = count("failed").length + count("late").length;
  const delivered = count("delivered").length + ignored.length;
  const who = (ms, pick) => [...new Set(ms.map(pick))].map((n) => (view.traitors.has(n) ? "the faulty " : "") + n).join(", ");
  let said = `${view.messages.length} sends: ${delivered} delivered`;
  if (ignored.length) said += ` (${ignored.length} of them to ${who(ignored, (m) => m.to)}, which ignores what it receives)`;
  if (denied.length) said += `, ${denied.length} denied by ${who(denied, (m) => m.from)} (to ${[...new Set(denied.map((m) => m.to))].join(", ")})`;
  if (failed) said += `, ${failed} failed`;
  return said;
}

function showOutcome(r) {
  const verdict = $("verdict");
  verdict.textContent = "";
  if ($("ic-explained")) $("ic-explained").remove();
  const decisions = {};
  if (r.kind === "original") {
    Object.assign(decisions, r.decisions);
    for (const n of r.ignoring || []) view.traitors.add(n);
    for (const m of view.messages) if ((r.ignoring || []).includes(m.to) && m.shown === "delivered") m.shown = "ignored";
    verdict.append(html("span", { class: "sends" }, sendsSaid(r)));
    if (r.failures > 0) {
      verdict.append(document.createTextNode("; "), html("span", { class: "violated" }, `${r.failures} call(s) failed`));
    }
  } else {
    Object.assign(decisions, r.traitor_decisions || {}, r.decisions);
    for (const t of r.traitors || []) view.traitors.add(t);
    view.trees = r.trees || {};
    view.fullTrees = r.full_trees || {};
    view.treeBoxes = r.tree_boxes || {};
    if (r.verdict === "void") {
      verdict.append(html("span", { class: "void" }, "void: the run shows nothing about the algorithm"));
      verdict.append(html("div", { class: "hint" }, (r.void_reasons || []).join("; ")));
    } else {
      const commanderTraitor = (r.traitors || []).includes(r.commander);
      verdict.append(html("span", { class: r.ic1 ? "holds" : "violated" }, r.ic1 ? "IC1 holds" : "IC1 violated"), document.createTextNode(", "));
      verdict.append(html("span", { class: r.ic2 ? "holds" : "violated" },
        r.ic2 ? "IC2 holds" + (commanderTraitor ? " (vacuously: the commander is a traitor)" : "") : "IC2 violated"));
      for (const p of r.problems || []) verdict.append(html("div", { class: "hint" }, p));
    }
    if (r.verdict !== "replayed") {
      // What the two conditions mean, in the checker's words (src/agreement/checker.rs).
      const ic = html("ul", { id: "ic-explained", class: "hint" });
      ic.append(html("li", { "data-ic": "1" }, "IC1: all loyal lieutenants decide the same value."),
        html("li", { "data-ic": "2" }, "IC2: if the commander is loyal, every loyal lieutenant decides the commander's order."));
      verdict.after(ic);
    }
    view.withheld = withheldMessages();
  }
  view.decisions = decisions;
  const body = $("decisions").tBodies[0];
  body.textContent = "";
  for (const n of view.nodes) {
    if (decisions[n] === undefined) continue;
    const tr = html("tr", { class: "decision-row" + (view.traitors.has(n) ? " traitor" : ""), "data-node": n });
    tr.append(html("td", {}, n + (view.traitors.has(n) ? " (traitor)" : "")), html("td", {}, decisions[n]));
    body.append(tr);
  }
  const rounds = $("rounds").tBodies[0];
  rounds.textContent = "";
  if (r.kind === "original") {
    const tr = html("tr");
    tr.append(html("td", {}, "all-to-all"), html("td", {}, String(view.messages.filter((m) => ["delivered", "ignored"].includes(m.shown)).length)),
      html("td", {}, String(view.nodes.length * (view.nodes.length - 1))));
    rounds.append(tr);
  } else {
    (r.messages_per_round || []).forEach((count, i) => {
      const theory = (r.expected_per_round || [])[i];
      const tr = html("tr", { "data-round": i + 1 });
      tr.append(html("td", {}, String(i + 1)), html("td", {}, String(count)), html("td", {}, theory === undefined ? "—" : String(theory)));
      rounds.append(tr);
    });
  }
  $("tree-hint").hidden = Object.keys(view.trees).length === 0;
  $("report").textContent = r.text || "";
  $("report-box").hidden = !r.text;
  $("outcome").hidden = false;
  render();
  // A replay says its own end (replayPosition).
  if (!replay) status(r.kind === "original" ? "The original run is over." : `Run ${r.run} is over: ${r.verdict}.`);
}

// A lieutenant's tree; `full`: all its rounds, when the server sent them (a tree of more
// than 15 boxes comes folded below round 2, and whole when it is small enough to read).
function showTree(node, full) {
  const t = view && view.trees[node];
  if (!t) return;
  const whole = view.fullTrees[node];
  full = full && whole !== undefined;
  $("tree-title").textContent = `${node}'s OM(${view.m}) tree` + (full ? ", all rounds" : "");
  $("tree-svg").innerHTML = full ? whole : t; // made by the server from the run's messages, escaped there
  $("tree").dataset.node = node;
  $("tree").dataset.full = full ? "1" : "";
  const folded = whole !== undefined || /class="level folded"/.test(t);
  const toggle = $("tree-full");
  toggle.hidden = whole === undefined;
  toggle.textContent = full ? "fold below round 2" : "draw all rounds";
  $("tree-note").hidden = !folded;
  $("tree-note").textContent = whole !== undefined
    ? (full ? `All ${view.treeBoxes[node]} boxes: scroll sideways at actual size, or fit them to the width.`
      : `Folded below round 2: "draw all rounds" draws all ${view.treeBoxes[node]} boxes.`)
    : `Folded below round 2: the whole tree has ${view.treeBoxes[node] || "too many"} boxes, too many to read on this page.`;
  $("tree").hidden = false;
  fitTree();
}

// A tree wider than its panel is fitted to the width (never cut off on the right), unless
// "actual size" is asked for: then the panel scrolls sideways.
function fitTree() {
  const box = $("tree-svg"), pic = box.querySelector("svg");
  if (!pic) return;
  const actual = $("tree").dataset.actual === "1";
  const wide = Number(pic.getAttribute("width")) > box.clientWidth;
  pic.style.width = !actual && wide ? "100%" : "";
  pic.style.height = "auto";
  $("tree-fit").hidden = !wide;
  $("tree-fit").textContent = actual ? "fit to width" : "actual size";
}

// ---- replay -----------------------------------------------------------------------------

async function openTrace(text) {
  let r;
  try {
    r = await fetch("/api/trace", { method: "POST", body: text, headers: { "content-type": "application/x-ndjson" } });
  } catch (e) {
    showError("cannot reach the server: " + e);
    return;
  }
  if (!r.ok) { showError((await r.text()).trim()); return; }
  startReplay(await r.json());
}

// Replay mode: the cluster panel lists the trace's nodes as replayed (a replay calls no
// node, and the live cluster may not even run), and the Run form is off until the user
// leaves the replay.
function replayMode(trace) {
  const body = $("cluster").tBodies[0];
  body.textContent = "";
  for (const n of trace.nodes) {
    const tr = html("tr", { class: "node replayed", "data-name": n });
    tr.append(html("td", { class: "name" }, n),
      html("td", { class: "url", title: "a trace names nodes, not their addresses" }, "—"),
      html("td", { class: "behaviour", title: "a trace holds calls only: who was a traitor is not in it" }, "—"),
      html("td", { class: "state" }, "replayed"));
    body.append(tr);
  }
  $("cluster-title").textContent = "Cluster of the replayed run";
  $("commander").textContent = "";
  for (const n of trace.nodes) $("commander").append(html("option", { value: n }, n));
  if (trace.commander) $("commander").value = trace.commander;
  for (const e of $("run-form").elements) e.disabled = true;
  $("replay-note").hidden = false;
}

async function leaveReplay() {
  stopReplay();
  resetStage();
  $("replay-note").hidden = true;
  $("cluster-title").textContent = "Cluster";
  for (const e of $("run-form").elements) e.disabled = false;
  setState("idle");
  status("Pick a run and press Start, or open a trace.");
  history.replaceState(null, "", "/");
  await loadCluster();
}

function startReplay(trace) {
  stopReplay();
  clearError();
  resetStage();
  replayMode(trace);
  view = newView(trace.kind, trace.nodes, { commander: trace.commander, m: trace.m, run: trace.run });
  view.title = "replay of " + trace.run + ` (${trace.messages.length} messages)`;
  replay = { trace, next: 0, timer: null };
  setState("replay");
  render();
  $("step").disabled = false;
  $("play").disabled = false;
  replayPosition();
}

function replayPosition() {
  const r = replay;
  $("position").textContent = `${r.next}/${r.trace.messages.length}`;
  status(`Replay of ${r.trace.run}: message ${r.next} of ${r.trace.messages.length}`);
  if (r.next === r.trace.messages.length) {
    $("play").textContent = "Play";
    if (r.trace.decisions || r.trace.trees) {
      showOutcome({ kind: "replay", verdict: "replayed", run: r.trace.run, ic1: true, ic2: true,
        decisions: r.trace.decisions || {}, trees: r.trace.trees || {}, traitors: [],
        full_trees: r.trace.full_trees || {}, tree_boxes: r.trace.tree_boxes || {},
        messages_per_round: r.trace.messages_per_round || [], expected_per_round: r.trace.expected_per_round || [] });
      $("verdict").textContent = "replayed from a trace: each lieutenant's decision rebuilt from the messages it received";
    }
    status(`Replayed ${r.trace.run} from its trace: all ${r.trace.messages.length} messages shown.`);
    setState("replayed");
  }
}

function replayStep() {
  const r = replay;
  if (!r || r.next >= r.trace.messages.length) return false;
  addMessage(r.trace.messages[r.next++]);
  replayPosition();
  return true;
}

function replayPlay() {
  const r = replay;
  if (!r) return;
  if (r.timer) { clearTimeout(r.timer); r.timer = null; $("play").textContent = "Play"; return; }
  if (r.next >= r.trace.messages.length) { startReplay(r.trace); return replayPlay(); }
  $("play").textContent = "Pause";
  const tick = () => {
    if (!replayStep()) { r.timer = null; $("play").textContent = "Play"; return; }
    r.timer = setTimeout(tick, 300 / Number($("speed").value));
  };
  tick();
}

function stopReplay() {
  if (replay && replay.timer) clearTimeout(replay.timer);
  replay = null;
  $("step").disabled = true;
  $("play").disabled = true;
  $("play").textContent = "Play";
  $("position").textContent = "";
}

// ---- start ------------------------------------------------------------------------------

async function main() {
  // A fault of this script is said on the page, not only in a console nobody opens.
  window.addEventListener("error", (e) => showError("page error: " + e.message));
  window.addEventListener("unhandledrejection", (e) => showError("page error: " + e.reason));
  $("kind").addEventListener("change", showKindFields);
  $("run-form").addEventListener("submit", (e) => { e.preventDefault(); startRun(formQuery()); });
  $("trace-file").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    if (f) openTrace(await f.text());
  });
  $("step").addEventListener("click", replayStep);
  $("play").addEventListener("click", replayPlay);
  $("tree-close").addEventListener("click", () => { $("tree").hidden = true; });
  $("tree-full").addEventListener("click", () => showTree($("tree").dataset.node, $("tree").dataset.full !== "1"));
  $("tree-fit").addEventListener("click", () => {
    $("tree").dataset.actual = $("tree").dataset.actual === "1" ? "" : "1";
    fitTree();
  });
  window.addEventListener("resize", fitTree);
  $("leave-replay").addEventListener("click", leaveReplay);
  showKindFields();
  const q = new URLSearchParams(location.search);
  // A replay asks no node: the live cluster is listed only when it is the page's subject.
  if (!q.get("replay")) await loadCluster();
  fillForm(q);
  if (q.get("replay")) {
    const r = await fetch("/api/replay");
    if (!r.ok) { showError((await r.text()).trim()); return; }
    startReplay(await r.json());
    const step = q.get("step");
    const n = step === "all" ? replay.trace.messages.length : Math.max(0, parseInt(step || "0", 10) || 0);
    while (replay.next < n && replayStep()) { /* shown at once */ }
    if (q.get("play")) replayPlay();
  } else if (q.get("run") && document.body.dataset.autostart === "no") {
    // Opened from another site's link or redirect: the form shows the run, a click starts it.
    status("This page was opened from another site with a run in its address: check the form and press Start to run it.");
  } else if (q.get("run")) {
    const run = new URLSearchParams();
    for (const [k, v] of q) if (RUN_PARAMS.includes(k)) run.append(k, v);
    // Anything else is passed on too, so that the server names what it does not know.
    for (const [k, v] of q) if (!RUN_PARAMS.includes(k) && !["pace", "replay", "step", "play"].includes(k)) run.append(k, v);
    startRun(run);
  }
}

main();
