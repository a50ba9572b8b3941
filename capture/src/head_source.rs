//! The first bytes of a stream, kept so the ELF headers of a streamed dump can be parsed
//! and checked before the container is declared complete.

use coroner_formats::{ByteSource, Error};

/// A [`ByteSource`] of `total` bytes of which only the first `head.len()` are held;
/// reads beyond them fail as truncated (headers and notes always sit at the start).
pub struct HeadSource {
    /// The first bytes of the stream.
    pub head: Vec<u8>,
    /// The length of the whole stream.
    pub total: u64,
}

impl ByteSource for HeadSource {
    fn len(&self) -> u64 {
        self.total
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        ByteSource::read_at(&self.head, offset, buf).map_err(|_| Error::Truncated {
            offset,
            needed: buf.len() as u64,
            size: self.head.len() as u64,
        })
    }
}
