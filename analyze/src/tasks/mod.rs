//! The kernel's tasks, as crash's `ps` lists them, from guest memory: the process list
//! from `init_task` and each group's threads, with `struct task_struct`'s layout from BTF;
//! and the task each CPU runs now (per-CPU `current_task`, `pcpu_hot.current_task` or
//! `runqueues.curr`, whichever the kernel has).

mod layout;
pub mod table;

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::btf::Btf;
use crate::kallsyms::Kallsyms;
use crate::kmem::{KernelMem, VirtAddr};
pub use layout::TaskLayout;

/// Tasks read at most (a list that never returns to its head is cut here).
const MAX_TASKS: usize = 1 << 20;

/// Bytes of a task_struct read at most (BTF says how many are needed).
const MAX_TASK_SPAN: u64 = 64 << 10;

/// Threads of one group read at most.
const MAX_THREADS: usize = 1 << 16;

/// `PF_KTHREAD`: a kernel thread.
const PF_KTHREAD: u32 = 0x0020_0000;

/// `TASK_REPORT`: the state bits `ps` reports (running, interruptible, uninterruptible,
/// stopped, traced, dead, zombie, parked).
const TASK_REPORT: u32 = 0x7f;

/// `TASK_IDLE` = `TASK_UNINTERRUPTIBLE | TASK_NOLOAD`: reported as `I`.
const TASK_IDLE: u32 = 0x402;

/// The kernel's `task_state_array` letters, by the highest reported bit.
const STATE_LETTERS: [char; 9] = ['R', 'S', 'D', 'T', 't', 'X', 'Z', 'P', 'I'];

/// One task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Task {
    /// Process id (the thread's).
    pub pid: i32,
    /// Thread-group id (the process's).
    pub tgid: i32,
    /// The parent process's id.
    pub ppid: i32,
    /// Command name.
    pub comm: String,
    /// State letter as `ps` prints it: R, S, D, T, t, X, Z, P, I.
    pub state: char,
    /// A kernel thread.
    pub kernel_thread: bool,
    /// The CPU it last ran on.
    pub cpu: Option<u32>,
    /// It runs on a CPU now (`on_cpu`).
    pub on_cpu: bool,
    /// Nanoseconds since it last got a CPU, against its CPU's run-queue clock (when the
    /// kernel keeps both: `CONFIG_SCHED_INFO`).
    pub last_ran_ns_ago: Option<u64>,
    /// Where its `task_struct` is.
    #[serde(with = "coroner_formats::hex")]
    pub task: u64,
}

/// The task a CPU runs now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Current {
    /// The CPU (the vCPU's index).
    pub cpu: usize,
    /// Its task.
    #[serde(with = "coroner_formats::hex")]
    pub task: u64,
    /// Its pid and command, when read.
    pub pid: Option<i32>,
    /// See `pid`.
    pub comm: Option<String>,
}

/// The tasks of a kernel and how they were read.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TaskList {
    /// Every task, processes in list order, each followed by its other threads.
    pub tasks: Vec<Task>,
    /// The task running on each CPU.
    pub current: Vec<Current>,
    /// How the lists and layouts were found.
    pub how: Vec<String>,
    /// What was cut short or unreadable.
    pub diagnostics: Vec<String>,
}

impl TaskList {
    /// How many tasks are in each state, by letter.
    pub fn by_state(&self) -> BTreeMap<char, usize> {
        let mut m = BTreeMap::new();
        for t in &self.tasks {
            *m.entry(t.state).or_default() += 1;
        }
        m
    }
}

/// Why the tasks could not be listed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TasksError {
    /// No kallsyms table.
    #[error("no kallsyms: {0}")]
    NoKallsyms(String),
    /// No BTF to lay out `struct task_struct` with.
    #[error("{0}")]
    NoBtf(String),
    /// kallsyms lacks `init_task` (a kernel without `CONFIG_KALLSYMS_ALL`).
    #[error("kallsyms has no init_task (a kernel without CONFIG_KALLSYMS_ALL)")]
    NoInitTask,
    /// BTF does not describe `struct task_struct` as needed.
    #[error("the layout of struct task_struct: {0}")]
    Layout(String),
}

/// The letter `ps` prints for `state` and `exit_state` (the kernel's
/// `__task_state_index`).
pub fn state_letter(state: u32, exit_state: u32) -> char {
    if state & TASK_IDLE == TASK_IDLE {
        return 'I';
    }
    let reported = (state | exit_state) & TASK_REPORT;
    let index = (u32::BITS - reported.leading_zeros()) as usize;
    STATE_LETTERS.get(index).copied().unwrap_or('?')
}

/// The kernel symbols a task list starts from (kallsyms, with `CONFIG_KALLSYMS_ALL`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskSymbols {
    /// `init_task`.
    pub init_task: u64,
    /// `__per_cpu_offset`.
    pub per_cpu_offset: Option<u64>,
    /// Per-CPU `current_task` (< 6.2, 6.15+).
    pub current_task: Option<u64>,
    /// Per-CPU `pcpu_hot` (6.2 to 6.14).
    pub pcpu_hot: Option<u64>,
    /// Per-CPU `runqueues`.
    pub runqueues: Option<u64>,
}

impl TaskSymbols {
    /// The symbols from `kallsyms`; `init_task` is required.
    pub fn from_kallsyms(ks: &Kallsyms) -> Result<TaskSymbols, TasksError> {
        let at = |n: &str| ks.lookup(n).map(|s| s.addr);
        Ok(TaskSymbols {
            init_task: at("init_task").ok_or(TasksError::NoInitTask)?,
            per_cpu_offset: at("__per_cpu_offset"),
            current_task: at("current_task"),
            pcpu_hot: at("pcpu_hot"),
            runqueues: at("runqueues"),
        })
    }
}

/// Reads the tasks and the task of each of `cpus` CPUs.
pub fn read_tasks(
    mem: &dyn KernelMem,
    btf: &Btf,
    syms: &TaskSymbols,
    cpus: usize,
) -> Result<TaskList, TasksError> {
    let init = syms.init_task;
    let l = TaskLayout::from_btf(btf).map_err(|e| TasksError::Layout(e.to_string()))?;
    let mut list = TaskList {
        how: vec![
            format!("the process list from init_task at {init:#x} (kallsyms), each group's threads from signal->thread_head"),
            l.describe(),
        ],
        ..TaskList::default()
    };
    let offsets = per_cpu_offsets(mem, syms.per_cpu_offset, cpus);
    let clocks: Vec<Option<u64>> = (0..cpus)
        .map(|c| {
            let rq = per_cpu_addr(syms.runqueues, offsets.get(c).copied().flatten())?;
            mem.read_u64(VirtAddr(rq + l.rq_clock?)).ok()
        })
        .collect();
    let reader = Reader {
        mem,
        l: &l,
        clocks: &clocks,
    };
    // The process list: init_task, then every leader linked through `tasks`.
    let mut seen = HashSet::new();
    let mut leader = init;
    loop {
        if list.tasks.len() >= MAX_TASKS || !seen.insert(leader) {
            list.diagnostics.push(format!(
                "the process list does not return to init_task (a loop or more than {MAX_TASKS} tasks at {leader:#x}): cut there"
            ));
            break;
        }
        match reader.task(leader) {
            Ok(t) => list.tasks.push(t),
            Err(e) => {
                list.diagnostics.push(format!(
                    "task_struct at {leader:#x}: {e}; the list is cut there"
                ));
                break;
            }
        }
        reader.threads(leader, &mut seen, &mut list);
        let next = match mem.read_u64(VirtAddr(leader + l.tasks)) {
            Ok(n) => n.wrapping_sub(l.tasks),
            Err(e) => {
                list.diagnostics.push(format!(
                    "the tasks link of {leader:#x}: {e}; the list is cut there"
                ));
                break;
            }
        };
        if next == init {
            break;
        }
        leader = next;
    }
    list.current = current_tasks(mem, syms, &l, &offsets, &reader, &mut list.how);
    Ok(list)
}

/// Reads tasks with one layout.
struct Reader<'a> {
    mem: &'a dyn KernelMem,
    l: &'a TaskLayout,
    clocks: &'a [Option<u64>],
}

impl Reader<'_> {
    fn task(&self, t: u64) -> Result<Task, String> {
        let m = self.mem;
        let l = self.l;
        // One read of every field (a task_struct is ~10 KiB; the fields sit in its
        // first few).
        let raw = m
            .read_vec(VirtAddr(t), l.span, MAX_TASK_SPAN)
            .map_err(|e| e.to_string())?;
        let bytes = |off: u64, n: u64| {
            raw.get(off as usize..(off + n) as usize)
                .ok_or_else(|| format!("field at {off} past the {} bytes read", raw.len()))
        };
        let u32_at = |off: u64| -> Result<u32, String> {
            let b = bytes(off, 4)?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let u64_at = |off: u64| -> Result<u64, String> {
            let b = bytes(off, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(u64::from_le_bytes(a))
        };
        let comm = bytes(l.comm, l.comm_len)?;
        let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
        let state = if l.state_size == 8 {
            u64_at(l.state)? as u32
        } else {
            u32_at(l.state)?
        };
        let exit_state = u32_at(l.exit_state)?;
        let parent = u64_at(l.real_parent)?;
        let ppid = if parent == t {
            0
        } else {
            m.read_u32(VirtAddr(parent.wrapping_add(l.tgid)))
                .map(|v| v as i32)
                .unwrap_or(-1)
        };
        let cpu = l.cpu.and_then(|o| u32_at(o).ok());
        let last_ran_ns_ago = match (l.last_arrival, cpu) {
            (Some(o), Some(c)) => {
                let arrival = u64_at(o).ok();
                let clock = self.clocks.get(c as usize).copied().flatten();
                match (arrival, clock) {
                    (Some(a), Some(k)) if a > 0 && k >= a => Some(k - a),
                    _ => None,
                }
            }
            _ => None,
        };
        Ok(Task {
            pid: u32_at(l.pid)? as i32,
            tgid: u32_at(l.tgid)? as i32,
            ppid,
            comm: String::from_utf8_lossy(&comm[..end]).into_owned(),
            state: state_letter(state, exit_state),
            kernel_thread: u32_at(l.flags)? & PF_KTHREAD != 0,
            cpu,
            on_cpu: l
                .on_cpu
                .and_then(|o| u32_at(o).ok())
                .is_some_and(|v| v != 0),
            last_ran_ns_ago,
            task: t,
        })
    }

    /// The threads of `leader`'s group other than `leader`, appended to `list`.
    fn threads(&self, leader: u64, seen: &mut HashSet<u64>, list: &mut TaskList) {
        let (Some(head_off), Some(node)) = (self.l.thread_head, self.l.thread_node) else {
            return;
        };
        let Ok(signal) = self.mem.read_u64(VirtAddr(leader + self.l.signal)) else {
            return;
        };
        let head = signal.wrapping_add(head_off);
        let mut link = match self.mem.read_u64(VirtAddr(head)) {
            Ok(n) => n,
            Err(_) => return,
        };
        let mut n = 0;
        while link != head {
            n += 1;
            let t = link.wrapping_sub(node);
            if n > MAX_THREADS || list.tasks.len() >= MAX_TASKS {
                list.diagnostics.push(format!(
                    "the threads of {leader:#x} do not end (more than {MAX_THREADS}): cut there"
                ));
                return;
            }
            if t != leader {
                if !seen.insert(t) {
                    list.diagnostics.push(format!(
                        "the threads of {leader:#x} loop at {t:#x}: cut there"
                    ));
                    return;
                }
                match self.task(t) {
                    Ok(task) => list.tasks.push(task),
                    Err(e) => {
                        list.diagnostics.push(format!(
                            "thread at {t:#x} of {leader:#x}: {e}; its group is cut there"
                        ));
                        return;
                    }
                }
            }
            link = match self.mem.read_u64(VirtAddr(link)) {
                Ok(x) => x,
                Err(_) => return,
            };
        }
    }
}

/// `__per_cpu_offset[cpu]` for each CPU.
pub(crate) fn per_cpu_offsets(
    mem: &dyn KernelMem,
    base: Option<u64>,
    cpus: usize,
) -> Vec<Option<u64>> {
    let Some(base) = base else {
        return vec![None; cpus];
    };
    (0..cpus)
        .map(|c| mem.read_u64(VirtAddr(base + 8 * c as u64)).ok())
        .collect()
}

/// The address of a per-CPU variable whose symbol is `sym` for a CPU whose offset is
/// `offset`: the symbol's value plus the offset (absolute per-CPU symbols through 6.14,
/// addresses since; the sum is the same).
pub(crate) fn per_cpu_addr(sym: Option<u64>, offset: Option<u64>) -> Option<u64> {
    Some(sym?.wrapping_add(offset?))
}

/// The task each CPU runs: per-CPU `current_task` (< 6.2 and 6.15+),
/// `pcpu_hot.current_task` (6.2 to 6.14), else `runqueues.curr`.
fn current_tasks(
    mem: &dyn KernelMem,
    syms: &TaskSymbols,
    l: &TaskLayout,
    offsets: &[Option<u64>],
    reader: &Reader<'_>,
    how: &mut Vec<String>,
) -> Vec<Current> {
    let source: Option<(&str, u64, u64)> = if let Some(a) = syms.current_task {
        Some(("current_task", a, 0))
    } else if let (Some(a), Some(o)) = (syms.pcpu_hot, l.pcpu_hot_current) {
        Some(("pcpu_hot", a, o))
    } else if let (Some(a), Some(o)) = (syms.runqueues, l.rq_curr) {
        Some(("runqueues", a, o))
    } else {
        None
    };
    let Some((var, sym, field)) = source else {
        how.push("the task of each CPU: unknown (no current_task, pcpu_hot or runqueues)".into());
        return Vec::new();
    };
    how.push(format!(
        "the task of each CPU from per-CPU {var}{} and __per_cpu_offset",
        if field == 0 && var == "current_task" {
            String::new()
        } else {
            format!(" (+{field})")
        }
    ));
    offsets
        .iter()
        .enumerate()
        .filter_map(|(cpu, off)| {
            let at = per_cpu_addr(Some(sym), *off)?.wrapping_add(field);
            let task = mem.read_u64(VirtAddr(at)).ok()?;
            let t = reader.task(task).ok();
            Some(Current {
                cpu,
                task,
                pid: t.as_ref().map(|t| t.pid),
                comm: t.map(|t| t.comm),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::testutil::{Basics, Builder};
    use crate::kmem::SliceKernelMem;

    fn task_btf() -> Btf {
        task_btf_comm_at(104)
    }

    /// The test layout, with `comm` at `comm_at`.
    fn task_btf_comm_at(comm_at: u32) -> Btf {
        let (
            mut b,
            Basics {
                int,
                ulong,
                list_head,
                ch,
                void_ptr,
            },
        ) = Builder::with_basics();
        let comm = b.add("", 3, 0, false, 0, &[ch, int, 16]);
        let ti = b.structure("thread_info", 24, &[("flags", ulong, 0), ("cpu", int, 16)]);
        b.structure("signal_struct", 32, &[("thread_head", list_head, 16)]);
        b.structure(
            "task_struct",
            0x200,
            &[
                ("thread_info", ti, 0),
                ("__state", int, 24),
                ("on_cpu", int, 28),
                ("flags", int, 32),
                ("tasks", list_head, 48),
                ("pid", int, 64),
                ("tgid", int, 68),
                ("real_parent", void_ptr, 72),
                ("signal", void_ptr, 80),
                ("thread_node", list_head, 88),
                ("comm", comm, comm_at),
                ("exit_state", int, 120),
            ],
        );
        Btf::parse(&b.bytes()).unwrap()
    }

    const A: u64 = 0xffff_8880_0000_0000; // init_task
    const B: u64 = 0xffff_8880_0001_0000; // pid 1, a leader
    const C: u64 = 0xffff_8880_0002_0000; // pid 2, B's thread
    const S0: u64 = 0xffff_8880_0003_0000;
    const S1: u64 = 0xffff_8880_0004_0000;
    const OFFSETS: u64 = 0xffff_ffff_8300_0000;

    #[allow(clippy::too_many_arguments)]
    fn task(
        pid: u32,
        tgid: u32,
        comm: &str,
        state: u32,
        next: u64,
        parent: u64,
        signal: u64,
        node_next: u64,
    ) -> Vec<u8> {
        let mut b = vec![0u8; 0x200];
        let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
        put(16, &1u32.to_le_bytes());
        put(24, &state.to_le_bytes());
        put(48, &next.to_le_bytes());
        put(64, &pid.to_le_bytes());
        put(68, &tgid.to_le_bytes());
        put(72, &parent.to_le_bytes());
        put(80, &signal.to_le_bytes());
        put(88, &node_next.to_le_bytes());
        put(104, comm.as_bytes());
        b
    }

    fn memory(b_next: u64) -> SliceKernelMem {
        let sig = |first: u64| {
            let mut s = vec![0u8; 32];
            s[16..24].copy_from_slice(&first.to_le_bytes());
            s
        };
        SliceKernelMem::new(vec![
            (
                VirtAddr(A),
                task(0, 0, "swapper/0", 0, B + 48, A, S0, S0 + 16),
            ),
            (VirtAddr(B), task(1, 1, "init", 1, b_next, A, S1, C + 88)),
            (VirtAddr(C), task(2, 1, "worker", 4, 0, A, S1, S1 + 16)),
            (VirtAddr(S0), sig(A + 88)),
            (VirtAddr(S1), sig(B + 88)),
            (VirtAddr(OFFSETS), 0x1000u64.to_le_bytes().to_vec()),
            (VirtAddr(0x1100), B.to_le_bytes().to_vec()),
        ])
    }

    fn symbols() -> TaskSymbols {
        TaskSymbols {
            init_task: A,
            per_cpu_offset: Some(OFFSETS),
            current_task: Some(0x100),
            ..TaskSymbols::default()
        }
    }

    #[test]
    fn processes_threads_and_the_running_task() {
        let list = read_tasks(&memory(A + 48), &task_btf(), &symbols(), 1).unwrap();
        assert!(list.diagnostics.is_empty(), "{:?}", list.diagnostics);
        let got: Vec<(i32, i32, i32, char, &str)> = list
            .tasks
            .iter()
            .map(|t| (t.pid, t.tgid, t.ppid, t.state, t.comm.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (0, 0, 0, 'R', "swapper/0"),
                (1, 1, 0, 'S', "init"),
                (2, 1, 0, 'T', "worker")
            ]
        );
        assert_eq!(list.current.len(), 1);
        assert_eq!(list.current[0].pid, Some(1));
    }

    #[test]
    fn a_process_list_that_loops_is_cut() {
        // pid 1's link points back at itself: never back to init_task.
        let list = read_tasks(&memory(B + 48), &task_btf(), &symbols(), 1).unwrap();
        assert_eq!(list.tasks.len(), 3);
        assert!(
            list.diagnostics[0].contains("does not return"),
            "{:?}",
            list.diagnostics
        );
        // A link into nowhere.
        let list = read_tasks(&memory(0xdead_0000), &task_btf(), &symbols(), 1).unwrap();
        assert!(
            list.diagnostics[0].contains("cut there"),
            "{:?}",
            list.diagnostics
        );
    }

    #[test]
    fn a_btf_that_lies_about_offsets_is_refused_per_task() {
        // `comm` a megabyte into a task_struct: the read is bounded, the list cut with
        // a diagnostic, never a huge allocation or a panic.
        let btf = task_btf_comm_at(1 << 20);
        let list = read_tasks(&memory(A + 48), &btf, &symbols(), 1).unwrap();
        assert!(list.tasks.is_empty());
        assert!(
            list.diagnostics[0].contains("cut there"),
            "{:?}",
            list.diagnostics
        );
    }

    #[test]
    fn state_letters_as_ps_prints_them() {
        assert_eq!(state_letter(0, 0), 'R');
        assert_eq!(state_letter(1, 0), 'S');
        assert_eq!(state_letter(2, 0), 'D');
        assert_eq!(state_letter(TASK_IDLE, 0), 'I');
        assert_eq!(state_letter(4, 0), 'T');
        assert_eq!(state_letter(8, 0), 't');
        assert_eq!(state_letter(0, 0x20), 'Z');
        assert_eq!(state_letter(0, 0x10), 'X');
        assert_eq!(state_letter(0x40, 0), 'P');
        // TASK_WAKEKILL (0x100) with TASK_STOPPED: still T.
        assert_eq!(state_letter(0x104, 0), 'T');
    }
}
