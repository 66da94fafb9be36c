//! What `client` does with its parsed command line: run the original scenario, an OM/SM run
//! or the explorer, print the report, write the trace and the pictures asked for, and say what
//! to do when nothing listens. Each command returns the process's exit code.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};

use crate::agreement::auth::Credentials;
use crate::agreement::checker;
use crate::agreement::reply::NodeInfo;
use crate::behaviour::Behaviour;
use crate::calls::{Method, RunId};
use crate::cli::client::{
    AgreementArgs, Cli, Command, ExploreArgs, OmArgs, OriginalArgs, PictureArgs, TreeArgs, UiArgs,
};
use crate::cli::server::ServerArgs;
use crate::cli::{CliError, ClusterArgs, Roles, Topology, manual};
use crate::cluster::Cluster;
use crate::console::Escaping;
use crate::peer::{PeerError, Peers};
use crate::runs::adversary;
use crate::runs::driver::{self, DriveError, Protocol, RunOptions};
use crate::runs::explore::{self, Explore};
use crate::runs::original::{self, Options};
use crate::server::Config;
use crate::{picture, protocol, trace};

/// Why a client command could not do its work (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A flag's value cannot be used.
    #[error(transparent)]
    Cli(#[from] CliError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Peers(#[from] PeerError),
    /// The run was refused before it started (bound, budget, parameters, a node without the
    /// agreement extension).
    #[error(transparent)]
    Refused(#[from] DriveError),
    /// Standard output could not be written.
    #[error("writing output: {0}")]
    Output(std::io::Error),
    /// A file asked for could not be written.
    #[error("writing {}: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// No node takes part.
    #[error("no nodes")]
    NoNodes,
    /// `client man SUBCOMMAND` names no subcommand.
    #[error("man {0}: no such subcommand (om, sm, explore, ui, completions, man)")]
    NoPage(String),
    /// `--focus` names a node outside the run.
    #[error("--focus {0}: no such node in this run")]
    Focus(String),
    /// `--commander` names a node outside the run.
    #[error(
        "--commander {name}: not one of the nodes taking part ({nodes}); pick one of them, or add it to --nodes"
    )]
    Commander {
        /// The name given.
        name: String,
        /// The nodes taking part, listed.
        nodes: String,
    },
    /// A file asked for cannot be written (checked before the run).
    #[error("{flag} {}: cannot write there: {error}{hint}", path.display())]
    Unwritable {
        /// The flag, e.g. `--svg`.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
        /// What to do, if there is a usual fix (starts with "; ").
        hint: String,
    },
    /// A file to read cannot be read.
    #[error("{flag} {}: cannot read it: {error}", path.display())]
    Unreadable {
        /// The flag, e.g. `--replay`.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// `--tree` cannot be drawn from the run's calls.
    #[error("--tree {node}: {error}")]
    Tree {
        /// The lieutenant.
        node: String,
        /// Why.
        error: String,
    },
}

impl ClientError {
    /// Whether this is standard output closed by its reader (`client | head`): the lines
    /// written so far are all that was wanted, so the program ends quietly, status 0.
    pub fn is_closed_stdout(&self) -> bool {
        matches!(self, ClientError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// `print!` that ends the command with [`ClientError::Output`] instead of panicking. Like
/// everything the client prints, through [`Escaping`]: what nodes answered (decisions, fault
/// strings, names) cannot reorder a line, hide in one or drive the terminal.
macro_rules! out {
    ($($arg:tt)*) => {
        write!(Escaping::new(std::io::stdout()), $($arg)*).map_err(ClientError::Output)?
    };
}

/// `println!` that ends the command with [`ClientError::Output`] instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        writeln!(Escaping::new(std::io::stdout()), $($arg)*).map_err(ClientError::Output)?
    };
}

/// `eprintln!`, through [`Escaping`] (a stderr that cannot be written is not worth a panic).
macro_rules! errln {
    ($($arg:tt)*) => {{
        let _ = writeln!(Escaping::new(std::io::stderr()), $($arg)*);
    }};
}

/// `eprint!`, through [`Escaping`].
macro_rules! err {
    ($($arg:tt)*) => {{
        let _ = write!(Escaping::new(std::io::stderr()), $($arg)*);
    }};
}

/// Run what the command line asks for; the exit code.
pub async fn run(cli: Cli) -> Result<u8, ClientError> {
    let Some((cluster, spawn)) = cli.spawn().filter(|(_, s)| s.spawn) else {
        return command(&cli).await;
    };
    // `--spawn`: the nodes `server` would host with the same flags, silent (the report is the
    // output), served in this process for the run only.
    let mut server = ServerArgs::parse_from(["server"]);
    server.cluster = cluster.clone();
    server.roles = spawn.roles.clone();
    if let Some(Command::Om(OmArgs { run: a, .. }) | Command::Sm(a)) = &cli.command
        && !a.under_test.is_empty()
    {
        // Every node of the run but those under test, which live where their URLs say.
        let external = a.under_test_names();
        let Topology { nodes, .. } = cluster.resolve(&Roles::default())?;
        let hosted: Vec<String> = nodes
            .into_iter()
            .filter(|n| !external.contains(n))
            .collect();
        server.cluster.nodes = Some(hosted.join(","));
    }
    server.quiet = true;
    let config = Config {
        print: false,
        ..server.config()?
    };
    if let Some(bind) = crate::cli::server::exposed(&config)? {
        errln!(
            "client: warning: binding {bind} exposes XML-RPC without authentication to the network"
        );
    }
    let bound = match crate::server::bind(config).await {
        Ok(bound) => bound,
        // What `server` says, and exits with, when it cannot start.
        Err(e) => {
            errln!("client: {e}");
            return Ok(1);
        }
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bound.run(async {
        let _ = stopped.await;
    }));
    let code = command(&cli).await;
    let _ = stop.send(());
    let _ = serving.await;
    code
}

/// Run the command against the nodes where they are.
async fn command(cli: &Cli) -> Result<u8, ClientError> {
    match &cli.command {
        None => original(&cli.cluster, &cli.original, &cli.pictures).await,
        Some(Command::Om(a)) => agreement(Protocol::Om, &a.run, &a.tree).await,
        Some(Command::Sm(a)) => agreement(Protocol::Sm, a, &TreeArgs::default()).await,
        Some(Command::Explore(a)) => explore(a).await,
        Some(Command::Ui(a)) => ui(a).await,
        Some(Command::Completions(a)) => print_manual(manual::completions(Cli::command(), a.shell)),
        Some(Command::Man(a)) => match manual::man(Cli::command(), a.page.as_deref()) {
            Some(page) => print_manual(page),
            None => Err(ClientError::NoPage(a.page.clone().unwrap_or_default())),
        },
    }
}

/// A completion script or a man page on stdout.
fn print_manual(bytes: Vec<u8>) -> Result<u8, ClientError> {
    manual::print(&bytes).map_err(ClientError::Output)?;
    Ok(0)
}

/// `client ui`: serve the page until Ctrl-C (or SIGTERM); 1 when the address cannot be bound.
pub async fn ui(a: &UiArgs) -> Result<u8, ClientError> {
    let Topology { cluster, nodes, .. } = a.cluster.resolve(&Roles::default())?;
    if nodes.is_empty() {
        return Err(ClientError::NoNodes);
    }
    if let Some(file) = &a.replay
        && let Err(error) = std::fs::File::open(file)
    {
        return Err(ClientError::Unreadable {
            flag: "--replay",
            path: file.clone(),
            error,
        });
    }
    let listener = match tokio::net::TcpListener::bind(a.listen).await {
        Ok(l) => l,
        Err(e) => {
            errln!(
                "client: cannot serve the page on {}: {e}; pick another with --listen ADDR:PORT \
                 (port 0 picks a free one)",
                a.listen
            );
            return Ok(1);
        }
    };
    let at = listener.local_addr().map_err(ClientError::Output)?;
    if !crate::cli::server::is_loopback(&at.ip().to_string()) {
        errln!(
            "client: warning: serving the page on {at} lets anyone who can reach it start runs \
             on your cluster (there is no authentication)"
        );
    }
    let host = if at.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        at.ip().to_string()
    };
    let host = if at.is_ipv6() {
        format!("[{host}]")
    } else {
        host
    };
    outln!(
        "generals ui: http://{host}:{}/ ({} nodes: {}; Ctrl-C stops it)",
        at.port(),
        nodes.len(),
        nodes.join(", ")
    );
    let bench = crate::ui::Bench {
        cluster,
        nodes,
        rpc_timeout: a.cluster.rpc_timeout(),
        // The page takes runs of at most --max-messages: the default fits the largest.
        round_timeout: a.round_timeout_ms.map_or_else(
            || {
                let extra = driver::ROUND_TIMEOUT_PER_MESSAGE
                    .saturating_mul(u32::try_from(a.max_messages).unwrap_or(u32::MAX));
                Duration::from_millis(driver::DEFAULT_ROUND_TIMEOUT_MS) + extra
            },
            Duration::from_millis,
        ),
        max_messages: a.max_messages,
    };
    let ui = crate::ui::Ui {
        bench,
        replay: a.replay.clone(),
    };
    crate::ui::serve(ui, listener, stopped()).await;
    Ok(0)
}

/// Ctrl-C or SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The original scenario: 0 when every call succeeded, 1 when some failed.
pub async fn original(
    c: &ClusterArgs,
    o: &OriginalArgs,
    pictures: &PictureArgs,
) -> Result<u8, ClientError> {
    let since_us = trace::now_us();
    let Topology { cluster, nodes, .. } = c.resolve(&Roles::default())?;
    check_pictures(pictures, &nodes)?;
    let peers = Peers::new(c.rpc_timeout())?;
    let opts = Options {
        nodes,
        decision: o.decision.clone(),
        delay: Duration::from_millis(o.delay_ms),
        quiet: o.quiet,
        observe: None,
    };
    // With `--mermaid -` the diagram alone takes stdout: the report goes to stderr.
    let mut out: Box<dyn std::io::Write> = if pictures.mermaid_to_stdout() {
        Box::new(Escaping::new(std::io::stderr()))
    } else {
        Box::new(Escaping::new(std::io::stdout().lock()))
    };
    let mut err = Escaping::new(std::io::stderr());
    let report = original::run_original(&cluster, &peers, &opts, &mut out, &mut err)
        .await
        .map_err(ClientError::Output)?;
    drop(out);
    if !report.unreachable.is_empty() {
        errln!("{}", start_hint(c, &report.unreachable, &opts.nodes));
    }
    let drawing = pictures.svg.is_some() || pictures.mermaid.is_some();
    let drawn = Drawn {
        run: trace::ORIGINAL_RUN.into(),
        secrets: None,
        title: "the original run: all-to-all, then finalize".into(),
        traitors: if drawing {
            let mut t = traitors(&cluster, &peers, &opts.nodes).await;
            // A node without `node_info` (the original server.py) is still known faulty by
            // its answer to finalize_decision.
            for (node, d) in &report.decisions {
                if d == protocol::FAULTY_DECISION
                    && opts.decision != protocol::FAULTY_DECISION
                    && !t.contains(node)
                {
                    t.push(node.clone());
                }
            }
            t
        } else {
            Vec::new()
        },
        decisions: report.decisions.clone(),
        om: None,
        seen: Some((report.calls, opts.decision.clone())),
    };
    let to = Outputs {
        cluster: &cluster,
        peers: &peers,
        nodes: &opts.nodes,
        pictures,
        tree: &TreeArgs::default(),
    };
    to.write(drawn, since_us).await?;
    Ok(u8::from(report.failures != 0))
}

/// An OM or SM run, judged: 0 holds, 1 violated, 3 void (refused: [`ClientError::Refused`]).
pub async fn agreement(
    protocol: Protocol,
    a: &AgreementArgs,
    tree: &TreeArgs,
) -> Result<u8, ClientError> {
    let since_us = trace::now_us();
    let Topology { cluster, nodes, .. } = a.cluster.resolve(&Roles::default())?;
    let commander = match &a.commander {
        Some(c) if !nodes.contains(c) => {
            return Err(ClientError::Commander {
                name: c.clone(),
                nodes: nodes.join(", "),
            });
        }
        Some(c) => c.clone(),
        None => nodes.first().cloned().ok_or(ClientError::NoNodes)?,
    };
    check_pictures(&a.pictures, &nodes)?;
    if let Some(node) = &tree.tree {
        let error = if !nodes.contains(node) {
            Some(format!(
                "not one of the nodes taking part ({}); name a lieutenant",
                nodes.join(", ")
            ))
        } else if *node == commander {
            let lieutenants: Vec<&str> = nodes
                .iter()
                .filter(|n| **n != commander)
                .map(String::as_str)
                .collect();
            Some(format!(
                "the commander has no tree (it only gives the order); name a lieutenant: {}",
                lieutenants.join(", ")
            ))
        } else {
            None
        };
        if let Some(error) = error {
            return Err(ClientError::Tree {
                node: node.clone(),
                error,
            });
        }
    }
    let round_timeout = a.round_timeout_ms.map_or_else(
        || driver::default_round_timeout(protocol, nodes.len(), a.m),
        Duration::from_millis,
    );
    let opts = RunOptions {
        protocol,
        m: a.m,
        order: a.order.clone(),
        commander,
        nodes,
        round_timeout,
        seed: a.seed.unwrap_or_else(driver::random_seed),
        allow_unsafe: a.allow_unsafe,
        rpc_timeout: a.cluster.rpc_timeout(),
        max_messages: a.max_messages,
    };
    let driver::Driven {
        report: outcome,
        unreachable,
        credentials,
    } = driver::drive(&cluster, &opts).await?;
    for u in &unreachable {
        errln!("error: node {} ({}): {}", u.node, u.url, u.error);
    }
    if a.json {
        outln!("{}", outcome.to_json());
    } else if a.pictures.mermaid_to_stdout() {
        err!("{}", outcome.human());
    } else {
        out!("{}", outcome.human());
    }
    let mut decisions = outcome.decisions.clone();
    decisions.extend(outcome.traitor_decisions.clone());
    let drawn = Drawn {
        run: credentials.run.clone(),
        secrets: Some(&credentials),
        title: format!(
            "{}({}) run {}: commander {} orders {}",
            outcome.protocol.name().to_uppercase(),
            outcome.m,
            outcome.run,
            outcome.commander,
            outcome.order
        ),
        traitors: outcome.traitors.clone(),
        decisions,
        om: (protocol == Protocol::Om).then_some((opts.commander.as_str(), opts.m)),
        seen: None,
    };
    if a.pictures.any() {
        let to = Outputs {
            cluster: &cluster,
            peers: &Peers::new(a.cluster.rpc_timeout())?,
            nodes: &opts.nodes,
            pictures: &a.pictures,
            tree,
        };
        to.write(drawn, since_us).await?;
    }
    Ok(outcome.exit_code())
}

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
    }
}

/// Every case of a small system: 0 all hold, 1 a counterexample, 3 none but some void.
pub async fn explore(a: &ExploreArgs) -> Result<u8, ClientError> {
    if let Some(mode) = a.adversary {
        return hunt(a, mode).await;
    }
    let seed = a.seed.unwrap_or_else(driver::random_seed);
    let behaviours = if a.behaviours.is_empty() {
        explore::default_behaviours()
    } else {
        a.behaviours.clone()
    };
    let e = exploration(a, seed, behaviours);
    let total = explore::case_count(e.n, e.m, e.behaviours.len(), e.orders.len());
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
        check_pictures(
            &PictureArgs {
                svg: Some(path.clone()),
                ..PictureArgs::default()
            },
            &[],
        )?;
    }
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
    let replay = |id: &str| {
        format!(
            "client explore --protocol {} -n {} -m {}{}{} --adversary {} --case {id}",
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
        )
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
                "replay": replay(&s.id),
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
                    replay(&s.id)
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
    if let (Some(path), Some((s, _))) = (&a.svg, shown) {
        let (r, events) = adversary::replay_traced(&h, s).await?;
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
        write(path, svg)?;
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

/// What to do when nodes refused the connection: start them (all of them, or only those
/// missing), with the options this client was given, so the command works as printed.
pub fn start_hint(c: &ClusterArgs, down: &[String], nodes: &[String]) -> String {
    let mut cmd = String::from("server");
    match &c.cluster {
        Some(file) => {
            let _ = write!(cmd, " --cluster {}", file.display());
        }
        None => {
            if let Some(host) = c.host.as_deref().filter(|h| *h != protocol::DEFAULT_HOST) {
                let _ = write!(cmd, " --host {host}");
            }
            let _ = write!(cmd, " --port-base {}", c.port_base());
            if let Some(n) = c.cluster_size {
                let _ = write!(cmd, " --cluster-size {n}");
            }
        }
    }
    if down.len() == nodes.len() {
        if let Some(list) = &c.nodes {
            let _ = write!(cmd, " --nodes {list}");
        }
        format!("hint: no node is running; start the cluster first: {cmd}")
    } else {
        // Only the missing ones: the others are running on their ports.
        let _ = write!(cmd, " --nodes {}", down.join(","));
        let verb = if down.len() == 1 { "is" } else { "are" };
        format!(
            "hint: {} {verb} not running (connection refused); start it first: {cmd}",
            down.join(", ")
        )
    }
}

/// What a run leaves for the pictures.
struct Drawn<'a> {
    /// The run's id on the wire (`original` for the original run).
    run: RunId,
    /// Each node's capability for the run (`None`: the original run, which has none).
    secrets: Option<&'a Credentials>,
    title: String,
    traitors: Vec<String>,
    decisions: BTreeMap<String, String>,
    /// (commander, m) of an OM run, for --tree.
    om: Option<(&'a str, usize)>,
    /// Of the original run: the client's own calls ([`original::Report::calls`]) and the
    /// decision sent, drawn with the trace (see [`original::drawable`]).
    seen: Option<(Vec<trace::Event>, String)>,
}

/// Where a run's calls are gathered from, and what is asked of them.
struct Outputs<'a> {
    cluster: &'a Cluster,
    peers: &'a Peers,
    nodes: &'a [String],
    pictures: &'a PictureArgs,
    tree: &'a TreeArgs,
}

impl Outputs<'_> {
    /// Gather the run's calls from every node and write what was asked for: the trace, the
    /// Lamport diagram or an OM tree, the Mermaid diagram.
    async fn write(&self, drawn: Drawn<'_>, since_us: u64) -> Result<(), ClientError> {
        let p = self.pictures;
        if !p.any() {
            return Ok(());
        }
        let capability = |node: &str| drawn.secrets.and_then(|c| c.capability(node));
        let (events, errors) = trace::gather(
            self.cluster,
            self.peers,
            self.nodes,
            &drawn.run,
            &capability,
            since_us,
        )
        .await;
        // The original run's pictures do without a trace (drawn from the client's own calls,
        // and they say so): one line then, unless a trace file was asked for.
        match errors.first() {
            Some((_, first)) if drawn.seen.is_some() && p.trace.is_none() => {
                let who: Vec<&str> = errors.iter().map(|(n, _)| n.as_str()).collect();
                errln!(
                    "note: no trace from {} ({first}): the pictures are drawn from the client's \
                     own calls",
                    who.join(", ")
                );
            }
            _ => {
                for (node, e) in &errors {
                    errln!("warning: no trace from node {node}: {e}");
                }
            }
        }
        if let Some(path) = &p.trace {
            write(path, trace::to_json_lines(&events))?;
        }
        let (events, note) = match &drawn.seen {
            Some((calls, decision)) => {
                let d = original::drawable(events, calls, &drawn.decisions, decision);
                (d.events, d.note)
            }
            None => (events, None),
        };
        if let Some(path) = &p.svg {
            let svg = match (&self.tree.tree, drawn.om) {
                (Some(node), Some((commander, m))) => {
                    let tree =
                        picture::om_tree_from_events(node, commander, self.nodes, m, &events)
                            .map_err(|e| ClientError::Tree {
                                node: node.clone(),
                                error: e.to_string(),
                            })?;
                    picture::tree_svg(node, &tree, m, self.tree.depth.map(usize::from))
                }
                _ => picture::lamport_svg(
                    self.nodes,
                    &events,
                    &drawn.traitors,
                    &drawn.decisions,
                    &drawn.title,
                    p.focus.as_deref(),
                    note.as_deref(),
                ),
            };
            write(path, svg)?;
        }
        if let Some(path) = &p.mermaid {
            let diagram = picture::mermaid(
                self.nodes,
                &events,
                &drawn.traitors,
                &drawn.decisions,
                note.as_deref(),
            );
            if p.mermaid_to_stdout() {
                let mut stdout = Escaping::new(std::io::stdout().lock());
                stdout
                    .write_all(diagram.as_bytes())
                    .and_then(|()| stdout.flush())
                    .map_err(ClientError::Output)?;
            } else {
                write(path, diagram)?;
            }
        }
        Ok(())
    }
}

/// What can be checked of the pictures before a run: `--focus` is a node of it, and the files
/// can be written (so a run is not wasted on a path that cannot take its picture).
fn check_pictures(p: &PictureArgs, nodes: &[String]) -> Result<(), ClientError> {
    if let Some(f) = p.focus.as_deref().filter(|f| !nodes.iter().any(|n| n == f)) {
        return Err(ClientError::Focus(f.to_string()));
    }
    let mermaid = p.mermaid.as_ref().filter(|_| !p.mermaid_to_stdout());
    for (flag, path) in [
        ("--trace", &p.trace),
        ("--svg", &p.svg),
        ("--mermaid", &mermaid.cloned()),
    ] {
        if let Some(path) = path {
            writable(path).map_err(|(error, hint)| ClientError::Unwritable {
                flag,
                path: path.clone(),
                error,
                hint,
            })?;
        }
    }
    Ok(())
}

/// Whether `path` can be written, without changing it: an existing file is opened for
/// appending, a new one is probed by creating (and removing) a file beside it. The error and
/// a hint.
fn writable(path: &std::path::Path) -> Result<(), (std::io::Error, String)> {
    use std::io::ErrorKind;
    if path.is_dir() {
        return Err((
            std::io::Error::other("it is a directory"),
            "; give a file name".into(),
        ));
    }
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| (e, "; the file is not writable: pick another path".into()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let probe = dir.join(format!(".generals-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => {
            let hint = match e.kind() {
                ErrorKind::NotFound if !dir.exists() => format!(
                    "; the directory {} does not exist: create it or pick another path",
                    dir.display()
                ),
                ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => format!(
                    "; the directory {} is not writable: pick another path",
                    dir.display()
                ),
                _ => String::new(),
            };
            Err((e, hint))
        }
    }
}

fn write(path: &std::path::Path, contents: String) -> Result<(), ClientError> {
    std::fs::write(path, contents).map_err(|error| ClientError::Write {
        path: path.to_path_buf(),
        error,
    })
}

/// The nodes whose `node_info` says they are traitors (nodes without it count as honest).
async fn traitors(cluster: &Cluster, peers: &Peers, nodes: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for node in nodes {
        let info = peers
            .call_node(cluster, node, Method::NodeInfo.name(), &[])
            .await;
        if info
            .ok()
            .and_then(|v| NodeInfo::from_value(&v).ok())
            .is_some_and(|i| i.traitor)
        {
            out.push(node.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_hint_says_how_to_start_what_is_missing() {
        let c = ClusterArgs {
            host: Some("10.0.0.1".into()),
            port_base: Some(9000),
            ..ClusterArgs::default()
        };
        let all = names(&["P", "Q", "R", "S"]);
        assert_eq!(
            start_hint(&c, &all, &all),
            "hint: no node is running; start the cluster first: server --host 10.0.0.1 \
             --port-base 9000"
        );
        assert_eq!(
            start_hint(&c, &names(&["R", "S"]), &all),
            "hint: R, S are not running (connection refused); start it first: server --host \
             10.0.0.1 --port-base 9000 --nodes R,S"
        );
        let c = ClusterArgs {
            cluster: Some("c.toml".into()),
            ..ClusterArgs::default()
        };
        assert_eq!(
            start_hint(&c, &names(&["S"]), &all),
            "hint: S is not running (connection refused); start it first: server --cluster \
             c.toml --nodes S"
        );
    }
}
