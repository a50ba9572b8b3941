//! `kallsyms_names`: one entry per symbol, a length in tokens and then that many token
//! bytes; the expansion's first character is the nm type letter.
//!
//! Since 6.1 (73bbb94466fd3 "kallsyms: support "big" kernel symbols") a length with bit 7
//! set is a two-byte ULEB128 (`(b0 & 0x7f) | b1 << 7`); before, every length byte is
//! literal. Nothing in memory says which, so both are walked and the one that lands where
//! `kallsyms_markers` starts wins ([`choose_lengths`]).

use serde::Serialize;

use super::error::KallsymsError;
use super::tokens::TokenTable;
use crate::kmem::VirtAddr;

/// How name lengths are encoded in `kallsyms_names`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameLengths {
    /// One literal byte per length (before 6.1).
    OneByte,
    /// One byte, or two (ULEB128) when bit 7 is set (6.1+).
    TwoByte,
    /// No name is longer than 127 tokens, so both readings agree.
    Either,
}

impl NameLengths {
    /// A short description for reports.
    pub fn describe(self) -> &'static str {
        match self {
            NameLengths::OneByte => "1-byte name lengths",
            NameLengths::TwoByte => "2-byte (ULEB128) name lengths",
            NameLengths::Either => "1-byte name lengths (no name needs 2)",
        }
    }

    fn two_byte(self) -> bool {
        !matches!(self, NameLengths::OneByte)
    }
}

/// Where a walk over the names stream ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Walk {
    /// Offset just past the last entry.
    pub end: u64,
    /// Offset of entry `256 * k` for every `k`: what `kallsyms_markers` must hold.
    pub markers: Vec<u32>,
    /// Entries whose first length byte has bit 7 set.
    pub long: u32,
}

/// Reads the length of the entry at `off`: (tokens, bytes of the length field).
fn entry_len(stream: &[u8], off: usize, two_byte: bool) -> Option<(usize, usize)> {
    let b0 = *stream.get(off)?;
    if two_byte && b0 & 0x80 != 0 {
        let b1 = *stream.get(off + 1)?;
        Some((usize::from(b0 & 0x7f) | usize::from(b1) << 7, 2))
    } else {
        Some((usize::from(b0), 1))
    }
}

/// Walks `n` entries of `stream` (which starts at `va`) without expanding them.
pub(crate) fn walk(
    stream: &[u8],
    n: u32,
    two_byte: bool,
    va: VirtAddr,
) -> Result<Walk, KallsymsError> {
    let mut off = 0usize;
    let mut markers = Vec::with_capacity((n as usize).div_ceil(256));
    let mut long = 0u32;
    for index in 0..n {
        if index & 0xff == 0 {
            markers.push(u32::try_from(off).unwrap_or(u32::MAX));
        }
        let truncated = || KallsymsError::NamesTruncated {
            index,
            va: va.add(off as u64),
            end: va.add(stream.len() as u64),
        };
        let (len, field) = entry_len(stream, off, two_byte).ok_or_else(truncated)?;
        if stream.get(off).is_some_and(|b| b & 0x80 != 0) {
            long += 1;
        }
        if len == 0 {
            return Err(KallsymsError::EmptyName {
                index,
                va: va.add(off as u64),
            });
        }
        let next = off + field + len;
        if next > stream.len() {
            return Err(truncated());
        }
        off = next;
    }
    Ok(Walk {
        end: off as u64,
        markers,
        long,
    })
}

/// Picks the length encoding: the walk that succeeds and satisfies `end_ok` (its end is
/// where `kallsyms_markers` starts). When both do, `prefer_two` (the kernel is 6.1+)
/// decides.
pub(crate) fn choose_lengths(
    stream: &[u8],
    n: u32,
    va: VirtAddr,
    prefer_two: bool,
    end_ok: &dyn Fn(&Walk) -> bool,
) -> Result<(NameLengths, Walk), KallsymsError> {
    let names_end = |w: &Walk| KallsymsError::NamesEnd {
        num_syms: n,
        names: va,
        end: va.add(w.end),
    };
    let two = walk(stream, n, true, va);
    if let Ok(w) = &two {
        if w.long == 0 {
            return if end_ok(w) {
                Ok((NameLengths::Either, w.clone()))
            } else {
                Err(names_end(w))
            };
        }
    }
    let one = walk(stream, n, false, va);
    let two_fits = two.as_ref().is_ok_and(end_ok);
    let one_fits = one.as_ref().is_ok_and(end_ok);
    match (two, one) {
        (Ok(w), _) if two_fits && (prefer_two || !one_fits) => Ok((NameLengths::TwoByte, w)),
        (_, Ok(w)) if one_fits => Ok((NameLengths::OneByte, w)),
        (Ok(w), _) | (_, Ok(w)) => Err(names_end(&w)),
        (Err(e2), Err(e1)) => Err(if prefer_two { e2 } else { e1 }),
    }
}

/// One decoded name: its nm type letter and the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Name {
    /// The nm type letter.
    pub kind: char,
    /// The name.
    pub name: String,
}

/// Expands `n` entries of `stream` with `tokens`, checking each name is sane: a letter for
/// the type, then one or more printable ASCII characters.
pub(crate) fn expand(
    stream: &[u8],
    n: u32,
    lengths: NameLengths,
    tokens: &TokenTable,
    va: VirtAddr,
) -> Result<Vec<Name>, KallsymsError> {
    let two_byte = lengths.two_byte();
    let mut out = Vec::with_capacity(n as usize);
    let mut off = 0usize;
    let mut buf = Vec::with_capacity(128);
    for index in 0..n {
        let entry_va = va.add(off as u64);
        let truncated = || KallsymsError::NamesTruncated {
            index,
            va: entry_va,
            end: va.add(stream.len() as u64),
        };
        let (len, field) = entry_len(stream, off, two_byte).ok_or_else(truncated)?;
        let body = stream
            .get(off + field..off + field + len)
            .ok_or_else(truncated)?;
        if len == 0 {
            return Err(KallsymsError::EmptyName {
                index,
                va: entry_va,
            });
        }
        buf.clear();
        for &b in body {
            buf.extend_from_slice(tokens.token(b));
        }
        let kind = buf.first().copied().unwrap_or(0);
        if !kind.is_ascii_alphabetic() {
            return Err(KallsymsError::BadKind {
                index,
                va: entry_va,
                kind,
            });
        }
        let name = buf.get(1..).unwrap_or_default();
        if let Some(pos) = name.iter().position(|b| !(0x21..=0x7e).contains(b)) {
            return Err(KallsymsError::BadName {
                index,
                va: entry_va,
                byte: name[pos],
                pos,
            });
        }
        if name.is_empty() {
            return Err(KallsymsError::BadName {
                index,
                va: entry_va,
                byte: 0,
                pos: 0,
            });
        }
        out.push(Name {
            kind: char::from(kind),
            // Printable ASCII only, checked above: every byte is its own char.
            name: {
                let mut s = String::with_capacity(name.len());
                s.extend(name.iter().map(|&b| char::from(b)));
                s
            },
        });
        off += field + len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity_tokens() -> TokenTable {
        let mut bytes = Vec::new();
        let mut idx = [0u16; 256];
        for (i, v) in idx.iter_mut().enumerate() {
            *v = bytes.len() as u16;
            if (1..0x7f).contains(&i) {
                bytes.push(i as u8);
            } else {
                bytes.extend_from_slice(b"xy");
            }
            bytes.push(0);
        }
        TokenTable::parse(VirtAddr(0), &bytes, VirtAddr(0x1000), &idx).unwrap()
    }

    #[test]
    fn walks_and_expands_both_length_forms() {
        let t = identity_tokens();
        // "Tab" (3 tokens), then a 130-token name: 2-byte form 0x82 0x01.
        let mut s = vec![3, b'T', b'a', b'b', 0x82, 0x01, b't'];
        s.extend(std::iter::repeat_n(b'z', 129));
        let w = walk(&s, 2, true, VirtAddr(0x100)).unwrap();
        assert_eq!(
            (w.end, w.long, w.markers.clone()),
            (s.len() as u64, 1, vec![0])
        );
        let names = expand(&s, 2, NameLengths::TwoByte, &t, VirtAddr(0x100)).unwrap();
        assert_eq!(
            names[0],
            Name {
                kind: 'T',
                name: "ab".into()
            }
        );
        assert_eq!(names[1].kind, 't');
        assert_eq!(names[1].name.len(), 129);
        // Read as one-byte lengths the second entry claims 0x82 tokens and ends early.
        assert_eq!(walk(&s, 2, false, VirtAddr(0x100)).unwrap().end, 135);
        assert!(matches!(
            walk(&s, 3, false, VirtAddr(0x100)),
            Err(KallsymsError::NamesTruncated { index: 2, .. })
        ));
        let (l, _) =
            choose_lengths(&s, 2, VirtAddr(0x100), false, &|w| w.end == s.len() as u64).unwrap();
        assert_eq!(l, NameLengths::TwoByte);
    }

    #[test]
    fn one_byte_lengths_win_when_only_they_land_on_the_end() {
        // Pre-6.1: a literal 0x81-token entry.
        let mut s = vec![0x81, b'T'];
        s.extend(std::iter::repeat_n(b'q', 0x80));
        s.extend_from_slice(&[2, b'd', b'x']);
        let end = s.len() as u64;
        let (l, w) = choose_lengths(&s, 2, VirtAddr(0), true, &|w| w.end == end).unwrap();
        assert_eq!((l, w.end), (NameLengths::OneByte, end));
        let t = identity_tokens();
        let names = expand(&s, 2, l, &t, VirtAddr(0)).unwrap();
        assert_eq!(
            names[1],
            Name {
                kind: 'd',
                name: "x".into()
            }
        );
    }

    #[test]
    fn bad_entries_are_errors() {
        let t = identity_tokens();
        assert!(matches!(
            walk(&[0], 1, true, VirtAddr(0)),
            Err(KallsymsError::EmptyName { index: 0, .. })
        ));
        assert!(matches!(
            expand(&[2, b'1', b'a'], 1, NameLengths::Either, &t, VirtAddr(0)),
            Err(KallsymsError::BadKind { kind: b'1', .. })
        ));
        assert!(matches!(
            expand(&[1, b'T'], 1, NameLengths::Either, &t, VirtAddr(0)),
            Err(KallsymsError::BadName { byte: 0, .. })
        ));
        assert!(matches!(
            expand(
                &[3, b'T', b'a', b' '],
                1,
                NameLengths::Either,
                &t,
                VirtAddr(0)
            ),
            Err(KallsymsError::BadName {
                byte: b' ',
                pos: 1,
                ..
            })
        ));
        assert!(matches!(
            expand(&[3, b'T', 1, b'a'], 1, NameLengths::Either, &t, VirtAddr(0)),
            Err(KallsymsError::BadName {
                byte: 1,
                pos: 0,
                ..
            })
        ));
        assert!(matches!(
            choose_lengths(&[2, b'T', b'a'], 1, VirtAddr(0), true, &|_| false),
            Err(KallsymsError::NamesEnd {
                end: VirtAddr(3),
                ..
            })
        ));
    }
}
