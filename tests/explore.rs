//! Issue "See it": the explorer, seeded replayable runs and traces.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use serde_json::Value as Json;

fn field(out: &str, name: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name:?} in\n{out}"))
}

#[test]
fn explorer_covers_every_case_of_om_4_1() {
    let (code, out, err) = Client::rust()
        .args(&[
            "explore",
            "--protocol",
            "om",
            "-n",
            "4",
            "-m",
            "1",
            "--seed",
            "9",
        ])
        .run();
    assert_eq!(code, 0, "{out}\n{err}");
    // (1 + C(4,1) * 3 behaviours) * 2 orders.
    assert!(out.contains("; 26 cases, seed 9"), "{out}");
    assert_eq!(field(&out, "cases run"), 26);
    assert_eq!(field(&out, "IC1 held"), 26);
    assert_eq!(field(&out, "IC2 held"), 26);
    assert!(out.contains("no counterexample"), "{out}");
}

#[test]
fn explorer_finds_the_classic_counterexample_with_three_generals() {
    let (code, _, err) = Client::rust()
        .args(&["explore", "-n", "3", "-m", "1"])
        .run();
    assert_eq!(code, 2, "below the bound without --allow-unsafe: {err}");
    let (code, out, err) = Client::rust()
        .args(&[
            "explore",
            "-n",
            "3",
            "-m",
            "1",
            "--allow-unsafe",
            "--behaviours",
            "flip",
            "--orders",
            "attack",
        ])
        .run();
    assert_eq!(code, 1, "{out}\n{err}");
    // (1 + 3 placements) * 1 behaviour * 1 order.
    assert_eq!(field(&out, "cases run"), 4);
    assert!(
        out.contains("first counterexample: order attack, traitors: "),
        "{out}"
    );
    assert!(out.contains("VIOLATED"), "{out}");
}

#[test]
fn explorer_sm_holds_where_om_cannot() {
    let (code, out, err) = Client::rust()
        .args(&[
            "explore",
            "--protocol",
            "sm",
            "-n",
            "3",
            "-m",
            "1",
            "--behaviours",
            "flip,two-faced",
        ])
        .run();
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(field(&out, "cases run"), 14);
    assert_eq!(field(&out, "IC1 held"), 14);
}

/// The trace of a run, without its times (the receivers' answers are times too) and in a
/// canonical order.
fn canonical(trace: &str) -> Vec<Json> {
    let mut lines: Vec<Json> = trace
        .lines()
        .map(|l| {
            let mut j: Json = serde_json::from_str(l).unwrap();
            let o = j.as_object_mut().unwrap();
            assert!(
                o.remove("start_us").unwrap().as_u64().unwrap()
                    <= o.remove("end_us").unwrap().as_u64().unwrap()
            );
            o.remove("result");
            // What differs from run to run by design in an agreement run: the random run id,
            // and each message's MAC (it covers the id). The path, value, sender and receiver
            // stay. The original run's calls have neither.
            if o["method"] == "om_message" || o["method"] == "sm_message" {
                o.remove("run");
                if let Some(args) = o.get_mut("args").and_then(|a| a.as_array_mut()) {
                    args.remove(0);
                    args.pop();
                }
            }
            j
        })
        .collect();
    lines.sort_by_key(|j| j.to_string());
    lines
}

#[test]
fn same_seed_same_trace() {
    let c = Cluster::rust_generated(5, &["--behaviour", "N1=random", "--behaviour", "N3=random"]);
    let base = c.base;
    let dir = std::env::temp_dir().join(format!("generals-trace-{}-{base}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut traces = Vec::new();
    for (i, seed) in ["77", "77", "78"].iter().enumerate() {
        let file = dir.join(format!("t{i}.jsonl"));
        let (code, out, err) = c
            .client()
            .args(&[
                "om",
                "-m",
                "1",
                "--seed",
                seed,
                "--json",
                "--trace",
                file.to_str().unwrap(),
            ])
            .run();
        assert!(code == 0 || code == 1, "{out}\n{err}");
        traces.push((
            serde_json::from_str::<Json>(&out).unwrap(),
            std::fs::read_to_string(&file).unwrap(),
        ));
    }
    let (a, b, c) = (&traces[0], &traces[1], &traces[2]);
    // OM(1) among 5: 4 + 12 messages, every one traced, with the run id and its path.
    assert_eq!(a.1.lines().count(), 16);
    assert_eq!(
        canonical(&a.1),
        canonical(&b.1),
        "same seed, different messages"
    );
    assert_eq!(a.0["decisions"], b.0["decisions"]);
    assert_eq!(a.0["traitor_decisions"], b.0["traitor_decisions"]);
    assert_ne!(
        canonical(&a.1),
        canonical(&c.1),
        "another seed should change the random traitors' messages"
    );
    assert_eq!(a.0["run"], "om-77", "the report names the run by its seed");
    let first: Json = serde_json::from_str(a.1.lines().next().unwrap()).unwrap();
    let id = first["run"].as_str().unwrap().to_string();
    assert!(
        id.starts_with("om-") && id.len() == 35 && id[3..].bytes().all(|b| b.is_ascii_hexdigit()),
        "a random id on the wire: {id}"
    );
    for line in a.1.lines() {
        let j: Json = serde_json::from_str(line).unwrap();
        assert_eq!(j["run"], id.as_str());
        assert_eq!(j["args"][0], id.as_str());
        assert_eq!(j["method"], "om_message");
        // The receiver's answer: when it stored the message, within the call.
        let stored: u64 = j["result"].as_str().unwrap().parse().unwrap();
        let (start, end): (u64, u64) = (
            j["start_us"].as_u64().unwrap(),
            j["end_us"].as_u64().unwrap(),
        );
        assert!(start <= stored && stored <= end, "{j}");
        assert!(j["from"].is_string() && j["to"].is_string());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_original_scenario_can_be_traced() {
    let c = Cluster::rust(&[]);
    let base = c.base;
    let file = std::env::temp_dir().join(format!(
        "generals-original-{}-{base}.jsonl",
        std::process::id()
    ));
    let (code, _, err) = c
        .client()
        .args(&["--quiet", "--trace", file.to_str().unwrap()])
        .run();
    assert_eq!(code, 0, "{err}");
    let trace = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    // 12 sends, of which P denies 2: 10 receive_message calls between nodes.
    let lines = canonical(&trace);
    assert_eq!(lines.len(), 10);
    assert!(
        lines
            .iter()
            .all(|j| j["method"] == "receive_message" && j["run"] == "original")
    );
    assert!(lines.iter().any(|j| j["from"] == "P"
        && j["to"] == "Q"
        && j["args"] == serde_json::json!(["P", "attack"])));
}

/// (lifelines, message arrows) of an SVG, checking it is well-formed XML on the way.
fn svg_counts(svg: &str) -> (usize, usize) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(svg);
    reader.config_mut().check_end_names = true;
    let (mut lifelines, mut msgs) = (0, 0);
    loop {
        match reader.read_event().expect("well-formed SVG") {
            Event::Start(e) | Event::Empty(e) => {
                for a in e.attributes() {
                    let a = a.expect("well-formed attribute");
                    if a.key.into_inner() == "class" {
                        let v = a
                            .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .unwrap();
                        let classes: Vec<&str> = v.split_whitespace().collect();
                        lifelines += usize::from(classes.contains(&"lifeline"));
                        msgs += usize::from(classes.contains(&"msg"));
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    (lifelines, msgs)
}

/// A live run drawn: one lifeline per node, one arrow per traced message; `--mermaid FILE`
/// has one arrow per message too; `--tree` draws the lieutenant's tree.
#[test]
fn pictures_of_a_live_run() {
    let c = Cluster::rust_generated(5, &["--behaviour", "N2=two-faced"]);
    let base = c.base;
    let dir = std::env::temp_dir().join(format!("generals-svg-{}-{base}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (trace, svg, tree, mmd) = (
        dir.join("t.jsonl"),
        dir.join("run.svg"),
        dir.join("tree.svg"),
        dir.join("run.mmd"),
    );
    let (code, out, err) = c
        .client()
        .args(&[
            "om",
            "-m",
            "1",
            "--seed",
            "3",
            "--trace",
            trace.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
            "--mermaid",
            mmd.to_str().unwrap(),
        ])
        .run();
    assert_eq!(code, 0, "{out}\n{err}");
    let traced = std::fs::read_to_string(&trace).unwrap().lines().count();
    assert_eq!(traced, 16);
    let (lifelines, msgs) = svg_counts(&std::fs::read_to_string(&svg).unwrap());
    assert_eq!((lifelines, msgs), (5, traced));
    assert!(
        !out.contains("sequenceDiagram"),
        "the diagram is in its file: {out}"
    );
    let mermaid = std::fs::read_to_string(&mmd).unwrap();
    assert_eq!(
        mermaid
            .lines()
            .filter(|l| l.contains("->>") || l.contains("--x"))
            .count(),
        traced
    );
    let (code, _, err) = c
        .client()
        .args(&[
            "om",
            "-m",
            "1",
            "--seed",
            "3",
            "--tree",
            "N1",
            "--svg",
            tree.to_str().unwrap(),
        ])
        .run();
    assert_eq!(code, 0, "{err}");
    let tree = std::fs::read_to_string(&tree).unwrap();
    // OM(1) with 5 nodes: N1's tree is the root plus one child per other lieutenant.
    assert_eq!(tree.matches("class=\"tree-node\"").count(), 4);
    assert!(tree.contains("N1 decides attack"), "{tree}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Headless Chromium with a throw-away profile in `dir`, offline, and `args` after the
/// common flags: (exit code, stdout, stderr).
fn chromium(dir: &std::path::Path, args: &[String]) -> (i32, String, String) {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("chromium is installed (.ci/run installs it)");
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]);
    cmd.arg(format!("--user-data-dir={}", dir.join("profile").display()));
    cmd.args(args);
    run(cmd, Duration::from_secs(120))
}

/// Renders the committed picture of the default run in headless Chromium and checks the
/// screenshot is not blank. Ignored by default (needs Debian's chromium); `scripts/test.sh`
/// runs it.
#[test]
#[ignore]
fn default_run_svg_renders_in_a_browser() {
    let svg = root().join("docs/default-run.svg");
    assert!(svg.exists(), "docs/default-run.svg is committed");
    let dir = std::env::temp_dir().join(format!("generals-chromium-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("shot.png");
    let (code, _, err) = chromium(
        &dir,
        &[
            "--window-size=800,1000".to_string(),
            format!("--screenshot={}", png.display()),
            format!("file://{}", svg.display()),
        ],
    );
    assert_eq!(code, 0, "chromium failed: {err}");
    let bytes = std::fs::read(&png).expect("a screenshot");
    let (width, height, pixels) = decode_png(&bytes);
    assert_eq!((width, height), (800, 1000));
    // Not blank: a real drawing has many dark pixels (lines, arrows, text) and many light ones.
    let dark = pixels
        .iter()
        .filter(|p| p[0] < 128 && p[1] < 128 && p[2] < 128)
        .count();
    let total = pixels.len();
    assert!(dark > total / 500, "only {dark} dark pixels of {total}");
    assert!(dark < total / 2, "mostly dark: {dark} of {total}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A live OM(2) run over 7 nodes (one traitor), drawn with `--svg`, laid out by a real
/// browser: the picture fits a 1920x1080 screen and no two texts of it overlap (bounding boxes
/// as Chromium computes them, by a script in a page that inlines the SVG). Ignored by
/// default (needs chromium); `scripts/test.sh` runs it.
#[test]
#[ignore]
fn om2_among_seven_fits_a_screen_and_no_labels_overlap_in_a_browser() {
    let c = Cluster::rust_generated(7, &["--behaviour", "N4=two-faced"]);
    let base = c.base;
    let dir = std::env::temp_dir().join(format!("generals-om2-{}-{base}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (svg_file, tree_file) = (dir.join("om2.svg"), dir.join("tree.svg"));
    for (file, extra) in [(&svg_file, None), (&tree_file, Some("N3"))] {
        let mut args = vec!["om", "-m", "2"];
        args.extend(["--seed", "5", "--svg", file.to_str().unwrap()]);
        if let Some(node) = extra {
            args.extend(["--tree", node]);
        }
        let (code, out, err) = c.client().args(&args).run();
        assert_eq!(code, 0, "{out}\n{err}");
    }
    for file in [&svg_file, &tree_file] {
        let svg = std::fs::read_to_string(file).unwrap();
        let svg = &svg[svg.find("<svg").expect("an svg element")..];
        let page = dir.join("page.html");
        std::fs::write(
            &page,
            format!("<!DOCTYPE html><html><body>{svg}{CHECK_TEXTS}</body></html>"),
        )
        .unwrap();
        let (code, dom, err) = chromium(
            &dir,
            &[
                "--window-size=1920,1080".to_string(),
                "--dump-dom".to_string(),
                format!("file://{}", page.display()),
            ],
        );
        assert_eq!(code, 0, "chromium failed: {err}");
        let verdict = dom
            .split("<pre id=\"verdict\">")
            .nth(1)
            .and_then(|r| r.split("</pre>").next())
            .unwrap_or_else(|| panic!("no verdict in the page: {dom}"));
        assert!(verdict.starts_with("ok "), "{}: {verdict}", file.display());
        let texts: usize = verdict[3..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(texts > 20, "{verdict}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A script for a page holding one SVG: writes `<pre id="verdict">` with "ok N texts" when the
/// SVG fits 1920x1080 and no two of its N texts overlap, else what is wrong.
const CHECK_TEXTS: &str = r#"<script>
const svg = document.querySelector("svg");
const problems = [];
const w = svg.width.baseVal.value, h = svg.height.baseVal.value;
if (w > 1920 || h > 1080) problems.push(`size ${w}x${h} exceeds 1920x1080`);
const boxes = [...svg.querySelectorAll("text")]
  .map(t => [t, t.getBoundingClientRect()])
  .filter(([, b]) => b.width > 0 && b.height > 0);
for (let i = 0; i < boxes.length; i++) {
  for (let j = i + 1; j < boxes.length; j++) {
    const [s, a] = boxes[i], [t, b] = boxes[j];
    if (a.left < b.right - 0.5 && b.left < a.right - 0.5 &&
        a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) {
      problems.push(`"${s.textContent}" overlaps "${t.textContent}"`);
    }
  }
}
const pre = document.createElement("pre");
pre.id = "verdict";
pre.textContent = problems.length ? problems.slice(0, 10).join("; ")
                                  : `ok ${boxes.length} texts`;
document.body.appendChild(pre);
</script>"#;

/// A minimal PNG decoder for 8-bit RGB/RGBA non-interlaced images (what Chromium writes):
/// (width, height, pixels as RGB).
fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    use std::io::Read;
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let (mut pos, mut idat) = (8, Vec::new());
    let (mut width, mut height, mut channels) = (0usize, 0usize, 0usize);
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = &bytes[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!((data[8], data[12]), (8, 0), "8-bit, not interlaced");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        pos += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width * channels;
    let mut prev = vec![0u8; stride];
    let mut pixels = Vec::with_capacity(width * height);
    for row in raw.chunks(stride + 1).take(height) {
        let (filter, line) = (row[0], &row[1..]);
        let mut cur = vec![0u8; stride];
        for i in 0..stride {
            let a = if i >= channels { cur[i - channels] } else { 0 };
            let b = prev[i];
            let c = if i >= channels { prev[i - channels] } else { 0 };
            cur[i] = line[i].wrapping_add(match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("filter {other}"),
            });
        }
        pixels.extend(cur.chunks(channels).map(|p| [p[0], p[1], p[2]]));
        prev = cur;
    }
    (width, height, pixels)
}

/// What lets the explorer reuse one cluster for many cases: a behaviour set in process shows
/// in `node_info` and in the runs started after it, and a run keeps the behaviour it started
/// with. In process, no ports of ours: the OS picks them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviours_change_between_runs_not_within() {
    use dxr::Value;
    use generals::behaviour::Behaviour;
    use generals::cluster::Cluster;
    use generals::peer::Peers;
    use generals::runs::driver::{self, Protocol, RunOptions};
    use generals::server::{self, Config};

    let nodes: Vec<String> = ["P", "Q", "R", "S"].map(String::from).to_vec();
    let bound = server::bind_ephemeral(Config {
        cluster: Cluster::local(0),
        nodes: nodes.clone(),
        faulty: Vec::new(),
        quiet: true,
        print: false,
        ..Config::default()
    })
    .await
    .unwrap();
    let cluster = bound.cluster().clone();
    let engines = bound.engines();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bound.run(async {
        let _ = stopped.await;
    }));
    let peers = Peers::new(Duration::from_secs(5)).unwrap();
    let s_engine = &engines.iter().find(|(n, _)| n == "S").unwrap().1;
    let info = |node: &'static str| {
        let (peers, cluster) = (peers.clone(), cluster.clone());
        async move {
            match peers.call_node(&cluster, node, "node_info", &[]).await {
                Ok(Value::Struct(m)) => (m["behaviour"].clone(), m["traitor"].clone()),
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(
        info("S").await,
        (Value::String("honest".into()), Value::Boolean(false))
    );

    // S flips from now on: node_info says so, and a driven run counts S as the traitor.
    s_engine.set_behaviour(Behaviour::Flip);
    assert_eq!(
        info("S").await,
        (Value::String("flip".into()), Value::Boolean(true))
    );
    let opts = RunOptions {
        protocol: Protocol::Om,
        m: 1,
        order: "attack".into(),
        commander: "P".into(),
        nodes: nodes.clone(),
        round_timeout: Duration::from_secs(2),
        seed: 11,
        allow_unsafe: false,
        rpc_timeout: Duration::from_secs(5),
        max_messages: driver::DEFAULT_MAX_MESSAGES,
    };
    let outcome = driver::drive(&cluster, &opts).await.unwrap().report;
    assert_eq!(outcome.traitors, ["S"]);
    assert!(outcome.holds());

    // A run started while S flips keeps flipping after S is made honest again.
    let hand = HandRun::new("om", "P", "P,Q,R,S", 1, 2000);
    for node in &nodes {
        peers
            .call_node(&cluster, node, "om_start", &hand.start(node))
            .await
            .unwrap();
    }
    s_engine.set_behaviour(Behaviour::Honest);
    assert_eq!(info("S").await.1, Value::Boolean(false));
    peers
        .call_node(&cluster, "P", "om_order", &hand.order("attack"))
        .await
        .unwrap();
    for round in [1, 2] {
        for node in &nodes {
            peers
                .call_node(&cluster, node, "om_round", &hand.round(node, round))
                .await
                .unwrap();
        }
    }
    let Ok(Value::Array(sent)) = peers
        .call_node(&cluster, "S", "trace_events", &hand.trace("S", 0))
        .await
    else {
        panic!("no trace from S");
    };
    let values: Vec<Value> = sent
        .iter()
        .map(|e| match e {
            Value::Struct(m) => match &m["args"] {
                Value::Array(args) => args[2].clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(values.len(), 2, "S relays [P] to Q and R");
    assert!(
        values.iter().all(|v| *v == Value::String("retreat".into())),
        "S relayed {values:?}: the run should keep the flip it started with"
    );
    let _ = stop.send(());
    let _ = serving.await;
}

/// What an exploration found, case by case: the counts, the counterexample (the first case in
/// case order that is violated and not void, as the explorer picks it), and a SHA-256 of every
/// case's verdict, decisions and messages per round in case order, whatever order the jobs
/// finished them in. Run in process through the library's `run_cases`, as `client explore`
/// runs it; with `summary`, `explore`'s own summary must say the same.
async fn explored(
    protocol: generals::runs::driver::Protocol,
    n: usize,
    m: usize,
    allow_unsafe: bool,
    summary: bool,
) -> String {
    use generals::runs::explore::{self, Explore};
    use sha2::{Digest, Sha256};

    let e = Explore {
        protocol,
        n,
        m,
        behaviours: explore::default_behaviours(),
        orders: vec!["attack".into(), "retreat".into()],
        allow_unsafe,
        // A round ends when every node has answered, so its timeout decides nothing here but
        // whether a loaded machine makes a loyal node late (a void case): generous.
        round_timeout: Duration::from_secs(30),
        seed: 9,
        jobs: 2,
        external: Vec::new(),
    };
    let all = explore::cases(&e);
    let mut reports = vec![None; all.len()];
    explore::run_cases(
        &e,
        all.len(),
        |i| all[i].clone(),
        |_, _| {},
        |i, r| reports[i] = Some(r),
    )
    .await
    .unwrap();
    let reports: Vec<_> = reports.into_iter().map(Option::unwrap).collect();
    let lines: String = (reports.iter().enumerate())
        .map(|(i, r)| {
            format!(
                "{i} {:?} ic1={} ic2={} loyal={:?} traitors={:?} per_round={:?} problems={:?}\n",
                r.verdict,
                r.ic1,
                r.ic2,
                r.decisions,
                r.traitor_decisions,
                r.messages_per_round,
                r.problems
            )
        })
        .collect();
    let counted = |f: &dyn Fn(&generals::agreement::checker::Report) -> bool| {
        reports.iter().filter(|r| !r.is_void() && f(r)).count()
    };
    let first = (reports.iter().zip(&all)).find(|(r, _)| !r.is_void() && !r.holds());
    let found = |c: Option<(&explore::Case, &generals::agreement::checker::Report)>| {
        c.map(|(case, r)| format!("{case}: {:?} {:?}", r.decisions, r.problems))
            .unwrap_or_else(|| "none".into())
    };
    let counts = format!(
        "cases {} ic1 {} ic2 {} void {}; counterexample {}",
        reports.len(),
        counted(&|r| r.ic1),
        counted(&|r| r.ic2),
        reports.iter().filter(|r| r.is_void()).count(),
        found(first.map(|(r, c)| (c, r)))
    );
    if summary {
        let s = explore::explore(&e, |_, _| {}).await.unwrap();
        let theirs = format!(
            "cases {} ic1 {} ic2 {} void {}; counterexample {}",
            s.cases,
            s.ic1_held,
            s.ic2_held,
            s.void,
            found(s.counterexample.as_ref().map(|(c, r)| (c, r)))
        );
        assert_eq!(theirs, counts, "explore's summary and its cases");
    }
    let hex: String = (Sha256::digest(lines.as_bytes()).iter())
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{counts}; cases' sha256 {hex}")
}

/// Issue 32: making the explorer faster changes none of its findings. The expected values were
/// recorded from the code before any of that issue's changes (commit cacd246); n=6, m=2 is
/// below the bound, for a counterexample.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorers_findings_stay_those_recorded_before_issue_32() {
    use generals::runs::driver::Protocol;
    for (n, m, allow_unsafe, summary, want) in [
        (
            4,
            1,
            false,
            true,
            "cases 26 ic1 26 ic2 26 void 0; counterexample none; cases' sha256 b3526a25b47e4c811c61091bdd931e21e92a56e77ddef1e30a6fa35bcda685ba",
        ),
        (
            7,
            2,
            false,
            false,
            "cases 422 ic1 422 ic2 422 void 0; counterexample none; cases' sha256 16bc60a444fd9edb09501b859c700f6c4715887f5532d81081078f95a4f813cc",
        ),
        (
            6,
            2,
            true,
            true,
            "cases 308 ic1 269 ic2 218 void 0; counterexample order attack, traitors: Q=silent R=silent (seed 73): {\"S\": \"retreat\", \"T\": \"retreat\", \"U\": \"retreat\"} [\"IC2 violated: the commander P is loyal and ordered attack, but S decided retreat, T decided retreat, U decided retreat\"]; cases' sha256 aaafcd0864b80ddcb8e7362f8b4db8805bfd620db5a93f90b502bf5419e2afd1",
        ),
    ] {
        let got = explored(Protocol::Om, n, m, allow_unsafe, summary).await;
        assert_eq!(got, want, "OM n={n} m={m}");
    }
}
