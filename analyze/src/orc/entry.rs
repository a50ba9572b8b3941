//! `struct orc_entry`: 6 packed bytes (`sp_offset`, `bp_offset`, a flags word) whose flag
//! bits and register numbers changed three times between 4.14 and 7.1.

use serde::Serialize;

/// The encoding of the flags word and of the register numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrcFormat {
    /// 4.14 – 6.2: `type:2`, `end:1`.
    V1,
    /// 6.3: `type:2`, `signal:1`, `end:1`.
    V2,
    /// 6.4 – 7.0: `type:3` (UNDEFINED and END_OF_STACK are types), `signal:1`.
    V3,
    /// 7.1+: as 6.4 with the registers renumbered.
    V4,
}

/// The `.orc_header` hash of each format with one (6.3.10+).
pub const HEADER_HASHES: [([u8; 20], OrcFormat); 3] = [
    (
        [
            0x13, 0x7c, 0x36, 0xad, 0x76, 0x27, 0xc4, 0xdd, 0x55, 0x93, 0x21, 0x76, 0xbb, 0x0e,
            0xcd, 0xbd, 0x50, 0x41, 0xfc, 0x82,
        ],
        OrcFormat::V4,
    ),
    (
        [
            0xfe, 0x5d, 0x32, 0xbf, 0x58, 0x1b, 0xd6, 0x3b, 0x2c, 0xa9, 0xa5, 0xc6, 0x5b, 0xa5,
            0xa6, 0x25, 0xea, 0xb3, 0xfe, 0x24,
        ],
        OrcFormat::V3,
    ),
    (
        [
            0xdb, 0x84, 0xae, 0xd4, 0x10, 0x3b, 0x31, 0xdd, 0x51, 0xe0, 0x17, 0xf8, 0xf7, 0x97,
            0x83, 0xca, 0x98, 0x5c, 0x2c, 0x51,
        ],
        OrcFormat::V2,
    ),
];

impl OrcFormat {
    /// The format of a kernel without `.orc_header`, by its release: 6.4+ (and RHEL 9's
    /// 5.14.0-517+, which carries 6.4's format without the header) V3, 6.3 V2, else V1.
    pub fn from_release(release: &str) -> OrcFormat {
        let mut nums = release
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|p| p.parse::<u32>().ok());
        let (major, minor, patch) = (
            nums.next().unwrap_or(0),
            nums.next().unwrap_or(0),
            nums.next().unwrap_or(0),
        );
        let rhel9_backport = (major, minor) == (5, 14) && release.contains(".el9") && {
            // 5.14.0-NNN.el9: NNN is the build.
            nums.next().is_some_and(|build| patch == 0 && build >= 517)
        };
        if (major, minor) >= (6, 4) || rhel9_backport {
            OrcFormat::V3
        } else if (major, minor) == (6, 3) {
            OrcFormat::V2
        } else {
            OrcFormat::V1
        }
    }

    /// The format told by the kernel's static `orc_fp_entry` (`{CALL, sp_reg BP,
    /// sp_offset 16, bp_reg PREV_SP, bp_offset -16}`, crash's probe): its type field says
    /// 6.4+ (CALL is 2) or older (CALL is 0), its `bp_reg` the register numbering (PREV_SP
    /// is 1 up to 7.0, 8 from 7.1). `by_release` decides between 4.14-6.2 and 6.3, which
    /// the entry cannot tell apart. `None` when the bytes are not that entry.
    pub fn from_fp_entry(raw: [u8; 6], by_release: OrcFormat) -> Option<OrcFormat> {
        let sp_offset = i16::from_le_bytes([raw[0], raw[1]]);
        let bp_offset = i16::from_le_bytes([raw[2], raw[3]]);
        let flags = u16::from_le_bytes([raw[4], raw[5]]);
        let (sp_reg, bp_reg) = (flags & 0xf, (flags >> 4) & 0xf);
        if (sp_offset, bp_offset, sp_reg) != (16, -16, 4) {
            return None;
        }
        match ((flags >> 8) & 7, bp_reg) {
            (2, 1) => Some(OrcFormat::V3),
            (2, 8) => Some(OrcFormat::V4),
            (0, 1) => Some(match by_release {
                OrcFormat::V2 => OrcFormat::V2,
                _ => OrcFormat::V1,
            }),
            _ => None,
        }
    }

    /// Decodes one 6-byte entry.
    pub fn decode(self, raw: [u8; 6]) -> OrcEntry {
        let sp_offset = i16::from_le_bytes([raw[0], raw[1]]);
        let bp_offset = i16::from_le_bytes([raw[2], raw[3]]);
        let flags = u16::from_le_bytes([raw[4], raw[5]]);
        let sp_raw = (flags & 0xf) as u8;
        let bp_raw = ((flags >> 4) & 0xf) as u8;
        let (sp_reg, bp_reg) = (self.reg(sp_raw), self.reg(bp_raw));
        let (kind, signal) = match self {
            OrcFormat::V1 | OrcFormat::V2 => {
                let end_bit = if self == OrcFormat::V1 { 10 } else { 11 };
                let end = flags & (1 << end_bit) != 0;
                let kind = if sp_reg == Reg::Undefined {
                    if end {
                        Kind::EndOfStack
                    } else {
                        Kind::Undefined
                    }
                } else {
                    match (flags >> 8) & 3 {
                        0 => Kind::Call,
                        1 => Kind::Regs,
                        2 => Kind::RegsPartial,
                        _ => Kind::Undefined,
                    }
                };
                // V1 has no signal bit: the kernel treated pt_regs frames as signal
                // frames itself.
                let signal = if self == OrcFormat::V2 {
                    flags & (1 << 10) != 0
                } else {
                    matches!(kind, Kind::Regs | Kind::RegsPartial)
                };
                (kind, signal)
            }
            OrcFormat::V3 | OrcFormat::V4 => {
                let kind = match (flags >> 8) & 7 {
                    1 => Kind::EndOfStack,
                    2 => Kind::Call,
                    3 => Kind::Regs,
                    4 => Kind::RegsPartial,
                    _ => Kind::Undefined,
                };
                (kind, flags & (1 << 11) != 0)
            }
        };
        OrcEntry {
            sp_offset,
            bp_offset,
            sp_reg,
            bp_reg,
            kind,
            signal,
        }
    }

    fn reg(self, n: u8) -> Reg {
        if self == OrcFormat::V4 {
            match n {
                0 => Reg::Undefined,
                1 => Reg::Ax,
                2 => Reg::Dx,
                3 => Reg::Sp,
                4 => Reg::Bp,
                5 => Reg::Di,
                6 => Reg::R10,
                7 => Reg::R13,
                8 => Reg::PrevSp,
                9 => Reg::SpIndirect,
                10 => Reg::BpIndirect,
                _ => Reg::Other(n),
            }
        } else {
            match n {
                0 => Reg::Undefined,
                1 => Reg::PrevSp,
                2 => Reg::Dx,
                3 => Reg::Di,
                4 => Reg::Bp,
                5 => Reg::Sp,
                6 => Reg::R10,
                7 => Reg::R13,
                8 => Reg::BpIndirect,
                9 => Reg::SpIndirect,
                _ => Reg::Other(n),
            }
        }
    }
}

/// A register an entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Reg {
    /// None: the entry gives no rule.
    Undefined,
    /// The previous frame's stack pointer (the CFA).
    PrevSp,
    /// `ax`.
    Ax,
    /// `dx`.
    Dx,
    /// `di`.
    Di,
    /// `bp`.
    Bp,
    /// `sp`.
    Sp,
    /// `r10`.
    R10,
    /// `r13`.
    R13,
    /// `*(bp + offset)`.
    BpIndirect,
    /// `*(sp) + offset`.
    SpIndirect,
    /// A number no format defines.
    Other(u8),
}

/// What the frame at an address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A blind spot: the unwind cannot go on (unreliable).
    Undefined,
    /// The end of the kernel stack (before user entry, boot code or fork entry).
    EndOfStack,
    /// A call frame: the return address sits just below the CFA.
    Call,
    /// A full `pt_regs` at the CFA.
    Regs,
    /// An iret frame (the last five words of `pt_regs`) at the CFA.
    RegsPartial,
}

/// One decoded entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct OrcEntry {
    /// Added to `sp_reg` to give the caller's stack pointer (the CFA).
    pub sp_offset: i16,
    /// Where the caller's frame pointer was saved, relative to `bp_reg`.
    pub bp_offset: i16,
    /// The register the CFA is computed from.
    pub sp_reg: Reg,
    /// The register the saved frame pointer is found from.
    pub bp_reg: Reg,
    /// What the frame is.
    pub kind: Kind,
    /// The frame was interrupted, not a call: the next lookup uses `ip`, not `ip - 1`.
    pub signal: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(sp_offset: i16, bp_offset: i16, flags: u16) -> [u8; 6] {
        let mut r = [0u8; 6];
        r[..2].copy_from_slice(&sp_offset.to_le_bytes());
        r[2..4].copy_from_slice(&bp_offset.to_le_bytes());
        r[4..].copy_from_slice(&flags.to_le_bytes());
        r
    }

    #[test]
    fn every_format_decodes_a_call_frame_and_the_end() {
        // sp_reg SP, bp_reg UNDEFINED, CALL, sp_offset 8: a function's entry.
        let v1 = OrcFormat::V1.decode(raw(8, 0, 5));
        assert_eq!(
            (v1.sp_reg, v1.bp_reg, v1.kind, v1.signal),
            (Reg::Sp, Reg::Undefined, Kind::Call, false)
        );
        // v1: sp_reg UNDEFINED with end set is the end of the stack; without, a blind spot.
        assert_eq!(
            OrcFormat::V1.decode(raw(0, 0, 1 << 10)).kind,
            Kind::EndOfStack
        );
        assert_eq!(OrcFormat::V1.decode(raw(0, 0, 0)).kind, Kind::Undefined);
        // v1 REGS (type 1) is a signal frame.
        let regs = OrcFormat::V1.decode(raw(0, 0, 5 | 1 << 8));
        assert_eq!((regs.kind, regs.signal), (Kind::Regs, true));
        // v2: signal is bit 10, end bit 11.
        assert_eq!(
            OrcFormat::V2.decode(raw(0, 0, 1 << 11)).kind,
            Kind::EndOfStack
        );
        assert!(OrcFormat::V2.decode(raw(8, 0, 5 | 1 << 10)).signal);
        // v3: types 0-4 in bits 8-10, signal bit 11.
        let v3 = OrcFormat::V3.decode(raw(8, 0, 5 | 2 << 8));
        assert_eq!((v3.sp_reg, v3.kind), (Reg::Sp, Kind::Call));
        assert_eq!(
            OrcFormat::V3.decode(raw(0, 0, 1 << 8)).kind,
            Kind::EndOfStack
        );
        assert_eq!(
            OrcFormat::V3.decode(raw(0, 0, 4 << 8 | 1 << 11)),
            OrcEntry {
                sp_offset: 0,
                bp_offset: 0,
                sp_reg: Reg::Undefined,
                bp_reg: Reg::Undefined,
                kind: Kind::RegsPartial,
                signal: true
            }
        );
        // v4: SP is 3, PREV_SP 8.
        let v4 = OrcFormat::V4.decode(raw(16, -16, 4 | 8 << 4 | 2 << 8));
        assert_eq!((v4.sp_reg, v4.bp_reg), (Reg::Bp, Reg::PrevSp));
        assert_eq!(OrcFormat::V4.decode(raw(8, 0, 3 | 2 << 8)).sp_reg, Reg::Sp);
    }

    #[test]
    fn formats_by_orc_fp_entry() {
        // 6.1: CALL 0, sp BP (4), bp PREV_SP (1).
        let v1 = raw(16, -16, 4 | 1 << 4);
        assert_eq!(
            OrcFormat::from_fp_entry(v1, OrcFormat::V1),
            Some(OrcFormat::V1)
        );
        assert_eq!(
            OrcFormat::from_fp_entry(v1, OrcFormat::V2),
            Some(OrcFormat::V2)
        );
        // 6.4-7.0: CALL 2; 7.1: CALL 2 with PREV_SP 8.
        let v3 = raw(16, -16, 4 | 1 << 4 | 2 << 8);
        assert_eq!(
            OrcFormat::from_fp_entry(v3, OrcFormat::V1),
            Some(OrcFormat::V3)
        );
        let v4 = raw(16, -16, 4 | 8 << 4 | 2 << 8);
        assert_eq!(
            OrcFormat::from_fp_entry(v4, OrcFormat::V3),
            Some(OrcFormat::V4)
        );
        // Anything else is not that entry.
        assert_eq!(OrcFormat::from_fp_entry(raw(8, 0, 5), OrcFormat::V1), None);
        assert_eq!(OrcFormat::from_fp_entry([0; 6], OrcFormat::V3), None);
    }

    #[test]
    fn formats_by_release() {
        assert_eq!(OrcFormat::from_release("6.1.0-57-amd64"), OrcFormat::V1);
        assert_eq!(OrcFormat::from_release("6.3.0"), OrcFormat::V2);
        assert_eq!(OrcFormat::from_release("6.12.9+bpo-amd64"), OrcFormat::V3);
        assert_eq!(OrcFormat::from_release("4.14.0"), OrcFormat::V1);
        assert_eq!(
            OrcFormat::from_release("5.14.0-570.12.1.el9_6.x86_64"),
            OrcFormat::V3
        );
        assert_eq!(
            OrcFormat::from_release("5.14.0-427.el9.x86_64"),
            OrcFormat::V1
        );
    }
}
