//! Runs driven from outside the nodes, as the `client` does them: the original all-to-all run
//! ([`original`]), one OM/SM agreement run ([`driver`]) and the exploration of every placement
//! of traitors ([`explore`], which starts its own in-process cluster through [`crate::server`]).
//! They sit above the server and the agreement engine, and below the command line.

pub(crate) mod adversary;
pub(crate) mod check;
pub mod driver;
pub mod explore;
pub mod original;
