//! SM(m), the signed-messages algorithm of Lamport, Shostak and Pease (1982), for one
//! participant of one run, with ed25519 signatures. No I/O.
//!
//! The commander signs its order and sends it to every lieutenant. A lieutenant accepts a
//! message only if it carries one valid signature per node of its path (the commander first,
//! each later signer over the same value and the path up to itself). Each newly seen value
//! goes into the set `V`; if the path has at most `m` nodes the lieutenant signs and relays
//! it to every lieutenant not yet on the path. At the end a lieutenant obeys `choice(V)`: the
//! one value if `V` holds exactly one, else `retreat`. A traitor cannot change a value without
//! breaking the signatures before its own, so altered and forged messages are rejected (and
//! counted). SM(m) tolerates any number of traitors up to `m` with `n >= m + 2`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::RunError;
use super::om::{broadcast, check_run, pack, path_indices};
use crate::behaviour::RETREAT;

/// Public keys of a run's participants, by node name.
pub(crate) type KeyRing = HashMap<String, VerifyingKey>;

/// What a signature binds besides the value and the path: the run id, the commander and the
/// participants in order. A signature made in one run never verifies in another: run ids are
/// 128 random bits chosen by each run's driver ([`crate::agreement::auth::new_run_id`]), so no
/// two runs share one. (Before run ids were random, the id was `sm-SEED` and the commander
/// added a random nonce to every start; the random id does that job now.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Context {
    /// The run id.
    pub(crate) run: String,
    /// The commander.
    pub(crate) commander: String,
    /// Every participant, commander included, in the run's order.
    pub(crate) nodes: Arc<[String]>,
}

/// The first netstring of every signed message: names this format (`/3`: run, commander,
/// nodes; the nonce of `/2` is gone with predictable run ids).
pub(crate) const SIGNED_TAG: &str = "generals-sm/3";

/// The bytes a signer signs: netstrings (`LEN:BYTES,`, LEN in decimal) of [`SIGNED_TAG`],
/// the run, the commander, the number of nodes, each node, the value, then each name of the
/// path up to and including the signer (documented in docs/protocol-extensions.md). Every
/// field carries its length, so no two different (context, value, path) give the same bytes.
pub(crate) fn signed_bytes(ctx: &Context, value: &str, path: &[String]) -> Vec<u8> {
    let n = ctx.nodes.len().to_string();
    let mut out = Vec::with_capacity(96 + ctx.run.len() + value.len() + 8 * ctx.nodes.len());
    let fixed = [SIGNED_TAG, &ctx.run, &ctx.commander, &n];
    for part in fixed
        .into_iter()
        .chain(ctx.nodes.iter().map(String::as_str))
        .chain([value])
        .chain(path.iter().map(String::as_str))
    {
        out.extend_from_slice(part.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(part.as_bytes());
        out.push(b',');
    }
    out
}

/// Sign `value` along `path` (which ends with the signer).
pub(crate) fn sign(key: &SigningKey, ctx: &Context, value: &str, path: &[String]) -> String {
    encode(&key.sign(&signed_bytes(ctx, value, path)).to_bytes())
}

/// Base64 (standard alphabet) of bytes: how keys and signatures travel.
pub(crate) fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A public key from its base64 text.
pub(crate) fn decode_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("public key is not base64: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "public key must be 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("invalid public key: {e}"))
}

/// Check every signature of a chain.
pub(crate) fn verify_chain(
    keys: &KeyRing,
    ctx: &Context,
    value: &str,
    path: &[String],
    sigs: &[String],
) -> Result<(), RunError> {
    if sigs.len() != path.len() {
        return Err(RunError::SignatureCount {
            signatures: sigs.len(),
            path: path.len(),
        });
    }
    for (k, (signer, sig)) in path.iter().zip(sigs).enumerate() {
        let signer_is = || signer.clone();
        let key = (keys.get(signer)).ok_or_else(|| RunError::NoKey {
            signer: signer_is(),
        })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .map_err(|_| RunError::SignatureNotBase64 {
                signer: signer_is(),
            })?;
        let sig = Signature::from_slice(&bytes).map_err(|_| RunError::SignatureMalformed {
            signer: signer_is(),
        })?;
        key.verify_strict(&signed_bytes(ctx, value, &path[..=k]), &sig)
            .map_err(|_| RunError::BadSignature {
                signer: signer_is(),
                value: value.to_string(),
                path: path[..=k].to_vec(),
            })?;
    }
    Ok(())
}

/// One message to send: `value` for `to` along `path` (ending with the sender), with the
/// signatures received so far; the sender appends its own over the value it actually sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SmRelay {
    /// Receiver.
    pub(crate) to: String,
    /// Path ending with the sender.
    pub(crate) path: Vec<String>,
    /// The value an honest node sends.
    pub(crate) value: String,
    /// Signatures of the path before the sender.
    pub(crate) prior: Vec<String>,
    /// Index of the receiver in this broadcast.
    pub(crate) index: usize,
    /// Receivers of this broadcast.
    pub(crate) count: usize,
}

/// OM's broadcast carrying the signatures received so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SmBroadcast {
    /// Path, value and receivers.
    pub(crate) broadcast: super::om::Broadcast,
    /// Signatures of the path before the sender.
    pub(crate) prior: Vec<String>,
}

#[cfg(test)]
impl SmBroadcast {
    /// Number of messages (receivers).
    pub(crate) fn len(&self) -> usize {
        self.broadcast.len()
    }

    /// No receiver: nothing to send.
    pub(crate) fn is_empty(&self) -> bool {
        self.broadcast.is_empty()
    }
}

impl IntoIterator for SmBroadcast {
    type Item = SmRelay;
    type IntoIter = std::vec::IntoIter<SmRelay>;
    fn into_iter(self) -> Self::IntoIter {
        let prior = self.prior;
        self.broadcast
            .relays()
            .into_iter()
            .map(|r| SmRelay {
                to: r.to,
                path: r.path,
                value: r.value,
                prior: prior.clone(),
                index: r.index,
                count: r.count,
            })
            .collect::<Vec<_>>()
            .into_iter()
    }
}

fn signed(broadcast: super::om::Broadcast, prior: &[String]) -> SmBroadcast {
    SmBroadcast {
        broadcast,
        prior: prior.to_vec(),
    }
}

/// One participant's state in one SM run.
#[derive(Debug, Clone)]
pub(crate) struct SmRun {
    ctx: Arc<Context>,
    me: String,
    nodes: Arc<[String]>,
    commander: usize,
    m: usize,
    values: BTreeSet<String>,
    /// Messages accepted, by packed path and value: a message accepted again (a replay, or a
    /// retried call) is a duplicate, answered but not counted, stored or relayed.
    seen: HashSet<(u64, String)>,
    /// Values this node has relayed (each at most once, see [`SmRun::take_relay`]).
    relayed: BTreeSet<String>,
    accepted: u64,
    rejected: u64,
    reasons: Vec<String>,
}

/// What taking a valid message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// The same path and value were accepted before: nothing changes.
    Duplicate,
    /// A new message: its value is in `V`, and this is the relay it may cause (empty after
    /// the last round or when its value was relayed already). Whether it goes out is decided
    /// when its round opens ([`SmRun::take_relay`]), so that the same messages always make the
    /// same relays, whatever order they arrived in.
    New(SmBroadcast),
}

impl SmRun {
    /// A run among `nodes` (commander included) as seen by `me`, its signatures bound to
    /// `run`, the commander and the nodes (see [`Context`]).
    pub(crate) fn new(
        run: &str,
        me: &str,
        commander: &str,
        nodes: &[String],
        m: usize,
    ) -> Result<Self, RunError> {
        check_run(me, commander, nodes)?;
        let index = nodes.iter().position(|n| n == commander).unwrap_or(0);
        let nodes: Arc<[String]> = nodes.into();
        Ok(SmRun {
            ctx: Arc::new(Context {
                run: run.to_string(),
                commander: commander.to_string(),
                nodes: nodes.clone(),
            }),
            me: me.to_string(),
            nodes,
            commander: index,
            m,
            values: BTreeSet::new(),
            seen: HashSet::new(),
            relayed: BTreeSet::new(),
            accepted: 0,
            rejected: 0,
            reasons: Vec::new(),
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

    /// What this run's signatures bind besides value and path.
    pub(crate) fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// The commander's round 1.
    pub(crate) fn command(&self, order: &str) -> SmBroadcast {
        signed(
            broadcast(&self.nodes, &self.me, &[], &Arc::from(order)),
            &[],
        )
    }

    /// Take a message. A message whose path or signatures do not check out is rejected:
    /// counted, its reason kept, and an error returned. A valid one goes into `V`; see
    /// [`Accepted`] for the relay it may cause.
    pub(crate) fn receive(
        &mut self,
        keys: &KeyRing,
        path: &[String],
        value: &str,
        sigs: &[String],
    ) -> Result<Accepted, RunError> {
        let checked = if self.is_commander() {
            Err(RunError::CommanderReceives)
        } else {
            path_indices(&self.nodes, &self.me, self.commander, self.m, path)
                .and_then(|ix| verify_chain(keys, &self.ctx, value, path, sigs).map(|()| ix))
        };
        let ix = match checked {
            Ok(ix) => ix,
            Err(reason) => {
                self.rejected += 1;
                if self.reasons.len() < 8 {
                    self.reasons.push(reason.to_string());
                }
                return Err(reason);
            }
        };
        if !self.seen.insert((pack(&ix), value.to_string())) {
            return Ok(Accepted::Duplicate);
        }
        self.accepted += 1;
        self.values.insert(value.to_string());
        if path.len() > self.m || self.relayed.contains(value) {
            return Ok(Accepted::New(SmBroadcast::default()));
        }
        Ok(Accepted::New(signed(
            broadcast(&self.nodes, &self.me, &ix, &Arc::from(value)),
            sigs,
        )))
    }

    /// Let go of the (path, value) pairs accepted, which only tell duplicates apart: once a
    /// run is decided they serve nothing (any later message is late).
    pub(crate) fn release(&mut self) {
        self.seen = HashSet::new();
    }

    /// Whether a message of `path` with `value` was accepted already: a copy of it, however
    /// late, changes nothing and says nothing about its sender.
    pub(crate) fn is_duplicate(&self, path: &[String], value: &str) -> bool {
        !self.is_commander()
            && path_indices(&self.nodes, &self.me, self.commander, self.m, path)
                .is_ok_and(|ix| self.seen.contains(&(pack(&ix), value.to_string())))
    }

    /// Whether a relay of `value` goes out, called for the relays a round owes in the order of
    /// their paths when the round opens: the first one of a value not relayed before does
    /// (and the value is relayed from now on), the others do not. That is SM's rule "relay a
    /// value the first time you see it", with "first" read round by round and, within a
    /// round, by path: deterministic, where the order of arrival is not.
    pub(crate) fn take_relay(&mut self, value: &str) -> bool {
        self.relayed.insert(value.to_string())
    }

    /// `choice(V)`: the single value received, else `retreat`.
    pub(crate) fn decide(&self) -> String {
        match (self.values.len(), self.values.first()) {
            (1, Some(v)) => v.clone(),
            _ => RETREAT.to_string(),
        }
    }

    /// Values seen (the set `V`).
    pub(crate) fn values(&self) -> Vec<String> {
        self.values.iter().cloned().collect()
    }

    /// Messages accepted (duplicates not counted).
    pub(crate) fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Messages rejected (bad signature or path).
    pub(crate) fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Why messages were rejected (the first few).
    pub(crate) fn reasons(&self) -> &[String] {
        &self.reasons
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::{ATTACK, Behaviour};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn names(s: &str) -> Vec<String> {
        s.split(',').map(str::to_string).collect()
    }

    /// The context of run `run` among `nodes`, `C` commanding.
    fn ctx(run: &str, nodes: &[String]) -> Context {
        Context {
            run: run.into(),
            commander: "C".into(),
            nodes: nodes.into(),
        }
    }

    fn ring() -> KeyRing {
        [("C", 1u8), ("A", 2), ("B", 3)]
            .into_iter()
            .map(|(n, s)| (n.to_string(), key(s).verifying_key()))
            .collect()
    }

    fn relays(a: Accepted) -> SmBroadcast {
        match a {
            Accepted::New(b) => b,
            Accepted::Duplicate => panic!("a duplicate"),
        }
    }

    #[test]
    fn a_forged_or_altered_message_is_rejected() {
        let nodes = names("C,A,B");
        let keys = ring();
        let run1 = ctx("run1", &nodes);
        let mut a = SmRun::new("run1", "A", "C", &nodes, 1).unwrap();
        let good = sign(&key(1), &run1, ATTACK, &names("C"));
        // B pretends the commander said retreat, signing in the commander's place.
        let forged = sign(&key(3), &run1, RETREAT, &names("C"));
        assert!(a.receive(&keys, &names("C"), RETREAT, &[forged]).is_err());
        // B relays the commander's attack but changes it to retreat.
        let mut chain = vec![good.clone()];
        chain.push(sign(&key(3), &run1, RETREAT, &names("C,B")));
        assert!(a.receive(&keys, &names("C,B"), RETREAT, &chain).is_err());
        // The same signature in another run is worthless.
        let mut other = SmRun::new("run2", "A", "C", &nodes, 1).unwrap();
        assert!(
            other
                .receive(&keys, &names("C"), ATTACK, std::slice::from_ref(&good))
                .is_err()
        );
        assert_eq!(a.rejected(), 2);
        let out = a.receive(&keys, &names("C"), ATTACK, &[good]).unwrap();
        assert_eq!(relays(out).len(), 1);
        assert_eq!(a.decide(), ATTACK);
        assert_eq!(a.accepted(), 1);
    }

    #[test]
    fn a_replayed_message_is_a_duplicate_and_changes_nothing() {
        let nodes = names("C,A,B");
        let keys = ring();
        let mut a = SmRun::new("r", "A", "C", &nodes, 1).unwrap();
        let good = sign(&key(1), &ctx("r", &nodes), ATTACK, &names("C"));
        let first = a.receive(&keys, &names("C"), ATTACK, std::slice::from_ref(&good));
        assert!(matches!(first, Ok(Accepted::New(_))));
        for _ in 0..5 {
            let again = a.receive(&keys, &names("C"), ATTACK, std::slice::from_ref(&good));
            assert_eq!(again, Ok(Accepted::Duplicate));
        }
        assert_eq!((a.accepted(), a.rejected()), (1, 0));
        assert_eq!(a.values(), [ATTACK]);
    }

    #[test]
    fn a_value_is_relayed_once_whatever_order_its_messages_came_in() {
        let nodes = names("C,A,B,D");
        let mut a = SmRun::new("r", "A", "C", &nodes, 2).unwrap();
        assert!(a.take_relay(ATTACK));
        assert!(!a.take_relay(ATTACK), "relayed once");
        assert!(a.take_relay(RETREAT), "another value is relayed too");
    }

    #[test]
    fn a_signature_binds_run_commander_and_nodes() {
        let nodes = names("C,A,B");
        let keys = ring();
        let first = ctx("sm-7", &nodes);
        let sig = sign(&key(1), &first, RETREAT, &names("C"));
        assert!(
            verify_chain(
                &keys,
                &first,
                RETREAT,
                &names("C"),
                std::slice::from_ref(&sig)
            )
            .is_ok()
        );
        // Another run (another random id): the signature is worthless.
        let mut later = SmRun::new("sm-8", "A", "C", &nodes, 1).unwrap();
        let err = later
            .receive(&keys, &names("C"), RETREAT, std::slice::from_ref(&sig))
            .unwrap_err();
        assert!(err.to_string().contains("bad signature of C"), "{err}");
        assert_eq!((later.rejected(), later.decide()), (1, RETREAT.to_string()));
        assert!(later.values().is_empty(), "a replay adds nothing to V");
        // Other nodes (order included) or another commander: worthless too.
        let mut other_nodes = first.clone();
        other_nodes.nodes = names("C,B,A").into();
        let mut other_commander = first.clone();
        other_commander.commander = "A".into();
        for other in [other_nodes, other_commander] {
            let chain = std::slice::from_ref(&sig);
            assert!(verify_chain(&keys, &other, RETREAT, &names("C"), chain).is_err());
        }
    }

    #[test]
    fn signed_bytes_are_netstrings() {
        let c = Context {
            run: "sm-42".into(),
            commander: "P".into(),
            nodes: names("P,Q,R").into(),
        };
        assert_eq!(
            String::from_utf8(signed_bytes(&c, ATTACK, &names("P,Q"))).unwrap(),
            "13:generals-sm/3,5:sm-42,1:P,1:3,1:P,1:Q,1:R,6:attack,1:P,1:Q,"
        );
        // The test vectors of docs/protocol-extensions.md.
        assert_eq!(
            sign(&key(1), &c, ATTACK, &names("P")),
            "D8RceiYH6+NIjHCNIvj9iVVH4jD4o2gt0OS+p6XCYZ9vdfws8tTo9mR+R/FCf3z0EDUxTNj11bai+MqmKtVLBQ=="
        );
        assert_eq!(
            sign(&key(2), &c, ATTACK, &names("P,Q")),
            "/evcKwmsi4BBzDIzhtSyi23WOu7frycRA70T8/EdZd3sq56S1h/emJVGjEcKVwp8NgeHIwBaKnVk8DSSYPAcBw=="
        );
    }

    #[test]
    fn two_faced_commander_with_three_nodes_still_agrees() {
        // SM(1) with n = 3: below OM's bound, fine for SM.
        let nodes = names("C,A,B");
        let k: HashMap<&str, SigningKey> = [("C", key(1)), ("A", key(2)), ("B", key(3))]
            .into_iter()
            .collect();
        let keys: KeyRing = k
            .iter()
            .map(|(n, s)| (n.to_string(), s.verifying_key()))
            .collect();
        let mut runs: HashMap<String, SmRun> = nodes
            .iter()
            .map(|n| (n.clone(), SmRun::new("r", n, "C", &nodes, 1).unwrap()))
            .collect();
        let mut queue: Vec<(String, SmRelay)> = runs["C"]
            .command(ATTACK)
            .into_iter()
            .map(|r| ("C".into(), r))
            .collect();
        while let Some((from, r)) = queue.pop() {
            let b = if from == "C" {
                Behaviour::TwoFaced
            } else {
                Behaviour::Honest
            };
            let Some(v) = b.outgoing(&r.value, &r.to, r.index, r.count, 0) else {
                continue;
            };
            let mut sigs = r.prior.clone();
            sigs.push(sign(&k[from.as_str()], &ctx("r", &nodes), &v, &r.path));
            let run = runs.get_mut(&r.to).unwrap();
            if let Ok(Accepted::New(relays)) = run.receive(&keys, &r.path, &v, &sigs)
                && !relays.is_empty()
                && run.take_relay(&v)
            {
                queue.extend(relays.into_iter().map(|x| (r.to.clone(), x)));
            }
        }
        assert_eq!(runs["A"].decide(), runs["B"].decide());
        assert_eq!(runs["A"].values().len(), 2);
    }
}
