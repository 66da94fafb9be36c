//! `client`'s command line: the original run (no subcommand), `om`, `sm` and `explore`, each
//! with only the flags it honours.
//!
//! Where the nodes are ([`ClusterArgs`]) may be said before `om`/`sm` as well as after it
//! (`client --nodes P,Q,S om -m 1`); every other flag goes where it applies, and anything else
//! is a clap error (exit 2): `client --quiet om`, `client --port-base 9000 explore` (the
//! explorer starts its own cluster), `client explore --svg x.svg`, `client sm --tree R`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use super::manual::{CompletionsArgs, ManArgs};
use super::{ClusterArgs, LogArgs, Roles};
use crate::behaviour::Behaviours;
use crate::protocol;
use crate::runs::adversary;
use crate::runs::driver::{self, Protocol};

/// Drive a cluster of XML-RPC generals.
///
/// Without a subcommand: the original scenario. Every node sends --decision to every other
/// node, then each node reports its majority decision. Exit 0 when every call succeeded, 1 when
/// a node could not be reached or answered with a fault (one line each on stderr), 2 on bad
/// arguments.
///
/// `client om` / `client sm`: Byzantine agreement (oral / signed messages) between the nodes,
/// in explicit rounds, judged by the checker. Exit 0 when IC1 and IC2 hold, 1 when one is
/// violated, 2 when the run is refused (too few nodes for -m, over --max-messages, a node
/// without the extension) or the arguments are bad, 3 when the run is void: the simulation
/// could not keep the algorithm's assumptions (a loyal node late, failing or lost), so it
/// shows nothing about the algorithm.
///
/// `--spawn` (the original run, `om`, `sm`, `ui`) starts the nodes in-process first, as
/// `server` would with the same WHERE flags and --faulty/--behaviour, and stops them after the
/// run (`ui`: when the page stops): one command instead of two terminals. Their stdout lines
/// are not printed (the client's report is the output); a port already in use is the server's
/// error, exit 1.
///
/// The flags that say where the nodes are (--host to --rpc-timeout below) and --spawn,
/// --faulty and --behaviour may also come before `om`, `sm` or `ui`; every other flag goes
/// where it applies, else it is a usage error.
///
/// Ctrl-C stops any command at once: the client ends as the signal ends it (exit 130 in a
/// shell), and nodes it --spawned go with it; the nodes of a run it was driving forget the
/// unfinished run by themselves. `client ui` stops serving its page and exits 0.
#[derive(Debug, Parser)]
#[command(name = "client", version, about, long_about)]
pub struct Cli {
    /// Where the nodes are (also valid before `om`/`sm`, for their run).
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// Start the nodes in-process for the run (also valid before `om`/`sm`, for their run).
    #[command(flatten)]
    pub(crate) spawn: SpawnArgs,
    /// The original scenario's options.
    #[command(flatten)]
    pub(crate) original: OriginalArgs,
    /// What to write or draw of the original run.
    #[command(flatten)]
    pub(crate) pictures: PictureArgs,
    /// What to log on stderr (anywhere on the line).
    #[command(flatten)]
    pub log: LogArgs,
    /// An agreement run or the explorer instead of the original scenario.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run OM(m), oral messages (Lamport, Shostak, Pease 1982); needs n >= 3m+1.
    /// Exit 0 holds, 1 violated, 2 refused, 3 void.
    Om(OmArgs),
    /// Run SM(m), signed messages with ed25519; needs n >= m+2.
    /// Exit 0 holds, 1 violated, 2 refused, 3 void.
    Sm(AgreementArgs),
    /// Try every placement of up to m traitors (commander included), every behaviour and
    /// every order, each as a real run against a cluster started in-process on free ports;
    /// with --adversary, every lie (attack, retreat or nothing for each traitor message) or
    /// random ones. Exit 0 when every case holds, 1 when a counterexample was found, 2 when
    /// refused (e.g. over --max-cases), 3 when no case failed but some were void (a loyal
    /// node late or lost).
    Explore(ExploreArgs),
    /// Check a cluster of any implementation against the contract, row by row: the
    /// transport, the three methods, the faults and the original run (docs/protocol.md), and
    /// the agreement extension when the nodes claim it (node_info). Start the cluster fresh:
    /// the first row needs an empty store, and rows marked [writes] store messages. Exit 0
    /// when no row fails (a documented difference or a skip is no failure), 1 otherwise.
    Check(CheckArgs),
    /// Serve a web page that shows the cluster, starts runs (the original, OM, SM) and draws
    /// every message as the nodes record it; it also replays trace files. Prints its URL;
    /// Ctrl-C stops it.
    Ui(UiArgs),
    /// Print the completion script for SHELL (bash, elvish, fish, powershell, zsh).
    Completions(CompletionsArgs),
    /// Print the man page (roff) of client or of one of its subcommands.
    Man(ManArgs),
}

/// The original scenario's options.
#[derive(Debug, Clone, Args)]
pub(crate) struct OriginalArgs {
    /// The decision every node sends.
    #[arg(long, default_value = protocol::DEFAULT_DECISION)]
    pub(crate) decision: String,
    /// Pause after each send, in milliseconds (the original sleeps 100).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub(crate) delay_ms: u64,
    /// Print only the final decisions, byte for byte as client.py.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// `--spawn` and the server's roles for the nodes it starts.
#[derive(Debug, Clone, Default, Args)]
pub struct SpawnArgs {
    /// Start the nodes in-process on the ports the WHERE flags give (as `server` with the same
    /// flags would), run, and stop them. Their stdout lines (running, received, majority) are
    /// not printed: the client's report is the output. A port in use: the server's error,
    /// exit 1.
    #[arg(long)]
    pub spawn: bool,
    /// Who is faulty and how each spawned node sends (with --spawn only).
    #[command(flatten)]
    pub(crate) roles: Roles,
}

impl SpawnArgs {
    /// These flags, given after `om`/`sm`, with `before` (given before it): `--spawn` on
    /// either side spawns, a later `--faulty` wins, `--behaviour`s add up (a later one for
    /// the same node wins).
    pub(crate) fn or(self, before: SpawnArgs) -> SpawnArgs {
        SpawnArgs {
            spawn: self.spawn || before.spawn,
            roles: Roles {
                faulty: self.roles.faulty.or(before.roles.faulty),
                behaviours: [before.roles.behaviours, self.roles.behaviours].concat(),
            },
        }
    }

    /// Whether --faulty or --behaviour is given.
    fn any_role(&self) -> bool {
        self.roles.faulty.is_some() || !self.roles.behaviours.is_empty()
    }
}

/// What to write or draw of a run, from the calls its nodes recorded.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct PictureArgs {
    /// Write the run's node-to-node calls to FILE, one JSON object per line (run, from, to,
    /// method, args, result or fault, start_us, end_us).
    #[arg(long, value_name = "FILE")]
    pub(crate) trace: Option<PathBuf>,
    /// Draw the run as a Lamport (space-time) diagram in FILE (SVG): a line per node, an
    /// arrow per message labelled with its value, traitors in red (crimson, as the legend
    /// says), decisions at the bottom.
    #[arg(long, value_name = "FILE")]
    pub(crate) svg: Option<PathBuf>,
    /// With --svg, in the summary of a large run (over 40 messages): the node whose messages
    /// are drawn as arrows (default: a traitor lieutenant, else the first lieutenant).
    #[arg(long, value_name = "NODE", requires = "svg")]
    pub(crate) focus: Option<String>,
    /// Write the run as a Mermaid sequenceDiagram to FILE, ready to paste into Markdown.
    /// With `-`, the diagram alone goes to stdout and the report goes to stderr, so
    /// `client --mermaid - > run.mmd` keeps only the diagram. Not with --json (both would
    /// take stdout): give a file, and stdout keeps the JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) mermaid: Option<PathBuf>,
}

impl PictureArgs {
    /// Whether anything is asked for.
    pub(crate) fn any(&self) -> bool {
        self.trace.is_some() || self.svg.is_some() || self.mermaid.is_some()
    }

    /// Whether the Mermaid diagram takes stdout (`--mermaid -`): the report goes to stderr.
    pub(crate) fn mermaid_to_stdout(&self) -> bool {
        self.mermaid.as_deref() == Some(std::path::Path::new("-"))
    }
}

/// An OM run's evaluation tree, drawn instead of the diagram.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct TreeArgs {
    /// With --svg, draw this lieutenant's OM evaluation tree of received values and majorities
    /// instead of the diagram.
    #[arg(long, value_name = "NODE", requires = "svg")]
    pub(crate) tree: Option<String>,
    /// With --tree: draw K levels of the tree (default: all of a tree of up to 15 boxes,
    /// else 2) and fold the rest, counted under the boxes above.
    #[arg(long, value_name = "K", requires = "tree",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) depth: Option<u16>,
}

/// Options of `client om` and `client sm`.
#[derive(Debug, Clone, Args)]
pub struct AgreementArgs {
    /// Where the nodes are (these may also come before the subcommand).
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// Start the nodes in-process for the run (these may also come before the subcommand).
    #[command(flatten)]
    pub(crate) spawn: SpawnArgs,
    /// Traitors to tolerate (the depth of the recursion).
    #[arg(short = 'm', value_name = "M", default_value_t = 1)]
    pub(crate) m: usize,
    /// The commander's order.
    #[arg(long, default_value = "attack", value_parser = ["attack", "retreat"])]
    pub(crate) order: String,
    /// The commander [default: the first of --nodes].
    #[arg(long)]
    pub(crate) commander: Option<String>,
    /// How long one round may take, in milliseconds (1-600000; 0 is refused) [default: 2000,
    /// plus 0.1 ms per message of the run's largest round, so it fits the run: 2000 for OM(1)
    /// over 4 nodes, 11504 for OM(4) over 13, SM counting twice]. A round ends as soon as
    /// every node has answered; a node that has not answered by then is faulty for the run,
    /// and a void report says how long a late node needed and what to raise this to.
    #[arg(long, value_name = "MS", value_parser = round_timeout)]
    pub(crate) round_timeout_ms: Option<u64>,
    /// Seed of the run (random behaviours draw from it) [default: random, printed].
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Run even when there are too few nodes for -m, to watch agreement fail.
    #[arg(long)]
    pub(crate) allow_unsafe: bool,
    /// Refuse (exit 2) a run that sends more messages than this, by the protocol's formula.
    #[arg(long, default_value_t = driver::DEFAULT_MAX_MESSAGES, value_name = "N")]
    pub(crate) max_messages: u64,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub(crate) json: bool,
    /// A node under test, as NAME=URL (repeatable): your own implementation of a general,
    /// placed at URL (as --peer places a node), taking part in the run; --spawn starts every
    /// other node in-process and leaves this one to you.
    #[arg(long = "under-test", value_name = "NAME=URL")]
    pub(crate) under_test: Vec<String>,
    /// What to write or draw of the run.
    #[command(flatten)]
    pub(crate) pictures: PictureArgs,
}

impl AgreementArgs {
    /// The names of the nodes under test (`--under-test NAME=URL`).
    pub(crate) fn under_test_names(&self) -> Vec<String> {
        (self.under_test.iter())
            .filter_map(|p| p.split_once('=').map(|(n, _)| n.trim().to_string()))
            .collect()
    }
}

/// Options of `client check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Where the nodes are (these may also come before the subcommand).
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// Nodes faulty in the original's sense, comma-separated ('' for none) [default: P, or
    /// the cluster file's]: the rows expect a faulty node to ignore what it receives, and a
    /// faulty P to deny R and S.
    #[arg(long)]
    pub(crate) faulty: Option<String>,
    /// Print one JSON array of the rows' outcomes instead of the report.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also write the outcomes as JUnit XML to FILE (one test case per row).
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
    /// Write the rows as golden transcripts (one JSON file per contract: every request as it
    /// goes on the wire and the answer the contract gives) into DIR, for the original's
    /// cluster at --port-base, and exit: nothing is called (docs/conformance/ holds them).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["json", "junit"])]
    pub(crate) transcripts: Option<PathBuf>,
}

/// Options of `client om`: an agreement run, and the tree only OM has.
#[derive(Debug, Clone, Args)]
pub struct OmArgs {
    /// The run.
    #[command(flatten)]
    pub(crate) run: AgreementArgs,
    /// A lieutenant's tree instead of the diagram.
    #[command(flatten)]
    pub(crate) tree: TreeArgs,
}

/// Options of `client ui`.
#[derive(Debug, Clone, Args)]
pub struct UiArgs {
    /// Where the nodes are (these may also come before the subcommand).
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// Start the nodes in-process while the page is served (these may also come before the
    /// subcommand).
    #[command(flatten)]
    pub(crate) spawn: SpawnArgs,
    /// Address and port the page is served on (`localhost:PORT` is 127.0.0.1:PORT); anything
    /// but loopback is warned about, as the page starts runs for whoever opens it. Port 0
    /// picks a free one (the URL printed says which).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT", value_parser = listen)]
    pub(crate) listen: std::net::SocketAddr,
    /// A trace file (as --trace writes it) the page replays when opened with ?replay=1.
    #[arg(long, value_name = "FILE")]
    pub(crate) replay: Option<PathBuf>,
    /// How long one round of an OM/SM run may take, in milliseconds (1-600000) [default:
    /// 2000, plus 0.1 ms per message of the run's largest round].
    #[arg(long, value_name = "MS", value_parser = round_timeout)]
    pub(crate) round_timeout_ms: Option<u64>,
    /// Refuse an OM/SM run that sends more messages than this, by the protocol's formula
    /// (the page draws every message: keep it small).
    #[arg(long, default_value_t = DEFAULT_UI_MAX_MESSAGES, value_name = "N")]
    pub(crate) max_messages: u64,
}

/// Default of `client ui --max-messages`: OM(3) over 10 nodes (3,609 messages) fits, larger
/// runs are better read in a report than watched.
pub(crate) const DEFAULT_UI_MAX_MESSAGES: u64 = 10_000;

/// Options of `client explore`.
#[derive(Debug, Clone, Args)]
pub struct ExploreArgs {
    /// The algorithm.
    #[arg(long, value_enum, default_value_t = Protocol::Om)]
    pub(crate) protocol: Protocol,
    /// Nodes, commander included (named P, Q, R, ...).
    #[arg(short = 'n', default_value_t = 4)]
    pub(crate) n: usize,
    /// Traitors to tolerate; up to m traitors are placed.
    #[arg(short = 'm', default_value_t = 1)]
    pub(crate) m: usize,
    /// Behaviours a traitor may have, comma-separated; a comma followed by a node name
    /// continues a deny list (`silent,deny:R,S` is two behaviours) [default:
    /// silent,flip,two-faced].
    #[arg(long, value_name = "KIND,...", conflicts_with = "adversary")]
    pub(crate) behaviours: Option<Behaviours>,
    /// Instead of --behaviours, traitors that send, for each message they could send, attack,
    /// retreat or nothing as the explorer chooses: `all` runs every such strategy of every
    /// placement and order (refused above --max-cases), `fuzz` runs --cases random ones drawn
    /// from --seed. Each case has an id (printed) that --case replays.
    #[arg(long, value_enum, value_name = "MODE")]
    pub(crate) adversary: Option<adversary::Mode>,
    /// With --adversary fuzz: how many random strategies.
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "adversary")]
    pub(crate) cases: u64,
    /// With --adversary: refuse (exit 2, printing the count) a strategy space (all) or a
    /// --cases (fuzz) larger than this.
    #[arg(long, value_name = "N", default_value_t = adversary::DEFAULT_MAX_CASES,
          requires = "adversary")]
    pub(crate) max_cases: u64,
    /// With --adversary: run only the case with this id, as the report printed it
    /// (ORDER:TRAITORS:INDEX or fuzz:SEED:I), with the same --protocol, -n, -m and --orders.
    #[arg(long, value_name = "ID", requires = "adversary")]
    pub(crate) case: Option<String>,
    /// With --adversary: print one JSON object instead of the report.
    #[arg(long, requires = "adversary")]
    pub(crate) json: bool,
    /// With --adversary: draw the counterexample (or the --case run) as a Lamport diagram in
    /// FILE (SVG), from a replay of it that records its messages.
    #[arg(long, value_name = "FILE", requires = "adversary")]
    pub(crate) svg: Option<PathBuf>,
    /// Orders the commander may give.
    #[arg(long, value_delimiter = ',', default_value = "attack,retreat")]
    pub(crate) orders: Vec<String>,
    /// Explore below the bound (to find the classic counterexamples).
    #[arg(long)]
    pub(crate) allow_unsafe: bool,
    /// Round timeout of each run, in milliseconds (1-600000; a round ends as soon as every
    /// node has answered; only a delayed or lost node makes a case wait this long) [default:
    /// 2000, plus 0.1 ms per message of the run's largest round].
    #[arg(long, value_name = "MS", value_parser = round_timeout)]
    pub(crate) round_timeout_ms: Option<u64>,
    /// Seed of the first case (case i uses seed + i); with --adversary fuzz, also the seed
    /// the strategies are drawn from [default: random, printed].
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Cases run at once, each against its own in-process cluster [default: the number of
    /// cores]. The report is the same whatever this is.
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
    /// A node under test, as NAME=URL (repeatable): your own implementation of a general,
    /// running at URL, loyal in every case and judged; every other node is started here on
    /// the port rule's ports around it (Q=http://127.0.0.1:9101/ puts P on 9100, R on
    /// 9102...), and only they turn traitor. Cases then run one at a time.
    #[arg(long = "under-test", value_name = "NAME=URL")]
    pub(crate) under_test: Vec<String>,
}

impl ExploreArgs {
    /// The nodes under test, (name, URL), from `--under-test NAME=URL`.
    pub(crate) fn external(&self) -> Vec<(String, String)> {
        (self.under_test.iter())
            .filter_map(|p| p.split_once('='))
            .map(|(n, u)| (n.trim().to_string(), u.trim().to_string()))
            .collect()
    }
}

impl Cli {
    /// Parse the process's arguments; a flag in a place where it cannot apply exits 2 with
    /// clap's usage, like any other bad argument.
    pub fn parse_checked() -> Cli {
        Cli::try_parse_checked(std::env::args_os()).unwrap_or_else(|e| super::exit(e))
    }

    /// Parse `args` (the program name first). Flags given before a subcommand must be
    /// "where the nodes are" flags of an `om`/`sm` run, which then take them as their own
    /// (a flag given on both sides takes the later value).
    pub fn try_parse_checked<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut cmd = Cli::command();
        let matches = cmd.try_get_matches_from_mut(args)?;
        if let Some(e) = misplaced(&mut cmd, &matches) {
            return Err(e);
        }
        let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
        if let Some(Command::Om(OmArgs { run, .. }) | Command::Sm(run)) = &cli.command
            && run.json
            && run.pictures.mermaid_to_stdout()
        {
            return Err(cmd.error(
                ErrorKind::ArgumentConflict,
                "'--mermaid -' and '--json' both write to stdout: give --mermaid a file \
                 (`--mermaid run.mmd --json`), and stdout keeps the JSON",
            ));
        }
        let before = std::mem::take(&mut cli.cluster);
        let spawn_before = std::mem::take(&mut cli.spawn);
        let spawn = match &mut cli.command {
            Some(Command::Om(OmArgs { run, .. })) | Some(Command::Sm(run)) => {
                run.cluster = std::mem::take(&mut run.cluster).or(before);
                run.spawn = std::mem::take(&mut run.spawn).or(spawn_before);
                // A node under test is placed where its URL says, for every call.
                run.cluster.peers.extend(run.under_test.iter().cloned());
                &run.spawn
            }
            Some(Command::Ui(ui)) => {
                ui.cluster = std::mem::take(&mut ui.cluster).or(before);
                ui.spawn = std::mem::take(&mut ui.spawn).or(spawn_before);
                &ui.spawn
            }
            Some(Command::Check(check)) => {
                check.cluster = std::mem::take(&mut check.cluster).or(before);
                cli.spawn = spawn_before;
                &cli.spawn
            }
            _ => {
                cli.cluster = before;
                cli.spawn = spawn_before;
                &cli.spawn
            }
        };
        if spawn.any_role() && !spawn.spawn {
            return Err(cmd.error(
                ErrorKind::MissingRequiredArgument,
                "--faulty and --behaviour say how the nodes --spawn starts behave: add --spawn, \
                 or give them to `server`",
            ));
        }
        Ok(cli)
    }
}

impl Cli {
    /// Where the nodes of this command are and its `--spawn` flags: the original run's,
    /// `om`'s or `sm`'s; None for a command that calls no nodes of the user's.
    pub fn spawn(&self) -> Option<(&ClusterArgs, &SpawnArgs)> {
        match &self.command {
            None => Some((&self.cluster, &self.spawn)),
            Some(Command::Om(OmArgs { run, .. }) | Command::Sm(run)) => {
                Some((&run.cluster, &run.spawn))
            }
            Some(Command::Ui(ui)) => Some((&ui.cluster, &ui.spawn)),
            _ => None,
        }
    }
}

/// The error for the first flag given before a subcommand that does not take it from there.
fn misplaced(cmd: &mut clap::Command, matches: &ArgMatches) -> Option<clap::Error> {
    let (sub, _) = matches.subcommand()?;
    let cluster_flags = ClusterArgs::augment_args(clap::Command::new("cluster"));
    let spawn_flags = SpawnArgs::augment_args(clap::Command::new("spawn"));
    let is_cluster_flag = |id: &clap::Id| {
        cluster_flags.get_arguments().any(|a| a.get_id() == id)
            || spawn_flags.get_arguments().any(|a| a.get_id() == id)
    };
    let arg = cmd.get_arguments().find(|a| {
        matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine)
            && !a.is_global_set()
            && !(matches!(sub, "om" | "sm" | "ui") && is_cluster_flag(a.get_id()))
    })?;
    let name = arg
        .get_long()
        .map_or_else(|| arg.get_id().to_string(), |l| format!("--{l}"));
    let why = if matches!(sub, "completions" | "man") {
        format!("`client {sub}` only prints, from the definitions of the flags")
    } else if sub == "explore" {
        "`client explore` takes none of the original run's flags: it starts its own \
         cluster in-process on free ports and draws nothing"
            .to_string()
    } else if is_picture_flag(arg.get_id()) && sub != "ui" {
        format!("it goes after the subcommand: `client {sub} ... {name}`")
    } else {
        format!(
            "it belongs to the original run (`client` without a subcommand), not to `client {sub}`"
        )
    };
    Some(cmd.error(
        ErrorKind::ArgumentConflict,
        format!("'{name}' cannot be used before `{sub}`: {why}"),
    ))
}

fn is_picture_flag(id: &clap::Id) -> bool {
    PictureArgs::augment_args(clap::Command::new("pictures"))
        .get_arguments()
        .any(|a| a.get_id() == id)
}

/// A `--listen`: an IP address and port, or `localhost:PORT` (the loopback address, as the
/// default is; no name is looked up, so the page is served where the flag says).
fn listen(arg: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(addr) = arg.parse() {
        return Ok(addr);
    }
    match arg.rsplit_once(':') {
        Some((host, port)) if host.eq_ignore_ascii_case("localhost") => port
            .parse::<u16>()
            .map(|port| std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .map_err(|_| format!("{arg:?}: the port is a number 0 to 65535")),
        _ => Err(format!(
            "{arg:?}: give an IP address and a port, e.g. 127.0.0.1:8080, localhost:8080 or \
             0.0.0.0:8080 (every interface)"
        )),
    }
}

/// A `--round-timeout-ms`: 1 to 600,000 ms, what a node takes (0 is refused, not rounded up).
fn round_timeout(arg: &str) -> Result<u64, String> {
    match arg.parse::<u64>() {
        Ok(ms) if (1..=600_000).contains(&ms) => Ok(ms),
        _ => Err(format!(
            "{arg:?}: a round timeout is 1 to 600000 milliseconds"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_checked(line.split_whitespace())
    }

    #[test]
    fn the_clap_structs_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cluster_flags_before_om_are_the_runs() {
        let cli = parse("client --port-base 9000 --nodes P,Q,S om -m 1 --rpc-timeout 2").unwrap();
        let Some(Command::Om(om)) = cli.command else {
            panic!("om expected")
        };
        assert_eq!(om.run.cluster.port_base(), 9000);
        assert_eq!(om.run.cluster.nodes.as_deref(), Some("P,Q,S"));
        assert_eq!(om.run.cluster.rpc_timeout().as_secs(), 2);
        let cli = parse("client --nodes P,Q sm --nodes P,Q,R").unwrap();
        let Some(Command::Sm(sm)) = cli.command else {
            panic!("sm expected")
        };
        assert_eq!(sm.cluster.nodes.as_deref(), Some("P,Q,R"));
        let cli =
            parse("client --spawn --faulty Q --behaviour S=flip om --behaviour R=silent").unwrap();
        let Some(Command::Om(om)) = cli.command else {
            panic!("om expected")
        };
        assert!(om.run.spawn.spawn);
        assert_eq!(om.run.spawn.roles.faulty.as_deref(), Some("Q"));
        assert_eq!(om.run.spawn.roles.behaviours.len(), 2);
    }

    #[test]
    fn flags_that_cannot_apply_are_errors() {
        for line in [
            "client --quiet om",
            "client --decision retreat sm",
            "client --svg x.svg om",
            "client --quiet explore",
            "client --port-base 9000 explore",
            "client explore --trace x.jsonl --svg x.svg --mermaid x.mmd",
            "client explore --mermaid -",
            "client om --json --mermaid -",
            "client sm --mermaid - --json",
            "client explore --nodes P,Q",
            "client sm --tree R --svg x.svg",
            "client --tree R --svg x.svg",
            "client om --tree R",
            "client om --depth 2 --tree R",
            "client --focus P",
            "client explore --protocol xm",
            "client explore --behaviours nonsense",
            "client completions",
            "client completions tcsh",
            "client --nodes P,Q completions bash",
            "client --log-level verbose",
            "client --faulty Q",
            "client om --behaviour S=flip",
            "client --spawn explore",
            "client explore --spawn",
            "client explore --case attack:Q:1",
            "client explore --svg x.svg",
            "client explore --adversary all --behaviours flip",
            "client explore --adversary some",
        ] {
            let e = parse(line)
                .err()
                .unwrap_or_else(|| panic!("{line} accepted"));
            assert_eq!(e.exit_code(), 2, "{line}: {e}");
        }
        let e = parse("client --quiet om").unwrap_err().to_string();
        assert!(e.contains("'--quiet' cannot be used before `om`"), "{e}");
        let e = parse("client om --json --mermaid -")
            .unwrap_err()
            .to_string();
        assert!(e.contains("give --mermaid a file"), "{e}");
    }

    #[test]
    fn listen_takes_an_address_or_localhost() {
        let at = |line: &str| match parse(line).map(|c| c.command) {
            Ok(Some(Command::Ui(ui))) => Ok(ui.listen.to_string()),
            Ok(_) => panic!("ui expected"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(
            at("client ui --listen localhost:9090").unwrap(),
            "127.0.0.1:9090"
        );
        assert_eq!(at("client ui --listen [::1]:0").unwrap(), "[::1]:0");
        let e = at("client ui --listen example.org:80").unwrap_err();
        assert!(e.contains("give an IP address and a port"), "{e}");
        let e = at("client ui --listen localhost:http").unwrap_err();
        assert!(e.contains("the port is a number"), "{e}");
    }

    #[test]
    fn documented_command_lines_parse() {
        for line in [
            "client",
            "client --quiet --delay-ms 1 --decision retreat",
            "client --svg x.svg --focus P --mermaid - --trace t.jsonl",
            "client om -m 1 --seed 42 --commander S",
            "client --nodes P,Q,S om -m 1 --seed 42 --allow-unsafe",
            "client --cluster-size 7 om -m 2 --seed 5 --svg x.svg --tree N3 --depth 3",
            "client --cluster c.toml --rpc-timeout 2 om -m 1 --commander Q --json",
            "client sm -m 1 --svg x.svg --focus Q --mermaid run.mmd",
            "client om --json --mermaid run.mmd",
            "client explore --protocol sm -n 3 -m 1 --behaviours flip,two-faced --jobs 2",
            "client explore --behaviours silent,deny:R,S",
            "client explore -n 3 -m 1 --allow-unsafe --adversary all --case attack:Q:1 --svg x.svg",
            "client explore -n 7 -m 2 --adversary fuzz --cases 1000 --seed 7 --json",
            "client explore --adversary all --max-cases 200",
            "client completions zsh",
            "client man",
            "client man om",
            "client --log-level debug om --seed 1",
            "client om --log-level generals=debug,hyper=info",
            "client --spawn --faulty Q --behaviour P=flip",
            "client --spawn --faulty '' om -m 1 --behaviour S=two-faced",
            "client sm --spawn --port-base 9000",
        ] {
            if let Err(e) = parse(line) {
                panic!("{line}: {e}");
            }
        }
    }
}
