//! A node's HTTP side, as Python's `SimpleXMLRPCServer` answers: its routes (a POST to an RPC
//! path is a call, a POST elsewhere 404, any other method 501), the request body within the
//! limits (411-as-a-fault without a length, 413 over `--max-body`, 408, gzip in and out), the
//! answer budget, and the `Server` header. Every byte of these answers is the wire contract
//! (docs/protocol.md): this file moves them, it does not decide them anew.
//!
//! Routing is [`route`], a `match` on the method and the path: Python's routes are two paths
//! and two refusals, and an axum `Router` in front of them cost a measurable share of a call's
//! instructions (BENCHMARKS.md, "Close to the limit"). Each request body goes through
//! [`dispatch::respond_within`] (decode, route through the node's `dxr_server` method table,
//! render).

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use dxr_server::axum::http::{
    HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use super::Limits;
use super::hosted::Hosted;
use crate::dispatch;
use crate::gate::{self, ByteBudget};
use crate::methods;
use crate::protocol::{self, fault};

/// HTTP 429 with the gate's message: a connection refused for want of room.
pub(crate) fn too_many(message: &str) -> Answer {
    plain(StatusCode::TOO_MANY_REQUESTS, message)
}

/// A node's HTTP answer: every body a node sends is bytes it has in full (hyper's `Full`, no
/// boxed body per answer).
pub(crate) type Answer = Response<Full<Bytes>>;

/// Python's routes: a POST to one of [`protocol::RPC_PATHS`] is a call; a POST elsewhere is
/// HTTP 404, any other method HTTP 501.
pub(crate) async fn route(state: &Hosted, req: Request<Incoming>) -> Answer {
    let rpc_path = protocol::RPC_PATHS.contains(&python_path(req.uri()).as_ref());
    match (req.method() == Method::POST, rpc_path) {
        (true, true) => {
            let (parts, body) = req.into_parts();
            rpc(state, &parts.headers, body).await
        }
        (true, false) => no_such_page(),
        (false, _) => not_implemented(req.method()),
    }
}

/// The path Python's `SimpleXMLRPCRequestHandler` compares with its `rpc_paths`: the request
/// target as sent, query included (`/RPC2?x=1` is no RPC path), a target in absolute form
/// whole (`http://host/RPC2` is none either), and leading slashes reduced to one (`//` is
/// `/`, as `http.server` reduces them).
fn python_path(uri: &hyper::Uri) -> std::borrow::Cow<'_, str> {
    if uri.scheme().is_some() {
        return std::borrow::Cow::Owned(uri.to_string());
    }
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    match target.starts_with("//") {
        true => std::borrow::Cow::Owned(format!("/{}", target.trim_start_matches('/'))),
        false => std::borrow::Cow::Borrowed(target),
    }
}

/// Python answers POST on other paths with 404.
fn no_such_page() -> Answer {
    plain(StatusCode::NOT_FOUND, protocol::NO_SUCH_PAGE)
}

/// Python answers every method but POST with 501.
fn not_implemented(method: &Method) -> Answer {
    plain(
        StatusCode::NOT_IMPLEMENTED,
        &format!("Unsupported method ('{method}')"),
    )
}

pub(crate) fn plain(status: StatusCode, text: &str) -> Answer {
    let mut r = Response::new(Full::new(Bytes::copy_from_slice(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    name_server(&mut r);
    r
}

/// `Server: generals/VERSION` on every answer, as Python's server names itself: our client
/// keeps its connections open only to servers that serve connections concurrently, which it
/// knows ours by (`peer`'s `Connections`).
fn name_server(r: &mut Answer) {
    r.headers_mut()
        .insert(header::SERVER, HeaderValue::from_static(protocol::SERVER));
}

async fn rpc(state: &Hosted, headers: &HeaderMap, body: Incoming) -> Answer {
    let gzip_ok = accepts_gzip(headers);
    // The body's bytes are held against the process's budget until it is answered.
    let (body, _held) = match read_body(&state.limits, &state.bodies, headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(delay) = state.delay {
        // A `delay:MS` node answers late.
        tokio::time::sleep(delay).await;
    }
    // Calls whose work grows with what the node holds, not with the request (the stored
    // messages, the trace, an OM evaluation), alone or inside a batch, each take room for
    // their answer and then one of HEAVY_BUILDS turns of the process for their build
    // (`dispatch::Shares`): each takes a copy of the data (and its XML, several times the
    // data) before its answer's exact size is known.
    let answer = dispatch::respond_within(&state.table, &body, Some(&state.shares)).await;
    drop(body);
    xml_response(answer, gzip_ok, Some(&state.answers))
}

/// The request body within the limits, or the HTTP answer that refuses it.
async fn read_body(
    limits: &Limits,
    budget: &ByteBudget,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<(Bytes, Option<tokio::sync::OwnedSemaphorePermit>), Answer> {
    let length = match declared_length(limits, headers) {
        Ok(length) => length,
        Err(Refusal::Answer(r)) => return Err(*r),
        Err(Refusal::TooLarge) => {
            // Lingering close: a caller still sending would get a reset, not this answer, if
            // the connection closed on its unread body (Python: `BrokenPipeError` at 8 MB).
            drain(body, limits.request_timeout.min(LINGER_TIME)).await;
            let mut refused = too_large(limits);
            refused
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Err(refused);
        }
    };
    let encoding = content_encoding(headers);
    let gzipped = encoding.as_deref() == Some("gzip");
    let held = hold_room(limits, budget, length, gzipped).await?;
    let mut read = std::pin::pin!(http_body_util::Limited::new(body, limits.max_body).collect());
    // A body that has already arrived (nearly every call: it comes with its head) is taken
    // without making a timeout, whose clock reading and runtime lookup cost a measurable share
    // of a call
    // (BENCHMARKS.md, "Close to the limit"); one still on its way is read within the timeout.
    let ready = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
    let read = match ready {
        Poll::Ready(read) => Ok(read),
        Poll::Pending => tokio::time::timeout(limits.request_timeout, read).await,
    };
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => return Err(too_large(limits)),
        Err(_) => {
            return Err(plain(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time",
            ));
        }
    };
    match encoding.as_deref() {
        None | Some("identity") => Ok((bytes, held)),
        Some("gzip") => gunzip(&bytes, limits.max_body)
            .map(|b| (Bytes::from(b), held))
            .map_err(|m| plain(StatusCode::BAD_REQUEST, &m)),
        Some(other) => Err(plain(
            StatusCode::NOT_IMPLEMENTED,
            &format!("encoding {other:?} not supported"),
        )),
    }
}

/// The request's `Content-Encoding` in lower case, as Python's handler compares it (`GZIP`
/// is gzip); `None` when there is none.
fn content_encoding(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_ENCODING)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_lowercase())
}

/// Why a request's declared length refuses it.
enum Refusal {
    /// Over `--max-body`: answered 413 once the body has been drained.
    TooLarge,
    /// Any other answer, at once.
    Answer(Box<Answer>),
}

/// The body's `Content-Length`, within the cap: no length is a fault (as Python's server has
/// no chunked reader), a bad one HTTP 400.
fn declared_length(limits: &Limits, headers: &HeaderMap) -> Result<usize, Refusal> {
    let Some(length) = headers.get(header::CONTENT_LENGTH) else {
        let refused = fault::python(
            "ValueError",
            "request has no Content-Length (chunked bodies are not accepted)",
        );
        let answer = dispatch::render(Err(methods::python_fault(refused)));
        let answer = xml_response(unheld(answer), false, None);
        return Err(Refusal::Answer(Box::new(answer)));
    };
    match length
        .to_str()
        .ok()
        .and_then(|l| l.trim().parse::<u64>().ok())
    {
        Some(n) if n > limits.max_body as u64 => Err(Refusal::TooLarge),
        Some(n) => Ok(n as usize),
        None => Err(Refusal::Answer(Box::new(plain(
            StatusCode::BAD_REQUEST,
            "invalid Content-Length",
        )))),
    }
}

fn too_large(limits: &Limits) -> Answer {
    plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body larger than {} bytes", limits.max_body),
    )
}

/// Room in the process's body budget for a body of `length` bytes: itself, and its
/// decompressed form (at most the cap) when gzipped. Small plain bodies (every call of the
/// original) are not counted: the connection cap bounds them, and callers trickling large
/// bodies must not make them wait. No room within the request timeout: HTTP 408.
async fn hold_room(
    limits: &Limits,
    budget: &ByteBudget,
    length: usize,
    gzipped: bool,
) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Answer> {
    let holds = length + if gzipped { limits.max_body } else { 0 };
    if holds <= gate::SMALL_BODY {
        return Ok(None);
    }
    match budget.hold(holds, limits.request_timeout).await {
        Some(permit) => Ok(Some(permit)),
        None => Err(plain(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "request bodies being handled hold {} bytes (server --max-buffered-bytes); try again",
                budget.bytes()
            ),
        )),
    }
}

/// Most a refused body is read for, in bytes: a caller sending more still gets a reset.
const LINGER_BYTES: usize = 256 * 1024 * 1024;
/// Longest a refused body is read for (or `--request-timeout`, if shorter).
const LINGER_TIME: Duration = Duration::from_secs(10);
/// A refused body is read only while it keeps coming: a pause this long ends it (a caller that
/// claims a terabyte and sends nothing gets its 413 after this).
const LINGER_IDLE: Duration = Duration::from_secs(1);

/// Read and drop `body` while it keeps coming, at most [`LINGER_BYTES`] of it and for at most
/// `within`, so that a caller still sending it reads our refusal before the connection closes
/// (the "lingering close" of nginx and Apache). Nothing is kept: memory does not grow with
/// the bytes dropped.
async fn drain(mut body: Incoming, within: Duration) {
    let mut seen = 0usize;
    let _ = tokio::time::timeout(within, async {
        while let Ok(Some(Ok(frame))) = tokio::time::timeout(LINGER_IDLE, body.frame()).await {
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > LINGER_BYTES {
                break;
            }
        }
    })
    .await;
}

/// Decompress a gzip body, refusing (HTTP 400) when it would exceed `max` bytes: the output is
/// read through a `take`, so a gzip bomb never allocates more than `max + 1` bytes.
fn gunzip(compressed: &[u8], max: usize) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    // Every member, as Python's `gzip.decompress` does (`cat a.gz b.gz` is one valid body).
    match flate2::read::MultiGzDecoder::new(compressed)
        .take(limit)
        .read_to_end(&mut out)
    {
        Ok(_) if out.len() > max => Err(format!("decompressed body larger than {max} bytes")),
        Ok(_) => Ok(out),
        Err(e) => Err(format!("error decoding gzip content: {e}")),
    }
}

/// Python's server gzips answers above this size when the client accepts gzip.
const GZIP_THRESHOLD: usize = 1400;

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

fn unheld(body: String) -> dispatch::Answered {
    dispatch::Answered { body, held: None }
}

/// The HTTP response carrying a rendered XML-RPC `answer`;
/// gzipped like Python's when large. An answer larger than [`gate::SMALL_ANSWER`] holds its
/// bytes against `budget` until it has been written (or its connection dropped): the room
/// taken before it was built, fitted to its size; when the budget has no room for it, a
/// short fault is answered instead.
fn xml_response(answer: dispatch::Answered, gzip_ok: bool, budget: Option<&ByteBudget>) -> Answer {
    let dispatch::Answered { body, held } = answer;
    let body = body.into_bytes();
    let (body, gzipped) = match gzip_ok && body.len() > GZIP_THRESHOLD {
        true => match gzip(&body) {
            Some(z) => (z, true),
            None => (body, false),
        },
        false => (body, false),
    };
    let body = match budget.filter(|_| body.len() > gate::SMALL_ANSWER) {
        None => Bytes::from(body),
        Some(budget) => {
            let fitted = match held {
                Some(room) => budget.resize(room, body.len()).ok(),
                None => budget.try_hold(body.len()),
            };
            match fitted {
                Some(permit) => gate::held_bytes(body, permit),
                None => {
                    drop(body);
                    let busy = fault::answers_full(budget.bytes());
                    let answer = dispatch::render(Err(methods::python_fault(busy)));
                    return xml_response(unheld(answer), false, None);
                }
            }
        }
    };
    let mut r = Response::new(Full::new(body));
    if gzipped {
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    name_server(&mut r);
    r
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).ok()?;
    enc.finish().ok()
}
