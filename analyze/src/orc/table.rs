//! An ORC table in guest memory: `.orc_unwind_ip` (self-relative `s32` addresses, sorted)
//! and `.orc_unwind` (one 6-byte entry each), for vmlinux or for one module. Read page by
//! page as lookups need them (a lookup's binary search touches ~20 of vmlinux's ~950
//! table pages), so a backtrace reads, and a slim capture keeps, only those.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::entry::{OrcEntry, OrcFormat};
use crate::kmem::{KernelMem, VirtAddr};

/// Entries in one table at most (a distribution kernel has ~400,000).
pub const MAX_ENTRIES: u64 = 4 << 20;

const PAGE: u64 = 4096;

/// One table page, or why it could not be read.
type PageRead = Result<Rc<[u8]>, String>;

/// One ORC table.
#[derive(Clone, Debug)]
pub struct OrcTable {
    /// Address of the first `.orc_unwind_ip` slot.
    ip_base: u64,
    /// Address of the first entry.
    entry_base: u64,
    /// Number of entries.
    n: u64,
    format: OrcFormat,
    /// Table pages read so far, or why one could not be.
    pages: RefCell<HashMap<u64, PageRead>>,
}

impl OrcTable {
    /// The table of `n` entries whose ip table is at `ips` and entries at `entries`;
    /// checks that its first and last slots are readable.
    pub fn new(
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
        let t = OrcTable {
            ip_base: ips.0,
            entry_base: entries.0,
            n,
            format,
            pages: RefCell::new(HashMap::new()),
        };
        if n > 0 {
            t.ip(mem, 0)?;
            t.ip(mem, n - 1)?;
            t.entry(mem, n - 1)?;
        }
        Ok(t)
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The table page at `page`, read on first use.
    fn page(&self, mem: &dyn KernelMem, page: u64) -> Result<Rc<[u8]>, String> {
        let mut pages = self.pages.borrow_mut();
        let data = pages.entry(page).or_insert_with(|| {
            let mut buf = vec![0u8; PAGE as usize];
            mem.read_virt(VirtAddr(page), &mut buf)
                .map(|()| Rc::from(buf))
                .map_err(|e| format!("the ORC table page at {page:#x}: {e}"))
        });
        data.clone()
    }

    /// `N` bytes at `addr` (they may straddle two pages).
    fn bytes<const N: usize>(&self, mem: &dyn KernelMem, addr: u64) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        let page = addr & !(PAGE - 1);
        let within = (addr - page) as usize;
        let first = self.page(mem, page)?;
        let here = (PAGE as usize - within).min(N);
        out[..here].copy_from_slice(&first[within..within + here]);
        if here < N {
            let next = self.page(mem, page.wrapping_add(PAGE))?;
            out[here..].copy_from_slice(&next[..N - here]);
        }
        Ok(out)
    }

    /// The address entry `i` starts at.
    fn ip(&self, mem: &dyn KernelMem, i: u64) -> Result<u64, String> {
        let slot = self.ip_base.wrapping_add(4 * i);
        let rel = i32::from_le_bytes(self.bytes::<4>(mem, slot)?);
        Ok(slot.wrapping_add_signed(i64::from(rel)))
    }

    fn entry(&self, mem: &dyn KernelMem, i: u64) -> Result<OrcEntry, String> {
        let raw = self.bytes::<6>(mem, self.entry_base.wrapping_add(6 * i))?;
        Ok(self.format.decode(raw))
    }

    /// The entry that covers `ip`: the rightmost whose address is at or below it (section
    /// terminators sort first among equal addresses, so real entries win). `None` below
    /// the first entry. A corrupt (unsorted) table gives some entry, never a panic.
    pub fn find(&self, mem: &dyn KernelMem, ip: u64) -> Result<Option<OrcEntry>, String> {
        let (mut lo, mut hi) = (0u64, self.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.ip(mem, mid)? <= ip {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        match lo.checked_sub(1) {
            Some(i) => self.entry(mem, i).map(Some),
            None => Ok(None),
        }
    }

    /// The first address the table covers.
    pub fn first(&self, mem: &dyn KernelMem) -> Option<u64> {
        if self.n == 0 {
            return None;
        }
        self.ip(mem, 0).ok()
    }
}
