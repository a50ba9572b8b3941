//! A guest's health as an HA stack sees it: running, paused by an operator, frozen by a
//! failure (or by coroner), frozen and captured, gone or unknown; with the OCF exit code
//! each maps to.

use serde::Serialize;

use crate::run_state::RunState;

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

impl Health {
    /// What the run state alone says: `Frozen` for a failure state, `Paused` for a pause
    /// state, else `Running`. A pause that coroner made is told apart by
    /// [`crate::judge::judge`].
    pub fn of_run_state(state: &RunState) -> Health {
        if state.is_failure() {
            Health::Frozen
        } else if state.is_pause() {
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
            assert_eq!(
                Health::of_run_state(&RunState::parse(state)),
                health,
                "{state}"
            );
        }
    }
}
