//! One OM/SM agreement run: `client om` and `client sm` ([`command`]), and the run itself
//! ([`run`]), which the live page makes too. The run is driven by `runs::driver`; while it
//! goes, a watched run reads the nodes' traces (`trace_events`) every [`POLL`] for the calls
//! started in a window ending now, so each poll carries only what is new plus the calls that
//! could still have been in flight, and tells each message once. Then the lost nodes and the
//! verdict.

use std::collections::HashSet;
use std::time::Duration;

use super::events::{Event, Printer};
use super::original::start_hint;
use super::outputs::{self, Outputs, RunToDraw};
use super::params::{self, Asked};
use super::{ClientError, errln, outln};
use crate::agreement::auth::Credentials;
use crate::agreement::checker::CauseKind;
use crate::cli::client::{AgreementArgs, TreeArgs};
use crate::cli::{Roles, Topology};
use crate::cluster::Cluster;
use crate::peer::Peers;
use crate::runs::driver::{self, DriveError, Driven, Protocol, RunOptions};
use crate::trace;

// The driver's rounds call every participant at once through the one fan-out: it must take
// as many nodes at once as a run may have.
const _: () = assert!(crate::peer::FAN_OUT >= crate::agreement::engine::MAX_NODES);

/// How often a watched run's traces are asked for new calls.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// An OM or SM run, judged: 0 holds, 1 violated, 3 void (refused: [`ClientError::Param`]).
pub(crate) async fn command(
    protocol: Protocol,
    a: &AgreementArgs,
    tree: &TreeArgs,
) -> Result<u8, ClientError> {
    let since_us = trace::now_us();
    let Topology { cluster, nodes, .. } = a.cluster.resolve(&Roles::default())?;
    let asked = Asked {
        protocol,
        m: a.m,
        order: a.order.clone(),
        commander: a.commander.clone(),
        seed: a.seed,
        round_timeout: a.round_timeout_ms.map(Duration::from_millis),
        allow_unsafe: a.allow_unsafe,
        max_messages: a.max_messages,
        rpc_timeout: a.cluster.rpc_timeout(),
    };
    let opts = params::check(&asked, &nodes)?;
    outputs::check_pictures(&a.pictures, &nodes)?;
    outputs::check_tree(tree, &nodes, &opts.commander)?;
    let peers = Peers::new(opts.rpc_timeout)?;
    let secrets = driver::credentials(&opts).map_err(params::ParamError::from)?;
    let printer = Printer {
        quiet: false,
        stdout_taken: a.pictures.mermaid_to_stdout(),
    };
    // The nodes lost are told before the verdict; a void report names each cause once, so
    // their lines wait for it and are said only for a run it judged.
    let mut lost = Vec::new();
    let mut tell = |event: Event| match event {
        Event::Unreachable(_) => {
            lost.push(event);
            Ok(())
        }
        Event::Verdict(report) => {
            if !report.is_void() {
                for e in lost.drain(..) {
                    printer.print(&e)?;
                }
            }
            // With --json the verdict is the JSON below.
            if !a.json {
                printer.print(&Event::Verdict(report.clone()))?;
            }
            // Nothing answered: how to start what is missing, as the plain `client` says it.
            let down: Vec<String> = (report.causes.iter())
                .filter(|c| c.kind == CauseKind::Down)
                .flat_map(|c| c.nodes.iter().cloned())
                .collect();
            if report.is_void() && !down.is_empty() {
                errln!("{}", start_hint(&a.cluster, &down, &nodes));
            }
            Ok(())
        }
        event => printer.print(&event),
    };
    let driven = run(&cluster, &opts, &peers, secrets, false, &mut tell)
        .await
        .map_err(|e| match e {
            Ran::Refused(e) => ClientError::Param(e.into()),
            Ran::Told(e) => ClientError::Output(e),
            Ran::Stopped(e) => ClientError::Output(std::io::Error::other(e)),
        })?;
    let outcome = driven.report;
    let credentials = driven.credentials;
    if a.json {
        outln!("{}", outcome.to_json());
    }
    let mut decisions = outcome.decisions.clone();
    decisions.extend(outcome.traitor_decisions.clone());
    let drawn = RunToDraw {
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
            peers: &peers,
            nodes: &opts.nodes,
            pictures: &a.pictures,
            tree,
        };
        to.write(drawn, since_us).await?;
    }
    Ok(outcome.exit_code())
}

/// Why [`run`] ended without a verdict.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Ran {
    /// The run was refused (a node without the extension, no secrets).
    #[error(transparent)]
    Refused(#[from] DriveError),
    /// Telling an event failed (its reader is gone).
    #[error("telling the run: {0}")]
    Told(std::io::Error),
    /// The driver's task ended without an answer (it panicked).
    #[error("the run stopped: {0}")]
    Stopped(String),
}

/// A spawned task that is stopped when this handle is dropped: a run's own tasks end with it
/// (a page closed in the middle stops the run).
struct Owned<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Drive the run `opts` with `secrets` over `peers`' connections, telling `tell` what happens:
/// with `watch`, each message as the nodes record it (read from their traces while it goes,
/// and all of it at the end); then each node the driver lost, then the verdict. Dropping this
/// future stops the run: the driver's calls stop, and the nodes expire the unfinished run.
pub(crate) async fn run<T>(
    cluster: &Cluster,
    opts: &RunOptions,
    peers: &Peers,
    secrets: Credentials,
    watch: bool,
    tell: &mut T,
) -> Result<Driven, Ran>
where
    T: FnMut(Event) -> std::io::Result<()>,
{
    let since_us = trace::now_us();
    let (c, o, pool, given) = (
        cluster.clone(),
        opts.clone(),
        peers.clone(),
        secrets.clone(),
    );
    let mut driving = Owned(tokio::spawn(async move {
        driver::drive_with(&c, &o, &pool, given).await
    }));
    let mut seen = ToldMessages::default();
    if watch {
        // A call may still be recorded this long after it started: the round's or call's
        // timeout.
        let window_us =
            (opts.round_timeout.max(opts.rpc_timeout) + Duration::from_secs(1)).as_micros() as u64;
        while !driving.0.is_finished() {
            tokio::time::sleep(POLL).await;
            let from = trace::now_us().saturating_sub(window_us).max(since_us);
            let events = gather(cluster, peers, opts, &secrets, from).await;
            seen.tell(events, tell).map_err(Ran::Told)?;
        }
    }
    let driven = match (&mut driving.0).await {
        Ok(driven) => driven?,
        Err(e) => return Err(Ran::Stopped(e.to_string())),
    };
    if watch {
        let events = gather(cluster, peers, opts, &secrets, since_us).await;
        seen.tell(events, tell).map_err(Ran::Told)?;
    }
    for u in &driven.unreachable {
        tell(Event::Unreachable(u.clone())).map_err(Ran::Told)?;
    }
    tell(Event::Verdict(Box::new(driven.report.clone()))).map_err(Ran::Told)?;
    Ok(driven)
}

/// The calls of the run of `secrets` started at or after `since_us`, from every node at once
/// (a node that cannot be asked adds nothing).
pub(crate) async fn gather(
    cluster: &Cluster,
    peers: &Peers,
    opts: &RunOptions,
    secrets: &Credentials,
    since_us: u64,
) -> Vec<trace::Event> {
    let capability = |n: &str| secrets.capability(n);
    let (events, _) = trace::gather(
        cluster,
        peers,
        &opts.nodes,
        &secrets.run,
        &capability,
        since_us,
    )
    .await;
    events
}

/// The messages already told, so that each is told once.
#[derive(Default)]
struct ToldMessages(HashSet<(String, String, u64, String)>);

impl ToldMessages {
    /// Tell the events not told yet, by round and then start.
    fn tell<T>(&mut self, mut events: Vec<trace::Event>, tell: &mut T) -> std::io::Result<()>
    where
        T: FnMut(Event) -> std::io::Result<()>,
    {
        events.sort_by(|a, b| {
            (a.round(), a.start_us, &a.from, &a.to).cmp(&(b.round(), b.start_us, &b.from, &b.to))
        });
        for e in events {
            let key = (e.from.clone(), e.to.clone(), e.start_us, e.args.to_string());
            if self.0.insert(key) {
                tell(Event::Message(e))?;
            }
        }
        Ok(())
    }
}
