//! `client explore`: every case of a small system on an in-process cluster, or (`--adversary`)
//! every traitor strategy, random ones, or the one `--case` names; the counts, the first or
//! smallest counterexample, its picture.

use std::io::{IsTerminal, Write as _};
use std::time::{Duration, Instant};

use super::outputs;
use super::{ClientError, errln, out, outln};
use crate::agreement::checker;
use crate::behaviour::Behaviour;
use crate::calls::Call;
use crate::cli::client::{ExploreArgs, PictureArgs};
use crate::cluster::Cluster;
use crate::peer::Peers;
use crate::picture;
use crate::runs::adversary;
use crate::runs::driver::{self, DriveError, Protocol};
use crate::runs::explore::{self, Explore};

/// What `client explore`'s flags ask to explore, with these traitor behaviours.
fn exploration(a: &ExploreArgs, seed: u64, behaviours: Vec<Behaviour>) -> Explore {
    Explore {
        protocol: a.protocol,
        n: a.n,
        m: a.m,
        behaviours,
        orders: a.orders.clone(),
        allow_unsafe: a.allow_unsafe,
        round_timeout: a.round_timeout_ms.map_or_else(
            || driver::default_round_timeout(a.protocol, a.n, a.m),
            Duration::from_millis,
        ),
        seed,
        jobs: a
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1),
        external: a.external(),
    }
}

/// Before an exploration against nodes under test: each is `NAME=URL`, and speaks the
/// agreement extension (one clear line when it does not, as for `client om`).
async fn check_under_test(a: &ExploreArgs, e: &Explore) -> Result<(), ClientError> {
    if let Some(bad) = a.under_test.iter().find(|u| !u.contains('=')) {
        return Err(DriveError::Invalid(format!(
            "--under-test {bad}: give NAME=URL, e.g. Q=http://127.0.0.1:9101/"
        ))
        .into());
    }
    let peers =
        Peers::new(Duration::from_secs(5)).map_err(|e| DriveError::Invalid(e.to_string()))?;
    let cluster = Cluster::local(0);
    for (node, url) in &e.external {
        let (method, args) = Call::NodeInfo.into_wire();
        let cluster = cluster
            .clone()
            .with_peer(node, url)
            .map_err(|err| DriveError::Invalid(format!("--under-test {node}={url}: {err}")))?;
        match peers.call_node(&cluster, node, method.name(), &args).await {
            Ok(_) => {}
            Err(err) if err.is_unsupported_method() => {
                return Err(DriveError::NotAgreement {
                    node: node.clone(),
                    url: url.clone(),
                    error: err.to_string(),
                }
                .into());
            }
            Err(err) => {
                return Err(DriveError::Invalid(format!(
                    "node under test {node} ({url}) does not answer: {err}; start it first"
                ))
                .into());
            }
        }
    }
    Ok(())
}

/// `--under-test NAME=URL`, each, as a command line carries them.
fn under_test_flags(a: &ExploreArgs) -> String {
    (a.under_test.iter())
        .map(|u| format!(" --under-test {}", shell_word(u)))
        .collect()
}

/// `word` as a POSIX shell reads it back: as it is when it holds nothing the shell takes
/// apart, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.,:/=@+%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The one command that runs a case of a plain exploration again: `client om` (or `sm`) over
/// nodes started in-process with the case's traitors, order and seed (the same run label,
/// so a random behaviour draws the same), the nodes under test where they are.
fn replay_case(a: &ExploreArgs, e: &Explore, case: &explore::Case) -> String {
    let nodes = explore::names(e.n);
    let mut cmd = String::from("client --spawn");
    if let Some(base) = explore::port_base(e) {
        cmd.push_str(&format!(" --port-base {base}"));
    }
    cmd.push_str(&format!(" --nodes {} --faulty ''", nodes.join(",")));
    for (node, behaviour) in &case.traitors {
        cmd.push_str(&format!(
            " --behaviour {}",
            shell_word(&format!("{node}={behaviour}"))
        ));
    }
    cmd.push_str(&format!(
        " {} -m {} --commander {} --order {} --seed {}",
        e.protocol.name(),
        e.m,
        nodes[0],
        shell_word(&case.order),
        case.seed
    ));
    if let Some(ms) = a.round_timeout_ms {
        cmd.push_str(&format!(" --round-timeout-ms {ms}"));
    }
    if a.allow_unsafe {
        cmd.push_str(" --allow-unsafe");
    }
    cmd.push_str(&under_test_flags(a));
    cmd
}

/// Every case of a small system: 0 all hold, 1 a counterexample, 3 none but some void.
pub(crate) async fn command(a: &ExploreArgs) -> Result<u8, ClientError> {
    if let Some(mode) = a.adversary {
        return hunt(a, mode).await;
    }
    let seed = a.seed.unwrap_or_else(driver::random_seed);
    let behaviours = match &a.behaviours {
        Some(given) => given.0.clone(),
        None => explore::default_behaviours(),
    };
    let e = exploration(a, seed, behaviours);
    check_under_test(a, &e).await?;
    let total = explore::case_count(
        e.candidates().len(),
        e.m,
        e.behaviours.len(),
        e.orders.len(),
    );
    let names: Vec<String> = e.behaviours.iter().map(ToString::to_string).collect();
    outln!(
        "exploring {}({}) with n={} ({}): up to {} traitor(s), behaviours {}, orders {}; {total} cases, seed {seed}",
        e.protocol.name().to_uppercase(),
        e.m,
        e.n,
        explore::names(e.n).join(","),
        e.m,
        names.join(","),
        e.orders.join(","),
    );
    let started = Instant::now();
    let summary = explore::explore(&e, progress_bar(std::io::stderr().is_terminal())).await?;
    outln!("cases run   {:>6}", summary.cases);
    outln!("IC1 held    {:>6}", summary.ic1_held);
    outln!("IC2 held    {:>6}", summary.ic2_held);
    outln!("void        {:>6}", summary.void);
    outln!("time        {:>6.2} s", started.elapsed().as_secs_f64());
    Ok(match &summary.counterexample {
        None if summary.void > 0 => {
            outln!(
                "no counterexample, but {} case(s) were void (a loyal node late or lost): they \
                 show nothing; try a longer --round-timeout-ms",
                summary.void
            );
            3
        }
        None => {
            outln!("no counterexample: every case satisfies IC1 and IC2");
            0
        }
        Some((case, outcome)) => {
            outln!("first counterexample: {case}");
            outln!("replay: {}", replay_case(a, &e, case));
            out!("{}", outcome.human());
            1
        }
    })
}

/// `client explore --adversary`: every strategy, random ones, or the one `--case` names; the
/// counts, the smallest counterexample with its messages, its picture. 0 every case holds, 1
/// a counterexample (or an accepted forgery), 3 none but some void.
async fn hunt(a: &ExploreArgs, mode: adversary::Mode) -> Result<u8, ClientError> {
    // `--cases` sizes the work as the strategy space does for `all`: the same cap, checked
    // before anything starts (`--cases 99999999999` was taken and ran).
    if mode == adversary::Mode::Fuzz && a.case.is_none() && a.cases > a.max_cases {
        return Err(DriveError::Invalid(format!(
            "--adversary fuzz --cases {} is more than --max-cases {}; ask for fewer cases, or \
             raise --max-cases",
            a.cases, a.max_cases
        ))
        .into());
    }
    let seed = a.seed.unwrap_or_else(driver::random_seed);
    let h = adversary::Hunt {
        explore: exploration(a, seed, Vec::new()),
        mode,
        cases: a.cases,
        max_cases: a.max_cases,
        case: a.case.clone(),
    };
    if let Some(path) = &a.svg {
        outputs::check_pictures(
            &PictureArgs {
                svg: Some(path.clone()),
                ..PictureArgs::default()
            },
            &[],
        )?;
    }
    check_under_test(a, &h.explore).await?;
    let space = adversary::space_text(&h.explore);
    let name = format!("{}({})", a.protocol.name().to_uppercase(), a.m);
    let running = match (&h.case, mode) {
        (Some(id), _) => format!("case {id}"),
        (None, adversary::Mode::All) => format!("{space} strategies (every one)"),
        (None, adversary::Mode::Fuzz) => {
            format!("{} random strategies of {space}, seed {seed}", h.cases)
        }
    };
    let intro = format!(
        "adversary {name} with n={} ({}): up to {} traitor(s), each of their messages attack, \
         retreat or nothing, orders {}; {running}",
        a.n,
        explore::names(a.n).join(","),
        a.m,
        a.orders.join(","),
    );
    // Printed before starting, and on stderr with --json (stdout keeps the JSON).
    if a.json {
        errln!("{intro}");
    } else {
        outln!("{intro}");
    }
    let started = Instant::now();
    let found = adversary::hunt(&h, progress_bar(std::io::stderr().is_terminal())).await?;
    let seconds = started.elapsed().as_secs_f64();
    // With the case's own seed, so that the replay's run is the case's run (its label and
    // every random draw): case i of an exploration runs with seed + i.
    let replay = |id: &str, seed: u64| {
        format!(
            "client explore --protocol {} -n {} -m {}{}{} --adversary {} --seed {seed} --case {id}",
            a.protocol.name(),
            a.n,
            a.m,
            if a.allow_unsafe {
                " --allow-unsafe"
            } else {
                ""
            },
            if a.orders.join(",") == "attack,retreat" {
                String::new()
            } else {
                format!(" --orders {}", a.orders.join(","))
            },
            match mode {
                adversary::Mode::All => "all",
                adversary::Mode::Fuzz => "fuzz",
            }
        ) + &under_test_flags(a)
    };
    let shown = found.replayed.as_ref().or(found.counterexample.as_ref());
    if a.json {
        let case = |(s, r): &(adversary::Strategy, checker::Report)| {
            serde_json::json!({
                "id": s.id,
                "lies": s.lies(),
                "order": s.order,
                "traitors": s.traitors,
                "messages": s.messages.iter().map(|m| serde_json::json!({
                    "round": m.slot.path.len(),
                    "path": m.slot.path,
                    "to": m.slot.to,
                    "value": m.value,
                    "lie": m.is_lie(),
                })).collect::<Vec<_>>(),
                "replay": replay(&s.id, r.seed),
                "run": r,
            })
        };
        let json = serde_json::json!({
            "protocol": a.protocol.name(),
            "n": a.n,
            "m": a.m,
            "orders": a.orders,
            "mode": match mode { adversary::Mode::All => "all", adversary::Mode::Fuzz => "fuzz" },
            "seed": seed,
            "space": found.space,
            "cases": found.cases,
            "held": found.held,
            "violated": found.violated,
            "void": found.void,
            "skipped": found.skipped,
            "forged": found.forged,
            "rejected": found.rejected,
            "forgeries_accepted": found.forgeries_accepted,
            "seconds": seconds,
            "counterexample": found.counterexample.as_ref().map(case),
            "case": found.replayed.as_ref().map(case),
        });
        outln!("{json}");
    } else {
        let w = found.space.len().clamp(8, 30);
        outln!("cases run      {:>w$}", found.cases);
        outln!("held           {:>w$}", found.held);
        outln!("violated       {:>w$}", found.violated);
        outln!("void           {:>w$}", found.void);
        outln!(
            "skipped        {:>w$}  (no symmetry reduction: every strategy runs)",
            found.skipped
        );
        outln!("strategy space {:>w$}", found.space);
        outln!("time           {seconds:>w$.2} s");
        if a.protocol == Protocol::Sm {
            outln!(
                "forged or altered messages sent {}, rejected messages {}{}",
                found.forged,
                found.rejected,
                if found.forgeries_accepted == 0 {
                    ": every forgery rejected".to_string()
                } else {
                    format!(
                        ": FORGERIES ACCEPTED in {} case(s)",
                        found.forgeries_accepted
                    )
                }
            );
        }
        if let Some((s, r)) = shown {
            if found.replayed.is_some() {
                outln!("case {} ({} lie(s))", s.id, s.lies());
            } else {
                outln!(
                    "smallest counterexample: case {} ({} lie(s)); replay: {}",
                    s.id,
                    s.lies(),
                    replay(&s.id, r.seed)
                );
            }
            outln!("order {}, traitors: {}", s.order, s.traitors.join(", "));
            outln!("their messages:");
            for m in &s.messages {
                outln!("  {m}");
            }
            out!("{}", r.human());
        } else if found.void > 0 {
            outln!(
                "no counterexample, but {} case(s) were void (a loyal node late or lost): they \
                 show nothing; try a longer --round-timeout-ms",
                found.void
            );
        } else {
            outln!("no counterexample: every case satisfies IC1 and IC2");
        }
    }
    if let (Some(path), Some((s, shown))) = (&a.svg, shown) {
        let (r, events) = adversary::replay_traced(&h, s, shown.seed).await?;
        let mut decisions = r.decisions.clone();
        decisions.extend(r.traitor_decisions.clone());
        let title = format!(
            "{name} case {}: commander {} orders {}, {} lie(s)",
            s.id,
            r.commander,
            r.order,
            s.lies()
        );
        let nodes = explore::names(a.n);
        let svg =
            picture::lamport_svg(&nodes, &events, &r.traitors, &decisions, &title, None, None);
        outputs::write(path, svg)?;
    }
    Ok(match &found.replayed {
        Some((_, r)) if r.rejected >= r.forged => r.exit_code(),
        _ => found.exit_code(),
    })
}

/// A progress bar on stderr when it is a terminal, else nothing.
fn progress_bar(tty: bool) -> impl FnMut(usize, usize) {
    move |done, total| {
        if tty {
            let width = 30;
            let filled = done * width / total.max(1);
            eprint!(
                "\r[{}{}] {done}/{total}",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
            if done == total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
    }
}
