//! What a polling HA agent needs to know about one guest: running, paused by an operator
//! (not a failure), frozen by a failure or by coroner itself (and so safe to fail over
//! without fencing), frozen and already captured, or gone. Read-only: it asks qemu
//! `query-status` and `query-cpus-fast`, nothing else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::local_process;
use crate::run_state::{is_failure, is_pause, CORONER_STOP_STATE};
use crate::{Qmp, QmpAddress};
use coroner_record::CaptureInfo;

/// The classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// The guest runs (or is migrating or starting).
    Running,
    /// The guest is held without having failed: an operator's `stop` (`virsh suspend`),
    /// `-S` before the first `cont` (`prelaunch`), a debugger, ACPI S3, a finished
    /// outgoing migration. Its own business, not a failure.
    Paused,
    /// qemu holds the guest frozen after a failure (or coroner paused it with `capture
    /// --stop`): no guest code runs, so failing over is safe without fencing; no capture
    /// of this freeze was found.
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
    /// What the run state alone says: `Frozen` for a failure state, `Paused` for a pause
    /// state, else `Running`. A pause that coroner made is told apart by [`judge`].
    pub fn of_run_state(state: &str) -> Health {
        if is_failure(state) {
            Health::Frozen
        } else if is_pause(state) {
            Health::Paused
        } else {
            Health::Running
        }
    }

    /// The name used in text, JSON and `CORONER_HEALTH`.
    pub fn name(self) -> &'static str {
        match self {
            Health::Running => "running",
            Health::Paused => "paused",
            Health::Frozen => "frozen",
            Health::FrozenCaptured => "frozen-captured",
            Health::Gone => "gone",
            Health::Unknown => "unknown",
        }
    }

    /// The exit code an OCF resource agent's `monitor` can return as is: 0 running or
    /// paused (`OCF_SUCCESS`, as Pacemaker's VirtualDomain counts a paused domain), 7 gone
    /// (`OCF_NOT_RUNNING`), 1 frozen or unknown (`OCF_ERR_GENERIC`: the resource failed;
    /// recover it elsewhere).
    pub fn ocf_code(self) -> u8 {
        match self {
            Health::Running | Health::Paused => 0,
            Health::Gone => 7,
            Health::Frozen | Health::FrozenCaptured | Health::Unknown => 1,
        }
    }
}

/// A guest's health from its run state and the captures in the capture directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Judged {
    /// The classification.
    pub health: Health,
    /// The complete capture of this freeze, for [`Health::FrozenCaptured`].
    pub capture: Option<PathBuf>,
    /// How it was decided.
    pub detail: String,
}

/// Judges a guest of the qemu at `address` (process `pid`) in run state `state`: a failure
/// state is frozen, captured when `dir` holds a complete capture of it; a pause is the
/// operator's, unless `dir` holds the record of coroner's own `capture --stop` of this
/// qemu, which makes it the failover-safe freeze.
pub(crate) fn judge(
    dir: Option<&Path>,
    address: &QmpAddress,
    state: &str,
    pid: Option<u32>,
) -> Judged {
    let in_dir = |d: &Path| {
        format!(
            "no complete capture of this qemu in this state in {}",
            d.display()
        )
    };
    match Health::of_run_state(state) {
        Health::Frozen => {
            let found = dir.and_then(|d| find_capture(d, address, state, pid));
            Judged {
                health: if found.is_some() {
                    Health::FrozenCaptured
                } else {
                    Health::Frozen
                },
                detail: match (&found, dir) {
                    (Some(p), _) => format!("run state {state}; captured in {}", p.display()),
                    (None, Some(d)) => format!("run state {state}; {}", in_dir(d)),
                    (None, None) => format!("run state {state}"),
                },
                capture: found,
            }
        }
        Health::Paused => match dir.and_then(|d| find_coroner_stop(d, address, state, pid)) {
            Some(rec) if rec.complete => Judged {
                health: Health::FrozenCaptured,
                detail: format!(
                    "run state {state}, paused by coroner capture --stop; captured in {}",
                    rec.path.display()
                ),
                capture: Some(rec.path),
            },
            Some(rec) => Judged {
                health: Health::Frozen,
                detail: format!(
                    "run state {state}, paused by coroner capture --stop, whose capture failed (kept in {})",
                    rec.path.display()
                ),
                capture: None,
            },
            None => Judged {
                health: Health::Paused,
                detail: format!(
                    "run state {state}: paused by an operator or not started yet, not a failure{}",
                    if state == CORONER_STOP_STATE && dir.is_some() {
                        " (no capture --stop of this qemu on record)"
                    } else {
                        ""
                    }
                ),
                capture: None,
            },
        },
        h => Judged {
            health: h,
            capture: None,
            detail: format!("run state {state}"),
        },
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
    let judged = judge(captures, address, &state, pid);
    Status {
        health: judged.health,
        run_state: Some(state),
        qemu_pid: pid,
        capture: judged.capture,
        detail: judged.detail,
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

/// A capture's record of one qemu, from its metadata.
struct Record {
    path: PathBuf,
    complete: bool,
    created_unix: u64,
    stopped_by_coroner: bool,
    /// The run state the capture held the guest in.
    state: Option<String>,
}

/// The captures (complete, and kept `.partial` files) in `dir` of the qemu at `address`
/// (and, when known, with process id `pid`).
fn records(dir: &Path, address: &QmpAddress, pid: Option<u32>) -> Vec<Record> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.to_string_lossy();
        if !name.ends_with(".core.zst") && !name.ends_with(".core.zst.partial") {
            continue;
        }
        let Ok(reader) = coroner_formats::ContainerReader::open(&path) else {
            continue;
        };
        let Some(meta) = reader.metadata() else {
            continue;
        };
        let Ok(Some(c)) = CaptureInfo::from_metadata(meta) else {
            continue;
        };
        // The same qemu: by process id when both sides know it (a watcher and a poller
        // use different monitors of one qemu), else by monitor address.
        let same_qemu = match (pid, c.qemu_pid) {
            (Some(p), Some(c)) => p == c,
            _ => c.qmp == address.to_string(),
        };
        if !same_qemu {
            continue;
        }
        let stopped_by_coroner = c.stopped_by_coroner;
        // `capture --stop` found the guest running and left it paused.
        let state = if stopped_by_coroner {
            Some(CORONER_STOP_STATE.to_string())
        } else {
            Some(c.run_state_before).filter(|s| !s.is_empty())
        };
        out.push(Record {
            complete: meta.complete && name.ends_with(".core.zst"),
            created_unix: meta.created_unix,
            stopped_by_coroner,
            state,
            path,
        });
    }
    out
}

/// A complete capture in `dir` of the qemu at `address` in run state `state` (and, when
/// known, with process id `pid`).
pub(crate) fn find_capture(
    dir: &Path,
    address: &QmpAddress,
    state: &str,
    pid: Option<u32>,
) -> Option<PathBuf> {
    records(dir, address, pid)
        .into_iter()
        .filter(|r| r.complete && r.state.as_deref() == Some(state))
        .max_by_key(|r| r.created_unix)
        .map(|r| r.path)
}

/// The newest record in `dir` of coroner pausing this qemu itself (`capture --stop`), when
/// the guest is in the state that leaves: a complete capture, or a kept partial.
fn find_coroner_stop(
    dir: &Path,
    address: &QmpAddress,
    state: &str,
    pid: Option<u32>,
) -> Option<Record> {
    if state != CORONER_STOP_STATE {
        return None;
    }
    records(dir, address, pid)
        .into_iter()
        .filter(|r| r.stopped_by_coroner)
        .max_by_key(|r| (r.complete, r.created_unix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_json() {
        for h in [
            Health::Running,
            Health::Paused,
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
        assert_eq!(Health::Paused.ocf_code(), 0);
        assert_eq!(Health::Gone.ocf_code(), 7);
        assert_eq!(Health::Frozen.ocf_code(), 1);
        assert_eq!(Health::FrozenCaptured.ocf_code(), 1);
        assert_eq!(Health::Unknown.ocf_code(), 1);
    }

    #[test]
    fn run_states() {
        for (state, health) in [
            ("running", Health::Running),
            ("inmigrate", Health::Running),
            ("paused", Health::Paused),
            ("prelaunch", Health::Paused),
            ("suspended", Health::Paused),
            ("guest-panicked", Health::Frozen),
            ("internal-error", Health::Frozen),
            ("io-error", Health::Frozen),
            ("watchdog", Health::Frozen),
            ("shutdown", Health::Frozen),
        ] {
            assert_eq!(Health::of_run_state(state), health, "{state}");
        }
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
