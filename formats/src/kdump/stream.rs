//! [`KdumpStream`]: qemu's flattened kdump stream (`dump-guest-memory` with a `kdump-*`
//! format into a pipe) turned into the ELF core `coroner compress` makes of the same
//! dump, written into a container as the stream arrives. Nothing is kept but the headers
//! and bitmaps, the page data not yet described, and the descriptors not yet resolved.
//!
//! qemu writes the headers, notes and bitmaps first, then the page descriptors and the
//! page data through two 16 KiB caches: a descriptor block may name data still in the
//! data cache, so each side waits for the other; every zero page's descriptor names the
//! one zero page stored first in the data. Zero pages go to the container as runs
//! ([`ContainerWriter::write_zeros`]), so an idle guest's RAM costs neither hashing nor
//! compression. Anything a qemu stream does not do (records out of order in the
//! descriptor table, data named after it was passed, pages left out) is an error naming
//! the stream offset.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::header::BLOCK_SIZE;
use super::page::{decompress_with, Inflaters, PageDesc, DESC_BYTES};
use super::{Kdump, KdumpInfo};
use crate::elf_writer::{elf64_head, notes_blob_of};
use crate::error::{Error, Result};
use crate::source::ByteSource;
use crate::zst::ContainerWriter;

/// The flattened header's size.
const FLAT_HEADER: usize = 4096;
/// The largest record accepted: qemu's are 16 KiB; makedumpfile's bitmaps come whole.
const MAX_RECORD: u64 = 256 << 20;
/// The head (headers, notes, bitmaps) kept at most: 256 MiB of bitmaps (a 4 TiB
/// guest's, the kdump reader's bound) and the sub-header blocks.
const MAX_HEAD: u64 = (256 << 20) + (1 << 28);
/// Records of the head kept at most (qemu writes the bitmaps a page at a time: a 4 TiB
/// guest's take 64 Ki records).
const MAX_HEAD_RECORDS: usize = 1 << 17;
/// Page data and descriptors waiting for each other, at most (qemu keeps 16 KiB each).
const MAX_PENDING: u64 = 64 << 20;

/// What the stream was, once it ended well.
pub struct StreamedKdump {
    /// The container, holding the whole ELF core, to finish.
    pub writer: ContainerWriter,
    /// The ELF head (headers and notes) written first.
    pub elf_head: Vec<u8>,
    /// What the kdump headers said.
    pub info: KdumpInfo,
    /// Bytes of the stream.
    pub stream_bytes: u64,
    /// BLAKE3 of the stream (lowercase hex): the bytes qemu wrote, not kept.
    pub stream_blake3: String,
}

/// An error at `offset` of the stream.
fn bad(offset: u64, reason: String) -> Error {
    Error::Kdump {
        offset,
        reason: format!("in qemu's kdump stream: {reason}"),
    }
}

/// The head of the rearranged file (headers, notes, bitmaps), as the records that wrote
/// it in arrival order, readable as a kdump file whose pages are not there: holes read as
/// zeros, a later record overrides an earlier one, and memory follows the bytes received,
/// not the offsets they claim.
#[derive(Default)]
struct Head {
    records: Vec<(u64, Vec<u8>)>,
    bytes: u64,
}

impl Head {
    /// `desc_start` by the main header's `sub_hdr_size` and `bitmap_blocks`, once a record
    /// at offset 0 holds them (the sub-header may not have come yet).
    fn descriptors_offset(&self) -> Option<u64> {
        let (_, h) = self
            .records
            .iter()
            .find(|(o, d)| *o == 0 && d.len() >= 440)?;
        let sub = u64::try_from(i32::from_le_bytes([h[432], h[433], h[434], h[435]])).ok()?;
        let bitmap = u64::from(u32::from_le_bytes([h[436], h[437], h[438], h[439]]));
        Some((1 + sub + bitmap) * BLOCK_SIZE)
    }
}

impl ByteSource for Head {
    fn len(&self) -> u64 {
        // The descriptors and data lie beyond: only the headers, notes and bitmaps are
        // read through this.
        u64::MAX / 2
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        buf.fill(0);
        let end = offset.saturating_add(buf.len() as u64);
        for (start, data) in &self.records {
            let stop = start + data.len() as u64;
            if stop <= offset || *start >= end {
                continue;
            }
            let from = offset.max(*start);
            let to = end.min(stop);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&data[(from - start) as usize..(to - start) as usize]);
        }
        Ok(())
    }
}

/// Where the page phase stands.
struct Pages {
    /// Descriptors the bitmap announces.
    total: u64,
    /// Descriptors resolved and written.
    done: u64,
    /// Where the descriptor table ends in the rearranged file.
    desc_end: u64,
    /// Descriptors received and not yet resolved, in order, equal neighbours as one run
    /// (qemu's data cache can hold one page's data while gigabytes of zero pages are
    /// described: those descriptors are all the same), and the run's first descriptor's
    /// offset in the table.
    queue: VecDeque<(PageDesc, u64, u64)>,
    /// Bytes of a descriptor cut by a record boundary.
    desc_partial: Vec<u8>,
    /// The table offset the next descriptor bytes must start at.
    desc_next: u64,
    /// Page data by rearranged offset, not yet passed.
    data: BTreeMap<u64, Vec<u8>>,
    /// The first page of the data area (qemu's stored zero page), kept apart: every
    /// zero page names it, however far the data has moved on.
    first: Option<Vec<u8>>,
    data_bytes: u64,
    /// Where the data area starts, and the furthest byte of it received.
    data_start: u64,
    data_end: u64,
    /// The stored zero page every zero page's descriptor names: (offset, size).
    zero: Option<(u64, u32)>,
    /// Zero bytes owed to the container, written as one run.
    zeros: u64,
    page: Vec<u8>,
    inflaters: Inflaters,
}

/// The converter: [`feed`](Self::feed) it the stream, then [`finish`](Self::finish).
pub struct KdumpStream {
    writer: ContainerWriter,
    /// Bytes of the flattened header, or of a record header, still being gathered.
    partial: Vec<u8>,
    header_seen: bool,
    /// The record being received: its offset, length and bytes so far.
    record: Option<(u64, u64, Vec<u8>)>,
    head: Head,
    pages: Option<Pages>,
    info: Option<KdumpInfo>,
    elf_head: Vec<u8>,
    ended: bool,
    received: u64,
    hash: blake3::Hasher,
}

impl KdumpStream {
    /// A converter writing into `writer`.
    pub fn new(writer: ContainerWriter) -> Self {
        Self {
            writer,
            partial: Vec::new(),
            header_seen: false,
            record: None,
            head: Head::default(),
            pages: None,
            info: None,
            elf_head: Vec::new(),
            ended: false,
            received: 0,
            hash: blake3::Hasher::new(),
        }
    }

    /// Stream bytes received.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Content bytes written into the container so far.
    pub fn bytes_in(&self) -> u64 {
        self.writer.bytes_in()
    }

    /// The container, to abandon after a failure.
    pub fn into_writer(self) -> ContainerWriter {
        self.writer
    }

    /// Takes the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<()> {
        self.hash.update(bytes);
        while !bytes.is_empty() {
            let at = self.received;
            if self.ended {
                return Err(bad(at, "bytes after the end marker".into()));
            }
            if !self.header_seen {
                let n = (FLAT_HEADER - self.partial.len()).min(bytes.len());
                self.partial.extend_from_slice(&bytes[..n]);
                self.advance(&mut bytes, n);
                if self.partial.len() == FLAT_HEADER {
                    self.check_flat_header()?;
                    self.partial.clear();
                    self.header_seen = true;
                }
                continue;
            }
            if let Some((offset, len, mut data)) = self.record.take() {
                let n = ((len - data.len() as u64) as usize).min(bytes.len());
                data.extend_from_slice(&bytes[..n]);
                self.advance(&mut bytes, n);
                if data.len() as u64 == len {
                    self.on_record(offset, data, at)?;
                } else {
                    self.record = Some((offset, len, data));
                }
                continue;
            }
            let n = (16 - self.partial.len()).min(bytes.len());
            self.partial.extend_from_slice(&bytes[..n]);
            self.advance(&mut bytes, n);
            if self.partial.len() == 16 {
                let be = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
                let (offset, len) = (be(&self.partial[..8]), be(&self.partial[8..]));
                self.partial.clear();
                if offset == -1 && len == -1 {
                    self.ended = true;
                    continue;
                }
                let (Ok(offset), Ok(len)) = (u64::try_from(offset), u64::try_from(len)) else {
                    return Err(bad(at, format!("a record of {len} bytes at {offset}")));
                };
                if len > MAX_RECORD || offset.checked_add(len).is_none() {
                    return Err(bad(at, format!("a record of {len} bytes at {offset:#x}")));
                }
                if len == 0 {
                    continue;
                }
                // Memory follows the bytes that come, not the size a record claims.
                self.record = Some((offset, len, Vec::with_capacity(len.min(1 << 20) as usize)));
            }
        }
        Ok(())
    }

    /// Ends the stream: every announced page must have been written.
    pub fn finish(mut self) -> std::result::Result<StreamedKdump, Box<(ContainerWriter, Error)>> {
        let at = self.received;
        let check = (|| {
            if !self.ended {
                return Err(bad(
                    at,
                    "the stream ends without its end marker: truncated".into(),
                ));
            }
            let Some(p) = self.pages.as_mut() else {
                return Err(bad(at, "the stream ends before any page".into()));
            };
            if p.done != p.total {
                let (done, total) = (p.done, p.total);
                return Err(bad(
                    at,
                    format!(
                        "the stream ends after {done} of the {total} pages its bitmap announces"
                    ),
                ));
            }
            let zeros = std::mem::take(&mut p.zeros);
            self.writer.write_zeros(zeros)
        })();
        match (check, self.info.take()) {
            (Ok(()), Some(info)) => Ok(StreamedKdump {
                writer: self.writer,
                elf_head: self.elf_head,
                info,
                stream_bytes: self.received,
                stream_blake3: self.hash.finalize().to_hex().to_string(),
            }),
            (Err(e), _) => Err(Box::new((self.writer, e))),
            (Ok(()), None) => {
                let e = bad(at, "the stream ends before its headers".into());
                Err(Box::new((self.writer, e)))
            }
        }
    }

    fn advance(&mut self, bytes: &mut &[u8], n: usize) {
        *bytes = &bytes[n..];
        self.received += n as u64;
    }

    fn check_flat_header(&self) -> Result<()> {
        let h = &self.partial;
        let be = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        if &h[..13] != b"makedumpfile\0" || be(&h[16..24]) != 1 || be(&h[24..32]) != 1 {
            return Err(bad(
                0,
                "not a flattened makedumpfile header (type 1, version 1)".into(),
            ));
        }
        Ok(())
    }

    /// One whole record of `data` for `offset` of the rearranged file; `at` is where it
    /// ended in the stream.
    fn on_record(&mut self, offset: u64, data: Vec<u8>, at: u64) -> Result<()> {
        if self.pages.is_none() {
            match self.head.descriptors_offset() {
                Some(d) if offset >= d => self.start_pages(at)?,
                _ => {
                    self.head.bytes += data.len() as u64;
                    if self.head.bytes > MAX_HEAD || self.head.records.len() >= MAX_HEAD_RECORDS {
                        return Err(bad(
                            at,
                            format!(
                                "more than {MAX_HEAD:#x} bytes or {MAX_HEAD_RECORDS} records of headers and bitmaps"
                            ),
                        ));
                    }
                    self.head.records.push((offset, data));
                    return Ok(());
                }
            }
        }
        let Some(p) = self.pages.as_mut() else {
            return Ok(());
        };
        let end = offset + data.len() as u64;
        if offset < p.desc_end {
            let expected = p.desc_next;
            if offset != expected || end > p.desc_end {
                let desc_end = p.desc_end;
                return Err(bad(
                    at,
                    format!(
                        "descriptor bytes at {offset:#x}..{end:#x}, where the next ones start at {expected:#x} and the table ends at {desc_end:#x}"
                    ),
                ));
            }
            p.desc_next = end;
            let mut bytes = &data[..];
            let mut at_table = end - data.len() as u64 - p.desc_partial.len() as u64;
            if !p.desc_partial.is_empty() {
                let n = (24 - p.desc_partial.len()).min(bytes.len());
                p.desc_partial.extend_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
            }
            let mut whole = Vec::new();
            if p.desc_partial.len() == 24 {
                whole.push(std::mem::take(&mut p.desc_partial));
            }
            let mut chunks = bytes.chunks_exact(24);
            for c in &mut chunks {
                whole.push(c.to_vec());
            }
            p.desc_partial.extend_from_slice(chunks.remainder());
            for raw in whole {
                let mut b = [0u8; 24];
                b.copy_from_slice(&raw);
                let d = PageDesc::parse(&b);
                match p.queue.back_mut() {
                    Some((last, count, _)) if *last == d => *count += 1,
                    _ => p.queue.push_back((d, 1, at_table)),
                }
                at_table += DESC_BYTES;
            }
        } else {
            if offset < p.data_end {
                return Err(bad(
                    at,
                    format!(
                        "page data at {offset:#x}, before data already received up to {:#x}",
                        p.data_end
                    ),
                ));
            }
            if offset == p.data_start {
                p.first = Some(data[..data.len().min(BLOCK_SIZE as usize)].to_vec());
            }
            p.data_end = end;
            p.data_bytes += data.len() as u64;
            p.data.insert(offset, data);
        }
        self.resolve(at)
    }

    /// Parses the head, writes the ELF head and enters the page phase.
    fn start_pages(&mut self, at: u64) -> Result<()> {
        let head = Arc::new(std::mem::take(&mut self.head));
        let kdump = Kdump::open(head.clone(), false)?;
        if kdump.info.incomplete || kdump.info.excluded_pages > 0 {
            return Err(bad(
                at,
                format!(
                    "a stream that leaves pages out ({} excluded, incomplete: {}): not as qemu writes it",
                    kdump.info.excluded_pages, kdump.info.incomplete
                ),
            ));
        }
        let runs: Vec<(u64, u64)> = crate::physmem::PhysMem::ranges(&kdump.mem)
            .iter()
            .map(|r| (r.start.0, r.len()))
            .collect();
        let total = kdump.info.pages;
        let notes = notes_blob_of(&kdump.elf, &|o, b| head.read_at(o, b))?;
        let elf_head = elf64_head(&runs, &notes)?;
        self.writer.write_all(&elf_head)?;
        let desc_start = kdump.info.header.descriptors_offset();
        let desc_end = desc_start + total * DESC_BYTES;
        self.elf_head = elf_head;
        let mut info = kdump.info;
        info.layout = "flattened";
        self.info = Some(info);
        self.pages = Some(Pages {
            total,
            done: 0,
            desc_end,
            queue: VecDeque::new(),
            desc_partial: Vec::new(),
            desc_next: desc_start,
            data: BTreeMap::new(),
            first: None,
            data_bytes: 0,
            data_start: desc_end,
            data_end: desc_end,
            zero: None,
            zeros: 0,
            page: vec![0u8; BLOCK_SIZE as usize],
            inflaters: Inflaters::default(),
        });
        Ok(())
    }

    /// Writes every page whose descriptor and data are both here, in order.
    fn resolve(&mut self, at: u64) -> Result<()> {
        let Some(p) = self.pages.as_mut() else {
            return Ok(());
        };
        let mut failure = None;
        while let Some(&(d, count, desc_offset)) = p.queue.front() {
            if p.zero == Some((d.offset, d.size)) && d.flags == 0 {
                p.zeros += BLOCK_SIZE * count;
            } else {
                let end = d.offset.saturating_add(u64::from(d.size));
                let first = p
                    .first
                    .as_deref()
                    .filter(|f| d.offset == p.data_start && f.len() as u64 >= end - d.offset);
                let found = first.map(|f| (d.offset, f)).or_else(|| {
                    p.data
                        .range(..=d.offset)
                        .next_back()
                        .filter(|(s, v)| **s + v.len() as u64 >= end)
                        .map(|(s, v)| (*s, v.as_slice()))
                });
                let Some((start, record)) = found else {
                    if end > p.data_end && d.offset >= p.data_start {
                        break; // Not here yet.
                    }
                    failure = Some(format!(
                        "descriptor at {desc_offset:#x} names page data at {:#x} ({} bytes), which the stream did not hold there",
                        d.offset, d.size
                    ));
                    break;
                };
                let stored = &record[(d.offset - start) as usize..(end - start) as usize];
                if let Err(why) = decompress_with(&mut p.inflaters, d.flags, stored, &mut p.page) {
                    failure = Some(format!("page data at {:#x}: {why}", d.offset));
                    break;
                }
                if p.page.iter().all(|&b| b == 0) {
                    if d.offset == p.data_start && d.flags == 0 {
                        p.zero = Some((d.offset, d.size));
                    }
                    p.zeros += BLOCK_SIZE * count;
                } else {
                    if p.zeros > 0 {
                        self.writer.write_zeros(std::mem::take(&mut p.zeros))?;
                    }
                    for _ in 0..count {
                        self.writer.write_all(&p.page)?;
                    }
                }
                // Data before this page is passed: only the zero page is named again.
                let keep_from = d.offset;
                while let Some((&s, v)) = p.data.first_key_value() {
                    if s + v.len() as u64 > keep_from {
                        break;
                    }
                    p.data_bytes -= v.len() as u64;
                    p.data.pop_first();
                }
            }
            p.queue.pop_front();
            p.done += count;
        }
        // A queued run costs the same whatever its length.
        let pending = p.data_bytes + p.queue.len() as u64 * 32;
        if let Some(reason) = failure {
            return Err(bad(at, reason));
        }
        if pending > MAX_PENDING {
            return Err(bad(
                at,
                format!("{pending} bytes of page data and descriptors wait for each other, more than {MAX_PENDING}"),
            ));
        }
        Ok(())
    }
}
