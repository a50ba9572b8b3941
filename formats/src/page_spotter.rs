//! Spotting, while an ELF core streams past, the guest pages that begin like the guest's
//! own VMCOREINFO (an ELF note named `VMCOREINFO`, or the text page starting
//! `OSRELEASE=`), so a capture can record where they are and analysis need not scan RAM.
//!
//! Only page-aligned guest-physical addresses are looked at, 24 bytes each: the cost is
//! negligible beside compression.

use crate::elf::{ElfCore, LoadSegment};
use crate::source::ByteSource;

const PAGE: u64 = 4096;
const HEAD: usize = 24;
/// Most candidates recorded (stale copies, user-space copies of the text).
pub const MAX_CANDIDATES: usize = 64;
/// The note header as the kernel writes it: namesz 11, descsz (any), type 0, name.
const NOTE_NAMESZ: [u8; 4] = [11, 0, 0, 0];
const NOTE_TYPE_AND_NAME: &[u8; 16] = b"\0\0\0\0VMCOREINFO\0\0";

/// True when `head` (the first 24 bytes of a page) looks like a VMCOREINFO copy.
pub fn looks_like_vmcoreinfo(head: &[u8]) -> bool {
    head.starts_with(b"OSRELEASE=")
        || (head.len() >= HEAD && head[..4] == NOTE_NAMESZ && head[8..24] == NOTE_TYPE_AND_NAME[..])
}

/// Fed the bytes of an ELF core in order, records the guest-physical addresses of pages
/// that look like VMCOREINFO.
#[derive(Default)]
pub struct PageSpotter {
    loads: Option<Vec<LoadSegment>>,
    /// A page start whose first bytes straddle two chunks: (paddr, bytes so far).
    pending: Option<(u64, Vec<u8>)>,
    found: Vec<u64>,
}

/// A [`ByteSource`] over the head of a stream of unknown length.
struct Head<'a>(&'a [u8]);

impl ByteSource for Head<'_> {
    fn len(&self) -> u64 {
        u64::MAX
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> crate::Result<()> {
        ByteSource::read_at(self.0, offset, buf)
    }
}

impl PageSpotter {
    /// A spotter that learns the memory layout from the stream's head.
    pub fn new() -> Self {
        Self::default()
    }

    /// Guest-physical addresses found so far.
    pub fn found(&self) -> &[u64] {
        &self.found
    }

    /// Feeds `chunk`, which starts at stream offset `at`; `head` is the stream's first
    /// bytes (at least up to the end of the notes for the layout to be known).
    pub fn feed(&mut self, at: u64, chunk: &[u8], head: &[u8]) {
        if self.loads.is_none() {
            // Headers and notes precede memory in qemu's ELF: parse once they are in.
            match ElfCore::parse(&Head(head)) {
                Ok(core) => {
                    let mut loads = core.loads;
                    loads.sort_by_key(|l| l.offset);
                    self.loads = Some(loads);
                }
                Err(_) => return,
            }
        }
        if self.found.len() >= MAX_CANDIDATES {
            return;
        }
        let end = at + chunk.len() as u64;
        if let Some((paddr, mut bytes)) = self.pending.take() {
            let need = HEAD - bytes.len();
            let take = need.min(chunk.len());
            bytes.extend_from_slice(&chunk[..take]);
            if bytes.len() == HEAD {
                if looks_like_vmcoreinfo(&bytes) {
                    self.found.push(paddr);
                }
            } else {
                self.pending = Some((paddr, bytes));
            }
        }
        let Some(loads) = self.loads.as_ref() else {
            return;
        };
        let mut hits = Vec::new();
        let mut pending = None;
        for l in loads {
            let l_end = l.offset.saturating_add(l.file_size);
            if l_end <= at || l.offset >= end {
                continue;
            }
            // Offset of the first page start of this load at or after `at`.
            let first_page = l.paddr.div_ceil(PAGE) * PAGE;
            let mut off = l.offset + (first_page - l.paddr);
            if off < at {
                off += (at - off).div_ceil(PAGE) * PAGE;
            }
            while off < end.min(l_end) {
                let paddr = l.paddr + (off - l.offset);
                let i = (off - at) as usize;
                if i + HEAD <= chunk.len() {
                    if looks_like_vmcoreinfo(&chunk[i..i + HEAD]) {
                        hits.push(paddr);
                    }
                } else if off + HEAD as u64 <= l_end {
                    pending = Some((paddr, chunk[i..].to_vec()));
                }
                off += PAGE;
            }
        }
        for h in hits {
            if self.found.len() < MAX_CANDIDATES {
                self.found.push(h);
            }
        }
        if pending.is_some() {
            self.pending = pending;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ElfBuilder;

    #[test]
    fn finds_pages_in_any_chunking() {
        let mut ram = vec![0u8; 0x6000];
        ram[0x2000..0x200a].copy_from_slice(b"OSRELEASE=");
        let mut note = vec![11, 0, 0, 0, 0x40, 0, 0, 0];
        note.extend_from_slice(NOTE_TYPE_AND_NAME);
        ram[0x5000..0x5018].copy_from_slice(&note);
        ram[0x3010..0x301a].copy_from_slice(b"OSRELEASE="); // not at a page start
        let b = ElfBuilder {
            ram: vec![(0x10_0000, ram)],
            ..ElfBuilder::default()
        };
        let bytes = b.build();
        for chunk in [1usize, 7, 23, 4096, 5000, bytes.len()] {
            let mut s = PageSpotter::new();
            let mut at = 0u64;
            for c in bytes.chunks(chunk) {
                let head = &bytes[..(at as usize + c.len()).min(1 << 16)];
                s.feed(at, c, head);
                at += c.len() as u64;
            }
            assert_eq!(s.found(), [0x10_2000, 0x10_5000], "chunk {chunk}");
        }
    }
}
