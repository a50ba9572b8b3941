//! End-to-end tests: the `coroner` binary against real files, and real qemu guests from
//! the guest kit (`samples/kit`). Under `CI=true` a missing kit fails instead of skipping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod architecture;
mod capture;
mod cli;
mod exit;
mod fake_qmp;
mod guest;
mod ha;
mod kdump;
mod kernel;
mod libvirt;
mod mce;
mod objstore;
mod samples;
mod slim;
mod status;
mod triage;
mod tui;
mod upload;
mod util;
mod watch;
