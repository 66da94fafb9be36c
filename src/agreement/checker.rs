//! The checker: did the loyal lieutenants reach interactive consistency?
//!
//! IC1: all loyal lieutenants decide the same value. IC2: if the commander is loyal, every
//! loyal lieutenant decides the commander's order. Pure: the driver gathers the [`Facts`] of a
//! run, [`judge`] turns them into a [`Judgement`], and a [`Report`] of both is what people
//! (text) and tools (JSON) read.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::calls::{Method, Protocol};

/// What the driver gathered about one run: its parameters and what the nodes answered. Filled
/// by the driver as the run goes; judged by [`judge`], which adds nothing to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Facts {
    /// `om` or `sm`.
    pub(crate) protocol: Protocol,
    /// Run identifier (shared by every node).
    pub(crate) run: String,
    /// Seed of the run (random behaviours draw from it).
    pub(crate) seed: u64,
    /// Number of nodes, commander included.
    pub(crate) n: usize,
    /// The `m` of OM(m) / SM(m).
    pub(crate) m: usize,
    /// The commander.
    pub(crate) commander: String,
    /// The commander's order.
    pub(crate) order: String,
    /// The round timeout of the run, in milliseconds.
    pub(crate) round_timeout_ms: u64,
    /// The nodes that do not count as loyal, and why: they declared a traitor's behaviour,
    /// or the driver could not use them (a crash is one way to be faulty).
    pub(crate) traitors: BTreeMap<String, Faulty>,
    /// The decision of every lieutenant that answered one, traitors included.
    pub(crate) decisions: BTreeMap<String, String>,
    /// Node-to-node messages delivered, per round (what the nodes' decides reported).
    pub(crate) messages_per_round: Vec<u64>,
    /// Messages a complete run sends per round (OM: (n-1)(n-2)...(n-k); SM: none fixed).
    pub(crate) expected_per_round: Vec<u64>,
    /// Messages rejected by lieutenants (SM: bad signatures or paths).
    pub(crate) rejected: u64,
    /// SM messages scripted traitors sent with chains they did not hold (altered or forged).
    pub(crate) forged: u64,
    /// Messages the nodes refused because their MAC did not prove their sender: someone
    /// spoke for a node it is not (an outsider, or a node for another). Refused and never
    /// stored, so they change nothing; reported.
    pub(crate) unauthenticated: u64,
    /// Messages a node reported it could not deliver, by round, sender and receiver (its
    /// round's `failed_to`). They matter only between loyal nodes: judged with the final
    /// set of faulty nodes.
    pub(crate) undelivered: Vec<Undelivered>,
    /// Messages refused as late, by receiver and sender (the decides' `late`).
    pub(crate) late: Vec<Late>,
    /// Lieutenants that answered their decide without a decision (void when loyal).
    pub(crate) undecided: Vec<String>,
}

/// Messages of one round one node could not deliver to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Undelivered {
    /// The round.
    pub(crate) round: usize,
    /// The sender.
    pub(crate) from: String,
    /// The receiver.
    pub(crate) to: String,
    /// How many.
    pub(crate) count: u64,
}

/// Messages one node refused as late from another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Late {
    /// The receiver that refused them.
    pub(crate) at: String,
    /// Their sender.
    pub(crate) from: String,
    /// How many.
    pub(crate) count: u64,
}

impl Facts {
    /// A node counts as loyal unless it declared a traitor's behaviour or was lost.
    pub(crate) fn is_loyal(&self, node: &str) -> bool {
        !self.traitors.contains_key(node)
    }

    /// Count `node` as a traitor for `why`. A declared traitor that then fails stays a
    /// declared traitor, its failure added to what it shows (`delay:700; then silent in round
    /// 1`): failing is one of the things a traitor may do, so it never counts as a node that
    /// failed on its own, and a traitor cannot void a run by going silent or cutting itself
    /// off (issue 25, "no traitor-made voids").
    pub(crate) fn count_traitor(&mut self, node: &str, why: Faulty) {
        let why = match (self.traitors.remove(node), why) {
            (Some(Faulty::Behaviour(b)), Faulty::Failed(f)) => {
                Faulty::Behaviour(format!("{b}; then {f}"))
            }
            (Some(Faulty::Undeclared), Faulty::Failed(f)) => {
                Faulty::Behaviour(format!("?; then {f}"))
            }
            (_, why) => why,
        };
        self.traitors.insert(node.to_string(), why);
    }

    /// Nodes faulty because the driver could not use them (not a declared behaviour).
    pub(crate) fn failed(&self) -> Vec<&str> {
        (self.traitors.iter())
            .filter(|(_, why)| why.is_failure())
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// Why a node counts as a traitor; shown after its name in the report and as its entry in the
/// JSON's `behaviours`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Faulty {
    /// Its `node_info` declared this behaviour (`two-faced`, `deny:R,S`, ...).
    Behaviour(String),
    /// Its `node_info` said it is a traitor without naming a behaviour (shown `?`).
    Undeclared,
    /// The driver could not use it: no answer to `node_info` (a crash is one way to be
    /// faulty), or it stopped doing its part during the run (no start, no order, a round not
    /// answered in time, lost before deciding). Faulty for this run, as a crashed or silent
    /// node is; shown as [`Failure`]'s short phrase (`unreachable`, `silent in round 2`).
    Failed(Failure),
}

impl Faulty {
    /// Faulty because it failed, not because it declared a traitor's behaviour.
    pub(crate) fn is_failure(&self) -> bool {
        matches!(self, Faulty::Failed(_))
    }
}

impl fmt::Display for Faulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Faulty::Behaviour(b) => f.write_str(b),
            Faulty::Undeclared => f.write_str("?"),
            Faulty::Failed(failure) => failure.fmt(f),
        }
    }
}

/// What the driver was asking a node when it failed: the steps of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Who it is (`node_info`), before the run.
    Info,
    /// Its `*_start`.
    Start,
    /// The commander's `*_order`.
    Order,
    /// Round r (`*_round`).
    Round(usize),
    /// Its decision (`*_decide`).
    Decide,
}

impl Step {
    /// The method of this step in a run of `protocol`.
    pub fn method(self, protocol: Protocol) -> Method {
        match self {
            Step::Info => Method::NodeInfo,
            Step::Start => Method::Start(protocol),
            Step::Order => Method::Order(protocol),
            Step::Round(_) => Method::Round(protocol),
            Step::Decide => Method::Decide(protocol),
        }
    }

    /// The call of this step as the report names it: `node_info`, `om_round 2`.
    fn call(self, protocol: Protocol) -> String {
        match self {
            Step::Round(r) => format!("{} {r}", self.method(protocol).name()),
            _ => self.method(protocol).name().to_string(),
        }
    }
}

/// What went wrong with a node's call, as far as the call tells: the driver sorts each error
/// into one of these where it sees it, and the report's remedies follow from them (never
/// from the error's text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No answer came at all: nothing listens at its address (connection refused, no
    /// address), or the connection broke before an answer. Not started, or gone.
    Down,
    /// It answered that it does not know the method: it lacks the extension, or this protocol.
    Lacks,
    /// It holds a live run of this id that another caller drives: the run ids collided.
    Collides,
    /// No answer within `waited_ms`, the time the step allows (the round timeout in a round,
    /// else `--rpc-timeout`). A loyal node's round is asked again (the calls are idempotent:
    /// it waits for the first answer), to measure how long the node needed.
    Late {
        /// How long the driver waited.
        waited_ms: u64,
        /// How long the node took, from the step's start, when it answered the call asked
        /// again; `None` when it was not asked again or did not answer.
        took_ms: Option<u64>,
        /// The longest it was given without answering: `waited_ms`, or the window of the
        /// call asked again when that found no answer either.
        silent_ms: u64,
    },
    /// It answered with an error, or with something that is no answer (the error says which).
    Failed,
}

/// A node the driver could not use: the step, what went wrong, and the error of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What it was asked.
    pub step: Step,
    /// What went wrong.
    pub problem: Problem,
    /// The call's error, in one line (`node_info: connection refused`).
    pub error: String,
}

impl fmt::Display for Failure {
    /// The short phrase shown after the node's name and in the JSON's `behaviours`: a node
    /// that answered is never called unreachable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.step, &self.problem) {
            // No answer at all, or none in time.
            (Step::Info, Problem::Down | Problem::Late { .. }) => f.write_str("unreachable"),
            (Step::Info, _) => f.write_str("node_info failed"),
            (Step::Start, _) => f.write_str("did not start the run"),
            (Step::Order, _) => f.write_str("did not take its order"),
            (Step::Round(r), Problem::Late { .. }) => write!(f, "silent in round {r}"),
            (Step::Round(r), _) => write!(f, "failed round {r}"),
            (Step::Decide, _) => f.write_str("lost before deciding"),
        }
    }
}

/// The three verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// IC1 and IC2 hold.
    Holds,
    /// A condition is violated.
    Violated,
    /// The simulation could not keep the algorithm's assumptions (a loyal node late, failing
    /// or lost), so the run shows nothing about it.
    Void,
}

impl Verdict {
    /// The client's exit code: 0 holds, 1 violated, 3 void (2 is for refused runs).
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Verdict::Holds => 0,
            Verdict::Violated => 1,
            Verdict::Void => 3,
        }
    }
}

/// What [`judge`] makes of a run's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Judgement {
    /// Holds, violated or void.
    pub(crate) verdict: Verdict,
    /// IC1 holds (computed even when the run is void; it then counts for nothing).
    pub(crate) ic1: bool,
    /// IC2 holds (vacuously when the commander is a traitor).
    pub(crate) ic2: bool,
    /// Why IC1 or IC2 failed, one line per condition.
    pub(crate) problems: Vec<String>,
    /// Why the run is void, one line per cause: the facts' causes, and the judge's own when
    /// no loyal lieutenant decided (empty unless the verdict is [`Verdict::Void`]).
    pub(crate) void_reasons: Vec<String>,
    /// The same causes, each with its kind, nodes and remedy.
    pub(crate) causes: Vec<Cause>,
    /// Decisions of the loyal lieutenants: the ones judged.
    pub(crate) loyal_decisions: BTreeMap<String, String>,
    /// Decisions of the traitorous lieutenants (for reference; they do not count).
    pub(crate) traitor_decisions: BTreeMap<String, String>,
}

/// One cause of a void run, named once: what happened to which nodes while they were asked
/// what, and the one remedy that fits. The report prints each (`what`, then `remedy`); the
/// JSON's `causes` carries them for tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// What kind of cause.
    pub kind: CauseKind,
    /// The nodes it struck (for undelivered or late messages: their senders).
    pub nodes: Vec<String>,
    /// What happened, in one line naming the nodes and the call (the line of `void_reasons`).
    pub what: String,
    /// What to do about it; empty when the line itself is all there is to say.
    pub remedy: String,
}

/// The kinds of [`Cause`], each with its own remedy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseKind {
    /// More nodes faulty than m, some of them failed on their own: the run could show nothing
    /// (the line before the nodes' own causes).
    TooManyFaulty,
    /// Nothing answers at their address: start them first.
    Down,
    /// They answered without knowing the method: they lack the extension or the protocol.
    Lacks,
    /// They hold a live run of the same id, driven by another caller.
    Collides,
    /// No answer in time: the machine was too busy (or the node hung).
    Late,
    /// They answered with an error (the line quotes it).
    Failed,
    /// A loyal node could not deliver a round's messages to another.
    Undelivered,
    /// Messages of a loyal node arrived after their round had closed.
    LateMessages,
    /// A loyal lieutenant answered its decide without a decision.
    Undecided,
    /// No loyal lieutenant decided at all.
    NoneDecided,
}

/// A round timeout (ms) with room over `needed_ms`, what a node was measured to need: half
/// as much again, rounded up to a tenth of a second.
fn with_room(needed_ms: u64) -> u64 {
    (needed_ms.saturating_mul(3) / 2).div_ceil(100) * 100
}

/// Why a run is void, from its facts: the simulation could not keep what the algorithm
/// assumes. A node that failed (unreachable, silent, lost) is faulty for the run, as a
/// crashed node is; that keeps the verdict true as long as the faulty nodes are at most m.
/// Beyond m, a run where some node failed on its own shows nothing: then each way nodes
/// failed is a cause of its own. Between the nodes that remained loyal, every message must
/// have been delivered in its round: one that was not (cut off), or was refused as late,
/// voids the run.
fn void_causes(facts: &Facts) -> Vec<Cause> {
    let mut out = Vec::new();
    let failed = facts.failed();
    if !failed.is_empty() && facts.traitors.len() > facts.m {
        let what = if failed.len() == facts.traitors.len() {
            format!(
                "{} of {} nodes failed, more than m = {}: no run can show anything",
                failed.len(),
                facts.n,
                facts.m
            )
        } else {
            format!(
                "{} of {} nodes are faulty, more than m = {}, and {} of them failed on their \
                 own ({}): no run can show anything",
                facts.traitors.len(),
                facts.n,
                facts.m,
                failed.len(),
                failed.join(", ")
            )
        };
        out.push(Cause {
            kind: CauseKind::TooManyFaulty,
            nodes: failed.iter().map(|n| n.to_string()).collect(),
            what,
            remedy: String::new(),
        });
        out.extend(failure_causes(facts, &failed));
    }
    let doubled = facts.round_timeout_ms.saturating_mul(2);
    for u in &facts.undelivered {
        if facts.is_loyal(&u.from) && facts.is_loyal(&u.to) {
            out.push(Cause {
                kind: CauseKind::Undelivered,
                nodes: vec![u.from.clone()],
                what: format!(
                    "{} (loyal) could not deliver {} message(s) of round {} to {} (loyal), \
                     though both answered every round in time",
                    u.from, u.count, u.round, u.to
                ),
                remedy: format!(
                    "a round's messages must arrive within it: raise --round-timeout-ms to at \
                     least {doubled}, or check the network between {} and {}",
                    u.from, u.to
                ),
            });
        }
    }
    for l in &facts.late {
        if l.count > 0 && facts.is_loyal(&l.from) && facts.is_loyal(&l.at) {
            out.push(Cause {
                kind: CauseKind::LateMessages,
                nodes: vec![l.from.clone()],
                what: format!(
                    "{} message(s) of {} (loyal) arrived at {} after their round had closed",
                    l.count, l.from, l.at
                ),
                remedy: format!(
                    "the machine was too busy: raise --round-timeout-ms to at least {doubled}"
                ),
            });
        }
    }
    for node in &facts.undecided {
        if facts.is_loyal(node) {
            out.push(Cause {
                kind: CauseKind::Undecided,
                nodes: vec![node.clone()],
                // "(None)": the words of the reports before replies were typed, kept.
                what: format!("{node} (loyal) answered without a decision (None)"),
                remedy: format!(
                    "its implementation answers {} without a decision: see `client check`",
                    Method::Decide(facts.protocol).name()
                ),
            });
        }
    }
    out
}

/// The nodes that `failed`, one cause per way they failed: the step and what went wrong
/// (and, for answers that were errors, the error itself), each with its remedy.
fn failure_causes(facts: &Facts, failed: &[&str]) -> Vec<Cause> {
    let p = facts.protocol;
    // By step, by problem (in the order of Problem's variants), and for answers that were
    // errors by the error: the nodes each way struck.
    type Way = (Step, u8, String);
    let mut groups: BTreeMap<Way, Vec<(&str, &Failure)>> = BTreeMap::new();
    for node in failed {
        let Some(Faulty::Failed(f)) = facts.traitors.get(*node) else {
            continue;
        };
        let (rank, error) = match f.problem {
            Problem::Down => (0, String::new()),
            Problem::Lacks => (1, String::new()),
            Problem::Collides => (2, String::new()),
            Problem::Late { .. } => (3, String::new()),
            Problem::Failed => (4, f.error.clone()),
        };
        groups
            .entry((f.step, rank, error))
            .or_default()
            .push((node, f));
    }
    let mut out = Vec::new();
    let mut round_needed = 0;
    for ((step, _, _), group) in groups {
        let names: Vec<String> = group.iter().map(|(n, _)| n.to_string()).collect();
        let list = names.join(", ");
        let first = group[0].1;
        let call = step.call(p);
        let all = names.len() == facts.n;
        let them = if names.len() == 1 { "it" } else { "them" };
        let (kind, what, remedy) = match &first.problem {
            Problem::Down => (
                CauseKind::Down,
                format!("{list}: no answer ({})", first.error),
                if all {
                    "start the cluster first".to_string()
                } else if step == Step::Info {
                    format!("start {list} first, or leave {them} out of --nodes")
                } else {
                    format!("{list} went away during the run: start {them} again")
                },
            ),
            Problem::Lacks => (
                CauseKind::Lacks,
                format!("{list}: answered, but lack {} ({})", call, first.error),
                format!(
                    "host {list} with `server` from this project (the Python stand-in needs \
                     --agreement and runs OM only)"
                ),
            ),
            Problem::Collides => (
                CauseKind::Collides,
                format!(
                    "{list}: hold a live run of this id that another caller drives ({})",
                    first.error
                ),
                "run again, with another --seed (or once the other run is over)".to_string(),
            ),
            Problem::Late { waited_ms, .. } => {
                // What each needed, as far as it was measured.
                let (mut took, mut silent, mut needed) = (Vec::new(), Vec::new(), *waited_ms);
                for (n, f) in &group {
                    match f.problem {
                        Problem::Late {
                            took_ms: Some(t), ..
                        } => {
                            took.push((*n, t));
                            needed = needed.max(t);
                        }
                        Problem::Late { silent_ms, .. } if silent_ms > *waited_ms => {
                            silent.push((*n, silent_ms));
                            needed = needed.max(silent_ms.saturating_mul(2));
                        }
                        _ => needed = needed.max(waited_ms.saturating_mul(2)),
                    }
                }
                let took = measured(&took, &silent);
                let remedy = match step {
                    // Every late round gets the one remedy that fits them all (below).
                    Step::Round(_) => {
                        round_needed = round_needed.max(needed);
                        String::new()
                    }
                    _ => format!(
                        "the machine was too busy: raise --rpc-timeout to at least {} (seconds)",
                        with_room(needed).div_ceil(1000)
                    ),
                };
                (
                    CauseKind::Late,
                    format!("{list}: no answer to {call} within {waited_ms} ms{took}"),
                    remedy,
                )
            }
            Problem::Failed => (
                CauseKind::Failed,
                format!("{list}: {call} failed: {}", first.error),
                String::new(),
            ),
        };
        out.push(Cause {
            kind,
            nodes: names,
            what,
            remedy,
        });
    }
    for c in &mut out {
        if c.kind == CauseKind::Late && c.remedy.is_empty() {
            c.remedy = format!(
                "the machine was too busy: raise --round-timeout-ms to at least {}",
                with_room(round_needed)
            );
        }
    }
    out
}

/// What the late nodes' rounds asked again measured: who answered after how long, who did
/// not answer within how long (a range when many did).
fn measured(took: &[(&str, u64)], silent: &[(&str, u64)]) -> String {
    let mut parts = Vec::new();
    match took {
        [] => {}
        [_, _, _, _, ..] => {
            let lo = took.iter().map(|t| t.1).min().unwrap_or(0);
            let hi = took.iter().map(|t| t.1).max().unwrap_or(0);
            parts.push(format!(
                "{} of them answered after {lo} to {hi} ms",
                took.len()
            ));
        }
        _ => parts.extend(
            took.iter()
                .map(|(n, t)| format!("{n} answered after {t} ms")),
        ),
    }
    if let Some((_, ms)) = silent.first() {
        let names: Vec<&str> = silent.iter().map(|s| s.0).collect();
        parts.push(format!("{}: not within {ms} ms either", names.join(", ")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

/// Judge a run: IC1 and IC2 over the loyal lieutenants' decisions, void when the facts say
/// the assumptions broke ([`void_reasons`]) or when no loyal lieutenant decided.
pub(crate) fn judge(facts: &Facts) -> Judgement {
    let (loyal, traitorous): (BTreeMap<_, _>, BTreeMap<_, _>) = facts
        .decisions
        .iter()
        .filter(|(n, _)| **n != facts.commander)
        .map(|(n, d)| (n.clone(), d.clone()))
        .partition(|(n, _)| facts.is_loyal(n));
    let mut problems = Vec::new();
    let ic1 = ic1(&loyal, &mut problems);
    let ic2 = !facts.is_loyal(&facts.commander) || ic2(facts, &loyal, &mut problems);
    let mut causes = void_causes(facts);
    // Nothing to judge: IC1 and IC2 would hold vacuously, which says nothing.
    if loyal.is_empty() && causes.is_empty() {
        causes.push(Cause {
            kind: CauseKind::NoneDecided,
            nodes: Vec::new(),
            what: "no loyal lieutenant decided (none answered its decide with a decision): the \
                   run shows nothing about IC1 or IC2"
                .into(),
            remedy: String::new(),
        });
    }
    let verdict = if !causes.is_empty() {
        Verdict::Void
    } else if ic1 && ic2 {
        Verdict::Holds
    } else {
        Verdict::Violated
    };
    Judgement {
        verdict,
        ic1,
        ic2,
        problems,
        void_reasons: causes.iter().map(|c| c.what.clone()).collect(),
        causes,
        loyal_decisions: loyal,
        traitor_decisions: traitorous,
    }
}

/// IC1 over the loyal decisions; a disagreement is described in `problems`.
fn ic1(loyal: &BTreeMap<String, String>, problems: &mut Vec<String>) -> bool {
    let mut by_value: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (n, d) in loyal {
        by_value.entry(d).or_default().push(n);
    }
    if by_value.len() <= 1 {
        return true;
    }
    let groups: Vec<String> = by_value
        .iter()
        .map(|(v, ns)| format!("{} decided {v}", ns.join(", ")))
        .collect();
    problems.push(format!(
        "IC1 violated: loyal lieutenants disagree: {}",
        groups.join("; ")
    ));
    false
}

/// IC2 for a loyal commander; the lieutenants that disobeyed are described in `problems`.
fn ic2(facts: &Facts, loyal: &BTreeMap<String, String>, problems: &mut Vec<String>) -> bool {
    let wrong: Vec<String> = loyal
        .iter()
        .filter(|(_, d)| **d != facts.order)
        .map(|(n, d)| format!("{n} decided {d}"))
        .collect();
    if wrong.is_empty() {
        return true;
    }
    problems.push(format!(
        "IC2 violated: the commander {} is loyal and ordered {}, but {}",
        facts.commander,
        facts.order,
        wrong.join(", ")
    ));
    false
}

/// A run's facts and its judgement, as the client prints them: the fields are the members of
/// `client om --json` (documented in the README), in that order. Made only by
/// [`Report::new`]; nothing in it is filled in later.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `om` or `sm`.
    pub protocol: Protocol,
    /// Run identifier (shared by every node).
    pub run: String,
    /// Seed of the run.
    pub seed: u64,
    /// Number of nodes, commander included.
    pub n: usize,
    /// The `m` of OM(m) / SM(m).
    pub m: usize,
    /// The commander.
    pub commander: String,
    /// The commander's order.
    pub order: String,
    /// Nodes that lie, withhold or could not be reached, sorted.
    pub traitors: Vec<String>,
    /// Why each traitor is one: its behaviour, `?`, or `unreachable` ([`Faulty`]).
    pub behaviours: BTreeMap<String, String>,
    /// Decisions of the loyal lieutenants.
    pub decisions: BTreeMap<String, String>,
    /// Decisions of the traitorous lieutenants (for reference; they do not count).
    pub traitor_decisions: BTreeMap<String, String>,
    /// IC1 holds.
    pub ic1: bool,
    /// IC2 holds (vacuously when the commander is a traitor).
    pub ic2: bool,
    /// Node-to-node messages delivered.
    pub messages: u64,
    /// Messages delivered per round.
    pub messages_per_round: Vec<u64>,
    /// Messages a complete run sends per round (OM only).
    pub expected_per_round: Vec<u64>,
    /// Messages rejected by lieutenants (SM: bad signatures or paths).
    pub rejected: u64,
    /// SM messages scripted traitors sent with chains they did not hold (altered or forged):
    /// each must be among `rejected`.
    pub forged: u64,
    /// Messages refused because their MAC did not prove their sender.
    pub unauthenticated: u64,
    /// Why IC1 or IC2 failed, one line per condition.
    pub problems: Vec<String>,
    /// Holds, violated or void.
    pub verdict: Verdict,
    /// Why the run is void, one line per cause (empty unless it is).
    pub void_reasons: Vec<String>,
    /// The round timeout of the run, in milliseconds.
    pub round_timeout_ms: u64,
    /// Why the run is void, as `void_reasons` says it, each cause with its kind (`down`,
    /// `late`, ...), the nodes it struck and the one remedy that fits (empty unless void).
    pub causes: Vec<Cause>,
}

impl Report {
    /// The report of `facts` judged as `judgement` (see [`report`] for both steps at once).
    pub(crate) fn new(facts: Facts, judgement: Judgement) -> Self {
        Report {
            messages: facts.messages_per_round.iter().sum(),
            behaviours: facts
                .traitors
                .iter()
                .map(|(n, why)| (n.clone(), why.to_string()))
                .collect(),
            traitors: facts.traitors.into_keys().collect(),
            protocol: facts.protocol,
            run: facts.run,
            seed: facts.seed,
            n: facts.n,
            m: facts.m,
            commander: facts.commander,
            order: facts.order,
            decisions: judgement.loyal_decisions,
            traitor_decisions: judgement.traitor_decisions,
            ic1: judgement.ic1,
            ic2: judgement.ic2,
            messages_per_round: facts.messages_per_round,
            expected_per_round: facts.expected_per_round,
            rejected: facts.rejected,
            forged: facts.forged,
            unauthenticated: facts.unauthenticated,
            problems: judgement.problems,
            verdict: judgement.verdict,
            void_reasons: judgement.void_reasons,
            round_timeout_ms: facts.round_timeout_ms,
            causes: judgement.causes,
        }
    }

    /// Both conditions hold (and the run is not void).
    pub fn holds(&self) -> bool {
        self.verdict == Verdict::Holds
    }

    /// The simulation broke the algorithm's assumptions: the run shows nothing.
    pub fn is_void(&self) -> bool {
        self.verdict == Verdict::Void
    }

    /// The client's exit code: 0 holds, 1 violated, 3 void (2 is for refused runs).
    pub(crate) fn exit_code(&self) -> u8 {
        self.verdict.exit_code()
    }

    /// One JSON object.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report for people: the run, who decided what, the message counts, then either
    /// why the run is void or the two conditions.
    pub fn human(&self) -> String {
        let mut out = self.human_run();
        out += &self.human_messages();
        out += &if self.is_void() {
            self.human_void()
        } else {
            self.human_conditions()
        };
        out
    }

    /// The run's parameters, its traitors and the lieutenants' decisions.
    fn human_run(&self) -> String {
        let mut out = format!(
            "{}({}) with n={} nodes, commander {} orders {} (run {}, seed {})\n",
            self.protocol.name().to_uppercase(),
            self.m,
            self.n,
            self.commander,
            self.order,
            self.run,
            self.seed
        );
        if self.traitors.is_empty() {
            out += "traitors: none\n";
        } else {
            let t: Vec<String> = self
                .traitors
                .iter()
                .map(|n| {
                    let why = self.behaviours.get(n).map_or("?", String::as_str);
                    format!("{n} ({why})")
                })
                .collect();
            out += &format!("traitors: {}\n", t.join(", "));
        }
        for (n, d) in &self.decisions {
            out += &format!("  {n} decided {d}\n");
        }
        for (n, d) in &self.traitor_decisions {
            out += &format!("  {n} decided {d} (traitor, not counted)\n");
        }
        out
    }

    /// Messages per round, measured against what a complete run sends when that is known.
    fn human_messages(&self) -> String {
        let mut out = String::from("messages per round (measured / expected):");
        for (i, measured) in self.messages_per_round.iter().enumerate() {
            match self.expected_per_round.get(i) {
                Some(e) => out += &format!(" r{}: {measured}/{e}", i + 1),
                None => out += &format!(" r{}: {measured}", i + 1),
            }
        }
        let expected: u64 = self.expected_per_round.iter().sum();
        if self.expected_per_round.is_empty() {
            out += &format!("; total {}\n", self.messages);
        } else {
            out += &format!("; total {}/{expected}\n", self.messages);
        }
        if self.rejected > 0 {
            out += &format!(
                "rejected messages (bad signature or path): {}\n",
                self.rejected
            );
        }
        if self.forged > 0 {
            out += &format!(
                "forged or altered messages sent by scripted traitors: {}\n",
                self.forged
            );
        }
        if self.unauthenticated > 0 {
            out += &format!(
                "messages refused as not from their claimed sender (bad MAC): {}\n",
                self.unauthenticated
            );
        }
        out
    }

    /// A void run judges nothing: each cause once, with what fits it (a remedy two causes
    /// share is said once, after the second).
    fn human_void(&self) -> String {
        let mut out = format!(
            "VOID: the run shows nothing about the algorithm (it assumes every loyal node's \
             messages\ndelivered within its round, here {} ms):\n",
            self.round_timeout_ms
        );
        for (i, c) in self.causes.iter().enumerate() {
            out += &format!("  {}\n", c.what);
            let said_later = self.causes[i + 1..].iter().any(|l| l.remedy == c.remedy);
            if !c.remedy.is_empty() && !said_later {
                out += &format!("  -> {}\n", c.remedy);
            }
        }
        out
    }

    /// IC1 and IC2, and why each failed.
    fn human_conditions(&self) -> String {
        let verdict = |ok: bool| if ok { "holds" } else { "VIOLATED" };
        let mut out = format!("IC1 (loyal lieutenants agree): {}\n", verdict(self.ic1));
        out += &format!(
            "IC2 (loyal commander obeyed): {}{}\n",
            verdict(self.ic2),
            if self.traitors.contains(&self.commander) {
                " (commander is a traitor)"
            } else {
                ""
            }
        );
        for p in &self.problems {
            out += &format!("{p}\n");
        }
        if (!self.ic1 || !self.ic2) && self.traitors.len() > self.m {
            // Not the algorithm's failure: its promise holds for at most m traitors.
            let name = self.protocol.name().to_uppercase();
            out += &format!(
                "Why: {} traitors ({}), more than m = {}: {name}({}) promises IC1 and IC2 \
                 only with at most {} traitors (try -m {}, with enough nodes).\n",
                self.traitors.len(),
                self.traitors.join(", "),
                self.m,
                self.m,
                self.m,
                self.traitors.len(),
            );
        }
        out
    }
}

/// Judge `facts` and report both.
pub(crate) fn report(facts: Facts) -> Report {
    let judgement = judge(&facts);
    Report::new(facts, judgement)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// An OM(1) run of 4 nodes, commander C ordering attack, with these traitors (declared
    /// `two-faced`) and lieutenants' decisions.
    fn facts(traitors: &[&str], decisions: &[(&str, &str)]) -> Facts {
        Facts {
            protocol: Protocol::Om,
            run: "r".into(),
            seed: 1,
            n: 4,
            m: 1,
            commander: "C".into(),
            order: "attack".into(),
            round_timeout_ms: 0,
            traitors: traitors
                .iter()
                .map(|t| (t.to_string(), Faulty::Behaviour("two-faced".into())))
                .collect(),
            decisions: map(decisions),
            messages_per_round: Vec::new(),
            expected_per_round: Vec::new(),
            rejected: 0,
            forged: 0,
            unauthenticated: 0,
            undelivered: Vec::new(),
            late: Vec::new(),
            undecided: Vec::new(),
        }
    }

    /// A node lost at `step` with `problem` (its error: `timed out`).
    fn lost(step: Step, problem: Problem) -> Faulty {
        Faulty::Failed(Failure {
            step,
            problem,
            error: "timed out".into(),
        })
    }

    /// Silent in round `r` of a run with 200 ms rounds, measured to need `took_ms`.
    fn silent(r: usize, took_ms: Option<u64>) -> Faulty {
        lost(
            Step::Round(r),
            Problem::Late {
                waited_ms: 200,
                took_ms,
                silent_ms: 2200,
            },
        )
    }

    #[test]
    fn verdicts() {
        let j = judge(&facts(
            &["B"],
            &[("A", "attack"), ("B", "retreat"), ("D", "attack")],
        ));
        assert!(j.ic1 && j.ic2, "{:?}", j.problems);
        assert_eq!(j.loyal_decisions.len(), 2);
        assert_eq!(j.traitor_decisions, map(&[("B", "retreat")]));
        let j = judge(&facts(&[], &[("A", "attack"), ("B", "retreat")]));
        assert!(!j.ic1 && !j.ic2);
        assert!(
            j.problems[0].contains("A decided attack; B decided retreat"),
            "{:?}",
            j.problems
        );
        // A traitorous commander: IC2 holds vacuously, IC1 still required.
        let r = report(facts(&["C"], &[("A", "retreat"), ("B", "retreat")]));
        assert!(r.ic1 && r.ic2);
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(
            (json["verdict"].as_str(), r.exit_code()),
            (Some("holds"), 0)
        );
        for key in [
            "verdict",
            "void_reasons",
            "protocol",
            "n",
            "m",
            "commander",
            "order",
            "traitors",
            "decisions",
            "ic1",
            "ic2",
            "messages",
            "messages_per_round",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn void_runs_judge_nothing() {
        // Even with decisions that would "violate" IC2, a void run reports void, exit 3.
        let mut f = facts(&[], &[("A", "attack"), ("B", "retreat")]);
        f.round_timeout_ms = 200;
        f.late.push(Late {
            at: "A".into(),
            from: "B".into(),
            count: 1,
        });
        let r = report(f);
        assert!(r.is_void() && !r.holds());
        assert_eq!((r.verdict, r.exit_code()), (Verdict::Void, 3));
        let text = r.human();
        assert!(text.contains("VOID"), "{text}");
        assert!(
            text.contains("1 message(s) of B (loyal) arrived at A"),
            "{text}"
        );
        assert!(
            text.contains("-> the machine was too busy: raise --round-timeout-ms to at least 400"),
            "{text}"
        );
        assert!(!text.contains("IC1"), "a void run judges nothing: {text}");
        // No loyal lieutenant decided: void, never "holds".
        let none = judge(&facts(&[], &[]));
        assert_eq!((none.verdict, none.verdict.exit_code()), (Verdict::Void, 3));
        assert!(
            none.void_reasons[0].contains("no loyal lieutenant decided"),
            "{:?}",
            none.void_reasons
        );
        let only_traitors = judge(&facts(&["A", "B", "D"], &[("A", "attack")]));
        assert_eq!(only_traitors.verdict, Verdict::Void, "{only_traitors:?}");
        // Without void reasons the same decisions are a violation, exit 1.
        let v = judge(&facts(&[], &[("A", "attack"), ("B", "retreat")]));
        assert_eq!((v.verdict, v.verdict.exit_code()), (Verdict::Violated, 1));
    }

    #[test]
    fn a_violation_with_more_than_m_traitors_says_why() {
        // Two traitors in OM(1): the loyal lieutenants may disagree; the report says that
        // the algorithm promised nothing, not only that IC1 failed.
        let r = report(facts(
            &["B", "D"],
            &[("A", "attack"), ("E", "retreat"), ("B", "attack")],
        ));
        assert!(!r.ic1, "{:?}", r.problems);
        let text = r.human();
        assert!(
            text.contains("Why: 2 traitors (B, D), more than m = 1: OM(1) promises IC1 and IC2"),
            "{text}"
        );
        // Within m, no such line.
        let r = report(facts(&["B"], &[("A", "attack"), ("E", "retreat")]));
        assert!(!r.ic1 && !r.human().contains("Why:"), "{}", r.human());
    }

    #[test]
    fn judging_reads_the_facts_and_changes_nothing() {
        let f = facts(&["B"], &[("A", "attack"), ("B", "retreat")]);
        let before = f.clone();
        assert_eq!(judge(&f), judge(&f));
        assert_eq!(f, before);
    }

    #[test]
    fn a_node_that_failed_is_faulty_and_the_run_is_judged_within_m() {
        // S stopped answering in round 1 of an all-loyal OM(1) run: faulty, as a crashed node
        // is; the others' messages to it failed, which is no fault of theirs.
        let mut f = facts(&[], &[("A", "attack"), ("B", "attack")]);
        f.traitors.insert("S".into(), silent(1, None));
        f.undelivered.push(Undelivered {
            round: 1,
            from: "A".into(),
            to: "S".into(),
            count: 1,
        });
        f.late.push(Late {
            at: "A".into(),
            from: "S".into(),
            count: 2,
        });
        let r = report(f.clone());
        assert_eq!(r.verdict, Verdict::Holds, "{:?}", r.void_reasons);
        assert_eq!(r.behaviours["S"], "silent in round 1");
        // A second failure exceeds m: nothing can be shown.
        f.traitors
            .insert("B".into(), lost(Step::Info, Problem::Down));
        let r = report(f.clone());
        assert_eq!(r.verdict, Verdict::Void);
        assert!(
            r.void_reasons[0].contains("more than m = 1"),
            "{:?}",
            r.void_reasons
        );
        // Declared traitors beyond m, none failed: judged (to watch the algorithm fail).
        let over = report(facts(&["A", "B"], &[("D", "attack"), ("E", "retreat")]));
        assert_ne!(over.verdict, Verdict::Void, "{:?}", over.void_reasons);
    }

    #[test]
    fn loyal_nodes_cut_off_or_late_void_the_run() {
        let mut f = facts(&[], &[("A", "attack"), ("B", "attack")]);
        f.undelivered.push(Undelivered {
            round: 2,
            from: "A".into(),
            to: "B".into(),
            count: 3,
        });
        let r = report(f);
        assert_eq!(r.verdict, Verdict::Void);
        assert_eq!(
            r.void_reasons,
            [
                "A (loyal) could not deliver 3 message(s) of round 2 to B (loyal), though both \
              answered every round in time"
            ]
        );
        let mut f = facts(&["D"], &[("A", "attack"), ("B", "attack")]);
        // Late at a traitor, or from one: nothing to judge by.
        f.late.push(Late {
            at: "D".into(),
            from: "A".into(),
            count: 1,
        });
        f.late.push(Late {
            at: "A".into(),
            from: "D".into(),
            count: 1,
        });
        assert_eq!(report(f.clone()).verdict, Verdict::Holds);
        f.late.push(Late {
            at: "B".into(),
            from: "A".into(),
            count: 1,
        });
        let r = report(f);
        assert_eq!(
            r.void_reasons,
            ["1 message(s) of A (loyal) arrived at B after their round had closed"]
        );
    }

    /// A declared traitor that fails (cut off, silent past its round) stays a declared
    /// traitor: with more traitors than m the run is outside the guarantee, never void
    /// because of them (the netns test's mid-run partition found it voided).
    #[test]
    fn a_traitor_that_fails_voids_nothing() {
        let mut f = facts(&["P"], &[("R", "retreat")]);
        f.traitors
            .insert("S".into(), Faulty::Behaviour("delay:700".into()));
        f.count_traitor("S", silent(1, None));
        assert_eq!(
            f.traitors["S"],
            Faulty::Behaviour("delay:700; then silent in round 1".into())
        );
        assert!(f.failed().is_empty());
        let r = report(f.clone());
        assert_ne!(r.verdict, Verdict::Void, "{:?}", r.void_reasons);
        // A loyal node that fails the same way is faulty by failure: beyond m, void.
        f.count_traitor("R", silent(1, None));
        assert_eq!(f.failed(), ["R"]);
        assert_eq!(report(f).verdict, Verdict::Void);
    }

    /// A void report names each cause once, with its nodes, what they were asked and the one
    /// remedy that fits; a node that answered is never called unreachable.
    #[test]
    fn each_cause_once_with_the_remedy_that_fits() {
        let with = |failures: &[(&str, Faulty)]| {
            let mut f = facts(&[], &[]);
            for (node, why) in failures {
                f.traitors.insert(node.to_string(), why.clone());
            }
            report(f)
        };
        let down = lost(Step::Info, Problem::Down);
        // Nothing answers: one cause for the four, start the cluster.
        let r = with(&[
            ("A", down.clone()),
            ("B", down.clone()),
            ("C", down.clone()),
            ("D", down.clone()),
        ]);
        let kinds: Vec<CauseKind> = r.causes.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [CauseKind::TooManyFaulty, CauseKind::Down]);
        assert_eq!(r.causes[1].nodes, ["A", "B", "C", "D"]);
        assert_eq!(r.causes[1].remedy, "start the cluster first");
        assert_eq!(r.human().matches("-> ").count(), 1, "{}", r.human());
        // Late in two rounds: what each needed, and one remedy fitting both (the slowest
        // needed 900 ms: half as much again, to a tenth of a second).
        let r = with(&[("A", silent(1, Some(300))), ("B", silent(2, Some(900)))]);
        let text = r.human();
        assert!(
            text.contains("A: no answer to om_round 1 within 200 ms (A answered after 300 ms)"),
            "{text}"
        );
        assert!(text.contains("B answered after 900 ms"), "{text}");
        assert_eq!(
            text.matches("-> the machine was too busy: raise --round-timeout-ms to at least 1400")
                .count(),
            1,
            "{text}"
        );
        assert!(!text.contains("unreachable"), "{text}");
        // A node that answered without the method, one whose run collided, one that faulted:
        // each its own cause, none called unreachable.
        let answered = |problem, error: &str| {
            Faulty::Failed(Failure {
                step: Step::Start,
                problem,
                error: error.into(),
            })
        };
        let r = with(&[
            (
                "A",
                answered(Problem::Lacks, "om_start: fault 1: not supported"),
            ),
            (
                "B",
                answered(
                    Problem::Collides,
                    "om_start: fault 1: run 'x' is not finished",
                ),
            ),
            (
                "C",
                answered(Problem::Failed, "om_start: fault 1: over budget"),
            ),
        ]);
        let remedies: Vec<&str> = r.causes.iter().map(|c| c.remedy.as_str()).collect();
        assert!(
            remedies[1].starts_with("host A with `server`"),
            "{remedies:?}"
        );
        assert!(remedies[2].contains("another --seed"), "{remedies:?}");
        assert!(r.causes[3].what.contains("over budget"), "{:?}", r.causes);
        assert!(!r.human().contains("unreachable"), "{}", r.human());
        for why in r.behaviours.values() {
            assert_eq!(why, "did not start the run");
        }
    }

    /// The report's bytes, text and JSON, as the client prints them (README, tests/*.rs).
    #[test]
    fn reports_keep_their_bytes() {
        let mut f = facts(&["S"], &[("A", "attack"), ("B", "retreat")]);
        f.traitors.insert("C".into(), Faulty::Undeclared);
        f.traitors.insert(
            "S".into(),
            Faulty::Failed(Failure {
                step: Step::Info,
                problem: Problem::Down,
                error: "node_info: connection refused".into(),
            }),
        );
        f.messages_per_round = vec![0, 1];
        f.expected_per_round = vec![3, 6];
        f.round_timeout_ms = 250;
        let r = report(f);
        assert_eq!(
            r.human(),
            "OM(1) with n=4 nodes, commander C orders attack (run r, seed 1)\n\
             traitors: C (?), S (unreachable)\n  \
             A decided attack\n  \
             B decided retreat\n\
             messages per round (measured / expected): r1: 0/3 r2: 1/6; total 1/9\n\
             VOID: the run shows nothing about the algorithm (it assumes every loyal node's \
             messages\ndelivered within its round, here 250 ms):\n  \
             2 of 4 nodes are faulty, more than m = 1, and 1 of them failed on their own (S): \
             no run can show anything\n  \
             S: no answer (node_info: connection refused)\n  \
             -> start S first, or leave it out of --nodes\n"
        );
        assert_eq!(
            r.to_json(),
            r#"{"protocol":"om","run":"r","seed":1,"n":4,"m":1,"commander":"C","order":"attack","traitors":["C","S"],"behaviours":{"C":"?","S":"unreachable"},"decisions":{"A":"attack","B":"retreat"},"traitor_decisions":{},"ic1":false,"ic2":true,"messages":1,"messages_per_round":[0,1],"expected_per_round":[3,6],"rejected":0,"forged":0,"unauthenticated":0,"problems":["IC1 violated: loyal lieutenants disagree: A decided attack; B decided retreat"],"verdict":"void","void_reasons":["2 of 4 nodes are faulty, more than m = 1, and 1 of them failed on their own (S): no run can show anything","S: no answer (node_info: connection refused)"],"round_timeout_ms":250,"causes":[{"kind":"too_many_faulty","nodes":["S"],"what":"2 of 4 nodes are faulty, more than m = 1, and 1 of them failed on their own (S): no run can show anything","remedy":""},{"kind":"down","nodes":["S"],"what":"S: no answer (node_info: connection refused)","remedy":"start S first, or leave it out of --nodes"}]}"#
        );
        let mut f = facts(&[], &[("A", "attack"), ("B", "retreat"), ("D", "retreat")]);
        f.protocol = Protocol::Sm;
        f.messages_per_round = vec![3, 4];
        f.rejected = 2;
        assert_eq!(
            report(f).human(),
            "SM(1) with n=4 nodes, commander C orders attack (run r, seed 1)\n\
             traitors: none\n  \
             A decided attack\n  \
             B decided retreat\n  \
             D decided retreat\n\
             messages per round (measured / expected): r1: 3 r2: 4; total 7\n\
             rejected messages (bad signature or path): 2\n\
             IC1 (loyal lieutenants agree): VIOLATED\n\
             IC2 (loyal commander obeyed): VIOLATED\n\
             IC1 violated: loyal lieutenants disagree: A decided attack; B, D decided retreat\n\
             IC2 violated: the commander C is loyal and ordered attack, but B decided retreat, \
             D decided retreat\n"
        );
    }
}
