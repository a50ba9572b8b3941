//! Signature files beside captures (`CAPTURE.sig.json`): read back when they still match
//! their capture (same size and modification time), otherwise made again by analysing
//! the capture, and stored atomically (0600, a fresh temporary file renamed over any old
//! one, which may be a planted symlink: rename replaces the link, never follows it).

use std::path::Path;

use coroner_record::{signature_path, Signature, SIGNATURE_MAX_BYTES, SIGNATURE_SCHEMA};

/// A capture file's size and modification time in nanoseconds.
pub fn file_stamp(capture: &Path) -> std::io::Result<(u64, u128)> {
    let m = std::fs::metadata(capture)?;
    let mtime = m
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok((m.len(), mtime))
}

/// The stored signature of `capture`, when there is one of this schema for the capture
/// as it is now (`stamp`).
pub fn load(capture: &Path, stamp: (u64, u128)) -> Option<Signature> {
    let bytes =
        coroner_formats::input_file::read_small(&signature_path(capture), SIGNATURE_MAX_BYTES)
            .ok()?;
    let sig: Signature = serde_json::from_slice(&bytes).ok()?;
    let name = capture.file_name()?.to_string_lossy();
    (sig.schema == SIGNATURE_SCHEMA
        && sig.capture == name
        && (sig.capture_bytes, sig.capture_mtime_ns) == stamp)
        .then_some(sig)
}

/// Analyses `capture` and returns its signature.
pub fn sign(capture: &Path, stamp: (u64, u128)) -> anyhow::Result<Signature> {
    let core = super::kernel::open(capture)?;
    Ok(sign_core(&core, stamp))
}

fn sign_core(core: &coroner_formats::Core, stamp: (u64, u128)) -> Signature {
    let session = super::kernel::session(core, false);
    let report = session.report();
    coroner_analyze::sign(
        core,
        &report,
        stamp,
        concat!("coroner ", env!("CARGO_PKG_VERSION")),
    )
}

/// The signature of the object `url` (as listed: `listed`) in `store`: its signature
/// object (`KEY.sig.json`, its bytes `stored` as read with the listing) when it still
/// matches, else made now by ranged reads and written beside it unless `store_new` is
/// false.
pub fn signature_of_object(
    store: &std::sync::Arc<coroner_objstore::Store>,
    url: &coroner_objstore::ObjectUrl,
    listed: &coroner_objstore::Listed,
    stored: Option<&[u8]>,
    store_new: bool,
) -> anyhow::Result<(Signature, bool, Option<String>)> {
    let sig_key = format!("{}{}", url.key, coroner_record::SIGNATURE_SUFFIX);
    let name = url.key.rsplit('/').next().unwrap_or(&url.key);
    if let Some(bytes) = stored {
        let old = serde_json::from_slice::<Signature>(bytes)
            .ok()
            .filter(|sig| {
                sig.schema == SIGNATURE_SCHEMA
                    && sig.capture == name
                    && sig.capture_bytes == listed.size
                    && sig.capture_etag == listed.e_tag
            });
        if let Some(sig) = old {
            return Ok((sig, false, None));
        }
    }
    let core = super::object_input::open_in(store.clone(), url)?;
    let mut sig = sign_core(&core, (listed.size, listed.modified_ns));
    sig.capture = name.to_string();
    sig.capture_etag = listed.e_tag.clone();
    let failed = if store_new {
        let mut text = serde_json::to_vec_pretty(&sig)?;
        text.push(b'\n');
        store
            .write_small(&sig_key, text)
            .err()
            .map(|e| e.to_string())
    } else {
        None
    };
    Ok((sig, true, failed))
}

/// Stores `sig` beside `capture`.
pub fn store(capture: &Path, sig: &Signature) -> anyhow::Result<()> {
    let mut out = coroner_formats::OutputFile::create(&signature_path(capture))?;
    let mut text = serde_json::to_vec_pretty(sig)?;
    text.push(b'\n');
    std::io::Write::write_all(out.file_mut(), &text)?;
    out.commit()?;
    Ok(())
}

/// The signature of `capture`: the stored one when it matches, else made now and
/// stored unless `store` is false (a failure to store is returned beside it). The bool
/// says whether it was made now.
pub fn signature_of(
    capture: &Path,
    store_new: bool,
) -> anyhow::Result<(Signature, bool, Option<String>)> {
    let stamp = file_stamp(capture)?;
    if let Some(sig) = load(capture, stamp) {
        return Ok((sig, false, None));
    }
    let sig = sign(capture, stamp)?;
    let stored = if store_new {
        store(capture, &sig).err().map(|e| format!("{e:#}"))
    } else {
        None
    };
    Ok((sig, true, stored))
}

/// Signs the capture just uploaded to `url` and writes its signature object beside it;
/// a failure to write that is returned as the error.
pub fn sign_uploaded(url: &str) -> anyhow::Result<()> {
    let url = coroner_objstore::ObjectUrl::parse(url)?;
    let store = std::sync::Arc::new(coroner_objstore::Store::for_bucket(&url.bucket)?);
    let listed = store.stat(&url.key)?;
    let (_, _, failed) = signature_of_object(&store, &url, &listed, None, true)?;
    match failed {
        Some(e) => Err(anyhow::anyhow!(e)),
        None => Ok(()),
    }
}
