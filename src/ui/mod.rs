//! `client ui`: one web page that shows the cluster, starts runs on it and draws every message
//! as the nodes record it.
//!
//! The page is static HTML, CSS and JavaScript built into the binary (`include_str!`): no
//! build step, nothing fetched from elsewhere, it works offline. It talks to this server only:
//! - `GET /` the page (its query, e.g. `?run=om&m=1&seed=42`, is read by the page, which then
//!   starts that run); `GET /page.js`, `GET /page.css` its parts;
//! - `GET /api/cluster` the nodes as `node_info` describes them (JSON);
//! - `POST /api/run` with the run as a form (`run=om&m=1&commander=P&order=attack&seed=42`, or
//!   `run=original&decision=..`, `run=sm..`) starts the run and answers a Server-Sent Events
//!   stream of it ([`live::Item`]: `start`, `message`s, `line`s, `result` or `error`, `end`);
//!   a bad value is HTTP 400 with the reason as text, a run while another goes is HTTP 409;
//! - `GET /api/replay` the trace file given with `--replay` (JSON lines, as `--trace` writes
//!   them) read as [`live::trace_view`], which the page replays when opened with `?replay=1`;
//!   `POST /api/trace` the same for a file the user opens in the page.
//!
//! Safe by default: it binds loopback unless told otherwise; it answers only requests made to
//! its own address (`Host`) and, from a browser, by its own page (`Origin`): anything else is
//! HTTP 403 ([`same_origin`]), so no other web page can start a run or read the cluster, by
//! a form, an `<img>` or a rebound DNS name; a run starts only by a POST; the page names
//! runs, never addresses, so it can only start runs on the configured cluster; one run at a
//! time, and a run whose reader went away is stopped; every input that sizes work (a form, a
//! trace, the replayed file) is bounded before the work; connections have a short header
//! timeout and a write timeout, and at most [`MAX_CONNECTIONS`] are served at once, the one
//! idle the longest closed to make room for a new one.

pub mod live;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::gate::{self, ConnGate};
use crate::peer::Peers;
pub use live::{Bench, RunRequest};

/// The page.
const PAGE: &str = include_str!("page.html");
/// Its script.
const SCRIPT: &str = include_str!("page.js");
/// Its style.
const STYLE: &str = include_str!("page.css");

/// Connections served at once (a page uses two or three); at the cap the one idle the longest
/// is closed to make room, and a new one is refused only when none is idle.
pub const MAX_CONNECTIONS: usize = 64;
/// Items of a run waiting for a slow reader; past it the gathering waits, the run does not.
const STREAM_ITEMS: usize = 1024;
/// The largest trace the page may replay (an OM(3) run over 10 nodes is about 1.5 MB).
const MAX_TRACE_BYTES: usize = 32 << 20;
/// The largest run form (`POST /api/run`): a decision of 1 KiB, percent-encoded, and the rest.
const MAX_FORM_BYTES: usize = 16 << 10;
/// A connection that sends no complete request head this long (a new one, or an idle one
/// between requests) is closed: a browser sends its request at once and reconnects when it
/// needs to, while idle connections cost a place.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection that reads nothing of its answer this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// What `client ui` serves.
#[derive(Debug, Clone)]
pub struct Ui {
    /// The cluster runs are made on.
    pub bench: Bench,
    /// A trace file to replay (`--replay`), read when the page asks for it.
    pub replay: Option<PathBuf>,
}

/// The run going on, if any.
#[derive(Debug)]
struct Going {
    run: String,
    since: Instant,
}

struct State {
    ui: Ui,
    going: Mutex<Option<Going>>,
    /// Where the page is served: requests must name it (`Host`, `Origin`).
    at: SocketAddr,
}

/// Serve the page on `listener` until `stop` resolves.
pub async fn serve(ui: Ui, listener: TcpListener, stop: impl std::future::Future<Output = ()>) {
    let at = match listener.local_addr() {
        Ok(at) => at,
        Err(e) => {
            tracing::error!("the page's listener has no address: {e}");
            return;
        }
    };
    let state = Arc::new(State {
        ui,
        going: Mutex::new(None),
        at,
    });
    let gate = ConnGate::new(MAX_CONNECTIONS, MAX_CONNECTIONS);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT);
    tokio::pin!(stop);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Ok(entered) = gate.enter_soon(remote.ip()).await else {
            continue; // every connection busy: this one is closed at once
        };
        let state = state.clone();
        let conn_state = entered.state();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let state = state.clone();
            // Busy (never closed to make room) while the request is in hand, and while its
            // answer streams (the body holds its own guard).
            let busy = conn_state.clone();
            async move {
                let _busy = busy.busy();
                Ok::<_, Infallible>(route(&state, req, remote, &busy).await)
            }
        });
        let io = TokioIo::new(gate::WriteTimeout::new(
            entered.watch(stream),
            WRITE_TIMEOUT,
        ));
        let conn = http.serve_connection(io, service);
        tokio::spawn(async move {
            tokio::select! {
                served = conn => if let Err(e) = served {
                    tracing::debug!("ui connection from {remote}: {e}");
                },
                () = entered.evicted() => {
                    tracing::debug!("closed idle ui connection from {remote} to make room");
                }
            }
            drop(entered);
        });
    }
}

/// Whether `host` (a `Host` header, or an `Origin`'s part after `http://`) names the page's
/// own address `at`: its port, and as the host `localhost`, a loopback address, the address
/// it listens on, or (listening on all of them) any address; never a DNS name, which another
/// site could point at this machine (DNS rebinding).
fn names_the_page(host: &str, at: SocketAddr) -> bool {
    // `[v6]:port`, `v4:port`, `name:port`; without a port, HTTP's 80.
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, after)) => (inside, after.strip_prefix(':')),
            None => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let port = port.map_or(Some(80), |p| p.parse::<u16>().ok());
    if port != Some(at.port()) {
        return false;
    }
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => {
            ip.to_canonical().is_loopback()
                || at.ip().is_unspecified()
                || ip.to_canonical() == at.ip().to_canonical()
        }
        Err(_) => false,
    }
}

/// Why a request does not come from the page's own origin, if it does not: a `Host` that is
/// not the page's address (another name pointed here: DNS rebinding), or an `Origin` (which a
/// browser sends with every POST and every cross-site request it lets a script read) that is
/// not the page's. A request without `Origin` is not a browser's cross-site one (curl, the
/// address typed in the address bar, the page's own GETs).
fn same_origin(req: &Request<Incoming>, at: SocketAddr) -> Result<(), String> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
    match &host {
        None => return Err("no Host header: ask for the page by its address".into()),
        Some(h) if !names_the_page(h, at) => {
            return Err(format!(
                "Host {}: this page answers only at its own address ({at}, or localhost:{})",
                crate::picture::shorten(h, 60),
                at.port()
            ));
        }
        Some(_) => {}
    }
    if let Some(origin) = req.headers().get(hyper::header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        let ours = origin
            .strip_prefix("http://")
            .is_some_and(|h| names_the_page(h, at));
        if !ours {
            return Err(format!(
                "Origin {}: only this page itself may ask this (another site cannot start runs or read the cluster)",
                crate::picture::shorten(&origin, 60)
            ));
        }
    }
    Ok(())
}

/// Whether a browser opened the page from another site (`Sec-Fetch-Site` other than
/// `same-origin` or `none`, the address bar): then the page does not start the run its URL
/// names by itself, it only fills the form.
fn opened_from_elsewhere(req: &Request<Incoming>) -> bool {
    req.headers()
        .get("sec-fetch-site")
        .is_some_and(|v| !matches!(v.as_bytes(), b"same-origin" | b"none"))
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: StatusCode, kind: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut body = body.into();
    body.push('\n');
    full(status, "text/plain; charset=utf-8", body)
}

async fn route(
    state: &Arc<State>,
    req: Request<Incoming>,
    remote: SocketAddr,
    conn: &Arc<gate::ConnState>,
) -> Response<Body> {
    if let Err(why) = same_origin(&req, state.at) {
        return text(StatusCode::FORBIDDEN, why);
    }
    match (req.uri().path(), req.method()) {
        ("/api/trace", &Method::POST) => return read_trace(state, req).await,
        ("/api/trace", _) => {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "/api/trace: POST a trace file (JSON lines, as --trace writes them)",
            );
        }
        ("/api/run", &Method::POST) => return start_run(state, req, remote, conn).await,
        ("/api/run", _) => {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "/api/run: POST the run as a form (run=om&m=1&seed=42); a GET never starts a run",
            );
        }
        _ => {}
    }
    if req.method() != Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "{}: the page only reads (GET), and starts runs by POST /api/run",
                req.method()
            ),
        );
    }
    match req.uri().path() {
        "/" | "/index.html" if opened_from_elsewhere(&req) => full(
            StatusCode::OK,
            "text/html; charset=utf-8",
            PAGE.replacen("<body ", "<body data-autostart=\"no\" ", 1),
        ),
        "/" | "/index.html" => full(StatusCode::OK, "text/html; charset=utf-8", PAGE),
        "/page.js" => full(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT),
        "/page.css" => full(StatusCode::OK, "text/css; charset=utf-8", STYLE),
        "/api/cluster" => cluster(state, conn),
        "/api/replay" => replay(state),
        path => text(
            StatusCode::NOT_FOUND,
            format!("{}: no such page", crate::picture::shorten(path, 60)),
        ),
    }
}

/// The nodes, asked now (answered as a stream of one JSON document, so that the handler stays
/// synchronous and a slow node delays only this answer).
fn cluster(state: &Arc<State>, conn: &Arc<gate::ConnState>) -> Response<Body> {
    let (tx, rx) = mpsc::channel(1);
    let bench = state.ui.bench.clone();
    let replay = state.ui.replay.is_some();
    tokio::spawn(async move {
        let json = match Peers::new(bench.rpc_timeout) {
            Ok(peers) => {
                let nodes = live::nodes_view(&bench.cluster, &peers, &bench.nodes).await;
                serde_json::json!({ "nodes": nodes, "replay": replay,
                    "round_timeout_ms": bench.round_timeout.as_millis() as u64 })
            }
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        let _ = tx.send(Bytes::from(json.to_string())).await;
    });
    streamed(rx, "application/json", conn.busy())
}

/// A request's body, at most `max` bytes, or the answer that refuses it.
async fn body_within(
    req: Request<Incoming>,
    max: usize,
    what: &str,
) -> Result<Bytes, Response<Body>> {
    let body = http_body_util::Limited::new(req.into_body(), max);
    match body.collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} is over {max} bytes"),
        )),
        Err(e) => Err(text(
            StatusCode::BAD_REQUEST,
            format!("reading {what}: {e}"),
        )),
    }
}

/// A trace file posted by the page (opened from the user's disk), as the page replays it.
async fn read_trace(state: &Arc<State>, req: Request<Incoming>) -> Response<Body> {
    match body_within(req, MAX_TRACE_BYTES, "the trace").await {
        Ok(bytes) => trace_answer(state, &String::from_utf8_lossy(&bytes)),
        Err(refused) => refused,
    }
}

fn trace_answer(state: &Arc<State>, text_of: &str) -> Response<Body> {
    match live::trace_view(text_of, state.ui.bench.max_messages) {
        Ok(view) => full(StatusCode::OK, "application/json", view.to_string()),
        Err(e) => text(StatusCode::BAD_REQUEST, e),
    }
}

fn replay(state: &Arc<State>) -> Response<Body> {
    use std::io::Read;
    let Some(path) = &state.ui.replay else {
        return text(
            StatusCode::NOT_FOUND,
            "no trace to replay: start `client ui --replay FILE`, or open a file in the page",
        );
    };
    // The cap is checked before the bytes are held: a file says its size, and anything else
    // (`/dev/zero`, a pipe) is read through a `take` into room for the cap, never more.
    let read = std::fs::File::open(path).and_then(|f| {
        let len = f.metadata()?.len();
        if len > MAX_TRACE_BYTES as u64 {
            return Ok(None);
        }
        let room = if len > 0 {
            len as usize
        } else {
            MAX_TRACE_BYTES
        };
        let mut bytes = Vec::with_capacity(room + 1);
        f.take(MAX_TRACE_BYTES as u64 + 1).read_to_end(&mut bytes)?;
        Ok((bytes.len() <= MAX_TRACE_BYTES).then_some(bytes))
    });
    match read {
        Ok(None) => text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{}: over {} MiB, too large to replay",
                path.display(),
                MAX_TRACE_BYTES >> 20
            ),
        ),
        Ok(Some(bytes)) => trace_answer(state, &String::from_utf8_lossy(&bytes)),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read {}: {e}", path.display()),
        ),
    }
}

/// The run slot, freed when the run ends or is stopped (its task dropped).
struct Slot(Arc<State>);

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.going.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

async fn start_run(
    state: &Arc<State>,
    req: Request<Incoming>,
    remote: SocketAddr,
    conn: &Arc<gate::ConnState>,
) -> Response<Body> {
    let form = match body_within(req, MAX_FORM_BYTES, "the run's form").await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let bench = &state.ui.bench;
    let form = String::from_utf8_lossy(&form);
    let req = match RunRequest::parse(&form, &bench.nodes, bench.max_messages, bench.round_timeout)
    {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    {
        let mut going = state.going.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = &*going {
            return text(
                StatusCode::CONFLICT,
                format!(
                    "a run is going ({}, started {:.1} s ago): one run at a time; wait for it to end",
                    g.run,
                    g.since.elapsed().as_secs_f64()
                ),
            );
        }
        *going = Some(Going {
            run: req.run_id(),
            since: Instant::now(),
        });
    }
    tracing::info!("{remote} started run {}", req.run_id());
    let (items_tx, mut items_rx) = mpsc::channel(STREAM_ITEMS);
    let (bytes_tx, bytes_rx) = mpsc::channel(16);
    let slot = Slot(state.clone());
    let bench = bench.clone();
    let running = tokio::spawn(async move {
        let _slot = slot;
        live::run(bench, req, items_tx).await;
    });
    // Number the items and write them as SSE. A reader gone (the page closed, the stream
    // dropped) stops the run at once: its task is aborted, the run's own tasks with it (the
    // driver's calls stop; the nodes expire a run left unfinished), and the slot is free.
    tokio::spawn(async move {
        let mut id = 0u64;
        let _ = bytes_tx.send(Bytes::from_static(b": generals\n\n")).await;
        loop {
            tokio::select! {
                item = items_rx.recv() => {
                    let Some(item) = item else { break };
                    id += 1;
                    if bytes_tx.send(Bytes::from(item.to_sse(id))).await.is_err() {
                        running.abort();
                        break;
                    }
                }
                () = bytes_tx.closed() => {
                    running.abort();
                    break;
                }
            }
        }
    });
    streamed(bytes_rx, "text/event-stream", conn.busy())
}

/// A response whose body is what `rx` yields, until it closes; `busy` (the connection's) is
/// held until then, so the connection is not taken for idle while the body is on its way.
fn streamed(rx: mpsc::Receiver<Bytes>, kind: &'static str, busy: gate::Busy) -> Response<Body> {
    let mut r = Response::new(ChannelBody(rx, busy).boxed());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A body fed by a channel (and the connection busy while it streams).
struct ChannelBody(mpsc::Receiver<Bytes>, #[allow(dead_code)] gate::Busy);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_page_s_own_address_is_its_host() {
        let at: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
            "127.0.0.2:8080",
        ] {
            assert!(names_the_page(ok, at), "{ok}");
        }
        for bad in [
            "rebind.evil.example:8080",
            "127.0.0.1:8081",
            "127.0.0.1",
            "localhost",
            "10.0.0.1:8080",
            "evil.example",
            "[::1]",
            "",
        ] {
            assert!(!names_the_page(bad, at), "{bad}");
        }
        let all: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(names_the_page("10.0.0.1:8080", all));
        assert!(!names_the_page("box.example:8080", all));
        let v6: SocketAddr = "[::1]:9000".parse().unwrap();
        assert!(names_the_page("[::1]:9000", v6));
        assert!(names_the_page("localhost:9000", v6));
        let port80: SocketAddr = "[::1]:80".parse().unwrap();
        assert!(names_the_page("127.0.0.1", port80));
        assert!(names_the_page("[::1]", port80));
        assert!(!names_the_page("[::1", port80));
    }
}
