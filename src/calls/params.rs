//! A call's params read with Python's faults: the original methods' arity faults as CPython
//! words them for `Process.METHOD()`, and the agreement methods' arity and type faults as
//! docs/protocol-extensions.md gives them (arity first, then each parameter in the order the
//! method lists it).

use std::collections::BTreeMap;
use std::time::Duration;

use dxr::Value;

use super::{Driven, MAX_M, MAX_NODES, MAX_ROUND_TIMEOUT_MS, Method, Protocol, Secret, Start};
use crate::protocol::fault::{self, PyFault};

/// The params of one call of `method`.
pub(crate) struct Params<'a> {
    method: Method,
    params: &'a [Value],
}

impl<'a> Params<'a> {
    /// The params of a call of `method`.
    pub(crate) fn new(method: Method, params: &'a [Value]) -> Self {
        Params { method, params }
    }

    /// An original method's two parameters (`send_message`, `receive_message`), as given.
    pub(crate) fn original_two(&self) -> Result<[Value; 2], PyFault> {
        let (name, names) = (self.method.name(), self.method.params());
        match self.params {
            [a, b] => Ok([a.clone(), b.clone()]),
            [] => Err(fault::missing_arguments(name, names)),
            [_] => Err(fault::missing_arguments(name, &names[1..])),
            _ => Err(fault::too_many_arguments(name, 3, self.params.len() + 1)),
        }
    }

    /// An original method without parameters (`finalize_decision`, `get_messages`).
    pub(crate) fn original_none(&self) -> Result<(), PyFault> {
        if self.params.is_empty() {
            return Ok(());
        }
        Err(fault::too_many_arguments(
            self.method.name(),
            1,
            self.params.len() + 1,
        ))
    }

    /// An agreement method's arity: exactly its parameters.
    pub(crate) fn arity(&self) -> Result<(), PyFault> {
        let names = self.method.params();
        if self.params.len() == names.len() {
            return Ok(());
        }
        Err(fault::python(
            "TypeError",
            &format!(
                "{}({}) takes {} argument{} but {} {} given",
                self.method.name(),
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
            &format!("{}() argument {} must be {want}", self.method.name(), i + 1),
        )
    }

    /// Parameter `i`, a string.
    pub(crate) fn string(&self, i: usize) -> Result<String, PyFault> {
        match self.params.get(i) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(self.bad(i, "a string")),
        }
    }

    /// Parameter `i`, an array of strings.
    pub(crate) fn strings(&self, i: usize) -> Result<Vec<String>, PyFault> {
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

    /// Parameter `i`, a struct whose members are all strings.
    pub(crate) fn string_map(&self, i: usize) -> Result<BTreeMap<String, String>, PyFault> {
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

    /// Parameter `i`, an integer (`<int>`/`<i4>` or `<i8>`).
    pub(crate) fn int(&self, i: usize) -> Result<i64, PyFault> {
        match self.params.get(i) {
            Some(Value::Integer(n)) => Ok(i64::from(*n)),
            Some(Value::Long(n)) => Ok(*n),
            _ => Err(self.bad(i, "an integer")),
        }
    }

    /// Parameter `i`, a capability: base64 of 32 bytes.
    pub(crate) fn capability(&self, i: usize) -> Result<Secret, PyFault> {
        let text = self.string(i)?;
        Secret::parse(&text, "capability").map_err(|e| fault::python("ValueError", &e.to_string()))
    }

    /// A driver's call `METHOD(run, capability, ...)`: its arity, run and capability.
    pub(crate) fn driven(&self, protocol: Protocol) -> Result<Driven, PyFault> {
        self.arity()?;
        Ok(Driven {
            protocol,
            run: self.string(0)?.into(),
            capability: self.capability(1)?,
        })
    }

    /// `om_start(run, commander, nodes, m, round_timeout_ms, seed, capability, keys)`, or
    /// `sm_start`'s, which adds `public_keys`. The ranges are checked as the parameters are
    /// read, in the order the first implementation did (and the Python stand-in does).
    pub(crate) fn start(&self, protocol: Protocol) -> Result<Start, PyFault> {
        self.arity()?;
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
        let mut keys = BTreeMap::new();
        for (name, text) in self.string_map(7)? {
            let key = Secret::parse(&text, &format!("the key for {name}"))
                .map_err(|e| fault::python("ValueError", &e.to_string()))?;
            keys.insert(name, key);
        }
        let public_keys = match protocol {
            Protocol::Sm => self.string_map(8)?,
            Protocol::Om => BTreeMap::new(),
        };
        Ok(Start {
            protocol,
            run: run.into(),
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
