//! The interop matrix: {Python client, Rust client} x {Python cluster, Rust cluster, Rust P+R
//! with Python Q+S, Python P+R with Rust Q+S}. Each run must print the four final lines of
//! `client.py`, and each server process must print exactly the lines the original prints for
//! the nodes it hosts (as a multiset: processes interleave).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

/// The original server's stdout for the default run, from PROTOCOL.md.
const ORIGINAL_STDOUT: &str = "\
P sent decision 'attack' to Q
Q received decision 'attack' from P
Process P is denying communication to R
Process P is denying communication to S
Q sent decision 'attack' to P
Q sent decision 'attack' to R
R received decision 'attack' from Q
Q sent decision 'attack' to S
S received decision 'attack' from Q
R sent decision 'attack' to P
R sent decision 'attack' to Q
Q received decision 'attack' from R
R sent decision 'attack' to S
S received decision 'attack' from R
S sent decision 'attack' to P
S sent decision 'attack' to Q
Q received decision 'attack' from S
S sent decision 'attack' to R
R received decision 'attack' from S
majority is : attack
majority is : attack
majority is : attack
";

/// The original client's whole output, from PROTOCOL.md.
const CLIENT_STDOUT: &str = "\
Process P finalized decision: faulty
Process Q finalized decision: attack
Process R finalized decision: attack
Process S finalized decision: attack
";

/// The lines of [`ORIGINAL_STDOUT`] printed by the nodes in `hosted`, plus their startup lines.
fn expected_stdout(hosted: &str, base: u16) -> Vec<String> {
    let mut majority_owners = ["Q", "R", "S"].into_iter();
    let mut lines = Vec::new();
    for name in hosted.split(',') {
        let c = name.chars().next().unwrap();
        lines.push(format!(
            "Process {name} running on port {}...",
            port_of(base, c)
        ));
    }
    for line in ORIGINAL_STDOUT.lines() {
        let owner = if let Some(rest) = line.strip_prefix("Process ") {
            &rest[..1]
        } else if line.starts_with("majority") {
            majority_owners.next().unwrap()
        } else {
            &line[..1]
        };
        if hosted.split(',').any(|h| h == owner) {
            lines.push(line.to_string());
        }
    }
    lines.sort();
    lines
}

#[derive(Clone, Copy, Debug)]
enum Side {
    Python,
    Rust,
}

/// Start the cluster as `parts` (side, hosted nodes), run `client`, check everything.
fn run_matrix_cell(client: Side, parts: &[(Side, &str)]) {
    let base = port_base();
    let base_s = base.to_string();
    let procs: Vec<(Proc, &str)> = parts
        .iter()
        .map(|&(side, hosted)| {
            let ports: Vec<u16> = hosted
                .split(',')
                .map(|n| port_of(base, n.chars().next().unwrap()))
                .collect();
            let args = ["--port-base", base_s.as_str(), "--nodes", hosted];
            let p = match side {
                Side::Python => Proc::python_server(&args, &ports),
                Side::Rust => Proc::rust_server(&args, &ports),
            };
            (p, hosted)
        })
        .collect();

    let cmd = match client {
        Side::Python => {
            let mut c = Command::new("python3");
            c.arg(python_client_script()).args(["--port-base", &base_s]);
            c
        }
        Side::Rust => {
            let mut c = Command::new(client_bin());
            c.args(["--port-base", &base_s, "--quiet"]);
            c
        }
    };
    let (code, out, err) = run(cmd, Duration::from_secs(60));
    assert_eq!(code, 0, "client {client:?} failed on {parts:?}: {err}");
    assert_eq!(out, CLIENT_STDOUT, "client {client:?} on {parts:?}");

    for (p, hosted) in procs {
        let (out, err) = p.stop();
        assert_eq!(
            sorted_lines(&out),
            expected_stdout(hosted, base),
            "stdout of the process hosting {hosted} ({parts:?}, client {client:?})\nstderr:\n{err}"
        );
        // One access-log line per request on stderr, in Python's format.
        assert!(
            err.lines()
                .any(|l| l.starts_with("127.0.0.1 - - [")
                    && l.ends_with("\"POST / HTTP/1.1\" 200 -")),
            "no access log from {hosted}: {err}"
        );
    }
}

const PY: &[(Side, &str)] = &[(Side::Python, "P,Q,R,S")];
const RS: &[(Side, &str)] = &[(Side::Rust, "P,Q,R,S")];
const RS_PR_PY_QS: &[(Side, &str)] = &[(Side::Rust, "P,R"), (Side::Python, "Q,S")];
const PY_PR_RS_QS: &[(Side, &str)] = &[(Side::Python, "P,R"), (Side::Rust, "Q,S")];

#[test]
fn python_client_python_cluster() {
    run_matrix_cell(Side::Python, PY);
}

#[test]
fn python_client_rust_cluster() {
    run_matrix_cell(Side::Python, RS);
}

#[test]
fn python_client_rust_pr_python_qs() {
    run_matrix_cell(Side::Python, RS_PR_PY_QS);
}

#[test]
fn python_client_python_pr_rust_qs() {
    run_matrix_cell(Side::Python, PY_PR_RS_QS);
}

#[test]
fn rust_client_python_cluster() {
    run_matrix_cell(Side::Rust, PY);
}

#[test]
fn rust_client_rust_cluster() {
    run_matrix_cell(Side::Rust, RS);
}

#[test]
fn rust_client_rust_pr_python_qs() {
    run_matrix_cell(Side::Rust, RS_PR_PY_QS);
}

#[test]
fn rust_client_python_pr_rust_qs() {
    run_matrix_cell(Side::Rust, PY_PR_RS_QS);
}

/// Without `--quiet` the Rust client prints `Process ` + each send's reply (the original
/// README's shape), then the four final lines.
#[test]
fn rust_client_prints_each_send() {
    let base = port_base();
    let ports: Vec<u16> = "PQRS".chars().map(|c| port_of(base, c)).collect();
    let _server = Proc::rust_server(&["--port-base", &base.to_string(), "--quiet"], &ports);
    let mut cmd = Command::new(client_bin());
    cmd.args(["--port-base", &base.to_string()]);
    let (code, out, err) = run(cmd, Duration::from_secs(30));
    assert_eq!(code, 0, "{err}");
    let mut expected = String::new();
    for sender in ["P", "Q", "R", "S"] {
        for recipient in ["P", "Q", "R", "S"] {
            if sender == recipient {
                continue;
            }
            if sender == "P" && (recipient == "R" || recipient == "S") {
                expected += &format!("Process P denied communication to {recipient}\n");
            } else {
                expected += &format!("Process {sender} sent decision 'attack' to {recipient}\n");
            }
        }
    }
    expected += CLIENT_STDOUT;
    assert_eq!(out, expected);
    assert_eq!(err, "");
}
