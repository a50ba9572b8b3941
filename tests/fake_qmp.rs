//! Fault injection with a fake QMP peer, on top of the real-qemu tests: a monitor that
//! talks garbage, stalls, hangs up, or refuses the dump. Each must end with exit 6, a
//! message naming the problem, and no output file.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::util::{coroner, Dir};

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}"#;

/// How the fake peer behaves after the greeting.
#[derive(Clone, Copy)]
pub(crate) enum Script {
    /// Sends bytes that are not JSON instead of a greeting.
    Garbage,
    /// Greets, then never answers.
    Stall,
    /// Greets, accepts capabilities, then hangs up.
    HangUp,
    /// A paused guest whose qemu refuses `dump-guest-memory` (with an escape sequence
    /// in its error text).
    RefuseDump,
    /// A paused guest whose qemu accepts the dump, keeps the pipe open and never writes.
    SilentDump,
    /// Greets, then floods events and never answers a command.
    Flood,
}

/// qemu's answer to `command`; `silent`: the dump was accepted and is "active" forever.
fn answer(command: &str, id: &serde_json::Value, silent: bool) -> String {
    let ret = match command {
        "query-dump" if silent => {
            serde_json::json!({"status": "active", "completed": 0, "total": 536870912u64})
        }
        "query-status" => serde_json::json!({"status": "paused", "running": false}),
        "query-target" => serde_json::json!({"arch": "x86_64"}),
        "query-cpus-fast" => serde_json::json!([{"cpu-index": 0, "thread-id": 999_999_999u64, "target": "x86_64", "qom-path": "/machine/unattached/device[0]"}]),
        "query-dump-guest-memory-capability" => serde_json::json!({"formats": ["elf", "kdump-zlib"]}),
        "query-memory-size-summary" => serde_json::json!({"base-memory": 536870912u64, "plugged-memory": 0}),
        "query-dump" => serde_json::json!({"status": "none", "completed": 0, "total": 0}),
        "human-monitor-command" => serde_json::json!(""),
        "dump-guest-memory" => {
            return serde_json::json!({"error": {"class": "GenericError", "desc": "dump: failed to save memory: Bad address\u{1b}]0;owned\u{7}\u{1b}[2J"}, "id": id}).to_string()
        }
        _ => serde_json::json!({}),
    };
    serde_json::json!({"return": ret, "id": id}).to_string()
}

pub(crate) fn serve(script: Script) -> (Dir, PathBuf, JoinHandle<()>) {
    let dir = Dir::new();
    let path = dir.join("fake.qmp");
    let listener = UnixListener::bind(&path).unwrap();
    let h = thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut r = BufReader::new(s.try_clone().unwrap());
        match script {
            Script::Garbage => {
                let _ = s.write_all(b"\x1b[2J\xff\xfe HELO not qmp\r\n");
                thread::sleep(Duration::from_millis(500));
                return;
            }
            Script::Flood => {
                let _ = writeln!(s, "{GREETING}\r");
                flood(&mut s);
                return;
            }
            Script::SilentDump => {
                let _ = writeln!(s, "{GREETING}\r");
                serve_holding_fds(s);
                return;
            }
            Script::Stall => {
                let _ = writeln!(s, "{GREETING}\r");
                thread::sleep(Duration::from_secs(5));
                return;
            }
            _ => {
                let _ = writeln!(s, "{GREETING}\r");
            }
        }
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            let msg: serde_json::Value = serde_json::from_str(line.trim()).unwrap_or_default();
            line.clear();
            let cmd = msg["execute"].as_str().unwrap_or_default().to_string();
            if matches!(script, Script::HangUp) && cmd != "qmp_capabilities" {
                return;
            }
            let _ = writeln!(s, "{}\r", answer(&cmd, &msg["id"], false));
        }
    });
    (dir, path, h)
}

/// Sends events until the client hangs up: every 64th a `STOP` (an event the analyses
/// keep), the others `RTC_CHANGE` with a large payload.
fn flood(s: &mut std::os::unix::net::UnixStream) {
    let pad = "x".repeat(4000);
    let other = format!(
        "{{\"event\": \"RTC_CHANGE\", \"data\": {{\"offset\": 1, \"pad\": \"{pad}\"}}, \"timestamp\": {{\"seconds\": 1, \"microseconds\": 2}}}}\r\n"
    );
    let stop = "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n";
    let mut burst = String::new();
    for i in 0..256 {
        burst.push_str(if i % 64 == 0 { stop } else { &other });
    }
    while s.write_all(burst.as_bytes()).is_ok() {}
}

/// Answers commands like a paused qemu whose dump never writes: file descriptors passed
/// with `getfd` are received and held open (so the pipe stays open) until the client
/// hangs up.
fn serve_holding_fds(s: std::os::unix::net::UnixStream) {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::io::IoSliceMut;
    use std::mem::MaybeUninit;
    let mut held = Vec::new();
    let mut pending = Vec::new();
    let mut dumping = false;
    let mut s = s;
    loop {
        let mut buf = [0u8; 4096];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let n = match recvmsg(
            &s,
            &mut [IoSliceMut::new(&mut buf)],
            &mut anc,
            RecvFlags::empty(),
        ) {
            Ok(m) if m.bytes > 0 => m.bytes,
            _ => return,
        };
        for msg in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = msg {
                held.extend(fds);
            }
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            let msg: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
            let cmd = msg["execute"].as_str().unwrap_or_default().to_string();
            let reply = if cmd == "dump-guest-memory" {
                dumping = true;
                serde_json::json!({"return": {}, "id": msg["id"]}).to_string()
            } else {
                answer(&cmd, &msg["id"], dumping)
            };
            if writeln!(s, "{reply}\r").is_err() {
                return;
            }
        }
    }
}

fn capture_from(script: Script, extra: &[&str]) -> (crate::util::Run, Dir) {
    let (dir, path, h) = serve(script);
    let sock = path.display().to_string();
    let mut args = vec!["capture", "--qmp", &sock, "-o", "x.core.zst"];
    args.extend_from_slice(extra);
    let r = coroner(dir.path(), &args);
    h.join().unwrap();
    crate::util::assert_no_output(dir.path(), "x.core.zst");
    (r, dir)
}

#[test]
fn garbage_from_the_monitor() {
    let (r, _d) = capture_from(Script::Garbage, &[]);
    r.expect_code(6);
    assert!(r.stderr().contains("not a QMP peer"), "{}", r.stderr());
    assert!(
        !r.stderr().contains('\x1b'),
        "raw escape from the peer reached stderr"
    );
}

#[test]
fn a_monitor_that_stalls() {
    let t = Instant::now();
    let (r, _d) = capture_from(Script::Stall, &["--timeout", "1"]);
    r.expect_code(6);
    assert!(r.stderr().contains("no answer from qemu"), "{}", r.stderr());
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_monitor_that_hangs_up() {
    let (r, _d) = capture_from(Script::HangUp, &[]);
    r.expect_code(6);
    assert!(
        r.stderr().contains("closed the QMP connection"),
        "{}",
        r.stderr()
    );
}

#[test]
fn qemu_refuses_the_dump() {
    let (r, _d) = capture_from(Script::RefuseDump, &[]);
    r.expect_code(6);
    assert!(
        r.stderr().contains("failed to save memory: Bad address"),
        "{}",
        r.stderr()
    );
    assert!(
        !r.stderr().contains('\x1b') && !r.stderr().contains('\x07'),
        "qemu's raw escape sequence reached stderr: {:?}",
        r.stderr()
    );
}

/// qemu accepts the dump and never writes: the capture fails once the dump has made no
/// progress for `--timeout`, instead of waiting for a fixed stall limit.
#[test]
fn a_dump_that_never_writes() {
    let t = Instant::now();
    let (r, _d) = capture_from(Script::SilentDump, &["--timeout", "2"]);
    r.expect_code(6);
    assert!(r.stderr().contains("no progress"), "{}", r.stderr());
    // Generous: the limit is 2 s of no progress (before, a fixed 120 s).
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
}

/// Peak resident memory of a running process, from /proc.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A monitor that floods events while it delays its answer: the client keeps a bounded
/// number of them (its peak memory stays small) and counts the rest. Unbounded, the
/// queue grew by about 180 MiB/s.
#[test]
fn a_monitor_that_floods_events() {
    for cmd in ["status", "capture"] {
        let (dir, path, h) = serve(Script::Flood);
        let sock = path.display().to_string();
        let mut args = vec![cmd, "--qmp", sock.as_str(), "--timeout", "4"];
        if cmd == "capture" {
            args.extend(["-o", "x.core.zst"]);
        }
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_coroner"))
            .args(&args)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut peak = 0;
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            peak = peak.max(vm_hwm_kib(child.id()).unwrap_or(0));
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{cmd} did not end"
            );
            thread::sleep(Duration::from_millis(20));
        }
        h.join().unwrap();
        assert!(peak > 0, "{cmd}: no sample of its memory");
        assert!(
            peak < 128 * 1024,
            "{cmd} peaked at {} MiB under an event flood",
            peak / 1024
        );
        assert!(!dir.join("x.core.zst").exists());
    }
}

#[test]
fn nobody_listening_and_bad_addresses() {
    let d = Dir::new();
    let r = coroner(
        d.path(),
        &[
            "capture",
            "--qmp",
            "/nonexistent/qmp.sock",
            "-o",
            "x.core.zst",
        ],
    );
    r.expect_code(6);
    assert!(r.stderr().contains("cannot connect"), "{}", r.stderr());
    coroner(
        d.path(),
        &["capture", "--qmp", "tcp:nohost", "-o", "x.core.zst"],
    )
    .expect_code(2);
}
