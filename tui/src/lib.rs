//! The terminal UI: browse a capture offline. It lays out what `analyze` computed (the
//! report, the kernel log, the MCE and exit-reason analyses, vCPU state) and reads guest
//! memory only for the rows it draws.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! let core = coroner_formats::open(std::path::Path::new("vm1.core.zst")).map_err(std::io::Error::other)?;
//! coroner_tui::run(&core, "vm1.core.zst".into())?;
//! # Ok(()) }
//! ```
//!
//! **Architecture Invariant:** crossterm and ratatui appear only in this crate, and no
//! guest byte reaches the terminal unescaped.
#![deny(missing_docs)]

mod app;
mod hex_view;
mod model;
mod pane;
mod panes;
mod sanitize;
mod terminal;
#[cfg(test)]
mod testutil;

pub use app::App;
pub use hex_view::{HexView, ROW_BYTES};
pub use model::Model;
pub use pane::{Direction, Outcome, Pane};
pub use panes::all_panes;
pub use sanitize::sanitize;
pub use terminal::{draw_rows, render_screens, run, Screen};
