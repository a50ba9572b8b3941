//! One machine-check record as the kernel holds it (`struct mce`), whichever source it came
//! from: the fields a source does not carry are `None`.

use serde::Serialize;

/// The x86 `struct mce` fields (arch/x86/include/uapi/asm/mce.h), each `None` when the
/// source does not give it (a log line without `ADDR`, an older layout without `SYND`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MceRaw {
    /// `extcpu`: the logical CPU that saw the error.
    pub cpu: Option<u32>,
    /// MCA bank; 128 and up are the kernel's software banks.
    pub bank: Option<u8>,
    /// MCi_STATUS.
    #[serde(with = "coroner_formats::hex")]
    pub status: u64,
    /// MCG_STATUS.
    #[serde(with = "coroner_formats::hex::option")]
    pub mcgstatus: Option<u64>,
    /// MCi_ADDR.
    #[serde(with = "coroner_formats::hex::option")]
    pub addr: Option<u64>,
    /// MCi_MISC.
    #[serde(with = "coroner_formats::hex::option")]
    pub misc: Option<u64>,
    /// The instruction pointer the kernel recorded (RIP, or the RIP MSR).
    #[serde(with = "coroner_formats::hex::option")]
    pub ip: Option<u64>,
    /// Code segment selector at `ip` (0x10 is `__KERNEL_CS`, 0x33 `__USER_CS`).
    pub cs: Option<u8>,
    /// The symbol the kernel printed for `ip` (`{sym+0x..}`), when it printed one.
    pub ip_symbol: Option<String>,
    /// The kernel marked `ip` `!INEXACT!` (MCG_STATUS.EIPV clear).
    pub ip_inexact: bool,
    /// Time stamp counter.
    #[serde(with = "coroner_formats::hex::option")]
    pub tsc: Option<u64>,
    /// Wall-clock time, seconds since the epoch.
    pub time: Option<u64>,
    /// `X86_VENDOR_*`: 0 Intel, 2 AMD, 9 Hygon, 10 Zhaoxin.
    pub cpuvendor: Option<u8>,
    /// CPUID leaf 1 EAX (family, model, stepping).
    pub cpuid: Option<u32>,
    /// Physical package.
    pub socket: Option<u32>,
    /// Initial APIC id.
    pub apic: Option<u32>,
    /// Microcode revision.
    pub microcode: Option<u32>,
    /// MCG_CAP.
    #[serde(with = "coroner_formats::hex::option")]
    pub mcgcap: Option<u64>,
    /// Syndrome (AMD SMCA).
    #[serde(with = "coroner_formats::hex::option")]
    pub synd: Option<u64>,
    /// MCA_IPID (AMD SMCA).
    #[serde(with = "coroner_formats::hex::option")]
    pub ipid: Option<u64>,
    /// Protected processor inventory number.
    #[serde(with = "coroner_formats::hex::option")]
    pub ppin: Option<u64>,
    /// The kernel's own severity grade (`enum severity_level`), where stored.
    pub severity: Option<u8>,
}

impl MceRaw {
    /// MCi_STATUS bit `n`.
    pub fn status_bit(&self, n: u32) -> bool {
        self.status >> n & 1 == 1
    }

    /// Where it was seen: `CPU 1 bank 1`, `bank 9` (CPU unknown), `CPU 1, unknown bank`.
    pub fn place(&self) -> String {
        match (self.cpu, self.bank) {
            (Some(c), Some(b)) => format!("CPU {c} bank {b}"),
            (None, Some(b)) => format!("bank {b}"),
            (Some(c), None) => format!("CPU {c}, unknown bank"),
            (None, None) => "unknown CPU and bank".into(),
        }
    }

    /// MCG_STATUS bit `n`, when MCG_STATUS is known.
    pub fn mcg_bit(&self, n: u32) -> Option<bool> {
        self.mcgstatus.map(|m| m >> n & 1 == 1)
    }
}
