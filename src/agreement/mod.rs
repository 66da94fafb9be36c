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
pub(crate) mod engine;
pub mod om;
pub(crate) mod reply;
pub(crate) mod rounds;
pub(crate) mod sm;

pub use crate::calls::Protocol;

/// Why a run cannot be held, or a message or a round of it cannot be taken: what the
/// algorithms refuse. The texts are those of the faults a node answers (`ValueError`) and
/// of SM's rejection reasons, byte for byte on both implementations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The commander is no participant.
    #[error("commander {commander:?} is not among the nodes {nodes:?}")]
    CommanderNotInRun {
        /// The commander named.
        commander: String,
        /// The participants.
        nodes: Vec<String>,
    },
    /// This node is no participant.
    #[error("this node ({me}) is not among the nodes {nodes:?}")]
    NotInRun {
        /// This node.
        me: String,
        /// The participants.
        nodes: Vec<String>,
    },
    /// A participant is named twice.
    #[error("nodes {nodes:?} repeat a name")]
    RepeatedName {
        /// The participants.
        nodes: Vec<String>,
    },
    /// `m` beyond what paths can carry.
    #[error("m must be 0..={max}")]
    MTooLarge {
        /// The largest `m`.
        max: usize,
    },
    /// Too few nodes for `m` relays.
    #[error("m = {m} needs more than {} nodes", m + 1)]
    TooFewNodes {
        /// The run's `m`.
        m: usize,
    },
    /// A message to the commander.
    #[error("the commander receives no messages")]
    CommanderReceives,
    /// A relay path too short or too long.
    #[error("path of length {len} (1..={max} allowed)")]
    PathLength {
        /// Its length.
        len: usize,
        /// The longest path of the run (m + 1).
        max: usize,
    },
    /// A path naming a node outside the run.
    #[error("{name:?} takes no part in this run")]
    Stranger {
        /// The name.
        name: String,
    },
    /// A path through a node twice, or through the receiver.
    #[error("path {path:?} repeats a node or passes through {me}")]
    PathRepeats {
        /// The path.
        path: Vec<String>,
        /// The receiver.
        me: String,
    },
    /// A path that does not start with the commander.
    #[error("path {path:?} does not start with the commander")]
    NotFromCommander {
        /// The path.
        path: Vec<String>,
    },
    /// SM: not one signature per name of the path.
    #[error("{signatures} signatures for a path of {path}")]
    SignatureCount {
        /// Signatures given.
        signatures: usize,
        /// Names of the path.
        path: usize,
    },
    /// SM: a signer whose public key this node does not hold.
    #[error("no public key for {signer}")]
    NoKey {
        /// The signer.
        signer: String,
    },
    /// SM: a signature that is not base64.
    #[error("signature of {signer} is not base64")]
    SignatureNotBase64 {
        /// The signer.
        signer: String,
    },
    /// SM: a signature that is not 64 bytes.
    #[error("signature of {signer} is malformed")]
    SignatureMalformed {
        /// The signer.
        signer: String,
    },
    /// SM: a signature that does not verify.
    #[error("bad signature of {signer} on {value:?} along {path:?}")]
    BadSignature {
        /// The signer.
        signer: String,
        /// The value signed.
        value: String,
        /// The path up to the signer.
        path: Vec<String>,
    },
    /// A round the run does not have.
    #[error("round {round} is not one of this run's rounds 1..={rounds}")]
    NoSuchRound {
        /// The round asked for.
        round: usize,
        /// The run's rounds.
        rounds: usize,
    },
    /// A round opened already.
    #[error("round {round} already ran (this node is in round {opened})")]
    RoundRan {
        /// The round asked for.
        round: usize,
        /// The round this node has opened.
        opened: usize,
    },
}

/// What the algorithms add to a protocol.
impl Protocol {
    /// Messages a whole run sends at most: OM's formula; SM relays each of (at most) two
    /// values once per path, so twice that.
    pub(crate) fn max_messages(self, n: usize, m: usize) -> u64 {
        let om = om::total_messages(n, m);
        match self {
            Protocol::Om => om,
            Protocol::Sm => om.saturating_mul(2),
        }
    }
}
