//! The MCA error code (MCi_STATUS bits 15:0) and the address granularity in MCi_MISC.
//!
//! The error-code classes follow the architectural table in the Intel SDM's machine-check
//! chapter, as mcelog's generic decoder and the kernel's AMD decoder read them; the wording is
//! ours, close to mcelog's.

use serde::Serialize;

/// The MCA error code (MCi_STATUS bits 15:0) decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorCode {
    /// MCACOD as recorded, bit 12 included.
    pub mcacod: u16,
    /// The model-specific error code, MCi_STATUS bits 31:16 (0 from the code decoder).
    pub mscod: u16,
    /// The code's class: "no error", "unclassified", "microcode ROM parity", "external", "FRC",
    /// "internal parity", "SMM handler code access violation", "internal timer",
    /// "internal unclassified", "generic cache hierarchy", "TLB", "cache hierarchy",
    /// "memory controller", "bus/interconnect", "memory as cache" or "unknown".
    pub class: &'static str,
    /// One sentence, e.g. "level-0 data cache data-read error".
    pub text: String,
    /// The kernel's `mce_is_memory_error()` rule for Intel: a memory-controller, cache-hierarchy
    /// or generic-cache code.
    pub memory_error: bool,
    /// Bit 12 ("F"): corrected filtering, so some later corrected errors went unreported.
    pub corrected_filtering: bool,
}

/// Bit 12 of the error code, masked before classifying.
const FILTERING: u16 = 1 << 12;

/// The LL field (cache level); SDM: 3 is "generic", not a fourth level.
const LEVELS: [&str; 4] = ["level-0", "level-1", "level-2", "generic-level"];
/// The TT field (transaction type).
const TYPES: [&str; 4] = ["instruction", "data", "generic", "reserved-type"];
/// The RRRR field (request); 9..15 are reserved.
const REQUESTS: [&str; 9] = [
    "generic",
    "read",
    "write",
    "data-read",
    "data-write",
    "instruction-fetch",
    "prefetch",
    "eviction",
    "snoop",
];
/// The PP field of a bus/interconnect code (the processor's part in the transaction).
const PARTICIPATION: [&str; 4] = [
    "originated locally",
    "responded to the request",
    "observed as third party",
    "generic participation",
];
/// The II field of a bus/interconnect code.
const BUS_KINDS: [&str; 4] = ["memory access", "reserved", "I/O", "other transaction"];
/// The MMM field of a memory-controller code; 5..7 are reserved.
const MEM_REQUESTS: [&str; 5] = ["generic", "read", "write", "address/command", "scrubbing"];

/// The codes 0..6, which carry no fields: (class, sentence).
const SIMPLE: [(&str, &str); 7] = [
    ("no error", "no error"),
    ("unclassified", "unclassified error"),
    ("microcode ROM parity", "microcode ROM parity error"),
    ("external", "external error"),
    ("FRC", "FRC error"),
    ("internal parity", "internal parity error"),
    (
        "SMM handler code access violation",
        "SMM handler code access violation",
    ),
];

/// Decodes an MCA error code (MCi_STATUS bits 15:0); bit 12 is reported, then ignored.
pub fn decode_mcacod(mcacod: u16) -> ErrorCode {
    let (class, text) = classify(mcacod & !FILTERING);
    ErrorCode {
        mcacod,
        mscod: 0,
        class,
        text,
        memory_error: is_memory_error(mcacod),
        corrected_filtering: mcacod & FILTERING != 0,
    }
}

/// The kernel's Intel `mce_is_memory_error()` test on the low 16 bits of MCi_STATUS.
fn is_memory_error(c: u16) -> bool {
    c & 0xef80 == 0x0080 || c & 0xef00 == 0x0100 || c & 0xeffc == 0x000c
}

/// `names[i]`, or `fallback` past its end.
fn field(names: &[&'static str], i: u16, fallback: &'static str) -> &'static str {
    names.get(usize::from(i)).copied().unwrap_or(fallback)
}

/// "channel N", or "unspecified channel" for CCCC = 0xf.
fn channel(c: u16) -> String {
    match c & 0xf {
        0xf => "unspecified channel".to_string(),
        n => format!("channel {n}"),
    }
}

/// Class and sentence of an error code with bit 12 already cleared.
fn classify(c: u16) -> (&'static str, String) {
    if let Some(&(class, text)) = SIMPLE.get(usize::from(c)) {
        return (class, text.to_string());
    }
    let ll = field(&LEVELS, c & 3, "");
    let tt = field(&TYPES, c >> 2 & 3, "");
    let rrrr = field(&REQUESTS, c >> 4 & 0xf, "reserved-request");
    let mmm = field(&MEM_REQUESTS, c >> 4 & 7, "reserved-request");
    if c == 0x0400 {
        ("internal timer", "internal timer error".to_string())
    } else if c >> 2 == 3 {
        // 0000 0000 0000 11LL
        (
            "generic cache hierarchy",
            format!("{ll} generic cache hierarchy error"),
        )
    } else if c >> 4 == 1 {
        // 0000 0000 0001 TTLL
        ("TLB", format!("{ll} {tt} TLB error"))
    } else if c >> 7 == 1 {
        // 0000 0000 1MMM CCCC
        (
            "memory controller",
            format!("memory controller {mmm} error on {}", channel(c)),
        )
    } else if c >> 8 == 1 {
        // 0000 0001 RRRR TTLL
        ("cache hierarchy", format!("{ll} {tt} cache {rrrr} error"))
    } else if c >> 7 == 5 {
        // 0000 0010 1MMM CCCC
        (
            "memory as cache",
            format!("memory-as-cache {mmm} error on {}", channel(c)),
        )
    } else if c >> 10 == 1 {
        // 0000 01xx xxxx xxxx, other than the timer
        (
            "internal unclassified",
            format!("internal unclassified error {c:#06x}"),
        )
    } else if c >> 11 == 1 {
        // 0000 1PPT RRRR IILL
        ("bus/interconnect", bus_text(c))
    } else {
        ("unknown", format!("unknown error code {c:#06x}"))
    }
}

/// The sentence for a bus/interconnect code `0000 1PPT RRRR IILL`.
fn bus_text(c: u16) -> String {
    if c == 0x0e0b {
        // The SDM's I/O machine check: generic participation, timeout, I/O, generic level; the
        // root port is in MCi_MISC.
        return "bus/interconnect I/O error (I/O machine check)".to_string();
    }
    let rrrr = field(&REQUESTS, c >> 4 & 0xf, "reserved-request");
    let pp = field(&PARTICIPATION, c >> 9 & 3, "");
    let ii = field(&BUS_KINDS, c >> 2 & 3, "");
    let timeout = if c & 0x100 != 0 {
        "timed out"
    } else {
        "no timeout"
    };
    let ll = field(&LEVELS, c & 3, "");
    format!("bus/interconnect {rrrr} error ({ii}, {pp}, {timeout}, {ll})")
}

/// How precise MCi_ADDR is, from MCi_MISC (only meaningful when MISCV).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AddrGranularity {
    /// The lowest valid address bit (MCi_MISC bits 5:0): 12 means the page is known, not the byte.
    pub lsb: u8,
    /// The address mode (bits 8:6): "segment offset", "linear", "physical", "memory", "generic"
    /// or "reserved".
    pub mode: &'static str,
}

/// Decodes the address LSB and mode from an Intel-format MCi_MISC.
pub fn addr_granularity(misc: u64) -> AddrGranularity {
    let mode = match misc >> 6 & 7 {
        0 => "segment offset",
        1 => "linear",
        2 => "physical",
        3 => "memory",
        7 => "generic",
        _ => "reserved",
    };
    AddrGranularity {
        lsb: (misc & 0x3f) as u8,
        mode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: u16, class: &str, text: &str) {
        let e = decode_mcacod(code);
        assert_eq!(
            (e.class, e.text.as_str()),
            (class, text),
            "code {code:#06x}"
        );
    }

    #[test]
    fn simple_codes() {
        check(0x0000, "no error", "no error");
        check(0x0001, "unclassified", "unclassified error");
        check(0x0002, "microcode ROM parity", "microcode ROM parity error");
        check(0x0003, "external", "external error");
        check(0x0004, "FRC", "FRC error");
        check(0x0005, "internal parity", "internal parity error");
        check(
            0x0006,
            "SMM handler code access violation",
            "SMM handler code access violation",
        );
        check(0x0007, "unknown", "unknown error code 0x0007");
        check(0x000b, "unknown", "unknown error code 0x000b");
        check(0x2000, "unknown", "unknown error code 0x2000");
    }

    #[test]
    fn generic_cache_hierarchy() {
        check(
            0x000c,
            "generic cache hierarchy",
            "level-0 generic cache hierarchy error",
        );
        check(
            0x000d,
            "generic cache hierarchy",
            "level-1 generic cache hierarchy error",
        );
        check(
            0x000e,
            "generic cache hierarchy",
            "level-2 generic cache hierarchy error",
        );
        check(
            0x000f,
            "generic cache hierarchy",
            "generic-level generic cache hierarchy error",
        );
    }

    #[test]
    fn tlb() {
        check(0x0010, "TLB", "level-0 instruction TLB error");
        check(0x0015, "TLB", "level-1 data TLB error");
        check(0x001a, "TLB", "level-2 generic TLB error");
        check(0x001f, "TLB", "generic-level reserved-type TLB error");
    }

    #[test]
    fn cache_hierarchy_every_request() {
        let want = [
            "generic",
            "read",
            "write",
            "data-read",
            "data-write",
            "instruction-fetch",
            "prefetch",
            "eviction",
            "snoop",
        ];
        for (r, name) in want.iter().enumerate() {
            let code = 0x0100 | (r as u16) << 4 | 0x5; // data, level-1
            check(
                code,
                "cache hierarchy",
                &format!("level-1 data cache {name} error"),
            );
        }
        check(
            0x0190,
            "cache hierarchy",
            "level-0 instruction cache reserved-request error",
        );
        check(
            0x0134,
            "cache hierarchy",
            "level-0 data cache data-read error",
        );
        check(
            0x0150,
            "cache hierarchy",
            "level-0 instruction cache instruction-fetch error",
        );
        check(
            0x017a,
            "cache hierarchy",
            "level-2 generic cache eviction error",
        );
    }

    #[test]
    fn memory_controller_every_request_and_channel() {
        let want = ["generic", "read", "write", "address/command", "scrubbing"];
        for (m, name) in want.iter().enumerate() {
            let code = 0x0080 | (m as u16) << 4 | 0x3;
            check(
                code,
                "memory controller",
                &format!("memory controller {name} error on channel 3"),
            );
        }
        for m in 5..8u16 {
            check(
                0x0080 | m << 4,
                "memory controller",
                "memory controller reserved-request error on channel 0",
            );
        }
        check(
            0x0090,
            "memory controller",
            "memory controller read error on channel 0",
        );
        check(
            0x00c0,
            "memory controller",
            "memory controller scrubbing error on channel 0",
        );
        check(
            0x009f,
            "memory controller",
            "memory controller read error on unspecified channel",
        );
        check(
            0x00ae,
            "memory controller",
            "memory controller write error on channel 14",
        );
    }

    #[test]
    fn memory_as_cache() {
        check(
            0x0280,
            "memory as cache",
            "memory-as-cache generic error on channel 0",
        );
        check(
            0x0291,
            "memory as cache",
            "memory-as-cache read error on channel 1",
        );
        check(
            0x02cf,
            "memory as cache",
            "memory-as-cache scrubbing error on unspecified channel",
        );
        // 0000 0010 0xxx xxxx is not memory-as-cache.
        check(0x0200, "unknown", "unknown error code 0x0200");
    }

    #[test]
    fn internal() {
        check(0x0400, "internal timer", "internal timer error");
        check(
            0x0401,
            "internal unclassified",
            "internal unclassified error 0x0401",
        );
        check(
            0x0405,
            "internal unclassified",
            "internal unclassified error 0x0405",
        );
        check(
            0x07ff,
            "internal unclassified",
            "internal unclassified error 0x07ff",
        );
    }

    #[test]
    fn bus_interconnect() {
        // PP=0, T=0, RRRR=1 read, II=0 memory, LL=1.
        check(
            0x0811,
            "bus/interconnect",
            "bus/interconnect read error (memory access, originated locally, no timeout, level-1)",
        );
        // PP=1, T=1, RRRR=2 write, II=2 I/O, LL=2.
        check(
            0x0b2a,
            "bus/interconnect",
            "bus/interconnect write error (I/O, responded to the request, timed out, level-2)",
        );
        // PP=2, T=0, RRRR=0, II=3 other, LL=3.
        check(
            0x0c0f,
            "bus/interconnect",
            "bus/interconnect generic error (other transaction, observed as third party, no \
             timeout, generic-level)",
        );
        // PP=3 generic, II=1 reserved.
        check(
            0x0e05,
            "bus/interconnect",
            "bus/interconnect generic error (reserved, generic participation, no timeout, level-1)",
        );
        check(
            0x0e0b,
            "bus/interconnect",
            "bus/interconnect I/O error (I/O machine check)",
        );
    }

    #[test]
    fn corrected_filtering_bit_is_masked() {
        let e = decode_mcacod(0x1090);
        assert!(e.corrected_filtering);
        assert_eq!(e.mcacod, 0x1090);
        assert_eq!(e.class, "memory controller");
        assert_eq!(e.text, "memory controller read error on channel 0");
        assert!(e.memory_error);
        check(
            0x1134,
            "cache hierarchy",
            "level-0 data cache data-read error",
        );
        check(0x1400, "internal timer", "internal timer error");
        check(0x1000, "no error", "no error");
        assert!(!decode_mcacod(0x0090).corrected_filtering);
    }

    #[test]
    fn memory_error_rule() {
        for c in [
            0x0080, 0x0090, 0x00c0, 0x00ff, 0x0100, 0x0134, 0x0150, 0x01ff, 0x000c, 0x000f,
        ] {
            assert!(decode_mcacod(c).memory_error, "{c:#x}");
            assert!(decode_mcacod(c | 0x1000).memory_error, "{c:#x} with F");
        }
        for c in [0x0000, 0x0005, 0x0010, 0x0280, 0x0400, 0x0811, 0x0e0b] {
            assert!(!decode_mcacod(c).memory_error, "{c:#x}");
        }
    }

    #[test]
    fn address_granularity() {
        assert_eq!(
            addr_granularity(0x8c),
            AddrGranularity {
                lsb: 12,
                mode: "physical"
            }
        );
        assert_eq!(addr_granularity(0x86).lsb, 6);
        assert_eq!(addr_granularity(0x86).mode, "physical");
        assert_eq!(addr_granularity(0x00).mode, "segment offset");
        assert_eq!(addr_granularity(0x40).mode, "linear");
        assert_eq!(addr_granularity(0xc0).mode, "memory");
        assert_eq!(addr_granularity(0x100).mode, "reserved");
        assert_eq!(addr_granularity(0x1c0).mode, "generic");
        assert_eq!(addr_granularity(0xffff_ffff_ffff_fe3f).lsb, 63);
    }
}
