//! Reading kernel virtual memory: [`VirtAddr`], the [`KernelMem`] trait, and its errors.
//!
//! Every reader of kernel data structures (printk rings, kallsyms, MCE records) works on a
//! `&dyn KernelMem`, so it can be tested on synthetic memory ([`SliceKernelMem`]) and run
//! on a real dump through the page tables (`crate::paging`).

use std::fmt;

use coroner_formats::PhysAddr;

/// A kernel virtual address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
#[serde(transparent)]
pub struct VirtAddr(#[serde(with = "coroner_formats::hex")] pub u64);

impl VirtAddr {
    /// The address `n` bytes further on (wrapping, as pointer arithmetic in the kernel).
    #[allow(clippy::should_implement_trait)] // wrapping on purpose, unlike `Add`
    pub fn add(self, n: u64) -> VirtAddr {
        VirtAddr(self.0.wrapping_add(n))
    }
}

impl fmt::Display for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

impl fmt::LowerHex for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

/// Why a kernel virtual address could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XlateError {
    /// The address is not canonical for the paging mode.
    #[error("{va} is not a canonical address")]
    NonCanonical {
        /// The address.
        va: VirtAddr,
    },
    /// The page tables do not map the address.
    #[error("{va} is not mapped (no present entry at page-table level {level})")]
    NotMapped {
        /// The address.
        va: VirtAddr,
        /// The level whose entry is not present (5 = PML5 ... 1 = PTE).
        level: u8,
    },
    /// The address maps to guest-physical memory the dump does not hold (a hole, a page
    /// a slim capture dropped), or a page-table page itself is absent.
    #[error("{va} maps to guest-physical {pa}, which is not in the dump")]
    NotPresent {
        /// The address.
        va: VirtAddr,
        /// The guest-physical address that is absent.
        pa: PhysAddr,
    },
    /// The dump could not be read (I/O error, corrupt frame).
    #[error("cannot read guest-physical {pa} for {va}: {reason}")]
    Read {
        /// The address.
        va: VirtAddr,
        /// The guest-physical address.
        pa: PhysAddr,
        /// The underlying error, as text.
        reason: String,
    },
    /// A read asked for more bytes than any kernel structure this crate reads.
    #[error("refusing to read {len} bytes at {va} (limit {limit})")]
    TooLarge {
        /// The address.
        va: VirtAddr,
        /// Bytes asked for.
        len: u64,
        /// The limit.
        limit: u64,
    },
}

/// Kernel virtual memory of the guest, readable from several threads.
pub trait KernelMem: Send + Sync {
    /// Fills `buf` with the bytes at `va`; a read may cross page boundaries.
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> Result<(), XlateError>;

    /// Reads a little-endian u64.
    fn read_u64(&self, va: VirtAddr) -> Result<u64, XlateError> {
        let mut b = [0u8; 8];
        self.read_virt(va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads a little-endian u32.
    fn read_u32(&self, va: VirtAddr) -> Result<u32, XlateError> {
        let mut b = [0u8; 4];
        self.read_virt(va, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a little-endian u16.
    fn read_u16(&self, va: VirtAddr) -> Result<u16, XlateError> {
        let mut b = [0u8; 2];
        self.read_virt(va, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Reads `len` bytes into a new vector, refusing more than `limit` (a length read
    /// from guest memory is never trusted for an allocation).
    fn read_vec(&self, va: VirtAddr, len: u64, limit: u64) -> Result<Vec<u8>, XlateError> {
        if len > limit {
            return Err(XlateError::TooLarge { va, len, limit });
        }
        let mut v = vec![0u8; len as usize];
        self.read_virt(va, &mut v)?;
        Ok(v)
    }
}

/// Kernel memory held in memory: `(start, bytes)` pieces, for tests.
#[derive(Clone, Debug, Default)]
pub struct SliceKernelMem {
    pieces: Vec<(u64, Vec<u8>)>,
}

impl SliceKernelMem {
    /// Builds from pieces; they must not overlap.
    pub fn new(mut pieces: Vec<(VirtAddr, Vec<u8>)>) -> Self {
        pieces.sort_by_key(|(a, _)| *a);
        Self {
            pieces: pieces.into_iter().map(|(a, d)| (a.0, d)).collect(),
        }
    }
}

impl KernelMem for SliceKernelMem {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> Result<(), XlateError> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = va.0.wrapping_add(done as u64);
            let piece = self
                .pieces
                .iter()
                .find(|(s, d)| *s <= at && at - *s < d.len() as u64);
            let Some((start, data)) = piece else {
                return Err(XlateError::NotMapped {
                    va: VirtAddr(at),
                    level: 1,
                });
            };
            let off = (at - start) as usize;
            let n = (data.len() - off).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&data[off..off + n]);
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_memory_reads_across_pieces_and_reports_holes() {
        let m = SliceKernelMem::new(vec![
            (VirtAddr(0x1000), vec![1, 2, 3, 4]),
            (VirtAddr(0x1004), vec![5, 6]),
        ]);
        assert_eq!(m.read_u32(VirtAddr(0x1002)).unwrap(), 0x0605_0403);
        assert!(matches!(
            m.read_u16(VirtAddr(0x1005)),
            Err(XlateError::NotMapped {
                va: VirtAddr(0x1006),
                ..
            })
        ));
        assert!(matches!(
            m.read_vec(VirtAddr(0x1000), 1 << 40, 1 << 20),
            Err(XlateError::TooLarge { .. })
        ));
    }
}
