//! VMX exit reasons (`arch/x86/include/uapi/asm/vmx.h`): the basic reason's name and meaning, and the VM-entry-failure bit.

use serde::Serialize;

/// Bit 31 of the VMX exit-reason field: the exit is a failed VM entry.
pub(super) const VMX_FAILED_VMENTRY: u64 = 0x8000_0000;

/// Basic reason 49: EPT misconfiguration, which KVM uses for MMIO.
pub(super) const EPT_MISCONFIG: u16 = 49;

/// Linux's name and a description for a VMX basic exit reason.
fn vmx_basic(basic: u16) -> Option<(&'static str, &'static str)> {
    Some(match basic {
        0 => ("EXCEPTION_NMI", "exception or NMI"),
        1 => ("EXTERNAL_INTERRUPT", "external interrupt"),
        2 => ("TRIPLE_FAULT", "triple fault"),
        3 => ("INIT_SIGNAL", "INIT signal"),
        4 => ("SIPI_SIGNAL", "start-up IPI"),
        5 => ("IO_SMI", "I/O SMI (SDM; not in Linux's uapi list)"),
        6 => ("OTHER_SMI", "other SMI"),
        7 => ("INTERRUPT_WINDOW", "interrupt window"),
        8 => ("NMI_WINDOW", "NMI window"),
        9 => ("TASK_SWITCH", "task switch"),
        10 => ("CPUID", "CPUID"),
        11 => ("GETSEC", "GETSEC (SDM; not in Linux's uapi list)"),
        12 => ("HLT", "HLT"),
        13 => ("INVD", "INVD"),
        14 => ("INVLPG", "INVLPG"),
        15 => ("RDPMC", "RDPMC"),
        16 => ("RDTSC", "RDTSC"),
        17 => ("RSM", "RSM in SMM (SDM; not in Linux's uapi list)"),
        18 => ("VMCALL", "VMCALL"),
        19 => ("VMCLEAR", "VMCLEAR"),
        20 => ("VMLAUNCH", "VMLAUNCH"),
        21 => ("VMPTRLD", "VMPTRLD"),
        22 => ("VMPTRST", "VMPTRST"),
        23 => ("VMREAD", "VMREAD"),
        24 => ("VMRESUME", "VMRESUME"),
        25 => ("VMWRITE", "VMWRITE"),
        26 => ("VMOFF", "VMXOFF"),
        27 => ("VMON", "VMXON"),
        28 => ("CR_ACCESS", "control-register access"),
        29 => ("DR_ACCESS", "debug-register access"),
        30 => ("IO_INSTRUCTION", "I/O instruction"),
        31 => ("MSR_READ", "RDMSR"),
        32 => ("MSR_WRITE", "WRMSR"),
        33 => (
            "INVALID_STATE",
            "VM-entry failure due to invalid guest state",
        ),
        34 => ("MSR_LOAD_FAIL", "VM-entry failure due to MSR loading"),
        36 => ("MWAIT_INSTRUCTION", "MWAIT"),
        37 => ("MONITOR_TRAP_FLAG", "monitor trap flag"),
        39 => ("MONITOR_INSTRUCTION", "MONITOR"),
        40 => ("PAUSE_INSTRUCTION", "PAUSE"),
        41 => (
            "MCE_DURING_VMENTRY",
            "VM-entry failure due to a machine-check event",
        ),
        43 => ("TPR_BELOW_THRESHOLD", "TPR below threshold"),
        44 => ("APIC_ACCESS", "APIC-access page access"),
        45 => ("EOI_INDUCED", "virtualized EOI"),
        46 => ("GDTR_IDTR", "access to GDTR or IDTR"),
        47 => ("LDTR_TR", "access to LDTR or TR"),
        48 => ("EPT_VIOLATION", "EPT violation"),
        49 => ("EPT_MISCONFIG", "EPT misconfiguration (an MMIO access)"),
        50 => ("INVEPT", "INVEPT"),
        51 => ("RDTSCP", "RDTSCP"),
        52 => ("PREEMPTION_TIMER", "VMX-preemption timer expired"),
        53 => ("INVVPID", "INVVPID"),
        54 => ("WBINVD", "WBINVD or WBNOINVD"),
        55 => ("XSETBV", "XSETBV"),
        56 => ("APIC_WRITE", "APIC write"),
        57 => ("RDRAND", "RDRAND"),
        58 => ("INVPCID", "INVPCID"),
        59 => ("VMFUNC", "VMFUNC"),
        60 => ("ENCLS", "ENCLS"),
        61 => ("RDSEED", "RDSEED"),
        62 => ("PML_FULL", "page-modification log full"),
        63 => ("XSAVES", "XSAVES"),
        64 => ("XRSTORS", "XRSTORS"),
        66 => ("SPP", "SPP-related event (SDM; not in Linux's uapi list)"),
        67 => ("UMWAIT", "UMWAIT"),
        68 => ("TPAUSE", "TPAUSE"),
        69 => ("LOADIWKEY", "LOADIWKEY (SDM; not in Linux's uapi list)"),
        70 => ("ENCLV", "ENCLV (SDM; not in Linux's uapi list)"),
        72 => (
            "ENQCMD_PASID_FAIL",
            "ENQCMD PASID translation failure (SDM; not in Linux's uapi list)",
        ),
        73 => (
            "ENQCMDS_PASID_FAIL",
            "ENQCMDS PASID translation failure (SDM; not in Linux's uapi list)",
        ),
        74 => ("BUS_LOCK", "bus lock"),
        75 => ("NOTIFY", "notify VM exit (instruction timeout)"),
        76 => ("SEAMCALL", "SEAMCALL"),
        77 => ("TDCALL", "TDCALL"),
        78 => ("RDMSRLIST", "RDMSRLIST (SDM; not in Linux's uapi list)"),
        79 => ("WRMSRLIST", "WRMSRLIST (SDM; not in Linux's uapi list)"),
        80 => ("URDMSR", "URDMSR (SDM; not in Linux's uapi list)"),
        81 => ("UWRMSR", "UWRMSR (SDM; not in Linux's uapi list)"),
        84 => ("MSR_READ_IMM", "RDMSR with immediate"),
        85 => ("MSR_WRITE_IMM", "WRMSRNS with immediate"),
        _ => return None,
    })
}

/// A VMX exit reason (full 32-bit value: basic reason in bits 15:0, bit 31 = VM-entry failure).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VmxExitReason {
    /// The value as reported.
    #[serde(with = "coroner_formats::hex")]
    pub raw: u64,
    /// Bits 15:0, the basic exit reason.
    pub basic: u16,
    /// Linux's name for the basic reason (`EXIT_REASON_` dropped), e.g. `EPT_MISCONFIG`.
    pub name: Option<&'static str>,
    /// Bit 31: the exit is a failed VM entry.
    pub entry_failure: bool,
    /// A description, e.g. "EPT misconfiguration (an MMIO access)", with the flag bits named.
    pub description: String,
}

/// Decodes a full VMX exit-reason value.
pub fn vmx_exit_reason(raw: u64) -> VmxExitReason {
    let basic = (raw & 0xffff) as u16;
    let entry_failure = raw & VMX_FAILED_VMENTRY != 0;
    let known = vmx_basic(basic);
    let mut description = match known {
        Some((_, d)) => d.to_string(),
        None => format!("unknown basic exit reason {basic} ({basic:#x})"),
    };
    let mut flags = Vec::new();
    if raw & (1 << 26) != 0 {
        flags.push("bus lock detected");
    }
    if raw & (1 << 27) != 0 {
        flags.push("exit from SGX enclave mode");
    }
    if raw & (1 << 28) != 0 {
        flags.push("pending MTF after SMM");
    }
    if raw & (1 << 29) != 0 {
        flags.push("exit from VMX root operation (SMM dual monitor)");
    }
    if entry_failure {
        flags.push("VM-entry failure (bit 31)");
    }
    if raw >> 32 != 0 {
        flags.push("bits above 31 set: not a VMX exit reason");
    }
    if !flags.is_empty() {
        description = format!("{description}; {}", flags.join(", "));
    }
    VmxExitReason {
        raw,
        basic,
        name: known.map(|(n, _)| n),
        entry_failure,
        description,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmx_reasons() {
        let r = vmx_exit_reason(0x31);
        assert_eq!(r.basic, 49);
        assert_eq!(r.name, Some("EPT_MISCONFIG"));
        assert_eq!(r.description, "EPT misconfiguration (an MMIO access)");
        assert!(!r.entry_failure);
        let r = vmx_exit_reason(0x8000_0021);
        assert_eq!(r.basic, 33);
        assert_eq!(r.name, Some("INVALID_STATE"));
        assert!(r.entry_failure);
        assert_eq!(vmx_exit_reason(0x20).name, Some("MSR_WRITE"));
        assert_eq!(vmx_exit_reason(1000).name, None);
    }
}
