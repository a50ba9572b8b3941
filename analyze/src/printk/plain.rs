//! The plain-text `log_buf` of kernels before 3.5: a byte ring of lines, each starting
//! with a `<N>` level prefix and, with `CONFIG_PRINTK_TIME`, a `[%5lu.%06lu] ` timestamp.
//!
//! `log_end` counts every byte ever written. If it is below `log_buf_len` the text is
//! `buf[0..log_end)`; otherwise the ring is full and the text starts at
//! `log_end % log_buf_len` and wraps (what kexec-tools and makedumpfile do). The first line
//! of a wrapped ring is usually cut; it is kept, with a diagnostic.

use crate::kmem::{KernelMem, VirtAddr, XlateError};
use crate::vmcoreinfo::Vmcoreinfo;

use super::record::{KernelLog, LogKind, LogRecord, LOG_NEWLINE};
use super::{LogError, MAX_TEXT_BYTES};

/// The level of a line without a `<N>` prefix: `default_message_loglevel` (4, warning).
const DEFAULT_LEVEL: u8 = 4;

/// Maps a failed read of `what` to [`LogError::Read`].
fn read_err(what: &'static str) -> impl FnOnce(XlateError) -> LogError {
    move |source| LogError::Read { what, source }
}

/// Parses a `<N>` prefix: `(N, rest)`.
fn parse_prefix(line: &[u8]) -> Option<(u32, &[u8])> {
    let rest = line.strip_prefix(b"<")?;
    let close = rest.iter().take(4).position(|&b| b == b'>')?;
    let digits = &rest[..close];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((n, &rest[close + 1..]))
}

/// Parses a `[%5lu.%06lu]` timestamp and the one space after it: `(ns, rest)`.
fn parse_timestamp(line: &[u8]) -> Option<(u64, &[u8])> {
    let rest = line.strip_prefix(b"[")?;
    let close = rest.iter().take(32).position(|&b| b == b']')?;
    let inner = std::str::from_utf8(&rest[..close])
        .ok()?
        .trim_start_matches(' ');
    let (sec, usec) = inner.split_once('.')?;
    if sec.is_empty()
        || usec.len() != 6
        || !sec.bytes().chain(usec.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let sec: u64 = sec.parse().ok()?;
    let usec: u64 = usec.parse().ok()?;
    let ns = sec.checked_mul(1_000_000_000)?.checked_add(usec * 1000)?;
    let rest = &rest[close + 1..];
    Some((ns, rest.strip_prefix(b" ").unwrap_or(rest)))
}

/// Splits plain log text into records, one per line.
pub(crate) fn parse_lines(text: &[u8]) -> Vec<LogRecord> {
    let mut records = Vec::new();
    let mut last_ts = 0u64;
    let mut pieces = text.split(|&b| b == b'\n').peekable();
    while let Some(piece) = pieces.next() {
        let complete = pieces.peek().is_some();
        if !complete && piece.is_empty() {
            break;
        }
        let (level, facility, rest) = match parse_prefix(piece) {
            Some((n, rest)) => ((n & 7) as u8, u8::try_from(n >> 3).unwrap_or(u8::MAX), rest),
            None => (DEFAULT_LEVEL, 0, piece),
        };
        let (ts_nsec, rest) = match parse_timestamp(rest) {
            Some((ns, rest)) => (ns, rest),
            None => (last_ts, rest),
        };
        last_ts = ts_nsec;
        records.push(LogRecord {
            seq: records.len() as u64,
            ts_nsec,
            level,
            facility,
            flags: if complete { LOG_NEWLINE } else { 0 },
            caller_id: None,
            text: String::from_utf8_lossy(rest).into_owned(),
            subsystem: None,
            device: None,
        });
    }
    records
}

/// Reads the plain `log_buf` (before 3.5).
pub(crate) fn read(
    mem: &dyn KernelMem,
    vmci: &Vmcoreinfo,
    log_buf_symbol: u64,
) -> Result<KernelLog, LogError> {
    let mut diagnostics = Vec::new();
    let buf_addr = mem
        .read_u64(VirtAddr(log_buf_symbol))
        .map_err(read_err("log_buf (pointer)"))?;
    let len_addr = vmci.symbol("log_buf_len").ok_or(LogError::MissingKey {
        key: "SYMBOL(log_buf_len)",
    })?;
    let len = u64::from(
        mem.read_u32(VirtAddr(len_addr))
            .map_err(read_err("log_buf_len"))?,
    );
    let end_addr = vmci.symbol("log_end").ok_or(LogError::MissingKey {
        key: "SYMBOL(log_end)",
    })?;
    // `unsigned` (`unsigned long` up to 2.6.24): the low 32 bits are enough for the
    // position in a power-of-two ring.
    let log_end = u64::from(
        mem.read_u32(VirtAddr(end_addr))
            .map_err(read_err("log_end"))?,
    );
    if !(1..=MAX_TEXT_BYTES).contains(&len) {
        return Err(LogError::OutOfRange {
            what: "log_buf_len",
            value: len,
            min: 1,
            max: MAX_TEXT_BYTES,
        });
    }
    let buf = mem
        .read_vec(VirtAddr(buf_addr), len, MAX_TEXT_BYTES)
        .map_err(read_err("log_buf text"))?;
    let text = if log_end < len {
        buf.get(..log_end as usize).unwrap_or_default().to_vec()
    } else {
        let start = (log_end % len) as usize;
        let mut t = buf.get(start..).unwrap_or_default().to_vec();
        t.extend_from_slice(buf.get(..start).unwrap_or_default());
        if t.first().is_some_and(|&b| b != b'<') {
            diagnostics.push(format!(
                "the ring has wrapped (log_end {log_end} >= log_buf_len {len}): its first line is cut"
            ));
        }
        t
    };
    let located = format!(
        "SYMBOL(log_buf)={log_buf_symbol:#x} -> log_buf at {} ({len} bytes); log_end {log_end}",
        VirtAddr(buf_addr)
    );
    Ok(KernelLog {
        kind: LogKind::Plain,
        records: parse_lines(&text),
        diagnostics,
        located,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::printk::testutil::plain_ring;

    #[test]
    fn prefixes_and_timestamps_parse() {
        let r = parse_lines(
            b"<6>[    0.000000] Linux version 2.6.32\n<4>[   12.345678] warn\n<14>user\nbare\n<3>[ 1.5] odd",
        );
        assert_eq!(r.len(), 5);
        assert_eq!((r[0].level, r[0].facility, r[0].ts_nsec), (6, 0, 0));
        assert_eq!(r[0].text, "Linux version 2.6.32");
        assert_eq!((r[1].level, r[1].ts_nsec), (4, 12_345_678_000));
        assert_eq!(
            (r[2].level, r[2].facility, r[2].ts_nsec),
            (6, 1, 12_345_678_000)
        );
        assert_eq!(r[2].text, "user");
        assert_eq!((r[3].level, r[3].text.as_str()), (DEFAULT_LEVEL, "bare"));
        // Not a valid timestamp (usec must be 6 digits): kept as text; no final newline.
        assert_eq!(
            (r[4].level, r[4].text.as_str(), r[4].flags),
            (3, "[ 1.5] odd", 0)
        );
        assert_eq!(r[1].flags, LOG_NEWLINE);
        assert_eq!(
            r.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn odd_prefixes_do_not_parse() {
        assert_eq!(parse_prefix(b"<>x"), None);
        assert_eq!(parse_prefix(b"<12345>x"), None);
        assert_eq!(parse_prefix(b"<a>x"), None);
        assert_eq!(parse_timestamp(b"[99999999999999999999.000000] x"), None);
        assert_eq!(parse_timestamp(b"[ .000000] x"), None);
    }

    #[test]
    fn unwrapped_ring_reads_up_to_log_end() {
        let (mem, vmci) = plain_ring(
            b"<6>[    1.000000] one\n<6>[    2.000000] two\nGARBAGE",
            44,
            64,
        );
        let log = read(&mem, &vmci, crate::printk::testutil::PLAIN_SYM).unwrap();
        assert_eq!(log.kind, LogKind::Plain);
        let texts: Vec<_> = log.records.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, vec!["one", "two"]);
        assert_eq!(log.records[1].ts_nsec, 2_000_000_000);
        assert!(log.diagnostics.is_empty());
    }

    #[test]
    fn wrapped_ring_starts_at_log_end() {
        // Write a 64-byte stream into a 40-byte ring the way the kernel does.
        let stream = b"<6>[    1.000000] a\n<6>[    2.000000] b\n<6>[    3.000000] three\n";
        assert_eq!(stream.len(), 64);
        let mut ring = vec![0u8; 40];
        for (i, b) in stream.iter().enumerate() {
            ring[i % 40] = *b;
        }
        let (mem, vmci) = plain_ring(&ring, 64, 40);
        let log = read(&mem, &vmci, crate::printk::testutil::PLAIN_SYM).unwrap();
        // The last 40 bytes: the second line lost its "<6>[" prefix to the wrap.
        let texts: Vec<_> = log.records.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, vec!["    2.000000] b", "three"]);
        assert_eq!(log.records[0].level, DEFAULT_LEVEL);
        assert_eq!(
            (log.records[1].level, log.records[1].ts_nsec),
            (6, 3_000_000_000)
        );
        assert_eq!(log.diagnostics.len(), 1, "{:?}", log.diagnostics);
        assert!(log.diagnostics[0].contains("first line is cut"));
    }

    #[test]
    fn absurd_length_is_an_error() {
        let (mem, vmci) = plain_ring(b"", 0, 0);
        assert!(matches!(
            read(&mem, &vmci, crate::printk::testutil::PLAIN_SYM),
            Err(LogError::OutOfRange {
                what: "log_buf_len",
                ..
            })
        ));
    }
}
