//! Reading a qemu log given with `--qemu-log`: only its tail, bounded, lossy UTF-8.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::exit::{ClassifyExt, ExitClass};

/// The most of a qemu log read: the end holds the report of the failure.
const MAX_LOG_BYTES: u64 = 256 << 10;

/// The last 256 KiB of the log at `path`, and a description of where it came from.
pub fn read_tail(path: &Path) -> anyhow::Result<(String, String)> {
    let what = || format!("cannot read the qemu log {}", path.display());
    let mut f = std::fs::File::open(path).classify(ExitClass::Input, what)?;
    let len = f.metadata().classify(ExitClass::Input, what)?.len();
    let start = len.saturating_sub(MAX_LOG_BYTES);
    f.seek(SeekFrom::Start(start))
        .classify(ExitClass::Input, what)?;
    let mut bytes = Vec::new();
    f.take(MAX_LOG_BYTES)
        .read_to_end(&mut bytes)
        .classify(ExitClass::Input, what)?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if start > 0 {
        // Drop the partial first line.
        if let Some(nl) = text.find('\n') {
            text.drain(..=nl);
        }
    }
    let source = if start > 0 {
        format!(
            "{} (last {} KiB of {len} bytes)",
            path.display(),
            MAX_LOG_BYTES >> 10
        )
    } else {
        path.display().to_string()
    };
    Ok((text, source))
}
