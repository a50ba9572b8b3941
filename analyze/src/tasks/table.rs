//! The task table as `coroner ps` prints it and the TUI's Tasks pane shows it: one
//! header and one row per task, the same in both. Rows hold guest text (the command):
//! callers escape them for their output.

use super::{Task, TaskList};

/// The header line of [`row`]'s columns.
pub fn header() -> String {
    format!(
        "  {:>7} {:>7} {:>3} ST {:>8}  COMM",
        "PID", "PPID", "CPU", "LAST RAN"
    )
}

/// One task: `>` when a CPU runs it now, pid, parent, last CPU, state, how long ago it
/// last ran, and the command (in brackets for a kernel thread).
pub fn row(list: &TaskList, t: &Task) -> String {
    let running = list.current.iter().any(|c| c.task == t.task);
    let comm = if t.kernel_thread {
        format!("[{}]", t.comm)
    } else {
        t.comm.clone()
    };
    format!(
        "{} {:>7} {:>7} {:>3} {}  {:>8}  {comm}",
        if running { '>' } else { ' ' },
        t.pid,
        t.ppid,
        t.cpu.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
        t.state,
        t.last_ran_ns_ago.map(ago).unwrap_or_else(|| "-".into()),
    )
}

/// A duration in the row's 8 columns: `4.5s`, `12m05s`, `3h20m`.
pub fn ago(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    match s {
        0..=59 => format!("{}.{}s", s, (ns / 100_000_000) % 10),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::Current;

    #[test]
    fn rows_line_up_under_the_header() {
        let t = Task {
            pid: 102,
            tgid: 102,
            ppid: 2,
            comm: "hwrng".into(),
            state: 'D',
            kernel_thread: true,
            cpu: Some(0),
            on_cpu: false,
            last_ran_ns_ago: Some(3_945_117_714),
            task: 0xffff_8880_0000_1000,
        };
        let mut list = TaskList {
            tasks: vec![t.clone()],
            ..TaskList::default()
        };
        assert_eq!(row(&list, &t), "      102       2   0 D      3.9s  [hwrng]");
        list.current.push(Current {
            cpu: 0,
            task: t.task,
            pid: Some(102),
            comm: Some("hwrng".into()),
        });
        assert!(row(&list, &t).starts_with('>'));
        assert_eq!(header().find("COMM"), row(&list, &t).find("[hwrng]"));
        assert_eq!(ago(61_000_000_000), "1m01s");
        assert_eq!(ago(7_300_000_000_000), "2h01m");
    }
}
