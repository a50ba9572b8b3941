//! What a guest with no panic is stuck on: tasks in uninterruptible sleep for longer than
//! the hung-task threshold (the guest's own `hung_task_timeout_secs` unless told), and
//! vCPUs that have run one task in kernel mode for longer than the soft-lockup threshold
//! (twice the guest's `watchdog_thresh`), each with its backtrace and a title in the style
//! of syzkaller's crash titles ("INFO: task hung in F", "BUG: soft lockup in F") for
//! triage across captures.

use serde::Serialize;

use crate::backtrace::{task_backtrace, vcpu_backtrace, Backtrace};
use crate::kmem::{KernelMem, VirtAddr};
use crate::session::Session;
use crate::tasks::Task;

/// The kernel's default `hung_task_timeout_secs` (CONFIG_DEFAULT_HUNG_TASK_TIMEOUT).
const DEFAULT_HUNG_SECS: u64 = 120;

/// The kernel's default `watchdog_thresh`; a soft lockup is reported after twice it.
const DEFAULT_WATCHDOG_THRESH: u64 = 10;

/// Hung tasks listed at most.
const MAX_HUNG: usize = 20;

/// Frames kept per backtrace in the report.
const MAX_FRAMES: usize = 16;

/// Functions that only say a task waits or switches, not what for: the title names the
/// first frame that is none of these (syzkaller skips the same kind).
const WAIT_FUNCTIONS: [&str; 12] = [
    "__schedule",
    "schedule",
    "schedule_preempt_disabled",
    "__wait_for_common",
    "wait_for_common",
    "__down",
    "down",
    "__folio_lock",
    "do_nanosleep",
    "hrtimer_nanosleep",
    "native_queued_spin_lock_slowpath",
    "bit_wait",
];

/// Wait functions that come in `_variants` too (`wait_for_completion_killable`,
/// `mutex_lock_interruptible`, `rwsem_down_read_slowpath`): the name or `NAME_...`.
const WAIT_FAMILIES: [&str; 12] = [
    "schedule_timeout",
    "schedule_hrtimeout",
    "io_schedule",
    "wait_for_completion",
    "__mutex_lock",
    "mutex_lock",
    "rwsem_down",
    "down_read",
    "down_write",
    "out_of_line_wait_on_bit",
    "__wait_on_bit",
    "folio_wait_bit",
];

/// A task blocked in `D` past the threshold.
#[derive(Clone, Debug, Serialize)]
pub struct HungTask {
    /// The task.
    pub task: Task,
    /// Seconds since it last ran.
    pub blocked_secs: f64,
    /// The first frame that is not a wait function: what it is stuck in.
    pub in_function: Option<String>,
    /// Its backtrace (the top frames), or why there is none.
    pub frames: Vec<String>,
    /// Why there is no backtrace, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_backtrace: Option<String>,
}

/// A vCPU that has run one task in kernel mode for long.
#[derive(Clone, Debug, Serialize)]
pub struct Lockup {
    /// The vCPU.
    pub cpu: usize,
    /// The task it runs.
    pub task: Task,
    /// Seconds since that task got the CPU.
    pub running_secs: f64,
    /// The first frame that is not a wait or lock function.
    pub in_function: Option<String>,
    /// Its backtrace (the top frames).
    pub frames: Vec<String>,
}

/// What the guest is stuck on.
#[derive(Clone, Debug, Serialize)]
pub struct Stuck {
    /// The hung-task threshold used, in seconds.
    pub hung_after_secs: u64,
    /// Where it came from.
    pub hung_after_how: String,
    /// The soft-lockup threshold used, in seconds.
    pub lockup_after_secs: u64,
    /// Tasks in D past the threshold, longest first.
    pub hung: Vec<HungTask>,
    /// All tasks in D past the threshold (`hung` lists the first ones).
    pub hung_count: usize,
    /// vCPUs in a kernel task past the soft-lockup threshold.
    pub lockups: Vec<Lockup>,
}

impl Stuck {
    /// The title without the particulars (vCPU, task, times), the same for every guest
    /// stuck the same way: "BUG: soft lockup in F" or "INFO: task hung in F".
    pub fn signature(&self) -> Option<String> {
        if let Some(l) = self.lockups.first() {
            return Some(format!(
                "BUG: soft lockup in {}",
                l.in_function.as_deref().unwrap_or("?")
            ));
        }
        let h = self.hung.first()?;
        Some(format!(
            "INFO: task hung in {}",
            h.in_function.as_deref().unwrap_or("?")
        ))
    }

    /// A one-line title: the soft lockup first, else the longest hung task.
    pub fn title(&self) -> Option<String> {
        if let Some(l) = self.lockups.first() {
            return Some(format!(
                "BUG: soft lockup in {} (vCPU {}, {} {}, running {:.0} s)",
                l.in_function.as_deref().unwrap_or("?"),
                l.cpu,
                l.task.pid,
                l.task.comm,
                l.running_secs
            ));
        }
        let h = self.hung.first()?;
        Some(format!(
            "INFO: task hung in {} ({} {}, D for {:.0} s; {} task{} past {} s)",
            h.in_function.as_deref().unwrap_or("?"),
            h.task.pid,
            h.task.comm,
            h.blocked_secs,
            self.hung_count,
            if self.hung_count == 1 { "" } else { "s" },
            self.hung_after_secs
        ))
    }
}

/// The stuck analysis of the session's dump; `None` without a task list.
pub fn stuck(session: &Session<'_>, hung_after: Option<u64>) -> Option<Stuck> {
    let list = session.tasks().ok()?;
    let view = session.view().ok()?;
    let read_sym = |name: &str| -> Option<u64> {
        let s = session.symbols()?.lookup(name)?;
        view.read_u64(VirtAddr(s.addr)).ok()
    };
    let (hung_after_secs, hung_after_how) = match hung_after {
        Some(s) => (s, "--hung-after".to_string()),
        None => match read_sym("sysctl_hung_task_timeout_secs") {
            Some(s) if s > 0 && s < 1 << 32 => (
                s,
                "the guest's hung_task_timeout_secs (sysctl_hung_task_timeout_secs)".into(),
            ),
            _ => (
                DEFAULT_HUNG_SECS,
                "the kernel's default (the guest's sysctl_hung_task_timeout_secs is 0 or unreadable)"
                    .into(),
            ),
        },
    };
    // watchdog_thresh is an int.
    let thresh = read_sym("watchdog_thresh")
        .map(|v| v & 0xffff_ffff)
        .filter(|&v| v > 0 && v <= 60)
        .unwrap_or(DEFAULT_WATCHDOG_THRESH);
    let lockup_after_secs = 2 * thresh;
    let secs = |t: &Task| t.last_ran_ns_ago.map(|n| n as f64 / 1e9);
    let mut hung: Vec<&Task> = list
        .tasks
        .iter()
        .filter(|t| t.state == 'D' && secs(t).is_some_and(|s| s >= hung_after_secs as f64))
        .collect();
    hung.sort_by_key(|t| std::cmp::Reverse(t.last_ran_ns_ago));
    let hung_count = hung.len();
    let hung = hung
        .into_iter()
        .take(MAX_HUNG)
        .map(|t| {
            let bt = task_backtrace(session, t);
            let (frames, no_backtrace) = split(&bt);
            HungTask {
                task: t.clone(),
                blocked_secs: secs(t).unwrap_or(0.0),
                in_function: in_function(&frames),
                frames,
                no_backtrace,
            }
        })
        .collect();
    let mut lockups = Vec::new();
    for c in &list.current {
        let Some(t) = list.tasks.iter().find(|t| t.task == c.task) else {
            continue;
        };
        let running = secs(t).unwrap_or(0.0);
        if t.pid == 0 || running < lockup_after_secs as f64 {
            continue;
        }
        let Ok(bt) = vcpu_backtrace(session, c.cpu) else {
            continue;
        };
        // A vCPU in user mode is not locked up in the kernel.
        if bt.frames.is_empty() {
            continue;
        }
        // Caught in an interrupt, the vCPU is stuck in the code the interrupt came into:
        // the frames from the last kernel-mode registers on.
        let interrupted = bt
            .frames
            .iter()
            .rposition(|f| f.regs.as_ref().is_some_and(|r| !r.user_mode()))
            .unwrap_or(0);
        let task_frames: Vec<String> = bt.frames[interrupted..]
            .iter()
            .take(MAX_FRAMES)
            .map(|f| f.text())
            .collect();
        let (frames, _) = split(&Ok(bt));
        lockups.push(Lockup {
            cpu: c.cpu,
            task: t.clone(),
            running_secs: running,
            in_function: in_function(&task_frames),
            frames,
        });
    }
    Some(Stuck {
        hung_after_secs,
        hung_after_how,
        lockup_after_secs,
        hung,
        hung_count,
        lockups,
    })
}

fn split(bt: &Result<Backtrace, String>) -> (Vec<String>, Option<String>) {
    match bt {
        Ok(b) => (
            b.frames.iter().take(MAX_FRAMES).map(|f| f.text()).collect(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e.clone())),
    }
}

/// The function of the first frame that is not a wait function.
fn in_function(frames: &[String]) -> Option<String> {
    frames
        .iter()
        .filter(|f| !f.starts_with("? "))
        .map(|f| f.split('+').next().unwrap_or(f))
        .find(|name| !is_waiting(name))
        .map(str::to_string)
}

/// `name` (compiler suffixes such as `.constprop.0` or `.cold` ignored) is a wait
/// function or a `_variant` of one (`wait_for_completion_killable`).
fn is_waiting(name: &str) -> bool {
    let base = name.split('.').next().unwrap_or(name);
    WAIT_FUNCTIONS.contains(&base)
        || WAIT_FAMILIES.iter().any(|w| {
            base == *w
                || base
                    .strip_prefix(w)
                    .is_some_and(|rest| rest.starts_with('_'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_names_the_first_frame_that_is_not_waiting() {
        let frames: Vec<String> = [
            "__schedule+0x34d/0xa00",
            "schedule+0x5a/0xd0",
            "schedule_timeout+0x11a/0x150",
            "__wait_for_common+0x94/0x1e0",
            "wait_for_completion_killable+0x20/0x40",
            "virtio_read+0x7a/0xb0 [virtio_rng]",
            "hwrng_fillfn+0xb1/0x260",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(in_function(&frames).as_deref(), Some("virtio_read"));
        let frames = [
            "__mutex_lock.constprop.0+0x1/0x2",
            "mutex_lock_interruptible+0x1/0x2",
            "ext4_sync_fs+0x10/0x20",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(in_function(&frames).as_deref(), Some("ext4_sync_fs"));
        assert_eq!(in_function(&[]), None);
        // schedule's variants are not all waits: schedule_tail is the fork path.
        assert!(!is_waiting("schedule_tail"));
        assert!(is_waiting("rwsem_down_read_slowpath"));
    }
}
