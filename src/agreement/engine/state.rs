//! One run's algorithm, OM or SM, behind the operations the engine does with either: who
//! commands, the commander's order, whether a message was taken already, what a decided run
//! can let go of. What differs between the two (taking a message, deciding) the engine matches
//! on where it does it.

use std::sync::Arc;

use super::Pending;
use crate::agreement::RunError;
use crate::agreement::om::OmRun;
use crate::agreement::sm::{self, SmRun};
use crate::calls::{Protocol, Start};

/// The algorithm's state of one run on this node.
#[derive(Debug)]
pub(crate) enum State {
    /// Oral messages.
    Om(OmRun),
    /// Signed messages.
    Sm(SmRun),
}

impl State {
    /// This node's (`me`) state of the run `start` starts, or why it cannot take part.
    pub(crate) fn new(start: &Start, me: &str) -> Result<State, RunError> {
        let (commander, nodes, m) = (&start.commander, &start.nodes, start.m);
        Ok(match start.protocol {
            Protocol::Om => State::Om(OmRun::new(me, commander, nodes, m)?),
            Protocol::Sm => State::Sm(SmRun::new(start.run.as_str(), me, commander, nodes, m)?),
        })
    }

    /// Whether this node commands the run.
    pub(crate) fn is_commander(&self) -> bool {
        match self {
            State::Om(r) => r.is_commander(),
            State::Sm(r) => r.is_commander(),
        }
    }

    /// The participants, commander included.
    pub(crate) fn nodes(&self) -> &Arc<[String]> {
        match self {
            State::Om(r) => r.nodes(),
            State::Sm(r) => r.nodes(),
        }
    }

    /// What the commander's `order` owes round 1.
    pub(crate) fn command(&self, order: &str) -> Pending {
        match self {
            State::Om(om) => Pending::from(om.command(order)),
            State::Sm(sm) => Pending::from(sm.command(order)),
        }
    }

    /// Whether this message was taken already (OM: its path; SM: its path and value).
    pub(crate) fn is_duplicate(&self, path: &[String], value: &str) -> bool {
        match self {
            State::Om(om) => om.is_duplicate(path),
            State::Sm(sm) => sm.is_duplicate(path, value),
        }
    }

    /// SM: what this run's signatures bind.
    pub(crate) fn sm_context(&self) -> Option<Arc<sm::Context>> {
        match self {
            State::Sm(sm) => Some(sm.context().clone()),
            State::Om(_) => None,
        }
    }

    /// Let go of the messages behind a decision (every later message is late).
    pub(crate) fn release(&mut self) {
        match self {
            State::Om(om) => om.release(),
            State::Sm(sm) => sm.release(),
        }
    }
}
