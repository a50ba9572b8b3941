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

/// True when the command line asks for JSON (`--json` before any `--`): decided from the
/// raw arguments, so a command line clap refuses gets a JSON error too.
fn wants_json() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// The one rule for failures: the message on stderr as text and, under `--json`, one
/// JSON error object on stdout.
fn fail(message: &str, class: ExitClass, json: bool) -> ExitCode {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "coroner: error: {message}");
    if json {
        commands::print_json_error(message, class);
    }
    class.into()
}

fn main() -> ExitCode {
    let json = wants_json();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && json => {
            let rendered = e.to_string();
            let message = rendered.lines().next().unwrap_or_default();
            let message = message.strip_prefix("error: ").unwrap_or(message);
            let _ = e.print();
            commands::print_json_error(message, ExitClass::Usage);
            return ExitClass::Usage.into();
        }
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitClass::Usage.into()
            } else {
                ExitClass::Ok.into()
            };
        }
    };
    let result = commands::run(cli);
    commands::report_traffic();
    match result {
        Ok(class) => class.into(),
        Err(err) if exit::is_broken_pipe(&err) => ExitClass::Ok.into(),
        Err(err) => fail(&exit::message_of(&err), exit::class_of(&err), json),
    }
}
