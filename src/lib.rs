//! # generals
//!
//! A Rust reimplementation of a small Python Byzantine-generals simulation that keeps its
//! XML-RPC wire protocol exactly, so Rust and Python nodes run side by side.
//!
//! Map of the crate, from the wire inwards:
//! - [`protocol`]: every wire name and string (methods, replies, printed lines, faults);
//! - [`xmlrpc`]: the fast XML-RPC path over dxr's types (request reader, Python-layout
//!   answers, relay batches and their replies), with dxr as its oracle;
//! - [`methods`]: a node's method table (`dxr_server` handlers: the original methods, the
//!   extensions);
//! - [`dispatch`]: the one request path: body -> decoded call -> routed through the method
//!   table (`system.multicall` too) -> rendered answer, with Python's faults; what the server,
//!   the fuzz target and the property tests run (`Offline`: a node whose peers refuse);
//! - [`node`]: one general as plain Rust (no I/O): store, decide, what to send;
//! - [`cluster`]: who is where (the original port rule, `--peer` overrides);
//! - [`peer`]: every outgoing call, on `dxr_client` but the relay batches (pooled
//!   connections, timeouts, reply cap, error kinds);
//! - [`server`]: HTTP glue: routes, limits, dispatch to a node, access log, shutdown;
//! - [`gate`]: what callers may hold: connections (overall, per address), bytes of bodies
//!   and unread answers, and the write timeout;
//! - [`console`]: the original's stdout lines, through a bounded queue to a writer thread of
//!   their own, so a stdout nobody reads cannot block a node;
//! - [`scenario`]: what the client drives (the original all-to-all run);
//! - [`trace`]: records of node-to-node calls (`--trace`, pictures);
//! - [`picture`]: pictures of runs (Lamport diagram SVG, Mermaid, OM evaluation trees);
//! - [`agreement`]: Byzantine agreement in explicit rounds: behaviours, OM(m) and SM(m) as
//!   state machines, the per-node engine, the driver, the checker (holds/violated/void) and
//!   the explorer;
//! - [`load`]: the load generator behind the `loadgen` binary and `scripts/bench.sh`;
//! - [`allocator`]: the binaries' allocator (mimalloc) and its options.
#![warn(missing_docs)]

pub mod agreement;
pub mod allocator;
pub mod cluster;
pub mod console;
pub mod dispatch;
pub mod gate;
pub mod load;
pub mod methods;
pub mod node;
pub mod peer;
pub mod picture;
pub mod protocol;
pub mod scenario;
pub mod server;
pub mod trace;
pub mod xmlrpc;
