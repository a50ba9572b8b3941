//! What a qemu run state means for an HA stack: a failure that froze the guest, a pause
//! that someone asked for, or a guest that runs. Decided here once, for `status`, `watch`
//! and the Pacemaker wrapper.

/// Run states qemu enters when the guest failed and was kept frozen: a KVM internal
/// error, a guest panic (`-action panic=pause`), a disk error (`werror=stop`), a watchdog
/// (`-action watchdog=pause`), a guest power-off kept by `-no-shutdown`.
pub const FAILURE_STATES: &[&str] = &[
    "internal-error",
    "guest-panicked",
    "io-error",
    "watchdog",
    "shutdown",
];

/// Run states in which the guest is held without having failed: an operator's `stop`
/// (`virsh suspend`), `-S` before the first `cont` (libvirt starts every guest so), a
/// debugger, the guest's own ACPI S3 sleep, the source of a finished migration. Only a
/// pause coroner made itself (`capture --stop`) counts as a failover-safe freeze.
pub const PAUSE_STATES: &[&str] = &["paused", "prelaunch", "debug", "suspended", "postmigrate"];

/// The run state a `capture --stop` leaves the guest in.
pub const CORONER_STOP_STATE: &str = "paused";

/// True when `state` is one of [`FAILURE_STATES`].
pub fn is_failure(state: &str) -> bool {
    FAILURE_STATES.contains(&state)
}

/// True when `state` is one of [`PAUSE_STATES`].
pub fn is_pause(state: &str) -> bool {
    PAUSE_STATES.contains(&state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::FROZEN_STATES;

    #[test]
    fn every_frozen_state_is_a_failure_or_a_pause() {
        for s in FROZEN_STATES {
            assert!(is_failure(s) != is_pause(s), "{s}");
        }
        assert_eq!(
            FAILURE_STATES.len() + PAUSE_STATES.len(),
            FROZEN_STATES.len()
        );
        assert!(is_pause(CORONER_STOP_STATE));
        assert!(!is_failure("running") && !is_pause("running"));
    }
}
