//! The parameters of the agreement methods, read with Python's faults: arity first, then each
//! parameter in the order the method lists it (docs/protocol-extensions.md gives the order).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use dxr::Value;

use crate::agreement::Protocol;
use crate::agreement::auth::{self, SECRET_BYTES};
use crate::protocol::fault::{self, PyFault};

use super::{MAX_M, MAX_NODES};

/// The first six parameters of `om_start` and `sm_start`, then the run's secrets.
const START: [&str; 8] = [
    "run",
    "commander",
    "nodes",
    "m",
    "round_timeout_ms",
    "seed",
    "capability",
    "keys",
];

/// `sm_start`'s last parameter.
const PUBLIC_KEYS: &str = "public_keys";

/// Longest round timeout a start takes, in milliseconds.
pub const MAX_ROUND_TIMEOUT_MS: u64 = 600_000;

/// What `om_start` / `sm_start` carry.
#[derive(Debug)]
pub struct Start {
    pub run: String,
    pub commander: String,
    pub nodes: Vec<String>,
    pub m: usize,
    pub round_timeout: Duration,
    /// The driver's seed of the run (before this server's `--seed` is mixed in).
    pub seed: u64,
    /// What the run's driver must show on every later call.
    pub capability: [u8; SECRET_BYTES],
    /// The key this node shares with each other participant, by name.
    pub keys: HashMap<String, [u8; SECRET_BYTES]>,
    /// SM: every participant's public key as the driver read it from `node_info` (base64;
    /// a key that is not valid is simply missing, and that node's messages are rejected).
    pub public_keys: BTreeMap<String, String>,
}

/// Typed access to an extension call's parameters, with faults in Python's style.
pub struct Args<'a> {
    pub method: &'a str,
    pub params: &'a [Value],
}

impl Args<'_> {
    pub fn arity(&self, names: &[&str]) -> Result<(), PyFault> {
        if self.params.len() == names.len() {
            return Ok(());
        }
        Err(fault::python(
            "TypeError",
            &format!(
                "{}({}) takes {} argument{} but {} {} given",
                self.method,
                names.join(", "),
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                self.params.len(),
                if self.params.len() == 1 {
                    "was"
                } else {
                    "were"
                }
            ),
        ))
    }

    fn bad(&self, i: usize, want: &str) -> PyFault {
        fault::python(
            "TypeError",
            &format!("{}() argument {} must be {want}", self.method, i + 1),
        )
    }

    pub fn string(&self, i: usize) -> Result<String, PyFault> {
        match self.params.get(i) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(self.bad(i, "a string")),
        }
    }

    pub fn strings(&self, i: usize) -> Result<Vec<String>, PyFault> {
        match self.params.get(i) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.bad(i, "an array of strings")),
                })
                .collect(),
            _ => Err(self.bad(i, "an array of strings")),
        }
    }

    /// A struct whose members are all strings.
    pub fn string_map(&self, i: usize) -> Result<BTreeMap<String, String>, PyFault> {
        match self.params.get(i) {
            Some(Value::Struct(members)) => members
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(self.bad(i, "a struct of strings")),
                })
                .collect(),
            _ => Err(self.bad(i, "a struct of strings")),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, PyFault> {
        match self.params.get(i) {
            Some(Value::Integer(n)) => Ok(i64::from(*n)),
            Some(Value::Long(n)) => Ok(*n),
            _ => Err(self.bad(i, "an integer")),
        }
    }

    /// A capability: base64 of 32 bytes.
    pub fn capability(&self, i: usize) -> Result<[u8; SECRET_BYTES], PyFault> {
        let text = self.string(i)?;
        auth::decode_secret(&text, "capability")
            .map_err(|e| fault::python("ValueError", &e.to_string()))
    }

    /// The parameters of a driver's call `METHOD(run, capability, NAME)` (the `*_order` and
    /// `*_round` shape), or `METHOD(run, capability)` when `last` is `None`.
    pub fn driven(&self, last: Option<&str>) -> Result<(String, [u8; SECRET_BYTES]), PyFault> {
        let mut names = vec!["run", "capability"];
        names.extend(last);
        self.arity(&names)?;
        Ok((self.string(0)?, self.capability(1)?))
    }

    /// `om_start(run, commander, nodes, m, round_timeout_ms, seed, capability, keys)`, or
    /// `sm_start`'s, which adds `public_keys`.
    pub fn start(&self, protocol: Protocol) -> Result<Start, PyFault> {
        let mut names = START.to_vec();
        if protocol == Protocol::Sm {
            names.push(PUBLIC_KEYS);
        }
        self.arity(&names)?;
        let nodes = self.strings(2)?;
        let m = self.int(3)?;
        let timeout = self.int(4)?;
        if nodes.len() > MAX_NODES {
            return Err(fault::python(
                "ValueError",
                &format!("at most {MAX_NODES} nodes take part in a run"),
            ));
        }
        let m = usize::try_from(m)
            .ok()
            .filter(|&m| m <= MAX_M)
            .ok_or_else(|| fault::python("ValueError", &format!("m must be 0..={MAX_M}")))?;
        let timeout = u64::try_from(timeout)
            .ok()
            .filter(|&t| (1..=MAX_ROUND_TIMEOUT_MS).contains(&t))
            .ok_or_else(|| {
                fault::python(
                    "ValueError",
                    &format!("round_timeout_ms must be 1..={MAX_ROUND_TIMEOUT_MS}"),
                )
            })?;
        let seed = self
            .string(5)?
            .parse::<u64>()
            .map_err(|_| fault::python("ValueError", "seed must be a decimal u64 in a string"))?;
        let (run, commander) = (self.string(0)?, self.string(1)?);
        let capability = self.capability(6)?;
        let mut keys = HashMap::new();
        for (name, text) in self.string_map(7)? {
            let key = auth::decode_secret(&text, &format!("the key for {name}"))
                .map_err(|e| fault::python("ValueError", &e.to_string()))?;
            keys.insert(name, key);
        }
        let public_keys = match protocol {
            Protocol::Sm => self.string_map(8)?,
            Protocol::Om => BTreeMap::new(),
        };
        Ok(Start {
            run,
            commander,
            nodes,
            m,
            round_timeout: Duration::from_millis(timeout),
            seed,
            capability,
            keys,
            public_keys,
        })
    }
}

/// The keys of a start must name every other participant and nobody else: a missing key
/// would make that pair's messages unprovable, an extra one names a stranger.
pub fn check_keys(start: &Start, me: &str) -> Result<(), PyFault> {
    for name in &start.nodes {
        if name != me && !start.keys.contains_key(name) {
            return Err(fault::python(
                "ValueError",
                &format!("keys has no key for {name}: every other participant needs one"),
            ));
        }
    }
    let stranger = start
        .keys
        .keys()
        .filter(|k| *k == me || !start.nodes.contains(k))
        .min();
    if let Some(name) = stranger {
        return Err(fault::python(
            "ValueError",
            &format!(
                "keys names {}, {}",
                crate::protocol::python_repr(name),
                if name == me {
                    "this node itself"
                } else {
                    "which takes no part in this run"
                }
            ),
        ));
    }
    Ok(())
}
