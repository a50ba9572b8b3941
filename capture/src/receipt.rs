//! What a watcher keeps locally of a capture it uploaded: `DIR/NAME.core.zst.receipt.json`
//! (0600) with the object's URL and the capture record, so that `status` and `watch` can
//! tell a captured freeze from an uncaptured one without asking the object store, and
//! so that names stay unique on this host.

use std::io::Write;
use std::path::{Path, PathBuf};

use coroner_formats::{Finished, OutputFile};
use coroner_record::CaptureInfo;
use serde::{Deserialize, Serialize};

/// Appended to a capture's file name for its receipt.
pub const RECEIPT_SUFFIX: &str = ".receipt.json";

/// Receipts are small; a larger file is not one.
const RECEIPT_MAX_BYTES: u64 = 4 << 20;

/// An uploaded capture, as its watcher recorded it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// Where it went (`s3://BUCKET/KEY`).
    pub capture: String,
    /// When it was finished, seconds since the epoch.
    pub created_unix: u64,
    /// Bytes of the object.
    pub compressed_size: u64,
    /// The content digest (frames-blake3).
    pub frames_blake3: String,
    /// The capture record, as the container's metadata holds it.
    pub info: CaptureInfo,
}

/// The receipt of the capture uploaded as `url` (whose last segment names it) in `dir`.
pub(crate) fn receipt_path(dir: &Path, url: &Path) -> PathBuf {
    let name = url
        .to_str()
        .and_then(|u| u.rsplit('/').next())
        .unwrap_or("capture");
    dir.join(format!("{name}{RECEIPT_SUFFIX}"))
}

/// Writes the receipt of `finished` (uploaded) into `dir`.
pub(crate) fn write(
    dir: &Path,
    finished: &Finished,
    info: &CaptureInfo,
) -> std::io::Result<PathBuf> {
    let receipt = Receipt {
        capture: finished.path.display().to_string(),
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        compressed_size: finished.compressed_size,
        frames_blake3: finished.frames_blake3.clone(),
        info: info.clone(),
    };
    let path = receipt_path(dir, &finished.path);
    let mut out = OutputFile::create(&path).map_err(std::io::Error::other)?;
    let mut text = serde_json::to_vec_pretty(&receipt).map_err(std::io::Error::other)?;
    text.push(b'\n');
    out.file_mut().write_all(&text)?;
    out.commit().map_err(std::io::Error::other)
}

/// Writes the receipt of `done` into `dir` when it was uploaded (a local capture is its
/// own record).
pub(crate) fn keep(dir: &Path, done: &crate::Captured) -> std::io::Result<()> {
    if coroner_objstore::object_url_of(&done.finished.path).is_none() {
        return Ok(());
    }
    write(dir, &done.finished, &done.info).map(drop)
}

/// What a watcher logs when [`keep`] failed.
pub(crate) fn not_kept(dir: &Path, done: &crate::Captured, e: &std::io::Error) -> String {
    format!(
        "cannot keep the receipt of {} in {}: {e}",
        done.finished.path.display(),
        dir.display()
    )
}

/// Reads the receipt at `path` (not through a symlink, bounded in size).
pub(crate) fn read(path: &Path) -> Option<Receipt> {
    let bytes = coroner_formats::input_file::read_small(path, RECEIPT_MAX_BYTES).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_round_trips_and_is_private() {
        let d = tempfile::tempdir().unwrap();
        let finished = Finished {
            path: PathBuf::from("s3://b/host1/vm-20261206T010203Z-guest-panicked.core.zst"),
            content_size: 10,
            compressed_size: 5,
            frames: 1,
            zero_frames: 0,
            frames_blake3: "ab".into(),
        };
        let info = CaptureInfo {
            run_state_before: "guest-panicked".into(),
            ..CaptureInfo::default()
        };
        let p = write(d.path(), &finished, &info).unwrap();
        assert_eq!(
            p,
            d.path()
                .join("vm-20261206T010203Z-guest-panicked.core.zst.receipt.json")
        );
        let r = read(&p).unwrap();
        assert_eq!(r.capture, finished.path.display().to_string());
        assert_eq!(r.info, info);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::write(&p, b"{not json").unwrap();
        assert!(read(&p).is_none());
    }
}
