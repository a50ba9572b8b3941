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

#[allow(clippy::panic)]
fn unreachable_control(c: char) -> ! {
    panic!("escaped text still holds control character {:?}", c)
}
