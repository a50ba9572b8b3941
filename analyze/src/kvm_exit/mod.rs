//! The exit reason of KVM emulation failures and entry failures: qemu's report parsed
//! from its log, decoded, and completed from the frozen guest.

mod analysis;
mod emulator;
mod entry_failure;
mod event_info;
mod exit_data;
mod instruction;
mod mtree;
mod pc_layout;
mod qemu_report;
mod regdump;
mod suberror;
mod svm_exit;
mod vm_instruction_error;
mod vmx_exit;

pub(crate) use analysis::analyze_exit;
pub use analysis::{ExitReport, InstructionFacts, ModeFacts, OperandFacts, RegisterAddress};
pub use emulator::EmulatorSupport;
pub use entry_failure::EntryFailure;
pub use event_info::EventInfo;
pub use exit_data::{DataField, DecodedData};
pub use instruction::{hex_bytes, listing, AddrRegs, Disassembly, MemOperand};
pub use mtree::{owner, parse_mtree, FlatView, Owner, Region};
pub use qemu_report::{parse_qemu_log, DataFormat, QemuReport, ReportKind};
pub use regdump::{CodeBytes, RegDump, Segment as DumpSegment};
pub use suberror::Suberror;
pub use vmx_exit::VmxExitReason;
