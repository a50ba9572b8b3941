//! The machine-check analysis: records from the kernel log and from memory merged into one
//! list, decoded, tied to the host's events and log lines, with a verdict.

use serde::Serialize;

use super::decode::{decode, Decoded, SeverityContext};
use super::host::{self, HostLineKind, HostSide};
use super::log::{from_log, KernelLine, LineKind, LogPlace};
use super::memory::{from_memory, MemPlace};
use super::page::{page_owner, PageOwner};
use super::raw::MceRaw;
use super::rendezvous::{rendezvous, Rendezvous};
use crate::kernel_view::Evidence;
use crate::session::Session;
use coroner_record::LogTail;

/// MCG_CAP.SER_P.
const MCG_SER_P: u64 = 1 << 24;
/// MCG_STATUS.MCIP: the record was raised as an exception (not found by polling).
const MCG_MCIP: u64 = 1 << 2;
/// How far the guest's wall clock may be from the host's (a loaded TCG guest drifts by
/// seconds).
const CLOCK_SKEW_S: i64 = 60;
/// A polled record is logged up to one poll interval (300 s by default) after the event.
const POLL_DELAY_S: i64 = 330;
/// qemu log lines kept.
const MAX_HOST_LINES: usize = 64;

/// Where a record was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum RecordSource {
    /// A `[Hardware Error]` group in the kernel log.
    KernelLog(LogPlace),
    /// A `struct mce` in guest memory.
    Memory(MemPlace),
}

/// One machine-check record, from all the places it was found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MceRecord {
    /// The record's fields (merged from its sources).
    pub raw: MceRaw,
    /// Decoded as `mcelog --ascii` would.
    pub decoded: Decoded,
    /// Where it was found.
    pub sources: Vec<RecordSource>,
    /// The page `addr` names, when ADDRV.
    pub page: Option<PageOwner>,
    /// The kernel's `Memory failure:` line for that page, when there is one.
    pub memory_failure: Option<String>,
    /// The host's side of this record: the `MEMORY_FAILURE` event and qemu log line tied
    /// to it, and what they mean.
    pub origin: String,
    /// Index in [`MceReport::host`]`.events` of the event tied to it.
    pub host_event: Option<usize>,
    /// The kernel panicked on this record.
    pub fatal: bool,
}

/// A page the kernel's `memory_failure()` acted on (`Memory failure: 0xPFN: ...`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemoryFailure {
    /// The kernel's line.
    pub line: KernelLine,
    /// The page now.
    pub page: PageOwner,
}

/// Everything known about machine checks in a capture.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MceReport {
    /// One line: the fatal record or the worst, and where it came from.
    pub verdict: String,
    /// Records, in the order the guest logged them (log first, then memory-only ones).
    pub records: Vec<MceRecord>,
    /// The kernel's machine-check verdict lines (`Machine check: ...`, panic,
    /// `Memory failure: ...`).
    pub kernel_lines: Vec<KernelLine>,
    /// Pages the kernel's memory-failure handling acted on, with their state now (the
    /// record that led there may be gone from memory: its pool slot gets reused).
    pub memory_failures: Vec<MemoryFailure>,
    /// The host's side.
    pub host: HostSide,
    /// The rendezvous timeout the guest panicked in, when it did (a machine check that
    /// reached one CPU of a guest without LMCE).
    pub rendezvous: Option<Rendezvous>,
    /// How each fact was obtained.
    pub evidence: Vec<Evidence>,
    /// What was tried and failed.
    pub problems: Vec<String>,
}

/// The machine checks of the dump of session `s` (see [`Session::mce`]);
/// `qemu_log` replaces the log the capture recorded.
pub(crate) fn analyze_mce(s: &Session<'_>, qemu_log: Option<&LogTail>) -> MceReport {
    let core = s.core();
    let view = s.view().ok();
    let ks = s.symbols();
    let log = s.kernel_log().ok().map(|l| l.records.as_slice());
    let mut evidence = Vec::new();
    let problems: Vec<String> = s.capture_problem().map(String::from).into_iter().collect();
    let capture = s.capture();

    // Sources.
    let from_log = log.map(from_log).unwrap_or_default();
    if let Some(records) = log {
        evidence.push(Evidence {
            fact: "kernel log".into(),
            value: format!(
                "{} machine-check record(s), {} verdict line(s)",
                from_log.records.len(),
                from_log.lines.len()
            ),
            how: format!(
                "[Hardware Error] groups among {} log records",
                records.len()
            ),
        });
    }
    let mem = match (view, ks) {
        (Some(v), Some(k)) => from_memory(v, k, core.elf.vcpus.len()),
        _ => Default::default(),
    };
    for s in &mem.searched {
        evidence.push(Evidence {
            fact: "memory".into(),
            value: s.clone(),
            how: "kallsyms symbol, read through the kernel page tables".into(),
        });
    }
    if let Some((size, how)) = &mem.record_size {
        evidence.push(Evidence {
            fact: "sizeof(struct mce)".into(),
            value: size.to_string(),
            how: how.clone(),
        });
    }

    // Merge: log records first, then memory records that match none.
    let mut merged: Vec<(MceRaw, Vec<RecordSource>)> = from_log
        .records
        .into_iter()
        .map(|(raw, place)| (raw, vec![RecordSource::KernelLog(place)]))
        .collect();
    for (raw, place) in mem.records {
        match merged.iter_mut().find(|(m, _)| same_record(m, &raw)) {
            Some((m, sources)) => {
                fill_missing(m, &raw);
                sources.push(RecordSource::Memory(place));
            }
            None => merged.push((raw, vec![RecordSource::Memory(place)])),
        }
    }

    // Host side.
    let (events, events_recorded) = host::events(capture);
    let (log_text, log_source) = match qemu_log {
        Some(l) => (Some(l.text.as_str()), Some(l.described_source())),
        None => match capture.and_then(|c| c.qemu_log.as_ref()) {
            Some(l) => (
                Some(l.text.as_str()),
                Some(format!("capture metadata, from {}", l.source)),
            ),
            None => (None, None),
        },
    };
    let mut lines = log_text.map(host::log_lines).unwrap_or_default();
    lines.truncate(MAX_HOST_LINES);
    let hostside = HostSide {
        events,
        events_recorded,
        lines,
        log_source,
    };

    // Decode with what the capture knows of MCG_CAP.
    let mcgcap = merged.iter().find_map(|(r, _)| r.mcgcap);
    let ctx = SeverityContext {
        ser: mcgcap.map(|c| c & MCG_SER_P != 0),
        succor: None,
    };
    if let Some(c) = mcgcap {
        evidence.push(Evidence {
            fact: "MCG_CAP".into(),
            value: format!("{c:#x}"),
            how: "from a struct mce in memory (the log does not print it); decides SER".into(),
        });
    }
    let fatal_at = fatal_record(&merged, &from_log.lines);
    let mut records: Vec<MceRecord> = merged
        .into_iter()
        .enumerate()
        .map(|(i, (raw, sources))| {
            let decoded = decode(&raw, &ctx);
            let page = raw
                .addr
                .filter(|_| raw.status_bit(58))
                .map(|a| page_owner(core.mem(), view, ks, a));
            let memory_failure = page.as_ref().and_then(|p| {
                from_log
                    .lines
                    .iter()
                    .find(|l| l.kind == LineKind::MemoryFailure && l.pfn == Some(p.pfn))
                    .map(|l| l.text.clone())
            });
            MceRecord {
                raw,
                decoded,
                sources,
                page,
                memory_failure,
                origin: String::new(),
                host_event: None,
                fatal: fatal_at == Some(i),
            }
        })
        .collect();
    tie_host(&mut records, &hostside);
    let memory_failures = from_log
        .lines
        .iter()
        .filter(|l| l.kind == LineKind::MemoryFailure)
        .filter_map(|l| {
            let pfn = l.pfn?;
            Some(MemoryFailure {
                line: l.clone(),
                page: page_owner(core.mem(), view, ks, pfn.checked_mul(4096)?),
            })
        })
        .collect();
    let rendezvous = rendezvous(&from_log.lines, &hostside, records.len());
    let verdict = verdict(&records, &hostside, rendezvous.as_ref());
    MceReport {
        verdict,
        records,
        kernel_lines: from_log.lines,
        memory_failures,
        host: hostside,
        rendezvous,
        evidence,
        problems,
    }
}

/// Two sightings of one record: every field both sides have agrees.
fn same_record(a: &MceRaw, b: &MceRaw) -> bool {
    fn agree<T: PartialEq>(x: &Option<T>, y: &Option<T>) -> bool {
        match (x, y) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
    }
    a.status == b.status
        && agree(&a.bank, &b.bank)
        && agree(&a.cpu, &b.cpu)
        && agree(&a.mcgstatus, &b.mcgstatus)
        && agree(&a.time, &b.time)
        && agree(&a.tsc, &b.tsc)
        && (a.addr.is_none() || b.addr.is_none() || a.addr == b.addr || !a.status_bit(58))
        && (a.misc.is_none() || b.misc.is_none() || a.misc == b.misc || !a.status_bit(59))
}

/// Fills the fields `into` lacks from `from`.
fn fill_missing(into: &mut MceRaw, from: &MceRaw) {
    macro_rules! fill {
        ($($f:ident),*) => { $( if into.$f.is_none() { into.$f = from.$f.clone(); } )* };
    }
    fill!(
        cpu, bank, mcgstatus, addr, misc, ip, cs, ip_symbol, tsc, time, cpuvendor, cpuid, socket,
        apic, microcode, mcgcap, synd, ipid, ppin, severity
    );
}

/// The record the kernel panicked on: the last one printed before the `Machine check:`
/// severity line or a machine-check panic; else one the kernel graded `panic` in memory.
fn fatal_record(merged: &[(MceRaw, Vec<RecordSource>)], lines: &[KernelLine]) -> Option<usize> {
    let verdict_seq = lines
        .iter()
        .find(|l| matches!(l.kind, LineKind::Severity | LineKind::Panic))
        .map(|l| l.seq);
    if let Some(seq) = verdict_seq {
        let before = merged
            .iter()
            .enumerate()
            .filter_map(|(i, (_, s))| {
                s.iter().find_map(|s| match s {
                    RecordSource::KernelLog(p) if p.seq < seq => Some((p.seq, i)),
                    _ => None,
                })
            })
            .max();
        if let Some((_, i)) = before {
            return Some(i);
        }
    }
    const MCE_PANIC_SEVERITY: u8 = 7;
    merged
        .iter()
        .position(|(r, _)| r.severity == Some(MCE_PANIC_SEVERITY) && verdict_seq.is_some())
}

/// Ties each record to the host's events and log lines, and says where it came from.
fn tie_host(records: &mut [MceRecord], host: &HostSide) {
    // Every plausible (record, event) pair: same action-required flag, and a time
    // difference the guest's clock and the kernel's polling allow. Pairs are taken
    // closest first, each record and event once.
    let mut pairs: Vec<(i64, usize, usize)> = Vec::new();
    for (ri, r) in records.iter().enumerate() {
        let Some(t) = r.raw.time.and_then(|t| i64::try_from(t).ok()) else {
            continue;
        };
        let exception = r.raw.mcgstatus.is_some_and(|m| m & MCG_MCIP != 0);
        let ar = r.raw.status_bit(55);
        for (ei, e) in host.events.iter().enumerate() {
            if e.recipient != "guest" || e.action != "inject" || e.action_required != ar {
                continue;
            }
            let Some(secs) = e.time_us.and_then(|us| i64::try_from(us / 1_000_000).ok()) else {
                continue;
            };
            let dt = t - secs;
            let window = if exception {
                -CLOCK_SKEW_S..=CLOCK_SKEW_S
            } else {
                -CLOCK_SKEW_S..=POLL_DELAY_S
            };
            if window.contains(&dt) {
                pairs.push((dt.abs(), ri, ei));
            }
        }
    }
    pairs.sort_unstable();
    let mut tied: Vec<Option<(usize, i64)>> = vec![None; records.len()];
    let mut used = vec![false; host.events.len()];
    for (_, ri, ei) in pairs {
        if tied[ri].is_none() && !used[ei] {
            used[ei] = true;
            let t = records[ri]
                .raw
                .time
                .and_then(|t| i64::try_from(t).ok())
                .unwrap_or(0);
            let secs = host.events[ei]
                .time_us
                .and_then(|us| i64::try_from(us / 1_000_000).ok())
                .unwrap_or(0);
            tied[ri] = Some((ei, t - secs));
        }
    }
    for (r, tie) in records.iter_mut().zip(tied) {
        let page = r.raw.addr.filter(|_| r.raw.status_bit(58)).map(|a| a >> 12);
        let line = host.lines.iter().find(|l| {
            l.kind == HostLineKind::GuestRamError
                && l.guest_addr.map(|a| a >> 12) == page
                && page.is_some()
        });
        r.host_event = tie.map(|(ei, _)| ei);
        r.origin = origin(
            r,
            tie.map(|(ei, dt)| (&host.events[ei], dt)),
            line.map(|l| l.text.as_str()),
            host,
        );
    }
}

fn origin(
    r: &MceRecord,
    event: Option<(&host::HostEvent, i64)>,
    line: Option<&str>,
    host: &HostSide,
) -> String {
    if let Some(line) = line {
        return format!(
            "host memory error: the host kernel reported poisoned memory behind this guest page and qemu injected it (qemu: \"{}\")",
            line.trim()
        );
    }
    let ev = event.map(|(e, dt)| {
        format!(
            "qemu injected it: MEMORY_FAILURE recipient=guest action=inject action-required={} at {} (matched by the action-required flag and time: the record's TIME is {dt:+} s from the event)",
            e.action_required,
            e.time_us.map(crate::time::format_rfc3339_micros).unwrap_or_else(|| "unknown time".into())
        )
    });
    match (ev, &host.log_source) {
        (Some(ev), Some(src)) => format!(
            "{ev}; qemu's log ({src}) has no \"Guest MCE Memory Error\" line for this page, so not from a host memory error seen by qemu: an injection through the monitor (HMP mce) or a test"
        ),
        (Some(ev), None) => format!(
            "{ev}; no qemu log to tell a host memory error (SIGBUS) from a monitor injection"
        ),
        (None, _) if !host.events_recorded => {
            let _ = r;
            "unknown: the capture did not watch qemu's events (capture --wait-frozen records MEMORY_FAILURE)".into()
        }
        (None, _) => "no MEMORY_FAILURE event of qemu matches it (time, action-required): raised inside the guest (e.g. mce-inject) or before the capture watched".into(),
    }
}

/// The crash title of a fatal machine check, for `triage`: the error's class (numbers
/// and addresses replaced, as in every title), its bank (kept: which unit failed is the
/// point), and whether the host's memory failed or qemu injected it.
pub fn title(report: &MceReport) -> Option<String> {
    if let Some(r) = report.records.iter().find(|r| r.fatal) {
        let origin = if r.origin.starts_with("host memory error") {
            " (host memory error)"
        } else if r.host_event.is_some() {
            " (injected by qemu)"
        } else {
            ""
        };
        let bank = r
            .raw
            .bank
            .map_or_else(|| "unknown bank".to_string(), |b| format!("bank {b}"));
        let class = crate::title::sanitize(&r.decoded.summary.replacen(": ", " ", 1));
        return Some(format!("machine check: {class} in {bank}{origin}"));
    }
    report
        .rendezvous
        .as_ref()
        .map(|_| "machine check: rendezvous timeout (no LMCE)".to_string())
}

fn verdict(records: &[MceRecord], host: &HostSide, rendezvous: Option<&Rendezvous>) -> String {
    let describe = |r: &MceRecord| {
        let place = r.raw.place();
        let host = if r.origin.starts_with("host memory error") {
            " (host memory error)"
        } else if r.host_event.is_some() {
            " (injected by qemu)"
        } else {
            ""
        };
        format!("{place}: {}{host}", r.decoded.summary)
    };
    if let Some(z) = rendezvous.filter(|_| !records.iter().any(|r| r.fatal)) {
        let missing = match z.missing_cpus.as_slice() {
            [] => String::new(),
            cpus => {
                let l: Vec<String> = cpus.iter().map(u32::to_string).collect();
                format!("; CPU(s) {} did not answer", l.join(", "))
            }
        };
        let host = if host.events.is_empty() {
            String::new()
        } else {
            format!("; qemu sent {} MEMORY_FAILURE event(s)", host.events.len())
        };
        return format!(
            "machine-check rendezvous timeout (\"{}\"): a machine check reached one CPU and \
             the others never entered the handler (no LMCE), {}{missing}{host}",
            z.message,
            if records.is_empty() {
                "so no record was logged"
            } else {
                "with no fatal record logged"
            }
        );
    }
    if let Some(r) = records.iter().find(|r| r.fatal) {
        return format!(
            "fatal machine check on {}; kernel: {}",
            describe(r),
            r.decoded.severity.message
        );
    }
    if !records.is_empty() {
        let uncorrected = records.iter().filter(|r| !r.decoded.corrected).count();
        return format!(
            "{} machine-check record(s) ({} uncorrected), none fatal; last: {}",
            records.len(),
            uncorrected,
            describe(&records[records.len() - 1])
        );
    }
    if !host.events.is_empty() {
        return format!(
            "qemu reported {} MEMORY_FAILURE event(s) but the guest holds no machine-check record",
            host.events.len()
        );
    }
    "no machine-check record".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cpu: u32, status: u64, mcg: u64, addr: Option<u64>, time: u64) -> MceRecord {
        let raw = MceRaw {
            cpu: Some(cpu),
            bank: Some(1),
            status,
            mcgstatus: Some(mcg),
            addr,
            time: Some(time),
            cpuvendor: Some(0),
            mcgcap: Some(0x100010a),
            ..MceRaw::default()
        };
        MceRecord {
            decoded: decode(&raw, &SeverityContext::default()),
            raw,
            sources: Vec::new(),
            page: None,
            memory_failure: None,
            origin: String::new(),
            host_event: None,
            fatal: false,
        }
    }

    fn event(secs: u64, ar: bool) -> host::HostEvent {
        host::HostEvent {
            time_us: Some(secs * 1_000_000 + 250_000),
            recipient: "guest".into(),
            action: "inject".into(),
            action_required: ar,
            recursive: false,
        }
    }

    #[test]
    fn host_line_naming_the_page_means_host_memory_error() {
        let mut recs = [record(1, 0xbd80000000000134, 7, Some(0x2345000), 1000)];
        let host = HostSide {
            events: vec![event(1000, true)],
            events_recorded: true,
            lines: host::log_lines(
                "Guest MCE Memory Error at QEMU addr 0x7f00 and GUEST addr 0x2345040 of type BUS_MCEERR_AR injected",
            ),
            log_source: Some("qemu.log".into()),
        };
        tie_host(&mut recs, &host);
        assert!(
            recs[0].origin.starts_with("host memory error"),
            "{}",
            recs[0].origin
        );
        assert_eq!(recs[0].host_event, Some(0));
        recs[0].fatal = true;
        let v = verdict(&recs, &host, None);
        assert!(
            v.starts_with("fatal machine check on CPU 1 bank 1: uncorrected"),
            "{v}"
        );
        assert!(v.contains("(host memory error)"), "{v}");
    }

    #[test]
    fn events_match_by_action_required_and_time() {
        // An exception record must be within 2 s of its event; a polled one may come
        // up to a poll interval later; each event is used once.
        let mut recs = [
            record(0, 0x9c00000000000090, 0, Some(0x1234000), 1100),
            record(1, 0xbd80000000000134, 7, Some(0x2345000), 1003),
            record(1, 0xbd80000000000134, 7, Some(0x2345000), 1001),
        ];
        let host = HostSide {
            events: vec![event(1000, true), event(1000, false)],
            events_recorded: true,
            lines: Vec::new(),
            log_source: None,
        };
        tie_host(&mut recs, &host);
        assert_eq!(recs[0].host_event, Some(1));
        assert_eq!(
            recs[1].host_event, None,
            "the closer record took the only AR event"
        );
        assert_eq!(recs[2].host_event, Some(0));
        assert!(recs[2].origin.contains("no qemu log"), "{}", recs[2].origin);
        assert!(
            recs[1].origin.starts_with("no MEMORY_FAILURE event"),
            "{}",
            recs[1].origin
        );
        let unwatched = HostSide::default();
        tie_host(&mut recs, &unwatched);
        assert!(recs[0].origin.starts_with("unknown"), "{}", recs[0].origin);
        let v = verdict(&recs, &unwatched, None);
        assert!(
            v.starts_with("3 machine-check record(s) (2 uncorrected), none fatal"),
            "{v}"
        );
        assert_eq!(
            verdict(&[], &host, None),
            "qemu reported 2 MEMORY_FAILURE event(s) but the guest holds no machine-check record"
        );
    }

    #[test]
    fn same_record_needs_agreeing_fields() {
        let log = MceRaw {
            cpu: Some(1),
            bank: Some(1),
            status: 0xbd80000000000134,
            mcgstatus: Some(7),
            addr: Some(0x2345000),
            time: Some(10),
            ..MceRaw::default()
        };
        let mut mem = log.clone();
        mem.mcgcap = Some(0x100010a);
        assert!(same_record(&log, &mem));
        mem.time = Some(11);
        assert!(!same_record(&log, &mem));
        mem.time = Some(10);
        mem.addr = Some(0x1000);
        assert!(!same_record(&log, &mem));
        let mut filled = log.clone();
        fill_missing(
            &mut filled,
            &MceRaw {
                mcgcap: Some(5),
                time: Some(99),
                ..MceRaw::default()
            },
        );
        assert_eq!((filled.mcgcap, filled.time), (Some(5), Some(10)));
    }
}
