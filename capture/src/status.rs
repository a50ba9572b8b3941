//! What a polling HA agent needs to know about one guest: running, paused by an operator
//! (not a failure), frozen by a failure or by coroner itself (and so safe to fail over
//! without fencing), frozen and already captured, or gone. Read-only: it asks qemu
//! `query-status` and `query-cpus-fast`, nothing else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::guest_match::GuestRef;
use crate::health::Health;
use crate::judge::judge;
use crate::libvirt::{Domain, VirshError};
use crate::local_process;
use crate::state_file::read_state;
use crate::{Qmp, QmpAddress};

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

impl Status {
    /// Just a classification and why: the guest's side did not answer.
    fn only(health: Health, detail: String) -> Status {
        Status {
            health,
            run_state: None,
            qemu_pid: None,
            capture: None,
            detail,
        }
    }
}

/// Asks the qemu at `address` (waiting at most `timeout`) and looks in `captures` for a
/// capture of its current freeze.
pub fn status(address: &QmpAddress, timeout: Duration, captures: Option<&Path>) -> Status {
    // Without an answer from qemu there is nothing but the classification and why.
    let only = Status::only;
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
    let judged = judge(captures, &GuestRef::Qmp(address, pid), &state);
    Status {
        health: judged.health,
        run_state: Some(state),
        qemu_pid: pid,
        capture: judged.capture,
        detail: judged.detail,
    }
}

/// Asks libvirt about `domain` (read-only: `virsh domstate --reason`, libvirt's pid
/// file) and looks in `captures` for a capture of its current freeze. libvirt's reasons
/// tell an operator's pause ("paused (user)") from a failure ("crashed (panicked)",
/// "paused (I/O error)", "paused (watchdog)", "paused (unknown)").
pub fn status_domain(domain: &Domain, timeout: Duration, captures: Option<&Path>) -> Status {
    let only = Status::only;
    let state = match domain.state(timeout) {
        Ok(s) => s,
        Err(VirshError::Failed { stderr, .. })
            if stderr.contains("failed to get domain") || stderr.contains("Domain not found") =>
        {
            return only(Health::Gone, format!("{domain}: no such domain"));
        }
        Err(e) => return only(Health::Unknown, format!("{domain}: {e}")),
    };
    if state.state == "shut off" || state.state == "shutoff" {
        return only(
            Health::Gone,
            format!("{domain}: {} (no qemu runs it)", state.text()),
        );
    }
    let pid = domain.qemu_pid();
    let run_state = state.run_state();
    let judged = judge(captures, &GuestRef::Domain(domain, pid), run_state);
    Status {
        health: judged.health,
        run_state: Some(run_state.to_string()),
        qemu_pid: pid,
        capture: judged.capture,
        detail: format!("libvirt says {}; {}", state.text(), judged.detail),
    }
}

/// The view of the `coroner watch` holding the monitor at `address`, from its state file
/// in `dir`, when that watcher is alive.
fn held_by_watch(dir: &Path, address: &QmpAddress) -> Option<Status> {
    let w = read_state(dir, address)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
