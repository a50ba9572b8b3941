//! The exit reason of KVM emulation failures and entry failures: qemu's report parsed
//! from its log, decoded, and completed from the frozen guest.

mod analysis;
mod codes;
mod emulator;
mod instruction;
mod mtree;
mod pc_layout;
mod qemu_report;
mod regdump;

pub(crate) use analysis::analyze_exit;
pub use analysis::{ExitReport, InstructionFacts, ModeFacts, OperandFacts, RegisterAddress};
pub use codes::{
    decode_data, entry_failure, event_info, suberror, svm_exit_code, vm_instruction_error,
    vmx_exit_reason, DataField, DecodedData, EntryFailure, EventInfo, Suberror, VmxExitReason,
};
pub use emulator::{kvm_emulator_support, EmulatorSupport};
pub use instruction::{disassemble, hex_bytes, listing, AddrRegs, Disassembly, MemOperand};
pub use mtree::{owner, parse_mtree, FlatView, Owner, Region};
pub use pc_layout::{pc_owner, pc_range, PcRange, PC_MMIO};
pub use qemu_report::{parse_qemu_log, DataFormat, QemuReport, ReportKind};
pub use regdump::{CodeBytes, RegDump, Segment as DumpSegment};
