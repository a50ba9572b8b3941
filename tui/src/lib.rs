//! coroner-tui
