//! File-level conversions: a plain ELF core into a container, and back.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::elf::ElfCore;
use crate::error::{Error, Result};
use crate::output_file::OutputFile;
use crate::page_spotter::PageSpotter;
use crate::progress::{interrupted, Progress};
use crate::source::{ByteSource, MappedFile};
use crate::zst::{
    ContainerReader, ContainerWriter, ContentDigest, Finished, Metadata, WriteOptions,
};

/// Bytes handed to the writer at a time, so progress and interruption stay responsive.
const CHUNK: usize = 8 << 20;
/// The stream's head that holds the ELF headers and notes.
const HEAD_BYTES: usize = 8 << 20;

/// Compresses the ELF core at `input` into a container at `output`.
///
/// The input is parsed first, so a file that is not a qemu ELF core is refused before
/// anything is written. `meta` is completed by the writer (sizes, checksum, `complete`).
/// On interruption or error, no file named `output` exists afterwards.
pub fn compress_elf(
    input: &Path,
    output: &Path,
    opts: WriteOptions,
    meta: Metadata,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Finished> {
    let src = MappedFile::open(input)?;
    let elf = ElfCore::parse(&src)?;
    let bytes = src.bytes();
    let chunks = bytes.chunks(CHUNK).map(|c| Ok(Cow::Borrowed(c)));
    let head = &bytes[..bytes.len().min(HEAD_BYTES)];
    let writer = ContainerWriter::create(output, opts)?;
    compress_chunks(
        &elf,
        head,
        bytes.len() as u64,
        chunks,
        writer,
        meta,
        progress,
        interrupt,
    )
}

/// Writes `chunks` (the whole ELF core `elf`, whose first bytes are `head`) into
/// `writer`, noting where VMCOREINFO may be.
#[allow(clippy::too_many_arguments)]
fn compress_chunks<'a>(
    elf: &ElfCore,
    head: &[u8],
    total: u64,
    chunks: impl Iterator<Item = Result<Cow<'a, [u8]>>>,
    mut writer: ContainerWriter,
    mut meta: Metadata,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Finished> {
    if meta.vmcoreinfo_offset.is_none() {
        meta.vmcoreinfo_offset = elf.vmcoreinfo_offset;
    }
    let mut spotter = PageSpotter::new();
    progress.set_total(total);
    for chunk in chunks {
        if interrupted(interrupt) {
            writer.abandon(meta, "interrupted", false)?;
            return Err(Error::Interrupted);
        }
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = writer.abandon(meta, &e.to_string(), false);
                return Err(e);
            }
        };
        spotter.feed(writer.bytes_in(), &chunk, head);
        if let Err(e) = writer.write_all(&chunk) {
            // The partial file is useless here: the input is still there to retry with.
            let _ = writer.abandon(meta, &e.to_string(), false);
            return Err(e);
        }
        progress.set_done(writer.bytes_in());
    }
    meta.vmcoreinfo_candidates = spotter.found().to_vec();
    writer.finish(meta)
}

/// Compresses the dump at `input` into a container at `output`: a plain ELF core byte
/// for byte ([`compress_elf`]); a kdump-compressed dump (either layout) as a new ELF core
/// of its notes and every page it holds, one `PT_LOAD` per run of present pages, pages
/// it left out absent (so `export` gives that ELF, not the kdump file back). The
/// container's metadata says what it was converted from (`converted_from`).
pub fn compress_dump(
    input: &Path,
    output: &Path,
    opts: WriteOptions,
    meta: Metadata,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Finished> {
    match crate::core_file::identify_file(input) {
        Ok(crate::Format::Kdump | crate::Format::KdumpFlattened) => {}
        // Anything else is compressed as an ELF core, or refused saying what it is.
        _ => return compress_elf(input, output, opts, meta, progress, interrupt),
    }
    let core = crate::core_file::open(input)?;
    compress_kdump(&core, output, opts, meta, progress, interrupt)
}

/// [`compress_dump`] of a dump read from `src` (an object read by ranges, `name` for
/// messages): a plain ELF core read in order, byte for byte; a kdump-compressed dump as
/// [`compress_dump`] makes it.
pub fn compress_source(
    name: &Path,
    src: Box<dyn ByteSource>,
    output: &Path,
    opts: WriteOptions,
    meta: Metadata,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Finished> {
    let total = src.len();
    let mut magic = [0u8; 16];
    let n = total.min(16) as usize;
    src.read_at(0, &mut magic[..n])?;
    if let Ok(crate::Format::Kdump | crate::Format::KdumpFlattened) =
        crate::core_file::identify(&magic[..n])
    {
        let core = crate::core_file::open_source(name, src)?;
        return compress_kdump(&core, output, opts, meta, progress, interrupt);
    }
    let elf = ElfCore::parse(&*src)?;
    let mut head = vec![0u8; total.min(HEAD_BYTES as u64) as usize];
    src.read_at(0, &mut head)?;
    let chunks = (0..total).step_by(CHUNK).map(|at| {
        let mut buf = vec![0u8; (total - at).min(CHUNK as u64) as usize];
        src.read_at(at, &mut buf)?;
        Ok(Cow::Owned(buf))
    });
    let writer = ContainerWriter::create(output, opts)?;
    compress_chunks(
        &elf, &head, total, chunks, writer, meta, progress, interrupt,
    )
}

/// A kdump-compressed dump, opened, into a container of an ELF core made from it.
fn compress_kdump(
    core: &crate::Core,
    output: &Path,
    opts: WriteOptions,
    mut meta: Metadata,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Finished> {
    if let Some(k) = &core.kdump {
        meta.extra
            .insert("converted_from".into(), k.converted_from(core.format));
    }
    let runs: Vec<(u64, u64)> = core
        .mem()
        .ranges()
        .iter()
        .map(|r| (r.start.0, r.len()))
        .collect();
    crate::elf_writer::write_elf_container(core, &runs, output, opts, meta, progress, interrupt)
}

/// What [`export_elf`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The ELF file.
    pub path: PathBuf,
    /// Bytes written.
    pub size: u64,
    /// The content digest, computed as the container's format version records it.
    pub digest: ContentDigest,
    /// True when the container's metadata recorded a checksum and it matched.
    pub verified: bool,
}

/// Writes the ELF core held by the container at `input` to `output` (mode 0600), checking
/// it against the checksum the container recorded.
pub fn export_elf(
    input: &Path,
    output: &Path,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Exported> {
    export_container(&ContainerReader::open(input)?, output, progress, interrupt)
}

/// [`export_elf`] of a container already open (a file, an object read by ranges).
pub fn export_container(
    reader: &ContainerReader,
    output: &Path,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Exported> {
    let verified = reader
        .metadata()
        .is_some_and(|m| m.complete && m.recorded_digest().is_some());
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { what, path, source }
    };
    let mut out = OutputFile::create(output)?;
    progress.set_total(reader.len());
    let digest = {
        let temp = out.temp_path().to_path_buf();
        let mut w = BufWriter::with_capacity(1 << 20, out.file_mut());
        let digest = reader.copy_to(&mut w, progress, interrupt)?;
        w.flush().map_err(io("write", &temp))?;
        digest
    };
    // On any error above, `out` is dropped and its temporary file removed.
    let path = out.commit()?;
    let size = File::open(&path)
        .and_then(|f| f.metadata())
        .map_err(io("stat", &path))?
        .len();
    Ok(Exported {
        path,
        size,
        digest,
        verified,
    })
}
