//! Every fault the agreement engine answers, worded once (docs/protocol-extensions.md lists
//! them; the Python stand-in words them the same). All are made through
//! [`crate::protocol::fault::python`], the one maker of faults.

use crate::protocol::fault::{self, PyFault};
use crate::protocol::{ext, python_repr};

use super::table::Refusal;
use crate::agreement::rounds::Refused;

/// A call for a run this node does not hold (never started here, or forgotten).
pub(crate) fn unknown_run(run: &str) -> PyFault {
    fault::python("KeyError", &format!("unknown run {}", python_repr(run)))
}

/// A driver's call (`*_order`, `*_round`, `*_decide`, `trace_events`) without the run's
/// capability: nothing changes.
pub(crate) fn not_the_driver(run: &str) -> PyFault {
    fault::python(
        "PermissionError",
        &format!("run {} {}", python_repr(run), ext::NOT_THE_DRIVER),
    )
}

/// A message whose MAC does not prove its sender: refused, counted, never stored.
pub(crate) fn not_authenticated(why: &str) -> PyFault {
    fault::python(
        "PermissionError",
        &format!("{} {why}", ext::NOT_AUTHENTICATED),
    )
}

/// A start the run table has no room for.
pub(crate) fn refused_start(run: &str, why: Refusal) -> PyFault {
    let text = match why {
        Refusal::Live => format!("run {} {}", python_repr(run), ext::RUN_NOT_FINISHED),
        Refusal::Full(n) => format!("this node holds {n} unfinished runs {}", ext::RUNS_FULL),
    };
    fault::python("ValueError", &text)
}

/// A message refused by the rounds: late, or over its sender's budget.
pub(crate) fn refused_message(run: &str, why: Refused) -> PyFault {
    match why {
        Refused::Late { .. } => {
            fault::python("ValueError", &format!("{why} in run {}", python_repr(run)))
        }
        Refused::Budget { .. } => fault::python("ValueError", &why.to_string()),
    }
}

/// Any other refusal with a message of the algorithms (`om`, `sm`, `rounds`).
pub(crate) fn value_error(message: &str) -> PyFault {
    fault::python("ValueError", message)
}

/// A run over this node's `--max-run-messages`.
pub(crate) fn over_budget(count: u64, budget: u64) -> PyFault {
    value_error(&format!(
        "a run of {count} messages is over this node's budget of {budget} (server --max-run-messages)"
    ))
}

/// A run, or all runs, over [`super::MAX_RUNS_BYTES`].
pub(crate) fn too_many_bytes(all: bool) -> PyFault {
    let whose = if all {
        "this node's unfinished runs hold"
    } else {
        "the run holds"
    };
    value_error(&format!(
        "{whose} more than {} bytes of messages",
        super::MAX_RUNS_BYTES
    ))
}

/// `*_order` on a node that is not the run's commander.
pub(crate) fn not_commander(me: &str, run: &str) -> PyFault {
    value_error(&format!("{me} is not the commander of run {run}"))
}

/// A second `*_order` with another order.
pub(crate) fn has_order(run: &str) -> PyFault {
    value_error(&format!("run {run} already has its order"))
}

/// A round retried while its first call is still sending, past the wait.
pub(crate) fn round_busy(round: usize) -> PyFault {
    fault::python(
        "TimeoutError",
        &format!("round {round} is still sending; ask again"),
    )
}

/// The blocking evaluation of a decide failed (a panic in the task).
pub(crate) fn evaluation_failed(e: &dyn std::fmt::Display) -> PyFault {
    fault::python("RuntimeError", &format!("evaluation failed: {e}"))
}
