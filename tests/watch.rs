//! `coroner watch` against real qemu: a Linux guest that panics (pvpanic) or hits a disk
//! error (blkdebug, werror=stop), a host memory error before a panic, a guest frozen and
//! resumed twice, qemu killed and restarted under the watcher, qemu killed mid-dump,
//! several tiny guests found in a socket directory, and fake monitors that talk garbage
//! or refuse the dump.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use coroner_samples::baremetal::{BareGuest, Variant};
use coroner_samples::kit::{self, Guest, GuestOptions, Scenario};
use serde_json::Value;

use crate::fake_qmp::{serve, Script};
use crate::util::{
    big_stopped_guest, check_kept_partial, coroner, kill_and_wait_dead, qemu_without_machine,
    signal, Dir,
};

static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A running `coroner watch --json`, its announcements read line by line.
pub(crate) struct Watch {
    child: Child,
    lines: Receiver<Value>,
    /// Every announcement read.
    seen: Vec<Value>,
    /// Announcements read but not yet expected.
    pending: VecDeque<Value>,
    stderr: PathBuf,
}

impl Watch {
    pub(crate) fn start(dir: &Path, args: &[&str]) -> Watch {
        Self::spawn(dir, args, false, &[])
    }

    /// [`Watch::start`] with `env` added to its environment.
    pub(crate) fn start_env(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Watch {
        Self::spawn(dir, args, false, env)
    }

    /// Started as systemd starts a `Type=notify` service: `JOURNAL_STREAM` names its
    /// stderr, and `env` adds the notification socket and the watchdog.
    fn start_service(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Watch {
        Self::spawn(dir, args, true, env)
    }

    fn spawn(dir: &Path, args: &[&str], journal: bool, env: &[(&str, String)]) -> Watch {
        use std::os::unix::fs::MetadataExt;
        let stderr = dir.join(format!(
            "watch-{}-{}.err",
            std::process::id(),
            COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let file = std::fs::File::create(&stderr).unwrap();
        let meta = file.metadata().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coroner"));
        if journal {
            cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        } else {
            cmd.env_remove("JOURNAL_STREAM");
        }
        for v in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            cmd.env_remove(v);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .arg("watch")
            .arg("--json")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Watch {
            child,
            lines,
            seen: Vec::new(),
            pending: VecDeque::new(),
            stderr,
        }
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The first announcement of kind `event` (for `guest`, when given) not yet expected,
    /// waiting at most `timeout`.
    #[track_caller]
    pub(crate) fn expect(&mut self, event: &str, guest: Option<&str>, timeout: Duration) -> Value {
        let matches = |v: &Value| v["event"] == event && guest.is_none_or(|g| v["guest"] == g);
        if let Some(i) = self.pending.iter().position(matches) {
            return self.pending.remove(i).unwrap();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if matches(&v) {
                        return v;
                    }
                    self.pending.push_back(v);
                }
                Err(_) => panic!(
                    "no {event} announcement within {timeout:?}; seen:\n{}\nstderr:\n{}",
                    self.seen
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                    self.stderr()
                ),
            }
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    /// Waits for the process to end; its exit code.
    #[track_caller]
    pub(crate) fn wait(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Announcements printed before the exit.
                while let Ok(v) = self.lines.recv_timeout(Duration::from_millis(100)) {
                    self.seen.push(v);
                }
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "watch still running after {timeout:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const HOOK: &str = r#"printf '%s|%s|%s|%s|%s|%s\n' "$CORONER_EVENT" "$CORONER_GUEST" "$CORONER_REASON" "$CORONER_RUN_STATE" "$CORONER_HEALTH" "$CORONER_CAPTURE" >> hook.log; test -n "$CORONER_JSON""#;

/// The QMP event `name` among an announcement's `events`.
#[track_caller]
fn qemu_event<'a>(announcement: &'a Value, name: &str) -> &'a Value {
    announcement["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event in {announcement}"))
}

/// The files under `dir`, the watcher's state directory included (empty once it ended).
/// The files under `dir`, but the signatures `watch` stores beside its captures.
fn files_in(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            found.extend(files_in(&e.path()));
        } else if !e.file_name().to_string_lossy().ends_with(".sig.json") {
            found.push(e.path().display().to_string());
        }
    }
    found
}

/// Checks that every capture in `caps` was signed by `watch` (its signature waits
/// beside it once `watch` has exited).
#[track_caller]
fn assert_signed(caps: &[String]) {
    for c in caps {
        let sig = format!("{c}.sig.json");
        let text = std::fs::read_to_string(&sig).unwrap_or_else(|e| panic!("{sig}: {e}"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(c.ends_with(v["capture"].as_str().unwrap()), "{v}");
    }
}

#[track_caller]
fn check_capture_file(path: &str, guest: &str, reason: &str) {
    let p = Path::new(path);
    let name = p.file_name().unwrap().to_string_lossy().into_owned();
    // GUEST-TIME-REASON.core.zst, or GUEST-TIME-REASON-N.core.zst for the N-th capture of
    // the guest within the same second.
    let stem = name.strip_suffix(".core.zst").unwrap_or("");
    let stem = match stem.rsplit_once('-') {
        Some((head, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => stem,
    };
    assert!(
        name.starts_with(&format!("{guest}-")) && stem.ends_with(&format!("Z-{reason}")),
        "{name}"
    );
    let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{path}");
}

#[test]
fn watch_captures_a_guest_that_panics() {
    if !kit::available_or_skip("watch_captures_a_guest_that_panics") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions::default()).unwrap();
    let sock = guest.tool_socket().display().to_string();
    let target = format!("vm1={sock}");
    let mut w = Watch::start(
        dir.path(),
        &["--qmp", &target, "--dir", "caps", "--once", "--exec", HOOK],
    );
    let v = w.expect("watching", Some("vm1"), Duration::from_secs(30));
    assert_eq!(
        (v["health"].as_str(), v["run_state"].as_str()),
        (Some("running"), Some("running"))
    );
    assert_eq!(v["qemu_pid"], guest.pid());

    guest.freeze(Scenario::Panic).unwrap();
    let frozen = w.expect("frozen", Some("vm1"), Duration::from_secs(60));
    assert_eq!(frozen["reason"], "guest-panicked", "{frozen}");
    let done = w.expect("captured", Some("vm1"), Duration::from_secs(120));
    assert_eq!(done["health"], "frozen-captured");
    assert_eq!(done["run_state"], "guest-panicked");
    assert_eq!(
        qemu_event(&done, "GUEST_PANICKED")["data"]["action"],
        "pause"
    );
    assert!(done["latency_ms"].as_f64().unwrap() >= 0.0, "{done}");
    let capture = done["capture"].as_str().unwrap().to_string();
    check_capture_file(&capture, "vm1", "guest-panicked");
    assert_eq!(w.wait(Duration::from_secs(30)), 0, "{}", w.stderr());

    // The hook ran for each announcement, in order, with the details.
    let hook = std::fs::read_to_string(dir.join("hook.log")).unwrap();
    let lines: Vec<&str> = hook.lines().collect();
    assert_eq!(lines.len(), 3, "{hook}");
    assert!(
        lines[0].starts_with("watching|vm1||running|running|"),
        "{hook}"
    );
    assert!(
        lines[1].starts_with("frozen|vm1|guest-panicked|guest-panicked|frozen|"),
        "{hook}"
    );
    assert_eq!(
        lines[2],
        format!("captured|vm1|guest-panicked|guest-panicked|frozen-captured|{capture}")
    );

    // The capture analyzes; the guest was not touched; status sees it captured.
    let r = coroner(dir.path(), &["analyze", &capture, "--json"]);
    r.expect_code(0);
    let verdict = r.json()["verdict"].as_str().unwrap().to_string();
    assert!(
        verdict.starts_with("guest-panicked: kernel panic"),
        "{verdict}"
    );
    assert!(verdict.contains("sysrq"), "{verdict}");
    assert_eq!(guest.qmp.run_state().unwrap(), "guest-panicked");
    let r = coroner(
        dir.path(),
        &["status", "--qmp", &sock, "--dir", "caps", "--json"],
    );
    r.expect_code(1);
    assert_eq!(r.json()["health"], "frozen-captured");
    let found = std::fs::canonicalize(dir.join(r.json()["capture"].as_str().unwrap())).unwrap();
    assert_eq!(found, std::fs::canonicalize(&capture).unwrap());
}

#[test]
fn watch_captures_an_io_error_freeze() {
    if !kit::available_or_skip("watch_captures_an_io_error_freeze") {
        return;
    }
    let dir = Dir::new();
    let guest = Guest::boot(&GuestOptions {
        iodisk: true,
        append: "coroner.run=io-error coroner.run_after=8".into(),
        ..GuestOptions::default()
    })
    .unwrap();
    let sock = guest.tool_socket().display().to_string();
    let mut w = Watch::start(dir.path(), &["--qmp", &sock, "--dir", "caps"]);
    let v = w.expect("watching", None, Duration::from_secs(30));
    assert_eq!(
        v["run_state"], "running",
        "the write failed before watch started: {v}"
    );
    assert_eq!(v["guest"], "tool");
    let done = w.expect("captured", None, Duration::from_secs(120));
    assert_eq!(
        (done["reason"].as_str(), done["run_state"].as_str()),
        (Some("io-error"), Some("io-error"))
    );
    let io = qemu_event(&done, "BLOCK_IO_ERROR");
    assert_eq!(io["data"]["operation"], "write", "{io}");
    assert_eq!(io["data"]["action"], "stop", "{io}");
    let capture = done["capture"].as_str().unwrap().to_string();
    check_capture_file(&capture, "tool", "io-error");
    // The watcher holds the monitor: status answers from the watcher's state file.
    let r = coroner(
        dir.path(),
        &[
            "status",
            "--qmp",
            &sock,
            "--dir",
            "caps",
            "--json",
            "--timeout",
            "1",
        ],
    );
    r.expect_code(1);
    let j = r.json();
    assert_eq!(j["health"], "frozen-captured", "{j}");
    assert_eq!(j["capture"], capture.as_str(), "{j}");
    assert!(
        j["detail"]
            .as_str()
            .unwrap()
            .contains("held by coroner watch"),
        "{j}"
    );
    // Without --once it keeps watching; SIGTERM ends it cleanly.
    w.signal("-TERM");
    assert_eq!(w.wait(Duration::from_secs(20)), 0, "{}", w.stderr());
    assert!(
        !dir.join("caps/.coroner-watch/tool.json").exists(),
        "the state file outlived its watcher"
    );
    let r = coroner(dir.path(), &["analyze", &capture, "--json"]);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["run_state"], "io-error");
    let recorded: Vec<&str> = j["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert!(recorded.contains(&"BLOCK_IO_ERROR"), "{recorded:?}");
}

#[test]
fn watch_captures_a_watchdog_freeze() {
    if !kit::available_or_skip("watch_captures_a_watchdog_freeze") {
        return;
    }
    let dir = Dir::new();
    let guest = Guest::boot(&GuestOptions {
        watchdog: true,
        append: "coroner.run=watchdog coroner.run_after=4".into(),
        ..GuestOptions::default()
    })
    .unwrap();
    let sock = guest.tool_socket().display().to_string();
    let mut w = Watch::start(dir.path(), &["--qmp", &sock, "--dir", "caps", "--once"]);
    let v = w.expect("watching", None, Duration::from_secs(30));
    assert_eq!(v["run_state"], "running", "{v}");
    let done = w.expect("captured", None, Duration::from_secs(120));
    assert_eq!(done["reason"], "watchdog", "{done}");
    let dog = qemu_event(&done, "WATCHDOG");
    assert_eq!(dog["data"]["action"], "pause", "{dog}");
    check_capture_file(done["capture"].as_str().unwrap(), "tool", "watchdog");
    assert_eq!(w.wait(Duration::from_secs(30)), 0, "{}", w.stderr());
}

#[test]
fn watch_captures_after_a_memory_failure() {
    if !kit::available_or_skip("watch_captures_after_a_memory_failure") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions::default()).unwrap();
    let sock = guest.tool_socket().display().to_string();
    // Only memory-failure: a panic alone would not be captured.
    let mut w = Watch::start(
        dir.path(),
        &[
            "--qmp",
            &sock,
            "--dir",
            "caps",
            "--on",
            "memory-failure",
            "--once",
        ],
    );
    w.expect("watching", None, Duration::from_secs(30));
    guest.freeze(Scenario::Mce).unwrap();
    let mf = w.expect("memory-failure", None, Duration::from_secs(60));
    assert_eq!(mf["events"][0]["data"]["recipient"], "guest", "{mf}");
    assert_eq!(
        mf["events"][0]["data"]["flags"]["action-required"], true,
        "{mf}"
    );
    let done = w.expect("captured", None, Duration::from_secs(120));
    assert_eq!(done["reason"], "memory-failure");
    assert_eq!(done["run_state"], "guest-panicked");
    assert_eq!(w.wait(Duration::from_secs(30)), 0, "{}", w.stderr());
    let capture = done["capture"].as_str().unwrap();
    let r = coroner(dir.path(), &["mce", capture, "--json"]);
    r.expect_code(0);
    let j = r.json();
    assert!(
        j.to_string().contains("MEMORY_FAILURE"),
        "the capture does not tie the record to the host event: {j:#}"
    );
}

#[test]
fn watch_captures_each_freeze_of_a_guest_resumed_in_between() {
    if !kit::available_or_skip("watch_captures_each_freeze_of_a_guest_resumed_in_between") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions {
        mem_mib: 256,
        ..GuestOptions::default()
    })
    .unwrap();
    let sock = guest.tool_socket().display().to_string();
    let target = format!("db={sock}");
    let mut w = Watch::start(
        dir.path(),
        &["--qmp", &target, "--dir", "caps", "--on", "paused"],
    );
    let v = w.expect("watching", Some("db"), Duration::from_secs(30));
    assert_eq!(v["health"], "running", "{v}");
    let mut captures = Vec::new();
    for round in 0..2 {
        guest.qmp.execute("stop", None).unwrap();
        let done = w.expect("captured", Some("db"), Duration::from_secs(60));
        assert_eq!(done["reason"], "paused", "round {round}: {done}");
        qemu_event(&done, "STOP");
        let capture = done["capture"].as_str().unwrap().to_string();
        check_capture_file(&capture, "db", "paused");
        // The watcher never resumes the guest itself.
        assert_eq!(guest.qmp.run_state().unwrap(), "paused");
        captures.push(capture);
        guest.qmp.execute("cont", None).unwrap();
        let resumed = w.expect("resumed", Some("db"), Duration::from_secs(30));
        assert_eq!(resumed["health"], "running", "{resumed}");
    }
    // Two freezes, two files (a second one in the same second gets `-2`).
    assert_ne!(captures[0], captures[1]);
    for c in &captures {
        let r = coroner(dir.path(), &["inspect", c, "--json"]);
        r.expect_code(0);
    }
    w.signal("-TERM");
    assert_eq!(w.wait(Duration::from_secs(20)), 0, "{}", w.stderr());
    let caps = files_in(&dir.join("caps"));
    assert_eq!(caps.len(), 2, "{caps:?}");
    assert_signed(&caps);
}

#[test]
fn watch_reports_gone_and_follows_a_restarted_qemu() {
    if !kit::available_or_skip("watch_reports_gone_and_follows_a_restarted_qemu") {
        return;
    }
    let dir = Dir::new();
    let sock = dir.join("vm.qmp");
    let sock_s = sock.display().to_string();
    // Started before qemu: it waits for the socket.
    let mut w = Watch::start(
        dir.path(),
        &["--qmp", &sock_s, "--dir", "caps", "--max-backoff", "0.5"],
    );
    let mut first = qemu_without_machine(&sock);
    let v = w.expect("watching", Some("vm"), Duration::from_secs(30));
    assert_eq!(v["run_state"], "running");

    first.kill().unwrap();
    first.wait().unwrap();
    let t = Instant::now();
    let gone = w.expect("gone", Some("vm"), Duration::from_secs(10));
    assert_eq!(gone["health"], "gone");
    assert!(t.elapsed() < Duration::from_secs(10));

    let mut second = qemu_without_machine(&sock);
    w.expect("watching", Some("vm"), Duration::from_secs(30));
    second.kill().unwrap();
    second.wait().unwrap();
    w.expect("gone", Some("vm"), Duration::from_secs(10));

    // Nothing to capture; SIGTERM while it retries ends it at once, cleanly.
    w.signal("-TERM");
    assert_eq!(w.wait(Duration::from_secs(10)), 0, "{}", w.stderr());
    assert_eq!(
        files_in(&dir.join("caps")),
        Vec::<String>::new(),
        "no capture expected"
    );
    assert!(w.stderr().contains("cannot connect"), "{}", w.stderr());
}

#[test]
fn watch_finds_guests_in_a_socket_directory() {
    if !kit::available_or_skip("watch_finds_guests_in_a_socket_directory") {
        return;
    }
    let dir = Dir::new();
    let socks = dir.join("sockets");
    std::fs::create_dir(&socks).unwrap();
    let socks_s = socks.display().to_string();
    // The systemd unit's command line, with its directories moved here.
    let mut args = crate::ha::unit_watch_args(&socks, &dir.join("caps"));
    args.retain(|a| a != "--json");
    args.extend(["--once", "--exec", HOOK].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(
        args.contains(&"--qmp-dir") && args.contains(&socks_s.as_str()),
        "{args:?}"
    );
    let mut w = Watch::start(dir.path(), &args);
    // Two tiny guests, held in prelaunch (-S) until the watcher is connected; each
    // panics through pvpanic a moment after it starts.
    let mut guests = Vec::new();
    for name in ["web", "db"] {
        let extra = vec![
            "-S".to_string(),
            "-qmp".to_string(),
            format!("unix:{}/{name}.qmp,server=on,wait=off", socks.display()),
        ];
        guests.push(BareGuest::boot_with(Variant::Pvpanic, 16, &extra).unwrap());
    }
    for name in ["web", "db"] {
        let v = w.expect("watching", Some(name), Duration::from_secs(30));
        assert_eq!(v["run_state"], "prelaunch");
    }
    for g in &mut guests {
        g.qmp.execute("cont", None).unwrap();
    }
    let mut captured = Vec::new();
    for _ in 0..2 {
        let v = w.expect("captured", None, Duration::from_secs(120));
        assert_eq!(v["reason"], "guest-panicked", "{v}");
        check_capture_file(
            v["capture"].as_str().unwrap(),
            v["guest"].as_str().unwrap(),
            "guest-panicked",
        );
        captured.push(v["guest"].as_str().unwrap().to_string());
    }
    captured.sort();
    assert_eq!(captured, ["db", "web"]);
    assert_eq!(w.wait(Duration::from_secs(30)), 0, "{}", w.stderr());
    // prelaunch is an operator's pause (health `paused`), no trigger: announced, not
    // captured.
    assert!(w.seen.iter().any(|v| v["event"] == "paused"
        && v["health"] == "paused"
        && v["run_state"] == "prelaunch"
        && v["reason"].is_null()));
    let hook = std::fs::read_to_string(dir.join("hook.log")).unwrap();
    assert_eq!(
        hook.lines().filter(|l| l.starts_with("captured|")).count(),
        2,
        "{hook}"
    );
    for g in &mut guests {
        assert_eq!(g.qmp.run_state().unwrap(), "guest-panicked");
    }

    // A watcher started again (a service restart) finds both freezes captured already.
    let mut again = Watch::start(dir.path(), &args);
    for name in ["web", "db"] {
        let v = again.expect("frozen", Some(name), Duration::from_secs(30));
        assert_eq!(v["health"], "frozen-captured", "{v}");
        assert!(v["capture"].as_str().unwrap().contains(name), "{v}");
    }
    assert_eq!(again.wait(Duration::from_secs(30)), 0, "{}", again.stderr());
    let caps = files_in(&dir.join("caps"));
    assert_eq!(caps.len(), 2, "{caps:?}");
    assert_signed(&caps);
}

#[test]
fn watch_captures_a_guest_that_powers_off_under_no_shutdown() {
    if !kit::available_or_skip("watch_captures_a_guest_that_powers_off_under_no_shutdown") {
        return;
    }
    let dir = Dir::new();
    let mut guest = BareGuest::boot_with(Variant::Poweroff, 16, &["-S".to_string()]).unwrap();
    let sock = guest.tool_socket().display().to_string();
    let target = format!("off={sock}");
    let mut w = Watch::start(
        dir.path(),
        &[
            "--qmp", &target, "--dir", "caps", "--on", "shutdown", "--once",
        ],
    );
    w.expect("watching", Some("off"), Duration::from_secs(30));
    guest.qmp.execute("cont", None).unwrap();
    let done = w.expect("captured", Some("off"), Duration::from_secs(60));
    assert_eq!(
        (done["reason"].as_str(), done["run_state"].as_str()),
        (Some("shutdown"), Some("shutdown")),
        "{done}"
    );
    let off = qemu_event(&done, "SHUTDOWN");
    assert_eq!(off["data"]["guest"], true, "{off}");
    check_capture_file(done["capture"].as_str().unwrap(), "off", "shutdown");
    assert_eq!(w.wait(Duration::from_secs(30)), 0, "{}", w.stderr());
    assert_eq!(guest.qmp.run_state().unwrap(), "shutdown");
}

#[test]
fn watch_keeps_the_partial_of_a_qemu_killed_mid_dump() {
    if !kit::available_or_skip("watch_keeps_the_partial_of_a_qemu_killed_mid_dump") {
        return;
    }
    let dir = Dir::new();
    let guest = big_stopped_guest();
    let sock = guest.tool_socket().display().to_string();
    let mut w = Watch::start(
        dir.path(),
        &[
            "--qmp",
            &sock,
            "--dir",
            "caps",
            "--on",
            "paused",
            "--once",
            "--keep-partial",
        ],
    );
    // An operator's pause, captured because `--on paused` asks for it.
    let frozen = w.expect("paused", None, Duration::from_secs(30));
    assert_eq!(frozen["reason"], "paused", "{frozen}");
    assert_eq!(frozen["health"], "paused", "{frozen}");
    // Hold the watcher while it streams, so qemu blocks on the full pipe; kill qemu (as a
    // fence would), then let the watcher see the end.
    let caps = dir.join("caps");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !files_in(&caps).iter().any(|f| f.ends_with(".tmp")) {
        assert!(Instant::now() < deadline, "capture never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    w.signal("-STOP");
    kill_and_wait_dead(guest.pid());
    w.signal("-CONT");
    let failed = w.expect("capture-failed", None, Duration::from_secs(60));
    // qemu is gone, and the announcement says so.
    assert_eq!(failed["health"], "gone", "{failed}");
    assert_eq!(failed["reason"], "paused", "{failed}");
    let kept = failed["kept"]
        .as_str()
        .unwrap_or_else(|| panic!("{failed}"));
    assert!(kept.ends_with("-paused.core.zst.partial"), "{kept}");
    w.expect("gone", None, Duration::from_secs(30));
    assert_eq!(w.wait(Duration::from_secs(30)), 6, "{}", w.stderr());
    // Nothing claims to be complete; the kept partial says it is not, and why.
    assert_eq!(files_in(&caps), [kept.to_string()]);
    check_kept_partial(Path::new(kept), "paused");
}

#[test]
fn watch_reports_a_refused_dump_and_leaves_no_file() {
    let (dir, path, h) = serve(Script::RefuseDump);
    let sock = path.display().to_string();
    let mut w = Watch::start(
        dir.path(),
        &["--qmp", &sock, "--dir", "caps", "--on", "paused", "--once"],
    );
    let v = w.expect("watching", None, Duration::from_secs(10));
    assert_eq!(v["health"], "paused");
    w.expect("paused", None, Duration::from_secs(10));
    let failed = w.expect("capture-failed", None, Duration::from_secs(10));
    assert!(
        failed["detail"].as_str().unwrap().contains("Bad address"),
        "{failed}"
    );
    assert_eq!(w.wait(Duration::from_secs(10)), 6, "{}", w.stderr());
    h.join().unwrap();
    assert_eq!(files_in(&dir.join("caps")), Vec::<String>::new());
}

#[test]
fn watch_survives_a_monitor_that_talks_garbage() {
    let (dir, path, h) = serve(Script::Garbage);
    let sock = path.display().to_string();
    // As under systemd: JOURNAL_STREAM names stderr, so diagnostics carry priorities, and
    // the service manager listens on NOTIFY_SOCKET with a 400 ms watchdog.
    let manager_path = dir.join("notify");
    let manager = std::os::unix::net::UnixDatagram::bind(&manager_path).unwrap();
    manager
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut w = Watch::start_service(
        dir.path(),
        &["--qmp", &sock, "--dir", "caps"],
        &[
            ("NOTIFY_SOCKET", manager_path.display().to_string()),
            ("WATCHDOG_USEC", "400000".into()),
        ],
    );
    let mut buf = [0u8; 4096];
    let stderr = w.stderr.clone();
    let mut from_watch = move || match manager.recv(&mut buf) {
        Ok(len) => String::from_utf8_lossy(&buf[..len]).into_owned(),
        Err(e) => panic!(
            "no notification from watch ({e}); its stderr:\n{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        ),
    };
    assert_eq!(from_watch(), "READY=1\nSTATUS=watching 1 guest");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !w.stderr().contains("<4>fake: not a QMP peer") {
        assert!(Instant::now() < deadline, "{}", w.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    h.join().unwrap();
    // Still running (retrying), and telling the watchdog so; SIGTERM ends it cleanly.
    assert!(w.child.try_wait().unwrap().is_none());
    for _ in 0..3 {
        assert_eq!(from_watch(), "WATCHDOG=1");
    }
    w.signal("-TERM");
    while !from_watch().starts_with("STOPPING=1\n") {}
    assert_eq!(w.wait(Duration::from_secs(10)), 0, "{}", w.stderr());
    assert!(!w.stderr().contains('\x1b'), "raw escape reached stderr");
    assert!(w.seen.is_empty(), "{:?}", w.seen);
}
