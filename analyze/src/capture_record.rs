//! The capture's record of a dump, when the dump is a coroner capture.

use coroner_formats::Core;
use coroner_record::CaptureInfo;

/// The capture record in `core`'s metadata: `Ok(None)` for a file without one (a plain
/// ELF, a `compress`ed dump), `Err` with the problem, in words, when it is malformed.
pub fn capture_record(core: &Core) -> Result<Option<CaptureInfo>, String> {
    match &core.metadata {
        Some(meta) => CaptureInfo::from_metadata(meta).map_err(|e| e.to_string()),
        None => Ok(None),
    }
}
