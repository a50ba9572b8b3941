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
    /// A paused guest whose qemu refuses `dump-guest-memory`.
    RefuseDump,
}

fn answer(command: &str, id: &serde_json::Value) -> String {
    let ret = match command {
        "query-status" => serde_json::json!({"status": "paused", "running": false}),
        "query-target" => serde_json::json!({"arch": "x86_64"}),
        "query-cpus-fast" => serde_json::json!([{"cpu-index": 0, "thread-id": 999_999_999u64, "target": "x86_64", "qom-path": "/machine/unattached/device[0]"}]),
        "query-dump-guest-memory-capability" => serde_json::json!({"formats": ["elf", "kdump-zlib"]}),
        "query-memory-size-summary" => serde_json::json!({"base-memory": 536870912u64, "plugged-memory": 0}),
        "query-dump" => serde_json::json!({"status": "none", "completed": 0, "total": 0}),
        "human-monitor-command" => serde_json::json!(""),
        "dump-guest-memory" => {
            return serde_json::json!({"error": {"class": "GenericError", "desc": "dump: failed to save memory: Bad address"}, "id": id}).to_string()
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
            let _ = writeln!(s, "{}\r", answer(&cmd, &msg["id"]));
        }
    });
    (dir, path, h)
}

fn capture_from(script: Script, extra: &[&str]) -> (crate::util::Run, Dir) {
    let (dir, path, h) = serve(script);
    let sock = path.display().to_string();
    let mut args = vec!["capture", "--qmp", &sock, "-o", "x.core.zst"];
    args.extend_from_slice(extra);
    let r = coroner(dir.path(), &args);
    h.join().unwrap();
    assert!(!dir.join("x.core.zst").exists(), "an output file exists");
    assert!(
        !dir.join("x.core.zst.partial").exists(),
        "a partial file was left"
    );
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
