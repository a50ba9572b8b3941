//! Opening a dump file of any supported format as a [`Core`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::addr::{PhysAddr, PhysRange};
use crate::core_mem::CoreMem;
use crate::elf::ElfCore;
use crate::error::{Error, Result};
use crate::kdump::{Kdump, KdumpInfo, KdumpMem};
use crate::physmem::{MemError, PhysMem};
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
    /// A kdump-compressed dump (makedumpfile, qemu's `kdump-raw-*` formats).
    Kdump,
    /// A kdump-compressed dump in makedumpfile's flattened layout (`makedumpfile -F`,
    /// qemu's `kdump-*` formats).
    KdumpFlattened,
}

impl Format {
    /// A short human name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Elf => "ELF core",
            Format::Container => "compressed ELF core (.core.zst)",
            Format::Kdump => "kdump-compressed dump",
            Format::KdumpFlattened => "kdump-compressed dump, flattened",
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
    if head.starts_with(b"KDUMP   ") || head.starts_with(b"DISKDUMP") {
        return Ok(Format::Kdump);
    }
    if head.starts_with(b"makedumpfile\0") {
        return Ok(Format::KdumpFlattened);
    }
    for (sig, what, advice) in OTHER_FORMATS {
        if head.starts_with(sig) {
            return Err(Error::OtherFormat { what, advice });
        }
    }
    Err(Error::UnknownFormat { found: magic })
}

/// The memory of a dump, by its format.
pub enum DumpMem {
    /// An ELF core's PT_LOADs (in a plain file or a container).
    Elf(CoreMem),
    /// A kdump-compressed dump's pages.
    Kdump(KdumpMem),
}

impl PhysMem for DumpMem {
    fn read_at(&self, addr: PhysAddr, buf: &mut [u8]) -> std::result::Result<(), MemError> {
        match self {
            DumpMem::Elf(m) => m.read_at(addr, buf),
            DumpMem::Kdump(m) => m.read_at(addr, buf),
        }
    }

    fn ranges(&self) -> &[PhysRange] {
        match self {
            DumpMem::Elf(m) => m.ranges(),
            DumpMem::Kdump(m) => m.ranges(),
        }
    }

    fn zero_run_end(&self, addr: PhysAddr) -> Option<PhysAddr> {
        match self {
            DumpMem::Elf(m) => m.zero_run_end(addr),
            DumpMem::Kdump(m) => m.zero_run_end(addr),
        }
    }
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
    /// What a kdump-compressed dump's headers say.
    pub kdump: Option<KdumpInfo>,
    /// The file's bytes (a flattened kdump's rearranged), for notes.
    file: Arc<dyn ByteSource>,
    mem: RecordingMem<DumpMem>,
}

impl Core {
    /// Guest-physical memory.
    pub fn mem(&self) -> &dyn PhysMem {
        &self.mem
    }

    /// The memory of an ELF core (file offsets, clipping figures); `None` for a
    /// kdump-compressed dump.
    pub fn core_mem(&self) -> Option<&CoreMem> {
        match self.mem.inner() {
            DumpMem::Elf(m) => Some(m),
            DumpMem::Kdump(_) => None,
        }
    }

    /// The dump's own bytes at file `offset` (notes; a flattened dump's rearranged file).
    pub fn read_file(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.file.read_at(offset, buf)
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

/// Opens `path` as a regular file and tells its format from its first bytes.
fn open_and_identify(path: &Path) -> Result<(std::fs::File, u64, Format)> {
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
    Ok((file, file_size, identify(&head[..n])?))
}

/// The format of the file at `path`, by its first bytes.
pub fn identify_file(path: &Path) -> Result<Format> {
    open_and_identify(path).map(|(_, _, format)| format)
}

/// Opens a plain ELF core, a `.core.zst` container or a kdump-compressed dump.
pub fn open(path: &Path) -> Result<Core> {
    let (file, file_size, format) = open_and_identify(path)?;
    let (source, metadata): (Arc<dyn ByteSource>, _) = match format {
        Format::Elf | Format::Kdump | Format::KdumpFlattened => {
            (Arc::new(MappedFile::from_file(&file, path)?), None)
        }
        Format::Container => {
            let reader = ContainerReader::open(path)?;
            let metadata = reader.metadata().cloned();
            (Arc::new(reader), metadata)
        }
    };
    assemble(path, format, file_size, source, metadata)
}

/// Opens a dump whose bytes `raw` reads from elsewhere (an object store, by ranged
/// reads): any format [`open`] takes; `name` is what messages call it.
pub fn open_source(name: &Path, raw: Box<dyn ByteSource>) -> Result<Core> {
    let file_size = raw.len();
    if file_size < 4 {
        return Err(Error::Truncated {
            offset: 0,
            needed: 4,
            size: file_size,
        });
    }
    let mut head = [0u8; 16];
    let n = file_size.min(16) as usize;
    raw.read_at(0, &mut head[..n])?;
    let format = identify(&head[..n])?;
    let (source, metadata): (Arc<dyn ByteSource>, _) = match format {
        Format::Elf | Format::Kdump | Format::KdumpFlattened => (Arc::from(raw), None),
        Format::Container => {
            let reader = ContainerReader::from_source(raw, crate::zst::DEFAULT_CACHE_BYTES)?;
            let metadata = reader.metadata().cloned();
            (Arc::new(reader), metadata)
        }
    };
    assemble(name, format, file_size, source, metadata)
}

/// A [`Core`] over the dump's bytes (a container's content, decompressed as read).
fn assemble(
    path: &Path,
    format: Format,
    file_size: u64,
    source: Arc<dyn ByteSource>,
    metadata: Option<Metadata>,
) -> Result<Core> {
    let (elf, kdump, file, mem) = match format {
        Format::Kdump | Format::KdumpFlattened => {
            let k = Kdump::open(source, format == Format::KdumpFlattened)?;
            (k.elf, Some(k.info), k.file, DumpMem::Kdump(k.mem))
        }
        Format::Elf | Format::Container => {
            let elf = ElfCore::parse(source.as_ref())?;
            let mem = CoreMem::new(source.clone(), &elf.loads);
            (elf, None, source, DumpMem::Elf(mem))
        }
    };
    Ok(Core {
        path: path.to_path_buf(),
        format,
        file_size,
        elf,
        metadata,
        kdump,
        file,
        mem: RecordingMem::new(mem),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_dumps_are_named() {
        for (head, what) in [
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
        assert_eq!(identify(b"KDUMP   \x06\0\0\0").unwrap(), Format::Kdump);
        assert_eq!(
            identify(b"makedumpfile\0\0\0\0").unwrap(),
            Format::KdumpFlattened
        );
        let e = identify(b"GIF89a").unwrap_err();
        assert!(e.to_string().contains("47 49 46 38"), "{e}");
    }
}
