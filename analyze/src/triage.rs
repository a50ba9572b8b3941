//! Triage of the kernel log: why the guest died, in one verdict line, with the lines it
//! rests on (panic reason, oops/BUG/GPF headers, `RIP:` lines, call traces, `Kernel
//! Offset:`, machine-check lines).

use serde::Serialize;

use crate::printk::LogRecord;

/// One log line that matters, located by its record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Sequence number of the record.
    pub seq: u64,
    /// Its timestamp, nanoseconds since boot.
    pub ts_nsec: u64,
    /// The line.
    pub text: String,
}

/// A call trace: the `Call Trace:` line's record and the frames after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallTrace {
    /// Where it starts.
    pub at: Finding,
    /// Frame lines (` func+0x1f/0x30`, ` ? func...` for unreliable ones), in order.
    pub frames: Vec<String>,
}

/// What the kernel log says about the death of the guest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Triage {
    /// One line: the cause as far as the log tells it.
    pub verdict: String,
    /// `Kernel panic - not syncing: REASON`: the reason.
    pub panic: Option<Finding>,
    /// Oops, BUG, general protection fault, kernel BUG headers, in order.
    pub oopses: Vec<Finding>,
    /// `WARNING:` headers.
    pub warnings: Vec<Finding>,
    /// `RIP:` lines of register dumps.
    pub rips: Vec<Finding>,
    /// Call traces.
    pub call_traces: Vec<CallTrace>,
    /// `Kernel Offset:` line.
    pub kernel_offset: Option<Finding>,
    /// Machine-check lines (`mce:` / `[Hardware Error]`), in order.
    pub machine_checks: Vec<Finding>,
}

const OOPS_PREFIXES: &[&str] = &[
    "BUG: ",
    "Oops: ",
    "general protection fault",
    "kernel BUG at ",
    "invalid opcode: ",
    "stack segment: ",
    "double fault: ",
    "Unable to handle kernel",
    // The soft-lockup detector's report, with its `pr_fmt` prefix (since 4.x).
    "watchdog: BUG: soft lockup",
];
const MAX_FRAMES: usize = 64;

fn is_frame(line: &str) -> bool {
    let t = line.trim_start();
    (t.starts_with('?') || t.contains("+0x") || t.starts_with('<') || t.starts_with("[<"))
        && !t.starts_with("RIP:")
}

impl Triage {
    /// Every oops the log holds is a soft-lockup report (a guest that is, or was, stuck
    /// rather than crashed).
    pub fn only_lockup_reports(&self) -> bool {
        self.oopses
            .iter()
            .all(|o| o.text.contains("BUG: soft lockup"))
    }
}

/// Reads the verdict out of `records`.
pub fn triage(records: &[LogRecord]) -> Triage {
    let mut t = Triage::default();
    let mut trace: Option<CallTrace> = None;
    for r in records {
        for line in r.text.lines() {
            let f = || Finding {
                seq: r.seq,
                ts_nsec: r.ts_nsec,
                text: line.to_string(),
            };
            if let Some(tr) = trace.as_mut() {
                if is_frame(line) && tr.frames.len() < MAX_FRAMES {
                    tr.frames.push(line.trim_end().to_string());
                    continue;
                }
                if let Some(done) = trace.take() {
                    t.call_traces.push(done);
                }
            }
            let l = line.trim_start();
            if l.starts_with("Call Trace:") {
                trace = Some(CallTrace {
                    at: f(),
                    frames: Vec::new(),
                });
            } else if let Some(reason) = l.strip_prefix("Kernel panic - not syncing: ") {
                if t.panic.is_none() {
                    t.panic = Some(Finding {
                        text: reason.trim_end().to_string(),
                        ..f()
                    });
                }
            } else if OOPS_PREFIXES.iter().any(|p| l.starts_with(p)) {
                t.oopses.push(f());
            } else if l.starts_with("WARNING: ") {
                t.warnings.push(f());
            } else if l.starts_with("RIP: ") {
                t.rips.push(f());
            } else if l.starts_with("Kernel Offset: ") {
                t.kernel_offset = Some(f());
            } else if l.contains("[Hardware Error]") || l.starts_with("mce: ") {
                t.machine_checks.push(f());
            }
        }
    }
    if let Some(done) = trace.take() {
        t.call_traces.push(done);
    }
    t.verdict = verdict(&t);
    t
}

fn verdict(t: &Triage) -> String {
    let first_oops = t.oopses.first().map(|o| o.text.trim());
    let rip = t
        .rips
        .first()
        .map(|r| r.text.trim().trim_start_matches("RIP: "));
    match (&t.panic, first_oops) {
        (Some(p), _) if p.text.contains("achine check") => {
            let mce = t
                .machine_checks
                .iter()
                .find(|m| {
                    m.text.contains("Machine check:") || m.text.contains("[Hardware Error]: CPU")
                })
                .map(|m| format!(" ({})", m.text.trim()))
                .unwrap_or_default();
            format!("kernel panic: {}{mce}", p.text)
        }
        (Some(p), Some(o)) => match rip {
            Some(rip) => format!("kernel panic: {} after {o} at {rip}", p.text),
            None => format!("kernel panic: {} after {o}", p.text),
        },
        (Some(p), None) => format!("kernel panic: {}", p.text),
        (None, Some(o)) => match rip {
            Some(rip) => format!("oops without panic: {o} at {rip}"),
            None => format!("oops without panic: {o}"),
        },
        (None, None) if !t.machine_checks.is_empty() => format!(
            "machine-check errors logged, no panic: {}",
            t.machine_checks[0].text.trim()
        ),
        (None, None) if !t.warnings.is_empty() => {
            format!("no panic; kernel warning: {}", t.warnings[0].text.trim())
        }
        (None, None) => "no panic, oops or machine check in the kernel log".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, text: &str) -> LogRecord {
        LogRecord {
            seq,
            ts_nsec: seq * 1_000_000,
            text: text.into(),
            ..LogRecord::default()
        }
    }

    #[test]
    fn sysrq_panic_with_trace() {
        let recs = vec![
            rec(1, "sysrq: Trigger a crash"),
            rec(2, "Kernel panic - not syncing: sysrq triggered crash"),
            rec(3, "CPU: 0 PID: 1 Comm: sh Not tainted 6.1.0-56-amd64 #1  Debian 6.1.192-2"),
            rec(4, "Call Trace:\n <TASK>\n dump_stack_lvl+0x44/0x5c\n panic+0x118/0x2ed\n ? sysrq_handle_crash+0x16/0x20\n </TASK>"),
            rec(5, "Kernel Offset: 0x18000000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)"),
        ];
        let t = triage(&recs);
        assert_eq!(t.verdict, "kernel panic: sysrq triggered crash");
        assert_eq!(t.call_traces.len(), 1);
        assert_eq!(t.call_traces[0].frames.len(), 5);
        assert!(t.kernel_offset.is_some());
    }

    #[test]
    fn oops_then_panic_and_machine_check() {
        let recs = vec![
            rec(
                1,
                "BUG: kernel NULL pointer dereference, address: 0000000000000000",
            ),
            rec(2, "RIP: 0010:foo+0x12/0x40 [bar]"),
            rec(3, "Kernel panic - not syncing: Fatal exception"),
        ];
        assert_eq!(
            triage(&recs).verdict,
            "kernel panic: Fatal exception after BUG: kernel NULL pointer dereference, address: 0000000000000000 at 0010:foo+0x12/0x40 [bar]"
        );
        let recs = vec![
            rec(
                1,
                "mce: [Hardware Error]: CPU 1: Machine Check Exception: 5 Bank 1: bd80000000000134",
            ),
            rec(
                2,
                "mce: [Hardware Error]: Machine check: Data load in unrecoverable area of kernel",
            ),
            rec(3, "Kernel panic - not syncing: Fatal local machine check"),
        ];
        let t = triage(&recs);
        assert_eq!(t.machine_checks.len(), 2);
        assert!(
            t.verdict
                .starts_with("kernel panic: Fatal local machine check ("),
            "{}",
            t.verdict
        );
        assert!(triage(&recs).only_lockup_reports());
        assert_eq!(
            triage(&[rec(1, "hello")]).verdict,
            "no panic, oops or machine check in the kernel log"
        );
    }

    #[test]
    fn a_soft_lockup_report_is_an_oops_and_titles_the_dump() {
        let recs = vec![
            rec(
                1,
                "watchdog: BUG: soft lockup - CPU#1 stuck for 4s! [coroner_spin:97]",
            ),
            rec(2, "Modules linked in: coroner_fault(OE)"),
            rec(3, "RIP: 0010:coroner_fault_spin+0x10/0x20 [coroner_fault]"),
            rec(4, "Kernel panic - not syncing: softlockup: hung tasks"),
        ];
        let t = triage(&recs);
        assert_eq!(t.oopses.len(), 1);
        assert!(t.only_lockup_reports());
        assert_eq!(
            t.verdict,
            "kernel panic: softlockup: hung tasks after watchdog: BUG: soft lockup - CPU#1 stuck for 4s! [coroner_spin:97] at 0010:coroner_fault_spin+0x10/0x20 [coroner_fault]"
        );
        assert_eq!(
            crate::title::title(&t, None, &[]).as_deref(),
            Some("BUG: soft lockup in coroner_fault_spin")
        );
        let oops = triage(&[rec(1, "BUG: kernel NULL pointer dereference, address: 0")]);
        assert!(!oops.only_lockup_reports());
    }
}
