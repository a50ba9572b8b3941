//! `coroner bt`: kernel backtraces of vCPUs and tasks from the dump alone, unwound with
//! the ORC tables the kernel keeps in RAM.

use std::fmt::Write as _;

use coroner_analyze::backtrace::{task_backtrace, vcpu_backtrace, Backtrace};
use coroner_analyze::{escape_control, Session, Task, Unavailable};
use serde::Serialize;

use super::kernel;
use super::output::{print_json, print_text};
use crate::cli::BtArgs;
use crate::exit::ExitClass;

/// One backtrace and whose it is.
#[derive(Serialize)]
struct Entry<'a> {
    /// The vCPU, for a vCPU's backtrace or a task a CPU runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<&'a Task>,
    #[serde(flatten)]
    result: Outcome,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Outcome {
    Ok(Backtrace),
    Failed { error: String },
}

#[derive(Serialize)]
struct BtJson<'a> {
    backtraces: Vec<Entry<'a>>,
    how: Vec<String>,
    /// Module tables that could not be read.
    diagnostics: Vec<String>,
}

pub fn run(args: &BtArgs) -> anyhow::Result<ExitClass> {
    let core = kernel::open(&args.dump.file)?;
    let session = kernel::session(&core, args.kernel.ignore_vmcoreinfo);
    kernel::view(&session)?;
    let mut diagnostics = Vec::new();
    let mut how = match session.orc() {
        Ok(orc) => {
            diagnostics.extend(orc.diagnostics.iter().cloned());
            orc.how.clone()
        }
        // No ORC symbols: the frame-pointer chain of a kernel built with frame pointers,
        // else only the stack scan (see backtrace.rs); each frame says which.
        Err(Unavailable::Failed(e)) if e.is_absent() => {
            vec![format!(
                "{e}: frame pointers where the kernel has them, else a stack scan"
            )]
        }
        Err(e) => {
            return Err(kernel::missing(
                e,
                format!("cannot unwind the stacks of {}", args.dump.file.display()),
            ))
        }
    };
    let mut entries = Vec::new();
    let vcpus = core.elf.vcpus.len();
    let want_tasks = args.all || !args.pid.is_empty() || args.state.is_some();
    let cpus: Vec<usize> = if !args.cpu.is_empty() {
        args.cpu.clone()
    } else if want_tasks && !args.all {
        Vec::new()
    } else {
        (0..vcpus).collect()
    };
    let list = if want_tasks || !cpus.is_empty() {
        session.tasks().ok()
    } else {
        None
    };
    for &cpu in &cpus {
        let task = list.and_then(|l| {
            let c = l.current.iter().find(|c| c.cpu == cpu)?;
            l.tasks.iter().find(|t| t.task == c.task)
        });
        entries.push(Entry {
            cpu: Some(cpu),
            task,
            result: outcome(vcpu_backtrace(&session, cpu)),
        });
    }
    if want_tasks {
        let list = session.tasks().map_err(|e| {
            kernel::missing(
                e,
                format!("cannot list the tasks of {}", args.dump.file.display()),
            )
        })?;
        how.extend(list.how.iter().cloned());
        for t in &list.tasks {
            let keep = args.all && args.pid.is_empty() && args.state.is_none()
                || args.pid.contains(&t.pid)
                || args.state.as_ref().is_some_and(|s| s.contains(t.state));
            // A task a CPU runs is shown with its vCPU above when all vCPUs are.
            let running = list.current.iter().find(|c| c.task == t.task);
            if !keep || (running.is_some() && cpus.len() == vcpus && args.pid.is_empty()) {
                continue;
            }
            entries.push(Entry {
                cpu: running.map(|c| c.cpu),
                task: Some(t),
                result: outcome(task_backtrace(&session, t)),
            });
        }
    }
    // A pid or vCPU asked for that the dump does not have is "not found", as in ps.
    let nothing = entries.is_empty() || args.cpu.iter().any(|&c| c >= vcpus);
    if args.format.json {
        print_json(&BtJson {
            backtraces: entries,
            how,
            diagnostics,
        })?;
    } else {
        print_text(&render(&session, &entries, &how))?;
        for d in &diagnostics {
            eprintln!("coroner: warning: {}", escape_control(d));
        }
    }
    Ok(
        if nothing && (!args.pid.is_empty() || !args.cpu.is_empty()) {
            ExitClass::NotFound
        } else {
            ExitClass::Ok
        },
    )
}

fn outcome(r: Result<Backtrace, String>) -> Outcome {
    match r {
        Ok(b) => Outcome::Ok(b),
        Err(error) => Outcome::Failed { error },
    }
}

fn render(session: &Session<'_>, entries: &[Entry<'_>], how: &[String]) -> String {
    let mut s = String::new();
    for e in entries {
        let who = match (e.cpu, e.task) {
            (Some(c), Some(t)) => format!("vCPU {c}: PID {} {} ({})", t.pid, t.comm, t.state),
            (Some(c), None) => format!("vCPU {c}"),
            (None, Some(t)) => format!("PID {} {} ({})", t.pid, t.comm, t.state),
            (None, None) => String::new(),
        };
        let _ = writeln!(s, "{}", escape_control(&who));
        match &e.result {
            Outcome::Failed { error } => {
                let _ = writeln!(s, "  no backtrace: {}", escape_control(error));
            }
            Outcome::Ok(b) => {
                // The stack each run of frames is on, marked as the kernel marks it.
                let mut on: Option<&str> = None;
                for f in &b.frames {
                    if f.stack != on {
                        if let Some(prev) = on {
                            let _ = writeln!(s, " </{prev}>");
                        }
                        if let Some(next) = f.stack {
                            let _ = writeln!(s, " <{next}>");
                        }
                        on = f.stack;
                    }
                    let _ = writeln!(s, " {}", escape_control(&f.text()));
                    if let Some(r) = &f.regs {
                        // As the kernel's __show_regs prints them.
                        let w = &r.0;
                        let rip = session
                            .symbolize(w[16])
                            .unwrap_or_else(|| format!("{:#x}", w[16]));
                        let _ = writeln!(s, " RIP: {:04x}:{}", w[17], escape_control(&rip));
                        let _ = writeln!(
                            s,
                            " RSP: {:04x}:{:016x} EFLAGS: {:08x}",
                            w[20], w[19], w[18]
                        );
                        let _ = writeln!(
                            s,
                            " RAX: {:016x} RBX: {:016x} RCX: {:016x}\n RDX: {:016x} RSI: {:016x} RDI: {:016x}\n RBP: {:016x} R08: {:016x} R09: {:016x}\n R10: {:016x} R11: {:016x} R12: {:016x}\n R13: {:016x} R14: {:016x} R15: {:016x}",
                            w[10], w[5], w[11], w[12], w[13], w[14], w[4], w[9], w[8], w[7], w[6], w[3], w[2], w[1], w[0]
                        );
                    }
                }
                if let Some(last) = on {
                    let _ = writeln!(s, " </{last}>");
                }
                let _ = writeln!(
                    s,
                    "  ({}; from {})",
                    escape_control(&b.stop_reason),
                    escape_control(&b.from)
                );
            }
        }
        s.push('\n');
    }
    for h in how {
        let _ = writeln!(s, "  {}", escape_control(h));
    }
    s
}
