//! Typed addresses, so a guest-physical address is never confused with a file offset.

use std::fmt;

/// A guest-physical address.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct PhysAddr(#[serde(with = "crate::hex")] pub u64);

impl PhysAddr {
    /// The address `n` bytes further on, or `None` past the end of the address space.
    pub fn checked_add(self, n: u64) -> Option<PhysAddr> {
        self.0.checked_add(n).map(PhysAddr)
    }
}

impl fmt::Display for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::LowerHex for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

/// A half-open range of guest-physical memory `[start, end)` that is present in a dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysRange {
    /// First address of the range.
    pub start: PhysAddr,
    /// One past the last address of the range.
    pub end: PhysAddr,
}

impl PhysRange {
    /// Length of the range in bytes.
    pub fn len(&self) -> u64 {
        self.end.0.saturating_sub(self.start.0)
    }

    /// True when the range holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `addr` lies inside the range.
    pub fn contains(&self, addr: PhysAddr) -> bool {
        self.start <= addr && addr < self.end
    }
}

impl fmt::Display for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#012x}-{:#012x}", self.start.0, self.end.0)
    }
}
