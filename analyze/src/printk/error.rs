//! Why no kernel log could be read at all.

use crate::kmem::{VirtAddr, XlateError};

/// Why [`crate::printk::read_kernel_log`] read no record.
///
/// Damage inside an otherwise readable ring is not an error: it is a diagnostic of the
/// returned [`crate::printk::KernelLog`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// VMCOREINFO names no log buffer (`SYMBOL(prb)`, or `SYMBOL(log_buf)` with
    /// `SYMBOL(log_first_idx)` or `SYMBOL(log_end)`).
    #[error("no kernel log symbol in VMCOREINFO (need SYMBOL(prb) or SYMBOL(log_buf))")]
    NoLogSymbols,
    /// VMCOREINFO names the log buffer but not a variable the reader needs.
    #[error("VMCOREINFO has no {key}")]
    MissingKey {
        /// The key (`"SYMBOL(log_buf_len)"`).
        key: &'static str,
    },
    /// A variable or array of the log could not be read.
    #[error("cannot read {what}")]
    Read {
        /// What was being read (`"prb"`, `"printk_ringbuffer.desc_ring"`, `"log_buf text"`).
        what: &'static str,
        /// The translation or read failure, with the address.
        #[source]
        source: XlateError,
    },
    /// A size or count read from the guest is outside what any kernel uses.
    #[error("{what} is {value}, outside {min}..={max}")]
    OutOfRange {
        /// The field (`"prb_desc_ring.count_bits"`, `"log_buf_len"`).
        what: &'static str,
        /// The value found.
        value: u64,
        /// The smallest accepted value.
        min: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// Neither candidate offset of `printk_ringbuffer.text_data_ring` (+40, +48) holds a
    /// data ring (`size_bits == count_bits + 5` and a kernel pointer for `data`).
    #[error("no text data ring in the printk_ringbuffer at {ringbuffer} (count_bits {count_bits}; tried +40 and +48)")]
    NoTextRing {
        /// The `printk_ringbuffer`.
        ringbuffer: VirtAddr,
        /// Its `desc_ring.count_bits`.
        count_bits: u32,
    },
}
