//! Exhaustive exploration: every placement of up to `m` traitors (the commander included),
//! every behaviour from a list for each traitor, every order, each as a real run over XML-RPC
//! against a cluster started in-process on ports the OS picks.
//!
//! Each job (`--jobs`) starts one cluster and runs its cases on it one after the other,
//! setting the traitors' behaviours before each run (see [`CaseCluster`]). The first case that
//! violates IC1 or IC2 is kept in full as the counterexample.

use std::sync::Arc;
use std::time::Duration;

use super::driver::{self, DriveError, Driven, Protocol, RunOptions};
use crate::agreement::checker::Report;
use crate::agreement::engine::Engine;
use crate::behaviour::Behaviour;
use crate::cluster::{Cluster, NodeUrl};
use crate::peer::Peers;
use crate::server::{self, Config, Limits};
use crate::trace::Event;

/// What to explore.
#[derive(Debug, Clone)]
pub struct Explore {
    /// OM or SM.
    pub protocol: Protocol,
    /// Nodes, commander included.
    pub n: usize,
    /// Traitors to tolerate; up to `m` traitors are placed.
    pub m: usize,
    /// Behaviours a traitor may have.
    pub behaviours: Vec<Behaviour>,
    /// Orders the commander may give.
    pub orders: Vec<String>,
    /// Explore below the bound.
    pub allow_unsafe: bool,
    /// Round timeout of each run.
    pub round_timeout: Duration,
    /// Seed of the first case; case `i` uses `seed + i`.
    pub seed: u64,
    /// Cases run at once (each against its own in-process cluster); at least 1.
    pub jobs: usize,
    /// Nodes under test (`--under-test NAME=URL`): external implementations, loyal in every
    /// case and judged; the others are started in-process on the port rule's ports next to
    /// them (an external node finds its peers by the rule), and only they turn traitor.
    /// With any, cases run one at a time (the external nodes are shared).
    pub external: Vec<(String, String)>,
}

impl Explore {
    /// Whether `node` is under test (external, never a traitor).
    pub(crate) fn is_external(&self, node: &str) -> bool {
        self.external.iter().any(|(n, _)| n == node)
    }

    /// The nodes that may turn traitor: every node but those under test, in order.
    pub(crate) fn candidates(&self) -> Vec<String> {
        (names(self.n).into_iter())
            .filter(|n| !self.is_external(n))
            .collect()
    }
}

/// The behaviours explored by default: every deterministic one that lies or withholds.
pub fn default_behaviours() -> Vec<Behaviour> {
    vec![Behaviour::Silent, Behaviour::Flip, Behaviour::TwoFaced]
}

/// One case: who betrays how, and the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Traitors and their behaviours.
    pub traitors: Vec<(String, Behaviour)>,
    /// The commander's order.
    pub order: String,
    /// The run's seed.
    pub seed: u64,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let traitors: Vec<String> = self
            .traitors
            .iter()
            .map(|(n, b)| format!("{n}={b}"))
            .collect();
        write!(
            f,
            "order {}, traitors: {} (seed {})",
            self.order,
            if traitors.is_empty() {
                "none".to_string()
            } else {
                traitors.join(" ")
            },
            self.seed
        )
    }
}

/// What the exploration found.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Cases run.
    pub cases: usize,
    /// Cases where IC1 held.
    pub ic1_held: usize,
    /// Cases where IC2 held.
    pub ic2_held: usize,
    /// Void cases: the simulation broke the algorithm's assumptions (a loyal node late or
    /// lost); counted apart and never a counterexample.
    pub void: usize,
    /// The first case that violated IC1 or IC2 (not void), with its outcome.
    pub counterexample: Option<(Case, Report)>,
}

/// Node names for `n` nodes: P, Q, R, ... as in the original, then N<i> beyond Z.
pub(crate) fn names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match char::from_u32('P' as u32 + i as u32) {
            Some(c) if c <= 'Z' => c.to_string(),
            _ => format!("N{i}"),
        })
        .collect()
}

/// The number of cases: `sum over k = 0..=m of C(n, k) * b^k`, times the number of orders,
/// where `n` counts the nodes that may turn traitor ([`Explore::candidates`]).
pub(crate) fn case_count(n: usize, m: usize, behaviours: usize, orders: usize) -> u64 {
    let binom = |n: u64, k: u64| (0..k).fold(1u64, |acc, i| acc * (n - i) / (i + 1));
    (0..=m.min(n) as u64)
        .map(|k| binom(n as u64, k) * (behaviours as u64).pow(k as u32))
        .sum::<u64>()
        * orders as u64
}

/// Every case, in a fixed order (orders outermost, then the number of traitors).
pub fn cases(e: &Explore) -> Vec<Case> {
    let nodes = e.candidates();
    let mut out = Vec::new();
    for order in &e.orders {
        for k in 0..=e.m.min(nodes.len()) {
            for placement in combinations(nodes.len(), k) {
                let mut choice = vec![0usize; k];
                loop {
                    let traitors = placement
                        .iter()
                        .zip(&choice)
                        .map(|(&i, &b)| (nodes[i].clone(), e.behaviours[b].clone()))
                        .collect();
                    let seed = e.seed.wrapping_add(out.len() as u64);
                    out.push(Case {
                        traitors,
                        order: order.clone(),
                        seed,
                    });
                    // Next behaviour assignment (odometer); done when it wraps.
                    let mut j = 0;
                    while j < k {
                        choice[j] += 1;
                        if choice[j] < e.behaviours.len() {
                            break;
                        }
                        choice[j] = 0;
                        j += 1;
                    }
                    if j == k {
                        break;
                    }
                }
            }
        }
    }
    out
}

/// All k-subsets of 0..n in lexicographic order.
pub(crate) fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut current = Vec::with_capacity(k);
    fn rec(start: usize, n: usize, k: usize, current: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if current.len() == k {
            out.push(current.clone());
            return;
        }
        for i in start..n {
            current.push(i);
            rec(i + 1, n, k, current, out);
            current.pop();
        }
    }
    rec(0, n, k, &mut current, &mut out);
    out
}

/// A cluster of `n` in-process nodes on ports the OS picked, reused case after case: each
/// case sets the nodes' behaviours before its run starts ([`Engine::set_behaviour`]; a run
/// keeps the behaviours it started with) and runs under its own run id, so cases stay
/// independent while binding, connecting and the kernel's port bookkeeping (which dominated
/// the profile when every case had its own cluster) happen once per job.
struct CaseCluster {
    cluster: Cluster,
    engines: Vec<(String, Arc<Engine>)>,
    peers: Peers,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<()>>,
}

impl CaseCluster {
    /// The cluster of `e`'s nodes (every one but those under test, served here);
    /// `traced`: its nodes record their calls (`trace_events`).
    async fn start(e: &Explore, traced: bool) -> Result<CaseCluster, DriveError> {
        let (cluster, hosted) = placed(e)?;
        let config = Config {
            cluster,
            nodes: hosted,
            faulty: Vec::new(),
            behaviours: Vec::new(),
            seed: 0,
            quiet: true,
            print: false,
            limits: Limits {
                rpc_timeout: CALL_TIMEOUT,
                // Nobody reads a case's trace (but a replay's, for its picture): recording it
                // would cost an event per message.
                trace_events: if traced {
                    Limits::default().trace_events
                } else {
                    0
                },
                ..Limits::default()
            },
        };
        let bound = match e.external.is_empty() {
            true => server::bind_ephemeral(config).await,
            false => server::bind(config).await,
        }
        .map_err(|e| DriveError::Invalid(format!("cannot start the cluster: {e}")))?;
        let cluster = bound.cluster().clone();
        let engines = bound.engines();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            let _ = bound
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(CaseCluster {
            cluster,
            engines,
            peers: Peers::new(CALL_TIMEOUT).map_err(|e| DriveError::Invalid(e.to_string()))?,
            stop: Some(stop),
            serving: Some(serving),
        })
    }

    /// Run `case`: its traitors take their behaviours, every other node is honest.
    async fn run(&self, e: &Explore, case: &Case) -> Result<Report, DriveError> {
        self.run_with_secrets(e, case).await.map(|d| d.report)
    }

    /// [`CaseCluster::run`], keeping the run's secrets (to read its traces).
    async fn run_with_secrets(&self, e: &Explore, case: &Case) -> Result<Driven, DriveError> {
        for (name, engine) in &self.engines {
            let b = case
                .traitors
                .iter()
                .find(|(t, _)| t == name)
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            engine.set_behaviour(b);
        }
        let nodes = names(e.n);
        let opts = RunOptions {
            protocol: e.protocol,
            m: e.m,
            order: case.order.clone(),
            commander: nodes[0].clone(),
            nodes,
            round_timeout: e.round_timeout,
            seed: case.seed,
            allow_unsafe: e.allow_unsafe,
            rpc_timeout: CALL_TIMEOUT,
            max_messages: driver::DEFAULT_MAX_MESSAGES,
        };
        let secrets = driver::credentials(&opts)?;
        driver::drive_with(&self.cluster, &opts, &self.peers, secrets).await
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(serving) = self.serving.take() {
            let _ = serving.await;
        }
    }
}

/// The port base of an exploration with nodes under test (its nodes sit on the port rule's
/// ports around them), if it has any and their URL places them.
pub(crate) fn port_base(e: &Explore) -> Option<u16> {
    (!e.external.is_empty())
        .then(|| placed(e).ok())
        .flatten()
        .and_then(|(cluster, hosted)| {
            let first = hosted.first()?;
            let index = names(e.n).iter().position(|n| n == first)?;
            let port = cluster.listen_port(first).ok()?;
            port.checked_sub(u16::try_from(index).ok()?)
        })
}

/// Where `e`'s nodes live and which of them this process serves. Without nodes under test:
/// all of them, on ports the OS picks. With some: the others on the port rule's ports
/// around the first one's (`Q=http://127.0.0.1:9101/` puts P on 9100, R on 9102...), since
/// an implementation of the original finds its peers by that rule.
fn placed(e: &Explore) -> Result<(Cluster, Vec<String>), DriveError> {
    let nodes = names(e.n);
    let Some((first, url)) = e.external.first() else {
        return Ok((Cluster::local(0), nodes));
    };
    let bad = |why: String| DriveError::Invalid(format!("--under-test {first}={url}: {why}"));
    let index = (nodes.iter().position(|n| n == first))
        .ok_or_else(|| bad(format!("{first} is not one of the {} nodes", e.n)))?;
    let parsed = NodeUrl::parse(url).map_err(|err| bad(err.to_string()))?;
    let (host, port) = (parsed.host().trim_matches(['[', ']']), parsed.port());
    let base = u16::try_from(index)
        .ok()
        .and_then(|i| port.checked_sub(i))
        .ok_or_else(|| {
            bad(format!(
                "port {port} leaves no room for the nodes before {first}"
            ))
        })?;
    if e.n > 11 {
        return Err(bad(
            "nodes under test take part in explorations of P..Z, 11 nodes at most".into(),
        ));
    }
    let mut cluster = Cluster::new(host, base).map_err(|err| bad(err.to_string()))?;
    for (name, url) in &e.external {
        if !nodes.contains(name) {
            return Err(bad(format!("{name} is not one of the {} nodes", e.n)));
        }
        cluster = cluster
            .with_peer(name, url)
            .map_err(|err| bad(err.to_string()))?;
    }
    let hosted = nodes.into_iter().filter(|n| !e.is_external(n)).collect();
    Ok((cluster, hosted))
}

/// Timeout of the driver's and the nodes' calls in an exploration.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Check the parameters as the driver would for one run of `e` (the bound, the budget).
pub(crate) fn check(e: &Explore) -> Result<(), DriveError> {
    let nodes = names(e.n);
    driver::check(&RunOptions {
        protocol: e.protocol,
        m: e.m,
        order: "attack".into(),
        commander: nodes[0].clone(),
        nodes,
        round_timeout: e.round_timeout,
        seed: e.seed,
        allow_unsafe: e.allow_unsafe,
        rpc_timeout: CALL_TIMEOUT,
        max_messages: driver::DEFAULT_MAX_MESSAGES,
    })
}

/// Run every case; `progress(done, total)` after each.
pub async fn explore(
    e: &Explore,
    progress: impl FnMut(usize, usize),
) -> Result<Summary, DriveError> {
    check(e)?;
    let all = cases(e);
    let mut summary = Summary {
        cases: 0,
        ic1_held: 0,
        ic2_held: 0,
        void: 0,
        counterexample: None,
    };
    let mut first: Option<usize> = None;
    let pick = |i: usize| all[i].clone();
    run_cases(e, all.len(), pick, progress, |i, outcome| {
        summary.cases += 1;
        if outcome.is_void() {
            summary.void += 1;
            return;
        }
        summary.ic1_held += usize::from(outcome.ic1);
        summary.ic2_held += usize::from(outcome.ic2);
        // The first case in case order that does not hold, whatever the timing.
        if !outcome.holds() && first.is_none_or(|f| i < f) {
            first = Some(i);
            summary.counterexample = Some((all[i].clone(), outcome));
        }
    })
    .await?;
    Ok(summary)
}

/// Run `count` cases (`make(i)` is case `i`), `e.jobs` at a time, each job on a cluster of its
/// own reused case after case; `done(i, report)` for each as it finishes (in any order), then
/// `progress`. The first case that could not run stops the exploration and is its error.
///
/// Each job is a thread of its own with a single-threaded runtime, which holds the job's
/// cluster, its driver and their connections: a case's calls go from task to task on one
/// thread, over loopback TCP as any run's do, with no hand-over between runtime threads (on
/// the shared multi-threaded runtime, a call could wake a task on the other core at each hop;
/// `explore -n 10 -m 3 --behaviours flip` took a quarter less time this way, BENCHMARKS.md,
/// "Issue 32").
/// The cases are handed out here, one at a time to each idle job, so the order of `make` calls
/// and the reports do not depend on the threads. When a case cannot run, the cases other jobs
/// are running end (each within its run's timeouts) before the error is returned.
pub async fn run_cases(
    e: &Explore,
    count: usize,
    make: impl Fn(usize) -> Case,
    mut progress: impl FnMut(usize, usize),
    mut done: impl FnMut(usize, Report),
) -> Result<(), DriveError> {
    // External nodes are shared by every case: one case at a time.
    let jobs = match e.external.is_empty() {
        true => e.jobs.max(1).min(count.max(1)),
        false => 1,
    };
    let e = Arc::new(e.clone());
    let (results, mut finished_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut senders = Vec::with_capacity(jobs);
    let mut threads = Vec::with_capacity(jobs);
    for job in 0..jobs {
        let (cases, cases_rx) = tokio::sync::mpsc::unbounded_channel();
        let (e, results) = (e.clone(), results.clone());
        let thread = std::thread::Builder::new()
            .name(format!("explore-{job}"))
            .spawn(move || run_job(&e, job, cases_rx, &results))
            .map_err(|err| DriveError::Invalid(format!("cannot start a job: {err}")))?;
        threads.push(thread);
        senders.push(cases);
    }
    drop(results);
    let mut free: Vec<usize> = (0..jobs).rev().collect();
    let (mut next, mut finished) = (0, 0);
    let mut failure = None;
    while finished < count {
        while next < count
            && let Some(job) = free.pop()
        {
            if senders[job].send((next, make(next))).is_err() {
                break;
            }
            next += 1;
        }
        let Some((job, case, outcome)) = finished_rx.recv().await else {
            break;
        };
        let Some(i) = case else {
            // The job's cluster could not start.
            failure = outcome.err();
            break;
        };
        free.push(job);
        finished += 1;
        match outcome {
            Ok(report) => done(i, report),
            Err(err) => {
                failure = Some(err);
                break;
            }
        }
        progress(finished, count);
    }
    // No more cases: each job ends its case, if any, and stops its cluster.
    drop(senders);
    let _ = tokio::task::spawn_blocking(move || {
        for thread in threads {
            let _ = thread.join();
        }
    })
    .await;
    failure.map_or(Ok(()), Err)
}

/// What a job tells [`run_cases`]: the job, and the case it ran with its outcome, or no case
/// and the error that kept its cluster from starting.
type JobMessage = (usize, Option<usize>, Result<Report, DriveError>);

/// One job of [`run_cases`], on its own thread: start a cluster on a single-threaded runtime,
/// run each case it is handed, and stop the cluster when no more come.
fn run_job(
    e: &Explore,
    job: usize,
    mut cases: tokio::sync::mpsc::UnboundedReceiver<(usize, Case)>,
    results: &tokio::sync::mpsc::UnboundedSender<JobMessage>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            let err = DriveError::Invalid(format!("cannot start a job's runtime: {err}"));
            let _ = results.send((job, None, Err(err)));
            return;
        }
    };
    runtime.block_on(async {
        let lab = match CaseCluster::start(e, false).await {
            Ok(lab) => lab,
            Err(err) => {
                let _ = results.send((job, None, Err(err)));
                return;
            }
        };
        while let Some((i, case)) = cases.recv().await {
            let outcome = lab.run(e, &case).await;
            if results.send((job, Some(i), outcome)).is_err() {
                break;
            }
        }
        lab.stop().await;
    });
}

/// Run one case on a cluster of its own that records every node-to-node call: its report and
/// the calls, for the pictures.
pub(crate) async fn run_traced(
    e: &Explore,
    case: &Case,
) -> Result<(Report, Vec<Event>), DriveError> {
    let lab = CaseCluster::start(e, true).await?;
    let since_us = crate::trace::now_us();
    let outcome = lab.run_with_secrets(e, case).await;
    let events = match &outcome {
        Ok(driven) => {
            let nodes = names(e.n);
            let secrets = &driven.credentials;
            let capability = |node: &str| secrets.capability(node);
            let (events, _) = crate::trace::gather(
                &lab.cluster,
                &lab.peers,
                &nodes,
                &secrets.run,
                &capability,
                since_us,
            )
            .await;
            events
        }
        Err(_) => Vec::new(),
    };
    lab.stop().await;
    Ok((outcome?.report, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_count_matches_the_enumeration() {
        for (n, m, b, o) in [
            (4, 1, 3, 2),
            (3, 1, 3, 2),
            (7, 2, 3, 1),
            (5, 2, 1, 2),
            (4, 0, 3, 2),
        ] {
            let e = Explore {
                protocol: Protocol::Om,
                n,
                m,
                behaviours: default_behaviours().into_iter().cycle().take(b).collect(),
                orders: ["attack", "retreat"]
                    .iter()
                    .take(o)
                    .map(|s| s.to_string())
                    .collect(),
                allow_unsafe: true,
                round_timeout: Duration::from_millis(50),
                seed: 1,
                jobs: 1,
                external: Vec::new(),
            };
            let all = cases(&e);
            assert_eq!(
                all.len() as u64,
                case_count(n, m, b, o),
                "n={n} m={m} b={b} o={o}"
            );
            let mut distinct = all.clone();
            distinct.dedup();
            assert_eq!(distinct.len(), all.len());
        }
        // n=4, m=1, 3 behaviours, 2 orders: (1 + 4*3) * 2.
        assert_eq!(case_count(4, 1, 3, 2), 26);
        assert_eq!(names(4), ["P", "Q", "R", "S"]);
    }
}
