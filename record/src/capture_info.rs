//! The capture's record ([`CaptureInfo`]) and how it is stored in, and read from, a
//! container's metadata.

use std::collections::BTreeMap;

use coroner_formats::Metadata;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Event, LogTail, QemuVersion};

/// The schema version this coroner writes.
pub const SCHEMA: u32 = 1;

/// Why a container's capture record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The `capture` object is there but not a capture record (a field of the wrong type).
    #[error("the capture record in the metadata is malformed: {0}")]
    Malformed(#[source] serde_json::Error),
}

/// How long each step took, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Timings {
    /// Connecting and negotiating QMP.
    pub connect_ms: u64,
    /// The preflight queries.
    pub preflight_ms: u64,
    /// Register, memory-tree and log collection.
    pub state_ms: u64,
    /// The dump itself, from `dump-guest-memory` to the last byte.
    pub dump_ms: u64,
    /// Everything.
    pub total_ms: u64,
    /// When the dump step began (the pipe handed to qemu, then `dump-guest-memory`), in
    /// microseconds since the epoch: `watch` measures its latency from the freezing event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump_started_unix_us: Option<u64>,
}

/// What a capture through libvirt records of the domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LibvirtRecord {
    /// The connection URI.
    pub uri: String,
    /// The domain's name.
    pub domain: String,
    /// `virsh domstate --reason` before the dump, e.g. `crashed (panicked)`.
    pub state_before: String,
    /// And after it.
    pub state_after: Option<String>,
    /// The domain's XML (`virsh dumpxml`).
    pub xml: Option<String>,
    /// libvirt's events for the domain that `watch` saw before this capture (since it
    /// started or since its previous capture), oldest first, the last
    /// [`LibvirtEvent::KEPT`] at most. A one-shot `capture` subscribes to none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<LibvirtEvent>,
    /// True when the capture was made by `watch`, which follows libvirt's events (an
    /// empty `events` then means that none came).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub events_watched: bool,
    /// How the capture talked to qemu: `dump` (libvirt's dump API only, taint-free) or
    /// `dump+monitor` (also `info registers -a` and `info mtree -f` through libvirt's
    /// monitor passthrough, which taints the domain). Absent: `dump`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// One libvirt domain event as `virsh event` reported it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LibvirtEvent {
    /// When coroner received it, in microseconds since the epoch.
    pub time_unix_us: u64,
    /// The event's kind: `lifecycle`, `io-error-reason`, `watchdog`, ...
    pub kind: String,
    /// What libvirt said of it: `Suspended I/O Error`, `... pause due to enospc`.
    pub detail: String,
}

impl LibvirtEvent {
    /// Most events a capture keeps.
    pub const KEPT: usize = 256;
    /// Longest detail kept, in bytes.
    pub const DETAIL_BYTES: usize = 1024;

    /// Parses the first line of a `virsh event` report: `event 'KIND' for domain
    /// 'NAME': DETAIL`, or without `: DETAIL` (`reboot`; `memory-failure`, whose details
    /// follow on lines of their own: [`Self::continue_with`]). Other lines are kept
    /// whole as the detail of kind `?`.
    pub fn parse(line: &str, time_unix_us: u64) -> LibvirtEvent {
        let parsed = line.strip_prefix("event '").and_then(|rest| {
            let (kind, rest) = rest.split_once('\'')?;
            let rest = rest.strip_prefix(" for domain '")?;
            let detail = match rest.split_once("': ") {
                Some((_, detail)) => detail,
                None if rest.ends_with('\'') || rest.ends_with("':") => "",
                None => return None,
            };
            Some((kind, detail))
        });
        let (kind, detail) = parsed.unwrap_or(("?", line));
        let mut e = LibvirtEvent {
            time_unix_us,
            kind: kind.to_string(),
            detail: String::new(),
        };
        e.push_detail(detail);
        e
    }

    /// True when `line` begins a new event report (not a continuation line).
    pub fn starts_report(line: &str) -> bool {
        line.starts_with("event '")
    }

    /// Adds a continuation line of this event's report (`recipient: guest`), joined
    /// with `; `.
    pub fn continue_with(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        if !self.detail.is_empty() {
            self.push_detail("; ");
        }
        self.push_detail(line);
    }

    fn push_detail(&mut self, text: &str) {
        let room = Self::DETAIL_BYTES.saturating_sub(self.detail.len());
        let mut end = text.len().min(room);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.detail.push_str(&text[..end]);
    }

    /// The value of `key: value` in the detail (`recipient`, `action`, `action
    /// required`), as libvirt's multi-line reports give them.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.detail.split("; ").find_map(|part| {
            part.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(": "))
                .map(str::trim)
        })
    }

    /// The domain a `virsh event` line is about, when it names one.
    pub fn domain_of(line: &str) -> Option<&str> {
        let rest = line
            .strip_prefix("event '")?
            .split_once("' for domain '")?
            .1;
        Some(rest.split_once("': ").map_or(rest, |(name, _)| name))
    }
}

/// The capture's record: the container metadata's `capture` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaptureInfo {
    /// Schema version of this object ([`SCHEMA`] when written by this coroner).
    pub schema: u32,
    /// The QMP address used.
    pub qmp: String,
    /// The name `watch` knows the guest by (`--qmp NAME=SOCK`, the socket's file name,
    /// the libvirt domain), when `watch` made the capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<String>,
    /// qemu's version from the QMP greeting.
    pub qemu_version: QemuVersion,
    /// `query-target` architecture (`x86_64`).
    pub target: Option<String>,
    /// `query-kvm`.
    pub kvm: Option<Value>,
    /// Guest RAM size in bytes (`query-memory-size-summary`).
    pub ram_bytes: Option<u64>,
    /// `query-cpus-fast` (or `query-cpus` on old qemu).
    pub cpus: Value,
    /// Run state when coroner connected.
    pub run_state_before: String,
    /// Run state after the dump.
    pub run_state_after: Option<String>,
    /// True when coroner froze the guest itself (`--stop`).
    pub stopped_by_coroner: bool,
    /// True when the guest was running and the dump was taken anyway (`--allow-running`):
    /// qemu pauses it for the dump, so memory is consistent, but it ran before and after.
    pub live: bool,
    /// How the bytes travelled: `pipe` (fd passing) or `file`.
    pub method: String,
    /// The `dump-guest-memory` format qemu wrote: `elf` (kept byte for byte), or a
    /// `kdump-*` one (converted to an ELF core as it arrived: the metadata's
    /// `converted_from` says so). Absent in captures before it was recorded: `elf`.
    pub dump_format: Option<String>,
    /// The libvirt domain captured through libvirt's own dump (no QMP): absent for a
    /// capture over QMP.
    pub libvirt: Option<LibvirtRecord>,
    /// HMP `info registers -a`: EFER, debug, FPU/SSE state of every vCPU.
    pub info_registers: Option<String>,
    /// HMP `info mtree -f`: which device owns which guest-physical range.
    pub info_mtree: Option<String>,
    /// qemu's process id, when qemu runs on this host.
    pub qemu_pid: Option<u32>,
    /// qemu's command line, when qemu runs on this host.
    pub qemu_cmdline: Option<Vec<String>>,
    /// The host CPU's vendor (`GenuineIntel`, `AuthenticAMD`), when qemu runs on this
    /// host: KVM's exit data is VMX or SVM by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_cpu_vendor: Option<String>,
    /// The tail of qemu's log.
    pub qemu_log: Option<LogTail>,
    /// Final `query-dump`.
    pub dump_status: Option<Value>,
    /// Every QMP event seen during the capture, in order, within bounds: a monitor that
    /// floods events has the rest counted in `events_dropped`.
    pub events: Vec<Event>,
    /// Events not kept on this connection because their budget was full, by name
    /// (`(other names)` past 63 names). Absent when none was dropped.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub events_dropped: BTreeMap<String, u64>,
    /// Step timings.
    pub timings: Timings,
    /// Things that went wrong without stopping the capture.
    pub warnings: Vec<String>,
    /// Fields this coroner does not know (written by a newer one), kept as they are.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl CaptureInfo {
    /// The record in `meta`, if it has one.
    pub fn from_metadata(meta: &Metadata) -> Result<Option<CaptureInfo>, RecordError> {
        meta.capture
            .as_ref()
            .map(|v| CaptureInfo::deserialize(v).map_err(RecordError::Malformed))
            .transpose()
    }

    /// Stores the record in `meta`.
    pub fn store(&self, meta: &mut Metadata) {
        meta.capture = serde_json::to_value(self).ok();
    }

    /// The names of the recorded QMP events, in order.
    pub fn event_names(&self) -> Vec<String> {
        self.events.iter().map(|e| e.event.clone()).collect()
    }
}

#[cfg(test)]
mod libvirt_event_tests {
    use super::LibvirtEvent;

    #[test]
    fn virsh_event_lines() {
        let e = LibvirtEvent::parse(
            "event 'lifecycle' for domain 'web-1': Suspended I/O Error",
            7,
        );
        assert_eq!(
            (e.time_unix_us, e.kind.as_str(), e.detail.as_str()),
            (7, "lifecycle", "Suspended I/O Error")
        );
        let line =
            "event 'io-error-reason' for domain 'a': b': /d.raw (virtio-disk0) pause due to enospc";
        assert_eq!(LibvirtEvent::domain_of(line), Some("a"));
        assert_eq!(
            LibvirtEvent::parse(line, 0).detail,
            "b': /d.raw (virtio-disk0) pause due to enospc"
        );
        let reboot = LibvirtEvent::parse("event 'reboot' for domain 'd'", 0);
        assert_eq!(
            (reboot.kind.as_str(), reboot.detail.as_str()),
            ("reboot", "")
        );
        // As virsh 9.0 prints a memory failure, line by line.
        let mut mf = LibvirtEvent::parse("event 'memory-failure' for domain 'd':", 0);
        assert!(!LibvirtEvent::starts_report("recipient: guest"));
        for l in [
            "recipient: guest",
            "action: inject",
            "flags:",
            "\taction required: 1",
            "\trecursive: 0",
        ] {
            mf.continue_with(l);
        }
        assert_eq!(mf.kind, "memory-failure");
        assert_eq!(
            mf.detail,
            "recipient: guest; action: inject; flags:; action required: 1; recursive: 0"
        );
        assert_eq!(mf.field("action"), Some("inject"));
        assert_eq!(mf.field("action required"), Some("1"));
        assert_eq!(mf.field("missing"), None);
        let odd = LibvirtEvent::parse("events received: 3", 0);
        assert_eq!(
            (odd.kind.as_str(), odd.detail.as_str()),
            ("?", "events received: 3")
        );
        assert_eq!(LibvirtEvent::domain_of("garbage"), None);
        let long = format!("event 'x' for domain 'd': {}", "é".repeat(2000));
        assert!(LibvirtEvent::parse(&long, 0).detail.len() <= LibvirtEvent::DETAIL_BYTES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_keeps_what_it_does_not_know() {
        let info = CaptureInfo {
            schema: SCHEMA,
            qmp: "/run/q.sock".into(),
            run_state_before: "guest-panicked".into(),
            events: vec![Event {
                event: "STOP".into(),
                ..Event::default()
            }],
            ..CaptureInfo::default()
        };
        let mut v = serde_json::to_value(&info).unwrap();
        v["from_the_future"] = serde_json::json!({"x": 1});
        let read = CaptureInfo::deserialize(&v).unwrap();
        assert_eq!(read.qmp, "/run/q.sock");
        assert_eq!(read.event_names(), ["STOP"]);
        assert_eq!(read.extra["from_the_future"]["x"], 1);
        assert_eq!(serde_json::to_value(&read).unwrap(), v);
    }

    #[test]
    fn an_older_sparser_record_reads_and_a_wrong_type_is_an_error() {
        let old = serde_json::json!({"schema": 1, "qmp": "tcp:1.2.3.4:4444", "events": []});
        let read = CaptureInfo::deserialize(&old).unwrap();
        assert_eq!(read.qmp, "tcp:1.2.3.4:4444");
        assert!(read.qemu_log.is_none());
        let bad = serde_json::json!({"schema": 1, "events": "many"});
        assert!(CaptureInfo::deserialize(&bad).is_err());
    }
}
