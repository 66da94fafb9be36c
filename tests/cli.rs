//! The binaries as a user runs them: options, output, errors and exit codes.

use std::process::Command;
use std::time::Duration;

use crate::common::*;

fn client(args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(client_bin());
    cmd.args(args);
    run(cmd, Duration::from_secs(60))
}

#[test]
fn client_quiet_prints_exactly_the_four_lines() {
    let cluster = Cluster::rust(&[]);
    let base = cluster.base;
    let (code, out, err) = client(&[
        "--port-base",
        &base.to_string(),
        "--quiet",
        "--delay-ms",
        "1",
    ]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "Process P finalized decision: faulty\nProcess Q finalized decision: attack\nProcess R finalized decision: attack\nProcess S finalized decision: attack\n"
    );
}

#[test]
fn client_reports_every_unreachable_node_once_and_says_what_to_do() {
    // Nothing listens on this block.
    let base = port_base();
    let (code, out, err) = client(&["--port-base", &base.to_string(), "--rpc-timeout", "5"]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    let lines: Vec<&str> = err.lines().collect();
    // One line per node (its first call; the others are skipped), then the hint.
    assert_eq!(lines.len(), 5, "{err}");
    for (line, node) in lines.iter().zip(["P", "Q", "R", "S"]) {
        assert!(line.starts_with(&format!("error: node {node} (")), "{line}");
        assert!(line.contains("http://127.0.0.1:"), "{line}");
        assert!(line.ends_with("connection refused"), "{line}");
    }
    assert_eq!(
        lines[0],
        format!(
            "error: node P (http://127.0.0.1:{base}/): send_message(\"Q\", \"attack\"): connection refused"
        )
    );
    assert_eq!(
        lines[4],
        format!("hint: no node is running; start the cluster first: server --port-base {base}")
    );
    assert!(!err.contains("panicked") && !err.contains("backtrace"));
    // The hint carries the options the client was given.
    let (code, _, err) = client(&[
        "--port-base",
        &base.to_string(),
        "--cluster-size",
        "6",
        "--nodes",
        "N0,N1,N2",
    ]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 4, "{err}");
    assert!(
        err.ends_with(&format!(
            "hint: no node is running; start the cluster first: server --port-base {base} \
             --cluster-size 6 --nodes N0,N1,N2\n"
        )),
        "{err}"
    );
}

#[test]
fn client_goes_on_past_a_dead_node() {
    let base = port_base();
    let base_s = base.to_string();
    let ports: Vec<u16> = "PQR".chars().map(|c| port_of(base, c)).collect();
    let _s = Proc::rust_server(
        &["--port-base", &base_s, "--nodes", "P,Q,R", "--quiet"],
        &ports,
    );
    let (code, out, err) = client(&["--port-base", &base_s, "--quiet"]);
    assert_eq!(code, 1);
    // S is down: sends *to* S fail inside the sender (a fault naming the refused
    // connection), sends *from* S fail to connect; the others still decide.
    assert_eq!(
        out,
        "Process P finalized decision: faulty\nProcess Q finalized decision: attack\nProcess R finalized decision: attack\n"
    );
    let s_url = format!("http://127.0.0.1:{}/", port_of(base, 'S'));
    assert!(
        err.contains(&format!(
            "error: node S ({s_url}): send_message(\"P\", \"attack\"): connection refused"
        )),
        "{err}"
    );
    assert!(
        err.contains("send_message(\"S\", \"attack\"): fault 1: <class 'ConnectionRefusedError'>"),
        "{err}"
    );
    assert!(err.contains("ConnectionRefusedError"), "{err}");
    // P denies S without trying, so that is no error: 2 (Q,R -> S), S once (its first call;
    // its other sends and its finalize are skipped), and the hint.
    assert_eq!(err.lines().count(), 4, "{err}");
    assert!(
        err.ends_with(&format!(
            "hint: S is not running (connection refused); start it first: server \
             --port-base {base_s} --nodes S\n"
        )),
        "{err}"
    );
}

#[test]
fn decision_and_faulty_options() {
    let cluster = Cluster::rust(&["--faulty", ""]);
    let base = cluster.base;
    let (code, out, _) = client(&[
        "--port-base",
        &base.to_string(),
        "--quiet",
        "--decision",
        "retreat",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Process P finalized decision: retreat\nProcess Q finalized decision: retreat\nProcess R finalized decision: retreat\nProcess S finalized decision: retreat\n"
    );
}

#[test]
fn client_nodes_option_limits_the_run() {
    let cluster = Cluster::rust(&["--faulty", "Q"]);
    let base = cluster.base;
    let (code, out, _) = client(&["--port-base", &base.to_string(), "--nodes", "Q,R"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Process Q sent decision 'attack' to R\nProcess R sent decision 'attack' to Q\nProcess Q finalized decision: faulty\nProcess R finalized decision: attack\n"
    );
}

/// `--peer NAME=URL` puts a node where the port rule does not: here Q lives in a second
/// process on a port of its own, and the other nodes and the client find it by the flag.
#[test]
fn peer_option_places_a_node_anywhere() {
    let base = port_base();
    let q_port = base + 20;
    let q_url = format!("http://127.0.0.1:{q_port}/");
    let peer = format!("Q={q_url}");
    let base_s = base.to_string();
    let prs: Vec<u16> = "PRS".chars().map(|c| port_of(base, c)).collect();
    let _a = Proc::rust_server(
        &[
            "--port-base",
            &base_s,
            "--nodes",
            "P,R,S",
            "--peer",
            &peer,
            "--quiet",
        ],
        &prs,
    );
    let b = Proc::rust_server(
        &[
            "--port-base",
            &base_s,
            "--nodes",
            "Q",
            "--peer",
            &peer,
            "--quiet",
        ],
        &[q_port],
    );
    let (code, out, err) = client(&["--port-base", &base_s, "--peer", &peer, "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.ends_with("Process S finalized decision: attack\n"),
        "{out}"
    );
    let (q_out, _) = b.stop();
    assert!(
        q_out.starts_with(&format!("Process Q running on port {q_port}...\n")),
        "{q_out}"
    );
    assert_eq!(
        q_out.matches("Q received decision 'attack' from").count(),
        3,
        "{q_out}"
    );
}

/// Listeners on the nodes' ports, to see afterwards whether anything was called.
struct Watch(Vec<std::net::TcpListener>);

impl Watch {
    fn ports(base: u16) -> Watch {
        let listeners = (0..6)
            .map(|i| {
                let l = std::net::TcpListener::bind(("127.0.0.1", base + i)).unwrap();
                l.set_nonblocking(true).unwrap();
                l
            })
            .collect();
        Watch(listeners)
    }

    fn contacted(&self) -> bool {
        self.0.iter().any(|l| l.accept().is_ok())
    }
}

/// Every input error is refused before anything runs: exit 2, one line saying what is wrong
/// and what to do; no node is called (listeners on the ports see no connection), no server
/// binds, no file is written. One row per input.
#[test]
fn input_errors_are_refused_before_anything_runs() {
    let dir = std::env::temp_dir().join(format!("generals-cli-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("x.svg");
    let svg = svg.to_str().unwrap();
    let missing = dir.join("no-such-dir").join("x.svg");
    let missing = missing.to_str().unwrap();
    let missing_dir = dir.join("no-such-dir");
    let base = port_base();
    let b = base.to_string();
    let watch = Watch::ports(base);
    let d = dir.to_str().unwrap();
    let cases: &[(&str, &[&str], String)] = &[
        (
            "server",
            &["--port-base", "65534"],
            "server: --port-base 65534: node R would listen on port 65536, past 65535; lower \
             --port-base to 65532 or less (or place R with --peer R=URL)"
                .into(),
        ),
        (
            "client",
            &["--port-base", "65534"],
            "client: --port-base 65534: node R would listen on port 65536, past 65535; lower \
             --port-base to 65532 or less (or place R with --peer R=URL)"
                .into(),
        ),
        (
            "server",
            &["--port-base", &b, "--nodes", "Q,Q"],
            "server: --nodes: Q is listed twice; name each node once".into(),
        ),
        (
            "client",
            &["--port-base", &b, "--nodes", "P,Q,P"],
            "client: --nodes: P is listed twice; name each node once".into(),
        ),
        (
            "server",
            &["--port-base", &b, "--cluster-size", "0"],
            "error: invalid value '0' for '--cluster-size <N>': must be at least 1".into(),
        ),
        (
            "server",
            &["--port-base", &b, "--nodes", "p,q"],
            "server: --nodes: p is not a node of this cluster (P, Q, R, S); names are \
             case-sensitive: did you mean P?"
                .into(),
        ),
        (
            "client",
            &["--port-base", &b, "--nodes", "T"],
            "client: --nodes: T is not a node of this cluster (P, Q, R, S); place it with \
             --peer T=URL, or use --cluster-size N for nodes N0..N{N-1}"
                .into(),
        ),
        (
            "server",
            &["--port-base", &b, "--faulty", "X"],
            "server: --faulty: X is not a node of this cluster (P, Q, R, S); name one of its \
             nodes"
                .into(),
        ),
        (
            "server",
            &["--port-base", &b, "--behaviour", "X=flip"],
            "server: --behaviour: X is not a node of this cluster (P, Q, R, S); name one of \
             its nodes"
                .into(),
        ),
        (
            "client",
            &["--port-base", &b, "om", "--commander", "X"],
            "client: --commander X: not one of the nodes taking part (P, Q, R, S); pick one of \
             them, or add it to --nodes"
                .into(),
        ),
        (
            "client",
            &["--port-base", &b, "om", "--tree", "X", "--svg", svg],
            "client: --tree X: not one of the nodes taking part (P, Q, R, S); name a lieutenant"
                .into(),
        ),
        (
            "client",
            &["--port-base", &b, "om", "--tree", "P", "--svg", svg],
            "client: --tree P: the commander has no tree (it only gives the order); name a \
             lieutenant: Q, R, S"
                .into(),
        ),
        (
            "client",
            &["--port-base", &b, "--svg", missing],
            format!(
                "client: --svg {missing}: cannot write there: No such file or directory (os \
                 error 2); the directory {} does not exist: create it or pick another path",
                missing_dir.display()
            ),
        ),
        (
            "client",
            &["--port-base", &b, "om", "--trace", missing],
            format!(
                "client: --trace {missing}: cannot write there: No such file or directory (os \
                 error 2); the directory {} does not exist: create it or pick another path",
                missing_dir.display()
            ),
        ),
        (
            "client",
            &["--port-base", &b, "--svg", d],
            format!("client: --svg {d}: cannot write there: it is a directory; give a file name"),
        ),
    ];
    for (bin, args, expected) in cases {
        let mut cmd = Command::new(if *bin == "server" {
            server_bin()
        } else {
            client_bin()
        });
        cmd.args(*args);
        let (code, out, err) = run(cmd, Duration::from_secs(20));
        assert_eq!(code, 2, "{bin} {args:?}: {out}{err}");
        assert_eq!(out, "", "{bin} {args:?}");
        assert!(
            err.starts_with(expected.as_str()),
            "{bin} {args:?}:\n{err}\nexpected:\n{expected}"
        );
        assert!(!watch.contacted(), "{bin} {args:?} called a node");
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "a file was written"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `client | head`: once the reader is gone, the client stops quietly, status 0.
#[test]
fn a_closed_stdout_ends_the_client_quietly() {
    let cluster = Cluster::rust(&[]);
    for args in [&[][..], &["om", "-m", "1", "--json"]] {
        let mut cmd = Command::new(client_bin());
        cmd.args(["--port-base", &cluster.base.to_string()])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // Nobody reads: the first line written meets a closed pipe.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "client {args:?}: {err}");
        assert_eq!(err, "", "client {args:?}");
    }
}

#[test]
fn port_in_use_is_one_line_and_exit_1() {
    let base = port_base();
    let _hold = std::net::TcpListener::bind(("127.0.0.1", port_of(base, 'R'))).unwrap();
    let mut cmd = Command::new(server_bin());
    cmd.args(["--port-base", &base.to_string()]);
    let (code, out, err) = run(cmd, Duration::from_secs(20));
    assert_eq!(code, 1);
    assert_eq!(out, "", "no startup line when a port is taken");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("node R on 127.0.0.1:{}", port_of(base, 'R'))),
        "{err}"
    );
    assert!(
        err.to_lowercase().contains("address already in use"),
        "{err}"
    );
    // The OS text once, and the usual fix.
    assert_eq!(
        err.to_lowercase().matches("address already in use").count(),
        1,
        "{err}"
    );
    assert!(
        err.ends_with("; is another server running? stop it, or pick another --port-base\n"),
        "{err}"
    );
}

#[test]
fn bad_arguments_are_clear_errors() {
    let (code, _, err) = client(&["--peer", "nonsense"]);
    assert_eq!(code, 2);
    assert!(err.contains("expected NAME=URL"), "{err}");
    let mut cmd = Command::new(server_bin());
    cmd.args(["--nodes", "QQ", "--port-base", &port_base().to_string()]);
    let (code, _, err) = run(cmd, Duration::from_secs(20));
    assert_eq!(code, 2);
    assert!(err.contains("QQ is not a node of this cluster"), "{err}");
}

/// `--help` is the manual: every option clap knows, of each binary and each subcommand, is in
/// that command's `--help` with a description.
#[test]
fn help_documents_every_option() {
    use clap::CommandFactory;
    let mut seen = std::collections::BTreeSet::new();
    for (bin, cmd) in [
        (server_bin(), generals::cli::server::ServerArgs::command()),
        (client_bin(), generals::cli::client::Cli::command()),
    ] {
        let mut commands = vec![(None, cmd.clone())];
        commands.extend(
            cmd.get_subcommands()
                .map(|s| (Some(s.get_name().to_string()), s.clone())),
        );
        for (sub, c) in commands {
            let mut help = Command::new(bin);
            help.args(sub.iter()).arg("--help");
            let (code, out, err) = run(help, Duration::from_secs(10));
            assert_eq!(code, 0, "{err}");
            for arg in c.get_arguments().filter(|a| !a.is_hide_set()) {
                let name = match (arg.get_long(), arg.get_short()) {
                    (Some(long), _) => format!("--{long}"),
                    (None, Some(short)) => format!("-{short}"),
                    (None, None) => continue,
                };
                let place = format!("{bin} {}", sub.as_deref().unwrap_or(""));
                assert!(out.contains(&name), "{place} --help lacks {name}:\n{out}");
                assert!(
                    arg.get_help().is_some() || arg.get_long_help().is_some(),
                    "{place}: {name} has no description"
                );
                seen.insert(name);
            }
        }
    }
    // The iteration reached the flags a hand-kept list once missed.
    for name in [
        "--cluster",
        "--behaviour",
        "--svg",
        "--tree",
        "--protocol",
        "--max-runs",
    ] {
        assert!(seen.contains(name), "{name} never checked");
    }
}

/// A flag that cannot apply where it is given is a usage error (exit 2), never silently
/// ignored: nothing runs and nothing is written.
#[test]
fn flags_that_cannot_apply_are_usage_errors() {
    let dir = std::env::temp_dir().join(format!("generals-cli-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (trace, svg) = (dir.join("x.jsonl"), dir.join("x.svg"));
    let (trace, svg) = (trace.to_str().unwrap(), svg.to_str().unwrap());
    let base = port_base().to_string();
    for args in [
        &["explore", "--trace", trace, "--svg", svg, "--mermaid"][..],
        &["--quiet", "explore"],
        &["--port-base", &base, "explore"],
        &["explore", "--nodes", "P,Q,R"],
        &["--port-base", &base, "--quiet", "om"],
        &["--port-base", &base, "--svg", svg, "om"],
        &["--port-base", &base, "sm", "--tree", "R", "--svg", svg],
        &["--port-base", &base, "--tree", "R", "--svg", svg],
        &["--port-base", &base, "om", "--tree", "R"],
        &["explore", "--protocol", "xm"],
    ] {
        let (code, out, err) = client(args);
        assert_eq!(code, 2, "client {args:?}: {out}{err}");
        assert_eq!(out, "", "client {args:?}");
        assert!(err.starts_with("error: "), "client {args:?}: {err}");
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "a file was written"
    );
    // A run refused before it starts: exit 2 and the reason, once.
    let (code, out, err) = client(&["--port-base", &base, "--nodes", "P,Q,S", "om", "-m", "1"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "client: OM(1) needs at least 4 nodes to tolerate 1 traitor(s), but 3 take part; add \
         nodes, lower -m, or pass --allow-unsafe to watch it fail\n"
    );
    let mut server = Command::new(server_bin());
    server.args(["--port-base", &base, "--rpc-timeout", "0"]);
    let (code, _, err) = run(server, Duration::from_secs(10));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("positive number of seconds"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--cluster-size N` names nodes N0..N{N-1} on consecutive ports, in Rust and in the Python
/// stand-ins alike, so generated clusters mix too: Rust hosts N0-N2, Python N3-N5.
#[test]
fn generated_clusters_mix_python_and_rust() {
    let base = port_base();
    let base_s = base.to_string();
    let _rs = Proc::rust_server(
        &[
            "--port-base",
            &base_s,
            "--cluster-size",
            "6",
            "--nodes",
            "N0,N1,N2",
            "--quiet",
        ],
        &[base, base + 1, base + 2],
    );
    let _py = Proc::python_server(
        &[
            "--port-base",
            &base_s,
            "--cluster-size",
            "6",
            "--nodes",
            "N3,N4,N5",
        ],
        &[base + 3, base + 4, base + 5],
    );
    let expected: String = (0..6)
        .map(|i| format!("Process N{i} finalized decision: attack\n"))
        .collect();
    let (code, out, err) = client(&["--port-base", &base_s, "--cluster-size", "6", "--quiet"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, expected);
    let mut py = Command::new("python3");
    py.arg(python_client_script()).args([
        "--port-base",
        &base_s,
        "--cluster-size",
        "6",
        "--no-sleep",
    ]);
    let (code, out, err) = run(py, Duration::from_secs(60));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, expected);
}

/// The load generator works (a smoke run; figures are the benchmark's business).
#[test]
fn loadgen_smoke() {
    let cluster = Cluster::rust(&[]);
    let base = cluster.base;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.args([
        "--addr",
        &format!("127.0.0.1:{}", port_of(base, 'Q')),
        "-c",
        "4",
        "-d",
        "0.5",
        "--mix",
        "receive_message:3,send_message=R:1,finalize_decision:1",
    ]);
    let (code, out, err) = run(cmd, Duration::from_secs(30));
    assert_eq!(code, 0, "{err}");
    let fields: std::collections::HashMap<&str, f64> = out
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    assert!(fields["calls"] > 10.0, "{out}");
    assert_eq!(fields["errors"], 0.0, "{out}");
    assert!(
        fields["p50_us"] > 0.0 && fields["p99_us"] >= fields["p50_us"],
        "{out}"
    );
}

/// One cluster file describes where every node lives; two server processes each host their
/// share of it and the client finds everyone through the same file.
#[test]
fn cluster_file_places_nodes_for_servers_and_client() {
    let base = port_base();
    // Ports deliberately not the port rule's, so only the file can place them.
    let ports = [base + 10, base + 11, base + 12, base + 13];
    let file = std::env::temp_dir().join(format!(
        "generals-cluster-{}-{base}.toml",
        std::process::id()
    ));
    let mut text = String::new();
    for (name, port) in ["P", "Q", "R", "S"].iter().zip(ports) {
        text += &format!("[[node]]\nname = \"{name}\"\nurl = \"http://127.0.0.1:{port}/\"\n");
        if *name == "P" {
            text += "faulty = true\n";
        }
        if *name == "S" {
            text += "behaviour = \"flip\"\n";
        }
    }
    std::fs::write(&file, text).unwrap();
    let f = file.to_str().unwrap();
    let a = Proc::rust_server(&["--cluster", f, "--nodes", "P,Q", "--quiet"], &ports[..2]);
    let b = Proc::rust_server(&["--cluster", f, "--nodes", "R,S", "--quiet"], &ports[2..]);
    let (code, out, err) = client(&["--cluster", f, "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "Process P finalized decision: faulty\nProcess Q finalized decision: attack\nProcess R finalized decision: attack\nProcess S finalized decision: attack\n"
    );
    let (b_out, _) = b.stop();
    // S flips (from the file): R hears retreat from S; P (faulty, from the file) denied R.
    assert!(
        b_out.contains("R received decision 'retreat' from S\n"),
        "{b_out}"
    );
    assert!(!b_out.contains("from P"), "{b_out}");
    let (a_out, _) = a.stop();
    assert!(
        a_out.contains(&format!("Process P running on port {}...", ports[0])),
        "{a_out}"
    );
    // A command-line flag overrides the file.
    let _c = Proc::rust_server(&["--cluster", f, "--faulty", "", "--quiet"], &ports);
    let (code, out, _) = client(&["--cluster", f, "--quiet"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("Process P finalized decision: attack\n"),
        "{out}"
    );
    let _ = std::fs::remove_file(&file);
}

/// Node-to-node and client calls go straight to the cluster's nodes: an `HTTP_PROXY` in the
/// environment (here one where nothing listens) changes nothing.
#[test]
fn an_http_proxy_in_the_environment_is_not_used() {
    let base = port_base();
    let ports: Vec<u16> = "PQRS".chars().map(|c| port_of(base, c)).collect();
    let proxy = "http://127.0.0.1:9/";
    let mut server = Command::new(server_bin());
    server
        .args(["--port-base", &base.to_string(), "--quiet"])
        .env("HTTP_PROXY", proxy)
        .env("http_proxy", proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    let _server = Proc::spawn(server);
    wait_ports(&ports);
    let mut client = Command::new(client_bin());
    client
        .args(["--port-base", &base.to_string()])
        .env("HTTP_PROXY", proxy)
        .env("http_proxy", proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    let (code, out, err) = run(client, Duration::from_secs(60));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Q sent decision 'attack' to R"), "{out}");
}

/// The options a `--help` lists, each as its forms (`-m, --m <M>` is `["-m", "--m"]`), but
/// `--help` and `--version`, which every binary has. An option line is indented by 2 to 6
/// spaces and starts with `-` and a letter; descriptions are indented further.
fn help_options(help: &str) -> Vec<Vec<String>> {
    help.lines()
        .filter(|l| {
            let indent = l.len() - l.trim_start().len();
            let t = l.trim_start().as_bytes();
            (2..=6).contains(&indent) && t.len() > 1 && t[0] == b'-' && t[1] != b' '
        })
        .map(|l| {
            let head = l.trim_start().split("  ").next().unwrap();
            head.split([',', ' '])
                .filter(|w| w.starts_with('-'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|forms| !forms.iter().any(|f| f == "--help" || f == "--version"))
        .collect()
}

/// The flags a summary entry (docs/guide/binaries.md) names: every word starting with `-`, brackets stripped.
fn summary_flags(entry: &str) -> std::collections::BTreeSet<String> {
    entry
        .split_whitespace()
        .map(|w| w.trim_start_matches('['))
        .filter(|w| w.starts_with('-') && w.len() > 1)
        .map(|w| w.trim_end_matches([']', '.']).to_string())
        .collect()
}

/// The guide's summary of the binaries (docs/guide/binaries.md, "Every option": the code
/// blocks of that section) and each binary's `--help`, subcommands included, name the same options: an option missing from
/// either side, or a command without a summary, fails the test by name. A summary entry starts
/// with its command (`server`, `client`, `client [WHERE] om`, `loadgen`) and goes on over the
/// indented lines below it; `[WHERE]` stands for the `WHERE` entry's flags.
#[test]
fn readme_summary_and_help_name_the_same_options() {
    use clap::CommandFactory;
    let readme = std::fs::read_to_string(root().join("docs/guide/binaries.md")).unwrap();
    let section = readme
        .split("\n## Every option\n")
        .nth(1)
        .expect("docs/guide/binaries.md has a section \"## Every option\"");
    let section = section.split("\n## ").next().unwrap();
    // Entries keyed by (binary, subcommand), WHERE under ("WHERE", "").
    let mut entries: Vec<((String, String), String)> = Vec::new();
    let mut fenced = false;
    for line in section.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced || line.trim().is_empty() {
            continue;
        }
        if line.starts_with(' ') {
            let last = entries
                .last_mut()
                .expect("a summary line before any command");
            last.1.push(' ');
            last.1.push_str(line);
            continue;
        }
        let mut words = line.split_whitespace();
        let bin = words.next().unwrap().to_string();
        let rest: Vec<&str> = words.collect();
        let sub = rest
            .iter()
            .find(|w| **w != "[WHERE]")
            .filter(|w| !w.starts_with(['[', '-']))
            .map_or(String::new(), |w| w.to_string());
        entries.push(((bin, sub), rest.join(" ")));
    }
    let where_flags = entries
        .iter()
        .find(|((bin, _), _)| bin == "WHERE")
        .map(|(_, text)| summary_flags(text))
        .expect("the summary defines WHERE");

    let mut commands = vec![
        (server_bin(), "server", String::new()),
        (client_bin(), "client", String::new()),
        (env!("CARGO_BIN_EXE_loadgen"), "loadgen", String::new()),
    ];
    for sub in generals::cli::client::Cli::command().get_subcommands() {
        commands.push((client_bin(), "client", sub.get_name().to_string()));
    }
    let mut problems = Vec::new();
    for (path, bin, sub) in &commands {
        let place = format!("{bin} {sub}").trim().to_string();
        let Some((_, text)) = entries.iter().find(|((b, s), _)| b == bin && s == sub) else {
            problems.push(format!(
                "`{place}` has no entry in the summary (docs/guide/binaries.md)"
            ));
            continue;
        };
        let mut readme_flags = summary_flags(text);
        if text.contains("[WHERE]") {
            readme_flags.extend(where_flags.iter().cloned());
        }
        let mut help = Command::new(path);
        if !sub.is_empty() {
            help.arg(sub);
        }
        help.arg("--help");
        let (code, out, err) = run(help, Duration::from_secs(10));
        assert_eq!(code, 0, "{place} --help: {err}");
        let options = help_options(&out);
        assert!(
            !options.is_empty(),
            "{place} --help lists no option:\n{out}"
        );
        for forms in &options {
            if !forms.iter().any(|f| readme_flags.contains(f)) {
                problems.push(format!(
                    "{place}: {} is in --help but not in the summary (docs/guide/binaries.md)",
                    forms.join("/")
                ));
            }
        }
        for flag in &readme_flags {
            if !options.iter().any(|forms| forms.contains(flag)) {
                problems.push(format!(
                    "{place}: {flag} is in the summary (docs/guide/binaries.md) but not in --help"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `--mermaid -`: the diagram alone on stdout (pipe it to a file as is), the report on stderr.
#[test]
fn mermaid_dash_prints_only_the_diagram() {
    let cluster = Cluster::rust(&[]);
    let (code, out, err) = cluster.client().args(&["--mermaid", "-"]).run();
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sequenceDiagram\n"), "{out}");
    assert!(!out.contains("Process"), "no report line on stdout: {out}");
    assert!(
        out.contains("n0-xn2: denied") && out.contains("n0-xn3: denied"),
        "{out}"
    );
    assert_eq!(
        out.matches("Note over n0: ignored from").count(),
        3,
        "{out}"
    );
    assert!(
        err.contains("Process P denied communication to R\n"),
        "{err}"
    );
    assert!(
        err.contains("Process Q finalized decision: attack\n"),
        "{err}"
    );
    let (code, out, err) = cluster.client().args(&["om", "--mermaid", "-"]).run();
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sequenceDiagram\n"), "{out}");
    assert!(err.contains("IC1"), "the verdict goes to stderr: {err}");
}

/// `--mermaid FILE --json`: the JSON alone on stdout, the diagram in FILE; `--mermaid -
/// --json` would mix them, and is a usage error before anything runs.
#[test]
fn mermaid_to_a_file_keeps_stdout_for_the_json() {
    let cluster = Cluster::rust(&[]);
    let file = std::env::temp_dir().join(format!("generals-mmd-{}.mmd", cluster.base));
    let f = file.to_str().unwrap();
    let (code, out, err) = cluster
        .client()
        .args(&["om", "--seed", "42", "--mermaid", f, "--json"])
        .run();
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("stdout is the JSON alone");
    assert_eq!(json["protocol"], "om", "{json}");
    let diagram = std::fs::read_to_string(&file).unwrap();
    assert!(diagram.starts_with("sequenceDiagram\n"), "{diagram}");
    let _ = std::fs::remove_file(&file);
    let (code, out, err) = cluster
        .client()
        .args(&["om", "--json", "--mermaid", "-"])
        .run();
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(err.contains("give --mermaid a file"), "{err}");
}

/// Against the Python stand-in without its trace extension (as the original `server.py`,
/// it answers `trace_events` with "not supported"), the pictures are drawn from the client's
/// own calls, and say so.
#[test]
fn without_a_trace_the_pictures_come_from_the_clients_calls() {
    let cluster = Cluster::builder().server(Side::Python, &[]).start();
    let svg = std::env::temp_dir().join(format!("generals-notrace-{}.svg", cluster.base));
    let (code, out, err) = cluster
        .client()
        .args(&["--svg", svg.to_str().unwrap(), "--mermaid", "-"])
        .run();
    assert_eq!(code, 0, "{err}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    let _ = std::fs::remove_file(&svg);
    assert!(
        picture.contains("drawn from the client&apos;s own calls"),
        "{picture}"
    );
    assert!(picture.contains("the nodes keep no trace"), "{picture}");
    assert!(picture.contains("12 calls"), "{picture}");
    assert_eq!(picture.matches("class=\"msg").count(), 12, "{picture}");
    assert_eq!(picture.matches(" denied\" data-from=\"P\"").count(), 2);
    assert_eq!(
        picture.matches("class=\"ignored\" data-node=\"P\"").count(),
        3
    );
    assert!(
        out.contains("Note over n0,n3: drawn from the client's own calls"),
        "{out}"
    );
    assert_eq!(out.matches("->>").count(), 10, "{out}");
    assert!(
        err.contains("note: no trace from P, Q, R, S (") && !err.contains("warning"),
        "one line says why: {err}"
    );
}

/// Logs on a stderr that is not a terminal (here a pipe) are plain text: no colour codes, as
/// `--log-level` or `RUST_LOG` turn them on.
#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let base = port_base().to_string();
    let run_args = ["--port-base", &base, "--nodes", "P", "--rpc-timeout", "5"];
    let mut flag = Command::new(client_bin());
    flag.args(["--log-level", "debug"]).args(run_args);
    let mut env = Command::new(client_bin());
    env.env("RUST_LOG", "debug").args(run_args);
    for (how, cmd) in [("--log-level", flag), ("RUST_LOG", env)] {
        let (code, _, err) = run(cmd, Duration::from_secs(30));
        assert_eq!(code, 1, "{how}: {err}");
        assert!(err.contains(" DEBUG "), "{how}: no debug log:\n{err}");
        assert!(!err.contains("\x1b["), "{how}: colour codes in:\n{err:?}");
    }
    // Quiet by default: the error line and the hint, no log.
    let (_, _, err) = client(&run_args);
    assert!(!err.contains("DEBUG"), "{err}");
}

/// Completions and man pages come from the binaries themselves (their content is checked
/// against the clap definitions in `generals::cli::manual`).
#[test]
fn completions_and_man_pages_print() {
    for (bin, args, expect) in [
        (client_bin(), &["completions", "bash"][..], "_client()"),
        (client_bin(), &["completions", "fish"], "complete -c client"),
        (client_bin(), &["man"], ".TH client 1"),
        (client_bin(), &["man", "explore"], ".TH client-explore 1"),
        (server_bin(), &["--completions", "zsh"], "#compdef server"),
        (server_bin(), &["--man"], ".TH server 1"),
    ] {
        let mut cmd = Command::new(bin);
        cmd.args(args);
        let (code, out, err) = run(cmd, Duration::from_secs(10));
        assert_eq!((code, err.as_str()), (0, ""), "{bin} {args:?}");
        assert!(out.contains(expect), "{bin} {args:?}:\n{out}");
    }
}

/// `client --spawn`: the original run against nodes it starts itself, P faulty as `server`'s
/// default; the same stdout as against a separate `server`, and none of the server's lines.
#[test]
fn spawn_runs_the_original_against_its_own_nodes() {
    let cluster = Cluster::rust(&[]);
    let (code, separate, err) = cluster.client().run();
    assert_eq!(code, 0, "{err}");
    drop(cluster);
    let (code, spawned, err) = Client::rust().at(port_base()).args(&["--spawn"]).run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(spawned, separate);
    assert!(
        spawned.contains("Process P denied communication to R\n"),
        "{spawned}"
    );
    assert!(!spawned.contains("running on port"), "{spawned}");
}

/// `client --spawn` takes the server's roles for the nodes it starts: OM(1) with a two-faced
/// lieutenant and nobody faulty in the original's sense holds.
#[test]
fn spawn_takes_the_servers_roles() {
    let (code, json, err) = Client::rust()
        .args(&["--spawn", "--port-base", &port_base().to_string()])
        .args(&[
            "--faulty",
            "",
            "--behaviour",
            "S=two-faced",
            "om",
            "-m",
            "1",
        ])
        .json();
    assert_eq!(code, 0, "{err}");
    assert_eq!(json["verdict"], "holds", "{json}");
    assert_eq!(json["traitors"], serde_json::json!(["S"]), "{json}");
    assert_eq!(json["messages"], 9, "{json}");
}

/// A port in use: what `server` says, exit 1, nothing run.
#[test]
fn spawn_on_a_port_in_use_is_the_servers_error() {
    let base = port_base();
    let _held = std::net::TcpListener::bind(("127.0.0.1", port_of(base, 'Q'))).unwrap();
    let (code, out, err) = Client::rust().at(base).args(&["--spawn"]).run();
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    let mut server = Command::new(server_bin());
    server.args(["--port-base", &base.to_string()]);
    let (server_code, _, server_err) = run(server, Duration::from_secs(10));
    assert_eq!(server_code, 1, "{server_err}");
    let message = format!("cannot bind node Q on 127.0.0.1:{}", port_of(base, 'Q'));
    assert!(server_err.contains(&message), "{server_err}");
    assert_eq!(
        err.strip_prefix("client: "),
        server_err.strip_prefix("server: "),
        "the same message"
    );
}

/// Cluster files (issue 26): read with a cap of 1 MiB (`/dev/zero` passed 2 GB in under 2 s),
/// and their names and ports checked as `--nodes` and `--peer` check them: port 0 (a port no
/// peer can find), an empty name, names no flag can give (`,`, `=`) and names a line cannot
/// show (bidi, invisible) are refused before anything binds or runs, exit 2, naming the file.
#[test]
fn cluster_files_are_read_with_a_cap_and_their_names_checked() {
    let dir = std::env::temp_dir();
    let file = |tag: &str, name: &str, url: &str| {
        let path = dir.join(format!("generals-{}-{tag}.toml", std::process::id()));
        let text = format!(
            "[[node]]\nname = \"P\"\nurl = \"http://127.0.0.1:1/\"\n[[node]]\nname = \"{name}\"\nurl = \"{url}\"\n"
        );
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let url = "http://127.0.0.1:2/";
    let cases = [
        (
            "/dev/zero".to_string(),
            "larger than 1048576 bytes".to_string(),
        ),
        (
            "/dev/urandom".to_string(),
            "larger than 1048576 bytes".to_string(),
        ),
        (
            file("port0", "Q", "http://127.0.0.1:0/"),
            "has port 0".to_string(),
        ),
        (file("empty", "", url), "a node needs a name".to_string()),
        (file("comma", "Q,R", url), "',' separates names".to_string()),
        (file("equals", "Q=R", url), "'=' ends the name".to_string()),
        (
            file("bidi", "Q\u{202e}", url),
            "node name 'Q\\u202e'".to_string(),
        ),
        (
            file("zwsp", "Q\u{200b}", url),
            "bidi and invisible".to_string(),
        ),
    ];
    for (path, says) in &cases {
        for cmd in [
            vec!["client", "--cluster", path, "om"],
            vec!["server", "--cluster", path],
        ] {
            let bin = if cmd[0] == "client" {
                client_bin()
            } else {
                server_bin()
            };
            let mut c = Command::new(bin);
            c.args(&cmd[1..]);
            let (code, out, err) = run(c, Duration::from_secs(30));
            assert_eq!(code, 2, "{cmd:?}: {out}{err}");
            assert!(err.contains(says.as_str()), "{cmd:?}: {err}");
            assert!(err.contains(path.as_str()), "the file is named: {err}");
            assert_eq!(err.lines().count(), 1, "one line: {err}");
        }
    }
    // --peer takes the same rule.
    let (code, _, err) = client(&["--peer", "Q=http://127.0.0.1:0/", "--nodes", "P,Q"]);
    assert_eq!(code, 2);
    assert!(err.contains("has port 0"), "{err}");
    for (path, _) in &cases[2..] {
        let _ = std::fs::remove_file(path);
    }
}

/// `--adversary fuzz --cases N` sizes the work as the strategy space does for `all`: over
/// `--max-cases` it is refused before any case runs (issue 26: 99999999999 was taken).
#[test]
fn fuzz_cases_are_capped_by_max_cases() {
    let (code, out, err) = client(&[
        "explore",
        "--adversary",
        "fuzz",
        "--cases",
        "99999999999",
        "--seed",
        "1",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("--cases 99999999999 is more than --max-cases 100000"),
        "{err}"
    );
    assert_eq!(out, "", "nothing ran");
    let (code, _, err) = client(&[
        "explore",
        "--adversary",
        "fuzz",
        "--cases",
        "30",
        "--max-cases",
        "20",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("more than --max-cases 20"), "{err}");
}

/// Usage errors are the error and clap's tip (or where to read more): no `Usage:` line, which
/// read as the fix for errors it has nothing to do with; `-m` is shown as `-m`.
#[test]
fn usage_errors_are_one_or_two_lines() {
    let loadgen = env!("CARGO_BIN_EXE_loadgen");
    for (bin, args, says) in [
        (
            client_bin(),
            &["om", "--json", "--mermaid", "-"][..],
            "both write to stdout",
        ),
        (
            client_bin(),
            &["--nodse", "P"],
            "unexpected argument '--nodse'",
        ),
        (
            client_bin(),
            &["om", "-m", "x"],
            "invalid value 'x' for '-m <M>'",
        ),
        (
            client_bin(),
            &["om", "--round-timeout-ms", "0"],
            "a round timeout is 1 to 600000",
        ),
        (
            client_bin(),
            &["ui", "--listen", "example.org:80"],
            "give an IP address and a port",
        ),
        (server_bin(), &["--bogus"], "unexpected argument '--bogus'"),
        (loadgen, &["--bogus"], "unexpected argument '--bogus'"),
    ] {
        let mut cmd = Command::new(bin);
        cmd.args(args);
        let (code, out, err) = run(cmd, Duration::from_secs(10));
        assert_eq!((code, out.as_str()), (2, ""), "{bin} {args:?}: {err}");
        assert!(err.contains(says), "{bin} {args:?}: {err}");
        assert!(err.lines().count() <= 2, "{bin} {args:?}:\n{err}");
        assert!(
            !err.contains("Usage:") && !err.contains("--m "),
            "{bin} {args:?}:\n{err}"
        );
    }
}

/// `loadgen` says which of its failures happened: nothing to resolve, nothing to connect to,
/// or a node that answered no call; `-V` names it.
#[test]
fn loadgen_says_why_it_could_not_load() {
    let loadgen = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
        cmd.args(args);
        run(cmd, Duration::from_secs(20))
    };
    let (code, out, _) = loadgen(&["-V"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("loadgen "), "{out}");
    let (code, _, err) = loadgen(&["--addr", "localhost", "-d", "0.2"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("loadgen: cannot resolve --addr localhost"),
        "{err}"
    );
    assert!(err.contains("give HOST:PORT"), "{err}");
    let closed = format!("127.0.0.1:{}", port_base());
    let (code, _, err) = loadgen(&["--addr", &closed, "-d", "0.2"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!("loadgen: cannot connect to {closed}")),
        "{err}"
    );
    assert!(!err.contains("no call succeeded"), "{err}");
}

/// The help texts say what a newcomer asks: the completions path in one piece, `--spawn`
/// for `ui` too, what Ctrl-C does; every flag of the Python stand-ins has a description.
#[test]
fn help_texts_answer_the_usual_questions() {
    let (code, out, _) = client(&["completions", "--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("~/.local/share/bash-completion/completions/client"),
        "{out}"
    );
    let (code, out, _) = client(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("`--spawn` (the original run, `om`, `sm`, `ui`)"),
        "{out}"
    );
    assert!(out.contains("Ctrl-C") && out.contains("exit 130"), "{out}");
    let (_, out, _) = client(&["om", "--help"]);
    assert!(
        out.contains("plus 0.1 ms per message of the run's largest round"),
        "{out}"
    );
    for script in [python_server_script(), python_client_script()] {
        let mut cmd = Command::new("python3");
        cmd.arg(&script).arg("--help");
        let (code, out, err) = run(cmd, Duration::from_secs(10));
        assert_eq!(code, 0, "{err}");
        let lines: Vec<&str> = out.lines().collect();
        let mut flags = 0;
        for (i, line) in lines.iter().enumerate() {
            let Some(option) = line.strip_prefix("  -") else {
                continue;
            };
            flags += 1;
            // The description follows the flag on its line, or on the next, indented.
            let described = option.trim_end().contains("  ")
                || lines
                    .get(i + 1)
                    .is_some_and(|next| next.starts_with("          ") && !next.trim().is_empty());
            assert!(described, "{}: {line} has no description", script.display());
        }
        assert!(flags >= 4, "{out}");
    }
}

/// `--behaviours silent,deny:R,S`: a comma before a node name continues the deny list, so the
/// original faulty P's own behaviour can be explored.
#[test]
fn explore_takes_a_deny_list_among_the_behaviours() {
    let (code, out, err) = client(&[
        "explore",
        "--behaviours",
        "silent,deny:R,S",
        "--orders",
        "attack",
        "--seed",
        "1",
        "--jobs",
        "2",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("behaviours silent,deny:R,S,"), "{out}");
    assert!(out.contains("9 cases"), "{out}");
}

/// A server's own nodes are its cluster's by definition: `--nodes P,Q,R,S,T,U,V` hosts seven,
/// placed by the port rule, and they call each other.
#[test]
fn a_server_hosts_nodes_past_s() {
    let base = port_base();
    let ports: Vec<u16> = "PQRSTUV".chars().map(|n| port_of(base, n)).collect();
    let server = Proc::rust_server(
        &[
            "--port-base",
            &base.to_string(),
            "--nodes",
            "P,Q,R,S,T,U,V",
            "--faulty",
            "",
            "--quiet",
        ],
        &ports,
    );
    let v = port_of(base, 'V');
    assert_eq!(
        call(port_of(base, 'T'), "send_message", &[s("V"), s("attack")]),
        Ok(s("T sent decision 'attack' to V"))
    );
    assert_eq!(messages(v), [("T".to_string(), "attack".to_string())]);
    drop(server);
}

/// Ctrl-C ends the client as the signal does (the shell's exit 130), in the middle of a run.
#[test]
fn ctrl_c_ends_the_client() {
    use std::os::unix::process::ExitStatusExt;
    let base = port_base();
    use std::os::unix::process::CommandExt;
    let hung = HungPeer::bind(port_of(base, 'P'));
    let mut cmd = Command::new(client_bin());
    cmd.args([
        "--port-base",
        &base.to_string(),
        "--rpc-timeout",
        "60",
        "om",
    ]);
    // Ctrl-C as a terminal delivers it: a test run from a background job (a CI script's `&`)
    // inherits SIGINT ignored, and an ignored signal would leave the client waiting.
    // SAFETY: signal(2) is async-signal-safe, and the closure only calls it.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let client = Proc::spawn(cmd);
    // The client is in its first call (to the hung P) once P has accepted its connection.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while hung.accepted() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the client never called P"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: kill(2) on the pid of a child this test started and still holds.
    let sent = unsafe { libc::kill(client.pid() as i32, libc::SIGINT) };
    assert_eq!(sent, 0);
    let (status, _, _) = client.wait(Duration::from_secs(20));
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
}
