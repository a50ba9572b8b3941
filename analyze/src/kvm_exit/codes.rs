//! The numbers in a KVM failure report, decoded: internal-error sub-errors, VMX exit reasons,
//! SVM exit codes, VM-instruction errors, event-information words, the `extra data[]` words
//! of `KVM internal error` by sub-error and count, and `KVM: entry failed, hardware error`.
//!
//! Tables follow Linux's `include/uapi/linux/kvm.h`, `arch/x86/include/uapi/asm/vmx.h` and
//! `svm.h`, and the Intel SDM (VM-instruction errors, event-information format). Layouts of
//! `data[]` follow the kernel code that fills them, per kernel version.

use serde::Serialize;

/// A KVM internal-error sub-error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Suberror {
    /// The number qemu prints after `Suberror:`.
    pub number: u32,
    /// The uapi constant, e.g. `KVM_INTERNAL_ERROR_EMULATION`.
    pub name: &'static str,
    /// What it means, e.g. "KVM's instruction emulator failed".
    pub meaning: &'static str,
}

/// The sub-error `n` of `KVM_EXIT_INTERNAL_ERROR`, if Linux defines it.
pub fn suberror(n: u32) -> Option<Suberror> {
    let (name, meaning) = match n {
        1 => (
            "KVM_INTERNAL_ERROR_EMULATION",
            "KVM's instruction emulator failed",
        ),
        2 => (
            "KVM_INTERNAL_ERROR_SIMUL_EX",
            "an exception occurred while another event was being delivered (unexpected simultaneous exceptions)",
        ),
        3 => (
            "KVM_INTERNAL_ERROR_DELIVERY_EV",
            "a VM exit KVM cannot handle happened while an event (interrupt or exception) was being delivered",
        ),
        4 => (
            "KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON",
            "the hardware reported a VM-exit reason KVM does not handle",
        ),
        _ => return None,
    };
    Some(Suberror {
        number: n,
        name,
        meaning,
    })
}

/// Bit 31 of the VMX exit-reason field: the exit is a failed VM entry.
const VMX_FAILED_VMENTRY: u64 = 0x8000_0000;

/// Basic reason 49: EPT misconfiguration, which KVM uses for MMIO.
const EPT_MISCONFIG: u16 = 49;

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

/// Names of the SVM exception-intercept exit codes 0x40..=0x5f.
const SVM_EXCP: [&str; 32] = [
    "EXCP_BASE+0 (#DE)",
    "EXCP_BASE+1 (#DB)",
    "EXCP_BASE+2 (NMI)",
    "EXCP_BASE+3 (#BP)",
    "EXCP_BASE+4 (#OF)",
    "EXCP_BASE+5 (#BR)",
    "EXCP_BASE+6 (#UD)",
    "EXCP_BASE+7 (#NM)",
    "EXCP_BASE+8 (#DF)",
    "EXCP_BASE+9",
    "EXCP_BASE+10 (#TS)",
    "EXCP_BASE+11 (#NP)",
    "EXCP_BASE+12 (#SS)",
    "EXCP_BASE+13 (#GP)",
    "EXCP_BASE+14 (#PF)",
    "EXCP_BASE+15",
    "EXCP_BASE+16 (#MF)",
    "EXCP_BASE+17 (#AC)",
    "EXCP_BASE+18 (#MC)",
    "EXCP_BASE+19 (#XM)",
    "EXCP_BASE+20 (#VE)",
    "EXCP_BASE+21 (#CP)",
    "EXCP_BASE+22",
    "EXCP_BASE+23",
    "EXCP_BASE+24",
    "EXCP_BASE+25",
    "EXCP_BASE+26",
    "EXCP_BASE+27",
    "EXCP_BASE+28 (#HV)",
    "EXCP_BASE+29 (#VC)",
    "EXCP_BASE+30 (#SX)",
    "EXCP_BASE+31",
];

/// Names of the SVM CR write-trap exit codes 0x90..=0x9f (SEV-ES).
const SVM_CR_TRAP: [&str; 16] = [
    "CR0_WRITE_TRAP",
    "CR1_WRITE_TRAP",
    "CR2_WRITE_TRAP",
    "CR3_WRITE_TRAP",
    "CR4_WRITE_TRAP",
    "CR5_WRITE_TRAP",
    "CR6_WRITE_TRAP",
    "CR7_WRITE_TRAP",
    "CR8_WRITE_TRAP",
    "CR9_WRITE_TRAP",
    "CR10_WRITE_TRAP",
    "CR11_WRITE_TRAP",
    "CR12_WRITE_TRAP",
    "CR13_WRITE_TRAP",
    "CR14_WRITE_TRAP",
    "CR15_WRITE_TRAP",
];

/// Linux's name (`SVM_EXIT_` dropped) for an AMD SVM VMCB exit code, e.g. 0x400 `NPF`.
/// Both 0xffffffff and `u64::MAX` are `SVM_EXIT_ERR` (VMRUN failed).
pub fn svm_exit_code(code: u64) -> Option<&'static str> {
    Some(match code {
        0x000 => "READ_CR0",
        0x002 => "READ_CR2",
        0x003 => "READ_CR3",
        0x004 => "READ_CR4",
        0x008 => "READ_CR8",
        0x010 => "WRITE_CR0",
        0x012 => "WRITE_CR2",
        0x013 => "WRITE_CR3",
        0x014 => "WRITE_CR4",
        0x018 => "WRITE_CR8",
        0x020 => "READ_DR0",
        0x021 => "READ_DR1",
        0x022 => "READ_DR2",
        0x023 => "READ_DR3",
        0x024 => "READ_DR4",
        0x025 => "READ_DR5",
        0x026 => "READ_DR6",
        0x027 => "READ_DR7",
        0x030 => "WRITE_DR0",
        0x031 => "WRITE_DR1",
        0x032 => "WRITE_DR2",
        0x033 => "WRITE_DR3",
        0x034 => "WRITE_DR4",
        0x035 => "WRITE_DR5",
        0x036 => "WRITE_DR6",
        0x037 => "WRITE_DR7",
        0x040..=0x05f => SVM_EXCP[(code - 0x40) as usize],
        0x060 => "INTR",
        0x061 => "NMI",
        0x062 => "SMI",
        0x063 => "INIT",
        0x064 => "VINTR",
        0x065 => "CR0_SEL_WRITE",
        0x066 => "IDTR_READ",
        0x067 => "GDTR_READ",
        0x068 => "LDTR_READ",
        0x069 => "TR_READ",
        0x06a => "IDTR_WRITE",
        0x06b => "GDTR_WRITE",
        0x06c => "LDTR_WRITE",
        0x06d => "TR_WRITE",
        0x06e => "RDTSC",
        0x06f => "RDPMC",
        0x070 => "PUSHF",
        0x071 => "POPF",
        0x072 => "CPUID",
        0x073 => "RSM",
        0x074 => "IRET",
        0x075 => "SWINT",
        0x076 => "INVD",
        0x077 => "PAUSE",
        0x078 => "HLT",
        0x079 => "INVLPG",
        0x07a => "INVLPGA",
        0x07b => "IOIO",
        0x07c => "MSR",
        0x07d => "TASK_SWITCH",
        0x07e => "FERR_FREEZE",
        0x07f => "SHUTDOWN",
        0x080 => "VMRUN",
        0x081 => "VMMCALL",
        0x082 => "VMLOAD",
        0x083 => "VMSAVE",
        0x084 => "STGI",
        0x085 => "CLGI",
        0x086 => "SKINIT",
        0x087 => "RDTSCP",
        0x088 => "ICEBP",
        0x089 => "WBINVD",
        0x08a => "MONITOR",
        0x08b => "MWAIT",
        0x08c => "MWAIT_COND",
        0x08d => "XSETBV",
        0x08e => "RDPRU",
        0x08f => "EFER_WRITE_TRAP",
        0x090..=0x09f => SVM_CR_TRAP[(code - 0x90) as usize],
        0x0a2 => "INVPCID",
        0x0a5 => "BUS_LOCK",
        0x0a6 => "IDLE_HLT",
        0x400 => "NPF",
        0x401 => "AVIC_INCOMPLETE_IPI",
        0x402 => "AVIC_UNACCELERATED_ACCESS",
        0x403 => "VMGEXIT",
        0x8000_0001 => "VMGEXIT_MMIO_READ",
        0x8000_0002 => "VMGEXIT_MMIO_WRITE",
        0x8000_0003 => "VMGEXIT_NMI_COMPLETE",
        0x8000_0004 => "VMGEXIT_AP_HLT_LOOP",
        0x8000_0005 => "VMGEXIT_AP_JUMP_TABLE",
        0x8000_0010 => "VMGEXIT_PSC",
        0x8000_0011 => "VMGEXIT_GUEST_REQUEST",
        0x8000_0012 => "VMGEXIT_EXT_GUEST_REQUEST",
        0x8000_0013 => "VMGEXIT_AP_CREATION",
        0x8000_fffd => "VMGEXIT_HV_FEATURES",
        0x8000_fffe => "VMGEXIT_TERM_REQUEST",
        0x8000_ffff => "VMGEXIT_UNSUPPORTED_EVENT",
        0xf000_0000 => "SW",
        0xffff_ffff | u64::MAX => "ERR (VMEXIT_INVALID)",
        _ => return None,
    })
}

/// The Intel SDM's text for VM-instruction error number `n` (VMCS field 0x4400).
pub fn vm_instruction_error(n: u64) -> Option<&'static str> {
    Some(match n {
        1 => "VMCALL executed in VMX root operation",
        2 => "VMCLEAR with invalid physical address",
        3 => "VMCLEAR with VMXON pointer",
        4 => "VMLAUNCH with non-clear VMCS",
        5 => "VMRESUME with non-launched VMCS",
        6 => "VMRESUME after VMXOFF",
        7 => "VM entry with invalid control field(s)",
        8 => "VM entry with invalid host-state field(s)",
        9 => "VMPTRLD with invalid physical address",
        10 => "VMPTRLD with VMXON pointer",
        11 => "VMPTRLD with incorrect VMCS revision identifier",
        12 => "VMREAD/VMWRITE from/to unsupported VMCS component",
        13 => "VMWRITE to read-only VMCS component",
        15 => "VMXON executed in VMX root operation",
        16 => "VM entry with invalid executive-VMCS pointer",
        17 => "VM entry with non-launched executive VMCS",
        18 => "VM entry with executive-VMCS pointer not VMXON pointer",
        19 => "VMCALL with non-clear VMCS",
        20 => "VMCALL with invalid VM-exit control fields",
        22 => "VMCALL with incorrect MSEG revision identifier",
        23 => "VMXOFF under dual-monitor treatment of SMIs and SMM",
        24 => "VMCALL with invalid SMM-monitor features",
        25 => "VM entry with invalid VM-execution control fields in executive VMCS",
        26 => "VM entry with events blocked by MOV SS",
        28 => "invalid operand to INVEPT/INVVPID",
        _ => return None,
    })
}

/// IDT-vectoring / VM-exit interruption information (SDM format): valid bit 31, type 10:8,
/// vector 7:0, error-code-valid bit 11.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventInfo {
    /// The value as reported.
    #[serde(with = "coroner_formats::hex")]
    pub raw: u64,
    /// Bit 31: the information is valid (an event was being delivered).
    pub valid: bool,
    /// Bits 10:8 named: "external interrupt", "NMI", "hardware exception", "software
    /// interrupt", "privileged software exception", "software exception", "other event"
    /// (or "reserved" for type 1).
    pub kind: &'static str,
    /// Bits 7:0.
    pub vector: u8,
    /// The exception mnemonic (e.g. `#PF`) when the type is an exception or NMI.
    pub vector_name: Option<&'static str>,
    /// Bit 11: an error code was (to be) delivered.
    pub error_code_valid: bool,
}

/// The mnemonic of architectural exception vector `v`.
fn exception_name(v: u8) -> Option<&'static str> {
    Some(match v {
        0 => "#DE",
        1 => "#DB",
        2 => "NMI",
        3 => "#BP",
        4 => "#OF",
        5 => "#BR",
        6 => "#UD",
        7 => "#NM",
        8 => "#DF",
        9 => "coprocessor segment overrun",
        10 => "#TS",
        11 => "#NP",
        12 => "#SS",
        13 => "#GP",
        14 => "#PF",
        16 => "#MF",
        17 => "#AC",
        18 => "#MC",
        19 => "#XM",
        20 => "#VE",
        21 => "#CP",
        28 => "#HV",
        29 => "#VC",
        30 => "#SX",
        _ => return None,
    })
}

/// Decodes an IDT-vectoring or VM-exit interruption information word.
pub fn event_info(raw: u64) -> EventInfo {
    let vector = (raw & 0xff) as u8;
    let ty = (raw >> 8) & 7;
    let kind = match ty {
        0 => "external interrupt",
        1 => "reserved",
        2 => "NMI",
        3 => "hardware exception",
        4 => "software interrupt",
        5 => "privileged software exception",
        6 => "software exception",
        _ => "other event",
    };
    let vector_name = match ty {
        2 => Some("NMI"),
        3 | 5 | 6 => exception_name(vector),
        _ => None,
    };
    EventInfo {
        raw,
        valid: raw & (1 << 31) != 0,
        kind,
        vector,
        vector_name,
        error_code_valid: raw & (1 << 11) != 0,
    }
}

impl EventInfo {
    /// One line: "valid hardware exception #PF (vector 14) with error code".
    pub fn summary(&self) -> String {
        if !self.valid {
            return format!(
                "not valid (no event was being delivered), raw {:#x}",
                self.raw
            );
        }
        let name = match self.vector_name {
            Some(n) => format!("{n} (vector {})", self.vector),
            None => format!("vector {:#x}", self.vector),
        };
        let ec = if self.error_code_valid {
            " with error code"
        } else {
            ""
        };
        format!("valid {} {name}{ec}", self.kind)
    }
}

/// One decoded element of `extra data[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataField {
    /// Position in `data[]`.
    pub index: usize,
    /// What the word is: "flags", "insn_size+bytes", "insn bytes", "exit reason",
    /// "exit qualification", "vectoring info", "interruption info", "error code", "GPA",
    /// "last VM-entry CPU", "extra" or "data" (layout unknown).
    pub name: &'static str,
    /// The word.
    #[serde(with = "coroner_formats::hex")]
    pub value: u64,
    /// The word decoded, in words.
    pub meaning: String,
}

/// `extra data[]` decoded by sub-error and count (which tells the kernel version).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecodedData {
    /// The layout recognised, e.g. "kernel <= 5.15: no data".
    pub layout: String,
    /// Every word, named and decoded.
    pub fields: Vec<DataField>,
    /// Sub-error 1 with flags bit 0: the `insn_size` instruction bytes (at most 15).
    pub insn_bytes: Option<Vec<u8>>,
    /// Sub-error 3 `data[1]`; sub-error 1 exit-info reason when present and non-zero;
    /// sub-error 4 `data[0]`.
    pub exit_reason: Option<VmxExitReason>,
    /// The IDT-vectoring information, when the layout has it.
    pub vectoring: Option<EventInfo>,
    /// The exit qualification, when the layout has it.
    #[serde(with = "coroner_formats::hex::option")]
    pub qualification: Option<u64>,
    /// Sub-error 3 when the basic reason is 49 (EPT_MISCONFIG) and `data[3]` is present.
    #[serde(with = "coroner_formats::hex::option")]
    pub gpa: Option<u64>,
    /// The host CPU of the last VM entry, when the layout has it (kernel 5.9+).
    pub cpu: Option<u64>,
}

/// Builds the fields and the summary of `data[]`.
struct Builder<'a> {
    data: &'a [u64],
    out: DecodedData,
}

impl<'a> Builder<'a> {
    fn new(data: &'a [u64]) -> Self {
        Builder {
            data,
            out: DecodedData {
                layout: String::new(),
                fields: Vec::new(),
                insn_bytes: None,
                exit_reason: None,
                vectoring: None,
                qualification: None,
                gpa: None,
                cpu: None,
            },
        }
    }

    fn push(&mut self, index: usize, name: &'static str, meaning: String) {
        if let Some(&value) = self.data.get(index) {
            self.out.fields.push(DataField {
                index,
                name,
                value,
                meaning,
            });
        }
    }

    fn vectoring(&mut self, index: usize) {
        if let Some(&v) = self.data.get(index) {
            let info = event_info(v);
            self.push(
                index,
                "vectoring info",
                format!("IDT-vectoring info: {}", info.summary()),
            );
            self.out.vectoring = Some(info);
        }
    }

    fn exit_reason(&mut self, index: usize) -> Option<VmxExitReason> {
        let v = *self.data.get(index)?;
        let r = vmx_exit_reason(v);
        let mut meaning = match r.name {
            Some(n) => format!("exit reason {:#x} {n}: {}", r.raw, r.description),
            None => format!("exit reason {:#x}: {}", r.raw, r.description),
        };
        if r.name.is_none() {
            if let Some(svm) = svm_exit_code(v) {
                meaning.push_str(&format!("; on an AMD host this is SVM exit code {svm}"));
            }
        }
        self.push(index, "exit reason", meaning);
        Some(r)
    }

    fn qualification(&mut self, index: usize) {
        if let Some(&v) = self.data.get(index) {
            self.push(
                index,
                "exit qualification",
                format!("exit qualification {v:#x}"),
            );
            self.out.qualification = Some(v);
        }
    }

    fn cpu(&mut self, index: usize) {
        if let Some(&v) = self.data.get(index) {
            self.push(
                index,
                "last VM-entry CPU",
                format!("the vCPU last entered the guest on host CPU {v}"),
            );
            self.out.cpu = Some(v);
        }
    }

    fn extra_from(&mut self, start: usize, name: &'static str, meaning: &str) {
        for i in start..self.data.len() {
            self.push(i, name, meaning.to_string());
        }
    }
}

/// Splits `data[1..=2]` of a 5.16+ emulation failure into `insn_size` and the bytes.
fn insn_bytes(w1: u64, w2: u64) -> (u8, Vec<u8>) {
    let mut all = [0u8; 16];
    all[..8].copy_from_slice(&w1.to_le_bytes());
    all[8..].copy_from_slice(&w2.to_le_bytes());
    let size = all[0];
    let n = usize::from(size).min(15);
    (size, all[1..1 + n].to_vec())
}

/// `extra data[]` decoded by sub-error and count (which tells the kernel version).
pub fn decode_data(suberror: u32, data: &[u64]) -> DecodedData {
    let mut b = Builder::new(data);
    let n = data.len();
    match suberror {
        1 => decode_emulation(&mut b),
        2 => {
            b.vectoring(0);
            if let Some(&v) = data.get(1) {
                let info = event_info(v);
                b.push(
                    1,
                    "interruption info",
                    format!("VM-exit interruption info: {}", info.summary()),
                );
            }
            if let Some(&v) = data.get(2) {
                b.push(2, "error code", format!("exception error code {v:#x}"));
            }
            b.cpu(3);
            b.extra_from(4, "extra", "not part of any known layout");
            b.out.layout = match n {
                0 => "simultaneous-exception layout: no data".to_string(),
                1 | 2 => {
                    "oldest simultaneous-exception layout: vectoring info, interruption info"
                        .to_string()
                }
                3 => "pre-5.9 simultaneous-exception layout: vectoring info, interruption info, error code".to_string(),
                4 => "5.9+ simultaneous-exception layout: vectoring info, interruption info, error code, last VM-entry CPU".to_string(),
                _ => format!("unknown simultaneous-exception layout with {n} words"),
            };
        }
        3 => decode_delivery(&mut b),
        4 => {
            b.out.exit_reason = b.exit_reason(0);
            b.cpu(1);
            b.extra_from(2, "extra", "not part of any known layout");
            b.out.layout = match n {
                0 => "unexpected-exit-reason layout: no data".to_string(),
                1 => "pre-5.9 unexpected-exit-reason layout: exit reason".to_string(),
                2 => "5.9+ unexpected-exit-reason layout: exit reason (SVM exit code on AMD), last VM-entry CPU".to_string(),
                _ => format!("unknown unexpected-exit-reason layout with {n} words"),
            };
        }
        _ => {
            b.extra_from(0, "data", "sub-error unknown: layout unknown");
            b.out.layout = format!("unknown sub-error {suberror}: {n} undecoded words");
        }
    }
    b.out
}

/// Sub-error 1 (emulation failure).
fn decode_emulation(b: &mut Builder<'_>) {
    let data = b.data;
    let n = data.len();
    let Some(&flags) = data.first() else {
        b.out.layout = "kernel <= 5.15: no data".to_string();
        return;
    };
    let has_bytes = flags & 1 != 0 && n >= 3;
    b.push(
        0,
        "flags",
        if flags & 1 != 0 {
            "bit 0 set: instruction bytes follow".to_string()
        } else {
            "no instruction bytes".to_string()
        },
    );
    let start = if has_bytes {
        let (size, bytes) = insn_bytes(data[1], data[2]);
        let hex: Vec<String> = bytes.iter().map(|x| format!("{x:02x}")).collect();
        b.push(
            1,
            "insn_size+bytes",
            format!("insn_size {size}, then the first instruction bytes"),
        );
        b.push(
            2,
            "insn bytes",
            format!("instruction bytes: {}", hex.join(" ")),
        );
        b.out.insn_bytes = Some(bytes);
        3
    } else {
        1
    };
    if let Some(&reason) = data.get(start) {
        if reason != 0 {
            b.out.exit_reason = b.exit_reason(start);
        } else {
            b.push(
                start,
                "exit reason",
                "0: no exit information (or exit reason 0 EXCEPTION_NMI)".to_string(),
            );
        }
    }
    let reason_nonzero = data.get(start).is_some_and(|&r| r != 0);
    if reason_nonzero {
        b.qualification(start + 1);
    } else if let Some(&v) = data.get(start + 1) {
        b.push(
            start + 1,
            "exit qualification",
            format!("exit qualification (SVM exit_info_1) {v:#x}"),
        );
    }
    if let Some(&v) = data.get(start + 2) {
        let info = event_info(v);
        b.push(
            start + 2,
            "vectoring info",
            format!("IDT-vectoring info (SVM exit_int_info): {}", info.summary()),
        );
        b.out.vectoring = Some(info);
    }
    if let Some(&v) = data.get(start + 3) {
        b.push(
            start + 3,
            "interruption info",
            format!("VM-exit interruption info: {}", event_info(v).summary()),
        );
    }
    if let Some(&v) = data.get(start + 4) {
        b.push(
            start + 4,
            "error code",
            format!("interruption error code {v:#x}"),
        );
    }
    b.extra_from(start + 5, "extra", "caller-specific debug word (not ABI)");
    let expected = start + 5;
    b.out.layout = if n < expected {
        format!(
            "5.16+ emulation-failure layout, truncated: flags{}, {} of 5 exit-info words",
            if has_bytes {
                ", 16 instruction bytes"
            } else {
                ""
            },
            n.saturating_sub(start)
        )
    } else {
        let extra = n - expected;
        let extra = if extra > 0 {
            format!(", {extra} extra words")
        } else {
            String::new()
        };
        format!(
            "5.16+ emulation-failure layout: flags{}, 5 exit-info words{extra}",
            if has_bytes {
                ", 16 instruction bytes"
            } else {
                ""
            }
        )
    };
}

/// Sub-error 3 (exit during event delivery).
fn decode_delivery(b: &mut Builder<'_>) {
    let data = b.data;
    let n = data.len();
    b.vectoring(0);
    let reason = b.exit_reason(1);
    let misconfig = reason.as_ref().is_some_and(|r| r.basic == EPT_MISCONFIG);
    b.out.exit_reason = reason;
    b.qualification(2);
    let cpu_at = if misconfig {
        if let Some(&gpa) = data.get(3) {
            b.push(
                3,
                "GPA",
                format!("guest-physical address {gpa:#x} of the MMIO access"),
            );
            b.out.gpa = Some(gpa);
        }
        4
    } else {
        3
    };
    b.cpu(cpu_at);
    b.extra_from(cpu_at + 1, "extra", "not part of any known layout");
    let gpa = if misconfig { ", GPA" } else { "" };
    b.out.layout = match n {
        0 => "delivery-event layout: no data".to_string(),
        1 => "delivery-event layout, truncated: vectoring info".to_string(),
        2 => "oldest delivery-event layout: vectoring info, exit reason".to_string(),
        3 if misconfig => {
            "older delivery-event layout: vectoring info, exit reason, exit qualification (no GPA)"
                .to_string()
        }
        _ if n == cpu_at => {
            format!("pre-5.9 delivery-event layout: vectoring info, exit reason, exit qualification{gpa}")
        }
        _ if n == cpu_at + 1 => format!(
            "5.9+ delivery-event layout: vectoring info, exit reason, exit qualification{gpa}, last VM-entry CPU"
        ),
        _ => format!("unknown delivery-event layout with {n} words"),
    };
}

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
    fn suberrors() {
        let s = suberror(1).unwrap();
        assert_eq!(s.name, "KVM_INTERNAL_ERROR_EMULATION");
        assert_eq!(s.meaning, "KVM's instruction emulator failed");
        assert_eq!(suberror(3).unwrap().name, "KVM_INTERNAL_ERROR_DELIVERY_EV");
        assert_eq!(
            suberror(4).unwrap().name,
            "KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON"
        );
        assert!(suberror(0).is_none());
        assert!(suberror(5).is_none());
    }

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

    #[test]
    fn svm_codes() {
        assert_eq!(svm_exit_code(0x400), Some("NPF"));
        assert_eq!(svm_exit_code(0xffff_ffff), Some("ERR (VMEXIT_INVALID)"));
        assert_eq!(svm_exit_code(u64::MAX), Some("ERR (VMEXIT_INVALID)"));
        assert_eq!(svm_exit_code(0x4e), Some("EXCP_BASE+14 (#PF)"));
        assert_eq!(svm_exit_code(0x7c), Some("MSR"));
        assert_eq!(svm_exit_code(0x9f), Some("CR15_WRITE_TRAP"));
        assert_eq!(svm_exit_code(0x1), None);
    }

    #[test]
    fn instruction_errors() {
        assert_eq!(
            vm_instruction_error(7),
            Some("VM entry with invalid control field(s)")
        );
        assert!(vm_instruction_error(14).is_none());
        assert!(vm_instruction_error(0).is_none());
    }

    #[test]
    fn event_info_from_logs() {
        // Logs 05 and 07: #PF being delivered.
        let e = event_info(0x8000_0b0e);
        assert!(e.valid);
        assert_eq!(e.kind, "hardware exception");
        assert_eq!(e.vector, 14);
        assert_eq!(e.vector_name, Some("#PF"));
        assert!(e.error_code_valid);
        // Log 09: external interrupt 0x2f being delivered.
        let e = event_info(0x8000_002f);
        assert!(e.valid);
        assert_eq!(e.kind, "external interrupt");
        assert_eq!(e.vector, 0x2f);
        assert_eq!(e.vector_name, None);
        assert!(!e.error_code_valid);
        assert!(!event_info(0).valid);
        assert_eq!(event_info(0x8000_0202).vector_name, Some("NMI"));
        assert_eq!(event_info(0x8000_0700).kind, "other event");
    }

    #[test]
    fn log07_old_delivery_ev() {
        let d = decode_data(3, &[0x8000_0b0e, 0x31, 0x182, 0xbfff0]);
        let v = d.vectoring.clone().unwrap();
        assert!(v.valid && v.error_code_valid);
        assert_eq!(v.kind, "hardware exception");
        assert_eq!(v.vector_name, Some("#PF"));
        let r = d.exit_reason.clone().unwrap();
        assert_eq!(r.raw, 0x31);
        assert_eq!(r.name, Some("EPT_MISCONFIG"));
        assert_eq!(d.qualification, Some(0x182));
        assert_eq!(d.gpa, Some(0xbfff0));
        assert_eq!(d.cpu, None);
        assert!(d.layout.starts_with("pre-5.9"), "{}", d.layout);
        assert_eq!(d.fields.len(), 4);
        assert_eq!(d.fields[3].name, "GPA");
    }

    #[test]
    fn log05_delivery_ev_with_cpu() {
        let d = decode_data(3, &[0x8000_0b0e, 0x31, 0xd82, 0x4_1844_2c90, 8]);
        assert_eq!(d.exit_reason.unwrap().name, Some("EPT_MISCONFIG"));
        assert_eq!(d.qualification, Some(0xd82));
        assert_eq!(d.gpa, Some(0x4_1844_2c90));
        assert_eq!(d.cpu, Some(8));
        assert!(d.layout.starts_with("5.9+"), "{}", d.layout);
    }

    #[test]
    fn log09_delivery_ev_wrmsr() {
        let d = decode_data(3, &[0x8000_002f, 0x20, 0xd83, 0x38]);
        let v = d.vectoring.unwrap();
        assert_eq!(v.kind, "external interrupt");
        assert_eq!(v.vector, 0x2f);
        assert_eq!(d.exit_reason.unwrap().name, Some("MSR_WRITE"));
        assert_eq!(d.qualification, Some(0xd83));
        assert_eq!(d.gpa, None);
        assert_eq!(d.cpu, Some(0x38));
        assert_eq!(d.fields[3].name, "last VM-entry CPU");
    }

    #[test]
    fn emulation_failure_with_bytes() {
        let d = decode_data(
            1,
            &[
                1,
                0x41c0_3127_ae0f_480f,
                0x8b48_65ca_010f_c489,
                0x31,
                0,
                0,
                0,
                0,
            ],
        );
        assert_eq!(
            d.insn_bytes.as_deref(),
            Some(
                &[
                    0x48, 0x0f, 0xae, 0x27, 0x31, 0xc0, 0x41, 0x89, 0xc4, 0x0f, 0x01, 0xca, 0x65,
                    0x48, 0x8b
                ][..]
            )
        );
        let r = d.exit_reason.clone().unwrap();
        assert_eq!(r.basic, 49);
        assert_eq!(r.name, Some("EPT_MISCONFIG"));
        assert_eq!(d.qualification, Some(0));
        assert_eq!(
            d.layout,
            "5.16+ emulation-failure layout: flags, 16 instruction bytes, 5 exit-info words"
        );
        assert_eq!(d.fields.len(), 8);
        assert_eq!(d.fields[1].name, "insn_size+bytes");
        assert_eq!(d.cpu, None);
    }

    #[test]
    fn emulation_failure_without_data_or_bytes() {
        let d = decode_data(1, &[]);
        assert_eq!(d.layout, "kernel <= 5.15: no data");
        assert!(d.fields.is_empty() && d.insn_bytes.is_none() && d.exit_reason.is_none());
        let d = decode_data(1, &[0, 0x30, 0x1234, 0, 0, 0]);
        assert!(d.insn_bytes.is_none());
        assert_eq!(d.exit_reason.unwrap().name, Some("EPT_VIOLATION"));
        assert_eq!(d.qualification, Some(0x1234));
        assert_eq!(
            d.layout,
            "5.16+ emulation-failure layout: flags, 5 exit-info words"
        );
        let d = decode_data(1, &[0, 0, 0, 0, 0, 0]);
        assert!(d.exit_reason.is_none());
    }

    #[test]
    fn insn_size_short() {
        // insn_size 3, unused bytes 0x90.
        let w1 = u64::from_le_bytes([3, 0x89, 0x07, 0xc3, 0x90, 0x90, 0x90, 0x90]);
        let d = decode_data(1, &[1, w1, 0x9090_9090_9090_9090, 0x31, 0, 0, 0, 0]);
        assert_eq!(d.insn_bytes.as_deref(), Some(&[0x89, 0x07, 0xc3][..]));
    }

    #[test]
    fn simul_ex_and_unexpected() {
        let d = decode_data(2, &[0x8000_0b0e, 0x8000_0b0d, 0x10, 3]);
        assert_eq!(d.vectoring.unwrap().vector_name, Some("#PF"));
        assert_eq!(d.fields[1].name, "interruption info");
        assert_eq!(d.cpu, Some(3));
        assert!(d.layout.starts_with("5.9+"));
        let d = decode_data(4, &[0x45, 2]);
        assert_eq!(d.exit_reason.unwrap().basic, 0x45);
        assert_eq!(d.cpu, Some(2));
        let d = decode_data(9, &[1, 2]);
        assert_eq!(d.fields.len(), 2);
        assert!(d.layout.contains("unknown sub-error 9"));
    }

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

    #[test]
    fn serializes() {
        let d = decode_data(3, &[0x8000_0b0e, 0x31, 0x182, 0xbfff0]);
        let j = serde_json::to_string(&d).unwrap();
        assert!(j.contains("EPT_MISCONFIG"));
    }
}
