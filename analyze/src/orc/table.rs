//! An ORC table in guest memory: `.orc_unwind_ip` (self-relative `s32` addresses, sorted)
//! and `.orc_unwind` (one 6-byte entry each), for vmlinux or for one module.

use super::entry::{OrcEntry, OrcFormat};
use crate::kmem::{KernelMem, VirtAddr};

/// Entries read at most from one table (a distribution kernel has ~400,000).
pub const MAX_ENTRIES: u64 = 4 << 20;

/// One ORC table, read whole.
#[derive(Clone, Debug)]
pub struct OrcTable {
    /// Address of the first `.orc_unwind_ip` slot.
    ip_base: u64,
    /// The self-relative offsets.
    ips: Vec<i32>,
    /// The entries, 6 bytes each.
    entries: Vec<u8>,
    format: OrcFormat,
}

impl OrcTable {
    /// Reads `n` entries: the ip table at `ips`, the entries at `entries`.
    pub fn read(
        mem: &dyn KernelMem,
        ips: VirtAddr,
        entries: VirtAddr,
        n: u64,
        format: OrcFormat,
    ) -> Result<OrcTable, String> {
        if n > MAX_ENTRIES {
            return Err(format!(
                "{n} ORC entries at {:#x}, more than the {MAX_ENTRIES} read at most",
                ips.0
            ));
        }
        let raw_ips = mem
            .read_vec(ips, n * 4, MAX_ENTRIES * 4)
            .map_err(|e| format!("the ORC ip table at {:#x}: {e}", ips.0))?;
        let raw_entries = mem
            .read_vec(entries, n * 6, MAX_ENTRIES * 6)
            .map_err(|e| format!("the ORC entries at {:#x}: {e}", entries.0))?;
        Ok(OrcTable {
            ip_base: ips.0,
            ips: raw_ips
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            entries: raw_entries,
            format,
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ips.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
    }

    /// The address entry `i` starts at.
    fn ip(&self, i: usize) -> u64 {
        self.ip_base
            .wrapping_add(4 * i as u64)
            .wrapping_add_signed(i64::from(self.ips[i]))
    }

    /// The entry that covers `ip`: the rightmost whose address is at or below it (section
    /// terminators sort first among equal addresses, so real entries win). `None` below
    /// the first entry.
    pub fn find(&self, ip: u64) -> Option<OrcEntry> {
        let n = self.ips.len();
        // The table is sorted; partition_point needs the predicate monotone, which a
        // corrupt table may break: the answer is then some entry, never a panic.
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.ip(mid) <= ip {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let i = lo.checked_sub(1)?;
        let raw = self.entries.get(6 * i..6 * i + 6)?;
        let mut b = [0u8; 6];
        b.copy_from_slice(raw);
        Some(self.format.decode(b))
    }

    /// The first and last addresses the table covers.
    pub fn span(&self) -> Option<(u64, u64)> {
        Some((self.ip(0), self.ip(self.ips.len().checked_sub(1)?)))
    }
}
