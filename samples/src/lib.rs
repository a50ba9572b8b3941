//! Sample captures and the guest kit that makes them.
//!
//! [`kit`] drives `samples/kit/boot.sh` from Rust: boot a real Linux guest under qemu,
//! wait until it is ready, freeze it by a chosen scenario, and leave it frozen for a test
//! or a benchmark. qemu is killed when the [`kit::Guest`] is dropped, also on panic.
//!
//! ```no_run
//! use coroner_samples::kit::{Guest, GuestOptions, Scenario};
//! # fn main() -> Result<(), coroner_samples::kit::KitError> {
//! let mut guest = Guest::boot(&GuestOptions::default())?;
//! let state = guest.freeze(Scenario::Panic)?;
//! assert_eq!(state, "guest-panicked");
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod baremetal;
pub mod bench;
pub mod cutting_proxy;
pub mod kit;
pub mod libvirt_guest;
pub mod s3_server;
