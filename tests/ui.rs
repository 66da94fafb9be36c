//! `client ui`: the live page's server side over HTTP (the run stream, one run at a time, bad
//! queries, readers that go away, replays), and the page itself in headless Chromium (ignored
//! by default: it needs chromium; `scripts/test.sh` runs them).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::browser::Browser;
use crate::common::*;
use serde_json::{Value as Json, json};

/// `client ARGS ui --listen 127.0.0.1:0 EXTRA` (a later `--listen` in EXTRA wins), and the
/// port its page is served on (read from the URL it prints, within a deadline).
fn ui(before: &[&str], extra: &[&str]) -> (Proc, u16) {
    let mut cmd = Command::new(client_bin());
    let listen = if extra.contains(&"--listen") {
        vec!["ui"]
    } else {
        vec!["ui", "--listen", "127.0.0.1:0"]
    };
    cmd.args(before).args(listen).args(extra);
    let p = Proc::spawn(cmd);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = p.stdout_so_far();
        if let Some(url) = out.split_whitespace().find(|w| w.starts_with("http://")) {
            let port = url
                .trim_end_matches('/')
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            return (p, port);
        }
        assert!(
            Instant::now() < deadline,
            "no URL printed: {out}\n{}",
            p.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET path` over HTTP/1.0 (the answer ends when the server closes), as the page's own
/// address: status, head, body.
fn get(port: u16, path: &str) -> (u16, String, String) {
    let (status, head, body) = http_raw(
        port,
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes(),
    );
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// `POST path` with `body` and extra header lines (each ending in `\r\n`), over HTTP/1.0:
/// status, head, body.
fn post_as(port: u16, path: &str, headers: &str, body: &str) -> (u16, String, String) {
    let request = format!(
        "POST {path} HTTP/1.0\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    );
    let (status, head, body) = http_raw(port, request.as_bytes());
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// A run started as the page starts one: `POST /api/run` with the form, from the page's own
/// origin. Status, head, body (the whole SSE stream).
fn run(port: u16, form: &str) -> (u16, String, String) {
    let headers = format!(
        "Host: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    );
    post_as(port, "/api/run", &headers, form)
}

/// Resident memory of a process, in KiB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The events of an SSE body: (name, id, data).
fn events(body: &str) -> Vec<(String, u64, Json)> {
    body.split("\n\n")
        .filter(|b| b.contains("event: "))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or_else(|| panic!("no {name} in {block}"))
                    .to_string()
            };
            (
                field("event: "),
                field("id: ").parse().unwrap(),
                serde_json::from_str(&field("data: ")).unwrap(),
            )
        })
        .collect()
}

/// The four nodes P..S, none faulty in the original's sense, S two-faced.
fn two_faced_s() -> Cluster {
    Cluster::rust(&["--faulty", "", "--behaviour", "S=two-faced"])
}

#[test]
fn the_stream_carries_every_message_of_a_run_in_order_and_ends() {
    let c = two_faced_s();
    let (_ui, port) = ui(&["--port-base", &c.base.to_string()], &[]);
    let (status, head, body) = run(port, "run=om&m=1&seed=42");
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let items = events(&body);
    let names: Vec<&str> = items.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"start"), "{names:?}");
    assert_eq!(&names[names.len() - 2..], ["result", "end"], "{names:?}");
    let ids: Vec<u64> = items.iter().map(|(_, id, _)| *id).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    let start = &items[0].2;
    assert_eq!(start["run"], "om-42");
    assert_eq!(start["nodes"].as_array().unwrap().len(), 4);
    assert_eq!(start["expected_per_round"], json!([3, 6]));
    let messages: Vec<&Json> = (items.iter())
        .filter(|(n, _, _)| n == "message")
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(messages.len(), 9, "OM(1) over 4 nodes sends 3 + 6");
    let rounds: Vec<u64> = messages
        .iter()
        .map(|m| m["round"].as_u64().unwrap())
        .collect();
    assert!(rounds.is_sorted(), "round by round: {rounds:?}");
    // Every message once: the commander's three, then each lieutenant's relays to the other
    // two (the nodes' traces are the driver's to read: the run's capability).
    let streamed: BTreeSet<(String, String, u64)> = messages
        .iter()
        .map(|m| {
            (
                m["from"].as_str().unwrap().to_string(),
                m["to"].as_str().unwrap().to_string(),
                m["round"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut expected = BTreeSet::new();
    for to in ["Q", "R", "S"] {
        expected.insert(("P".to_string(), to.to_string(), 1));
        for from in ["Q", "R", "S"].into_iter().filter(|f| *f != to) {
            expected.insert((from.to_string(), to.to_string(), 2));
        }
    }
    assert_eq!(streamed, expected);
    // S, two-faced, sends crimson-worthy lies: the result names it, and IC1 holds.
    let result = &items[items.len() - 2].2;
    assert_eq!(result["verdict"], "holds", "{result}");
    assert_eq!(result["traitors"], json!(["S"]));
    assert_eq!(result["decisions"], json!({"Q": "attack", "R": "attack"}));
    assert!(result["trees"]["Q"].as_str().unwrap().contains("<svg"));
}

/// A run started as the page does, on a raw connection, read up to its `start` event.
fn started(port: u16, form: &str) -> TcpStream {
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let request = format!(
        "POST /api/run HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    first.write_all(request.as_bytes()).unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while !String::from_utf8_lossy(&seen).contains("event: start") {
        let n = first.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before the start");
        seen.extend_from_slice(&chunk[..n]);
    }
    first
}

/// One run at a time; and a run whose reader went away is stopped (issue 26: one whose
/// reader left held the page's only run slot until its end, about 60 s for the original run
/// with 5 s between sends): the slot is free again before the run's next send was due, and
/// the nodes got no more of it.
#[test]
fn one_run_at_a_time_and_a_run_whose_reader_left_is_stopped() {
    let c = Cluster::rust(&[]);
    let (_ui, port) = ui(&["--port-base", &c.base.to_string()], &[]);
    // The original run, slowed: 12 sends 5 s apart (a minute).
    let delay = Duration::from_millis(5000);
    let first = started(port, "run=original&delay_ms=5000");
    let (status, _, body) = run(port, "run=om&m=1");
    assert_eq!(status, 409, "{body}");
    assert!(
        body.starts_with("a run is going (original, started"),
        "{body}"
    );
    assert!(body.contains("one run at a time"), "{body}");
    // The reader goes away: the run is stopped and a new run is taken.
    let left = Instant::now();
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, body) = loop {
        let (status, _, body) = run(port, "run=om&m=1&seed=7");
        if status != 409 || Instant::now() > deadline {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let freed = left.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("event: end"), "{body}");
    assert!(
        freed < delay,
        "the slot was held {freed:?}, past the next send"
    );
    // Stopped after its first send: P's message to Q, and nothing else of it.
    let original: usize = ["P", "Q", "R", "S"]
        .iter()
        .map(|n| messages(c.port(n)).len())
        .sum();
    assert!(
        original <= 1,
        "{original} messages of the stopped run were sent"
    );
}

#[test]
fn bad_queries_get_the_reason_and_the_page_keeps_serving() {
    let c = Cluster::rust(&[]);
    let (_ui, port) = ui(&["--port-base", &c.base.to_string()], &[]);
    for (query, says) in [
        ("", "no run given"),
        ("run=nope", "run=nope: not a run"),
        ("run=om&m=x", "m=x: not a whole number"),
        ("run=om&m=2", "needs at least 7 nodes"),
        (
            "run=om&commander=http://10.0.0.1/",
            "not a node of this cluster",
        ),
        ("run=om&url=http://10.0.0.1/", "unknown parameter 'url'"),
        ("run=om&order=%FF", "order="),
    ] {
        let (status, head, body) = run(port, query);
        assert_eq!(status, 400, "{query}: {body}");
        assert!(head.contains("text/plain"), "{head}");
        assert!(body.contains(says), "{query}: {body}");
    }
    let (status, _, body) = run(
        port,
        &format!("run=original&decision={}", "x".repeat(20_000)),
    );
    assert_eq!(status, 413, "{body}");
    let (status, _, body) = get(port, "/nowhere");
    assert_eq!((status, body.trim()), (404, "/nowhere: no such page"));
    let (status, _, _) = post(port, "/", b"x");
    assert_eq!(status, 405);
    let (status, _, body) = post(port, "/api/trace", b"{\"run\": 1}\nnot json\n");
    assert_eq!(status, 400);
    assert!(body.starts_with(b"line 1: not a call recorded by --trace"));
    let (status, _, body) = get(port, "/api/replay");
    assert_eq!(status, 404);
    assert!(body.contains("--replay FILE"), "{body}");
    // Still serving, the cluster intact.
    let (status, _, body) = get(port, "/api/cluster");
    assert_eq!(status, 200);
    let cluster: Json = serde_json::from_str(&body).unwrap();
    let nodes = cluster["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    assert!(nodes.iter().all(|n| n["reachable"] == json!(true)));
    assert_eq!(nodes[0]["behaviour"], "deny:R,S");
    let (status, head, page) = get(port, "/");
    assert_eq!(status, 200);
    assert!(head.contains("text/html"));
    assert!(page.contains("<script src=\"/page.js\">"));
    // Nothing is fetched from elsewhere: no address but the SVG namespace (a name, never
    // fetched) appears in the page, its script or its style.
    for part in ["/", "/page.js", "/page.css"] {
        let (status, _, text) = get(port, part);
        assert_eq!(status, 200, "{part}");
        let text = text.replace("\"http://www.w3.org/2000/svg\"", "");
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{part}"
        );
        assert!(!text.contains("@import"), "{part}");
    }
}

#[test]
fn spawn_ui_serves_its_own_cluster_and_a_port_in_use_is_refused() {
    let base = port_base();
    let (proc, port) = ui(
        &["--spawn", "--port-base", &base.to_string()],
        &["--cluster-size", "5", "--behaviour", "N2=flip"],
    );
    let (status, _, body) = get(port, "/api/cluster");
    assert_eq!(status, 200, "{body}");
    let cluster: Json = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = (cluster["nodes"].as_array().unwrap().iter())
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["N0", "N1", "N2", "N3", "N4"]);
    assert_eq!(cluster["nodes"][2]["behaviour"], "flip");
    // The page's own port, taken: the error says so, exit 1.
    let out = Command::new(client_bin())
        .args(["ui", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--port-base", &base.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot serve the page on 127.0.0.1:{port}")),
        "{err}"
    );
    // The nodes' ports, taken: the server's message.
    let out = Command::new(client_bin())
        .args(["--spawn", "--port-base", &base.to_string(), "ui"])
        .args(["--listen", "127.0.0.1:0", "--cluster-size", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Address already in use"), "{err}");
    proc.sigterm();
    let (status, _, _) = proc.wait(Duration::from_secs(10));
    assert!(status.success(), "SIGTERM stops the page: {status:?}");
}

#[test]
fn a_committed_trace_replays() {
    let trace = root().join("tests/data/om1-two-faced-s.jsonl");
    let lines = std::fs::read_to_string(&trace).unwrap().lines().count();
    let (_ui, port) = ui(
        &["--port-base", "1"],
        &["--replay", trace.to_str().unwrap()],
    );
    let (status, _, body) = get(port, "/api/replay");
    assert_eq!(status, 200, "{body}");
    let view: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(view["kind"], "om");
    assert_eq!(view["messages"].as_array().unwrap().len(), lines);
    assert_eq!(view["commander"], "P");
    assert_eq!(
        view["decisions"],
        json!({"Q": "attack", "R": "attack", "S": "attack"})
    );
    // The two-faced S told half of its receivers the opposite.
    let lies = (view["messages"].as_array().unwrap().iter())
        .filter(|m| m["from"] == "S" && m["value"] == "retreat")
        .count();
    assert_eq!(lies, 1, "{view}");
}

/// The page of `client ui` against an in-process cluster (`--spawn`), in a real browser.
fn page(browser: &mut Browser, port: u16, query: &str) -> crate::common::browser::Page {
    let page = browser.open(&format!("http://127.0.0.1:{port}/{query}"));
    let ended = browser.wait_for(
        &page,
        "['done', 'error', 'replayed'].includes(document.body.dataset.state)",
        Duration::from_secs(60),
    );
    assert!(ended, "the page did not finish: {}", browser.dom(&page));
    page
}

/// Text of the elements matching `selector`, one string each.
fn texts(
    browser: &mut Browser,
    page: &crate::common::browser::Page,
    selector: &str,
) -> Vec<String> {
    let v = browser.eval(
        page,
        &format!("[...document.querySelectorAll({selector:?})].map(e => e.textContent)"),
    );
    serde_json::from_value(v).unwrap()
}

/// A screenshot of what `page` shows, checked to be a PNG; written to `docs/screens/NAME`
/// (the pictures docs/page.md lists) when `GENERALS_UPDATE_DOCS=1`.
fn screen(browser: &mut Browser, page: &crate::common::browser::Page, name: &str) {
    let png = browser.screenshot(page);
    assert_eq!(&png[1..4], b"PNG");
    if std::env::var_os("GENERALS_UPDATE_DOCS").is_some() {
        let dir = root().join("docs/screens");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), &png).unwrap();
    }
}

/// Pairs of elements matching `a` and `b` whose boxes on the screen overlap, as
/// "TEXT-OF-A / TEXT-OF-B" (a label run into an arrow or another label).
fn overlaps(
    browser: &mut Browser,
    page: &crate::common::browser::Page,
    a: &str,
    b: &str,
) -> Vec<String> {
    let v = browser.eval(
        page,
        &format!(
            "(() => {{ const out = []; \
             for (const x of document.querySelectorAll({a:?})) for (const y of document.querySelectorAll({b:?})) {{ \
               if (x === y || x.contains(y) || y.contains(x)) continue; \
               const r = x.getBoundingClientRect(), q = y.getBoundingClientRect(); \
               if (r.left < q.right && q.left < r.right && r.top < q.bottom && q.top < r.bottom) \
                 out.push(x.textContent + ' / ' + (y.textContent || y.closest('g').getAttribute('data-to'))); }} \
             return out; }})()"
        ),
    );
    serde_json::from_value(v).unwrap()
}

#[test]
#[ignore]
fn the_page_runs_om_live_in_a_browser() {
    let base = port_base().to_string();
    let (_ui, port) = ui(
        &["--spawn", "--port-base", &base],
        &["--faulty", "", "--behaviour", "S=two-faced"],
    );
    let mut b = Browser::launch(1280, 900);
    let p = page(&mut b, port, "?run=om&m=1&seed=42&pace=0");
    assert_eq!(
        b.eval(&p, "document.body.dataset.state"),
        "done",
        "{}",
        b.dom(&p)
    );
    assert_eq!(texts(&mut b, &p, "#cluster td.name"), ["P", "Q", "R", "S"]);
    assert_eq!(texts(&mut b, &p, "#cluster tr.traitor td.name"), ["S"]);
    assert_eq!(texts(&mut b, &p, "#lamport g.message").len(), 9);
    assert_eq!(
        texts(&mut b, &p, "#lamport g.message line.msg.traitor").len(),
        2,
        "S's relays (to Q and R) are crimson"
    );
    assert_eq!(
        texts(&mut b, &p, "#decisions td"),
        ["Q", "attack", "R", "attack", "S (traitor)", "attack"]
    );
    let verdict = texts(&mut b, &p, "#verdict").join("");
    assert!(verdict.contains("IC1 holds"), "{verdict}");
    assert!(verdict.contains("IC2 holds"), "{verdict}");
    assert_eq!(
        texts(&mut b, &p, "#rounds td"),
        ["1", "3", "3", "2", "6", "6"]
    );
    let report = texts(&mut b, &p, "#report").join("");
    assert!(
        report.starts_with("OM(1) with n=4 nodes, commander P orders attack (run om-42"),
        "{report}"
    );
    // A lieutenant's tree on click.
    b.eval(&p, "document.querySelector('#lamport text.lieutenant[data-node=R]').dispatchEvent(new MouseEvent('click'))");
    assert_eq!(b.eval(&p, "document.getElementById('tree').hidden"), false);
    // R's OM(1) tree: the commander's order and what Q and S relayed of it.
    assert_eq!(texts(&mut b, &p, "#tree-svg .tree-node").len(), 3);
    let title = texts(&mut b, &p, "#tree-title").join("");
    assert_eq!(title, "R's OM(1) tree");
    // A bad query: the page says why, nothing runs.
    let p = page(&mut b, port, "?run=om&m=9");
    assert_eq!(b.eval(&p, "document.body.dataset.state"), "error");
    let error = texts(&mut b, &p, "#error").join("");
    assert!(error.contains("OM(9) needs at least 28 nodes"), "{error}");
}

#[test]
#[ignore]
fn the_page_runs_the_original_live_in_a_browser() {
    let base = port_base().to_string();
    let (_ui, port) = ui(&["--spawn", "--port-base", &base], &[]);
    let mut b = Browser::launch(1280, 900);
    let p = page(&mut b, port, "?run=original&delay_ms=0&pace=0");
    assert_eq!(b.eval(&p, "document.body.dataset.state"), "done");
    // 12 sends: P denies R and S (stubs), the rest are messages; P ignores what it gets.
    assert_eq!(texts(&mut b, &p, "#lamport g.message").len(), 12);
    assert_eq!(
        texts(&mut b, &p, "#lamport g.message[data-shown=denied]").len(),
        2
    );
    assert_eq!(
        texts(&mut b, &p, "#lamport g.message[data-shown=ignored]").len(),
        3
    );
    // Each denied send has a row of its own, its label clear of P's message to Q and of
    // every other label (as `--svg` draws it).
    let ys: Vec<String> = serde_json::from_value(b.eval(
        &p,
        "[...document.querySelectorAll('#lamport g.message[data-from=P] line.msg')].map(l => l.getAttribute('y1'))",
    ))
    .unwrap();
    assert_eq!(ys.len(), 3, "{ys:?}");
    assert_eq!(
        ys.iter().collect::<BTreeSet<_>>().len(),
        3,
        "one row each: {ys:?}"
    );
    assert_eq!(
        texts(&mut b, &p, "#lamport text.row-label"),
        ["P", "Q", "R", "S"],
        "each sender named once, at its first send"
    );
    assert_eq!(
        texts(
            &mut b,
            &p,
            "#lamport g.message[data-shown=denied] text.mark"
        ),
        ["denied to R", "denied to S"]
    );
    let marks = "#lamport g.message[data-shown=denied] text.mark";
    let clash = overlaps(&mut b, &p, marks, "#lamport line.msg:not(.denied)");
    assert!(clash.is_empty(), "{clash:?}");
    // One row per send, as `--svg` draws them: no label runs into another.
    let labels = "#lamport text.value, #lamport text.mark";
    let clash = overlaps(&mut b, &p, labels, labels);
    assert!(clash.is_empty(), "{clash:?}");
    // The outcome says what happened, as the counts beside it do: 10 of 12 sends delivered.
    let verdict = texts(&mut b, &p, "#verdict").join("");
    assert!(!verdict.contains("every call succeeded"), "{verdict}");
    assert!(
        verdict.starts_with("12 sends: 10 delivered (3 of them to the faulty P, which ignores"),
        "{verdict}"
    );
    assert!(
        verdict.contains("2 denied by the faulty P (to R, S)"),
        "{verdict}"
    );
    assert_eq!(
        b.eval(
            &p,
            "getComputedStyle(document.querySelector('#verdict span')).color"
        ),
        "rgb(34, 34, 34)",
        "not green: nothing here is a verdict"
    );
    assert_eq!(texts(&mut b, &p, "#rounds td"), ["all-to-all", "10", "12"]);
    assert!(
        texts(&mut b, &p, "#rows-legend")
            .join("")
            .contains("one per send, in the order made, labelled with its sender"),
    );
    screen(&mut b, &p, "original.png");
    let lines = texts(&mut b, &p, "#lines .line.stdout");
    let finals: Vec<&String> = lines.iter().rev().take(4).rev().collect();
    assert_eq!(
        finals,
        [
            "Process P finalized decision: faulty",
            "Process Q finalized decision: attack",
            "Process R finalized decision: attack",
            "Process S finalized decision: attack"
        ],
        "{lines:?}"
    );
}

#[test]
#[ignore]
fn the_page_replays_a_committed_trace_in_a_browser() {
    let trace = root().join("tests/data/om1-two-faced-s.jsonl");
    let (_ui, port) = ui(
        &["--port-base", "1"],
        &["--replay", trace.to_str().unwrap()],
    );
    let mut b = Browser::launch(1280, 900);
    // Step by step: two messages, then all of them.
    let p = b.open(&format!("http://127.0.0.1:{port}/?replay=1&step=2"));
    assert!(b.wait_for(
        &p,
        "document.getElementById('position').textContent === '2/9'",
        Duration::from_secs(30)
    ));
    assert_eq!(texts(&mut b, &p, "#lamport g.message").len(), 2);
    b.eval(&p, "document.getElementById('step').click()");
    assert_eq!(texts(&mut b, &p, "#lamport g.message").len(), 3);
    let p = page(&mut b, port, "?replay=1&step=all");
    assert_eq!(texts(&mut b, &p, "#lamport g.message").len(), 9);
    assert_eq!(
        texts(&mut b, &p, "#decisions td"),
        ["Q", "attack", "R", "attack", "S", "attack"]
    );
    assert_eq!(
        texts(&mut b, &p, "#rounds td"),
        ["1", "3", "3", "2", "6", "6"]
    );
    // A replay has no live cluster: the trace's nodes, replayed; no node is asked.
    assert_eq!(texts(&mut b, &p, "#cluster td.name"), ["P", "Q", "R", "S"]);
    assert_eq!(texts(&mut b, &p, "#cluster td.state"), ["replayed"; 4]);
    assert_eq!(
        texts(&mut b, &p, "#cluster-title"),
        ["Cluster of the replayed run"]
    );
    // The Run form is off, and says why.
    assert_eq!(
        b.eval(
            &p,
            "[...document.getElementById('run-form').elements].every(e => e.disabled)"
        ),
        true
    );
    assert_eq!(
        b.eval(&p, "document.getElementById('replay-note').hidden"),
        false
    );
    assert_eq!(
        texts(&mut b, &p, "#status"),
        ["Replayed om-42 from its trace: all 9 messages shown."]
    );
    screen(&mut b, &p, "replay.png");
    // Leaving the replay: the live cluster (none runs here) and the form again.
    b.eval(&p, "document.getElementById('leave-replay').click()");
    assert!(b.wait_for(
        &p,
        "[...document.querySelectorAll('#cluster td.state')].map(e => e.textContent).join() === 'unreachable,unreachable,unreachable,unreachable'",
        Duration::from_secs(30)
    ));
    assert_eq!(
        b.eval(
            &p,
            "[...document.getElementById('run-form').elements].some(e => e.disabled)"
        ),
        false
    );
}

#[test]
#[ignore]
fn the_page_draws_what_a_faulty_commander_withheld_and_says_what_ic1_and_ic2_mean() {
    let base = port_base().to_string();
    // The default cluster: P is faulty, and as a commander it denies R and S their order.
    let (_ui, port) = ui(&["--spawn", "--port-base", &base], &[]);
    let mut b = Browser::launch(1280, 900);
    let p = page(&mut b, port, "?run=om&m=1&seed=42&pace=0");
    assert_eq!(
        b.eval(&p, "document.body.dataset.state"),
        "done",
        "{}",
        b.dom(&p)
    );
    let withheld: Vec<String> = serde_json::from_value(b.eval(
        &p,
        "[...document.querySelectorAll('#lamport g.message[data-shown=withheld]')].map(g => g.dataset.from + '>' + g.dataset.to + ' ' + g.dataset.round)",
    ))
    .unwrap();
    assert_eq!(withheld, ["P>R 1", "P>S 1"]);
    assert_eq!(
        texts(
            &mut b,
            &p,
            "#lamport g.message[data-shown=withheld] text.mark"
        ),
        ["withheld from R", "withheld from S"]
    );
    let marks = "#lamport g.message[data-shown=withheld] text.mark";
    let clash = overlaps(
        &mut b,
        &p,
        marks,
        "#lamport text.value, #lamport text.mark, #lamport line.msg:not(.withheld)",
    );
    assert!(clash.is_empty(), "{clash:?}");
    // The messages that were sent are counted as before: the stubs are not messages.
    assert_eq!(
        texts(&mut b, &p, "#lamport g.message:not([data-shown=withheld])").len(),
        3
    );
    assert_eq!(
        texts(&mut b, &p, "#rounds td"),
        ["1", "1", "3", "2", "2", "6"]
    );
    let legend = texts(&mut b, &p, "#lamport text.legend").join(" ");
    assert!(legend.contains("a message a traitor withheld"), "{legend}");
    assert!(
        legend.contains("P>Q is the order as P told it to Q, which Q passes on to the others"),
        "{legend}"
    );
    assert_eq!(texts(&mut b, &p, "#lamport text.row-label")[0], "P");
    // The verdict, and what it means, in the checker's words.
    let verdict = texts(&mut b, &p, "#verdict").join("");
    assert!(
        verdict.starts_with("IC1 holds, IC2 holds (vacuously"),
        "{verdict}"
    );
    assert_eq!(
        texts(&mut b, &p, "#ic-explained li"),
        [
            "IC1: all loyal lieutenants decide the same value.",
            "IC2: if the commander is loyal, every loyal lieutenant decides the commander's order."
        ]
    );
    screen(&mut b, &p, "om-withheld.png");
}

#[test]
#[ignore]
fn the_tree_panel_offers_what_the_page_can_draw_and_fits_its_width() {
    let base = port_base().to_string();
    let (_ui, port) = ui(
        &["--spawn", "--port-base", &base, "--cluster-size", "7"],
        &["--faulty", "", "--behaviour", "N4=two-faced"],
    );
    let mut b = Browser::launch(1280, 900);
    let p = page(&mut b, port, "?run=om&m=2&seed=5&commander=N0&pace=0");
    assert_eq!(
        b.eval(&p, "document.body.dataset.state"),
        "done",
        "{}",
        b.dom(&p)
    );
    b.eval(&p, "document.querySelector('#lamport text.lieutenant[data-node=N3]').dispatchEvent(new MouseEvent('click'))");
    // Folded (26 boxes): the root and round 2, and the page offers what it can draw.
    assert_eq!(texts(&mut b, &p, "#tree-svg .tree-node").len(), 6);
    let panel = texts(&mut b, &p, "#tree").join("");
    assert!(
        !panel.contains("--depth"),
        "the page has no --depth: {panel}"
    );
    assert!(
        panel.contains("rounds 3..3 folded: 20 boxes not drawn"),
        "{panel}"
    );
    assert_eq!(
        texts(&mut b, &p, "#tree-note"),
        ["Folded below round 2: \"draw all rounds\" draws all 26 boxes."]
    );
    // Not cut off on the right: fitted to the panel.
    let fits = "(() => { const s = document.querySelector('#tree-svg svg').getBoundingClientRect(), \
                box = document.getElementById('tree-svg').getBoundingClientRect(); \
                return s.right <= box.right + 1 && s.left >= box.left - 1; })()";
    assert_eq!(b.eval(&p, fits), true);
    b.eval(&p, "document.getElementById('tree').scrollIntoView()");
    screen(&mut b, &p, "om2-tree.png");
    // All rounds: the 26 boxes, fitted too.
    b.eval(&p, "document.getElementById('tree-full').click()");
    assert_eq!(texts(&mut b, &p, "#tree-svg .tree-node").len(), 26);
    assert_eq!(
        texts(&mut b, &p, "#tree-title"),
        ["N3's OM(2) tree, all rounds"]
    );
    assert_eq!(b.eval(&p, fits), true);
    // At actual size, the panel scrolls sideways (its box holds, the picture moves).
    b.eval(&p, "document.getElementById('tree-fit').click()");
    assert_eq!(
        b.eval(&p, "(() => { const box = document.getElementById('tree-svg'); return box.scrollWidth > box.clientWidth && getComputedStyle(box).overflowX === 'auto'; })()"),
        true
    );
    assert_eq!(
        b.eval(&p, "document.getElementById('tree').getBoundingClientRect().right <= document.documentElement.clientWidth"),
        true
    );
}

/// The README's picture: the page in the middle of an OM(2) run over 7 nodes. Written to
/// `docs/ui-om2-seven.png` when `GENERALS_UPDATE_DOCS=1`, else checked and thrown away.
#[test]
#[ignore]
fn a_screenshot_of_om2_over_seven_nodes_mid_run() {
    let base = port_base().to_string();
    let (_ui, port) = ui(
        &["--spawn", "--port-base", &base, "--cluster-size", "7"],
        &["--faulty", "", "--behaviour", "N4=two-faced"],
    );
    let mut b = Browser::launch(1400, 1000);
    let p = b.open(&format!(
        "http://127.0.0.1:{port}/?run=om&m=2&seed=5&commander=N0&pace=15"
    ));
    // Mid-run: round 3 has begun on the page (over 40 of the 156 messages drawn).
    assert!(
        b.wait_for(
            &p,
            "Number(document.getElementById('status').dataset.messages || 0) > 40",
            Duration::from_secs(60)
        ),
        "{}",
        b.dom(&p)
    );
    let png = b.screenshot(&p);
    assert_eq!(&png[1..4], b"PNG");
    let drawn: u64 = b
        .eval(
            &p,
            "Number(document.getElementById('status').dataset.messages)",
        )
        .as_u64()
        .unwrap();
    assert!(drawn < 156, "taken mid-run: {drawn} of 156 drawn");
    if std::env::var_os("GENERALS_UPDATE_DOCS").is_some() {
        std::fs::write(root().join("docs/ui-om2-seven.png"), &png).unwrap();
    }
    // Let the run end before the cluster stops.
    assert!(b.wait_for(
        &p,
        "document.body.dataset.state === 'done'",
        Duration::from_secs(60)
    ));
}

#[test]
fn serving_beyond_loopback_warns() {
    let (proc, port) = ui(&["--port-base", "1"], &["--listen", "0.0.0.0:0"]);
    let (status, _, _) = get(port, "/");
    assert_eq!(status, 200);
    let err = proc.stderr_so_far();
    assert!(
        err.contains("client: warning: serving the page on 0.0.0.0:")
            && err.contains("anyone who can reach it start runs"),
        "{err}"
    );
    let (out, _) = proc.stop();
    assert!(out.starts_with("generals ui: http://127.0.0.1:"), "{out}");
}

#[test]
fn the_page_watches_a_python_cluster() {
    let c = Cluster::builder().server(Side::Python, &[]).start();
    let (_ui, port) = ui(&["--port-base", &c.base.to_string()], &[]);
    let (status, _, body) = get(port, "/api/cluster");
    assert_eq!(status, 200, "{body}");
    let cluster: Json = serde_json::from_str(&body).unwrap();
    for node in cluster["nodes"].as_array().unwrap() {
        // The original server.py has no node_info: reachable, behaviour unknown.
        assert_eq!(node["reachable"], json!(true), "{node}");
        assert_eq!(node["behaviour"], json!(null), "{node}");
    }
    let (status, _, body) = run(port, "run=original&delay_ms=0");
    assert_eq!(status, 200, "{body}");
    let items = events(&body);
    let sends: Vec<&Json> = (items.iter())
        .filter(|(n, _, _)| n == "message")
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(sends.len(), 12, "{body}");
    let denied = sends.iter().filter(|m| m["shown"] == "denied").count();
    assert_eq!(denied, 2, "P denies R and S");
    let finals: Vec<String> = (items.iter())
        .filter(|(n, _, d)| n == "line" && d["text"].as_str().unwrap().contains("finalized"))
        .map(|(_, _, d)| d["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(finals.len(), 4, "{finals:?}");
    let result = &items[items.len() - 2].2;
    assert_eq!(result["ignoring"], json!(["P"]), "{result}");
    // An OM run needs the agreement extension: the stream says so, and ends.
    let (status, _, body) = run(port, "run=om&m=1&seed=1");
    assert_eq!(status, 200);
    let items = events(&body);
    let error = items.iter().find(|(n, _, _)| n == "error").expect(&body);
    assert!(
        error.2["error"]
            .as_str()
            .unwrap()
            .contains("does not speak the agreement extension"),
        "{body}"
    );
    assert_eq!(items.last().unwrap().0, "end");
}

/// Loopback written as IPv6 (`[::1]`, as in a URL) or IPv4-mapped is loopback: the page and
/// its spawned nodes served there warn of nothing (issue 26: they warned that loopback
/// exposes the node to the network).
#[test]
fn serving_on_ipv6_loopback_does_not_warn() {
    let base = port_base().to_string();
    for (before, listen) in [
        (
            vec!["--spawn", "--host", "[::1]", "--port-base", base.as_str()],
            "[::1]:0",
        ),
        (vec!["--port-base", "1"], "[::ffff:127.0.0.1]:0"),
    ] {
        let (proc, _) = ui(&before, &["--listen", listen]);
        let (out, err) = proc.stop();
        assert!(out.starts_with("generals ui: http://"), "{out}");
        assert!(!err.contains("warning"), "{listen}: {err}");
    }
}

/// The page trusted every website (issue 26): `GET /api/run?...` with a foreign `Origin` (or
/// `Origin: null`), or simply an `<img>` on another page, started runs and stored a
/// caller-chosen decision on every node; a rebound DNS name (`Host: rebind.evil.example`)
/// read the cluster and the event stream; a cross-origin `text/plain` POST of a trace was
/// processed. Now a GET starts nothing, and only the page's own address and origin are
/// answered: anything else is HTTP 403 with the reason, and nothing runs.
#[test]
fn requests_from_other_sites_and_names_are_refused() {
    let c = Cluster::rust(&[]);
    let (_ui, port) = ui(&["--port-base", &c.base.to_string()], &[]);
    let form = "run=original&delay_ms=0&decision=pwned-by-evil-page";
    // What an <img src> on another page sends: a GET, no Origin.
    let (status, _, body) = http_raw_text(
        port,
        &format!(
            "GET /api/run?{form} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nSec-Fetch-Site: cross-site\r\n\r\n"
        ),
    );
    assert_eq!(status, 405, "{body}");
    assert!(body.contains("a GET never starts a run"), "{body}");
    // A form or a script on another site: a POST with its Origin (or `null`, from a sandbox).
    for origin in [
        "http://evil.example",
        "null",
        "http://127.0.0.1:1",
        "https://127.0.0.1",
    ] {
        let headers =
            format!("Host: 127.0.0.1:{port}\r\nOrigin: {origin}\r\nContent-Type: text/plain\r\n");
        let (status, _, body) = post_as(port, "/api/run", &headers, form);
        assert_eq!(status, 403, "{origin}: {body}");
        assert!(
            body.starts_with(&format!("Origin {origin}: only this page")),
            "{body}"
        );
        assert_eq!(body.trim_end().lines().count(), 1, "one line: {body}");
        let trace = "{\"run\":\"x\"}\n";
        let (status, _, _) = post_as(port, "/api/trace", &headers, trace);
        assert_eq!(status, 403, "{origin}: the trace");
    }
    // A name of another site pointed at this machine (DNS rebinding), for every route.
    for path in ["/", "/page.js", "/api/cluster", "/api/replay"] {
        let (status, _, body) = http_raw_text(
            port,
            &format!("GET {path} HTTP/1.0\r\nHost: rebind.evil.example:{port}\r\n\r\n"),
        );
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.starts_with("Host rebind.evil.example"), "{body}");
    }
    let headers = format!("Host: rebind.evil.example:{port}\r\n");
    let (status, _, _) = post_as(port, "/api/run", &headers, form);
    assert_eq!(status, 403);
    let (status, _, body) = http_raw_text(port, "GET / HTTP/1.0\r\n\r\n");
    assert_eq!(status, 403, "no Host: {body}");
    // Nothing ran: no node stored the decision.
    for node in ["P", "Q", "R", "S"] {
        assert!(messages(c.port(node)).is_empty(), "{node}");
    }
    // The page itself (its origin, or none as from curl) is served, by name or address.
    let (status, _, _) = run(port, "run=original&delay_ms=0");
    assert_eq!(status, 200);
    let curl = format!("Host: localhost:{port}\r\n");
    let (status, _, body) = post_as(port, "/api/run", &curl, "run=om&m=1&seed=3");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("event: end"));
}

/// A raw exchange, the body as text.
fn http_raw_text(port: u16, request: &str) -> (u16, String, String) {
    let (status, head, body) = http_raw(port, request.as_bytes());
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// A trace naming `names` nodes with one OM path of `depth` of them (the rest appear as
/// receivers): a few hundred bytes.
fn tree_bomb(names: usize, depth: usize) -> String {
    let name = |i: usize| char::from(b'A' + i as u8).to_string();
    let path: Vec<String> = (0..depth).map(name).collect();
    let mut lines = Vec::new();
    // The path's own nodes, each a receiver of its prefix.
    for k in 1..depth {
        lines.push(serde_json::json!({
            "run": "om-1", "from": path[k - 1], "to": path[k], "method": "om_message",
            "args": ["om-1", path[..k], "attack"], "result": "1", "start_us": 1, "end_us": 2,
        }));
    }
    for to in depth..names {
        lines.push(serde_json::json!({
            "run": "om-1", "from": path[depth - 1], "to": name(to), "method": "om_message",
            "args": ["om-1", path, "attack"], "result": "1", "start_us": 1, "end_us": 2,
        }));
    }
    lines.iter().map(|l| l.to_string() + "\n").collect()
}

/// The tree bomb (issue 26): a trace of 2,300 bytes naming 13 nodes made the replay build
/// every OM path over them (2.5 GB in 3.8 s; 12 names took 32.5 s of CPU and 1.09 GB). Now
/// what a trace names is bounded before the work: the page refuses it with the reason, and
/// its memory does not move.
#[test]
fn a_replayed_trace_is_bounded_before_the_work() {
    let (proc, port) = ui(&["--port-base", "1"], &[]);
    let before = rss_kb(proc.pid());
    let origin = format!(
        "Host: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\nContent-Type: text/plain\r\n"
    );
    let bomb = tree_bomb(13, 9);
    assert!(bomb.len() < 3000, "{} bytes", bomb.len());
    let (status, _, body) = post_as(port, "/api/trace", &origin, &bomb);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.starts_with("the trace is of OM(8) over 13 nodes")
            && body.contains("over this page's --max-messages 10000"),
        "{body}"
    );
    let many = tree_bomb(70, 2);
    let (status, _, body) = post_as(port, "/api/trace", &origin, &many);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("the trace names 70 nodes; a replay draws at most 64"),
        "{body}"
    );
    let grown = rss_kb(proc.pid()).saturating_sub(before);
    assert!(grown < 16 * 1024, "the page grew by {grown} KiB");
    // A real trace still replays.
    let trace = std::fs::read_to_string(root().join("tests/data/om1-two-faced-s.jsonl")).unwrap();
    let (status, _, body) = post_as(port, "/api/trace", &origin, &trace);
    assert_eq!(status, 200, "{body}");
}

/// `--replay FILE` was read whole before its 32 MiB check (297 MB of RSS for a 300 MB file;
/// `/dev/zero` passed 2 GB in 1.2 s): now it is read through the cap (issue 26).
#[test]
fn the_replay_file_is_read_through_its_cap() {
    let file = std::env::temp_dir().join(format!("generals-replay-{}.jsonl", std::process::id()));
    // 300 MB of nothing, sparse: no disk is used.
    std::fs::File::create(&file)
        .unwrap()
        .set_len(300_000_000)
        .unwrap();
    let (proc, port) = ui(&["--port-base", "1"], &["--replay", file.to_str().unwrap()]);
    let before = rss_kb(proc.pid());
    let (status, _, body) = get(port, "/api/replay");
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("over 32 MiB, too large to replay"), "{body}");
    let grown = rss_kb(proc.pid()).saturating_sub(before);
    assert!(grown < 64 * 1024, "the page grew by {grown} KiB reading it");
    let _ = std::fs::remove_file(&file);
}

/// Idle connections locked the page out (issue 26): 200 of them made it unreachable for
/// 30 s, and 70 reopened as they were dropped kept it down. Now, at its cap of 64, the
/// connection idle the longest is closed to make room, so a browser's request is served.
#[test]
fn idle_connections_cannot_lock_out_the_page() {
    let c = Cluster::rust(&[]);
    let (_ui, port) = ui(&["--port-base", &c.base.to_string()], &[]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // 70 idle connections, each reopened as soon as it is found closed.
    let attacker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut idle: Vec<TcpStream> = (0..70)
                .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
                .collect();
            let mut reopened = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for conn in idle.iter_mut() {
                    conn.set_nonblocking(true).unwrap();
                    let mut buf = [0u8; 64];
                    let gone = match conn.read(&mut buf) {
                        Ok(_) => true,
                        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                    };
                    if gone {
                        *conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
                        reopened += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            reopened
        })
    };
    // And 200 more, held.
    let held: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for i in 0..10 {
        let (status, _, page) = get(port, "/");
        assert_eq!(status, 200, "request {i}");
        assert!(page.contains("<script src=\"/page.js\">"));
    }
    let (status, _, body) = run(port, "run=original&delay_ms=0");
    assert_eq!(status, 200);
    assert!(body.contains("event: end"), "{body}");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reopened = attacker.join().unwrap();
    assert!(reopened > 0, "the idle connections were never closed");
    drop(held);
}

/// A link or a redirect from another site to a run's address (`/?run=original&decision=..`)
/// opens the page with the run in its form, but does not start it: the browser says where
/// the navigation came from (`Sec-Fetch-Site`), and only the address bar or the page itself
/// starts a run by its URL.
#[test]
#[ignore]
fn a_run_address_opened_from_another_site_waits_for_a_click() {
    let base = port_base().to_string();
    let (_ui, port) = ui(&["--spawn", "--port-base", &base], &[]);
    let mut b = Browser::launch(1280, 900);
    // `localhost` and `127.0.0.1` are different sites to a browser.
    let p = b.open(&format!("http://localhost:{port}/"));
    assert!(b.wait_for(
        &p,
        "document.readyState === 'complete'",
        Duration::from_secs(30)
    ));
    b.eval(
        &p,
        &format!(
            // After this evaluation has answered: a navigation under way would cut its answer.
            "setTimeout(() => {{ location.href = 'http://127.0.0.1:{port}/?run=original&delay_ms=0&decision=pwned' }}, 0); true"
        ),
    );
    assert!(
        b.wait_for(
            &p,
            "location.host.startsWith('127.0.0.1') && document.getElementById('status').textContent.includes('opened from another site')",
            Duration::from_secs(30)
        ),
        "{}",
        b.dom(&p)
    );
    assert_eq!(
        b.eval(&p, "document.getElementById('decision').value"),
        "pwned"
    );
    assert_eq!(b.eval(&p, "document.body.dataset.state"), "idle");
    let c = base.parse::<u16>().unwrap();
    for name in ['P', 'Q', 'R', 'S'] {
        assert!(messages(port_of(c, name)).is_empty(), "{name}");
    }
    // A click runs it.
    b.eval(&p, "document.getElementById('start').click()");
    assert!(b.wait_for(
        &p,
        "document.body.dataset.state === 'done'",
        Duration::from_secs(60)
    ));
    assert_eq!(messages(port_of(c, 'Q')).len(), 3);
}
