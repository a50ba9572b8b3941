//! The terminal UI's widgets, over `analyze`'s reports and raw guest memory.
//!
//! ```no_run
//! # use coroner_formats::{PhysAddr, SliceMem};
//! # let mem = SliceMem::new(vec![]);
//! let view = coroner_tui::HexView::new(&mem, PhysAddr(0x1000));
//! // frame.render_widget(view, area);
//! # let _ = view;
//! ```
//!
//! **Architecture Invariant:** crossterm and ratatui appear only in this crate, and no
//! guest byte reaches the terminal unescaped.
#![deny(missing_docs)]

mod hex_view;

pub use hex_view::{HexView, ROW_BYTES};
