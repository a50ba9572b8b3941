//! qemu's per-vCPU `QEMU` note: `QEMUCPUState` from `target/i386/arch_dump.c`.

use serde::Serialize;

use crate::error::{Error, Result};

/// A segment register as qemu stores it: selector, limit, descriptor flags, base.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// The selector.
    pub selector: u32,
    /// The limit.
    pub limit: u32,
    /// The descriptor's high word as qemu keeps it: type bits 8-11, S 12, DPL 13-14,
    /// P 15, AVL 20, L 21, D/B 22, G 23.
    pub flags: u32,
    /// The base address.
    #[serde(with = "crate::hex")]
    pub base: u64,
}

impl Segment {
    /// The L bit: a 64-bit code segment.
    pub fn long(&self) -> bool {
        self.flags & (1 << 21) != 0
    }
    /// The D/B bit: 32-bit default operand size.
    pub fn big(&self) -> bool {
        self.flags & (1 << 22) != 0
    }
    /// The descriptor privilege level.
    pub fn dpl(&self) -> u8 {
        ((self.flags >> 13) & 3) as u8
    }
    /// The present bit.
    pub fn present(&self) -> bool {
        self.flags & (1 << 15) != 0
    }
}

/// One vCPU's state from its `QEMU` note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QemuCpuState {
    /// Structure version (1 in every qemu so far).
    pub version: u32,
    /// Structure size as written by qemu: 432 before qemu 3.0, 440 since.
    pub size: u32,
    /// rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8..r15, in that order.
    #[serde(with = "crate::hex::vec")]
    pub gpr: [u64; 16],
    /// Instruction pointer.
    #[serde(with = "crate::hex")]
    pub rip: u64,
    /// Flags.
    #[serde(with = "crate::hex")]
    pub rflags: u64,
    /// Code segment.
    pub cs: Segment,
    /// Data segment.
    pub ds: Segment,
    /// Extra segment.
    pub es: Segment,
    /// FS.
    pub fs: Segment,
    /// GS.
    pub gs: Segment,
    /// Stack segment.
    pub ss: Segment,
    /// Local descriptor table.
    pub ldt: Segment,
    /// Task register.
    pub tr: Segment,
    /// Global descriptor table (base and limit only).
    pub gdt: Segment,
    /// Interrupt descriptor table (base and limit only).
    pub idt: Segment,
    /// Control registers cr0..cr4 (cr1 is always 0).
    #[serde(with = "crate::hex::vec")]
    pub cr: [u64; 5],
    /// MSR `KERNEL_GS_BASE`, present since qemu 3.0 (`size` >= 440).
    #[serde(with = "crate::hex::option")]
    pub kernel_gs_base: Option<u64>,
}

/// Names of [`QemuCpuState::gpr`] entries, in order.
pub const GPR_NAMES: [&str; 16] = [
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

const MIN_SIZE: usize = 432;

fn u64_at(d: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[off..off + 8]);
    u64::from_le_bytes(b)
}

fn u32_at(d: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&d[off..off + 4]);
    u32::from_le_bytes(b)
}

impl QemuCpuState {
    /// Decodes a `QEMU` note descriptor found at file offset `offset`.
    pub fn parse(desc: &[u8], offset: u64) -> Result<Self> {
        if desc.len() < MIN_SIZE {
            return Err(Error::Note {
                offset,
                reason: format!(
                    "QEMU note is {} bytes, at least {MIN_SIZE} expected",
                    desc.len()
                ),
            });
        }
        let size = u32_at(desc, 4);
        if (size as usize) < MIN_SIZE || size as usize > desc.len() {
            return Err(Error::Note {
                offset,
                reason: format!(
                    "QEMU note says its size is {size}, descriptor holds {}",
                    desc.len()
                ),
            });
        }
        let seg = |off: usize| Segment {
            selector: u32_at(desc, off),
            limit: u32_at(desc, off + 4),
            flags: u32_at(desc, off + 8),
            base: u64_at(desc, off + 16),
        };
        let mut gpr = [0u64; 16];
        for (i, r) in gpr.iter_mut().enumerate() {
            *r = u64_at(desc, 8 + 8 * i);
        }
        let mut cr = [0u64; 5];
        for (i, r) in cr.iter_mut().enumerate() {
            *r = u64_at(desc, 392 + 8 * i);
        }
        Ok(Self {
            version: u32_at(desc, 0),
            size,
            gpr,
            rip: u64_at(desc, 136),
            rflags: u64_at(desc, 144),
            cs: seg(152),
            ds: seg(176),
            es: seg(200),
            fs: seg(224),
            gs: seg(248),
            ss: seg(272),
            ldt: seg(296),
            tr: seg(320),
            gdt: seg(344),
            idt: seg(368),
            cr,
            kernel_gs_base: (size >= 440).then(|| u64_at(desc, 432)),
        })
    }

    /// The register named `name` (`rax`..`r15`), if it is a general-purpose register.
    pub fn gpr(&self, name: &str) -> Option<u64> {
        GPR_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.gpr[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_fields_at_their_offsets() {
        let mut d = vec![0u8; 440];
        d[0..4].copy_from_slice(&1u32.to_le_bytes());
        d[4..8].copy_from_slice(&440u32.to_le_bytes());
        d[8..16].copy_from_slice(&0xaaaau64.to_le_bytes()); // rax
        d[136..144].copy_from_slice(&0xffff_ffff_8100_0000u64.to_le_bytes()); // rip
        d[152..156].copy_from_slice(&0x10u32.to_le_bytes()); // cs selector
        d[160..164].copy_from_slice(&0x00a0_9b00u32.to_le_bytes()); // cs flags: L, P
        d[392 + 24..392 + 32].copy_from_slice(&0x0123_4000_u64.to_le_bytes()); // cr3
        d[432..440].copy_from_slice(&0x77u64.to_le_bytes());
        let s = QemuCpuState::parse(&d, 0).unwrap();
        assert_eq!(s.gpr("rax"), Some(0xaaaa));
        assert_eq!(s.rip, 0xffff_ffff_8100_0000);
        assert_eq!(s.cs.selector, 0x10);
        assert!(s.cs.long() && s.cs.present());
        assert_eq!(s.cr[3], 0x0123_4000);
        assert_eq!(s.kernel_gs_base, Some(0x77));
    }

    #[test]
    fn old_432_byte_layout_has_no_kernel_gs_base() {
        let mut d = vec![0u8; 432];
        d[4..8].copy_from_slice(&432u32.to_le_bytes());
        assert_eq!(QemuCpuState::parse(&d, 0).unwrap().kernel_gs_base, None);
    }

    #[test]
    fn lying_size_is_rejected() {
        let mut d = vec![0u8; 440];
        d[4..8].copy_from_slice(&4000u32.to_le_bytes());
        assert!(QemuCpuState::parse(&d, 9).is_err());
        assert!(QemuCpuState::parse(&d[..100], 9).is_err());
    }
}
