//! OM(m), the oral-messages algorithm of Lamport, Shostak and Pease (1982), as a plain state
//! machine for one participant of one run. No I/O: the engine feeds it messages and sends
//! what it returns.
//!
//! A message is `(path, value)`: `path` lists who relayed the value, starting with the
//! commander and ending with the sender. The commander sends `([C], order)` to every
//! lieutenant; a lieutenant receiving `(p, v)` with `|p| <= m` relays `(p + [me], v)` to every
//! lieutenant not in `p`. After the run, lieutenant `i` decides `value([C])` where
//! `value(p)` is the value received for `p` when `|p| = m + 1`, and otherwise the majority of
//! the value received for `p` and `value(p + [j])` for every lieutenant `j` not in `p`, `j != i`.
//! A missing message counts as `retreat`; no strict majority is `retreat` too.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::RunError;
use crate::behaviour::RETREAT;

/// One message to send: `value` for `to`, relayed along `path` (which ends with the sender).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    /// Receiver.
    pub to: String,
    /// Path of the relayed value, ending with this node.
    pub path: Vec<String>,
    /// The value an honest node sends (a traitor's behaviour may change it).
    pub value: String,
    /// Index of the receiver among the receivers of this broadcast, and their number.
    pub(crate) index: usize,
    /// Number of receivers of this broadcast.
    pub(crate) count: usize,
}

/// One node of a lieutenant's OM evaluation tree (see [`OmRun::tree`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode {
    /// The relay path, commander first.
    pub path: Vec<String>,
    /// The value received for this path, `None` when no message arrived (it counts as
    /// `retreat`).
    pub received: Option<String>,
    /// `value(path)`: the recursive majority computed at this node (the received value at a
    /// leaf). At the root it is the lieutenant's decision.
    pub value: String,
}

/// One participant's state in one OM run.
#[derive(Debug, Clone)]
pub struct OmRun {
    me: String,
    nodes: Arc<[String]>,
    commander: usize,
    m: usize,
    /// Received values by packed path ([`pack`]), each an index into `values`: OM(m) stores
    /// up to n^m messages per lieutenant, so 12 bytes an entry rather than two allocations.
    received: HashMap<u64, u32>,
    /// The distinct values received (interned), and their ids.
    values: Vec<Arc<str>>,
    value_ids: HashMap<Arc<str>, u32>,
    expected: usize,
    /// Messages received before [`OmRun::release`] let go of them.
    released: Option<usize>,
}

/// A path of node indices as one integer: 7 bits per node (index + 1, so no path is a prefix
/// of another's code), at most 9 nodes (m <= 8, n <= 64; checked by the engine, and paths
/// beyond that never occur: `path_indices` bounds them by m + 1).
pub(crate) fn pack(path: &[usize]) -> u64 {
    path.iter().take(9).enumerate().fold(0u64, |code, (k, &i)| {
        code | (((i as u64 & 0x7f) + 1) << (7 * k))
    })
}

/// Number of messages sent in round `k` (1-based) of OM(m) among `n` nodes:
/// `(n-1)(n-2)...(n-k)`.
pub(crate) fn expected_in_round(n: usize, k: usize) -> u64 {
    (1..=k).map(|j| n.saturating_sub(j) as u64).product()
}

/// Expected messages per round, rounds 1..=m+1.
pub(crate) fn expected_per_round(n: usize, m: usize) -> Vec<u64> {
    (1..=m + 1).map(|k| expected_in_round(n, k)).collect()
}

/// Messages a whole run of OM(m) among `n` nodes sends (every round).
pub(crate) fn total_messages(n: usize, m: usize) -> u64 {
    expected_per_round(n, m)
        .into_iter()
        .fold(0u64, u64::saturating_add)
}

/// Most messages one sender can have to send to one receiver in a run of OM(m) among `n`
/// nodes: the paths ending with that sender and not passing through the receiver. The
/// commander sends one (`[C]`); a lieutenant S sends `[C, x1, ..., S]` for every choice of
/// distinct `x`s among the n - 3 others, up to length m + 1: the sum of P(n-3, j) for
/// j < m. The larger of the two bounds every sender; SM's per-sender budget is twice it (two
/// values per path).
pub(crate) fn paths_per_sender(n: usize, m: usize) -> u64 {
    let others = n.saturating_sub(3) as u64;
    let lieutenant = (0..m as u64)
        .map(|j| (0..j).fold(1u64, |p, i| p.saturating_mul(others.saturating_sub(i))))
        .fold(0u64, u64::saturating_add);
    lieutenant.max(1)
}

/// The strict majority of `values` (more than half), or `retreat` when there is none: OM's
/// rule, unlike the original node's plurality ([`crate::node::plurality`]).
pub(crate) fn majority_or_retreat<'a>(values: &[&'a str]) -> &'a str {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    counts
        .into_iter()
        .find(|(_, c)| 2 * c > values.len())
        .map_or(RETREAT, |(v, _)| v)
}

impl OmRun {
    /// A run among `nodes` (commander included) as seen by `me`.
    pub fn new(me: &str, commander: &str, nodes: &[String], m: usize) -> Result<Self, RunError> {
        check_run(me, commander, nodes)?;
        if m >= MAX_PATH {
            return Err(RunError::MTooLarge { max: MAX_PATH - 1 });
        }
        if m + 1 >= nodes.len() && m > 0 {
            return Err(RunError::TooFewNodes { m });
        }
        let commander_ix = nodes.iter().position(|n| n == commander).unwrap_or(0);
        // Paths this lieutenant receives: [C] followed by k distinct other lieutenants,
        // k = 0..m, none of them me: sum of P(n-2, k).
        let others = nodes.len().saturating_sub(2);
        let expected: usize = (0..=m)
            .map(|k| (0..k).map(|j| others.saturating_sub(j)).product::<usize>())
            .sum();
        Ok(OmRun {
            me: me.to_string(),
            nodes: nodes.into(),
            commander: commander_ix,
            m,
            // Sized once for the whole run: no doubling (and no old table beside the new one
            // while it grows) in the last round, where most messages come.
            received: HashMap::with_capacity(expected.min(1 << 20)),
            values: Vec::new(),
            value_ids: HashMap::new(),
            expected,
            released: None,
        })
    }

    /// Whether this participant is the commander.
    pub(crate) fn is_commander(&self) -> bool {
        self.nodes[self.commander] == self.me
    }

    /// Every participant, in the run's order.
    pub(crate) fn nodes(&self) -> &Arc<[String]> {
        &self.nodes
    }

    /// Messages this lieutenant expects in a complete run.
    pub(crate) fn expected(&self) -> usize {
        if self.is_commander() {
            0
        } else {
            self.expected
        }
    }

    /// Messages received so far (duplicates not counted).
    pub(crate) fn received(&self) -> usize {
        self.released.unwrap_or(self.received.len())
    }

    /// Let go of the messages received, keeping their count: once a run is decided (its
    /// decision kept by the engine) they serve nothing, and a node keeps up to 256 decided
    /// runs. The decision ([`OmRun::decide`]) and the tree are no longer computed after this.
    pub(crate) fn release(&mut self) {
        self.released = Some(self.received());
        self.received = HashMap::new();
        self.values = Vec::new();
        self.value_ids = HashMap::new();
    }

    /// The commander's round 1: its order for every lieutenant.
    pub fn command(&self, order: &str) -> Broadcast {
        broadcast(&self.nodes, &self.me, &[], &Arc::from(order))
    }

    /// Take a message; returns the relays it causes (none for a duplicate). An invalid path
    /// (not from the commander, repeated or unknown nodes, through me, too long) is an error.
    pub fn receive(&mut self, path: &[String], value: &str) -> Result<Broadcast, RunError> {
        if self.is_commander() {
            return Err(RunError::CommanderReceives);
        }
        let ix = self.path_indices(path)?;
        let code = pack(&ix);
        if self.received.contains_key(&code) {
            return Ok(Broadcast::default());
        }
        let id = match self.value_ids.get(value) {
            Some(&id) => id,
            None => {
                let id = self.values.len() as u32;
                let shared: Arc<str> = Arc::from(value);
                self.values.push(shared.clone());
                self.value_ids.insert(shared, id);
                id
            }
        };
        self.received.insert(code, id);
        if path.len() > self.m {
            return Ok(Broadcast::default());
        }
        let shared = self.values[id as usize].clone();
        Ok(broadcast(&self.nodes, &self.me, &ix, &shared))
    }

    fn path_indices(&self, path: &[String]) -> Result<Vec<usize>, RunError> {
        path_indices(&self.nodes, &self.me, self.commander, self.m, path)
    }

    /// Whether a message of `path` was received already (a valid path only): a copy of it,
    /// however late, changes nothing and says nothing about its sender.
    pub(crate) fn is_duplicate(&self, path: &[String]) -> bool {
        !self.is_commander()
            && self
                .path_indices(path)
                .is_ok_and(|ix| self.received.contains_key(&pack(&ix)))
    }

    /// The decision by recursive majority; missing messages count as `retreat`.
    pub fn decide(&self) -> String {
        let me = self
            .nodes
            .iter()
            .position(|n| *n == self.me)
            .unwrap_or(usize::MAX);
        let mut path = vec![self.commander];
        self.value(&mut path, me, &self.prefixes()).to_string()
    }

    /// Every prefix of every path received (packed): the subtrees worth evaluating. A subtree
    /// in which nothing arrived is `retreat` all the way up (every missing message counts as
    /// `retreat`, and a majority of `retreat`s is `retreat`), so [`value`](Self::value) takes
    /// it as such without walking it. That bounds an evaluation by what was received
    /// (at most `m + 1` prefixes each, `n` children looked at per prefix) instead of the
    /// `n^m` paths a run could have: `om_decide` on a run of 64 nodes and m = 8 that received
    /// nothing is instant, not years of CPU.
    fn prefixes(&self) -> HashSet<u64> {
        let mut out = HashSet::with_capacity(self.received.len() * 2);
        for &code in self.received.keys() {
            for k in 1..=MAX_PATH {
                let shift = 7 * k as u32;
                let prefix = if shift >= 64 {
                    code
                } else {
                    code & ((1u64 << shift) - 1)
                };
                out.insert(prefix);
                if prefix == code {
                    break;
                }
            }
        }
        out
    }

    /// This lieutenant's evaluation tree: every path `value` visits, depth first with the
    /// root `[commander]` first and children in node order, each with the value received for
    /// it and the majority computed there (the root's value is [`decide`](Self::decide)'s).
    /// Empty for the commander, which evaluates nothing.
    pub(crate) fn tree(&self) -> Vec<TreeNode> {
        if self.is_commander() {
            return Vec::new();
        }
        let me = self
            .nodes
            .iter()
            .position(|n| *n == self.me)
            .unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let prefixes = self.prefixes();
        let mut stack = vec![vec![self.commander]];
        while let Some(mut path) = stack.pop() {
            let received = self.received_at(&path).map(str::to_string);
            let value = self.value(&mut path, me, &prefixes).to_string();
            if path.len() < self.m + 1 {
                for j in (0..self.nodes.len()).rev() {
                    if j != me && !path.contains(&j) {
                        let mut child = path.clone();
                        child.push(j);
                        stack.push(child);
                    }
                }
            }
            out.push(TreeNode {
                path: path.iter().map(|&i| self.nodes[i].clone()).collect(),
                received,
                value,
            });
        }
        out
    }

    fn received_at(&self, path: &[usize]) -> Option<&str> {
        self.received
            .get(&pack(path))
            .and_then(|&id| self.values.get(id as usize))
            .map(|v| &**v)
    }

    /// The recursive majority at `path`; subtrees outside `prefixes` (nothing received in
    /// them) count as `retreat` without being walked.
    fn value(&self, path: &mut Vec<usize>, me: usize, prefixes: &HashSet<u64>) -> &str {
        let direct = self.received_at(path).unwrap_or(RETREAT);
        if path.len() == self.m + 1 {
            return direct;
        }
        let mut values = vec![direct];
        for j in 0..self.nodes.len() {
            if j == me || path.contains(&j) {
                continue;
            }
            path.push(j);
            let v = if prefixes.contains(&pack(path)) {
                self.value(path, me, prefixes)
            } else {
                RETREAT
            };
            path.pop();
            values.push(v);
        }
        majority_or_retreat(&values)
    }
}

/// One value sent along one path to several receivers: the commander's order, or a
/// lieutenant's relay. Compact on purpose (the run's node list shared, the path as indices,
/// receivers computed when asked): a node queues one per message it received, not one
/// [`Relay`] per message it will send, and OM(m) queues n^m of them in its last round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Broadcast {
    nodes: Arc<[String]>,
    /// Indices of the relay path, ending with the sender (`len` of them; at most 9, m <= 8).
    path: [u16; MAX_PATH],
    len: u8,
    /// Shared by every relay of the same value.
    value: Arc<str>,
}

/// Longest relay path: m + 1 with m <= 8.
const MAX_PATH: usize = 9;

impl Broadcast {
    /// Number of messages (receivers): every node not on the path.
    pub(crate) fn len(&self) -> usize {
        if self.len == 0 {
            return 0;
        }
        self.nodes.len().saturating_sub(usize::from(self.len))
    }

    fn indices(&self) -> &[u16] {
        &self.path[..usize::from(self.len)]
    }

    /// The relay path as node indices (ending with the sender): the order in which a round's
    /// messages are sent, so that the same messages always go in the same batches.
    pub(crate) fn order_key(&self) -> &[u16] {
        self.indices()
    }

    /// No receiver: nothing to send.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value an honest node sends.
    pub(crate) fn value(&self) -> &str {
        &self.value
    }

    /// The relay path, ending with the sender.
    pub(crate) fn path(&self) -> Vec<String> {
        self.indices()
            .iter()
            .map(|&i| self.nodes[usize::from(i)].clone())
            .collect()
    }

    /// The receivers, in the nodes' order.
    pub(crate) fn receivers(&self) -> impl Iterator<Item = &String> {
        let on_path = |i: usize| self.indices().iter().any(|&p| usize::from(p) == i);
        let any = self.len > 0;
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(i, _)| any && !on_path(*i))
            .map(|(_, n)| n)
    }

    /// The index of `to` among the receivers.
    pub(crate) fn slot(&self, to: &str) -> Option<usize> {
        self.receivers().position(|r| r == to)
    }

    /// One [`Relay`] per receiver.
    pub(crate) fn relays(&self) -> Vec<Relay> {
        let count = self.len();
        let path = self.path();
        self.receivers()
            .enumerate()
            .map(|(index, to)| Relay {
                to: to.clone(),
                path: path.clone(),
                value: self.value.to_string(),
                index,
                count,
            })
            .collect()
    }
}

impl IntoIterator for Broadcast {
    type Item = Relay;
    type IntoIter = std::vec::IntoIter<Relay>;
    fn into_iter(self) -> Self::IntoIter {
        self.relays().into_iter()
    }
}

/// `value` relayed along `path + [me]` (`taken`: the path's node indices) to every node
/// neither on the path nor `me`, in the nodes' order: the commander's round 1 (empty path)
/// and every relay, of OM and SM alike. `me` must be one of `nodes`.
pub(crate) fn broadcast(
    nodes: &Arc<[String]>,
    me: &str,
    taken: &[usize],
    value: &Arc<str>,
) -> Broadcast {
    let Some(me_ix) = nodes.iter().position(|n| n == me) else {
        return Broadcast::default();
    };
    if taken.len() >= MAX_PATH {
        return Broadcast::default();
    }
    let mut path = [0u16; MAX_PATH];
    for (slot, &i) in path
        .iter_mut()
        .zip(taken.iter().chain(std::iter::once(&me_ix)))
    {
        *slot = u16::try_from(i).unwrap_or(u16::MAX);
    }
    Broadcast {
        nodes: nodes.clone(),
        path,
        len: (taken.len() + 1) as u8,
        value: value.clone(),
    }
}

/// Check a relay path (commander first, distinct participants, not through `me`, at most
/// `m + 1` long) and turn it into node indices.
pub(crate) fn path_indices(
    nodes: &[String],
    me: &str,
    commander: usize,
    m: usize,
    path: &[String],
) -> Result<Vec<usize>, RunError> {
    if path.is_empty() || path.len() > m + 1 {
        return Err(RunError::PathLength {
            len: path.len(),
            max: m + 1,
        });
    }
    let mut ix = Vec::with_capacity(path.len());
    for name in path {
        let i = (nodes.iter().position(|n| n == name))
            .ok_or_else(|| RunError::Stranger { name: name.clone() })?;
        if ix.contains(&i) || name == me {
            return Err(RunError::PathRepeats {
                path: path.to_vec(),
                me: me.to_string(),
            });
        }
        ix.push(i);
    }
    if ix[0] != commander {
        return Err(RunError::NotFromCommander {
            path: path.to_vec(),
        });
    }
    Ok(ix)
}

/// Common checks of a run's participants.
pub(crate) fn check_run(me: &str, commander: &str, nodes: &[String]) -> Result<(), RunError> {
    if !nodes.iter().any(|n| n == commander) {
        return Err(RunError::CommanderNotInRun {
            commander: commander.to_string(),
            nodes: nodes.to_vec(),
        });
    }
    if !nodes.iter().any(|n| n == me) {
        return Err(RunError::NotInRun {
            me: me.to_string(),
            nodes: nodes.to_vec(),
        });
    }
    let mut sorted = nodes.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != nodes.len() {
        return Err(RunError::RepeatedName {
            nodes: nodes.to_vec(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::{ATTACK, Behaviour};

    fn names(s: &str) -> Vec<String> {
        s.split(',').map(str::to_string).collect()
    }

    /// Run OM(m) in memory: every node's behaviour applied to what it sends.
    fn simulate(
        nodes: &str,
        m: usize,
        order: &str,
        traitors: &[(&str, Behaviour)],
    ) -> (HashMap<String, String>, u64) {
        let nodes = names(nodes);
        let commander = nodes[0].clone();
        let behaviour = |n: &str| {
            traitors
                .iter()
                .find(|(t, _)| *t == n)
                .map(|(_, b)| b.clone())
                .unwrap_or_default()
        };
        let mut runs: HashMap<String, OmRun> = nodes
            .iter()
            .map(|n| (n.clone(), OmRun::new(n, &commander, &nodes, m).unwrap()))
            .collect();
        let mut queue: Vec<(String, Relay)> = runs[&commander]
            .command(order)
            .into_iter()
            .map(|r| (commander.clone(), r))
            .collect();
        let mut sent = 0;
        while let Some((from, r)) = queue.pop() {
            let Some(v) = behaviour(&from).outgoing(&r.value, &r.to, r.index, r.count, 0) else {
                continue;
            };
            sent += 1;
            let relays = runs.get_mut(&r.to).unwrap().receive(&r.path, &v).unwrap();
            queue.extend(relays.into_iter().map(|x| (r.to.clone(), x)));
        }
        let decisions = nodes[1..]
            .iter()
            .map(|n| (n.clone(), runs[n].decide()))
            .collect();
        (decisions, sent)
    }

    #[test]
    fn paths_per_sender_counts_every_path_to_one_receiver() {
        // Brute force: every path [C, ...] of length 1..=m+1 over distinct nodes, not through
        // the receiver R, counted by its last node.
        for n in 3..=7usize {
            for m in 0..=(n - 2).min(3) {
                let mut most = 0u64;
                let mut stack: Vec<Vec<usize>> = vec![vec![0]];
                let mut by_sender = vec![0u64; n];
                let receiver = n - 1;
                while let Some(p) = stack.pop() {
                    by_sender[*p.last().unwrap()] += 1;
                    if p.len() < m + 1 {
                        for j in 1..receiver {
                            if !p.contains(&j) {
                                let mut q = p.clone();
                                q.push(j);
                                stack.push(q);
                            }
                        }
                    }
                }
                for c in by_sender {
                    most = most.max(c);
                }
                assert_eq!(paths_per_sender(n, m), most, "n={n} m={m}");
            }
        }
    }

    #[test]
    fn message_counts_match_theory() {
        assert_eq!(expected_per_round(4, 1), [3, 6]);
        assert_eq!(expected_per_round(7, 2).iter().sum::<u64>(), 156);
        assert_eq!(expected_per_round(10, 3).iter().sum::<u64>(), 3609);
        let (_, sent) = simulate("A,B,C,D,E,F,G", 2, ATTACK, &[]);
        assert_eq!(sent, 156);
    }

    #[test]
    fn loyal_lieutenants_agree_with_one_traitor_of_four() {
        let (d, _) = simulate("C,L1,L2,L3", 1, ATTACK, &[("L2", Behaviour::TwoFaced)]);
        assert_eq!((d["L1"].as_str(), d["L3"].as_str()), (ATTACK, ATTACK));
        let (d, _) = simulate("C,L1,L2,L3", 1, ATTACK, &[("C", Behaviour::TwoFaced)]);
        assert_eq!(d["L1"], d["L2"]);
        assert_eq!(d["L2"], d["L3"]);
    }

    #[test]
    fn three_nodes_cannot_tolerate_a_traitor() {
        let (d, _) = simulate("C,L1,L2", 1, ATTACK, &[("L2", Behaviour::Flip)]);
        assert_eq!(d["L1"], RETREAT, "L1 sees attack and retreat: no majority");
    }

    #[test]
    fn tree_lists_every_path_depth_first_with_its_majority() {
        let nodes = names("C,A,B,D");
        let mut a = OmRun::new("A", "C", &nodes, 1).unwrap();
        a.receive(&names("C"), ATTACK).unwrap();
        a.receive(&names("C,B"), RETREAT).unwrap();
        // C,D missing: counts as retreat, so the majority of (attack, retreat, retreat).
        let tree = a.tree();
        let paths: Vec<String> = tree.iter().map(|t| t.path.join(">")).collect();
        assert_eq!(paths, ["C", "C>B", "C>D"]);
        assert_eq!(tree[0].received.as_deref(), Some(ATTACK));
        assert_eq!(tree[0].value, RETREAT);
        assert_eq!(tree[0].value, a.decide());
        assert_eq!(tree[1].received.as_deref(), Some(RETREAT));
        assert_eq!(
            (tree[2].received.as_deref(), tree[2].value.as_str()),
            (None, RETREAT)
        );
        a.receive(&names("C,D"), ATTACK).unwrap();
        assert_eq!(a.tree()[0].value, ATTACK);
        assert_eq!(a.decide(), ATTACK);
        assert!(OmRun::new("C", "C", &nodes, 1).unwrap().tree().is_empty());

        // OM(2) among 7: 1 + 5 + 5*4 paths, each parent right before its children.
        let nodes = names("C,L1,L2,L3,L4,L5,L6");
        let run = OmRun::new("L1", "C", &nodes, 2).unwrap();
        let tree = run.tree();
        assert_eq!(tree.len(), 26);
        assert_eq!(tree[0].path, ["C"]);
        assert_eq!(tree[1].path, ["C", "L2"]);
        assert_eq!(tree[2].path, ["C", "L2", "L3"]);
        assert_eq!(tree[6].path, ["C", "L3"]);
        assert!(
            tree.iter()
                .all(|t| t.received.is_none() && t.value == RETREAT)
        );
    }

    #[test]
    fn bad_paths_are_refused() {
        let nodes = names("C,A,B,D");
        let mut a = OmRun::new("A", "C", &nodes, 1).unwrap();
        assert_eq!(a.expected(), 3);
        assert!(a.receive(&names("B"), ATTACK).is_err());
        assert!(a.receive(&names("C,C"), ATTACK).is_err());
        assert!(a.receive(&names("C,A"), ATTACK).is_err());
        assert!(a.receive(&names("C,X"), ATTACK).is_err());
        assert!(a.receive(&names("C,B,D"), ATTACK).is_err());
        assert_eq!(a.receive(&names("C"), ATTACK).unwrap().len(), 2);
        assert!(
            a.receive(&names("C"), ATTACK).unwrap().is_empty(),
            "duplicate"
        );
        assert!(OmRun::new("A", "X", &nodes, 1).is_err());
    }

    /// The evaluation that skips subtrees where nothing arrived decides as the full walk
    /// does, on random partial deliveries (OM(2) over 6 nodes, each path delivered with
    /// probability 1/2, `attack` three times in four: empty subtrees and both decisions).
    #[test]
    fn pruned_evaluation_matches_the_full_walk() {
        fn full(run: &OmRun, path: &mut Vec<usize>, me: usize) -> String {
            let direct = run.received_at(path).unwrap_or(RETREAT).to_string();
            if path.len() == run.m + 1 {
                return direct;
            }
            let mut values = vec![direct];
            for j in 0..run.nodes.len() {
                if j != me && !path.contains(&j) {
                    path.push(j);
                    values.push(full(run, path, me));
                    path.pop();
                }
            }
            majority_or_retreat(&values.iter().map(String::as_str).collect::<Vec<_>>()).to_string()
        }
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let nodes = names("A,B,C,D,E,F");
        // Every path B can receive: [A], [A,x], [A,x,y].
        let others = [2usize, 3, 4, 5];
        let mut paths: Vec<Vec<usize>> = vec![vec![0]];
        for &x in &others {
            paths.push(vec![0, x]);
            for &y in others.iter().filter(|&&y| y != x) {
                paths.push(vec![0, x, y]);
            }
        }
        // Each path delivered with probability 1/2, attack three times in four; a failing
        // delivery shrinks to the fewest messages that still disagree.
        let delivery =
            prop::option::weighted(0.5, prop_oneof![3 => Just(ATTACK), 1 => Just(RETREAT)]);
        let strategy = prop::collection::vec(delivery, paths.len());
        let cases = Config::default().cases.max(300);
        let mut runner = TestRunner::new(Config::with_cases(cases));
        let decisions = std::cell::RefCell::new([0usize; 2]);
        runner
            .run(&strategy, |delivered| {
                let mut run = OmRun::new("B", "A", &nodes, 2).unwrap();
                for (p, v) in paths.iter().zip(&delivered) {
                    if let Some(v) = v {
                        let names: Vec<String> = p.iter().map(|&i| nodes[i].clone()).collect();
                        run.receive(&names, v).unwrap();
                    }
                }
                let expected = full(&run, &mut vec![0], 1);
                prop_assert_eq!(run.decide(), expected.clone());
                decisions.borrow_mut()[usize::from(expected == ATTACK)] += 1;
                Ok(())
            })
            .unwrap();
        let [retreats, attacks] = *decisions.borrow();
        assert!(
            attacks > 0 && retreats > 0,
            "both decisions occur ({attacks} attack, {retreats} retreat), so the check is not vacuous"
        );
    }
}
