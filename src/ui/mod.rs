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
//!
//! The routes are an axum `Router`, the run's stream axum's `Sse`; connections are taken by
//! the crate's one accept loop ([`server::Accept`]), which the nodes' servers use too. The
//! runs themselves are the app's ([`crate::app`]): this module reads forms and writes HTTP.

pub(crate) mod live;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, State as With};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::app::{self, ClientError, errln, outln};
use crate::cli::client::UiArgs;
use crate::cli::{Roles, Topology};
use crate::gate::{self, ConnGate};
use crate::peer::Peers;
use crate::runs::driver;
use crate::server::{Accept, Crowded};
pub(crate) use live::{RunRequest, RunSetup};

/// The page.
const PAGE: &str = include_str!("page.html");
/// Its script.
const SCRIPT: &str = include_str!("page.js");
/// Its style.
const STYLE: &str = include_str!("page.css");

/// Connections served at once (a page uses two or three); at the cap the one idle the longest
/// is closed to make room, and a new one is refused only when none is idle.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// Items of a run waiting for a slow reader; past it the gathering waits, the run does not.
const STREAM_ITEMS: usize = 1024;
/// The largest trace the page may replay (an OM(3) run over 10 nodes fits many times over).
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
pub(crate) struct Ui {
    /// The cluster runs are made on.
    pub(crate) bench: RunSetup,
    /// A trace file to replay (`--replay`), read when the page asks for it.
    pub(crate) replay: Option<PathBuf>,
}

/// The run going on, if any.
#[derive(Debug)]
struct CurrentRun {
    run: String,
    since: Instant,
}

struct State {
    ui: Ui,
    going: Mutex<Option<CurrentRun>>,
    /// Where the page is served: requests must name it (`Host`, `Origin`).
    at: SocketAddr,
}

/// The connection a request came on: who, and its place in the gate (busy while an answer
/// streams, so it is not taken for idle).
#[derive(Clone)]
struct Conn {
    remote: SocketAddr,
    state: Arc<gate::ConnState>,
}

/// `client ui`: serve the page until Ctrl-C (or SIGTERM); 1 when the address cannot be bound.
pub async fn command(a: &UiArgs) -> Result<u8, ClientError> {
    let Topology { cluster, nodes, .. } = a.cluster.resolve(&Roles::default())?;
    if nodes.is_empty() {
        return Err(ClientError::NoNodes);
    }
    if let Some(file) = &a.replay
        && let Err(error) = std::fs::File::open(file)
    {
        return Err(ClientError::Unreadable {
            flag: "--replay",
            path: file.clone(),
            error,
        });
    }
    let listener = match tokio::net::TcpListener::bind(a.listen).await {
        Ok(l) => l,
        Err(e) => {
            errln!(
                "client: cannot serve the page on {}: {e}; pick another with --listen ADDR:PORT \
                 (port 0 picks a free one)",
                a.listen
            );
            return Ok(1);
        }
    };
    let at = listener.local_addr().map_err(ClientError::Output)?;
    if !crate::cli::server::is_loopback(&at.ip().to_string()) {
        errln!(
            "client: warning: serving the page on {at} lets anyone who can reach it start runs \
             on your cluster (there is no authentication)"
        );
    }
    let host = if at.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        at.ip().to_string()
    };
    let host = if at.is_ipv6() {
        format!("[{host}]")
    } else {
        host
    };
    outln!(
        "generals ui: http://{host}:{}/ ({} nodes: {}; Ctrl-C stops it)",
        at.port(),
        nodes.len(),
        nodes.join(", ")
    );
    let bench = RunSetup {
        cluster,
        nodes,
        rpc_timeout: a.cluster.rpc_timeout(),
        // The page takes runs of at most --max-messages: the default fits the largest.
        round_timeout: a.round_timeout_ms.map_or_else(
            || {
                let extra = driver::ROUND_TIMEOUT_PER_MESSAGE
                    .saturating_mul(u32::try_from(a.max_messages).unwrap_or(u32::MAX));
                Duration::from_millis(driver::DEFAULT_ROUND_TIMEOUT_MS) + extra
            },
            Duration::from_millis,
        ),
        max_messages: a.max_messages,
    };
    let ui = Ui {
        bench,
        replay: a.replay.clone(),
    };
    serve(ui, listener, app::stopped()).await;
    Ok(0)
}

/// The page's routes. What no route takes: HTTP 405 for anything but a GET, 404 for a GET.
fn routes(state: Arc<State>) -> Router {
    Router::new()
        .route("/", reads(get(page)))
        .route("/index.html", reads(get(page)))
        .route("/page.js", reads(get(script)))
        .route("/page.css", reads(get(style)))
        .route("/api/cluster", reads(get(cluster)))
        .route("/api/replay", reads(get(replay)))
        .route(
            "/api/run",
            post(start_run).fallback(async || {
                text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "/api/run: POST the run as a form (run=om&m=1&seed=42); a GET never starts a run",
                )
            }),
        )
        .route(
            "/api/trace",
            post(read_trace).fallback(async || {
                text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "/api/trace: POST a trace file (JSON lines, as --trace writes them)",
                )
            }),
        )
        .fallback(nowhere)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guarded))
        .with_state(state)
}

/// A route the page only reads: a GET (axum would also answer HEAD from it; the page
/// answers every other method, HEAD included, 405).
fn reads(route: MethodRouter<Arc<State>>) -> MethodRouter<Arc<State>> {
    route.head(only_reads).fallback(only_reads)
}

async fn only_reads(method: Method) -> Response {
    text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method}: the page only reads (GET), and starts runs by POST /api/run"),
    )
}

async fn nowhere(method: Method, uri: Uri) -> Response {
    if method != Method::GET {
        return only_reads(method).await;
    }
    text(
        StatusCode::NOT_FOUND,
        format!("{}: no such page", crate::picture::shorten(uri.path(), 60)),
    )
}

/// Serve the page on `listener` until `stop` resolves, through the crate's accept loop.
pub(crate) async fn serve(
    ui: Ui,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()>,
) {
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
    let router = routes(state);
    let accept = Accept {
        gate: ConnGate::new(MAX_CONNECTIONS, MAX_CONNECTIONS),
        head_timeout: HEAD_TIMEOUT,
        keep_alive: true,
        half_close: false,
        nodelay: false,
        write_timeout: WRITE_TIMEOUT,
        pressure: None,
        // Every connection busy: this one is closed at once.
        crowded: Crowded::Close,
        drain: None,
        what: "ui connection",
    };
    let make = |remote: SocketAddr, conn: Arc<gate::ConnState>| {
        let router = router.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let mut router = router.clone();
            let conn = Conn {
                remote,
                state: conn.clone(),
            };
            async move {
                // Busy (never closed to make room) while the request is in hand, and while
                // its answer streams (the stream holds its own guard).
                let _busy = conn.state.busy();
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(conn);
                tower_service::Service::call(&mut router, req).await
            }
        })
    };
    accept.serve(listener, make, stop).await;
}

/// The same-origin rule before every route: HTTP 403 with the reason.
async fn guarded(
    With(state): With<Arc<State>>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    match same_origin(req.headers(), state.at) {
        Ok(()) => next.run(req).await,
        Err(why) => text(StatusCode::FORBIDDEN, why.to_string()),
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

/// Why a request is refused as not the page's own (HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OriginError {
    /// No `Host` header.
    #[error("no Host header: ask for the page by its address")]
    NoHost,
    /// A `Host` that is not the page's address (another name pointed here: DNS rebinding).
    #[error(
        "Host {}: this page answers only at its own address ({at}, or localhost:{})",
        crate::picture::shorten(.host, 60),
        .at.port()
    )]
    Host {
        /// The `Host` given.
        host: String,
        /// The page's address.
        at: SocketAddr,
    },
    /// An `Origin` that is not the page's.
    #[error(
        "Origin {}: only this page itself may ask this (another site cannot start runs or read the cluster)",
        crate::picture::shorten(.0, 60)
    )]
    Origin(String),
}

/// Whether a request comes from the page's own origin: a `Host` that is the page's address,
/// and an `Origin` (which a browser sends with every POST and every cross-site request it
/// lets a script read), if any, that is the page's. A request without `Origin` is not a
/// browser's cross-site one (curl, the address typed in the address bar, the page's own GETs).
fn same_origin(headers: &HeaderMap, at: SocketAddr) -> Result<(), OriginError> {
    let host = headers
        .get(HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
    match host {
        None => return Err(OriginError::NoHost),
        Some(host) if !names_the_page(&host, at) => return Err(OriginError::Host { host, at }),
        Some(_) => {}
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        let ours = origin
            .strip_prefix("http://")
            .is_some_and(|h| names_the_page(h, at));
        if !ours {
            return Err(OriginError::Origin(origin.into_owned()));
        }
    }
    Ok(())
}

/// Whether a browser opened the page from another site (`Sec-Fetch-Site` other than
/// `same-origin` or `none`, the address bar): then the page does not start the run its URL
/// names by itself, it only fills the form.
fn opened_from_elsewhere(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| !matches!(v.as_bytes(), b"same-origin" | b"none"))
}

fn full(status: StatusCode, kind: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    body.push('\n');
    full(status, "text/plain; charset=utf-8", body)
}

async fn page(headers: HeaderMap) -> Response {
    if opened_from_elsewhere(&headers) {
        let page = PAGE.replacen("<body ", "<body data-autostart=\"no\" ", 1);
        return full(StatusCode::OK, "text/html; charset=utf-8", page);
    }
    full(StatusCode::OK, "text/html; charset=utf-8", PAGE)
}

async fn script() -> Response {
    full(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    full(StatusCode::OK, "text/css; charset=utf-8", STYLE)
}

/// The nodes, asked now.
async fn cluster(With(state): With<Arc<State>>) -> Response {
    let bench = &state.ui.bench;
    let json = match Peers::new(bench.rpc_timeout) {
        Ok(peers) => {
            let nodes = live::nodes_view(&bench.cluster, &peers, &bench.nodes).await;
            serde_json::json!({ "nodes": nodes, "replay": state.ui.replay.is_some(),
                "round_timeout_ms": bench.round_timeout.as_millis() as u64 })
        }
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    let mut r = Response::new(Body::from(json.to_string()));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A request's body, at most `max` bytes, or the answer that refuses it.
async fn body_within(body: Body, max: usize, what: &str) -> Result<Bytes, Response> {
    let body = http_body_util::Limited::new(body, max);
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
async fn read_trace(With(state): With<Arc<State>>, body: Body) -> Response {
    match body_within(body, MAX_TRACE_BYTES, "the trace").await {
        Ok(bytes) => trace_answer(&state, &String::from_utf8_lossy(&bytes)),
        Err(refused) => refused,
    }
}

fn trace_answer(state: &Arc<State>, text_of: &str) -> Response {
    match live::trace_view(text_of, state.ui.bench.max_messages) {
        Ok(view) => full(StatusCode::OK, "application/json", view.to_string()),
        Err(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn replay(With(state): With<Arc<State>>) -> Response {
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
        Ok(Some(bytes)) => trace_answer(&state, &String::from_utf8_lossy(&bytes)),
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
    With(state): With<Arc<State>>,
    Extension(conn): Extension<Conn>,
    body: Body,
) -> Response {
    let form = match body_within(body, MAX_FORM_BYTES, "the run's form").await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let bench = &state.ui.bench;
    let form = String::from_utf8_lossy(&form);
    let req = match RunRequest::parse(&form, &bench.nodes, bench.max_messages, bench.round_timeout)
    {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
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
        *going = Some(CurrentRun {
            run: req.run_id(),
            since: Instant::now(),
        });
    }
    tracing::info!("{} started run {}", conn.remote, req.run_id());
    let (items_tx, mut items_rx) = mpsc::channel(STREAM_ITEMS);
    let (events_tx, events_rx) = mpsc::channel(16);
    let slot = Slot(state.clone());
    let bench = bench.clone();
    let running = tokio::spawn(async move {
        let _slot = slot;
        live::run(bench, req, items_tx).await;
    });
    // Number the items and hand them to the stream. A reader gone (the page closed, the
    // stream dropped) stops the run at once: its task is aborted, the run's own tasks with it
    // (the driver's calls stop; the nodes expire a run left unfinished), and the slot is free.
    tokio::spawn(async move {
        let mut id = 0u64;
        let _ = events_tx
            .send(SseEvent::default().comment("generals"))
            .await;
        loop {
            tokio::select! {
                item = items_rx.recv() => {
                    let Some(item) = item else { break };
                    id += 1;
                    if events_tx.send(item.to_event(id)).await.is_err() {
                        running.abort();
                        break;
                    }
                }
                () = events_tx.closed() => {
                    running.abort();
                    break;
                }
            }
        }
    });
    let mut r = Sse::new(Stream(events_rx, conn.state.busy())).into_response();
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A run's events as the SSE body reads them (and the connection busy while they stream).
struct Stream(mpsc::Receiver<SseEvent>, #[allow(dead_code)] gate::Busy);

impl futures_core::Stream for Stream {
    type Item = Result<SseEvent, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|e| e.map(Ok))
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
