//! Dumps in object storage: an `s3://BUCKET/KEY` given where a reading command takes a
//! file is read by ranged requests through a bounded block cache, and what was fetched
//! is said on stderr when the command ends (`--json` output stays on stdout).

use std::path::Path;
use std::sync::{Arc, Mutex};

use coroner_formats::Core;
use coroner_objstore::{ObjectUrl, RangedObject, Store};

use super::output::human_bytes;
use crate::exit::{ClassifyExt, ExitClass};

/// The locations this command read (an object, or a prefix it listed), and their
/// stores, for [`report_traffic`].
static OPENED: Mutex<Vec<(String, Arc<Store>)>> = Mutex::new(Vec::new());

/// A client for `url`'s bucket, noted for [`report_traffic`] under `url`.
pub fn store_for(url: &ObjectUrl) -> anyhow::Result<Arc<Store>> {
    let store = Arc::new(
        Store::for_bucket(&url.bucket)
            .classify(ExitClass::Input, || format!("cannot read {url}"))?,
    );
    if let Ok(mut opened) = OPENED.lock() {
        opened.push((url.to_string(), store.clone()));
    }
    Ok(store)
}

/// Opens the object `url` of `store` as a dump.
pub fn open_in(store: Arc<Store>, url: &ObjectUrl) -> anyhow::Result<Core> {
    let name = url.to_string();
    let object = RangedObject::open(store, url.clone())
        .classify(ExitClass::Input, || format!("cannot read {name}"))?;
    coroner_formats::open_source(Path::new(&name), Box::new(object))
        .classify(ExitClass::Input, || format!("cannot read {name}"))
}

/// Opens the object at `url` as a dump.
pub fn open(url: &str) -> anyhow::Result<Core> {
    let parsed = ObjectUrl::parse(url).classify(ExitClass::Usage, || "the dump's URL".into())?;
    let store = store_for(&parsed)?;
    open_in(store, &parsed)
}

/// The object at `url` as bytes read by ranged requests.
pub fn open_object(url: &str) -> anyhow::Result<Box<dyn coroner_formats::ByteSource>> {
    let parsed = ObjectUrl::parse(url).classify(ExitClass::Usage, || "the dump's URL".into())?;
    let store = store_for(&parsed)?;
    let object = RangedObject::open(store, parsed)
        .classify(ExitClass::Input, || format!("cannot read {url}"))?;
    Ok(Box::new(object))
}

/// The container at `url`, read by ranged requests (for `verify` and `slim`, which read
/// it whole or check every frame).
pub fn open_container(url: &str) -> anyhow::Result<coroner_formats::ContainerReader> {
    coroner_formats::ContainerReader::from_source(
        open_object(url)?,
        coroner_formats::DEFAULT_CACHE_BYTES,
    )
    .classify(ExitClass::Input, || format!("cannot read {url}"))
}

/// The container at `path`: a file, or an object (`s3://BUCKET/KEY`).
pub fn container(path: &Path) -> anyhow::Result<coroner_formats::ContainerReader> {
    match coroner_objstore::object_url_of(path) {
        Some(url) => open_container(url),
        None => coroner_formats::ContainerReader::open(path).classify(ExitClass::Input, || {
            format!("cannot read {}", path.display())
        }),
    }
}

/// Says on stderr what each object read cost: bytes and requests, beside its size.
pub fn report_traffic() {
    let Ok(opened) = OPENED.lock() else { return };
    for (url, store) in opened.iter() {
        let t = store.traffic();
        eprintln!(
            "coroner: fetched {} in {} request(s) from {url}",
            human_bytes(t.bytes),
            t.requests
        );
    }
    for (url, why) in coroner_objstore::take_uploads_not_aborted() {
        eprintln!(
            "coroner: {}",
            coroner_objstore::not_aborted_message(&url, &why)
        );
    }
}
