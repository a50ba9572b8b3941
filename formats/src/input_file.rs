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

/// The small file at `path`, read whole when it has at most `limit` bytes: never through
/// a symlink (a planted one is refused), and never more than `limit` bytes.
pub fn read_small(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let io = |what: &'static str| {
        let path = path.to_path_buf();
        move |source| Error::Io { what, path, source }
    };
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::NONBLOCK
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| io("open")(e.into()))?;
    let file = File::from(fd);
    let meta = file.metadata().map_err(io("stat"))?;
    if !meta.file_type().is_file() {
        return Err(io("open")(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {}", kind_of(meta.file_type())),
        )));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io("read"))?;
    if bytes.len() as u64 > limit {
        return Err(io("read")(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it has more than {limit} bytes"),
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_are_read_bounded_and_never_through_a_link() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_small(&f, 5).unwrap(), b"12345");
        assert!(read_small(&f, 4).is_err());
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(read_small(&link, 5).is_err());
        assert!(read_small(d.path(), 5).is_err());
    }

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
