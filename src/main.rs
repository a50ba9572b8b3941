//! `coroner`: the command-line front end. Clap definitions and dispatch only; the work
//! happens in the library crates.

mod cli;
mod commands;
mod exit;
mod interrupt;
mod journal;
mod progress;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::exit::ExitClass;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitClass::Usage.into()
            } else {
                ExitClass::Ok.into()
            };
        }
    };
    match commands::run(cli) {
        Ok(class) => class.into(),
        Err(err) if exit::is_broken_pipe(&err) => ExitClass::Ok.into(),
        Err(err) => {
            let class = exit::class_of(&err);
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "coroner: error: {err:#}");
            class.into()
        }
    }
}
