//! [`KdumpMem`]: guest-physical memory of a kdump-compressed dump. A page is present when
//! its bit is set in the dumpable (second) bitmap; its descriptor is found by the number
//! of set bits before it, and its bytes are decompressed on a read, the last few hundred
//! pages kept. A page an incomplete dump never wrote is absent, as is one the dump level
//! left out, unless the level leaves out only zero pages (makedumpfile's `-d 1`): those
//! pages are known to be zeros and read so.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::header::{KdumpHeader, BLOCK_SIZE};
use super::page::{decompress, PageDesc, DESC_BYTES, MAX_STORED};
use crate::addr::{PhysAddr, PhysRange};
use crate::error::{Error, Result};
use crate::physmem::{MemError, PhysMem};
use crate::source::ByteSource;

/// Decompressed pages kept (1 MiB).
const CACHE_PAGES: usize = 256;

/// Both bitmaps together at most: 128 MiB each covers 4 TiB of guest RAM. (A flattened
/// file's logical length is what its records claim, so it bounds nothing.)
const MAX_BITMAP_BYTES: u64 = 256 << 20;

type Page = Arc<[u8]>;

/// Memory of a kdump-compressed dump.
pub struct KdumpMem {
    src: Arc<dyn ByteSource>,
    /// The dumpable bitmap, 64 pages a word, least significant bit first.
    words: Vec<u64>,
    /// Set bits before each word.
    before: Vec<u64>,
    /// RAM pages left out by a dump level that leaves out only zero pages: zeros.
    zeros: Vec<u64>,
    /// Pages the bitmap covers.
    pages: u64,
    ranges: Vec<PhysRange>,
    descriptors: u64,
    /// Where page data may start: past the last descriptor.
    data_start: u64,
    /// The shared zero page qemu and makedumpfile write first in the page data, when
    /// there is one: every zero page's descriptor points at it.
    zero_page: Option<u64>,
    cache: Mutex<(HashMap<u64, Page>, VecDeque<u64>)>,
    /// Pages in the first bitmap (RAM) but not the second (left out by the dump level).
    pub excluded_pages: u64,
    /// Those pages read as zeros: the dump level leaves out zero pages only.
    pub excluded_are_zeros: bool,
    /// Pages an incomplete dump announced but never wrote.
    pub unwritten_pages: u64,
}

/// Reads a bitmap of `bytes` bytes at `offset` as words.
fn read_words(src: &dyn ByteSource, offset: u64, bytes: u64) -> Result<Vec<u64>> {
    let mut raw = vec![0u8; bytes as usize];
    src.read_at(offset, &mut raw)?;
    Ok(raw
        .chunks(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect())
}

/// Adds `count` pages from page `first` to sorted `ranges`, joining the last range.
fn add_pages(ranges: &mut Vec<PhysRange>, first: u64, count: u64) {
    let start = PhysAddr(first * BLOCK_SIZE);
    let end = PhysAddr((first + count) * BLOCK_SIZE);
    match ranges.last_mut() {
        Some(r) if r.end == start => r.end = end,
        _ => ranges.push(PhysRange { start, end }),
    }
}

impl KdumpMem {
    /// The memory described by `header`, whose file is `src`.
    pub fn new(src: Arc<dyn ByteSource>, header: &KdumpHeader) -> Result<KdumpMem> {
        let total = header.bitmap_blocks * BLOCK_SIZE;
        let at = header.bitmap_offset();
        if total > MAX_BITMAP_BYTES {
            return Err(Error::Kdump {
                offset: 436,
                reason: format!(
                    "bitmaps of {total:#x} bytes, more than the {MAX_BITMAP_BYTES:#x} read at most (a 4 TiB guest's)"
                ),
            });
        }
        if at.checked_add(total).is_none_or(|e| e > src.len()) {
            return Err(Error::Kdump {
                offset: at,
                reason: format!(
                    "bitmaps of {total:#x} bytes run past the end of the file ({:#x} bytes): truncated",
                    src.len()
                ),
            });
        }
        // Two bitmaps when half of them covers max_mapnr (crash's test); an old diskdump
        // has one.
        let two = (total / 2) * 8 >= header.max_mapnr;
        let (ram, dumpable) = if two {
            (
                read_words(src.as_ref(), at, total / 2)?,
                read_words(src.as_ref(), at + total / 2, total / 2)?,
            )
        } else {
            let w = read_words(src.as_ref(), at, total)?;
            (w.clone(), w)
        };
        let pages = header.max_mapnr.min(dumpable.len() as u64 * 64);
        let mut words = dumpable;
        words.truncate(pages.div_ceil(64) as usize);
        if pages % 64 != 0 {
            if let Some(last) = words.last_mut() {
                *last &= (1u64 << (pages % 64)) - 1;
            }
        }
        let mut before = Vec::with_capacity(words.len());
        let mut count = 0u64;
        for w in &words {
            before.push(count);
            count += u64::from(w.count_ones());
        }
        let left_out: Vec<u64> = words
            .iter()
            .enumerate()
            .map(|(i, d)| ram.get(i).copied().unwrap_or(0) & !d)
            .collect();
        let ram_count: u64 = left_out.iter().map(|w| u64::from(w.count_ones())).sum();
        // Dump level 1 leaves out zero pages and nothing else.
        let only_zero_pages = header.dump_level & !1 == 0;
        let zeros = if only_zero_pages {
            left_out
        } else {
            Vec::new()
        };
        let mut mem = KdumpMem {
            src,
            words,
            before,
            zeros,
            pages,
            ranges: Vec::new(),
            descriptors: header.descriptors_offset(),
            data_start: header.descriptors_offset() + count.saturating_mul(DESC_BYTES),
            zero_page: None,
            cache: Mutex::new((HashMap::new(), VecDeque::new())),
            excluded_pages: ram_count,
            excluded_are_zeros: only_zero_pages,
            unwritten_pages: 0,
        };
        let need = mem
            .descriptors
            .checked_add(count.saturating_mul(DESC_BYTES));
        if need.is_none_or(|e| e > mem.src.len()) {
            return Err(Error::Kdump {
                offset: mem.descriptors,
                reason: format!(
                    "the bitmap announces {count} pages, whose descriptors run past the end of the file ({:#x} bytes): truncated, or a bitmap that lies",
                    mem.src.len()
                ),
            });
        }
        let mut first = vec![0u8; BLOCK_SIZE as usize];
        if mem.src.read_at(mem.data_start, &mut first).is_ok() && first.iter().all(|&b| b == 0) {
            mem.zero_page = Some(mem.data_start);
        }
        mem.ranges = mem.present_ranges(header.incomplete())?;
        Ok(mem)
    }

    fn bit(&self, pfn: u64) -> bool {
        pfn < self.pages && self.words[(pfn / 64) as usize] >> (pfn % 64) & 1 == 1
    }

    /// The page is left out and known to be zeros.
    fn zero(&self, pfn: u64) -> bool {
        pfn < self.pages
            && self
                .zeros
                .get((pfn / 64) as usize)
                .is_some_and(|w| w >> (pfn % 64) & 1 == 1)
    }

    /// Index of `pfn`'s descriptor (its bit is set).
    fn rank(&self, pfn: u64) -> u64 {
        let i = (pfn / 64) as usize;
        let below = self.words[i] & ((1u64 << (pfn % 64)) - 1);
        self.before[i] + u64::from(below.count_ones())
    }

    fn descriptor(&self, pfn: u64) -> Result<PageDesc> {
        let at = self.descriptors + self.rank(pfn) * DESC_BYTES;
        let mut b = [0u8; 24];
        self.src.read_at(at, &mut b)?;
        Ok(PageDesc::parse(&b))
    }

    /// Runs of set bits; for an incomplete dump, without the pages whose descriptor was
    /// never written (offset 0).
    fn present_ranges(&mut self, incomplete: bool) -> Result<Vec<PhysRange>> {
        let mut ranges: Vec<PhysRange> = Vec::new();
        let mut unwritten = 0;
        for (i, &dumped) in self.words.iter().enumerate() {
            let w = dumped | self.zeros.get(i).copied().unwrap_or(0);
            let first = i as u64 * 64;
            if w == 0 {
                continue;
            }
            if w == u64::MAX && !incomplete {
                add_pages(&mut ranges, first, 64);
                continue;
            }
            for b in (0..64).filter(|b| w >> b & 1 == 1) {
                if incomplete && dumped >> b & 1 == 1 && self.descriptor(first + b)?.offset == 0 {
                    unwritten += 1;
                    continue;
                }
                add_pages(&mut ranges, first + b, 1);
            }
        }
        self.unwritten_pages = unwritten;
        Ok(ranges)
    }

    /// `pfn` is the shared zero page (by its descriptor) or a left-out zero page.
    fn known_zero(&self, pfn: u64) -> bool {
        if !self.bit(pfn) {
            return self.zero(pfn);
        }
        self.zero_page.is_some_and(|z| {
            self.descriptor(pfn)
                .is_ok_and(|d| d.offset == z && d.flags == 0 && u64::from(d.size) == BLOCK_SIZE)
        })
    }

    /// Page `pfn`, decompressed.
    fn page(&self, pfn: u64) -> std::result::Result<Page, MemError> {
        let addr = PhysAddr(pfn * BLOCK_SIZE);
        if let Ok(c) = self.cache.lock() {
            if let Some(p) = c.0.get(&pfn) {
                return Ok(p.clone());
            }
        }
        let fail = |reason: String| MemError::Read {
            addr,
            source: Error::Kdump {
                offset: self.descriptors + self.rank(pfn) * DESC_BYTES,
                reason,
            },
        };
        let d = self
            .descriptor(pfn)
            .map_err(|source| MemError::Read { addr, source })?;
        if d.offset == 0 {
            return Err(MemError::NotPresent { addr });
        }
        if Some(d.offset) == self.zero_page && d.flags == 0 && u64::from(d.size) == BLOCK_SIZE {
            return Ok(Arc::from(vec![0u8; BLOCK_SIZE as usize]));
        }
        if d.offset < self.data_start {
            return Err(fail(format!(
                "page {pfn:#x}'s descriptor points at {:#x}, before the page data ({:#x})",
                d.offset, self.data_start
            )));
        }
        if d.size == 0 || u64::from(d.size) > MAX_STORED {
            return Err(fail(format!("page {pfn:#x} is stored in {} bytes", d.size)));
        }
        let mut stored = vec![0u8; d.size as usize];
        self.src
            .read_at(d.offset, &mut stored)
            .map_err(|source| MemError::Read { addr, source })?;
        let mut out = vec![0u8; BLOCK_SIZE as usize];
        decompress(d.flags, &stored, &mut out)
            .map_err(|e| fail(format!("page {pfn:#x} at {:#x}: {e}", d.offset)))?;
        let page: Page = Arc::from(out);
        if let Ok(mut c) = self.cache.lock() {
            if c.1.len() >= CACHE_PAGES {
                if let Some(old) = c.1.pop_front() {
                    c.0.remove(&old);
                }
            }
            c.0.insert(pfn, page.clone());
            c.1.push_back(pfn);
        }
        Ok(page)
    }
}

impl PhysMem for KdumpMem {
    fn read_at(&self, addr: PhysAddr, buf: &mut [u8]) -> std::result::Result<(), MemError> {
        let mut at = addr.0;
        let end = addr
            .0
            .checked_add(buf.len() as u64)
            .ok_or(MemError::NotPresent {
                addr: PhysAddr(u64::MAX),
            })?;
        while at < end {
            let pfn = at / BLOCK_SIZE;
            let within = (at % BLOCK_SIZE) as usize;
            let n = ((BLOCK_SIZE as usize) - within).min((end - at) as usize);
            let from = (at - addr.0) as usize;
            if !self.bit(pfn) {
                if !self.zero(pfn) {
                    return Err(MemError::NotPresent { addr: PhysAddr(at) });
                }
                buf[from..from + n].fill(0);
                at += n as u64;
                continue;
            }
            let page = self.page(pfn).map_err(|e| match e {
                MemError::NotPresent { .. } => MemError::NotPresent { addr: PhysAddr(at) },
                other => other,
            })?;
            buf[from..from + n].copy_from_slice(&page[within..within + n]);
            at += n as u64;
        }
        Ok(())
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }

    fn zero_run_end(&self, addr: PhysAddr) -> Option<PhysAddr> {
        let mut pfn = addr.0 / BLOCK_SIZE;
        let start = pfn;
        while pfn < self.pages && self.known_zero(pfn) {
            pfn += 1;
        }
        (pfn > start).then_some(PhysAddr(pfn * BLOCK_SIZE))
    }
}
