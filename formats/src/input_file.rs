//! Opening an input: only a regular file is a dump. A FIFO, a socket or a device would
//! block `open` or a read forever, or has no size; a directory is no file. Opened with
//! `O_NONBLOCK` (so a FIFO cannot block the open itself), then checked with `fstat`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// What a file that is not a regular file is, in words.
fn kind_of(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading when it is a regular file, else an error that says what it is.
pub fn open_regular(path: &Path) -> Result<File> {
    let io = |what: &'static str| {
        let path = path.to_path_buf();
        move |source| Error::Io { what, path, source }
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(io("open"))?;
    let meta = file.metadata().map_err(io("stat"))?;
    if !meta.file_type().is_file() {
        return Err(io("open")(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "it is {}; coroner reads dump files (save a stream to a file first)",
                kind_of(meta.file_type())
            ),
        )));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_and_directories_are_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .unwrap();
        for (p, what) in [(fifo.as_path(), "FIFO"), (d.path(), "directory")] {
            match open_regular(p) {
                Err(Error::Io { source, .. }) => {
                    assert!(source.to_string().contains(what), "{source}")
                }
                other => panic!("{other:?}"),
            }
        }
        let f = d.path().join("f");
        std::fs::write(&f, "x").unwrap();
        assert!(open_regular(&f).is_ok());
    }
}
