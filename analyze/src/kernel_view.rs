//! The kernel view without debuginfo: VMCOREINFO, page tables, KASLR offset and
//! `phys_base`, each with how it was obtained.
//!
//! Evidence order: the dump's VMCOREINFO note; a location recorded at capture time; a scan
//! of RAM whose candidates must agree with the vCPU state (the page tables of a vCPU in
//! long mode must map the kernel where the candidate says, and the running kernel's
//! `init_uts_ns` must hold its `OSRELEASE`). Without VMCOREINFO the KASLR offset and
//! `phys_base` come from the lowest mapped kernel-text address in the vCPU's page tables.

use crate::x86::{cr3_root, CR0_PG, CR4_LA57, CR4_PAE};
use coroner_formats::{Core, ElfCore, PhysAddr, PhysMem};
use serde::Serialize;
use std::sync::{Mutex, PoisonError};

use crate::kallsyms::{Kallsyms, KallsymsError};
use crate::kmem::{KernelMem, VirtAddr, XlateError};
use crate::paging::{PageTables, KERNEL_MAP_END, START_KERNEL_MAP};
use crate::printk::{read_kernel_log, KernelLog, LogError};
use crate::vmcoreinfo::Vmcoreinfo;
use crate::vmcoreinfo_pointers;
use crate::vmcoreinfo_scan::{self, CandidateKind};

/// The printk symbols looked up in kallsyms when there is no VMCOREINFO.
const LOG_SYMBOLS: [&str; 7] = [
    "prb",
    "log_buf",
    "log_buf_len",
    "log_first_idx",
    "log_next_idx",
    "clear_idx",
    "log_end",
];

/// How much of the kernel image a kallsyms signature scan reads.
pub(crate) const KERNEL_SCAN_BYTES: u64 = 256 << 20;

/// Where `_text` sits without KASLR (`__START_KERNEL`).
pub const START_KERNEL: u64 = 0xffff_ffff_8100_0000;

/// One fact of the kernel view and how it was obtained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// What the fact is about ("VMCOREINFO", "KASLR offset", ...).
    pub fact: String,
    /// Its value.
    pub value: String,
    /// How it was obtained.
    pub how: String,
}

/// Why no kernel view could be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// No vCPU has paging on in long mode, and no VMCOREINFO says where the tables are.
    #[error("no vCPU was in 64-bit paging mode and no VMCOREINFO was found: not a running x86_64 Linux kernel")]
    NoPagingCpu,
    /// The page tables map no kernel text.
    #[error(
        "the page tables at {root} map no kernel text in {START_KERNEL_MAP:#x}-{KERNEL_MAP_END:#x}"
    )]
    NoKernelText {
        /// The root tried.
        root: PhysAddr,
    },
}

/// What the caller already knows (from the container's metadata).
#[derive(Clone, Debug, Default)]
pub struct Hints {
    /// Guest-physical addresses of pages that looked like VMCOREINFO when the capture
    /// streamed past them (validated before use).
    pub vmcoreinfo_candidates: Vec<PhysAddr>,
    /// Do not use VMCOREINFO at all: derive everything from the vCPU state, the page
    /// tables and kallsyms (for a VMCOREINFO that is damaged or not trusted).
    pub ignore_vmcoreinfo: bool,
}

impl Hints {
    /// What `core`'s container metadata recorded, and whether to ignore VMCOREINFO.
    pub fn for_core(core: &Core, ignore_vmcoreinfo: bool) -> Self {
        Self {
            ignore_vmcoreinfo,
            vmcoreinfo_candidates: core
                .metadata
                .as_ref()
                .map(|m| {
                    m.vmcoreinfo_candidates
                        .iter()
                        .map(|&a| PhysAddr(a))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// The kernel as seen from guest memory.
pub struct KernelView<'a> {
    /// VMCOREINFO, when found.
    pub vmcoreinfo: Option<Vmcoreinfo>,
    /// Kernel release (from VMCOREINFO `OSRELEASE`).
    pub release: Option<String>,
    /// Physical address the kernel image was loaded at, minus its link offset.
    pub phys_base: u64,
    /// The KASLR offset of the kernel image (`KERNELOFFSET`).
    pub kaslr_offset: u64,
    /// The page tables used for kernel addresses.
    pub tables: PageTables<'a>,
    /// How each fact was obtained, in order.
    pub evidence: Vec<Evidence>,
    /// Things that were tried and failed, or disagreed.
    pub problems: Vec<String>,
    /// The kallsyms table found while looking for VMCOREINFO through the kernel, with how
    /// and the image address searched, taken by the first [`Self::kallsyms`].
    found_kallsyms: Mutex<Option<(Kallsyms, String, u64)>>,
}

struct CpuPaging {
    index: usize,
    root: u64,
    five_level: bool,
}

/// vCPUs with 64-bit paging on, from their `QEMU` notes.
fn paging_cpus(elf: &ElfCore) -> Vec<CpuPaging> {
    elf.vcpus
        .iter()
        .filter_map(|v| {
            let s = v.qemu.as_ref()?;
            let (cr0, cr3, cr4) = (s.cr[0], s.cr[3], s.cr[4]);
            (cr0 & CR0_PG != 0 && cr4 & CR4_PAE != 0).then_some(CpuPaging {
                index: v.index,
                root: cr3_root(cr3),
                five_level: cr4 & CR4_LA57 != 0,
            })
        })
        .collect()
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

impl<'a> KernelView<'a> {
    /// Builds the view from guest memory, the dump's notes and optional hints.
    pub fn build(mem: &'a dyn PhysMem, elf: &ElfCore, hints: &Hints) -> Result<Self, ViewError> {
        let cpus = paging_cpus(elf);
        let mut evidence = Vec::new();
        let mut problems = Vec::new();
        let mut found_kallsyms = None;
        let (vmci, how) = if hints.ignore_vmcoreinfo {
            evidence.push(Evidence {
                fact: "VMCOREINFO".into(),
                value: "not used".into(),
                how: "ignored on request (--ignore-vmcoreinfo)".into(),
            });
            (None, None)
        } else {
            find_vmcoreinfo(mem, elf, hints, &cpus, &mut problems, &mut found_kallsyms)
        };
        if let (Some(v), Some(how)) = (&vmci, how) {
            evidence.push(Evidence {
                fact: "VMCOREINFO".into(),
                value: format!(
                    "{} lines, OSRELEASE={}",
                    v.len(),
                    v.osrelease().unwrap_or("?")
                ),
                how,
            });
        }
        let sme_mask = vmci
            .as_ref()
            .and_then(|v| v.number("sme_mask"))
            .map_or(0, |m| m as u64);
        let five_from_vmci = vmci
            .as_ref()
            .and_then(|v| v.number("pgtable_l5_enabled"))
            .map(|n| n != 0);
        // The root: the kernel's own init_top_pgt when VMCOREINFO says where it is, else a
        // vCPU's CR3 (PCID and PTI user-half bits masked).
        let from_vmci = vmci.as_ref().and_then(|v| {
            let pgd = v
                .symbol("init_top_pgt")
                .or_else(|| v.symbol("init_level4_pgt"))?;
            let phys_base = v.number("phys_base")? as u64;
            Some(pgd.wrapping_sub(START_KERNEL_MAP).wrapping_add(phys_base))
        });
        let cpu = cpus.first();
        let five_level = five_from_vmci
            .or(cpu.map(|c| c.five_level))
            .unwrap_or(false);
        let mut roots: Vec<(u64, String)> = Vec::new();
        if let Some(r) = from_vmci {
            roots.push((
                r,
                "SYMBOL(init_top_pgt) with NUMBER(phys_base) from VMCOREINFO".into(),
            ));
        }
        for c in &cpus {
            roots.push((c.root, format!("CR3 of vCPU {}", c.index)));
            roots.push((
                c.root & !0x1fff,
                format!("CR3 of vCPU {} with the PTI user bit cleared", c.index),
            ));
        }
        if roots.is_empty() {
            return Err(ViewError::NoPagingCpu);
        }
        let mut chosen = None;
        for (root, how) in &roots {
            let t = PageTables::new(mem, PhysAddr(*root), five_level, sme_mask);
            if let Some((va, tr)) = t.lowest_mapped(START_KERNEL_MAP, KERNEL_MAP_END) {
                chosen = Some((t, how.clone(), va, tr));
                break;
            }
            problems.push(format!(
                "page tables at {root:#x} ({how}) map no kernel text"
            ));
        }
        let Some((tables, root_how, text_va, text_tr)) = chosen else {
            return Err(ViewError::NoKernelText {
                root: PhysAddr(roots[0].0),
            });
        };
        evidence.push(Evidence {
            fact: "page tables".into(),
            value: format!(
                "{} at {}",
                if five_level { "5-level" } else { "4-level" },
                tables.root()
            ),
            how: root_how,
        });
        // KASLR offset and phys_base.
        let derived_phys_base = text_tr.pa.0.wrapping_sub(text_va.0 - START_KERNEL_MAP);
        let derived_offset = text_va.0.wrapping_sub(START_KERNEL);
        let walk_how = format!(
            "lowest mapped kernel-text address {text_va} -> {} in the page tables",
            text_tr.pa
        );
        let (kaslr_offset, off_how) = match vmci.as_ref().and_then(Vmcoreinfo::kernel_offset) {
            Some(k) => {
                if k != derived_offset {
                    problems.push(format!(
                        "KERNELOFFSET {k:#x} differs from the page tables' {derived_offset:#x}"
                    ));
                }
                (k, "KERNELOFFSET from VMCOREINFO".to_string())
            }
            None => (derived_offset, walk_how.clone()),
        };
        let (phys_base, base_how) = match vmci.as_ref().and_then(|v| v.number("phys_base")) {
            Some(p) => (p as u64, "NUMBER(phys_base) from VMCOREINFO".to_string()),
            None => (derived_phys_base, walk_how),
        };
        evidence.push(Evidence {
            fact: "KASLR offset".into(),
            value: hex(kaslr_offset),
            how: off_how,
        });
        evidence.push(Evidence {
            fact: "phys_base".into(),
            value: hex(phys_base),
            how: base_how,
        });
        let release = vmci.as_ref().and_then(|v| v.osrelease().map(String::from));
        Ok(Self {
            vmcoreinfo: vmci,
            release,
            phys_base,
            kaslr_offset,
            tables,
            evidence,
            problems,
            found_kallsyms: Mutex::new(found_kallsyms),
        })
    }

    /// The kallsyms table from guest memory, with how it was found: through VMCOREINFO's
    /// `SYMBOL(kallsyms_*)` (6.0+), else by a signature scan of the kernel image.
    pub fn kallsyms(&self) -> Result<(Kallsyms, String), KallsymsError> {
        let stext = self.vmcoreinfo.as_ref().and_then(|v| v.symbol("_stext"));
        if let Some(v) = &self.vmcoreinfo {
            match Kallsyms::from_vmcoreinfo(self, v) {
                Ok(k) => {
                    let how = k.how().to_string();
                    return Ok((k, how));
                }
                Err(KallsymsError::MissingSymbol { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let text = START_KERNEL + self.kaslr_offset;
        let found = self
            .found_kallsyms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((k, how, at)) = found {
            // Found while looking for VMCOREINFO, from the lowest mapped kernel text; used
            // when that is where this view puts the image.
            if at == text {
                return Ok((k, how));
            }
        }
        let k = Kallsyms::scan(self, VirtAddr(text), KERNEL_SCAN_BYTES, stext)?;
        let how = format!(
            "found by scanning the kernel image at {text:#x}; {}",
            k.how()
        );
        Ok((k, how))
    }

    /// The kernel log. With VMCOREINFO, through its symbols and struct layouts; without,
    /// through the ring's symbols in kallsyms (present with `CONFIG_KALLSYMS_ALL`, as in
    /// distribution kernels) and the documented x86_64 layouts.
    pub fn kernel_log(&self) -> Result<KernelLog, LogError> {
        if self.vmcoreinfo.is_some() {
            return self.kernel_log_using(None);
        }
        let found = self.kallsyms().ok();
        self.kernel_log_using(found.as_ref().map(|(k, _)| k))
    }

    /// [`Self::kernel_log`] with the kallsyms table a caller already has (used only
    /// without VMCOREINFO).
    pub fn kernel_log_using(&self, kallsyms: Option<&Kallsyms>) -> Result<KernelLog, LogError> {
        if let Some(v) = &self.vmcoreinfo {
            return read_kernel_log(self, v);
        }
        let Some(ks) = kallsyms else {
            return Err(LogError::NoLogSymbols);
        };
        let mut text = String::new();
        for name in LOG_SYMBOLS {
            if let Some(s) = ks.lookup(name) {
                text.push_str(&format!("SYMBOL({name})={:x}\n", s.addr));
            }
        }
        let mut log = read_kernel_log(self, &Vmcoreinfo::parse(&text))?;
        log.located = format!(
            "{} (symbols from kallsyms, layouts assumed: no VMCOREINFO)",
            log.located
        );
        Ok(log)
    }
}

impl KernelMem for KernelView<'_> {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> Result<(), XlateError> {
        self.tables.read_virt(va, buf)
    }
}

/// `init_uts_ns.name.release` through `mem`.
fn running_release(mem: &dyn KernelMem, v: &Vmcoreinfo) -> Option<String> {
    let uts = v.symbol("init_uts_ns")?;
    let name = v.offset("uts_namespace.name")?;
    // struct new_utsname { char sysname[65]; char nodename[65]; char release[65]; ... }
    let mut buf = [0u8; 65];
    mem.read_virt(VirtAddr(uts + name + 2 * 65), &mut buf)
        .ok()?;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// A candidate is trusted when a vCPU's page tables map its `init_uts_ns` to a release
/// string equal to its `OSRELEASE` (stale copies of an earlier boot have another KASLR
/// offset and fail), and its `init_top_pgt` agrees with the tables when it can be checked.
fn agrees_with_cpus(mem: &dyn PhysMem, v: &Vmcoreinfo, cpus: &[CpuPaging]) -> Option<String> {
    for c in cpus {
        let t = PageTables::new(mem, PhysAddr(c.root), c.five_level, 0);
        if running_release(&t, v).as_deref() == v.osrelease() {
            return Some(format!(
                "its OSRELEASE matches init_uts_ns read through vCPU {}'s page tables",
                c.index
            ));
        }
    }
    None
}

/// VMCOREINFO in evidence order: the dump's note, the candidates recorded at capture, the
/// running kernel's own pointers (through a vCPU's page tables and kallsyms, whose table
/// is left in `kallsyms` for the view), and last a scan of RAM. Without a vCPU whose page
/// tables map kernel text no Linux kernel runs, and RAM is not scanned: a copy found
/// there could not be checked against a running kernel anyway.
fn find_vmcoreinfo(
    mem: &dyn PhysMem,
    elf: &ElfCore,
    hints: &Hints,
    cpus: &[CpuPaging],
    problems: &mut Vec<String>,
    kallsyms: &mut Option<(Kallsyms, String, u64)>,
) -> (Option<Vmcoreinfo>, Option<String>) {
    if let Some(text) = &elf.vmcoreinfo {
        let v = Vmcoreinfo::parse(text);
        if v.looks_valid() {
            return (
                Some(v),
                Some("the dump's VMCOREINFO note (qemu -device vmcoreinfo)".into()),
            );
        }
        problems.push("the dump's VMCOREINFO note does not parse".into());
    }
    for &pa in &hints.vmcoreinfo_candidates {
        for kind in [CandidateKind::DataPage, CandidateKind::Note] {
            if let Some(c) = vmcoreinfo_scan::read_candidate(mem, pa, kind) {
                if let Some(why) = agrees_with_cpus(mem, &c.info, cpus) {
                    return (
                        Some(c.info),
                        Some(format!(
                            "found at guest-physical {pa} while the capture was written; {why}"
                        )),
                    );
                }
            }
        }
        problems.push(format!(
            "the VMCOREINFO candidate recorded at capture ({pa}) does not match the running kernel"
        ));
    }
    let kernel_text = cpus.iter().find_map(|c| {
        [c.root, c.root & !0x1fff].into_iter().find_map(|root| {
            let t = PageTables::new(mem, PhysAddr(root), c.five_level, 0);
            let (va, _) = t.lowest_mapped(START_KERNEL_MAP, KERNEL_MAP_END)?;
            Some((t, va, c.index))
        })
    });
    let Some((tables, text, cpu)) = kernel_text else {
        problems.push(
            "no vCPU's page tables map kernel text: no Linux kernel runs, so RAM was not searched for VMCOREINFO"
                .into(),
        );
        return (None, None);
    };
    let through = vmcoreinfo_pointers::find(mem, &tables, text);
    problems.extend(through.problems);
    *kallsyms = through.kallsyms;
    if let Some((c, symbol)) = through.candidate {
        match agrees_with_cpus(mem, &c.info, cpus) {
            Some(why) => {
                return (
                    Some(c.info),
                    Some(format!(
                        "the kernel's {symbol} pointer (kallsyms found in the image through vCPU {cpu}'s page tables) leads to guest-physical {}; {why}",
                        c.paddr
                    )),
                )
            }
            None => problems.push(format!(
                "the VMCOREINFO that {symbol} points at ({}) does not match the running kernel",
                c.paddr
            )),
        }
    }
    let mut rejected = 0usize;
    let mut chosen = None;
    vmcoreinfo_scan::scan_until(mem, |c| match agrees_with_cpus(mem, &c.info, cpus) {
        Some(why) => {
            chosen = Some((c, why));
            true
        }
        None => {
            rejected += 1;
            problems.push(format!(
                "VMCOREINFO copy at {} (OSRELEASE={}) does not match the running kernel: stale or foreign",
                c.paddr,
                c.info.osrelease().unwrap_or("?")
            ));
            false
        }
    });
    if let Some((c, why)) = chosen {
        let kind = match c.kind {
            CandidateKind::DataPage => "data page",
            CandidateKind::Note => "ELF note",
        };
        let skipped = if rejected > 0 {
            format!(", after {rejected} copies that did not match")
        } else {
            String::new()
        };
        return (
            Some(c.info),
            Some(format!(
                "recovered from RAM (a scan of page starts: the kernel's vmcoreinfo_data and vmcoreinfo_note pointers did not lead to it): {kind} at guest-physical {}{skipped}; {why}",
                c.paddr
            )),
        );
    }
    if rejected == 0 {
        problems.push("no VMCOREINFO in the dump's notes or in RAM".into());
    }
    (None, None)
}
