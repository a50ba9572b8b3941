//! qemu's version from the QMP greeting.

use std::fmt;

use serde::{Deserialize, Serialize};

/// qemu's version from the QMP greeting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QemuVersion {
    /// Major version.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Micro version.
    pub micro: u64,
    /// Distribution package string, e.g. `Debian 1:7.2+dfsg-7`.
    pub package: String,
}

impl fmt::Display for QemuVersion {
    /// `10.0.2`, then the package string when there is one: `10.0.2 Debian 1:10.0.2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)?;
        if !self.package.is_empty() {
            write!(f, " {}", self.package)?;
        }
        Ok(())
    }
}
