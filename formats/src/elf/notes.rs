//! ELF note records: bounded iteration over a PT_NOTE segment's bytes.

use crate::error::{Error, Result};

/// One ELF note, borrowed from the note segment's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawNote<'a> {
    /// File offset of the note header.
    pub offset: u64,
    /// Note name without its terminating NUL (`CORE`, `QEMU`, `VMCOREINFO`).
    pub name: &'a [u8],
    /// Note type (`n_type`).
    pub kind: u32,
    /// File offset of the descriptor.
    pub desc_offset: u64,
    /// The descriptor bytes.
    pub desc: &'a [u8],
}

/// Iterates the notes in `bytes`, which start at file offset `base`.
///
/// Yields `Err` once for a malformed note and then stops: parsing the same offset again
/// would loop forever.
pub struct NoteIter<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> NoteIter<'a> {
    /// Notes in `bytes`, which sit at file offset `base`.
    pub fn new(bytes: &'a [u8], base: u64) -> Self {
        Self {
            bytes,
            pos: 0,
            base,
        }
    }
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

impl<'a> Iterator for NoteIter<'a> {
    type Item = Result<RawNote<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.bytes.get(self.pos..)?;
        // Zero padding at the end of a note segment is not a note.
        if rest.len() < 12 || rest.iter().all(|&b| b == 0) {
            return None;
        }
        let offset = self.base + self.pos as u64;
        let word = |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let (namesz, descsz, kind) = (word(0) as usize, word(4) as usize, word(8));
        let name_end = align4(namesz).and_then(|n| n.checked_add(12));
        let end = name_end.and_then(|e| align4(descsz).and_then(|d| e.checked_add(d)));
        let (Some(name_end), Some(end)) = (name_end, end) else {
            self.pos = self.bytes.len();
            return Some(Err(Error::Note {
                offset,
                reason: format!("sizes overflow (namesz {namesz}, descsz {descsz})"),
            }));
        };
        // The last note's descriptor padding may be cut by the segment end.
        if name_end > rest.len() || name_end + descsz > rest.len() {
            self.pos = self.bytes.len();
            return Some(Err(Error::Note {
                offset,
                reason: format!(
                    "namesz {namesz} and descsz {descsz} run past the note segment ({} bytes left)",
                    rest.len()
                ),
            }));
        }
        let mut name = &rest[12..12 + namesz];
        if let Some(stripped) = name.strip_suffix(&[0]) {
            name = stripped;
        }
        let desc = &rest[name_end..name_end + descsz];
        self.pos = self.pos.saturating_add(end).min(self.bytes.len());
        Some(Ok(RawNote {
            offset,
            name,
            kind,
            desc_offset: offset + name_end as u64,
            desc,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    fn two_notes() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&5u32.to_le_bytes());   // namesz "CORE\0"
        v.extend_from_slice(&3u32.to_le_bytes());   // descsz
        v.extend_from_slice(&1u32.to_le_bytes());   // NT_PRSTATUS
        v.extend_from_slice(b"CORE\0\0\0\0");        // name, padded to 8
        v.extend_from_slice(&[1, 2, 3, 0]);          // desc, padded to 4
        v.extend_from_slice(&5u32.to_le_bytes());   // namesz "QEMU\0"
        v.extend_from_slice(&0u32.to_le_bytes());   // descsz
        v.extend_from_slice(&0u32.to_le_bytes());   // type 0
        v.extend_from_slice(b"QEMU\0\0\0\0");
        v
    }

    #[test]
    fn parses_consecutive_notes() {
        let bytes = two_notes();
        let notes: Vec<_> = NoteIter::new(&bytes, 0x100).collect::<Result<_>>().unwrap();
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0].name, b"CORE");
        assert_eq!(notes[0].desc, &[1, 2, 3]);
        assert_eq!(notes[0].desc_offset, 0x100 + 20);
        assert_eq!(notes[1].name, b"QEMU");
        assert_eq!(notes[1].offset, 0x100 + 24);
    }

    #[test]
    fn oversized_note_errors_once_then_stops() {
        let mut bytes = two_notes();
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut it = NoteIter::new(&bytes, 0);
        assert!(matches!(
            it.next(),
            Some(Err(Error::Note { offset: 0, .. }))
        ));
        assert!(it.next().is_none());
    }
}
