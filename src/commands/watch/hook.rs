//! `--exec CMD`: runs the hook for each announcement, one at a time and in order, with
//! the details in its environment and a time limit.

use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use coroner_capture::{LogLevel, Notice};

use crate::journal::log;

/// The environment a hook sees for `n` (besides coroner's own).
pub fn environment(n: &Notice) -> Vec<(&'static str, String)> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    vec![
        ("CORONER_EVENT", n.event.name().to_string()),
        ("CORONER_GUEST", n.guest.clone()),
        ("CORONER_QMP", n.qmp.clone()),
        ("CORONER_HEALTH", n.health.name().to_string()),
        ("CORONER_RUN_STATE", opt(n.run_state.clone())),
        ("CORONER_REASON", opt(n.reason.clone())),
        (
            "CORONER_CAPTURE",
            opt(n.capture.as_ref().map(|p| p.display().to_string())),
        ),
        (
            "CORONER_KEPT",
            opt(n.kept.as_ref().map(|p| p.display().to_string())),
        ),
        ("CORONER_QEMU_PID", opt(n.qemu_pid.map(|p| p.to_string()))),
        (
            "CORONER_LATENCY_MS",
            opt(n.latency_ms.map(|l| format!("{l:.3}"))),
        ),
        ("CORONER_DETAIL", n.detail.clone()),
        (
            "CORONER_EVENTS",
            serde_json::to_string(&n.events).unwrap_or_default(),
        ),
        ("CORONER_JSON", serde_json::to_string(n).unwrap_or_default()),
    ]
}

/// Runs `command` for every notice received, until the sender is dropped.
pub fn run_hooks(command: &str, timeout: Duration, notices: Receiver<Notice>) {
    for n in notices {
        run_one(command, timeout, &n);
    }
}

fn run_one(command: &str, timeout: Duration, n: &Notice) {
    let what = format!("{}: hook for {}", n.guest, n.event.name());
    // The hook's output goes to our stderr: stdout carries announcements only.
    let out = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    let mut sh = Command::new("sh");
    // The service manager's channel is coroner's own, not the hook's.
    for v in super::systemd::OWN_VARIABLES {
        sh.env_remove(v);
    }
    let child = sh
        .arg("-c")
        .arg(command)
        .envs(environment(n))
        .stdin(Stdio::null())
        .stdout(out)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            log(LogLevel::Error, &format!("{what}: cannot start sh: {e}"));
            return;
        }
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return,
            Ok(Some(status)) => {
                log(LogLevel::Warning, &format!("{what}: {status}"));
                return;
            }
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                log(
                    LogLevel::Error,
                    &format!("{what}: killed after {} s", timeout.as_secs()),
                );
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                log(LogLevel::Error, &format!("{what}: {e}"));
                return;
            }
        }
    }
}
