//! The data every reader returns: [`LogRecord`], [`KernelLog`], [`LogKind`].

use serde::Serialize;

/// `LOG_NEWLINE`: the record ended with a newline (all kernels).
pub(crate) const LOG_NEWLINE: u8 = 2;
/// `LOG_PREFIX`: the record started with a level prefix (3.5–5.9 only).
pub(crate) const LOG_PREFIX: u8 = 4;
/// `LOG_CONT`: the record continues the previous line (all kernels).
pub(crate) const LOG_CONT: u8 = 8;

/// One kernel log record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LogRecord {
    /// Sequence number: the kernel's own for the lockless ring (5.10+); the position in
    /// the buffer, from 0, for the older rings (whose sequence numbers VMCOREINFO does not
    /// export).
    pub seq: u64,
    /// Nanoseconds since boot (`local_clock()`), as the kernel stamped it. For plain
    /// (< 3.5) logs, parsed from the `[%5lu.%06lu]` prefix, or the previous line's value
    /// when the line has none.
    pub ts_nsec: u64,
    /// Log level, 0 (`KERN_EMERG`) to 7 (`KERN_DEBUG`).
    pub level: u8,
    /// Syslog facility: 0 kernel, 1 user (`/dev/kmsg` writes).
    pub facility: u8,
    /// Record flags (5 bits): `LOG_NEWLINE` = 2, `LOG_CONT` = 8 (and on 3.5–5.9
    /// `LOG_NOCONS` = 1, `LOG_PREFIX` = 4).
    pub flags: u8,
    /// Who logged it: bit 31 set means a CPU number in the low 31 bits (interrupt
    /// context), else a task id. Always stored from 5.10; on 3.5–5.9 only with
    /// `CONFIG_PRINTK_CALLER`; never before.
    pub caller_id: Option<u32>,
    /// The text (lossy UTF-8 of the stored bytes), without the level prefix and without
    /// the final newline; may hold embedded newlines and control bytes. Raw: escape it
    /// before it reaches a terminal.
    pub text: String,
    /// `SUBSYSTEM=` of the device that logged it (`dev_printk`), if any.
    pub subsystem: Option<String>,
    /// `DEVICE=` of the device that logged it (`dev_printk`), if any.
    pub device: Option<String>,
}

/// Which kind of log buffer the records came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogKind {
    /// The lockless `printk_ringbuffer` (5.10+).
    Lockless,
    /// The structured `log_buf` of `struct printk_log` records (3.5–5.9).
    Structured,
    /// The plain-text `log_buf` (before 3.5).
    Plain,
}

impl LogKind {
    /// A short human name.
    pub fn name(self) -> &'static str {
        match self {
            LogKind::Lockless => "lockless",
            LogKind::Structured => "structured",
            LogKind::Plain => "plain-text",
        }
    }
}

/// The kernel log read from a dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelLog {
    /// The kind of buffer read.
    pub kind: LogKind,
    /// The readable records, sorted by sequence number.
    pub records: Vec<LogRecord>,
    /// What was skipped or looked damaged, each with where; empty for a clean ring.
    pub diagnostics: Vec<String>,
    /// How the ring was found, e.g.
    /// `SYMBOL(prb)=0xffffffff960643e0 -> printk_rb_static at 0xffffffff96064400`.
    pub located: String,
}

/// Counts of one kind of skipped item, with the first few places, turned into one
/// diagnostic line (a damaged ring can have millions; the report needs one line).
#[derive(Debug, Default)]
pub(crate) struct SkipCounter {
    count: u64,
    first: Vec<String>,
}

impl SkipCounter {
    /// How many places are listed.
    const SHOWN: usize = 4;

    /// Counts one skip at `place`.
    pub(crate) fn hit(&mut self, place: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.len() < Self::SHOWN {
            self.first.push(place());
        }
    }

    /// Appends `"<count> <context> (<places>...)"` to `out` if anything was counted.
    pub(crate) fn report(&self, context: &str, out: &mut Vec<String>) {
        if self.count == 0 {
            return;
        }
        let more = if self.count > self.first.len() as u64 {
            ", ..."
        } else {
            ""
        };
        out.push(format!(
            "{} {context} ({}{more})",
            self.count,
            self.first.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_counter_lists_the_first_places() {
        let mut c = SkipCounter::default();
        let mut out = Vec::new();
        c.report("x", &mut out);
        assert!(out.is_empty());
        for i in 0..6 {
            c.hit(|| format!("id {i}"));
        }
        c.report("descriptors reserved", &mut out);
        assert_eq!(
            out,
            vec!["6 descriptors reserved (id 0, id 1, id 2, id 3, ...)".to_string()]
        );
    }
}
