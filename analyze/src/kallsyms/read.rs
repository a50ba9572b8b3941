//! Bounded reads of guest memory: chunked, tolerant of holes, never larger than asked.

use crate::kmem::{KernelMem, VirtAddr, XlateError};

/// Bytes read per call to [`KernelMem::read_virt`] when sweeping large ranges.
pub(crate) const CHUNK: u64 = 1 << 20;

/// The granularity at which an unreadable chunk is retried.
const PAGE: u64 = 4096;

/// Reads up to `len` bytes from `va`, stopping at the first byte that cannot be read.
///
/// Returns the readable prefix and, when it is shorter than `len`, the error that stopped
/// it. `len` must already be capped by the caller: this allocates up to `len` bytes.
pub(crate) fn read_prefix(
    mem: &dyn KernelMem,
    va: VirtAddr,
    len: u64,
) -> (Vec<u8>, Option<XlateError>) {
    let mut out = Vec::new();
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK);
        let at = va.add(done);
        match read_chunk(mem, at, n, &mut out) {
            Ok(()) => done += n,
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// Reads the longest readable stretch of `[va, va + len)` that ends at `va + len`.
///
/// Returns where that stretch starts and its bytes. Unreadable pages before it are skipped.
pub(crate) fn read_suffix(mem: &dyn KernelMem, va: VirtAddr, len: u64) -> (VirtAddr, Vec<u8>) {
    let mut out = Vec::new();
    let mut start = va;
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK);
        let at = va.add(done);
        let before = out.len();
        match read_chunk(mem, at, n, &mut out) {
            Ok(()) => done += n,
            Err(_) => {
                // `read_chunk` kept the readable pages of this chunk up to the hole; drop
                // everything up to and including the failed page and go on after it.
                let good = (out.len() - before) as u64;
                let hole = va.add(done + good).0;
                let skip = (PAGE - hole % PAGE).min(len - done - good);
                let resume = done + good + skip;
                out.clear();
                start = va.add(resume);
                done = resume;
            }
        }
    }
    (start, out)
}

/// Appends `n` bytes at `va` to `out`; on a failure, appends the readable pages before the
/// hole and returns the error.
fn read_chunk(
    mem: &dyn KernelMem,
    va: VirtAddr,
    n: u64,
    out: &mut Vec<u8>,
) -> Result<(), XlateError> {
    // An absent first byte (a hole) costs no allocation.
    mem.read_virt(va, &mut [0u8; 1])?;
    let base = out.len();
    out.resize(base + n as usize, 0);
    if mem.read_virt(va, &mut out[base..]).is_ok() {
        return Ok(());
    }
    // Retry page by page (the first piece up to a page boundary) to keep what is readable.
    let mut done = 0u64;
    while done < n {
        let at = va.add(done);
        let to_boundary = PAGE - (at.0 % PAGE);
        let step = to_boundary.min(n - done);
        let lo = base + done as usize;
        let hi = lo + step as usize;
        if let Err(e) = mem.read_virt(at, &mut out[lo..hi]) {
            // Keep the readable start of the piece (memory that is not page-granular).
            let (mut ok, mut bad) = (0usize, hi - lo);
            while bad - ok > 1 {
                let mid = (ok + bad) / 2;
                if mem.read_virt(at, &mut out[lo..lo + mid]).is_ok() {
                    ok = mid;
                } else {
                    bad = mid;
                }
            }
            out.truncate(lo + ok);
            return Err(e);
        }
        done += step;
    }
    Ok(())
}

/// A run of bytes read from guest memory, addressed by virtual address.
#[derive(Clone, Debug, Default)]
pub(crate) struct Window {
    /// The address of `data[0]`.
    pub base: u64,
    /// The bytes.
    pub data: Vec<u8>,
}

impl Window {
    /// The window over `[va, va + data.len())`.
    pub fn new(va: VirtAddr, data: Vec<u8>) -> Self {
        Self { base: va.0, data }
    }

    /// One past the last address held.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.data.len() as u64)
    }

    /// The `len` bytes at `va`, if all are held.
    pub fn slice(&self, va: u64, len: u64) -> Option<&[u8]> {
        let off = va.checked_sub(self.base)?;
        let end = off.checked_add(len)?;
        if end > self.data.len() as u64 {
            return None;
        }
        self.data.get(off as usize..end as usize)
    }

    /// The little-endian u32 at `va`.
    pub fn u32(&self, va: u64) -> Option<u32> {
        let b = self.slice(va, 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The little-endian u64 at `va`.
    pub fn u64(&self, va: u64) -> Option<u64> {
        let b = self.slice(va, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }
}

/// `v` rounded up to a multiple of 8 (the `ALGN` of `scripts/kallsyms.c` on 64-bit).
pub(crate) fn align8(v: u64) -> u64 {
    v.saturating_add(7) & !7
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmem::SliceKernelMem;

    #[test]
    fn prefix_stops_at_a_hole_and_suffix_starts_after_it() {
        let mem = SliceKernelMem::new(vec![
            (VirtAddr(0x10000), vec![1u8; 0x3000]),
            (VirtAddr(0x14000), vec![2u8; 0x2000]),
        ]);
        let (p, e) = read_prefix(&mem, VirtAddr(0x10000), 0x6000);
        assert_eq!(p.len(), 0x3000);
        assert!(matches!(
            e,
            Some(XlateError::NotMapped {
                va: VirtAddr(0x13000),
                ..
            })
        ));
        let (start, s) = read_suffix(&mem, VirtAddr(0x10000), 0x6000);
        assert_eq!(start, VirtAddr(0x14000));
        assert_eq!(s, vec![2u8; 0x2000]);
        let (p, e) = read_prefix(&mem, VirtAddr(0x14000), 0x1000);
        assert_eq!((p.len(), e), (0x1000, None));
    }

    #[test]
    fn window_reads_only_what_it_holds() {
        let w = Window::new(VirtAddr(100), vec![1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(w.u32(100), Some(1));
        assert_eq!(w.u64(100), Some(0x2_0000_0001));
        assert_eq!(w.u32(105), None);
        assert_eq!(w.u32(99), None);
        assert_eq!(w.slice(u64::MAX, 2), None);
        assert_eq!(align8(9), 16);
        assert_eq!(align8(16), 16);
    }
}
