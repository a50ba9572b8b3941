//! A capture's crash signature, stored beside it as `CAPTURE.sig.json` by `watch` or by
//! the first `triage` that reads it: what `triage` groups by, and enough to group without
//! opening the capture again. Any index is a cache of these files; they are the truth.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Version of [`Signature`]'s layout.
pub const SIGNATURE_SCHEMA: u32 = 1;

/// What a signature file's name adds to its capture's.
pub const SIGNATURE_SUFFIX: &str = ".sig.json";

/// Largest signature file read, in bytes: anything bigger is not one of ours.
pub const SIGNATURE_MAX_BYTES: u64 = 64 << 10;

/// One capture, signed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Signature {
    /// [`SIGNATURE_SCHEMA`] when written by this coroner.
    pub schema: u32,
    /// The coroner that signed it.
    pub tool: String,
    /// The capture's file name (beside this file).
    pub capture: String,
    /// The capture's size when signed, in bytes.
    pub capture_bytes: u64,
    /// The capture's modification time when signed, in nanoseconds since the epoch:
    /// with the size, how a later run knows the capture is the one signed.
    pub capture_mtime_ns: u128,
    /// The capture's entity tag when it is an object in a store (there, size and tag
    /// tell it is the one signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_etag: Option<String>,
    /// What captures are grouped by: the crash title (as `analyze` gives it), or, when
    /// the dump shows no failure, the run state and that.
    pub signature: String,
    /// `analyze`'s crash title, when there is one.
    pub title: Option<String>,
    /// `analyze`'s verdict.
    pub verdict: String,
    /// The guest's run state when captured.
    pub run_state: Option<String>,
    /// The guest: the libvirt domain, or qemu's `-name`, when known.
    pub guest: Option<String>,
    /// The host it was captured on.
    pub host: Option<String>,
    /// When it was captured (the container's creation), seconds since the epoch.
    pub captured_unix: u64,
}

impl Signature {
    /// The group key for a capture with `title` (none when no failure shows) and
    /// `run_state`.
    pub fn key(title: Option<&str>, run_state: Option<&str>) -> String {
        match title {
            Some(t) => t.to_string(),
            None => format!(
                "{}: no failure the dump shows",
                run_state.unwrap_or("unknown run state")
            ),
        }
    }
}

/// Where the signature of `capture` is kept.
pub fn signature_path(capture: &Path) -> PathBuf {
    let mut name = capture.as_os_str().to_os_string();
    name.push(SIGNATURE_SUFFIX);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_paths() {
        assert_eq!(
            Signature::key(Some("kernel panic: x in f"), Some("guest-panicked")),
            "kernel panic: x in f"
        );
        assert_eq!(
            Signature::key(None, Some("paused")),
            "paused: no failure the dump shows"
        );
        assert_eq!(
            signature_path(Path::new("/c/vm1.core.zst")),
            Path::new("/c/vm1.core.zst.sig.json")
        );
    }
}
