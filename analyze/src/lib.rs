//! Turning guest memory and vCPU state into meaning. Pure: given a dump, returns data.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let core = coroner_formats::open(std::path::Path::new("vm1.core.zst"))?;
//! let summary = coroner_analyze::Inspection::of(&core);
//! for v in &summary.vcpus {
//!     println!("vCPU {}: {:?}", v.index, v.mode.as_ref().map(|m| m.mode.name()));
//! }
//! # Ok(()) }
//! ```
//!
//! **Architecture Invariant:** `analyze` never opens a file, socket or terminal; it reads
//! memory only through [`coroner_formats::PhysMem`].
#![deny(missing_docs)]

pub mod backtrace;
mod btf;
mod capture_record;
mod cpu_mode;
mod escape;
mod inspect;
mod kallsyms;
mod kernel_view;
mod kmem;
mod kvm_exit;
mod mce;
pub mod modules;
pub mod orc;
mod paging;
mod panic_cpu;
mod printk;
mod report;
mod session;
mod signature;
pub mod stacks;
pub mod stuck;
pub mod tasks;
mod time;
pub mod title;
mod triage;
mod vcpu_context;
mod vmcoreinfo;
mod vmcoreinfo_pointers;
mod vmcoreinfo_scan;
pub mod x86;

pub use btf::{Btf, BtfError, Field, FoundBtf, LayoutError, TypeId};
pub use capture_record::capture_record;
pub use coroner_record::LogTail;
pub use cpu_mode::{cpu_mode, CpuMode, ModeInfo, Paging};
pub use escape::{escape_control, escape_short};
pub use inspect::{Inspection, RangeSummary, VcpuSummary, VmcoreinfoSummary};
pub use kallsyms::{
    AddressEncoding, FoundBy, Kallsyms, KallsymsError, KallsymsInfo, NameLengths, RejectReason,
    Rejection, ScanStep, Symbol, TableOrder,
};
pub use kernel_view::{Evidence, Hints, KernelView, ViewError};
pub use kmem::{KernelMem, SliceKernelMem, VirtAddr, XlateError};
pub use kvm_exit::*;
pub use mce::*;
pub use modules::{Module, ModuleList, ModuleSymbol, ModulesError};
pub use paging::{PageTables, Translation};
pub use panic_cpu::{PanicCpu, PanicCpuSource};
pub use printk::{
    format_dmesg, read_kernel_log, BadLevel, FormatOptions, KernelLog, LogError, LogKind,
    LogLevels, LogRecord,
};
pub use report::{Report, TasksSummary, VcpuAt};
pub use session::{exit_from_log, FoundKallsyms, Session, SessionOptions, Unavailable};
pub use signature::{guest_name, sign};
pub use tasks::{Current, Task, TaskList, TasksError};
pub use time::{format_rfc3339_micros, format_rfc3339_seconds};
pub use triage::{triage, CallTrace, Finding, Triage};
pub use vcpu_context::VcpuContext;
pub use vmcoreinfo::Vmcoreinfo;
