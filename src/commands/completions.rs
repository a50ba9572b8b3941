//! `coroner completions SHELL`: a completion script from the clap definitions.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::exit::ExitClass;

pub fn run(args: &CompletionsArgs) -> anyhow::Result<ExitClass> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "coroner", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("writing to stdout")?;
    Ok(ExitClass::Ok)
}
