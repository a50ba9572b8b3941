//! Dumps in object storage: an `s3://BUCKET/KEY` given where a reading command takes a
//! file is read by ranged requests through a bounded block cache, and what was fetched
//! is said on stderr when the command ends (`--json` output stays on stdout).

use std::path::Path;
use std::sync::{Arc, Mutex};

use coroner_formats::Core;
use coroner_objstore::{is_object_url, ObjectUrl, RangedObject, Store};

use super::output::human_bytes;
use crate::exit::{ClassifyExt, ExitClass};

/// The objects this command read, for [`report_traffic`].
static OPENED: Mutex<Vec<(ObjectUrl, Arc<Store>)>> = Mutex::new(Vec::new());

/// The `s3://` URL `path` spells, when it spells one.
pub fn object_url(path: &Path) -> Option<&str> {
    path.to_str().filter(|t| is_object_url(t))
}

/// Opens the object at `url` as a dump.
pub fn open(url: &str) -> anyhow::Result<Core> {
    let parsed = ObjectUrl::parse(url).classify(ExitClass::Usage, || "the dump's URL".into())?;
    let store = Arc::new(
        Store::for_bucket(&parsed.bucket)
            .classify(ExitClass::Input, || format!("cannot read {url}"))?,
    );
    if let Ok(mut opened) = OPENED.lock() {
        opened.push((parsed.clone(), store.clone()));
    }
    let object = RangedObject::open(store, parsed.clone())
        .classify(ExitClass::Input, || format!("cannot read {url}"))?;
    coroner_formats::open_source(Path::new(url), Box::new(object))
        .classify(ExitClass::Input, || format!("cannot read {url}"))
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
}
