//! The invariants ARCHITECTURE.md states about the code's seams, checked on the source:
//! who reads the capture record, what the TUI may call, where x86 facts live.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir` (relative to the workspace root), recursively.
fn sources(dir: &str) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut out);
    assert!(!out.is_empty(), "no sources under {dir}");
    out
}

/// The lines of the files under `dirs` that contain any of `needles`, as `path:line: text`,
/// leaving out lines `allowed` accepts.
fn offending(
    dirs: &[&str],
    needles: &[&str],
    allowed: impl Fn(&Path, &str) -> bool,
) -> Vec<String> {
    let mut found = Vec::new();
    for dir in dirs {
        for p in sources(dir) {
            let text = std::fs::read_to_string(&p).unwrap();
            for (i, line) in text.lines().enumerate() {
                if needles.iter().any(|n| line.contains(n)) && !allowed(&p, line) {
                    found.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
                }
            }
        }
    }
    found
}

/// No crate but `record` reads the capture object of a container's metadata: the others
/// go through `CaptureInfo::from_metadata` (slim copies the object whole).
#[test]
fn only_the_record_crate_reads_the_capture_object() {
    let found = offending(
        &[
            "analyze/src",
            "capture/src",
            "tui/src",
            "src",
            "fuzz-entries/src",
        ],
        &[
            "|m| m.capture",
            "meta.capture",
            "metadata.capture",
            "c.get(\"",
        ],
        |p, line| {
            // The writer stores the record; slim copies it whole.
            line.contains("info.store(")
                || (p.ends_with("slim.rs") && line.contains("meta.capture = src.capture.clone()"))
        },
    );
    assert!(
        found.is_empty(),
        "capture metadata read outside record/:\n{}",
        found.join("\n")
    );
}

/// The TUI asks the analysis session for everything: no analysis function of its own.
#[test]
fn the_tui_calls_no_analysis_outside_the_session() {
    let found = offending(
        &["tui/src"],
        &[
            "KernelView::build",
            "Kallsyms::",
            "read_kernel_log",
            "cpu_mode(",
            "listing(",
            "triage(",
            "parse_qemu_log",
            "capture_record(",
            "Hints::",
            "task_backtrace(",
            "vcpu_backtrace(",
        ],
        |_, _| false,
    );
    assert!(
        found.is_empty(),
        "analysis outside the session in the TUI:\n{}",
        found.join("\n")
    );
}

/// Control-register bits and the page-table address mask come from `analyze/src/x86.rs`.
#[test]
fn x86_facts_live_in_one_module() {
    let found = offending(
        &["analyze/src", "tui/src", "src"],
        &[
            "cr[0] & (1 <<",
            "cr[4] & (1 <<",
            "0x000f_ffff_ffff_f000",
            "e & (1 << 10)",
        ],
        |p, _| p.ends_with("x86.rs"),
    );
    assert!(
        found.is_empty(),
        "x86 facts outside analyze/src/x86.rs:\n{}",
        found.join("\n")
    );
}

/// `status` and `watch` both sit above the health, judging and state-file modules: neither
/// reaches into the other.
#[test]
fn status_and_watch_do_not_reach_into_each_other() {
    let status = offending(&["capture/src"], &["crate::watch"], |p, _| {
        !p.ends_with("status.rs")
    });
    assert!(
        status.is_empty(),
        "status uses watch:\n{}",
        status.join("\n")
    );
    let watch = offending(&["capture/src/watch"], &["crate::status"], |_, _| false);
    assert!(watch.is_empty(), "watch uses status:\n{}", watch.join("\n"));
    let lists = offending(
        &["capture/src", "src"],
        &[
            "FROZEN_STATES",
            "FAILURE_STATES",
            "PAUSE_STATES",
            "BUSY_STATES",
        ],
        |_, _| false,
    );
    assert!(
        lists.is_empty(),
        "run-state lists outside RunState:\n{}",
        lists.join("\n")
    );
}
