//! Reading a qemu log given with `--qemu-log`: its tail, bounded, as capture reads it.

use std::path::Path;

use coroner_analyze::LogTail;

use crate::exit::{ClassifyExt, ExitClass};

/// The most of a qemu log read: the end holds the report of the failure.
const MAX_LOG_BYTES: u64 = 256 << 10;

/// The last 256 KiB of the log at `path`.
pub fn read_tail(path: &Path) -> anyhow::Result<LogTail> {
    LogTail::read(path, MAX_LOG_BYTES).classify(ExitClass::Input, || {
        format!("cannot read the qemu log {}", path.display())
    })
}
