//! The machine-check record: `[Hardware Error]` groups from the kernel log, `struct mce`
//! records in guest memory, and the host's side (qemu's `MEMORY_FAILURE` events and log
//! lines), merged and decoded as `mcelog --ascii` would.

mod analysis;
mod decode;
mod host;
mod log;
mod memory;
mod page;
mod raw;
mod rendezvous;

pub(crate) use analysis::analyze_mce;
pub use analysis::{title as mce_title, MceRecord, MceReport, MemoryFailure, RecordSource};
pub use decode::*;
pub use host::{log_lines as host_mce_lines, HostEvent, HostLine, HostLineKind, HostSide};
pub use log::{from_log as kernel_mce_lines, KernelLine, LineKind, LogMce, LogPlace};
pub use memory::{from_memory as mce_from_memory, parse_struct_mce, MemMce, MemPlace};
pub use page::PageOwner;
pub use raw::MceRaw;
pub use rendezvous::Rendezvous;
