//! Inputs for parsers that take a path: the bytes written to a file of this process.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `data` to this process's scratch file named after `what`, runs `f` on its path,
/// and removes it.
pub fn with_file(what: &str, data: &[u8], f: impl FnOnce(&Path)) {
    let path: PathBuf =
        std::env::temp_dir().join(format!("coroner-fuzz-{what}-{}", std::process::id()));
    let written = std::fs::File::create(&path).and_then(|mut file| file.write_all(data));
    if written.is_ok() {
        f(&path);
    }
    let _ = std::fs::remove_file(&path);
}
