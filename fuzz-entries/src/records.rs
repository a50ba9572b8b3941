//! The small records coroner reads back from what others write: libvirt's `virsh event`
//! lines, joined into reports as the domain watcher joins them (details bounded, fields
//! looked up), signature files and objects (`CAPTURE.sig.json`, anyone with write access
//! to a bucket can plant one), watchers' receipts, and a container's metadata with its
//! capture record.

use coroner_capture::Receipt;
use coroner_formats::Metadata;
use coroner_record::{CaptureInfo, LibvirtEvent, Signature};

use crate::invariants::terminal_safe;

/// Runs every reader of small records over `data`.
pub fn records(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut events: Vec<LibvirtEvent> = Vec::new();
    for line in text.lines() {
        let _ = LibvirtEvent::domain_of(line);
        match events.last_mut() {
            Some(last) if !LibvirtEvent::starts_report(line) => last.continue_with(line),
            _ => events.push(LibvirtEvent::parse(line, 0)),
        }
    }
    for e in &events {
        bounded(e.detail.len() <= LibvirtEvent::DETAIL_BYTES);
        terminal_safe(&e.kind);
        terminal_safe(&e.detail);
        for key in ["recipient", "action", "action required"] {
            if let Some(v) = e.field(key) {
                terminal_safe(v);
            }
        }
    }
    if let Ok(sig) = serde_json::from_slice::<Signature>(data) {
        terminal_safe(&sig.signature);
        if let Some(t) = &sig.title {
            terminal_safe(t);
        }
        // What is read back is what would be written.
        let again = serde_json::to_vec(&sig)
            .ok()
            .and_then(|b| serde_json::from_slice::<Signature>(&b).ok());
        bounded(again.as_ref() == Some(&sig));
    }
    if let Ok(r) = serde_json::from_slice::<Receipt>(data) {
        terminal_safe(&r.capture);
    }
    if let Ok(meta) = serde_json::from_slice::<Metadata>(data) {
        let _ = CaptureInfo::from_metadata(&meta);
    }
}

#[allow(clippy::panic)]
fn bounded(ok: bool) {
    if !ok {
        panic!("a record broke its invariant");
    }
}
