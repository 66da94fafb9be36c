//! The docs as a newcomer follows them: every relative link of README.md, docs/**/*.md,
//! BENCHMARKS.md, RELIABILITY.md and fuzz/README.md leads to a file (and its `#anchor` to a
//! heading there), every repository path they name in backticks exists, and every command line
//! of ours they print (`server`, `client`, `cargo run --bin ...`) parses with the binaries' own
//! clap parsers. The guide's architecture chapter names every file of `src/`, and the cluster
//! file it shows is `examples/cluster.toml`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::root;

/// The Markdown files the docs are made of, relative to the repository root.
fn doc_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "md") {
                out.push(path);
            }
        }
    }
    let mut files: Vec<PathBuf> = ["README.md", "BENCHMARKS.md", "RELIABILITY.md"]
        .iter()
        .map(|f| root().join(f))
        .collect();
    files.push(root().join("fuzz/README.md"));
    walk(&root().join("docs"), &mut files);
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A document split the way the checks read it: the lines of its fenced blocks (with the
/// block's info string), and its prose with the fenced blocks removed.
struct Split {
    fenced: Vec<(String, String)>,
    prose: String,
}

fn split(text: &str) -> Split {
    let (mut info, mut fenced, mut prose) = (None::<String>, Vec::new(), String::new());
    for line in text.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("```") {
            info = match info {
                Some(_) => None,
                None => Some(rest.trim().to_string()),
            };
        } else if let Some(lang) = &info {
            fenced.push((lang.clone(), line.to_string()));
        } else {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    Split { fenced, prose }
}

/// The prose's inline code spans (single backticks; a span may cross a line break) and the
/// prose with them cut out.
fn code_spans(prose: &str) -> (Vec<String>, String) {
    let (mut spans, mut rest) = (Vec::new(), String::new());
    for (i, part) in prose.split('`').enumerate() {
        if i % 2 == 1 {
            spans.push(part.replace('\n', " "));
        } else {
            rest.push_str(part);
        }
    }
    (spans, rest)
}

/// The targets of the inline links and images of `prose` (code spans already cut out).
fn link_targets(prose: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = prose;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        targets.push(after[..end].trim().to_string());
        rest = &after[end..];
    }
    targets
}

/// The anchors GitHub gives a document's headings: lower case, punctuation dropped but `-` and
/// `_`, spaces as `-`; a repeated heading gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in split(text).prose.lines() {
        let trimmed = line.trim_start_matches('#');
        if trimmed.len() == line.len() || !trimmed.starts_with(' ') {
            continue;
        }
        let slug: String = trimmed
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while seen.contains(&unique) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
        seen.insert(unique);
    }
    seen
}

/// Every relative link, and every image, of a document resolves: `FILE`, `FILE#anchor` or
/// `#anchor`, relative to the document.
fn link_problems(path: &Path, text: &str) -> Vec<String> {
    let (_, prose) = code_spans(&split(text).prose);
    let mut problems = Vec::new();
    for target in link_targets(&prose) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (file, anchor) = match target.split_once('#') {
            Some((f, a)) => (f, Some(a)),
            None => (target.as_str(), None),
        };
        let resolved = if file.is_empty() {
            path.to_path_buf()
        } else {
            path.parent().unwrap().join(file)
        };
        if !resolved.exists() {
            problems.push(format!("{}: link ({target}) leads to no file", shown(path)));
            continue;
        }
        if let Some(anchor) = anchor
            && resolved.extension().is_some_and(|x| x == "md")
            && !anchors(&read(&resolved)).contains(anchor)
        {
            problems.push(format!(
                "{}: link ({target}): {} has no heading #{anchor}",
                shown(path),
                shown(&resolved)
            ));
        }
    }
    problems
}

/// The repository directories whose paths the docs name in backticks.
const TREES: &[&str] = &["src/", "tests/", "scripts/", "examples/", "docs/", "fuzz/"];

/// A path a code span names: its first word, when it starts with one of [`TREES`] and is no
/// pattern or placeholder (`tests/NAME.rs`, `docs/**/*.md`, `src/...`).
fn named_path(span: &str) -> Option<&str> {
    let word = span.split_whitespace().next()?;
    let word = word.trim_end_matches([',', '.', ':', ';', ')']);
    let word = word.strip_suffix("'s").unwrap_or(word);
    // `tests/cli.rs::a_test` names a test in a file: the file is what must exist.
    let word = word.split("::").next().unwrap_or(word);
    let placeholder = word.contains(['*', '$', '<', '{', '[']) || word.contains("...");
    let upper = word.split('/').any(|part| {
        let stem = part.split('.').next().unwrap_or(part);
        stem.len() > 1 && stem.chars().all(|c| !c.is_lowercase())
    });
    (TREES.iter().any(|t| word.starts_with(t)) && !placeholder && !upper).then_some(word)
}

fn path_problems(path: &Path, text: &str) -> Vec<String> {
    let (spans, _) = code_spans(&split(text).prose);
    spans
        .iter()
        .filter_map(|s| named_path(s))
        .filter(|p| !root().join(p).exists())
        .map(|p| format!("{}: `{p}` names no file of the repository", shown(path)))
        .collect()
}

/// Words a command line has as a placeholder, not as an argument: such a line is a reference
/// (`server --max-body BYTES`), not a command to run.
const PLACEHOLDERS: &[&str] = &[
    "N",
    "SECS",
    "BYTES",
    "MS",
    "NAME=KIND",
    "NAME=URL",
    "FILE",
    "NODE",
    "ARGS",
    "LEVEL",
    "SHELL",
    "ITS_NODES",
];

/// The commands of one shell line: `$ ` and comments dropped, split at `&&`, `&`, `|` and `;`,
/// redirections and leading `VAR=value` words dropped, `cargo run [--release] --bin NAME [--]`
/// and `target/*/NAME` read as NAME, quotes around a word taken off. Only our binaries'
/// commands are returned, as their words.
fn commands(line: &str) -> Vec<Vec<String>> {
    let line = without_comment(line);
    let mut out = Vec::new();
    for part in line.split("&&").flat_map(|p| p.split([';', '|', '&'])) {
        let mut words: Vec<&str> = part
            .split_whitespace()
            .take_while(|w| !w.starts_with('>') && !w.starts_with("2>") && *w != "<")
            .collect();
        while words.first().is_some_and(|w| {
            w.contains('=')
                && !w.starts_with('-')
                && w.split('=')
                    .next()
                    .unwrap()
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_')
        }) {
            words.remove(0);
        }
        if words.len() >= 3 && words[0] == "cargo" && words[1] == "run" {
            let Some(at) = words.iter().position(|w| *w == "--bin") else {
                continue;
            };
            let Some(name) = words.get(at + 1).copied() else {
                continue;
            };
            let rest = match words.iter().position(|w| *w == "--") {
                Some(dash) => words[dash + 1..].to_vec(),
                None => Vec::new(),
            };
            words = std::iter::once(name).chain(rest).collect();
        }
        if let Some(first) = words.first_mut()
            && let Some(name) = first
                .strip_prefix("target/release/")
                .or(first.strip_prefix("target/debug/"))
        {
            *first = name;
        }
        if !matches!(words.first(), Some(&"server" | &"client")) {
            continue;
        }
        out.push(
            words
                .iter()
                .map(|w| {
                    let quoted = w.len() >= 2
                        && ((w.starts_with('\'') && w.ends_with('\''))
                            || (w.starts_with('"') && w.ends_with('"')));
                    if quoted { &w[1..w.len() - 1] } else { w }.to_string()
                })
                .collect(),
        );
    }
    out
}

/// A shell line without its prompt and its comment.
fn without_comment(line: &str) -> &str {
    let line = line.trim().trim_start_matches("$ ");
    line.split(" #").next().unwrap_or(line)
}

/// Whether a line is a usage summary or a flag reference rather than a command to run.
fn is_reference(line: &str) -> bool {
    line.contains(['[', '{', '(', '<']) || line.contains("|-") || line.contains("om|sm")
}

fn parse(words: &[String]) -> Result<(), String> {
    match words[0].as_str() {
        "client" => generals::cli::client::Cli::try_parse_checked(words)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        _ => {
            use clap::Parser;
            generals::cli::server::ServerArgs::try_parse_from(words)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }
}

/// Info strings of the fenced blocks that are shell: every line of theirs is a command line.
const SHELL: &[&str] = &["sh", "shell", "bash", "console"];

/// The command lines of a document: every line of its shell blocks, the `$ ` lines of its
/// other blocks but TOML's (transcripts: a command, then its output), and every code span of
/// its prose of three words or more that does not end in a flag (`client --svg`, `server
/// --max-body` and `client explore --adversary` name a flag).
fn command_lines(text: &str) -> Vec<String> {
    let split = split(text);
    let (spans, _) = code_spans(&split.prose);
    split
        .fenced
        .into_iter()
        .filter(|(lang, line)| {
            SHELL.contains(&lang.as_str()) || (lang != "toml" && line.starts_with("$ "))
        })
        .map(|(_, line)| line)
        .chain(spans.into_iter().filter(|s| {
            s.split_whitespace().count() >= 3
                && !s
                    .split_whitespace()
                    .last()
                    .is_some_and(|w| w.starts_with('-'))
        }))
        .collect()
}

#[test]
fn every_relative_link_resolves() {
    let problems: Vec<String> = doc_files()
        .iter()
        .flat_map(|p| link_problems(p, &read(p)))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_named_path_exists() {
    let problems: Vec<String> = doc_files()
        .iter()
        .flat_map(|p| path_problems(p, &read(p)))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every `client` and `server` command line the docs print parses as it is printed: the lines
/// of their code blocks, and the commands quoted in their prose (but usage summaries and flag
/// references such as `server --max-body BYTES`).
#[test]
fn every_command_line_parses() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for path in doc_files() {
        for line in command_lines(&read(&path)) {
            if is_reference(without_comment(&line)) {
                continue;
            }
            for words in commands(&line) {
                if words.iter().any(|w| PLACEHOLDERS.contains(&w.as_str())) {
                    continue;
                }
                match parse(&words) {
                    Ok(()) => checked += 1,
                    Err(e) => problems.push(format!(
                        "{}: `{}` does not parse: {}",
                        shown(&path),
                        words.join(" "),
                        e.lines().next().unwrap_or("")
                    )),
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 60, "only {checked} command lines found");
}

/// The architecture chapter names every file of `src/`: a top-level one by its path, a file
/// `src/a/b.rs` as `a/b.rs` or by its directory (`src/a/`) and its name (`b.rs`); and each
/// `src/` path it names exists.
#[test]
fn the_architecture_names_every_file_of_src() {
    let chapter = read(&root().join("docs/guide/architecture.md"));
    let mut problems = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("src"), &mut files);
    for file in files {
        let rel = shown(&file);
        let parts: Vec<&str> = rel.split('/').collect();
        let name = parts[parts.len() - 1];
        let named = if parts.len() == 2 {
            chapter.contains(&rel)
        } else if chapter.contains(&format!("{}/{name}", parts[parts.len() - 2])) {
            true
        } else {
            let dir = format!("src/{}/", parts[1]);
            chapter.contains(&dir)
                && parts[2..parts.len() - 1]
                    .iter()
                    .all(|d| chapter.contains(&format!("{d}/")))
                && chapter.contains(name)
        };
        if !named {
            problems.push(format!("{rel} is not named in docs/guide/architecture.md"));
        }
    }
    for word in chapter.split(|c: char| c.is_whitespace() || matches!(c, '`' | '(' | ')' | ',')) {
        let word = word.trim_end_matches([',', '.', ':', ';']);
        if word.starts_with("src/") && !root().join(word).exists() {
            problems.push(format!(
                "docs/guide/architecture.md names {word}, which is gone"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The cluster file the hosts chapter shows is `examples/cluster.toml`, byte for byte.
#[test]
fn the_cluster_file_shown_is_the_example() {
    let chapter = read(&root().join("docs/guide/hosts.md"));
    let example = read(&root().join("examples/cluster.toml"));
    let shown: Vec<String> = split(&chapter)
        .fenced
        .into_iter()
        .filter(|(lang, _)| lang == "toml")
        .map(|(_, line)| line + "\n")
        .collect();
    assert_eq!(shown.concat(), example);
}

/// The checks are not vacuous: a broken link, a missing path, an anchor nowhere and a command
/// line our parser refuses are each found.
#[test]
fn the_checks_find_what_is_broken() {
    let doc = root().join("docs/guide/README.md");
    let text = "See [gone](nowhere.md), [here](#no-such-heading), [ok](../../README.md#testing) \
                and `src/gone.rs`.\n\n```sh\nclient om -m 1 --no-such-flag\n```\n";
    let links = link_problems(&doc, text);
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(links[0].contains("nowhere.md"), "{links:?}");
    assert!(links[1].contains("no-such-heading"), "{links:?}");
    assert_eq!(path_problems(&doc, text).len(), 1);
    let lines = command_lines(text);
    let bad: Vec<_> = lines
        .iter()
        .flat_map(|l| commands(l))
        .filter(|w| parse(w).is_err())
        .collect();
    assert_eq!(bad.len(), 1, "{lines:?}");
    assert_eq!(
        commands("$ cargo run --release --bin client -- --spawn ui  # a page"),
        vec![vec!["client", "--spawn", "ui"]]
    );
    assert_eq!(
        commands("python3 x.py --nodes Q,S & server --nodes P,R && client --quiet"),
        vec![vec!["server", "--nodes", "P,R"], vec!["client", "--quiet"]]
    );
    assert!(anchors("# A: `b` (c)\n## A: `b` (c)\n").contains("a-b-c-1"));
}
