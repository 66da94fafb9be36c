//! `server`: host XML-RPC generals. With no arguments it is `python server.py`: nodes P, Q, R,
//! S on 127.0.0.1:8000-8003, P faulty. The command line is `generals::cli::server`; see
//! `server --help` and the README.

/// See `generals::allocator` for why.
#[global_allocator]
static ALLOC: generals::allocator::Allocator = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::time::Duration;

use clap::CommandFactory;
use generals::cli::server::{self as cli, ServerArgs};
use generals::server;

fn main() -> ExitCode {
    generals::allocator::configure();
    let args: ServerArgs = generals::cli::parse_or_exit();
    if let Some(page) = manual(&args) {
        return match generals::cli::manual::print(&page) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("server: writing output: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => {
            let code = runtime.block_on(serve(args));
            // serve() returns once its connections are done (within --request-timeout); a
            // blocking evaluation still running must not hold the exit.
            runtime.shutdown_timeout(Duration::from_millis(100));
            // Lines still queued get a second to reach stdout; a stdout nobody reads must not
            // hold the exit either.
            generals::console::flush(generals::console::SHUTDOWN_WAIT);
            code
        }
        Err(e) => {
            eprintln!("server: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What `--completions SHELL` or `--man` asks to print instead of serving.
fn manual(args: &ServerArgs) -> Option<Vec<u8>> {
    use generals::cli::manual;
    if let Some(shell) = args.completions {
        return Some(manual::completions(ServerArgs::command(), shell));
    }
    args.man
        .then(|| manual::man(ServerArgs::command(), None))
        .flatten()
}

async fn serve(args: ServerArgs) -> ExitCode {
    args.log.init();
    // Bad arguments: exit 2, before anything is bound (as clap's own errors).
    let config = match args.config().and_then(|c| cli::exposed(&c).map(|e| (c, e))) {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("server: {e}");
            return ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run((config, exposed): (server::Config, Option<String>)) -> anyhow::Result<()> {
    if let Some(bind) = exposed {
        eprintln!(
            "server: warning: binding {bind} exposes XML-RPC without authentication to the network"
        );
    }
    let request_timeout = config.limits.request_timeout;
    let bound = server::bind(config).await?;
    bound
        .run(async {
            shutdown_signal().await;
            exit_by(request_timeout);
        })
        .await;
    Ok(())
}

/// After a stop signal, the server finishes what is in flight for most of `limit` (see
/// `Bound::run`); whatever still runs then (a blocking evaluation, a task stuck on a
/// peer) must not hold the exit: this thread ends the process at `limit`, exit code 1.
fn exit_by(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("server: work still running {limit:?} after the stop signal; exiting anyway");
        std::process::exit(1);
    });
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
