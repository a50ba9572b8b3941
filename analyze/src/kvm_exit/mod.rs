//! The exit reason of KVM emulation failures and entry failures: qemu's report parsed
//! from its log, decoded, and completed from the frozen guest.
