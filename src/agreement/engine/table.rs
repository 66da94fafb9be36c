//! The run table of one node: which runs it holds, which it may forget, and when a start is
//! refused. Pure: the engine calls it under its lock, with the time, and turns its refusals
//! into faults; the rules are tested here directly.
//!
//! The rules, in short (docs/protocol-extensions.md, "The run table"):
//! - a run is *finished* once decided here or when its [`expiry`] has passed since its start;
//! - a run is *abandoned* when its driver does not advance it (no `*_order`, `*_round` or
//!   `*_decide` with its capability) within [`START_GRACE`] of its start, or within its round
//!   timeout and [`START_GRACE`] of its last advance: a driver that is carrying a run through
//!   never leaves it that long (it opens the next round as soon as every node answered the
//!   last one, or the round timeout passed);
//! - only finished or abandoned runs are forgotten, finished ones first, each kind oldest
//!   start first, and only when room is needed (a start on a full table, or the runs' bytes
//!   over their budget). So a flood of starts that nobody drives is room for the next real run
//!   after a few seconds, and a run that is being driven is never dropped;
//! - a start with the id of an unfinished run is refused, unless it carries the same
//!   capability: that is its driver retrying a call it could not see answered, and it is
//!   answered as the first one was.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::agreement::Protocol;
use crate::calls::{RunId, Secret};

/// Runs remembered per node by default (`server --max-runs`).
pub(crate) const MAX_RUNS: usize = 256;

/// What a run's expiry adds to its rounds: room for the driver's calls around them (the other
/// nodes' starts, the order, the decide: each within `client --rpc-timeout`, 10 s by default).
pub(crate) const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The longest a run that is never decided counts as unfinished: without it, starts with the
/// largest parameters (600 s rounds, m = 8) would hold their places for 6,060 s each.
pub(crate) const MAX_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// How long a driver may leave a run it started before advancing it (and, beyond its round
/// timeout, between two advances) before the run counts as abandoned when room is needed. A
/// driver starts every node of a run at once and orders as soon as the starts are answered,
/// so a real run is advanced within milliseconds; the audit's flood (256 starts with 600 s
/// rounds that nobody drives) held every place for 15 minutes before this rule.
pub(crate) const START_GRACE: Duration = Duration::from_secs(5);

/// How long after its start a run counts as unfinished if it is never decided:
/// `round_timeout * (m + 2) + EXPIRY_MARGIN`, at most [`MAX_EXPIRY`]. Measured from the start,
/// not from the last call: no caller keeps a run alive by poking it.
pub(crate) fn expiry(round_timeout: Duration, m: usize) -> Duration {
    (round_timeout.saturating_mul(u32::try_from(m + 2).unwrap_or(u32::MAX)) + EXPIRY_MARGIN)
        .min(MAX_EXPIRY)
}

/// Where a run is in its life, for the table's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Life {
    started: Instant,
    expires: Instant,
    round_timeout: Duration,
    /// The last time its driver advanced it (`None`: never since its start).
    advanced: Option<Instant>,
    decided: bool,
}

impl Life {
    /// The life of a run started at `now` with these parameters.
    pub(crate) fn new(now: Instant, round_timeout: Duration, m: usize) -> Self {
        Life {
            started: now,
            expires: now + expiry(round_timeout, m),
            round_timeout,
            advanced: None,
            decided: false,
        }
    }

    /// Its driver advanced it at `now` (an order, a round, a decide).
    pub(crate) fn advance(&mut self, now: Instant) {
        self.advanced = Some(now);
    }

    /// Decided here: finished.
    pub(crate) fn decide(&mut self) {
        self.decided = true;
    }

    /// Decided, or expired at `now`.
    pub(crate) fn finished(&self, now: Instant) -> bool {
        self.decided || now >= self.expires
    }

    /// Unfinished, and left by its driver longer than a driver that carries it through ever
    /// does (see the module's rules).
    pub(crate) fn abandoned(&self, now: Instant) -> bool {
        let deadline = match self.advanced {
            None => self.started + START_GRACE,
            Some(at) => at + self.round_timeout + START_GRACE,
        };
        !self.finished(now) && now >= deadline
    }
}

/// A run held in the table: what the engine keeps of it, its life, the bytes it holds and the
/// capability its driver started it with.
#[derive(Debug)]
pub(crate) struct Entry<V> {
    /// The engine's state of the run.
    pub(crate) value: V,
    /// Where it is in its life.
    pub(crate) life: Life,
    /// Approximate bytes of its stored and queued messages.
    pub(crate) bytes: usize,
    capability: Secret,
}

impl<V> Entry<V> {
    /// A run started with `capability`.
    pub(crate) fn new(value: V, life: Life, capability: Secret) -> Self {
        Entry {
            value,
            life,
            bytes: 0,
            capability,
        }
    }

    /// Whether `capability` is the one the run was started with (compared in constant time).
    pub(crate) fn is_driven_by(&self, capability: &Secret) -> bool {
        self.capability.same(capability)
    }
}

/// A run is named by its protocol and its id: an OM run and an SM run may share an id.
pub(crate) type Key = (Protocol, RunId);

/// Why the table has no room for a new run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A run of that id is unfinished here and was started with another capability.
    Live,
    /// Every run held is unfinished and driven, and the table is full: how many it holds.
    Full(usize),
}

/// Whether a start makes a new run or repeats one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    /// Room for a new run.
    Fresh,
    /// The run is held already, started with the same capability: a retried start.
    Again,
}

/// A node's runs, at most `limit` of them, and the bytes they hold.
#[derive(Debug)]
pub(crate) struct Table<V> {
    entries: HashMap<Key, Entry<V>>,
    /// Every run, oldest start first.
    started: VecDeque<Key>,
    bytes: usize,
    limit: usize,
}

impl<V> Table<V> {
    /// A table of at most `limit` runs (at least one).
    pub(crate) fn new(limit: usize) -> Self {
        Table {
            entries: HashMap::new(),
            started: VecDeque::new(),
            bytes: 0,
            limit: limit.max(1),
        }
    }

    /// The run `key`.
    pub(crate) fn get(&self, key: &Key) -> Option<&Entry<V>> {
        self.entries.get(key)
    }

    /// The run `key`, to change.
    pub(crate) fn get_mut(&mut self, key: &Key) -> Option<&mut Entry<V>> {
        self.entries.get_mut(key)
    }

    /// Runs held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.started.len()
    }

    /// Bytes all runs hold.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The ids held, oldest start first.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> impl Iterator<Item = &Key> {
        self.started.iter()
    }

    /// Make room for a start of `key` with `capability` at `now`: forget a finished run of
    /// that id, then finished or abandoned runs as needed. See the module's rules.
    pub(crate) fn room(
        &mut self,
        key: &Key,
        capability: &Secret,
        now: Instant,
    ) -> Result<Room, Refusal> {
        match self.entries.get(key) {
            Some(e) if !e.life.finished(now) => {
                return match e.is_driven_by(capability) {
                    true => Ok(Room::Again),
                    false => Err(Refusal::Live),
                };
            }
            Some(_) => self.forget(key),
            None => {}
        }
        while self.started.len() >= self.limit {
            if !self.forget_oldest(now, None) {
                return Err(Refusal::Full(self.started.len()));
            }
        }
        Ok(Room::Fresh)
    }

    /// Hold a new run (after [`Table::room`] said [`Room::Fresh`]).
    pub(crate) fn insert(&mut self, key: Key, entry: Entry<V>) {
        self.bytes += entry.bytes;
        if self.entries.insert(key.clone(), entry).is_none() {
            self.started.push_back(key);
        }
    }

    /// Forget run `key` and what it held.
    pub(crate) fn forget(&mut self, key: &Key) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes = self.bytes.saturating_sub(e.bytes);
        }
        self.started.retain(|k| k != key);
    }

    /// Forget the oldest finished run other than `keep`, else the oldest abandoned one; false
    /// if there is neither.
    fn forget_oldest(&mut self, now: Instant, keep: Option<&Key>) -> bool {
        let pick = |pred: &dyn Fn(&Life) -> bool| {
            self.started
                .iter()
                .find(|k| Some(*k) != keep && self.entries.get(*k).is_some_and(|e| pred(&e.life)))
                .cloned()
        };
        match pick(&|l| l.finished(now)).or_else(|| pick(&|l| l.abandoned(now))) {
            Some(k) => {
                self.forget(&k);
                true
            }
            None => false,
        }
    }

    /// Account `delta` bytes to run `key`; while all runs hold more than `budget`, forget
    /// finished or abandoned other runs.
    pub(crate) fn add_bytes(&mut self, key: &Key, delta: isize, budget: usize, now: Instant) {
        if let Some(e) = self.entries.get_mut(key) {
            e.bytes = e.bytes.saturating_add_signed(delta);
        }
        self.bytes = self.bytes.saturating_add_signed(delta);
        while self.bytes > budget && self.forget_oldest(now, Some(key)) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ROUND: Duration = Duration::from_millis(100);
    const CAP: Secret = Secret([1; crate::calls::SECRET_BYTES]);
    const OTHER: Secret = Secret([2; crate::calls::SECRET_BYTES]);

    fn key(id: &str) -> Key {
        (Protocol::Om, id.into())
    }

    /// A start of OM(1) run `id` with `cap` at `now`, as the engine makes it.
    fn start(t: &mut Table<()>, id: &str, cap: Secret, now: Instant) -> Result<Room, Refusal> {
        let room = t.room(&key(id), &cap, now)?;
        if room == Room::Fresh {
            t.insert(key(id), Entry::new((), Life::new(now, ROUND, 1), cap));
        }
        Ok(room)
    }

    fn held(t: &Table<()>) -> Vec<&str> {
        t.keys().map(|(_, id)| id.as_str()).collect()
    }

    /// Advance every run held (its driver is at work).
    fn drive_all(t: &mut Table<()>, now: Instant) {
        let keys: Vec<Key> = t.keys().cloned().collect();
        for k in keys {
            t.get_mut(&k).unwrap().life.advance(now);
        }
    }

    #[test]
    fn a_full_table_of_driven_runs_refuses_new_runs_and_forgets_only_finished_ones() {
        let t0 = Instant::now();
        let mut t = Table::new(3);
        for id in ["a", "b", "c"] {
            start(&mut t, id, CAP, t0).unwrap();
        }
        drive_all(&mut t, t0);
        assert_eq!(start(&mut t, "d", CAP, t0), Err(Refusal::Full(3)));
        assert_eq!(held(&t), ["a", "b", "c"], "nothing driven was dropped");
        // b is decided: finished, so it makes room (a, older, is driven and stays).
        t.get_mut(&key("b")).unwrap().life.decide();
        start(&mut t, "d", CAP, t0).unwrap();
        assert_eq!(held(&t), ["a", "c", "d"]);
        // Once every run expired, the oldest goes first.
        let later = t0 + expiry(ROUND, 1);
        start(&mut t, "e", CAP, later).unwrap();
        assert_eq!(held(&t), ["c", "d", "e"]);
    }

    #[test]
    fn starts_nobody_drives_make_room_after_the_grace() {
        let t0 = Instant::now();
        let mut t = Table::new(4);
        start(&mut t, "real", CAP, t0).unwrap();
        t.get_mut(&key("real")).unwrap().life.advance(t0);
        for i in 0..3 {
            start(&mut t, &format!("flood-{i}"), OTHER, t0).unwrap();
        }
        // Within the grace the flood holds its places...
        let soon = t0 + START_GRACE - Duration::from_millis(1);
        assert_eq!(start(&mut t, "next", CAP, soon), Err(Refusal::Full(4)));
        // ...after it, the oldest undriven start goes; the driven run stays.
        let after = t0 + START_GRACE;
        assert_eq!(start(&mut t, "next", CAP, after), Ok(Room::Fresh));
        assert_eq!(held(&t), ["real", "flood-1", "flood-2", "next"]);
        // A driven run counts as abandoned only once its driver left it a round timeout and
        // the grace: "real" was advanced at t0.
        let idle = t0 + ROUND + START_GRACE;
        t.get_mut(&key("next")).unwrap().life.advance(idle);
        for i in 0..2 {
            start(&mut t, &format!("more-{i}"), OTHER, idle).unwrap();
        }
        assert_eq!(held(&t), ["flood-2", "next", "more-0", "more-1"]);
    }

    #[test]
    fn a_live_id_is_refused_unless_its_driver_retries_and_a_finished_one_starts_again() {
        let t0 = Instant::now();
        let mut t = Table::new(8);
        assert_eq!(start(&mut t, "om-7", CAP, t0), Ok(Room::Fresh));
        assert_eq!(start(&mut t, "om-7", OTHER, t0), Err(Refusal::Live));
        assert_eq!(start(&mut t, "om-7", CAP, t0), Ok(Room::Again), "a retry");
        assert_eq!(t.len(), 1);
        // OM and SM ids are separate.
        let sm = (Protocol::Sm, "om-7".into());
        assert_eq!(t.room(&sm, &OTHER, t0), Ok(Room::Fresh));
        t.get_mut(&key("om-7")).unwrap().life.decide();
        assert_eq!(start(&mut t, "om-7", OTHER, t0), Ok(Room::Fresh));
        assert!(t.get(&key("om-7")).unwrap().is_driven_by(&OTHER));
        assert_eq!(t.len(), 1, "one slot per run");
    }

    #[test]
    fn a_run_expires_by_its_own_parameters() {
        assert_eq!(
            expiry(Duration::from_millis(2000), 1),
            Duration::from_secs(6) + EXPIRY_MARGIN
        );
        assert_eq!(expiry(Duration::from_secs(600), 8), MAX_EXPIRY);
        let t0 = Instant::now();
        let life = Life::new(t0, ROUND, 1);
        let end = t0 + expiry(ROUND, 1);
        assert!(!life.finished(end - Duration::from_millis(1)));
        assert!(life.finished(end));
        assert!(
            !life.abandoned(end),
            "a finished run is finished, not abandoned"
        );
    }

    #[test]
    fn the_byte_budget_forgets_only_finished_or_abandoned_runs() {
        let t0 = Instant::now();
        let mut t = Table::new(8);
        for id in ["old", "live", "done", "busy"] {
            start(&mut t, id, CAP, t0).unwrap();
        }
        drive_all(&mut t, t0);
        t.get_mut(&key("done")).unwrap().life.decide();
        t.add_bytes(&key("old"), 1000, 5000, t0);
        t.add_bytes(&key("done"), 1000, 5000, t0);
        t.add_bytes(&key("busy"), 5000, 5000, t0);
        assert_eq!(held(&t), ["old", "live", "busy"], "the finished run went");
        assert_eq!(t.bytes(), 6000);
        t.add_bytes(&key("busy"), -2000, 5000, t0);
        assert_eq!(t.bytes(), 4000);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Start(u8, bool),
        Advance(u8),
        Decide(u8),
        Wait(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..8, any::<bool>()).prop_map(|(i, own)| Op::Start(i, own)),
            2 => (0u8..8).prop_map(Op::Advance),
            1 => (0u8..8).prop_map(Op::Decide),
            1 => (0u64..400).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Any sequence of starts, advances, decides and waits: the table never exceeds its
        /// limit, a run that is neither finished nor abandoned is never dropped or replaced,
        /// and a start is refused exactly when its id is live with another capability, or
        /// every run held is live and the table is full.
        #[test]
        fn the_table_rules_hold(ops in proptest::collection::vec(op(), 1..80), limit in 1usize..5) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut t: Table<()> = Table::new(limit);
            for op in ops {
                let keys: Vec<Key> = t.keys().cloned().collect();
                let protected: Vec<Key> = keys
                    .iter()
                    .filter(|k| {
                        let l = t.get(k).unwrap().life;
                        !l.finished(now) && !l.abandoned(now)
                    })
                    .cloned()
                    .collect();
                match op {
                    Op::Start(i, own) => {
                        let id = format!("r{i}");
                        let cap = if own { CAP } else { OTHER };
                        let existing = t.get(&key(&id)).map(|e| (e.life, e.is_driven_by(&cap)));
                        let evictable = keys.len() - protected.len();
                        let done = start(&mut t, &id, cap, now);
                        match existing {
                            Some((life, same)) if !life.finished(now) => {
                                let want = if same { Ok(Room::Again) } else { Err(Refusal::Live) };
                                prop_assert_eq!(done, want);
                            }
                            Some(_) => prop_assert_eq!(done, Ok(Room::Fresh)),
                            None => {
                                let room = keys.len() < limit || evictable > 0;
                                prop_assert_eq!(done.is_ok(), room, "{:?}", done);
                            }
                        }
                    }
                    Op::Advance(i) => {
                        if let Some(e) = t.get_mut(&key(&format!("r{i}"))) {
                            e.life.advance(now);
                        }
                    }
                    Op::Decide(i) => {
                        if let Some(e) = t.get_mut(&key(&format!("r{i}"))) {
                            e.life.decide();
                        }
                    }
                    Op::Wait(ms) => now += Duration::from_millis(ms) * 40,
                }
                prop_assert!(t.len() <= limit);
                for k in &protected {
                    prop_assert!(t.get(k).is_some(), "live run {:?} was dropped", k);
                }
            }
        }
    }
}
