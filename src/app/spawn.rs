//! `--spawn`: the nodes `server` would host with the same flags, served in this process for
//! the command only and silent (the report is the output). Their configuration is built from
//! the flags by [`config`], as `server` builds its own from its command line: the defaults of
//! `server`'s limits, the round-trip timeout given, no stdout lines, no access log.

use super::{ClientError, errln};
use crate::cli::client::{Cli, Command, OmArgs};
use crate::cli::{CliError, ClusterArgs, Roles, Topology};
use crate::server::{self, Config, Limits};

/// The configuration of the nodes `client --spawn` hosts: every node of the run (as `cluster`
/// and `roles` place them and give their behaviours) but the `external` ones, which live where
/// their URLs say (`--under-test`).
pub(crate) fn config(
    cluster: &ClusterArgs,
    roles: &Roles,
    external: &[String],
) -> Result<Config, CliError> {
    let mut hosting = cluster.clone();
    if !external.is_empty() {
        let Topology { nodes, .. } = cluster.resolve(&Roles::default())?;
        let hosted: Vec<String> = nodes
            .into_iter()
            .filter(|n| !external.contains(n))
            .collect();
        hosting.nodes = Some(hosted.join(","));
    }
    let Topology {
        cluster,
        nodes,
        faulty,
        behaviours,
    } = hosting.resolve(roles)?;
    Ok(Config {
        cluster,
        nodes,
        faulty,
        behaviours,
        quiet: true,
        print: false,
        limits: Limits {
            rpc_timeout: hosting.rpc_timeout(),
            ..Limits::default()
        },
        ..Config::default()
    })
}

/// Nodes served in this process until [`Hosting::stop`].
#[derive(Debug)]
pub(crate) struct Hosting {
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<()>,
}

impl Hosting {
    /// Stop serving, and wait for the connections in flight (within the request timeout).
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.serving.await;
    }
}

/// Host the nodes `cli` asks to spawn, if it does: `Ok(None)` when it does not, `Err(1)` (the
/// exit code, as `server`'s) when they cannot be bound, which is said on stderr.
pub(crate) async fn host(cli: &Cli) -> Result<Result<Option<Hosting>, u8>, ClientError> {
    let Some((cluster, spawn)) = cli.spawn().filter(|(_, s)| s.spawn) else {
        return Ok(Ok(None));
    };
    let external = match &cli.command {
        Some(Command::Om(OmArgs { run: a, .. }) | Command::Sm(a)) => a.under_test_names(),
        _ => Vec::new(),
    };
    let config = config(cluster, &spawn.roles, &external)?;
    if let Some(bind) = crate::cli::server::exposed(&config)? {
        errln!(
            "client: warning: binding {bind} exposes XML-RPC without authentication to the network"
        );
    }
    let bound = match server::bind(config).await {
        Ok(bound) => bound,
        // What `server` says, and exits with, when it cannot start.
        Err(e) => {
            errln!("client: {e}");
            return Ok(Err(1));
        }
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bound.run(async {
        let _ = stopped.await;
    }));
    Ok(Ok(Some(Hosting { stop, serving })))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::server::ServerArgs;

    /// A config as the nodes it hosts see it (the cluster's peers are a hash map: compared
    /// node by node).
    fn shown(c: &Config) -> String {
        let urls: Vec<String> = (c.cluster.members().iter())
            .map(|m| format!("{m}={:?}", c.cluster.url_of(m)))
            .collect();
        format!(
            "{urls:?} {:?} {:?} {:?} {} {} {} {:?}",
            c.nodes, c.faulty, c.behaviours, c.seed, c.quiet, c.print, c.limits
        )
    }

    /// What `server` would host with the same flags, quiet and without its stdout lines.
    fn as_server(args: &[&str]) -> String {
        let mut argv = vec!["server", "--quiet"];
        argv.extend_from_slice(args);
        let config = ServerArgs::try_parse_from(argv).unwrap().config().unwrap();
        shown(&Config {
            print: false,
            ..config
        })
    }

    fn spawned(args: &[&str], external: &[&str]) -> String {
        let mut argv = vec!["server"];
        argv.extend_from_slice(args);
        let a = ServerArgs::try_parse_from(argv).unwrap();
        let external: Vec<String> = external.iter().map(|s| s.to_string()).collect();
        shown(&config(&a.cluster, &a.roles, &external).unwrap())
    }

    #[test]
    fn spawned_nodes_are_what_server_hosts_with_the_same_flags() {
        for args in [
            &[][..],
            &[
                "--port-base",
                "9100",
                "--cluster-size",
                "7",
                "--rpc-timeout",
                "3",
            ],
            &["--faulty", "Q", "--behaviour", "R=flip", "--nodes", "P,Q,R"],
        ] {
            assert_eq!(spawned(args, &[]), as_server(args), "{args:?}");
        }
        // Nodes under test are left out, as if --nodes named the others.
        assert_eq!(
            spawned(&["--peer", "S=http://127.0.0.1:9/"], &["S"]),
            as_server(&["--peer", "S=http://127.0.0.1:9/", "--nodes", "P,Q,R"])
        );
    }
}
