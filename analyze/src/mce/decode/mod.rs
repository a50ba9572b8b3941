//! Decoding of MCG_STATUS, MCi_STATUS, the MCA error code and the Linux severity class.
//!
//! Bit positions: arch/x86/include/asm/mce.h. The error-code table is in [`code`], the kernel's
//! severity grading in [`severity`].

mod code;
mod severity;

use code::{addr_granularity, decode_mcacod};
pub use code::{AddrGranularity, ErrorCode};
use severity::{linux_severity, severity_level_name};
pub use severity::{Severity, SeverityContext};

use super::raw::MceRaw;
use serde::Serialize;

// MCi_STATUS bits.
const MCI_VAL: u64 = 1 << 63;
const MCI_OVER: u64 = 1 << 62;
const MCI_UC: u64 = 1 << 61;
const MCI_EN: u64 = 1 << 60;
const MCI_MISCV: u64 = 1 << 59;
const MCI_ADDRV: u64 = 1 << 58;
const MCI_PCC: u64 = 1 << 57;
const MCI_S: u64 = 1 << 56;
const MCI_AR: u64 = 1 << 55;
const MCI_SYNDV: u64 = 1 << 53;
const MCI_DEFERRED: u64 = 1 << 44;
const MCI_POISON: u64 = 1 << 43;
// MCG_STATUS bits.
const MCG_RIPV: u64 = 1 << 0;
const MCG_EIPV: u64 = 1 << 1;
const MCG_MCIP: u64 = 1 << 2;
const MCG_LMCES: u64 = 1 << 3;
const MCG_SEAM_NR: u64 = 1 << 12;
/// MCG_CAP.TES_P: threshold-based error status in MCi_STATUS bits 54:53.
const MCG_TES_P: u64 = 1 << 11;

/// The kernel's software banks (`MCE_THERMAL_BANK`, the timeout bank, APEI's bank -1).
const THERMAL_BANK: u8 = 128;
const TIMEOUT_BANK: u8 = 218;
const APEI_BANK: u8 = 255;

/// CPU vendor, from struct mce's cpuvendor byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vendor {
    /// `X86_VENDOR_INTEL` (0).
    Intel,
    /// `X86_VENDOR_AMD` (2).
    Amd,
    /// `X86_VENDOR_HYGON` (9).
    Hygon,
    /// `X86_VENDOR_ZHAOXIN` (10).
    Zhaoxin,
    /// `X86_VENDOR_CENTAUR` (5).
    Centaur,
    /// Any other `X86_VENDOR_*` value.
    Other,
}

impl Vendor {
    /// The vendor for an `X86_VENDOR_*` number.
    pub fn from_x86_vendor(v: u8) -> Vendor {
        match v {
            0 => Vendor::Intel,
            2 => Vendor::Amd,
            5 => Vendor::Centaur,
            9 => Vendor::Hygon,
            10 => Vendor::Zhaoxin,
            _ => Vendor::Other,
        }
    }

    /// The vendor's name as people write it: "Intel", "AMD", "Hygon", "Zhaoxin", "Centaur",
    /// "other".
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Intel => "Intel",
            Vendor::Amd => "AMD",
            Vendor::Hygon => "Hygon",
            Vendor::Zhaoxin => "Zhaoxin",
            Vendor::Centaur => "Centaur",
            Vendor::Other => "other",
        }
    }
}

/// AMD and Hygon share the kernel's AMD machine-check code (and its status bits).
fn is_amd_like(v: Vendor) -> bool {
    matches!(v, Vendor::Amd | Vendor::Hygon)
}

/// Display family from CPUID.1 EAX, as the kernel's `x86_family()`.
fn cpu_family(cpuid: u32) -> u32 {
    let base = cpuid >> 8 & 0xf;
    if base == 0xf {
        base + (cpuid >> 20 & 0xff)
    } else {
        base
    }
}

/// Display model from CPUID.1 EAX, as the kernel's `x86_model()`.
fn cpu_model(cpuid: u32) -> u32 {
    let model = cpuid >> 4 & 0xf;
    if cpu_family(cpuid) >= 6 {
        model + ((cpuid >> 16 & 0xf) << 4)
    } else {
        model
    }
}

/// Stepping from CPUID.1 EAX.
fn cpu_stepping(cpuid: u32) -> u32 {
    cpuid & 0xf
}

/// Everything decoded about one record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decoded {
    /// The CPU vendor, when the record has it.
    pub vendor: Option<Vendor>,
    /// Display family (extended family included), from CPUID.1 EAX.
    pub family: Option<u32>,
    /// Display model (extended model included), from CPUID.1 EAX.
    pub model: Option<u32>,
    /// MCG_STATUS flags set: "RIPV", "EIPV", "MCIP", "LMCES".
    pub mcg_status: Vec<&'static str>,
    /// MCi_STATUS flags set, high bit first: "VAL", "OVER", "UC", "EN", "MISCV", "ADDRV", "PCC",
    /// "S", "AR"; on AMD/Hygon also "SYNDV", "DEFERRED", "POISON", and bit 55 is "TCC" on
    /// family 0x17 and later (SMCA, where the kernel enables MCAX).
    pub status: Vec<&'static str>,
    /// The MCA error code, with MSCOD.
    pub error: ErrorCode,
    /// The hardware corrected the error (UC clear, and on AMD/Hygon not deferred).
    pub corrected: bool,
    /// Intel corrected-error count (MCi_STATUS bits 52:38) for a corrected error, when nonzero.
    pub corrected_count: Option<u16>,
    /// Intel threshold-based error status (bits 54:53) for a corrected error when MCG_CAP is
    /// known with TES_P: "no tracking", "green", "yellow" or "reserved".
    pub threshold: Option<&'static str>,
    /// For an uncorrected error under SER, the class from (S, AR): "UCNA", "SRAO", "SRAR", or
    /// "illegal (AR without S)".
    pub uc_kind: Option<&'static str>,
    /// MCi_ADDR's precision from MCi_MISC, when MISCV (Intel-format MISC; not on AMD/Hygon).
    pub address_granularity: Option<AddrGranularity>,
    /// What the bank is: the kernel's software banks ("thermal", "timeout", "APEI"), or a
    /// legacy AMD bank (families before 0x17); None when not known.
    pub bank_kind: Option<String>,
    /// The kernel's severity grading, recomputed.
    pub severity: Severity,
    /// The grade the kernel stored in the record (`struct mce` severity), by level name.
    pub kernel_severity: Option<&'static str>,
    /// One line to read first, e.g. "uncorrected, action required (SRAR): level-0 data cache
    /// data-read error at 0x2345000".
    pub summary: String,
}

/// Names of the set bits of `value` among `names`.
fn flags(value: u64, names: &[(u64, &'static str)]) -> Vec<&'static str> {
    names
        .iter()
        .filter(|(bit, _)| value & bit != 0)
        .map(|&(_, name)| name)
        .collect()
}

/// MCi_STATUS flag names for the vendor.
fn status_flags(status: u64, amd: bool, smca: bool) -> Vec<&'static str> {
    let common = [
        (MCI_VAL, "VAL"),
        (MCI_OVER, "OVER"),
        (MCI_UC, "UC"),
        (MCI_EN, "EN"),
        (MCI_MISCV, "MISCV"),
        (MCI_ADDRV, "ADDRV"),
        (MCI_PCC, "PCC"),
        (MCI_S, "S"),
        (MCI_AR, if amd && smca { "TCC" } else { "AR" }),
    ];
    let mut out = flags(status, &common);
    if amd {
        out.extend(flags(
            status,
            &[
                (MCI_SYNDV, "SYNDV"),
                (MCI_DEFERRED, "DEFERRED"),
                (MCI_POISON, "POISON"),
            ],
        ));
    }
    out
}

/// The kind of bank `bank`: software banks for any vendor, legacy AMD banks by family.
fn bank_kind(bank: u8, amd: bool, family: Option<u32>) -> Option<String> {
    let name = match bank {
        THERMAL_BANK => "thermal",
        TIMEOUT_BANK => "timeout",
        APEI_BANK => "APEI",
        _ if !amd => return None,
        _ => {
            let family = family.filter(|&f| f < 0x17)?;
            match bank {
                0 => "data cache",
                1 => "instruction cache",
                2 if family == 0x15 => "combined unit",
                2 => "bus unit",
                3 => "load/store",
                4 => "northbridge",
                5 => "execution unit",
                6 => "floating point",
                _ => return None,
            }
        }
    };
    Some(name.to_string())
}

/// The (S, AR) class of an uncorrected error under SER.
fn uc_kind(status: u64) -> &'static str {
    match (status & MCI_S != 0, status & MCI_AR != 0) {
        (false, false) => "UCNA",
        (true, false) => "SRAO",
        (true, true) => "SRAR",
        (false, true) => "illegal (AR without S)",
    }
}

/// Decodes one record: flags, error code, Intel/AMD extras, the kernel's grading and a summary.
pub fn decode(raw: &MceRaw, ctx: &SeverityContext) -> Decoded {
    let status = raw.status;
    let vendor = raw.cpuvendor.map(Vendor::from_x86_vendor);
    let amd = vendor.is_some_and(is_amd_like);
    let family = raw.cpuid.map(cpu_family);
    let model = raw.cpuid.map(cpu_model);
    let smca = family.is_some_and(|f| f >= 0x17);
    let uc = status & MCI_UC != 0;
    let deferred = amd && status & MCI_DEFERRED != 0;

    let mut error = decode_mcacod((status & 0xffff) as u16);
    error.mscod = (status >> 16 & 0xffff) as u16;

    let intel_corrected = !amd && !uc;
    let corrected_count =
        Some((status >> 38 & 0x7fff) as u16).filter(|&n| intel_corrected && n != 0);
    let threshold = raw
        .mcgcap
        .filter(|&cap| intel_corrected && cap & MCG_TES_P != 0)
        .map(|_| match status >> 53 & 3 {
            0 => "no tracking",
            1 => "green",
            2 => "yellow",
            _ => "reserved",
        });
    let uc_kind = (uc && !amd && severity::effective_ser(raw, ctx)).then(|| uc_kind(status));
    let address_granularity = raw
        .misc
        .filter(|_| !amd && status & MCI_MISCV != 0)
        .map(addr_granularity);

    let mut decoded = Decoded {
        vendor,
        family,
        model,
        mcg_status: raw.mcgstatus.map_or_else(Vec::new, |m| {
            flags(
                m,
                &[
                    (MCG_RIPV, "RIPV"),
                    (MCG_EIPV, "EIPV"),
                    (MCG_MCIP, "MCIP"),
                    (MCG_LMCES, "LMCES"),
                ],
            )
        }),
        status: status_flags(status, amd, smca),
        error,
        corrected: !uc && !deferred,
        corrected_count,
        threshold,
        uc_kind,
        address_granularity,
        bank_kind: raw.bank.and_then(|b| bank_kind(b, amd, family)),
        severity: linux_severity(raw, ctx),
        kernel_severity: raw.severity.and_then(severity_level_name),
        summary: String::new(),
    };
    decoded.summary = summary(raw, &decoded, amd);
    decoded
}

/// The one-line summary of a decoded record.
fn summary(raw: &MceRaw, d: &Decoded, amd: bool) -> String {
    let status = raw.status;
    if status & MCI_VAL == 0 {
        return format!("not valid (VAL clear), status {status:#018x}");
    }
    if raw.bank == Some(THERMAL_BANK) {
        let state = if status & 1 != 0 {
            "above trip temperature, throttling"
        } else {
            "below trip temperature"
        };
        return format!("thermal event: {state}");
    }
    let mut state = if d.corrected {
        "corrected".to_string()
    } else if amd && status & MCI_DEFERRED != 0 {
        "deferred".to_string()
    } else {
        match d.uc_kind {
            Some("SRAR") => "uncorrected, action required (SRAR)".to_string(),
            Some("SRAO") => "uncorrected, action optional (SRAO)".to_string(),
            Some("UCNA") => "uncorrected, no action required (UCNA)".to_string(),
            Some(other) => format!("uncorrected, {other}"),
            None => "uncorrected".to_string(),
        }
    };
    for (bit, note) in [
        (MCI_PCC, ", processor context corrupt"),
        (MCI_OVER, ", overflow"),
    ] {
        if status & bit != 0 {
            state.push_str(note);
        }
    }
    if status & MCI_EN == 0 {
        state.push_str(", not enabled");
    }
    let poison = amd && status & MCI_POISON != 0;
    let mut what = match (d.error.class, poison) {
        ("no error", true) => "poisoned data".to_string(),
        ("no error", false) => "no error code".to_string(),
        (_, true) => format!("{} (poison)", d.error.text),
        (_, false) => d.error.text.clone(),
    };
    if let Some(addr) = raw.addr.filter(|_| status & MCI_ADDRV != 0) {
        what.push_str(&format!(" at {addr:#x}"));
    }
    format!("{state}: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SER: SeverityContext = SeverityContext {
        ser: Some(true),
        succor: None,
    };

    fn intel(status: u64) -> MceRaw {
        MceRaw {
            cpu: Some(1),
            bank: Some(1),
            status,
            cpuvendor: Some(0),
            cpuid: Some(0x0005_0654),
            ..MceRaw::default()
        }
    }

    #[test]
    fn vendors() {
        let all = [
            (0, Vendor::Intel, "Intel"),
            (2, Vendor::Amd, "AMD"),
            (5, Vendor::Centaur, "Centaur"),
            (9, Vendor::Hygon, "Hygon"),
            (10, Vendor::Zhaoxin, "Zhaoxin"),
            (1, Vendor::Other, "other"),
            (255, Vendor::Other, "other"),
        ];
        for (n, v, name) in all {
            assert_eq!(Vendor::from_x86_vendor(n), v);
            assert_eq!(v.name(), name);
        }
    }

    #[test]
    fn family_and_model() {
        // qemu64: family 15 model 107.
        assert_eq!((cpu_family(0x60fb1), cpu_model(0x60fb1)), (15, 0x6b));
        // Skylake-X stepping 4.
        assert_eq!(
            (
                cpu_family(0x50654),
                cpu_model(0x50654),
                cpu_stepping(0x50654)
            ),
            (6, 0x55, 4)
        );
        // Zen 2 (EPYC Rome): family 0x17 model 0x31.
        assert_eq!((cpu_family(0x830f10), cpu_model(0x830f10)), (0x17, 0x31));
        // Family 5: no extended model.
        assert_eq!(cpu_model(0x10543), 4);
    }

    #[test]
    fn qemu_intel_srar_in_kernel() {
        let mut raw = intel(0xbd80_0000_0000_0134);
        raw.mcgstatus = Some(0x7);
        raw.cs = Some(0x10);
        raw.misc = Some(0x86);
        raw.addr = Some(0x234_5000);
        raw.mcgcap = Some(0x0900_010a);
        let d = decode(&raw, &SER);
        assert_eq!(d.vendor, Some(Vendor::Intel));
        assert_eq!(d.mcg_status, ["RIPV", "EIPV", "MCIP"]);
        assert_eq!(d.status, ["VAL", "UC", "EN", "MISCV", "ADDRV", "S", "AR"]);
        assert_eq!(d.error.class, "cache hierarchy");
        assert_eq!(d.error.text, "level-0 data cache data-read error");
        assert!(d.error.memory_error);
        assert!(!d.corrected);
        assert_eq!(d.corrected_count, None);
        assert_eq!(d.threshold, None);
        assert_eq!(d.uc_kind, Some("SRAR"));
        assert_eq!(
            d.address_granularity,
            Some(AddrGranularity {
                lsb: 6,
                mode: "physical"
            })
        );
        assert_eq!(d.bank_kind, None);
        assert_eq!(d.severity.level, "panic");
        assert_eq!(
            d.severity.message,
            "Data load in unrecoverable area of kernel"
        );
        assert_eq!(
            d.summary,
            "uncorrected, action required (SRAR): level-0 data cache data-read error at 0x2345000"
        );
    }

    #[test]
    fn qemu_intel_srao_and_broadcast() {
        let mut raw = intel(0xbd00_0000_0000_00c0);
        raw.bank = Some(9);
        raw.mcgstatus = Some(0x5);
        raw.misc = Some(0x8c);
        raw.addr = Some(0x1_0b5c_e000);
        let d = decode(&raw, &SeverityContext::default());
        assert_eq!(d.uc_kind, Some("SRAO"));
        assert_eq!(d.severity.level, "ao");
        assert_eq!(d.address_granularity.map(|g| g.lsb), Some(12));
        assert_eq!(
            d.summary,
            "uncorrected, action optional (SRAO): memory controller scrubbing error on channel 0 \
             at 0x10b5ce000"
        );

        let mut raw = intel(0xa000_0000_0000_0000);
        raw.mcgstatus = Some(0x5);
        raw.addr = Some(0);
        raw.misc = Some(0);
        let d = decode(&raw, &SER);
        assert_eq!(d.status, ["VAL", "UC"]);
        assert_eq!(d.uc_kind, Some("UCNA"));
        assert_eq!(d.address_granularity, None);
        assert_eq!(
            (d.severity.level, d.severity.message),
            ("deferred", "Uncorrected no action required")
        );
        assert_eq!(
            d.summary,
            "uncorrected, no action required (UCNA), not enabled: no error code"
        );
    }

    #[test]
    fn intel_corrected_memory_read() {
        let mut raw = intel(0x9c00_0000_0000_0090);
        raw.misc = Some(0x8c);
        raw.addr = Some(0x123_4000);
        let d = decode(&raw, &SeverityContext::default());
        assert!(d.corrected);
        assert_eq!(d.status, ["VAL", "EN", "MISCV", "ADDRV"]);
        assert_eq!(d.uc_kind, None);
        assert_eq!(d.corrected_count, None);
        assert_eq!(
            d.address_granularity,
            Some(AddrGranularity {
                lsb: 12,
                mode: "physical"
            })
        );
        assert_eq!(
            (d.severity.level, d.severity.message),
            ("keep", "Corrected error")
        );
        assert_eq!(
            d.summary,
            "corrected: memory controller read error on channel 0 at 0x1234000"
        );
    }

    #[test]
    fn intel_corrected_instruction_fetch_with_count_and_threshold() {
        let d = decode(&intel(0x9000_0000_0000_0150), &SeverityContext::default());
        assert_eq!(d.status, ["VAL", "EN"]);
        assert_eq!(d.address_granularity, None);
        assert_eq!(d.severity.message, "Corrected error");
        assert_eq!(
            d.summary,
            "corrected: level-0 instruction cache instruction-fetch error"
        );

        // Count 5, threshold yellow, MSCOD 0x0001, F bit.
        let mut raw = intel(0x9000_0000_0000_0150 | 5 << 38 | 2 << 53 | 1 << 16 | 0x1000);
        assert_eq!(decode(&raw, &SER).threshold, None); // MCG_CAP unknown
        raw.mcgcap = Some(0x0100_0c0a); // TES_P
        let d = decode(&raw, &SER);
        assert_eq!(d.corrected_count, Some(5));
        assert_eq!(d.threshold, Some("yellow"));
        assert_eq!(d.error.mscod, 1);
        assert!(d.error.corrected_filtering);
        raw.mcgcap = Some(0x0100_000a); // no TES_P
        assert_eq!(decode(&raw, &SER).threshold, None);
    }

    fn amd(status: u64) -> MceRaw {
        MceRaw {
            bank: Some(9),
            status,
            cpuvendor: Some(2),
            cpuid: Some(0x60fb1),
            misc: Some(0x8c),
            addr: Some(0x1_18cb_9000),
            ..MceRaw::default()
        }
    }

    #[test]
    fn qemu_amd_values() {
        // AR (qemu 9.1+): UC|POISON.
        let mut raw = amd(0xbc00_0800_0000_0000);
        raw.mcgstatus = Some(0x7);
        raw.cs = Some(0x10);
        let d = decode(&raw, &SeverityContext::default());
        assert_eq!((d.family, d.model), (Some(15), Some(0x6b)));
        assert_eq!(d.status, ["VAL", "UC", "EN", "MISCV", "ADDRV", "POISON"]);
        assert!(!d.corrected);
        assert_eq!(d.uc_kind, None);
        assert_eq!(d.address_granularity, None);
        assert_eq!(d.bank_kind, None);
        assert_eq!(d.severity.message, "Uncorrected error without MCA Recovery");
        assert_eq!(d.summary, "uncorrected: poisoned data at 0x118cb9000");

        // AO (qemu 9.1+): DEFERRED|POISON.
        let mut raw = amd(0x9c00_1800_0000_0000);
        raw.mcgstatus = Some(0x5);
        let d = decode(&raw, &SeverityContext::default());
        assert_eq!(
            d.status,
            ["VAL", "EN", "MISCV", "ADDRV", "DEFERRED", "POISON"]
        );
        assert!(!d.corrected);
        assert_eq!(d.corrected_count, None);
        assert_eq!(d.severity.level, "deferred");
        assert_eq!(d.summary, "deferred: poisoned data at 0x118cb9000");
    }

    #[test]
    fn amd_intel_style_values() {
        // Data point 2: qemu before 9.1 injected Intel values into AMD guests.
        let mut raw = amd(0xbd00_0000_0000_00c0);
        raw.mcgstatus = Some(0x5);
        raw.cs = Some(0x10);
        let d = decode(&raw, &SeverityContext::default());
        assert_eq!(d.status, ["VAL", "UC", "EN", "MISCV", "ADDRV", "S"]);
        assert_eq!(
            (d.severity.level, d.severity.message),
            ("panic", "Uncorrected error without MCA Recovery")
        );
        assert!(d.severity.fatal);
        assert_eq!(
            d.summary,
            "uncorrected: memory controller scrubbing error on channel 0 at 0x118cb9000"
        );
    }

    #[test]
    fn amd_smca_flags() {
        let mut raw = amd(0xbc20_0000_0000_0000 | MCI_AR | MCI_SYNDV);
        raw.cpuid = Some(0x830f10);
        let d = decode(&raw, &SeverityContext::default());
        assert_eq!(
            d.status,
            ["VAL", "UC", "EN", "MISCV", "ADDRV", "TCC", "SYNDV"]
        );
        // Intel-only fields stay empty on AMD.
        let mut raw = amd(0x9c00_0000_0000_0000 | 3 << 38);
        raw.mcgcap = Some(0x0800);
        let d = decode(&raw, &SeverityContext::default());
        assert!(d.corrected);
        assert_eq!((d.corrected_count, d.threshold), (None, None));
    }

    #[test]
    fn bank_kinds() {
        assert_eq!(bank_kind(128, false, None).as_deref(), Some("thermal"));
        assert_eq!(bank_kind(218, true, None).as_deref(), Some("timeout"));
        assert_eq!(bank_kind(255, false, Some(6)).as_deref(), Some("APEI"));
        assert_eq!(bank_kind(4, false, Some(6)), None);
        assert_eq!(
            bank_kind(4, true, Some(0x10)).as_deref(),
            Some("northbridge")
        );
        assert_eq!(bank_kind(0, true, Some(0xf)).as_deref(), Some("data cache"));
        assert_eq!(
            bank_kind(2, true, Some(0x15)).as_deref(),
            Some("combined unit")
        );
        assert_eq!(bank_kind(2, true, Some(0x10)).as_deref(), Some("bus unit"));
        assert_eq!(
            bank_kind(6, true, Some(0x15)).as_deref(),
            Some("floating point")
        );
        assert_eq!(bank_kind(9, true, Some(0xf)), None);
        assert_eq!(bank_kind(4, true, Some(0x17)), None);
        assert_eq!(bank_kind(4, true, None), None);
    }

    #[test]
    fn odd_records() {
        let d = decode(&intel(0x0000_0000_0000_0134), &SER);
        assert_eq!(
            d.summary,
            "not valid (VAL clear), status 0x0000000000000134"
        );
        assert_eq!(d.severity.message, "Invalid");

        let mut raw = intel(0x8000_0000_0000_0001);
        raw.bank = Some(128);
        let d = decode(&raw, &SER);
        assert_eq!(d.bank_kind.as_deref(), Some("thermal"));
        assert_eq!(
            d.summary,
            "thermal event: above trip temperature, throttling"
        );

        let mut raw = intel(0xfa00_0000_0000_0005);
        raw.mcgstatus = Some(0x5);
        raw.severity = Some(7);
        let d = decode(&raw, &SER);
        assert_eq!(d.uc_kind, Some("UCNA"));
        assert_eq!(d.kernel_severity, Some("panic"));
        assert_eq!(
            d.summary,
            "uncorrected, no action required (UCNA), processor context corrupt, overflow: internal \
             parity error"
        );
        let raw = intel(0xa080_0000_0000_0000);
        assert_eq!(decode(&raw, &SER).uc_kind, Some("illegal (AR without S)"));
        // Without SER there is no (S, AR) class.
        let raw = intel(0xb000_0000_0000_0005);
        assert_eq!(decode(&raw, &SeverityContext::default()).uc_kind, None);
    }
}
