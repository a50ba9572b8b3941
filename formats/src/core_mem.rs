//! [`CoreMem`]: guest-physical memory of an ELF core, over any [`ByteSource`].

use std::sync::Arc;

use crate::addr::{PhysAddr, PhysRange};
use crate::elf::LoadSegment;
use crate::physmem::{first_absent, MemError, PhysMem};
use crate::source::ByteSource;

/// Guest-physical memory backed by the PT_LOAD segments of an ELF core.
///
/// Segments that overlap in guest-physical space (aliases in a `paging=true` dump, or a
/// hostile file) are clipped: the first segment in address order wins, and
/// [`CoreMem::clipped`] counts the bytes dropped.
pub struct CoreMem {
    src: Arc<dyn ByteSource>,
    ranges: Vec<PhysRange>,
    offsets: Vec<u64>,
    clipped: u64,
}

impl CoreMem {
    /// The dump's own bytes at file `offset` (notes, headers).
    pub fn read_file(&self, offset: u64, buf: &mut [u8]) -> crate::Result<()> {
        self.src.read_at(offset, buf)
    }

    /// Memory of `loads`, whose bytes are in `src`.
    pub fn new(src: Arc<dyn ByteSource>, loads: &[LoadSegment]) -> Self {
        let mut sorted: Vec<&LoadSegment> = loads.iter().collect();
        sorted.sort_by_key(|l| (l.paddr, l.index));
        let (mut ranges, mut offsets) = (Vec::new(), Vec::new());
        let mut covered = 0u64;
        let mut clipped = 0u64;
        for l in sorted {
            let end = l.paddr.saturating_add(l.file_size);
            let start = l.paddr.max(covered);
            if start >= end {
                clipped += l.file_size;
                continue;
            }
            clipped += start - l.paddr;
            ranges.push(PhysRange {
                start: PhysAddr(start),
                end: PhysAddr(end),
            });
            offsets.push(l.offset + (start - l.paddr));
            covered = end;
        }
        Self {
            src,
            ranges,
            offsets,
            clipped,
        }
    }

    /// Bytes of overlapping segments that were dropped.
    pub fn clipped(&self) -> u64 {
        self.clipped
    }

    /// The file offset that holds guest-physical `addr`, if present.
    pub fn file_offset(&self, addr: PhysAddr) -> Option<u64> {
        let i = self.ranges.partition_point(|r| r.end <= addr);
        let r = self.ranges.get(i)?;
        r.contains(addr)
            .then(|| self.offsets[i] + (addr.0 - r.start.0))
    }
}

impl PhysMem for CoreMem {
    fn read_at(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        if let Some(missing) = first_absent(&self.ranges, addr, buf.len() as u64) {
            return Err(MemError::NotPresent { addr: missing });
        }
        let mut done = 0usize;
        while done < buf.len() {
            let at = PhysAddr(addr.0 + done as u64);
            let i = self.ranges.partition_point(|r| r.end <= at);
            let r = self.ranges[i];
            let n = ((r.end.0 - at.0) as usize).min(buf.len() - done);
            let off = self.offsets[i] + (at.0 - r.start.0);
            self.src
                .read_at(off, &mut buf[done..done + n])
                .map_err(|source| MemError::Read { addr: at, source })?;
            done += n;
        }
        Ok(())
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }

    fn zero_run_end(&self, addr: PhysAddr) -> Option<PhysAddr> {
        let i = self.ranges.partition_point(|r| r.end <= addr);
        let r = self.ranges.get(i)?;
        if !r.contains(addr) {
            return None;
        }
        let off = self.offsets[i] + (addr.0 - r.start.0);
        let end = self.src.zero_run_end(off)?;
        let len = end.checked_sub(off).filter(|&n| n > 0)?;
        Some(PhysAddr(addr.0.saturating_add(len).min(r.end.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(index: usize, paddr: u64, offset: u64, size: u64) -> LoadSegment {
        LoadSegment {
            index,
            paddr,
            vaddr: paddr,
            offset,
            file_size: size,
            mem_size: size,
        }
    }

    #[test]
    fn maps_addresses_to_file_offsets_and_clips_overlaps() {
        let file: Vec<u8> = (0..=255u8).cycle().take(0x300).collect();
        let loads = [
            seg(1, 0x1000, 0x100, 0x100),
            seg(0, 0x0, 0x0, 0x100),
            seg(2, 0x1080, 0x200, 0x100), // overlaps the first by 0x80
        ];
        let m = CoreMem::new(Arc::new(file), &loads);
        assert_eq!(m.ranges().len(), 3);
        assert_eq!(m.clipped(), 0x80);
        assert_eq!(m.file_offset(PhysAddr(0x1010)), Some(0x110));
        assert_eq!(m.file_offset(PhysAddr(0x1100)), Some(0x280));
        assert_eq!(m.file_offset(PhysAddr(0x500)), None);
        let mut b = [0u8; 2];
        m.read_at(PhysAddr(0x10ff), &mut b).unwrap();
        assert_eq!(b, [0xff, 0x80]);
        assert!(matches!(
            m.read_at(PhysAddr(0xff), &mut b),
            Err(MemError::NotPresent { addr }) if addr == PhysAddr(0x100)
        ));
    }
}
