//! What the client drives: the original `client.py` run. Every node sends the decision to every
//! other node, then each node is asked for its majority. Failures are reported one line each
//! and the run goes on with the other nodes, so one dead node never hides the rest.
//!
//! The run tells what happens as typed [`Said`] values, in order; the client prints each as
//! the original prints it ([`Said::line`]) and the live page streams them, so nobody reads
//! printed text back.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dxr::Value;

use crate::calls::{Call, Method};
use crate::cluster::Cluster;
use crate::peer::{PeerError, Peers};
use crate::protocol;
use crate::trace::{self, Event, Outcome};

/// The knobs of the original scenario.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Nodes taking part, in the order they send and finalize.
    pub(crate) nodes: Vec<String>,
    /// The decision every node sends.
    pub(crate) decision: String,
    /// Pause after each send (the original sleeps 100 ms).
    pub(crate) delay: Duration,
}

/// One thing the original run tells, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Said {
    /// One of the client's `send_message` calls, answered or failed, as the client saw it
    /// (also kept in [`OriginalOutcome::calls`]).
    Sent(Event),
    /// A node's `finalize_decision`.
    Decided {
        /// The node.
        node: String,
        /// Its majority.
        decision: String,
    },
    /// A call that failed, as its stderr line says it:
    /// `error: node Q (http://127.0.0.1:8001/): send_message("R", "attack"): connection refused`.
    Failed(String),
}

/// Where a line of the original client goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Standard output: the sends and the decisions.
    Out,
    /// Standard error: the failures.
    Err,
}

impl Stream {
    /// `stdout` or `stderr`, as the live page names them.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stream::Out => "stdout",
            Stream::Err => "stderr",
        }
    }
}

impl Said {
    /// The line the original client prints for it, and where; `quiet` (`client --quiet`, the
    /// original's final lines only) prints no send. A failed send prints nothing itself (its
    /// [`Said::Failed`] follows).
    pub(crate) fn line(&self, quiet: bool) -> Option<(Stream, String)> {
        match self {
            Said::Sent(_) if quiet => None,
            Said::Sent(call) => {
                let reply = call.result.as_ref()?.as_str()?;
                Some((Stream::Out, protocol::printed::client_send_line(reply)))
            }
            Said::Decided { node, decision } => Some((
                Stream::Out,
                protocol::printed::client_final_line(node, decision),
            )),
            Said::Failed(line) => Some((Stream::Err, line.clone())),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: protocol::DEFAULT_NODES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            decision: protocol::DEFAULT_DECISION.to_string(),
            delay: Duration::ZERO,
        }
    }
}

/// What a run of the original scenario gave.
#[derive(Debug, Clone, Default)]
pub(crate) struct OriginalOutcome {
    /// Calls that failed (each reported on `err`).
    pub(crate) failures: usize,
    /// Each node's final decision, for the nodes that gave one.
    pub(crate) decisions: std::collections::BTreeMap<String, String>,
    /// Nodes that refused the connection (nothing listens there), in the order found: each
    /// is reported once, and its later calls are skipped.
    pub(crate) unreachable: Vec<String>,
    /// The client's own `send_message` calls, as it saw them: `from` the node asked to send,
    /// `to` the recipient, the reply (`P denied communication to R`, `Q sent decision ...`) or
    /// the failure, and the client's times. What the pictures draw when the nodes keep no
    /// trace, and the only record of a refused send (the node makes no call).
    pub(crate) calls: Vec<Event>,
}

/// Run the scenario, telling `tell` each thing as it happens (generic, so that the run can be
/// spawned as a task when `tell` can be sent between threads). An error of `tell` (its
/// reader gone) ends the run with that error.
pub(crate) async fn run_original<T>(
    cluster: &Cluster,
    peers: &Peers,
    opts: &Options,
    tell: &mut T,
) -> std::io::Result<OriginalOutcome>
where
    T: FnMut(Said) -> std::io::Result<()>,
{
    let mut tally = CallsSoFar::default();
    send_all(cluster, peers, opts, &mut tally, tell).await?;
    let decisions = finalize_all(cluster, peers, opts, &mut tally, tell).await?;
    Ok(OriginalOutcome {
        failures: tally.failures,
        decisions,
        unreachable: tally.unreachable,
        calls: tally.calls,
    })
}

/// Failures so far, and the nodes that refused the connection (their further calls are
/// skipped, and count as failures).
#[derive(Default)]
struct CallsSoFar {
    failures: usize,
    unreachable: Vec<String>,
    calls: Vec<Event>,
}

impl CallsSoFar {
    /// A call to `node` failed: count it, remember a refusal, tell its line.
    fn failed<T>(&mut self, node: &str, e: Failed, tell: &mut T) -> std::io::Result<()>
    where
        T: FnMut(Said) -> std::io::Result<()>,
    {
        self.failures += 1;
        if e.refused {
            self.unreachable.push(node.to_string());
        }
        tell(Said::Failed(e.line))
    }

    /// Whether `node` refused a connection before: then its call is skipped and fails.
    fn skip(&mut self, node: &str) -> bool {
        let skip = self.unreachable.iter().any(|u| u == node);
        self.failures += usize::from(skip);
        skip
    }
}

/// Phase one, as `client.py`: every node sends the decision to every other node.
async fn send_all<T>(
    cluster: &Cluster,
    peers: &Peers,
    opts: &Options,
    tally: &mut CallsSoFar,
    tell: &mut T,
) -> std::io::Result<()>
where
    T: FnMut(Said) -> std::io::Result<()>,
{
    for sender in &opts.nodes {
        for recipient in opts.nodes.iter().filter(|r| *r != sender) {
            if tally.skip(sender) {
                continue;
            }
            let (method, args) = Call::SendMessage {
                recipient: Value::String(recipient.clone()),
                decision: Value::String(opts.decision.clone()),
            }
            .into_wire();
            let what = format!("{method}({recipient:?}, {:?})", opts.decision);
            let start_us = trace::now_us();
            let answer = call(cluster, peers, sender, method, &args, &what).await;
            let seen = Event {
                run: trace::ORIGINAL_RUN.to_string(),
                from: sender.clone(),
                to: recipient.clone(),
                method,
                args: serde_json::json!([recipient, opts.decision]),
                result: answer.as_ref().ok().map(|r| r.as_str().into()),
                fault: answer.as_ref().err().map(|e| e.problem.clone()),
                start_us,
                end_us: trace::now_us(),
                outcome: match &answer {
                    Ok(reply) => Outcome::of_reply(method, sender, recipient, reply),
                    Err(e) => Outcome::of_fault(&e.problem),
                },
            };
            tally.calls.push(seen.clone());
            tell(Said::Sent(seen))?;
            if let Err(e) = answer {
                tally.failed(sender, e, tell)?;
            }
            if !opts.delay.is_zero() {
                tokio::time::sleep(opts.delay).await;
            }
        }
    }
    Ok(())
}

/// Phase two: every node's majority, by name.
async fn finalize_all<T>(
    cluster: &Cluster,
    peers: &Peers,
    opts: &Options,
    tally: &mut CallsSoFar,
    tell: &mut T,
) -> std::io::Result<std::collections::BTreeMap<String, String>>
where
    T: FnMut(Said) -> std::io::Result<()>,
{
    let mut decisions = std::collections::BTreeMap::new();
    for name in &opts.nodes {
        if tally.skip(name) {
            continue;
        }
        let method = Method::FinalizeDecision;
        match call(cluster, peers, name, method, &[], &format!("{method}()")).await {
            Ok(decision) => {
                decisions.insert(name.clone(), decision.clone());
                tell(Said::Decided {
                    node: name.clone(),
                    decision,
                })?;
            }
            Err(e) => tally.failed(name, e, tell)?,
        }
    }
    Ok(decisions)
}

/// A failed call of the scenario.
struct Failed {
    /// The stderr line.
    line: String,
    /// What went wrong, the end of the line.
    problem: String,
    /// The node refused the connection: nothing listens there.
    refused: bool,
}

/// Call a method expected to return a string. The error's line is the whole stderr line:
/// `error: node Q (http://127.0.0.1:8001/): send_message("R", "attack"): connection refused`.
async fn call(
    cluster: &Cluster,
    peers: &Peers,
    node: &str,
    method: Method,
    args: &[Value],
    what: &str,
) -> Result<String, Failed> {
    let url = cluster.url_of(node).map_err(|f| Failed {
        line: format!("error: node {node} has no address: {f}"),
        problem: format!("no address: {f}"),
        refused: false,
    })?;
    let (problem, refused) = match peers.call(&url, method.name(), args).await {
        Ok(Value::String(s)) => return Ok(s),
        // Another server's answer of another type: printed as the original client prints
        // it, Python's `str()` of it (`None`, `5`, `{'a': 1}`; issue 27, item 9).
        Ok(other) => return Ok(protocol::python_str(&other)),
        Err(e) => (e.to_string(), matches!(e, PeerError::Refused)),
    };
    Err(Failed {
        line: format!("error: node {node} ({url}): {what}: {problem}"),
        problem,
        refused,
    })
}

/// What the pictures of an original run draw: the calls the nodes traced, plus what only the
/// client saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drawable {
    /// The calls to draw, in order of start: the traced `receive_message` calls, a
    /// `send_message` the sender refused (its reply is [`protocol::denied_reply`]: drawn as a
    /// stub), and for a sender that kept no trace, the message its reply says it sent.
    pub events: Vec<Event>,
    /// The legend line saying what was drawn from the client's own calls, if anything.
    pub note: Option<String>,
}

/// Merge the nodes' trace of an original run (`traced`) with the client's own calls
/// ([`OriginalOutcome::calls`]). A refused send appears only in the client's calls (the node makes no
/// call), so it is always taken from there. A sender with nothing in the trace (the original
/// `server.py` has no `trace_events`; a server may record nothing) is drawn from its replies:
/// `Q sent decision 'attack' to P` is an arrow from Q to P carrying `attack`. Its receiver's
/// answer is unseen; a receiver whose `finalize_decision` answered `faulty` (when `decision`,
/// the value sent, is not `faulty` itself) is the original's faulty node, which ignores what
/// it receives, and its messages are marked ignored, the legend saying why.
pub fn drawable(
    traced: Vec<Event>,
    calls: &[Event],
    decisions: &BTreeMap<String, String>,
    decision: &str,
) -> Drawable {
    let traced_senders: BTreeSet<String> = traced.iter().map(|e| e.from.clone()).collect();
    let ignores = |node: &str| {
        decision != protocol::FAULTY_DECISION
            && decisions.get(node).map(String::as_str) == Some(protocol::FAULTY_DECISION)
    };
    let mut events = traced;
    let mut from_client = BTreeSet::new();
    let mut ignoring = BTreeSet::new();
    for c in calls.iter().filter(|c| c.method == Method::SendMessage) {
        if c.outcome == Outcome::Denied {
            events.push(c.clone());
            continue;
        }
        if traced_senders.contains(&c.from) {
            continue;
        }
        from_client.insert(c.from.clone());
        let mut message = sent_message(c, decision);
        if c.fault.is_none() && ignores(&c.to) {
            ignoring.insert(c.to.clone());
            message.result = Some(protocol::ignored_reply(&c.to, &c.from).into());
            message.outcome = Outcome::Ignored;
        }
        events.push(message);
    }
    events.sort_by(|a, b| (a.start_us, &a.from, &a.to).cmp(&(b.start_us, &b.from, &b.to)));
    let note = (!from_client.is_empty()).then(|| {
        let who = if traced_senders.is_empty() {
            "the nodes keep no trace".to_string()
        } else {
            let list: Vec<&str> = from_client.iter().map(String::as_str).collect();
            format!("{} kept no trace", list.join(", "))
        };
        let mut note = format!("drawn from the client's own calls (send_message replies): {who}");
        for node in &ignoring {
            note.push_str(&format!(
                "; {node} ignores what it receives (its finalize_decision answered '{}')",
                protocol::FAULTY_DECISION
            ));
        }
        note
    });
    Drawable { events, note }
}

/// The message one of the client's `send_message` calls (`c`) made its sender send, as the
/// reply tells it: `Q sent decision 'attack' to P` is a `receive_message` from Q to P carrying
/// `attack` (`decision`, the value asked for, when the reply does not say), its answer unseen;
/// a send the sender refused stays the `send_message` call (drawn as a stub). What the live
/// page draws of an original run, whichever server the nodes run.
pub(crate) fn sent_message(c: &Event, decision: &str) -> Event {
    if c.outcome == Outcome::Denied {
        return c.clone();
    }
    let sent = (c.result.as_ref().and_then(|r| r.as_str()))
        .and_then(|r| sent_decision(r, &c.from, &c.to))
        .unwrap_or(decision);
    Event {
        method: Method::ReceiveMessage,
        args: serde_json::json!([c.from, sent]),
        result: None,
        ..c.clone()
    }
}

/// The decision a `send_message` reply says `from` sent to `to` (a behaviour may have changed
/// it), or `None` when the reply is not [`protocol::sent_line`].
fn sent_decision<'a>(reply: &'a str, from: &str, to: &str) -> Option<&'a str> {
    let template = protocol::sent_line(from, "\u{0}", to);
    let (before, after) = template.split_once('\u{0}')?;
    reply.strip_prefix(before)?.strip_suffix(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(from: &str, to: &str, reply: &str, at: u64) -> Event {
        let answer = Ok(Value::String(reply.into()));
        let args = serde_json::json!([to, "attack"]);
        let event = Event::call(
            trace::ORIGINAL_RUN,
            from,
            to,
            Method::SendMessage,
            args,
            &answer,
        );
        event.at(at, at + 10)
    }

    #[test]
    fn sent_decisions_are_read_from_replies() {
        let reply = protocol::sent_line("Q", "it's 'retreat'", "R");
        assert_eq!(sent_decision(&reply, "Q", "R"), Some("it's 'retreat'"));
        assert_eq!(sent_decision(&reply, "Q", "S"), None);
        assert_eq!(sent_decision("P denied communication to R", "P", "R"), None);
    }

    #[test]
    fn without_a_trace_the_client_draws_what_it_saw() {
        let calls = [
            send("P", "Q", &protocol::sent_line("P", "attack", "Q"), 1),
            send("P", "R", &protocol::denied_reply("P", "R"), 2),
            send("Q", "P", &protocol::sent_line("Q", "retreat", "P"), 3),
        ];
        let decisions = BTreeMap::from([
            ("P".to_string(), protocol::FAULTY_DECISION.to_string()),
            ("Q".to_string(), "attack".to_string()),
        ]);
        let d = drawable(Vec::new(), &calls, &decisions, "attack");
        let shown: Vec<(&str, &str, &str)> = d
            .events
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str(), e.method.name()))
            .collect();
        assert_eq!(
            shown,
            [
                ("P", "Q", "receive_message"),
                ("P", "R", "send_message"),
                ("Q", "P", "receive_message")
            ]
        );
        assert_eq!(d.events[2].value(), Some("retreat"));
        assert_eq!(
            d.events[2].result,
            Some(protocol::ignored_reply("P", "Q").into())
        );
        assert_eq!(d.events[2].outcome, Outcome::Ignored);
        assert_eq!(d.events[1].outcome, Outcome::Denied);
        assert_eq!(d.events[0].result, None);
        let note = d.note.expect("a note");
        assert!(note.contains("the nodes keep no trace"), "{note}");
        assert!(note.contains("P ignores what it receives"), "{note}");
        // With a trace: only the refusal comes from the client.
        let traced = vec![Event {
            method: Method::ReceiveMessage,
            ..send("Q", "P", "x", 3)
        }];
        let d = drawable(traced, &calls[1..], &decisions, "attack");
        assert_eq!(d.events.len(), 2);
        assert_eq!(d.note, None);
    }
}
