//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading or writing a dump.
///
/// Variants carry the offending value and where it was found. Messages are short,
/// lowercase and name the place (file offset, frame, note) in the input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call on a file failed.
    #[error("cannot {what} {}", path.display())]
    Io {
        /// What was being done ("open", "read", "write", "rename", ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A read or write on a stream that has no path (a pipe, a socket) failed.
    #[error("cannot {what}")]
    Stream {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The input ends before a structure it announces.
    #[error("truncated: {needed} bytes needed at offset {offset:#x}, input has {size}")]
    Truncated {
        /// Where the structure starts.
        offset: u64,
        /// How many bytes it needs.
        needed: u64,
        /// How many bytes the input has.
        size: u64,
    },
    /// The first bytes match no format this crate reads.
    #[error("unknown format: the first bytes {} are not those of a memory dump coroner reads (an ELF core from qemu's dump-guest-memory, or a .core.zst container)", hex_bytes(found))]
    UnknownFormat {
        /// The first bytes of the input.
        found: [u8; 4],
    },
    /// A file of a known kind that is not (or not yet) a dump coroner reads.
    #[error("this is {what}: {advice}")]
    OtherFormat {
        /// What the file is.
        what: &'static str,
        /// What to do instead.
        advice: &'static str,
    },
    /// An ELF header field has a value no qemu dump has.
    #[error("ELF header: {field} is {value:#x}, {expected}")]
    ElfHeader {
        /// The field name (`e_type`, `e_machine`, ...).
        field: &'static str,
        /// The value found.
        value: u64,
        /// What was expected instead.
        expected: &'static str,
    },
    /// A program header is inconsistent with the file.
    #[error("program header {index}: {reason}")]
    ProgramHeader {
        /// Index of the program header.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An ELF note is malformed.
    #[error("note at offset {offset:#x}: {reason}")]
    Note {
        /// File offset of the note header.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A kdump-compressed dump's header, bitmaps, page descriptors or pages are
    /// inconsistent, or its flattened records are.
    #[error("kdump-compressed dump at offset {offset:#x}: {reason}")]
    Kdump {
        /// File offset of the structure (in the rearranged file, for a flattened one).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The container's seek table or frame layout is inconsistent.
    #[error("container: {reason}")]
    Container {
        /// What is wrong.
        reason: String,
    },
    /// A zstd frame of the container failed to decompress.
    #[error("container frame {frame} at offset {offset:#x}: {reason}")]
    Frame {
        /// Index of the frame in the seek table.
        frame: usize,
        /// File offset of the frame.
        offset: u64,
        /// What went wrong.
        reason: String,
    },
    /// The container's metadata frame is not valid JSON of a known version.
    #[error("container metadata at offset {offset:#x}: {reason}")]
    Metadata {
        /// File offset of the metadata frame.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The decompressed bytes do not match the checksum recorded at capture time.
    #[error("checksum mismatch: metadata's {field} is {expected}, the content gives {found}")]
    Checksum {
        /// The metadata field that records the digest.
        field: &'static str,
        /// The recorded digest, hex.
        expected: String,
        /// The computed digest, hex.
        found: String,
    },
    /// The operation was interrupted by the user.
    #[error("interrupted")]
    Interrupted,
    /// A request to a remote destination (an object store) failed.
    #[error("cannot {what} {location}: {message}")]
    Remote {
        /// What was being done ("upload", "complete the upload of", ...).
        what: &'static str,
        /// The destination (`s3://BUCKET/KEY`).
        location: String,
        /// The cause, as the client says it.
        message: String,
    },
}

/// Bytes as `28 b5 2f fd`.
fn hex_bytes(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
