//! Machine-check records in the kernel log: the `[Hardware Error]` groups `__print_mce()`
//! writes (Linux 3.x to 6.x, with or without the `mce: ` prefix), the AMD EDAC decoder's
//! `MC%d_STATUS` lines, and the kernel's own verdict lines around them.
//!
//! A group starts with `CPU N: Machine Check...: MCGSTATUS Bank B: STATUS` and takes the
//! `RIP`, `TSC ... ADDR ... MISC ...` and `PROCESSOR ... TIME ... SOCKET ... APIC ...` lines
//! that follow; any other line ends it, as in `mcelog --ascii`.

use serde::Serialize;

use super::raw::MceRaw;
use super::rendezvous::is_rendezvous_line;
use crate::printk::LogRecord;

/// Where a record was printed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogPlace {
    /// Sequence number of the group's first record.
    pub seq: u64,
    /// Its timestamp, nanoseconds since boot.
    pub ts_nsec: u64,
    /// The group's lines, as printed (raw guest text: escape before display).
    pub lines: Vec<String>,
}

/// What a machine-check-related kernel line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineKind {
    /// `Machine check: MSG`: the kernel's severity message for the record it panics on.
    Severity,
    /// `Kernel panic - not syncing: ...` about a machine check.
    Panic,
    /// `Memory failure: 0xPFN: ...` (the kernel acting on a poisoned page).
    MemoryFailure,
    /// The rendezvous timeout (`Timeout: Not all CPUs entered broadcast exception
    /// handler`, as a panic or not) and the lines naming the CPUs that did not answer.
    Rendezvous,
    /// Any other machine-check line (`Machine check events logged`, timeouts, ...).
    Other,
}

/// A kernel line about machine checks that is not part of a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelLine {
    /// What it says.
    pub kind: LineKind,
    /// Sequence number of its record.
    pub seq: u64,
    /// Its timestamp, nanoseconds since boot.
    pub ts_nsec: u64,
    /// The line without the `mce: [Hardware Error]: ` prefix (raw guest text).
    pub text: String,
    /// For `Memory failure` lines: the page frame number.
    pub pfn: Option<u64>,
}

/// The kernel log's machine-check content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogMce {
    /// Records, in log order.
    pub records: Vec<(MceRaw, LogPlace)>,
    /// Verdict and other machine-check lines, in log order.
    pub lines: Vec<KernelLine>,
}

/// Lines of more than this many records in one group are not a `__print_mce` group.
const MAX_GROUP_LINES: usize = 16;

/// Strips the printk prefixes `__print_mce` uses (`mce: `, `[Hardware Error]: `) and the
/// Intel EDAC drivers' (`EDAC sbridge MC1: `).
fn strip_prefixes(text: &str) -> (&str, bool) {
    let t = text.trim();
    let t = t.strip_prefix("mce: ").unwrap_or(t);
    let t = match t.strip_prefix("EDAC ").and_then(|r| r.split_once(": ")) {
        Some((driver, rest)) if driver.contains(" MC") => rest,
        _ => t,
    };
    match t.strip_prefix("[Hardware Error]:") {
        Some(rest) => (rest.trim_start(), true),
        None => (t, false),
    }
}

fn hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

fn dec(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

/// `CPU 1: Machine Check Exception: 7 Bank 1: bd80000000000134` (also `Machine Check: 0`,
/// and the old `CPU 0 BANK 4` form without MCG_STATUS).
fn parse_header(t: &str) -> Option<MceRaw> {
    let rest = t.strip_prefix("CPU ")?;
    let mut raw = MceRaw::default();
    if let Some((cpu, after)) = rest.split_once(": Machine Check") {
        raw.cpu = Some(u32::try_from(dec(cpu)?).ok()?);
        // after = " Exception: 7 Bank 1: bd80..." or ": 0 Bank 2: 9c00..."
        let after = after
            .strip_prefix(" Exception")
            .or_else(|| after.strip_prefix(" Event"))
            .unwrap_or(after);
        let after = after.strip_prefix(':')?.trim_start();
        let (mcg, after) = after.split_once(" Bank ")?;
        raw.mcgstatus = Some(hex(mcg)?);
        let (bank, status) = after.split_once(':')?;
        raw.bank = Some(u8::try_from(dec(bank)?).ok()?);
        raw.status = hex(status)?;
        return Some(raw);
    }
    // Old form: "CPU 0 BANK 4 ..." handled by mcelog; status follows as "STATUS x".
    let (cpu, after) = rest.split_once(" BANK ")?;
    raw.cpu = Some(u32::try_from(dec(cpu)?).ok()?);
    let mut words = after.split_whitespace();
    raw.bank = Some(u8::try_from(dec(words.next()?)?).ok()?);
    while let Some(w) = words.next() {
        match w {
            "STATUS" => raw.status = hex(words.next()?)?,
            "MCGSTATUS" => raw.mcgstatus = Some(hex(words.next()?)?),
            _ => {}
        }
    }
    Some(raw)
}

/// `RIP !INEXACT! 10:<ffffffff...> {sym+0x0/0x10}` and the like.
fn parse_rip(t: &str, raw: &mut MceRaw) -> bool {
    let Some(rest) = t.strip_prefix("RIP") else {
        return false;
    };
    let rest = rest.trim_start();
    let (inexact, rest) = match rest.strip_prefix("!INEXACT!") {
        Some(r) => (true, r.trim_start()),
        None => (false, rest),
    };
    let Some((cs, after)) = rest.split_once(":<") else {
        return false;
    };
    let Some((ip, after)) = after.split_once('>') else {
        return false;
    };
    let (Some(cs), Some(ip)) = (hex(cs), hex(ip)) else {
        return false;
    };
    raw.cs = u8::try_from(cs).ok();
    raw.ip = Some(ip);
    raw.ip_inexact = inexact;
    let after = after.trim();
    if let Some(sym) = after
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .filter(|s| !s.is_empty())
    {
        raw.ip_symbol = Some(sym.to_string());
    }
    true
}

/// Key-value lines: `TSC 7be0 ADDR 2345000 MISC 86 SYND ...` and
/// `PROCESSOR 0:f61 TIME 1795348623 SOCKET 0 APIC 1 microcode 1`.
fn parse_fields(t: &str, raw: &mut MceRaw) -> bool {
    let first = t.split_whitespace().next().unwrap_or("");
    if !matches!(
        first,
        "TSC" | "PROCESSOR" | "ADDR" | "MISC" | "STATUS" | "MCGSTATUS" | "MCGCAP" | "APICID"
    ) {
        return false;
    }
    let mut words = t.split_whitespace();
    while let Some(key) = words.next() {
        let Some(value) = words.next() else {
            return false;
        };
        match key {
            "TSC" => raw.tsc = hex(value),
            "ADDR" => raw.addr = hex(value),
            "MISC" => raw.misc = hex(value),
            "SYND" => raw.synd = hex(value),
            "IPID" => raw.ipid = hex(value),
            "PPIN" => raw.ppin = hex(value),
            "STATUS" => raw.status = hex(value).unwrap_or(raw.status),
            "MCGSTATUS" => raw.mcgstatus = hex(value),
            "MCGCAP" => raw.mcgcap = hex(value),
            "PROCESSOR" => {
                if let Some((vendor, cpuid)) = value.split_once(':') {
                    raw.cpuvendor = dec(vendor).and_then(|v| u8::try_from(v).ok());
                    raw.cpuid = hex(cpuid).and_then(|v| u32::try_from(v).ok());
                }
            }
            "TIME" => raw.time = dec(value),
            "SOCKET" | "SOCKETID" => raw.socket = dec(value).and_then(|v| u32::try_from(v).ok()),
            "APIC" | "APICID" => raw.apic = hex(value).and_then(|v| u32::try_from(v).ok()),
            "microcode" => raw.microcode = hex(value).and_then(|v| u32::try_from(v).ok()),
            // SYND1, SYND2, CONFIG, HYBRID_*: known, not kept.
            _ => {}
        }
    }
    true
}

/// AMD EDAC: `CPU:0 (17:31:0) MC15_STATUS[Over|CE|MiscV|AddrV|...]: 0x9c2040000000011b`.
fn parse_amd_status(t: &str) -> Option<MceRaw> {
    let rest = t.strip_prefix("CPU:")?;
    let (cpu, rest) = rest.split_once(' ')?;
    let at = rest.find("MC")?;
    let rest = &rest[at + 2..];
    let (bank, rest) = rest.split_once("_STATUS")?;
    let (_, status) = rest.rsplit_once(": ")?;
    Some(MceRaw {
        cpu: Some(u32::try_from(dec(cpu)?).ok()?),
        bank: Some(u8::try_from(dec(bank)?).ok()?),
        status: hex(status)?,
        cpuvendor: Some(2),
        ..MceRaw::default()
    })
}

/// AMD EDAC continuation lines: `MC4_ADDR: 0x...`, `Error Addr: 0x...`,
/// `IPID: 0x..., Syndrome: 0x...`, and the decoder's descriptive lines.
fn parse_amd_field(t: &str, raw: &mut MceRaw) -> bool {
    const DESCRIPTIVE: [&str; 6] = [
        "Corrected error",
        "Deferred error",
        "Uncorrected",
        "System Fatal error",
        "cache level:",
        "Error Status:",
    ];
    if DESCRIPTIVE.iter().any(|d| t.starts_with(d)) || t.contains("Ext. Error Code") {
        return true;
    }
    let mut any = false;
    for part in t.split(", ") {
        let Some((key, value)) = part.split_once(':') else {
            return false;
        };
        let Some(v) = hex(value) else {
            return false;
        };
        match key.trim() {
            "Error Addr" => raw.addr = Some(v),
            "IPID" => raw.ipid = Some(v),
            "Syndrome" => raw.synd = Some(v),
            k if k.starts_with("MC") && k.ends_with("_ADDR") => raw.addr = Some(v),
            _ => return false,
        }
        any = true;
    }
    any
}

fn line_kind(t: &str) -> Option<(LineKind, Option<u64>)> {
    if is_rendezvous_line(t) {
        return Some((LineKind::Rendezvous, None));
    }
    if let Some(msg) = t.strip_prefix("Machine check: ") {
        let _ = msg;
        return Some((LineKind::Severity, None));
    }
    if let Some(rest) = t.strip_prefix("Kernel panic - not syncing: ") {
        let lower = rest.to_ascii_lowercase();
        if lower.contains("machine check") || lower.contains("mce") {
            return Some((LineKind::Panic, None));
        }
        return None;
    }
    if let Some(rest) = t.strip_prefix("Memory failure: ") {
        let pfn = rest.split(':').next().and_then(hex);
        return Some((LineKind::MemoryFailure, pfn));
    }
    let lower = t.to_ascii_lowercase();
    if lower.contains("machine check")
        || lower.contains("hardware memory error")
        || lower.contains("memory error not recovered")
    {
        return Some((LineKind::Other, None));
    }
    None
}

/// Reads the machine-check records and lines out of `records`.
pub fn from_log(records: &[LogRecord]) -> LogMce {
    let mut out = LogMce::default();
    let mut current: Option<(MceRaw, LogPlace)> = None;
    for rec in records {
        for line in rec.text.lines() {
            let (t, hw) = strip_prefixes(line);
            if let Some((raw, place)) = current.as_mut() {
                if place.lines.len() < MAX_GROUP_LINES
                    && (parse_rip(t, raw) || parse_fields(t, raw) || parse_amd_field(t, raw))
                {
                    place.lines.push(line.to_string());
                    continue;
                }
                if let Some(done) = current.take() {
                    out.records.push(done);
                }
            }
            if let Some(raw) = parse_header(t).or_else(|| hw.then(|| parse_amd_status(t)).flatten())
            {
                current = Some((
                    raw,
                    LogPlace {
                        seq: rec.seq,
                        ts_nsec: rec.ts_nsec,
                        lines: vec![line.to_string()],
                    },
                ));
                continue;
            }
            if let Some((kind, pfn)) = line_kind(t) {
                // `Run the above through 'mcelog --ascii'` is advice, not a finding.
                if !t.starts_with("Run the above through") {
                    out.lines.push(KernelLine {
                        kind,
                        seq: rec.seq,
                        ts_nsec: rec.ts_nsec,
                        text: t.to_string(),
                        pfn,
                    });
                }
            }
        }
    }
    if let Some(done) = current {
        out.records.push(done);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(lines: &[&str]) -> Vec<LogRecord> {
        lines
            .iter()
            .enumerate()
            .map(|(i, t)| LogRecord {
                seq: i as u64,
                ts_nsec: i as u64 * 1000,
                text: t.to_string(),
                ..LogRecord::default()
            })
            .collect()
    }

    /// Linux 6.1 under qemu (kvm64, Intel), captured by the guest kit.
    /// A real rendezvous panic (syzbot, on linux-edac, 2025): the timeout and the CPUs
    /// that did not answer are machine-check lines of their own kind.
    #[test]
    fn rendezvous_timeout_lines() {
        let m = from_log(&recs(&[
            "mce: CPUs not responding to MCE broadcast (may include false positives): 1-3",
            "Kernel panic - not syncing: Timeout: Not all CPUs entered broadcast exception handler",
            "Kernel Offset: 0x17400000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)",
        ]));
        assert!(m.records.is_empty());
        let kinds: Vec<_> = m.lines.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, [LineKind::Rendezvous, LineKind::Rendezvous]);
        assert!(m.lines[0].text.starts_with("CPUs not responding"));
    }

    #[test]
    fn linux_6_1_fatal_and_polled() {
        let log = from_log(&recs(&[
            "mce: [Hardware Error]: Machine check events logged",
            "mce: [Hardware Error]: CPU 0: Machine Check: 0 Bank 2: 9c00000000000090",
            "mce: [Hardware Error]: TSC 0 ADDR 1234000 MISC 8c ",
            "mce: [Hardware Error]: PROCESSOR 0:f61 TIME 1795348618 SOCKET 0 APIC 0 microcode 1",
            "Memory failure: 0x3456: recovery action for free buddy page: Recovered",
            "mce: [Hardware Error]: CPU 1: Machine Check Exception: 7 Bank 1: bd80000000000134",
            "mce: [Hardware Error]: RIP 10:<ffffffff89e592eb> {native_safe_halt+0xb/0x10}",
            "mce: [Hardware Error]: TSC 7be066191 ADDR 2345000 MISC 86 ",
            "mce: [Hardware Error]: PROCESSOR 0:f61 TIME 1795348623 SOCKET 0 APIC 1 microcode 1",
            "mce: [Hardware Error]: Run the above through 'mcelog --ascii'",
            "mce: [Hardware Error]: Machine check: Data load in unrecoverable area of kernel",
            "Kernel panic - not syncing: Fatal machine check",
        ]));
        assert_eq!(log.records.len(), 2);
        let (a, pa) = &log.records[0];
        assert_eq!(
            a,
            &MceRaw {
                cpu: Some(0),
                bank: Some(2),
                status: 0x9c00000000000090,
                mcgstatus: Some(0),
                addr: Some(0x1234000),
                misc: Some(0x8c),
                tsc: Some(0),
                time: Some(1795348618),
                cpuvendor: Some(0),
                cpuid: Some(0xf61),
                socket: Some(0),
                apic: Some(0),
                microcode: Some(1),
                ..MceRaw::default()
            }
        );
        assert_eq!((pa.seq, pa.lines.len()), (1, 3));
        let (b, pb) = &log.records[1];
        assert_eq!(b.cpu, Some(1));
        assert_eq!(b.bank, Some(1));
        assert_eq!(b.status, 0xbd80000000000134);
        assert_eq!(b.mcgstatus, Some(7));
        assert_eq!(b.cs, Some(0x10));
        assert_eq!(b.ip, Some(0xffffffff89e592eb));
        assert_eq!(b.ip_symbol.as_deref(), Some("native_safe_halt+0xb/0x10"));
        assert!(!b.ip_inexact);
        assert_eq!(
            (b.tsc, b.addr, b.misc),
            (Some(0x7be066191), Some(0x2345000), Some(0x86))
        );
        assert_eq!((b.apic, b.time), (Some(1), Some(1795348623)));
        assert_eq!((pb.seq, pb.lines.len()), (5, 4));
        let kinds: Vec<_> = log.lines.iter().map(|l| (l.kind, l.pfn)).collect();
        assert_eq!(
            kinds,
            [
                (LineKind::Other, None),
                (LineKind::MemoryFailure, Some(0x3456)),
                (LineKind::Severity, None),
                (LineKind::Panic, None),
            ]
        );
    }

    /// Linux 3.10 (RHEL 7) form: no `mce: ` prefix, `!INEXACT!`, two-digit CS.
    #[test]
    fn linux_3_x_without_prefix() {
        let log = from_log(&recs(&[
            "[Hardware Error]: CPU 0: Machine Check Exception: 5 Bank 4: b200000000070f0f",
            "[Hardware Error]: RIP !INEXACT! 10:<ffffffff8103cbd6> {intel_idle+0xc6/0x130}",
            "[Hardware Error]: TSC 1f36d3e4d1e ",
            "[Hardware Error]: PROCESSOR 0:206c2 TIME 1411379045 SOCKET 0 APIC 0 microcode 13",
            "[Hardware Error]: Machine check: Processor context corrupt",
            "Kernel panic - not syncing: Fatal Machine check",
        ]));
        assert_eq!(log.records.len(), 1);
        let r = &log.records[0].0;
        assert_eq!(
            (r.bank, r.status, r.mcgstatus),
            (Some(4), 0xb200000000070f0f, Some(5))
        );
        assert!(r.ip_inexact);
        assert_eq!(r.ip_symbol.as_deref(), Some("intel_idle+0xc6/0x130"));
        assert_eq!((r.cpuid, r.microcode), (Some(0x206c2), Some(0x13)));
        assert_eq!(log.lines.len(), 2);
        assert_eq!(log.lines[1].kind, LineKind::Panic);
    }

    /// Linux 5.x/6.x on AMD Zen with SMCA fields and the EDAC decoder's lines.
    #[test]
    fn amd_smca_fields_and_edac() {
        let log = from_log(&recs(&[
            "mce: [Hardware Error]: CPU 3: Machine Check: 0 Bank 15: 9c2040000000011b",
            "mce: [Hardware Error]: TSC 0 ADDR 7f2d9040 MISC d012000101000000 SYND 1b3a0080 IPID 9600350f00 ",
            "mce: [Hardware Error]: PROCESSOR 2:800f82 TIME 1620000000 SOCKET 0 APIC 6 microcode 800820d",
            "[Hardware Error]: Corrected error, no action required.",
            "[Hardware Error]: CPU:3 (17:8:2) MC15_STATUS[Over|CE|MiscV|AddrV|-|-|SyndV|CECC|-|-|-]: 0x9c2040000000011b",
            "[Hardware Error]: Error Addr: 0x000000007f2d9040",
            "[Hardware Error]: IPID: 0x0000009600350f00, Syndrome: 0x000000001b3a0080",
            "[Hardware Error]: Unified Memory Controller Ext. Error Code: 0",
        ]));
        assert_eq!(log.records.len(), 2, "{:#?}", log.records);
        let a = &log.records[0].0;
        assert_eq!(a.synd, Some(0x1b3a0080));
        assert_eq!(a.ipid, Some(0x9600350f00));
        assert_eq!(a.cpuvendor, Some(2));
        let b = &log.records[1].0;
        assert_eq!(
            (b.cpu, b.bank, b.status),
            (Some(3), Some(15), 0x9c2040000000011b)
        );
        assert_eq!(b.addr, Some(0x7f2d9040));
        assert_eq!(b.ipid, Some(0x9600350f00));
    }

    proptest::proptest! {
        /// Lines built from the pieces of real ones, in any order: never a panic, groups
        /// stay bounded.
        #[test]
        fn any_mix_of_line_pieces_is_safe(pieces in proptest::collection::vec(
            (0usize..12, proptest::num::u64::ANY), 0..40)) {
            const WORDS: [&str; 12] = [
                "mce: [Hardware Error]: ", "CPU ", ": Machine Check Exception: ", " Bank ",
                "RIP !INEXACT! ", ":<", "> {", "TSC ", " ADDR ", "PROCESSOR ", "MC4_STATUS[", "\n",
            ];
            let mut text = String::new();
            let mut lines = Vec::new();
            for (i, (w, n)) in pieces.iter().enumerate() {
                text.push_str(WORDS[*w]);
                text.push_str(&format!("{n:x}"));
                if i % 5 == 4 {
                    lines.push(std::mem::take(&mut text));
                }
            }
            lines.push(text);
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            let log = from_log(&recs(&refs));
            for (_, place) in &log.records {
                proptest::prop_assert!(place.lines.len() <= MAX_GROUP_LINES + 1);
            }
        }
    }

    /// Real excerpts from public reports: Linux 4.x on a J5005 (andikleen/mcelog#70),
    /// 6.1 on a NUC (home-assistant/operating-system#2989), and the Intel EDAC sbridge
    /// driver's copy of a record (radiasoft/devops#134).
    #[test]
    fn real_excerpts_of_several_kernels() {
        let log = from_log(&recs(&[
            "mce: CPU supports 7 MCE banks",
            "mce: [Hardware Error]: Machine check events logged",
            "mce: [Hardware Error]: CPU 0: Machine Check: 0 Bank 4: a600000000020408",
            "mce: [Hardware Error]: TSC 0 ADDR fef4c9e0 ",
            "mce: [Hardware Error]: PROCESSOR 0:706a1 TIME 1537152664 SOCKET 0 APIC 0 microcode 28",
            "mce: [Hardware Error]: CPU 3: Machine Check: 0 Bank 6: cc59214000041152",
            "mce: [Hardware Error]: TSC 0 ADDR 143200200 MISC 7022004086 ",
            "mce: [Hardware Error]: PROCESSOR 0:406e3 TIME 1702475172 SOCKET 0 APIC 3 microcode d6",
            "EDAC sbridge MC1: HANDLING MCE MEMORY ERROR",
            "EDAC sbridge MC1: CPU 1: Machine Check Event: 0 Bank 11: 8c00004f000800c2",
            "EDAC sbridge MC1: TSC 0",
            "EDAC sbridge MC1: ADDR ee30a0000",
            "EDAC sbridge MC1: MISC 900040004001e8c",
            "EDAC sbridge MC1: PROCESSOR 0:306e4 TIME 1519356496 SOCKET 1 APIC 20",
        ]));
        let got: Vec<_> = log
            .records
            .iter()
            .map(|(r, _)| {
                (
                    r.cpu,
                    r.bank,
                    r.status,
                    r.addr,
                    r.misc,
                    r.cpuid,
                    r.apic,
                    r.microcode,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    Some(0),
                    Some(4),
                    0xa600000000020408,
                    Some(0xfef4c9e0),
                    None,
                    Some(0x706a1),
                    Some(0),
                    Some(0x28)
                ),
                (
                    Some(3),
                    Some(6),
                    0xcc59214000041152,
                    Some(0x143200200),
                    Some(0x7022004086),
                    Some(0x406e3),
                    Some(3),
                    Some(0xd6)
                ),
                (
                    Some(1),
                    Some(11),
                    0x8c00004f000800c2,
                    Some(0xee30a0000),
                    Some(0x900040004001e8c),
                    Some(0x306e4),
                    Some(0x20),
                    None
                ),
            ]
        );
        assert_eq!(log.records[2].0.socket, Some(1));
        assert_eq!(log.records[2].0.time, Some(1519356496));
    }

    #[test]
    fn unrelated_line_ends_group_and_garbage_is_ignored() {
        let log = from_log(&recs(&[
            "mce: [Hardware Error]: CPU 1: Machine Check: 0 Bank 0: 9000000000000150",
            "random driver message",
            "mce: [Hardware Error]: TSC 5 ADDR 10",
            "mce: [Hardware Error]: CPU x: Machine Check: zz Bank q: nothex",
            "mce: [Hardware Error]: CPU 999999999999: Machine Check: 0 Bank 1: 1",
        ]));
        assert_eq!(log.records.len(), 1);
        assert_eq!(log.records[0].0.tsc, None);
        assert_eq!(log.records[0].1.lines.len(), 1);
    }
}
