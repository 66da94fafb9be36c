//! Byzantine agreement for real, over the same XML-RPC wire: OM(m) and SM(m) as plain state
//! machines, one node's rounds, the secrets that say who drives a run and who sent a message,
//! the engine that runs them between nodes (and the typed answers it gives), and the checker
//! of the interactive consistency conditions IC1 and IC2. What drives a run from outside (the
//! driver, the explorer) is the `runs` module; how a traitor sends is `behaviour`.
//!
//! Reference: Lamport, Shostak, Pease, "The Byzantine Generals Problem" (1982). The wire
//! methods are documented in `docs/protocol-extensions.md`.

pub mod auth;
pub mod checker;
pub mod engine;
pub mod om;
pub mod reply;
pub mod rounds;
pub mod sm;

/// Which algorithm a run uses: the one `Protocol` of the crate (the engine's run table, the
/// driver, `client explore --protocol om|sm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Protocol {
    /// Oral messages, OM(m): needs n >= 3m + 1.
    Om,
    /// Signed messages, SM(m): needs n >= m + 2.
    Sm,
}

impl Protocol {
    /// `om` / `sm`: the prefix of its method names and run ids.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Om => "om",
            Protocol::Sm => "sm",
        }
    }

    /// The fewest nodes that tolerate `m` traitors.
    pub fn min_nodes(self, m: usize) -> usize {
        match self {
            Protocol::Om => 3 * m + 1,
            Protocol::Sm => m + 2,
        }
    }

    /// Messages a whole run sends at most: OM's formula; SM relays each of (at most) two
    /// values once per path, so twice that.
    pub fn max_messages(self, n: usize, m: usize) -> u64 {
        let om = om::total_messages(n, m);
        match self {
            Protocol::Om => om,
            Protocol::Sm => om.saturating_mul(2),
        }
    }

    /// The method of this protocol among a pair (`om_x`, `sm_x`).
    pub fn method(self, om: &'static str, sm: &'static str) -> &'static str {
        match self {
            Protocol::Om => om,
            Protocol::Sm => sm,
        }
    }

    /// How a run of this protocol is named for people and for the `random` behaviour:
    /// `om-42`, `sm-7`. Never the run's id on the wire, which is random
    /// ([`auth::new_run_id`]).
    pub fn label(self, seed: u64) -> String {
        format!("{}-{seed}", self.name())
    }
}
