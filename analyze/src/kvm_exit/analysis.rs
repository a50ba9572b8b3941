//! The exit-reason analysis: qemu's report from the log, decoded, completed from the frozen
//! guest (registers, the instruction at RIP, what its memory operands touch, the symbol),
//! and explained.

use coroner_formats::{Core, PhysAddr, QemuCpuState, Segment};
use serde::Serialize;

use super::emulator::{kvm_emulator_support, EmulatorSupport};
use super::entry_failure::{entry_failure, EntryFailure};
use super::exit_data::{decode_data, DecodedData};
use super::instruction::{disassemble, hex_bytes, listing, AddrRegs, Disassembly, MemOperand};
use super::mtree::{owner, parse_mtree, FlatView, Owner};
use super::pc_layout::{pc_owner, pc_range};
use super::qemu_report::{parse_qemu_log, QemuReport, ReportKind};
use super::regdump::RegDump;
use super::suberror::{suberror, Suberror};
use super::svm_exit::svm_exit_code;
use crate::cpu_mode::{cpu_mode, CpuMode, Paging};
use crate::kernel_view::Evidence;
use crate::kmem::VirtAddr;
use crate::paging::PageTables;
use crate::session::Session;
use crate::x86::{cr3_root, CR4_LA57, EFER_LMA};
use coroner_record::LogTail;

/// Bytes read at RIP: the longest x86 instruction.
const MAX_INSN: usize = 15;
/// Instructions listed from RIP on.
const LISTING: usize = 6;
/// The x86 register number of each general register in the QEMU note's order (rax, rbx,
/// rcx, rdx, rsi, rdi, rsp, rbp, r8..r15).
const X86_NUMBER_OF_NOTE_GPR: [usize; 16] = [0, 3, 1, 2, 6, 7, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15];

/// The execution mode, as the report states it. In JSON, `mode` and `paging` are their
/// names in words ([`ModeFacts::description`], [`Paging::name`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "ModeFactsJson")]
pub struct ModeFacts {
    /// The execution mode.
    pub mode: CpuMode,
    /// Real mode with a segment limit above 64 KiB.
    pub big_real: bool,
    /// In system-management mode.
    pub smm: bool,
    /// The paging mode.
    pub paging: Paging,
    /// Current privilege level.
    pub cpl: u8,
    /// Code size the instruction was decoded in.
    pub bitness: u32,
    /// From which registers.
    pub basis: String,
}

impl ModeFacts {
    /// The mode in words: `64-bit long mode`, `SMM, real mode (big real mode: ...)`.
    pub fn description(&self) -> String {
        let mut mode = self.mode.name().to_string();
        if self.big_real {
            mode.push_str(" (big real mode: a segment limit above 64 KiB)");
        }
        if self.smm {
            mode = format!("SMM, {mode}");
        }
        mode
    }
}

/// [`ModeFacts`] as JSON.
#[derive(Serialize)]
struct ModeFactsJson {
    mode: String,
    paging: &'static str,
    cpl: u8,
    bitness: u32,
    basis: String,
}

impl From<ModeFacts> for ModeFactsJson {
    fn from(m: ModeFacts) -> Self {
        ModeFactsJson {
            mode: m.description(),
            paging: m.paging.name(),
            cpl: m.cpl,
            bitness: m.bitness,
            basis: m.basis,
        }
    }
}

/// The faulting instruction and where its bytes came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstructionFacts {
    /// The instruction.
    pub disassembly: Disassembly,
    /// Where the bytes came from.
    pub bytes_source: String,
    /// Agreement (or not) of the other sources of the bytes.
    pub cross_checks: Vec<String>,
    /// Whether KVM's emulator handles it.
    pub emulator: EmulatorSupport,
    /// The instructions from RIP on.
    pub listing: Vec<Disassembly>,
}

/// A memory operand of the faulting instruction, followed to guest-physical memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OperandFacts {
    /// The operand and its linear address.
    pub operand: MemOperand,
    /// Its guest-physical address.
    #[serde(with = "coroner_formats::hex::option")]
    pub gpa: Option<u64>,
    /// How the linear address became physical.
    pub gpa_how: String,
    /// What owns that address (`info mtree -f`).
    pub owner: Option<Owner>,
}

/// Why qemu stopped the guest with a KVM error, from its report and the frozen guest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExitReport {
    /// One line.
    pub verdict: String,
    /// Run state at capture, when there is a capture.
    pub run_state: Option<String>,
    /// Where qemu's log came from.
    pub log_source: Option<String>,
    /// KVM error reports found in the log (the last one is analyzed).
    pub reports_found: usize,
    /// The report analyzed.
    pub report: Option<QemuReport>,
    /// The internal error's sub-error.
    pub suberror: Option<Suberror>,
    /// `extra data[]` decoded.
    pub data: Option<DecodedData>,
    /// The host CPU vendor the data was decoded for, and how it is known.
    pub host_vendor: Option<String>,
    /// The entry failure decoded.
    pub entry_failure: Option<EntryFailure>,
    /// The vCPU of the dump whose state matches the report.
    pub vcpu: Option<usize>,
    /// Where the registers came from.
    pub registers_source: Option<String>,
    /// RIP and CS.base + RIP.
    #[serde(with = "coroner_formats::hex::option")]
    pub rip: Option<u64>,
    /// CS.base + RIP.
    #[serde(with = "coroner_formats::hex::option")]
    pub linear_rip: Option<u64>,
    /// Its guest-physical address.
    #[serde(with = "coroner_formats::hex::option")]
    pub rip_gpa: Option<u64>,
    /// What owns the instruction's own address.
    pub rip_owner: Option<Owner>,
    /// What owns the guest-physical address in KVM's exit data (delivery-event exits).
    pub data_gpa_owner: Option<Owner>,
    /// The kernel symbol at RIP (Linux guests).
    pub symbol: Option<String>,
    /// The mode.
    pub mode: Option<ModeFacts>,
    /// The instruction.
    pub instruction: Option<InstructionFacts>,
    /// Its memory operands.
    pub operands: Vec<OperandFacts>,
    /// General registers holding addresses of MMIO (named by `info mtree -f`, else by
    /// the standard PC layout): what the guest was touching when the instruction is not
    /// known.
    pub register_addresses: Vec<RegisterAddress>,
    /// What failed and why, in sentences.
    pub explanation: Vec<String>,
    /// Known causes of this pattern, for the reader to check.
    pub known_causes: Vec<String>,
    /// How each fact was obtained.
    pub evidence: Vec<Evidence>,
    /// What was tried and failed.
    pub problems: Vec<String>,
}

/// A general register whose value is the address of platform MMIO.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegisterAddress {
    /// The register (`RDI`).
    pub register: &'static str,
    /// Its value.
    #[serde(with = "coroner_formats::hex")]
    pub value: u64,
    /// What owns that address, from `info mtree -f` or the standard PC layout.
    pub owner: Owner,
}

/// One CPU state gathered from the dump's QEMU note or the log's register dump.
struct CpuFacts {
    state: QemuCpuState,
    efer: Option<u64>,
    source: String,
}

/// Analyzes a KVM error: from the dump of session `s` (a capture, with its qemu log and
/// `info mtree`) and/or `qemu_log`, which replaces the log the capture recorded (see
/// [`Session::exit`] and [`crate::exit_from_log`]).
pub(crate) fn analyze_exit(s: Option<&Session<'_>>, qemu_log: Option<&LogTail>) -> ExitReport {
    let core = s.map(|s| s.core());
    let capture = s.and_then(|s| s.capture());
    let record_problem = s.and_then(|s| s.capture_problem()).map(String::from);
    let mut r = ExitReport {
        verdict: String::new(),
        run_state: capture
            .map(|c| c.run_state_before.clone())
            .filter(|s| !s.is_empty()),
        log_source: None,
        reports_found: 0,
        report: None,
        suberror: None,
        data: None,
        host_vendor: None,
        entry_failure: None,
        vcpu: None,
        registers_source: None,
        rip: None,
        linear_rip: None,
        rip_gpa: None,
        rip_owner: None,
        data_gpa_owner: None,
        symbol: None,
        mode: None,
        instruction: None,
        operands: Vec::new(),
        register_addresses: Vec::new(),
        explanation: Vec::new(),
        known_causes: Vec::new(),
        evidence: Vec::new(),
        problems: Vec::new(),
    };

    r.problems.extend(record_problem);
    // qemu's log and its last KVM report.
    let log = match qemu_log {
        Some(l) => Some((l.text.as_str(), l.described_source())),
        None => capture.and_then(|c| c.qemu_log.as_ref()).map(|l| {
            (
                l.text.as_str(),
                format!("capture metadata, from {}", l.source),
            )
        }),
    };
    if let Some((text, source)) = &log {
        let reports = parse_qemu_log(text);
        r.reports_found = reports.len();
        r.log_source = Some(source.clone());
        r.evidence.push(Evidence {
            fact: "qemu log".into(),
            value: format!("{} KVM error report(s)", reports.len()),
            how: format!("parsed from {source}"),
        });
        r.report = reports.into_iter().last();
    } else {
        r.problems.push(
            "no qemu log: give it with --qemu-log (capture records it when qemu's stderr is a file on the capturing host)"
                .into(),
        );
    }
    r.host_vendor = capture
        .and_then(|c| c.host_cpu_vendor.as_deref())
        .map(|v| format!("{v} (host /proc/cpuinfo at capture)"));
    let host_amd = r
        .host_vendor
        .as_deref()
        .map(|v| v.starts_with("AuthenticAMD") || v.starts_with("HygonGenuine"));

    if let Some(rep) = &r.report {
        match &rep.kind {
            ReportKind::InternalError { suberror: Some(n) } => {
                r.suberror = suberror(*n);
                let data: Vec<u64> = rep.extra_data.iter().map_while(|d| *d).collect();
                let mut decoded = decode_data(*n, &data);
                if host_amd == Some(true) {
                    relabel_svm(&mut decoded);
                }
                r.data = Some(decoded);
            }
            ReportKind::EntryFailed { hardware_error } => {
                r.entry_failure = Some(entry_failure(*hardware_error));
            }
            _ => {}
        }
    }

    let views: Vec<FlatView> = capture
        .and_then(|c| c.info_mtree.as_deref())
        .map(parse_mtree)
        .unwrap_or_default();
    if !views.is_empty() {
        r.evidence.push(Evidence {
            fact: "memory map".into(),
            value: format!("{} flat views", views.len()),
            how: "qemu's `info mtree -f`, recorded at capture".into(),
        });
    } else if core.is_some() {
        r.problems.push("no `info mtree -f` in the capture: the owners of addresses are not known (only the standard PC platform ranges are named)".into());
    } else {
        r.problems.push("log only: the owners of addresses are not known without a capture's `info mtree -f` (only the standard PC platform ranges are named)".into());
    }
    r.data_gpa_owner = r
        .data
        .as_ref()
        .and_then(|d| d.gpa)
        .and_then(|g| owner_of(&views, g));

    // Registers: the dump's vCPU whose RIP matches the report, else the log's dump.
    let log_regs = r.report.as_ref().and_then(|x| x.regs.clone());
    let cpu = pick_cpu(core, log_regs.as_ref(), &mut r);
    if let Some(cpu) = &cpu {
        fill_from_cpu(s, &views, cpu, &mut r);
        let paging_on = r.mode.as_ref().is_some_and(|m| m.paging != Paging::Off);
        r.register_addresses = register_addresses(&cpu.state, &views, paging_on);
    }
    explain(&mut r);
    r.verdict = verdict(&r);
    r
}

/// On an AMD host the exit-info words of an emulation failure are SVM's exit code and
/// info, not a VMX exit reason.
fn relabel_svm(d: &mut DecodedData) {
    if let Some(reason) = d.exit_reason.take() {
        let name = svm_exit_code(reason.raw).unwrap_or("not a known SVM exit code");
        d.layout = format!(
            "{}; host is AMD: exit info is SVM (exit code {:#x}: {name})",
            d.layout, reason.raw
        );
        for f in &mut d.fields {
            if f.value == reason.raw && f.name.contains("reason") {
                f.meaning = format!("SVM exit code {:#x}: {name}", reason.raw);
            }
        }
    }
}

fn seg_from_dump(s: &Option<super::regdump::Segment>) -> Segment {
    s.as_ref()
        .map(|s| Segment {
            selector: u32::from(s.selector),
            limit: s.limit,
            flags: s.flags,
            base: s.base,
        })
        .unwrap_or(Segment {
            selector: 0,
            limit: 0,
            flags: 0,
            base: 0,
        })
}

/// A `QemuCpuState` from the log's register dump (general registers in qemu's note order).
fn state_from_regdump(d: &RegDump) -> Option<QemuCpuState> {
    let mut gpr = [0u64; 16];
    for (i, &x) in X86_NUMBER_OF_NOTE_GPR.iter().enumerate() {
        gpr[i] = d.gprs[x].unwrap_or(0);
    }
    Some(QemuCpuState {
        version: 1,
        size: 0,
        gpr,
        rip: d.rip?,
        rflags: d.rflags.unwrap_or(0),
        cs: seg_from_dump(&d.cs),
        ds: seg_from_dump(&d.ds),
        es: seg_from_dump(&d.es),
        fs: seg_from_dump(&d.fs),
        gs: seg_from_dump(&d.gs),
        ss: seg_from_dump(&d.ss),
        ldt: seg_from_dump(&d.ldt),
        tr: seg_from_dump(&d.tr),
        gdt: Segment {
            selector: 0,
            limit: d.gdt.map(|g| g.1).unwrap_or(0),
            flags: 0,
            base: d.gdt.map(|g| g.0).unwrap_or(0),
        },
        idt: Segment {
            selector: 0,
            limit: d.idt.map(|g| g.1).unwrap_or(0),
            flags: 0,
            base: d.idt.map(|g| g.0).unwrap_or(0),
        },
        cr: [
            d.cr0?,
            0,
            d.cr2.unwrap_or(0),
            d.cr3.unwrap_or(0),
            d.cr4.unwrap_or(0),
        ],
        kernel_gs_base: None,
    })
}

fn pick_cpu(core: Option<&Core>, dump: Option<&RegDump>, r: &mut ExitReport) -> Option<CpuFacts> {
    let from_log = dump.and_then(state_from_regdump);
    if let Some(core) = core {
        let vcpus: Vec<(usize, &QemuCpuState)> = core
            .elf
            .vcpus
            .iter()
            .filter_map(|v| Some((v.index, v.qemu.as_ref()?)))
            .collect();
        let matched = match &from_log {
            Some(l) => vcpus
                .iter()
                .find(|(_, s)| s.rip == l.rip && s.cs.selector == l.cs.selector)
                .map(|(i, s)| (*i, *s, "its RIP and CS match qemu's report")),
            None if vcpus.len() == 1 => vcpus.first().map(|(i, s)| (*i, *s, "the only vCPU")),
            None => None,
        };
        if let Some((index, state, why)) = matched {
            r.vcpu = Some(index);
            return Some(CpuFacts {
                state: state.clone(),
                efer: dump.and_then(|d| d.efer),
                source: format!("the dump's QEMU note of vCPU {index} ({why})"),
            });
        }
        if from_log.is_some() {
            r.problems.push("no vCPU in the dump has the report's RIP and CS: the report may be from an earlier run; using the log's registers".into());
        } else if !vcpus.is_empty() {
            r.problems.push(format!(
                "{} vCPUs and no report naming RIP: cannot tell which vCPU failed",
                vcpus.len()
            ));
        }
    }
    from_log.map(|state| CpuFacts {
        state,
        efer: dump.and_then(|d| d.efer),
        source: "qemu's register dump in the log".into(),
    })
}

/// Linear to guest-physical: identity without paging; the guest's tables in long mode.
fn translate(
    core: Option<&Core>,
    s: &QemuCpuState,
    paging: Paging,
    linear: u64,
) -> (Option<u64>, String) {
    match paging {
        Paging::Off => (
            Some(linear & 0xffff_ffff),
            "paging off: physical = linear".into(),
        ),
        Paging::FourLevel | Paging::FiveLevel => {
            let Some(core) = core else {
                return (None, "paging on and no dump to walk the page tables".into());
            };
            let root = cr3_root(s.cr[3]);
            let tables = PageTables::new(core.mem(), PhysAddr(root), s.cr[4] & CR4_LA57 != 0, 0);
            match tables.translate(VirtAddr(linear)) {
                Ok(t) => (
                    Some(t.pa.0),
                    format!("through the guest's page tables at CR3 {root:#x}"),
                ),
                Err(e) => (None, format!("page-table walk at CR3 {root:#x}: {e}")),
            }
        }
        Paging::TwoLevel | Paging::Pae => (
            None,
            "32-bit/PAE paging: coroner walks only 4- and 5-level tables".into(),
        ),
    }
}

/// The owner of `gpa` from `info mtree`, or the standard PC platform range holding it
/// when there is no memory map.
fn owner_of(views: &[FlatView], gpa: u64) -> Option<Owner> {
    owner(views, gpa).or_else(|| pc_owner(gpa))
}

/// x86 names of the general registers, by x86 register number.
const GPR_NAMES: [&str; 16] = [
    "RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI", "R8", "R9", "R10", "R11", "R12", "R13",
    "R14", "R15",
];

/// The general registers whose values are MMIO addresses: a named MMIO region of `info
/// mtree -f`, else (no map) a range of the standard PC layout; with paging on and no map
/// only the devices at fixed addresses. 0 and all ones (-1 as 32 bits) are never addresses.
fn register_addresses(
    s: &QemuCpuState,
    views: &[FlatView],
    paging_on: bool,
) -> Vec<RegisterAddress> {
    let mut out = Vec::new();
    for (note, &x86) in X86_NUMBER_OF_NOTE_GPR.iter().enumerate() {
        let value = s.gpr[note];
        if value == 0 || value == 0xffff_ffff {
            continue;
        }
        if views.is_empty() && paging_on && pc_range(value).is_some_and(|p| !p.fixed) {
            continue;
        }
        let Some(owner) = owner_of(views, value) else {
            continue;
        };
        // In a memory map only MMIO regions; unassigned space says nothing.
        if owner.region.as_ref().is_some_and(|g| !g.is_mmio())
            || (!views.is_empty() && owner.region.is_none())
        {
            continue;
        }
        out.push(RegisterAddress {
            register: GPR_NAMES[x86],
            value,
            owner,
        });
    }
    out
}

fn fill_from_cpu(
    session: Option<&Session<'_>>,
    views: &[FlatView],
    cpu: &CpuFacts,
    r: &mut ExitReport,
) {
    let core = session.map(|x| x.core());
    let s = &cpu.state;
    r.registers_source = Some(cpu.source.clone());
    let lma = cpu.efer.map(|e| e & EFER_LMA != 0);
    let m = cpu_mode(s, lma);
    let bits = m.mode.bits();
    let big_real = m.mode == CpuMode::Real
        && [&s.cs, &s.ds, &s.es, &s.ss, &s.fs, &s.gs]
            .iter()
            .any(|g| g.limit > 0xffff);
    let smm = r
        .report
        .as_ref()
        .and_then(|x| x.regs.as_ref())
        .and_then(|d| d.smm)
        == Some(true);
    r.mode = Some(ModeFacts {
        mode: m.mode,
        big_real,
        smm,
        paging: m.paging,
        cpl: m.cpl,
        bitness: bits,
        basis: format!("{} ({})", m.basis, cpu.source),
    });
    r.rip = Some(s.rip);
    let linear = s.cs.base.wrapping_add(s.rip);
    let linear = if bits == 64 {
        linear
    } else {
        linear & 0xffff_ffff
    };
    r.linear_rip = Some(linear);
    let (rip_gpa, rip_how) = translate(core, s, m.paging, linear);
    r.rip_gpa = rip_gpa;
    r.rip_owner = rip_gpa.and_then(|g| owner_of(views, g));
    r.evidence.push(Evidence {
        fact: "RIP".into(),
        value: format!(
            "{:#x} (linear {linear:#x}, physical {})",
            s.rip,
            rip_gpa
                .map(|g| format!("{g:#x}"))
                .unwrap_or_else(|| "unknown".into())
        ),
        how: format!("{}; {rip_how}", cpu.source),
    });

    // The instruction's bytes: KVM's, guest memory's, qemu's Code= line.
    let kvm_bytes = r.data.as_ref().and_then(|d| d.insn_bytes.clone());
    let mem_bytes = match (core, rip_gpa) {
        (Some(core), Some(gpa)) => {
            let mut b = vec![0u8; MAX_INSN];
            match core.mem().read_at(PhysAddr(gpa), &mut b) {
                Ok(()) => Some(b),
                Err(_) => {
                    // Shorter reads near the end of RAM.
                    (1..MAX_INSN).rev().find_map(|n| {
                        let mut b = vec![0u8; n];
                        core.mem().read_at(PhysAddr(gpa), &mut b).ok().map(|_| b)
                    })
                }
            }
        }
        _ => None,
    };
    let code_bytes = r
        .report
        .as_ref()
        .and_then(|x| x.regs.as_ref())
        .and_then(|d| d.code.as_ref())
        .map(|c| c.from_rip())
        .filter(|b| !b.is_empty());
    let sources: Vec<(&str, Vec<u8>)> = [
        ("KVM's exit data (the bytes KVM fetched)", kvm_bytes),
        (
            "guest memory at the physical address of CS.base + RIP",
            mem_bytes,
        ),
        ("qemu's Code= line", code_bytes),
    ]
    .into_iter()
    .filter_map(|(n, b)| Some((n, b?)))
    .collect();
    let regs = addr_regs(s);
    if let Some((name, bytes)) = sources.first() {
        if let Some((insn, dis)) = disassemble(bytes, bits, s.rip, &regs) {
            let len = dis.bytes.len();
            let mut checks = Vec::new();
            for (other, b) in &sources[1..] {
                let n = len.min(b.len());
                if n > 0 && b[..n] == dis.bytes[..n] {
                    checks.push(format!("{other}: the same {n} bytes"));
                } else {
                    checks.push(format!(
                        "{other}: DIFFERENT ({}) — the code changed, or was fetched from MMIO",
                        hex_bytes(&b[..n.min(b.len())])
                    ));
                }
            }
            let emulator = kvm_emulator_support(&insn, &dis.bytes);
            let list = listing(bytes, bits, s.rip, LISTING);
            for op in &dis.memory {
                let (gpa, how) = match op.linear {
                    Some(l) => translate(core, s, m.paging, l),
                    None => (None, "linear address unknown".into()),
                };
                r.operands.push(OperandFacts {
                    operand: op.clone(),
                    gpa,
                    gpa_how: how,
                    owner: gpa.and_then(|g| owner_of(views, g)),
                });
            }
            r.instruction = Some(InstructionFacts {
                disassembly: dis,
                bytes_source: (*name).to_string(),
                cross_checks: checks,
                emulator,
                listing: list,
            });
        }
    } else {
        r.problems.push("no bytes for the instruction at RIP: not in KVM's data, not in guest RAM, no Code= line".into());
    }

    // The kernel symbol at RIP, for a Linux guest.
    if let (Some(session), CpuMode::Long64) = (session, m.mode) {
        if s.rip >= 0xffff_8000_0000_0000 {
            r.symbol = session.symbolize(s.rip);
        }
    }
}

fn addr_regs(s: &QemuCpuState) -> AddrRegs {
    let mut gpr = [None; 16];
    for (note, &x86) in X86_NUMBER_OF_NOTE_GPR.iter().enumerate() {
        gpr[x86] = Some(s.gpr[note]);
    }
    AddrRegs {
        gpr,
        rip: s.rip,
        seg_base: [
            Some(s.es.base),
            Some(s.cs.base),
            Some(s.ss.base),
            Some(s.ds.base),
            Some(s.fs.base),
            Some(s.gs.base),
        ],
    }
}

/// Sentences a maintainer would accept, from the facts found; nothing beyond them.
fn explain(r: &mut ExitReport) {
    let mut e = Vec::new();
    let mut causes = Vec::new();
    let insn = r.instruction.as_ref();
    let mmio_operand = r.operands.iter().find(|o| {
        o.owner
            .as_ref()
            .is_some_and(|w| w.region.as_ref().is_none_or(|g| g.is_mmio()))
    });
    let rip_in_mmio = r
        .rip_owner
        .as_ref()
        .is_some_and(|w| w.region.as_ref().is_none_or(|g| g.is_mmio()));
    if let Some(sub) = &r.suberror {
        e.push(format!(
            "KVM internal error, sub-error {}: {} ({}).",
            sub.number, sub.meaning, sub.name
        ));
    }
    if let Some(f) = &r.entry_failure {
        e.push(format!("VM entry failed: {}.", f.description));
    }
    if let (Some(i), Some(m)) = (insn, &r.mode) {
        e.push(format!(
            "The vCPU was at {} in {} (CPL {}, paging {}): `{}` ({}).",
            r.linear_rip
                .map(|l| format!("linear {l:#x}"))
                .unwrap_or_default(),
            m.description(),
            m.cpl,
            m.paging.name(),
            i.disassembly.text,
            hex_bytes(&i.disassembly.bytes)
        ));
    }
    if rip_in_mmio {
        if let Some(o) = &r.rip_owner {
            e.push(format!(
                "RIP itself is in {}: the vCPU was executing from MMIO, which KVM cannot fetch instructions from.",
                o.description
            ));
            causes.push("execution from MMIO or unbacked memory: a jump to a bad address, firmware running off the VGA window or a BAR".into());
        }
    }
    if let Some(op) = mmio_operand {
        let owner = op
            .owner
            .as_ref()
            .map(|o| o.description.clone())
            .unwrap_or_default();
        e.push(format!(
            "It {}s {} bytes at guest-physical {}, which is {owner}: every access there leaves the guest, and KVM must emulate the instruction to complete it.",
            op.operand.access,
            op.operand.size,
            op.gpa.map(|g| format!("{g:#x}")).unwrap_or_default()
        ));
        if let Some(i) = insn {
            if i.emulator.emulated == Some(false) {
                e.push(format!("{}.", i.emulator.why.trim_end_matches('.')));
                causes.push("an instruction KVM's emulator lacks (SSE/AVX arithmetic, XSAVE, x87, MOVSS/MOVSD) used on MMIO: a framebuffer, a PCI BAR, emulated (e.g. CXL) memory".into());
            }
        }
    } else if !r.register_addresses.is_empty() {
        let paging_on = r.mode.as_ref().is_some_and(|m| m.paging != Paging::Off);
        let names: Vec<String> = r
            .register_addresses
            .iter()
            .map(|a| {
                format!(
                    "{}={:#x} is in {}",
                    a.register, a.value, a.owner.description
                )
            })
            .collect();
        e.push(format!(
            "{}registers hold addresses of MMIO, which usually say what the guest was touching \
             ({}): {}.",
            if insn.is_some() {
                "No operand of the instruction is in MMIO, but "
            } else {
                "The instruction is not known; "
            },
            if paging_on {
                "read as physical addresses; paging is on, so they may be virtual ones"
            } else {
                "physical addresses: paging is off"
            },
            names.join("; ")
        ));
    }
    if mmio_operand.is_none() {
        if let Some(i) = insn.filter(|i| i.emulator.emulated == Some(false)) {
            e.push(format!("{}.", i.emulator.why.trim_end_matches('.')));
            if r.mode.as_ref().is_some_and(|m| {
                matches!(
                    m.mode,
                    CpuMode::Real | CpuMode::Protected16 | CpuMode::Compat16
                )
            }) {
                causes.push("real-mode or big-real-mode code emulated instruction by instruction when the host lacks unrestricted guest (nested virtualization, old CPUs)".into());
            }
        }
    }
    let all_ones = insn.is_some_and(|i| {
        i.disassembly.bytes.len() >= 2 && i.disassembly.bytes.iter().all(|&b| b == 0xff)
    });
    if all_ones && !rip_in_mmio {
        e.push("The bytes at RIP read as all ones, which is what unassigned addresses and many MMIO regions return: the vCPU was probably executing from MMIO or unbacked memory.".into());
        causes.push("execution from MMIO or unbacked memory: a jump to a bad address, firmware running off the VGA window or a BAR".into());
    }
    if let Some(d) = &r.data {
        if let Some(v) = &d.vectoring {
            if v.valid {
                let exit = d
                    .exit_reason
                    .as_ref()
                    .and_then(|x| x.name)
                    .map(|n| format!(" when the exit ({n}) came"))
                    .unwrap_or_default();
                let at = match (d.gpa, &r.data_gpa_owner) {
                    (Some(g), Some(o)) => format!(", at guest-physical {g:#x}: {}", o.description),
                    (Some(g), None) => format!(", at guest-physical {g:#x}"),
                    _ => String::new(),
                };
                e.push(format!(
                    "KVM was delivering a {} {}{exit}{at}.",
                    v.kind,
                    v.vector_name.unwrap_or(""),
                ));
                let regs = r.report.as_ref().and_then(|x| x.regs.as_ref());
                if let (Some("#PF"), Some(cr2)) = (v.vector_name, regs.and_then(|x| x.cr2)) {
                    e.push(format!(
                        "The page fault being delivered was for linear address {cr2:#x} (CR2)."
                    ));
                }
                if let Some(gpa) = d.gpa {
                    e.push("Delivering an event reads the IDT and pushes onto the stack (and walks the page tables to do so); the exit's GPA says which access hit the region:".into());
                    let cr3 = regs.and_then(|x| x.cr3).map(|c| c & !0xfff);
                    let rsp = regs.and_then(|x| x.gprs[4]);
                    if cr3.is_some_and(|c| gpa & !0xfff == c) {
                        e.push(format!("  it is in the page at CR3 ({:#x}): the top-level page table itself is there.", cr3.unwrap_or(0)));
                    } else if let Some(sp) = rsp.filter(|sp| {
                        let below = (sp & 0xfff).wrapping_sub(gpa & 0xfff);
                        (1..=64).contains(&below)
                    }) {
                        e.push(format!(
                            "  its offset in the page is {} bytes below the stack pointer's ({sp:#x}): the push of the exception frame hit it, so the stack is there.",
                            (sp & 0xfff) - (gpa & 0xfff)
                        ));
                    } else {
                        e.push("  it matches neither the CR3 page nor the stack pointer's page offset: a lower-level page table or the IDT.".into());
                    }
                }
                causes.push("an exception or interrupt whose delivery touches MMIO: the stack, IDT or page tables in an MMIO or emulated region".into());
            }
        }
    }
    if let Some(f) = &r.entry_failure {
        if f.exit_reason.as_ref().is_some_and(|x| x.basic == 33) {
            causes.push("invalid guest state: real or big real mode without unrestricted guest, SMM with Windows/OVMF guests, nested virtualization".into());
            if r.report
                .as_ref()
                .and_then(|x| x.regs.as_ref())
                .and_then(|d| d.smm)
                == Some(true)
            {
                e.push("The vCPU was in SMM (SMM=1) when the entry failed.".into());
            }
        }
    }
    r.explanation = e;
    r.known_causes = causes;
}

fn verdict(r: &ExitReport) -> String {
    let what = match (
        &r.suberror,
        &r.entry_failure,
        r.report.as_ref().map(|x| &x.kind),
    ) {
        (Some(s), _, _) if s.number == 1 => "KVM emulation failure".to_string(),
        (Some(s), _, _) => format!("KVM internal error {} ({})", s.number, s.name),
        (None, Some(f), _) => format!("KVM entry failed, hardware error {:#x}", f.raw),
        (None, None, Some(ReportKind::InternalError { suberror: None })) => {
            "KVM internal error".into()
        }
        (None, None, Some(k)) => k.to_string(),
        (None, None, None) => return "no KVM error report (no qemu log, or it has none)".into(),
    };
    let mut v = what;
    let delivery = r.data.as_ref().and_then(|d| {
        let ev = d.vectoring.as_ref().filter(|e| e.valid)?;
        let mut t = format!(": while delivering {}", ev.vector_name.unwrap_or(ev.kind));
        if let Some(x) = d.exit_reason.as_ref().and_then(|x| x.name) {
            t.push_str(&format!(", {x}"));
        }
        if let Some(g) = d.gpa {
            t.push_str(&format!(" at {g:#x}"));
            if let Some(o) = &r.data_gpa_owner {
                let name = o
                    .region
                    .as_ref()
                    .map(|g| g.name.clone())
                    .or_else(|| pc_range(o.gpa).map(|p| p.what.to_string()))
                    .unwrap_or_else(|| o.description.clone());
                t.push_str(&format!(" ({name})"));
            }
        }
        Some(t)
    });
    if let Some(d) = &delivery {
        v.push_str(d);
        if let Some(i) = &r.instruction {
            v.push_str(&format!("; RIP at `{}`", i.disassembly.text));
        }
    } else if let Some(i) = &r.instruction {
        v.push_str(&format!(": `{}`", i.disassembly.text));
    }
    if let Some(m) = &r.mode {
        v.push_str(&format!(" in {}", m.description()));
    }
    if let Some(op) = r.operands.iter().find(|o| o.owner.is_some()) {
        if let (Some(gpa), Some(o)) = (op.gpa, &op.owner) {
            let name = o
                .region
                .as_ref()
                .map(|g| g.name.clone())
                .or_else(|| pc_range(o.gpa).map(|p| p.what.to_string()))
                .unwrap_or_else(|| o.description.clone());
            v.push_str(&format!(" {}s {gpa:#x} ({name})", op.operand.access));
        }
    }
    if let Some(s) = &r.symbol {
        v.push_str(&format!(" at {s}"));
    }
    if let Some(i) = &r.instruction {
        if i.emulator.emulated == Some(false) {
            v.push_str(&format!("; not emulated by KVM: {}", i.emulator.class));
        }
    }
    if let Some(state) = &r.run_state {
        v = format!("{state}: {v}");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../../fixtures/qemu-logs/", $name))
        };
    }

    fn from_log(text: &str) -> ExitReport {
        crate::exit_from_log(&LogTail::of_text(text.to_string(), "fixture".into()))
    }

    /// A log-only report without instruction bytes: the registers that hold local APIC
    /// addresses are named, from the standard PC layout and said to be so.
    #[test]
    fn registers_holding_platform_mmio_are_named() {
        let r = from_log(fixture!(
            "21-emulation-failure-lapic-in-registers-no-code-oscar-kernel.log"
        ));
        assert!(r.instruction.is_none());
        let named: Vec<_> = r
            .register_addresses
            .iter()
            .map(|a| (a.register, a.value))
            .collect();
        assert_eq!(named, [("RDX", 0xfee0_00f0), ("RSI", 0xfee0_0900)]);
        let e = r
            .explanation
            .iter()
            .find(|e| e.contains("registers hold addresses of MMIO"))
            .unwrap_or_else(|| panic!("{:?}", r.explanation));
        assert!(e.contains("RDX=0xfee000f0 is in the local APIC"), "{e}");
        assert!(e.contains("standard PC layout"), "{e}");
        // With paging on, a 32-bit kernel's addresses (0xc0000000 on) are not taken for
        // the PCI hole, nor -1 for the firmware.
        let r = from_log(fixture!(
            "07-delivery-ev-old-format-i386-stack-in-vga-hole-lkp.log"
        ));
        assert!(
            r.register_addresses.is_empty(),
            "{:?}",
            r.register_addresses
        );
    }

    /// Each fixture's header says what it shows; the analysis must say the same.
    #[test]
    fn every_fixture_is_explained_as_its_header_says() {
        let r = from_log(fixture!(
            "01-emulation-failure-bigrealmode-endbr32-lp1866870.log"
        ));
        assert_eq!(r.suberror.map(|s| s.number), Some(1));
        let i = r.instruction.as_ref().unwrap();
        assert_eq!(i.disassembly.mnemonic, "endbr32");
        assert!(
            r.mode
                .as_ref()
                .unwrap()
                .description()
                .contains("big real mode"),
            "{:?}",
            r.mode
        );

        let r = from_log(fixture!(
            "03-emulation-failure-rip-in-vga-hole-lp1914986.log"
        ));
        assert_eq!(r.rip, Some(0xb0000));
        assert!(
            r.explanation.iter().any(|e| e.contains("all ones")),
            "{:?}",
            r.explanation
        );

        let r = from_log(fixture!(
            "05-delivery-ev-pf-during-ept-misconfig-cxl-stress.log"
        ));
        let d = r.data.as_ref().unwrap();
        assert_eq!(d.gpa, Some(0x4_1844_2c90));
        assert!(
            r.verdict
                .contains("while delivering #PF, EPT_MISCONFIG at 0x418442c90"),
            "{}",
            r.verdict
        );
        assert!(
            r.explanation.iter().any(|e| e.contains("page at CR3")),
            "{:?}",
            r.explanation
        );

        let r = from_log(fixture!(
            "07-delivery-ev-old-format-i386-stack-in-vga-hole-lkp.log"
        ));
        assert_eq!(r.data.as_ref().unwrap().gpa, Some(0xbfff0));
        assert!(r
            .data_gpa_owner
            .as_ref()
            .unwrap()
            .description
            .contains("VGA window"));
        assert!(
            r.explanation
                .iter()
                .any(|e| e.contains("the stack is there")),
            "{:?}",
            r.explanation
        );
        assert_eq!(r.mode.as_ref().unwrap().mode, CpuMode::Protected32);

        let r = from_log(fixture!(
            "09-delivery-ev-wrmsr-with-vectoring-irq-spr-windows-bz218267.log"
        ));
        assert_eq!(r.reports_found, 4);
        assert_eq!(
            r.instruction.as_ref().unwrap().disassembly.mnemonic,
            "wrmsr"
        );
        let d = r.data.as_ref().unwrap();
        assert_eq!(d.exit_reason.as_ref().unwrap().basic, 0x20);

        let r = from_log(fixture!(
            "11-entry-failed-0x80000021-smm-windows-tdp-mmu-proxmox.log"
        ));
        assert_eq!(r.entry_failure.as_ref().unwrap().raw, 0x8000_0021);
        assert!(r.mode.as_ref().unwrap().smm);
        assert!(r
            .verdict
            .starts_with("KVM entry failed, hardware error 0x80000021"));

        let r = from_log(fixture!(
            "13-emulation-failure-movaps-to-vga-text-mmio-includeos.log"
        ));
        let op = &r.operands[0];
        assert_eq!((op.operand.access, op.gpa), ("write", Some(0xb8000)));
        assert!(r.verdict.contains("movaps"), "{}", r.verdict);

        let r = from_log(fixture!("15-entry-failed-0xffffffff-amd-sev-es-lbrv.log"));
        assert_eq!(r.entry_failure.as_ref().unwrap().vendor, "SVM");

        for f in [
            fixture!("17-entry-failed-0x80000021-smm-windows10-ovmf-edk2-91.log"),
            fixture!("19-entry-failed-0x80000021-i386-target-xqemu.log"),
        ] {
            let r = from_log(f);
            assert_eq!(r.entry_failure.as_ref().unwrap().raw, 0x8000_0021);
            assert!(!r.known_causes.is_empty());
        }
    }

    #[test]
    fn nothing_to_say_without_a_report() {
        let r = from_log("qemu-system-x86_64: terminating on signal 15\n");
        assert!(r.report.is_none());
        assert!(r.verdict.starts_with("no KVM error report"));
        let r = analyze_exit(None, None);
        assert!(r.problems[0].starts_with("no qemu log"));
    }

    #[test]
    fn svm_relabel_names_the_exit_code() {
        let mut d = decode_data(1, &[1, 0xf4001006580f260f, 0xfdeb, 0x400, 0, 0, 0, 0]);
        relabel_svm(&mut d);
        assert!(d.exit_reason.is_none());
        assert!(d.layout.contains("SVM (exit code 0x400"), "{}", d.layout);
    }
}
