//! Bytes on disk: qemu's ELF cores, the `.core.zst` container, and [`PhysMem`], the one
//! way to read guest-physical memory from any of them.
//!
//! ```no_run
//! use coroner_formats::{open, PhysAddr, PhysMem};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let core = open(std::path::Path::new("vm1.core.zst"))?;
//! for vcpu in &core.elf.vcpus {
//!     println!("vCPU {}: {:?}", vcpu.index, vcpu.qemu.as_ref().map(|s| s.rip));
//! }
//! let word = core.mem().read_u64_le(PhysAddr(0x1000))?;
//! # let _ = word; Ok(()) }
//! ```
//!
//! **Architecture Invariant:** this crate knows nothing of analysis, QMP or terminals. It
//! reads and writes bytes and says exactly where they are wrong.
#![deny(missing_docs)]

mod addr;
mod convert;
mod core_file;
mod core_mem;
mod destination;
mod elf;
mod elf_writer;
mod error;
pub mod hex;
pub mod input_file;
pub mod kdump;
#[cfg(any(test, feature = "testing"))]
pub mod kdump_builder;
pub mod output_file;
mod page_spotter;
mod physmem;
mod progress;
mod recording;
mod slim;
mod source;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod zst;

pub use addr::{PhysAddr, PhysRange};
pub use convert::{
    compress_dump, compress_elf, compress_source, export_container, export_elf, Exported,
};
pub use core_file::{detect, identify, identify_file, open, open_source, Core, DumpMem, Format};
pub use core_mem::CoreMem;
pub use destination::Destination;
pub use elf::{
    ElfClass, ElfCore, HeaderLayout, LoadSegment, Machine, Note, PrStatus, QemuCpuState, Segment,
    UserRegs32, UserRegs64, Vcpu, VcpuRegs, GPR_NAMES,
};
pub use error::{Error, Result};
pub use output_file::{OutputFile, TempDir};
pub use page_spotter::{looks_like_vmcoreinfo, PageSpotter};
pub use physmem::{MemError, PhysMem, SliceMem};
pub use progress::{interrupted, NoProgress, Progress};
pub use recording::{RecordingMem, PAGE};
pub use slim::{page_runs, write_slim};
pub use source::{ByteSource, MappedFile};
pub use zst::{
    frames_blake3_of, hostname, ContainerReader, ContainerWriter, ContentDigest, Finished,
    Metadata, WriteOptions, DEFAULT_CACHE_BYTES, FORMAT_VERSION,
};
