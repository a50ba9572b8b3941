//! What `watch` announces: one [`Notice`] per change worth telling an HA stack about.

use std::path::PathBuf;

use serde::Serialize;

use crate::health::Health;
use coroner_record::Event;

/// The kind of a notice (`event` in its JSON line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    /// Connected (or reconnected) to qemu; `run_state` says how the guest is.
    Watching,
    /// The guest froze on a failure (or coroner's own `capture --stop`). With a `reason`,
    /// a capture starts now; without, the state is not a trigger (or this freeze was
    /// captured before, `capture` then names the file).
    Frozen,
    /// The guest was paused without failing (an operator's `stop`, `-S`): health
    /// `paused`. Captured only when asked for (`--on paused`), then as for `Frozen`.
    Paused,
    /// The freeze is captured: `capture` is complete, the guest is still frozen, failing
    /// over is safe and the evidence is kept.
    Captured,
    /// The capture failed; `detail` says why, `kept` names a `.partial` file if any.
    CaptureFailed,
    /// qemu reported a host memory error (`MEMORY_FAILURE`).
    MemoryFailure,
    /// The guest runs again after a freeze.
    Resumed,
    /// qemu went away (it exited or was killed); `watch` keeps trying to reconnect.
    Gone,
}

impl NoticeKind {
    /// The name used in JSON and in `CORONER_EVENT`.
    pub fn name(self) -> &'static str {
        match self {
            NoticeKind::Watching => "watching",
            NoticeKind::Frozen => "frozen",
            NoticeKind::Paused => "paused",
            NoticeKind::Captured => "captured",
            NoticeKind::CaptureFailed => "capture-failed",
            NoticeKind::MemoryFailure => "memory-failure",
            NoticeKind::Resumed => "resumed",
            NoticeKind::Gone => "gone",
        }
    }
}

/// One announcement.
#[derive(Clone, Debug, Serialize)]
pub struct Notice {
    /// What happened.
    pub event: NoticeKind,
    /// The guest's name (from `NAME=SOCK`, or the socket's file name).
    pub guest: String,
    /// The QMP address watched.
    pub qmp: String,
    /// When coroner noticed, in microseconds since the epoch.
    pub time_unix_us: u64,
    /// The guest's health, as `coroner status` classifies it.
    pub health: Health,
    /// qemu's run state, when known.
    pub run_state: Option<String>,
    /// Why a capture was (or is being) taken: the trigger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The capture of this freeze.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<PathBuf>,
    /// A partial file kept after a failed capture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<PathBuf>,
    /// qemu's process id, when it runs on this host.
    pub qemu_pid: Option<u32>,
    /// From qemu's timestamp of the freezing event to the start of the dump.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// qemu's events behind this notice (since the guest last ran, at most the last 64).
    pub events: Vec<Event>,
    /// One line for people.
    pub detail: String,
}
