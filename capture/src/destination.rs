//! Where a capture is written: a local file, or `s3://BUCKET/KEY`, streamed into a
//! multipart upload as qemu writes (no local copy; nothing under the key unless whole).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use coroner_formats::{ContainerWriter, Error as FormatError, WriteOptions};
use coroner_objstore::{object_url_of, ObjectUrl, Store, Upload};

/// The container writer for `output`, sized for about `expected` bytes.
pub(crate) fn open_writer(
    output: &Path,
    write: WriteOptions,
    expected: Option<u64>,
) -> Result<ContainerWriter, FormatError> {
    let Some(url) = object_url_of(output) else {
        return ContainerWriter::create(output, write);
    };
    let bad = |message: String| FormatError::Remote {
        what: "upload to",
        location: url.to_string(),
        message,
    };
    let object = ObjectUrl::parse_object(url).map_err(|e| bad(e.to_string()))?;
    let store = Store::for_bucket(&object.bucket).map_err(|e| bad(e.to_string()))?;
    let upload = Upload::start(Arc::new(store), &object.key, expected)?;
    ContainerWriter::into_destination(Box::new(upload), write)
}

/// The local directory a capture to `output` works in (a FIFO for libvirt, qemu's file
/// for a monitor that cannot take a pipe): the file's own directory, or for an upload
/// `$TMPDIR` (else `/tmp`).
pub(crate) fn output_dir(output: &Path) -> PathBuf {
    if object_url_of(output).is_some() {
        return std::env::temp_dir();
    }
    output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_working_directory_of_an_output() {
        assert_eq!(output_dir(Path::new("x.core.zst")), Path::new("."));
        assert_eq!(output_dir(Path::new("/a/x.core.zst")), Path::new("/a"));
        assert_eq!(
            output_dir(Path::new("s3://b/k.core.zst")),
            std::env::temp_dir()
        );
    }

    #[test]
    fn an_upload_needs_an_object_not_a_prefix() {
        for url in ["s3://bucket/", "s3://bucket/dir/", "s3://Bad_Bucket/k"] {
            let Err(e) = open_writer(Path::new(url), WriteOptions::default(), None) else {
                panic!("{url} opened");
            };
            assert!(matches!(e, FormatError::Remote { .. }), "{url}: {e}");
        }
    }
}
