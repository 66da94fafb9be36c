//! Byzantine agreement for real, over the same XML-RPC wire: OM(m) and SM(m) as plain state
//! machines, one node's rounds, the engine that runs them between nodes (and the typed
//! answers it gives), and the checker of the interactive consistency conditions IC1 and IC2.
//! What drives a run from outside (the driver, the explorer) is the `runs` module; how a
//! traitor sends is `behaviour`.
//!
//! Reference: Lamport, Shostak, Pease, "The Byzantine Generals Problem" (1982). The wire
//! methods are documented in `docs/protocol-extensions.md`.

pub mod checker;
pub mod engine;
pub mod om;
pub mod reply;
pub mod rounds;
pub mod sm;
