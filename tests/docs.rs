//! The docs as a newcomer follows them: every relative link of README.md, docs/**/*.md,
//! BENCHMARKS.md, RELIABILITY.md and fuzz/README.md leads to a file (and its `#anchor` to a
//! heading there), every repository path they name in backticks exists, and every command line
//! of ours they print (`server`, `client`, `cargo run --bin ...`) parses with the binaries' own
//! clap parsers. The commands of README.md's "Five things to do with it" and the guide's void
//! report run as shown, on the tests' own ports, and print the output the docs show. The
//! guide's architecture chapter names every file of `src/`, and the cluster file it shows is
//! `examples/cluster.toml`.

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

/// How the tests run the commands the docs print with their output: the command as the docs
/// print it (after `$ `), then the shell line run in its place. `{B}` is the test's own port
/// base, where the docs rely on the default ports (or on 9100 for `client check`), which the
/// tests never use. `X & Y`: `X` is a server started in the background and ready
/// (its `--nodes` ports, or P..S, accept) before `Y` starts; the last command is the one whose
/// output is checked. Programs are named as the docs name them; see [`program`].
const RUN_AS: &[(&str, &str)] = &[
    // README.md, "Five things to do with it".
    (
        "server &  python3 client.py",
        "server --port-base {B} & python3 client.py --port-base {B}",
    ),
    (
        "python3 scripts/python/server.py --nodes Q,S &  server --nodes P,R &  client --quiet",
        "python3 scripts/python/server.py --nodes Q,S --port-base {B} & \
         server --nodes P,R --port-base {B} & client --port-base {B} --quiet",
    ),
    (
        "client --spawn --faulty '' --behaviour S=two-faced om -m 1 --seed 42",
        "client --port-base {B} --spawn --faulty '' --behaviour S=two-faced om -m 1 --seed 42",
    ),
    // explore starts its own clusters on free ports: it runs as shown.
    (
        "client explore -n 4 -m 1 --adversary all",
        "client explore -n 4 -m 1 --adversary all",
    ),
    (
        "client check --port-base 9100",
        "python3 scripts/python/server.py --port-base {B} & client check --port-base {B}",
    ),
    // docs/guide/agreement.md, the void report: nothing listens on the block of {B}.
    (
        "client om -m 1 --seed 42",
        "client --port-base {B} om -m 1 --seed 42",
    ),
];

/// The program and leading arguments a command's first words stand for: `server` and
/// `client` are our built binaries, `python3 client.py` (the original client) and `python3
/// scripts/python/server.py` the Python stand-ins. The rest of the words follow.
fn program(words: &[String]) -> std::process::Command {
    use std::process::Command;
    let (mut cmd, rest) = match words {
        [first, rest @ ..] if first == "server" => {
            (Command::new(crate::common::server_bin()), rest)
        }
        [first, rest @ ..] if first == "client" => {
            (Command::new(crate::common::client_bin()), rest)
        }
        [python, script, rest @ ..] if python == "python3" => {
            let script = match script.as_str() {
                "client.py" => crate::common::python_client_script(),
                "scripts/python/server.py" => crate::common::python_server_script(),
                other => panic!("no stand-in for python3 {other}"),
            };
            let mut cmd = Command::new("python3");
            cmd.arg(script);
            (cmd, rest)
        }
        _ => panic!("no program for `{}`", words.join(" ")),
    };
    cmd.args(rest);
    cmd
}

/// A command's words: split at white space, quotes around a word taken off (`''` is empty).
fn words(command: &str) -> Vec<String> {
    command
        .split_whitespace()
        .map(|w| {
            let quoted = w.len() >= 2
                && ((w.starts_with('\'') && w.ends_with('\''))
                    || (w.starts_with('"') && w.ends_with('"')));
            if quoted { &w[1..w.len() - 1] } else { w }.to_string()
        })
        .collect()
}

/// Run a command the docs print, the way [`RUN_AS`] says, on port base `base`: its background
/// servers started and ready first (stopped when this returns), then the last command to its
/// end (deadline 10 min: only a hung run waits for it). Returns (exit code, stdout, stderr).
fn run_shown(shown: &str, base: u16) -> (i32, String, String) {
    use crate::common::{Proc, port_of, run, wait_ports};
    let Some((_, how)) = RUN_AS.iter().find(|(s, _)| *s == shown) else {
        panic!(
            "the docs show `$ {shown}`, which RUN_AS in tests/docs.rs does not know: add how the \
             test runs it"
        );
    };
    let how = how.replace("{B}", &base.to_string());
    let mut parts: Vec<Vec<String>> = how.split('&').map(words).collect();
    let last = parts.pop().unwrap();
    let mut servers = Vec::new();
    for server in parts {
        let nodes = server
            .iter()
            .position(|w| w == "--nodes")
            .map_or("PQRS".to_string(), |at| server[at + 1].replace(',', ""));
        servers.push(Proc::spawn(program(&server)));
        let ports: Vec<u16> = nodes.chars().map(|c| port_of(base, c)).collect();
        wait_ports(&ports);
    }
    let result = run(program(&last), std::time::Duration::from_secs(600));
    drop(servers);
    result
}

/// The fenced blocks of a document's section (its `## ` heading to the next one), each as
/// its lines.
fn blocks_of(text: &str, heading: &str) -> Vec<Vec<String>> {
    let section: String = text
        .lines()
        .skip_while(|l| *l != heading)
        .enumerate()
        .take_while(|(i, l)| *i == 0 || !l.starts_with("## "))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    assert!(!section.is_empty(), "no section `{heading}`");
    fenced_blocks(&section)
}

/// The fenced blocks of a text, each as its lines.
fn fenced_blocks(text: &str) -> Vec<Vec<String>> {
    let (mut blocks, mut open) = (Vec::new(), None::<Vec<String>>);
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            match open.take() {
                Some(block) => blocks.push(block),
                None => open = Some(Vec::new()),
            }
        } else if let Some(block) = &mut open {
            block.push(line.to_string());
        }
    }
    blocks
}

/// The first line of `shown` that `printed` lacks, reading both in order (each shown line is a
/// whole line of `printed`, after the one before it); a shown line ending in `...` stands for
/// every line that starts with what precedes the dots.
fn first_missing<'a>(shown: &'a [String], printed: &str) -> Option<&'a str> {
    let mut printed = printed.lines().map(str::trim_end);
    shown
        .iter()
        .map(|l| l.trim_end())
        .find(|line| !match line.strip_suffix("...") {
            Some(start) => printed.any(|p| p.starts_with(start)),
            None => printed.any(|p| p == *line),
        })
}

/// README.md's "Five things to do with it" runs as shown: each of its five blocks is `$
/// COMMAND` and a line of output, and that command, run as [`RUN_AS`] says on a port block of
/// the test's own, exits 0 and prints that line (a line ending in `...` matches its start).
/// The examples run at once, each on its own port block.
#[test]
fn the_readme_examples_run_as_shown() {
    let blocks = blocks_of(
        &read(&root().join("README.md")),
        "## Five things to do with it",
    );
    assert_eq!(
        blocks.len(),
        5,
        "README.md's \"Five things to do with it\" should hold five fenced blocks: {blocks:#?}"
    );
    let examples: Vec<(String, String)> = blocks
        .iter()
        .enumerate()
        .map(|(i, block)| match block.as_slice() {
            [command, output] if command.starts_with("$ ") => {
                (command[2..].trim().to_string(), output.clone())
            }
            _ => panic!(
                "README.md's \"Five things to do with it\", block {}: expected `$ COMMAND` then \
                 one line of output, found {block:#?}",
                i + 1
            ),
        })
        .collect();
    for (command, _) in &examples {
        assert!(
            RUN_AS.iter().any(|(shown, _)| shown == command),
            "README.md shows `$ {command}`, which RUN_AS in tests/docs.rs does not know: add how \
             the test runs it"
        );
    }
    // One thread an example: each waits on processes, not on the CPU.
    let check = |(command, output): &(String, String)| -> Option<String> {
        let (code, out, err) = run_shown(command, crate::common::port_base());
        let missing = first_missing(std::slice::from_ref(output), &format!("{out}{err}"));
        (code != 0 || missing.is_some()).then(|| {
            format!(
                "README.md: `$ {command}` should exit 0 and print `{output}`; it exited {code} \
                 and printed:\n{out}{err}"
            )
        })
    };
    let problems: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = examples.iter().map(|e| s.spawn(move || check(e))).collect();
        runs.into_iter().filter_map(|r| r.join().unwrap()).collect()
    });
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The void report docs/guide/agreement.md shows (the block with `VOID:`, `$ client om -m 1
/// --seed 42` with no server running, then `$ echo $?`) is what the client prints: run on a
/// port block where nothing listens, every line shown appears, in order, in its stdout then
/// stderr (the hint names that port base instead of the default one), and it exits with the
/// code shown.
#[test]
fn the_void_report_shown_is_printed() {
    let chapter = read(&root().join("docs/guide/agreement.md"));
    let voids: Vec<Vec<String>> = fenced_blocks(&chapter)
        .into_iter()
        .filter(|b| b.iter().any(|l| l.starts_with("VOID:")))
        .collect();
    let [block] = voids.as_slice() else {
        panic!(
            "docs/guide/agreement.md should show one void report (a block with `VOID:`), \
             found {}",
            voids.len()
        );
    };
    let echo = block.iter().position(|l| l == "$ echo $?");
    let (command, output, code) = match (block.first(), echo) {
        (Some(first), Some(at)) if first.starts_with("$ ") && block.len() == at + 2 => {
            (first[2..].trim(), &block[1..at], block[at + 1].trim())
        }
        _ => panic!(
            "docs/guide/agreement.md's void report: expected `$ COMMAND`, its output, `$ echo \
             $?` and the exit code, found {block:#?}"
        ),
    };
    let base = crate::common::port_base();
    let output: Vec<String> = output.iter().map(|l| with_port_base(l, base)).collect();
    let (exit, out, err) = run_shown(command, base);
    if let Some(line) = first_missing(&output, &format!("{out}{err}")) {
        panic!(
            "docs/guide/agreement.md: `$ {command}` with no server running did not print \
             `{line}` (in the order shown); it printed:\n{out}{err}"
        );
    }
    assert_eq!(
        exit.to_string(),
        code,
        "docs/guide/agreement.md: the void report's exit code"
    );
}

/// `line` with the number after `--port-base ` (the docs show the default one) made `base`.
fn with_port_base(line: &str, base: u16) -> String {
    const FLAG: &str = "--port-base ";
    match line.find(FLAG) {
        Some(at) => {
            let rest = &line[at + FLAG.len()..];
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            format!("{}{FLAG}{base}{}", &line[..at], &rest[digits..])
        }
        None => line.to_string(),
    }
}
