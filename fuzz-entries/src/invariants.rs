//! Checks every entry makes of what it produced.

use coroner_analyze::escape_control;

/// Text shown on a terminal after escaping has no control byte but newline and tab.
pub fn terminal_safe(text: &str) {
    let shown = escape_control(text);
    if let Some(c) = shown
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
    {
        unreachable_control(c);
    }
}

/// A row the terminal UI drew (it escapes as it draws) has no control character at all.
pub fn drawn_safe(row: &str) {
    if let Some(c) = row.chars().find(|&c| c.is_control()) {
        unreachable_control(c);
    }
}

#[allow(clippy::panic)]
fn unreachable_control(c: char) -> ! {
    panic!("text for a terminal still holds control character {:?}", c)
}
