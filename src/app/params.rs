//! The one check of an agreement run's parameters, whoever asks: `client om`/`client sm` from
//! their flags, the live page from its form. The commander is one of the nodes, the order is
//! one the protocol carries, the bound and the message budget hold ([`driver::check`]); the
//! defaults are filled in (the first node commands, a round timeout for the run's size, a
//! random seed). Each surface names a parameter its own way (`--commander`, `commander=`):
//! the errors are typed, their text is the command line's, and the page words its own from
//! the same variants.

use std::time::Duration;

use crate::behaviour::{ATTACK, RETREAT};
use crate::runs::driver::{self, DriveError, Protocol, RunOptions};

/// An OM/SM run as asked, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Asked {
    /// OM or SM.
    pub(crate) protocol: Protocol,
    /// Traitors to tolerate.
    pub(crate) m: usize,
    /// The commander's order.
    pub(crate) order: String,
    /// The commander; `None`: the first node.
    pub(crate) commander: Option<String>,
    /// The seed; `None`: a random one.
    pub(crate) seed: Option<u64>,
    /// How long a round may take; `None`: [`driver::default_round_timeout`] for the run.
    pub(crate) round_timeout: Option<Duration>,
    /// Run below the bound.
    pub(crate) allow_unsafe: bool,
    /// The largest run, in messages by the protocol's formula.
    pub(crate) max_messages: u64,
    /// Timeout of the driver's calls outside the rounds.
    pub(crate) rpc_timeout: Duration,
}

/// Why a run's parameters cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// No node takes part.
    #[error("no nodes")]
    NoNodes,
    /// The commander is not one of the nodes taking part.
    #[error(
        "--commander {name}: not one of the nodes taking part ({}); pick one of them, or add it to --nodes",
        nodes.join(", ")
    )]
    Commander {
        /// The name given.
        name: String,
        /// The nodes taking part.
        nodes: Vec<String>,
    },
    /// An order the protocol does not carry.
    #[error("--order {0}: use {ATTACK} or {RETREAT}")]
    Order(String),
    /// The bound, the budget or the shape of the run ([`driver::check`]).
    #[error(transparent)]
    Refused(#[from] DriveError),
}

/// The orders a commander may give.
pub(crate) const ORDERS: [&str; 2] = [ATTACK, RETREAT];

/// Check `asked` for a run over `nodes` and fill in its defaults: the driver's options.
pub(crate) fn check(asked: &Asked, nodes: &[String]) -> Result<RunOptions, ParamError> {
    let commander = match &asked.commander {
        Some(c) if !nodes.contains(c) => {
            return Err(ParamError::Commander {
                name: c.clone(),
                nodes: nodes.to_vec(),
            });
        }
        Some(c) => c.clone(),
        None => nodes.first().cloned().ok_or(ParamError::NoNodes)?,
    };
    if !ORDERS.contains(&asked.order.as_str()) {
        return Err(ParamError::Order(asked.order.clone()));
    }
    let round_timeout = asked
        .round_timeout
        .unwrap_or_else(|| driver::default_round_timeout(asked.protocol, nodes.len(), asked.m));
    let opts = RunOptions {
        protocol: asked.protocol,
        m: asked.m,
        order: asked.order.clone(),
        commander,
        nodes: nodes.to_vec(),
        round_timeout,
        seed: asked.seed.unwrap_or_else(driver::random_seed),
        allow_unsafe: asked.allow_unsafe,
        rpc_timeout: asked.rpc_timeout,
        max_messages: asked.max_messages,
    };
    driver::check(&opts)?;
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked() -> Asked {
        Asked {
            protocol: Protocol::Om,
            m: 1,
            order: ATTACK.into(),
            commander: None,
            seed: Some(7),
            round_timeout: None,
            allow_unsafe: false,
            max_messages: driver::DEFAULT_MAX_MESSAGES,
            rpc_timeout: Duration::from_secs(1),
        }
    }

    fn nodes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("N{i}")).collect()
    }

    #[test]
    fn defaults_are_filled_in() {
        let o = check(&asked(), &nodes(4)).unwrap();
        assert_eq!((o.commander.as_str(), o.seed), ("N0", 7));
        assert_eq!(
            o.round_timeout,
            driver::default_round_timeout(Protocol::Om, 4, 1)
        );
    }

    #[test]
    fn each_parameter_is_refused_by_its_own_error() {
        let with = |f: fn(&mut Asked)| {
            let mut a = asked();
            f(&mut a);
            check(&a, &nodes(4)).unwrap_err()
        };
        assert!(matches!(
            with(|a| a.commander = Some("Z".into())),
            ParamError::Commander { .. }
        ));
        assert_eq!(
            with(|a| a.order = "maybe".into()),
            ParamError::Order("maybe".into())
        );
        assert!(matches!(
            with(|a| a.m = 2),
            ParamError::Refused(DriveError::Unsafe { need: 7, .. })
        ));
        assert!(matches!(
            with(|a| a.max_messages = 3),
            ParamError::Refused(DriveError::Budget { .. })
        ));
        assert_eq!(check(&asked(), &[]).unwrap_err(), ParamError::NoNodes);
    }
}
