//! The crate's modules depend on each other one way only: each module may use modules of lower
//! layers, never its own layer's others nor a higher one. The layers are the README's
//! "Architecture" order; this test reads every `crate::...` path in `src/` and fails on an
//! arrow that points up or sideways (a cycle needs one), naming the file and the path.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every top-level module of the library and its layer, from the wire's leaves upwards.
const LAYERS: &[(&str, u8)] = &[
    // Leaves: wire strings, traitor behaviours, the allocator, connection and byte budgets.
    ("protocol", 0),
    ("behaviour", 0),
    ("allocator", 0),
    ("gate", 0),
    // Every method as a typed call: its name, its decoded arguments, heavy or not.
    ("calls", 1),
    // The wire's reader and writer, who is where, one general, the console lines.
    ("xmlrpc", 2),
    ("cluster", 2),
    ("node", 2),
    ("console", 2),
    // Outgoing calls, then the records of them.
    ("peer", 3),
    ("trace", 4),
    // Byzantine agreement: the algorithms, the rounds, the engine, the checker.
    ("agreement", 5),
    // A node's method table, the request path, the HTTP server.
    ("methods", 6),
    ("dispatch", 7),
    ("server", 8),
    // Runs driven from outside (original, OM/SM, explorer), pictures, the load generator.
    ("runs", 9),
    ("picture", 9),
    ("load", 9),
    // The command lines, then what the client does with them (the app), then the live page,
    // which runs what the app runs.
    ("cli", 10),
    ("app", 11),
    ("ui", 12),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source text names through `crate::` in code (comments, doc links
/// included, are no dependency): `crate::a::b`, and each first segment of a group,
/// `use crate::{a, b::c}`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let text = code.as_str();
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn module_arrows_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if ["lib", "bin", "main"].contains(&module.as_str()) {
            continue;
        }
        let Some(from) = layer(&module) else {
            wrong.push(format!(
                "{}: module {module} has no layer in tests/layers.rs",
                rel.display()
            ));
            continue;
        };
        seen.insert(module.clone());
        for target in crate_paths(&std::fs::read_to_string(file).unwrap()) {
            if target == module {
                continue;
            }
            match layer(&target) {
                Some(to) if to < from => {}
                Some(to) => wrong.push(format!(
                    "{}: {module} (layer {from}) uses crate::{target} (layer {to})",
                    rel.display()
                )),
                None => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "arrows that do not point down:\n{}",
        wrong.join("\n")
    );
    // Every layer names a module that exists, so the table stays the crate's map.
    let missing: Vec<&str> = LAYERS
        .iter()
        .map(|(m, _)| *m)
        .filter(|m| !seen.contains(*m))
        .collect();
    assert!(
        missing.is_empty(),
        "modules in the table but not in src/: {missing:?}"
    );
}

#[test]
fn the_path_reader_sees_groups_and_paths() {
    let text = "use crate::{peer::Peers, trace};\nlet x = crate::protocol::fault::python(1);\n/// [`up`](crate::server)";
    let got: Vec<String> = crate_paths(text).into_iter().collect();
    assert_eq!(got, ["peer", "protocol", "trace"]);
}
