//! Whether KVM's x86 instruction emulator (`arch/x86/kvm/emulate.c`) can emulate an
//! instruction, by walking the same maps its decoder walks: the one-byte table, the 0F
//! table, 0F 38, the opcode groups, the mandatory-prefix (SIMD) tables and the x87 escapes.
//!
//! The answer is for upstream kernels up to 6.18. Where it changed across versions (the
//! May-2020 reserved-NOP patch for 0F 19/1C-1E, RDPID, the Nov-2025 AVX-moves series) the
//! `why` says so; when it depends on the host kernel version, `emulated` is `None`.

use iced_x86::{CodeSize, EncodingKind, Instruction, Mnemonic, OpKind};
use serde::Serialize;

/// Whether KVM's x86 instruction emulator can emulate an instruction (per
/// arch/x86/kvm/emulate.c tables, kernels up to 6.18; the `why` notes where the Nov-2025
/// AVX-moves series changes the answer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EmulatorSupport {
    /// `Some(true)`: in the emulator's tables. `Some(false)`: not there (emulation fails, or
    /// the emulator injects #UD). `None`: unknown to this table, or the answer depends on the
    /// host kernel version (see `why`).
    pub emulated: Option<bool>,
    /// The instruction class, e.g. "SSE arithmetic", "SSE move", "VEX-encoded (AVX)",
    /// "EVEX-encoded (AVX-512)", "XSAVE family", "x87 memory", "ENDBR (0F 1E)",
    /// "MOVSS/MOVSD", "general-purpose", "string I/O".
    pub class: &'static str,
    /// One sentence on why, naming the table entry.
    pub why: String,
}

/// The emulated SSE moves, for the sentences that explain what is missing.
const SSE_MOVES: &str = "MOVUPS/MOVUPD, MOVAPS/MOVAPD, MOVDQA/MOVDQU, MMX MOVQ (0F 6F/7F) and \
    MOVNTPS/MOVNTPD/MOVNTDQ/MOVNTI";

/// The Nov-2025 series, as cited in the sentences.
const AVX_SERIES: &str = "the Nov-2025 \"KVM: emulate: enable AVX moves\" series (Paolo \
    Bonzini and Keith Busch, applied to kvm-x86 for 6.19 or 7.0, release not verified)";

fn yes(class: &'static str, why: String) -> EmulatorSupport {
    EmulatorSupport {
        emulated: Some(true),
        class,
        why,
    }
}

fn no(class: &'static str, why: String) -> EmulatorSupport {
    EmulatorSupport {
        emulated: Some(false),
        class,
        why,
    }
}

fn unknown(class: &'static str, why: String) -> EmulatorSupport {
    EmulatorSupport {
        emulated: None,
        class,
        why,
    }
}

/// The instruction's mnemonic in upper case, e.g. `ADDPS`.
fn name(insn: &Instruction) -> String {
    format!("{:?}", insn.mnemonic()).to_uppercase()
}

fn has_memory_operand(insn: &Instruction) -> bool {
    insn.op_kinds().any(|k| {
        matches!(
            k,
            OpKind::Memory
                | OpKind::MemorySegSI
                | OpKind::MemorySegESI
                | OpKind::MemorySegRSI
                | OpKind::MemorySegDI
                | OpKind::MemorySegEDI
                | OpKind::MemorySegRDI
                | OpKind::MemoryESDI
                | OpKind::MemoryESEDI
                | OpKind::MemoryESRDI
        )
    })
}

/// Whether KVM's x86 instruction emulator can emulate `insn`, whose encoding is `bytes`
/// (the bytes at RIP; more than the instruction is fine).
pub fn kvm_emulator_support(insn: &Instruction, bytes: &[u8]) -> EmulatorSupport {
    if insn.is_invalid() {
        return unknown(
            "undecodable",
            "the bytes do not decode to a valid instruction, so the emulator table cannot be \
             consulted (the emulator would fail or inject #UD)"
                .to_string(),
        );
    }
    match insn.encoding() {
        EncodingKind::VEX => vex(insn),
        EncodingKind::EVEX => no(
            "EVEX-encoded (AVX-512)",
            format!(
                "KVM's emulator has no EVEX decoding ({} is EVEX-encoded; 0x62 is BOUND/No64 in \
                 its one-byte table), and the Nov-2025 AVX-moves series adds VEX only",
                name(insn)
            ),
        ),
        EncodingKind::XOP => no(
            "XOP-encoded (AMD)",
            format!(
                "KVM's emulator has no XOP decoding: 8F with ModRM.reg != 0 is only POP r/m in \
                 its group 1A, so {} cannot be emulated",
                name(insn)
            ),
        ),
        EncodingKind::D3NOW => no(
            "3DNow!",
            "KVM's emulator has no 3DNow! instructions: 0F 0F is NotImpl in its 0F table"
                .to_string(),
        ),
        EncodingKind::MVEX => no(
            "MVEX-encoded (Knights Corner)",
            "KVM's emulator has no MVEX decoding".to_string(),
        ),
        EncodingKind::Legacy => legacy(insn, bytes),
        _ => unknown(
            "unknown encoding",
            format!("{} uses an encoding this table does not know", name(insn)),
        ),
    }
}

/// VEX-encoded instructions: none before the Nov-2025 series; only the moves after it.
fn vex(insn: &Instruction) -> EmulatorSupport {
    let n = name(insn);
    let is_series_move = matches!(
        insn.mnemonic(),
        Mnemonic::Vmovups
            | Mnemonic::Vmovupd
            | Mnemonic::Vmovaps
            | Mnemonic::Vmovapd
            | Mnemonic::Vmovdqa
            | Mnemonic::Vmovdqu
            | Mnemonic::Vmovntps
            | Mnemonic::Vmovntpd
            | Mnemonic::Vmovntdq
            | Mnemonic::Vmovntdqa
    ) && has_memory_operand(insn);
    if is_series_move {
        no(
            "VEX-encoded (AVX)",
            format!(
                "KVM's emulator up to 6.18 does not decode VEX (C4/C5 are NotImpl: \"vex-prefix \
                 instructions are not implemented\"), so {n} fails to emulate; {AVX_SERIES} \
                 makes the VEX moves including {n} emulated"
            ),
        )
    } else {
        no(
            "VEX-encoded (AVX)",
            format!(
                "KVM's emulator up to 6.18 does not decode VEX (C4/C5 are NotImpl), and {AVX_SERIES} \
                 adds only the VEX moves (VMOVUPS/UPD/APS/APD/DQA/DQU/NTPS/NTPD/NTDQ/NTDQA), so \
                 {n} is not emulated on any kernel"
            ),
        )
    }
}

/// Prefixes and opcode position of a legacy-encoded instruction.
struct Legacy<'a> {
    bytes: &'a [u8],
    /// Index of the first opcode byte.
    op: usize,
    /// 66 seen.
    p66: bool,
    /// The last F2/F3 seen.
    rep: Option<u8>,
}

impl Legacy<'_> {
    fn parse(bytes: &[u8], long_mode: bool) -> Option<Legacy<'_>> {
        let mut i = 0;
        let mut p66 = false;
        let mut rep = None;
        while let Some(&b) = bytes.get(i) {
            match b {
                0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x67 | 0xf0 => {}
                0x66 => p66 = true,
                0xf2 | 0xf3 => rep = Some(b),
                _ => break,
            }
            i += 1;
        }
        if long_mode && bytes.get(i).is_some_and(|b| (0x40..=0x4f).contains(b)) {
            i += 1;
        }
        bytes.get(i)?;
        Some(Legacy {
            bytes,
            op: i,
            p66,
            rep,
        })
    }

    fn at(&self, k: usize) -> Option<u8> {
        self.bytes.get(self.op + k).copied()
    }

    /// The SIMD prefix as KVM sees it: None, 66, F3 or F2; both 66 and F2/F3 fail decoding.
    fn simd(&self) -> Simd {
        match (self.p66, self.rep) {
            (false, None) => Simd::None,
            (true, None) => Simd::P66,
            (false, Some(0xf3)) => Simd::F3,
            (false, Some(_)) => Simd::F2,
            (true, Some(_)) => Simd::Both,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Simd {
    None,
    P66,
    F3,
    F2,
    Both,
}

/// ModRM split into (mod, reg, rm).
fn modrm(b: u8) -> (u8, u8, u8) {
    (b >> 6, (b >> 3) & 7, b & 7)
}

fn legacy(insn: &Instruction, bytes: &[u8]) -> EmulatorSupport {
    let long_mode = insn.code_size() == CodeSize::Code64;
    let Some(l) = Legacy::parse(bytes, long_mode) else {
        return unknown(
            "undecodable",
            "no opcode byte in the bytes given, so the emulator table cannot be consulted"
                .to_string(),
        );
    };
    let Some(op) = l.at(0) else {
        return unknown("undecodable", "no opcode byte".to_string());
    };
    if op == 0x0f {
        return twobyte(insn, &l);
    }
    one_byte(insn, &l, op, long_mode)
}

/// A general-purpose instruction in the one-byte table.
fn gp_yes(insn: &Instruction) -> EmulatorSupport {
    yes(
        "general-purpose",
        format!(
            "{} is in the emulator's opcode tables and is emulated",
            name(insn)
        ),
    )
}

fn one_byte(insn: &Instruction, l: &Legacy<'_>, op: u8, long_mode: bool) -> EmulatorSupport {
    let n = name(insn);
    let m = l.at(1).map(modrm);
    match op {
        0x27 | 0x37 | 0x3f => no(
            "general-purpose",
            format!("{n} (one-byte {op:02X}) is NotImpl in KVM's one-byte opcode table"),
        ),
        0x62 => no(
            "general-purpose",
            format!("{n} (62, BOUND) is NotImpl in KVM's one-byte opcode table"),
        ),
        0x63 if !long_mode => no(
            "general-purpose",
            format!("ARPL (63 outside 64-bit mode) is NotImpl in KVM's emulator; only MOVSXD is emulated ({n})"),
        ),
        0x9b => no(
            "x87 control",
            format!(
                "{n} starts with WAIT/FWAIT (9B), which is NotImpl in KVM's one-byte table (only the \
                 no-wait FNSTCW/FNSTSW/FNINIT forms are emulated)"
            ),
        ),
        0xd8..=0xdf => x87(insn, op, m),
        0xa4..=0xa7 | 0xaa..=0xaf => yes(
            "string",
            format!("{n} is in KVM's one-byte table and is emulated, including REP forms"),
        ),
        0x6c..=0x6f => yes(
            "string I/O",
            format!("{n} (INS/OUTS) is emulated by KVM after its I/O-permission checks, including REP forms"),
        ),
        0xe4..=0xe7 | 0xec..=0xef => yes(
            "port I/O",
            format!("{n} is in KVM's one-byte table and is emulated after its I/O-permission checks"),
        ),
        0xc6 | 0xc7 => match m {
            Some((_, 0, _)) => gp_yes(insn),
            _ => no(
                "general-purpose",
                format!("{n} ({op:02X} /reg != 0, e.g. XBEGIN/XABORT) is Undefined in KVM's group 11: the emulator injects #UD"),
            ),
        },
        0xfe => match m {
            Some((_, 0 | 1, _)) => gp_yes(insn),
            _ => no("general-purpose", format!("{n} is Undefined in KVM's group 4")),
        },
        0xff => match m {
            Some((_, 7, _)) => no("general-purpose", format!("{n} is Undefined in KVM's group 5")),
            _ => gp_yes(insn),
        },
        0xf4 | 0xfa | 0xfb | 0xcc | 0xcd | 0xce | 0xcf | 0xf1 => yes(
            "system",
            format!("{n} is in KVM's one-byte table and is emulated"),
        ),
        _ => gp_yes(insn),
    }
}

/// x87 escapes D8-DF: only FNSTCW (D9 /7), FNINIT (DB E3) and FNSTSW m16 (DD /7).
fn x87(insn: &Instruction, op: u8, m: Option<(u8, u8, u8)>) -> EmulatorSupport {
    let n = name(insn);
    let Some((md, reg, rm)) = m else {
        return unknown("x87 memory", "the ModRM byte is missing".to_string());
    };
    let modrm_byte = (md << 6) | (reg << 3) | rm;
    match (op, md == 3, reg) {
        (0xd9, false, 7) | (0xdd, false, 7) => yes(
            "x87 control",
            format!("{n} is one of the few x87 entries in KVM's emulator (FNSTCW D9 /7, FNSTSW DD /7, FNINIT DB E3)"),
        ),
        (0xdb, true, _) if modrm_byte == 0xe3 => yes(
            "x87 control",
            format!("{n} (DB E3) is one of the few x87 entries in KVM's emulator"),
        ),
        (_, false, _) => no(
            "x87 memory",
            format!(
                "KVM's emulator has no x87 loads, stores or arithmetic: escape {op:02X} carries only \
                 FNSTCW/FNSTSW/FNINIT-type entries, so {n} fails (KVM's emulator_error_test uses \
                 an x87 FLD on MMIO for exactly this)"
            ),
        ),
        (_, true, _) => no(
            "x87 register",
            format!("{n} ({op:02X} {modrm_byte:02X}) is NotImpl in KVM's x87 escape tables"),
        ),
    }
}

/// SSE/MMX instructions that are not in the tables, classified by what they do.
fn sse_not(insn: &Instruction) -> EmulatorSupport {
    let n = name(insn);
    let mmx_only = insn
        .cpuid_features()
        .iter()
        .all(|f| matches!(f, iced_x86::CpuidFeature::MMX));
    let what = if n.starts_with("CVT") || n.starts_with("PI2F") || n.starts_with("PF2I") {
        "conversion"
    } else if n.contains("SHUF")
        || n.contains("UNPCK")
        || n.contains("PALIGNR")
        || n.contains("BLEND")
        || n.contains("INSR")
        || n.contains("EXTR")
        || n.contains("PACK")
        || n.contains("PERM")
    {
        "shuffle"
    } else if n.contains("MOV") {
        "move"
    } else {
        "arithmetic"
    };
    let class = match (mmx_only, what) {
        (true, "conversion") => "MMX conversion",
        (true, "shuffle") => "MMX shuffle",
        (true, "move") => "MMX move",
        (true, _) => "MMX arithmetic",
        (false, "conversion") => "SSE conversion",
        (false, "shuffle") => "SSE shuffle",
        (false, "move") => "SSE move",
        (false, _) => "SSE arithmetic",
    };
    let family = if mmx_only { "MMX" } else { "SSE" };
    let why = if what == "move" {
        format!("{n} is not one of the moves in KVM's emulator tables: only {SSE_MOVES} are there")
    } else {
        format!(
            "KVM's emulator has no {family} {what} ({n}): only the SSE moves {SSE_MOVES} are in \
             its opcode tables"
        )
    };
    no(class, why)
}

/// An SSE move that is in the tables.
fn sse_move_yes(insn: &Instruction, entry: &str) -> EmulatorSupport {
    yes(
        "SSE move",
        format!(
            "{} is one of the SSE moves in KVM's emulator tables ({entry}); it is emulated after \
             the CR0.EM/CR4.OSFXSR/CR0.TS checks (and the alignment check for the aligned forms)",
            name(insn)
        ),
    )
}

fn sys_yes(insn: &Instruction) -> EmulatorSupport {
    yes(
        "system",
        format!(
            "{} is in KVM's 0F table and is emulated (with its privilege and intercept checks)",
            name(insn)
        ),
    )
}

fn sys_no(insn: &Instruction, what: &str) -> EmulatorSupport {
    no(
        "system",
        format!("{} ({what}) is NotImpl in KVM's 0F table", name(insn)),
    )
}

fn twobyte(insn: &Instruction, l: &Legacy<'_>) -> EmulatorSupport {
    let n = name(insn);
    let Some(op) = l.at(1) else {
        return unknown("undecodable", "the byte after 0F is missing".to_string());
    };
    let m = l.at(2).map(modrm);
    let mem = m.is_some_and(|(md, _, _)| md != 3);
    let simd = l.simd();
    match op {
        0x00 => match m {
            Some((_, 0..=3, _)) => sys_yes(insn),
            _ => sys_no(insn, "group 6 /4 /5, VERR/VERW"),
        },
        0x01 => group7(insn, m),
        0x02 | 0x03 => sys_no(insn, "0F 02/03, LAR/LSL"),
        0x05 | 0x06 | 0x08 | 0x09 => sys_yes(insn),
        0x07 => sys_no(insn, "0F 07, SYSRET"),
        0x0b => no(
            "system",
            "UD2 (0F 0B) is NotImpl in KVM's 0F table (KVM checks for it only as the forced-emulation prefix)"
                .to_string(),
        ),
        0x0d | 0x18 => yes(
            "prefetch hint",
            format!("{n} is in KVM's 0F table as a no-access NOP (prefetch hint) and is emulated"),
        ),
        0x1f => yes(
            "general-purpose",
            format!("{n} (0F 1F NOP) is in KVM's 0F table and is emulated"),
        ),
        0x19 | 0x1c | 0x1d | 0x1e => reserved_nop(insn, l, op, m),
        0x1a | 0x1b => no(
            "MPX (0F 1A/1B)",
            format!("{n} (0F {op:02X}, MPX/NOP space) is NotImpl in KVM's 0F table"),
        ),
        0x10 | 0x11 => match simd {
            Simd::None | Simd::P66 => sse_move_yes(insn, "0F 10/11 without F3/F2: MOVUPS/MOVUPD; absent from 4.x-era tables, release that added it not verified"),
            Simd::F3 | Simd::F2 => no(
                "MOVSS/MOVSD",
                format!(
                    "KVM's emulator implements 0F 10/11 only without a prefix or with 66 \
                     (MOVUPS/MOVUPD); the F3/F2 forms ({n}) are NotImpl"
                ),
            ),
            Simd::Both => both_prefixes(insn),
        },
        0x28 | 0x29 => match simd {
            Simd::None | Simd::P66 => sse_move_yes(
                insn,
                "0F 28/29: MOVAPS/MOVAPD; older hosts lacked it, e.g. log 13 (2014) failed on MOVAPS, release that added it not verified",
            ),
            Simd::Both => both_prefixes(insn),
            _ => sse_not(insn),
        },
        0x2b => match simd {
            Simd::None | Simd::P66 if mem => sse_move_yes(insn, "0F 2B to memory: MOVNTPS/MOVNTPD"),
            Simd::Both => both_prefixes(insn),
            _ => sse_not(insn),
        },
        0x20..=0x23 => sys_yes(insn),
        0x30..=0x35 => sys_yes(insn),
        0x38 => map_0f_38(insn, l),
        0x40..=0x4f | 0x80..=0x9f | 0xa3..=0xa5 | 0xab..=0xad | 0xaf | 0xb0 | 0xb1 | 0xb3
        | 0xb6 | 0xb7 | 0xbb | 0xbe | 0xbf | 0xc0 | 0xc1 | 0xc8..=0xcf => gp_yes(insn),
        0xa0 | 0xa1 | 0xa8 | 0xa9 | 0xb2 | 0xb4 | 0xb5 => gp_yes(insn),
        0xa2 | 0xaa => sys_yes(insn),
        0xa6 | 0xa7 => no("general-purpose", format!("0F {op:02X} is NotImpl in KVM's 0F table ({n})")),
        0xae => group15(insn, l, m),
        0x6f | 0x7f => match simd {
            Simd::None => yes(
                "MMX move",
                format!("{n} (0F {op:02X}, MMX MOVQ) is in KVM's emulator tables and is emulated"),
            ),
            Simd::P66 => sse_move_yes(insn, "66 0F 6F/7F: MOVDQA"),
            Simd::F3 => sse_move_yes(insn, "F3 0F 6F/7F: MOVDQU"),
            Simd::Both => both_prefixes(insn),
            Simd::F2 => sse_not(insn),
        },
        0x78 | 0x79 if simd == Simd::None => no(
            "VMX instruction",
            format!("{n} is NotImpl in KVM's 0F table"),
        ),
        0xb8 | 0xb9 | 0xff => no(
            "general-purpose",
            format!("{n} (0F {op:02X}) is NotImpl in KVM's 0F table"),
        ),
        0xba => match m {
            Some((_, 4..=7, _)) => gp_yes(insn),
            _ => no("general-purpose", format!("{n} is NotImpl in KVM's group 8")),
        },
        0xbc | 0xbd => {
            if simd == Simd::F3 {
                unknown(
                    "general-purpose",
                    format!(
                        "KVM's 0F {op:02X} entry is BSF/BSR with no prefix check: the emulator \
                         decodes {n} but executes BSF/BSR, whose result differs for a zero source"
                    ),
                )
            } else {
                gp_yes(insn)
            }
        }
        0xc3 if mem => yes(
            "SSE move",
            format!("{n} (0F C3, MOVNTI to memory) is in KVM's emulator tables and is emulated"),
        ),
        0xc7 => group9(insn, l, m),
        0xe7 => match simd {
            Simd::P66 if mem => sse_move_yes(insn, "66 0F E7 to memory: MOVNTDQ"),
            _ => sse_not(insn),
        },
        0x04 | 0x0a | 0x0c | 0x0e | 0x0f | 0x24..=0x27 | 0x36 | 0x37 | 0x39 | 0x3b..=0x3f => no(
            "system",
            format!("{n} (0F {op:02X}) is NotImpl in KVM's 0F table"),
        ),
        0x3a => sse_not(insn),
        _ => sse_not(insn),
    }
}

fn both_prefixes(insn: &Instruction) -> EmulatorSupport {
    no(
        "SSE move",
        format!(
            "{}: KVM's decoder fails an SSE opcode that carries both 66 and F2/F3",
            name(insn)
        ),
    )
}

/// 0F 19 and 0F 1C-1E: reserved NOPs since the May-2020 patch; NotImpl before.
fn reserved_nop(
    insn: &Instruction,
    l: &Legacy<'_>,
    op: u8,
    m: Option<(u8, u8, u8)>,
) -> EmulatorSupport {
    let n = name(insn);
    let history =
        "KVM's 0F table had NotImpl here until Paolo Bonzini's May-2020 patch \"KVM: x86: \
        emulate reserved nops from 0f/18 to 0f/1f\" (mainline around 5.8, release not verified; \
        distributions may have backported it), which emulates them as NOPs";
    let endbr = op == 0x1e
        && l.simd() == Simd::F3
        && m.is_some_and(|(md, reg, rm)| md == 3 && reg == 7 && (rm == 2 || rm == 3));
    if endbr {
        unknown(
            "ENDBR (0F 1E)",
            format!(
                "{n} (F3 0F 1E {}) depends on the host kernel: {history}; so it fails on older \
                 hosts such as Ubuntu 20.04's 5.4 (log 01) and is emulated on current ones",
                if m.is_some_and(|(_, _, rm)| rm == 3) {
                    "FB"
                } else {
                    "FA"
                }
            ),
        )
    } else {
        unknown(
            "reserved NOP (0F 18-1F)",
            format!(
                "{n} (0F {op:02X}) depends on the host kernel: {history}; CET or CLDEMOTE \
                 semantics are not emulated either way"
            ),
        )
    }
}

/// 0F 01: descriptor tables, SMSW/LMSW, INVLPG, and register forms.
fn group7(insn: &Instruction, m: Option<(u8, u8, u8)>) -> EmulatorSupport {
    let Some((md, reg, rm)) = m else {
        return unknown("system", "the ModRM byte is missing".to_string());
    };
    if md != 3 {
        return match reg {
            5 => sys_no(insn, "0F 01 /5 memory form"),
            _ => sys_yes(insn),
        };
    }
    let byte = 0xc0 | (reg << 3) | rm;
    match byte {
        0xc1 | 0xc8 | 0xc9 | 0xd8..=0xdf | 0xe0..=0xe7 | 0xf0..=0xf7 | 0xf9 => sys_yes(insn),
        0xd1 => yes(
            "system",
            format!(
                "{} (0F 01 D1) is emulated by current kernels (em_xsetbv)",
                name(insn)
            ),
        ),
        0xf8 => sys_no(insn, "0F 01 F8, SWAPGS"),
        _ => unknown(
            "system",
            format!(
                "{} (0F 01 {byte:02X}) was not checked against KVM's group 7 register-form tables",
                name(insn)
            ),
        ),
    }
}

/// 0F AE: only FXSAVE/FXRSTOR and CLFLUSH/CLFLUSHOPT.
fn group15(insn: &Instruction, l: &Legacy<'_>, m: Option<(u8, u8, u8)>) -> EmulatorSupport {
    let n = name(insn);
    let Some((md, reg, _)) = m else {
        return unknown("group 15 (0F AE)", "the ModRM byte is missing".to_string());
    };
    let simd = l.simd();
    let only =
        "KVM's group 15 (0F AE) has only FXSAVE (/0), FXRSTOR (/1) and CLFLUSH/CLFLUSHOPT (/7)";
    if md == 3 {
        return no(
            "group 15 (0F AE)",
            format!("{only}; its register forms ({n}: fences, FSGSBASE, ...) are all NotImpl"),
        );
    }
    match (reg, simd) {
        (0 | 1, Simd::None) => yes(
            "FXSAVE/FXRSTOR",
            format!(
                "{n} (0F AE /{reg}) is in KVM's group 15 and is emulated (16-byte aligned operand)"
            ),
        ),
        (2 | 3, _) => no(
            "MXCSR load/store",
            format!("{only}; {n} (/{reg}) is NotImpl"),
        ),
        (4 | 5, _) | (6, Simd::None) => no(
            "XSAVE family",
            format!("{only}; {n} (/{reg}) is NotImpl, so it fails to emulate"),
        ),
        (7, Simd::None | Simd::P66) => yes(
            "cache control",
            format!("{n} (0F AE /7) is in KVM's group 15 and is emulated (as a no-op flush)"),
        ),
        _ => no(
            "group 15 (0F AE)",
            format!("{only}; {n} (/{reg} with a prefix) is NotImpl"),
        ),
    }
}

/// 0F C7: CMPXCHG8B/16B, and RDPID in newer kernels.
fn group9(insn: &Instruction, l: &Legacy<'_>, m: Option<(u8, u8, u8)>) -> EmulatorSupport {
    let n = name(insn);
    let Some((md, reg, _)) = m else {
        return unknown("general-purpose", "the ModRM byte is missing".to_string());
    };
    match (md != 3, reg) {
        (true, 1) => gp_yes(insn),
        (true, 3..=5) => no(
            "XSAVE family",
            format!("{n} (0F C7 /{reg}) is NotImpl in KVM's group 9, which has only CMPXCHG8B/16B in memory form"),
        ),
        (true, 6 | 7) => no(
            "VMX instruction",
            format!("{n} is NotImpl in KVM's group 9"),
        ),
        (false, 7) if l.simd() == Simd::F3 => unknown(
            "general-purpose",
            format!(
                "{n} (F3 0F C7 /7) is emulated by kernels that have RDPID emulation (added around \
                 2020, release not verified) and NotImpl before"
            ),
        ),
        _ => no(
            "general-purpose",
            format!("{n} (0F C7 /{reg}) is NotImpl in KVM's group 9"),
        ),
    }
}

/// 0F 38: MOVBE only (MOVNTDQA with the Nov-2025 series).
fn map_0f_38(insn: &Instruction, l: &Legacy<'_>) -> EmulatorSupport {
    let n = name(insn);
    let Some(op3) = l.at(2) else {
        return unknown("undecodable", "the byte after 0F 38 is missing".to_string());
    };
    match (op3, l.simd()) {
        (0xf0 | 0xf1, Simd::None | Simd::P66) => yes(
            "MOVBE",
            format!("{n} (0F 38 {op3:02X}) is the only 0F 38 entry in KVM's emulator and is emulated (EmulateOnUD)"),
        ),
        (0xf0 | 0xf1, _) => no(
            "general-purpose",
            format!("{n} (F2 0F 38 {op3:02X}) is NotImpl in KVM's 0F 38 map"),
        ),
        (0x2a, Simd::P66) => no(
            "SSE move",
            format!(
                "{n} (66 0F 38 2A) is not in KVM's 0F 38 map up to 6.18; {AVX_SERIES} adds \
                 MOVNTDQA and VMOVNTDQA"
            ),
        ),
        _ => sse_not(insn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions};

    fn check(bitness: u32, bytes: &[u8]) -> EmulatorSupport {
        let mut d = Decoder::new(bitness, bytes, DecoderOptions::NONE);
        let insn = d.decode();
        kvm_emulator_support(&insn, bytes)
    }

    #[test]
    fn addps_not() {
        let s = check(32, &[0x0f, 0x58, 0x06]);
        assert_eq!(s.emulated, Some(false));
        assert_eq!(s.class, "SSE arithmetic");
        assert!(s.why.contains("ADDPS"), "{}", s.why);
        let s = check(16, &[0x26, 0x0f, 0x58, 0x06, 0x10, 0x00]);
        assert_eq!(s.emulated, Some(false));
        assert_eq!(s.class, "SSE arithmetic");
    }

    #[test]
    fn sse_moves() {
        let s = check(64, &[0x0f, 0x29, 0x07]);
        assert_eq!(s.emulated, Some(true), "{}", s.why);
        assert_eq!(s.class, "SSE move");
        // Log 13: movaps [edx+eax],xmm0.
        assert_eq!(check(32, &[0x0f, 0x29, 0x04, 0x02]).emulated, Some(true));
        for b in [
            &[0x0f, 0x10, 0x07][..],
            &[0x66, 0x0f, 0x11, 0x07],
            &[0x66, 0x0f, 0x28, 0x07],
            &[0x0f, 0x2b, 0x07],
            &[0x66, 0x0f, 0x6f, 0x07],
            &[0xf3, 0x0f, 0x7f, 0x07],
            &[0x0f, 0x6f, 0x07],
            &[0x66, 0x0f, 0xe7, 0x07],
            &[0x0f, 0xc3, 0x07],
            &[0x48, 0x0f, 0xc3, 0x07],
        ] {
            assert_eq!(check(64, b).emulated, Some(true), "{b:02x?}");
        }
        for b in [&[0xf3, 0x0f, 0x10, 0x07][..], &[0xf2, 0x0f, 0x11, 0x07]] {
            let s = check(64, b);
            assert_eq!(s.emulated, Some(false), "{b:02x?}");
            assert_eq!(s.class, "MOVSS/MOVSD");
        }
        // MOVNTQ (MMX) and MOVD are not there.
        assert_eq!(check(64, &[0x0f, 0xe7, 0x07]).emulated, Some(false));
        let s = check(64, &[0x66, 0x0f, 0x6e, 0x07]);
        assert_eq!((s.emulated, s.class), (Some(false), "SSE move"));
        // MOVNTDQA: only with the 2025 series.
        let s = check(64, &[0x66, 0x0f, 0x38, 0x2a, 0x07]);
        assert_eq!(s.emulated, Some(false));
        assert!(s.why.contains("Nov-2025"));
    }

    #[test]
    fn other_sse_and_mmx() {
        let s = check(64, &[0x0f, 0xc6, 0xc1, 0x00]);
        assert_eq!((s.emulated, s.class), (Some(false), "SSE shuffle"));
        let s = check(64, &[0xf3, 0x0f, 0x2d, 0x07]);
        assert_eq!((s.emulated, s.class), (Some(false), "SSE conversion"));
        let s = check(64, &[0x0f, 0xfc, 0xc1]);
        assert_eq!((s.emulated, s.class), (Some(false), "MMX arithmetic"));
        let s = check(64, &[0x66, 0x0f, 0x38, 0x00, 0xc1]);
        assert_eq!((s.emulated, s.class), (Some(false), "SSE shuffle"));
    }

    #[test]
    fn endbr() {
        let s = check(32, &[0xf3, 0x0f, 0x1e, 0xfb]);
        assert_eq!(s.emulated, None);
        assert_eq!(s.class, "ENDBR (0F 1E)");
        assert!(s.why.contains("2020"), "{}", s.why);
        assert_eq!(check(64, &[0xf3, 0x0f, 0x1e, 0xfa]).class, "ENDBR (0F 1E)");
        assert_eq!(check(16, &[0xf3, 0x0f, 0x1e, 0xfb]).class, "ENDBR (0F 1E)");
        assert_eq!(check(64, &[0x0f, 0x1f, 0x00]).emulated, Some(true));
    }

    #[test]
    fn xsave_family() {
        // Log 04: xsave64 [rdi].
        let s = check(64, &[0x48, 0x0f, 0xae, 0x27]);
        assert_eq!(s.emulated, Some(false));
        assert_eq!(s.class, "XSAVE family");
        assert_eq!(check(64, &[0x0f, 0xae, 0x2f]).class, "XSAVE family");
        assert_eq!(check(64, &[0x0f, 0xae, 0x37]).class, "XSAVE family");
        assert_eq!(check(64, &[0x0f, 0xc7, 0x27]).class, "XSAVE family");
        assert_eq!(check(64, &[0x0f, 0xae, 0x07]).emulated, Some(true));
        assert_eq!(check(64, &[0x48, 0x0f, 0xae, 0x0f]).emulated, Some(true));
        assert_eq!(check(64, &[0x0f, 0xae, 0x3f]).emulated, Some(true));
        assert_eq!(check(64, &[0x66, 0x0f, 0xae, 0x3f]).emulated, Some(true));
        assert_eq!(check(64, &[0x0f, 0xae, 0x17]).emulated, Some(false));
        assert_eq!(check(64, &[0x0f, 0xae, 0x1f]).emulated, Some(false));
        assert_eq!(check(64, &[0x0f, 0xae, 0xf0]).emulated, Some(false));
        assert_eq!(check(64, &[0x66, 0x0f, 0xae, 0x37]).emulated, Some(false));
    }

    #[test]
    fn vex_and_evex() {
        let s = check(64, &[0xc5, 0xfe, 0x6f, 0x07]);
        assert_eq!(s.emulated, Some(false));
        assert_eq!(s.class, "VEX-encoded (AVX)");
        assert!(
            s.why.contains("Nov-2025") && s.why.contains("VMOVDQU"),
            "{}",
            s.why
        );
        let s = check(64, &[0xc5, 0xfc, 0x58, 0x07]);
        assert_eq!(s.emulated, Some(false));
        assert!(s.why.contains("on any kernel"));
        let s = check(64, &[0x62, 0xf1, 0x7e, 0x48, 0x6f, 0x07]);
        assert_eq!(
            (s.emulated, s.class),
            (Some(false), "EVEX-encoded (AVX-512)")
        );
        // In 32-bit mode C5 with a memory ModRM is LDS.
        let s = check(32, &[0xc5, 0x07]);
        assert_eq!((s.emulated, s.class), (Some(true), "general-purpose"));
    }

    #[test]
    fn x87() {
        let s = check(64, &[0xd9, 0x07]);
        assert_eq!((s.emulated, s.class), (Some(false), "x87 memory"));
        assert!(s.why.contains("FLD"));
        assert_eq!(check(64, &[0xdd, 0x1f]).emulated, Some(false));
        assert_eq!(check(64, &[0xd9, 0x3f]).emulated, Some(true));
        assert_eq!(check(64, &[0xdd, 0x3f]).emulated, Some(true));
        assert_eq!(check(64, &[0xdb, 0xe3]).emulated, Some(true));
        assert_eq!(check(64, &[0xd8, 0xc1]).class, "x87 register");
        assert_eq!(check(64, &[0x9b, 0xd9, 0x3f]).emulated, Some(false));
    }

    #[test]
    fn general_purpose() {
        let s = check(64, &[0x89, 0x07]);
        assert_eq!((s.emulated, s.class), (Some(true), "general-purpose"));
        assert!(s.why.contains("MOV"));
        assert_eq!(check(64, &[0x48, 0x01, 0x07]).emulated, Some(true));
        assert_eq!(check(64, &[0xf3, 0x48, 0xa5]).class, "string");
        let s = check(64, &[0xf3, 0x6e]);
        assert_eq!((s.emulated, s.class), (Some(true), "string I/O"));
        assert_eq!(check(64, &[0xe6, 0x80]).class, "port I/O");
        assert_eq!(check(32, &[0x27]).emulated, Some(false));
        assert_eq!(check(32, &[0x63, 0x07]).emulated, Some(false));
        assert_eq!(check(64, &[0x48, 0x63, 0x07]).emulated, Some(true));
        assert_eq!(check(64, &[0x0f, 0x30]).emulated, Some(true));
        assert_eq!(check(64, &[0x0f, 0x01, 0xf8]).emulated, Some(false));
        assert_eq!(check(64, &[0x0f, 0x38, 0xf0, 0x07]).class, "MOVBE");
        assert_eq!(check(64, &[0xf3, 0x0f, 0xb8, 0x07]).emulated, Some(false));
        assert_eq!(check(64, &[0x0f, 0x0b]).emulated, Some(false));
        assert_eq!(check(64, &[0x0f, 0xc7, 0x0f]).emulated, Some(true));
    }

    #[test]
    fn serializes() {
        let s = check(64, &[0x89, 0x07]);
        let j = serde_json::to_string(&s).unwrap();
        assert!(j.contains("general-purpose"));
    }
}
