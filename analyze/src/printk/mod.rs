//! The kernel log (`dmesg`), read out of guest memory with no debuginfo.
//!
//! [`read_kernel_log`] picks the reader by which VMCOREINFO keys exist:
//!
//! | keys | kernels | reader |
//! |---|---|---|
//! | `SYMBOL(prb)` | 5.10+ | lockless `printk_ringbuffer` (`lockless.rs`) |
//! | `SYMBOL(log_buf)` + `SYMBOL(log_first_idx)` | 3.5–5.9 | structured `log_buf` (`structured.rs`) |
//! | `SYMBOL(log_buf)` + `SYMBOL(log_end)` | < 3.5 | plain text `log_buf` (`plain.rs`) |
//!
//! [`format_dmesg`] prints records the way the kernel console does (`format.rs`).
//!
//! Rules: every number read from the guest is hostile. Sizes are capped before anything is
//! allocated, every walk has a step bound, and nothing here can panic or loop forever on a
//! lying ring. Damage that leaves the rest of the ring readable is reported in
//! [`KernelLog::diagnostics`] (each with a fixed context string) instead of failing the read.

mod bytes;
mod error;
mod format;
mod levels;
mod lockless;
mod plain;
mod record;
mod structured;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod testutil;

pub use error::LogError;
pub use format::{format_dmesg, FormatOptions};
pub use levels::{BadLevel, LogLevels};
pub use record::{KernelLog, LogKind, LogRecord};

use crate::kmem::KernelMem;
use crate::vmcoreinfo::Vmcoreinfo;

/// The largest text buffer read (any ring, any kernel): 128 MiB.
pub(crate) const MAX_TEXT_BYTES: u64 = 128 << 20;

/// Reads the whole kernel log of the guest, choosing the reader by the VMCOREINFO keys
/// present (see the module documentation).
///
/// Damage inside the ring (half-written records, overwritten descriptors, lying lengths)
/// gives the readable records plus [`KernelLog::diagnostics`]; an error means nothing could
/// be read: no log symbol, an unreadable ring header, or absurd ring geometry.
pub fn read_kernel_log(mem: &dyn KernelMem, vmci: &Vmcoreinfo) -> Result<KernelLog, LogError> {
    if let Some(prb) = vmci.symbol("prb") {
        return lockless::read(mem, vmci, prb);
    }
    if let Some(log_buf) = vmci.symbol("log_buf") {
        if vmci.symbol("log_first_idx").is_some() {
            return structured::read(mem, vmci, log_buf);
        }
        if vmci.symbol("log_end").is_some() {
            return plain::read(mem, vmci, log_buf);
        }
    }
    Err(LogError::NoLogSymbols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmem::SliceKernelMem;

    #[test]
    fn no_symbols_is_a_typed_error() {
        let mem = SliceKernelMem::new(vec![]);
        let v =
            Vmcoreinfo::parse("OSRELEASE=6.1.0\nPAGESIZE=4096\nSYMBOL(log_buf)=ffffffff81000000\n");
        assert_eq!(read_kernel_log(&mem, &v), Err(LogError::NoLogSymbols));
    }
}
