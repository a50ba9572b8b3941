//! The error type of the capture crate.

use std::io;
use std::time::Duration;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to qemu.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The QMP address is not a socket path or `tcp:HOST:PORT`.
    #[error("bad QMP address {address:?}: {reason}")]
    Address {
        /// What was given.
        address: String,
        /// Why it is not usable.
        reason: &'static str,
    },
    /// Connecting to the monitor failed.
    #[error("cannot connect to QMP at {address}")]
    Connect {
        /// The address.
        address: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading from or writing to the monitor failed.
    #[error("QMP connection failed while {during}")]
    Io {
        /// What was going on.
        during: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// qemu closed the connection (it exited, or another client took the monitor).
    #[error("qemu closed the QMP connection while {during}")]
    Closed {
        /// What was going on.
        during: String,
    },
    /// qemu did not answer in time.
    #[error("no answer from qemu within {:.1} s while {during}", timeout.as_secs_f64())]
    Timeout {
        /// What was going on.
        during: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// The monitor sent something that is not QMP.
    #[error("not a QMP peer: {detail}")]
    Protocol {
        /// What was wrong, with an excerpt of what was received (escaped).
        detail: String,
    },
    /// A file descriptor was to be passed over a monitor that cannot carry one.
    #[error("a TCP monitor cannot receive file descriptors (use a unix socket)")]
    NoFdPassing,
    /// qemu answered a command with an error.
    #[error("qemu refused {command}: {desc} ({class})")]
    Command {
        /// The command.
        command: String,
        /// QMP error class (`GenericError`, `CommandNotFound`, ...).
        class: String,
        /// qemu's message.
        desc: String,
    },
}

impl Error {
    /// True when qemu is gone (closed connection), as opposed to a refusal or a timeout.
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::Closed { .. } | Error::Connect { .. })
            || matches!(self, Error::Io { source, .. } if matches!(
                source.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ))
    }
}
