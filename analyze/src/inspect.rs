//! What a dump holds, at a glance: format, architecture, memory, vCPUs, VMCOREINFO,
//! container metadata. The data behind `coroner inspect`.

use coroner_formats::{
    Core, ElfClass, Format, HeaderLayout, Machine, Metadata, PrStatus, QemuCpuState,
};
use serde::Serialize;

use crate::cpu_mode::{cpu_mode, ModeInfo};

/// One present range of guest-physical memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RangeSummary {
    /// First address.
    #[serde(with = "coroner_formats::hex")]
    pub start: u64,
    /// One past the last address.
    #[serde(with = "coroner_formats::hex")]
    pub end: u64,
    /// Bytes.
    pub size: u64,
}

/// One vCPU's registers and mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VcpuSummary {
    /// Index in qemu's CPU list.
    pub index: usize,
    /// The mode, when the `QEMU` note is present.
    pub mode: Option<ModeInfo>,
    /// The `QEMU` note (control registers, segments).
    pub qemu: Option<QemuCpuState>,
    /// The `NT_PRSTATUS` note.
    pub prstatus: Option<PrStatus>,
}

/// The `VMCOREINFO` note, if the dump carries one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VmcoreinfoSummary {
    /// File offset of the note's text in the ELF.
    pub offset: u64,
    /// `OSRELEASE=` from the note.
    pub osrelease: Option<String>,
    /// Bytes of text.
    pub size: usize,
}

/// Everything `inspect` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    /// On-disk format.
    pub format: Format,
    /// File size on disk.
    pub file_size: u64,
    /// ELF class.
    pub class: ElfClass,
    /// Guest architecture from `e_machine`.
    pub machine: Machine,
    /// Header layout.
    pub layout: HeaderLayout,
    /// What the layout says of the qemu that wrote it.
    pub writer_hint: String,
    /// Present guest-physical ranges.
    pub ranges: Vec<RangeSummary>,
    /// Total bytes of guest memory present.
    pub memory_bytes: u64,
    /// PT_LOADs without bytes in the file (`paging=true` dumps).
    pub empty_loads: usize,
    /// vCPUs.
    pub vcpus: Vec<VcpuSummary>,
    /// The `VMCOREINFO` note.
    pub vmcoreinfo: Option<VmcoreinfoSummary>,
    /// Container metadata.
    pub metadata: Option<Metadata>,
    /// A kdump-compressed dump's headers: layout, compression, dump level, pages left
    /// out, incomplete.
    pub kdump: Option<coroner_formats::kdump::KdumpInfo>,
    /// Problems met while reading.
    pub warnings: Vec<String>,
}

impl Inspection {
    /// Summarizes an opened dump.
    pub fn of(core: &Core) -> Self {
        let elf = &core.elf;
        let lma0 = match elf.machine {
            Machine::X86_64 => Some(true),
            Machine::I386 => Some(false),
            Machine::Other(_) => None,
        };
        let vcpus = elf
            .vcpus
            .iter()
            .map(|v| VcpuSummary {
                index: v.index,
                // e_machine records EFER.LMA of vCPU 0 only.
                mode: v
                    .qemu
                    .as_ref()
                    .map(|s| cpu_mode(s, if v.index == 0 { lma0 } else { None })),
                qemu: v.qemu.clone(),
                prstatus: v.prstatus.clone(),
            })
            .collect();
        let slim = core
            .metadata
            .as_ref()
            .is_some_and(|m| m.extra.contains_key("slim"));
        let converted = core
            .metadata
            .as_ref()
            .is_some_and(|m| m.extra.contains_key("converted_from"));
        let qemu_notes = elf.vcpus.iter().any(|v| v.qemu.is_some());
        // The kernel's own vmcore (kexec-tools' layout, makedumpfile -E): no QEMU notes,
        // PT_LOADs with the kernel's virtual addresses.
        let vmcore = core.kdump.is_none()
            && !qemu_notes
            && elf.loads.iter().any(|l| l.vaddr >= 0xffff_8000_0000_0000);
        let mut hints = vec![match (slim, elf.layout) {
            // A kdump file's QEMU notes tell qemu's writer from makedumpfile.
            _ if core.kdump.is_some() && qemu_notes => "qemu's dump-guest-memory (a kdump-* format)",
            _ if core.kdump.is_some() => "makedumpfile or another kdump writer (no QEMU notes)",
            _ if vmcore => "the guest kernel's /proc/vmcore, saved by its capture kernel (kdump; kexec-tools' layout), or makedumpfile -E",
            // compress writes a kdump file's pages as an ELF core of its own.
            _ if converted => "coroner compress, from a kdump-compressed dump (converted_from in the metadata)",
            // slim writes an ELF core of its own: its headers say nothing of qemu.
            (true, _) => "coroner slim (an ELF core of the pages the analyses read; the source's writer is in its capture metadata)",
            (false, HeaderLayout::SectionsFirst) => "qemu >= 7.2 (section headers first)",
            (false, HeaderLayout::ProgramHeadersFirst) => {
                "qemu < 7.2 or another writer (no leading section headers)"
            }
        }];
        if elf
            .vcpus
            .iter()
            .any(|v| v.qemu.as_ref().is_some_and(|s| s.size < 440))
        {
            hints.push("QEMU note of 432 bytes: qemu < 3.0");
        }
        if !slim && !converted && elf.loads.iter().any(|l| l.vaddr == 0 && l.paddr != 0) {
            hints.push("p_vaddr 0: qemu < 4.0");
        }
        let mut warnings = elf.warnings.clone();
        if let Some(clipped) = core.core_mem().map(|m| m.clipped()).filter(|&c| c > 0) {
            warnings.push(if vmcore {
                format!("{clipped} bytes of the kernel text's PT_LOAD repeat memory another PT_LOAD holds (kexec's layout): read once")
            } else {
                format!("{clipped} bytes of overlapping PT_LOADs ignored (first segment wins)")
            });
        }
        if let Some(k) = core.kdump.as_ref().filter(|k| k.incomplete) {
            warnings.push(format!(
                "incomplete kdump: the writer stopped early (out of space); {} announced pages were never written and read as absent",
                k.unwritten_pages
            ));
        }
        if let Some(m) = &core.metadata {
            if !m.complete {
                warnings.push(format!(
                    "incomplete capture: {}",
                    m.incomplete_reason
                        .as_deref()
                        .unwrap_or("no reason recorded")
                ));
            }
        }
        Inspection {
            format: core.format,
            file_size: core.file_size,
            class: elf.class,
            machine: elf.machine,
            layout: elf.layout,
            writer_hint: hints.join("; "),
            ranges: core
                .mem()
                .ranges()
                .iter()
                .map(|r| RangeSummary {
                    start: r.start.0,
                    end: r.end.0,
                    size: r.len(),
                })
                .collect(),
            memory_bytes: core.mem().present_bytes(),
            empty_loads: elf.empty_loads,
            vcpus,
            vmcoreinfo: elf.vmcoreinfo.as_ref().map(|text| VmcoreinfoSummary {
                offset: elf.vmcoreinfo_offset.unwrap_or(0),
                osrelease: text
                    .lines()
                    .find_map(|l| l.strip_prefix("OSRELEASE="))
                    .map(String::from),
                size: text.len(),
            }),
            metadata: core.metadata.clone(),
            kdump: core.kdump.clone(),
            warnings,
        }
    }
}
