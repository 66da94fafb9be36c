//! Byzantine agreement for real, over the same XML-RPC wire: traitor behaviours, OM(m) and
//! SM(m) as plain state machines, the engine that runs them between nodes, and the checker of
//! the interactive consistency conditions IC1 and IC2.
//!
//! Reference: Lamport, Shostak, Pease, "The Byzantine Generals Problem" (1982). The wire
//! methods are documented in `docs/protocol-extensions.md`.

pub mod behaviour;
pub mod checker;
pub mod driver;
pub mod engine;
pub mod explore;
pub mod om;
pub mod reply;
pub mod rounds;
pub mod sm;
