//! The `.core.zst` container: a standard zstd *seekable format* stream of an ELF core,
//! plus one skippable frame of coroner metadata. `formats/FORMAT.md` is the byte-level
//! specification; this module is its only implementation.
//!
//! ```text
//! [zstd frame 0] .. [zstd frame N-1] [skippable 0x184D2A5B: "CORONER\0" + JSON] [seek table]
//! ```
//!
//! Rules:
//!
//! - `zstd -d` of a container gives exactly the bytes that were written into it: every data
//!   frame is an ordinary zstd frame (content size and content checksum on), everything
//!   else is a skippable frame.
//! - [`ContainerWriter`] writes `NAME.partial` (mode 0600) and renames it only once the
//!   trailer is on disk and fsynced. A file without a seek table is an interrupted write
//!   and [`ContainerReader`] refuses it.
//! - [`ContainerReader`] treats every byte of the file as hostile: sizes are checked
//!   against the file before anything is allocated, and a frame must decompress to
//!   exactly the size its seek-table entry announces.

mod digest;
mod metadata;
mod reader;
mod seek_table;
mod writer;

pub use digest::{frames_blake3_of, ContentDigest};
pub use metadata::{hostname, Metadata};
pub use reader::{ContainerReader, DEFAULT_CACHE_BYTES};
pub use writer::{ContainerWriter, Finished, WriteOptions};

/// Version of the container layout and metadata schema that this code writes.
///
/// Readers accept every version up to this one and refuse newer ones.
/// Version 2 records the BLAKE3 frame-manifest digest (`content_frames_blake3`); version 1
/// recorded the sha256 of the whole content (`content_sha256`).
pub const FORMAT_VERSION: u32 = 2;

/// Default uncompressed size of a data frame: the unit of random access and of
/// parallel compression.
pub const DEFAULT_FRAME_SIZE: usize = 128 << 10;

/// Smallest frame size [`WriteOptions`] accepts.
pub const MIN_FRAME_SIZE: usize = 4 << 10;

/// Largest frame size [`WriteOptions`] accepts, and the largest decompressed size of a
/// frame that [`ContainerReader`] accepts.
pub const MAX_FRAME_SIZE: usize = 64 << 20;

/// Magic of a standard zstd frame (little-endian on disk).
const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// True when every byte is zero (vectorizes: no early exit inside a 64-byte block).
pub(crate) fn is_zero(data: &[u8]) -> bool {
    let mut blocks = data.chunks_exact(64);
    blocks.all(|b| b.iter().fold(0u8, |acc, &x| acc | x) == 0)
        && blocks.remainder().iter().all(|&x| x == 0)
}

/// Little-endian `u32` at `at` of `bytes`; `None` when it does not fit.
fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

#[cfg(test)]
mod tests;
