//! The exit reason of KVM emulation failures and entry failures: qemu's report parsed
//! from its log, decoded, and completed from the frozen guest.

mod instruction;
mod mtree;

pub use instruction::{disassemble, listing, AddrRegs, Disassembly, MemOperand};
pub use mtree::{owner, parse_mtree, FlatView, Owner, Region};
