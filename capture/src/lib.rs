//! Talking to a (frozen) qemu: the QMP client and the capture pipeline.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use coroner_capture::{capture, CaptureOptions, QmpAddress};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let opts = CaptureOptions::new(QmpAddress::parse("/run/vm1.qmp")?, "vm1.core.zst".into());
//! let done = capture(&opts, &coroner_formats::NoProgress, &AtomicBool::new(false))?;
//! println!("{} bytes of ELF captured", done.finished.content_size);
//! # Ok(()) }
//! ```
//!
//! **Architecture Invariant:** only this crate speaks QMP. It never resumes, resets or
//! modifies a frozen guest.
#![deny(missing_docs)]

mod address;
mod capture;
mod capture_domain;
mod capture_error;
mod destination;
mod domain_events;
mod error;
mod event_queue;
mod guest_match;
mod head_source;
mod health;
mod judge;
mod libvirt;
mod local_process;
mod qmp;
mod receipt;
mod run_state;
mod state_file;
mod status;
mod stream;
mod watch;

pub use address::QmpAddress;
pub use capture::{capture, capture_with, CaptureOptions, Captured, DumpFormat};
pub use capture_domain::{capture_domain, DomainOptions};
pub use capture_error::CaptureError;
pub use coroner_record::{CaptureInfo, Event, LogTail, QemuVersion, Timings};
pub use error::{Error, Result};
pub use health::Health;
pub use libvirt::{active_domains, Domain, DomainState, VirshError, DEFAULT_URI};
pub use qmp::Qmp;
pub use receipt::{Receipt, RECEIPT_SUFFIX};
pub use run_state::RunState;
pub use state_file::{WatchState, STATE_DIR};
pub use status::{status, status_domain, Status};
pub use watch::{
    safe_name, watch, watch_domain, DomainWatchOptions, LogLevel, Notice, NoticeKind, Triggers,
    WatchEnd, WatchOptions, WatchSink, DEFAULT_TRIGGERS, MEMORY_FAILURE,
};
