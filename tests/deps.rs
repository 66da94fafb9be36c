//! The design card's crates are the XML-RPC and runtime layer on the paths that matter, and no
//! TLS stack is built in. Read from the sources and from `Cargo.lock` (no `cargo` run inside a
//! test: it needs the registry, and an environment's trouble is no finding about the code).

use std::path::Path;

fn source(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Code only: `//` comments (doc comments included) are no use of anything.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each crate of the card, where it carries the project: (crate, file, what the code there
/// must name). A refactor that moves one of these paths moves its row; one that drops the
/// crate from the path fails here.
const USES: &[(&str, &str, &str)] = &[
    // dxr's values are what every request and answer is made of.
    ("dxr", "src/dispatch.rs", "dxr::"),
    ("dxr", "src/node.rs", "dxr::Value"),
    // dxr_client writes the body of every single outgoing call (peer::Peers::call).
    ("dxr_client", "src/peer.rs", "dxr_client::utils::"),
    // dxr_server's Handler is the method table of every node.
    ("dxr_server", "src/methods.rs", "impl Handler for"),
    // tokio runs the accept loop and every connection.
    ("tokio", "src/server/accept.rs", "tokio::net::"),
    ("tokio", "src/bin/server.rs", "tokio::"),
    // anyhow carries the binaries' errors.
    ("anyhow", "src/bin/server.rs", "anyhow::"),
    ("anyhow", "src/bin/client.rs", "anyhow::"),
];

#[test]
fn the_design_cards_crates_carry_their_paths() {
    let manifest = source("Cargo.toml");
    let mut missing = Vec::new();
    for (krate, file, needle) in USES {
        assert!(
            manifest
                .lines()
                .any(|l| l.starts_with(&format!("{krate} = "))),
            "{krate} is not a dependency in Cargo.toml"
        );
        if !code(&source(file)).contains(needle) {
            missing.push(format!("{file} does not use {krate} ({needle})"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn no_tls_stack_is_built_in() {
    let lock = source("Cargo.lock");
    let packages: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .collect();
    assert!(packages.contains(&"dxr"), "Cargo.lock lists no packages?");
    for tls in ["rustls", "aws-lc", "native-tls", "openssl", "ring"] {
        let found: Vec<&&str> = packages.iter().filter(|p| p.starts_with(tls)).collect();
        assert!(found.is_empty(), "{tls} is in Cargo.lock: {found:?}");
    }
}
