//! The lines a server writes: the original's stdout lines and the access log, in the format
//! of Python's `BaseHTTPRequestHandler.log_message` (`protocol::access_log_line`).

use dxr_server::axum::http::{Request, StatusCode};
use hyper::body::Incoming;

use crate::protocol;

/// The access log's request line, `POST /RPC2 HTTP/1.1`, as Python's log shows it.
pub(crate) fn request_line(req: &Request<Incoming>) -> String {
    let uri = req.uri();
    let target = match (uri.scheme(), uri.path_and_query()) {
        (None, Some(pq)) => std::borrow::Cow::Borrowed(pq.as_str()),
        _ => std::borrow::Cow::Owned(uri.to_string()),
    };
    let version = match req.version() {
        hyper::Version::HTTP_10 => "HTTP/1.0",
        hyper::Version::HTTP_11 => "HTTP/1.1",
        other => return format!("{} {target} {other:?}", req.method()),
    };
    [req.method().as_str(), " ", &target, " ", version].concat()
}

/// through [`console`](crate::console)'s queue (a stalled stdout never blocks the caller).
pub(crate) fn print_line(line: &str) {
    crate::console::print_line(line);
}

pub(crate) fn access_log(ip: &str, request_line: &str, status: StatusCode) {
    let line =
        with_log_time(|when| protocol::access_log_line(ip, when, request_line, status.as_str()));
    crate::console::log_line(line);
}

/// `f` of the access log's timestamp, formatted once per second per thread. The second is
/// read from the system clock and local time is only worked out when it changes: formatting
/// local time, and even finding the local offset (`chrono::Local::now`), is the costly part of
/// a log line under load (BENCHMARKS.md, "Close to the limit").
fn with_log_time<T>(f: impl FnOnce(&str) -> T) -> T {
    use std::cell::RefCell;
    thread_local! {
        static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = std::time::SystemTime::now();
    let second = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != second {
            let text = chrono::DateTime::<chrono::Local>::from(now)
                .format(protocol::ACCESS_LOG_TIME_FORMAT)
                .to_string();
            *cache = (second, text);
        }
        f(&cache.1)
    })
}
