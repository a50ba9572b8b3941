//! Opening a dump file of any supported format as a [`Core`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::core_mem::CoreMem;
use crate::elf::ElfCore;
use crate::error::{Error, Result};
use crate::physmem::PhysMem;
use crate::recording::RecordingMem;
use crate::source::{ByteSource, MappedFile};
use crate::zst::{ContainerReader, Metadata};

/// The on-disk format of a dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A plain ELF core as `dump-guest-memory` writes it.
    Elf,
    /// A `.core.zst` container: a seekable zstd stream of an ELF core.
    Container,
}

impl Format {
    /// A short human name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Elf => "ELF core",
            Format::Container => "compressed ELF core (.core.zst)",
        }
    }
}

/// Tells the format from a file's first four bytes.
pub fn detect(magic: [u8; 4]) -> Result<Format> {
    identify(&magic)
}

/// Formats that are not dumps coroner reads, by their signature at offset 0, with what
/// to do instead.
const OTHER_FORMATS: &[(&[u8], &str, &str)] = &[
    (
        b"KDUMP   ",
        "a kdump-compressed dump (makedumpfile, qemu's kdump-* formats)",
        "coroner does not read it yet; take an ELF dump instead (virsh dump --memory-only --format elf, or QMP dump-guest-memory without a format), or convert it with makedumpfile -E",
    ),
    (
        b"makedumpfile\0",
        "a flattened kdump-compressed dump (makedumpfile -F, qemu's kdump-* formats into a pipe)",
        "coroner does not read it yet; rearrange it with makedumpfile -R and convert it with makedumpfile -E, or take an ELF dump instead",
    ),
    (
        b"QEVM",
        "a qemu migration stream (virsh dump or virsh save without --memory-only), not a memory dump",
        "take a memory-only dump: virsh dump --memory-only --format elf DOMAIN FILE, or coroner capture",
    ),
    (
        b"PAGEDU64",
        "a Windows crash dump (qemu's win-dmp format)",
        "coroner reads Linux guests' ELF dumps; open it with WinDbg",
    ),
    (
        b"PAGEDUMP",
        "a 32-bit Windows crash dump",
        "coroner reads Linux guests' ELF dumps; open it with WinDbg",
    ),
];

/// Tells the format from a file's first bytes (at least four; sixteen name more of the
/// files that are not dumps).
pub fn identify(head: &[u8]) -> Result<Format> {
    let mut magic = [0u8; 4];
    let n = head.len().min(4);
    magic[..n].copy_from_slice(&head[..n]);
    match u32::from_le_bytes(magic) {
        0x464c_457f => return Ok(Format::Elf),
        0xfd2f_b528 => return Ok(Format::Container),
        m if m & 0xffff_fff0 == 0x184d_2a50 => return Ok(Format::Container),
        _ => {}
    }
    for (sig, what, advice) in OTHER_FORMATS {
        if head.starts_with(sig) {
            return Err(Error::OtherFormat { what, advice });
        }
    }
    Err(Error::UnknownFormat { found: magic })
}

/// An opened dump: its parsed ELF core, container metadata, and guest memory.
pub struct Core {
    /// The file it was opened from.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// Size of the file on disk.
    pub file_size: u64,
    /// The ELF core's headers and notes.
    pub elf: ElfCore,
    /// The container's metadata, when it has any.
    pub metadata: Option<Metadata>,
    mem: RecordingMem<CoreMem>,
}

impl Core {
    /// Guest-physical memory.
    pub fn mem(&self) -> &dyn PhysMem {
        &self.mem
    }

    /// The concrete memory type (file offsets, clipping figures).
    pub fn core_mem(&self) -> &CoreMem {
        self.mem.inner()
    }

    /// Starts or stops noting which pages reads through [`Core::mem`] touch.
    pub fn record_pages(&self, on: bool) {
        self.mem.record(on);
    }

    /// Pages (address / 4096) read while recording, plus any noted with
    /// [`Core::note_pages`].
    pub fn recorded_pages(&self) -> std::collections::BTreeSet<u64> {
        self.mem.pages()
    }

    /// Notes `[addr, addr + len)` as needed even though it was not read (a page found by a
    /// search whose reads were not recorded).
    pub fn note_pages(&self, addr: crate::PhysAddr, len: u64) {
        self.mem.note(addr, len);
    }
}

/// Opens a plain ELF core or a `.core.zst` container.
pub fn open(path: &Path) -> Result<Core> {
    let io = |what| {
        let path = path.to_path_buf();
        move |source| Error::Io { what, path, source }
    };
    let mut file = crate::input_file::open_regular(path)?;
    let file_size = file.metadata().map_err(io("stat"))?.len();
    let mut head = [0u8; 16];
    if file_size < 4 {
        return Err(Error::Truncated {
            offset: 0,
            needed: 4,
            size: file_size,
        });
    }
    let n = file_size.min(16) as usize;
    file.read_exact(&mut head[..n]).map_err(io("read"))?;
    let format = identify(&head[..n])?;
    let (source, metadata): (Arc<dyn ByteSource>, _) = match format {
        Format::Elf => (Arc::new(MappedFile::from_file(&file, path)?), None),
        Format::Container => {
            let reader = ContainerReader::open(path)?;
            let metadata = reader.metadata().cloned();
            (Arc::new(reader), metadata)
        }
    };
    let elf = ElfCore::parse(source.as_ref())?;
    let mem = CoreMem::new(source, &elf.loads);
    Ok(Core {
        path: path.to_path_buf(),
        format,
        file_size,
        elf,
        metadata,
        mem: RecordingMem::new(mem),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_dumps_are_named() {
        for (head, what) in [
            (&b"KDUMP   \x06\0\0\0"[..], "kdump-compressed"),
            (b"makedumpfile\0\0\0\0", "flattened"),
            (b"QEVM\0\0\0\x03", "migration stream"),
            (b"PAGEDU64", "Windows"),
        ] {
            match identify(head) {
                Err(e @ Error::OtherFormat { .. }) => {
                    assert!(e.to_string().contains(what), "{e}")
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        assert_eq!(identify(b"\x7fELF\x02\x01").unwrap(), Format::Elf);
        assert_eq!(identify(b"\x28\xb5\x2f\xfd").unwrap(), Format::Container);
        let e = identify(b"GIF89a").unwrap_err();
        assert!(e.to_string().contains("47 49 46 38"), "{e}");
    }
}
