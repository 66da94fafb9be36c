//! The scripted traitor (`--behaviour NAME=script:...`, the adversary of `client explore
//! --adversary`): in round r it sends exactly its script's messages of that round instead of
//! what the protocol owes. In SM it signs as any sender does, after the chain it holds for
//! the path before it; lacking one it alters a chain it holds for another value, or forges
//! its own signatures in the other signers' places, and counts each such message.
//!
//! Rounds are synchronous for traitors too: a traitor builds its round-r messages only from
//! the chains of messages of earlier rounds (all of which arrived, or were refused as late,
//! before round r opened here), never from round-r messages that faster nodes already sent.
//! So the same seed and script give the same messages, however the calls interleave.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ed25519_dalek::SigningKey;

use super::Pending;
use crate::agreement::{om, sm};
use crate::behaviour::Behaviour;

/// A signature chain a traitor holds, and the round of the message it came in.
type Chain = (usize, Vec<String>);

/// What a scripted SM traitor received: for each path prefix and value, the signatures it
/// holds and the round of the message they came in (the prefix of a round-r message is held
/// from round r on).
#[derive(Debug, Default)]
pub(crate) struct Held {
    chains: HashMap<Vec<String>, BTreeMap<String, Chain>>,
    /// SM messages it sent with a chain it did not hold (altered or forged).
    pub(crate) forged: u64,
}

impl Held {
    /// Keep the chain of an accepted message and of each of its prefixes.
    pub(crate) fn keep(&mut self, path: &[String], value: &str, sigs: &[String]) {
        let round = path.len();
        for k in 1..=path.len() {
            let slot = (self.chains.entry(path[..k].to_vec()).or_default())
                .entry(value.to_string())
                .or_insert_with(|| (round, sigs[..k].to_vec()));
            // The same chain may come again in an earlier round's message: keep the earliest.
            slot.0 = slot.0.min(round);
        }
    }

    /// The signatures to put before this node's own on `value` along `path` (which ends with
    /// it), sent in round `round`, and whether they are valid: the chain it held before
    /// `round` for the path's prefix and that value (a commander needs none); else the chain
    /// for another value (altered), else its own signatures in the other signers' places
    /// (forged). Receivers reject both; each is counted in [`Held::forged`].
    pub(crate) fn chain(
        &mut self,
        key: &SigningKey,
        ctx: &sm::Context,
        path: &[String],
        value: &str,
        round: usize,
    ) -> Vec<String> {
        let prefix = &path[..path.len().saturating_sub(1)];
        if prefix.is_empty() {
            return Vec::new();
        }
        let earlier = |c: &&Chain| c.0 < round;
        let chains = self.chains.get(prefix);
        if let Some((_, sigs)) = chains.and_then(|c| c.get(value)).filter(earlier) {
            return sigs.clone();
        }
        self.forged += 1;
        if let Some((_, sigs)) = chains.and_then(|c| c.values().find(earlier)) {
            return sigs.clone();
        }
        (1..=prefix.len())
            .map(|k| sm::sign(key, ctx, value, &prefix[..k]))
            .collect()
    }
}

/// A scripted traitor's messages for `round` ([`crate::behaviour::Script::round`]), in place
/// of what the protocol owes; `None` for any other behaviour. `prior(path, value)` gives an
/// SM message's signatures before this node's.
pub(crate) fn messages(
    behaviour: &Behaviour,
    nodes: &Arc<[String]>,
    me: &str,
    round: usize,
    mut prior: impl FnMut(&[String], &str) -> Vec<String>,
) -> Option<Vec<Pending>> {
    let script = behaviour.script()?;
    let mut out = Vec::new();
    for (path, to, value) in script.round(me, round) {
        let before = &path[..path.len() - 1];
        let Some(taken) = (before.iter())
            .map(|n| nodes.iter().position(|x| x == n))
            .collect::<Option<Vec<usize>>>()
        else {
            continue;
        };
        out.push(Pending {
            broadcast: om::broadcast(nodes, me, &taken, &Arc::from(value)),
            prior: prior(path, value),
            only: Some(to.to_string()),
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        s.split(',').map(str::to_string).collect()
    }

    #[test]
    fn a_traitor_uses_only_chains_of_earlier_rounds() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let ctx = sm::Context {
            run: "r".into(),
            commander: "P".into(),
            nodes: names("P,Q,R,T").into(),
        };
        let mut held = Held::default();
        // A round-3 message [P,Q,R] with attack arrives early, in round 2: it carries P's and
        // Q's signatures for attack on [P,Q].
        held.keep(&names("P,Q,R"), "attack", &names("sP,sQ,sR"));
        // In round 3 T relays [P,Q,T]: the chain for [P,Q] arrived in a round-3 message, not
        // before round 3, so it must not be used: T forges.
        let sigs = held.chain(&key, &ctx, &names("P,Q,T"), "attack", 3);
        assert_ne!(sigs, names("sP,sQ"));
        assert_eq!(held.forged, 1);
        // Had the chain come in round 2 ([P,Q] itself), it is held for round 3.
        held.keep(&names("P,Q"), "attack", &names("sP,sQ"));
        assert_eq!(
            held.chain(&key, &ctx, &names("P,Q,T"), "attack", 3),
            names("sP,sQ")
        );
        assert_eq!(held.forged, 1);
        // The other value on that path: altered from the held chain, counted.
        assert_eq!(
            held.chain(&key, &ctx, &names("P,Q,T"), "retreat", 3),
            names("sP,sQ")
        );
        assert_eq!(held.forged, 2);
    }
}
