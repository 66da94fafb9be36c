//! A small XML-RPC load generator: N keep-alive connections, each sending calls back to back
//! for a fixed duration or call count, with latencies recorded per call. Used by
//! `scripts/bench.sh` through the `loadgen` binary.
//!
//! It speaks raw HTTP/1.1 over TCP with request bytes prepared once per connection, so the
//! generator itself costs little and the figures describe the server. A server that closes
//! the connection after each answer (Python's `SimpleXMLRPCServer` answers HTTP/1.0) is
//! handled by reconnecting, which is what its real clients do too.

use std::time::{Duration, Instant};

use dxr::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::calls::Method;
use crate::peer;

/// One method of the mix and its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `receive_message(sender, "attack")`, a distinct sender per connection.
    Receive,
    /// `send_message(recipient, "attack")`: the node calls `recipient` (node to node).
    Send {
        /// The recipient's name.
        recipient: String,
    },
    /// `finalize_decision()`.
    Finalize,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `host:port` of the node under load.
    pub addr: String,
    /// Concurrent connections.
    pub connections: usize,
    /// Stop after this long...
    pub duration: Option<Duration>,
    /// ...or after this many calls in total.
    pub calls: Option<u64>,
    /// Weighted mix of calls; each connection cycles through it in order.
    pub mix: Vec<(Call, u32)>,
    /// Give up on one call after this long (counted as an error, the connection is reopened).
    pub timeout: Duration,
}

/// The figures of a run.
#[derive(Debug, Clone, Default)]
pub struct LoadFigures {
    /// Calls answered with a value.
    pub ok: u64,
    /// Calls that failed: transport errors, timeouts, HTTP errors, faults.
    pub errors: u64,
    /// Calls still unanswered when the run ended (their wait counts in the percentiles).
    pub unfinished: u64,
    /// Wall time of the run.
    pub(crate) elapsed: Duration,
    /// Latency percentiles of answered calls, in microseconds: p50, p99, p99.9, max.
    pub(crate) p50_us: f64,
    /// 99th percentile.
    pub(crate) p99_us: f64,
    /// 99.9th percentile.
    pub(crate) p999_us: f64,
    /// Slowest call.
    pub(crate) max_us: f64,
}

impl LoadFigures {
    /// Answered calls per second.
    pub(crate) fn calls_per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line of `key=value` pairs, easy to read and to parse from a script.
    pub fn line(&self) -> String {
        format!(
            "calls={} errors={} unfinished={} secs={:.3} calls_per_sec={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1}",
            self.ok,
            self.errors,
            self.unfinished,
            self.elapsed.as_secs_f64(),
            self.calls_per_sec(),
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.max_us
        )
    }
}

/// Parse a mix such as `receive_message:9,send_message=R:1` (method[=recipient][:weight]).
pub fn parse_mix(text: &str) -> Result<Vec<(Call, u32)>, String> {
    let mut mix = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (what, weight) = match item.rsplit_once(':') {
            Some((w, n)) => (
                w,
                n.parse::<u32>()
                    .map_err(|_| format!("bad weight in {item:?}"))?,
            ),
            None => (item, 1),
        };
        let call = match what.split_once('=') {
            None if what == Method::ReceiveMessage.name() => Call::Receive,
            None if what == Method::FinalizeDecision.name() => Call::Finalize,
            None if what == Method::SendMessage.name() => Call::Send {
                recipient: "R".to_string(),
            },
            Some((m, r)) if m == Method::SendMessage.name() && !r.is_empty() => Call::Send {
                recipient: r.to_string(),
            },
            _ => {
                return Err(format!(
                    "unknown call {what:?}: use receive_message, send_message[=RECIPIENT] or finalize_decision"
                ));
            }
        };
        if weight > 0 {
            mix.push((call, weight));
        }
    }
    if mix.is_empty() {
        return Err("the mix is empty".into());
    }
    Ok(mix)
}

/// Why the node under load cannot be loaded at all: said before any figure, so that "no call
/// succeeded" is left for a node that was reached and failed every call.
#[derive(Debug, thiserror::Error)]
pub enum Unreachable {
    /// `--addr` names no address (`localhost` without a port, a name nobody resolves).
    #[error("cannot resolve --addr {addr}: {error}; give HOST:PORT, e.g. 127.0.0.1:8001")]
    Resolve {
        /// What `--addr` said.
        addr: String,
        /// What the resolver said.
        error: std::io::Error,
    },
    /// Nothing accepts a connection there.
    #[error(
        "cannot connect to {addr}: {error}; is a node running there? (`server` hosts P..S on \
         127.0.0.1:8000-8003)"
    )]
    Connect {
        /// What `--addr` said.
        addr: String,
        /// What the system said.
        error: std::io::Error,
    },
}

/// Resolve `addr` and open (and close) one connection to it, within `timeout`.
pub async fn reach(addr: &str, timeout: Duration) -> Result<(), Unreachable> {
    let resolve = |error| Unreachable::Resolve {
        addr: addr.to_string(),
        error,
    };
    let first = tokio::net::lookup_host(addr)
        .await
        .map_err(resolve)?
        .next()
        .ok_or_else(|| resolve(std::io::Error::other("no address")))?;
    let connect = |error| Unreachable::Connect {
        addr: addr.to_string(),
        error,
    };
    match tokio::time::timeout(timeout, TcpStream::connect(first)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(connect(e)),
        Err(_) => Err(connect(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no connection within {timeout:?}"),
        ))),
    }
}

/// Run the plan and gather the figures.
pub async fn run(plan: &Plan) -> LoadFigures {
    let started = Instant::now();
    let deadline = plan.duration.map(|d| started + d);
    let per_conn = plan
        .calls
        .map(|c| c.div_ceil(plan.connections.max(1) as u64));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..plan.connections.max(1) {
        let requests = requests_for(plan, i);
        let addr = plan.addr.clone();
        let timeout = plan.timeout;
        tasks.spawn(async move { connection(addr, requests, deadline, per_conn, timeout).await });
    }
    let mut latencies: Vec<u32> = Vec::new();
    let mut report = LoadFigures::default();
    let mut censored = 0u64;
    while let Some(done) = tasks.join_next().await {
        if let Ok((lat, errors, open)) = done {
            report.errors += errors;
            report.ok += lat.len() as u64;
            latencies.extend(lat);
            // Calls cut off by the end of the run count in the percentiles with their wait
            // so far, so a server that leaves clients waiting shows it in its tail.
            if let Some(waited) = open.filter(|&w| w > 0) {
                latencies.push(waited);
                censored += 1;
            }
        }
    }
    report.unfinished = censored;
    report.elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let idx = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        f64::from(latencies[idx]) / 10.0
    };
    report.p50_us = pct(0.50);
    report.p99_us = pct(0.99);
    report.p999_us = pct(0.999);
    report.max_us = pct(1.0);
    report
}

/// The HTTP requests one connection cycles through, prepared once.
fn requests_for(plan: &Plan, conn: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (call, weight) in &plan.mix {
        let body = match call {
            Call::Receive => peer::call_body(
                Method::ReceiveMessage.name(),
                &[
                    Value::String(format!("load{conn}")),
                    Value::String("attack".into()),
                ],
            ),
            Call::Send { recipient } => peer::call_body(
                Method::SendMessage.name(),
                &[
                    Value::String(recipient.clone()),
                    Value::String("attack".into()),
                ],
            ),
            Call::Finalize => peer::call_body(Method::FinalizeDecision.name(), &[]),
        }
        .unwrap_or_default();
        let mut req = format!(
            "POST /RPC2 HTTP/1.1\r\nHost: {}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
            plan.addr,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body.as_bytes());
        for _ in 0..*weight {
            out.push(req.clone());
        }
    }
    out
}

/// One connection's loop: latencies in tenths of a microsecond, the error count, and the wait
/// of a call still unanswered when the run ended.
async fn connection(
    addr: String,
    requests: Vec<Vec<u8>>,
    deadline: Option<Instant>,
    calls: Option<u64>,
    timeout: Duration,
) -> (Vec<u32>, u64, Option<u32>) {
    let mut censored = None;
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut errors = 0u64;
    let mut stream: Option<BufReader<TcpStream>> = None;
    let mut body = Vec::with_capacity(512);
    let mut n = 0u64;
    loop {
        if calls.is_some_and(|c| n >= c) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let req = &requests[(n as usize) % requests.len()];
        n += 1;
        let t0 = Instant::now();
        // A call still open when the run ends is abandoned, not counted: a server that
        // queues connections (Python's listen backlog) would otherwise stretch the run.
        let call_deadline = t0 + timeout;
        let limit = deadline.map_or(call_deadline, |d| d.min(call_deadline));
        let outcome = tokio::time::timeout_at(limit.into(), async {
            let s = match &mut stream {
                Some(s) => s,
                None => {
                    let s = TcpStream::connect(&addr).await?;
                    s.set_nodelay(true)?;
                    stream.insert(BufReader::new(s))
                }
            };
            s.get_mut().write_all(req).await?;
            read_response(s, &mut body).await
        })
        .await;
        match outcome {
            Ok(Ok((status, keep))) => {
                let elapsed = t0.elapsed();
                if status == 200 && !body.windows(7).any(|w| w == b"<fault>") {
                    latencies.push(tenths_of_us(elapsed));
                } else {
                    errors += 1;
                }
                if !keep {
                    stream = None;
                }
            }
            Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => {
                // Still waiting when the run ended: not a call, but its wait so far is a
                // lower bound of its latency, kept for the percentiles (censored).
                censored = Some(tenths_of_us(t0.elapsed()));
                break;
            }
            _ => {
                errors += 1;
                stream = None;
            }
        }
    }
    (latencies, errors, censored)
}

fn tenths_of_us(d: Duration) -> u32 {
    (d.as_nanos() / 100).min(u128::from(u32::MAX)) as u32
}

/// Read one response; returns (status, whether the connection stays open).
async fn read_response(
    s: &mut BufReader<TcpStream>,
    body: &mut Vec<u8>,
) -> std::io::Result<(u16, bool)> {
    let mut line = String::new();
    if s.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let http10 = line.starts_with("HTTP/1.0");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let mut length: Option<usize> = None;
    let mut keep = !http10;
    loop {
        line.clear();
        if s.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                keep = !value.eq_ignore_ascii_case("close");
            }
        }
    }
    body.clear();
    match length {
        Some(len) => {
            body.resize(len, 0);
            s.read_exact(body).await?;
        }
        None => {
            s.read_to_end(body).await?;
            keep = false;
        }
    }
    Ok((status, keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse() {
        assert_eq!(
            parse_mix("receive_message").unwrap(),
            vec![(Call::Receive, 1)]
        );
        assert_eq!(
            parse_mix("receive_message:9,send_message=S:1").unwrap(),
            vec![
                (Call::Receive, 9),
                (
                    Call::Send {
                        recipient: "S".into()
                    },
                    1
                )
            ]
        );
        assert!(parse_mix("nope").is_err());
        assert!(parse_mix("receive_message:x").is_err());
    }
}
