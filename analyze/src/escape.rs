//! Escaping guest-controlled text before it reaches a terminal.
//!
//! A guest writes whatever it likes into its kernel log and notes, including escape
//! sequences that would recolor, retitle or rewrite an operator's terminal.

use std::borrow::Cow;
use std::fmt::Write;

/// Returns `s` with every control character (C0, DEL, C1) except `\n` and `\t` written
/// as a visible escape: `\e` for ESC, `\r`, `\xNN` or `\u{NNNN}` otherwise.
pub fn escape_control(s: &str) -> Cow<'_, str> {
    let bad =
        |c: char| (c.is_control() && c != '\n' && c != '\t') || c == '\u{2028}' || c == '\u{2029}';
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\x1b' => out.push_str("\\e"),
            '\r' => out.push_str("\\r"),
            c if bad(c) && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if bad(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The longest text [`escape_short`] shows of one field, in bytes.
pub const SHORT_FIELD: usize = 512;

/// A one-line field (a tool name, an origin, a reason) fit for a terminal: escaped like
/// [`escape_control`] (newlines too), and cut at `SHORT_FIELD` (512) bytes with a note of
/// how much was left out, so a hostile file cannot flood the screen or memory.
pub fn escape_short(s: &str) -> String {
    let mut cut = s.len().min(SHORT_FIELD);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let shown = escape_control(&s[..cut])
        .replace('\n', "\\n")
        .replace('\t', "\\t");
    if cut < s.len() {
        format!("{shown}… ({} bytes more)", s.len() - cut)
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_fields_are_escaped_and_cut() {
        assert_eq!(escape_short("a\x1bb\nc"), "a\\eb\\nc");
        let long = "é".repeat(1000);
        let s = escape_short(&long);
        assert!(s.len() < SHORT_FIELD + 40, "{}", s.len());
        assert!(s.ends_with("(1488 bytes more)"), "{s}");
    }

    #[test]
    fn escapes_terminal_controls_keeps_text() {
        assert!(matches!(
            escape_control("Linux 6.1\tok\n"),
            Cow::Borrowed(_)
        ));
        assert_eq!(escape_control("a\x1b]0;pwned\x07b"), "a\\e]0;pwned\\x07b");
        assert_eq!(escape_control("x\u{9b}31m\r"), "x\\x9b31m\\r");
        assert_eq!(escape_control("é"), "é");
    }
}
