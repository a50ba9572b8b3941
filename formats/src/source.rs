//! Random-access byte sources: the bytes of an ELF core, wherever they live.
//!
//! A plain ELF is memory-mapped; a `.core.zst` container decompresses frames on demand.
//! Both implement [`ByteSource`], so the ELF parser and [`crate::CoreMem`] are written once.

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};

/// Bytes addressed by offset, readable from several threads at once.
///
/// | implementation | cost of a read | notes |
/// |---|---|---|
/// | [`MappedFile`] | a `memcpy` | the plain ELF as qemu wrote it |
/// | [`crate::ContainerReader`] | a frame decompression on a cache miss | `.core.zst` |
/// | `[u8]` / `Vec<u8>` | a `memcpy` | tests |
pub trait ByteSource: Send + Sync {
    /// Total number of bytes.
    fn len(&self) -> u64;

    /// Fills `buf` with the bytes at `offset`; fails if any of them lies past [`len`](Self::len).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// True when the source holds no byte.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the bytes from `offset` on are known to be zero without reading them (a
    /// container's shared zero frames), the end of that known-zero run; else `None`.
    /// Wide searches skip such runs: they cost nothing however large a file claims them.
    fn zero_run_end(&self, _offset: u64) -> Option<u64> {
        None
    }
}

/// Checks that `[offset, offset + len)` lies inside a source of `total` bytes.
pub(crate) fn check_bounds(offset: u64, len: usize, total: u64) -> Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= total => Ok(()),
        _ => Err(Error::Truncated {
            offset,
            needed: len as u64,
            size: total,
        }),
    }
}

impl ByteSource for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(offset, buf.len(), ByteSource::len(self))?;
        let start = offset as usize;
        buf.copy_from_slice(&self[start..start + buf.len()]);
        Ok(())
    }
}

impl ByteSource for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        ByteSource::read_at(self.as_slice(), offset, buf)
    }
}

/// A read-only memory map of a whole file.
pub struct MappedFile {
    map: memmap2::Mmap,
}

impl MappedFile {
    /// Maps `path` read-only.
    pub fn open(path: &Path) -> Result<Self> {
        let file = crate::input_file::open_regular(path)?;
        Self::from_file(&file, path)
    }

    /// Maps an already open file; `path` is only used in error messages.
    pub fn from_file(file: &File, path: &Path) -> Result<Self> {
        // SAFETY: the map is read-only. Another process truncating the file while it is
        // mapped would raise SIGBUS; dumps are written once and then only read, and the
        // alternative (reading gigabytes into memory) is worse.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(file) }.map_err(|source| Error::Io {
            what: "map",
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self { map })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}

impl ByteSource for MappedFile {
    fn len(&self) -> u64 {
        self.map.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        ByteSource::read_at(&self.map[..], offset, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_reads_inside_and_refuses_past_end() {
        let data: Vec<u8> = (0..16).collect();
        let mut buf = [0u8; 4];
        data.read_at(12, &mut buf).unwrap();
        assert_eq!(buf, [12, 13, 14, 15]);
        assert!(matches!(
            data.read_at(13, &mut buf),
            Err(Error::Truncated {
                offset: 13,
                needed: 4,
                size: 16
            })
        ));
        assert!(data.read_at(u64::MAX, &mut buf).is_err());
    }
}
