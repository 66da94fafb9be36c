//! The interop matrix: {Python client, Rust client} x {Python cluster, Rust cluster, Rust P+R
//! with Python Q+S, Python P+R with Rust Q+S}. Each run must print the four final lines of
//! `client.py`, and each server process must print exactly the lines the original prints for
//! the nodes it hosts (as a multiset: processes interleave).

use std::time::Duration;

use crate::common::*;

/// The original server's stdout for the default run, from docs/protocol.md.
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

/// The original client's whole output, from docs/protocol.md.
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

/// Start the cluster as `parts` (side, hosted nodes), run `client`, check everything.
fn run_matrix_cell(client: Side, parts: &[(Side, &str)]) {
    let cluster = parts
        .iter()
        .fold(Cluster::builder(), |c, &(side, hosted)| {
            c.hosting(side, hosted, &[])
        })
        .start();
    let base = cluster.base;
    let mut client_run = Client::of(client).at(base);
    if client == Side::Rust {
        client_run = client_run.args(&["--quiet"]);
    }
    let (code, out, err) = client_run.timeout(Duration::from_secs(60)).run();
    assert_eq!(code, 0, "client {client:?} failed on {parts:?}: {err}");
    assert_eq!(out, CLIENT_STDOUT, "client {client:?} on {parts:?}");

    let hosted = parts.iter().map(|&(_, hosted)| hosted);
    for (p, hosted) in cluster.into_processes().into_iter().zip(hosted) {
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
    let c = Cluster::rust(&[]);
    let (code, out, err) = c.client().timeout(Duration::from_secs(30)).run();
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
