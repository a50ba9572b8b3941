//! The headers of a kdump-compressed dump (makedumpfile's `diskdump_mod.h`, x86_64
//! layout): `disk_dump_header` in the first block, `kdump_sub_header` in the next.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::source::ByteSource;

/// `DUMP_DH_COMPRESSED_ZLIB`: pages are zlib streams.
pub const COMPRESSED_ZLIB: u32 = 0x1;
/// `DUMP_DH_COMPRESSED_LZO`: pages are LZO1X.
pub const COMPRESSED_LZO: u32 = 0x2;
/// `DUMP_DH_COMPRESSED_SNAPPY`: pages are raw snappy blocks.
pub const COMPRESSED_SNAPPY: u32 = 0x4;
/// `DUMP_DH_COMPRESSED_INCOMPLETE` (status only): the writer stopped early.
pub const COMPRESSED_INCOMPLETE: u32 = 0x8;
/// `DUMP_DH_COMPRESSED_ZSTD`: pages are zstd frames.
pub const COMPRESSED_ZSTD: u32 = 0x20;

/// The only page size read (x86_64).
pub const BLOCK_SIZE: u64 = 4096;

/// Bytes of `disk_dump_header` read (through `nr_cpus`).
const HEADER_BYTES: usize = 464;
/// Bytes of `kdump_sub_header` read (through `max_mapnr_64`).
const SUB_HEADER_BYTES: usize = 104;
/// At most this many sub-header blocks (qemu and makedumpfile write one or two).
const MAX_SUB_HDR_BLOCKS: u64 = 1 << 16;
/// At most 2^40 pages (4 PiB of guest-physical address space).
const MAX_MAPNR: u64 = 1 << 40;

/// What the headers say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KdumpHeader {
    /// `"KDUMP   "` or the old `"DISKDUMP"`.
    pub signature: String,
    /// `header_version` (6 for qemu and current makedumpfile).
    pub header_version: i32,
    /// The guest's `uname -r`.
    pub release: String,
    /// `uname -m`.
    pub machine: String,
    /// `status`: compression bits and flags.
    pub status: u32,
    /// `sub_hdr_size`, in blocks.
    pub sub_hdr_blocks: u64,
    /// `bitmap_blocks`: both bitmaps, in blocks.
    pub bitmap_blocks: u64,
    /// Pages the bitmaps cover (`max_mapnr_64`, else `max_mapnr`).
    pub max_mapnr: u64,
    /// `nr_cpus`.
    pub nr_cpus: i32,
    /// `phys_base` (sub-header; qemu 7.2 writes a wrong one, so analyses find their own).
    #[serde(with = "crate::hex")]
    pub phys_base: u64,
    /// makedumpfile's dump level (`-d`): a mask of the kinds of page left out (zero,
    /// cache, user, free pages).
    pub dump_level: i32,
    /// A split dump's part (`split`): this file holds only some of the pages.
    pub split: bool,
    /// (offset, size) of the raw VMCOREINFO text (header version 3+).
    pub vmcoreinfo: Option<(u64, u64)>,
    /// (offset, size) of the ELF notes (header version 4+).
    pub notes: Option<(u64, u64)>,
}

impl KdumpHeader {
    /// Reads and checks the headers at the start of `src`.
    pub fn read(src: &dyn ByteSource) -> Result<KdumpHeader> {
        let size = src.len();
        if size < BLOCK_SIZE {
            return Err(Error::Kdump {
                offset: 0,
                reason: format!(
                    "the file has {size} bytes, less than its {BLOCK_SIZE}-byte header: truncated"
                ),
            });
        }
        let mut h = [0u8; HEADER_BYTES];
        src.read_at(0, &mut h)?;
        let bad = |offset: u64, reason: String| Error::Kdump { offset, reason };
        let signature = &h[..8];
        if signature != b"KDUMP   " && signature != b"DISKDUMP" {
            return Err(bad(0, "no KDUMP signature".into()));
        }
        let i32_at = |o: usize| i32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let text = |o: usize| {
            let field = &h[o..o + 65];
            let end = field.iter().position(|&b| b == 0).unwrap_or(65);
            String::from_utf8_lossy(&field[..end]).into_owned()
        };
        let header_version = i32_at(8);
        let block_size = i32_at(428);
        if i64::from(block_size) != BLOCK_SIZE as i64 {
            return Err(bad(
                428,
                format!("block_size is {block_size}; only 4096-byte pages (x86_64) are read"),
            ));
        }
        let sub_hdr_blocks = u64::try_from(i32_at(432)).unwrap_or(u64::MAX);
        if sub_hdr_blocks == 0 || sub_hdr_blocks > MAX_SUB_HDR_BLOCKS {
            return Err(bad(432, format!("sub_hdr_size is {}", i32_at(432))));
        }
        let bitmap_blocks = u64::from(u32_at(436));
        let mut header = KdumpHeader {
            signature: String::from_utf8_lossy(signature).trim_end().to_string(),
            header_version,
            release: text(12 + 2 * 65),
            machine: text(12 + 4 * 65),
            status: u32_at(424),
            sub_hdr_blocks,
            bitmap_blocks,
            max_mapnr: u64::from(u32_at(440)),
            nr_cpus: i32_at(460),
            phys_base: 0,
            dump_level: 0,
            split: false,
            vmcoreinfo: None,
            notes: None,
        };
        if !header.machine.is_empty() && header.machine != "x86_64" {
            return Err(Error::OtherFormat {
                what: "a kdump-compressed dump of a machine other than x86_64",
                advice: "coroner reads x86_64 guests",
            });
        }
        if header_version >= 1 {
            let mut s = [0u8; SUB_HEADER_BYTES];
            src.read_at(BLOCK_SIZE, &mut s)
                .map_err(|e| bad(BLOCK_SIZE, format!("the sub-header cannot be read: {e}")))?;
            let u64_at = |o: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&s[o..o + 8]);
                u64::from_le_bytes(b)
            };
            header.phys_base = u64_at(0);
            header.dump_level = i32::from_le_bytes([s[8], s[9], s[10], s[11]]);
            if header_version >= 2 {
                header.split = i32::from_le_bytes([s[12], s[13], s[14], s[15]]) != 0;
            }
            let region = |o: usize| Some((u64_at(o), u64_at(o + 8))).filter(|r| r.1 > 0);
            if header_version >= 3 {
                header.vmcoreinfo = region(32);
            }
            if header_version >= 4 {
                header.notes = region(48);
            }
            if header_version >= 6 {
                header.max_mapnr = u64_at(96);
            }
        }
        if header.max_mapnr == 0 || header.max_mapnr > MAX_MAPNR {
            return Err(bad(
                if header_version >= 6 {
                    BLOCK_SIZE + 96
                } else {
                    440
                },
                format!("max_mapnr is {}", header.max_mapnr),
            ));
        }
        Ok(header)
    }

    /// The compression the status names, for reports.
    pub fn compression(&self) -> &'static str {
        match self.status & (COMPRESSED_ZLIB | COMPRESSED_LZO | COMPRESSED_SNAPPY | COMPRESSED_ZSTD)
        {
            0 => "none",
            COMPRESSED_ZLIB => "zlib",
            COMPRESSED_LZO => "lzo",
            COMPRESSED_SNAPPY => "snappy",
            COMPRESSED_ZSTD => "zstd",
            _ => "mixed",
        }
    }

    /// makedumpfile ran out of space: pages past some point were never written.
    pub fn incomplete(&self) -> bool {
        self.status & COMPRESSED_INCOMPLETE != 0
    }

    /// Where the bitmaps start.
    pub fn bitmap_offset(&self) -> u64 {
        (1 + self.sub_hdr_blocks) * BLOCK_SIZE
    }

    /// Where the page descriptors start.
    pub fn descriptors_offset(&self) -> u64 {
        (1 + self.sub_hdr_blocks + self.bitmap_blocks) * BLOCK_SIZE
    }
}
