//! `KVM: entry failed, hardware error 0x...` (`KVM_EXIT_FAIL_ENTRY`'s `hardware_entry_failure_reason`) decoded.

use serde::Serialize;

use super::vm_instruction_error::vm_instruction_error;
use super::vmx_exit::{vmx_exit_reason, VmxExitReason, VMX_FAILED_VMENTRY};

/// `KVM: entry failed, hardware error 0x...` decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntryFailure {
    /// The value as printed.
    #[serde(with = "coroner_formats::hex")]
    pub raw: u64,
    /// "VMX", "SVM" or "unknown".
    pub vendor: &'static str,
    /// The full VMX exit reason when bit 31 is set.
    pub exit_reason: Option<VmxExitReason>,
    /// The VM-instruction error when the value is a small number (VMLAUNCH/VMRESUME failed).
    pub vm_instruction_error: Option<&'static str>,
    /// What the value means and its usual causes.
    pub description: String,
}

/// Decodes `hardware_entry_failure_reason` of `KVM_EXIT_FAIL_ENTRY`.
pub fn entry_failure(hardware_error: u64) -> EntryFailure {
    let raw = hardware_error;
    let mut out = EntryFailure {
        raw,
        vendor: "unknown",
        exit_reason: None,
        vm_instruction_error: None,
        description: String::new(),
    };
    if raw == 0xffff_ffff || raw == u64::MAX {
        out.vendor = "SVM";
        out.description = "AMD SVM: VMRUN failed with exit code SVM_EXIT_ERR (VMEXIT_INVALID): \
            the VMCB failed the consistency checks (invalid guest state or controls); the host \
            kernel log has KVM's VMCB dump"
            .to_string();
    } else if raw & VMX_FAILED_VMENTRY != 0 && raw >> 32 == 0 {
        let r = vmx_exit_reason(raw);
        out.vendor = "VMX";
        let why = match r.basic {
            33 => "VM entry failed the guest-state checks (invalid guest state): typically \
                real mode or big real mode on a host without unrestricted guest, inconsistent \
                state after SMM/RSM or reset, or a nested-virtualization bug; the host kernel \
                log has KVM's VMCS dump (or a hint to set kvm_intel.dump_invalid_vmcs=1)"
                .to_string(),
            34 => "VM entry failed while loading the guest MSRs from the VM-entry MSR-load \
                area"
                .to_string(),
            41 => "a machine-check event occurred during VM entry".to_string(),
            _ => format!("VM entry failed with basic reason {}", r.basic),
        };
        out.description = format!(
            "Intel VMX: failed VM entry, exit reason {raw:#x} ({}): {why}",
            r.name.unwrap_or("unknown")
        );
        out.exit_reason = Some(r);
    } else if raw == 0 {
        out.description = "hardware error 0: no failure reason was recorded; seen with \
            SEV-SNP guests and in old CI logs, cause not established"
            .to_string();
    } else if let Some(e) = vm_instruction_error(raw) {
        out.vendor = "VMX";
        out.vm_instruction_error = Some(e);
        out.description =
            format!("Intel VMX: VMLAUNCH/VMRESUME itself failed, VM-instruction error {raw}: {e}");
    } else {
        out.description = format!("hardware error {raw:#x} matches no known VMX or SVM code");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_failures() {
        let e = entry_failure(0x8000_0021);
        assert_eq!(e.vendor, "VMX");
        let r = e.exit_reason.unwrap();
        assert_eq!(r.basic, 33);
        assert!(r.entry_failure);
        assert!(e.description.contains("invalid guest state"));
        let e = entry_failure(0xffff_ffff);
        assert_eq!(e.vendor, "SVM");
        assert!(e.description.contains("VMEXIT_INVALID"));
        assert_eq!(entry_failure(u64::MAX).vendor, "SVM");
        let e = entry_failure(7);
        assert_eq!(e.vendor, "VMX");
        assert_eq!(
            e.vm_instruction_error,
            Some("VM entry with invalid control field(s)")
        );
        let e = entry_failure(0);
        assert_eq!(e.vendor, "unknown");
        assert!(e.description.contains("not established"));
        assert_eq!(
            entry_failure(0x8000_0022).exit_reason.unwrap().name,
            Some("MSR_LOAD_FAIL")
        );
        assert_eq!(entry_failure(0x1234_5678).vendor, "unknown");
    }
}
