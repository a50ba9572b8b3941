//! Dispatch: one module per subcommand, each turning parsed arguments into library calls
//! and printing the result as text or JSON.

mod analyze;
mod bt;
mod capture;
mod completions;
mod compress;
mod dmesg;
mod exit_reason;
mod export;
mod inspect;
mod kernel;
mod man;
mod mce;
mod modules;
mod object_input;
mod output;
mod ps;
mod qemu_log;
mod report;
pub(crate) mod signature_file;
mod slim;
mod status;
mod sym;
mod triage;
mod tui;
mod verify;
mod watch;

pub use object_input::report_traffic;
pub use output::print_json_error;

use crate::cli::{Cli, Command};
use crate::exit::ExitClass;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitClass> {
    match cli.command {
        Command::Capture(args) => capture::run(&args),
        Command::Dmesg(args) => dmesg::run(&args),
        Command::Analyze(args) => analyze::run(&args),
        Command::Sym(args) => sym::run(&args),
        Command::Modules(args) => modules::run(&args),
        Command::Ps(args) => ps::run(&args),
        Command::Bt(args) => bt::run(&args),
        Command::Mce(args) => mce::run(&args),
        Command::Exit(args) => exit_reason::run(&args),
        Command::Tui(args) => tui::run(&args),
        Command::Slim(args) => slim::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Status(args) => status::run(&args).map(ExitClass::Code),
        Command::Watch(args) => watch::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Compress(args) => compress::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Triage(args) => triage::run(&args),
        Command::Completions(args) => completions::run(&args),
        Command::Man(args) => man::run(&args),
    }
}
