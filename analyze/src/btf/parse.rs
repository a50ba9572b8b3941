//! Bytes to type records: the header, the type section (ids are implicit, in record
//! order) and the string section. Every length is checked against the data before use.

use super::error::BtfError;
use super::types::{BtfType, Kind, Member, TypeId};

/// The magic, little-endian.
pub const MAGIC: u16 = 0xeb9f;

/// More types than any kernel has (6.x vmlinux: about 130,000).
pub const MAX_TYPES: usize = 4 << 20;

/// The parts of BTF data.
pub struct Parsed {
    /// Records, index = id - 1.
    pub types: Vec<BtfType>,
    /// The string section.
    pub strings: Vec<u8>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Sizes of each kind's record tail, from the 2026 layout section: for kinds this reader
/// does not know, so it can skip them.
struct KindSizes(Vec<(usize, usize)>);

impl KindSizes {
    fn tail(&self, kind: u32, vlen: usize) -> Option<usize> {
        let (info_sz, elem_sz) = *self.0.get(kind as usize)?;
        info_sz.checked_add(elem_sz.checked_mul(vlen)?)
    }
}

/// Parses raw BTF (a `.BTF` section as the kernel keeps it).
pub fn parse(data: &[u8]) -> Result<Parsed, BtfError> {
    let magic = data
        .get(0..2)
        .map(|m| u16::from_le_bytes([m[0], m[1]]))
        .ok_or_else(|| BtfError::NotBtf("shorter than a header".into()))?;
    if magic != MAGIC {
        return Err(BtfError::NotBtf(format!(
            "magic {magic:#06x}, not {MAGIC:#06x} (a big-endian BTF is not an x86 kernel's)"
        )));
    }
    let field = |at: usize, name: &str| {
        u32_at(data, at).ok_or_else(|| BtfError::BadHeader(format!("no {name}")))
    };
    match data.get(2) {
        Some(1) => {}
        Some(v) => return Err(BtfError::NotBtf(format!("version {v}, not 1"))),
        None => return Err(BtfError::BadHeader("no version".into())),
    }
    let hdr_len = field(4, "hdr_len")? as usize;
    if hdr_len < 24 {
        return Err(BtfError::BadHeader(format!("hdr_len {hdr_len} < 24")));
    }
    let section = |off_at: usize, len_at: usize, name: &str| -> Result<&[u8], BtfError> {
        let off = field(off_at, name)? as usize;
        let len = field(len_at, name)? as usize;
        hdr_len
            .checked_add(off)
            .and_then(|s| Some((s, s.checked_add(len)?)))
            .and_then(|(s, e)| data.get(s..e))
            .ok_or_else(|| {
                BtfError::BadHeader(format!(
                    "{name} section at {off}+{len} after a {hdr_len}-byte header is outside the {} bytes",
                    data.len()
                ))
            })
    };
    let types = section(8, 12, "type")?;
    let strings = section(16, 20, "string")?;
    // hdr_len >= 32: a layout section gives each kind's record sizes.
    let kind_sizes = if hdr_len >= 32 {
        let l = section(24, 28, "layout")?;
        KindSizes(
            l.chunks_exact(4)
                .map(|c| (c[0] as usize, c[1] as usize))
                .collect(),
        )
    } else {
        KindSizes(Vec::new())
    };
    Ok(Parsed {
        types: parse_types(types, &kind_sizes)?,
        strings: strings.to_vec(),
    })
}

fn parse_types(sec: &[u8], kind_sizes: &KindSizes) -> Result<Vec<BtfType>, BtfError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < sec.len() {
        let id = out.len() as TypeId + 1;
        if out.len() >= MAX_TYPES {
            return Err(BtfError::TooManyTypes { limit: MAX_TYPES });
        }
        let bad = |why: String| BtfError::BadType { id, at, why };
        let (name_off, info, size_or_type) =
            match (u32_at(sec, at), u32_at(sec, at + 4), u32_at(sec, at + 8)) {
                (Some(a), Some(b), Some(c)) => (a, b, c),
                _ => return Err(bad("the record runs past the section".into())),
            };
        // vlen in bits 0..23 and kind in 24..30 (the 2026 widths; older BTF has zeros there).
        let vlen = (info & 0x00ff_ffff) as usize;
        let kind = (info >> 24) & 0x7f;
        let kind_flag = info >> 31 != 0;
        let body = at + 12;
        // The tail's length, checked before anything is allocated for it.
        let tail = match kind {
            0 | 2 | 7..=12 | 16 | 18 => 0,
            1 | 14 | 17 => 4,
            3 => 12,
            4 | 5 | 15 => 12 * vlen,
            6 | 13 => 8 * vlen,
            19 => 12 * vlen,
            k => kind_sizes.tail(k, vlen).ok_or_else(|| {
                bad(format!(
                    "kind {k} is unknown and no layout section sizes it"
                ))
            })?,
        };
        let end = body
            .checked_add(tail)
            .filter(|&e| e <= sec.len())
            .ok_or_else(|| bad(format!("its {tail}-byte tail runs past the section")))?;
        let t = &sec[body..end];
        let word = |i: usize| u32_at(t, 4 * i).unwrap_or(0);
        let kind = match kind {
            1 => Kind::Int {
                size: size_or_type,
                signed: (word(0) >> 24) & 1 != 0,
            },
            2 => Kind::Ptr(size_or_type),
            3 => Kind::Array {
                elem: word(0),
                nelems: word(2),
            },
            4 | 5 => {
                let members = (0..vlen)
                    .map(|i| {
                        let off = word(3 * i + 2);
                        Member {
                            name_off: word(3 * i),
                            type_id: word(3 * i + 1),
                            bit_offset: if kind_flag { off & 0x00ff_ffff } else { off },
                            bitfield_size: if kind_flag { (off >> 24) as u8 } else { 0 },
                        }
                    })
                    .collect();
                if kind == 4 {
                    Kind::Struct {
                        size: size_or_type,
                        members,
                    }
                } else {
                    Kind::Union {
                        size: size_or_type,
                        members,
                    }
                }
            }
            6 => Kind::Enum {
                size: size_or_type,
                values: (0..vlen)
                    .map(|i| {
                        let v = word(2 * i + 1);
                        let v = if kind_flag {
                            i64::from(v as i32)
                        } else {
                            i64::from(v)
                        };
                        (word(2 * i), v)
                    })
                    .collect(),
            },
            19 => Kind::Enum {
                size: size_or_type,
                values: (0..vlen)
                    .map(|i| {
                        let v = u64::from(word(3 * i + 1)) | (u64::from(word(3 * i + 2)) << 32);
                        (word(3 * i), v as i64)
                    })
                    .collect(),
            },
            7 => Kind::Fwd,
            8..=11 | 18 => Kind::Alias(size_or_type),
            12 | 13 => Kind::Func,
            14 => Kind::Var(size_or_type),
            15 => Kind::Datasec {
                vars: (0..vlen)
                    .map(|i| (word(3 * i), word(3 * i + 1), word(3 * i + 2)))
                    .collect(),
            },
            16 => Kind::Float(size_or_type),
            _ => Kind::Void,
        };
        out.push(BtfType { name_off, kind });
        at = end;
    }
    Ok(out)
}
