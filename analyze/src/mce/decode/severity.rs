//! The Linux kernel's severity grading of a machine-check record
//! (arch/x86/kernel/cpu/mce/severity.c, Linux 6.1 and later), recomputed from the record.
//!
//! What the kernel decides from facts the record does not carry is fixed here: an exception
//! table fixup at the faulting IP cannot be known, so kernel context is never "recoverable";
//! the kernel is assumed built with `CONFIG_MEMORY_FAILURE`.

use super::super::raw::MceRaw;
use super::{
    cpu_family, cpu_model, cpu_stepping, is_amd_like, Vendor, MCG_EIPV, MCG_MCIP, MCG_RIPV,
    MCG_SEAM_NR, MCI_ADDRV, MCI_AR, MCI_DEFERRED, MCI_EN, MCI_MISCV, MCI_OVER, MCI_PCC, MCI_S,
    MCI_UC, MCI_VAL,
};
use serde::Serialize;

/// The Linux kernel's severity grading of one record (severity.c), as it would compute it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Severity {
    /// The kernel's `enum severity_level` name, lowercased: "no", "deferred" (also UCNA),
    /// "keep", "some", "ao", "uc", "ar" or "panic".
    pub level: &'static str,
    /// The kernel's message, e.g. "Data load in unrecoverable area of kernel"; see
    /// `kernel_message` for the AMD grades the kernel leaves without one.
    pub message: &'static str,
    /// The kernel panics on this grade (level "panic").
    pub fatal: bool,
    /// `message` is the kernel's own string; false where the kernel's AMD grader sets no message
    /// (corrected, deferred, action required) and `message` is our description.
    pub kernel_message: bool,
}

/// What the severity grading needs beyond the record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeverityContext {
    /// MCG_CAP.SER_P as the kernel saw it; None = unknown (then: assume SER when the record's S
    /// or AR bit is set, else when mcgcap has bit 24; else false).
    pub ser: Option<bool>,
    /// AMD SUCCOR (CPUID 0x80000007 EBX bit 1) as the kernel saw it; None = unknown = false.
    /// The AMD overflow-recovery flag (EBX bit 0) is taken to be the same.
    pub succor: Option<bool>,
}

/// `enum severity_level` (arch/x86/kernel/cpu/mce/internal.h), in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    No,
    Deferred,
    Keep,
    Some,
    Ao,
    Uc,
    Ar,
    Panic,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::No => "no",
            Level::Deferred => "deferred",
            Level::Keep => "keep",
            Level::Some => "some",
            Level::Ao => "ao",
            Level::Uc => "uc",
            Level::Ar => "ar",
            Level::Panic => "panic",
        }
    }
}

/// The name of a stored `enum severity_level` value (`struct mce`'s severity byte).
pub fn severity_level_name(v: u8) -> Option<&'static str> {
    let level = match v {
        0 => Level::No,
        1 => Level::Deferred,
        2 => Level::Keep,
        3 => Level::Some,
        4 => Level::Ao,
        5 => Level::Uc,
        6 => Level::Ar,
        7 => Level::Panic,
        _ => return None,
    };
    Some(level.name())
}

/// Where the machine check hit, as the kernel's `error_context()` tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    Kernel,
    User,
    /// A kernel IP with an exception-table fixup; never chosen here (the table is not known).
    KernelRecov,
}

/// MCG_CAP.SER_P.
const MCG_SER_P: u64 = 1 << 24;
/// The error-code bits the kernel compares (`MCACOD`): bit 12, the F bit, left out.
const MCACOD: u64 = 0xefff;
const MCACOD_SCRUB: u64 = 0x00c0;
const MCACOD_SCRUBMSK: u64 = 0xeff0;
const MCACOD_L3WB: u64 = 0x017a;
const MCACOD_DATA: u64 = 0x0134;
const MCACOD_INSTR: u64 = 0x0150;
const UC_S: u64 = MCI_UC | MCI_S;
const UC_AR: u64 = MCI_UC | MCI_AR;
const UC_SAR: u64 = MCI_UC | MCI_S | MCI_AR;
const ADDR: u64 = MCI_ADDRV | MCI_MISCV;
/// `INTEL_SKYLAKE_X` (family 6 model 0x55), for the patrol-scrub quirk.
const SKYLAKE_X_MODEL: u32 = 0x55;

/// One row of the kernel's `severities[]` table.
#[derive(Clone, Copy)]
struct Row {
    level: Level,
    msg: &'static str,
    mask: u64,
    result: u64,
    mcg_mask: u64,
    mcg_result: u64,
    /// Some(true): SER required; Some(false): no SER required.
    ser: Option<bool>,
    ctx: Option<Ctx>,
    /// Some(true): only in the #MC handler; Some(false): only outside it.
    excp: Option<bool>,
    /// The Skylake-X patrol-scrub quirk: model, stepping >= 4 and banks 13..=18.
    skx_quirk: bool,
}

const fn row(level: Level, msg: &'static str, mask: u64, result: u64) -> Row {
    Row {
        level,
        msg,
        mask,
        result,
        mcg_mask: 0,
        mcg_result: 0,
        ser: None,
        ctx: None,
        excp: None,
        skx_quirk: false,
    }
}

impl Row {
    const fn ser(self) -> Row {
        Row {
            ser: Some(true),
            ..self
        }
    }
    const fn noser(self) -> Row {
        Row {
            ser: Some(false),
            ..self
        }
    }
    const fn excp(self) -> Row {
        Row {
            excp: Some(true),
            ..self
        }
    }
    const fn ctx(self, ctx: Ctx) -> Row {
        Row {
            ctx: Some(ctx),
            ..self
        }
    }
    const fn mcg(self, mask: u64, result: u64) -> Row {
        Row {
            mcg_mask: mask,
            mcg_result: result,
            ..self
        }
    }
    const fn skx_quirk(self) -> Row {
        Row {
            skx_quirk: true,
            ..self
        }
    }
}

const fn bitclr(level: Level, msg: &'static str, bits: u64) -> Row {
    row(level, msg, bits, 0)
}

const fn bitset(level: Level, msg: &'static str, bits: u64) -> Row {
    row(level, msg, bits, bits)
}

/// A known action-required code at a valid address: status with OVER clear.
const fn ar_code(level: Level, msg: &'static str, code: u64) -> Row {
    row(
        level,
        msg,
        MCI_OVER | UC_SAR | ADDR | MCACOD,
        UC_SAR | ADDR | code,
    )
    .ser()
}

/// The kernel's `severities[]`, first match wins (Linux 6.1+, with CONFIG_MEMORY_FAILURE).
const INTEL_TABLE: [Row; 30] = [
    bitclr(Level::No, "Invalid", MCI_VAL),
    bitclr(Level::No, "Not enabled", MCI_EN).excp(),
    bitset(Level::Panic, "Processor context corrupt", MCI_PCC),
    row(Level::Panic, "MCIP not set in MCA handler", 0, 0)
        .excp()
        .mcg(MCG_MCIP, 0),
    row(Level::Panic, "Neither restart nor error IP", 0, 0)
        .excp()
        .mcg(MCG_RIPV | MCG_EIPV, 0),
    row(Level::Panic, "In kernel and no restart IP", 0, 0)
        .excp()
        .ctx(Ctx::Kernel)
        .mcg(MCG_RIPV, 0),
    row(Level::Panic, "In kernel and no restart IP", 0, 0)
        .excp()
        .ctx(Ctx::KernelRecov)
        .mcg(MCG_RIPV, 0),
    bitclr(Level::Keep, "Corrected error", MCI_UC).noser(),
    row(
        Level::Ao,
        "Action optional: memory scrubbing error",
        UC_AR | MCACOD_SCRUBMSK,
        MCI_UC | MCACOD_SCRUB,
    )
    .ser(),
    row(
        Level::Ao,
        "Action optional: last level cache writeback error",
        UC_AR | MCACOD,
        MCI_UC | MCACOD_L3WB,
    )
    .ser(),
    row(
        Level::Ao,
        "Uncorrected Patrol Scrub Error",
        MCI_UC | ADDR | 0xffff_eff0,
        ADDR | 0x0010_00c0,
    )
    .ser()
    .skx_quirk(),
    row(
        Level::Deferred,
        "Uncorrected no action required",
        UC_SAR,
        MCI_UC,
    )
    .ser(),
    row(
        Level::Panic,
        "Illegal combination (UCNA with AR=1)",
        MCI_OVER | UC_SAR,
        MCI_UC | MCI_AR,
    )
    .ser(),
    bitclr(Level::Keep, "Non signaled machine check", MCI_S).ser(),
    bitset(
        Level::Panic,
        "Action required with lost events",
        MCI_OVER | UC_SAR,
    )
    .ser(),
    row(
        Level::Keep,
        "Action required but unaffected thread is continuable",
        MCI_OVER | UC_SAR | ADDR,
        UC_SAR | ADDR,
    )
    .ser()
    .mcg(MCG_RIPV | MCG_EIPV, MCG_RIPV),
    ar_code(
        Level::Ar,
        "Action required: data load in error recoverable area of kernel",
        MCACOD_DATA,
    )
    .ctx(Ctx::KernelRecov),
    ar_code(
        Level::Ar,
        "Action required: data load error in a user process",
        MCACOD_DATA,
    )
    .ctx(Ctx::User),
    ar_code(
        Level::Ar,
        "Action required: instruction fetch error in a user process",
        MCACOD_INSTR,
    )
    .ctx(Ctx::User),
    ar_code(
        Level::Ar,
        "Data load error in SEAM non-root mode",
        MCACOD_DATA,
    )
    .mcg(MCG_SEAM_NR, MCG_SEAM_NR)
    .ctx(Ctx::Kernel),
    ar_code(
        Level::Ar,
        "Instruction fetch error in SEAM non-root mode",
        MCACOD_INSTR,
    )
    .mcg(MCG_SEAM_NR, MCG_SEAM_NR)
    .ctx(Ctx::Kernel),
    ar_code(
        Level::Panic,
        "Data load in unrecoverable area of kernel",
        MCACOD_DATA,
    )
    .ctx(Ctx::Kernel),
    ar_code(
        Level::Panic,
        "Instruction fetch error in kernel",
        MCACOD_INSTR,
    )
    .ctx(Ctx::Kernel),
    row(
        Level::Panic,
        "Action required: unknown MCACOD",
        MCI_OVER | UC_SAR,
        UC_SAR,
    )
    .ser(),
    row(
        Level::Some,
        "Action optional: unknown MCACOD",
        MCI_OVER | UC_SAR,
        UC_S,
    )
    .ser(),
    row(
        Level::Some,
        "Action optional with lost events",
        MCI_OVER | UC_SAR,
        MCI_OVER | UC_S,
    )
    .ser(),
    bitset(Level::Panic, "Overflowed uncorrected", MCI_OVER | MCI_UC),
    bitset(Level::Panic, "Uncorrected in kernel", MCI_UC).ctx(Ctx::Kernel),
    bitset(Level::Uc, "Uncorrected", MCI_UC),
    row(Level::Some, "No match", 0, 0),
];

/// MCG_CAP.SER_P as the kernel had it: the context's, else guessed from the record.
pub(super) fn effective_ser(raw: &MceRaw, ctx: &SeverityContext) -> bool {
    ctx.ser.unwrap_or_else(|| {
        raw.status & (MCI_S | MCI_AR) != 0 || raw.mcgcap.is_some_and(|c| c & MCG_SER_P != 0)
    })
}

/// MCG_STATUS, or when unknown: MCIP set, and RIPV/EIPV as the recorded IP implies (the kernel
/// records an IP only when one of them is set, and marks it `!INEXACT!` when EIPV is clear).
fn effective_mcgstatus(raw: &MceRaw) -> u64 {
    raw.mcgstatus.unwrap_or_else(|| {
        let ip_known = raw.ip.is_some_and(|ip| ip != 0);
        let mut m = MCG_MCIP;
        if ip_known && !raw.ip_inexact {
            m |= MCG_EIPV;
        }
        if ip_known && raw.ip_inexact {
            m |= MCG_RIPV;
        }
        m
    })
}

/// The kernel's `error_context()` without the exception table: user when CS has RPL 3, else
/// kernel (an unknown CS counts as kernel, as the kernel does with CS 0).
fn error_context(raw: &MceRaw) -> Ctx {
    match raw.cs {
        Some(cs) if cs & 3 == 3 => Ctx::User,
        _ => Ctx::Kernel,
    }
}

/// Grades one record as the Linux kernel's `mce_severity()` would.
///
/// The kernel grades a record in the #MC handler (`is_excp`) or in the poller; the record
/// was graded in the handler when MCG_STATUS.MCIP is set (or unknown) and the handler would
/// take it (S set with SER, UC set without); otherwise it was graded by the poller.
pub fn linux_severity(raw: &MceRaw, ctx: &SeverityContext) -> Severity {
    let vendor = raw.cpuvendor.map(Vendor::from_x86_vendor);
    if vendor.is_some_and(is_amd_like) {
        amd_severity(raw, ctx)
    } else {
        intel_severity(raw, ctx)
    }
}

fn severity(level: Level, message: &'static str, kernel_message: bool) -> Severity {
    Severity {
        level: level.name(),
        message,
        fatal: level == Level::Panic,
        kernel_message,
    }
}

/// `mce_severity_intel()`: the first matching row of the table.
fn intel_severity(raw: &MceRaw, ctx: &SeverityContext) -> Severity {
    let status = raw.status;
    let mcg = effective_mcgstatus(raw);
    let ser = effective_ser(raw, ctx);
    let context = error_context(raw);
    let signalled = status & if ser { MCI_S } else { MCI_UC } != 0;
    let excp = mcg & MCG_MCIP != 0 && signalled;
    let skx = raw.cpuid.is_some_and(|id| {
        cpu_family(id) == 6 && cpu_model(id) == SKYLAKE_X_MODEL && cpu_stepping(id) >= 4
    }) && raw.bank.is_some_and(|b| (13..=18).contains(&b));
    let hit = INTEL_TABLE.iter().find(|r| {
        status & r.mask == r.result
            && mcg & r.mcg_mask == r.mcg_result
            && r.ser.is_none_or(|s| s == ser)
            && r.ctx.is_none_or(|c| c == context)
            && r.excp.is_none_or(|e| e == excp)
            && (!r.skx_quirk || skx)
    });
    match hit {
        Some(r) => severity(r.level, r.msg, true),
        // The last row matches everything.
        None => severity(Level::Some, "No match", true),
    }
}

/// `mce_severity_amd()` (Linux 6.0+ with the panic messages of 6.1+); AMD and Hygon.
fn amd_severity(raw: &MceRaw, ctx: &SeverityContext) -> Severity {
    let status = raw.status;
    let succor = ctx.succor.unwrap_or(false);
    let overflow_recov = succor;
    if status & MCI_PCC != 0 {
        severity(Level::Panic, "Processor Context Corrupt", true)
    } else if status & MCI_DEFERRED != 0 {
        severity(Level::Deferred, "Deferred error", false)
    } else if status & MCI_UC == 0 {
        severity(Level::Keep, "Corrected error", false)
    } else if status & MCI_OVER != 0 && !overflow_recov {
        severity(
            Level::Panic,
            "Overflowed uncorrected error without MCA Overflow Recovery",
            true,
        )
    } else if !succor {
        severity(Level::Panic, "Uncorrected error without MCA Recovery", true)
    } else if error_context(raw) == Ctx::Kernel {
        severity(
            Level::Panic,
            "Uncorrected unrecoverable error in kernel context",
            true,
        )
    } else {
        severity(Level::Ar, "Action required", false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SER: SeverityContext = SeverityContext {
        ser: Some(true),
        succor: None,
    };
    const NOSER: SeverityContext = SeverityContext {
        ser: Some(false),
        succor: None,
    };

    fn intel(status: u64, mcgstatus: u64, cs: Option<u8>) -> MceRaw {
        MceRaw {
            cpu: Some(1),
            bank: Some(1),
            status,
            mcgstatus: Some(mcgstatus),
            cs,
            cpuvendor: Some(0),
            ..MceRaw::default()
        }
    }

    fn grade(raw: &MceRaw, ctx: &SeverityContext) -> (&'static str, &'static str) {
        let s = linux_severity(raw, ctx);
        assert_eq!(s.fatal, s.level == "panic");
        (s.level, s.message)
    }

    #[test]
    fn intel_srar_data_load_in_kernel_panics() {
        // Data point 1: qemu's AR injection caught in kernel mode.
        let mut raw = intel(0xbd80_0000_0000_0134, 0x7, Some(0x10));
        raw.misc = Some(0x86);
        raw.addr = Some(0x234_5000);
        let s = linux_severity(&raw, &SER);
        assert_eq!(s.level, "panic");
        assert_eq!(s.message, "Data load in unrecoverable area of kernel");
        assert!(s.fatal && s.kernel_message);
        // SER guessed from the S/AR bits.
        assert_eq!(
            grade(&raw, &SeverityContext::default()),
            ("panic", "Data load in unrecoverable area of kernel")
        );
        // The same in user mode is recoverable.
        raw.cs = Some(0x33);
        assert_eq!(
            grade(&raw, &SER),
            ("ar", "Action required: data load error in a user process")
        );
        // qemu before 7.0 gave MCG_STATUS MCIP|EIPV: no restart IP in the kernel.
        let raw = intel(0xbd80_0000_0000_0134, 0x6, Some(0x10));
        assert_eq!(grade(&raw, &SER), ("panic", "In kernel and no restart IP"));
    }

    #[test]
    fn intel_instruction_fetch() {
        let raw = intel(0xbd80_0000_0000_0150, 0x7, Some(0x33));
        assert_eq!(
            grade(&raw, &SER),
            (
                "ar",
                "Action required: instruction fetch error in a user process"
            )
        );
        let raw = intel(0xbd80_0000_0000_0150, 0x7, Some(0x10));
        assert_eq!(
            grade(&raw, &SER),
            ("panic", "Instruction fetch error in kernel")
        );
        // RIPV without EIPV: the interrupted thread can go on.
        let raw = intel(0xbd80_0000_0000_0150, 0x5, Some(0x10));
        assert_eq!(
            grade(&raw, &SER),
            (
                "keep",
                "Action required but unaffected thread is continuable"
            )
        );
        // SEAM non-root mode.
        let raw = intel(0xbd80_0000_0000_0134, 0x1007, Some(0x10));
        assert_eq!(
            grade(&raw, &SER),
            ("ar", "Data load error in SEAM non-root mode")
        );
    }

    #[test]
    fn intel_srao_scrub() {
        // Data point 3: qemu's AO injection.
        for cs in [None, Some(0x10)] {
            let raw = intel(0xbd00_0000_0000_00c0, 0x5, cs);
            assert_eq!(
                grade(&raw, &SER),
                ("ao", "Action optional: memory scrubbing error")
            );
        }
        // The F bit and the channel do not matter.
        let raw = intel(0xbd00_0000_0000_10c3, 0x5, None);
        assert_eq!(grade(&raw, &SER).0, "ao");
        let raw = intel(0xbd00_0000_0000_017a, 0x5, None);
        assert_eq!(
            grade(&raw, &SER),
            ("ao", "Action optional: last level cache writeback error")
        );
        let raw = intel(0xbd00_0000_0000_0090, 0x5, Some(0x33));
        assert_eq!(
            grade(&raw, &SER),
            ("some", "Action optional: unknown MCACOD")
        );
        let raw = intel(0xfd00_0000_0000_0090, 0x5, Some(0x33));
        assert_eq!(
            grade(&raw, &SER),
            ("some", "Action optional with lost events")
        );
    }

    #[test]
    fn intel_ucna_broadcast() {
        // Data point 4: qemu's broadcast to the other vCPUs (VAL|UC, EN clear). The #MC handler
        // leaves it to the poller (S clear), which grades it outside exception context.
        let raw = intel(0xa000_0000_0000_0000, 0x5, None);
        assert_eq!(
            grade(&raw, &SER),
            ("deferred", "Uncorrected no action required")
        );
        // Without MCG_STATUS too.
        let mut raw = intel(0xa000_0000_0000_0000, 0, None);
        raw.mcgstatus = None;
        raw.mcgcap = Some(0x0900_010a);
        assert_eq!(
            grade(&raw, &SeverityContext::default()),
            ("deferred", "Uncorrected no action required")
        );
        let raw = intel(0xa080_0000_0000_0000, 0x5, None);
        assert_eq!(
            grade(&raw, &SER),
            ("panic", "Illegal combination (UCNA with AR=1)")
        );
    }

    #[test]
    fn intel_corrected() {
        // Data point 5: corrected memory read error.
        let raw = intel(0x9c00_0000_0000_0090, 0, None);
        assert_eq!(
            grade(&raw, &SeverityContext::default()),
            ("keep", "Corrected error")
        );
        assert_eq!(grade(&raw, &NOSER), ("keep", "Corrected error"));
        // With SER the table reaches "not signalled" first.
        assert_eq!(grade(&raw, &SER), ("keep", "Non signaled machine check"));
        // Data point 6: corrected instruction fetch.
        let raw = intel(0x9000_0000_0000_0150, 0, None);
        assert_eq!(grade(&raw, &NOSER), ("keep", "Corrected error"));
        assert_eq!(grade(&raw, &SER), ("keep", "Non signaled machine check"));
    }

    #[test]
    fn intel_exception_rows() {
        assert_eq!(
            grade(&intel(0x1000_0000_0000_0000, 0x5, None), &SER),
            ("no", "Invalid")
        );
        // EN clear and signalled, in the handler.
        assert_eq!(
            grade(&intel(0xa100_0000_0000_0000, 0x5, None), &SER),
            ("no", "Not enabled")
        );
        assert_eq!(
            grade(&intel(0xba00_0000_0000_0000, 0x5, None), &SER),
            ("panic", "Processor context corrupt")
        );
        // MCIP clear and the handler would take it: graded by the poller, no MCIP row.
        assert_eq!(
            grade(&intel(0xbd00_0000_0000_00c0, 0x1, None), &SER),
            ("ao", "Action optional: memory scrubbing error")
        );
        assert_eq!(
            grade(&intel(0xbd00_0000_0000_00c0, 0x4, None), &SER),
            ("panic", "Neither restart nor error IP")
        );
        assert_eq!(
            grade(&intel(0xbd00_0000_0000_00c0, 0x6, None), &SER),
            ("panic", "In kernel and no restart IP")
        );
        assert_eq!(
            grade(&intel(0xfd80_0000_0000_0134, 0x7, None), &SER),
            ("panic", "Action required with lost events")
        );
        assert_eq!(
            grade(&intel(0xbd80_0000_0000_0005, 0x7, Some(0x33)), &SER),
            ("panic", "Action required: unknown MCACOD")
        );
    }

    #[test]
    fn intel_without_ser() {
        let raw = intel(0xb000_0000_0000_0005, 0x5, Some(0x33));
        assert_eq!(grade(&raw, &NOSER), ("uc", "Uncorrected"));
        let raw = intel(0xb000_0000_0000_0005, 0x5, Some(0x10));
        assert_eq!(grade(&raw, &NOSER), ("panic", "Uncorrected in kernel"));
        let raw = intel(0xf000_0000_0000_0005, 0x5, Some(0x33));
        assert_eq!(grade(&raw, &NOSER), ("panic", "Overflowed uncorrected"));
        // Corrected, never signalled: no match in the handler rows, the NOSER row takes it.
        let raw = intel(0x8000_0000_0000_0005, 0x5, None);
        assert_eq!(grade(&raw, &NOSER), ("keep", "Corrected error"));
    }

    #[test]
    fn skylake_patrol_scrub_quirk() {
        // UC clear, MSCOD 0x0010, scrub MCACOD, MC bank 13..18 on Skylake-X stepping 4.
        let mut raw = intel(0x9c00_0000_0010_00c2, 0, None);
        raw.bank = Some(13);
        raw.cpuid = Some(0x0005_0654);
        assert_eq!(grade(&raw, &SER), ("ao", "Uncorrected Patrol Scrub Error"));
        raw.cpuid = Some(0x0005_0653);
        assert_eq!(grade(&raw, &SER), ("keep", "Non signaled machine check"));
        raw.cpuid = Some(0x0005_0654);
        raw.bank = Some(12);
        assert_eq!(grade(&raw, &SER), ("keep", "Non signaled machine check"));
    }

    fn amd(status: u64, mcgstatus: u64, cs: Option<u8>) -> MceRaw {
        MceRaw {
            bank: Some(9),
            status,
            mcgstatus: Some(mcgstatus),
            cs,
            cpuvendor: Some(2),
            cpuid: Some(0x60fb1),
            ..MceRaw::default()
        }
    }

    #[test]
    fn amd_without_succor_panics() {
        // Data point 2: Intel-style AO values injected into an AMD guest (qemu before 9.1).
        let raw = amd(0xbd00_0000_0000_00c0, 0x5, Some(0x10));
        let s = linux_severity(&raw, &SeverityContext::default());
        assert_eq!(s.level, "panic");
        assert_eq!(s.message, "Uncorrected error without MCA Recovery");
        assert!(s.fatal && s.kernel_message);
        // The broadcast record too.
        let raw = amd(0xa000_0000_0000_0000, 0x5, Some(0x10));
        assert_eq!(
            grade(&raw, &SeverityContext::default()),
            ("panic", "Uncorrected error without MCA Recovery")
        );
    }

    #[test]
    fn amd_grades() {
        let succor = SeverityContext {
            ser: None,
            succor: Some(true),
        };
        // qemu 9.1+ AMD AR: UC|POISON.
        let raw = amd(0xbc00_0800_0000_0000, 0x7, Some(0x33));
        let s = linux_severity(&raw, &succor);
        assert_eq!((s.level, s.kernel_message), ("ar", false));
        let raw = amd(0xbc00_0800_0000_0000, 0x7, Some(0x10));
        assert_eq!(
            grade(&raw, &succor),
            ("panic", "Uncorrected unrecoverable error in kernel context")
        );
        assert_eq!(
            grade(&raw, &SeverityContext::default()),
            ("panic", "Uncorrected error without MCA Recovery")
        );
        // qemu 9.1+ AMD AO: DEFERRED|POISON, UC clear.
        let raw = amd(0x9c00_1800_0000_0000, 0x5, None);
        assert_eq!(grade(&raw, &SeverityContext::default()).0, "deferred");
        let raw = amd(0x9c00_0000_0000_0000, 0, None);
        assert_eq!(grade(&raw, &SeverityContext::default()).0, "keep");
        let raw = amd(0xbe00_0000_0000_0000, 0x5, None);
        assert_eq!(grade(&raw, &succor), ("panic", "Processor Context Corrupt"));
        let raw = amd(0xfc00_0000_0000_0000, 0x5, None);
        assert_eq!(
            grade(&raw, &SeverityContext::default()),
            (
                "panic",
                "Overflowed uncorrected error without MCA Overflow Recovery"
            )
        );
        // Hygon takes the AMD path.
        let mut raw = amd(0xbc00_0800_0000_0000, 0x7, Some(0x10));
        raw.cpuvendor = Some(9);
        assert_eq!(
            grade(&raw, &SeverityContext::default()),
            ("panic", "Uncorrected error without MCA Recovery")
        );
    }

    #[test]
    fn unknown_mcgstatus() {
        // An inexact IP: RIPV set, EIPV clear.
        let mut raw = intel(0xbd80_0000_0000_0134, 0, Some(0x10));
        raw.mcgstatus = None;
        raw.ip = Some(0xffff_ffff_8100_0000);
        raw.ip_inexact = true;
        assert_eq!(
            grade(&raw, &SER),
            (
                "keep",
                "Action required but unaffected thread is continuable"
            )
        );
        // An exact IP: EIPV set, RIPV unknown (clear).
        raw.ip_inexact = false;
        assert_eq!(grade(&raw, &SER), ("panic", "In kernel and no restart IP"));
        // No IP at all: neither.
        raw.ip = None;
        assert_eq!(grade(&raw, &SER), ("panic", "Neither restart nor error IP"));
    }

    #[test]
    fn stored_level_names() {
        assert_eq!(severity_level_name(0), Some("no"));
        assert_eq!(severity_level_name(1), Some("deferred"));
        assert_eq!(severity_level_name(4), Some("ao"));
        assert_eq!(severity_level_name(7), Some("panic"));
        assert_eq!(severity_level_name(8), None);
    }

    #[test]
    fn table_ends_with_catch_all() {
        let last = INTEL_TABLE[INTEL_TABLE.len() - 1];
        assert_eq!((last.mask, last.msg), (0, "No match"));
    }
}
