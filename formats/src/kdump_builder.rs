//! Writes kdump-compressed dumps to the documented layout (makedumpfile's
//! `diskdump_mod.h`, the flattened records of `makedumpfile -F`) from an opened dump, for
//! tests of the reader with what no installed tool writes here: lzo, snappy and zstd
//! pages, pages left out by a dump level, incomplete dumps (feature `testing`).

use crate::core_file::Core;
use crate::kdump::{
    COMPRESSED_INCOMPLETE, COMPRESSED_LZO, COMPRESSED_SNAPPY, COMPRESSED_ZLIB, COMPRESSED_ZSTD,
};
use crate::PhysAddr;

const BS: usize = 4096;

/// What to write.
#[derive(Clone, Debug)]
pub struct KdumpBuilder {
    /// `DUMP_DH_COMPRESSED_*` for every page (0: stored as is).
    pub compression: u32,
    /// Write makedumpfile's flattened records (out of order, one rewritten) instead of
    /// the plain file.
    pub flattened: bool,
    /// Leave out the pages that are all zeros (dump level 1), as makedumpfile does.
    pub exclude_zero_pages: bool,
    /// The dump level written (makedumpfile's `-d` mask; 1 is added when zero pages are
    /// left out). Levels above 1 make readers treat left-out pages as unknown.
    pub dump_level: i32,
    /// Write only this many pages' descriptors and data, then mark the dump incomplete,
    /// as makedumpfile does when its disk fills.
    pub incomplete_after: Option<u64>,
    /// `uname -r` for the header.
    pub release: String,
}

impl Default for KdumpBuilder {
    fn default() -> Self {
        KdumpBuilder {
            compression: COMPRESSED_ZLIB,
            flattened: false,
            exclude_zero_pages: false,
            dump_level: 0,
            incomplete_after: None,
            release: String::new(),
        }
    }
}

/// `page` compressed as `flags` says (0: stored as is, an empty result).
fn compress(flags: u32, page: &[u8]) -> crate::Result<Vec<u8>> {
    use std::io::Write;
    let failed = |e: String| crate::Error::Kdump {
        offset: 0,
        reason: format!("compressing a page with flags {flags:#x}: {e}"),
    };
    match flags {
        0 => Ok(Vec::new()),
        COMPRESSED_ZLIB => {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(page)
                .and_then(|()| z.finish())
                .map_err(|e| failed(e.to_string()))
        }
        COMPRESSED_LZO => lzokay::compress::compress(page).map_err(|e| failed(format!("{e:?}"))),
        COMPRESSED_SNAPPY => snap::raw::Encoder::new()
            .compress_vec(page)
            .map_err(|e| failed(e.to_string())),
        COMPRESSED_ZSTD => zstd::bulk::compress(page, 1).map_err(|e| failed(e.to_string())),
        f => Err(failed(format!("no compressor for flags {f:#x}"))),
    }
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

impl KdumpBuilder {
    /// The dump of every present page of `core`, with its notes.
    pub fn build(&self, core: &Core) -> crate::Result<Vec<u8>> {
        let mem = core.mem();
        let notes = crate::elf_writer::notes_blob(core)?;
        let max_mapnr = mem
            .ranges()
            .last()
            .map_or(1, |r| r.end.0.div_ceil(BS as u64));
        let bitmap_bytes = (max_mapnr.div_ceil(8) as usize).div_ceil(BS) * BS;
        let sub_blocks = 1 + notes.len().div_ceil(BS);
        let mut ram = vec![0u8; bitmap_bytes];
        let mut dumpable = vec![0u8; bitmap_bytes];
        let mut pages: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut page = vec![0u8; BS];
        for r in mem.ranges() {
            let mut a = r.start.0;
            while a < r.end.0 {
                let pfn = a / BS as u64;
                ram[(pfn / 8) as usize] |= 1 << (pfn % 8);
                mem.read_at(PhysAddr(a), &mut page)
                    .map_err(|e| crate::Error::Stream {
                        what: "read a page of the source dump",
                        source: std::io::Error::other(e.to_string()),
                    })?;
                let zero = page.iter().all(|&b| b == 0);
                if !(self.exclude_zero_pages && zero) {
                    dumpable[(pfn / 8) as usize] |= 1 << (pfn % 8);
                    pages.push((pfn, page.clone()));
                }
                a += BS as u64;
            }
        }
        // Header and sub-header.
        let mut head = vec![0u8; BS * (1 + sub_blocks)];
        head[..8].copy_from_slice(b"KDUMP   ");
        put(&mut head, 8, &6i32.to_le_bytes());
        put(&mut head, 12 + 2 * 65, self.release.as_bytes());
        put(&mut head, 12 + 4 * 65, b"x86_64");
        let incomplete = self.incomplete_after.is_some();
        let status = self.compression | if incomplete { COMPRESSED_INCOMPLETE } else { 0 };
        put(&mut head, 424, &status.to_le_bytes());
        put(&mut head, 428, &(BS as i32).to_le_bytes());
        put(&mut head, 432, &(sub_blocks as i32).to_le_bytes());
        put(
            &mut head,
            436,
            &((2 * bitmap_bytes / BS) as u32).to_le_bytes(),
        );
        put(
            &mut head,
            440,
            &(max_mapnr.min(u64::from(u32::MAX)) as u32).to_le_bytes(),
        );
        put(&mut head, 460, &(core.elf.vcpus.len() as i32).to_le_bytes());
        let sub = BS;
        put(
            &mut head,
            sub + 8,
            &(self.dump_level | i32::from(self.exclude_zero_pages)).to_le_bytes(),
        );
        put(&mut head, sub + 48, &((2 * BS) as u64).to_le_bytes());
        put(&mut head, sub + 56, &(notes.len() as u64).to_le_bytes());
        put(&mut head, sub + 96, &max_mapnr.to_le_bytes());
        put(&mut head, 2 * BS, &notes);

        // Descriptors, then the shared zero page, then the pages.
        let desc_at = head.len() + 2 * bitmap_bytes;
        let data_at = desc_at + 24 * pages.len();
        let mut descs = vec![0u8; 24 * pages.len()];
        let mut data = vec![0u8; BS];
        for (i, (_, p)) in pages.iter().enumerate() {
            if self.incomplete_after.is_some_and(|n| i as u64 >= n) {
                break;
            }
            let (offset, stored, flags) = if p.iter().all(|&b| b == 0) {
                (data_at, BS, 0)
            } else {
                let c = compress(self.compression, p)?;
                let off = data_at + data.len();
                if !c.is_empty() && c.len() < BS {
                    data.extend_from_slice(&c);
                    (off, c.len(), self.compression)
                } else {
                    data.extend_from_slice(p);
                    (off, BS, 0)
                }
            };
            let d = &mut descs[24 * i..24 * i + 24];
            d[..8].copy_from_slice(&(offset as u64).to_le_bytes());
            d[8..12].copy_from_slice(&(stored as u32).to_le_bytes());
            d[12..16].copy_from_slice(&flags.to_le_bytes());
        }
        let pieces: Vec<(usize, Vec<u8>)> = vec![
            (0, head),
            (desc_at - 2 * bitmap_bytes, ram),
            (desc_at - bitmap_bytes, dumpable),
            (desc_at, descs),
            (data_at, data),
        ];
        if !self.flattened {
            let mut out = Vec::new();
            for (at, bytes) in pieces {
                out.resize(at, 0);
                out.extend_from_slice(&bytes);
            }
            return Ok(out);
        }
        // Flattened: the pieces in 64 KiB records, last piece first, then the header
        // once more (a later record overrides an earlier one).
        let mut out = vec![0u8; BS];
        out[..12].copy_from_slice(b"makedumpfile");
        put(&mut out, 16, &1i64.to_be_bytes());
        put(&mut out, 24, &1i64.to_be_bytes());
        let mut record = |at: usize, bytes: &[u8]| {
            out.extend_from_slice(&(at as i64).to_be_bytes());
            out.extend_from_slice(&(bytes.len() as i64).to_be_bytes());
            out.extend_from_slice(bytes);
        };
        for (at, bytes) in pieces.iter().rev() {
            for (i, chunk) in bytes.chunks(64 << 10).enumerate() {
                record(at + i * (64 << 10), chunk);
            }
        }
        record(0, &pieces[0].1[..BS]);
        out.extend_from_slice(&(-1i64).to_be_bytes());
        out.extend_from_slice(&(-1i64).to_be_bytes());
        Ok(out)
    }
}

/// The plain kdump file `plain` as a qemu-like flattened stream: the head in one record,
/// then the descriptor table and the page data in 16 KiB records, interleaved as `order`
/// says: 0 data ahead of descriptors, 1 descriptors ahead of data, 2 every descriptor
/// first.
pub fn qemu_like_stream(plain: &[u8], order: u8) -> crate::Result<Vec<u8>> {
    let header = crate::kdump::KdumpHeader::read(&plain.to_vec())?;
    let kdump = crate::kdump::Kdump::open(std::sync::Arc::new(plain.to_vec()), false)?;
    let desc_start = header.descriptors_offset() as usize;
    let desc_end = desc_start + kdump.info.pages as usize * 24;
    let mut out = b"makedumpfile\0".to_vec();
    out.resize(16, 0);
    out.extend_from_slice(&1i64.to_be_bytes());
    out.extend_from_slice(&1i64.to_be_bytes());
    out.resize(4096, 0);
    let mut record = |at: usize, bytes: &[u8]| {
        out.extend_from_slice(&(at as i64).to_be_bytes());
        out.extend_from_slice(&(bytes.len() as i64).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    record(0, &plain[..desc_start]);
    let descs: Vec<(usize, &[u8])> = (desc_start..desc_end)
        .step_by(16 << 10)
        .map(|a| (a, &plain[a..(a + (16 << 10)).min(desc_end)]))
        .collect();
    let data: Vec<(usize, &[u8])> = (desc_end..plain.len())
        .step_by(16 << 10)
        .map(|a| (a, &plain[a..(a + (16 << 10)).min(plain.len())]))
        .collect();
    let n = descs.len().max(data.len());
    if order == 2 {
        for (a, b) in descs.iter().chain(&data) {
            record(*a, b);
        }
    } else {
        for i in 0..n {
            let pair = [descs.get(i), data.get(i)];
            let pair = if order == 0 { [pair[1], pair[0]] } else { pair };
            for (a, b) in pair.into_iter().flatten() {
                record(*a, b);
            }
        }
    }
    out.extend_from_slice(&(-1i64).to_be_bytes());
    out.extend_from_slice(&(-1i64).to_be_bytes());
    Ok(out)
}
