//! Opening a dump file of any supported format as a [`Core`].

use std::fs::File;
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
    match u32::from_le_bytes(magic) {
        0x464c_457f => Ok(Format::Elf),
        0xfd2f_b528 => Ok(Format::Container),
        m if m & 0xffff_fff0 == 0x184d_2a50 => Ok(Format::Container),
        _ => Err(Error::UnknownFormat { found: magic }),
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
    let mut file = File::open(path).map_err(io("open"))?;
    let file_size = file.metadata().map_err(io("stat"))?.len();
    let mut magic = [0u8; 4];
    if file_size < 4 {
        return Err(Error::Truncated {
            offset: 0,
            needed: 4,
            size: file_size,
        });
    }
    file.read_exact(&mut magic).map_err(io("read"))?;
    let format = detect(magic)?;
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
