//! The client as an app: what `client` does with its parsed command line, one module per
//! activity. [`spawn`] hosts the nodes `--spawn` asks for (a [`crate::server::Config`] built
//! from the flags); [`original`] is `python client.py`; [`agreement`] one OM/SM run, judged;
//! [`explore`] the explorer and the adversary; [`check`] the contract's rows against any cluster; [`outputs`] the trace, the pictures and the
//! files a run writes. Beside them what every surface shares: [`params`], the one check of a
//! run's parameters (the command line and the live page ask through it), and [`events`], what
//! a run tells as it goes (typed: the command line prints them, the page streams them).
//!
//! Every command returns the process's exit code; `client ui` is served by [`crate::ui`],
//! above this module, which [`run`] is handed by the binary.

pub(crate) mod agreement;
pub(crate) mod check;
pub(crate) mod events;
pub(crate) mod explore;
pub(crate) mod original;
pub(crate) mod outputs;
pub(crate) mod params;
pub(crate) mod spawn;

use std::path::PathBuf;

use clap::CommandFactory;

use crate::cli::client::{Cli, Command, TreeArgs, UiArgs};
use crate::cli::{CliError, manual};
use crate::peer::PeerError;
use crate::runs::driver::{DriveError, Protocol};
pub(crate) use params::ParamError;

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
    /// A run parameter cannot be used ([`params::check`]).
    #[error(transparent)]
    Param(#[from] ParamError),
    /// `client man SUBCOMMAND` names no subcommand.
    #[error("man {0}: no such subcommand (om, sm, explore, ui, completions, man)")]
    NoPage(String),
    /// `--focus` names a node outside the run.
    #[error("--focus {0}: no such node in this run")]
    Focus(String),
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
/// everything the client prints, through [`Escaping`](crate::console::Escaping): what nodes
/// answered (decisions, fault strings, names) cannot reorder a line, hide in one or drive the
/// terminal.
macro_rules! out {
    ($($arg:tt)*) => {
        ::std::io::Write::write_fmt(
            &mut $crate::console::Escaping::new(::std::io::stdout()),
            format_args!($($arg)*),
        )
        .map_err($crate::app::ClientError::Output)?
    };
}

/// `println!` that ends the command with [`ClientError::Output`] instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        ::std::io::Write::write_fmt(
            &mut $crate::console::Escaping::new(::std::io::stdout()),
            format_args!("{}\n", format_args!($($arg)*)),
        )
        .map_err($crate::app::ClientError::Output)?
    };
}

/// `eprintln!`, escaped (a stderr that cannot be written is not worth a panic).
macro_rules! errln {
    ($($arg:tt)*) => {{
        let _ = ::std::io::Write::write_fmt(
            &mut $crate::console::Escaping::new(::std::io::stderr()),
            format_args!("{}\n", format_args!($($arg)*)),
        );
    }};
}

pub(crate) use {errln, out, outln};

/// Run what the command line asks for; the exit code. `page` serves `client ui` (the live page
/// sits above the app: it runs what the app runs); with `--spawn`, the nodes are hosted in
/// this process around the command.
pub async fn run(
    cli: Cli,
    page: impl AsyncFnOnce(&UiArgs) -> Result<u8, ClientError>,
) -> Result<u8, ClientError> {
    let hosting = match spawn::host(&cli).await? {
        Ok(hosting) => hosting,
        Err(code) => return Ok(code),
    };
    let code = command(&cli, page).await;
    if let Some(hosting) = hosting {
        hosting.stop().await;
    }
    code
}

/// Run the command against the nodes where they are.
async fn command(
    cli: &Cli,
    page: impl AsyncFnOnce(&UiArgs) -> Result<u8, ClientError>,
) -> Result<u8, ClientError> {
    match &cli.command {
        None => original::command(&cli.cluster, &cli.original, &cli.pictures).await,
        Some(Command::Om(a)) => agreement::command(Protocol::Om, &a.run, &a.tree).await,
        Some(Command::Sm(a)) => agreement::command(Protocol::Sm, a, &TreeArgs::default()).await,
        Some(Command::Explore(a)) => explore::command(a).await,
        Some(Command::Check(a)) => check::command(a).await,
        Some(Command::Ui(a)) => page(a).await,
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

/// Ctrl-C or SIGTERM.
pub(crate) async fn stopped() {
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
