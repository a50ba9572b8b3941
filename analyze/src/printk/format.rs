//! Printing records the way the kernel console and `dmesg` do.
//!
//! The kernel's `info_print_prefix()` builds `[<syslog>][time][caller] ` and
//! `record_print_text()` repeats that prefix on every line of a multi-line record, so the
//! output here compares line for line with a serial console log.

use std::fmt::Write as _;

use super::levels::LogLevels;
use super::record::LogRecord;

/// What [`format_dmesg`] prints.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FormatOptions {
    /// Keep only records of these levels (0 emergency ... 7 debug), like `dmesg --level`;
    /// `None` keeps all.
    pub levels: Option<LogLevels>,
    /// Drop records stamped earlier than this many seconds since boot.
    pub since_boot_secs: Option<f64>,
    /// Prefix each line with the syslog priority `<N>`, `N = facility * 8 + level`, as the
    /// kernel's syslog form and `dmesg -r` print it (`<6>[    0.000000] Linux version`).
    pub show_level: bool,
    /// Add the caller after the time as `CONFIG_PRINTK_CALLER` does: `[%6s]` of `T<pid>`
    /// (task) or `C<cpu>` (bit 31 set); records without a caller id get `[     ?]`.
    pub show_caller: bool,
}

/// The caller as `CONFIG_PRINTK_CALLER` prints it: `T<pid>` or `C<cpu>`.
fn caller(id: u32) -> String {
    if id & 0x8000_0000 != 0 {
        format!("C{}", id & 0x7fff_ffff)
    } else {
        format!("T{id}")
    }
}

/// True when `since` (seconds) keeps a record stamped `ts_nsec`.
fn after(ts_nsec: u64, since: f64) -> bool {
    // f64 has 53 bits: exact to the nanosecond for ~104 days of uptime, close enough after.
    ts_nsec as f64 >= since * 1e9
}

impl FormatOptions {
    /// True when the level and time filters keep `r` (the one filter for text and JSON).
    pub fn keeps(&self, r: &LogRecord) -> bool {
        self.levels.is_none_or(|l| l.contains(r.level))
            && self.since_boot_secs.is_none_or(|s| after(r.ts_nsec, s))
    }
}

/// Formats records as the kernel console prints them: every line of every record gets
/// `[%5lu.%06lu] ` (seconds and microseconds since boot), optionally preceded by `<N>` and
/// followed by the caller, and ends with `\n`. The text is not escaped.
pub fn format_dmesg(records: &[LogRecord], opts: &FormatOptions) -> String {
    let mut out = String::new();
    for r in records.iter().filter(|r| opts.keeps(r)) {
        let mut prefix = String::new();
        if opts.show_level {
            let _ = write!(
                prefix,
                "<{}>",
                u32::from(r.facility) * 8 + u32::from(r.level)
            );
        }
        let _ = write!(
            prefix,
            "[{:5}.{:06}]",
            r.ts_nsec / 1_000_000_000,
            (r.ts_nsec % 1_000_000_000) / 1000
        );
        if opts.show_caller {
            let c = r.caller_id.map_or_else(|| "?".to_string(), caller);
            let _ = write!(prefix, "[{c:>6}]");
        }
        prefix.push(' ');
        for line in r.text.split('\n') {
            out.push_str(&prefix);
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts_nsec: u64, level: u8, text: &str) -> LogRecord {
        LogRecord {
            ts_nsec,
            level,
            text: text.to_string(),
            ..LogRecord::default()
        }
    }

    #[test]
    fn console_format_is_exact() {
        let recs = [
            rec(0, 5, "Linux version 6.1.0-56-amd64"),
            rec(1_234_567_891, 6, "x86/fpu: xstate"),
            rec(123_456_000_999_999, 6, "long uptime"),
        ];
        assert_eq!(
            format_dmesg(&recs, &FormatOptions::default()),
            "[    0.000000] Linux version 6.1.0-56-amd64\n\
             [    1.234567] x86/fpu: xstate\n\
             [123456.000999] long uptime\n"
        );
    }

    #[test]
    fn every_line_of_a_multi_line_record_gets_the_prefix() {
        let recs = [
            rec(
                2_500_000_000,
                4,
                "Call Trace:\n <TASK>\n dump_stack+0x10/0x20",
            ),
            rec(3_000_000_000, 6, ""),
            rec(3_000_000_000, 6, "ends in newline\n"),
        ];
        assert_eq!(
            format_dmesg(&recs, &FormatOptions::default()),
            "[    2.500000] Call Trace:\n\
             [    2.500000]  <TASK>\n\
             [    2.500000]  dump_stack+0x10/0x20\n\
             [    3.000000] \n\
             [    3.000000] ends in newline\n\
             [    3.000000] \n"
        );
    }

    #[test]
    fn level_and_time_filters() {
        let recs = [
            rec(500_000_000, 6, "info early"),
            rec(1_000_000_000, 3, "err at 1s"),
            rec(2_000_000_000, 7, "debug late"),
            rec(2_000_000_000, 4, "warn late"),
        ];
        let only_warn = FormatOptions {
            levels: Some(LogLevels::up_to(4)),
            ..FormatOptions::default()
        };
        assert_eq!(
            format_dmesg(&recs, &only_warn),
            "[    1.000000] err at 1s\n[    2.000000] warn late\n"
        );
        let since = FormatOptions {
            since_boot_secs: Some(1.0),
            ..FormatOptions::default()
        };
        assert_eq!(
            format_dmesg(&recs, &since),
            "[    1.000000] err at 1s\n[    2.000000] debug late\n[    2.000000] warn late\n"
        );
        let both = FormatOptions {
            levels: Some(LogLevels::up_to(6)),
            since_boot_secs: Some(1.5),
            ..FormatOptions::default()
        };
        assert_eq!(format_dmesg(&recs, &both), "[    2.000000] warn late\n");
        assert_eq!(format_dmesg(&[], &both), "");
    }

    #[test]
    fn level_and_caller_prefixes() {
        let mut task = rec(0, 5, "Linux version");
        task.caller_id = Some(0);
        let mut irq = rec(1_000_000, 6, "a\nb");
        irq.caller_id = Some(0x8000_0001);
        irq.facility = 1;
        let mut big = rec(2_000_000, 3, "big pid");
        big.caller_id = Some(12_345_678);
        let unknown = rec(3_000_000, 7, "no caller");
        let opts = FormatOptions {
            show_level: true,
            show_caller: true,
            ..FormatOptions::default()
        };
        assert_eq!(
            format_dmesg(&[task, irq, big, unknown], &opts),
            "<5>[    0.000000][    T0] Linux version\n\
             <14>[    0.001000][    C1] a\n\
             <14>[    0.001000][    C1] b\n\
             <3>[    0.002000][T12345678] big pid\n\
             <7>[    0.003000][     ?] no caller\n"
        );
    }
}
