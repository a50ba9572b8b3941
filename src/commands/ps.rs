//! `coroner ps`: the guest kernel's tasks from the dump alone, as crash's `ps` lists them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use coroner_analyze::tasks::table;
use coroner_analyze::{escape_control, Task, TaskList};
use serde::Serialize;

use super::kernel;
use super::output::{print_json, print_text};
use crate::cli::PsArgs;
use crate::exit::ExitClass;

#[derive(Serialize)]
struct PsJson<'a> {
    tasks: Vec<&'a Task>,
    current: &'a [coroner_analyze::Current],
    by_state: BTreeMap<char, usize>,
    how: &'a [String],
    diagnostics: &'a [String],
}

pub fn run(args: &PsArgs) -> anyhow::Result<ExitClass> {
    let core = kernel::open(&args.dump.file)?;
    let session = kernel::session(&core, args.kernel.ignore_vmcoreinfo);
    kernel::view(&session)?;
    let list = session.tasks().map_err(|e| {
        kernel::missing(
            e,
            format!("cannot list the tasks of {}", args.dump.file.display()),
        )
    })?;
    let keep = |t: &&Task| {
        args.state.as_ref().is_none_or(|s| s.contains(t.state))
            && (args.pid.is_empty() || args.pid.contains(&t.pid))
    };
    let shown: Vec<&Task> = list.tasks.iter().filter(keep).collect();
    if args.format.json {
        print_json(&PsJson {
            tasks: shown.clone(),
            current: &list.current,
            by_state: list.by_state(),
            how: &list.how,
            diagnostics: &list.diagnostics,
        })?;
    } else {
        print_text(&render(list, &shown))?;
        for d in &list.diagnostics {
            eprintln!("coroner: warning: {}", escape_control(d));
        }
    }
    Ok(if shown.is_empty() && !args.pid.is_empty() {
        ExitClass::NotFound
    } else {
        ExitClass::Ok
    })
}

/// `1.5s`, `3m12s`, `2h05m` for a duration in nanoseconds.
fn render(list: &TaskList, shown: &[&Task]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", table::header());
    for t in shown {
        let _ = writeln!(s, "{}", escape_control(&table::row(list, t)));
    }
    let counts: Vec<String> = list
        .by_state()
        .iter()
        .map(|(st, n)| format!("{n} {st}"))
        .collect();
    let _ = writeln!(s, "\n{} tasks: {}", list.tasks.len(), counts.join(", "));
    for c in &list.current {
        let _ = writeln!(
            s,
            "CPU {} runs {} {}",
            c.cpu,
            c.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            escape_control(c.comm.as_deref().unwrap_or("?"))
        );
    }
    for h in &list.how {
        let _ = writeln!(s, "  {}", escape_control(h));
    }
    s
}
