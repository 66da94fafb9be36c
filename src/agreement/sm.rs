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

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::om::{broadcast, check_run, path_indices};
use crate::behaviour::RETREAT;

/// Public keys of a run's participants, by node name.
pub type KeyRing = HashMap<String, VerifyingKey>;

/// What a signature binds besides the value and the path: the run id, the nonce the
/// commander made for this run at `sm_start`, the commander and the participants in order. A
/// signature made in one run never verifies in another, even one with the same id: the
/// commander makes a fresh nonce for every start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The run id.
    pub run: String,
    /// The run's nonce: [`NONCE_BYTES`] random bytes in base64, made by the commander.
    pub nonce: String,
    /// The commander.
    pub commander: String,
    /// Every participant, commander included, in the run's order.
    pub nodes: Arc<[String]>,
}

/// Random bytes in a run's nonce.
pub const NONCE_BYTES: usize = 16;

/// A fresh nonce: [`NONCE_BYTES`] bytes from the system's randomness, base64 with padding (24
/// characters).
pub fn new_nonce() -> Result<String, String> {
    let mut raw = [0u8; NONCE_BYTES];
    getrandom::fill(&mut raw).map_err(|e| format!("no randomness for the run's nonce: {e}"))?;
    Ok(encode(&raw))
}

/// Check a nonce received from a caller: base64 (standard, padded) of [`NONCE_BYTES`] bytes.
pub fn check_nonce(text: &str) -> Result<(), String> {
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Ok(raw) if raw.len() == NONCE_BYTES => Ok(()),
        _ => Err(format!(
            "nonce must be {NONCE_BYTES} bytes in base64 (24 characters, from the commander's sm_start)"
        )),
    }
}

/// The bytes a signer signs: netstrings (`LEN:BYTES,`, LEN in decimal) of `generals-sm/2`,
/// the run, the nonce, the commander, the number of nodes, each node, the value, then each
/// name of the path up to and including the signer (documented in
/// docs/protocol-extensions.md). Every field carries its length, so no two different
/// (context, value, path) give the same bytes.
pub fn signed_bytes(ctx: &Context, value: &str, path: &[String]) -> Vec<u8> {
    let n = ctx.nodes.len().to_string();
    let mut out = Vec::with_capacity(96 + ctx.run.len() + value.len() + 8 * ctx.nodes.len());
    let fixed = ["generals-sm/2", &ctx.run, &ctx.nonce, &ctx.commander, &n];
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
pub fn sign(key: &SigningKey, ctx: &Context, value: &str, path: &[String]) -> String {
    encode(&key.sign(&signed_bytes(ctx, value, path)).to_bytes())
}

/// Base64 (standard alphabet) of bytes: how keys and signatures travel.
pub fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A public key from its base64 text.
pub fn decode_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("public key is not base64: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "public key must be 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("invalid public key: {e}"))
}

/// Check every signature of a chain.
pub fn verify_chain(
    keys: &KeyRing,
    ctx: &Context,
    value: &str,
    path: &[String],
    sigs: &[String],
) -> Result<(), String> {
    if sigs.len() != path.len() {
        return Err(format!(
            "{} signatures for a path of {}",
            sigs.len(),
            path.len()
        ));
    }
    for (k, (signer, sig)) in path.iter().zip(sigs).enumerate() {
        let key = keys
            .get(signer)
            .ok_or_else(|| format!("no public key for {signer}"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .map_err(|_| format!("signature of {signer} is not base64"))?;
        let sig = Signature::from_slice(&bytes)
            .map_err(|_| format!("signature of {signer} is malformed"))?;
        key.verify_strict(&signed_bytes(ctx, value, &path[..=k]), &sig)
            .map_err(|_| {
                format!(
                    "bad signature of {signer} on {value:?} along {:?}",
                    &path[..=k]
                )
            })?;
    }
    Ok(())
}

/// One message to send: `value` for `to` along `path` (ending with the sender), with the
/// signatures received so far; the sender appends its own over the value it actually sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmRelay {
    /// Receiver.
    pub to: String,
    /// Path ending with the sender.
    pub path: Vec<String>,
    /// The value an honest node sends.
    pub value: String,
    /// Signatures of the path before the sender.
    pub prior: Vec<String>,
    /// Index of the receiver in this broadcast.
    pub index: usize,
    /// Receivers of this broadcast.
    pub count: usize,
}

/// OM's broadcast carrying the signatures received so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmBroadcast {
    /// Path, value and receivers.
    pub broadcast: super::om::Broadcast,
    /// Signatures of the path before the sender.
    pub prior: Vec<String>,
}

impl SmBroadcast {
    /// Number of messages (receivers).
    pub fn len(&self) -> usize {
        self.broadcast.len()
    }

    /// No receiver: nothing to send.
    pub fn is_empty(&self) -> bool {
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
pub struct SmRun {
    ctx: Arc<Context>,
    me: String,
    nodes: Arc<[String]>,
    commander: usize,
    m: usize,
    values: BTreeSet<String>,
    accepted: u64,
    rejected: u64,
    reasons: Vec<String>,
}

impl SmRun {
    /// A run among `nodes` (commander included) as seen by `me`, its signatures bound to
    /// `nonce` (see [`Context`]).
    pub fn new(
        run: &str,
        nonce: &str,
        me: &str,
        commander: &str,
        nodes: &[String],
        m: usize,
    ) -> Result<Self, String> {
        check_run(me, commander, nodes)?;
        let index = nodes.iter().position(|n| n == commander).unwrap_or(0);
        let nodes: Arc<[String]> = nodes.into();
        Ok(SmRun {
            ctx: Arc::new(Context {
                run: run.to_string(),
                nonce: nonce.to_string(),
                commander: commander.to_string(),
                nodes: nodes.clone(),
            }),
            me: me.to_string(),
            nodes,
            commander: index,
            m,
            values: BTreeSet::new(),
            accepted: 0,
            rejected: 0,
            reasons: Vec::new(),
        })
    }

    /// Whether this participant is the commander.
    pub fn is_commander(&self) -> bool {
        self.nodes[self.commander] == self.me
    }

    /// Every participant, in the run's order.
    pub fn nodes(&self) -> &Arc<[String]> {
        &self.nodes
    }

    /// What this run's signatures bind besides value and path.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// The commander's round 1.
    pub fn command(&self, order: &str) -> SmBroadcast {
        signed(
            broadcast(&self.nodes, &self.me, &[], &Arc::from(order)),
            &[],
        )
    }

    /// Take a message. A message whose path or signatures do not check out is rejected:
    /// counted, its reason kept, and an error returned.
    pub fn receive(
        &mut self,
        keys: &KeyRing,
        path: &[String],
        value: &str,
        sigs: &[String],
    ) -> Result<SmBroadcast, String> {
        let checked = if self.is_commander() {
            Err("the commander receives no messages".to_string())
        } else {
            path_indices(&self.nodes, &self.me, self.commander, self.m, path)
                .and_then(|ix| verify_chain(keys, &self.ctx, value, path, sigs).map(|()| ix))
        };
        let ix = match checked {
            Ok(ix) => ix,
            Err(reason) => {
                self.rejected += 1;
                if self.reasons.len() < 8 {
                    self.reasons.push(reason.clone());
                }
                return Err(reason);
            }
        };
        self.accepted += 1;
        if !self.values.insert(value.to_string()) || path.len() > self.m {
            return Ok(SmBroadcast::default());
        }
        Ok(signed(
            broadcast(&self.nodes, &self.me, &ix, &Arc::from(value)),
            sigs,
        ))
    }

    /// `choice(V)`: the single value received, else `retreat`.
    pub fn decide(&self) -> String {
        match (self.values.len(), self.values.first()) {
            (1, Some(v)) => v.clone(),
            _ => RETREAT.to_string(),
        }
    }

    /// The decision can no longer change: two or more values seen.
    pub fn is_settled(&self) -> bool {
        self.values.len() >= 2
    }

    /// Values seen (the set `V`).
    pub fn values(&self) -> Vec<String> {
        self.values.iter().cloned().collect()
    }

    /// Messages accepted.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Messages rejected (bad signature or path).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Why messages were rejected (the first few).
    pub fn reasons(&self) -> &[String] {
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

    /// The context of run `run` with nonce `nonce` among `nodes`, `C` commanding.
    fn ctx(run: &str, nonce: &str, nodes: &[String]) -> Context {
        Context {
            run: run.into(),
            nonce: nonce.into(),
            commander: "C".into(),
            nodes: nodes.into(),
        }
    }

    const N1: &str = "AAAAAAAAAAAAAAAAAAAAAA==";
    const N2: &str = "AQEBAQEBAQEBAQEBAQEBAQ==";

    #[test]
    fn a_forged_or_altered_message_is_rejected() {
        let nodes = names("C,A,B");
        let keys: KeyRing = [("C", 1u8), ("A", 2), ("B", 3)]
            .into_iter()
            .map(|(n, s)| (n.to_string(), key(s).verifying_key()))
            .collect();
        let run1 = ctx("run1", N1, &nodes);
        let mut a = SmRun::new("run1", N1, "A", "C", &nodes, 1).unwrap();
        let good = sign(&key(1), &run1, ATTACK, &names("C"));
        // B pretends the commander said retreat, signing in the commander's place.
        let forged = sign(&key(3), &run1, RETREAT, &names("C"));
        assert!(a.receive(&keys, &names("C"), RETREAT, &[forged]).is_err());
        // B relays the commander's attack but changes it to retreat.
        let mut chain = vec![good.clone()];
        chain.push(sign(&key(3), &run1, RETREAT, &names("C,B")));
        assert!(a.receive(&keys, &names("C,B"), RETREAT, &chain).is_err());
        // The same signature in another run is worthless.
        let mut other = SmRun::new("run2", N1, "A", "C", &nodes, 1).unwrap();
        assert!(
            other
                .receive(&keys, &names("C"), ATTACK, std::slice::from_ref(&good))
                .is_err()
        );
        assert_eq!(a.rejected(), 2);
        let relays = a.receive(&keys, &names("C"), ATTACK, &[good]).unwrap();
        assert_eq!(relays.len(), 1);
        assert_eq!(a.decide(), ATTACK);
        assert_eq!(a.accepted(), 1);
    }

    #[test]
    fn a_signature_binds_nonce_commander_and_nodes() {
        let nodes = names("C,A,B");
        let keys: KeyRing = [("C", 1u8), ("A", 2), ("B", 3)]
            .into_iter()
            .map(|(n, s)| (n.to_string(), key(s).verifying_key()))
            .collect();
        let first = ctx("sm-7", N1, &nodes);
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
        // The same run id started again: a new nonce, and the old signature is worthless.
        let mut later = SmRun::new("sm-7", N2, "A", "C", &nodes, 1).unwrap();
        let err = later
            .receive(&keys, &names("C"), RETREAT, std::slice::from_ref(&sig))
            .unwrap_err();
        assert!(err.contains("bad signature of C"), "{err}");
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
    fn signed_bytes_are_netstrings_and_nonces_check() {
        let c = Context {
            run: "sm-42".into(),
            nonce: N1.into(),
            commander: "P".into(),
            nodes: names("P,Q,R").into(),
        };
        assert_eq!(
            String::from_utf8(signed_bytes(&c, ATTACK, &names("P,Q"))).unwrap(),
            "13:generals-sm/2,5:sm-42,24:AAAAAAAAAAAAAAAAAAAAAA==,1:P,1:3,1:P,1:Q,1:R,6:attack,1:P,1:Q,"
        );
        // The test vectors of docs/protocol-extensions.md.
        assert_eq!(
            sign(&key(1), &c, ATTACK, &names("P")),
            "BPK/3yOTrR/c9TOMsjPS+ltdB1+FmJhwBXTCVDPTwb596+cAMQjm9JhwktwqTEnjQPl0l4MWq6A8iZfZ9gD0DA=="
        );
        assert_eq!(
            sign(&key(2), &c, ATTACK, &names("P,Q")),
            "8bWlY3oXy0EWVqwNOzxY4xsaV0AE1tVtOAOCGPDKTKIMFvmMFBlcwZqV87Fp0QAEqeDD8wl3U9k+xvkQOUx7DA=="
        );
        let fresh = new_nonce().unwrap();
        assert_eq!(fresh.len(), 24);
        assert!(check_nonce(&fresh).is_ok());
        assert_ne!(fresh, new_nonce().unwrap());
        for bad in ["", "AAAA", "not base64!", "AAAAAAAAAAAAAAAAAAAAAAAA"] {
            assert!(check_nonce(bad).is_err(), "{bad}");
        }
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
            .map(|n| (n.clone(), SmRun::new("r", N1, n, "C", &nodes, 1).unwrap()))
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
            sigs.push(sign(&k[from.as_str()], &ctx("r", N1, &nodes), &v, &r.path));
            if let Ok(relays) = runs
                .get_mut(&r.to)
                .unwrap()
                .receive(&keys, &r.path, &v, &sigs)
            {
                queue.extend(relays.into_iter().map(|x| (r.to.clone(), x)));
            }
        }
        assert_eq!(runs["A"].decide(), runs["B"].decide());
        assert_eq!(runs["A"].values().len(), 2);
    }
}
