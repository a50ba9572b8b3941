//! qemu's reports of KVM failures, found in a log as it reached us: qemu's stderr, a
//! libvirt `qemu/<vm>.log`, syslog or the journal, a mail or a bug tracker.
//!
//! A report starts at one of the messages qemu prints before it dumps the vCPU and stops
//! the VM (`KVM internal error. Suberror: N`, `KVM: entry failed, hardware error 0x...`,
//! `KVM: unknown exit, hardware reason ...`, `KVM: exception N exit (...)`, `error: kvm run
//! failed ...`) and takes the `extra data[i]` lines, the `emulation failure` line, the
//! VT hint and the register dump that follow.
//!
//! Transport damage is repaired where its shape is unambiguous, and each repair is named
//! in the report's `notes`:
//! - per-line prefixes: mail quoting (`> `), indentation, syslog
//!   (`Jun 24 17:25:51 host QEMU[2997]: `), ISO/journal/libvirt timestamps
//!   (`2022-03-01T10:00:00.123456Z `, `2021-01-01 12:00:00.000+0000: `), `[ 12.345678] `,
//!   program names (`qemu-system-x86_64: `, `qemu-kvm: `, `kvm: `), and what an
//!   interactive session leaves: qemu's monitor prompt (`(qemu) `), shell prompts (`$ `,
//!   `# `, `% `, `user@host:~$ `, `[user@host dir]# `), terminal control sequences
//!   (`ESC[K`) and carriage returns that redrew a line. Syslog lines of the
//!   host `kernel` are skipped: they are never qemu's (its `dump_vmcs()` output looks a
//!   little like qemu's dump);
//! - soft-wrapped lines (format=flowed: a dump line ending in a space, continued on a line
//!   that does not start a field of its own) are joined;
//! - a `Code=` line with fewer than 50 bytes takes the following lines made only of byte
//!   tokens;
//! - lines wrapped at a `KEY=` boundary (`RDX=` on a line of its own, `DR3=` after `DR2=`)
//!   and blank lines between dump lines need no repair: each line is read on its own;
//! - two vCPUs failing at once print their lines mixed. A new report starts at each header,
//!   and a dump line goes to a nearby report that still lacks that field: a dump in
//!   progress first (the one that received its last line earliest), else the newest report
//!   without a dump. The pairing is by field order and cannot be proven; the notes say so.

use serde::Serialize;

use super::regdump::{self, Field, RegDump, CODE_BYTES_TOTAL};

/// What qemu reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ReportKind {
    /// `KVM internal error. Suberror: N` (None: the pre-2.0 `KVM internal error.` form).
    InternalError {
        /// The sub-error: 1 emulation, 2 simultaneous exceptions, 3 delivery event, 4
        /// unexpected exit reason.
        suberror: Option<u32>,
    },
    /// `KVM: entry failed, hardware error 0x...`
    EntryFailed {
        /// `hardware_entry_failure_reason`: on VMX the full exit reason (0x80000021) or a
        /// VM-instruction error number; on SVM the exit code (0xffffffff).
        #[serde(with = "coroner_formats::hex")]
        hardware_error: u64,
    },
    /// `KVM: unknown exit, hardware reason ...`
    UnknownExit {
        /// `hardware_exit_reason`.
        #[serde(with = "coroner_formats::hex")]
        hardware_reason: u64,
    },
    /// `KVM: exception N exit (error code 0x..)`
    Exception {
        /// The exception vector.
        vector: u32,
        /// Its error code.
        error_code: u32,
    },
    /// `error: kvm run failed ...`
    RunFailed {
        /// The rest of the line (`strerror` of KVM_RUN's errno).
        message: String,
    },
}

impl std::fmt::Display for ReportKind {
    /// The report's header in words, as qemu prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportKind::InternalError { suberror: Some(n) } => {
                write!(f, "KVM internal error, sub-error {n}")
            }
            ReportKind::InternalError { suberror: None } => write!(f, "KVM internal error"),
            ReportKind::EntryFailed { hardware_error } => {
                write!(f, "KVM entry failed, hardware error {hardware_error:#x}")
            }
            ReportKind::UnknownExit { hardware_reason } => {
                write!(f, "KVM unknown exit, hardware reason {hardware_reason:#x}")
            }
            ReportKind::Exception { vector, error_code } => {
                write!(
                    f,
                    "KVM exception {vector} exit (error code {error_code:#x})"
                )
            }
            ReportKind::RunFailed { message } => write!(
                f,
                "kvm run failed: {}",
                crate::escape::escape_control(message)
            ),
        }
    }
}

/// How the `extra data` lines print their values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataFormat {
    /// qemu < 6.1: `extra data[0]: 80000b0e`
    Bare,
    /// qemu >= 6.1: `extra data[0]: 0x0000000080000b0e`
    Prefixed,
}

/// One qemu KVM error report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QemuReport {
    /// The header: what failed.
    pub kind: ReportKind,
    /// `extra data[i]` values (`run->internal.data[]`), by index; None for an index whose
    /// line is missing or unreadable.
    #[serde(with = "coroner_formats::hex::option_vec")]
    pub extra_data: Vec<Option<u64>>,
    /// How the extra data was printed (which tells qemu's version); None without extra data.
    pub data_format: Option<DataFormat>,
    /// The `emulation failure` line was printed (sub-error 1).
    pub emulation_failure: bool,
    /// qemu's hint after `hardware error 0x80000021` on VMX hosts ("If you're running a
    /// guest on an Intel machine without unrestricted mode support, ..."), its lines joined
    /// into one, as found.
    pub hint: Option<String>,
    /// The register dump, when one followed.
    pub regs: Option<RegDump>,
    /// 1-based line number of the header in the input.
    pub first_line: usize,
    /// 1-based line number of the report's last line in the input.
    pub last_line: usize,
    /// The report is incomplete: no register dump, a dump that stops before `EFER` or
    /// `Code=` (or with fewer than 50 code bytes), or missing `extra data` indices.
    pub truncated: bool,
    /// What the parser repaired (prefixes stripped, wrapped lines joined, interleaving) and
    /// why the report counts as truncated.
    pub notes: Vec<String>,
}

/// qemu's hint after `KVM: entry failed, hardware error 0x80000021`, as one line.
const HINT: &str = "If you're running a guest on an Intel machine without unrestricted mode \
support, the failure can be most likely due to the guest entering an invalid state for Intel \
VT. For example, the guest maybe running in big real mode which is not supported on less \
recent Intel processors.";
const HINT_START: &str = "If you're running a guest on an Intel";
const HINT_END: &str = "processors.";
/// Lines after the hint's first before giving up on its end.
const MAX_HINT_LINES: usize = 8;
const MAX_HINT_LEN: usize = 1024;

/// Highest `extra data` index taken (`run->internal.data` has 16 slots).
const MAX_EXTRA: usize = 64;
/// A report takes lines up to this many lines after its header or last line.
const FRESH_WINDOW: usize = 64;
/// A dump in progress takes lines up to this many lines after its last one.
const ACTIVE_GAP: usize = 24;
/// Reports looked at when placing a line.
const MAX_OPEN: usize = 8;
/// Soft-wrapped continuation lines joined to one line, at most.
const MAX_JOIN: usize = 4;
/// A joined line stops growing at this length.
const MAX_JOINED_LEN: usize = 1024;
/// `error: kvm run failed` messages are cut to this length.
const MAX_MESSAGE_LEN: usize = 256;

// What was stripped from a line.
const S_QUOTE: u8 = 1;
const S_SYSLOG: u8 = 2;
const S_STAMP: u8 = 4;
const S_PROG: u8 = 8;
const S_INDENT: u8 = 16;
const S_PROMPT: u8 = 32;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A line of the input without its transport prefixes.
struct Phys<'a> {
    /// 1-based line number.
    no: usize,
    text: &'a str,
    strip: u8,
    /// A syslog line of the host kernel (not qemu's).
    kernel: bool,
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `hh:mm:ss` with optional `.frac`.
fn is_clock(s: &str) -> bool {
    let (hms, frac) = match s.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (s, None),
    };
    let mut parts = hms.split(':');
    let ok = (0..3).all(|_| parts.next().is_some_and(|p| p.len() == 2 && all_digits(p)));
    ok && parts.next().is_none() && frac.is_none_or(all_digits)
}

/// `host prog[pid]: rest` (or `host prog: rest`); with `any_prog` false only programs with
/// a known name. Returns the rest and whether the program is the kernel.
fn strip_host_prog(t: &str, any_prog: bool) -> Option<(&str, bool)> {
    let (host, rest) = t.split_once(' ')?;
    if host.is_empty() || host.contains(':') {
        return None;
    }
    let (prog, rest) = match rest.split_once(' ') {
        Some((p, r)) => (p, r),
        None => (rest, ""),
    };
    let name = prog.strip_suffix(':')?;
    let (base, pid) = match name.split_once('[') {
        Some((b, p)) => (b, Some(p.strip_suffix(']')?)),
        None => (name, None),
    };
    if base.is_empty() || pid.is_some_and(|p| !all_digits(p)) {
        return None;
    }
    // After a bare timestamp only known programs: `extra data[0]: ` looks like
    // `host prog[pid]: ` too.
    let known = base == "kernel" || is_prog_name(base);
    if !any_prog && !known {
        return None;
    }
    Some((rest, base == "kernel"))
}

fn is_prog_name(s: &str) -> bool {
    s.starts_with("qemu-system-")
        || matches!(
            s,
            "qemu" | "QEMU" | "qemu-kvm" | "kvm" | "libvirtd" | "virtqemud"
        )
}

/// `Jun 24 17:25:51 host prog[pid]: `.
fn strip_syslog(t: &str) -> Option<(&str, bool)> {
    let mon = t.get(..3)?;
    if !MONTHS.contains(&mon) {
        return None;
    }
    let rest = t.get(3..)?.strip_prefix(' ')?.trim_start_matches(' ');
    let (day, rest) = rest.split_once(' ')?;
    if day.len() > 2 || !all_digits(day) {
        return None;
    }
    let (clock, rest) = rest.split_once(' ')?;
    if !is_clock(clock) {
        return None;
    }
    strip_host_prog(rest, true)
}

/// `2022-03-01T10:00:00.123456Z `, `2021-01-01 12:00:00.000+0000: `,
/// `2022-03-01T10:00:00+01:00 `; returns the rest.
fn strip_iso(t: &str) -> Option<&str> {
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if !(digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b' ')))
    {
        return None;
    }
    // All bytes up to here are ASCII, so every index below is a char boundary.
    let mut i = 11;
    let clock_end = t
        .get(i..)?
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .map_or(t.len(), |e| i + e);
    if !is_clock(t.get(i..clock_end)?) {
        return None;
    }
    i = clock_end;
    match b.get(i) {
        Some(b'Z') => i += 1,
        Some(b'+' | b'-') => {
            let end = t
                .get(i + 1..)?
                .find(|c: char| !(c.is_ascii_digit() || c == ':'))
                .map_or(t.len(), |e| i + 1 + e);
            if !(2..=5).contains(&(end - i - 1)) {
                return None;
            }
            i = end;
        }
        _ => {}
    }
    if b.get(i) == Some(&b':') {
        i += 1;
    }
    match b.get(i) {
        None => Some(""),
        Some(b' ') => t.get(i + 1..),
        _ => None,
    }
}

/// `[   12.345678] `.
fn strip_bracket_stamp(t: &str) -> Option<&str> {
    let rest = t.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once(']')?;
    let stamp = stamp.trim_start();
    let (s, f) = stamp.split_once('.')?;
    if !all_digits(s) || !all_digits(f) {
        return None;
    }
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// `qemu-system-x86_64: `, `qemu-kvm: `, `kvm: `.
fn strip_prog(t: &str) -> Option<&str> {
    let (prog, rest) = t.split_once(": ")?;
    is_prog_name(prog).then_some(rest)
}

/// A CSI control sequence (`ESC [ params final`) at the start of `t`; returns the rest.
fn strip_csi(t: &str) -> Option<&str> {
    let rest = t.strip_prefix("\x1b[")?;
    let end =
        rest.find(|c: char| !(('\x30'..='\x3f').contains(&c) || ('\x20'..='\x2f').contains(&c)))?;
    let final_byte = rest[end..].chars().next()?;
    ('\x40'..='\x7e')
        .contains(&final_byte)
        .then(|| &rest[end + 1..])
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// `user@host`.
fn is_user_at_host(s: &str) -> bool {
    s.split_once('@').is_some_and(|(u, h)| {
        !u.is_empty() && !h.is_empty() && u.chars().all(is_name_char) && h.chars().all(is_name_char)
    })
}

/// A shell prompt: bare `$ `, `# `, `% `; `user@host:dir$ `; `[user@host dir]$ `.
fn strip_shell_prompt(t: &str) -> Option<&str> {
    for bare in ["$ ", "# ", "% "] {
        if let Some(rest) = t.strip_prefix(bare) {
            return Some(rest);
        }
    }
    let end = t.find(['$', '#', '%'])?;
    let rest = t[end + 1..]
        .strip_prefix(' ')
        .or(t.get(end + 1..).filter(|r| r.is_empty()))?;
    let head = &t[..end];
    let ok = match head.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => {
            let (who, dir) = inner.split_once(' ').unwrap_or((inner, ""));
            is_user_at_host(who) && !dir.contains(' ')
        }
        None => head
            .split_once(':')
            .is_some_and(|(who, dir)| is_user_at_host(who) && !dir.contains(char::is_whitespace)),
    };
    ok.then_some(rest)
}

/// What an interactive session put before the text: qemu's monitor prompt `(qemu) `, a
/// shell prompt, a terminal control sequence, or a line redrawn after a carriage return
/// (the text after the last `\r` is what the terminal showed).
fn strip_prompt(t: &str) -> Option<&str> {
    if let Some(rest) = t.strip_prefix("(qemu)") {
        return Some(rest.strip_prefix(' ').unwrap_or(rest));
    }
    if let Some(rest) = strip_csi(t) {
        return Some(rest);
    }
    if let Some((_, after)) = t.rsplit_once('\r').filter(|(_, a)| !a.trim().is_empty()) {
        return Some(after);
    }
    strip_shell_prompt(t)
}

/// The line without transport prefixes, what was stripped, and whether it is a syslog
/// line of the host kernel.
fn strip_prefixes(line: &str) -> (&str, u8, bool) {
    let mut t = line.trim_end_matches(['\r', '\n']);
    let mut strip = 0u8;
    let mut kernel = false;
    for _ in 0..8 {
        let before = t.len();
        let trimmed = t.trim_start();
        if trimmed.len() != t.len() {
            strip |= S_INDENT;
            t = trimmed;
        }
        if t.starts_with('>') {
            t = t.trim_start_matches(['>', ' ']);
            strip |= S_QUOTE;
        } else if let Some((rest, k)) = strip_syslog(t) {
            t = rest;
            kernel |= k;
            strip |= S_SYSLOG;
        } else if let Some(rest) = strip_iso(t) {
            t = rest;
            strip |= S_STAMP;
            if let Some((rest, k)) = strip_host_prog(t, false) {
                t = rest;
                kernel |= k;
            }
        } else if let Some(rest) = strip_bracket_stamp(t) {
            t = rest;
            strip |= S_STAMP;
        } else if let Some(rest) = strip_prog(t) {
            t = rest;
            strip |= S_PROG;
        } else if let Some(rest) = strip_prompt(t) {
            t = rest;
            strip |= S_PROMPT;
        }
        if t.len() == before {
            break;
        }
    }
    (t, strip, kernel)
}

/// A header line: the report kind, and a note when part of it could not be read.
fn header(t: &str) -> Option<(ReportKind, Option<&'static str>)> {
    if let Some(rest) = t.strip_prefix("KVM internal error.") {
        let rest = rest.trim();
        if rest.is_empty() {
            return Some((ReportKind::InternalError { suberror: None }, None));
        }
        let num = rest
            .strip_prefix("Suberror:")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<u32>().ok());
        let note = num
            .is_none()
            .then_some("the sub-error number could not be read");
        return Some((ReportKind::InternalError { suberror: num }, note));
    }
    if let Some(rest) = t.strip_prefix("KVM: entry failed, hardware error ") {
        let hardware_error = hex_any(rest.split_whitespace().next()?)?;
        return Some((ReportKind::EntryFailed { hardware_error }, None));
    }
    if let Some(rest) = t.strip_prefix("KVM: unknown exit, hardware reason ") {
        let hardware_reason = hex_any(rest.split_whitespace().next()?)?;
        return Some((ReportKind::UnknownExit { hardware_reason }, None));
    }
    if let Some(rest) = t.strip_prefix("KVM: exception ") {
        let (vector, rest) = rest.split_once(" exit (error code ")?;
        let vector = vector.parse::<u32>().ok()?;
        let code = rest.trim_end().strip_suffix(')')?;
        let error_code = u32::try_from(hex_any(code)?).ok()?;
        return Some((ReportKind::Exception { vector, error_code }, None));
    }
    if let Some(rest) = t.strip_prefix("error: kvm run failed") {
        let mut message = rest.trim().to_string();
        if message.len() > MAX_MESSAGE_LEN {
            let mut cut = MAX_MESSAGE_LEN;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        return Some((ReportKind::RunFailed { message }, None));
    }
    None
}

/// Hex with or without `0x`, 1 to 16 digits.
fn hex_any(s: &str) -> Option<u64> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// `extra data[i]: value`: index, value (None if unreadable) and format.
fn extra_data(t: &str) -> Option<(usize, Option<u64>, DataFormat)> {
    let rest = t.strip_prefix("extra data[")?;
    let (idx, rest) = rest.split_once(']')?;
    let idx: usize = idx.parse().ok().filter(|i| *i < MAX_EXTRA)?;
    let v = rest.strip_prefix(':')?.trim();
    let (value, fmt) = match v.strip_prefix("0x") {
        // qemu >= 6.1 pads to 16 digits: fewer is a cut line.
        Some(h) => (
            (h.len() == 16).then(|| hex_any(h)).flatten(),
            DataFormat::Prefixed,
        ),
        None => (hex_any(v), DataFormat::Bare),
    };
    Some((idx, value, fmt))
}

/// True when the line starts something of its own (so it does not continue a wrapped one).
fn is_line_start(t: &str) -> bool {
    let t = t.trim();
    header(t).is_some()
        || t.starts_with("extra data[")
        || t == "emulation failure"
        || t.starts_with(HINT_START)
        || regdump::line_field(t).is_some()
}

/// A report being built.
struct Work {
    report: QemuReport,
    dump: RegDump,
    /// Line of the last register line taken; 0 before any.
    last_reg: usize,
    /// `extra data` indices seen (readable or not).
    extra_seen: u64,
    strip: u8,
    soft_joins: usize,
    code_joins: usize,
    /// Dump lines that start with a field qemu prints mid-line (`RDX=`, `DR3=`).
    key_wraps: usize,
    blank_inside: bool,
    hint_lines: usize,
}

impl Work {
    fn note(&mut self, note: String) {
        if !self.report.notes.contains(&note) {
            self.report.notes.push(note);
        }
    }

    /// Takes a line spanning `first..=last`.
    fn take(&mut self, line: &Logical) {
        self.report.last_line = self.report.last_line.max(line.last);
        self.strip |= line.strip;
        self.soft_joins += line.soft_joins;
        self.code_joins += line.code_joins;
    }

    fn near(&self, now: usize) -> bool {
        self.report.last_line.saturating_add(FRESH_WINDOW) >= now
    }
}

/// One line after prefix stripping and joining.
struct Logical {
    text: String,
    first: usize,
    last: usize,
    strip: u8,
    soft_joins: usize,
    code_joins: usize,
}

/// Every qemu KVM error report in `text`, in order.
pub fn parse_qemu_log(text: &str) -> Vec<QemuReport> {
    let phys: Vec<Phys> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let (t, strip, kernel) = strip_prefixes(l);
            Phys {
                no: i + 1,
                text: t,
                strip,
                kernel,
            }
        })
        .collect();
    let kernel_lines: Vec<usize> = phys.iter().filter(|p| p.kernel).map(|p| p.no).collect();

    let mut parser = Parser::default();
    let mut i = 0;
    while let Some(p) = phys.get(i) {
        i += 1;
        if p.kernel {
            continue;
        }
        let mut line = Logical {
            text: p.text.to_string(),
            first: p.no,
            last: p.no,
            strip: p.strip,
            soft_joins: 0,
            code_joins: 0,
        };
        let field = regdump::line_field(&line.text);
        if field.is_some() {
            // format=flowed: a line ending in a space goes on in the next line.
            while line.soft_joins < MAX_JOIN
                && line.text.len() < MAX_JOINED_LEN
                && line.text.ends_with(' ')
            {
                let Some(next) = phys.get(i) else { break };
                if next.kernel || next.text.trim().is_empty() || is_line_start(next.text) {
                    break;
                }
                line.text.push_str(next.text.trim_start());
                line.last = next.no;
                line.strip |= next.strip;
                line.soft_joins += 1;
                i += 1;
            }
        }
        if matches!(field, Some((Field::Code, _))) {
            let mut count = regdump::code_token_count(&line.text);
            while count < CODE_BYTES_TOTAL {
                let Some(next) = phys.get(i) else { break };
                if next.kernel || !regdump::is_code_continuation(next.text) {
                    break;
                }
                line.text.push(' ');
                line.text.push_str(next.text.trim());
                line.last = next.no;
                line.strip |= next.strip;
                line.code_joins += 1;
                count = regdump::code_token_count(&line.text);
                i += 1;
            }
        }
        parser.line(&line);
    }
    parser
        .works
        .into_iter()
        .map(|w| finish(w, &kernel_lines))
        .collect()
}

#[derive(Default)]
struct Parser {
    works: Vec<Work>,
    /// The report whose hint is being collected.
    hint_target: Option<usize>,
    /// The previous line was blank.
    blank: bool,
}

impl Parser {
    fn line(&mut self, line: &Logical) {
        let t = line.text.trim();
        if t.is_empty() {
            self.blank = true;
            return;
        }
        let blank_before = std::mem::take(&mut self.blank);
        let now = line.first;
        if let Some((kind, note)) = header(t) {
            self.hint_target = None;
            let mut w = Work {
                report: QemuReport {
                    kind,
                    extra_data: Vec::new(),
                    data_format: None,
                    emulation_failure: false,
                    hint: None,
                    regs: None,
                    first_line: line.first,
                    last_line: line.last,
                    truncated: false,
                    notes: Vec::new(),
                },
                dump: RegDump::default(),
                last_reg: 0,
                extra_seen: 0,
                strip: 0,
                soft_joins: 0,
                code_joins: 0,
                key_wraps: 0,
                blank_inside: false,
                hint_lines: 0,
            };
            w.take(line);
            if let Some(note) = note {
                w.note(note.to_string());
            }
            self.works.push(w);
            return;
        }
        if let Some((idx, value, fmt)) = extra_data(t) {
            self.hint_target = None;
            self.extra_line(line, idx, value, fmt);
            return;
        }
        if t == "emulation failure" {
            self.hint_target = None;
            let found = self.newest(now, |w| {
                matches!(
                    w.report.kind,
                    ReportKind::InternalError {
                        suberror: Some(1) | None
                    }
                ) && !w.report.emulation_failure
                    && w.dump.is_empty()
            });
            if let Some(i) = found {
                self.attach_note(i);
                if let Some(w) = self.works.get_mut(i) {
                    w.report.emulation_failure = true;
                    w.take(line);
                }
            }
            return;
        }
        if t.starts_with(HINT_START) {
            let found = self.newest(now, |w| {
                matches!(w.report.kind, ReportKind::EntryFailed { .. })
                    && w.report.hint.is_none()
                    && w.dump.is_empty()
            });
            self.hint_target = found;
            if let Some(w) = found.and_then(|i| self.works.get_mut(i)) {
                w.report.hint = Some(squash(t));
                w.take(line);
            }
            return;
        }
        if let Some((field, layout)) = regdump::line_field(t) {
            self.hint_target = None;
            if field != Field::Ignored {
                self.register_line(line, t, field, layout, blank_before);
            }
            return;
        }
        if let Some(w) = self.hint_target.and_then(|i| self.works.get_mut(i)) {
            let hint = w.report.hint.get_or_insert_with(String::new);
            if hint.len() < MAX_HINT_LEN && w.hint_lines < MAX_HINT_LINES {
                hint.push(' ');
                hint.push_str(&squash(t));
                let ended = hint.ends_with(HINT_END);
                w.hint_lines += 1;
                w.take(line);
                if !ended {
                    return;
                }
            }
            self.hint_target = None;
        }
    }

    /// The newest nearby report that `want` accepts.
    fn newest(&self, now: usize, want: impl Fn(&Work) -> bool) -> Option<usize> {
        let n = self.works.len();
        (n.saturating_sub(MAX_OPEN)..n)
            .rev()
            .find(|&i| self.works.get(i).is_some_and(|w| w.near(now) && want(w)))
    }

    /// Notes on both reports when a line goes to one that is not the newest.
    fn attach_note(&mut self, i: usize) {
        let n = self.works.len();
        if i + 1 >= n {
            return;
        }
        let (a, b) = match (self.works.get(i), self.works.last()) {
            (Some(a), Some(b)) => (a.report.first_line, b.report.first_line),
            _ => return,
        };
        let text = |other: usize| {
            format!(
                "lines interleaved with the report at line {other} (vCPUs printing at once): \
                 assigned by field order, the pairing is uncertain"
            )
        };
        if let Some(w) = self.works.get_mut(i) {
            w.note(text(b));
        }
        if let Some(w) = self.works.last_mut() {
            w.note(text(a));
        }
    }

    fn extra_line(&mut self, line: &Logical, idx: usize, value: Option<u64>, fmt: DataFormat) {
        let now = line.first;
        let bit = 1u64 << idx;
        let n = self.works.len();
        let mut active: Option<usize> = None;
        let mut fresh: Option<usize> = None;
        for i in (n.saturating_sub(MAX_OPEN)..n).rev() {
            let Some(w) = self.works.get(i) else { continue };
            if !matches!(w.report.kind, ReportKind::InternalError { .. })
                || !w.near(now)
                || !w.dump.is_empty()
                || w.extra_seen & bit != 0
            {
                continue;
            }
            if w.extra_seen == 0 {
                fresh = fresh.or(Some(i));
            } else if active.is_none_or(|j| {
                self.works
                    .get(j)
                    .is_some_and(|a| w.report.last_line <= a.report.last_line)
            }) {
                active = Some(i);
            }
        }
        let Some(i) = active.or(fresh) else { return };
        self.attach_note(i);
        let Some(w) = self.works.get_mut(i) else {
            return;
        };
        w.extra_seen |= bit;
        if w.report.extra_data.len() <= idx {
            w.report.extra_data.resize(idx + 1, None);
        }
        if let Some(slot) = w.report.extra_data.get_mut(idx) {
            *slot = value;
        }
        if value.is_none() {
            w.note(format!("extra data[{idx}] could not be read"));
        }
        match w.report.data_format {
            None => w.report.data_format = Some(fmt),
            Some(f) if f != fmt => w.note("extra data printed in both formats".to_string()),
            Some(_) => {}
        }
        w.take(line);
    }

    fn register_line(
        &mut self,
        line: &Logical,
        t: &str,
        field: Field,
        layout: Option<u8>,
        blank_before: bool,
    ) {
        let now = line.first;
        let n = self.works.len();
        let mut active: Option<usize> = None;
        let mut fresh: Option<usize> = None;
        for i in (n.saturating_sub(MAX_OPEN)..n).rev() {
            let Some(w) = self.works.get(i) else { continue };
            if w.dump.has(field) {
                continue;
            }
            if let Some(l) = layout {
                if w.dump.layout_bits != 0 && w.dump.layout_bits != l {
                    continue;
                }
            }
            if w.dump.is_empty() {
                if fresh.is_none() && w.near(now) {
                    fresh = Some(i);
                }
            } else if w.last_reg.saturating_add(ACTIVE_GAP) >= now
                && active
                    .is_none_or(|j| self.works.get(j).is_some_and(|a| w.last_reg <= a.last_reg))
            {
                active = Some(i);
            }
        }
        let Some(i) = active.or(fresh) else { return };
        let Some(w) = self.works.get_mut(i) else {
            return;
        };
        let had_regs = !w.dump.is_empty();
        if !w.dump.absorb_line(t) {
            if field == Field::Code {
                // The line is qemu's, cut before its first byte (fixture 11).
                w.note("the Code= line holds no readable byte".to_string());
                w.take(line);
            }
            return;
        }
        w.last_reg = line.last;
        if !starts_qemu_line(field) {
            w.key_wraps += 1;
        }
        if had_regs && blank_before {
            w.blank_inside = true;
        }
        w.take(line);
        self.attach_note(i);
    }
}

/// True for the fields qemu starts a dump line with.
fn starts_qemu_line(field: Field) -> bool {
    matches!(
        field,
        Field::Gpr(0 | 6 | 8 | 12)
            | Field::Rip
            | Field::Seg(_)
            | Field::Gdt
            | Field::Idt
            | Field::Cr(0)
            | Field::Dr(0 | 6)
            | Field::Efer
            | Field::Code
    )
}

/// Whitespace runs to one space.
fn squash(t: &str) -> String {
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn finish(mut w: Work, kernel_lines: &[usize]) -> QemuReport {
    let mut repairs = Vec::new();
    for (flag, text) in [
        (S_QUOTE, "stripped mail quoting (`> `)"),
        (
            S_SYSLOG,
            "stripped syslog prefixes (`Mon DD HH:MM:SS host prog[pid]: `)",
        ),
        (S_STAMP, "stripped timestamps"),
        (
            S_PROG,
            "stripped program-name prefixes (`qemu-system-x86_64: `)",
        ),
        (S_INDENT, "stripped leading indentation"),
        (
            S_PROMPT,
            "stripped interactive prompts and terminal control (`(qemu) `, `$ `, \
             `user@host:~$ `, `ESC[K`, carriage returns)",
        ),
    ] {
        if w.strip & flag != 0 {
            repairs.push(text.to_string());
        }
    }
    if w.soft_joins > 0 {
        repairs.push(format!(
            "joined {} soft-wrapped line(s) (a line ending in a space goes on in the next)",
            w.soft_joins
        ));
    }
    if w.code_joins > 0 {
        repairs.push(format!(
            "joined {} wrapped Code= continuation line(s)",
            w.code_joins
        ));
    }
    if w.key_wraps > 0 {
        repairs.push(format!(
            "read {} dump line(s) hard-wrapped at a `KEY=` boundary",
            w.key_wraps
        ));
    }
    let (first, last) = (w.report.first_line, w.report.last_line);
    let kernel =
        kernel_lines.partition_point(|&l| l <= last) - kernel_lines.partition_point(|&l| l < first);
    if kernel > 0 {
        repairs.push(format!(
            "skipped {kernel} host kernel line(s) inside the report"
        ));
    }
    if w.blank_inside {
        repairs.push("ignored blank lines between register-dump lines".to_string());
    }
    if let Some(hint) = &w.report.hint {
        if hint != HINT {
            repairs.push("the hint differs from qemu's text; kept as found".to_string());
        }
    }
    // Repairs first, then what the parser noticed on the way.
    let later = std::mem::take(&mut w.report.notes);
    for note in repairs.into_iter().chain(later) {
        w.note(note);
    }

    let mut truncated = false;
    if let Some(hole) = w.report.extra_data.iter().position(|v| v.is_none()) {
        truncated = true;
        if (w.extra_seen >> hole) & 1 == 0 {
            w.note(format!("truncated: extra data[{hole}] is missing"));
        }
    }
    if w.dump.is_empty() {
        truncated = true;
        w.note("truncated: no register dump follows the report".to_string());
    } else {
        if w.dump.efer.is_none() {
            truncated = true;
            w.note("truncated: the register dump has no EFER".to_string());
        }
        match &w.dump.code {
            None => {
                truncated = true;
                w.note("truncated: the register dump has no Code= bytes".to_string());
            }
            Some(code) if code.bytes.len() < CODE_BYTES_TOTAL => {
                truncated = true;
                w.note(format!(
                    "truncated: Code= has {} of {CODE_BYTES_TOTAL} bytes",
                    code.bytes.len()
                ));
            }
            Some(_) => {}
        }
    }
    w.report.truncated = truncated;
    if !w.dump.is_empty() {
        w.report.regs = Some(w.dump);
    }
    w.report
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../../fixtures/qemu-logs/", $name, ".log"))
        };
    }

    const F01: &str = fixture!("01-emulation-failure-bigrealmode-endbr32-lp1866870");
    const F03: &str = fixture!("03-emulation-failure-rip-in-vga-hole-lp1914986");
    const F05: &str = fixture!("05-delivery-ev-pf-during-ept-misconfig-cxl-stress");
    const F07: &str = fixture!("07-delivery-ev-old-format-i386-stack-in-vga-hole-lkp");
    const F09: &str = fixture!("09-delivery-ev-wrmsr-with-vectoring-irq-spr-windows-bz218267");
    const F11: &str = fixture!("11-entry-failed-0x80000021-smm-windows-tdp-mmu-proxmox");
    const F13: &str = fixture!("13-emulation-failure-movaps-to-vga-text-mmio-includeos");
    const F15: &str = fixture!("15-entry-failed-0xffffffff-amd-sev-es-lbrv");
    const F17: &str = fixture!("17-entry-failed-0x80000021-smm-windows10-ovmf-edk2-91");
    const F19: &str = fixture!("19-entry-failed-0x80000021-i386-target-xqemu");
    const ALL: [&str; 10] = [F01, F03, F05, F07, F09, F11, F13, F15, F17, F19];

    fn one(text: &str) -> QemuReport {
        let mut r = parse_qemu_log(text);
        assert_eq!(r.len(), 1, "{r:#?}");
        r.remove(0)
    }

    fn regs(r: &QemuReport) -> &RegDump {
        r.regs.as_ref().unwrap()
    }

    fn cs(r: &QemuReport) -> &regdump::Segment {
        regs(r).cs.as_ref().unwrap()
    }

    fn code(r: &QemuReport) -> &regdump::CodeBytes {
        regs(r).code.as_ref().unwrap()
    }

    /// The `<xx>` byte and the bytes from RIP.
    fn at_rip(r: &QemuReport) -> (Option<u8>, Vec<u8>) {
        let c = code(r);
        (c.bytes[c.rip_index.unwrap()], c.from_rip())
    }

    fn internal(n: u32) -> ReportKind {
        ReportKind::InternalError { suberror: Some(n) }
    }

    fn entry(e: u64) -> ReportKind {
        ReportKind::EntryFailed { hardware_error: e }
    }

    fn has_note(r: &QemuReport, part: &str) -> bool {
        r.notes.iter().any(|n| n.contains(part))
    }

    #[test]
    fn fixture_01_big_real_mode_endbr32() {
        let r = one(F01);
        assert_eq!(r.kind, internal(1));
        assert!(r.emulation_failure);
        assert_eq!((r.extra_data.len(), r.data_format), (0, None));
        assert_eq!((r.first_line, r.last_line), (7, 26));
        assert!(!r.truncated, "{:?}", r.notes);
        let g = regs(&r);
        assert_eq!(g.layout_bits, 32);
        assert_eq!(g.rip, Some(0x7acf));
        assert_eq!(g.cr0, Some(0x10));
        assert_eq!(g.efer, Some(0));
        assert_eq!(g.smm, Some(false));
        let cs = cs(&r);
        assert_eq!(
            (cs.selector, cs.base, cs.limit),
            (0xf000, 0xf0000, 0xffffffff)
        );
        assert_eq!((cs.dpl, cs.kind.as_deref()), (None, None));
        let (b, from) = at_rip(&r);
        assert_eq!(b, Some(0xf3));
        assert_eq!(from[..4], [0xf3, 0x0f, 0x1e, 0xfb]);
        assert_eq!(from.len(), 30);
    }

    #[test]
    fn fixture_03_rip_in_vga_hole() {
        let r = one(F03);
        assert_eq!(r.kind, internal(1));
        assert!(r.emulation_failure && !r.truncated);
        assert!(r.extra_data.is_empty());
        let g = regs(&r);
        assert_eq!(g.layout_bits, 64);
        assert_eq!(g.rip, Some(0xb0000));
        assert_eq!(g.cr0, Some(0x80010033));
        assert_eq!(g.efer, Some(0xd00));
        assert_eq!(g.gprs[7], Some(0x7e423628));
        assert_eq!(g.gprs[15], Some(0x7fee6a67));
        let cs = cs(&r);
        assert_eq!((cs.selector, cs.kind.as_deref()), (0x38, Some("CS64")));
        assert_eq!(cs.attrs.as_deref(), Some("-RA"));
        assert_eq!(at_rip(&r), (Some(0xff), vec![0xff; 30]));
        assert!(code(&r).bytes[..20].iter().all(|b| *b == Some(0)));
    }

    #[test]
    fn fixture_05_delivery_ev_hard_wrapped() {
        let r = one(F05);
        assert_eq!(r.kind, internal(3));
        assert!(!r.emulation_failure);
        assert_eq!(
            r.extra_data,
            vec![
                Some(0x80000b0e),
                Some(0x31),
                Some(0xd82),
                Some(0x418442c90),
                Some(8)
            ]
        );
        assert_eq!(r.data_format, Some(DataFormat::Prefixed));
        assert!(!r.truncated, "{:?}", r.notes);
        assert_eq!(r.last_line, 38);
        let g = regs(&r);
        assert_eq!(g.rip, Some(0xffffffff815dfbe8));
        assert_eq!(g.gprs[2], Some(0x533)); // RDX, on a line of its own
        assert_eq!(g.gprs[4], Some(0xffffc900008bf000)); // RSP, likewise
        assert_eq!(g.gprs[11], Some(0));
        assert_eq!(g.cr0, Some(0x80050033));
        assert_eq!(g.cr3, Some(0x418442000));
        assert_eq!(g.dr[3], Some(0));
        assert_eq!(g.efer, Some(0xd01));
        let cs = cs(&r);
        assert_eq!((cs.selector, cs.kind.as_deref()), (0x10, Some("CS64")));
        assert_eq!(regs(&r).es.as_ref().unwrap().dpl, None);
        let (b, from) = at_rip(&r);
        assert_eq!(b, Some(0x41));
        assert_eq!(from[..4], [0x41, 0x55, 0x41, 0x54]);
        assert_eq!(from[from.len() - 2..], [0x49, 0x89]);
        assert_eq!(code(&r).bytes.len(), 50);
        assert!(has_note(&r, "Code= continuation"));
        assert!(
            has_note(&r, "read 5 dump line(s) hard-wrapped"),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn fixture_07_old_format_flowed() {
        let r = one(F07);
        assert_eq!(r.kind, internal(3));
        assert_eq!(
            r.extra_data,
            vec![Some(0x80000b0e), Some(0x31), Some(0x182), Some(0xbfff0)]
        );
        assert_eq!(r.data_format, Some(DataFormat::Bare));
        assert!(!r.truncated, "{:?}", r.notes);
        let g = regs(&r);
        assert_eq!(g.layout_bits, 32);
        assert_eq!(g.rip, Some(0xf4dccd57));
        assert_eq!(g.gprs[4], Some(0xc00bfff4));
        assert_eq!(g.cr0, Some(0x80050033));
        assert_eq!(g.efer, Some(0));
        assert_eq!(g.dr[2], Some(0));
        assert_eq!(g.dr[3], Some(0));
        assert_eq!(g.dr[6], Some(0xfffe0ff0));
        let cs = cs(&r);
        assert_eq!((cs.selector, cs.kind.as_deref()), (0x60, Some("CS32")));
        assert_eq!(g.fs.as_ref().unwrap().kind.as_deref(), Some("DS16"));
        assert_eq!(g.tr.as_ref().unwrap().kind.as_deref(), Some("TSS32-busy"));
        assert_eq!(at_rip(&r), (Some(0), vec![0; 30]));
        assert_eq!(code(&r).bytes.len(), 50);
        assert!(has_note(&r, "soft-wrapped"));
        assert!(
            has_note(&r, "read 1 dump line(s) hard-wrapped"),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn fixture_09_bugzilla_four_reports() {
        let r = parse_qemu_log(F09);
        assert_eq!(r.len(), 4);
        let quals = [0xd83, 0xd81, 0xf82, 0xf82];
        let cpus = [0x38, 0xa2, 0x4b, 0x4b];
        for (i, rep) in r.iter().enumerate() {
            assert_eq!(rep.kind, internal(3));
            assert_eq!(
                rep.extra_data,
                vec![Some(0x8000002f), Some(0x20), Some(quals[i]), Some(cpus[i])]
            );
            assert_eq!(rep.data_format, Some(DataFormat::Prefixed));
        }
        // The third report has no register dump.
        assert!(r[2].regs.is_none());
        assert!(r[2].truncated);
        let rips = [
            0xfffff801eb94fd7c,
            0xfffff8001f1ddd7c,
            0,
            0xfffff802a3f60d7c,
        ];
        for i in [0, 1, 3] {
            let rep = &r[i];
            assert!(!rep.truncated, "{i}: {:?}", rep.notes);
            let g = regs(rep);
            assert_eq!(g.rip, Some(rips[i]));
            assert_eq!(g.gprs[1], Some(0x40000070)); // RCX: the MSR
            assert_eq!(g.cr0, Some(0x80050031));
            assert_eq!(g.efer, Some(0xd01));
            let cs = cs(rep);
            assert_eq!((cs.selector, cs.kind.as_deref()), (0x10, Some("CS64")));
            let (b, from) = at_rip(rep);
            assert_eq!(b, Some(0x0f));
            assert_eq!(from[..6], [0x0f, 0x30, 0x5a, 0x58, 0x59, 0xc3]);
            assert_eq!(code(rep).bytes.len(), 50);
            // Collapsed runs of spaces.
            assert_eq!(g.gdt.map(|t| t.1), Some(0x6f));
            assert_eq!(g.ds.as_ref().unwrap().attrs.as_deref(), Some("-WA"));
            assert!(has_note(rep, "blank lines"));
            assert!(has_note(rep, "hard-wrapped"));
            assert!(!has_note(rep, "interleaved"));
        }
    }

    #[test]
    fn fixture_11_syslog_smm_entry_failure() {
        let r = one(F11);
        assert_eq!(r.kind, entry(0x80000021));
        assert_eq!(r.first_line, 56);
        assert_eq!(r.hint.as_deref(), Some(HINT));
        assert!(has_note(&r, "syslog"));
        let g = regs(&r);
        assert_eq!(g.layout_bits, 32);
        assert_eq!(g.rip, Some(0x8000));
        assert_eq!(g.smm, Some(true));
        assert_eq!(g.cr0, Some(0x50032));
        assert_eq!(g.cr3, Some(0x3cbf4002));
        assert_eq!(g.efer, Some(0));
        let cs = cs(&r);
        assert_eq!(
            (cs.selector, cs.base, cs.kind.as_deref()),
            (0xc200, 0x7ffc2000, None)
        );
        // qemu's assertion cut into the Code= line.
        assert!(g.code.is_none());
        assert!(r.truncated);
        assert_eq!(r.last_line, 78);
    }

    #[test]
    fn fixture_13_movaps_to_vga() {
        let r = one(F13);
        assert_eq!(r.kind, internal(1));
        assert!(r.emulation_failure && !r.truncated);
        let g = regs(&r);
        assert_eq!(g.rip, Some(0xdb03));
        assert_eq!(g.gprs[2], Some(0xb8000));
        assert_eq!(g.cr0, Some(0x13));
        assert_eq!(g.efer, Some(0));
        let cs = cs(&r);
        assert_eq!((cs.selector, cs.kind.as_deref()), (0x8, Some("CS32")));
        assert_eq!(g.ss.as_ref().unwrap().attrs.as_deref(), Some("-W-"));
        let (b, from) = at_rip(&r);
        assert_eq!(b, Some(0x0f));
        assert_eq!(from[..4], [0x0f, 0x29, 0x04, 0x02]);
    }

    #[test]
    fn fixture_15_svm_elided() {
        let r = one(F15);
        assert_eq!(r.kind, entry(0xffffffff));
        assert!(r.truncated);
        let g = regs(&r);
        assert_eq!(g.gprs[0], Some(4));
        assert_eq!(g.gprs[1], Some(0x1d9));
        assert_eq!(
            (g.rip, g.cr0, g.efer, g.cs.clone()),
            (None, None, None, None)
        );
        assert!(has_note(&r, "indentation"));
    }

    #[test]
    fn fixture_17_smm_ovmf_truncated_in_gdt() {
        let r = one(F17);
        assert_eq!(r.kind, entry(0x80000021));
        let hint = r.hint.as_deref().unwrap();
        assert!(hint.starts_with(HINT_START) && hint.ends_with(HINT_END));
        assert!(hint.contains("pionowy"));
        assert!(has_note(&r, "hint differs"));
        let g = regs(&r);
        assert_eq!(g.rip, Some(0x8000));
        assert_eq!(g.smm, Some(true));
        let cs = cs(&r);
        assert_eq!((cs.selector, cs.base), (0xc000, 0x7ffc0000));
        assert_eq!(g.tr.as_ref().unwrap().base, 0xc3f2b070);
        // `GDT=     c3f2a000 0000`: the limit is cut.
        assert_eq!(g.gdt, None);
        assert_eq!((g.cr0, g.efer), (None, None));
        assert!(r.truncated);
    }

    #[test]
    fn fixture_19_i386_truncated_in_gs() {
        let r = one(F19);
        assert_eq!(r.kind, entry(0x80000021));
        assert_eq!(r.hint.as_deref(), Some(HINT));
        let g = regs(&r);
        assert_eq!(g.rip, Some(0));
        assert_eq!(g.rflags, Some(0x86));
        assert_eq!(g.smm, Some(false));
        let cs = cs(&r);
        assert_eq!((cs.selector, cs.kind.as_deref()), (0x8, Some("CS32")));
        assert_eq!(g.fs.as_ref().unwrap().kind.as_deref(), Some("DS16"));
        assert_eq!(g.gs, None);
        assert_eq!((g.cr0, g.efer), (None, None));
        assert!(r.truncated);
    }

    const SHORT: &str = "\
KVM internal error. Suberror: 1
extra data[0]: 0x0000000000000001
emulation failure
EAX=00000001 EBX=00000002 ECX=00000003 EDX=00000004
ESI=00000005 EDI=00000006 EBP=00000007 ESP=00000008
EIP=00001000 EFL=00010002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0
CS =9f00 0009f000 0000ffff 00009b00 DPL=0 CS16 [-RA]
EFER=0000000000000000
Code=af af af af af af af af af af af af af af af af af af af af <00> 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00";

    fn check_short(r: &QemuReport) {
        assert_eq!(r.kind, internal(1));
        assert_eq!(r.extra_data, vec![Some(1)]);
        assert!(r.emulation_failure);
        let g = regs(r);
        assert_eq!(g.rip, Some(0x1000));
        assert_eq!(g.gprs[3], Some(2));
        assert_eq!(cs(r).kind.as_deref(), Some("CS16"));
        assert_eq!(at_rip(r), (Some(0), vec![0; 30]));
        assert!(!r.truncated, "{:?}", r.notes);
    }

    fn prefixed(prefix: &str) -> String {
        SHORT.lines().map(|l| format!("{prefix}{l}\n")).collect()
    }

    #[test]
    fn plain() {
        let r = one(SHORT);
        check_short(&r);
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        assert_eq!((r.first_line, r.last_line), (1, 9));
    }

    #[test]
    fn syslog_prefixes() {
        let r = one(&prefixed("Mar  1 10:00:00 host qemu-system-x86_64[1234]: "));
        check_short(&r);
        assert!(has_note(&r, "syslog"));
        let r = one(&prefixed("Jun 24 17:25:51 testhost QEMU[2997]: "));
        check_short(&r);
    }

    #[test]
    fn kernel_lines_inside_are_skipped() {
        let text: String = SHORT
            .lines()
            .flat_map(|l| {
                [
                    format!("Jun 24 17:25:51 h QEMU[1]: {l}\n"),
                    "Jun 24 17:25:51 h kernel: RSP = 0xffff898cacda2c90  RIP = 0x0000000000008000\n"
                        .to_string(),
                ]
            })
            .collect();
        let r = one(&text);
        check_short(&r);
        assert!(has_note(&r, "kernel line"));
    }

    #[test]
    fn journal_and_libvirt_timestamps() {
        for prefix in [
            "2022-03-01T10:00:00.123456Z ",
            "2021-01-01 12:00:00.000+0000: ",
            "2022-03-01T10:00:00+0100 host qemu-kvm[77]: ",
            "2022-03-01T10:00:00.000000+01:00 host libvirtd[1]: ",
            "[   12.345678] ",
        ] {
            let r = one(&prefixed(prefix));
            check_short(&r);
            assert!(has_note(&r, "timestamps"), "{prefix}: {:?}", r.notes);
        }
    }

    #[test]
    fn program_prefixes() {
        for prefix in ["qemu-system-x86_64: ", "qemu-kvm: ", "qemu-system-i386: "] {
            let r = one(&prefixed(prefix));
            check_short(&r);
            assert!(has_note(&r, "program-name"));
        }
        let r = one(&prefixed(
            "2021-01-01T12:00:00.123456Z qemu-system-x86_64: ",
        ));
        check_short(&r);
    }

    #[test]
    fn interactive_prompts_and_terminal_control() {
        for prefix in [
            "(qemu) ",
            "(qemu) (qemu) ",
            "$ ",
            "# ",
            "user@host:~$ ",
            "root@pve:/var/log/libvirt/qemu# ",
            "[root@el9 ~]# ",
            "\x1b[K(qemu) ",
        ] {
            let r = one(&prefixed(prefix));
            check_short(&r);
            assert!(
                has_note(&r, "interactive prompts"),
                "{prefix:?}: {:?}",
                r.notes
            );
        }
    }

    /// A real report (fixture 03) as an HMP session on `-monitor stdio` shows it: qemu's
    /// message lands after the prompt readline had drawn, the user's commands and the
    /// redraws (`ESC[K`, carriage returns) around it.
    #[test]
    fn report_inside_a_monitor_session() {
        let mut text = String::from("$ qemu-system-x86_64 -enable-kvm -monitor stdio -m 2G\r\n");
        text.push_str("QEMU 5.2.0 monitor - type 'help' for more information\r\n");
        text.push_str("(qemu) info status\r\nVM status: running\r\n");
        for (i, l) in F03.lines().filter(|l| !l.starts_with('#')).enumerate() {
            match i {
                0 => text.push_str(&format!("(qemu) {l}\r\n")),
                3 => text.push_str(&format!("(qemu) \x1b[K\r{l}\r\n")),
                _ => text.push_str(&format!("{l}\r\n")),
            }
        }
        text.push_str("(qemu) info status\r\nVM status: paused (internal-error)\r\n(qemu) q\r\n");
        let r = one(&text);
        assert_eq!(r.kind, internal(1));
        assert!(r.emulation_failure && !r.truncated, "{:?}", r.notes);
        let g = regs(&r);
        assert_eq!(g.rip, Some(0xb0000));
        assert_eq!(g.gprs[7], Some(0x7e423628));
        assert_eq!(at_rip(&r), (Some(0xff), vec![0xff; 30]));
        assert!(has_note(&r, "interactive prompts"), "{:?}", r.notes);
    }

    #[test]
    fn mail_quoting_and_crlf() {
        for prefix in ["> ", "> > ", ">> "] {
            let r = one(&prefixed(prefix));
            check_short(&r);
            assert!(has_note(&r, "mail quoting"));
        }
        let r = one(&SHORT.replace('\n', "\r\n"));
        check_short(&r);
    }

    #[test]
    fn flowed_soft_wraps() {
        let text = SHORT
            .replace(
                "CS =9f00 0009f000 0000ffff ",
                "CS =9f00 0009f000 0000ffff \n",
            )
            .replace("<00> 00 00 00 ", "<00> 00 00 00 \n")
            .replace("EIP=00001000 EFL=00010002 ", "EIP=00001000 EFL=00010002 \n");
        let r = one(&prefixed_text(&text, "> "));
        check_short(&r);
        assert_eq!(cs(&r).flags, 0x9b00);
        assert_eq!(regs(&r).cpl, Some(0));
        assert!(has_note(&r, "soft-wrapped"));
        assert_eq!(r.last_line, 12);
    }

    fn prefixed_text(text: &str, prefix: &str) -> String {
        text.lines().map(|l| format!("{prefix}{l}\n")).collect()
    }

    #[test]
    fn hard_wrapped_code() {
        let text = SHORT.replace("<00> 00 00 00 ", "<00> 00 00 00\n");
        let r = one(&text);
        check_short(&r);
        assert!(has_note(&r, "Code= continuation"));
        // A wrapped Code= line stops at 50 bytes: a byte-only line after it is not taken.
        let r = one(&format!("{SHORT}\n00 11 22"));
        check_short(&r);
        assert_eq!(r.last_line, 9);
    }

    #[test]
    fn interleaved_vcpus() {
        // The shape of edk2 issue 6597: one vCPU's dump is split by others' headers.
        let text = "\
KVM internal error. Suberror: 1
emulation failure
EAX=00000800 EBX=00000002 ECX=c0000080 EDX=00000000
ESI=00000000 EDI=00003ed8 EBP=00000000 ESP=00000000
EIP=000a0000 EFL=00010006 [-----P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
KVM internal error. Suberror: 1
emulation failure
ES =0008 00000000 ffffffff 00c09300 DPL=0 DS   [-WA]
CS =0010 00000000 ffffffff 00c09b00 DPL=0 CS32 [-RA]
CR0=00000033 CR2=00000000 CR3=00000000 CR4=00000640
EFER=0000000000000800
Code=af af af af af af af af af af af af af af af af af af af af <00> 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
EAX=bff28000 EBX=00000002 ECX=c0000080 EDX=00000000
EIP=00001000 EFL=00010006 [-----P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
CS =9f00 0009f000 0000ffff 00009b00 DPL=0 CS16 [-RA]
EFER=0000000000000000
Code=af af af af af af af af af af af af af af af af af af af af <00> 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
";
        let r = parse_qemu_log(text);
        assert_eq!(r.len(), 2);
        let (a, b) = (regs(&r[0]), regs(&r[1]));
        assert_eq!(a.rip, Some(0xa0000));
        assert_eq!(a.cs.as_ref().unwrap().selector, 0x10);
        assert_eq!(a.efer, Some(0x800));
        assert_eq!(b.rip, Some(0x1000));
        assert_eq!(b.gprs[0], Some(0xbff28000));
        assert_eq!(b.cs.as_ref().unwrap().selector, 0x9f00);
        assert!(r[0].emulation_failure && r[1].emulation_failure);
        assert!(has_note(&r[0], "interleaved"));
        assert!(has_note(&r[1], "interleaved"));
        assert_eq!(r[0].last_line, 12);
    }

    #[test]
    fn interleaved_extra_data() {
        let text = "\
KVM internal error. Suberror: 3
KVM internal error. Suberror: 3
extra data[0]: 0x0000000080000b0e
extra data[0]: 0x000000008000002f
extra data[1]: 0x0000000000000031
extra data[1]: 0x0000000000000020
";
        let r = parse_qemu_log(text);
        assert_eq!(r.len(), 2);
        // Pairing by order: the first [0] and the first [1] go together.
        assert_eq!(r[1].extra_data, vec![Some(0x80000b0e), Some(0x31)]);
        assert_eq!(r[0].extra_data, vec![Some(0x8000002f), Some(0x20)]);
        assert!(has_note(&r[0], "interleaved"));
    }

    #[test]
    fn missing_extra_index_is_truncation() {
        let text = SHORT.replace(
            "extra data[0]: 0x0000000000000001",
            "extra data[0]: 0x0000000000000001\nextra data[2]: 0x0000000000000031",
        );
        let r = one(&text);
        assert_eq!(r.extra_data, vec![Some(1), None, Some(0x31)]);
        assert!(r.truncated);
        assert!(has_note(&r, "extra data[1] is missing"));
        // A cut value is not read.
        let r = one(&SHORT.replace("0x0000000000000001", "0x00000000000"));
        assert_eq!(r.extra_data, vec![None]);
        assert!(r.truncated);
    }

    #[test]
    fn other_headers() {
        let r = parse_qemu_log(
            "KVM internal error.\n\
             KVM: unknown exit, hardware reason 31\n\
             KVM: exception 14 exit (error code 0x4)\n\
             qemu-system-x86_64: error: kvm run failed Bad address\n\
             KVM: entry failed, hardware error 0x7\n\
             KVM internal error. Suberror: 99999999999999999999\n\
             KVM: entry failed, hardware error 0xfffffffffffffffffffff\n\
             KVM internal error: Encountered a notify exit with invalid context in guest.\n",
        );
        let kinds: Vec<_> = r.iter().map(|r| r.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                ReportKind::InternalError { suberror: None },
                ReportKind::UnknownExit {
                    hardware_reason: 0x31
                },
                ReportKind::Exception {
                    vector: 14,
                    error_code: 4
                },
                ReportKind::RunFailed {
                    message: "Bad address".to_string()
                },
                entry(7),
                ReportKind::InternalError { suberror: None },
            ]
        );
        assert!(has_note(&r[5], "sub-error number"));
        assert!(r.iter().all(|r| r.truncated && r.regs.is_none()));
    }

    #[test]
    fn json_shape() {
        let v = serde_json::to_value(one(SHORT)).unwrap();
        assert_eq!(v["kind"]["kind"], "internal-error");
        assert_eq!(v["kind"]["suberror"], 1);
        let v = serde_json::to_value(one(F05)).unwrap();
        assert_eq!(v["data_format"], "prefixed");
        assert_eq!(v["regs"]["cs"]["kind"], "CS64");
        let v = serde_json::to_value(one(F11)).unwrap();
        assert_eq!(v["kind"]["kind"], "entry-failed");
        assert_eq!(v["kind"]["hardware_error"], "0x80000021");
    }

    #[test]
    fn every_truncation_of_every_fixture() {
        for text in ALL {
            let full = parse_qemu_log(text);
            let mut cut = 0;
            while cut < text.len() {
                if text.is_char_boundary(cut) {
                    let part = &text[..cut];
                    let lines = part.lines().count();
                    for r in parse_qemu_log(part) {
                        assert!(r.first_line <= r.last_line && r.last_line <= lines);
                        if let Some(g) = &r.regs {
                            if g.efer.is_none() || g.code.is_none() {
                                assert!(r.truncated);
                            }
                        }
                    }
                }
                cut += 7;
            }
            // Unchanged by reparsing.
            assert_eq!(parse_qemu_log(text), full);
        }
    }

    #[test]
    fn ten_megabytes_of_garbage() {
        let mut text = String::with_capacity(10 << 20);
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let pieces = [
            "RAX=",
            "KVM internal error. Suberror: 1",
            "extra data[",
            "Code=",
            "<ff>",
            "?? ",
            "00 ",
            "DR3=0000000000000000 ",
            "ES =",
            " ",
            "\n",
            "> ",
            "Jun 24 17:25:51 h QEMU[1]: ",
            "If you're running a guest on an Intel machine",
            "ffffffffffffffffffffffffffff",
            "=",
            "]: 0x",
            "é",
            "\r\n",
        ];
        while text.len() < 10 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            text.push_str(pieces[(x % pieces.len() as u64) as usize]);
        }
        let start = std::time::Instant::now();
        let r = parse_qemu_log(&text);
        assert!(!r.is_empty());
        assert!(start.elapsed().as_secs() < 60);
    }

    fn real_lines() -> Vec<&'static str> {
        ALL.iter().flat_map(|t| t.lines()).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn mixes_never_panic(
            picks in proptest::collection::vec((any::<u16>(), any::<u8>(), ".{0,40}"), 0..80),
        ) {
            let lines = real_lines();
            let mut text = String::new();
            for (pick, how, garbage) in picks {
                let line = lines[pick as usize % lines.len()];
                match how % 6 {
                    0 => text.push_str(&garbage),
                    1 => {
                        let mut cut = (how as usize * 7) % (line.len() + 1);
                        while !line.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        text.push_str(&line[..cut]);
                    }
                    2 => {
                        text.push_str("> ");
                        text.push_str(line);
                        text.push(' ');
                    }
                    _ => text.push_str(line),
                }
                text.push('\n');
            }
            let n = text.lines().count();
            for r in parse_qemu_log(&text) {
                prop_assert!(r.first_line >= 1 && r.first_line <= r.last_line && r.last_line <= n);
                prop_assert!(r.extra_data.len() <= MAX_EXTRA);
                if let Some(c) = r.regs.as_ref().and_then(|g| g.code.as_ref()) {
                    prop_assert!(c.rip_index.is_none_or(|i| i < c.bytes.len()));
                }
            }
        }
    }
}
