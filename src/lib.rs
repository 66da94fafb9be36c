//! # generals
//!
//! A Rust reimplementation of a small Python Byzantine-generals simulation that keeps its
//! XML-RPC wire protocol exactly, so Rust and Python nodes run side by side.
//!
//! Map of the crate, layer by layer from the leaves up; a module uses only modules of lower
//! layers (`tests/layers.rs` checks it), and the README's "Architecture" lists the same:
//! - leaves: [`protocol`], every wire name and string (methods, replies, printed lines,
//!   faults, and the [`protocol::fault::PyFault`] only it makes); [`behaviour`], how a node
//!   sends (honest, the original's denial, the traitors); [`gate`], what callers may hold
//!   (connections, bytes of bodies and unread answers, the write timeout); [`allocator`];
//! - [`calls`], every method as a typed call: its name (written only there), its arguments
//!   decoded with Python's faults and encoded for the driver and peers, heavy or not;
//! - the wire and the general: [`xmlrpc`], the fast XML-RPC path over dxr's types, with dxr as
//!   its oracle; [`cluster`], who is where (the port rule, `--peer`, cluster files, only
//!   cluster nodes are called); [`node`], one general as plain Rust (no I/O); [`console`], the
//!   stdout and access-log lines through bounded queues;
//! - [`peer`], every outgoing call (pooled connections, timeouts, reply cap, typed errors);
//!   then [`trace`], the records of node-to-node calls;
//! - [`agreement`]: OM(m) and SM(m) as state machines, one node's rounds, the engine, its
//!   typed answers, the checker (facts -> judgement);
//! - [`methods`], a node's method table (`dxr_server` handlers); [`dispatch`], the request
//!   path (decode, route, handle, render); [`server`], a process of nodes: the one way a node
//!   is assembled (the in-process test node [`server::Offline`] too), the one accept loop
//!   (the live page's too), Python's routes and limits, the access log, shutdown;
//! - [`runs`]: what a client drives (the original run, one OM/SM run, the explorer);
//!   [`picture`], pictures of runs; [`load`], the load generator behind `loadgen`;
//! - [`cli`], the binaries' command lines and the one rule from flags to a topology; then
//!   [`app`], what `client` does with them (spawning nodes, the original run, one agreement
//!   run, the explorer, the outputs; the one check of a run's parameters; a run's typed
//!   events); then [`ui`], the live web page of `client ui` (axum routes, runs of the app
//!   streamed as Server-Sent Events).
#![warn(missing_docs)]

pub mod agreement;
pub mod allocator;
pub mod app;
pub mod behaviour;
pub mod calls;
pub mod cli;
pub mod cluster;
pub mod console;
pub mod dispatch;
pub(crate) mod gate;
pub mod load;
pub mod methods;
pub mod node;
pub mod peer;
pub mod picture;
pub mod protocol;
pub mod runs;
pub mod server;
pub mod trace;
pub mod ui;
pub mod xmlrpc;
