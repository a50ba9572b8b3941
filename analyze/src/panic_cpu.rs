//! Which CPU panicked: the kernel's `panic_cpu` variable, else the log's `CPU: N PID:`
//! line of the panic, else the one vCPU stopped in the panic path. Linux CPU numbers are
//! taken as qemu vCPU indexes (both count the CPUs in APIC enumeration order on x86 PC
//! guests).

use serde::Serialize;

use crate::kallsyms::Kallsyms;
use crate::kmem::{KernelMem, VirtAddr};
use crate::printk::LogRecord;
use crate::report::VcpuAt;

/// Where [`PanicCpu::cpu`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PanicCpuSource {
    /// The kernel's `panic_cpu` (an `atomic_t`, -1 until a CPU enters `panic()`).
    PanicCpuVariable,
    /// The `CPU: N PID: ...` line the panic (or the oops before it) printed.
    LogCpuLine,
    /// The only vCPU whose instruction pointer is in `panic()` or its delay loop.
    PanicPathRip,
}

/// The CPU that panicked, and how it was chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PanicCpu {
    /// The CPU number (Linux's; the same as qemu's vCPU index on x86 PC guests).
    pub cpu: usize,
    /// Where the number came from.
    pub source: PanicCpuSource,
    /// One line on how it was chosen, with any disagreement between the sources.
    pub how: String,
}

/// Functions the panicking CPU sits in after `panic()` printed its message (the
/// reboot-timeout loop calls `mdelay`).
const PANIC_PATH: &[&str] = &[
    "panic",
    "vpanic",
    "nmi_panic",
    "delay_tsc",
    "delay_halt",
    "delay_halt_tpause",
    "delay_halt_mwaitx",
    "delay_loop",
    "__const_udelay",
    "__udelay",
    "__delay",
];

/// The value of `panic_cpu` when no CPU has panicked (`PANIC_CPU_INVALID`).
const PANIC_CPU_INVALID: i32 = -1;

/// What `panic_cpu` in guest memory says: `Ok(Some(cpu))`, `Ok(None)` when it is -1 (no
/// panic), `Err` with why it could not be read.
fn from_variable(mem: &dyn KernelMem, kallsyms: &Kallsyms) -> Result<Option<usize>, String> {
    let sym = kallsyms
        .lookup("panic_cpu")
        .ok_or("`panic_cpu` is not in kallsyms")?;
    read_variable(mem, sym.addr)
}

/// `panic_cpu` at `addr`, as [`from_variable`] returns it.
fn read_variable(mem: &dyn KernelMem, addr: u64) -> Result<Option<usize>, String> {
    let raw = mem
        .read_u32(VirtAddr(addr))
        .map_err(|e| format!("reading `panic_cpu`: {e}"))? as i32;
    match raw {
        PANIC_CPU_INVALID => Ok(None),
        n if n >= 0 => Ok(Some(n as usize)),
        n => Err(format!("`panic_cpu` holds {n}, not a CPU number")),
    }
}

/// `N` of a `CPU: N PID: ...` / `CPU: N UID: U PID: ...` line (`dump_stack` header).
fn cpu_of_line(line: &str) -> Option<usize> {
    let rest = line.trim_start().strip_prefix("CPU: ")?;
    let (n, after) = rest.split_once(' ')?;
    if !(after.starts_with("PID: ") || after.starts_with("UID: ")) {
        return None;
    }
    n.parse().ok()
}

/// The CPU of the panic's `CPU: N PID:` line: the first one from the panic record on
/// (`panic()` dumps the stack right after its message), else the last one before it
/// (after an oops, `panic()` does not dump again: the oops's header is the panic's).
pub fn from_log(records: &[LogRecord], panic_seq: u64) -> Option<(usize, u64)> {
    let cpu_lines = records.iter().flat_map(|r| {
        r.text
            .lines()
            .filter_map(move |l| Some((cpu_of_line(l)?, r.seq)))
    });
    let mut before = None;
    for (cpu, seq) in cpu_lines {
        if seq >= panic_seq {
            return Some((cpu, seq));
        }
        before = Some((cpu, seq));
    }
    before
}

fn in_panic_path(symbol: &str) -> bool {
    let name = symbol.split('+').next().unwrap_or(symbol);
    PANIC_PATH.contains(&name)
}

/// Chooses the CPU that panicked; `None` when no source names one. `panic_seq` is the
/// sequence number of the `Kernel panic - not syncing` record, when the log has one.
pub fn panic_cpu(
    mem: &dyn KernelMem,
    kallsyms: Option<&Kallsyms>,
    records: &[LogRecord],
    panic_seq: Option<u64>,
    vcpus: &[VcpuAt],
) -> Option<PanicCpu> {
    let variable = kallsyms.map(|k| from_variable(mem, k));
    choose(variable, records, panic_seq, vcpus)
}

/// [`panic_cpu`] once `panic_cpu` was read (`None`: no kallsyms to find it).
fn choose(
    variable: Option<Result<Option<usize>, String>>,
    records: &[LogRecord],
    panic_seq: Option<u64>,
    vcpus: &[VcpuAt],
) -> Option<PanicCpu> {
    let line = panic_seq.and_then(|s| from_log(records, s));
    let on_path: Vec<usize> = vcpus
        .iter()
        .filter(|v| v.symbol.as_deref().is_some_and(in_panic_path))
        .map(|v| v.index)
        .collect();
    let log_note = match line {
        Some((cpu, seq)) => format!("the log's `CPU: {cpu} PID:` line (record {seq})"),
        None => "no `CPU: N PID:` line near the panic".into(),
    };
    match variable {
        Some(Ok(Some(cpu))) => {
            let agree = match line {
                Some((c, _)) if c == cpu => format!("; {log_note} agrees"),
                Some(_) => format!("; {log_note} disagrees"),
                None => String::new(),
            };
            Some(PanicCpu {
                cpu,
                source: PanicCpuSource::PanicCpuVariable,
                how: format!("the kernel's `panic_cpu` holds {cpu}{agree}"),
            })
        }
        variable => {
            let why = match variable {
                Some(Ok(None)) => "the kernel's `panic_cpu` is -1 (no CPU entered panic())".into(),
                Some(Err(e)) => e,
                Some(Ok(Some(_))) | None => "no kallsyms to find `panic_cpu`".into(),
            };
            if let Some((cpu, _)) = line {
                return Some(PanicCpu {
                    cpu,
                    source: PanicCpuSource::LogCpuLine,
                    how: format!("{log_note}; {why}"),
                });
            }
            match on_path.as_slice() {
                [cpu] => Some(PanicCpu {
                    cpu: *cpu,
                    source: PanicCpuSource::PanicPathRip,
                    how: format!(
                        "the only vCPU stopped in panic() or its delay loop; {why}; {log_note}"
                    ),
                }),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmem::SliceKernelMem;

    const VAR: u64 = 0xffff_ffff_8200_0000;

    fn rec(seq: u64, text: &str) -> LogRecord {
        LogRecord {
            seq,
            text: text.into(),
            ..LogRecord::default()
        }
    }

    /// The end of a real sysrq crash on CPU 1 (Debian 6.1 guest of the sample kit).
    fn sysrq_on_cpu1() -> Vec<LogRecord> {
        vec![
            rec(
                350,
                "CPU: 0 PID: 88 Comm: kworker/0:2 Not tainted 6.1.0-56-amd64 #1 Debian 6.1.192-2",
            ),
            rec(354, "sysrq: Trigger a crash"),
            rec(355, "Kernel panic - not syncing: sysrq triggered crash"),
            rec(
                356,
                "CPU: 1 PID: 1 Comm: sh Not tainted 6.1.0-56-amd64 #1  Debian 6.1.192-2",
            ),
            rec(
                357,
                "Call Trace:\n <TASK>\n dump_stack_lvl+0x44/0x5c\n panic+0x118/0x2ed",
            ),
        ]
    }

    #[test]
    fn log_line_after_the_panic_wins_over_earlier_ones() {
        assert_eq!(from_log(&sysrq_on_cpu1(), 355), Some((1, 356)));
        // 6.12+ headers carry the UID.
        let recs = [
            rec(
                1,
                "Oops: general protection fault, probably for non-canonical address",
            ),
            rec(
                2,
                "CPU: 3 UID: 0 PID: 77 Comm: insmod Not tainted 6.12.9 #1",
            ),
            rec(9, "Kernel panic - not syncing: Fatal exception"),
        ];
        assert_eq!(from_log(&recs, 9), Some((3, 2)));
        assert_eq!(cpu_of_line("CPU: 12 is up"), None);
    }

    #[test]
    fn variable_first_then_log_then_rip() {
        let recs = sysrq_on_cpu1();
        let at_var = |v: i32| {
            let mem = SliceKernelMem::new(vec![(VirtAddr(VAR), v.to_le_bytes().to_vec())]);
            Some(read_variable(&mem, VAR))
        };
        let p = choose(at_var(1), &recs, Some(355), &[]).unwrap();
        assert_eq!((p.cpu, p.source), (1, PanicCpuSource::PanicCpuVariable));
        assert!(p.how.contains("agrees"), "{}", p.how);
        let p = choose(at_var(0), &recs, Some(355), &[]).unwrap();
        assert!(p.how.contains("disagrees"), "{}", p.how);
        assert!(choose(at_var(-7), &[], None, &[]).is_none());

        let p = choose(at_var(-1), &recs, Some(355), &[]).unwrap();
        assert_eq!((p.cpu, p.source), (1, PanicCpuSource::LogCpuLine));
        assert!(p.how.contains("-1"), "{}", p.how);

        let at = |index, symbol: &str| VcpuAt {
            index,
            rip: 0,
            symbol: Some(symbol.into()),
            no_symbol: None,
            task: None,
            frames: Vec::new(),
        };
        let vcpus = [
            at(0, "stop_this_cpu+0x6b/0xb0"),
            at(2, "delay_tsc+0x4a/0x80"),
        ];
        let p = choose(at_var(-1), &[], None, &vcpus).unwrap();
        assert_eq!((p.cpu, p.source), (2, PanicCpuSource::PanicPathRip));
        assert_eq!(choose(None, &[], None, &vcpus[..1]), None);
    }
}
