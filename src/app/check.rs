//! `client check`: the contract's rows ([`crate::runs::check`]) against the cluster WHERE says,
//! one line each (or JSON, and JUnit XML beside the report); or, with `--transcripts`, the
//! rows written as golden transcripts, nothing called.

use std::io::Write as _;

use super::outputs::write;
use super::{ClientError, outln};
use crate::cli::Roles;
use crate::cli::client::CheckArgs;
use crate::console::Escaping;
use crate::runs::check;
use crate::runs::driver::DriveError;

/// Run the rows; exit 0 when no row fails (a documented difference or a skip is none), 1
/// otherwise.
pub(crate) async fn command(a: &CheckArgs) -> Result<u8, ClientError> {
    let roles = Roles {
        faulty: a.faulty.clone(),
        behaviours: Vec::new(),
    };
    let topology = a.cluster.resolve(&roles)?;
    let t = check::Topology {
        urls: (topology.nodes.iter())
            .filter_map(|n| Some((n.clone(), topology.cluster.url_of(n).ok()?.to_string())))
            .collect(),
        faulty: topology.faulty.iter().cloned().collect(),
        nodes: topology.nodes.clone(),
    };
    if let Some(dir) = &a.transcripts {
        std::fs::create_dir_all(dir).map_err(|error| ClientError::Write {
            path: dir.clone(),
            error,
        })?;
        for (name, text) in check::transcripts(&t, &check::rows(&t, true)) {
            write(&dir.join(&name), text)?;
            outln!("wrote {}", dir.join(&name).display());
        }
        return Ok(0);
    }
    let Some(first) = t.nodes.first() else {
        return Err(DriveError::Invalid("the cluster has no nodes".into()).into());
    };
    let loyal = (t.nodes.iter())
        .find(|n| !t.faulty.contains(*n))
        .unwrap_or(first);
    let url = t.urls.get(loyal).cloned().unwrap_or_default();
    let extension = check::claims_extension(&url).await;
    let rows = check::rows(&t, extension.is_ok());
    let width = rows.iter().map(|r| r.id.len()).max().unwrap_or(0);
    if !a.json {
        let faulty: Vec<String> = t.faulty.iter().cloned().collect();
        outln!(
            "checking {} ({}; faulty: {}) against docs/protocol.md{}",
            t.nodes.join(","),
            url,
            if faulty.is_empty() {
                "none".to_string()
            } else {
                faulty.join(",")
            },
            match &extension {
                Ok(()) => " and docs/protocol-extensions.md".to_string(),
                Err(why) => format!(" (the extension's rows skipped: {why})"),
            }
        );
    }
    let json = a.json;
    let mut printed = Ok(());
    let outcomes = check::run(&t, &rows, |o| {
        if !json && printed.is_ok() {
            printed = writeln!(
                Escaping::new(std::io::stdout()),
                "{}",
                check::line(o, width)
            );
        }
    })
    .await;
    printed.map_err(ClientError::Output)?;
    if json {
        outln!("{}", serde_json::to_string(&outcomes).unwrap_or_default());
    } else {
        outln!("{}", check::summary(&outcomes));
    }
    if let Some(path) = &a.junit {
        write(path, check::junit(&outcomes))?;
    }
    let failed = outcomes.iter().any(|o| o.status == check::Status::Fail);
    Ok(u8::from(failed))
}
