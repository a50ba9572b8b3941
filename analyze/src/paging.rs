//! x86_64 address translation from a physical dump: 4- and 5-level page walks from a
//! page-table root, with 2 MiB and 1 GiB pages and the memory-encryption bit cleared.
//!
//! A walk reads at most one entry per level, so no page-table content (cyclic, lying)
//! can make it loop.

use coroner_formats::{MemError, PhysAddr, PhysMem};
use serde::Serialize;

use crate::kmem::{KernelMem, VirtAddr, XlateError};
use crate::x86::PHYS_ADDR_MASK;

const PRESENT: u64 = 1;
const PAGE_SIZE_BIT: u64 = 1 << 7;
/// Physical-address bits of an entry (bits 12..51).
/// The kernel image mapping: `pa = va - START_KERNEL_MAP + phys_base`.
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// End of the kernel image mapping region (1 GiB with KASLR).
pub const KERNEL_MAP_END: u64 = 0xffff_ffff_c000_0000;

/// Where module memory starts (`MODULES_VADDR`): right after the kernel image mapping.
pub const MODULES_START: u64 = KERNEL_MAP_END;

/// What a translation found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Translation {
    /// The guest-physical address.
    pub pa: PhysAddr,
    /// Size of the page that maps it: 4 KiB, 2 MiB or 1 GiB.
    pub page_size: u64,
}

/// A page-table hierarchy in guest-physical memory.
pub struct PageTables<'a> {
    mem: &'a dyn PhysMem,
    root: PhysAddr,
    five_level: bool,
    addr_mask: u64,
}

impl<'a> PageTables<'a> {
    /// Tables rooted at `root` (a PML4 or PML5 page). `sme_mask` is the memory-encryption
    /// bit (`NUMBER(sme_mask)`), cleared from every entry; 0 when none.
    pub fn new(mem: &'a dyn PhysMem, root: PhysAddr, five_level: bool, sme_mask: u64) -> Self {
        Self {
            mem,
            root: PhysAddr(root.0 & PHYS_ADDR_MASK),
            five_level,
            addr_mask: PHYS_ADDR_MASK & !sme_mask,
        }
    }

    /// The root table's address.
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    fn canonical(&self, va: u64) -> bool {
        let bits = if self.five_level { 57 } else { 48 };
        let top = (va as i64) >> (bits - 1);
        top == 0 || top == -1
    }

    fn entry(&self, va: VirtAddr, at: PhysAddr) -> Result<u64, XlateError> {
        self.mem.read_u64_le(at).map_err(|e| match e {
            MemError::NotPresent { .. } => XlateError::NotPresent { va, pa: at },
            other => XlateError::Read {
                va,
                pa: at,
                reason: other.to_string(),
            },
        })
    }

    /// Translates `va` by walking the tables.
    pub fn translate(&self, va: VirtAddr) -> Result<Translation, XlateError> {
        if !self.canonical(va.0) {
            return Err(XlateError::NonCanonical { va });
        }
        let mut table = self.root.0;
        let top = if self.five_level { 5u8 } else { 4 };
        for level in (1..=top).rev() {
            let shift = 12 + 9 * (u32::from(level) - 1);
            let index = (va.0 >> shift) & 0x1ff;
            let e = self.entry(va, PhysAddr(table + index * 8))?;
            if e & PRESENT == 0 {
                return Err(XlateError::NotMapped { va, level });
            }
            let large = (level == 2 || level == 3) && e & PAGE_SIZE_BIT != 0;
            if level == 1 || large {
                let size = 1u64 << shift;
                // Large pages keep the PAT bit (12) in the entry; mask by the page size.
                let base = e & self.addr_mask & !(size - 1);
                return Ok(Translation {
                    pa: PhysAddr(base | (va.0 & (size - 1))),
                    page_size: size,
                });
            }
            table = e & self.addr_mask;
        }
        Err(XlateError::NotMapped { va, level: 1 })
    }

    /// The lowest mapped address in `[start, end)`, with its translation, found by
    /// descending the tables (skipping unmapped subtrees). Bounded by the table sizes.
    pub fn lowest_mapped(&self, start: u64, end: u64) -> Option<(VirtAddr, Translation)> {
        let top = if self.five_level { 5u8 } else { 4 };
        self.lowest_in(self.root.0, top, start, end, 0)
    }

    fn lowest_in(
        &self,
        table: u64,
        level: u8,
        start: u64,
        end: u64,
        prefix: u64,
    ) -> Option<(VirtAddr, Translation)> {
        let shift = 12 + 9 * (u32::from(level) - 1);
        let span = 1u64 << shift;
        for index in 0..512u64 {
            let lo = sign_extend(prefix | (index << shift), self.five_level);
            let hi = lo.wrapping_add(span);
            if hi <= start && hi != 0 || lo >= end {
                continue;
            }
            let va = VirtAddr(lo.max(start));
            let e = self.mem.read_u64_le(PhysAddr(table + index * 8)).ok()?;
            if e & PRESENT == 0 {
                continue;
            }
            let large = (level == 2 || level == 3) && e & PAGE_SIZE_BIT != 0;
            if level == 1 || large {
                return self.translate(va).ok().map(|t| (va, t));
            }
            if let Some(found) = self.lowest_in(
                e & self.addr_mask,
                level - 1,
                start,
                end,
                prefix | (index << shift),
            ) {
                return Some(found);
            }
        }
        None
    }
}

fn sign_extend(va: u64, five_level: bool) -> u64 {
    let bits = if five_level { 57 } else { 48 };
    (((va << (64 - bits)) as i64) >> (64 - bits)) as u64
}

impl KernelMem for PageTables<'_> {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> Result<(), XlateError> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = va.add(done as u64);
            let t = self.translate(at)?;
            let in_page = (t.page_size - (at.0 & (t.page_size - 1))).min(4096 - (at.0 & 0xfff));
            let n = (in_page as usize).min(buf.len() - done);
            self.mem
                .read_at(t.pa, &mut buf[done..done + n])
                .map_err(|e| match e {
                    MemError::NotPresent { addr } => XlateError::NotPresent { va: at, pa: addr },
                    other => XlateError::Read {
                        va: at,
                        pa: t.pa,
                        reason: other.to_string(),
                    },
                })?;
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coroner_formats::SliceMem;

    /// Builds tables in a small physical memory: root at 0x1000.
    struct Builder {
        pages: Vec<(u64, [u64; 512])>,
        next: u64,
    }

    impl Builder {
        fn new() -> Self {
            Self {
                pages: vec![(0x1000, [0; 512])],
                next: 0x2000,
            }
        }
        fn table(&mut self, at: u64) -> &mut [u64; 512] {
            let i = self.pages.iter().position(|(a, _)| *a == at).unwrap();
            &mut self.pages[i].1
        }
        fn alloc(&mut self) -> u64 {
            let a = self.next;
            self.next += 0x1000;
            self.pages.push((a, [0; 512]));
            a
        }
        /// Maps `va` with a page of `size` (4K, 2M, 1G) at `pa` in a 4- or 5-level tree.
        fn map(&mut self, va: u64, pa: u64, size: u64, levels: u8) {
            let mut table = 0x1000;
            for level in (1..=levels).rev() {
                let shift = 12 + 9 * (u32::from(level) - 1);
                let idx = ((va >> shift) & 0x1ff) as usize;
                if 1u64 << shift == size {
                    let ps = if size > 4096 { PAGE_SIZE_BIT } else { 0 };
                    self.table(table)[idx] = pa | PRESENT | ps | 2;
                    return;
                }
                let e = self.table(table)[idx];
                table = if e & PRESENT != 0 {
                    e & PHYS_ADDR_MASK
                } else {
                    let t = self.alloc();
                    self.table(table)[idx] = t | PRESENT | 2;
                    t
                };
            }
        }
        fn mem(&self, data: Vec<(u64, Vec<u8>)>) -> SliceMem {
            let mut pieces: Vec<(PhysAddr, Vec<u8>)> = self
                .pages
                .iter()
                .map(|(a, t)| {
                    (
                        PhysAddr(*a),
                        t.iter().flat_map(|e| e.to_le_bytes()).collect(),
                    )
                })
                .collect();
            pieces.extend(data.into_iter().map(|(a, d)| (PhysAddr(a), d)));
            SliceMem::new(pieces)
        }
    }

    #[test]
    fn walks_4k_2m_and_1g_pages_in_4_and_5_levels() {
        for levels in [4u8, 5] {
            let mut b = Builder::new();
            let ktext = 0xffff_ffff_9a00_0000u64;
            let direct = if levels == 5 {
                0xff11_0000_0000_0000
            } else {
                0xffff_8880_0000_0000
            };
            b.map(ktext, 0x20_0000, 0x20_0000, levels);
            b.map(direct, 0x4000_0000, 0x4000_0000, levels);
            b.map(0xffff_c900_0000_1000, 0x80_0000, 0x1000, levels);
            let m = b.mem(vec![
                (0x20_0000, vec![0xaa; 0x20_0000]),
                (0x80_0000, b"hello".to_vec()),
            ]);
            let pt = PageTables::new(&m, PhysAddr(0x1000 | 0x5), levels == 5, 0);
            let t = pt.translate(VirtAddr(ktext + 0x1234)).unwrap();
            assert_eq!((t.pa, t.page_size), (PhysAddr(0x20_1234), 0x20_0000));
            let t = pt.translate(VirtAddr(direct + 0x123_4567)).unwrap();
            assert_eq!((t.pa, t.page_size), (PhysAddr(0x4123_4567), 0x4000_0000));
            let mut buf = [0u8; 5];
            pt.read_virt(VirtAddr(0xffff_c900_0000_1000), &mut buf)
                .unwrap();
            assert_eq!(&buf, b"hello");
            assert!(matches!(
                pt.translate(VirtAddr(0xffff_c900_0000_3000)),
                Err(XlateError::NotMapped { level: 1, .. })
            ));
            // Mapped, but the page is not in the dump.
            assert!(matches!(
                pt.read_virt(VirtAddr(direct + 0x10), &mut buf),
                Err(XlateError::NotPresent { .. })
            ));
            let (va, t) = pt.lowest_mapped(START_KERNEL_MAP, KERNEL_MAP_END).unwrap();
            assert_eq!((va.0, t.pa), (ktext, PhysAddr(0x20_0000)));
        }
    }

    #[test]
    fn non_canonical_and_sme_bit() {
        let mut b = Builder::new();
        let sme = 1u64 << 47;
        b.map(0xffff_8880_0000_0000, 0x3000 | sme, 0x1000, 4);
        let m = b.mem(vec![(0x3000, vec![7; 16])]);
        let pt = PageTables::new(&m, PhysAddr(0x1000), false, sme);
        assert_eq!(
            pt.translate(VirtAddr(0xffff_8880_0000_0008)).unwrap().pa,
            PhysAddr(0x3008)
        );
        assert!(matches!(
            pt.translate(VirtAddr(0x0000_8000_0000_0000)),
            Err(XlateError::NonCanonical { .. })
        ));
    }

    #[test]
    fn cyclic_tables_cannot_loop() {
        // Every entry of the root points back at the root.
        let mut b = Builder::new();
        for e in b.table(0x1000).iter_mut() {
            *e = 0x1000 | PRESENT;
        }
        let m = b.mem(vec![]);
        let pt = PageTables::new(&m, PhysAddr(0x1000), false, 0);
        // The walk ends after four levels with the root page read as data.
        let t = pt.translate(VirtAddr(0xffff_ffff_8100_0000)).unwrap();
        assert_eq!(t.pa, PhysAddr(0x1000));
        assert!(pt.lowest_mapped(START_KERNEL_MAP, KERNEL_MAP_END).is_some());
    }
}
