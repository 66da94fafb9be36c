//! The adversary that tries every lie (`client explore --adversary all|fuzz`): instead of a few
//! fixed behaviours, each traitor sends, for every message it could send, a value the
//! explorer chose (`attack`, `retreat`, or nothing), through a `script:` behaviour
//! ([`crate::behaviour::Script`]), and every case is a real run over XML-RPC on the
//! explorer's in-process clusters.
//!
//! The messages a traitor can send (its *slots*) come from the protocol's structure, not from
//! a run: the commander sends `[C]` to every lieutenant; a lieutenant `t` sends every path
//! `[C, x1, ..., xk, t]` (k < m, distinct lieutenants other than `t`) to every node not on it.
//! A *strategy* gives each slot of each traitor one of three choices: digit 0 the order (what
//! a loyal node of a loyal run sends), 1 the opposite order, 2 nothing. Digits other than 0
//! are the strategy's *lies*.
//!
//! Case ids, printed by the report and taken by `--case` (with the same `--protocol`, `-n`,
//! `-m` and `--orders`):
//! - `ORDER:TRAITORS:INDEX` (`--adversary all`): the order, the traitors joined by `+` (or
//!   `none`), and the strategy's number, its digits in base 3 with the first slot least
//!   significant. Cases run orders in the given order, then placements by number of traitors
//!   and lexicographically, then strategies by number.
//! - `fuzz:SEED:I` (`--adversary fuzz`): the `I`-th random strategy of seed `SEED`: order,
//!   number of traitors (1..=m), placement and every digit drawn from [`entropy`]`(SEED,
//!   ["fuzz", I])` through SplitMix64.
//!
//! SM: a scripted traitor sends a value along a path with the signatures it holds for it (the
//! commander holds all of its own); otherwise it alters a chain it holds for the other value,
//! or forges one with its own key. Receivers must reject those; the nodes count both
//! (`forged`, `rejected`) and a case where fewer were rejected than forged is reported.
//! Traitors share only what the protocol carries: a traitor holds the chains it received.

use std::sync::Arc;

use super::driver::DriveError;
use super::explore::{self, Case, Explore};
use crate::agreement::checker::Report;
use crate::behaviour::{Behaviour, Script, entropy, mix, opposite};

/// How strategies are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// Every strategy of every placement and order.
    All,
    /// `--cases` random strategies drawn from `--seed`.
    Fuzz,
}

/// What to hunt.
#[derive(Debug, Clone)]
pub(crate) struct Hunt {
    /// The cluster and runs (its `behaviours` are not used).
    pub(crate) explore: Explore,
    /// All or fuzz.
    pub(crate) mode: Mode,
    /// Fuzz: strategies to run.
    pub(crate) cases: u64,
    /// All: refuse a space larger than this.
    pub(crate) max_cases: u64,
    /// Run only this case id.
    pub(crate) case: Option<String>,
}

/// Default of `--max-cases`.
pub(crate) const DEFAULT_MAX_CASES: u64 = 100_000;

/// One message a traitor may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The path, commander first, the sender last; its round is its length.
    pub(crate) path: Vec<String>,
    /// The receiver.
    pub(crate) to: String,
}

/// The slots of `traitor` in a run of `m` among `nodes` commanded by `commander`, in a fixed
/// order: by round, then path and receiver in the nodes' order.
pub(crate) fn slots(nodes: &[String], commander: &str, m: usize, traitor: &str) -> Vec<Slot> {
    let mut out = Vec::new();
    let receivers = |path: &[String], out: &mut Vec<Slot>| {
        for to in nodes.iter().filter(|n| !path.contains(n)) {
            out.push(Slot {
                path: path.to_vec(),
                to: to.clone(),
            });
        }
    };
    if traitor == commander {
        receivers(&[commander.to_string()], &mut out);
        return out;
    }
    let middle: Vec<&String> = (nodes.iter())
        .filter(|n| *n != commander && *n != traitor)
        .collect();
    // Paths [C, x1..xk, t], k = 0..m-1, by length then in the nodes' order.
    let mut frontier: Vec<Vec<String>> = vec![vec![commander.to_string()]];
    for _ in 0..m {
        let mut next = Vec::new();
        for prefix in &frontier {
            let mut path = prefix.clone();
            path.push(traitor.to_string());
            receivers(&path, &mut out);
            for x in &middle {
                if !prefix.contains(x) {
                    let mut longer = prefix.clone();
                    longer.push((*x).clone());
                    next.push(longer);
                }
            }
        }
        frontier = next;
    }
    out
}

/// One traitor message of a strategy: the slot, what is sent (`None`: nothing), and what a
/// loyal node of a loyal run sends there (the order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// Path and receiver.
    pub(crate) slot: Slot,
    /// The value sent, or nothing.
    pub(crate) value: Option<String>,
    /// The order: what the message would carry in a loyal run.
    pub(crate) honest: String,
}

impl Message {
    /// Whether it differs from the loyal run's message.
    pub(crate) fn is_lie(&self) -> bool {
        self.value.as_deref() != Some(self.honest.as_str())
    }
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "round {}: {} -> {}: {}",
            self.slot.path.len(),
            self.slot.path.join(">"),
            self.slot.to,
            self.value.as_deref().unwrap_or("nothing")
        )?;
        if self.is_lie() {
            write!(f, " (LIE: a loyal node sends {})", self.honest)?;
        }
        Ok(())
    }
}

/// One case of the hunt: the order, the traitors and every message they send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Strategy {
    /// The case id (see the module doc).
    pub(crate) id: String,
    /// The commander's order.
    pub(crate) order: String,
    /// The traitors, in the nodes' order.
    pub(crate) traitors: Vec<String>,
    /// Every message of every traitor, slot by slot.
    pub(crate) messages: Vec<Message>,
}

impl Strategy {
    /// Messages that differ from a loyal run's.
    pub(crate) fn lies(&self) -> usize {
        self.messages.iter().filter(|m| m.is_lie()).count()
    }

    /// The explorer's case: each traitor scripted with its own messages.
    pub(crate) fn case(&self, seed: u64) -> Case {
        let traitors = (self.traitors.iter())
            .map(|t| {
                let mut script = Script::new();
                for msg in (self.messages.iter()).filter(|x| x.slot.path.last() == Some(t)) {
                    script.set(
                        msg.slot.path.clone(),
                        msg.slot.to.clone(),
                        msg.value.clone(),
                    );
                }
                (t.clone(), Behaviour::Script(Arc::new(script)))
            })
            .collect();
        Case {
            traitors,
            order: self.order.clone(),
            seed,
        }
    }
}

/// The run's shape: nodes, commander, m, orders, and who may turn traitor (every node but
/// those under test).
struct StrategySpace {
    nodes: Vec<String>,
    candidates: Vec<String>,
    m: usize,
    orders: Vec<String>,
}

impl StrategySpace {
    fn of(e: &Explore) -> StrategySpace {
        StrategySpace {
            nodes: explore::names(e.n),
            candidates: e.candidates(),
            m: e.m,
            orders: e.orders.clone(),
        }
    }

    fn commander(&self) -> &str {
        &self.nodes[0]
    }

    fn slots(&self, traitors: &[String]) -> Vec<Slot> {
        (traitors.iter())
            .flat_map(|t| slots(&self.nodes, self.commander(), self.m, t))
            .collect()
    }

    /// Placements of 0..=m traitors, by number then lexicographically.
    fn placements(&self) -> Vec<Vec<String>> {
        let pool = &self.candidates;
        (0..=self.m.min(pool.len()))
            .flat_map(|k| explore::combinations(pool.len(), k))
            .map(|ix| ix.into_iter().map(|i| pool[i].clone()).collect())
            .collect()
    }

    fn strategy(&self, id: String, order: &str, traitors: Vec<String>, digits: &[u8]) -> Strategy {
        let messages = (self.slots(&traitors).into_iter())
            .zip(digits.iter().copied().chain(std::iter::repeat(0)))
            .map(|(slot, d)| Message {
                slot,
                value: match d {
                    0 => Some(order.to_string()),
                    1 => Some(opposite(order).to_string()),
                    _ => None,
                },
                honest: order.to_string(),
            })
            .collect();
        Strategy {
            id,
            order: order.to_string(),
            traitors,
            messages,
        }
    }

    /// The `index`-th strategy of a placement, digits in base 3, first slot least significant.
    fn numbered(&self, order: &str, traitors: Vec<String>, index: u128) -> Strategy {
        let count = self.slots(&traitors).len();
        let mut rest = index;
        let digits: Vec<u8> = (0..count)
            .map(|_| {
                let d = (rest % 3) as u8;
                rest /= 3;
                d
            })
            .collect();
        let id = format!("{order}:{}:{index}", traitors_id(&traitors));
        self.strategy(id, order, traitors, &digits)
    }

    /// The `i`-th random strategy of `seed`.
    fn fuzzed(&self, seed: u64, i: u64) -> Strategy {
        let mut state = entropy(seed, &["fuzz", &i.to_string()]);
        let mut next = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            mix(state)
        };
        let order = self.orders[(next() % self.orders.len() as u64) as usize].clone();
        let n = self.candidates.len();
        let most = self.m.min(n);
        let k = if most == 0 {
            0
        } else {
            1 + (next() % most as u64) as usize
        };
        // A partial Fisher-Yates shuffle picks k of the n nodes.
        let mut pool: Vec<usize> = (0..n).collect();
        for j in 0..k {
            let pick = j + (next() % (n - j) as u64) as usize;
            pool.swap(j, pick);
        }
        let mut chosen = pool[..k].to_vec();
        chosen.sort_unstable();
        let traitors: Vec<String> = chosen.iter().map(|&i| self.candidates[i].clone()).collect();
        let digits: Vec<u8> = (0..self.slots(&traitors).len())
            .map(|_| (next() % 3) as u8)
            .collect();
        self.strategy(format!("fuzz:{seed}:{i}"), &order, traitors, &digits)
    }

    /// Strategies of one placement: 3^slots (saturating).
    fn strategies_of(&self, traitors: &[String]) -> u128 {
        3u128.saturating_pow(u32::try_from(self.slots(traitors).len()).unwrap_or(u32::MAX))
    }

    /// The whole space: orders x sum over placements of 3^slots.
    fn space(&self) -> u128 {
        (self.placements().iter())
            .map(|p| self.strategies_of(p))
            .fold(0u128, u128::saturating_add)
            .saturating_mul(self.orders.len() as u128)
    }

    /// Parse a case id (see the module doc).
    fn parse(&self, id: &str) -> Result<Strategy, CaseIdError> {
        let parts: Vec<&str> = id.split(':').collect();
        let bad = |why: &str| CaseIdError {
            id: id.to_string(),
            why: why.to_string(),
        };
        match parts.as_slice() {
            ["fuzz", seed, i] => {
                let seed = seed.parse().map_err(|_| bad("SEED is not a u64"))?;
                let i = i.parse().map_err(|_| bad("I is not a u64"))?;
                Ok(self.fuzzed(seed, i))
            }
            [order, traitors, index] => {
                if !self.orders.iter().any(|o| o == order) {
                    return Err(bad(&format!("{order} is not one of --orders")));
                }
                let traitors: Vec<String> = match *traitors {
                    "none" => Vec::new(),
                    list => list.split('+').map(str::to_string).collect(),
                };
                let mut ix: Vec<usize> = Vec::new();
                for t in &traitors {
                    let i = (self.nodes.iter().position(|n| n == t))
                        .ok_or_else(|| bad(&format!("{t} is not one of the nodes")))?;
                    if !self.candidates.contains(t) {
                        return Err(bad(&format!("{t} is under test: it is never a traitor")));
                    }
                    ix.push(i);
                }
                if ix.windows(2).any(|w| w[0] >= w[1]) || traitors.len() > self.m {
                    return Err(bad(&format!(
                        "the traitors must be distinct, in the nodes' order, at most m = {}",
                        self.m
                    )));
                }
                let index: u128 = index.parse().map_err(|_| bad("INDEX is not a number"))?;
                let count = self.strategies_of(&traitors);
                if index >= count {
                    return Err(bad(&format!(
                        "this placement has {count} strategies (0..{count})"
                    )));
                }
                Ok(self.numbered(order, traitors, index))
            }
            _ => Err(bad("not three fields")),
        }
    }
}

fn traitors_id(traitors: &[String]) -> String {
    if traitors.is_empty() {
        "none".into()
    } else {
        traitors.join("+")
    }
}

/// The strategy space of `--adversary all`: every order, placement of up to m traitors and
/// assignment of the three choices to every traitor message.
#[cfg(test)]
pub(crate) fn space(e: &Explore) -> u128 {
    StrategySpace::of(e).space()
}

/// The strategy space as an exact decimal: it outgrows every integer type (OM(3) over 10
/// nodes has over 3^1200 strategies), and [`space`] saturates.
pub(crate) fn space_text(e: &Explore) -> String {
    let shape = StrategySpace::of(e);
    let mut total = Decimal::from(0);
    for p in shape.placements() {
        let mut power = Decimal::from(1);
        let mut left = shape.slots(&p).len();
        while left > 0 {
            // 3^19 is the largest power of 3 below 2^31: fewer passes over the limbs.
            let step = left.min(19);
            power.mul(3u64.pow(step as u32));
            left -= step;
        }
        total.add(&power);
    }
    total.mul(shape.orders.len() as u64);
    total.to_string()
}

/// A natural number in base 10^9 limbs, least significant first: just enough arithmetic
/// (add, multiply by a small number, print) to count a strategy space exactly.
struct Decimal(Vec<u64>);

const LIMB: u64 = 1_000_000_000;

impl Decimal {
    fn from(n: u64) -> Decimal {
        let mut d = Decimal(vec![0]);
        d.add(&Decimal(vec![n % LIMB, n / LIMB % LIMB, n / LIMB / LIMB]));
        d
    }

    fn add(&mut self, other: &Decimal) {
        let mut carry = 0;
        for i in 0..self.0.len().max(other.0.len()) {
            if i == self.0.len() {
                self.0.push(0);
            }
            let sum = self.0[i] + other.0.get(i).copied().unwrap_or(0) + carry;
            self.0[i] = sum % LIMB;
            carry = sum / LIMB;
        }
        if carry > 0 {
            self.0.push(carry);
        }
    }

    /// Multiply by `k` < 2^32.
    fn mul(&mut self, k: u64) {
        let mut carry = 0;
        for limb in &mut self.0 {
            let product = *limb * k + carry;
            *limb = product % LIMB;
            carry = product / LIMB;
        }
        while carry > 0 {
            self.0.push(carry % LIMB);
            carry /= LIMB;
        }
    }
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut limbs = self.0.iter().rev().skip_while(|&&l| l == 0);
        match limbs.next() {
            None => f.write_str("0"),
            Some(first) => {
                write!(f, "{first}")?;
                limbs.try_for_each(|l| write!(f, "{l:09}"))
            }
        }
    }
}

/// A `--case` id that names no case of the exploration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--case {id}: {why}; a case id is ORDER:TRAITORS:INDEX (e.g. attack:Q:1) or fuzz:SEED:I, \
     as the report prints it"
)]
pub(crate) struct CaseIdError {
    /// The id given.
    pub(crate) id: String,
    /// What is wrong with it.
    pub(crate) why: String,
}

/// The strategy of a case id.
#[cfg(test)]
pub(crate) fn parse_case(e: &Explore, id: &str) -> Result<Strategy, CaseIdError> {
    StrategySpace::of(e).parse(id)
}

/// What a hunt found.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The strategy space (`--adversary all`'s count), whatever was run, exact in decimal.
    pub(crate) space: String,
    /// Cases run.
    pub(crate) cases: u64,
    /// Cases where IC1 and IC2 held.
    pub(crate) held: u64,
    /// Cases where one was violated.
    pub(crate) violated: u64,
    /// Void cases (a loyal node late or lost): they show nothing.
    pub(crate) void: u64,
    /// Strategies skipped as equivalent to one run (none: every strategy runs).
    pub(crate) skipped: u64,
    /// SM: messages traitors sent with chains they did not hold.
    pub(crate) forged: u64,
    /// SM: messages rejected by their receivers.
    pub(crate) rejected: u64,
    /// SM: cases where fewer messages were rejected than forged (a forgery got through).
    pub(crate) forgeries_accepted: u64,
    /// The violated case with the fewest lies (the first such in case order), with its run.
    pub(crate) counterexample: Option<(Strategy, Report)>,
    /// The one case run by `--case`, with its run.
    pub(crate) replayed: Option<(Strategy, Report)>,
}

impl Found {
    /// 0 every case holds, 1 a counterexample or an accepted forgery, 3 none but some void.
    pub(crate) fn exit_code(&self) -> u8 {
        if self.violated > 0 || self.forgeries_accepted > 0 {
            1
        } else if self.void > 0 {
            3
        } else {
            0
        }
    }
}

/// Why a hunt is refused.
pub(crate) fn too_many(space: &str, max: u64) -> DriveError {
    DriveError::Invalid(format!(
        "--adversary all would run {space} strategies, more than --max-cases {max}; use \
         --adversary fuzz --cases N for a sample, fewer nodes or a smaller -m, or raise \
         --max-cases"
    ))
}

/// Run the hunt: every strategy, N random ones, or the one `--case` names; `progress(done,
/// total)` after each case.
pub(crate) async fn hunt(
    h: &Hunt,
    progress: impl FnMut(usize, usize),
) -> Result<Found, DriveError> {
    let shape = Arc::new(StrategySpace::of(&h.explore));
    if shape.orders.is_empty() {
        return Err(DriveError::Invalid("--orders is empty".into()));
    }
    explore::check(&h.explore)?;
    let space = shape.space();
    let (count, pick): (usize, Arc<dyn Fn(usize) -> Strategy + Send + Sync>) = match &h.case {
        Some(id) => {
            let s = shape
                .parse(id)
                .map_err(|e| DriveError::Invalid(e.to_string()))?;
            (1, Arc::new(move |_| s.clone()))
        }
        None if h.mode == Mode::Fuzz => {
            let (seed, shape) = (h.explore.seed, shape.clone());
            let count = usize::try_from(h.cases).unwrap_or(usize::MAX);
            (count, Arc::new(move |i| shape.fuzzed(seed, i as u64)))
        }
        None => {
            if space > u128::from(h.max_cases) {
                return Err(too_many(&space_text(&h.explore), h.max_cases));
            }
            // Where each placement's strategies start in the case order.
            let mut starts = Vec::new();
            let mut at = 0u128;
            for order in &shape.orders {
                for p in shape.placements() {
                    starts.push((at, order.clone(), p.clone()));
                    at += shape.strategies_of(&p);
                }
            }
            let shape = shape.clone();
            let pick = move |i: usize| {
                let i = i as u128;
                let k = starts.partition_point(|(s, _, _)| *s <= i) - 1;
                let (start, order, p) = &starts[k];
                shape.numbered(order, p.clone(), i - start)
            };
            (at as usize, Arc::new(pick))
        }
    };
    let mut found = Found {
        space: space_text(&h.explore),
        cases: 0,
        held: 0,
        violated: 0,
        void: 0,
        skipped: 0,
        forged: 0,
        rejected: 0,
        forgeries_accepted: 0,
        counterexample: None,
        replayed: None,
    };
    let replay = h.case.is_some();
    let seed = h.explore.seed;
    let make = {
        let pick = pick.clone();
        move |i: usize| pick(i).case(seed.wrapping_add(i as u64))
    };
    let mut best: Option<(usize, usize)> = None; // (lies, index) of the counterexample
    explore::run_cases(&h.explore, count, make, progress, |i, outcome| {
        found.cases += 1;
        found.forged += outcome.forged;
        found.rejected += outcome.rejected;
        found.forgeries_accepted += u64::from(outcome.rejected < outcome.forged);
        if replay {
            found.replayed = Some((pick(i), outcome.clone()));
        }
        if outcome.is_void() {
            found.void += 1;
        } else if outcome.holds() {
            found.held += 1;
        } else {
            found.violated += 1;
            let s = pick(i);
            let key = (s.lies(), i);
            if best.is_none_or(|b| key < b) {
                best = Some(key);
                found.counterexample = Some((s, outcome));
            }
        }
    })
    .await?;
    Ok(found)
}

/// The same case run again, with the seed it ran with, on a cluster that records its
/// messages: its report and every node-to-node call, for the pictures.
pub(crate) async fn replay_traced(
    h: &Hunt,
    strategy: &Strategy,
    seed: u64,
) -> Result<(Report, Vec<crate::trace::Event>), DriveError> {
    explore::run_traced(&h.explore, &strategy.case(seed)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::{ATTACK, RETREAT};
    use crate::runs::driver::Protocol;
    use std::time::Duration;

    fn explore(n: usize, m: usize) -> Explore {
        Explore {
            protocol: Protocol::Om,
            n,
            m,
            behaviours: Vec::new(),
            orders: vec![ATTACK.into(), RETREAT.into()],
            allow_unsafe: true,
            round_timeout: Duration::from_millis(500),
            seed: 1,
            jobs: 1,
            external: Vec::new(),
        }
    }

    #[test]
    fn slots_follow_the_protocol() {
        let nodes = explore::names(4);
        // The commander: one message per lieutenant.
        assert_eq!(slots(&nodes, "P", 1, "P").len(), 3);
        // A lieutenant in OM(1): relays [P] to the two other lieutenants.
        let q = slots(&nodes, "P", 1, "Q");
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].path, ["P", "Q"]);
        assert_eq!((q[0].to.as_str(), q[1].to.as_str()), ("R", "S"));
        // OM(2) over 7: 5 relays of [P], then 5 paths [P,x] times 4 receivers.
        let nodes = explore::names(7);
        assert_eq!(slots(&nodes, "P", 2, "Q").len(), 5 + 5 * 4);
    }

    /// OM(1) over n: no traitor (1 strategy), the commander (n - 1 slots) or one of the n - 1
    /// lieutenants (n - 2 slots each), times the two orders.
    #[test]
    fn the_space_of_om1_is_its_formula() {
        for n in 3..=7u32 {
            let formula = 2 * (1 + 3u128.pow(n - 1) + u128::from(n - 1) * 3u128.pow(n - 2));
            assert_eq!(space(&explore(n as usize, 1)), formula, "n = {n}");
        }
        assert_eq!(space(&explore(4, 1)), 110);
        assert_eq!(space(&explore(3, 1)), 32);
        assert_eq!(space_text(&explore(4, 1)), "110");
        // OM(2) over 7: 1 + 3^6 + 6 x 3^25 + C(6,2) x 3^50 + 6 x 3^(6+25), twice.
        assert_eq!(space_text(&explore(7, 2)), "21536939638177825881829610");
        assert_eq!(
            space(&explore(7, 2)).to_string(),
            space_text(&explore(7, 2))
        );
        // Beyond u128: OM(3) over 10, a lieutenant has 8 + 8x7 + 8x7x6 = 400 messages, the
        // commander 9. Python's integers give 2 x (1 + 3^9 + 9x3^400 + 9x3^409 + 36x3^800 +
        // 36x3^809 + 84x3^1200): 575 digits, these at both ends.
        let huge = space_text(&explore(10, 3));
        assert_eq!(huge.len(), 575);
        assert!(huge.starts_with("589949646617005272097293114295"), "{huge}");
        assert!(huge.ends_with("2357267096"), "{huge}");
        assert_eq!(space(&explore(10, 3)), u128::MAX, "saturates");
    }

    #[test]
    fn ids_name_their_strategy_and_parse_back() {
        let e = explore(3, 1);
        let s = parse_case(&e, "attack:Q:1").unwrap();
        assert_eq!(s.id, "attack:Q:1");
        assert_eq!(s.lies(), 1);
        assert_eq!(s.messages[0].value.as_deref(), Some(RETREAT));
        assert_eq!(parse_case(&e, "attack:none:0").unwrap().messages.len(), 0);
        assert!(parse_case(&e, "attack:Q:3").is_err());
        assert!(parse_case(&e, "attack:R+Q:0").is_err());
        let f = parse_case(&explore(7, 2), "fuzz:9:3").unwrap();
        assert_eq!(f, parse_case(&explore(7, 2), "fuzz:9:3").unwrap());
        assert!(!f.traitors.is_empty() && f.traitors.len() <= 2);
        assert_eq!(f.id, "fuzz:9:3");
    }
}
