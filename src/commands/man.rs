//! `coroner man [COMMAND]`: the manual page, in roff, from the clap definitions.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};
use crate::exit::{classified, ExitClass};

/// No such command (`coroner man frobnicate`).
#[derive(Debug, thiserror::Error)]
#[error("no command {0:?}; `coroner --help` lists them")]
struct NoSuchCommand(String);

pub fn run(args: &ManArgs) -> anyhow::Result<ExitClass> {
    let top = Cli::command();
    let page = match &args.command {
        None => top,
        Some(name) => {
            let sub = top
                .find_subcommand(name)
                .ok_or_else(|| {
                    classified(
                        NoSuchCommand(name.clone()),
                        ExitClass::Usage,
                        format!("cannot print the manual page of {name:?}"),
                    )
                })?
                .clone();
            // The page is coroner-NAME(1), as git and cargo name theirs.
            sub.name(format!("coroner-{name}"))
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .context("rendering the manual page")?;
    let mut out = std::io::stdout().lock();
    out.write_all(&roff)
        .and_then(|()| out.flush())
        .context("writing to stdout")?;
    Ok(ExitClass::Ok)
}
