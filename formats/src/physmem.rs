//! [`PhysMem`]: the one way every analysis reads guest-physical memory.

use crate::addr::{PhysAddr, PhysRange};
use crate::error::Error;

/// Why a read of guest-physical memory gave no bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemError {
    /// The address is not in the dump: a hole (MMIO, the PCI window), past the end of
    /// RAM, or a page a slim capture dropped. Not zeros: absent.
    #[error("guest-physical address {addr} is not present in the dump")]
    NotPresent {
        /// The first absent address of the read.
        addr: PhysAddr,
    },
    /// The dump itself could not be read there (I/O error, corrupt frame).
    #[error("cannot read guest-physical address {addr}")]
    Read {
        /// The address whose read failed.
        addr: PhysAddr,
        /// The cause.
        #[source]
        source: Error,
    },
}

/// Guest-physical memory, readable by address from several threads at once.
///
/// | implementation | backing | cost of a read |
/// |---|---|---|
/// | [`crate::CoreMem`] over [`crate::MappedFile`] | plain ELF, memory-mapped | `memcpy` |
/// | [`crate::CoreMem`] over [`crate::ContainerReader`] | `.core.zst`, frame cache | decompression on a miss |
/// | [`SliceMem`] | ranges held in memory | `memcpy` (tests) |
pub trait PhysMem: Send + Sync {
    /// Fills `buf` with the bytes at `addr`. A read that touches any absent byte fails
    /// with [`MemError::NotPresent`] naming the first one.
    fn read_at(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError>;

    /// The present ranges, sorted by address, not overlapping.
    fn ranges(&self) -> &[PhysRange];

    /// Reads a little-endian `u64`.
    fn read_u64_le(&self, addr: PhysAddr) -> Result<u64, MemError> {
        let mut b = [0u8; 8];
        self.read_at(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads a little-endian `u32`.
    fn read_u32_le(&self, addr: PhysAddr) -> Result<u32, MemError> {
        let mut b = [0u8; 4];
        self.read_at(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Turns page recording on or off for a wide search (see [`crate::RecordingMem`]);
    /// returns the previous state, to restore it. Memory that records nothing ignores it.
    fn set_recording(&self, _on: bool) -> bool {
        false
    }

    /// When the memory from `addr` on is known to be zero without reading it, the end of
    /// that known-zero run (see [`crate::ByteSource::zero_run_end`]); else `None`.
    fn zero_run_end(&self, _addr: PhysAddr) -> Option<PhysAddr> {
        None
    }

    /// True when every byte of `[addr, addr + len)` is present.
    fn is_present(&self, addr: PhysAddr, len: u64) -> bool {
        first_absent(self.ranges(), addr, len).is_none()
    }

    /// Total bytes present.
    fn present_bytes(&self) -> u64 {
        self.ranges().iter().map(PhysRange::len).sum()
    }
}

/// The first address of `[addr, addr + len)` not covered by `ranges` (sorted, disjoint).
pub(crate) fn first_absent(ranges: &[PhysRange], addr: PhysAddr, len: u64) -> Option<PhysAddr> {
    // A read past the top of the address space: no range (end exclusive) holds the last
    // byte, so that byte at least is absent.
    let (end, wraps) = match addr.0.checked_add(len) {
        Some(e) => (e, false),
        None => (u64::MAX, true),
    };
    let mut at = addr.0;
    let mut i = ranges.partition_point(|r| r.end.0 <= at);
    while at < end {
        match ranges.get(i) {
            Some(r) if r.start.0 <= at => {
                at = r.end.0;
                i += 1;
            }
            _ => return Some(PhysAddr(at)),
        }
    }
    wraps.then_some(PhysAddr(u64::MAX))
}

/// Guest memory held in memory: the reference [`PhysMem`], for tests.
#[derive(Debug, Default, Clone)]
pub struct SliceMem {
    ranges: Vec<PhysRange>,
    data: Vec<Vec<u8>>,
}

impl SliceMem {
    /// Builds from `(start, bytes)` pieces. Pieces must not overlap.
    pub fn new(mut pieces: Vec<(PhysAddr, Vec<u8>)>) -> Self {
        pieces.sort_by_key(|(a, _)| *a);
        let ranges = pieces
            .iter()
            .map(|(a, d)| PhysRange {
                start: *a,
                end: PhysAddr(a.0.saturating_add(d.len() as u64)),
            })
            .collect();
        let data = pieces.into_iter().map(|(_, d)| d).collect();
        Self { ranges, data }
    }
}

impl PhysMem for SliceMem {
    fn read_at(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        if let Some(missing) = first_absent(&self.ranges, addr, buf.len() as u64) {
            return Err(MemError::NotPresent { addr: missing });
        }
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.0 + done as u64;
            let i = self.ranges.partition_point(|r| r.end.0 <= at);
            let (r, d) = (&self.ranges[i], &self.data[i]);
            let off = (at - r.start.0) as usize;
            let n = (buf.len() - done).min(d.len() - off);
            buf[done..done + n].copy_from_slice(&d[off..off + n]);
            done += n;
        }
        Ok(())
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> SliceMem {
        SliceMem::new(vec![
            (PhysAddr(0x2000), vec![2; 0x1000]),
            (PhysAddr(0x0), vec![1; 0x1000]),
            (PhysAddr(0x1000), vec![3; 0x10]),
        ])
    }

    #[test]
    fn reads_at_the_top_of_the_address_space_are_absent() {
        let top = SliceMem::new(vec![(PhysAddr(u64::MAX - 0x10), vec![7; 0x10])]);
        let mut b = [0u8; 1];
        assert!(top.read_at(PhysAddr(u64::MAX - 1), &mut b).is_ok());
        assert!(matches!(
            top.read_at(PhysAddr(u64::MAX), &mut b),
            Err(MemError::NotPresent {
                addr: PhysAddr(u64::MAX)
            })
        ));
        let mut two = [0u8; 2];
        assert!(top.read_at(PhysAddr(u64::MAX - 1), &mut two).is_err());
        assert!(mem().read_at(PhysAddr(u64::MAX), &mut b).is_err());
    }

    #[test]
    fn reads_across_adjacent_ranges() {
        let m = mem();
        let mut b = [0u8; 4];
        m.read_at(PhysAddr(0xffe), &mut b).unwrap();
        assert_eq!(b, [1, 1, 3, 3]);
    }

    #[test]
    fn absent_bytes_are_an_error_not_zeros() {
        let m = mem();
        let mut b = [0u8; 4];
        let err = m.read_at(PhysAddr(0x100e), &mut b).unwrap_err();
        assert!(matches!(err, MemError::NotPresent { addr } if addr == PhysAddr(0x1010)));
        assert!(!m.is_present(PhysAddr(0x3000), 1));
        assert!(m.is_present(PhysAddr(0x2000), 0x1000));
        assert_eq!(m.present_bytes(), 0x2010);
    }
}
