//! `kallsyms_addresses` / `kallsyms_offsets` (+ `kallsyms_relative_base`): the four ways a
//! kernel stores symbol addresses, and choosing among them by consistency.
//!
//! | encoding | kernels | address of symbol `i` |
//! |---|---|---|
//! | absolute | ≤ 6.10 without `KALLSYMS_BASE_RELATIVE` | `addresses[i]` (u64) |
//! | base-relative | 4.6–6.x | `relative_base + (u32)offsets[i]` |
//! | absolute per-cpu | x86_64 SMP 4.6–6.14 | `offsets[i] >= 0` ? `offsets[i]` : `relative_base - 1 - offsets[i]` |
//! | place-relative | 7.0+ | `&offsets[i] + (s32)offsets[i]` |
//!
//! The data does not say which; [`choose`] decodes every candidate and keeps the one whose
//! text symbols are sorted and whose `_stext` (or `_text`) is at the anchor (VMCOREINFO's
//! `SYMBOL(_stext)` or the caller's hint), or, with no anchor, inside the kernel image.

use serde::Serialize;

use super::error::{KallsymsError, RejectReason, Rejection};
use super::names::Name;
use crate::kmem::{KernelMem, VirtAddr};

/// How `kallsyms` stores symbol addresses (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressEncoding {
    /// `kallsyms_addresses[]`: plain 64-bit addresses.
    Absolute,
    /// `kallsyms_relative_base + (u32)kallsyms_offsets[i]`.
    BaseRelative,
    /// Base-relative with absolute per-cpu symbols (`CONFIG_KALLSYMS_ABSOLUTE_PERCPU`).
    AbsolutePercpu,
    /// `&kallsyms_offsets[i] + (s32)kallsyms_offsets[i]` (7.0+, no relative base).
    PlaceRelative,
}

impl AddressEncoding {
    /// A short name: `absolute`, `base-relative`, `absolute-percpu`, `place-relative`.
    pub fn name(self) -> &'static str {
        match self {
            AddressEncoding::Absolute => "absolute",
            AddressEncoding::BaseRelative => "base-relative",
            AddressEncoding::AbsolutePercpu => "absolute-percpu",
            AddressEncoding::PlaceRelative => "place-relative",
        }
    }

    /// A description for reports.
    pub fn describe(self) -> &'static str {
        match self {
            AddressEncoding::Absolute => "absolute addresses (kallsyms_addresses)",
            AddressEncoding::BaseRelative => "base-relative offsets",
            AddressEncoding::AbsolutePercpu => "base-relative with absolute per-cpu",
            AddressEncoding::PlaceRelative => "place-relative offsets (no relative base)",
        }
    }
}

impl std::fmt::Display for AddressEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The order `scripts/kallsyms.c` emits the tables in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TableOrder {
    /// ≤ 6.3: addresses/offsets, relative_base, num_syms, names, markers, token_table,
    /// token_index.
    AddressesFirst,
    /// ≥ 6.4: num_syms, names, markers, token_table, token_index, addresses/offsets,
    /// relative_base.
    NamesFirst,
}

impl TableOrder {
    /// A description for reports.
    pub fn describe(self) -> &'static str {
        match self {
            TableOrder::AddressesFirst => "addresses before names (<= 6.3 order)",
            TableOrder::NamesFirst => "addresses after token_index (>= 6.4 order)",
        }
    }
}

/// The largest address array read: 2 Mi symbols of 8 bytes.
const MAX_ADDR_BYTES: u64 = 16 << 20;

/// Where an address array may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AddrSource {
    /// `kallsyms_addresses` at `va`.
    Absolute {
        /// The array.
        va: VirtAddr,
        /// The layout this position assumes.
        order: TableOrder,
    },
    /// `kallsyms_offsets` at `va`, with `kallsyms_relative_base` at `base` when the layout
    /// has one.
    Offsets {
        /// The array.
        va: VirtAddr,
        /// `kallsyms_relative_base`.
        base: Option<VirtAddr>,
        /// The layout this position assumes.
        order: TableOrder,
    },
}

/// What the anchor checks compare with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Anchor {
    /// The true address of `_stext` (VMCOREINFO `SYMBOL(_stext)` or a caller's hint).
    pub stext: Option<u64>,
    /// With no `stext`: the kernel image range `_stext`/`_text` must fall in.
    pub image: Option<(u64, u64)>,
}

/// The encoding chosen and the addresses it gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chosen {
    /// The encoding.
    pub encoding: AddressEncoding,
    /// The layout order of the source that fit.
    pub order: TableOrder,
    /// Where the address array is.
    pub table: VirtAddr,
    /// The relative base, for the base-relative encodings.
    pub relative_base: Option<u64>,
    /// One address per symbol.
    pub addresses: Vec<u64>,
}

/// The raw arrays read for one source.
enum Raw {
    Absolute(Vec<u64>),
    Offsets {
        values: Vec<u32>,
        base: Option<Result<u64, VirtAddr>>,
    },
}

fn read_raw(mem: &dyn KernelMem, src: AddrSource, n: u32) -> Result<Raw, VirtAddr> {
    let n64 = u64::from(n);
    match src {
        AddrSource::Absolute { va, .. } => {
            let bytes = mem.read_vec(va, n64 * 8, MAX_ADDR_BYTES).map_err(|_| va)?;
            Ok(Raw::Absolute(
                bytes
                    .chunks_exact(8)
                    .map(|c| {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(c);
                        u64::from_le_bytes(a)
                    })
                    .collect(),
            ))
        }
        AddrSource::Offsets { va, base, .. } => {
            let bytes = mem.read_vec(va, n64 * 4, MAX_ADDR_BYTES).map_err(|_| va)?;
            let values = bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let base = base.map(|b| mem.read_u64(b).map_err(|_| b));
            Ok(Raw::Offsets { values, base })
        }
    }
}

fn decode(enc: AddressEncoding, raw: &Raw, table: VirtAddr, base: u64) -> Vec<u64> {
    match (enc, raw) {
        (_, Raw::Absolute(v)) => v.clone(),
        (AddressEncoding::BaseRelative, Raw::Offsets { values, .. }) => values
            .iter()
            .map(|&o| base.wrapping_add(u64::from(o)))
            .collect(),
        (AddressEncoding::AbsolutePercpu, Raw::Offsets { values, .. }) => values
            .iter()
            .map(|&o| {
                let s = o as i32;
                if s >= 0 {
                    s as u64
                } else {
                    base.wrapping_sub(1).wrapping_sub(i64::from(s) as u64)
                }
            })
            .collect(),
        (_, Raw::Offsets { values, .. }) => values
            .iter()
            .enumerate()
            .map(|(i, &o)| {
                table
                    .0
                    .wrapping_add(4 * i as u64)
                    .wrapping_add(i64::from(o as i32) as u64)
            })
            .collect(),
    }
}

/// True for nm text types.
pub(crate) fn is_text(kind: char) -> bool {
    matches!(kind, 'T' | 't')
}

/// Checks one decoding; `Ok(score)` when it fits (higher is a better fit).
fn judge(
    enc: AddressEncoding,
    raw: &Raw,
    addrs: &[u64],
    names: &[Name],
    anchor: Anchor,
) -> Result<u32, RejectReason> {
    let mut prev: Option<u64> = None;
    for (i, (a, n)) in addrs.iter().zip(names).enumerate() {
        if !is_text(n.kind) {
            continue;
        }
        if let Some(p) = prev {
            if *a < p {
                return Err(RejectReason::Unsorted {
                    index: i as u32,
                    addr: *a,
                    prev: p,
                });
            }
        }
        prev = Some(*a);
    }
    let find = |want: &str| {
        names
            .iter()
            .position(|n| n.name == want)
            .and_then(|i| addrs.get(i).copied())
    };
    let stext = find("_stext");
    let text = find("_text");
    let found = stext.or(text);
    if let Some(expected) = anchor.stext {
        if stext != Some(expected) && text != Some(expected) {
            return Err(RejectReason::Anchor { found, expected });
        }
    } else if let Some((lo, hi)) = anchor.image {
        let inside = |a: Option<u64>| a.is_some_and(|a| a >= lo && a < hi);
        if !inside(stext) && !inside(text) {
            return Err(RejectReason::OutsideImage { found });
        }
    }
    // Structure as scripts/kallsyms.c writes it: the relative base is the first
    // non-absolute symbol, whose offset is 0 (base-relative) or -1 (absolute per-cpu).
    let structural = match (enc, raw) {
        (AddressEncoding::BaseRelative, Raw::Offsets { values, .. }) => values.contains(&0),
        (AddressEncoding::AbsolutePercpu, Raw::Offsets { values, .. }) => {
            values.contains(&u32::MAX)
        }
        _ => false,
    };
    Ok(u32::from(structural))
}

/// Decodes every source with every encoding it may hold and returns the best fit.
pub(crate) fn choose(
    mem: &dyn KernelMem,
    names: &[Name],
    sources: &[AddrSource],
    anchor: Anchor,
) -> Result<Chosen, KallsymsError> {
    let n = u32::try_from(names.len()).unwrap_or(u32::MAX);
    let mut tried = Vec::new();
    let mut best: Option<(u32, Chosen)> = None;
    for &src in sources {
        let (table, order, encodings): (VirtAddr, TableOrder, &[AddressEncoding]) = match src {
            AddrSource::Absolute { va, order } => (va, order, &[AddressEncoding::Absolute]),
            AddrSource::Offsets { va, order, .. } => (
                va,
                order,
                &[
                    AddressEncoding::AbsolutePercpu,
                    AddressEncoding::BaseRelative,
                    AddressEncoding::PlaceRelative,
                ],
            ),
        };
        let raw = match read_raw(mem, src, n) {
            Ok(r) => r,
            Err(va) => {
                for &encoding in encodings {
                    tried.push(Rejection {
                        encoding,
                        table,
                        reason: RejectReason::Unreadable { va },
                    });
                }
                continue;
            }
        };
        for &encoding in encodings {
            let base = match (&raw, encoding) {
                (Raw::Offsets { base, .. }, AddressEncoding::BaseRelative)
                | (Raw::Offsets { base, .. }, AddressEncoding::AbsolutePercpu) => match base {
                    Some(Ok(b)) => Some(*b),
                    // No relative base in this layout: these encodings do not apply.
                    None => continue,
                    Some(Err(va)) => {
                        tried.push(Rejection {
                            encoding,
                            table,
                            reason: RejectReason::Unreadable { va: *va },
                        });
                        continue;
                    }
                },
                _ => None,
            };
            let addresses = decode(encoding, &raw, table, base.unwrap_or(0));
            match judge(encoding, &raw, &addresses, names, anchor) {
                Ok(score) => {
                    if best.as_ref().is_none_or(|(s, _)| score > *s) {
                        best = Some((
                            score,
                            Chosen {
                                encoding,
                                order,
                                table,
                                relative_base: base,
                                addresses,
                            },
                        ));
                    }
                }
                Err(reason) => tried.push(Rejection {
                    encoding,
                    table,
                    reason,
                }),
            }
        }
    }
    best.map(|(_, c)| c)
        .ok_or(KallsymsError::NoEncoding { tried })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nm(kind: char, name: &str) -> Name {
        Name {
            kind,
            name: name.into(),
        }
    }

    #[test]
    fn absolute_percpu_decodes_both_signs() {
        let raw = Raw::Offsets {
            values: vec![0x10, (-1i32) as u32, (-0x101i32) as u32],
            base: None,
        };
        let a = decode(
            AddressEncoding::AbsolutePercpu,
            &raw,
            VirtAddr(0),
            0xffff_ffff_8100_0000,
        );
        assert_eq!(a, vec![0x10, 0xffff_ffff_8100_0000, 0xffff_ffff_8100_0100]);
        let p = decode(AddressEncoding::PlaceRelative, &raw, VirtAddr(0x1000), 0);
        assert_eq!(p, vec![0x1010, 0x1003, 0x1008 - 0x101]);
    }

    #[test]
    fn judge_needs_sorted_text_and_the_anchor() {
        let names = [
            nm('A', "pcpu"),
            nm('T', "_stext"),
            nm('t', "f"),
            nm('d', "x"),
        ];
        let raw = Raw::Absolute(vec![]);
        let anchor = Anchor {
            stext: Some(0x2000),
            image: None,
        };
        let enc = AddressEncoding::Absolute;
        assert_eq!(
            judge(enc, &raw, &[0, 0x2000, 0x2010, 5], &names, anchor),
            Ok(0)
        );
        assert_eq!(
            judge(enc, &raw, &[0, 0x2000, 0x1000, 5], &names, anchor),
            Err(RejectReason::Unsorted {
                index: 2,
                addr: 0x1000,
                prev: 0x2000
            })
        );
        assert_eq!(
            judge(enc, &raw, &[0, 0x3000, 0x3010, 5], &names, anchor),
            Err(RejectReason::Anchor {
                found: Some(0x3000),
                expected: 0x2000
            })
        );
        let image = Anchor {
            stext: None,
            image: Some((0x1000, 0x2000)),
        };
        assert_eq!(
            judge(enc, &raw, &[0, 0x2000, 0x2010, 5], &names, image),
            Err(RejectReason::OutsideImage {
                found: Some(0x2000)
            })
        );
    }
}
