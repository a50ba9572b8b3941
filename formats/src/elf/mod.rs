//! qemu's ELF cores (`dump-guest-memory`, format `elf`) for x86_64 and i386 guests.
//!
//! Facts from qemu's `dump/dump.c`: since qemu 7.2 section headers come before the
//! program headers and `e_ehsize` is wrong (8), so it is never checked; PT_LOADs carry
//! `p_paddr` (and `p_vaddr` equal to it, or 0 before 4.0); notes are one `NT_PRSTATUS`
//! per vCPU, one `QEMU` note per vCPU, then the guest's `VMCOREINFO` note when the guest
//! registered one through `-device vmcoreinfo`.

mod notes;
mod prstatus;
mod qemu_cpu;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::{header, program_header, ProgramHeader, SectionHeader};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::source::ByteSource;

pub use notes::{NoteIter, RawNote};
pub use prstatus::{PrStatus, UserRegs32, UserRegs64, VcpuRegs};
pub use qemu_cpu::{QemuCpuState, Segment, GPR_NAMES};

/// The most program headers accepted (qemu writes one per RAM block).
const MAX_PHDRS: usize = 1 << 20;
/// The largest note segment read (qemu's are a few KiB per vCPU; VMCOREINFO <= 1 MiB).
const MAX_NOTE_SEGMENT: u64 = 64 << 20;
/// The most vCPUs accepted.
const MAX_VCPUS: usize = 8192;

/// The ELF class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ElfClass {
    /// ELFCLASS32.
    Elf32,
    /// ELFCLASS64.
    Elf64,
}

/// The guest architecture as qemu recorded it in `e_machine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Machine {
    /// EM_X86_64: CPU 0 was in long mode.
    #[serde(rename = "x86_64")]
    X86_64,
    /// EM_386: CPU 0 was not in long mode (real, protected, or early boot).
    I386,
    /// Any other `e_machine` value.
    Other(u16),
}

/// Where the program headers sit, which tells qemu versions apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeaderLayout {
    /// Section headers first, program headers at 192: qemu 7.2 and later.
    SectionsFirst,
    /// Program headers right after the ELF header: qemu before 7.2, and other writers.
    ProgramHeadersFirst,
}

/// A PT_LOAD segment: guest-physical memory stored in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LoadSegment {
    /// Index among all program headers.
    pub index: usize,
    /// Guest-physical start (`p_paddr`).
    #[serde(with = "crate::hex")]
    pub paddr: u64,
    /// `p_vaddr`: equal to `p_paddr` (qemu >= 4.0, paging off), 0 (older), or virtual (paging on).
    #[serde(with = "crate::hex")]
    pub vaddr: u64,
    /// File offset of the bytes.
    pub offset: u64,
    /// Bytes stored in the file.
    pub file_size: u64,
    /// Bytes of guest memory the segment spans.
    pub mem_size: u64,
}

/// One note of the dump, located in the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    /// File offset of the note header.
    pub offset: u64,
    /// Note name (`CORE`, `QEMU`, `VMCOREINFO`), lossily decoded.
    pub name: String,
    /// `n_type`.
    pub kind: u32,
    /// File offset of the descriptor.
    pub desc_offset: u64,
    /// Descriptor length.
    pub desc_len: u64,
}

/// One vCPU's state from the notes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Vcpu {
    /// Position in qemu's CPU list (0-based).
    pub index: usize,
    /// The `NT_PRSTATUS` note, if present.
    pub prstatus: Option<PrStatus>,
    /// The `QEMU` note, if present.
    pub qemu: Option<QemuCpuState>,
}

/// A parsed qemu ELF core: headers, memory layout and notes. Guest memory stays in the
/// [`ByteSource`]; read it through [`crate::CoreMem`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ElfCore {
    /// ELF class.
    pub class: ElfClass,
    /// Guest architecture.
    pub machine: Machine,
    /// Header layout (qemu version hint).
    pub layout: HeaderLayout,
    /// PT_LOAD segments that hold bytes, in file order.
    pub loads: Vec<LoadSegment>,
    /// PT_LOADs of a `paging=true` dump with no bytes in the file (`p_offset` = -1).
    pub empty_loads: usize,
    /// Every note, in file order.
    pub notes: Vec<Note>,
    /// vCPUs, pairing the n-th `NT_PRSTATUS` with the n-th `QEMU` note.
    pub vcpus: Vec<Vcpu>,
    /// The `VMCOREINFO` note's text when the dump carries one.
    pub vmcoreinfo: Option<String>,
    /// File offset of the `VMCOREINFO` note's descriptor.
    pub vmcoreinfo_offset: Option<u64>,
    /// Problems that did not stop parsing (a malformed vCPU note, ...).
    pub warnings: Vec<String>,
}

fn read_vec(src: &dyn ByteSource, offset: u64, len: u64) -> Result<Vec<u8>> {
    crate::source::check_bounds(offset, len as usize, src.len())?;
    let mut v = vec![0u8; len as usize];
    src.read_at(offset, &mut v)?;
    Ok(v)
}

fn goblin_err(what: &'static str, value: u64) -> impl Fn(goblin::error::Error) -> Error {
    move |_| Error::ElfHeader {
        field: what,
        value,
        expected: "a table that parses",
    }
}

impl ElfCore {
    /// Parses the headers and notes of the ELF core in `src`.
    pub fn parse(src: &dyn ByteSource) -> Result<Self> {
        let size = src.len();
        let head = read_vec(src, 0, size.min(64))?;
        if head.len() < 16 || &head[..4] != b"\x7fELF" {
            return Err(match crate::core_file::identify(&head) {
                Ok(crate::Format::Container) => Error::OtherFormat {
                    what: "a .core.zst container already",
                    advice: "it needs no compressing; coroner reads it as it is (coroner export gives back the ELF)",
                },
                Ok(crate::Format::Kdump | crate::Format::KdumpFlattened) => Error::OtherFormat {
                    what: "a kdump-compressed dump, not an ELF core",
                    advice: "coroner opens it as it is (coroner::open), and compress converts it",
                },
                Ok(crate::Format::Elf) | Err(Error::UnknownFormat { .. }) => {
                    let mut found = [0u8; 4];
                    let n = head.len().min(4);
                    found[..n].copy_from_slice(&head[..n]);
                    Error::UnknownFormat { found }
                }
                Err(e) => e,
            });
        }
        let (class, hdr_len) = match head[4] {
            1 => (ElfClass::Elf32, 52u64),
            2 => (ElfClass::Elf64, 64u64),
            c => {
                return Err(Error::ElfHeader {
                    field: "EI_CLASS",
                    value: c.into(),
                    expected: "1 (32-bit) or 2 (64-bit)",
                })
            }
        };
        if head[5] != 1 {
            return Err(Error::ElfHeader {
                field: "EI_DATA",
                value: head[5].into(),
                expected: "1 (little-endian), as qemu writes for x86",
            });
        }
        if (head.len() as u64) < hdr_len {
            return Err(Error::Truncated {
                offset: 0,
                needed: hdr_len,
                size,
            });
        }
        let h = goblin::elf::Elf::parse_header(&head).map_err(goblin_err("ELF header", 0))?;
        if h.e_type != header::ET_CORE {
            return Err(Error::ElfHeader {
                field: "e_type",
                value: h.e_type.into(),
                expected: match h.e_type {
                    header::ET_REL => "an object file (ET_REL), not a core dump (ET_CORE)",
                    header::ET_EXEC => "an executable (ET_EXEC), not a core dump (ET_CORE)",
                    header::ET_DYN => {
                        "a shared object or PIE executable (ET_DYN), not a core dump (ET_CORE)"
                    }
                    _ => "not a core dump (ET_CORE, 4)",
                },
            });
        }
        let machine = match h.e_machine {
            header::EM_X86_64 => Machine::X86_64,
            header::EM_386 => Machine::I386,
            m => Machine::Other(m),
        };
        let ctx = Ctx::new(
            if class == ElfClass::Elf64 {
                Container::Big
            } else {
                Container::Little
            },
            Endian::Little,
        );
        let phent = ProgramHeader::size(ctx) as u64;
        if u64::from(h.e_phentsize) != phent {
            return Err(Error::ElfHeader {
                field: "e_phentsize",
                value: h.e_phentsize.into(),
                expected: "the program header size of the ELF class",
            });
        }
        let mut phnum = h.e_phnum as usize;
        if phnum == 0xffff {
            // PN_XNUM: the real count is in section header 0's sh_info.
            // (Read by hand: goblin's SectionHeader::parse takes offset 0 for "none".)
            let shent = SectionHeader::size(ctx) as u64;
            let sh0 = read_vec(src, h.e_shoff, shent)?;
            let info_at = if class == ElfClass::Elf64 { 44 } else { 28 };
            phnum = sh0
                .get(info_at..info_at + 4)
                .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        }
        if phnum == 0 {
            return Err(Error::ElfHeader {
                field: "e_phnum",
                value: 0,
                expected: "at least a PT_NOTE and a PT_LOAD",
            });
        }
        if phnum > MAX_PHDRS {
            return Err(Error::ElfHeader {
                field: "e_phnum",
                value: phnum as u64,
                expected: "at most 2^20 program headers",
            });
        }
        let table = read_vec(src, h.e_phoff, phent * phnum as u64)?;
        let phdrs = ProgramHeader::parse(&table, 0, phnum, ctx)
            .map_err(goblin_err("e_phoff", h.e_phoff))?;
        let layout = if h.e_shoff != 0 && h.e_shoff < h.e_phoff {
            HeaderLayout::SectionsFirst
        } else {
            HeaderLayout::ProgramHeadersFirst
        };

        let mut core = ElfCore::empty(class, machine, layout);
        let mut prstatus = Vec::new();
        let mut qemu = Vec::new();
        for (index, ph) in phdrs.iter().enumerate() {
            match ph.p_type {
                program_header::PT_LOAD => {
                    if ph.p_filesz == 0 {
                        core.empty_loads += 1;
                        continue;
                    }
                    let end = ph.p_offset.checked_add(ph.p_filesz);
                    if end.is_none_or(|e| e > size) {
                        return Err(Error::ProgramHeader {
                            index,
                            reason: format!(
                                "PT_LOAD bytes {:#x}+{:#x} run past the end of the file ({size:#x} bytes): truncated dump",
                                ph.p_offset, ph.p_filesz
                            ),
                        });
                    }
                    if ph.p_paddr.checked_add(ph.p_filesz).is_none() {
                        return Err(Error::ProgramHeader {
                            index,
                            reason: format!(
                                "PT_LOAD at guest-physical {:#x} with {:#x} bytes wraps the address space",
                                ph.p_paddr, ph.p_filesz
                            ),
                        });
                    }
                    core.loads.push(LoadSegment {
                        index,
                        paddr: ph.p_paddr,
                        vaddr: ph.p_vaddr,
                        offset: ph.p_offset,
                        file_size: ph.p_filesz,
                        mem_size: ph.p_memsz,
                    });
                }
                program_header::PT_NOTE => {
                    if ph.p_filesz > MAX_NOTE_SEGMENT {
                        return Err(Error::ProgramHeader {
                            index,
                            reason: format!(
                                "PT_NOTE of {:#x} bytes is larger than any qemu writes",
                                ph.p_filesz
                            ),
                        });
                    }
                    let bytes = read_vec(src, ph.p_offset, ph.p_filesz)?;
                    for note in NoteIter::new(&bytes, ph.p_offset) {
                        let note = note?;
                        core.collect_note(&note, &mut prstatus, &mut qemu);
                    }
                }
                _ => {}
            }
        }
        core.pair_vcpus(prstatus, qemu)?;
        Ok(core)
    }

    /// The notes of a dump that is not an ELF file (a kdump-compressed dump keeps the
    /// same notes in its sub-header): `bytes` read at file `offset`, for `machine`. It
    /// has no PT_LOADs: its memory is described elsewhere.
    pub fn from_notes(bytes: &[u8], offset: u64, machine: Machine) -> Result<Self> {
        let mut core = ElfCore::empty(ElfClass::Elf64, machine, HeaderLayout::ProgramHeadersFirst);
        let (mut prstatus, mut qemu) = (Vec::new(), Vec::new());
        for note in NoteIter::new(bytes, offset) {
            let note = note?;
            core.collect_note(&note, &mut prstatus, &mut qemu);
        }
        core.pair_vcpus(prstatus, qemu)?;
        Ok(core)
    }

    /// A core with no segment, note or vCPU yet.
    fn empty(class: ElfClass, machine: Machine, layout: HeaderLayout) -> Self {
        ElfCore {
            class,
            machine,
            layout,
            loads: Vec::new(),
            empty_loads: 0,
            notes: Vec::new(),
            vcpus: Vec::new(),
            vmcoreinfo: None,
            vmcoreinfo_offset: None,
            warnings: Vec::new(),
        }
    }

    /// Pairs the n-th `NT_PRSTATUS` with the n-th `QEMU` note as vCPU n.
    fn pair_vcpus(
        &mut self,
        prstatus: Vec<Option<PrStatus>>,
        qemu: Vec<Option<QemuCpuState>>,
    ) -> Result<()> {
        let core = self;
        let n = prstatus.len().max(qemu.len());
        if n > MAX_VCPUS {
            return Err(Error::Note {
                offset: core.notes.first().map_or(0, |n| n.offset),
                reason: format!("{n} vCPU notes; at most {MAX_VCPUS} accepted"),
            });
        }
        let mut prstatus = prstatus.into_iter();
        let mut qemu = qemu.into_iter();
        core.vcpus = (0..n)
            .map(|index| Vcpu {
                index,
                prstatus: prstatus.next().flatten(),
                qemu: qemu.next().flatten(),
            })
            .collect();
        Ok(())
    }

    fn collect_note(
        &mut self,
        note: &RawNote<'_>,
        prstatus: &mut Vec<Option<PrStatus>>,
        qemu: &mut Vec<Option<QemuCpuState>>,
    ) {
        let x86 = matches!(self.machine, Machine::X86_64 | Machine::I386);
        match (note.name, note.kind) {
            (b"CORE", 1) if x86 => {
                prstatus.push(self.keep(PrStatus::parse(note.desc, note.offset)))
            }
            (b"QEMU", 0) if x86 => {
                qemu.push(self.keep(QemuCpuState::parse(note.desc, note.offset)))
            }
            (b"VMCOREINFO", _) => {
                let text = String::from_utf8_lossy(note.desc);
                self.vmcoreinfo = Some(text.trim_end_matches('\0').to_string());
                self.vmcoreinfo_offset = Some(note.desc_offset);
            }
            _ => {}
        }
        self.notes.push(Note {
            offset: note.offset,
            name: String::from_utf8_lossy(note.name).into_owned(),
            kind: note.kind,
            desc_offset: note.desc_offset,
            desc_len: note.desc.len() as u64,
        });
    }

    /// Keeps a vCPU note that failed to decode as a warning, so one bad note does not
    /// hide the others.
    fn keep<T>(&mut self, parsed: Result<T>) -> Option<T> {
        parsed.map_err(|e| self.warnings.push(e.to_string())).ok()
    }

    /// Total bytes of guest memory stored in the file.
    pub fn memory_bytes(&self) -> u64 {
        self.loads.iter().map(|l| l.file_size).sum()
    }
}
