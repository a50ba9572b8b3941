//! `coroner modules`: the guest kernel's loaded modules from the dump alone.

use std::fmt::Write as _;

use coroner_analyze::{escape_control, ModuleList};

use super::kernel;
use super::output::{print_json, print_text};
use crate::cli::ModulesArgs;
use crate::exit::ExitClass;

pub fn run(args: &ModulesArgs) -> anyhow::Result<ExitClass> {
    let core = kernel::open(&args.dump.file)?;
    let session = kernel::session(&core, args.kernel.ignore_vmcoreinfo);
    kernel::view(&session)?;
    let list = session.modules().map_err(|e| {
        kernel::missing(
            e,
            format!("cannot list the modules of {}", args.dump.file.display()),
        )
    })?;
    if args.format.json {
        print_json(list)?;
    } else {
        print_text(&render(list))?;
        for d in &list.diagnostics {
            eprintln!("coroner: warning: {}", escape_control(d));
        }
    }
    Ok(ExitClass::Ok)
}

fn render(list: &ModuleList) -> String {
    let mut s = String::new();
    for line in coroner_analyze::modules::table::lines(list) {
        let _ = writeln!(s, "{}", escape_control(&line));
    }
    let _ = writeln!(s, "\n{} modules", list.modules.len());
    for h in &list.how {
        let _ = writeln!(s, "  {}", escape_control(h));
    }
    s
}
