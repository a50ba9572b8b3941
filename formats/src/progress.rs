//! Progress reporting and interruption, passed into long operations as parameters.

use std::sync::atomic::{AtomicBool, Ordering};

/// Receives progress of a long operation. Implementations must be cheap to call often.
pub trait Progress: Sync {
    /// The total amount of work, in bytes, once known.
    fn set_total(&self, total: u64);
    /// The amount of work done so far, in bytes.
    fn set_done(&self, done: u64);
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn set_total(&self, _total: u64) {}
    fn set_done(&self, _done: u64) {}
}

/// True once the user asked to stop (the flag set by a signal handler).
pub fn interrupted(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}
