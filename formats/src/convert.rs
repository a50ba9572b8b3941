//! File-level conversions: a plain ELF core into a container, and back.

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
    mut meta: Metadata,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Finished> {
    let src = MappedFile::open(input)?;
    let elf = ElfCore::parse(&src)?;
    if meta.vmcoreinfo_offset.is_none() {
        meta.vmcoreinfo_offset = elf.vmcoreinfo_offset;
    }
    let bytes = src.bytes();
    let mut spotter = PageSpotter::new();
    progress.set_total(bytes.len() as u64);
    let mut writer = ContainerWriter::create(output, opts)?;
    for chunk in bytes.chunks(CHUNK) {
        if interrupted(interrupt) {
            writer.abandon(meta, "interrupted", false)?;
            return Err(Error::Interrupted);
        }
        spotter.feed(
            writer.bytes_in(),
            chunk,
            &bytes[..bytes.len().min(HEAD_BYTES)],
        );
        if let Err(e) = writer.write_all(chunk) {
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
    mut meta: Metadata,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Finished> {
    match crate::core_file::identify_file(input) {
        Ok(crate::Format::Kdump | crate::Format::KdumpFlattened) => {}
        // Anything else is compressed as an ELF core, or refused saying what it is.
        _ => return compress_elf(input, output, opts, meta, progress, interrupt),
    }
    let core = crate::core_file::open(input)?;
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
    crate::elf_writer::write_elf_container(&core, &runs, output, opts, meta, progress, interrupt)
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
