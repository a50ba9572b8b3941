//! kdump-compressed dumps ("diskdump", makedumpfile's format; qemu's `kdump-*` and
//! `kdump-raw-*` dump formats), in both layouts: the plain file (`"KDUMP   "`) and the
//! flattened stream (`"makedumpfile"`), read in place. The headers give the guest's
//! release and what was left out, the sub-header the same ELF notes a qemu ELF dump has
//! (vCPU registers, VMCOREINFO), the bitmaps and page descriptors the memory.

mod flat;
mod header;
mod mem;
mod page;
mod stream;

use std::sync::Arc;

use serde::Serialize;

pub use flat::FlatFile;
pub use header::{
    KdumpHeader, COMPRESSED_INCOMPLETE, COMPRESSED_LZO, COMPRESSED_SNAPPY, COMPRESSED_ZLIB,
    COMPRESSED_ZSTD,
};
pub use mem::KdumpMem;
pub use stream::{KdumpStream, StreamedKdump};

use crate::elf::{ElfCore, Machine};
use crate::error::{Error, Result};
use crate::source::ByteSource;

/// Largest notes region read (qemu writes a few KiB per vCPU).
const MAX_NOTES: u64 = 64 << 20;

/// What a kdump-compressed dump says about itself, for `inspect` and reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KdumpInfo {
    /// `plain` or `flattened`.
    pub layout: &'static str,
    /// The headers.
    pub header: KdumpHeader,
    /// `zlib`, `lzo`, `snappy`, `zstd`, `none` or `mixed`, by the header's status.
    pub compression: &'static str,
    /// makedumpfile ran out of space: some pages were never written.
    pub incomplete: bool,
    /// Pages present.
    pub pages: u64,
    /// Pages of RAM left out by the dump level.
    pub excluded_pages: u64,
    /// The dump level leaves out only zero pages, so those read as zeros; otherwise they
    /// are absent.
    pub excluded_are_zeros: bool,
    /// Pages an incomplete dump announced but never wrote.
    pub unwritten_pages: u64,
}

impl KdumpInfo {
    /// The metadata's `converted_from` for a container made from this dump (FORMAT.md).
    pub fn converted_from(&self, format: crate::Format) -> serde_json::Value {
        serde_json::json!({
            "format": format.name(),
            "layout": self.layout,
            "compression": self.compression,
            "dump_level": self.header.dump_level,
            "pages": self.pages,
            "excluded_pages": self.excluded_pages,
            "incomplete": self.incomplete,
        })
    }
}

/// An opened kdump-compressed dump.
pub struct Kdump {
    /// The rearranged file (the file itself for the plain layout).
    pub file: Arc<dyn ByteSource>,
    /// Facts for reports.
    pub info: KdumpInfo,
    /// Its notes, as an ELF core without PT_LOADs.
    pub elf: ElfCore,
    /// Its memory.
    pub mem: KdumpMem,
}

impl Kdump {
    /// Opens the dump whose bytes are `src`; `flattened` when it starts with the
    /// flattened header.
    pub fn open(src: Arc<dyn ByteSource>, flattened: bool) -> Result<Kdump> {
        let file: Arc<dyn ByteSource> = if flattened {
            Arc::new(FlatFile::open(src)?)
        } else {
            src
        };
        let header = KdumpHeader::read(file.as_ref())?;
        if header.split {
            return Err(Error::OtherFormat {
                what: "one part of a split kdump-compressed dump (makedumpfile --split)",
                advice: "join the parts first: makedumpfile --reassemble PART... OUT",
            });
        }
        let mem = KdumpMem::new(file.clone(), &header)?;
        let region = |(offset, size): (u64, u64), what: &str| -> Result<Vec<u8>> {
            if size > MAX_NOTES || offset.checked_add(size).is_none_or(|e| e > file.len()) {
                return Err(Error::Kdump {
                    offset: header::BLOCK_SIZE,
                    reason: format!(
                        "the sub-header puts {size:#x} bytes of {what} at {offset:#x}, past the end of the file ({:#x} bytes) or too large",
                        file.len()
                    ),
                });
            }
            let mut b = vec![0u8; size as usize];
            file.read_at(offset, &mut b)?;
            Ok(b)
        };
        let mut elf = match header.notes {
            Some(r) => ElfCore::from_notes(&region(r, "notes")?, r.0, Machine::X86_64)?,
            None => ElfCore::from_notes(&[], 0, Machine::X86_64)?,
        };
        // Version 3 keeps VMCOREINFO apart from notes; later ones have both.
        if elf.vmcoreinfo.is_none() {
            if let Some(r) = header.vmcoreinfo {
                let text = region(r, "VMCOREINFO")?;
                elf.vmcoreinfo = Some(
                    String::from_utf8_lossy(&text)
                        .trim_end_matches('\0')
                        .to_string(),
                );
                elf.vmcoreinfo_offset = Some(r.0);
            }
        }
        let info = KdumpInfo {
            layout: if flattened { "flattened" } else { "plain" },
            compression: header.compression(),
            incomplete: header.incomplete(),
            pages: crate::physmem::PhysMem::present_bytes(&mem) / header::BLOCK_SIZE,
            excluded_pages: mem.excluded_pages,
            excluded_are_zeros: mem.excluded_are_zeros,
            unwritten_pages: mem.unwritten_pages,
            header,
        };
        Ok(Kdump {
            file,
            info,
            elf,
            mem,
        })
    }
}

#[cfg(test)]
mod tests;
