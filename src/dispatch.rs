//! The request path: body -> decoded call -> the node's method table (original methods,
//! extensions, `system.multicall` batches of them) -> rendered `methodResponse`. The server
//! runs [`respond`] on every request body; the fuzz target and the property tests run the same
//! function through `server::Offline`, a node whose peers are a port nobody listens on.
//!
//! Why a front of our own rather than `dxr_server::server`'s: that one answers an unknown
//! method with fault 404, a bad body with fault 400 quoting the whole body, and a missing
//! Content-Length with HTTP 411, and has no hook for a fallback; the original answers all of
//! these with fault code 1 and `<class '...'>` strings (docs/protocol.md). The handlers and the map
//! are dxr_server's ([`methods`]); decoding, routing and rendering are here.

use std::sync::Arc;
use std::time::Duration;

use dxr::{Fault, Value};
use dxr_server::HandlerMap;
use dxr_server::axum::http::HeaderMap;
use tokio::sync::OwnedSemaphorePermit;

use crate::calls::Method;
use crate::gate::ByteBudget;
use crate::methods::python_fault;
use crate::protocol::{self, fault, python_type_name};
use crate::xmlrpc::{self, DecodeError};

/// The answer to one request body: decode it ([`xmlrpc::decode_call`]), route the call (or
/// each call of a `system.multicall` batch) through `table`, run the handlers, and render the
/// result or the fault as the `methodResponse` text ([`render`]). Nothing is shared with other
/// requests: for a node with neighbours, see [`respond_within`].
pub(crate) async fn respond(table: &HandlerMap, body: &[u8]) -> String {
    respond_within(table, body, None).await.body
}

/// Longest a request waits for room in the answer budget, over all its calls (while it
/// waits, callers that read nothing of their answers are disconnected: see
/// [`crate::gate::WriteTimeout::with_pressure`]).
pub(crate) const ROOM_WAIT: Duration = Duration::from_secs(4);

/// What a request of a node may use of its process's shared capacity, call by call.
///
/// Why call by call: a batch took the heavy turn once for all its calls and was checked
/// against the answer budget once its whole answer was built, so one small
/// `system.multicall([get_messages] * 64)` on a full store took the process's memory to
/// gigabytes, and two batches of 1,024 `om_decide` held both turns for minutes. Now every heavy
/// call takes room for its answer first (from [`Shares::hint`], then exactly once it is
/// written), and a turn for its build only, as a single call does.
pub(crate) struct Shares {
    /// Turns to build an answer that grows with the node's data (per process).
    pub(crate) heavy: Arc<tokio::sync::Semaphore>,
    /// Bytes of answers not yet read by their callers (per process).
    pub(crate) answers: ByteBudget,
    /// The size a heavy method's answer will be about, before it is built (the bytes of what
    /// it copies: the stored messages, the trace).
    pub(crate) hint: Box<dyn Fn(Method) -> usize + Send + Sync>,
}

impl std::fmt::Debug for Shares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shares")
            .field("answers", &self.answers)
            .finish_non_exhaustive()
    }
}

impl Shares {
    /// Room for the answer of a call of `method`, waiting (under pressure) until `deadline`;
    /// the `MemoryError` fault when there is none.
    async fn room(
        &self,
        method: Method,
        deadline: tokio::time::Instant,
    ) -> Result<OwnedSemaphorePermit, Fault> {
        let within = deadline.saturating_duration_since(tokio::time::Instant::now());
        (self.answers)
            .hold_pressing((self.hint)(method).max(1), within)
            .await
            .ok_or_else(|| self.full())
    }

    fn full(&self) -> Fault {
        python_fault(fault::answers_full(self.answers.bytes()))
    }
}

/// An answer, and the room it holds in the answer budget, if it took some.
#[derive(Debug)]
pub(crate) struct Answered {
    /// The `methodResponse` text.
    pub(crate) body: String,
    /// Room in [`Shares::answers`] taken for it (to be fitted to what is sent).
    pub(crate) held: Option<OwnedSemaphorePermit>,
}

impl Answered {
    fn unheld(body: String) -> Self {
        Answered { body, held: None }
    }
}

/// The method named `method` if it is heavy ([`Method::is_heavy`]): a call of it takes a
/// heavy turn and room in the answer budget ([`Shares`]) before its answer is built.
fn heavy(method: &str) -> Option<Method> {
    Method::from_name(method).filter(|m| m.is_heavy())
}

/// [`respond`], with each heavy call (alone or in a batch) taking room in `shares`' answer
/// budget before it is built and one of its heavy turns while it is built. Every failure is
/// a fault as CPython's `SimpleXMLRPCDispatcher._marshaled_dispatch` makes it: code 1 and a
/// `<class '...'>` string, or the fault a `<fault>` body is.
pub(crate) async fn respond_within(
    table: &HandlerMap,
    body: &[u8],
    shares: Option<&Shares>,
) -> Answered {
    let deadline = tokio::time::Instant::now() + ROOM_WAIT;
    let call = match xmlrpc::decode_call(body) {
        Ok(call) => call,
        Err(e) => return Answered::unheld(render(Err(decode_fault(&e)))),
    };
    if call.name == Method::Multicall.name() {
        return multicall(table, call.params, shares, deadline).await;
    }
    let Some(handler) = table.get(call.name.as_ref()) else {
        let refused = python_fault(fault::unsupported_method(&call.name));
        return Answered::unheld(render(Err(refused)));
    };
    let Some((shares, method)) = shares.zip(heavy(&call.name)) else {
        let result = handler.handle(&call.params, HeaderMap::new()).await;
        return Answered::unheld(render(result));
    };
    let room = match shares.room(method, deadline).await {
        Ok(room) => room,
        Err(f) => return Answered::unheld(render(Err(f))),
    };
    let turn = shares.heavy.acquire().await;
    let body = render(handler.handle(&call.params, HeaderMap::new()).await);
    drop(turn);
    Answered {
        body,
        held: Some(room),
    }
}

/// `system.multicall`, as CPython's `SimpleXMLRPCDispatcher.system_multicall` runs it: each
/// call of the list through the table, in order, a failing call a fault struct in its place.
/// The list and its entries are taken as Python takes them (a string is a sequence of
/// characters, a struct of its keys, `params` anything iterable), and what Python cannot
/// take (an entry without `methodName` or `params`, an entry that is not a struct) fails the
/// whole call at that entry, after the calls before it have run. Two differences, both
/// deliberate (docs/guide/divergences.md, items 12 and 13): a batch inside a batch is refused as an
/// unknown method, and a list of more than [`protocol::MAX_BATCH`] entries is refused.
///
/// Every result is written as its call ends ([`xmlrpc::encode_value`]). With `shares`, each
/// heavy call takes its room and turn as a single call does, and its written result is fitted
/// to its room: the batch's answer never holds more than the answer budget, and no caller
/// holds a turn longer than one call.
async fn multicall(
    table: &HandlerMap,
    mut params: Vec<Value>,
    shares: Option<&Shares>,
    deadline: tokio::time::Instant,
) -> Answered {
    let refused = |f: Fault| Answered::unheld(render(Err(f)));
    let mut batch = Batch {
        table,
        shares,
        deadline,
        items: Vec::new(),
        held: None,
    };
    if well_formed_batch(&params) {
        let calls = split_batch(params);
        if let Err(f) = check_batch_size(calls.len()) {
            return refused(f);
        }
        batch.items.reserve(calls.len());
        for (name, args) in calls {
            batch.call(name, args).await;
        }
        return batch.finish();
    }
    if params.len() != 1 {
        return refused(python_fault(fault::multicall_arity(params.len())));
    }
    let list = params.pop().unwrap_or(Value::Nil);
    let entries = match python_iter(list) {
        Ok(entries) => entries,
        Err(t) => {
            return refused(python_fault(fault::python(
                "TypeError",
                &fault::not_iterable(t),
            )));
        }
    };
    if let Err(f) = check_batch_size(entries.len()) {
        return refused(f);
    }
    for entry in entries {
        // What Python cannot take apart fails the whole call, the calls before it run.
        let Value::Struct(mut members) = entry else {
            return refused(python_fault(fault::not_subscriptable(&entry)));
        };
        let Some(name) = members.remove("methodName") else {
            return refused(python_fault(fault::key_error("methodName")));
        };
        let Some(args) = members.remove("params") else {
            return refused(python_fault(fault::key_error("params")));
        };
        match entry_call(table, name, args) {
            Ok((name, args)) => batch.call(name, args).await,
            Err(f) => batch.items.push(item(Err(f))),
        }
    }
    batch.finish()
}

/// One entry of a batch as CPython's `_dispatch(method_name, params)` takes it: a method name
/// that cannot be hashed is a `TypeError`, any other that is no method's name is not
/// supported, and the method is called with `*params` (anything iterable), in that order.
fn entry_call(
    table: &HandlerMap,
    name: Value,
    params: Value,
) -> Result<(String, Vec<Value>), Fault> {
    let name = match name {
        Value::String(name) => name,
        Value::Array(_) | Value::Struct(_) | Value::Base64(_) | Value::DateTime(_) => {
            return Err(python_fault(fault::unhashable(python_type_name(&name))));
        }
        other => {
            let shown = protocol::python_str(&other);
            return Err(python_fault(fault::unsupported_method(&shown)));
        }
    };
    if !table.contains_key(name.as_str()) {
        return Err(python_fault(fault::unsupported_method(&name)));
    }
    let args = python_iter(params).map_err(|t| python_fault(fault::args_not_iterable(&name, t)))?;
    Ok((name, args))
}

/// A batch being answered: its calls' results so far, written, and the answer budget's room
/// they hold.
struct Batch<'a> {
    table: &'a HandlerMap,
    shares: Option<&'a Shares>,
    deadline: tokio::time::Instant,
    items: Vec<String>,
    held: Option<OwnedSemaphorePermit>,
}

impl Batch<'_> {
    /// Run one call of the batch and keep its result: a heavy one (with shares) takes its
    /// room and turn as a single call does, and its written result is fitted to its room.
    async fn call(&mut self, name: String, args: Vec<Value>) {
        let Some(handler) = self.table.get(name.as_str()) else {
            let refused = python_fault(fault::unsupported_method(&name));
            self.items.push(item(Err(refused)));
            return;
        };
        let Some((shares, method)) = self.shares.zip(heavy(&name)) else {
            let result = handler.handle(&args, HeaderMap::new()).await;
            self.items.push(item(result));
            return;
        };
        let room = match shares.room(method, self.deadline).await {
            Ok(room) => room,
            Err(f) => {
                self.items.push(item(Err(f)));
                return;
            }
        };
        let turn = shares.heavy.acquire().await;
        let item_text = item(handler.handle(&args, HeaderMap::new()).await);
        drop(turn);
        // Fitted to what it takes written; a result larger than its room and the budget's
        // rest is a fault in its place, as a single call's would be.
        let room = match shares.answers.resize(room, item_text.len()) {
            Ok(room) => room,
            Err(room) => {
                drop((item_text, room));
                self.items.push(item(Err(shares.full())));
                return;
            }
        };
        self.items.push(item_text);
        match &mut self.held {
            Some(held) => held.merge(room),
            None => self.held = Some(room),
        }
    }

    fn finish(self) -> Answered {
        Answered {
            body: xmlrpc::encode_array_response(self.items),
            held: self.held,
        }
    }
}

/// The items Python's `iter()` gives for a value: an array's items, a string's characters, a
/// struct's keys (in key order: dxr's structs keep no document order, divergence 26);
/// for anything else, its type name (`int`, `NoneType`...), which is not iterable.
fn python_iter(value: Value) -> Result<Vec<Value>, &'static str> {
    match value {
        Value::Array(items) => Ok(items),
        Value::String(s) => Ok(s.chars().map(|c| Value::String(c.to_string())).collect()),
        Value::Struct(members) => Ok(members.into_keys().map(Value::String).collect()),
        other => Err(python_type_name(&other)),
    }
}

/// A batch of more than [`protocol::MAX_BATCH`] calls is refused (ours: a limit).
fn check_batch_size(len: usize) -> Result<(), Fault> {
    if len <= protocol::MAX_BATCH {
        return Ok(());
    }
    Err(python_fault(fault::python(
        "ValueError",
        &format!(
            "{} takes at most {} calls, not {len}",
            Method::Multicall,
            protocol::MAX_BATCH,
        ),
    )))
}

/// One result of a batch, as the batch's answer carries it.
fn item(result: Result<Value, Fault>) -> String {
    xmlrpc::encode_value(&multicall_item(result))
}

/// Whether `params` is one array of `{methodName: string, params: array}` structs, the shape
/// every well-behaved batch has: then [`split_batch`] takes it apart without a copy. Anything
/// else is taken as Python takes it ([`multicall`]).
fn well_formed_batch(params: &[Value]) -> bool {
    match params {
        [Value::Array(calls)] => calls.iter().all(|c| {
            matches!(c, Value::Struct(m) if m.len() == 2
                && matches!(m.get("methodName"), Some(Value::String(_)))
                && matches!(m.get("params"), Some(Value::Array(_))))
        }),
        _ => false,
    }
}

/// The calls of a [`well_formed_batch`], taken apart by moving the values out instead of
/// copying them (dxr's `from_multicall_params` copies each call twice, which showed in the
/// explorer's profile; see BENCHMARKS.md).
fn split_batch(mut params: Vec<Value>) -> Vec<(String, Vec<Value>)> {
    let Some(Value::Array(calls)) = params.pop() else {
        return Vec::new();
    };
    calls
        .into_iter()
        .filter_map(|call| {
            let Value::Struct(mut m) = call else {
                return None;
            };
            match (m.remove("methodName"), m.remove("params")) {
                (Some(Value::String(name)), Some(Value::Array(params))) => Some((name, params)),
                _ => None,
            }
        })
        .collect()
}

/// One element of a `system.multicall` answer, as dxr's `into_multicall_response` writes it
/// (`[value]` for a result, `{faultCode, faultString}` for a fault), without its copies.
fn multicall_item(result: Result<Value, Fault>) -> Value {
    match result {
        Ok(value) => Value::Array(vec![value]),
        Err(f) => Value::Struct(
            [
                ("faultCode".to_string(), Value::Integer(f.code())),
                (
                    "faultString".to_string(),
                    Value::String(f.string().to_string()),
                ),
            ]
            .into(),
        ),
    }
}

/// The answer body for `result`, in Python's layout ([`xmlrpc::encode_response`],
/// [`xmlrpc::encode_fault`]).
pub fn render(result: Result<Value, Fault>) -> String {
    match result {
        Ok(value) => xmlrpc::encode_response(&value),
        Err(fault) => xmlrpc::encode_fault(&fault),
    }
}

/// The fault for a body that is not a call we accept: code 1 and the class CPython's server
/// names (`ExpatError` for malformed XML, `ValueError` for what we refuse on purpose, the
/// class of what CPython raises), or the fault a `<fault>` body is (cut as every fault).
pub fn decode_fault(e: &DecodeError) -> Fault {
    match e {
        DecodeError::Malformed(m) => python_fault(fault::parse_error(m)),
        DecodeError::Refused(m) => python_fault(fault::python("ValueError", m)),
        DecodeError::Python { class, message } => python_fault(fault::python(class, message)),
        DecodeError::Raised(f) => Fault::new(f.code(), fault::cut(f.string().to_string())),
    }
}
