//! Talking to a (frozen) qemu: the QMP client.
//!
//! ```no_run
//! use std::time::Duration;
//! use coroner_capture::{Qmp, QmpAddress};
//! # fn main() -> Result<(), coroner_capture::Error> {
//! let mut qmp = Qmp::connect(&QmpAddress::parse("/run/vm1.qmp")?, Duration::from_secs(10))?;
//! println!("run state: {}", qmp.run_state()?);
//! # Ok(()) }
//! ```
//!
//! **Architecture Invariant:** only this crate speaks QMP. It never resumes, resets or
//! modifies a frozen guest.
#![deny(missing_docs)]

mod address;
mod error;
mod qmp;

pub use address::QmpAddress;
pub use error::{Error, Result};
pub use qmp::{Event, QemuVersion, Qmp};
