//! What a polling HA agent needs to know about one guest: running, frozen (and so safe to
//! fail over without fencing), frozen and already captured, or gone. Read-only: it asks
//! qemu `query-status` and `query-cpus-fast`, nothing else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::capture::FROZEN_STATES;
use crate::local_process;
use crate::{Qmp, QmpAddress};

/// The classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// The guest runs (or is migrating or starting).
    Running,
    /// qemu holds the guest frozen: no guest code runs, so failing over is safe without
    /// fencing; no capture of this freeze was found.
    Frozen,
    /// Frozen, and a complete capture of this qemu in this state exists.
    FrozenCaptured,
    /// No qemu answers on the socket (not there, refused, or it died).
    Gone,
    /// qemu is there but its answers make no sense or come too late.
    Unknown,
}

/// The answer of [`status`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The classification.
    pub health: Health,
    /// qemu's run state, when it answered.
    pub run_state: Option<String>,
    /// qemu's process id, when it runs on this host.
    pub qemu_pid: Option<u32>,
    /// The capture of this freeze, for [`Health::FrozenCaptured`].
    pub capture: Option<PathBuf>,
    /// One line on how it was decided.
    pub detail: String,
}

impl Health {
    /// `Frozen` for a frozen run state, else `Running` (captures and absence aside).
    pub fn of_run_state(state: &str) -> Health {
        if FROZEN_STATES.contains(&state) {
            Health::Frozen
        } else {
            Health::Running
        }
    }

    /// The name used in text, JSON and `CORONER_HEALTH`.
    pub fn name(self) -> &'static str {
        match self {
            Health::Running => "running",
            Health::Frozen => "frozen",
            Health::FrozenCaptured => "frozen-captured",
            Health::Gone => "gone",
            Health::Unknown => "unknown",
        }
    }

    /// The exit code an OCF resource agent's `monitor` can return as is: 0 running
    /// (`OCF_SUCCESS`), 7 gone (`OCF_NOT_RUNNING`), 1 frozen or unknown
    /// (`OCF_ERR_GENERIC`: the resource failed; recover it elsewhere).
    pub fn ocf_code(self) -> u8 {
        match self {
            Health::Running => 0,
            Health::Gone => 7,
            Health::Frozen | Health::FrozenCaptured | Health::Unknown => 1,
        }
    }
}

/// Asks the qemu at `address` (waiting at most `timeout`) and looks in `captures` for a
/// capture of its current freeze.
pub fn status(address: &QmpAddress, timeout: Duration, captures: Option<&Path>) -> Status {
    // Without an answer from qemu there is nothing but the classification and why.
    let only = |health: Health, detail: String| Status {
        health,
        run_state: None,
        qemu_pid: None,
        capture: None,
        detail,
    };
    let gone = |detail: String| only(Health::Gone, detail);
    if let QmpAddress::Unix(p) = address {
        if !p.exists() {
            return gone(format!("no socket at {}", p.display()));
        }
    }
    // A live `coroner watch` on this monitor holds it (one client at a time) and sees every
    // event as it comes: its view is current, and connecting would only queue behind it.
    if let Some(s) = captures.and_then(|d| held_by_watch(d, address)) {
        return s;
    }
    let mut qmp = match Qmp::connect(address, timeout) {
        Ok(q) => q,
        Err(crate::Error::Connect { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            ) =>
        {
            // A socket file nobody listens on: qemu died (or was killed) and left it.
            return gone(format!("{address}: nobody listens ({source})"));
        }
        Err(e) => return only(Health::Unknown, format!("{address}: {e}")),
    };
    let state = match qmp.run_state() {
        Ok(s) => s,
        Err(e) => return only(Health::Unknown, format!("query-status: {e}")),
    };
    let pid = local_process::find_for(&mut qmp).map(|l| l.pid);
    if Health::of_run_state(&state) == Health::Running {
        return Status {
            health: Health::Running,
            run_state: Some(state.clone()),
            qemu_pid: pid,
            capture: None,
            detail: format!("run state {state}"),
        };
    }
    let found = captures.and_then(|d| find_capture(d, address, &state, pid));
    Status {
        health: if found.is_some() {
            Health::FrozenCaptured
        } else {
            Health::Frozen
        },
        run_state: Some(state.clone()),
        qemu_pid: pid,
        detail: match (&found, captures) {
            (Some(p), _) => format!("run state {state}; captured in {}", p.display()),
            (None, Some(d)) => format!(
                "run state {state}; no complete capture of this qemu in this state in {}",
                d.display()
            ),
            (None, None) => format!("run state {state}"),
        },
        capture: found,
    }
}

/// The view of the `coroner watch` holding the monitor at `address`, from its state file
/// in `dir`, when that watcher is alive.
fn held_by_watch(dir: &Path, address: &QmpAddress) -> Option<Status> {
    let w = crate::watch::read_state(dir, &address.to_string())?;
    let age = crate::capture::unix_us()
        .unwrap_or(0)
        .saturating_sub(w.updated_unix_us) as f64
        / 1e6;
    Some(Status {
        health: w.health,
        run_state: w.run_state.clone(),
        qemu_pid: w.qemu_pid,
        detail: format!(
            "the monitor is held by coroner watch (pid {}), which saw run state {} {age:.1} s ago{}",
            w.watcher_pid,
            w.run_state.as_deref().unwrap_or("unknown"),
            w.capture
                .as_ref()
                .map(|c| format!("; captured in {}", c.display()))
                .unwrap_or_default()
        ),
        capture: w.capture,
    })
}

/// A complete capture in `dir` of the qemu at `address` in run state `state` (and, when
/// known, with process id `pid`).
pub(crate) fn find_capture(
    dir: &Path,
    address: &QmpAddress,
    state: &str,
    pid: Option<u32>,
) -> Option<PathBuf> {
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if !path.to_string_lossy().ends_with(".core.zst") {
            continue;
        }
        let Ok(core) = coroner_formats::open(&path) else {
            continue;
        };
        let Some(meta) = core.metadata else { continue };
        let Some(c) = meta.capture.as_ref() else {
            continue;
        };
        let same_state = c.get("run_state_before").and_then(|v| v.as_str()) == Some(state);
        // The same qemu: by process id when both sides know it (a watcher and a poller
        // use different monitors of one qemu), else by monitor address.
        let same_qemu = match (pid, c.get("qemu_pid").and_then(|v| v.as_u64())) {
            (Some(p), Some(c)) => u64::from(p) == c,
            _ => c.get("qmp").and_then(|v| v.as_str()) == Some(&address.to_string()),
        };
        if meta.complete && same_qemu && same_state {
            let newer = best.as_ref().is_none_or(|(t, _)| meta.created_unix > *t);
            if newer {
                best = Some((meta.created_unix, path));
            }
        }
    }
    best.map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_json() {
        for h in [
            Health::Running,
            Health::Frozen,
            Health::FrozenCaptured,
            Health::Gone,
            Health::Unknown,
        ] {
            assert_eq!(serde_json::to_value(h).unwrap(), h.name());
        }
    }

    #[test]
    fn ocf_codes() {
        assert_eq!(Health::Running.ocf_code(), 0);
        assert_eq!(Health::Gone.ocf_code(), 7);
        assert_eq!(Health::Frozen.ocf_code(), 1);
        assert_eq!(Health::FrozenCaptured.ocf_code(), 1);
        assert_eq!(Health::Unknown.ocf_code(), 1);
    }

    #[test]
    fn a_missing_socket_is_gone() {
        let s = status(
            &QmpAddress::Unix("/nonexistent/coroner-test.sock".into()),
            Duration::from_millis(100),
            None,
        );
        assert_eq!(s.health, Health::Gone);
        assert!(s.detail.contains("no socket"));
    }
}
