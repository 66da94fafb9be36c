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
const TOP = 92;        // y where the rows start
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
    messages: [], rows: new Map(), rowList: [], decisions: {}, trees: {},
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
  if (document.body.dataset.state === "running") return;
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

function rowKey(m) {
  if (m.round === null || m.round === undefined) return "o|" + m.from;
  return m.round + "|" + (m.path || []).join(">");
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
  view.expectedRows = expectedRows();
  const width = LEFT + (view.nodes.length - 1) * view.col + 90;
  const root = svg("svg", { id: "lamport", xmlns: SVGNS, width, height: TOP + 60, "font-family": "sans-serif" });
  root.append(svg("defs", {}, ""));
  root.firstChild.innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker>';
  root.append(svg("text", { x: 10, y: 18, class: "node" }, view.title || ""));
  root.append(svg("text", { x: 10, y: 34, class: "legend" },
    "time flows down; crimson: sent by a traitor; dashed: failed or late; stub with a bar: denied; circle: ignored"));
  const bands = svg("g", { class: "bands" });
  const lanes = svg("g", { class: "lanes" });
  const msgs = svg("g", { class: "messages" });
  const ends = svg("g", { class: "decisions" });
  root.append(bands, lanes, msgs, ends);
  for (const n of view.nodes) {
    const traitor = view.traitors.has(n);
    const lieutenant = view.kind === "om" && n !== view.commander;
    const head = svg("text", {
      x: x(n), y: 62, "text-anchor": "middle", "data-node": n,
      class: "node" + (traitor ? " traitor" : "") + (lieutenant ? " lieutenant" : ""),
    }, short(n, 14) + (n === view.commander ? " (commander)" : ""));
    if (lieutenant) head.addEventListener("click", () => showTree(n));
    lanes.append(head);
    const b = view.behaviours[n];
    if (b && b !== "honest") {
      lanes.append(svg("text", { x: x(n), y: 76, "text-anchor": "middle", class: "behaviour-label" + (traitor ? " traitor" : "") }, short(b, 18)));
    }
    lanes.append(svg("line", { class: "lifeline", x1: x(n), x2: x(n), y1: TOP - 8, y2: TOP + 40, "data-node": n }));
  }
  d.append(root);
  const drawn = view.messages;
  view.messages = [];
  for (const m of drawn) addMessage(m);
  if (Object.keys(view.decisions).length) drawDecisions();
}

// How many rows a whole run takes (to pick a row height that keeps it on a screen or two).
function expectedRows() {
  const n = view.nodes.length;
  if (view.kind === "original") return n;
  let rows = 0, paths = 1;
  for (let r = 0; r <= (view.m || 0); r++) { rows += paths; paths *= Math.max(n - 1 - r, 1); }
  return rows;
}

function addMessage(m) {
  if (!view) return;
  view.messages.push(m);
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
    if (h >= 14) {
      const label = m.path ? m.path.join(">") : m.from;
      root.querySelector("g.bands").append(svg("text", { class: "row-label", x: 8, y: row.y + 8 }, short(label, 16)));
    }
    view.height += h;
  }
  const traitor = view.traitors.has(m.from);
  const cls = "msg " + m.shown + (traitor ? " traitor" : "");
  const x1 = x(m.from), x2 = x(m.to), y1 = row.y, y2 = row.y + Math.max(h * 0.6, 5);
  const g = svg("g", { class: "message", "data-from": m.from, "data-to": m.to, "data-round": m.round === null ? "" : m.round, "data-shown": m.shown });
  const tip = `${m.from} → ${m.to}: ${m.method}` + (m.path ? ` path ${m.path.join(">")}` : "") +
    ` value ${m.value}` + (m.fault ? `; FAILED: ${m.fault}` : "");
  g.append(svg("title", {}, tip));
  if (m.shown === "denied") {
    const xs = x1 + (x2 - x1) * 0.3;
    g.append(svg("line", { class: cls, x1, y1, x2: xs, y2: y1 + (y2 - y1) * 0.3 }));
    g.append(svg("line", { class: "stop", x1: xs, x2: xs, y1: y1 - 4, y2: y1 + 8 }));
    g.append(svg("text", { class: "mark", x: xs + 4, y: y1 + 4 }, "denied"));
  } else {
    g.append(svg("line", { class: cls, x1, y1, x2, y2, "marker-end": "url(#arrow)" }));
    if (m.shown === "ignored") {
      g.append(svg("circle", { class: "ignored-mark", cx: x2, cy: y2, r: 4 }));
      g.append(svg("text", { class: "mark", x: x2 + 6, y: y2 + 3 }, "ignored"));
    } else if (h >= 14) {
      const dir = x2 > x1 ? -1 : 1;
      g.append(svg("text", { class: "value" + (traitor ? " traitor" : ""), x: x2 + dir * 18, y: y2 - 2, "text-anchor": "middle" },
        m.shown === "late" ? "late" : short(m.value, 8)));
    }
  }
  root.querySelector("g.messages").append(g);
  grow(root);
  $("status").dataset.messages = view.messages.length;
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

function showOutcome(r) {
  const verdict = $("verdict");
  verdict.textContent = "";
  const decisions = {};
  if (r.kind === "original") {
    Object.assign(decisions, r.decisions);
    for (const n of r.ignoring || []) view.traitors.add(n);
    const ok = r.failures === 0;
    verdict.append(html("span", { class: ok ? "holds" : "violated" },
      ok ? `every call succeeded (${r.sends} sends)` : `${r.failures} call(s) failed`));
    if ((r.ignoring || []).length) {
      verdict.append(document.createTextNode(`; ${r.ignoring.join(", ")} answered faulty: it ignores what it receives`));
      for (const m of view.messages) if (r.ignoring.includes(m.to) && m.shown === "delivered") m.shown = "ignored";
    }
  } else {
    Object.assign(decisions, r.traitor_decisions || {}, r.decisions);
    for (const t of r.traitors || []) view.traitors.add(t);
    view.trees = r.trees || {};
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
    tr.append(html("td", {}, "all-to-all"), html("td", {}, String(view.messages.filter((m) => m.shown !== "denied").length)),
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
  const done = r.kind === "original" ? "The original run is over." : `Run ${r.run} is over: ${r.verdict}.`;
  status(replay ? "Replay: " + done : done);
}

function showTree(node) {
  const t = view && view.trees[node];
  if (!t) return;
  $("tree-title").textContent = `${node}'s OM(${view.m}) tree`;
  $("tree-svg").innerHTML = t; // made by the server from the run's messages, escaped there
  $("tree").hidden = false;
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

function startReplay(trace) {
  stopReplay();
  clearError();
  resetStage();
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
        messages_per_round: r.trace.messages_per_round || [], expected_per_round: [] });
      $("verdict").textContent = "replayed from a trace: each lieutenant's decision rebuilt from the messages it received";
    }
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
  showKindFields();
  await loadCluster();
  const q = new URLSearchParams(location.search);
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
