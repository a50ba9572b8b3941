//! The report behind `coroner analyze`: the verdict, where each vCPU stopped, and how each
//! fact was obtained. Plain data; the callers render it as text or JSON.

use serde::Serialize;

use crate::kernel_view::{Evidence, KernelView};
use std::collections::BTreeMap;

use crate::backtrace::vcpu_backtrace;
use crate::kvm_exit::{analyze_exit, ExitReport};
use crate::mce::{analyze_mce, MceReport};
use crate::paging::MODULES_START;
use crate::panic_cpu::{panic_cpu, PanicCpu};
use crate::session::{Session, Unavailable};
use crate::stuck::{stuck, Stuck};
use crate::tasks::{Current, Task};
use crate::triage::{triage, Triage};

/// Where a vCPU was stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VcpuAt {
    /// Index in qemu's CPU list.
    pub index: usize,
    /// Instruction pointer.
    #[serde(with = "coroner_formats::hex")]
    pub rip: u64,
    /// `name+0xoff/0xsize`, or none (see `no_symbol`).
    pub symbol: Option<String>,
    /// Why `symbol` is none: `in-a-module` (module symbols are not in kallsyms),
    /// `no-kallsyms` (the table was not found) or `not-in-kallsyms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_symbol: Option<&'static str>,
    /// The task it runs (`PID COMM`), when the task list is readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The top of its kernel backtrace (ORC), innermost first; empty in user mode or
    /// without ORC.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<String>,
}

/// Frames of each vCPU's backtrace in the report.
const VCPU_FRAMES: usize = 6;

/// The kernel's tasks in brief, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct TasksSummary {
    /// Tasks listed.
    pub count: usize,
    /// Tasks by state letter.
    pub by_state: BTreeMap<char, usize>,
    /// The task that panicked (the one the panic CPU runs), when the guest panicked.
    pub panicked: Option<Current>,
    /// Tasks in uninterruptible sleep (`D`, the first 50): what a hung guest waits on.
    pub uninterruptible: Vec<Task>,
}

/// `D` tasks listed at most in the report.
const MAX_D_TASKS: usize = 50;

impl Report {
    /// The vCPU whose registers to show: the one KVM's error report names, else the one
    /// that panicked, else vCPU 0; with why.
    pub fn focus_vcpu(&self) -> (usize, String) {
        if let Some(v) = self.kvm_exit.as_ref().and_then(|x| x.vcpu) {
            return (v, "the vCPU of the KVM error report".into());
        }
        match &self.panic_cpu {
            Some(p) => (p.cpu, format!("the CPU that panicked: {}", p.how)),
            None => (0, "vCPU 0: no panic CPU known".into()),
        }
    }
}

impl VcpuAt {
    /// The symbol for text output, or why there is none in parentheses.
    pub fn symbol_text(&self) -> String {
        match (&self.symbol, self.no_symbol) {
            (Some(s), _) => s.clone(),
            (None, Some(why)) => format!("({})", why.replace('-', " ")),
            (None, None) => String::new(),
        }
    }
}

/// Why the guest died, and how each fact is known.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// One line: the run state (from the capture) and the cause the log gives.
    pub verdict: String,
    /// A crash title in the style of syzkaller's ("kernel panic: REASON in F", "BUG:
    /// unable to handle kernel NULL pointer dereference in F", "BUG: soft lockup in F",
    /// "INFO: task hung in F"), numbers and addresses replaced: the same line for every
    /// guest that died the same way. None when nothing failed that the dump shows.
    pub title: Option<String>,
    /// Run state when the capture was taken, from the capture metadata.
    pub run_state: Option<String>,
    /// Kernel release.
    pub release: Option<String>,
    /// KASLR offset of the kernel image.
    #[serde(with = "coroner_formats::hex::option")]
    pub kaslr_offset: Option<u64>,
    /// `phys_base`.
    #[serde(with = "coroner_formats::hex::option")]
    pub phys_base: Option<u64>,
    /// How each fact was obtained, in order.
    pub evidence: Vec<Evidence>,
    /// What was tried and failed, or disagreed.
    pub problems: Vec<String>,
    /// Records in the kernel log.
    pub log_records: usize,
    /// How the log was located.
    pub log_located: Option<String>,
    /// What the log reader skipped or found damaged.
    pub log_diagnostics: Vec<String>,
    /// The log's triage.
    pub triage: Option<Triage>,
    /// Where each vCPU stopped.
    pub vcpus: Vec<VcpuAt>,
    /// The CPU that panicked and how it was chosen, when the guest panicked.
    pub panic_cpu: Option<PanicCpu>,
    /// QMP events the capture saw, by name.
    pub events: Vec<String>,
    /// The machine-check analysis, when the guest or the host recorded one.
    pub machine_check: Option<MceReport>,
    /// The KVM exit-reason analysis, when qemu's log has a KVM error report.
    pub kvm_exit: Option<ExitReport>,
    /// The kernel's tasks in brief, when BTF lays them out.
    pub tasks: Option<TasksSummary>,
    /// Hung tasks and soft lockups, when the task list is readable.
    pub stuck: Option<Stuck>,
    /// The whole backtrace of the CPU that panicked (ORC, from its registers): the
    /// panicking task's stack, even when the log ring no longer holds its Call Trace.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub panic_backtrace: Vec<String>,
}

/// The report of the dump of session `s` (see [`Session::report`]).
pub(crate) fn report(s: &Session<'_>) -> Report {
    let capture = s.capture();
    let mut r = Report {
        verdict: String::new(),
        title: None,
        run_state: capture
            .map(|c| c.run_state_before.clone())
            .filter(|s| !s.is_empty()),
        release: None,
        kaslr_offset: None,
        phys_base: None,
        evidence: Vec::new(),
        problems: Vec::new(),
        log_records: 0,
        log_located: None,
        log_diagnostics: Vec::new(),
        triage: None,
        vcpus: Vec::new(),
        panic_cpu: None,
        events: capture.map(|c| c.event_names()).unwrap_or_default(),
        machine_check: None,
        kvm_exit: None,
        tasks: None,
        stuck: None,
        panic_backtrace: Vec::new(),
    };
    r.verdict = match s.view() {
        Ok(view) => fill_from_view(&mut r, s, view),
        Err(e) => {
            r.problems.push(e.to_string());
            "no Linux kernel found".into()
        }
    };
    // A KVM error stops the guest whatever its kernel was doing: it leads the verdict.
    r.problems.extend(s.capture_problem().map(String::from));
    let kvm_log = capture
        .and_then(|c| c.qemu_log.as_ref())
        .map(|l| l.text.as_str())
        .is_some_and(|t| t.contains("KVM internal error") || t.contains("KVM: entry failed"));
    if kvm_log || r.run_state.as_deref() == Some("internal-error") {
        let x = analyze_exit(Some(s), None);
        if x.report.is_some() {
            let prefix = r
                .run_state
                .as_ref()
                .map(|st| format!("{st}: "))
                .unwrap_or_default();
            r.verdict = x
                .verdict
                .strip_prefix(&prefix)
                .unwrap_or(&x.verdict)
                .to_string();
            r.title = Some(crate::title::sanitize(&r.verdict));
            r.kvm_exit = Some(x);
        }
    }
    if let Some(state) = &r.run_state {
        r.verdict = format!("{state}: {}", r.verdict);
    }
    r
}

/// Fills the kernel facts, vCPU positions and log from `view`; returns the verdict.
fn fill_from_view(r: &mut Report, s: &Session<'_>, view: &KernelView<'_>) -> String {
    let core = s.core();
    r.release = view.release.clone();
    r.kaslr_offset = Some(view.kaslr_offset);
    r.phys_base = Some(view.phys_base);
    r.evidence = view.evidence.clone();
    r.problems = view.problems.clone();
    let kallsyms = match s.kallsyms() {
        Ok(k) => {
            r.evidence.push(Evidence {
                fact: "kallsyms".into(),
                value: format!("{} symbols", k.table.len()),
                how: k.how.clone(),
            });
            Some(&k.table)
        }
        Err(e) => {
            r.problems.push(format!("kallsyms: {e}"));
            None
        }
    };
    // Module code is named from each module's own symbols, read only when a vCPU is in it.
    let in_module = core
        .elf
        .vcpus
        .iter()
        .any(|v| v.qemu.as_ref().is_some_and(|q| q.rip >= MODULES_START));
    if in_module {
        match s.modules() {
            Ok(m) => r.evidence.push(Evidence {
                fact: "modules".into(),
                value: format!(
                    "{} loaded, {} symbols",
                    m.modules.len(),
                    m.modules.iter().map(|x| x.symbol_count).sum::<usize>()
                ),
                how: m.how.join("; "),
            }),
            Err(Unavailable::Failed(e)) => r.problems.push(format!("modules: {e}")),
            Err(Unavailable::NoKernel(_)) => {}
        }
    }
    // The tasks, when BTF lays them out: who runs where, and who is stuck.
    let tasks = match s.tasks() {
        Ok(t) => {
            r.evidence.push(Evidence {
                fact: "tasks".into(),
                value: format!("{} tasks", t.tasks.len()),
                how: t.how.join("; "),
            });
            r.log_diagnostics
                .extend(t.diagnostics.iter().map(|d| format!("tasks: {d}")));
            Some(t)
        }
        Err(Unavailable::Failed(e)) => {
            r.problems.push(format!("tasks: {e}"));
            None
        }
        Err(Unavailable::NoKernel(_)) => None,
    };
    let current = |pos: usize| {
        tasks
            .and_then(|t| t.current.iter().find(|c| c.cpu == pos))
            .filter(|c| c.pid.is_some())
    };
    r.vcpus = core
        .elf
        .vcpus
        .iter()
        .enumerate()
        .filter_map(|(pos, v)| {
            let rip = v.qemu.as_ref()?.rip;
            let symbol = s.symbolize(rip);
            let no_symbol = match (&symbol, &kallsyms) {
                (Some(_), _) => None,
                // Module symbols live in each module's own tables, which could not be read.
                (None, _) if rip >= MODULES_START => Some("in-a-module"),
                (None, None) => Some("no-kallsyms"),
                (None, Some(_)) => Some("not-in-kallsyms"),
            };
            Some(VcpuAt {
                index: v.index,
                rip,
                symbol,
                no_symbol,
                task: current(pos).map(|c| {
                    format!(
                        "{} {}",
                        c.pid.unwrap_or(-1),
                        c.comm.as_deref().unwrap_or("?")
                    )
                }),
                frames: vcpu_backtrace(s, pos)
                    .map(|b| {
                        b.frames
                            .iter()
                            .take(VCPU_FRAMES)
                            .map(|f| f.text())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect();
    match s.orc() {
        Ok(orc) => {
            r.evidence.push(Evidence {
                fact: "backtraces".into(),
                value: format!("ORC, format {:?}", orc.format),
                how: orc.how.join("; "),
            });
            r.problems
                .extend(orc.diagnostics.iter().map(|d| format!("backtraces: {d}")));
        }
        Err(Unavailable::Failed(e)) if e.is_absent() => r.evidence.push(Evidence {
            fact: "backtraces".into(),
            value: "frame pointers, else a stack scan".into(),
            how: format!("{e}: the rbp chain where functions set it up"),
        }),
        Err(Unavailable::Failed(e)) => r.problems.push(format!("backtraces: {e}")),
        Err(Unavailable::NoKernel(_)) => {}
    }
    let mce = analyze_mce(s, None);
    let mce_fatal = (mce.records.iter().any(|m| m.fatal) || mce.rendezvous.is_some())
        .then(|| mce.verdict.clone());
    if !mce.records.is_empty() || !mce.host.events.is_empty() || mce.rendezvous.is_some() {
        r.machine_check = Some(mce);
    }
    let verdict = match s.kernel_log() {
        Ok(log) => {
            r.log_records = log.records.len();
            r.log_located = Some(log.located.clone());
            r.evidence.push(Evidence {
                fact: "kernel log".into(),
                value: format!("{} records ({} ring)", log.records.len(), log.kind.name()),
                how: log.located.clone(),
            });
            r.log_diagnostics = log.diagnostics.clone();
            let t = triage(&log.records);
            r.panic_cpu = panic_cpu(
                view,
                kallsyms,
                &log.records,
                t.panic.as_ref().map(|p| p.seq),
                &r.vcpus,
            );
            // The decoded machine check says more than the panic line it ends with; a
            // guest whose log has nothing is described by what it is stuck on.
            r.stuck = stuck(s, s.options().hung_after_secs);
            // A logged soft lockup with no panic: what coroner finds the guest stuck on
            // (it may still be) says more than the report.
            let quiet = t.panic.is_none() && t.only_lockup_reports() && t.machine_checks.is_empty();
            let verdict = match (mce_fatal.clone(), r.stuck.as_ref().and_then(Stuck::title)) {
                (Some(m), _) if t.panic.is_some() => format!("kernel panic: {m}"),
                (Some(m), _) => m,
                (None, Some(title)) if quiet => title,
                (None, _) => t.verdict.clone(),
            };
            if let Some(p) = &r.panic_cpu {
                if let Ok(b) = vcpu_backtrace(s, p.cpu) {
                    r.panic_backtrace = b.frames.iter().map(|f| f.text()).collect();
                }
            }
            r.title = match r.machine_check.as_ref().and_then(crate::mce::mce_title) {
                Some(m) if mce_fatal.is_some() => Some(m),
                _ => crate::title::title(&t, r.stuck.as_ref(), &r.panic_backtrace),
            };
            r.triage = Some(t);
            verdict
        }
        Err(e) => {
            r.problems.push(format!("kernel log: {e}"));
            "kernel log unreadable".into()
        }
    };
    r.tasks = tasks.map(|t| TasksSummary {
        count: t.tasks.len(),
        by_state: t.by_state(),
        panicked: r
            .panic_cpu
            .as_ref()
            .and_then(|p| t.current.iter().find(|c| c.cpu == p.cpu))
            .cloned(),
        uninterruptible: t
            .tasks
            .iter()
            .filter(|x| x.state == 'D')
            .take(MAX_D_TASKS)
            .cloned()
            .collect(),
    });
    verdict
}
