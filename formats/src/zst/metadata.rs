//! Coroner's metadata frame: a zstd skippable frame (magic `0x184D2A5B`) whose payload is
//! `b"CORONER\0"` followed by the UTF-8 JSON of [`Metadata`].
//!
//! The JSON is versioned by `format_version`. Readers refuse a newer version than
//! [`FORMAT_VERSION`] and keep fields they do not know in [`Metadata::extra`], so a file
//! rewritten by an older tool loses nothing.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::digest::ContentDigest;
use super::{le_u32, FORMAT_VERSION};
use crate::error::{Error, Result};

/// Magic of the metadata skippable frame.
pub(crate) const METADATA_MAGIC: u32 = 0x184D_2A5B;

/// First bytes of the metadata payload.
pub(crate) const METADATA_TAG: &[u8; 8] = b"CORONER\0";

/// Largest metadata frame (header included) written or read: the reader refuses to
/// allocate more than this for it.
pub(crate) const MAX_METADATA_FRAME: u64 = 16 << 20;

/// Value of [`Metadata::format`].
pub(crate) const FORMAT_NAME: &str = "coroner-core";

/// Names of the fields of [`Metadata`] itself; keys of [`Metadata::extra`] with one of
/// these names are not written (they would shadow or duplicate the real field).
const KNOWN_FIELDS: &[&str] = &[
    "format",
    "format_version",
    "tool",
    "created_unix",
    "complete",
    "incomplete_reason",
    "content_size",
    "content_sha256",
    "content_frames_blake3",
    "frame_size",
    "origin",
    "host",
    "vmcoreinfo_offset",
    "vmcoreinfo_candidates",
    "capture",
];

/// What a `.core.zst` says about itself, stored as JSON in its metadata frame.
///
/// The writer sets `format`, `format_version`, `complete`, `incomplete_reason`,
/// `content_size`, `content_frames_blake3` and `frame_size`; the caller fills in the rest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Always `"coroner-core"`.
    pub format: String,
    /// The [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// The program that wrote the file, e.g. `"coroner 0.1.0"`.
    pub tool: String,
    /// When the file was started, in seconds since the Unix epoch.
    pub created_unix: u64,
    /// True only when every byte of the source was written; an interrupted capture is
    /// `false` and keeps its `.partial` name.
    pub complete: bool,
    /// Why the file is incomplete, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    /// Number of decompressed bytes.
    pub content_size: u64,
    /// Format 1: lowercase hex sha256 of the decompressed bytes (empty in format 2).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_sha256: String,
    /// Format 2: lowercase hex BLAKE3 of the frame manifest (FORMAT.md; empty in format 1).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_frames_blake3: String,
    /// Decompressed size of every data frame but the last.
    pub frame_size: u64,
    /// How the content was obtained, e.g. `"compress /path/x.elf"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The host the content was captured on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Content offset of a VMCOREINFO note found while streaming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmcoreinfo_offset: Option<u64>,
    /// Guest-physical addresses of pages that looked like the guest's VMCOREINFO (note or
    /// text page) while the content was written; analysis validates them before use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vmcoreinfo_candidates: Vec<u64>,
    /// Capture details; the schema belongs to the capture crate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<serde_json::Value>,
    /// Fields this version does not know, kept for forward compatibility.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Metadata {
    /// Metadata for a new file written by `tool`, created now, with nothing else known.
    pub fn new(tool: impl Into<String>) -> Self {
        let created_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            format: FORMAT_NAME.to_string(),
            format_version: FORMAT_VERSION,
            tool: tool.into(),
            created_unix,
            complete: false,
            incomplete_reason: None,
            content_size: 0,
            content_sha256: String::new(),
            content_frames_blake3: String::new(),
            frame_size: 0,
            origin: None,
            host: hostname(),
            vmcoreinfo_offset: None,
            vmcoreinfo_candidates: Vec::new(),
            capture: None,
            extra: BTreeMap::new(),
        }
    }
}

impl Metadata {
    /// The content digest this file records: format 2's frame manifest, else format 1's
    /// sha256 of the content; `None` when it records neither.
    pub fn recorded_digest(&self) -> Option<ContentDigest> {
        if !self.content_frames_blake3.is_empty() {
            Some(ContentDigest::FramesBlake3(
                self.content_frames_blake3.clone(),
            ))
        } else if !self.content_sha256.is_empty() {
            Some(ContentDigest::Sha256(self.content_sha256.clone()))
        } else {
            None
        }
    }
}

/// The two fields read before the rest, so a newer version is refused with a clear
/// message rather than a parse error about a field it changed.
#[derive(Deserialize)]
struct Probe {
    format: Option<serde_json::Value>,
    format_version: Option<serde_json::Value>,
}

/// The whole metadata frame (skippable header included) for `meta`, which will be
/// written at file offset `offset`.
pub(crate) fn encode_frame(meta: &Metadata, offset: u64) -> Result<Vec<u8>> {
    let err = |reason: String| Error::Metadata { offset, reason };
    let mut base = meta.clone();
    let extra = std::mem::take(&mut base.extra);
    let mut map = match serde_json::to_value(&base) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => return Err(err("metadata does not serialize to a JSON object".into())),
        Err(e) => return Err(err(format!("cannot serialize: {e}"))),
    };
    for (key, value) in extra {
        if !KNOWN_FIELDS.contains(&key.as_str()) {
            map.entry(key).or_insert(value);
        }
    }
    let json = serde_json::to_vec(&map).map_err(|e| err(format!("cannot serialize: {e}")))?;
    let payload_len = METADATA_TAG.len() + json.len();
    let frame_len = 8 + payload_len;
    if frame_len as u64 > MAX_METADATA_FRAME {
        return Err(err(format!(
            "metadata of {frame_len} bytes exceeds the limit of {MAX_METADATA_FRAME} bytes"
        )));
    }
    let payload_len = u32::try_from(payload_len).map_err(|_| {
        err(format!(
            "metadata of {payload_len} bytes does not fit a frame"
        ))
    })?;
    let mut frame = Vec::with_capacity(frame_len);
    frame.extend_from_slice(&METADATA_MAGIC.to_le_bytes());
    frame.extend_from_slice(&payload_len.to_le_bytes());
    frame.extend_from_slice(METADATA_TAG);
    frame.extend_from_slice(&json);
    Ok(frame)
}

/// Parses a whole metadata frame, `frame`, found at file offset `offset`.
pub(crate) fn decode_frame(frame: &[u8], offset: u64) -> Result<Metadata> {
    let err = |reason: String| Error::Metadata { offset, reason };
    let header = 8 + METADATA_TAG.len();
    if frame.len() < header {
        return Err(err(format!(
            "{} bytes lie between the data frames and the seek table, too few for a metadata frame",
            frame.len()
        )));
    }
    let magic = le_u32(frame, 0).unwrap_or(0);
    if magic != METADATA_MAGIC {
        return Err(err(format!(
            "magic {magic:#010x} is not the metadata frame magic {METADATA_MAGIC:#010x}"
        )));
    }
    let declared = le_u32(frame, 4).unwrap_or(0);
    if u64::from(declared) + 8 != frame.len() as u64 {
        return Err(err(format!(
            "frame says its payload is {declared} bytes, but {} bytes lie between the data frames and the seek table",
            frame.len()
        )));
    }
    if &frame[8..header] != METADATA_TAG {
        return Err(err(format!(
            "payload starts with {:02x?}, not \"CORONER\\0\"",
            &frame[8..header]
        )));
    }
    let json = &frame[header..];
    let probe: Probe =
        serde_json::from_slice(json).map_err(|e| err(format!("invalid JSON: {e}")))?;
    match probe.format.as_ref().and_then(|f| f.as_str()) {
        Some(FORMAT_NAME) => {}
        Some(other) => {
            return Err(err(format!(
                "format is {other:?}, expected {FORMAT_NAME:?}"
            )))
        }
        None => {
            return Err(err(format!(
                "no string \"format\" field (expected {FORMAT_NAME:?})"
            )))
        }
    }
    match probe.format_version.as_ref().and_then(|v| v.as_u64()) {
        Some(v) if v > u64::from(FORMAT_VERSION) => {
            return Err(err(format!(
                "format_version {v} is newer than this reader's {FORMAT_VERSION}; upgrade coroner"
            )))
        }
        Some(0) => return Err(err("format_version 0 is not a valid version".into())),
        Some(_) => {}
        None => return Err(err("no unsigned integer \"format_version\" field".into())),
    }
    serde_json::from_slice(json).map_err(|e| err(format!("invalid metadata: {e}")))
}

/// This machine's name, as [`Metadata::host`] records it.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(json: &str) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&METADATA_MAGIC.to_le_bytes());
        f.extend_from_slice(&((8 + json.len()) as u32).to_le_bytes());
        f.extend_from_slice(METADATA_TAG);
        f.extend_from_slice(json.as_bytes());
        f
    }

    fn full() -> Metadata {
        let mut m = Metadata::new("coroner test");
        m.complete = true;
        m.incomplete_reason = Some("r".into());
        m.content_size = 5;
        m.content_sha256 = "ab".into();
        m.content_frames_blake3 = "cd".into();
        m.frame_size = 4096;
        m.origin = Some("compress x".into());
        m.host = Some("h".into());
        m.vmcoreinfo_offset = Some(7);
        m.capture = Some(serde_json::json!({"qemu": "9.2"}));
        m.vmcoreinfo_candidates = vec![0x11e_8000];
        m
    }

    #[test]
    fn known_fields_list_matches_the_struct() {
        let v = serde_json::to_value(full()).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        let mut known: Vec<_> = KNOWN_FIELDS.iter().map(|s| s.to_string()).collect();
        known.sort();
        assert_eq!(keys, known);
    }

    #[test]
    fn round_trip_keeps_unknown_fields_and_drops_clashing_extras() {
        let mut m = full();
        m.host = None;
        m.extra
            .insert("future".into(), serde_json::json!({"a": [1, 2]}));
        m.extra.insert("host".into(), serde_json::json!(5));
        m.extra.insert("complete".into(), serde_json::json!("no"));
        let frame = encode_frame(&m, 100).unwrap();
        let back = decode_frame(&frame, 100).unwrap();
        let mut expected = m.clone();
        expected.extra.remove("host");
        expected.extra.remove("complete");
        assert_eq!(back, expected);
        assert_eq!(back.extra["future"], serde_json::json!({"a": [1, 2]}));
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let json = r#"{"format":"coroner-core","format_version":1,"tool":"t","created_unix":1,
            "complete":false,"content_size":0,"content_sha256":"","frame_size":4096}"#;
        let m = decode_frame(&frame_of(json), 0).unwrap();
        assert_eq!(m.origin, None);
        assert!(m.extra.is_empty());
    }

    #[test]
    fn refuses_other_formats_and_newer_versions() {
        let cases = [
            r#"{"format":"other","format_version":1}"#,
            r#"{"format_version":1}"#,
            r#"{"format":"coroner-core","format_version":2}"#,
            r#"{"format":"coroner-core","format_version":0}"#,
            r#"{"format":"coroner-core"}"#,
            r#"{"format":"coroner-core","format_version":1}"#,
            r#"[1,2]"#,
            "not json",
        ];
        for json in cases {
            let r = decode_frame(&frame_of(json), 42);
            assert!(
                matches!(r, Err(Error::Metadata { offset: 42, .. })),
                "{json}: {r:?}"
            );
        }
    }

    #[test]
    fn refuses_malformed_frames() {
        let good = encode_frame(&full(), 0).unwrap();
        assert!(decode_frame(&good, 0).is_ok());
        let mut bad_magic = good.clone();
        bad_magic[0] ^= 1;
        let mut bad_len = good.clone();
        bad_len[4] ^= 1;
        let mut bad_tag = good.clone();
        bad_tag[9] = b'X';
        for (name, f) in [
            ("magic", bad_magic),
            ("len", bad_len),
            ("tag", bad_tag),
            ("short", good[..10].to_vec()),
            ("empty", Vec::new()),
        ] {
            assert!(
                matches!(decode_frame(&f, 0), Err(Error::Metadata { .. })),
                "{name}"
            );
        }
    }
}
