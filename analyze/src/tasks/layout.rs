//! Where the fields of `struct task_struct` a task list needs are, from BTF; they move
//! between kernel versions and configurations (and with `CONFIG_RANDSTRUCT`), so never
//! assumed.

use crate::btf::{Btf, LayoutError};

/// Offsets in `struct task_struct` (and the two links out of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskLayout {
    /// `tasks`: the process list (thread-group leaders).
    pub tasks: u64,
    /// `pid`.
    pub pid: u64,
    /// `tgid`.
    pub tgid: u64,
    /// `comm` and its length.
    pub comm: u64,
    /// See `comm`.
    pub comm_len: u64,
    /// `__state` (5.14+, 4 bytes) or `state` (a long before).
    pub state: u64,
    /// Size of the state field.
    pub state_size: u64,
    /// `exit_state`.
    pub exit_state: u64,
    /// `flags` (`PF_*`).
    pub flags: u64,
    /// `real_parent` (a task pointer).
    pub real_parent: u64,
    /// `signal` (a `signal_struct` pointer).
    pub signal: u64,
    /// `signal_struct.thread_head` and `task_struct.thread_node`: the threads of a group.
    pub thread_head: Option<u64>,
    /// See `thread_head`.
    pub thread_node: Option<u64>,
    /// `thread_info.cpu` (5.16+) or `cpu`: the CPU it last ran on.
    pub cpu: Option<u64>,
    /// `on_cpu`.
    pub on_cpu: Option<u64>,
    /// `sched_info.last_arrival` (`CONFIG_SCHED_INFO`): when it last got a CPU, ns.
    pub last_arrival: Option<u64>,
    /// `struct rq`'s `clock` (for "how long ago").
    pub rq_clock: Option<u64>,
    /// `struct rq`'s `curr`.
    pub rq_curr: Option<u64>,
    /// Offset of `current_task` in `struct pcpu_hot` (6.2 to 6.14).
    pub pcpu_hot_current: Option<u64>,
    /// Bytes from the start of a task_struct that hold every field read: one read a task.
    pub span: u64,
}

impl TaskLayout {
    /// The layout of `struct task_struct` in `btf`.
    pub fn from_btf(btf: &Btf) -> Result<TaskLayout, LayoutError> {
        let off = |path: &str| btf.offset_of("task_struct", path);
        let (state, state_size) = match btf.field("task_struct", "__state") {
            Ok(f) => (f.offset, btf.size_of(f.type_id)?),
            Err(_) => {
                let f = btf.field("task_struct", "state")?;
                (f.offset, btf.size_of(f.type_id)?)
            }
        };
        let comm = btf.field("task_struct", "comm")?;
        let mut l = TaskLayout {
            tasks: off("tasks")?,
            pid: off("pid")?,
            tgid: off("tgid")?,
            comm: comm.offset,
            comm_len: btf.size_of(comm.type_id)?.min(64),
            state,
            state_size,
            exit_state: off("exit_state")?,
            flags: off("flags")?,
            real_parent: off("real_parent")?,
            signal: off("signal")?,
            thread_head: btf.offset_of("signal_struct", "thread_head").ok(),
            thread_node: off("thread_node").ok(),
            cpu: off("thread_info.cpu").or_else(|_| off("cpu")).ok(),
            on_cpu: off("on_cpu").ok(),
            last_arrival: off("sched_info.last_arrival").ok(),
            rq_clock: btf.offset_of("rq", "clock").ok(),
            rq_curr: btf.offset_of("rq", "curr").ok(),
            pcpu_hot_current: btf.offset_of("pcpu_hot", "current_task").ok(),
            span: 0,
        };
        let ends = [
            Some(l.tasks + 16),
            Some(l.pid + 4),
            Some(l.tgid + 4),
            Some(l.comm + l.comm_len),
            Some(l.state + l.state_size),
            Some(l.exit_state + 4),
            Some(l.flags + 4),
            Some(l.real_parent + 8),
            Some(l.signal + 8),
            l.thread_node.map(|o| o + 16),
            l.cpu.map(|o| o + 4),
            l.on_cpu.map(|o| o + 4),
            l.last_arrival.map(|o| o + 8),
        ];
        l.span = ends.iter().flatten().copied().max().unwrap_or(0);
        Ok(l)
    }

    /// One line for the evidence list.
    pub fn describe(&self) -> String {
        format!(
            "struct task_struct from BTF: tasks at {}, pid at {}, comm at {}, state at {} ({} bytes), cpu at {}",
            self.tasks,
            self.pid,
            self.comm,
            self.state,
            self.state_size,
            self.cpu.map_or("unknown".into(), |c| c.to_string())
        )
    }
}
