//! The checker: did the loyal lieutenants reach interactive consistency?
//!
//! IC1: all loyal lieutenants decide the same value. IC2: if the commander is loyal, every
//! loyal lieutenant decides the commander's order. Pure: the driver gathers the [`Facts`] of a
//! run, [`judge`] turns them into a [`Judgement`], and a [`Report`] of both is what people
//! (text) and tools (JSON) read.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::calls::Protocol;

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
    /// Other causes of a void run the driver saw itself (a loyal node that answered its
    /// decide without a decision), one line each.
    pub(crate) void_reasons: Vec<String>,
    /// For each node that failed ([`Faulty::is_failure`]), what went wrong, in one line (the
    /// error of the call that failed): said when the run is void because of them.
    pub(crate) failures: BTreeMap<String, String>,
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
            (Some(declared @ (Faulty::Behaviour(_) | Faulty::Undeclared)), Faulty::Unreachable) => {
                declared
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
    /// It did not answer `node_info` (shown `unreachable`): a crash is one way to be faulty.
    Unreachable,
    /// It stopped doing its part during the run (no start, no order, a round not answered in
    /// time, lost before deciding): faulty for this run, as a crashed or silent node is.
    /// Shown as the short phrase it holds (`silent in round 2`).
    Failed(String),
}

impl Faulty {
    /// Faulty because it failed, not because it declared a traitor's behaviour.
    pub(crate) fn is_failure(&self) -> bool {
        matches!(self, Faulty::Unreachable | Faulty::Failed(_))
    }
}

impl fmt::Display for Faulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Faulty::Behaviour(b) => b,
            Faulty::Undeclared => "?",
            Faulty::Unreachable => "unreachable",
            Faulty::Failed(what) => what,
        })
    }
}

/// The three verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Verdict {
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
    /// Decisions of the loyal lieutenants: the ones judged.
    pub(crate) loyal_decisions: BTreeMap<String, String>,
    /// Decisions of the traitorous lieutenants (for reference; they do not count).
    pub(crate) traitor_decisions: BTreeMap<String, String>,
}

/// Why a run is void, from its facts: the simulation could not keep what the algorithm
/// assumes. A node that failed (unreachable, silent, lost) is faulty for the run, as a
/// crashed node is; that keeps the verdict true as long as the faulty nodes are at most m.
/// Beyond m, a run where some node failed on its own shows nothing. Between the nodes that
/// remained loyal, every message must have been delivered in its round: one that was not
/// (cut off), or was refused as late, voids the run.
fn void_reasons(facts: &Facts) -> Vec<String> {
    let mut out = Vec::new();
    let failed = facts.failed();
    if !failed.is_empty() && facts.traitors.len() > facts.m {
        let all: Vec<String> = (facts.traitors.iter())
            .map(|(n, why)| format!("{n} ({why})"))
            .collect();
        out.push(format!(
            "{} of {} nodes are faulty ({}), more than m = {}, and {} of them failed on their own \
             ({}): no run can show anything",
            facts.traitors.len(),
            facts.n,
            all.join(", "),
            facts.m,
            failed.len(),
            failed.join(", ")
        ));
        // What went wrong, once per distinct cause.
        let mut causes: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for node in &failed {
            if let Some(detail) = facts.failures.get(*node) {
                causes.entry(detail).or_default().push(node);
            }
        }
        for (detail, nodes) in causes {
            out.push(format!("{}: {detail}", nodes.join(", ")));
        }
    }
    for u in &facts.undelivered {
        if facts.is_loyal(&u.from) && facts.is_loyal(&u.to) {
            out.push(format!(
                "{} (loyal) could not deliver {} message(s) of round {} to {} (loyal), though \
                 both answered every round in time",
                u.from, u.count, u.round, u.to
            ));
        }
    }
    for l in &facts.late {
        if l.count > 0 && facts.is_loyal(&l.from) && facts.is_loyal(&l.at) {
            out.push(format!(
                "{} message(s) of {} (loyal) arrived at {} after their round had closed",
                l.count, l.from, l.at
            ));
        }
    }
    out.extend(facts.void_reasons.iter().cloned());
    out
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
    let mut void_reasons = void_reasons(facts);
    // Nothing to judge: IC1 and IC2 would hold vacuously, which says nothing.
    if loyal.is_empty() && void_reasons.is_empty() {
        void_reasons.push(
            "no loyal lieutenant decided (none answered its decide with a decision): the run \
             shows nothing about IC1 or IC2"
                .into(),
        );
    }
    let verdict = if !void_reasons.is_empty() {
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
        void_reasons,
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
    pub(crate) protocol: Protocol,
    /// Run identifier (shared by every node).
    pub(crate) run: String,
    /// Seed of the run.
    pub(crate) seed: u64,
    /// Number of nodes, commander included.
    pub(crate) n: usize,
    /// The `m` of OM(m) / SM(m).
    pub(crate) m: usize,
    /// The commander.
    pub(crate) commander: String,
    /// The commander's order.
    pub(crate) order: String,
    /// Nodes that lie, withhold or could not be reached, sorted.
    pub traitors: Vec<String>,
    /// Why each traitor is one: its behaviour, `?`, or `unreachable` ([`Faulty`]).
    pub(crate) behaviours: BTreeMap<String, String>,
    /// Decisions of the loyal lieutenants.
    pub(crate) decisions: BTreeMap<String, String>,
    /// Decisions of the traitorous lieutenants (for reference; they do not count).
    pub(crate) traitor_decisions: BTreeMap<String, String>,
    /// IC1 holds.
    pub(crate) ic1: bool,
    /// IC2 holds (vacuously when the commander is a traitor).
    pub(crate) ic2: bool,
    /// Node-to-node messages delivered.
    pub(crate) messages: u64,
    /// Messages delivered per round.
    pub(crate) messages_per_round: Vec<u64>,
    /// Messages a complete run sends per round (OM only).
    pub(crate) expected_per_round: Vec<u64>,
    /// Messages rejected by lieutenants (SM: bad signatures or paths).
    pub(crate) rejected: u64,
    /// SM messages scripted traitors sent with chains they did not hold (altered or forged):
    /// each must be among `rejected`.
    pub(crate) forged: u64,
    /// Messages refused because their MAC did not prove their sender.
    pub(crate) unauthenticated: u64,
    /// Why IC1 or IC2 failed, one line per condition.
    pub(crate) problems: Vec<String>,
    /// Holds, violated or void.
    pub(crate) verdict: Verdict,
    /// Why the run is void, one line per cause (empty unless it is).
    pub(crate) void_reasons: Vec<String>,
    /// The round timeout of the run, in milliseconds.
    pub(crate) round_timeout_ms: u64,
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
        }
    }

    /// Both conditions hold (and the run is not void).
    pub fn holds(&self) -> bool {
        self.verdict == Verdict::Holds
    }

    /// The simulation broke the algorithm's assumptions: the run shows nothing.
    pub(crate) fn is_void(&self) -> bool {
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

    /// A void run judges nothing: why it is void, and what to try.
    fn human_void(&self) -> String {
        let mut out = format!(
            "VOID: the simulation could not keep the algorithm's assumption (every loyal \
             node's messages\ndelivered within its round of {} ms); this run says nothing \
             about the algorithm:\n",
            self.round_timeout_ms
        );
        for r in &self.void_reasons {
            out += &format!("  {r}\n");
        }
        out += "Try a longer --round-timeout-ms, fewer nodes or a smaller -m, and check \
                that every\nnode is up and reachable.\n";
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
            void_reasons: Vec::new(),
            failures: BTreeMap::new(),
        }
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
        f.void_reasons
            .push("B (loyal) did not finish round 2 within 200 ms: timed out".into());
        let r = report(f);
        assert!(r.is_void() && !r.holds());
        assert_eq!((r.verdict, r.exit_code()), (Verdict::Void, 3));
        let text = r.human();
        assert!(text.contains("VOID"), "{text}");
        assert!(text.contains("B (loyal) did not finish round 2"), "{text}");
        assert!(text.contains("--round-timeout-ms"), "{text}");
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
        f.traitors
            .insert("S".into(), Faulty::Failed("silent in round 1".into()));
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
        f.traitors.insert("B".into(), Faulty::Unreachable);
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
        f.count_traitor("S", Faulty::Failed("silent in round 1".into()));
        f.failures
            .insert("S".into(), "silent in round 1: timed out".into());
        assert_eq!(
            f.traitors["S"],
            Faulty::Behaviour("delay:700; then silent in round 1".into())
        );
        assert!(f.failed().is_empty());
        let r = report(f.clone());
        assert_ne!(r.verdict, Verdict::Void, "{:?}", r.void_reasons);
        // A loyal node that fails the same way is faulty by failure: beyond m, void.
        f.count_traitor("R", Faulty::Failed("silent in round 1".into()));
        assert_eq!(f.failed(), ["R"]);
        assert_eq!(report(f).verdict, Verdict::Void);
    }

    /// The report's bytes, text and JSON, as the client prints them (README, tests/*.rs).
    #[test]
    fn reports_keep_their_bytes() {
        let mut f = facts(&["S"], &[("A", "attack"), ("B", "retreat")]);
        f.traitors.insert("C".into(), Faulty::Undeclared);
        f.traitors.insert("S".into(), Faulty::Unreachable);
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
             VOID: the simulation could not keep the algorithm's assumption (every loyal node's \
             messages\ndelivered within its round of 250 ms); this run says nothing about the \
             algorithm:\n  \
             2 of 4 nodes are faulty (C (?), S (unreachable)), more than m = 1, and 1 of them \
             failed on their own (S): no run can show anything\n\
             Try a longer --round-timeout-ms, fewer nodes or a smaller -m, and check that every\n\
             node is up and reachable.\n"
        );
        assert_eq!(
            r.to_json(),
            r#"{"protocol":"om","run":"r","seed":1,"n":4,"m":1,"commander":"C","order":"attack","traitors":["C","S"],"behaviours":{"C":"?","S":"unreachable"},"decisions":{"A":"attack","B":"retreat"},"traitor_decisions":{},"ic1":false,"ic2":true,"messages":1,"messages_per_round":[0,1],"expected_per_round":[3,6],"rejected":0,"forged":0,"unauthenticated":0,"problems":["IC1 violated: loyal lieutenants disagree: A decided attack; B decided retreat"],"verdict":"void","void_reasons":["2 of 4 nodes are faulty (C (?), S (unreachable)), more than m = 1, and 1 of them failed on their own (S): no run can show anything"],"round_timeout_ms":250}"#
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
