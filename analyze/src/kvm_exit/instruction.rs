//! The faulting instruction: disassembled with iced-x86 in the vCPU's bitness, its memory
//! operands computed from the registers to linear addresses.

use iced_x86::{
    Decoder, DecoderOptions, Formatter, InstructionInfoFactory, IntelFormatter, OpAccess, Register,
};
use serde::Serialize;

/// The registers an address computation needs, whichever source they came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrRegs {
    /// General registers by x86 number: 0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP, 5 RBP, 6 RSI,
    /// 7 RDI, 8..15 R8..R15.
    pub gpr: [Option<u64>; 16],
    /// Instruction pointer.
    pub rip: u64,
    /// Segment bases in ES, CS, SS, DS, FS, GS order.
    pub seg_base: [Option<u64>; 6],
}

impl AddrRegs {
    fn value(&self, reg: Register) -> Option<u64> {
        if reg.is_segment_register() {
            let i = match reg {
                Register::ES => 0,
                Register::CS => 1,
                Register::SS => 2,
                Register::DS => 3,
                Register::FS => 4,
                Register::GS => 5,
                _ => return None,
            };
            return self.seg_base[i];
        }
        if reg.is_ip() {
            return Some(self.rip);
        }
        if !reg.is_gpr() {
            return None;
        }
        let full = reg.full_register();
        let n = full.number();
        let v = *self.gpr.get(n)?;
        let v = v?;
        Some(match reg.size() {
            1 if reg.is_gpr8()
                && matches!(
                    reg,
                    Register::AH | Register::CH | Register::DH | Register::BH
                ) =>
            {
                (v >> 8) & 0xff
            }
            1 => v & 0xff,
            2 => v & 0xffff,
            4 => v & 0xffff_ffff,
            _ => v,
        })
    }
}

/// A memory operand of the instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemOperand {
    /// Segment register used (`ES`, `DS`, ...).
    pub segment: String,
    /// `read`, `write`, `read-write`, ...
    pub access: &'static str,
    /// Bytes accessed.
    pub size: usize,
    /// The linear address (segment base + effective address), when every register it
    /// needs is known.
    #[serde(with = "coroner_formats::hex::option")]
    pub linear: Option<u64>,
    /// How it was computed (`ES.base 0xa0000 + 0x10`).
    pub how: String,
}

/// One decoded instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Disassembly {
    /// Its address (RIP as the vCPU had it).
    #[serde(with = "coroner_formats::hex")]
    pub ip: u64,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Intel syntax (`addps xmm0,es:[10h]`).
    pub text: String,
    /// The mnemonic alone.
    pub mnemonic: String,
    /// Code size it was decoded in: 16, 32 or 64.
    pub bitness: u32,
    /// The bytes do not form a valid instruction (or are cut short).
    pub invalid: bool,
    /// Memory operands.
    pub memory: Vec<MemOperand>,
}

/// Decodes the instruction at the start of `bytes` (at `ip`, in `bitness` 16/32/64) and
/// computes its memory operands from `regs`. `None` for an empty input or bad bitness.
pub fn disassemble(
    bytes: &[u8],
    bitness: u32,
    ip: u64,
    regs: &AddrRegs,
) -> Option<(iced_x86::Instruction, Disassembly)> {
    if bytes.is_empty() || !matches!(bitness, 16 | 32 | 64) {
        return None;
    }
    let mut decoder = Decoder::with_ip(bitness, bytes, ip, DecoderOptions::NONE);
    let insn = decoder.decode();
    let mut text = String::new();
    let mut fmt = IntelFormatter::new();
    fmt.format(&insn, &mut text);
    let len = insn.len().min(bytes.len());
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(&insn);
    let memory = info
        .used_memory()
        .iter()
        .map(|m| {
            let linear = m.virtual_address(0, |reg, _, _| regs.value(reg));
            let seg = format!("{:?}", m.segment());
            let how = match (m.segment(), regs.value(m.segment())) {
                (Register::None, _) => "effective address (no segment)".into(),
                (_, Some(base)) => format!("{seg}.base {base:#x} + effective address"),
                (_, None) => format!("{seg}.base unknown"),
            };
            MemOperand {
                segment: seg,
                access: access_name(m.access()),
                size: m.memory_size().size(),
                linear,
                how,
            }
        })
        .collect();
    let dis = Disassembly {
        ip,
        bytes: bytes[..len].to_vec(),
        mnemonic: format!("{:?}", insn.mnemonic()).to_lowercase(),
        text,
        bitness,
        invalid: insn.is_invalid(),
        memory,
    };
    Some((insn, dis))
}

/// Up to `max` instructions decoded from `bytes` starting at `ip` (for a listing around
/// RIP): each with its address, bytes and text.
pub fn listing(bytes: &[u8], bitness: u32, ip: u64, max: usize) -> Vec<Disassembly> {
    if !matches!(bitness, 16 | 32 | 64) {
        return Vec::new();
    }
    let mut decoder = Decoder::with_ip(bitness, bytes, ip, DecoderOptions::NONE);
    let mut fmt = IntelFormatter::new();
    let mut out = Vec::new();
    while decoder.can_decode() && out.len() < max {
        let start = decoder.position();
        let insn = decoder.decode();
        let mut text = String::new();
        fmt.format(&insn, &mut text);
        let end = decoder.position().min(bytes.len());
        out.push(Disassembly {
            ip: insn.ip(),
            bytes: bytes[start..end].to_vec(),
            mnemonic: format!("{:?}", insn.mnemonic()).to_lowercase(),
            text,
            bitness,
            invalid: insn.is_invalid(),
            memory: Vec::new(),
        });
        if insn.is_invalid() {
            break;
        }
    }
    out
}

/// `26 0f 58 06`: bytes as qemu's `Code=` line and `objdump` print them.
pub fn hex_bytes(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn access_name(a: OpAccess) -> &'static str {
    match a {
        OpAccess::Read | OpAccess::CondRead => "read",
        OpAccess::Write | OpAccess::CondWrite => "write",
        OpAccess::ReadWrite | OpAccess::ReadCondWrite => "read-write",
        OpAccess::NoMemAccess => "address only",
        _ => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> AddrRegs {
        let mut r = AddrRegs::default();
        r.gpr[0] = Some(0xa000); // RAX
        r.gpr[6] = Some(0xa0010); // RSI
        r.seg_base = [Some(0xa0000), Some(0), Some(0), Some(0), Some(0), Some(0)];
        r
    }

    #[test]
    fn real_mode_addps_against_the_vga_window() {
        let (_, d) = disassemble(
            &[0x26, 0x0f, 0x58, 0x06, 0x10, 0x00, 0xf4],
            16,
            0x7c22,
            &regs(),
        )
        .unwrap();
        assert_eq!(d.mnemonic, "addps");
        assert_eq!(d.bytes, [0x26, 0x0f, 0x58, 0x06, 0x10, 0x00]);
        assert!(d.text.starts_with("addps xmm0,"), "{}", d.text);
        assert_eq!(d.memory.len(), 1);
        let m = &d.memory[0];
        assert_eq!((m.segment.as_str(), m.access, m.size), ("ES", "read", 16));
        assert_eq!(m.linear, Some(0xa0010));
    }

    #[test]
    fn protected_mode_addps_through_esi() {
        let (_, d) = disassemble(&[0x0f, 0x58, 0x06], 32, 0x7c43, &regs()).unwrap();
        assert_eq!(d.memory[0].segment, "DS");
        assert_eq!(d.memory[0].linear, Some(0xa0010));
        // An unknown register leaves the address unknown, never guessed.
        let mut r = regs();
        r.gpr[6] = None;
        let (_, d) = disassemble(&[0x0f, 0x58, 0x06], 32, 0x7c43, &r).unwrap();
        assert_eq!(d.memory[0].linear, None);
    }

    #[test]
    fn sixteen_bit_addresses_wrap_and_high_byte_registers() {
        let mut r = regs();
        r.gpr[3] = Some(0xffff); // BX
        r.gpr[6] = Some(0x0002); // SI
                                 // mov al, [bx+si] in 16-bit code: (0xffff + 2) & 0xffff = 1, + DS.base 0.
        let (_, d) = disassemble(&[0x8a, 0x00], 16, 0, &r).unwrap();
        assert_eq!(d.memory[0].linear, Some(1));
        assert_eq!(r.value(Register::AH), Some(0xa0));
    }

    #[test]
    fn listing_and_bad_input() {
        let l = listing(&[0x90, 0x0f, 0x58, 0x06, 0xf4], 32, 0x1000, 8);
        let texts: Vec<&str> = l.iter().map(|d| d.mnemonic.as_str()).collect();
        assert_eq!(texts, ["nop", "addps", "hlt"]);
        assert_eq!(l[1].ip, 0x1001);
        assert!(disassemble(&[], 64, 0, &regs()).is_none());
        assert!(disassemble(&[0x90], 8, 0, &regs()).is_none());
        let (_, d) = disassemble(&[0x0f], 64, 0, &regs()).unwrap();
        assert!(d.invalid);
    }
}
