//! `KVM internal error`'s `extra data[]` decoded by sub-error and count (which tells the kernel version), following the kernel code that fills it.

use super::event_info::{event_info, EventInfo};
use super::svm_exit::svm_exit_code;
use super::vmx_exit::{vmx_exit_reason, VmxExitReason, EPT_MISCONFIG};
use serde::Serialize;

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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn serializes() {
        let d = decode_data(3, &[0x8000_0b0e, 0x31, 0x182, 0xbfff0]);
        let j = serde_json::to_string(&d).unwrap();
        assert!(j.contains("EPT_MISCONFIG"));
    }
}
