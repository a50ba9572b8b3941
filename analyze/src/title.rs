//! A crash title in the style of syzkaller's (`pkg/report`): one stable line that names
//! the kind of failure and the function it happened in ("BUG: unable to handle kernel
//! NULL pointer dereference in F", "kernel panic: REASON in F", "BUG: soft lockup in F",
//! "INFO: task hung in F"), with addresses and numbers replaced (`ADDR`, `NUM`), so that
//! guests that died the same way get the same title.

use crate::stuck::Stuck;
use crate::triage::Triage;

/// Titles are cut to this many characters, as syzkaller's are.
const MAX_TITLE: usize = 120;

/// Frames of the panic machinery itself: the title names the first frame below them.
const PANIC_FRAMES: [&str; 12] = [
    "panic",
    "vpanic",
    "dump_stack",
    "dump_stack_lvl",
    "show_stack",
    "atomic_notifier_call_chain",
    "notifier_call_chain",
    "pvpanic_panic_notify",
    "oops_end",
    "die",
    "do_exit",
    "make_task_dead",
];

/// The title of a dump: the oops the log names first (the cause of a panic after it), a
/// warning that ended in a panic, the panic's reason and the function that called
/// `panic()`, else what a quiet guest is stuck on. `panic_frames` is the panicking CPU's
/// backtrace, for a panic whose log kept no Call Trace.
pub fn title(triage: &Triage, stuck: Option<&Stuck>, panic_frames: &[String]) -> Option<String> {
    let raw = oops_title(triage)
        .or_else(|| triage.panic.as_ref().and_then(|_| warning_title(triage)))
        .or_else(|| panic_title(triage, panic_frames))
        .or_else(|| stuck.and_then(Stuck::signature))
        .or_else(|| warning_title(triage))?;
    Some(sanitize(&raw))
}

/// "KIND in F" for the first oops header, F from the `RIP:` line after it.
fn oops_title(t: &Triage) -> Option<String> {
    let oops = t.oopses.first()?;
    let header = oops.text.trim();
    let header = header.strip_prefix("watchdog: ").unwrap_or(header);
    let kind = if header.starts_with("BUG: kernel NULL pointer dereference") {
        "BUG: unable to handle kernel NULL pointer dereference".to_string()
    } else if header.starts_with("BUG: unable to handle page fault")
        || header.starts_with("BUG: unable to handle kernel paging request")
    {
        "BUG: unable to handle kernel paging request".to_string()
    } else if header.starts_with("BUG: soft lockup") {
        "BUG: soft lockup".to_string()
    } else if header.starts_with("kernel BUG at ") {
        "kernel BUG".to_string()
    } else if header.starts_with("general protection fault") {
        "general protection fault".to_string()
    } else if let Some(rest) = header.strip_prefix("BUG: ") {
        // "BUG: scheduling while atomic: sh/1/0x00000002" -> "BUG: scheduling while atomic"
        format!("BUG: {}", rest.split(':').next().unwrap_or(rest).trim())
    } else {
        // "invalid opcode: 0000 [#1] SMP" -> "invalid opcode"
        header
            .split(':')
            .next()
            .unwrap_or(header)
            .trim()
            .to_string()
    };
    let rip = t
        .rips
        .iter()
        .find(|r| r.seq >= oops.seq)
        .and_then(|r| function_of(r.text.trim().trim_start_matches("RIP: ")));
    Some(match rip {
        Some(f) => format!("{kind} in {f}"),
        None => kind,
    })
}

/// "WARNING in F" from the first `WARNING: CPU: N PID: N at FILE:LINE F+0x../0x..`.
fn warning_title(t: &Triage) -> Option<String> {
    let w = t.warnings.first()?;
    let f = w
        .text
        .rsplit(' ')
        .find(|word| word.contains("+0x"))
        .and_then(function_of);
    Some(match f {
        Some(f) => format!("WARNING in {f}"),
        None => "WARNING".into(),
    })
}

/// "kernel panic: REASON in F", F the first frame below the panic machinery of the log's
/// Call Trace after the panic line, else of the panicking CPU's backtrace.
fn panic_title(t: &Triage, panic_frames: &[String]) -> Option<String> {
    let p = t.panic.as_ref()?;
    if p.text.contains("achine check") {
        return Some(format!("kernel panic: {}", p.text.trim()));
    }
    let logged = t
        .call_traces
        .iter()
        .find(|c| c.at.seq >= p.seq)
        .map(|c| c.frames.as_slice())
        .filter(|f| !f.is_empty());
    let f = logged
        .and_then(caller_of_panic)
        .or_else(|| caller_of_panic(panic_frames));
    Some(match f {
        Some(f) => format!("kernel panic: {} in {f}", p.text.trim()),
        None => format!("kernel panic: {}", p.text.trim()),
    })
}

/// The first reliable frame after the panic machinery's.
fn caller_of_panic(frames: &[String]) -> Option<String> {
    let names: Vec<String> = frames
        .iter()
        .map(|f| f.trim())
        .filter(|f| !f.starts_with('?') && !f.starts_with('<') && f.contains("+0x"))
        .filter_map(function_of)
        .collect();
    let after = names
        .iter()
        .rposition(|n| PANIC_FRAMES.contains(&base(n)))?;
    names.get(after + 1).cloned()
}

/// `func` of `func+0x1f/0x30 [module]` or `0010:func+0x1f/0x30`; `sys_`/`__x64_sys_`
/// prefixes taken off as syzkaller does.
fn function_of(frame: &str) -> Option<String> {
    let frame = frame.trim();
    let frame = frame.split_once(':').map_or(frame, |(cs, rest)| {
        if cs.len() == 4 && cs.bytes().all(|b| b.is_ascii_hexdigit()) {
            rest
        } else {
            frame
        }
    });
    let (name, rest) = frame.split_once('+')?;
    if name.is_empty() || !rest.starts_with("0x") || name.contains(' ') {
        return None;
    }
    let name = name
        .strip_prefix("__x64_sys_")
        .or_else(|| name.strip_prefix("__do_sys_"))
        .or_else(|| name.strip_prefix("__se_sys_"))
        .unwrap_or(name);
    Some(name.to_string())
}

/// A name without its compiler suffix (`.cold`, `.constprop.0`, `.isra.0`).
fn base(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// Hex numbers become `ADDR`, decimal ones `NUM` (not inside names), at most 120
/// characters.
pub(crate) fn sanitize(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    let bytes = title.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let word_start = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if word_start && c.is_ascii_digit() {
            let mut j = i;
            let hex = bytes.get(i + 1) == Some(&b'x') && c == b'0';
            if hex {
                j += 2;
            }
            while j < bytes.len() && (bytes[j].is_ascii_hexdigit()) {
                j += 1;
            }
            let digits = &title[i..j];
            let all_decimal = digits.bytes().all(|b| b.is_ascii_digit());
            let ends_word =
                j == bytes.len() || !(bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_');
            if ends_word && (hex || all_decimal || digits.len() >= 8) {
                out.push_str(if hex || !all_decimal || digits.len() >= 8 {
                    "ADDR"
                } else {
                    "NUM"
                });
                i = j;
                continue;
            }
        }
        out.push(c as char);
        i += 1;
    }
    if out.chars().count() > MAX_TITLE {
        out = out.chars().take(MAX_TITLE).collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::printk::LogRecord;
    use crate::triage::triage;

    fn log(lines: &[&str]) -> Triage {
        let recs: Vec<LogRecord> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| LogRecord {
                seq: i as u64,
                text: l.to_string(),
                ..LogRecord::default()
            })
            .collect();
        triage(&recs)
    }

    #[test]
    fn an_oops_names_the_function_of_its_rip_even_when_a_panic_follows() {
        let t = log(&[
            "BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "RIP: 0010:coroner_fault_oops+0xc/0x20 [coroner_fault]",
            "Call Trace:\n <TASK>\n coroner_fault_oops_set+0xa/0x20 [coroner_fault]\n </TASK>",
            "Kernel panic - not syncing: Fatal exception",
        ]);
        assert_eq!(
            title(&t, None, &[]).as_deref(),
            Some("BUG: unable to handle kernel NULL pointer dereference in coroner_fault_oops")
        );
        let t = log(&[
            "general protection fault, probably for non-canonical address 0xdead: 0000 [#1]",
            "RIP: 0010:__x64_sys_foo+0x1/0x2",
        ]);
        assert_eq!(
            title(&t, None, &[]).as_deref(),
            Some("general protection fault in foo")
        );
    }

    #[test]
    fn a_panic_names_the_caller_of_panic() {
        let t = log(&[
            "Kernel panic - not syncing: sysrq triggered crash",
            "Call Trace:\n <TASK>\n dump_stack_lvl+0x44/0x5c\n panic+0x118/0x2f4\n ? _printk+0x68/0x83\n sysrq_handle_crash+0x16/0x20\n __handle_sysrq.cold+0x44/0x11c\n </TASK>",
        ]);
        assert_eq!(
            title(&t, None, &[]).as_deref(),
            Some("kernel panic: sysrq triggered crash in sysrq_handle_crash")
        );
        // The log kept no Call Trace: the panicking CPU's backtrace tells.
        let t = log(&[
            "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
        ]);
        let bt = [
            "pvpanic_panic_notify+0x60/0x90 [pvpanic]".to_string(),
            "panic+0x177/0x2f4".to_string(),
            "mount_block_root+0x1d3/0x1e6".to_string(),
        ];
        assert_eq!(
            title(&t, None, &bt).as_deref(),
            Some("kernel panic: VFS: Unable to mount root fs on unknown-block(NUM,NUM) in mount_block_root")
        );
    }

    #[test]
    fn warnings_and_numbers() {
        let t = log(&[
            "WARNING: CPU: 1 PID: 57 at kernel/foo.c:12 foo_bar+0x1f/0x30",
            "Kernel panic - not syncing: panic_on_warn set ...",
        ]);
        assert_eq!(title(&t, None, &[]).as_deref(), Some("WARNING in foo_bar"));
        assert_eq!(
            sanitize("x 0xffff1234 y 12 z v4l2 abc123 deadbeef00"),
            "x ADDR y NUM z v4l2 abc123 deadbeef00"
        );
        assert_eq!(sanitize(&"a".repeat(200)).len(), MAX_TITLE);
        assert_eq!(title(&log(&["hello"]), None, &[]), None);
    }
}
