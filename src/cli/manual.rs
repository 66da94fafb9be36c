//! Shell completions and man pages, generated from the clap structs themselves, so they
//! cannot drift from `--help`: `client completions SHELL`, `client man [SUBCOMMAND]`,
//! `server --completions SHELL`, `server --man`.
//!
//! Pages are printed, not kept in the repository: a copy under `docs/` would go stale with
//! every help text changed and would need a test to say so.

use std::io::Write;

use clap::{Args, Command};
pub(crate) use clap_complete::Shell;

/// `client completions SHELL`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for, e.g.
    /// `client completions bash > ~/.local/share/bash-completion/completions/client`.
    #[arg(value_enum, value_name = "SHELL")]
    pub(crate) shell: Shell,
}

/// `client`'s subcommands, each with a page of its own.
pub(crate) const SUBCOMMANDS: [&str; 7] =
    ["om", "sm", "explore", "check", "ui", "completions", "man"];

/// `client man [SUBCOMMAND]`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (client-om(1), ...) [default: client(1) itself],
    /// e.g. `client man om | man -l -`.
    #[arg(value_name = "SUBCOMMAND", value_parser = SUBCOMMANDS)]
    pub(crate) page: Option<String>,
}

/// The completion script of `cmd` for `shell`, for the binary named as `cmd` is.
pub fn completions(mut cmd: Command, shell: Shell) -> Vec<u8> {
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out
}

/// The man page (roff) of `cmd`, or of its subcommand `sub` (titled `client-om` and so on).
/// `None` when `cmd` has no such subcommand.
pub fn man(cmd: Command, sub: Option<&str>) -> Option<Vec<u8>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    // Building names each subcommand's page after its parent (client-om).
    cmd.build();
    let page = match sub {
        None => cmd,
        Some(name) => cmd.find_subcommand(name)?.clone(),
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .source(concat!("generals ", env!("CARGO_PKG_VERSION")))
        .render(&mut out)
        .expect("writing to a Vec cannot fail");
    Some(out)
}

/// Print `bytes` on stdout.
pub fn print(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::client::Cli;
    use crate::cli::server::ServerArgs;
    use clap::CommandFactory;

    /// Every option, by its long (or short) name, of `cmd` and its subcommands.
    fn options(cmd: &Command) -> Vec<String> {
        let mut names: Vec<String> = cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| match (a.get_long(), a.get_short()) {
                (Some(long), _) => Some(format!("--{long}")),
                (None, Some(short)) => Some(format!("-{short}")),
                (None, None) => None,
            })
            .collect();
        for sub in cmd.get_subcommands() {
            names.extend(options(sub));
        }
        names
    }

    /// roff writes `-` as `\-`; the page as a reader sees its option names.
    fn text(page: &[u8]) -> String {
        String::from_utf8_lossy(page).replace("\\-", "-")
    }

    #[test]
    fn bash_completion_mentions_every_subcommand() {
        let cmd = Cli::command();
        let script = String::from_utf8(completions(cmd.clone(), Shell::Bash)).unwrap();
        let subs: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
        assert_eq!(subs, SUBCOMMANDS, "`client man`'s list");
        for sub in subs {
            assert!(
                script.contains(&format!("client,{sub})")),
                "no {sub} in:\n{script}"
            );
        }
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(completions(ServerArgs::command(), shell)).unwrap();
            assert!(script.contains("max-answer-bytes"), "{shell}: {script}");
        }
    }

    #[test]
    fn man_pages_name_every_option() {
        let server = ServerArgs::command();
        let page = text(&man(server.clone(), None).unwrap());
        assert!(
            page.starts_with(".ie") || page.contains(".TH server"),
            "{page}"
        );
        for name in options(&server) {
            assert!(page.contains(&name), "server(1) lacks {name}");
        }
        let client = Cli::command();
        let mut pages = text(&man(client.clone(), None).unwrap());
        assert!(pages.contains(".TH client"), "{pages}");
        for sub in client.get_subcommands() {
            let page = text(&man(client.clone(), Some(sub.get_name())).unwrap());
            assert!(
                page.contains(&format!(".TH client-{}", sub.get_name())),
                "{page}"
            );
            pages.push_str(&page);
        }
        for name in options(&client) {
            assert!(pages.contains(&name), "the client pages lack {name}");
        }
        assert!(options(&client).contains(&"--tree".to_string()));
        assert_eq!(man(client, Some("nonsense")), None);
    }
}
