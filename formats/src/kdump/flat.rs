//! makedumpfile's flattened format (`makedumpfile -F`, qemu's `kdump-*` formats): a 4 KiB
//! header (`"makedumpfile"`, type 1, version 1, big-endian), then records of `{be64
//! offset, be64 size}` and `size` bytes, each to be placed at `offset` of the rearranged
//! file, in any order, later ones overriding earlier ones, ending with `{-1, -1}`. Read
//! in place through a map of the records (one pass over their headers), not rewritten:
//! [`FlatFile`] is the rearranged file, holes read as zeros.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::source::ByteSource;

/// The flattened header's size (`MAX_SIZE_MDF_HEADER`).
const FLAT_HEADER: u64 = 4096;
/// Records accepted at most, so a hostile file cannot make the map huge (each costs
/// about 50 bytes): qemu writes 16 KiB records (6,237 for an 8 GiB guest), so this is
/// a 256 GiB dump's worth.
const MAX_RECORDS: usize = 1 << 24;

/// One stretch of the rearranged file: `[start, end)` there is at `file_offset` of the
/// flattened file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    start: u64,
    end: u64,
    file_offset: u64,
}

/// The rearranged file a flattened one describes.
pub struct FlatFile {
    src: Arc<dyn ByteSource>,
    /// Non-overlapping, sorted by `start` (later records already applied over earlier).
    pieces: Vec<Piece>,
    len: u64,
}

impl FlatFile {
    /// Maps the records of the flattened file in `src`.
    pub fn open(src: Arc<dyn ByteSource>) -> Result<FlatFile> {
        let size = src.len();
        let mut head = [0u8; 32];
        if size < FLAT_HEADER {
            return Err(Error::Kdump {
                offset: 0,
                reason: format!(
                    "the flattened file has {size} bytes, less than its {FLAT_HEADER}-byte header: truncated"
                ),
            });
        }
        src.read_at(0, &mut head)?;
        let be = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        if &head[..13] != b"makedumpfile\0" || be(&head[16..24]) != 1 || be(&head[24..32]) != 1 {
            return Err(Error::Kdump {
                offset: 0,
                reason: "not a flattened makedumpfile header (type 1, version 1)".into(),
            });
        }
        let mut records: Vec<Piece> = Vec::new();
        let mut at = FLAT_HEADER;
        loop {
            let mut rh = [0u8; 16];
            if at.checked_add(16).is_none_or(|e| e > size) {
                return Err(Error::Kdump {
                    offset: at,
                    reason: format!(
                        "the flattened records end without their end marker at {at:#x} of {size:#x} bytes: truncated"
                    ),
                });
            }
            src.read_at(at, &mut rh)?;
            let (offset, len) = (be(&rh[..8]), be(&rh[8..]));
            if offset == -1 && len == -1 {
                break;
            }
            let data = at + 16;
            let bad = |reason: String| Error::Kdump { offset: at, reason };
            let (Ok(offset), Ok(len)) = (u64::try_from(offset), u64::try_from(len)) else {
                return Err(bad(format!("flattened record of {len} bytes at {offset}")));
            };
            let end = offset.checked_add(len);
            if len == 0 || end.is_none() || data.checked_add(len).is_none_or(|e| e > size) {
                return Err(bad(format!(
                    "flattened record of {len:#x} bytes for offset {offset:#x} runs past the end of the file ({size:#x} bytes): truncated"
                )));
            }
            if records.len() >= MAX_RECORDS {
                return Err(bad(format!(
                    "more than {MAX_RECORDS} flattened records: rearrange the file with makedumpfile -R and open that"
                )));
            }
            records.push(Piece {
                start: offset,
                end: offset + len,
                file_offset: data,
            });
            at = data + len;
        }
        let pieces = overlay(&records);
        let len = pieces.last().map_or(0, |p| p.end);
        Ok(FlatFile { src, pieces, len })
    }
}

/// The pieces of `records` applied in order (a later record wins where they overlap),
/// as sorted, disjoint pieces.
fn overlay(records: &[Piece]) -> Vec<Piece> {
    // Sorted by start; overlaps are rare (qemu and makedumpfile rewrite a few header
    // blocks), so each record cuts the few pieces it covers.
    let mut out: std::collections::BTreeMap<u64, Piece> = std::collections::BTreeMap::new();
    for r in records {
        let covered: Vec<u64> = out
            .range(..r.end)
            .rev()
            .take_while(|(_, p)| p.end > r.start)
            .map(|(&k, _)| k)
            .collect();
        for k in covered {
            let Some(p) = out.remove(&k) else { continue };
            if p.start < r.start {
                out.insert(p.start, Piece { end: r.start, ..p });
            }
            if p.end > r.end {
                out.insert(
                    r.end,
                    Piece {
                        start: r.end,
                        end: p.end,
                        file_offset: p.file_offset + (r.end - p.start),
                    },
                );
            }
        }
        out.insert(r.start, *r);
    }
    out.into_values().collect()
}

impl ByteSource for FlatFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        crate::source::check_bounds(offset, buf.len(), self.len)?;
        let mut at = offset;
        let end = offset + buf.len() as u64;
        // The first piece that ends after `at`.
        let mut i = self.pieces.partition_point(|p| p.end <= at);
        while at < end {
            let out = &mut buf[(at - offset) as usize..];
            match self.pieces.get(i) {
                Some(p) if p.start <= at => {
                    let n = (p.end.min(end) - at) as usize;
                    self.src
                        .read_at(p.file_offset + (at - p.start), &mut out[..n])?;
                    at += n as u64;
                    i += 1;
                }
                // A hole: zeros up to the next piece.
                next => {
                    let stop = next.map_or(end, |p| p.start.min(end));
                    let n = (stop - at) as usize;
                    out[..n].fill(0);
                    at = stop;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(records: &[(u64, &[u8])]) -> Vec<u8> {
        let mut f = vec![0u8; 4096];
        f[..12].copy_from_slice(b"makedumpfile");
        f[16..24].copy_from_slice(&1i64.to_be_bytes());
        f[24..32].copy_from_slice(&1i64.to_be_bytes());
        for (off, data) in records {
            f.extend_from_slice(&(*off as i64).to_be_bytes());
            f.extend_from_slice(&(data.len() as i64).to_be_bytes());
            f.extend_from_slice(data);
        }
        f.extend_from_slice(&(-1i64).to_be_bytes());
        f.extend_from_slice(&(-1i64).to_be_bytes());
        f
    }

    fn read(f: &FlatFile, off: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0xaa; n];
        f.read_at(off, &mut b).unwrap();
        b
    }

    #[test]
    fn records_in_any_order_later_ones_win_holes_are_zero() {
        let bytes = flat(&[(10, b"world"), (0, b"hello"), (12, b"RL"), (20, b"!")]);
        let f = FlatFile::open(Arc::new(bytes)).unwrap();
        assert_eq!(f.len(), 21);
        assert_eq!(read(&f, 0, 21), b"hello\0\0\0\0\0woRLd\0\0\0\0\0!");
        assert_eq!(read(&f, 11, 3), b"oRL");
        assert!(f.read_at(20, &mut [0u8; 2]).is_err());
    }

    #[test]
    fn overlapping_records_cut_earlier_ones() {
        let bytes = flat(&[(0, b"abcdefgh"), (2, b"XY"), (7, b"Z12")]);
        let f = FlatFile::open(Arc::new(bytes)).unwrap();
        assert_eq!(read(&f, 0, 10), b"abXYefgZ12");
    }

    #[test]
    fn truncated_and_hostile_records_are_errors() {
        let good = flat(&[(0, b"hello")]);
        // No end marker.
        let cut = &good[..good.len() - 16];
        assert!(FlatFile::open(Arc::new(cut.to_vec())).is_err());
        // A record longer than the file.
        let mut long = good.clone();
        long[4096 + 8..4096 + 16].copy_from_slice(&(1i64 << 40).to_be_bytes());
        let e = FlatFile::open(Arc::new(long)).err().unwrap();
        assert!(e.to_string().contains("runs past the end"), "{e}");
        // A negative offset.
        let mut neg = good.clone();
        neg[4096..4104].copy_from_slice(&(-5i64).to_be_bytes());
        assert!(FlatFile::open(Arc::new(neg)).is_err());
        // Not a flattened header.
        let mut other = good;
        other[16..24].copy_from_slice(&2i64.to_be_bytes());
        assert!(FlatFile::open(Arc::new(other)).is_err());
    }
}
