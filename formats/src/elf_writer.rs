//! Writes a new ELF core from an opened dump: the given runs of guest pages (one
//! `PT_LOAD` each) and every note of the source, into a container. Slim captures keep
//! only the pages the analyses read; `compress` of a dump that is not an ELF core (a
//! kdump-compressed one) keeps every present page. qemu's `paging=false` layout:
//! `p_vaddr` 0, `p_paddr` the guest-physical address; PN_XNUM when the runs outnumber
//! `e_phnum`.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use crate::core_file::Core;
use crate::elf::{ElfClass, Machine};
use crate::error::{Error, Result};
use crate::progress::{interrupted, Progress};
use crate::recording::PAGE;
use crate::zst::{ContainerWriter, Finished, Metadata, WriteOptions};
use crate::PhysAddr;

/// Header sizes by class: (ELF header, program header).
const SIZES64: (usize, usize) = (64, 56);
const SIZES32: (usize, usize) = (52, 32);
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
/// `e_phnum` that means "see section header 0".
const PN_XNUM: usize = 0xffff;
/// Largest note descriptor copied (qemu's are a few hundred bytes; VMCOREINFO 4 KiB).
const MAX_DESC: u64 = 1 << 20;

fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// The notes of `core`, re-serialized in order.
pub(crate) fn notes_blob(core: &Core) -> Result<Vec<u8>> {
    notes_blob_of(&core.elf, &|offset, buf| core.read_file(offset, buf))
}

/// The notes of `elf`, whose descriptors `read` gives by file offset, re-serialized in
/// order.
pub(crate) fn notes_blob_of(
    elf: &crate::elf::ElfCore,
    read: &dyn Fn(u64, &mut [u8]) -> Result<()>,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for n in &elf.notes {
        if n.desc_len > MAX_DESC {
            return Err(Error::Note {
                offset: n.offset,
                reason: format!("descriptor of {} bytes is too large to copy", n.desc_len),
            });
        }
        let mut desc = vec![0u8; n.desc_len as usize];
        read(n.desc_offset, &mut desc)?;
        let mut name = n.name.as_bytes().to_vec();
        name.push(0);
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&n.kind.to_le_bytes());
        out.extend_from_slice(&name);
        out.resize(align4(out.len()), 0);
        out.extend_from_slice(&desc);
        out.resize(align4(out.len()), 0);
    }
    Ok(out)
}

/// One program header; p_flags 0 and p_vaddr 0 (qemu's paging=false layout).
fn phdr(class64: bool, kind: u32, offset: u64, paddr: u64, size: u64) -> Result<Vec<u8>> {
    if class64 {
        let mut h = vec![0u8; SIZES64.1];
        h[0..4].copy_from_slice(&kind.to_le_bytes());
        h[8..16].copy_from_slice(&offset.to_le_bytes());
        h[24..32].copy_from_slice(&paddr.to_le_bytes());
        h[32..40].copy_from_slice(&size.to_le_bytes());
        h[40..48].copy_from_slice(&size.to_le_bytes());
        return Ok(h);
    }
    let narrow = |v: u64, field: &'static str| {
        u32::try_from(v).map_err(|_| Error::ElfHeader {
            field,
            value: v,
            expected: "below 4 GiB in a 32-bit ELF",
        })
    };
    let mut h = vec![0u8; SIZES32.1];
    h[0..4].copy_from_slice(&kind.to_le_bytes());
    h[4..8].copy_from_slice(&narrow(offset, "p_offset")?.to_le_bytes());
    h[12..16].copy_from_slice(&narrow(paddr, "p_paddr")?.to_le_bytes());
    h[16..20].copy_from_slice(&narrow(size, "p_filesz")?.to_le_bytes());
    h[20..24].copy_from_slice(&narrow(size, "p_memsz")?.to_le_bytes());
    Ok(h)
}

/// Writes an ELF core of `core`'s notes and the guest pages in `runs` (first address,
/// bytes; page-aligned, sorted, present) into a container at `out`. On error or
/// interruption the container is left marked incomplete, never complete.
pub fn write_elf_container(
    core: &Core,
    runs: &[(u64, u64)],
    out: &Path,
    opts: WriteOptions,
    meta: Metadata,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Finished> {
    let class64 = core.elf.class == ElfClass::Elf64;
    let machine: u16 = match core.elf.machine {
        Machine::X86_64 => 62,
        Machine::I386 => 3,
        Machine::Other(m) => {
            return Err(Error::ElfHeader {
                field: "e_machine",
                value: u64::from(m),
                expected: "x86_64 or i386",
            })
        }
    };
    let mem = core.mem();
    let notes = notes_blob(core)?;
    // More program headers than e_phnum holds: PN_XNUM, the count in section header 0.
    let head = elf_head(class64, machine, runs, &notes, 1 + runs.len() >= PN_XNUM)?;
    let total = runs.iter().map(|r| r.1).sum::<u64>();
    progress.set_total(total);
    let mut done = 0u64;

    let mut w = ContainerWriter::create(out, opts)?;
    if let Err(e) = w.write_all(&head) {
        let _ = w.abandon(meta, &e.to_string(), false);
        return Err(e);
    }
    let mut page = vec![0u8; PAGE as usize];
    for &(start, len) in runs {
        let mut at = start;
        while at < start + len {
            if interrupted(interrupt) {
                w.abandon(meta, "interrupted", false)?;
                return Err(Error::Interrupted);
            }
            let step = mem
                .read_at(PhysAddr(at), &mut page)
                .map_err(|e| Error::Stream {
                    what: "read a page of the source dump",
                    source: std::io::Error::other(e.to_string()),
                })
                .and_then(|()| w.write_all(&page));
            if let Err(e) = step {
                let _ = w.abandon(meta, &e.to_string(), false);
                return Err(e);
            }
            at += PAGE;
            done += PAGE;
            if done % (8 << 20) == 0 {
                progress.set_done(done);
            }
        }
    }
    w.finish(meta)
}

/// The x86_64 ELF64 head (headers and `notes`, padded to the first page) for `runs` of
/// pages written in order after it, as [`write_elf_container`] writes it.
pub(crate) fn elf64_head(runs: &[(u64, u64)], notes: &[u8]) -> Result<Vec<u8>> {
    elf_head(true, 62, runs, notes, 1 + runs.len() >= PN_XNUM)
}

/// The ELF header, program headers (PN_XNUM's section header 0 when `xnum`) and notes,
/// padded to the first page of data, for `runs` of pages written in order after them.
fn elf_head(
    class64: bool,
    machine: u16,
    runs: &[(u64, u64)],
    notes: &[u8],
    xnum: bool,
) -> Result<Vec<u8>> {
    let (ehdr, phdr_size) = if class64 { SIZES64 } else { SIZES32 };
    let phnum = 1 + runs.len();
    let shdr_size = if class64 { 64 } else { 40 };
    let sh_off = (ehdr + phdr_size * phnum) as u64;
    let notes_off = sh_off + if xnum { shdr_size as u64 } else { 0 };
    let mut data_off = notes_off + notes.len() as u64;
    data_off = data_off.div_ceil(PAGE) * PAGE;

    let mut head = Vec::with_capacity(data_off as usize);
    let phnum16 = if xnum { PN_XNUM as u16 } else { phnum as u16 };
    let mut e = vec![0u8; ehdr];
    e[0..4].copy_from_slice(b"\x7fELF");
    e[4] = if class64 { 2 } else { 1 }; // ELFCLASS
    e[5] = 1; // little-endian
    e[6] = 1; // EV_CURRENT
    e[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
    e[18..20].copy_from_slice(&machine.to_le_bytes());
    e[20..24].copy_from_slice(&1u32.to_le_bytes());
    // e_phoff, e_shoff, then (after e_flags) e_ehsize, e_phentsize, e_phnum, e_shentsize,
    // e_shnum.
    let at = if class64 {
        e[32..40].copy_from_slice(&(ehdr as u64).to_le_bytes());
        if xnum {
            e[40..48].copy_from_slice(&sh_off.to_le_bytes());
        }
        52
    } else {
        e[28..32].copy_from_slice(&(ehdr as u32).to_le_bytes());
        if xnum {
            e[32..36].copy_from_slice(&(sh_off as u32).to_le_bytes());
        }
        40
    };
    e[at..at + 2].copy_from_slice(&(ehdr as u16).to_le_bytes());
    e[at + 2..at + 4].copy_from_slice(&(phdr_size as u16).to_le_bytes());
    e[at + 4..at + 6].copy_from_slice(&phnum16.to_le_bytes());
    if xnum {
        e[at + 6..at + 8].copy_from_slice(&(shdr_size as u16).to_le_bytes());
        e[at + 8..at + 10].copy_from_slice(&1u16.to_le_bytes());
    }
    head.extend_from_slice(&e);
    head.extend_from_slice(&phdr(class64, PT_NOTE, notes_off, 0, notes.len() as u64)?);
    let mut off = data_off;
    for &(start, len) in runs {
        head.extend_from_slice(&phdr(class64, PT_LOAD, off, start, len)?);
        off += len;
    }
    if xnum {
        // Section header 0: sh_info holds the program header count.
        let mut sh = vec![0u8; shdr_size];
        let info_at = if class64 { 44 } else { 28 };
        sh[info_at..info_at + 4].copy_from_slice(&(phnum as u32).to_le_bytes());
        head.extend_from_slice(&sh);
    }
    head.extend_from_slice(notes);
    head.resize(data_off as usize, 0);
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ByteSource;

    #[test]
    fn pn_xnum_puts_the_program_header_count_in_section_header_0() {
        let runs = [(0x1000, 0x1000), (0x5000, 0x2000)];
        for class64 in [true, false] {
            let mut file =
                elf_head(class64, if class64 { 62 } else { 3 }, &runs, &[], true).unwrap();
            let head_len = file.len();
            file.resize(head_len + 0x3000, 0x5a);
            let core = crate::elf::ElfCore::parse(&file as &dyn ByteSource).unwrap();
            let loads: Vec<(u64, u64, u64)> = core
                .loads
                .iter()
                .map(|l| (l.paddr, l.file_size, l.offset))
                .collect();
            assert_eq!(
                loads,
                [
                    (0x1000, 0x1000, head_len as u64),
                    (0x5000, 0x2000, head_len as u64 + 0x1000)
                ],
                "class64 {class64}"
            );
        }
    }
}
