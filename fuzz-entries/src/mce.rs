//! Machine checks: `struct mce` records as bytes and their decoding, the kernel log's
//! `[Hardware Error]` groups and verdict lines, qemu's machine-check lines, and the whole
//! merge that `coroner mce` makes of them.
//!
//! The input is the kernel log (one record per line), a NUL byte, then qemu's log; the
//! same bytes are also read as `struct mce` records of every size the kernel has used.

use std::cell::OnceCell;
use std::path::PathBuf;

use coroner_analyze::{analyze_mce, decode, parse_struct_mce, LogRecord, LogTail, SeverityContext};
use coroner_formats::testing::ElfBuilder;
use coroner_formats::Core;

/// `sizeof(struct mce)` of the kernels since 2.6.32 (88) to now (120, 128 with
/// `kflags`), and the reader's upper bound.
const RECORD_SIZES: [usize; 5] = [88, 112, 120, 128, 256];

/// Records read from the bytes at most.
const MAX_RECORDS: usize = 64;

thread_local! {
    /// A small synthetic dump for the analysis to hang on (it only reads the capture's
    /// metadata, which a bare ELF core lacks).
    static CORE: OnceCell<Option<Core>> = const { OnceCell::new() };
}

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("coroner-fuzz-mce-{}.elf", std::process::id()))
}

fn synthetic_core() -> Option<Core> {
    let path = scratch();
    std::fs::write(&path, ElfBuilder::default().build()).ok()?;
    let core = coroner_formats::open(&path).ok();
    let _ = std::fs::remove_file(&path);
    core
}

/// Decodes `data` as records and analyzes it as kernel and qemu logs.
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
        Some(nul) => (&data[..nul], Some(&data[nul + 1..])),
        None => (data, None),
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
    let qemu =
        qemu.map(|q| LogTail::of_text(String::from_utf8_lossy(q).into_owned(), "fuzz".into()));
    CORE.with(|cell| {
        if let Some(core) = cell.get_or_init(synthetic_core) {
            let r = analyze_mce(core, None, None, Some(&records), qemu.as_ref());
            crate::invariants::terminal_safe(&r.verdict);
        }
    });
}
