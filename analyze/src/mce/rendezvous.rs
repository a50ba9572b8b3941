//! The machine-check rendezvous timeout: on Intel CPUs without LMCE a machine check is
//! broadcast, and the kernel's handler waits for every online CPU to enter it (the
//! Monarch/Subject rendezvous, `monarch_timeout`, 1 s by default) before it reads and logs
//! the banks. When some CPU never arrives it panics with one of `mce_start()`/`mce_end()`'s
//! `Timeout: ...` messages, before any record is logged or stored. In a KVM guest this is
//! what a machine check delivered to one vCPU does: qemu injects a host memory error into
//! the vCPU that touched the page, and HMP `mce` without `-b` into the vCPU named; an
//! Intel-model guest without LMCE expects all its CPUs to see it.

use serde::Serialize;

use super::host::HostSide;
use super::log::{KernelLine, LineKind};

/// The kernel's rendezvous-timeout panic messages (`arch/x86/kernel/cpu/mce/core.c`); the
/// first is the one of a machine check that reached one CPU only.
pub const TIMEOUT_MESSAGES: &[&str] = &[
    "Timeout: Not all CPUs entered broadcast exception handler",
    "Timeout: Subject CPUs unable to finish machine check processing",
    "Timeout: Monarch CPU unable to finish machine check processing",
    "Timeout: Monarch CPU did not finish machine check processing",
    // Before 3.x the one message of `mce_timed_out()`.
    "Timeout synchronizing machine check over CPUs",
];

/// `CPUs not responding to MCE broadcast (may include false positives): LIST` (5.12+).
const NOT_RESPONDING: &str = "CPUs not responding to MCE broadcast";
/// The older line of `mce_panic()` when a CPU missed the rendezvous.
const DID_NOT_ANSWER: &str = "Some CPUs didn't answer in synchronization";

/// CPU lists longer than this are not expanded (a cpulist from guest text).
const MAX_CPUS: usize = 4096;

/// The rendezvous timeout the guest panicked in, and what is known of the machine check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rendezvous {
    /// The timeout message the kernel panicked with (or, without the panic line, printed).
    pub message: String,
    /// The CPUs the kernel named as not answering, from its cpulist.
    pub missing_cpus: Vec<u32>,
    /// What it means and what is known, in sentences.
    pub explanation: Vec<String>,
}

/// Whether `t` (a log line without the `mce: ` / `[Hardware Error]: ` prefixes) belongs to
/// the rendezvous: a timeout message (or the panic with one), or a line naming the CPUs
/// that did not answer.
pub fn is_rendezvous_line(t: &str) -> bool {
    let t = t.strip_prefix("Kernel panic - not syncing: ").unwrap_or(t);
    TIMEOUT_MESSAGES.iter().any(|m| t.starts_with(m))
        || t.starts_with(NOT_RESPONDING)
        || t.starts_with(DID_NOT_ANSWER)
}

/// A kernel cpulist (`1-3,5`); `None` when it is not one.
fn parse_cpulist(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.trim().split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let a = part.parse::<u32>().ok()?;
                (a, a)
            }
        };
        if b < a || out.len() + (b - a) as usize >= MAX_CPUS {
            return None;
        }
        out.extend(a..=b);
    }
    Some(out)
}

/// The rendezvous timeout among the kernel's machine-check `lines`, explained with the
/// host's side; `None` when the log has no such timeout. `records` is the number of
/// machine-check records found (log and memory).
pub fn rendezvous(lines: &[KernelLine], host: &HostSide, records: usize) -> Option<Rendezvous> {
    let ours: Vec<&KernelLine> = lines
        .iter()
        .filter(|l| l.kind == LineKind::Rendezvous)
        .collect();
    let timeout = ours.iter().find_map(|l| {
        let t = l
            .text
            .strip_prefix("Kernel panic - not syncing: ")
            .unwrap_or(&l.text);
        TIMEOUT_MESSAGES.iter().find(|m| t.starts_with(**m))
    });
    let not_responding = ours.iter().find_map(|l| {
        let rest = l.text.strip_prefix(NOT_RESPONDING)?;
        Some(rest.rsplit_once(": ").map(|(_, list)| list).unwrap_or(""))
    });
    let message = timeout
        .map(|m| m.to_string())
        .or_else(|| not_responding.map(|_| NOT_RESPONDING.to_string()))?;
    let missing_cpus = not_responding.and_then(parse_cpulist).unwrap_or_default();

    let mut e = Vec::new();
    e.push(format!(
        "The guest panicked in the machine-check rendezvous (\"{message}\"): a machine check \
         reached a CPU, whose handler waited for every online CPU to enter it, as Intel's \
         broadcast machine checks require, and some never did."
    ));
    e.push(
        "In a KVM guest this is a machine check delivered to one vCPU of a guest without \
         LMCE: qemu injects a host memory error only into the vCPU that touched the page, and \
         HMP `mce` without `-b` only into the vCPU named; an Intel-model guest that does not \
         use LMCE (`-cpu ...,lmce=on` and a kernel that enables it) waits for the others \
         (`monarch_timeout`, 1 s by default) and panics."
            .into(),
    );
    if records == 0 {
        e.push(
            "The kernel panics before it reads the banks, so no machine-check record was \
             logged or stored: the error itself is known only from the host's side."
                .into(),
        );
    }
    if !missing_cpus.is_empty() {
        let list: Vec<String> = missing_cpus.iter().map(u32::to_string).collect();
        e.push(format!(
            "CPU(s) that did not answer, as the kernel listed them (it warns of false \
             positives): {}.",
            list.join(", ")
        ));
    }
    match (host.events_recorded, host.events.len()) {
        (true, 0) => e.push(
            "The capture recorded no MEMORY_FAILURE event from qemu: the machine check did not \
             come from qemu's host-memory-error path while the capture watched."
                .into(),
        ),
        (true, n) => {
            let ev: Vec<String> = host
                .events
                .iter()
                .map(|v| {
                    format!(
                        "{} {}{}",
                        v.recipient,
                        v.action,
                        if v.action_required {
                            " (action required)"
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            e.push(format!(
                "qemu sent {n} MEMORY_FAILURE event(s): {}; one event per injection, so one \
                 event for several vCPUs means a single vCPU got the machine check.",
                ev.join(", ")
            ));
        }
        (false, _) => e.push(
            "qemu's MEMORY_FAILURE events were not captured (the capture did not watch): \
             whether qemu injected the machine check, and into how many vCPUs, is not known."
                .into(),
        ),
    }
    for l in &host.lines {
        let at = l
            .guest_addr
            .map(|a| format!(" (guest-physical {a:#x})"))
            .unwrap_or_default();
        e.push(format!("qemu's log: {}{at}.", l.text.trim_end_matches('.')));
    }
    Some(Rendezvous {
        message,
        missing_cpus,
        explanation: e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, text: &str) -> KernelLine {
        KernelLine {
            kind: LineKind::Rendezvous,
            seq,
            ts_nsec: 0,
            text: text.into(),
            pfn: None,
        }
    }

    #[test]
    fn cpulists() {
        assert_eq!(parse_cpulist("1-3"), Some(vec![1, 2, 3]));
        assert_eq!(
            parse_cpulist("0-83,85-87"),
            Some((0..=83).chain(85..=87).collect())
        );
        assert_eq!(parse_cpulist("0,4"), Some(vec![0, 4]));
        assert_eq!(parse_cpulist("3-1"), None);
        assert_eq!(parse_cpulist("0-4294967295"), None);
        assert_eq!(parse_cpulist("x"), None);
    }

    /// The lines of a real rendezvous panic (syzbot, reported on linux-edac, 2025).
    #[test]
    fn timeout_with_missing_cpus_and_no_events() {
        let lines = [
            line(
                1,
                "CPUs not responding to MCE broadcast (may include false positives): 1-3",
            ),
            line(
                2,
                "Kernel panic - not syncing: Timeout: Not all CPUs entered broadcast exception handler",
            ),
        ];
        let host = HostSide {
            events_recorded: false,
            ..HostSide::default()
        };
        let r = rendezvous(&lines, &host, 0).unwrap();
        assert_eq!(
            r.message,
            "Timeout: Not all CPUs entered broadcast exception handler"
        );
        assert_eq!(r.missing_cpus, [1, 2, 3]);
        let all = r.explanation.join(" ");
        assert!(all.contains("no machine-check record was logged"), "{all}");
        assert!(all.contains("LMCE"), "{all}");
        assert!(all.contains("not captured"), "{all}");
        assert!(rendezvous(&[], &host, 0).is_none());
        assert!(is_rendezvous_line(
            "Kernel panic - not syncing: Timeout synchronizing machine check over CPUs"
        ));
        assert!(!is_rendezvous_line("Machine check events logged"));
    }
}
