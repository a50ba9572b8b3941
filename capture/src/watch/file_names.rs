//! Names of what `watch` writes: `NAME-STAMP-REASON.core.zst`, never over an existing file
//! or a `.partial` one.

use std::path::{Path, PathBuf};

use crate::receipt::RECEIPT_SUFFIX;

/// `DIR/NAME-20261122T101502Z-REASON.core.zst`, with `-2`, `-3`, ... when taken; with
/// `remote` (`s3://BUCKET/PREFIX/HOST/`), that URL followed by the name, which counts as
/// taken when `DIR` holds its receipt.
pub(crate) fn output_path(
    dir: &Path,
    remote: Option<&str>,
    name: &str,
    at: std::time::SystemTime,
    reason: &str,
) -> PathBuf {
    let stamp: String = humantime::format_rfc3339_seconds(at)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let base = format!("{}-{stamp}-{reason}", safe_name(name));
    let taken = |file: &str| {
        let path = dir.join(file);
        path.exists()
            || partial_of(&path).exists()
            || dir.join(format!("{file}{RECEIPT_SUFFIX}")).exists()
    };
    let mut file = format!("{base}.core.zst");
    let mut n = 2;
    while taken(&file) {
        file = format!("{base}-{n}.core.zst");
        n += 1;
    }
    match remote {
        Some(prefix) => PathBuf::from(format!("{prefix}{file}")),
        None => dir.join(file),
    }
}

fn partial_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

/// A guest name fit for a file name: letters, digits, `.`, `_`, `-`; others become `_`.
pub fn safe_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.trim_start_matches('.') {
        "" => "guest".into(),
        t => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn output_names() {
        let dir = tempfile::tempdir().unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(1_795_348_531);
        let p = output_path(dir.path(), None, "vm1", at, "guest-panicked");
        assert_eq!(
            p.file_name().unwrap(),
            "vm1-20261122T115531Z-guest-panicked.core.zst"
        );
        std::fs::write(&p, b"").unwrap();
        let q = output_path(dir.path(), None, "vm1", at, "guest-panicked");
        assert!(q.ends_with("vm1-20261122T115531Z-guest-panicked-2.core.zst"));
        // An upload's name: taken on this host when its receipt is here.
        let r = output_path(dir.path(), Some("s3://b/p/h1/"), "vm1", at, "io-error");
        assert_eq!(
            r,
            Path::new("s3://b/p/h1/vm1-20261122T115531Z-io-error.core.zst")
        );
        std::fs::write(
            dir.path()
                .join("vm1-20261122T115531Z-io-error.core.zst.receipt.json"),
            b"{}",
        )
        .unwrap();
        let r = output_path(dir.path(), Some("s3://b/p/h1/"), "vm1", at, "io-error");
        assert_eq!(
            r,
            Path::new("s3://b/p/h1/vm1-20261122T115531Z-io-error-2.core.zst")
        );
        assert_eq!(safe_name("../etc/x y"), "_etc_x_y");
        assert_eq!(safe_name(""), "guest");
        assert_eq!(safe_name("..."), "guest");
    }
}
