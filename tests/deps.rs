//! The design card's crates are the XML-RPC and runtime layer, and no TLS stack is built in:
//! `cargo tree -e normal` of the package, checked as a test so a feature slip shows in CI.

use std::process::Command;

#[test]
fn design_card_crates_and_no_tls() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-e", "normal", "--prefix", "depth", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let direct: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.strip_prefix('1'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for krate in ["dxr", "dxr_server", "dxr_client", "tokio", "anyhow"] {
        assert!(
            direct.contains(&krate),
            "{krate} is not a direct dependency: {direct:?}"
        );
    }
    for tls in ["rustls", "aws-lc", "native-tls", "openssl"] {
        assert!(
            !tree.lines().any(|l| l
                .split_whitespace()
                .next()
                .is_some_and(|n| n.trim_start_matches(char::is_numeric).starts_with(tls))),
            "{tls} is in the dependency tree"
        );
    }
}
