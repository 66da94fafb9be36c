//! Who may drive a run and who sent a message: the secrets of one agreement run, without I/O.
//!
//! Three promises of the project rest on this file. A run's id is 128 random bits chosen by
//! its driver ([`RunId::random`]), so nobody else can name it before it starts and two drivers
//! never collide. Each node gets its own *capability* for the run at `*_start`
//! ([`Credentials`]); `*_order`, `*_round`, `*_decide` and `trace_events` must present it, so a
//! caller without it (an outsider, another node, a traitor) cannot advance, end or read a run.
//! And every node-to-node message carries a MAC ([`mac`]) made with a key only its sender and
//! receiver hold (one key per pair of nodes, handed out by the driver at `*_start`): the
//! receiver knows who sent it, which OM(m) assumes ("A2: the receiver of a message knows who
//! sent it") and plain HTTP cannot give. A traitor can still lie about values and about what it
//! heard; it cannot speak for another node.
//!
//! Formats (docs/protocol-extensions.md, "Security model"): capabilities and keys are
//! [`SECRET_BYTES`] random bytes in standard base64 with padding ([`Secret`]); a MAC is the first
//! [`MAC_BYTES`] bytes of HMAC-SHA256 over the netstrings of [`mac_bytes`], in base64.

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::calls::Protocol;
pub use crate::calls::{RUN_ID_BYTES, RunId, SECRET_BYTES, Secret};

/// Bytes of HMAC-SHA256 a message carries (its first half: 128 bits, as RFC 2104 allows).
pub(crate) const MAC_BYTES: usize = 16;
/// The first netstring of every MAC'd message: names this format, so a MAC of another use of
/// the same key can never pass for one.
pub(crate) const MAC_TAG: &str = "generals-mac/1";

/// Why the secrets of a run could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The operating system gave no random bytes.
    #[error("no randomness from the operating system: {0}")]
    NoRandomness(String),
}

/// A fresh secret (capability or pair key).
pub fn new_secret() -> Result<Secret, AuthError> {
    let mut raw = [0u8; SECRET_BYTES];
    getrandom::fill(&mut raw).map_err(|e| AuthError::NoRandomness(e.to_string()))?;
    Ok(Secret(raw))
}

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The bytes a message's MAC covers: netstrings (`LEN:BYTES,`) of [`MAC_TAG`], the method
/// (`om_message` / `sm_message`), the run, the receiver, the value, the number of path names,
/// each name of the path (commander first, the sender last), then each signature (SM). Every
/// field carries its length and the path its count, so no two different messages give the
/// same bytes; the sender is the path's last name, so the key it is checked with (the pair of
/// sender and receiver) is fixed by the message itself.
pub(crate) fn mac_bytes(
    method: &str,
    run: &str,
    to: &str,
    path: &[String],
    value: &str,
    sigs: &[String],
) -> Vec<u8> {
    let count = decimal(path.len());
    let count = std::str::from_utf8(count.digits()).unwrap_or("0");
    let fixed = [MAC_TAG, method, run, to, value, count];
    let parts = || {
        fixed
            .into_iter()
            .chain(path.iter().map(String::as_str))
            .chain(sigs.iter().map(String::as_str))
    };
    let mut out = Vec::with_capacity(parts().map(|p| p.len() + 22).sum());
    for part in parts() {
        out.extend_from_slice(decimal(part.len()).digits());
        out.push(b':');
        out.extend_from_slice(part.as_bytes());
        out.push(b',');
    }
    out
}

/// A length written in decimal without a heap allocation (a netstring's prefix).
struct Decimal {
    buf: [u8; 20],
    at: usize,
}

impl Decimal {
    fn digits(&self) -> &[u8] {
        &self.buf[self.at..]
    }
}

fn decimal(mut n: usize) -> Decimal {
    let mut d = Decimal {
        buf: [0; 20],
        at: 20,
    };
    loop {
        d.at -= 1;
        d.buf[d.at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return d;
        }
    }
}

/// The key a pair of nodes shares, ready to make and check MACs: the HMAC state after the key
/// (its two padded blocks hashed once, not once per message).
#[derive(Clone)]
pub(crate) struct PairKey(Hmac<Sha256>);

impl std::fmt::Debug for PairKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairKey(..)")
    }
}

impl PairKey {
    /// The state of `key`.
    pub(crate) fn new(key: &Secret) -> Self {
        // HMAC takes a key of any length; this cannot fail.
        PairKey(<Hmac<Sha256> as Mac>::new_from_slice(&key.0).expect("HMAC takes any key length"))
    }

    /// The HMAC of a message's [`mac_bytes`], hashed in one update: fed part by part (four
    /// updates a part, about forty a message) the hash's buffering cost more than the
    /// allocation of the bytes (BENCHMARKS.md, "Issue 32").
    fn digest(
        &self,
        method: &str,
        run: &str,
        to: &str,
        path: &[String],
        value: &str,
        sigs: &[String],
    ) -> Hmac<Sha256> {
        let mut m = self.0.clone();
        m.update(&mac_bytes(method, run, to, path, value, sigs));
        m
    }

    /// The MAC of a message (see [`mac_bytes`]) sent to `to`.
    pub(crate) fn mac(
        &self,
        method: &str,
        run: &str,
        to: &str,
        path: &[String],
        value: &str,
        sigs: &[String],
    ) -> String {
        let tag = self.digest(method, run, to, path, value, sigs).finalize();
        encode(&tag.into_bytes()[..MAC_BYTES])
    }

    /// Whether `given` is the MAC of the message (checked in constant time).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn verify(
        &self,
        method: &str,
        run: &str,
        to: &str,
        path: &[String],
        value: &str,
        sigs: &[String],
        given: &str,
    ) -> bool {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(given) else {
            return false;
        };
        raw.len() == MAC_BYTES
            && self
                .digest(method, run, to, path, value, sigs)
                .verify_truncated_left(&raw)
                .is_ok()
    }
}

/// The MAC of a message (see [`mac_bytes`]) under the key its sender shares with `to`.
pub fn mac(
    key: &Secret,
    method: &str,
    run: &str,
    to: &str,
    path: &[String],
    value: &str,
    sigs: &[String],
) -> String {
    PairKey::new(key).mac(method, run, to, path, value, sigs)
}

/// Whether `given` is the MAC of the message under `key` (checked in constant time).
#[allow(clippy::too_many_arguments)]
#[cfg(test)]
pub(crate) fn verify(
    key: &Secret,
    method: &str,
    run: &str,
    to: &str,
    path: &[String],
    value: &str,
    sigs: &[String],
    given: &str,
) -> bool {
    PairKey::new(key).verify(method, run, to, path, value, sigs, given)
}

/// What a driver makes for one run before starting it: the id, one capability per node and
/// one key per pair of nodes. Only the driver holds all of it; each node gets its own share
/// ([`Credentials::capability`], [`Credentials::keys_of`]) in its `*_start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The run's id.
    pub run: RunId,
    capabilities: BTreeMap<String, Secret>,
    /// Key of each unordered pair, by (smaller name, larger name).
    keys: BTreeMap<(String, String), Secret>,
}

impl Credentials {
    /// Fresh secrets for a run of `protocol` among `nodes`.
    pub fn new(protocol: Protocol, nodes: &[String]) -> Result<Self, AuthError> {
        let mut capabilities = BTreeMap::new();
        let mut keys = BTreeMap::new();
        for (i, a) in nodes.iter().enumerate() {
            capabilities.insert(a.clone(), new_secret()?);
            for b in &nodes[i + 1..] {
                keys.insert(pair(a, b), new_secret()?);
            }
        }
        Ok(Credentials {
            run: RunId::random(protocol).map_err(|e| AuthError::NoRandomness(e.to_string()))?,
            capabilities,
            keys,
        })
    }

    /// Node `node`'s capability (`None` for a node not in the run).
    pub fn capability(&self, node: &str) -> Option<Secret> {
        self.capabilities.get(node).copied()
    }

    /// The keys `node` shares with every other participant, by the other's name: the `keys`
    /// argument of its `*_start`.
    pub fn keys_of(&self, node: &str) -> BTreeMap<String, Secret> {
        self.keys
            .iter()
            .filter_map(|((a, b), key)| match (a == node, b == node) {
                (true, _) => Some((b.clone(), *key)),
                (_, true) => Some((a.clone(), *key)),
                _ => None,
            })
            .collect()
    }
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn mac_bytes_are_netstrings_and_the_vector_holds() {
        let path = names(&["P", "Q"]);
        let bytes = mac_bytes("om_message", "om-1", "R", &path, "attack", &[]);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "14:generals-mac/1,10:om_message,4:om-1,1:R,6:attack,1:2,1:P,1:Q,"
        );
        // The test vector of docs/protocol-extensions.md: key = 32 bytes 0x01.
        let key = Secret([1u8; SECRET_BYTES]);
        let tag = mac(&key, "om_message", "om-1", "R", &path, "attack", &[]);
        assert_eq!(tag, "EFN5WPFHrrOBbcUVV9VTdg==");
        assert_eq!(tag.len(), 24);
        assert!(verify(
            &key,
            "om_message",
            "om-1",
            "R",
            &path,
            "attack",
            &[],
            &tag
        ));
    }

    #[test]
    fn the_mac_is_the_truncated_hmac_of_the_netstrings() {
        let key = Secret([9u8; SECRET_BYTES]);
        let path = names(&["P", "Q", "R"]);
        let sigs = names(&["s1", &"x".repeat(123)]);
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key.0).unwrap();
        m.update(&mac_bytes(
            "sm_message",
            "sm-9",
            "S",
            &path,
            "retreat",
            &sigs,
        ));
        let whole = encode(&m.finalize().into_bytes()[..MAC_BYTES]);
        let made = PairKey::new(&key).mac("sm_message", "sm-9", "S", &path, "retreat", &sigs);
        assert_eq!(made, whole);
    }

    #[test]
    fn any_change_breaks_the_mac() {
        let key = Secret([7u8; SECRET_BYTES]);
        let path = names(&["P", "Q"]);
        let sigs = names(&["s1", "s2"]);
        let good = mac(&key, "sm_message", "sm-1", "R", &path, "attack", &sigs);
        let check = |k: &Secret, m, run, to, p: &[String], v, s: &[String], t: &str| {
            verify(k, m, run, to, p, v, s, t)
        };
        assert!(check(
            &key,
            "sm_message",
            "sm-1",
            "R",
            &path,
            "attack",
            &sigs,
            &good
        ));
        let other = Secret([8u8; SECRET_BYTES]);
        assert!(!check(
            &other,
            "sm_message",
            "sm-1",
            "R",
            &path,
            "attack",
            &sigs,
            &good
        ));
        assert!(!check(
            &key,
            "om_message",
            "sm-1",
            "R",
            &path,
            "attack",
            &sigs,
            &good
        ));
        assert!(!check(
            &key,
            "sm_message",
            "sm-2",
            "R",
            &path,
            "attack",
            &sigs,
            &good
        ));
        assert!(!check(
            &key,
            "sm_message",
            "sm-1",
            "S",
            &path,
            "attack",
            &sigs,
            &good
        ));
        let longer = names(&["P", "Q", "S"]);
        assert!(!check(
            &key,
            "sm_message",
            "sm-1",
            "R",
            &longer,
            "attack",
            &sigs,
            &good
        ));
        assert!(!check(
            &key,
            "sm_message",
            "sm-1",
            "R",
            &path,
            "retreat",
            &sigs,
            &good
        ));
        assert!(!check(
            &key,
            "sm_message",
            "sm-1",
            "R",
            &path,
            "attack",
            &sigs[..1],
            &good
        ));
        assert!(!check(
            &key,
            "sm_message",
            "sm-1",
            "R",
            &path,
            "attack",
            &sigs,
            "junk"
        ));
        assert!(!check(
            &key,
            "sm_message",
            "sm-1",
            "R",
            &path,
            "attack",
            &sigs,
            ""
        ));
        // A field moved across a boundary gives other bytes.
        assert_ne!(
            mac_bytes("m", "ab", "c", &[], "v", &[]),
            mac_bytes("m", "a", "bc", &[], "v", &[])
        );
    }

    #[test]
    fn credentials_give_each_node_its_own_share() {
        let nodes = names(&["P", "Q", "R"]);
        let c = Credentials::new(Protocol::Om, &nodes).unwrap();
        assert!(c.run.as_str().starts_with("om-"));
        assert_eq!(c.run.as_str().len(), 3 + 2 * RUN_ID_BYTES);
        let again = Credentials::new(Protocol::Om, &nodes).unwrap();
        assert_ne!(c.run, again.run, "ids are random");
        for n in &nodes {
            assert!(c.capability(n).is_some());
        }
        assert_ne!(c.capability("P"), c.capability("Q"));
        assert_eq!(c.capability("X"), None);
        let (p, q) = (c.keys_of("P"), c.keys_of("Q"));
        assert_eq!(p.keys().collect::<Vec<_>>(), ["Q", "R"]);
        assert_eq!(q.keys().collect::<Vec<_>>(), ["P", "R"]);
        assert_eq!(p["Q"], q["P"], "a pair shares one key");
        assert_ne!(p["Q"], p["R"]);
    }

    #[test]
    fn secrets_are_read_strictly() {
        assert!(Secret::parse(&encode(&[0u8; 32]), "capability").is_ok());
        for bad in ["", "abc", &encode(&[0u8; 31]), &encode(&[0u8; 33])] {
            assert_eq!(
                Secret::parse(bad, "capability").unwrap_err().to_string(),
                "capability must be 32 bytes in base64 (44 characters)"
            );
        }
    }
}
