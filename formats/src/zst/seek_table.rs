//! The seek table of the zstd seekable format: the last frame of the file, a skippable
//! frame (magic `0x184D2A5E`) holding one `{compressed_size, decompressed_size}` entry per
//! data frame and a 9-byte footer that ends with `0x8F92EAB1`.
//!
//! Parsing reads the footer first and checks that the table it announces fits in the file
//! before reading any entry; entries are read in bounded chunks and checked one by one,
//! and parsing stops at the first bad one.

use super::{le_u32, MAX_FRAME_SIZE};
use crate::error::{Error, Result};
use crate::source::ByteSource;

/// Magic of the skippable frame holding the seek table.
pub(crate) const SEEK_TABLE_MAGIC: u32 = 0x184D_2A5E;

/// The last four bytes of a seekable stream.
pub(crate) const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;

/// `Number_Of_Frames` (4) + `Seek_Table_Descriptor` (1) + `Seekable_Magic_Number` (4).
const FOOTER_LEN: u64 = 9;

/// `Skippable_Magic_Number` (4) + `Frame_Size` (4).
const SKIPPABLE_HEADER_LEN: u64 = 8;

/// Descriptor bit 7: each entry carries a 4-byte checksum.
const CHECKSUM_FLAG: u8 = 0x80;

/// Descriptor bits 6-2: must be zero.
const RESERVED_BITS: u8 = 0x7C;

/// Most entries a table without checksums can hold: its `Frame_Size` is a `u32`.
pub(crate) const MAX_FRAMES: u64 = (u32::MAX as u64 - FOOTER_LEN) / 8;

/// Largest compressed size accepted for one frame. zstd never expands a frame of
/// [`MAX_FRAME_SIZE`] bytes by more than a fraction of a percent; this bounds the buffer a
/// hostile entry can make the reader allocate.
pub(crate) const MAX_COMPRESSED_FRAME: u64 = 2 * MAX_FRAME_SIZE as u64 + (1 << 20);

/// Entries read per `read_at` while parsing.
const ENTRIES_PER_READ: usize = 4096;

/// The message for a file whose last bytes are not a seek table footer.
pub(crate) const NO_SEEK_TABLE: &str =
    "no seek table: not a seekable zstd stream, or an incomplete capture";

/// One seek-table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Size of the zstd frame in the file.
    pub compressed: u32,
    /// Size of its content.
    pub decompressed: u32,
}

/// The whole seek-table frame for `entries` (no per-entry checksums).
pub(crate) fn encode(entries: &[Entry]) -> Result<Vec<u8>> {
    let count = u32::try_from(entries.len())
        .ok()
        .filter(|&n| u64::from(n) <= MAX_FRAMES)
        .ok_or_else(|| Error::Container {
            reason: format!(
                "{} frames do not fit a seek table (at most {MAX_FRAMES})",
                entries.len()
            ),
        })?;
    // Cannot overflow: count <= MAX_FRAMES.
    let frame_size = count * 8 + FOOTER_LEN as u32;
    let mut out = Vec::with_capacity(SKIPPABLE_HEADER_LEN as usize + frame_size as usize);
    out.extend_from_slice(&SEEK_TABLE_MAGIC.to_le_bytes());
    out.extend_from_slice(&frame_size.to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.compressed.to_le_bytes());
        out.extend_from_slice(&e.decompressed.to_le_bytes());
    }
    out.extend_from_slice(&count.to_le_bytes());
    out.push(0); // descriptor: no checksums
    out.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
    Ok(out)
}

/// Where the frames of a container are, as its seek table says.
#[derive(Debug)]
pub(crate) struct Layout {
    /// File offset of each data frame, plus one last element: the end of the data frames.
    pub frame_offsets: Vec<u64>,
    /// Content offset of each data frame, plus one last element: the content size.
    pub content_offsets: Vec<u64>,
    /// File offset of the seek-table frame.
    pub table_offset: u64,
}

impl Layout {
    /// Number of data frames.
    pub fn frames(&self) -> usize {
        self.frame_offsets.len().saturating_sub(1)
    }

    /// File offset just past the last data frame.
    pub fn data_end(&self) -> u64 {
        self.frame_offsets.last().copied().unwrap_or(0)
    }

    /// Number of content bytes.
    pub fn content_size(&self) -> u64 {
        self.content_offsets.last().copied().unwrap_or(0)
    }

    /// The frame holding content offset `offset`, which must be below the content size.
    pub fn frame_of(&self, offset: u64) -> usize {
        // content_offsets is strictly increasing (every frame holds at least one byte).
        self.content_offsets
            .partition_point(|&start| start <= offset)
            .saturating_sub(1)
    }

    /// `(file offset, compressed size, content offset, content size)` of frame `i`.
    pub fn frame(&self, i: usize) -> Option<(u64, u64, u64, u64)> {
        let f0 = *self.frame_offsets.get(i)?;
        let f1 = *self.frame_offsets.get(i + 1)?;
        let c0 = *self.content_offsets.get(i)?;
        let c1 = *self.content_offsets.get(i + 1)?;
        Some((f0, f1 - f0, c0, c1 - c0))
    }
}

fn container(reason: String) -> Error {
    Error::Container { reason }
}

/// Reads and checks the seek table at the end of `raw`, the bytes of the file.
pub(crate) fn read_layout(raw: &dyn ByteSource) -> Result<Layout> {
    let size = raw.len();
    if size < FOOTER_LEN {
        return Err(container(format!("{NO_SEEK_TABLE} (file of {size} bytes)")));
    }
    let mut footer = [0u8; FOOTER_LEN as usize];
    raw.read_at(size - FOOTER_LEN, &mut footer)?;
    let frames = le_u32(&footer, 0).unwrap_or(0);
    let descriptor = footer[4];
    let magic = le_u32(&footer, 5).unwrap_or(0);
    if magic != SEEKABLE_MAGIC {
        return Err(container(NO_SEEK_TABLE.to_string()));
    }
    if descriptor & RESERVED_BITS != 0 {
        return Err(container(format!(
            "seek table descriptor {descriptor:#04x} has reserved bits set"
        )));
    }
    let entry_len: u64 = if descriptor & CHECKSUM_FLAG != 0 {
        12
    } else {
        8
    };
    let entries_len = u64::from(frames) * entry_len;
    let table_len = SKIPPABLE_HEADER_LEN + entries_len + FOOTER_LEN;
    if table_len > size {
        return Err(container(format!(
            "seek table of {frames} frames needs {table_len} bytes, the file has {size}"
        )));
    }
    let table_offset = size - table_len;
    let mut header = [0u8; SKIPPABLE_HEADER_LEN as usize];
    raw.read_at(table_offset, &mut header)?;
    let table_magic = le_u32(&header, 0).unwrap_or(0);
    if table_magic != SEEK_TABLE_MAGIC {
        return Err(container(format!(
            "seek table of {frames} frames would start at {table_offset:#x}, but the magic there is {table_magic:#010x}, not {SEEK_TABLE_MAGIC:#010x}"
        )));
    }
    let declared = le_u32(&header, 4).unwrap_or(0);
    if u64::from(declared) != entries_len + FOOTER_LEN {
        return Err(container(format!(
            "seek table frame size is {declared}, but {frames} entries and the footer take {}",
            entries_len + FOOTER_LEN
        )));
    }

    // Grow with the entries actually read, not with the count the footer claims.
    let initial = (frames as usize).min(ENTRIES_PER_READ) + 1;
    let mut frame_offsets = Vec::with_capacity(initial);
    let mut content_offsets = Vec::with_capacity(initial);
    frame_offsets.push(0u64);
    content_offsets.push(0u64);
    let (mut file_end, mut content_end) = (0u64, 0u64);
    let mut chunk = vec![0u8; ENTRIES_PER_READ * entry_len as usize];
    let mut index = 0usize;
    let mut at = table_offset + SKIPPABLE_HEADER_LEN;
    let mut left = u64::from(frames);
    while left > 0 {
        let n = left.min(ENTRIES_PER_READ as u64);
        let bytes = &mut chunk[..(n * entry_len) as usize];
        raw.read_at(at, bytes)?;
        for (k, entry) in bytes.chunks_exact(entry_len as usize).enumerate() {
            let entry_at = at + k as u64 * entry_len;
            let compressed = u64::from(le_u32(entry, 0).unwrap_or(0));
            let decompressed = u64::from(le_u32(entry, 4).unwrap_or(0));
            let bad = |what: String| {
                container(format!("seek table entry {index} at {entry_at:#x}: {what}"))
            };
            if decompressed == 0 || decompressed > MAX_FRAME_SIZE as u64 {
                return Err(bad(format!(
                    "decompressed size {decompressed} is not in 1..={MAX_FRAME_SIZE}"
                )));
            }
            if compressed == 0 || compressed > MAX_COMPRESSED_FRAME {
                return Err(bad(format!(
                    "compressed size {compressed} is not in 1..={MAX_COMPRESSED_FRAME}"
                )));
            }
            file_end = file_end
                .checked_add(compressed)
                .ok_or_else(|| bad("compressed sizes overflow".into()))?;
            content_end = content_end
                .checked_add(decompressed)
                .ok_or_else(|| bad("decompressed sizes overflow".into()))?;
            if file_end > table_offset {
                return Err(bad(format!(
                    "frames 0..={index} take {file_end} bytes, but the seek table starts at {table_offset} (file of {size} bytes)"
                )));
            }
            frame_offsets.push(file_end);
            content_offsets.push(content_end);
            index += 1;
        }
        at += n * entry_len;
        left -= n;
    }
    Ok(Layout {
        frame_offsets,
        content_offsets,
        table_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(bytes: &[u8]) -> Result<Layout> {
        read_layout(&bytes.to_vec())
    }

    #[rustfmt::skip]
    fn two_frame_table() -> Vec<u8> {
        let mut f = vec![0xaa; 30]; // stands for two data frames of 10 and 20 bytes
        f.extend_from_slice(&[
            0x5e, 0x2a, 0x4d, 0x18, // skippable magic 0x184D2A5E
            25, 0, 0, 0,            // frame size: 2 * 8 + 9
            10, 0, 0, 0,            // entry 0: compressed 10
            0x00, 0x10, 0, 0,       //          decompressed 4096
            20, 0, 0, 0,            // entry 1: compressed 20
            0x01, 0, 0, 0,          //          decompressed 1
            2, 0, 0, 0,             // number of frames
            0x00,                   // descriptor: no checksums
            0xb1, 0xea, 0x92, 0x8f, // seekable magic 0x8F92EAB1
        ]);
        f
    }

    #[test]
    fn encode_matches_the_hand_written_table() {
        let t = encode(&[
            Entry {
                compressed: 10,
                decompressed: 4096,
            },
            Entry {
                compressed: 20,
                decompressed: 1,
            },
        ])
        .unwrap();
        assert_eq!(t, two_frame_table()[30..]);
    }

    #[test]
    fn parses_offsets_and_sizes() {
        let l = layout(&two_frame_table()).unwrap();
        assert_eq!(l.frames(), 2);
        assert_eq!(l.frame_offsets, [0, 10, 30]);
        assert_eq!(l.content_offsets, [0, 4096, 4097]);
        assert_eq!(l.table_offset, 30);
        assert_eq!(l.data_end(), 30);
        assert_eq!(l.content_size(), 4097);
        assert_eq!(l.frame_of(0), 0);
        assert_eq!(l.frame_of(4095), 0);
        assert_eq!(l.frame_of(4096), 1);
        assert_eq!(l.frame(1), Some((10, 20, 4096, 1)));
        assert_eq!(l.frame(2), None);
    }

    #[test]
    fn empty_table_is_a_valid_stream_of_no_content() {
        let t = encode(&[]).unwrap();
        let l = layout(&t).unwrap();
        assert_eq!((l.frames(), l.content_size(), l.data_end()), (0, 0, 0));
    }

    #[test]
    fn checksummed_entries_are_accepted() {
        #[rustfmt::skip]
        let t = [
            0xaa, 0xaa, 0xaa,       // one data frame of 3 bytes
            0x5e, 0x2a, 0x4d, 0x18, // skippable magic
            21, 0, 0, 0,            // frame size: 12 + 9
            3, 0, 0, 0,             // compressed 3
            7, 0, 0, 0,             // decompressed 7
            1, 2, 3, 4,             // checksum (not interpreted)
            1, 0, 0, 0,             // number of frames
            0x80,                   // descriptor: checksums
            0xb1, 0xea, 0x92, 0x8f, // seekable magic
        ];
        let l = layout(&t).unwrap();
        assert_eq!(l.content_offsets, [0, 7]);
    }

    fn assert_container_err(bytes: &[u8], needle: &str) {
        match layout(bytes) {
            Err(Error::Container { reason }) => {
                assert!(reason.contains(needle), "{reason:?} lacks {needle:?}")
            }
            other => panic!("expected a container error with {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn refuses_bad_tables() {
        let good = two_frame_table();
        let n = good.len();
        assert_container_err(&good[..n - 1], "no seek table");
        assert_container_err(&good[..5], "no seek table");
        assert_container_err(&[], "no seek table");

        let mut t = good.clone();
        t[n - 5] = 0x04; // reserved descriptor bit
        assert_container_err(&t, "reserved bits");
        let mut t = good.clone();
        t[n - 5] = 0x03; // unused bits are ignored
        assert!(layout(&t).is_ok());

        let mut t = good.clone();
        t[n - 9..n - 5].copy_from_slice(&1000u32.to_le_bytes()); // absurd frame count
        assert_container_err(&t, "needs 8017 bytes");
        let mut t = good.clone();
        t[n - 9..n - 5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_container_err(&t, "the file has");
        let mut t = good.clone();
        t[n - 9..n - 5].copy_from_slice(&1u32.to_le_bytes()); // count says 1, table has 2
        assert_container_err(&t, "magic there");

        let mut t = good.clone();
        t[30] ^= 1; // seek table magic
        assert_container_err(&t, "magic there");
        let mut t = good.clone();
        t[34] = 26; // frame size field
        assert_container_err(&t, "frame size is 26");

        let mut t = good.clone();
        t[38..42].copy_from_slice(&11u32.to_le_bytes()); // compressed sizes sum to 31 > 30
        assert_container_err(&t, "take 31 bytes");
        let mut t = good.clone();
        t[42..46].copy_from_slice(&0u32.to_le_bytes());
        assert_container_err(&t, "decompressed size 0");
        let mut t = good.clone();
        t[42..46].copy_from_slice(&(64u32 << 20 | 1).to_le_bytes());
        assert_container_err(&t, "decompressed size 67108865");
        let mut t = good.clone();
        t[38..42].copy_from_slice(&0u32.to_le_bytes());
        assert_container_err(&t, "compressed size 0");
        let mut t = good.clone();
        t[38..42].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_container_err(&t, "compressed size 4294967295");
    }
}
