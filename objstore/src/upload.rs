//! Writing an object as it is made: a [`Destination`] that streams a container into a
//! multipart upload, so a capture goes to the bucket without a local copy.
//!
//! Nothing is visible under the key until [`Destination::commit`] completes the upload,
//! which S3 makes atomic. A failure, a discard or a drop aborts the upload, which removes
//! the parts sent. An upload that could not be aborted (the process killed, the server
//! unreachable) stays invisible, holding its parts until the bucket's
//! `AbortIncompleteMultipartUpload` lifecycle rule removes them. An upload's key is fixed
//! when it starts and S3 cannot rename, so there is no `.partial` object.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use coroner_formats::{Destination, Error as FormatError};
use object_store::path::Path as KeyPath;
use object_store::{ObjectStoreExt, WriteMultipart};

use crate::store::{first_line, Store};

/// Bytes per part at least: S3 wants 5 MiB but for the last, and fewer, larger parts make
/// fewer requests.
pub const MIN_PART_BYTES: usize = 8 << 20;

/// Bytes per part at most, whatever size is expected (a monitor that reports absurd RAM
/// must not make coroner buffer it): 10,000 such parts hold 5 TB.
pub const MAX_PART_BYTES: usize = 512 << 20;

/// Parts S3 accepts in one upload.
pub const MAX_PARTS: u64 = 10_000;

/// Parts in flight at once: memory stays near `(PARTS_IN_FLIGHT + 1) * part size`.
pub const PARTS_IN_FLIGHT: usize = 4;

/// Uploads this process could not abort, each with why: they hold their parts, invisible,
/// until the bucket's lifecycle rule removes them.
static NOT_ABORTED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// The uploads this process started and could neither complete nor abort (URL, cause)
/// since this was last asked.
pub fn take_uploads_not_aborted() -> Vec<(String, String)> {
    NOT_ABORTED
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default()
}

/// What to tell the user of an upload that could not be aborted.
pub fn not_aborted_message(url: &str, why: &str) -> String {
    format!(
        "the incomplete upload of {url} could not be aborted ({why}); no object appeared, but its parts stay stored, invisible, until the bucket's AbortIncompleteMultipartUpload lifecycle rule removes them"
    )
}

/// An object being uploaded in parts.
pub struct Upload {
    store: Arc<Store>,
    url: PathBuf,
    part_bytes: usize,
    writer: Option<WriteMultipart>,
    sent: u64,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("url", &self.url)
            .field("sent", &self.sent)
            .finish()
    }
}

/// The part size for an object of about `expected` bytes: [`MIN_PART_BYTES`], or larger
/// (whole MiB) when that many parts would not hold it with room to spare, up to
/// [`MAX_PART_BYTES`].
pub fn part_bytes_for(expected: Option<u64>) -> usize {
    let need = expected.unwrap_or(0).div_ceil(MAX_PARTS * 4 / 5);
    let need = need.div_ceil(1 << 20) << 20;
    usize::try_from(need)
        .map_or(MAX_PART_BYTES, |n| n.min(MAX_PART_BYTES))
        .max(MIN_PART_BYTES)
}

impl Upload {
    /// Starts a multipart upload to `key`, sized for about `expected` bytes (a guest's RAM:
    /// a capture is rarely larger).
    pub fn start(
        store: Arc<Store>,
        key: &str,
        expected: Option<u64>,
    ) -> Result<Upload, FormatError> {
        let url = PathBuf::from(format!("s3://{}/{key}", store.bucket()));
        let started = store.block_on(store.client().put_multipart(&KeyPath::from(key)));
        let upload = started.map_err(|e| FormatError::Remote {
            what: "start the upload of",
            location: url.display().to_string(),
            message: first_line(&e),
        })?;
        let part_bytes = part_bytes_for(expected);
        Ok(Upload {
            writer: Some(WriteMultipart::new_with_chunk_size(upload, part_bytes)),
            store,
            url,
            part_bytes,
            sent: 0,
        })
    }

    fn failed(&self, what: &'static str) -> impl FnOnce(object_store::Error) -> FormatError {
        let location = self.url.display().to_string();
        move |e| FormatError::Remote {
            what,
            location,
            message: first_line(&e),
        }
    }

    /// Aborts the upload, removing the parts sent.
    fn abort(&mut self) -> Result<(), FormatError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let result = self
            .store
            .block_on(writer.abort())
            .map_err(self.failed("abort the upload of"));
        if let (Err(e), Ok(mut left)) = (&result, NOT_ABORTED.lock()) {
            left.push((self.url.display().to_string(), e.to_string()));
        }
        result
    }
}

impl Destination for Upload {
    fn append(&mut self, bytes: &[u8]) -> Result<(), FormatError> {
        let limit = self.part_bytes as u64 * MAX_PARTS;
        if self.sent + bytes.len() as u64 > limit {
            return Err(FormatError::Remote {
                what: "upload",
                location: self.url.display().to_string(),
                message: format!(
                    "more than {MAX_PARTS} parts of {} bytes, the most one upload takes",
                    self.part_bytes
                ),
            });
        }
        let fail = self.failed("upload");
        let store = Arc::clone(&self.store);
        let Some(writer) = self.writer.as_mut() else {
            return Err(FormatError::Remote {
                what: "upload",
                location: self.url.display().to_string(),
                message: "the upload ended already".into(),
            });
        };
        // Back pressure: wait while the most parts are in flight; a part that failed (after
        // the client's retries) fails here.
        store
            .block_on(writer.wait_for_capacity(PARTS_IN_FLIGHT))
            .map_err(fail)?;
        {
            // Parts are spawned on the store's runtime.
            let _entered = store.enter();
            writer.write(bytes);
        }
        self.sent += bytes.len() as u64;
        Ok(())
    }

    fn in_progress(&self) -> &Path {
        &self.url
    }

    fn final_name(&self) -> &Path {
        &self.url
    }

    fn commit(mut self: Box<Self>) -> Result<PathBuf, FormatError> {
        let fail = self.failed("complete the upload of");
        let Some(writer) = self.writer.take() else {
            return Err(FormatError::Remote {
                what: "complete the upload of",
                location: self.url.display().to_string(),
                message: "the upload ended already".into(),
            });
        };
        // On failure, `finish` aborts the upload itself (and says when that failed too).
        self.store.block_on(writer.finish()).map_err(fail)?;
        Ok(self.url.clone())
    }

    fn keep_partial(mut self: Box<Self>) -> Result<PathBuf, FormatError> {
        let aborted = self.abort();
        Err(FormatError::Remote {
            what: "keep a partial of",
            location: self.url.display().to_string(),
            message: match aborted {
                Ok(()) => "an upload cannot be kept incomplete; it was aborted".into(),
                Err(e) => {
                    format!("an upload cannot be kept incomplete, and aborting it failed: {e}")
                }
            },
        })
    }

    fn discard(mut self: Box<Self>) -> Result<(), FormatError> {
        self.abort()
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = self.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_with_the_object_so_that_ten_thousand_hold_it() {
        assert_eq!(part_bytes_for(None), MIN_PART_BYTES);
        assert_eq!(part_bytes_for(Some(2 << 30)), MIN_PART_BYTES);
        // 1 TiB: 8000 parts of at least 132 MiB.
        let p = part_bytes_for(Some(1 << 40)) as u64;
        assert!(p * 8000 >= 1 << 40 && p % (1 << 20) == 0, "{p}");
        assert!(p * MAX_PARTS >= (1u64 << 40) * 5 / 4);
        // A monitor's absurd RAM size is not buffered.
        assert_eq!(part_bytes_for(Some(u64::MAX)), MAX_PART_BYTES);
    }
}
