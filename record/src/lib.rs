//! What a capture records beside guest memory: the `capture` object of a coroner
//! container's metadata, typed. The capture writes it, and every reader (status, the
//! analyses, the TUI, report) reads it through [`CaptureInfo::from_metadata`]; no other
//! crate picks its keys by name.
//!
//! Reading is tolerant: every field has a default, so older captures read unchanged, and
//! fields a newer coroner added are kept in [`CaptureInfo::extra`] and written back.

mod capture_info;
mod event;
mod log_tail;
mod qemu_version;
mod signature;

pub use capture_info::{CaptureInfo, LibvirtEvent, LibvirtRecord, RecordError, Timings, SCHEMA};
pub use event::Event;
pub use log_tail::LogTail;
pub use qemu_version::QemuVersion;
pub use signature::{
    signature_path, Signature, SIGNATURE_MAX_BYTES, SIGNATURE_SCHEMA, SIGNATURE_SUFFIX,
};
