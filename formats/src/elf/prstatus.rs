//! `NT_PRSTATUS` notes as qemu writes them: Linux `struct elf_prstatus` for x86_64 and i386.

use serde::Serialize;

use crate::error::{Error, Result};

/// x86_64 `user_regs_struct`, as in `pr_reg`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct UserRegs64 {
    #[serde(with = "crate::hex")]
    pub r15: u64,
    #[serde(with = "crate::hex")]
    pub r14: u64,
    #[serde(with = "crate::hex")]
    pub r13: u64,
    #[serde(with = "crate::hex")]
    pub r12: u64,
    #[serde(with = "crate::hex")]
    pub rbp: u64,
    #[serde(with = "crate::hex")]
    pub rbx: u64,
    #[serde(with = "crate::hex")]
    pub r11: u64,
    #[serde(with = "crate::hex")]
    pub r10: u64,
    #[serde(with = "crate::hex")]
    pub r9: u64,
    #[serde(with = "crate::hex")]
    pub r8: u64,
    #[serde(with = "crate::hex")]
    pub rax: u64,
    #[serde(with = "crate::hex")]
    pub rcx: u64,
    #[serde(with = "crate::hex")]
    pub rdx: u64,
    #[serde(with = "crate::hex")]
    pub rsi: u64,
    #[serde(with = "crate::hex")]
    pub rdi: u64,
    /// Always 0 in qemu dumps.
    #[serde(with = "crate::hex")]
    pub orig_rax: u64,
    #[serde(with = "crate::hex")]
    pub rip: u64,
    #[serde(with = "crate::hex")]
    pub cs: u64,
    #[serde(with = "crate::hex")]
    pub eflags: u64,
    #[serde(with = "crate::hex")]
    pub rsp: u64,
    #[serde(with = "crate::hex")]
    pub ss: u64,
    #[serde(with = "crate::hex")]
    pub fs_base: u64,
    #[serde(with = "crate::hex")]
    pub gs_base: u64,
    #[serde(with = "crate::hex")]
    pub ds: u64,
    #[serde(with = "crate::hex")]
    pub es: u64,
    #[serde(with = "crate::hex")]
    pub fs: u64,
    #[serde(with = "crate::hex")]
    pub gs: u64,
}

/// i386 `user_regs_struct`, as in `pr_reg` of a 32-bit dump (segments are selectors).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct UserRegs32 {
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
    pub esi: u32,
    pub edi: u32,
    pub ebp: u32,
    pub eax: u32,
    pub ds: u32,
    pub es: u32,
    pub fs: u32,
    pub gs: u32,
    /// Always 0 in qemu dumps.
    pub orig_eax: u32,
    pub eip: u32,
    pub cs: u32,
    pub eflags: u32,
    pub esp: u32,
    pub ss: u32,
}

/// The registers of an `NT_PRSTATUS` note, in the layout its size says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "layout", rename_all = "kebab-case")]
pub enum VcpuRegs {
    /// The 336-byte x86_64 layout.
    #[serde(rename = "x86_64")]
    X86_64(UserRegs64),
    /// The 144-byte i386 layout (qemu uses it when CPU 0 was not in long mode).
    I386(UserRegs32),
}

/// A decoded `NT_PRSTATUS` note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrStatus {
    /// `pr_pid`: qemu writes the vCPU index + 1.
    pub pid: u32,
    /// The general registers.
    pub regs: VcpuRegs,
}

const X86_64_SIZE: usize = 336;
const I386_SIZE: usize = 144;

impl PrStatus {
    /// Decodes a `CORE`/`NT_PRSTATUS` descriptor found at file offset `offset`.
    pub fn parse(desc: &[u8], offset: u64) -> Result<Self> {
        let u64_at = |off: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&desc[off..off + 8]);
            u64::from_le_bytes(b)
        };
        let u32_at = |off: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&desc[off..off + 4]);
            u32::from_le_bytes(b)
        };
        match desc.len() {
            X86_64_SIZE => {
                let r = |i: usize| u64_at(112 + 8 * i);
                Ok(Self {
                    pid: u32_at(32),
                    regs: VcpuRegs::X86_64(UserRegs64 {
                        r15: r(0),
                        r14: r(1),
                        r13: r(2),
                        r12: r(3),
                        rbp: r(4),
                        rbx: r(5),
                        r11: r(6),
                        r10: r(7),
                        r9: r(8),
                        r8: r(9),
                        rax: r(10),
                        rcx: r(11),
                        rdx: r(12),
                        rsi: r(13),
                        rdi: r(14),
                        orig_rax: r(15),
                        rip: r(16),
                        cs: r(17),
                        eflags: r(18),
                        rsp: r(19),
                        ss: r(20),
                        fs_base: r(21),
                        gs_base: r(22),
                        ds: r(23),
                        es: r(24),
                        fs: r(25),
                        gs: r(26),
                    }),
                })
            }
            I386_SIZE => {
                let r = |i: usize| u32_at(72 + 4 * i);
                // Segment slots are u16 pairs: the selector in the low half.
                let s = |i: usize| r(i) & 0xffff;
                Ok(Self {
                    pid: u32_at(24),
                    regs: VcpuRegs::I386(UserRegs32 {
                        ebx: r(0),
                        ecx: r(1),
                        edx: r(2),
                        esi: r(3),
                        edi: r(4),
                        ebp: r(5),
                        eax: r(6),
                        ds: s(7),
                        es: s(8),
                        fs: s(9),
                        gs: s(10),
                        orig_eax: r(11),
                        eip: r(12),
                        cs: s(13),
                        eflags: r(14),
                        esp: r(15),
                        ss: s(16),
                    }),
                })
            }
            n => Err(Error::Note {
                offset,
                reason: format!(
                    "NT_PRSTATUS is {n} bytes; qemu writes {X86_64_SIZE} (x86_64) or {I386_SIZE} (i386)"
                ),
            }),
        }
    }

    /// The instruction pointer.
    pub fn ip(&self) -> u64 {
        match &self.regs {
            VcpuRegs::X86_64(r) => r.rip,
            VcpuRegs::I386(r) => u64::from(r.eip),
        }
    }

    /// The stack pointer.
    pub fn sp(&self) -> u64 {
        match &self.regs {
            VcpuRegs::X86_64(r) => r.rsp,
            VcpuRegs::I386(r) => u64::from(r.esp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_layout() {
        let mut d = vec![0u8; 336];
        d[32..36].copy_from_slice(&3u32.to_le_bytes());
        d[112 + 80..112 + 88].copy_from_slice(&0x42u64.to_le_bytes()); // rax @80
        d[112 + 128..112 + 136].copy_from_slice(&0xffffu64.to_le_bytes()); // rip @128
        d[112 + 152..112 + 160].copy_from_slice(&0x5000u64.to_le_bytes()); // rsp @152
        let p = PrStatus::parse(&d, 0).unwrap();
        assert_eq!(p.pid, 3);
        assert_eq!(p.ip(), 0xffff);
        assert_eq!(p.sp(), 0x5000);
        let VcpuRegs::X86_64(r) = p.regs else {
            panic!("layout")
        };
        assert_eq!(r.rax, 0x42);
    }

    #[test]
    fn i386_layout() {
        let mut d = vec![0u8; 144];
        d[24..28].copy_from_slice(&1u32.to_le_bytes());
        d[72 + 48..72 + 52].copy_from_slice(&0x7c00u32.to_le_bytes()); // eip
        d[72 + 52..72 + 56].copy_from_slice(&0xdead_0008u32.to_le_bytes()); // cs pair
        let p = PrStatus::parse(&d, 0).unwrap();
        assert_eq!(p.ip(), 0x7c00);
        let VcpuRegs::I386(r) = p.regs else {
            panic!("layout")
        };
        assert_eq!(r.cs, 8);
    }

    #[test]
    fn other_sizes_are_rejected() {
        assert!(PrStatus::parse(&[0u8; 200], 0x40).is_err());
    }
}
