//! Finding the guest's VMCOREINFO in RAM when the dump has no note: the kernel keeps the
//! text in a page-aligned data page (starting `OSRELEASE=`) and a page-aligned ELF note
//! (`n_namesz` 11, `VMCOREINFO\0`). Only page starts are looked at.

use coroner_formats::{PhysAddr, PhysMem};
use serde::Serialize;

use crate::vmcoreinfo::Vmcoreinfo;

/// Where a candidate was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CandidateKind {
    /// The `vmcoreinfo_data` page.
    DataPage,
    /// The `vmcoreinfo_note` ELF note.
    Note,
}

/// A VMCOREINFO text found in RAM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// Guest-physical address of the page.
    pub paddr: PhysAddr,
    /// What kind of copy.
    pub kind: CandidateKind,
    /// The parsed text.
    #[serde(skip)]
    pub info: Vmcoreinfo,
}

const PAGE: u64 = 4096;
/// The kernel's VMCOREINFO_BYTES: one page of text.
const MAX_TEXT: usize = 4096;
/// At most this many candidates are kept (stale copies, user-space copies).
const MAX_CANDIDATES: usize = 64;
const NOTE_HEAD: [u8; 24] = *b"\x0b\0\0\0\0\0\0\0\0\0\0\0VMCOREINFO\0\0";

/// Reads the text of a candidate at `paddr` of `kind`, if it parses as a real VMCOREINFO.
pub fn read_candidate(
    mem: &dyn PhysMem,
    paddr: PhysAddr,
    kind: CandidateKind,
) -> Option<Candidate> {
    let (text_at, len) = match kind {
        CandidateKind::DataPage => (paddr, MAX_TEXT),
        CandidateKind::Note => {
            let descsz = mem.read_u32_le(PhysAddr(paddr.0 + 4)).ok()? as usize;
            (PhysAddr(paddr.0 + 24), descsz.min(MAX_TEXT))
        }
    };
    let mut buf = vec![0u8; len];
    // A page that ends the present memory may be short: read what is there.
    if mem.read_at(text_at, &mut buf).is_err() {
        let end = mem
            .ranges()
            .iter()
            .find(|r| r.contains(text_at))
            .map(|r| r.end.0)?;
        buf.truncate((end - text_at.0) as usize);
        mem.read_at(text_at, &mut buf).ok()?;
    }
    let text = String::from_utf8_lossy(&buf);
    let info = Vmcoreinfo::parse(&text);
    info.looks_valid()
        .then_some(Candidate { paddr, kind, info })
}

/// Scans page starts, handing each candidate to `accept`, and stops at the first one it
/// accepts (returning it). Blocks are visited highest first, each upwards from its start,
/// where the kernel's early allocations sit, so a scan that validates as it goes usually
/// stops early.
pub fn scan_until(
    mem: &dyn PhysMem,
    mut accept: impl FnMut(Candidate) -> bool,
) -> Option<PhysAddr> {
    let mut seen = 0usize;
    let mut head = [0u8; 24];
    // The kernel allocates its copies at boot from the highest zone, near where that zone
    // starts (ZONE_NORMAL at 4 GiB on a large guest, ZONE_DMA32 at 16 MiB on a small one):
    // so the highest RAM block is scanned first, each block upwards.
    let mut ranges = mem.ranges().to_vec();
    ranges.sort_by_key(|r| std::cmp::Reverse(r.start));
    for range in &ranges {
        let mut page = range.start.0.div_ceil(PAGE) * PAGE;
        while page + 24 <= range.end.0 && seen < MAX_CANDIDATES {
            // A run known to be zero holds no copy: skip it without reading.
            if let Some(end) = mem.zero_run_end(PhysAddr(page)) {
                page = end.0.div_ceil(PAGE).max(page / PAGE + 1) * PAGE;
                continue;
            }
            // Probing page heads is a search, not evidence: a slim capture keeps only the
            // candidates (read below, with recording restored).
            let was = mem.set_recording(false);
            let probed = mem.read_at(PhysAddr(page), &mut head).is_ok();
            mem.set_recording(was);
            if probed {
                let kind = if head.starts_with(b"OSRELEASE=") {
                    Some(CandidateKind::DataPage)
                } else if head[..4] == NOTE_HEAD[..4] && head[8..] == NOTE_HEAD[8..] {
                    Some(CandidateKind::Note)
                } else {
                    None
                };
                if let Some(c) = kind.and_then(|k| read_candidate(mem, PhysAddr(page), k)) {
                    seen += 1;
                    if accept(c) {
                        return Some(PhysAddr(page));
                    }
                }
            }
            page += PAGE;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use coroner_formats::SliceMem;

    /// 64 GiB of memory known to be zero past its first page (what a container of shared
    /// zero frames claims), counting the reads made of it.
    struct ZeroMem {
        ranges: Vec<coroner_formats::PhysRange>,
        reads: std::sync::atomic::AtomicU64,
    }

    impl PhysMem for ZeroMem {
        fn read_at(
            &self,
            _addr: PhysAddr,
            buf: &mut [u8],
        ) -> Result<(), coroner_formats::MemError> {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            buf.fill(0);
            Ok(())
        }
        fn ranges(&self) -> &[coroner_formats::PhysRange] {
            &self.ranges
        }
        fn zero_run_end(&self, addr: PhysAddr) -> Option<PhysAddr> {
            (addr.0 >= PAGE).then_some(self.ranges[0].end)
        }
    }

    #[test]
    fn memory_known_to_be_zero_is_skipped_not_read() {
        let mem = ZeroMem {
            ranges: vec![coroner_formats::PhysRange {
                start: PhysAddr(0),
                end: PhysAddr(64 << 30),
            }],
            reads: Default::default(),
        };
        assert_eq!(scan_until(&mem, |_| true), None);
        // One probe of the first page; the 16 Mi other pages cost nothing.
        assert_eq!(mem.reads.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    fn page(text: &[u8]) -> Vec<u8> {
        let mut p = text.to_vec();
        p.resize(4096, 0);
        p
    }

    #[test]
    fn finds_data_pages_and_notes_rejects_format_strings() {
        let good = b"OSRELEASE=6.1.0-56-amd64\nPAGESIZE=4096\nKERNELOFFSET=1a000000\n";
        let mut note = NOTE_HEAD.to_vec();
        note[4..8].copy_from_slice(&(good.len() as u32).to_le_bytes());
        note.extend_from_slice(good);
        let mem = SliceMem::new(vec![
            (PhysAddr(0x1000), page(b"OSRELEASE=%s\nPAGESIZE=%ld\n")),
            (PhysAddr(0x5000), page(good)),
            (PhysAddr(0x9000), page(&note)),
            // Not at a page start: ignored.
            (PhysAddr(0xa000), page(&[b"xx".as_slice(), good].concat())),
        ]);
        let mut c = Vec::new();
        scan_until(&mem, |x| {
            c.push(x);
            false
        });
        c.sort_by_key(|x| x.paddr);
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].paddr, c[0].kind),
            (PhysAddr(0x5000), CandidateKind::DataPage)
        );
        assert_eq!(
            (c[1].paddr, c[1].kind),
            (PhysAddr(0x9000), CandidateKind::Note)
        );
        assert_eq!(c[1].info.kernel_offset(), Some(0x1a00_0000));
    }

    #[test]
    fn a_lying_note_size_is_bounded() {
        let mut note = NOTE_HEAD.to_vec();
        note[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        note.extend_from_slice(b"OSRELEASE=6.1\nPAGESIZE=4096\n");
        let mem = SliceMem::new(vec![(PhysAddr(0), page(&note))]);
        let mut n = 0;
        scan_until(&mem, |_| {
            n += 1;
            false
        });
        assert_eq!(n, 1);
    }
}
