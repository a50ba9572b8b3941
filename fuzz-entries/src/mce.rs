//! Machine checks: `struct mce` records as bytes and their decoding, the kernel log's
//! `[Hardware Error]` groups and verdict lines, and qemu's machine-check lines. (Their
//! merge into one analysis is fuzzed through whole dumps, by the `dump` target.)
//!
//! The input is the kernel log (one record per line), a NUL byte, then qemu's log; the
//! same bytes are also read as `struct mce` records of every size the kernel has used.

use coroner_analyze::{
    decode, host_mce_lines, kernel_mce_lines, parse_struct_mce, LogRecord, SeverityContext,
};

/// `sizeof(struct mce)` of the kernels since 2.6.32 (88) to now (120, 128 with
/// `kflags`), and the reader's upper bound.
const RECORD_SIZES: [usize; 5] = [88, 112, 120, 128, 256];

/// Records read from the bytes at most.
const MAX_RECORDS: usize = 64;

/// Decodes `data` as records and parses it as kernel and qemu logs.
pub fn mce(data: &[u8]) {
    for size in RECORD_SIZES {
        for chunk in data.chunks(size).take(MAX_RECORDS) {
            if let Some(raw) = parse_struct_mce(chunk, size) {
                for ser in [None, Some(true)] {
                    let d = decode(
                        &raw,
                        &SeverityContext {
                            ser,
                            succor: Some(true),
                        },
                    );
                    crate::invariants::terminal_safe(&d.summary);
                }
                crate::invariants::terminal_safe(&raw.place());
            }
        }
    }

    let (kernel, qemu) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let records: Vec<LogRecord> = String::from_utf8_lossy(kernel)
        .lines()
        .enumerate()
        .map(|(i, line)| LogRecord {
            seq: i as u64,
            ts_nsec: i as u64 * 1_000_000,
            level: if line.contains("panic") { 0 } else { 4 },
            text: line.to_string(),
            ..LogRecord::default()
        })
        .collect();
    let found = kernel_mce_lines(&records);
    for (raw, _) in &found.records {
        let d = decode(raw, &SeverityContext::default());
        crate::invariants::terminal_safe(&d.summary);
    }
    for line in host_mce_lines(&String::from_utf8_lossy(qemu)) {
        crate::invariants::terminal_safe(&line.text);
    }
}
