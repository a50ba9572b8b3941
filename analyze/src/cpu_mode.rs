//! The x86 CPU mode and paging mode of a vCPU, from its control and segment registers.
//!
//! qemu's `QEMU` note has CR0, CR3, CR4 and the segment descriptors but no EFER; long
//! mode is known from CS.L (only meaningful with EFER.LMA) and from the ELF header, whose
//! `e_machine` is x86_64 exactly when vCPU 0 had EFER.LMA set.

use coroner_formats::QemuCpuState;
use serde::Serialize;

use crate::x86::{CR0_PE, CR0_PG, CR4_LA57, CR4_PAE, RFLAGS_VM};

/// The execution mode of a vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpuMode {
    /// CR0.PE clear.
    Real,
    /// Virtual-8086 mode (RFLAGS.VM).
    Virtual8086,
    /// Protected mode with a 16-bit code segment.
    Protected16,
    /// Protected mode with a 32-bit code segment.
    Protected32,
    /// Long mode, compatibility sub-mode, 16-bit code.
    Compat16,
    /// Long mode, compatibility sub-mode, 32-bit code.
    Compat32,
    /// Long mode, 64-bit code.
    Long64,
}

impl CpuMode {
    /// The width of code in this mode: 16, 32 or 64 bits.
    pub fn bits(self) -> u32 {
        match self {
            CpuMode::Real | CpuMode::Virtual8086 | CpuMode::Protected16 | CpuMode::Compat16 => 16,
            CpuMode::Protected32 | CpuMode::Compat32 => 32,
            CpuMode::Long64 => 64,
        }
    }

    /// A human name: the one wording of modes everywhere.
    pub fn name(self) -> &'static str {
        match self {
            CpuMode::Real => "real mode",
            CpuMode::Virtual8086 => "virtual-8086 mode",
            CpuMode::Protected16 => "16-bit protected mode",
            CpuMode::Protected32 => "32-bit protected mode",
            CpuMode::Compat16 => "long mode, 16-bit compatibility",
            CpuMode::Compat32 => "long mode, 32-bit compatibility",
            CpuMode::Long64 => "64-bit long mode",
        }
    }
}

/// How linear addresses are translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Paging {
    /// CR0.PG clear: linear = physical.
    Off,
    /// 32-bit two-level paging.
    TwoLevel,
    /// PAE three-level paging.
    Pae,
    /// Four-level paging (long mode).
    FourLevel,
    /// Five-level paging (long mode, CR4.LA57).
    FiveLevel,
}

impl Paging {
    /// A human name: the one wording of paging modes everywhere.
    pub fn name(self) -> &'static str {
        match self {
            Paging::Off => "off",
            Paging::TwoLevel => "32-bit two-level",
            Paging::Pae => "PAE",
            Paging::FourLevel => "four-level",
            Paging::FiveLevel => "five-level",
        }
    }
}

impl std::fmt::Display for CpuMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for Paging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A vCPU's mode, with what it was inferred from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModeInfo {
    /// Execution mode.
    pub mode: CpuMode,
    /// Paging mode.
    pub paging: Paging,
    /// Current privilege level (CS.DPL; 0 in real mode, 3 in v8086).
    pub cpl: u8,
    /// How the mode was determined, for the report's "how we know".
    pub basis: &'static str,
}

/// The mode of a vCPU. `lma` is EFER.LMA when known (from `info registers`, or the ELF
/// header for vCPU 0).
pub fn cpu_mode(s: &QemuCpuState, lma: Option<bool>) -> ModeInfo {
    let (cr0, cr4) = (s.cr[0], s.cr[4]);
    let pg = cr0 & CR0_PG != 0;
    let pae = cr4 & CR4_PAE != 0;
    // CS.L is reserved outside IA-32e mode, so with paging and PAE it implies LMA.
    let (long, basis) = match lma {
        Some(l) => (l, "CR0, CR4, CS descriptor and EFER.LMA"),
        None if pg && pae && s.cs.long() => (true, "CR0, CR4 and CS.L (EFER not in the dump)"),
        None => (
            false,
            "CR0, CR4 and the CS descriptor (EFER not in the dump)",
        ),
    };
    let paging = match (pg, pae, long) {
        (false, _, _) => Paging::Off,
        (true, false, _) => Paging::TwoLevel,
        (true, true, false) => Paging::Pae,
        (true, true, true) if cr4 & CR4_LA57 != 0 => Paging::FiveLevel,
        (true, true, true) => Paging::FourLevel,
    };
    let mode = if cr0 & CR0_PE == 0 {
        CpuMode::Real
    } else if long && s.cs.long() {
        CpuMode::Long64
    } else if long {
        if s.cs.big() {
            CpuMode::Compat32
        } else {
            CpuMode::Compat16
        }
    } else if s.rflags & RFLAGS_VM != 0 {
        CpuMode::Virtual8086
    } else if s.cs.big() {
        CpuMode::Protected32
    } else {
        CpuMode::Protected16
    };
    let cpl = match mode {
        CpuMode::Real => 0,
        CpuMode::Virtual8086 => 3,
        _ => s.cs.dpl(),
    };
    ModeInfo {
        mode,
        paging,
        cpl,
        basis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coroner_formats::Segment;

    fn state(cr0: u64, cr4: u64, cs_flags: u32) -> QemuCpuState {
        QemuCpuState {
            version: 1,
            size: 440,
            gpr: [0; 16],
            rip: 0,
            rflags: 2,
            cs: Segment {
                selector: 0x10,
                limit: 0xffff_ffff,
                flags: cs_flags,
                base: 0,
            },
            ds: Segment::default(),
            es: Segment::default(),
            fs: Segment::default(),
            gs: Segment::default(),
            ss: Segment::default(),
            ldt: Segment::default(),
            tr: Segment::default(),
            gdt: Segment::default(),
            idt: Segment::default(),
            cr: [cr0, 0, 0, 0, cr4],
            kernel_gs_base: None,
        }
    }

    #[test]
    fn linux_kernel_in_long_mode() {
        let s = state(0x8005_0033, 0x3606f0, 0x00a0_9b00);
        let m = cpu_mode(&s, None);
        assert_eq!(m.mode, CpuMode::Long64);
        assert_eq!(m.paging, Paging::FourLevel);
        assert_eq!(m.cpl, 0);
        let la57 = state(0x8005_0033, 0x3616f0, 0x00a0_9b00);
        assert_eq!(cpu_mode(&la57, Some(true)).paging, Paging::FiveLevel);
    }

    #[test]
    fn firmware_real_mode_and_protected_mode() {
        assert_eq!(cpu_mode(&state(0x10, 0, 0x9b00), None).mode, CpuMode::Real);
        let p = cpu_mode(&state(0x11, 0, 0x00c0_9b00), None);
        assert_eq!((p.mode, p.paging), (CpuMode::Protected32, Paging::Off));
        let c = cpu_mode(&state(0x8000_0011, 0x20, 0x00c0_fb00), Some(true));
        assert_eq!((c.mode, c.cpl), (CpuMode::Compat32, 3));
    }
}
