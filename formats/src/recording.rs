//! [`RecordingMem`]: a [`PhysMem`] that notes which pages were read, so a slim capture can
//! keep exactly the pages an analysis needed.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::addr::{PhysAddr, PhysRange};
use crate::physmem::{MemError, PhysMem};

/// Page size the recording works in.
pub const PAGE: u64 = 4096;

/// Wraps a [`PhysMem`]; while recording is on, every page a successful read touched is
/// noted. Searches that read widely (a RAM scan for VMCOREINFO, a kallsyms signature scan)
/// turn it off around themselves with [`PhysMem::set_recording`]: what they passed over is
/// not evidence.
pub struct RecordingMem<M> {
    inner: M,
    on: AtomicBool,
    paused: AtomicBool,
    pages: Mutex<BTreeSet<u64>>,
}

impl<M: PhysMem> RecordingMem<M> {
    /// `inner`, not recording.
    pub fn new(inner: M) -> Self {
        Self {
            inner,
            on: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            pages: Mutex::new(BTreeSet::new()),
        }
    }

    /// Starts (or stops) recording.
    pub fn record(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    /// Notes the pages of `[addr, addr + len)` as read.
    pub fn note(&self, addr: PhysAddr, len: u64) {
        if len == 0 {
            return;
        }
        let first = addr.0 / PAGE;
        let last = addr.0.saturating_add(len - 1) / PAGE;
        if let Ok(mut p) = self.pages.lock() {
            p.extend(first..=last);
        }
    }

    /// Page numbers (address / 4096) read while recording.
    pub fn pages(&self) -> BTreeSet<u64> {
        self.pages.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The wrapped memory.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

impl<M: PhysMem> PhysMem for RecordingMem<M> {
    fn read_at(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        self.inner.read_at(addr, buf)?;
        if self.on.load(Ordering::Relaxed) && !self.paused.load(Ordering::Relaxed) {
            self.note(addr, buf.len() as u64);
        }
        Ok(())
    }

    fn ranges(&self) -> &[PhysRange] {
        self.inner.ranges()
    }

    fn set_recording(&self, on: bool) -> bool {
        !self.paused.swap(!on, Ordering::Relaxed)
    }

    fn zero_run_end(&self, addr: PhysAddr) -> Option<PhysAddr> {
        self.inner.zero_run_end(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physmem::SliceMem;

    #[test]
    fn records_only_while_on_and_not_paused() {
        let m = RecordingMem::new(SliceMem::new(vec![(PhysAddr(0), vec![1; 0x4000])]));
        let mut b = [0u8; 16];
        m.read_at(PhysAddr(0x10), &mut b).unwrap();
        assert!(m.pages().is_empty());
        m.record(true);
        m.read_at(PhysAddr(0xff8), &mut b).unwrap(); // crosses into page 1
        assert_eq!(m.pages().into_iter().collect::<Vec<_>>(), [0, 1]);
        let was = m.set_recording(false);
        assert!(was);
        m.read_at(PhysAddr(0x3000), &mut b).unwrap();
        assert!(!m.set_recording(was));
        assert_eq!(m.pages().len(), 2);
        // A failed read records nothing.
        assert!(m.read_at(PhysAddr(0x8000), &mut b).is_err());
        assert_eq!(m.pages().len(), 2);
    }
}
