//! What a run leaves besides its report: the trace file (`--trace`), the Lamport diagram or an
//! OM tree (`--svg`, `--tree`), the Mermaid diagram (`--mermaid`), gathered from the nodes'
//! traces after the run; and what can be checked of them before it, so that a run is not
//! wasted on a path that cannot take its picture.

use std::collections::BTreeMap;
use std::io::Write as _;

use super::{ClientError, errln};
use crate::agreement::auth::Credentials;
use crate::agreement::reply::NodeInfo;
use crate::calls::{Call, RunId};
use crate::cli::client::{PictureArgs, TreeArgs};
use crate::cluster::Cluster;
use crate::console::Escaping;
use crate::peer::Peers;
use crate::runs::original;
use crate::{picture, trace};

/// What a run leaves for the pictures.
#[derive(Debug)]
pub(crate) struct RunToDraw<'a> {
    /// The run's id on the wire (`original` for the original run).
    pub(crate) run: RunId,
    /// Each node's capability for the run (`None`: the original run, which has none).
    pub(crate) secrets: Option<&'a Credentials>,
    /// The picture's title.
    pub(crate) title: String,
    /// The traitors, marked in the pictures.
    pub(crate) traitors: Vec<String>,
    /// Every node's decision (the traitors' too).
    pub(crate) decisions: BTreeMap<String, String>,
    /// (commander, m) of an OM run, for --tree.
    pub(crate) om: Option<(&'a str, usize)>,
    /// Of the original run: the client's own calls ([`original::OriginalOutcome::calls`]) and the
    /// decision sent, drawn with the trace (see [`original::drawable`]).
    pub(crate) seen: Option<(Vec<trace::Event>, String)>,
}

/// Where a run's calls are gathered from, and what is asked of them.
#[derive(Debug)]
pub(crate) struct Outputs<'a> {
    /// Where the nodes are.
    pub(crate) cluster: &'a Cluster,
    /// The connections to ask them over.
    pub(crate) peers: &'a Peers,
    /// The nodes of the run.
    pub(crate) nodes: &'a [String],
    /// What to write or draw.
    pub(crate) pictures: &'a PictureArgs,
    /// An OM lieutenant's tree instead of the diagram.
    pub(crate) tree: &'a TreeArgs,
}

impl Outputs<'_> {
    /// Gather the run's calls from every node and write what was asked for: the trace, the
    /// Lamport diagram or an OM tree, the Mermaid diagram.
    pub(crate) async fn write(
        &self,
        drawn: RunToDraw<'_>,
        since_us: u64,
    ) -> Result<(), ClientError> {
        let p = self.pictures;
        if !p.any() {
            return Ok(());
        }
        let capability = |node: &str| drawn.secrets.and_then(|c| c.capability(node));
        let (events, errors) = trace::gather(
            self.cluster,
            self.peers,
            self.nodes,
            &drawn.run,
            &capability,
            since_us,
        )
        .await;
        // The original run's pictures do without a trace (drawn from the client's own calls,
        // and they say so): one line then, unless a trace file was asked for.
        match errors.first() {
            Some((_, first)) if drawn.seen.is_some() && p.trace.is_none() => {
                let who: Vec<&str> = errors.iter().map(|(n, _)| n.as_str()).collect();
                errln!(
                    "note: no trace from {} ({first}): the pictures are drawn from the client's \
                     own calls",
                    who.join(", ")
                );
            }
            _ => {
                for (node, e) in &errors {
                    errln!("warning: no trace from node {node}: {e}");
                }
            }
        }
        if let Some(path) = &p.trace {
            write(path, trace::to_json_lines(&events))?;
        }
        let (events, note) = match &drawn.seen {
            Some((calls, decision)) => {
                let d = original::drawable(events, calls, &drawn.decisions, decision);
                (d.events, d.note)
            }
            None => (events, None),
        };
        if let Some(path) = &p.svg {
            let svg = match (&self.tree.tree, drawn.om) {
                (Some(node), Some((commander, m))) => {
                    let tree =
                        picture::om_tree_from_events(node, commander, self.nodes, m, &events)
                            .map_err(|e| ClientError::Tree {
                                node: node.clone(),
                                error: e.to_string(),
                            })?;
                    picture::tree_svg(node, &tree, m, self.tree.depth.map(usize::from))
                }
                _ => picture::lamport_svg(
                    self.nodes,
                    &events,
                    &drawn.traitors,
                    &drawn.decisions,
                    &drawn.title,
                    p.focus.as_deref(),
                    note.as_deref(),
                ),
            };
            write(path, svg)?;
        }
        if let Some(path) = &p.mermaid {
            let diagram = picture::mermaid(
                self.nodes,
                &events,
                &drawn.traitors,
                &drawn.decisions,
                note.as_deref(),
            );
            if p.mermaid_to_stdout() {
                let mut stdout = Escaping::new(std::io::stdout().lock());
                stdout
                    .write_all(diagram.as_bytes())
                    .and_then(|()| stdout.flush())
                    .map_err(ClientError::Output)?;
            } else {
                write(path, diagram)?;
            }
        }
        Ok(())
    }
}

/// What can be checked of the pictures before a run: `--focus` is a node of it, and the files
/// can be written (so a run is not wasted on a path that cannot take its picture).
pub(crate) fn check_pictures(p: &PictureArgs, nodes: &[String]) -> Result<(), ClientError> {
    if let Some(f) = p.focus.as_deref().filter(|f| !nodes.iter().any(|n| n == f)) {
        return Err(ClientError::Focus(f.to_string()));
    }
    let mermaid = p.mermaid.as_ref().filter(|_| !p.mermaid_to_stdout());
    for (flag, path) in [
        ("--trace", &p.trace),
        ("--svg", &p.svg),
        ("--mermaid", &mermaid.cloned()),
    ] {
        if let Some(path) = path {
            writable(path).map_err(|(error, hint)| ClientError::Unwritable {
                flag,
                path: path.clone(),
                error,
                hint,
            })?;
        }
    }
    Ok(())
}

/// Whether `path` can be written, without changing it: an existing file is opened for
/// appending, a new one is probed by creating (and removing) a file beside it. The error and
/// a hint.
fn writable(path: &std::path::Path) -> Result<(), (std::io::Error, String)> {
    use std::io::ErrorKind;
    if path.is_dir() {
        return Err((
            std::io::Error::other("it is a directory"),
            "; give a file name".into(),
        ));
    }
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| (e, "; the file is not writable: pick another path".into()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let probe = dir.join(format!(".generals-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => {
            let hint = match e.kind() {
                ErrorKind::NotFound if !dir.exists() => format!(
                    "; the directory {} does not exist: create it or pick another path",
                    dir.display()
                ),
                ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => format!(
                    "; the directory {} is not writable: pick another path",
                    dir.display()
                ),
                _ => String::new(),
            };
            Err((e, hint))
        }
    }
}

/// Write a file asked for; its error names it.
pub(crate) fn write(path: &std::path::Path, contents: String) -> Result<(), ClientError> {
    std::fs::write(path, contents).map_err(|error| ClientError::Write {
        path: path.to_path_buf(),
        error,
    })
}

/// The nodes whose `node_info` says they are traitors (nodes without it count as honest),
/// asked of every node at once.
pub(crate) async fn traitors(cluster: &Cluster, peers: &Peers, nodes: &[String]) -> Vec<String> {
    let answers = peers.each(cluster, nodes, |_| Call::NodeInfo).await;
    answers
        .into_iter()
        .filter(|(_, _, info)| {
            info.as_ref()
                .ok()
                .and_then(|v| NodeInfo::from_value(v).ok())
                .is_some_and(|i| i.traitor)
        })
        .map(|(node, _, _)| node)
        .collect()
}

/// `--tree NODE` names a lieutenant of the run (the commander has no tree).
pub(crate) fn check_tree(
    tree: &TreeArgs,
    nodes: &[String],
    commander: &str,
) -> Result<(), ClientError> {
    let Some(node) = &tree.tree else {
        return Ok(());
    };
    let error = if !nodes.contains(node) {
        format!(
            "not one of the nodes taking part ({}); name a lieutenant",
            nodes.join(", ")
        )
    } else if node == commander {
        let lieutenants: Vec<&str> = nodes
            .iter()
            .filter(|n| *n != commander)
            .map(String::as_str)
            .collect();
        format!(
            "the commander has no tree (it only gives the order); name a lieutenant: {}",
            lieutenants.join(", ")
        )
    } else {
        return Ok(());
    };
    Err(ClientError::Tree {
        node: node.clone(),
        error,
    })
}
