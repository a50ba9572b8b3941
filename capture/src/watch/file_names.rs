//! Names of what `watch` writes: `NAME-STAMP-REASON.core.zst`, never over an existing file
//! or a `.partial` one.

use std::path::{Path, PathBuf};

/// `DIR/NAME-20261122T101502Z-REASON.core.zst`, with `-2`, `-3`, ... when taken.
pub(crate) fn output_path(
    dir: &Path,
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
    let mut path = dir.join(format!("{base}.core.zst"));
    let mut n = 2;
    while path.exists() || partial_of(&path).exists() {
        path = dir.join(format!("{base}-{n}.core.zst"));
        n += 1;
    }
    path
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
        let p = output_path(dir.path(), "vm1", at, "guest-panicked");
        assert_eq!(
            p.file_name().unwrap(),
            "vm1-20261122T115531Z-guest-panicked.core.zst"
        );
        std::fs::write(&p, b"").unwrap();
        let q = output_path(dir.path(), "vm1", at, "guest-panicked");
        assert!(q.ends_with("vm1-20261122T115531Z-guest-panicked-2.core.zst"));
        assert_eq!(safe_name("../etc/x y"), "_etc_x_y");
        assert_eq!(safe_name(""), "guest");
        assert_eq!(safe_name("..."), "guest");
    }
}
