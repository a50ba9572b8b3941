//! Where a container's bytes go: a local file ([`OutputFile`]) or, outside this crate, an
//! upload to object storage. Either way the bytes become visible under the final name
//! only when [`Destination::commit`] succeeds; dropped before that, what was written is
//! thrown away.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::output_file::OutputFile;

/// A sink for one output, appended to in order, then committed, kept or discarded.
pub trait Destination: Send {
    /// Appends `bytes`.
    fn append(&mut self, bytes: &[u8]) -> Result<()>;
    /// Where the bytes go now (a temporary file, an upload), for messages.
    fn in_progress(&self) -> &Path;
    /// The name the output gets when complete.
    fn final_name(&self) -> &Path;
    /// Makes the output visible under its final name, whole.
    fn commit(self: Box<Self>) -> Result<PathBuf>;
    /// Keeps what was written as `NAME.partial`, when this destination can.
    fn keep_partial(self: Box<Self>) -> Result<PathBuf>;
    /// Throws away what was written.
    fn discard(self: Box<Self>) -> Result<()>;
}

impl Destination for OutputFile {
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        let temp = self.temp_path().to_path_buf();
        self.file_mut()
            .write_all(bytes)
            .map_err(|source| Error::Io {
                what: "write",
                path: temp,
                source,
            })
    }

    fn in_progress(&self) -> &Path {
        self.temp_path()
    }

    fn final_name(&self) -> &Path {
        self.final_path()
    }

    fn commit(self: Box<Self>) -> Result<PathBuf> {
        OutputFile::commit(*self)
    }

    fn keep_partial(self: Box<Self>) -> Result<PathBuf> {
        OutputFile::keep_partial(*self)
    }

    fn discard(self: Box<Self>) -> Result<()> {
        OutputFile::discard(*self)
    }
}
