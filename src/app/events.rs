//! What a run tells as it goes, typed: the original client's own calls and lines, the messages
//! the nodes record, a node the driver lost, the verdict. The command line prints them
//! ([`Event::line`], through [`Printer`]); the live page streams each as a Server-Sent Event
//! (`ui::live`). Neither reads the other's text back.

use std::io::Write;

use crate::agreement::checker::Report;
use crate::console::Escaping;
use crate::runs::driver::Unreachable;
use crate::runs::original::{Said, Stream};
use crate::trace;

/// One thing a run tells, in order.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// The original run: a send answered or failed, a node's decision, a failed call.
    Said(Said),
    /// One node-to-node message of an OM/SM run, as the nodes recorded it (a watched run).
    Message(trace::Event),
    /// A node the driver could not use, and why.
    Unreachable(Unreachable),
    /// An OM/SM run's judgement.
    Verdict(Box<Report>),
}

impl Event {
    /// The line the command line prints for it, and where (`quiet`: `client --quiet`, the
    /// original's final lines only): the original's lines, `error: node Q (URL): ...` for a
    /// lost node, the report for a verdict; a message prints nothing.
    pub(crate) fn line(&self, quiet: bool) -> Option<(Stream, String)> {
        match self {
            Event::Said(said) => said.line(quiet),
            Event::Message(_) => None,
            Event::Unreachable(u) => Some((
                Stream::Err,
                format!("error: node {} ({}): {}", u.node, u.url, u.error),
            )),
            Event::Verdict(report) => Some((Stream::Out, report.human())),
        }
    }
}

/// Where the command line prints a run's events: stdout and stderr, or (`--mermaid -`, whose
/// diagram alone takes stdout) stderr for both. Everything through [`Escaping`]: what nodes
/// answered cannot reorder a line, hide in one or drive the terminal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printer {
    /// Print only the original's final lines.
    pub(crate) quiet: bool,
    /// Stdout is taken (by `--mermaid -`): every line goes to stderr.
    pub(crate) stdout_taken: bool,
}

impl Printer {
    /// Print `event`'s line, if it has one, at once (a line per send, as it happens). A
    /// report is printed as it is (it ends its own lines).
    pub(crate) fn print(&self, event: &Event) -> std::io::Result<()> {
        let Some((stream, text)) = event.line(self.quiet) else {
            return Ok(());
        };
        let newline = if matches!(event, Event::Verdict(_)) {
            ""
        } else {
            "\n"
        };
        match stream {
            Stream::Out if !self.stdout_taken => {
                let mut out = Escaping::new(std::io::stdout().lock());
                write!(out, "{text}{newline}")?;
                out.flush()
            }
            // A stderr that cannot be written is not worth stopping the run for.
            _ => {
                let _ = write!(Escaping::new(std::io::stderr()), "{text}{newline}");
                Ok(())
            }
        }
    }
}
