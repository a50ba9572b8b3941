//! The machine-check record: `[Hardware Error]` groups from the kernel log, `struct mce`
//! records in guest memory, and the host's side (qemu's `MEMORY_FAILURE` events and log
//! lines), merged and decoded as `mcelog --ascii` would.

mod decode;
mod raw;

pub use decode::*;
pub use raw::MceRaw;
