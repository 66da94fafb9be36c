//! `client ui`: one web page that shows the cluster, starts runs on it and draws every message
//! as the nodes record it.
//!
//! The page is static HTML, CSS and JavaScript built into the binary (`include_str!`): no
//! build step, nothing fetched from elsewhere, it works offline. It talks to this server only:
//! - `GET /` the page (its query, e.g. `?run=om&m=1&seed=42`, is read by the page, which then
//!   starts that run); `GET /page.js`, `GET /page.css` its parts;
//! - `GET /api/cluster` the nodes as `node_info` describes them (JSON);
//! - `GET /api/run?run=om&m=1&commander=P&order=attack&seed=42` (or `run=original&decision=..`,
//!   `run=sm..`) starts the run and answers a Server-Sent Events stream of it ([`live::Item`]:
//!   `start`, `message`s, `line`s, `result` or `error`, `end`); a bad value is HTTP 400 with
//!   the reason as text, a run while another goes is HTTP 409;
//! - `GET /api/replay` the trace file given with `--replay` (JSON lines, as `--trace` writes
//!   them) read as [`live::trace_view`], which the page replays when opened with `?replay=1`;
//!   `POST /api/trace` the same for a file the user opens in the page.
//!
//! Safe by default: it binds loopback unless told otherwise; the page names runs, never
//! addresses, so it can only start runs on the configured cluster; one run at a time; a
//! stream whose reader went away costs the run nothing (the run ends as it would have); every
//! connection has a header timeout and a write timeout, and at most [`MAX_CONNECTIONS`] are
//! served at once.

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

use crate::gate;
use crate::peer::Peers;
pub use live::{Bench, RunRequest};

/// The page.
const PAGE: &str = include_str!("page.html");
/// Its script.
const SCRIPT: &str = include_str!("page.js");
/// Its style.
const STYLE: &str = include_str!("page.css");

/// Connections served at once; past it a new one is closed at once (a page uses two or three).
pub const MAX_CONNECTIONS: usize = 64;
/// Items of a run waiting for a slow reader; past it the gathering waits, the run does not.
const STREAM_ITEMS: usize = 1024;
/// The largest trace the page may replay (an OM(3) run over 10 nodes is about 1.5 MB).
const MAX_TRACE_BYTES: usize = 32 << 20;
/// A connection that sends no complete request head, or reads nothing, this long is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

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
}

/// Serve the page on `listener` until `stop` resolves.
pub async fn serve(ui: Ui, listener: TcpListener, stop: impl std::future::Future<Output = ()>) {
    let state = Arc::new(State {
        ui,
        going: Mutex::new(None),
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(IO_TIMEOUT);
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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue; // dropped: closed at once
        };
        let state = state.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(route(&state, req, remote).await) }
        });
        let io = TokioIo::new(gate::WriteTimeout::new(stream, IO_TIMEOUT));
        let conn = http.serve_connection(io, service);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("ui connection from {remote}: {e}");
            }
            drop(slot);
        });
    }
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

async fn route(state: &Arc<State>, req: Request<Incoming>, remote: SocketAddr) -> Response<Body> {
    if req.uri().path() == "/api/trace" {
        return match *req.method() {
            Method::POST => read_trace(req).await,
            _ => text(
                StatusCode::METHOD_NOT_ALLOWED,
                "/api/trace: POST a trace file (JSON lines, as --trace writes them)",
            ),
        };
    }
    // Not even HEAD: a HEAD of /api/run would start a run nobody sees.
    if req.method() != Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{}: the page only reads (GET)", req.method()),
        );
    }
    let query = req.uri().query().unwrap_or("");
    match req.uri().path() {
        "/" | "/index.html" => full(StatusCode::OK, "text/html; charset=utf-8", PAGE),
        "/page.js" => full(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT),
        "/page.css" => full(StatusCode::OK, "text/css; charset=utf-8", STYLE),
        "/api/cluster" => cluster(state),
        "/api/run" => start_run(state, query, remote),
        "/api/replay" => replay(state),
        path => text(
            StatusCode::NOT_FOUND,
            format!("{}: no such page", crate::picture::shorten(path, 60)),
        ),
    }
}

/// The nodes, asked now (answered as a stream of one JSON document, so that the handler stays
/// synchronous and a slow node delays only this answer).
fn cluster(state: &Arc<State>) -> Response<Body> {
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
    streamed(rx, "application/json")
}

/// A trace file posted by the page (opened from the user's disk), as the page replays it.
async fn read_trace(req: Request<Incoming>) -> Response<Body> {
    let body = http_body_util::Limited::new(req.into_body(), MAX_TRACE_BYTES);
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the trace is over {} MiB: replay a smaller run",
                    MAX_TRACE_BYTES >> 20
                ),
            );
        }
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("reading the trace: {e}")),
    };
    trace_answer(&String::from_utf8_lossy(&bytes))
}

fn trace_answer(text_of: &str) -> Response<Body> {
    match live::trace_view(text_of) {
        Ok(view) => full(StatusCode::OK, "application/json", view.to_string()),
        Err(e) => text(StatusCode::BAD_REQUEST, e),
    }
}

fn replay(state: &Arc<State>) -> Response<Body> {
    let Some(path) = &state.ui.replay else {
        return text(
            StatusCode::NOT_FOUND,
            "no trace to replay: start `client ui --replay FILE`, or open a file in the page",
        );
    };
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() > MAX_TRACE_BYTES => text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{}: over {} MiB, too large to replay",
                path.display(),
                MAX_TRACE_BYTES >> 20
            ),
        ),
        Ok(bytes) => trace_answer(&String::from_utf8_lossy(&bytes)),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read {}: {e}", path.display()),
        ),
    }
}

fn start_run(state: &Arc<State>, query: &str, remote: SocketAddr) -> Response<Body> {
    let bench = &state.ui.bench;
    let req = match RunRequest::parse(query, &bench.nodes, bench.max_messages, bench.round_timeout)
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
    let (state2, bench) = (state.clone(), bench.clone());
    tokio::spawn(async move {
        live::run(bench, req, items_tx).await;
        *state2.going.lock().unwrap_or_else(|e| e.into_inner()) = None;
    });
    // Number the items and write them as SSE; a reader gone makes the sends fail, the rest
    // of the items are dropped here and the run goes on.
    tokio::spawn(async move {
        let mut id = 0u64;
        let _ = bytes_tx.send(Bytes::from_static(b": generals\n\n")).await;
        while let Some(item) = items_rx.recv().await {
            id += 1;
            if bytes_tx.send(Bytes::from(item.to_sse(id))).await.is_err() {
                items_rx.close();
            }
        }
    });
    streamed(bytes_rx, "text/event-stream")
}

/// A response whose body is what `rx` yields, until it closes.
fn streamed(rx: mpsc::Receiver<Bytes>, kind: &'static str) -> Response<Body> {
    let mut r = Response::new(ChannelBody(rx).boxed());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A body fed by a channel.
struct ChannelBody(mpsc::Receiver<Bytes>);

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
