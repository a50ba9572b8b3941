//! qemu's log: KVM error reports, register dumps, machine-check lines, and the whole
//! log-only `exit` analysis over them.

use coroner_analyze::{exit_from_log, parse_qemu_log, LogTail};

/// Parses `data` as a qemu log and explains the KVM report in it, as `coroner exit
/// --qemu-log` does.
pub fn qemu_log(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = parse_qemu_log(&text);
    let r = exit_from_log(&LogTail::of_text(text, "fuzz".into()));
    crate::invariants::terminal_safe(&r.verdict);
    for line in &r.explanation {
        crate::invariants::terminal_safe(line);
    }
}
