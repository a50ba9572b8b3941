//! Why a capture did not produce a complete container.

use std::path::PathBuf;

/// A failed capture. Whatever the cause, no file without `.partial` claims to be complete,
/// and the guest was not resumed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The guest is running; capturing it would need `--stop` or `--allow-running`.
    #[error("the guest is {state}, not frozen: use --stop to freeze it first (failover-safe), or --allow-running for a live dump")]
    NotFrozen {
        /// The run state found.
        state: String,
    },
    /// qemu is in a state where a dump cannot be taken now.
    #[error("qemu is busy ({state}); try again when it is done")]
    Busy {
        /// The run state, or what is in progress.
        state: String,
    },
    /// Someone resumed the guest while it was being captured.
    #[error("the guest was resumed during the capture (run state {state}): memory no longer matches the frozen guest")]
    Resumed {
        /// The run state afterwards.
        state: String,
        /// The partial file kept, if any.
        kept: Option<PathBuf>,
    },
    /// Talking to qemu failed.
    #[error(transparent)]
    Qmp(#[from] crate::error::Error),
    /// The qemu is a libvirt domain's: a dump through a monitor of coroner's own makes
    /// libvirt's daemon handle a DUMP_COMPLETED it did not start, which crashes Debian's
    /// libvirtd 9.0 (reproduced on these machines).
    #[error("this qemu runs libvirt domain {domain}: dumping it through another monitor crashes libvirtd 9.0 (it gets a DUMP_COMPLETED for a dump it did not start); capture it with --domain {domain} (taint-free), or pass --qmp-under-libvirt for a libvirt known to cope")]
    UnderLibvirt {
        /// The domain.
        domain: String,
    },
    /// Talking to libvirt failed.
    #[error(transparent)]
    Libvirt(#[from] crate::libvirt::VirshError),
    /// qemu refused or failed the dump.
    #[error("qemu's dump failed: {reason}")]
    DumpFailed {
        /// qemu's message.
        reason: String,
        /// The partial file kept, if any.
        kept: Option<PathBuf>,
    },
    /// The dump stream ended before qemu said it was complete (qemu died?).
    #[error("the dump ended early after {bytes} bytes: {reason}")]
    Incomplete {
        /// Bytes received.
        bytes: u64,
        /// Why.
        reason: String,
        /// The partial file kept, if any.
        kept: Option<PathBuf>,
    },
    /// Writing the container failed (full disk, permissions).
    #[error("cannot write the capture")]
    Output {
        /// The cause.
        #[source]
        source: coroner_formats::Error,
        /// The partial file kept, if any.
        kept: Option<PathBuf>,
    },
    /// The user interrupted the capture.
    #[error("capture interrupted; the guest stays frozen{}", after.as_deref().map(|a| format!("; {a}")).unwrap_or_default())]
    Interrupted {
        /// The partial file kept, if any.
        kept: Option<PathBuf>,
        /// What goes on after coroner stopped (libvirt's dump job), when something does.
        after: Option<String>,
    },
}

impl CaptureError {
    /// The `.partial` file kept (with `complete: false`), if any.
    pub fn kept(&self) -> Option<&PathBuf> {
        match self {
            CaptureError::Resumed { kept, .. }
            | CaptureError::DumpFailed { kept, .. }
            | CaptureError::Incomplete { kept, .. }
            | CaptureError::Output { kept, .. }
            | CaptureError::Interrupted { kept, .. } => kept.as_ref(),
            _ => None,
        }
    }
}
