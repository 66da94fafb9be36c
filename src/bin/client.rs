//! `client`: drive the generals. With no subcommand it is `python client.py` against
//! 127.0.0.1:8000-8003, printing a line per send as the original README shows; `client om` and
//! `client sm` run real Byzantine agreement between the nodes and check the result; `client
//! explore` tries every case of a small system. The command line is `generals::cli::client`,
//! the work `generals::app`
//! (the page of `client ui`, `generals::ui`, handed to it).

/// See `generals::allocator` for why.
#[global_allocator]
static ALLOC: generals::allocator::Allocator = mimalloc::MiMalloc;

use std::process::ExitCode;

use anyhow::Context;
use generals::app;
use generals::cli::client::{Cli, Command};

fn main() -> ExitCode {
    // mimalloc's defaults here (no `allocator::configure`): purging freed memory at once slows
    // the explorer (BENCHMARKS.md), and the client has no memory target to keep.
    let cli = Cli::parse_checked();
    cli.log.init();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        // `client | head`: the reader has every line it wanted.
        Err(e)
            if e.downcast_ref::<app::ClientError>()
                .is_some_and(app::ClientError::is_closed_stdout) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Escaped as every line the client prints: an error may quote what a node said.
            use std::io::Write;
            let _ = writeln!(
                generals::console::Escaping::new(std::io::stderr()),
                "client: {e:#}"
            );
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    // One thread is fastest for a client that only makes calls; the explorer hosts whole
    // clusters in-process and runs cases in parallel, and `--spawn` hosts the nodes it calls,
    // so they get every core.
    let hosts = matches!(cli.command, Some(Command::Explore(_)))
        || cli.spawn().is_some_and(|(_, s)| s.spawn);
    let runtime = if hosts {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    Ok(runtime.block_on(app::run(cli, generals::ui::command))?)
}
