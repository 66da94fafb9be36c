//! The original run, `python client.py`: every node sends the decision to every other node,
//! then each is asked for its majority; a line per send as the original README shows, and
//! what to do when nothing listens ([`start_hint`]).

use std::fmt::Write as _;
use std::time::Duration;

use super::events::{Event, Printer};
use super::outputs::{self, Outputs, RunToDraw};
use super::{ClientError, errln};
use crate::cli::client::{OriginalArgs, PictureArgs, TreeArgs};
use crate::cli::{ClusterArgs, Roles, Topology};
use crate::peer::Peers;
use crate::runs::original::{self, Options};
use crate::{protocol, trace};

/// The original scenario: 0 when every call succeeded, 1 when some failed.
pub(crate) async fn command(
    c: &ClusterArgs,
    o: &OriginalArgs,
    pictures: &PictureArgs,
) -> Result<u8, ClientError> {
    let since_us = trace::now_us();
    let Topology { cluster, nodes, .. } = c.resolve(&Roles::default())?;
    outputs::check_pictures(pictures, &nodes)?;
    let peers = Peers::new(c.rpc_timeout())?;
    let opts = Options {
        nodes,
        decision: o.decision.clone(),
        delay: Duration::from_millis(o.delay_ms),
    };
    // With `--mermaid -` the diagram alone takes stdout: the report goes to stderr.
    let printer = Printer {
        quiet: o.quiet,
        stdout_taken: pictures.mermaid_to_stdout(),
    };
    let mut tell = |said| printer.print(&Event::Said(said));
    let report = original::run_original(&cluster, &peers, &opts, &mut tell)
        .await
        .map_err(ClientError::Output)?;
    if !report.unreachable.is_empty() {
        errln!("{}", start_hint(c, &report.unreachable, &opts.nodes));
    }
    let drawing = pictures.svg.is_some() || pictures.mermaid.is_some();
    let drawn = RunToDraw {
        run: trace::ORIGINAL_RUN.into(),
        secrets: None,
        title: "the original run: all-to-all, then finalize".into(),
        traitors: if drawing {
            let mut t = outputs::traitors(&cluster, &peers, &opts.nodes).await;
            // A node without `node_info` (the original server.py) is still known faulty by
            // its answer to finalize_decision.
            for (node, d) in &report.decisions {
                if d == protocol::FAULTY_DECISION
                    && opts.decision != protocol::FAULTY_DECISION
                    && !t.contains(node)
                {
                    t.push(node.clone());
                }
            }
            t
        } else {
            Vec::new()
        },
        decisions: report.decisions.clone(),
        om: None,
        seen: Some((report.calls, opts.decision.clone())),
    };
    let to = Outputs {
        cluster: &cluster,
        peers: &peers,
        nodes: &opts.nodes,
        pictures,
        tree: &TreeArgs::default(),
    };
    to.write(drawn, since_us).await?;
    Ok(u8::from(report.failures != 0))
}

/// missing), with the options this client was given, so the command works as printed.
pub(crate) fn start_hint(c: &ClusterArgs, down: &[String], nodes: &[String]) -> String {
    let mut cmd = String::from("server");
    match &c.cluster {
        Some(file) => {
            let _ = write!(cmd, " --cluster {}", file.display());
        }
        None => {
            if let Some(host) = c.host.as_deref().filter(|h| *h != protocol::DEFAULT_HOST) {
                let _ = write!(cmd, " --host {host}");
            }
            let _ = write!(cmd, " --port-base {}", c.port_base());
            if let Some(n) = c.cluster_size {
                let _ = write!(cmd, " --cluster-size {n}");
            }
        }
    }
    if down.len() == nodes.len() {
        if let Some(list) = &c.nodes {
            let _ = write!(cmd, " --nodes {list}");
        }
        format!("hint: no node is running; start the cluster first: {cmd}")
    } else {
        // Only the missing ones: the others are running on their ports.
        let _ = write!(cmd, " --nodes {}", down.join(","));
        let (verb, them) = if down.len() == 1 {
            ("is", "it")
        } else {
            ("are", "them")
        };
        format!(
            "hint: {} {verb} not running (connection refused); start {them} first: {cmd}",
            down.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_hint_says_how_to_start_what_is_missing() {
        let c = ClusterArgs {
            host: Some("10.0.0.1".into()),
            port_base: Some(9000),
            ..ClusterArgs::default()
        };
        let all = names(&["P", "Q", "R", "S"]);
        assert_eq!(
            start_hint(&c, &all, &all),
            "hint: no node is running; start the cluster first: server --host 10.0.0.1 \
             --port-base 9000"
        );
        assert_eq!(
            start_hint(&c, &names(&["R", "S"]), &all),
            "hint: R, S are not running (connection refused); start them first: server --host \
             10.0.0.1 --port-base 9000 --nodes R,S"
        );
        let c = ClusterArgs {
            cluster: Some("c.toml".into()),
            ..ClusterArgs::default()
        };
        assert_eq!(
            start_hint(&c, &names(&["S"]), &all),
            "hint: S is not running (connection refused); start it first: server --cluster \
             c.toml --nodes S"
        );
    }
}
