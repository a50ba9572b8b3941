//! IDT-vectoring and VM-exit interruption information words (Intel SDM format): valid, type, vector, error code.

use serde::Serialize;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
