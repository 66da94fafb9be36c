//! How a traitor sends. A [`Behaviour`] is given per node (`server --behaviour NAME=KIND`) and
//! applies to everything the node sends in every protocol: the original `send_message`, OM
//! relays and SM relays. Honest nodes send what they should; the rest lie in a fixed,
//! reproducible way (even `random` draws from a seed, per message, independent of timing).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The two orders of the Byzantine generals.
pub(crate) const ATTACK: &str = "attack";
/// The default order: what a missing message or a tie counts as.
pub(crate) const RETREAT: &str = "retreat";

/// A node's sending behaviour. Read from a cluster file as its `--behaviour` text, parsed
/// once there (`serde(try_from)`), so a bad one is refused with the file's line.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Behaviour {
    /// Sends what it should.
    #[default]
    Honest,
    /// Refuses to send to the listed nodes (the original's faulty P is `deny:R,S`).
    Deny(Vec<String>),
    /// Sends nothing.
    Silent,
    /// Sends the opposite order (`attack` <-> `retreat`; anything else becomes `attack`).
    Flip,
    /// Sends `attack` to the first half of the receivers (in the order of the broadcast) and
    /// `retreat` to the rest.
    TwoFaced,
    /// A random order per message, drawn from the run's seed and the message's identity.
    Random,
    /// Sends and answers honestly but `Duration` late.
    Delay(Duration),
    /// Sends exactly what a driver chose, per message (path, receiver), and nothing else:
    /// the adversary of `client explore --adversary`.
    Script(Arc<Script>),
}

/// A traitor's scripted strategy (`script:P>Q>R=attack;P>Q>S=-`): for each message it may
/// send, identified by its path (commander first, this node last; its round is the path's
/// length) and its receiver, the value to send or nothing. A message not listed is not sent,
/// whatever the protocol owes; a message listed is sent whatever the node received. Entries
/// whose path does not end with the node holding the script are ignored, so one script can
/// hold every traitor's messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// (path, receiver) -> value, or `None` for nothing.
    sends: BTreeMap<(Vec<String>, String), Option<String>>,
}

impl Script {
    /// An empty script: sends nothing.
    pub(crate) fn new() -> Self {
        Script::default()
    }

    /// Send `value` (or nothing) along `path` to `receiver`; a later entry for the same
    /// message replaces an earlier one.
    pub(crate) fn set(&mut self, path: Vec<String>, receiver: String, value: Option<String>) {
        self.sends.insert((path, receiver), value);
    }

    /// The value scripted for (path, receiver): `None` when nothing is sent.
    #[cfg(test)]
    pub(crate) fn value(&self, path: &[String], receiver: &str) -> Option<&str> {
        self.sends
            .get(&(path.to_vec(), receiver.to_string()))
            .and_then(|v| v.as_deref())
    }

    /// The messages `sender` sends in round `round` (paths of that length ending with it):
    /// (path, receiver, value), in the script's order.
    pub(crate) fn round<'a>(
        &'a self,
        sender: &'a str,
        round: usize,
    ) -> impl Iterator<Item = (&'a [String], &'a str, &'a str)> + 'a {
        self.sends.iter().filter_map(move |((path, to), v)| {
            let v = v.as_deref()?;
            (path.len() == round && path.last().is_some_and(|l| l == sender)).then_some((
                path.as_slice(),
                to.as_str(),
                v,
            ))
        })
    }

    /// Every entry: (path, receiver, value or nothing).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&[String], &str, Option<&str>)> {
        self.sends
            .iter()
            .map(|((p, to), v)| (p.as_slice(), to.as_str(), v.as_deref()))
    }
}

/// What a script entry sends when it sends nothing.
pub(crate) const NOTHING: &str = "-";

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self
            .entries()
            .map(|(p, to, v)| format!("{}>{to}={}", p.join(">"), v.unwrap_or(NOTHING)))
            .collect();
        f.write_str(&entries.join(";"))
    }
}

impl FromStr for Script {
    type Err = String;

    /// `ENTRY;ENTRY;...`, each `C>...>SENDER>RECEIVER=VALUE` (`-` for nothing); empty: sends
    /// nothing.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut script = Script::new();
        for entry in s.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || {
                format!(
                    "script entry {entry:?}: expected PATH>RECEIVER=VALUE, e.g. P>Q>R=attack \
                     (Q relays P's order to R) or P>Q=- (nothing)"
                )
            };
            let (names, value) = entry.split_once('=').ok_or_else(bad)?;
            let mut names: Vec<String> = names.split('>').map(|n| n.trim().to_string()).collect();
            if names.len() < 2 || names.iter().any(String::is_empty) || value.is_empty() {
                return Err(bad());
            }
            let receiver = names.pop().unwrap_or_default();
            let value = (value != NOTHING).then(|| value.to_string());
            script.set(names, receiver, value);
        }
        Ok(script)
    }
}

impl Behaviour {
    /// Whether this node lies or withholds messages (a traitor for the checker).
    pub(crate) fn is_traitor(&self) -> bool {
        !matches!(self, Behaviour::Honest)
    }

    /// Extra wait before each send and each answer.
    pub(crate) fn delay(&self) -> Option<Duration> {
        match self {
            Behaviour::Delay(d) => Some(*d),
            _ => None,
        }
    }

    /// What to send to `receiver` (the `index`-th of `count` receivers of this broadcast) when
    /// an honest node would send `value`; `None` to send nothing. `entropy` identifies the
    /// message (seed, run, path, receiver) for `random`.
    pub(crate) fn outgoing(
        &self,
        value: &str,
        receiver: &str,
        index: usize,
        count: usize,
        entropy: u64,
    ) -> Option<String> {
        match self {
            Behaviour::Honest | Behaviour::Delay(_) => Some(value.to_string()),
            // A script names OM/SM messages only (the engine sends them); nothing else goes.
            Behaviour::Script(_) => None,
            Behaviour::Deny(list) if list.iter().any(|n| n == receiver) => None,
            Behaviour::Deny(_) => Some(value.to_string()),
            Behaviour::Silent => None,
            Behaviour::Flip => Some(opposite(value).to_string()),
            Behaviour::TwoFaced => {
                Some(if index < count / 2 { ATTACK } else { RETREAT }.to_string())
            }
            Behaviour::Random => Some(
                if mix(entropy) & 1 == 0 {
                    ATTACK
                } else {
                    RETREAT
                }
                .to_string(),
            ),
        }
    }

    /// The script of a scripted traitor.
    pub(crate) fn script(&self) -> Option<&Arc<Script>> {
        match self {
            Behaviour::Script(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the node refuses outright to send to `receiver` (denial, silence).
    pub(crate) fn refuses(&self, receiver: &str) -> bool {
        match self {
            Behaviour::Silent | Behaviour::Script(_) => true,
            Behaviour::Deny(list) => list.iter().any(|n| n == receiver),
            _ => false,
        }
    }
}

/// `attack` <-> `retreat`; any other value becomes `attack`.
pub(crate) fn opposite(value: &str) -> &'static str {
    if value == ATTACK { RETREAT } else { ATTACK }
}

/// SplitMix64 finaliser: a well-spread hash of a 64-bit value.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Fold strings into a seed (FNV-1a then [`mix`]): the identity of one message.
pub(crate) fn entropy(seed: u64, parts: &[&str]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    mix(h)
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Behaviour::Honest => write!(f, "honest"),
            Behaviour::Deny(list) => write!(f, "deny:{}", list.join(",")),
            Behaviour::Silent => write!(f, "silent"),
            Behaviour::Flip => write!(f, "flip"),
            Behaviour::TwoFaced => write!(f, "two-faced"),
            Behaviour::Random => write!(f, "random"),
            Behaviour::Delay(d) => write!(f, "delay:{}", d.as_millis()),
            Behaviour::Script(s) => write!(f, "script:{s}"),
        }
    }
}

impl TryFrom<String> for Behaviour {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl FromStr for Behaviour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        match (kind, arg) {
            ("honest", None) => Ok(Behaviour::Honest),
            ("silent", None) => Ok(Behaviour::Silent),
            ("flip", None) => Ok(Behaviour::Flip),
            ("two-faced", None) => Ok(Behaviour::TwoFaced),
            ("random", None) => Ok(Behaviour::Random),
            ("deny", Some(list)) => {
                let names: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
                if names.is_empty() {
                    return Err("deny needs a list of nodes, e.g. deny:R,S".into());
                }
                Ok(Behaviour::Deny(names))
            }
            ("delay", Some(ms)) => ms
                .parse::<u64>()
                .map(|ms| Behaviour::Delay(Duration::from_millis(ms)))
                .map_err(|_| format!("delay needs milliseconds, e.g. delay:500, got {ms:?}")),
            ("script", Some(text)) => Ok(Behaviour::Script(Arc::new(text.parse()?))),
            _ => Err(format!(
                "unknown behaviour {s:?}: use honest, deny:A,B, silent, flip, two-faced, random, \
                 delay:MS or script:PATH>RECEIVER=VALUE;..."
            )),
        }
    }
}

/// A comma-separated list of behaviours (`client explore --behaviours silent,deny:R,S`): a
/// comma ends a behaviour unless what follows it is a node name after a `deny:` list, which
/// it continues. So `deny:R,S`, the original faulty P's own behaviour, is one item, as it is
/// in `--behaviour P=deny:R,S`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behaviours(pub Vec<Behaviour>);

/// The words a behaviour starts with: after a comma, one of them starts the next behaviour,
/// anything else is a node of the deny list before it.
const KINDS: [&str; 8] = [
    "honest",
    "silent",
    "flip",
    "two-faced",
    "random",
    "deny",
    "delay",
    "script",
];

impl FromStr for Behaviours {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut items: Vec<String> = Vec::new();
        for piece in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let kind = piece.split(':').next().unwrap_or(piece);
            match items.last_mut() {
                Some(last) if last.starts_with("deny:") && !KINDS.contains(&kind) => {
                    last.push(',');
                    last.push_str(piece);
                }
                _ => items.push(piece.to_string()),
            }
        }
        if items.is_empty() {
            return Err("no behaviour named; e.g. silent,flip,deny:R,S".into());
        }
        items
            .iter()
            .map(|i| i.parse())
            .collect::<Result<_, _>>()
            .map(Behaviours)
    }
}

/// Parse `NAME=KIND` (the `--behaviour` flag).
pub(crate) fn parse_assignment(arg: &str) -> Result<(String, Behaviour), String> {
    let (name, kind) = arg
        .split_once('=')
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| format!("expected NAME=KIND (e.g. Q=two-faced), got {arg:?}"))?;
    Ok((name.to_string(), kind.parse()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comma_before_a_node_name_continues_a_deny_list() {
        let list = |s: &str| s.parse::<Behaviours>().map(|b| b.0);
        let deny = |names: &[&str]| Behaviour::Deny(names.iter().map(|n| n.to_string()).collect());
        assert_eq!(
            list("silent,deny:R,S").unwrap(),
            [Behaviour::Silent, deny(&["R", "S"])]
        );
        assert_eq!(
            list("deny:R,S,flip,deny:N3,delay:5").unwrap(),
            [
                deny(&["R", "S"]),
                Behaviour::Flip,
                deny(&["N3"]),
                Behaviour::Delay(Duration::from_millis(5))
            ]
        );
        assert_eq!(
            list("silent,flip,two-faced").unwrap(),
            [Behaviour::Silent, Behaviour::Flip, Behaviour::TwoFaced]
        );
        // Outside a deny list a name is no behaviour.
        assert!(
            list("silent,R")
                .unwrap_err()
                .contains("unknown behaviour \"R\"")
        );
        assert!(list(",").is_err());
    }

    #[test]
    fn parses_and_prints_every_kind() {
        for text in [
            "honest",
            "deny:R,S",
            "silent",
            "flip",
            "two-faced",
            "random",
            "delay:250",
            "script:P>Q>R=attack;P>Q>S=-",
            "script:",
        ] {
            let b: Behaviour = text.parse().unwrap();
            assert_eq!(b.to_string(), text);
        }
        assert!("deny:".parse::<Behaviour>().is_err());
        assert!("delay:x".parse::<Behaviour>().is_err());
        assert!("sneaky".parse::<Behaviour>().is_err());
        assert!("script:P=attack".parse::<Behaviour>().is_err());
        assert!("script:P>Q".parse::<Behaviour>().is_err());
        assert!("script:P>>Q=attack".parse::<Behaviour>().is_err());
        assert_eq!(
            parse_assignment("Q=flip").unwrap(),
            ("Q".into(), Behaviour::Flip)
        );
        assert!(parse_assignment("flip").is_err());
    }

    #[test]
    fn what_each_kind_sends() {
        let rs = ["Q", "R", "S", "T"];
        let send = |b: &Behaviour, i: usize| b.outgoing(ATTACK, rs[i], i, rs.len(), i as u64);
        assert_eq!(send(&Behaviour::Honest, 0).as_deref(), Some(ATTACK));
        assert_eq!(send(&Behaviour::Flip, 0).as_deref(), Some(RETREAT));
        assert_eq!(send(&Behaviour::Silent, 0), None);
        let deny = Behaviour::Deny(vec!["R".into()]);
        assert_eq!(send(&deny, 1), None);
        assert_eq!(send(&deny, 2).as_deref(), Some(ATTACK));
        let two: Vec<_> = (0..4)
            .map(|i| send(&Behaviour::TwoFaced, i).unwrap())
            .collect();
        assert_eq!(two, [ATTACK, ATTACK, RETREAT, RETREAT]);
        // Random is a function of the message identity only.
        let a: Vec<_> = (0..64)
            .map(|i| Behaviour::Random.outgoing(ATTACK, "Q", 0, 1, entropy(7, &[&i.to_string()])))
            .collect();
        let b: Vec<_> = (0..64)
            .map(|i| Behaviour::Random.outgoing(ATTACK, "Q", 0, 1, entropy(7, &[&i.to_string()])))
            .collect();
        assert_eq!(a, b);
        assert!(
            a.iter().any(|v| v.as_deref() == Some(ATTACK))
                && a.iter().any(|v| v.as_deref() == Some(RETREAT))
        );
    }

    #[test]
    fn a_script_says_each_message_and_nothing_else() {
        let b: Behaviour = "script:P>Q>S=-;P>Q>R=retreat;P>R>Q=attack".parse().unwrap();
        let s = b.script().unwrap();
        let path = ["P".to_string(), "Q".to_string()];
        assert_eq!(s.value(&path, "R"), Some(RETREAT));
        assert_eq!(s.value(&path, "S"), None);
        assert_eq!(s.value(&path, "T"), None);
        let round: Vec<_> = s.round("Q", 2).collect();
        assert_eq!(round, [(&path[..], "R", RETREAT)]);
        assert_eq!(s.round("Q", 1).count(), 0);
        assert!(b.is_traitor() && b.refuses("R"));
        assert_eq!(b.outgoing(ATTACK, "R", 0, 1, 0), None);
        // Printed in a fixed order, whatever order it was given in.
        assert_eq!(b.to_string(), "script:P>Q>R=retreat;P>Q>S=-;P>R>Q=attack");
    }
}
