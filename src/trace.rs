//! Traces: one record per node-to-node call, for people to look at and tools to check.
//!
//! Every server process keeps the outgoing calls its nodes made (bounded, oldest dropped) and
//! hands them out through the extension method `trace_events(run, capability, since_us)`
//! (to the run's driver only: the capability); the client
//! gathers them from every node after a run and writes one JSON line per call (`--trace
//! FILE`), draws them (`--svg`, `--mermaid`), or checks them. Times are microseconds since the
//! Unix epoch, so records from different processes and hosts line up.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use dxr::Value;

use crate::calls::{Call, Method, RunId, TraceAccess};
use crate::protocol::{self, fault::PyFault};
use serde::{Deserialize, Serialize};

/// Run tag of calls made by the original `send_message` (which has no run id).
pub(crate) const ORIGINAL_RUN: &str = crate::calls::ORIGINAL_RUN;
/// Calls a process remembers by default (`server --trace-events`); the oldest are dropped
/// beyond this. 10,000 covers an OM(3) run among 10 nodes (3,609 calls) or the all-to-all run
/// of 100 nodes (9,900) in a few megabytes; under sustained load older calls make room.
pub(crate) const DEFAULT_MAX_EVENTS: usize = 10_000;
/// Bytes of recorded calls a process keeps by default (`server --trace-bytes`); the oldest
/// are dropped beyond this, whatever their count. An OM(3) run among 10 nodes fits many
/// times over; without a byte cap, 10,000 calls of 1 MiB values would be 10 GiB.
pub(crate) const DEFAULT_MAX_BYTES: usize = 32 * 1024 * 1024;

/// One node-to-node call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Recorded")]
pub struct Event {
    /// Run id (`om-42`, `sm-7`, or `original`).
    pub run: String,
    /// Caller.
    pub from: String,
    /// Callee.
    pub to: String,
    /// XML-RPC method.
    pub method: Method,
    /// Arguments, as JSON (strings, numbers, arrays, objects).
    pub args: serde_json::Value,
    /// The value returned, when the call succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// The fault or error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Start, microseconds since the Unix epoch.
    pub start_us: u64,
    /// End, microseconds since the Unix epoch.
    pub end_us: u64,
    /// What became of it: set when the event is made from its call's answer, and again from
    /// the answer when an event is read (a trace file, another node's `trace_events`), so it
    /// never travels.
    #[serde(skip)]
    pub outcome: Outcome,
}

/// What became of one call, from the caller's side.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Answered: stored by its receiver (or, for other methods, done).
    #[default]
    Delivered,
    /// Refused by its sender: a `send_message` answered `P denied communication to R` (the
    /// original's faulty P); nothing was sent.
    Denied,
    /// Delivered to a faulty receiver that ignored it: a `receive_message` answered `P
    /// (faulty) ignored message from Q`.
    Ignored,
    /// Refused by its receiver because the message's round was closed there.
    Late {
        /// The message's round.
        round: usize,
    },
    /// Failed otherwise: a refused connection, a timeout, any other fault.
    Failed,
}

impl Outcome {
    /// The outcome of a call of `method` from `from` to `to` answered `result`.
    pub(crate) fn of(
        method: Method,
        from: &str,
        to: &str,
        result: &Result<Value, PyFault>,
    ) -> Outcome {
        match result {
            Ok(Value::String(reply)) => Outcome::of_reply(method, from, to, reply),
            Ok(_) => Outcome::Delivered,
            Err(f) => Outcome::of_fault(f.as_str()),
        }
    }

    /// The outcome of a call of `method` from `from` to `to` answered the string `reply`.
    pub(crate) fn of_reply(method: Method, from: &str, to: &str, reply: &str) -> Outcome {
        match method {
            Method::SendMessage if reply == protocol::denied_reply(from, to) => Outcome::Denied,
            Method::ReceiveMessage if reply == protocol::ignored_reply(to, from) => {
                Outcome::Ignored
            }
            _ => Outcome::Delivered,
        }
    }

    /// The outcome of a call that failed with `fault` (a node's fault string or an error).
    pub(crate) fn of_fault(fault: &str) -> Outcome {
        match protocol::ext::late_round(fault) {
            Some(round) => Outcome::Late { round },
            None => Outcome::Failed,
        }
    }

    /// Its name, as the live page's events carry it (`delivered`, `denied`, `ignored`,
    /// `late`, `failed`).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Denied => "denied",
            Outcome::Ignored => "ignored",
            Outcome::Late { .. } => "late",
            Outcome::Failed => "failed",
        }
    }
}

/// An event as it is written and read (a trace file, `trace_events`): everything but the
/// outcome, which is worked out again from the answer.
#[derive(Deserialize)]
struct Recorded {
    run: String,
    from: String,
    to: String,
    method: Method,
    args: serde_json::Value,
    #[serde(default)]
    result: Option<serde_json::Value>,
    #[serde(default)]
    fault: Option<String>,
    start_us: u64,
    end_us: u64,
}

impl From<Recorded> for Event {
    fn from(r: Recorded) -> Event {
        let outcome = match (&r.fault, &r.result) {
            (Some(f), _) => Outcome::of_fault(f),
            (None, Some(serde_json::Value::String(reply))) => {
                Outcome::of_reply(r.method, &r.from, &r.to, reply)
            }
            (None, _) => Outcome::Delivered,
        };
        Event {
            run: r.run,
            from: r.from,
            to: r.to,
            method: r.method,
            args: r.args,
            result: r.result,
            fault: r.fault,
            start_us: r.start_us,
            end_us: r.end_us,
            outcome,
        }
    }
}

impl Event {
    /// The record of one call: its result, or its fault as a Python node answers it (the
    /// same text whichever path made the call: a forwarded `send_message`, a relay batch), and
    /// what became of it. Times are set with [`Event::at`].
    pub(crate) fn call(
        run: &str,
        from: &str,
        to: &str,
        method: Method,
        args: serde_json::Value,
        result: &Result<Value, PyFault>,
    ) -> Event {
        Event {
            run: run.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            method,
            args,
            result: result.as_ref().ok().map(to_json),
            fault: result.as_ref().err().map(|f| f.as_str().to_string()),
            start_us: 0,
            end_us: 0,
            outcome: Outcome::of(method, from, to, result),
        }
    }

    /// This event, started at `start_us` and ended at `end_us`.
    pub(crate) fn at(mut self, start_us: u64, end_us: u64) -> Event {
        self.start_us = start_us;
        self.end_us = end_us;
        self
    }

    /// What the event holds in memory, roughly: its strings and JSON values plus a fixed
    /// part. Counted against the recorder's byte budget.
    pub(crate) fn bytes(&self) -> usize {
        fn json(v: &serde_json::Value) -> usize {
            use serde_json::Value as J;
            match v {
                J::String(s) => 32 + s.len(),
                J::Array(a) => 32 + a.iter().map(json).sum::<usize>(),
                J::Object(m) => 32 + m.iter().map(|(k, v)| 32 + k.len() + json(v)).sum::<usize>(),
                _ => 32,
            }
        }
        128 + self.run.len()
            + self.from.len()
            + self.to.len()
            + json(&self.args)
            + self.result.as_ref().map_or(0, json)
            + self.fault.as_ref().map_or(0, String::len)
    }

    /// The value a message carried (`receive_message`'s decision, an agreement message's
    /// value), where [`Method::message_params`] says it is.
    pub fn value(&self) -> Option<&str> {
        let (value, _) = self.method.message_params()?;
        self.args.get(value)?.as_str()
    }

    /// The round of an agreement message: the length of its path (the commander's order
    /// travels in round 1).
    pub fn round(&self) -> Option<usize> {
        Some(self.path()?.len()).filter(|&r| r > 0)
    }

    /// When the receiver stored an agreement message, microseconds since the Unix epoch: what
    /// `om_message` and `sm_message` answer, as a decimal string (by the receiver's clock).
    pub(crate) fn stored_us(&self) -> Option<u64> {
        match self.method {
            Method::Message(_) => self.result.as_ref()?.as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// The relay path of an agreement message (`None` for other calls).
    pub(crate) fn path(&self) -> Option<Vec<String>> {
        let (_, path) = self.method.message_params()?;
        let names = self.args.get(path?)?.as_array()?;
        Some(
            names
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        )
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The XML-RPC value as JSON.
pub(crate) fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::String(s) => J::String(s.clone()),
        Value::Integer(i) => J::from(*i),
        Value::Long(i) => J::from(*i),
        Value::Boolean(b) => J::Bool(*b),
        Value::Double(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Value::Array(a) => J::Array(a.iter().map(to_json).collect()),
        Value::Struct(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Value::Nil => J::Null,
        // Base64 as its text, a date as XML-RPC writes it: what the caller sent, readable.
        Value::Base64(bytes) => {
            use base64::Engine as _;
            J::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        Value::DateTime(when) => J::String(when.to_string()),
        // dxr's `Value` is non-exhaustive: a kind it adds later is recorded as null.
        _ => J::Null,
    }
}

/// The JSON value as XML-RPC (strings, integers, booleans, arrays, structs; null as nil).
pub(crate) fn from_json(j: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match j {
        J::String(s) => Value::String(s.clone()),
        J::Number(n) => match n.as_i64() {
            Some(i) => i32::try_from(i)
                .map(Value::Integer)
                .unwrap_or(Value::Long(i)),
            None => Value::Double(n.as_f64().unwrap_or(0.0)),
        },
        J::Bool(b) => Value::Boolean(*b),
        J::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        J::Object(m) => Value::Struct(m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
        J::Null => Value::Nil,
    }
}

/// The calls one process made, newest last, at most `capacity` of them.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// The calls, and the bytes they hold ([`Event::bytes`] summed).
    events: Mutex<(VecDeque<Event>, usize)>,
    capacity: usize,
    max_bytes: usize,
    /// Calls recorded per agreement run (the last [`QUOTA_RUNS`] runs), for [`Recorder::quota`].
    per_run: Mutex<VecDeque<(String, usize)>>,
}

/// Runs whose recorded-call counts a recorder remembers.
const QUOTA_RUNS: usize = 256;

impl Default for Recorder {
    fn default() -> Self {
        Recorder::with_capacity(DEFAULT_MAX_EVENTS)
    }
}

impl Recorder {
    /// A recorder keeping the last `capacity` calls (0: none).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Recorder {
            events: Mutex::new((VecDeque::new(), 0)),
            capacity,
            max_bytes: DEFAULT_MAX_BYTES,
            per_run: Mutex::new(VecDeque::new()),
        }
    }

    /// Keep at most `bytes` bytes of calls ([`Event::bytes`]); the oldest go first.
    pub(crate) fn with_max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Whether calls are recorded at all.
    pub(crate) fn is_on(&self) -> bool {
        self.capacity > 0
    }

    /// Remember a call.
    pub(crate) fn record(&self, event: Event) {
        if self.capacity == 0 {
            return;
        }
        self.record_all([event]);
    }

    /// How many of `n` more calls of agreement run `run` may be recorded: a run keeps its
    /// first `capacity` calls, all nodes of the process together. Whole early rounds draw a
    /// truer picture than the tail of the last one, and tracing a run larger than the buffer
    /// then costs no more than tracing one that fits.
    pub(crate) fn quota(&self, run: &str, n: usize) -> usize {
        if self.capacity == 0 {
            return 0;
        }
        let mut per_run = self.per_run.lock().unwrap_or_else(|e| e.into_inner());
        let slot = match per_run.iter().position(|(r, _)| r == run) {
            Some(i) => i,
            None => {
                if per_run.len() >= QUOTA_RUNS {
                    per_run.pop_front();
                }
                per_run.push_back((run.to_string(), 0));
                per_run.len() - 1
            }
        };
        let used = &mut per_run[slot].1;
        let quota = n.min(self.capacity.saturating_sub(*used));
        *used += quota;
        quota
    }

    /// Forget the quota of `run` (it was started again).
    pub(crate) fn restart(&self, run: &str) {
        let mut per_run = self.per_run.lock().unwrap_or_else(|e| e.into_inner());
        per_run.retain(|(r, _)| r != run);
    }

    /// Record several calls under one lock (a batch of relays).
    pub(crate) fn record_all(&self, batch: impl IntoIterator<Item = Event>) {
        if self.capacity == 0 {
            return;
        }
        let mut guard = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let (events, bytes) = &mut *guard;
        for event in batch {
            let size = event.bytes();
            if size > self.max_bytes {
                continue;
            }
            while events.len() >= self.capacity || *bytes + size > self.max_bytes {
                match events.pop_front() {
                    Some(old) => *bytes -= old.bytes(),
                    None => break,
                }
            }
            *bytes += size;
            events.push_back(event);
        }
    }

    /// Bytes of the calls kept, as counted against [`Recorder::with_max_bytes`].
    pub(crate) fn bytes(&self) -> usize {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Calls of `run` made by `from` that started at or after `since_us`.
    pub(crate) fn events(&self, run: &str, from: &str, since_us: u64) -> Vec<Event> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events
            .0
            .iter()
            .filter(|e| e.run == run && e.from == from && e.start_us >= since_us)
            .cloned()
            .collect()
    }
}

/// An event as an XML-RPC struct (what `trace_events` returns): times as decimal strings,
/// since XML-RPC integers are 32-bit; `args` and `result` as JSON text.
pub(crate) fn to_value(e: &Event) -> Value {
    let mut m = std::collections::BTreeMap::new();
    m.insert("run".to_string(), Value::String(e.run.clone()));
    m.insert("from".to_string(), Value::String(e.from.clone()));
    m.insert("to".to_string(), Value::String(e.to.clone()));
    m.insert("method".to_string(), Value::String(e.method.name().into()));
    m.insert("args".to_string(), from_json(&e.args));
    if let Some(r) = &e.result {
        m.insert("result".to_string(), from_json(r));
    }
    if let Some(f) = &e.fault {
        m.insert("fault".to_string(), Value::String(f.clone()));
    }
    m.insert(
        "start_us".to_string(),
        Value::String(e.start_us.to_string()),
    );
    m.insert("end_us".to_string(), Value::String(e.end_us.to_string()));
    Value::Struct(m)
}

/// The inverse of [`to_value`] (`None` for what is not an event, or names no method we know).
pub fn from_value(v: &Value) -> Option<Event> {
    let Value::Struct(m) = v else { return None };
    let s = |k: &str| match m.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    Some(Event::from(Recorded {
        run: s("run")?,
        from: s("from")?,
        to: s("to")?,
        method: Method::from_name(&s("method")?)?,
        args: to_json(m.get("args")?),
        result: m.get("result").map(to_json),
        fault: s("fault"),
        start_us: s("start_us")?.parse().ok()?,
        end_us: s("end_us")?.parse().ok()?,
    }))
}

/// The `trace_events` call for `run` since `since_us`, as the run's driver makes it: with
/// the node's capability (none for the original run, which has no driver).
pub(crate) fn request(
    run: &RunId,
    capability: Option<crate::calls::Secret>,
    since_us: u64,
) -> Call {
    Call::TraceEvents {
        run: run.clone(),
        access: capability.map_or(TraceAccess::Original, TraceAccess::Run),
        since_us,
    }
}

/// Gather the calls of `run` since `since_us` from every node at once (each returns its own
/// outgoing calls, to the run's driver: `capability` gives each node's), ordered by start
/// time. Nodes that cannot be asked are returned with the error, in the order of `nodes`.
pub(crate) async fn gather(
    cluster: &crate::cluster::Cluster,
    peers: &crate::peer::Peers,
    nodes: &[String],
    run: &RunId,
    capability: &(dyn Fn(&str) -> Option<crate::calls::Secret> + Sync),
    since_us: u64,
) -> (Vec<Event>, Vec<(String, String)>) {
    let answers = (peers.each(cluster, nodes, |node| {
        request(run, capability(node), since_us)
    }))
    .await;
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for (node, _, answer) in answers {
        match answer {
            Ok(Value::Array(items)) => events.extend(items.iter().filter_map(from_value)),
            Ok(other) => errors.push((node, format!("trace_events answered {other:?}"))),
            Err(e) => errors.push((node, e.to_string())),
        }
    }
    events.sort_by(|a, b| (a.start_us, &a.from, &a.to).cmp(&(b.start_us, &b.from, &b.to)));
    (events, errors)
}

/// One JSON object per line.
pub(crate) fn to_json_lines(events: &[Event]) -> String {
    let mut out = String::new();
    for e in events {
        out.push_str(&serde_json::to_string(e).unwrap_or_default());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_xml_rpc() {
        let e = Event {
            run: "om-1".into(),
            from: "P".into(),
            to: "Q".into(),
            method: Method::Message(crate::calls::Protocol::Om),
            args: serde_json::json!(["om-1", ["P"], "attack"]),
            result: Some(serde_json::json!("ok")),
            fault: None,
            start_us: 1_700_000_000_000_000,
            end_us: 1_700_000_000_000_123,
            outcome: Outcome::Delivered,
        };
        assert_eq!(from_value(&to_value(&e)), Some(e.clone()));
        let line = to_json_lines(std::slice::from_ref(&e));
        assert_eq!(serde_json::from_str::<Event>(line.trim()).unwrap(), e);
        assert_eq!(e.value(), Some("attack"));
        assert_eq!(e.path(), Some(vec!["P".to_string()]));
        let r = Recorder::default();
        r.record(e.clone());
        assert_eq!(r.events("om-1", "P", 0).len(), 1);
        assert!(r.events("om-1", "Q", 0).is_empty());
        assert!(r.events("om-1", "P", e.start_us + 1).is_empty());
    }

    #[test]
    fn the_byte_budget_drops_the_oldest_calls() {
        let event = |i: usize, value: &str| Event {
            run: "original".into(),
            from: "Q".into(),
            to: "R".into(),
            method: Method::ReceiveMessage,
            args: serde_json::json!(["Q", value]),
            result: None,
            fault: None,
            start_us: i as u64,
            end_us: i as u64,
            outcome: Outcome::Delivered,
        };
        let big = "v".repeat(10_000);
        let budget = 3 * event(0, &big).bytes();
        let r = Recorder::with_capacity(100).with_max_bytes(budget);
        for i in 0..10 {
            r.record(event(i, &big));
            assert!(r.bytes() <= budget);
        }
        let kept = r.events("original", "Q", 0);
        let starts: Vec<u64> = kept.iter().map(|e| e.start_us).collect();
        assert_eq!(starts, [7, 8, 9], "the newest three fit");
        // A call larger than the whole budget is not kept, and drops nothing.
        r.record(event(10, &"w".repeat(4 * 10_000)));
        assert_eq!(r.events("original", "Q", 0).len(), 3);
        // Small calls still obey the count cap.
        let r = Recorder::with_capacity(2);
        (0..5).for_each(|i| r.record(event(i, "attack")));
        assert_eq!(r.events("original", "Q", 0).len(), 2);
    }

    /// The outcome is worked out from the answer where the event is made and again where it
    /// is read: a late refusal, a denial, an ignored message, any other fault.
    #[test]
    fn outcomes_from_answers() {
        let om = Method::Message(crate::calls::Protocol::Om);
        let late = crate::protocol::fault::python(
            "ValueError",
            &format!("{} in run 'r'", protocol::ext::late(2, 3)),
        );
        let cases = [
            (om, Err(late), Outcome::Late { round: 2 }),
            (
                om,
                Err(crate::protocol::fault::connection_refused()),
                Outcome::Failed,
            ),
            (om, Ok(Value::String("12".into())), Outcome::Delivered),
            (
                Method::SendMessage,
                Ok(Value::String(protocol::denied_reply("P", "R"))),
                Outcome::Denied,
            ),
            (
                Method::ReceiveMessage,
                Ok(Value::String(protocol::ignored_reply("R", "P"))),
                Outcome::Ignored,
            ),
            (
                Method::ReceiveMessage,
                Ok(Value::String(protocol::ignored_reply("Q", "P"))),
                Outcome::Delivered,
            ),
        ];
        for (method, result, outcome) in cases {
            let e = Event::call("r", "P", "R", method, serde_json::json!([]), &result);
            assert_eq!(e.outcome, outcome, "{result:?}");
            assert_eq!(from_value(&to_value(&e)).unwrap().outcome, outcome);
        }
    }
}
