//! What a capture records beside guest memory: the container metadata's `capture` object.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::qmp::{Event, QemuVersion};

/// The tail of qemu's log (its stderr), where KVM errors and register dumps land.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogTail {
    /// Where it was read from.
    pub source: String,
    /// Bytes of the log before the tail that were not kept.
    pub skipped: u64,
    /// The tail, as text (lossily decoded; escape before printing).
    pub text: String,
}

/// How long each step took, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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

/// The capture's record: the container metadata's `capture` object (schema version 1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureInfo {
    /// Schema version of this object.
    pub schema: u32,
    /// The QMP address used.
    pub qmp: String,
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
}
