//! qemu's run states (QAPI `RunState`) and what each means for capturing and for an HA
//! stack: a failure that froze the guest, a pause that someone asked for, a state a dump
//! must not race, or a guest that runs. Decided here once, for `capture`, `status`,
//! `watch` and the Pacemaker wrapper.

use std::fmt;

/// A qemu run state, as `query-status` names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RunState {
    /// `debug`: stopped by a debugger (gdbstub).
    Debug,
    /// `inmigrate`: waiting for an incoming migration.
    InMigrate,
    /// `internal-error`: KVM failed to run the vCPU.
    InternalError,
    /// `io-error`: a disk error with `werror=stop`/`rerror=stop`.
    IoError,
    /// `paused`: an operator's or coroner's `stop`.
    Paused,
    /// `postmigrate`: the source of a finished migration.
    PostMigrate,
    /// `prelaunch`: `-S`, before the first `cont`.
    Prelaunch,
    /// `finish-migrate`: the last step of an outgoing migration.
    FinishMigrate,
    /// `restore-vm`: `loadvm` in progress.
    RestoreVm,
    /// `running`.
    Running,
    /// `save-vm`: `savevm` in progress.
    SaveVm,
    /// `shutdown`: the guest powered off and `-no-shutdown` kept qemu.
    Shutdown,
    /// `suspended`: the guest's own ACPI S3 sleep.
    Suspended,
    /// `watchdog`: the watchdog fired with `-action watchdog=pause`.
    Watchdog,
    /// `guest-panicked`: a guest panic with `-action panic=pause`.
    GuestPanicked,
    /// `colo`: COLO fault tolerance.
    Colo,
    /// A state this coroner does not know (a newer qemu's).
    Other(String),
}

/// Every known state, in QAPI order.
const KNOWN: [RunState; 16] = [
    RunState::Debug,
    RunState::InMigrate,
    RunState::InternalError,
    RunState::IoError,
    RunState::Paused,
    RunState::PostMigrate,
    RunState::Prelaunch,
    RunState::FinishMigrate,
    RunState::RestoreVm,
    RunState::Running,
    RunState::SaveVm,
    RunState::Shutdown,
    RunState::Suspended,
    RunState::Watchdog,
    RunState::GuestPanicked,
    RunState::Colo,
];

impl RunState {
    /// The state qemu names `name` (never fails: an unknown name is [`RunState::Other`]).
    pub fn parse(name: &str) -> RunState {
        KNOWN
            .iter()
            .find(|s| s.name() == name)
            .cloned()
            .unwrap_or_else(|| RunState::Other(name.to_string()))
    }

    /// qemu's name for it.
    pub fn name(&self) -> &str {
        match self {
            RunState::Other(n) => n,
            known => known.known_name().unwrap_or_default(),
        }
    }

    /// The name of a state this coroner knows.
    fn known_name(&self) -> Option<&'static str> {
        Some(match self {
            RunState::Debug => "debug",
            RunState::InMigrate => "inmigrate",
            RunState::InternalError => "internal-error",
            RunState::IoError => "io-error",
            RunState::Paused => "paused",
            RunState::PostMigrate => "postmigrate",
            RunState::Prelaunch => "prelaunch",
            RunState::FinishMigrate => "finish-migrate",
            RunState::RestoreVm => "restore-vm",
            RunState::Running => "running",
            RunState::SaveVm => "save-vm",
            RunState::Shutdown => "shutdown",
            RunState::Suspended => "suspended",
            RunState::Watchdog => "watchdog",
            RunState::GuestPanicked => "guest-panicked",
            RunState::Colo => "colo",
            RunState::Other(_) => return None,
        })
    }

    /// The guest failed and qemu keeps it frozen: a KVM internal error, a guest panic, a
    /// disk error, a watchdog, a power-off kept by `-no-shutdown`.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            RunState::InternalError
                | RunState::GuestPanicked
                | RunState::IoError
                | RunState::Watchdog
                | RunState::Shutdown
        )
    }

    /// The guest is held without having failed: an operator's `stop` (`virsh suspend`),
    /// `-S` before the first `cont` (libvirt starts every guest so), a debugger, the
    /// guest's own ACPI S3 sleep, the source of a finished migration. Only a pause coroner
    /// made itself (`capture --stop`) counts as a failover-safe freeze.
    pub fn is_pause(&self) -> bool {
        matches!(
            self,
            RunState::Paused
                | RunState::Prelaunch
                | RunState::Debug
                | RunState::Suspended
                | RunState::PostMigrate
        )
    }

    /// No guest code runs and memory is stable: a failure or a pause.
    pub fn is_frozen(&self) -> bool {
        self.is_failure() || self.is_pause()
    }

    /// qemu is in the middle of something a dump must not race (a migration, `savevm`,
    /// `loadvm`, COLO).
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            RunState::InMigrate
                | RunState::FinishMigrate
                | RunState::SaveVm
                | RunState::RestoreVm
                | RunState::Colo
        )
    }

    /// The frozen states' names, in QAPI order (for messages and `watch --on`).
    pub fn frozen_names() -> Vec<&'static str> {
        KNOWN
            .iter()
            .filter(|s| s.is_frozen())
            .filter_map(RunState::known_name)
            .collect()
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The run state a `capture --stop` leaves the guest in.
pub const CORONER_STOP_STATE: RunState = RunState::Paused;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_classes_do_not_overlap() {
        for s in KNOWN {
            assert_eq!(RunState::parse(s.name()), s);
            let classes = [s.is_failure(), s.is_pause(), s.is_busy()];
            assert!(classes.iter().filter(|&&c| c).count() <= 1, "{s}");
        }
        assert_eq!(
            RunState::parse("new-state"),
            RunState::Other("new-state".into())
        );
        assert!(!RunState::parse("new-state").is_frozen());
        assert!(CORONER_STOP_STATE.is_pause());
        assert!(!RunState::Running.is_frozen() && !RunState::Running.is_busy());
        assert_eq!(RunState::frozen_names().len(), 10);
        assert!(RunState::frozen_names().contains(&"guest-panicked"));
    }
}
