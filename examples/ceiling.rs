//! The ceiling of `scripts/bench.sh`: a bare hyper server that reads each request body and
//! answers one fixed XML-RPC reply (`receive_message`'s answer), and does nothing else. What
//! the `server` answers per second is measured as a share of what this one answers in the
//! same run, on the same cores, under the same load (BENCHMARKS.md, "Close to the limit").
//!
//! Built the way the `server` is: tokio's multi-threaded runtime, hyper 1's HTTP/1 connection
//! builder with keep-alive, `TCP_NODELAY`, the same allocator. Left out on purpose, because
//! they are what the comparison is about: XML-RPC reading and writing, routing, the node's
//! lock, timers, limits, stdout lines and the access log.
//!
//! Usage: `cargo run --release --example ceiling -- [ADDR]` (default `127.0.0.1:0`); prints
//! `listening on ADDR` and serves until killed.

#[global_allocator]
static ALLOC: generals::allocator::Allocator = mimalloc::MiMalloc;

use bytes::Bytes;
use dxr::Value;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

fn main() -> anyhow::Result<()> {
    generals::allocator::configure();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(addr))
}

async fn serve(addr: String) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    println!("listening on {}", listener.local_addr()?);
    // The answer a node gives to `receive_message("load0", "attack")`, written once.
    let line = generals::protocol::received_line("Q", "attack", "load0");
    let reply = Bytes::from(generals::xmlrpc::encode_response(&Value::String(line)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(true);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let reply = reply.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let reply = reply.clone();
            async move {
                // Read the whole body, as the server does, and drop it.
                let _body = req.into_body().collect().await?.to_bytes();
                let mut r = Response::new(Full::new(reply));
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("text/xml"));
                Ok::<_, hyper::Error>(r)
            }
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
