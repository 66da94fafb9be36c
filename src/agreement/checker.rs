//! The checker: did the loyal lieutenants reach interactive consistency?
//!
//! IC1: all loyal lieutenants decide the same value. IC2: if the commander is loyal, every
//! loyal lieutenant decides the commander's order. Pure: the driver collects the decisions,
//! this module judges them and renders the verdict for people (text) and tools (JSON).

use std::collections::BTreeMap;

use serde::Serialize;

/// Everything known about one finished run, and the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// `om` or `sm`.
    pub protocol: String,
    /// Run identifier (shared by every node).
    pub run: String,
    /// Seed of the run (random behaviours draw from it).
    pub seed: u64,
    /// Number of nodes, commander included.
    pub n: usize,
    /// The `m` of OM(m) / SM(m).
    pub m: usize,
    /// The commander.
    pub commander: String,
    /// The commander's order.
    pub order: String,
    /// Nodes that lie, withhold or could not be reached.
    pub traitors: Vec<String>,
    /// Behaviour of each traitor (`unreachable` for a node the driver could not reach).
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
    /// Messages a complete run sends per round (OM: (n-1)(n-2)...(n-k); SM: none fixed).
    pub expected_per_round: Vec<u64>,
    /// Messages rejected by lieutenants (SM: bad signatures or paths).
    pub rejected: u64,
    /// Why the verdict failed, one line per problem.
    pub problems: Vec<String>,
    /// `holds`, `violated`, or `void`: the simulation could not keep the algorithm's
    /// assumptions (a loyal node late, failing or lost), so the run shows nothing about it.
    pub verdict: String,
    /// Why the run is void, one line per cause (empty unless `verdict` is `void`).
    pub void_reasons: Vec<String>,
    /// The round timeout of the run, in milliseconds.
    pub round_timeout_ms: u64,
}

/// The three verdicts and the client's exit code for each.
pub mod verdict {
    /// IC1 and IC2 hold (exit 0).
    pub const HOLDS: &str = "holds";
    /// A condition is violated (exit 1).
    pub const VIOLATED: &str = "violated";
    /// The run is void (exit 3).
    pub const VOID: &str = "void";
}

/// Judge a run. `decisions` holds every lieutenant that answered; `traitors` every node that
/// is not loyal (including unreachable ones).
pub fn judge(mut outcome: Outcome, all_decisions: &BTreeMap<String, String>) -> Outcome {
    let commander_loyal = !outcome.traitors.contains(&outcome.commander);
    let (loyal, traitorous): (BTreeMap<_, _>, BTreeMap<_, _>) = all_decisions
        .iter()
        .filter(|(n, _)| **n != outcome.commander)
        .map(|(n, d)| (n.clone(), d.clone()))
        .partition(|(n, _)| !outcome.traitors.contains(n));
    let mut problems = Vec::new();
    let mut by_value: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (n, d) in &loyal {
        by_value.entry(d).or_default().push(n);
    }
    let ic1 = by_value.len() <= 1;
    if !ic1 {
        let groups: Vec<String> = by_value
            .iter()
            .map(|(v, ns)| format!("{} decided {v}", ns.join(", ")))
            .collect();
        problems.push(format!(
            "IC1 violated: loyal lieutenants disagree: {}",
            groups.join("; ")
        ));
    }
    let mut ic2 = true;
    if commander_loyal {
        let wrong: Vec<String> = loyal
            .iter()
            .filter(|(_, d)| **d != outcome.order)
            .map(|(n, d)| format!("{n} decided {d}"))
            .collect();
        if !wrong.is_empty() {
            ic2 = false;
            problems.push(format!(
                "IC2 violated: the commander {} is loyal and ordered {}, but {}",
                outcome.commander,
                outcome.order,
                wrong.join(", ")
            ));
        }
    }
    // Nothing to judge: IC1 and IC2 would hold vacuously, which says nothing.
    if loyal.is_empty() && outcome.void_reasons.is_empty() {
        outcome.void_reasons.push(
            "no loyal lieutenant decided (none answered its decide with a decision): the run \
             shows nothing about IC1 or IC2"
                .into(),
        );
    }
    outcome.decisions = loyal;
    outcome.traitor_decisions = traitorous;
    outcome.ic1 = ic1;
    outcome.ic2 = ic2;
    outcome.problems = problems;
    outcome.messages = outcome.messages_per_round.iter().sum();
    outcome.verdict = if !outcome.void_reasons.is_empty() {
        verdict::VOID
    } else if ic1 && ic2 {
        verdict::HOLDS
    } else {
        verdict::VIOLATED
    }
    .to_string();
    outcome
}

impl Outcome {
    /// An outcome with the run's facts and no verdict yet (see [`judge`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        protocol: &str,
        run: &str,
        seed: u64,
        n: usize,
        m: usize,
        commander: &str,
        order: &str,
    ) -> Self {
        Outcome {
            protocol: protocol.to_string(),
            run: run.to_string(),
            seed,
            n,
            m,
            commander: commander.to_string(),
            order: order.to_string(),
            traitors: Vec::new(),
            behaviours: BTreeMap::new(),
            decisions: BTreeMap::new(),
            traitor_decisions: BTreeMap::new(),
            ic1: false,
            ic2: false,
            messages: 0,
            messages_per_round: Vec::new(),
            expected_per_round: Vec::new(),
            rejected: 0,
            problems: Vec::new(),
            verdict: String::new(),
            void_reasons: Vec::new(),
            round_timeout_ms: 0,
        }
    }

    /// Both conditions hold (and the run is not void).
    pub fn holds(&self) -> bool {
        self.verdict == verdict::HOLDS
    }

    /// The simulation broke the algorithm's assumptions: the run shows nothing.
    pub fn is_void(&self) -> bool {
        self.verdict == verdict::VOID
    }

    /// The client's exit code: 0 holds, 1 violated, 3 void (2 is for refused runs).
    pub fn exit_code(&self) -> u8 {
        match self.verdict.as_str() {
            verdict::HOLDS => 0,
            verdict::VOID => 3,
            _ => 1,
        }
    }

    /// One JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report for people.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let proto = self.protocol.to_uppercase();
        out += &format!(
            "{proto}({}) with n={} nodes, commander {} orders {} (run {}, seed {})\n",
            self.m, self.n, self.commander, self.order, self.run, self.seed
        );
        if self.traitors.is_empty() {
            out += "traitors: none\n";
        } else {
            let t: Vec<String> = self
                .traitors
                .iter()
                .map(|n| {
                    format!(
                        "{n} ({})",
                        self.behaviours.get(n).map_or("?", String::as_str)
                    )
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
        out += "messages per round (measured / expected):";
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
        if self.is_void() {
            out += &format!(
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
            return out;
        }
        let verdict = |ok: bool| if ok { "holds" } else { "VIOLATED" };
        out += &format!("IC1 (loyal lieutenants agree): {}\n", verdict(self.ic1));
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
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(traitors: &[&str]) -> Outcome {
        let mut o = Outcome::new("om", "r", 1, 4, 1, "C", "attack");
        o.traitors = traitors.iter().map(|s| s.to_string()).collect();
        o
    }

    fn decisions(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn verdicts() {
        let o = judge(
            outcome(&["B"]),
            &decisions(&[("A", "attack"), ("B", "retreat"), ("D", "attack")]),
        );
        assert!(o.ic1 && o.ic2, "{:?}", o.problems);
        assert_eq!(o.decisions.len(), 2);
        let o = judge(
            outcome(&[]),
            &decisions(&[("A", "attack"), ("B", "retreat")]),
        );
        assert!(!o.ic1 && !o.ic2);
        assert!(
            o.problems[0].contains("A decided attack; B decided retreat"),
            "{:?}",
            o.problems
        );
        // A traitorous commander: IC2 holds vacuously, IC1 still required.
        let o = judge(
            outcome(&["C"]),
            &decisions(&[("A", "retreat"), ("B", "retreat")]),
        );
        assert!(o.ic1 && o.ic2);
        let json: serde_json::Value = serde_json::from_str(&o.to_json()).unwrap();
        assert_eq!((o.verdict.as_str(), o.exit_code()), ("holds", 0));
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
        let mut o = outcome(&[]);
        o.round_timeout_ms = 200;
        o.void_reasons
            .push("B (loyal) did not finish round 2 within 200 ms: timed out".into());
        let o = judge(o, &decisions(&[("A", "attack"), ("B", "retreat")]));
        assert!(o.is_void() && !o.holds());
        assert_eq!((o.verdict.as_str(), o.exit_code()), ("void", 3));
        let text = o.human();
        assert!(text.contains("VOID"), "{text}");
        assert!(text.contains("B (loyal) did not finish round 2"), "{text}");
        assert!(text.contains("--round-timeout-ms"), "{text}");
        assert!(!text.contains("IC1"), "a void run judges nothing: {text}");
        // No loyal lieutenant decided: void, never "holds".
        let none = judge(outcome(&[]), &BTreeMap::new());
        assert_eq!((none.verdict.as_str(), none.exit_code()), ("void", 3));
        assert!(
            none.void_reasons[0].contains("no loyal lieutenant decided"),
            "{:?}",
            none.void_reasons
        );
        let only_traitors = judge(outcome(&["A", "B", "D"]), &decisions(&[("A", "attack")]));
        assert!(only_traitors.is_void(), "{only_traitors:?}");
        // Without void reasons the same decisions are a violation, exit 1.
        let v = judge(
            outcome(&[]),
            &decisions(&[("A", "attack"), ("B", "retreat")]),
        );
        assert_eq!((v.verdict.as_str(), v.exit_code()), ("violated", 1));
    }
}
