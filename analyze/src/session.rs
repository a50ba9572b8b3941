//! One dump under analysis: the entry to every analysis. It holds the dump and its capture
//! record, and builds what the analyses share (the kernel view, kallsyms, the kernel log)
//! once, on first use, and keeps it. The binary, the TUI, `slim` and `report` ask it for
//! every analysis, so nothing is read or computed twice, and a caller that records the
//! pages read (`slim`) sees every read of its own session.

use std::cell::OnceCell;

use coroner_formats::Core;
use coroner_record::{CaptureInfo, LogTail};

use crate::btf::{locate_btf, BtfError, FoundBtf};
use crate::capture_record::capture_record;
use crate::kallsyms::{Kallsyms, KallsymsError};
use crate::kernel_view::{Hints, KernelView, ViewError, START_KERNEL};
use crate::kmem::VirtAddr;
use crate::kvm_exit::{analyze_exit, ExitReport};
use crate::mce::{analyze_mce, MceReport};
use crate::modules::{modules_head, read_modules, ModuleList, ModulesError};
use crate::orc::{KernelOrc, OrcError};
use crate::paging::MODULES_START;
use crate::printk::{KernelLog, LogError};
use crate::report::{report, Report};
use crate::tasks::TaskSymbols;
use crate::tasks::{read_tasks, TaskList, TasksError};
use crate::vcpu_context::{vcpu_context, VcpuContext};

/// What a session is told besides the dump.
#[derive(Clone, Copy, Debug, Default)]
pub struct SessionOptions {
    /// Do not use VMCOREINFO (see [`Hints::ignore_vmcoreinfo`]).
    pub ignore_vmcoreinfo: bool,
    /// Seconds in D after which a task counts as hung (default: the guest's
    /// `hung_task_timeout_secs`).
    pub hung_after_secs: Option<u64>,
}

/// Kernel symbols and how the table was found.
#[derive(Debug)]
pub struct FoundKallsyms {
    /// The table.
    pub table: Kallsyms,
    /// How it was found, for the evidence list.
    pub how: String,
}

/// Why a piece that needs the kernel could not be had.
#[derive(Clone, Copy, Debug)]
pub enum Unavailable<'s, E> {
    /// No Linux kernel was found in the dump.
    NoKernel(&'s ViewError),
    /// The kernel is there, the piece is not.
    Failed(&'s E),
}

impl<E: std::fmt::Display> std::fmt::Display for Unavailable<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::NoKernel(e) => write!(f, "no kernel: {e}"),
            Unavailable::Failed(e) => e.fmt(f),
        }
    }
}

/// One dump under analysis.
pub struct Session<'a> {
    core: &'a Core,
    options: SessionOptions,
    capture: Result<Option<CaptureInfo>, String>,
    view: OnceCell<Result<KernelView<'a>, ViewError>>,
    kallsyms: OnceCell<Result<FoundKallsyms, KallsymsError>>,
    log: OnceCell<Result<KernelLog, LogError>>,
    btf: OnceCell<Result<FoundBtf, BtfError>>,
    modules: OnceCell<Result<ModuleList, ModulesError>>,
    tasks: OnceCell<Result<TaskList, TasksError>>,
    orc: OnceCell<Result<KernelOrc, OrcError>>,
}

impl<'a> Session<'a> {
    /// A session over `core`. Nothing is read from guest memory until asked for.
    pub fn new(core: &'a Core, options: SessionOptions) -> Self {
        Self {
            core,
            options,
            capture: capture_record(core),
            view: OnceCell::new(),
            kallsyms: OnceCell::new(),
            log: OnceCell::new(),
            btf: OnceCell::new(),
            modules: OnceCell::new(),
            tasks: OnceCell::new(),
            orc: OnceCell::new(),
        }
    }

    /// The dump.
    pub fn core(&self) -> &'a Core {
        self.core
    }

    /// The options it was opened with.
    pub fn options(&self) -> SessionOptions {
        self.options
    }

    /// The capture's record, when the dump is a capture and the record is readable.
    pub fn capture(&self) -> Option<&CaptureInfo> {
        self.capture.as_ref().ok().and_then(Option::as_ref)
    }

    /// Why the capture record could not be read, when it could not.
    pub fn capture_problem(&self) -> Option<&str> {
        self.capture.as_ref().err().map(String::as_str)
    }

    /// The kernel as seen from guest memory (built on first use).
    pub fn view(&self) -> Result<&KernelView<'a>, &ViewError> {
        self.view
            .get_or_init(|| {
                KernelView::build(
                    self.core.mem(),
                    &self.core.elf,
                    &Hints::for_core(self.core, self.options.ignore_vmcoreinfo),
                )
            })
            .as_ref()
    }

    /// The kernel's symbol table and how it was found (read on first use).
    pub fn kallsyms(&self) -> Result<&FoundKallsyms, Unavailable<'_, KallsymsError>> {
        let view = self.view().map_err(Unavailable::NoKernel)?;
        self.kallsyms
            .get_or_init(|| {
                view.kallsyms()
                    .map(|(table, how)| FoundKallsyms { table, how })
            })
            .as_ref()
            .map_err(Unavailable::Failed)
    }

    /// Just the symbol table, when there is one.
    pub fn symbols(&self) -> Option<&Kallsyms> {
        self.kallsyms().ok().map(|k| &k.table)
    }

    /// The kernel log (read on first use).
    pub fn kernel_log(&self) -> Result<&KernelLog, Unavailable<'_, LogError>> {
        let view = self.view().map_err(Unavailable::NoKernel)?;
        self.log
            .get_or_init(|| {
                // Without VMCOREINFO the ring's symbols come from kallsyms.
                let ks = if view.vmcoreinfo.is_none() {
                    self.symbols()
                } else {
                    None
                };
                view.kernel_log_using(ks)
            })
            .as_ref()
            .map_err(Unavailable::Failed)
    }

    /// The kernel's BTF type information (read on first use).
    pub fn btf(&self) -> Result<&FoundBtf, Unavailable<'_, BtfError>> {
        let view = self.view().map_err(Unavailable::NoKernel)?;
        self.btf
            .get_or_init(|| {
                locate_btf(
                    view,
                    self.symbols(),
                    VirtAddr(START_KERNEL + view.kaslr_offset),
                )
            })
            .as_ref()
            .map_err(Unavailable::Failed)
    }

    /// The loaded modules (read on first use; needs kallsyms and BTF).
    pub fn modules(&self) -> Result<&ModuleList, Unavailable<'_, ModulesError>> {
        let view = self.view().map_err(Unavailable::NoKernel)?;
        self.modules
            .get_or_init(|| {
                let ks = self
                    .kallsyms()
                    .map_err(|e| ModulesError::NoKallsyms(e.to_string()))?;
                let btf = self.btf().map_err(|e| ModulesError::NoBtf(e.to_string()))?;
                read_modules(view, &btf.btf, modules_head(&ks.table)?)
            })
            .as_ref()
            .map_err(Unavailable::Failed)
    }

    /// The tasks and the task of each CPU (read on first use; needs kallsyms and BTF).
    pub fn tasks(&self) -> Result<&TaskList, Unavailable<'_, TasksError>> {
        let view = self.view().map_err(Unavailable::NoKernel)?;
        self.tasks
            .get_or_init(|| {
                let ks = self
                    .kallsyms()
                    .map_err(|e| TasksError::NoKallsyms(e.to_string()))?;
                let btf = self.btf().map_err(|e| TasksError::NoBtf(e.to_string()))?;
                let symbols = TaskSymbols::from_kallsyms(&ks.table)?;
                read_tasks(view, &btf.btf, &symbols, self.core.elf.vcpus.len())
            })
            .as_ref()
            .map_err(Unavailable::Failed)
    }

    /// The kernel's ORC unwind tables, vmlinux's and the modules' (read on first use;
    /// needs kallsyms; module tables need BTF and the module list).
    pub fn orc(&self) -> Result<&KernelOrc, Unavailable<'_, OrcError>> {
        let view = self.view().map_err(Unavailable::NoKernel)?;
        self.orc
            .get_or_init(|| {
                let ks = self.symbols().ok_or(OrcError::NoSymbol("kallsyms"))?;
                KernelOrc::read(
                    view,
                    ks,
                    view.release.as_deref(),
                    self.btf().ok().map(|b| &b.btf),
                    self.modules().ok(),
                )
            })
            .as_ref()
            .map_err(Unavailable::Failed)
    }

    /// The kernel backtrace of `task` (see [`crate::backtrace::task_backtrace`]).
    pub fn backtrace_of_task(
        &self,
        task: &crate::tasks::Task,
    ) -> Result<crate::backtrace::Backtrace, String> {
        crate::backtrace::task_backtrace(self, task)
    }

    /// A kernel address as the kernel prints it: `name+0xoff/0xsize` from kallsyms, or
    /// `name+0xoff/0xsize [module]` for module code; `None` when nothing names it.
    pub fn symbolize(&self, addr: u64) -> Option<String> {
        if let Some(k) = self.symbols() {
            if k.symbolize(addr).is_some() {
                return Some(k.format_addr(addr));
            }
        }
        if addr >= MODULES_START {
            return self.modules().ok()?.format_addr(addr);
        }
        None
    }

    /// A return address as the kernel prints it in a call trace (`%pB`): named after
    /// the call before it.
    pub fn symbolize_return(&self, addr: u64) -> Option<String> {
        if let Some(k) = self.symbols() {
            if let Some(s) = k.format_return(addr) {
                return Some(s);
            }
        }
        if addr > MODULES_START {
            return self.modules().ok()?.format_return(addr);
        }
        None
    }

    /// `coroner analyze`'s report: verdict, vCPUs, log triage, with the machine-check and
    /// KVM-exit analyses when they apply.
    pub fn report(&self) -> Report {
        report(self)
    }

    /// The machine-check analysis; `qemu_log` replaces the log the capture recorded.
    pub fn mce(&self, qemu_log: Option<&LogTail>) -> MceReport {
        let mut problems = Vec::new();
        match self.view() {
            Err(e) => problems.push(format!("kernel view: {e}")),
            Ok(_) => {
                if let Err(Unavailable::Failed(e)) = self.kallsyms() {
                    problems.push(format!("kallsyms: {e}"));
                }
                if let Err(Unavailable::Failed(e)) = self.kernel_log() {
                    problems.push(format!("kernel log: {e}"));
                }
            }
        }
        let mut r = analyze_mce(self, qemu_log);
        problems.append(&mut r.problems);
        r.problems = problems;
        r
    }

    /// The KVM exit-reason analysis; `qemu_log` replaces the log the capture recorded.
    pub fn exit(&self, qemu_log: Option<&LogTail>) -> ExitReport {
        analyze_exit(Some(self), qemu_log)
    }

    /// Where vCPU `index` (of the dump's notes) stopped: mode, code at RIP, stack.
    pub fn vcpu(&self, index: usize) -> Option<VcpuContext> {
        vcpu_context(self, index)
    }
}

/// The KVM exit-reason analysis of a qemu log alone, without a dump.
pub fn exit_from_log(qemu_log: &LogTail) -> ExitReport {
    analyze_exit(None, Some(qemu_log))
}
