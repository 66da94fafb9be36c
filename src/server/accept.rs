//! The accept loop, one for every HTTP listener of the crate: a hosted node's and the live
//! page's (`client ui`). It takes connections within the [`ConnGate`] (the one idle the
//! longest closed to make room), serves each with hyper's HTTP/1 connection builder (which
//! can time out a client that never finishes its request head, as `axum::serve` cannot) under
//! a write timeout, and on the stop signal stops accepting and lets the connections in flight
//! finish for a bounded time.
//!
//! What differs between the listeners is data ([`Accept`]): what a connection refused for
//! want of room is told, how long the in-flight ones get at the end, the log's name for a
//! connection. What a request gets is the caller's service, made per connection.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::HttpService;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use crate::gate::{self, ConnGate, ConnState, Pressure};

/// What a connection the gate has no room for is told.
#[derive(Clone, Copy)]
pub(crate) enum Crowded {
    /// Nothing: it is closed at once.
    Close,
    /// This answer (made of the gate's message), after its request head is read, so that the
    /// caller reads it rather than a reset; then it is closed.
    Answer(fn(&str) -> Response<Full<Bytes>>),
}

impl std::fmt::Debug for Crowded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Crowded::Close => "Close",
            Crowded::Answer(_) => "Answer",
        })
    }
}

/// How a listener's connections are taken and served.
#[derive(Debug)]
pub(crate) struct Accept {
    /// The connections it may hold (shared by a process's nodes).
    pub(crate) gate: Arc<ConnGate>,
    /// How long a connection may take to send a request's head (and wait idle between two).
    pub(crate) head_timeout: Duration,
    /// Keep connections open between requests.
    pub(crate) keep_alive: bool,
    /// Take a request whose caller shut its write side after sending it (`shutdown(SHUT_WR)`),
    /// as CPython's server does: hyper's default takes that end of input for a caller gone and
    /// drops the request, answered or not (one call in nine, stored or not).
    pub(crate) half_close: bool,
    /// Disable Nagle's algorithm on each connection.
    pub(crate) nodelay: bool,
    /// A connection that reads nothing of its answer this long is dropped.
    pub(crate) write_timeout: Duration,
    /// Sooner while others wait for room that unread answers hold ([`gate::WriteTimeout`]).
    pub(crate) pressure: Option<Pressure>,
    /// What a connection refused for want of room is told.
    pub(crate) crowded: Crowded,
    /// After the stop signal, how long connections in flight may finish (told to close after
    /// their current request); `None`: they are left to the runtime.
    pub(crate) drain: Option<Duration>,
    /// The log's name for a connection ("connection", "ui connection").
    pub(crate) what: &'static str,
}

/// Connections being refused at once, at most; past it a crowded connection is closed
/// without an answer (each refusal holds a descriptor for up to a second).
const MAX_REFUSING: usize = 64;

impl Accept {
    /// Serve `listener` until `stop` resolves: each connection with the service `make` gives
    /// for it (from its remote address and its state in the gate, to mark it busy while a
    /// request is in hand); then stop accepting and drain (see [`Accept::drain`]).
    pub(crate) async fn serve<M, S, B>(
        &self,
        listener: TcpListener,
        make: M,
        stop: impl Future<Output = ()>,
    ) where
        M: Fn(SocketAddr, Arc<ConnState>) -> S,
        S: HttpService<Incoming, ResBody = B> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let refusing = Arc::new(AtomicUsize::new(0));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.head_timeout)
            .keep_alive(self.keep_alive)
            .half_close(self.half_close);
        tokio::pin!(stop);
        loop {
            let (stream, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut stop => break,
            };
            if self.nodelay {
                let _ = stream.set_nodelay(true);
            }
            let entered = match self.gate.enter_soon(remote.ip()).await {
                Ok(entered) => entered,
                Err(crowded) => {
                    if let Crowded::Answer(answer) = self.crowded {
                        refuse(stream, answer, crowded.message(remote.ip()), &refusing);
                    }
                    continue;
                }
            };
            let service = make(remote, entered.state());
            let mut io = gate::WriteTimeout::new(entered.watch(stream), self.write_timeout);
            if let Some(pressure) = &self.pressure {
                io = io.with_pressure(pressure.clone());
            }
            let conn = http.serve_connection(TokioIo::new(io), service);
            let what = self.what;
            // Closed when the gate needs its place for a new connection while it is idle.
            macro_rules! spawn_conn {
                ($conn:expr) => {
                    tokio::spawn(async move {
                        tokio::select! {
                            served = $conn => if let Err(e) = served {
                                tracing::debug!("{what} from {remote}: {e}");
                            },
                            () = entered.evicted() => {
                                tracing::debug!("closed idle {what} from {remote} to make room");
                            }
                        }
                        drop(entered);
                    })
                };
            }
            match self.drain {
                Some(_) => {
                    let conn = graceful.watch(conn);
                    spawn_conn!(conn)
                }
                None => spawn_conn!(conn),
            };
        }
        drop(listener);
        if let Some(drain) = self.drain {
            let _ = tokio::time::timeout(drain, graceful.shutdown()).await;
        }
    }
}

/// Answer `answer(message)` on a connection the gate refused, and close it. The request head
/// is read first (for at most a second) so the caller reads the answer rather than a reset.
fn refuse(
    stream: TcpStream,
    answer: fn(&str) -> Response<Full<Bytes>>,
    message: String,
    refusing: &Arc<AtomicUsize>,
) {
    if refusing.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let refusing = refusing.clone();
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
            let mut r = answer(&message);
            r.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
            async move { Ok::<_, Infallible>(r) }
        });
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(1))
            .keep_alive(false);
        let io = TokioIo::new(gate::WriteTimeout::new(stream, Duration::from_secs(1)));
        let _ =
            tokio::time::timeout(Duration::from_secs(2), http.serve_connection(io, service)).await;
        refusing.fetch_sub(1, Ordering::Relaxed);
    });
}
