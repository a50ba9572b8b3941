//! `coroner capture` against real qemu guests: byte-identical to qemu's own file dump, the
//! run state untouched, and every fault ending cleanly.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use coroner_samples::kit::{self, Guest, GuestOptions, Scenario};

use crate::util::{
    assert_no_output, being_written, big_stopped_guest, check_kept_partial, coroner,
    frames_blake3_file, hex, kill_and_wait_dead, sha256_file, signal, spawn_coroner,
    zstd_decompress, Dir,
};

fn sock(guest: &Guest) -> String {
    guest.tool_socket().display().to_string()
}

/// Captures the frozen `guest` with coroner, dumps it with qemu to a file, and checks
/// they hold the same bytes and that the run state did not change.
fn capture_matches_qemu(guest: &mut Guest, dir: &Dir, extra: &[&str]) -> serde_json::Value {
    let state = guest.qmp.run_state().unwrap();
    let socket = sock(guest);
    let mut args = vec!["capture", "--qmp", &socket, "-o", "cap.core.zst", "--json"];
    args.extend_from_slice(extra);
    let r = coroner(dir.path(), &args);
    r.expect_code(0);
    let report = r.json();
    assert_eq!(
        guest.qmp.run_state().unwrap(),
        state,
        "capture changed the run state"
    );

    let elf = dir.join("qemu.elf");
    guest.dump(&elf, "elf").unwrap();
    zstd_decompress(dir.path(), "cap.core.zst", "cap.elf");
    assert_eq!(
        sha256_file(&dir.join("cap.elf")),
        sha256_file(&elf),
        "the capture differs from qemu's own dump of the same frozen guest"
    );
    assert_eq!(
        report["content_frames_blake3"].as_str(),
        Some(&*frames_blake3_file(&elf))
    );
    assert_eq!(report["method"], "pipe");
    let meta = coroner(dir.path(), &["inspect", "cap.core.zst", "--json"]);
    meta.expect_code(0);
    let m = meta.json()["metadata"].clone();
    assert_eq!(m["complete"], true);
    let c = &m["capture"];
    assert_eq!(c["run_state_before"], state.as_str());
    assert_eq!(c["run_state_after"], state.as_str());
    assert!(c["info_registers"].as_str().unwrap().contains("EFER="));
    assert!(c["info_mtree"].as_str().unwrap().contains("system"));
    assert_eq!(c["qemu_pid"].as_u64(), Some(u64::from(guest.pid())));
    assert!(c["qemu_cmdline"][0]
        .as_str()
        .unwrap()
        .contains("qemu-system-x86_64"));
    assert!(c["cpus"].as_array().unwrap().len() == 2);
    // qemu's stderr is a file here, so its log is found without --qemu-log.
    assert!(c["qemu_log"]["source"]
        .as_str()
        .unwrap()
        .ends_with("qemu.stderr"));
    m
}

#[test]
fn capture_of_a_stopped_guest() {
    if !kit::available_or_skip("capture_of_a_stopped_guest") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions::default()).unwrap();
    guest.freeze(Scenario::Stop).unwrap();
    let m = capture_matches_qemu(&mut guest, &dir, &[]);
    assert_eq!(m["capture"]["stopped_by_coroner"], false);
}

#[test]
fn capture_of_a_panicked_guest() {
    if !kit::available_or_skip("capture_of_a_panicked_guest") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions::default()).unwrap();
    guest.freeze(Scenario::Panic).unwrap();
    capture_matches_qemu(&mut guest, &dir, &[]);
}

#[test]
fn capture_waits_for_a_machine_check_and_records_memory_failure() {
    if !kit::available_or_skip("capture_waits_for_a_machine_check") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions::default()).unwrap();
    // coroner connects while the guest runs and captures the moment it freezes.
    let child = spawn_coroner(
        dir.path(),
        &[
            "capture",
            "--qmp",
            &sock(&guest),
            "--wait-frozen",
            "120",
            "-o",
            "mce.core.zst",
            "--json",
        ],
    );
    std::thread::sleep(Duration::from_secs(1));
    guest.freeze(Scenario::Mce).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The report's events are objects, as the capture records them and watch announces
    // them: qemu's fields and the time as RFC 3339.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let seen = report["events"].as_array().unwrap();
    assert!(
        seen.iter().any(|e| e["event"] == "MEMORY_FAILURE"),
        "{report:#}"
    );
    for e in seen {
        let time = e["time"].as_str().unwrap();
        assert!(time.starts_with("20") && time.ends_with('Z'), "{e}");
        assert!(e["seconds"].is_i64() && e.get("data").is_some(), "{e}");
    }
    let r = coroner(dir.path(), &["inspect", "mce.core.zst", "--json"]);
    r.expect_code(0);
    let c = r.json()["metadata"]["capture"].clone();
    assert_eq!(c["run_state_before"], "guest-panicked");
    let events: Vec<&str> = c["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"MEMORY_FAILURE"), "{events:?}");
    assert!(events.contains(&"GUEST_PANICKED"), "{events:?}");
    let mf = c["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "MEMORY_FAILURE")
        .unwrap();
    assert_eq!(mf["data"]["action"], "inject");
    assert_eq!(guest.qmp.run_state().unwrap(), "guest-panicked");

    // The default CPU model is AMD: `coroner mce` decodes the record the AMD way, and
    // its severity is the one the kernel printed before it panicked.
    let r = coroner(dir.path(), &["mce", "mce.core.zst", "--json"]);
    r.expect_code(0);
    let rep = r.json();
    let fatal: Vec<&serde_json::Value> = rep["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["fatal"] == true)
        .collect();
    assert_eq!(fatal.len(), 1, "{rep:#}");
    let f = fatal[0];
    assert_eq!(
        (&f["raw"]["cpu"], &f["raw"]["bank"]),
        (&1.into(), &1.into())
    );
    assert_eq!(f["raw"]["status"], hex(0xbd80_0000_0000_0134));
    assert_eq!(f["raw"]["addr"], hex(0x234_5000));
    assert_eq!(f["decoded"]["vendor"], "amd");
    let said = rep["kernel_lines"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|l| l["text"].as_str()?.strip_prefix("Machine check: "))
        .unwrap();
    assert_eq!(f["decoded"]["severity"]["message"], said);
    let ev = &rep["host"]["events"][f["host_event"].as_u64().unwrap() as usize];
    assert_eq!(ev["action_required"], true);
}

#[test]
fn a_running_guest_is_refused_unless_told() {
    if !kit::available_or_skip("a_running_guest_is_refused_unless_told") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions::default()).unwrap();
    let s = sock(&guest);
    let r = coroner(dir.path(), &["capture", "--qmp", &s, "-o", "run.core.zst"]);
    r.expect_code(5);
    assert!(r.stderr().contains("--stop"), "{}", r.stderr());
    assert_no_output(dir.path(), "run.core.zst");
    assert_eq!(guest.qmp.run_state().unwrap(), "running");

    // A symlink planted at OUT.partial does not redirect the capture.
    let victim = dir.join("victim");
    std::fs::write(&victim, "v").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("run.core.zst.partial")).unwrap();
    let r = coroner(
        dir.path(),
        &[
            "capture",
            "--qmp",
            &s,
            "--stop",
            "-o",
            "run.core.zst",
            "--json",
        ],
    );
    r.expect_code(0);
    assert_eq!(r.json()["stopped_by_coroner"], true);
    // The failover-safe freeze stays in place: coroner does not resume the guest.
    assert_eq!(guest.qmp.run_state().unwrap(), "paused");
    coroner(dir.path(), &["inspect", "run.core.zst"]).expect_code(0);
    assert_eq!(std::fs::read(&victim).unwrap(), b"v");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&victim).unwrap().permissions())
            & 0o777;
    assert_ne!(mode, 0o600, "the victim was chmodded");
}

/// Starts `coroner capture ARGS` on a frozen guest and returns once it is streaming (its
/// temporary file exists), stopped with SIGSTOP so the dump cannot finish meanwhile.
fn capture_held_mid_dump(dir: &Dir, guest: &Guest, output: &str, extra: &[&str]) -> Child {
    let socket = sock(guest);
    let mut args = vec!["capture", "--qmp", &socket, "-o", output];
    args.extend_from_slice(extra);
    let child = spawn_coroner(dir.path(), &args);
    let t = Instant::now();
    while !being_written(dir.path(), output) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "capture never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(child.id(), "-STOP");
    child
}

#[test]
fn qemu_killed_mid_dump_leaves_no_complete_file() {
    if !kit::available_or_skip("qemu_killed_mid_dump_leaves_no_complete_file") {
        return;
    }
    let dir = Dir::new();
    let guest = big_stopped_guest();
    // Hold coroner while it streams so qemu blocks on a full pipe, kill qemu, and let
    // coroner see the end.
    let child = capture_held_mid_dump(&dir, &guest, "dead.core.zst", &["--keep-partial"]);
    kill_and_wait_dead(guest.pid());
    signal(child.id(), "-CONT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        !dir.join("dead.core.zst").exists(),
        "a complete-looking file exists"
    );
    assert!(stderr.contains("dead.core.zst.partial"), "{stderr}");
    // The kept partial says it is incomplete, why, and what was known before the dump.
    check_kept_partial(&dir.join("dead.core.zst.partial"), "paused");
}

#[test]
fn a_full_disk_ends_cleanly_and_leaves_the_guest_frozen() {
    if !kit::available_or_skip("a_full_disk_ends_cleanly") {
        return;
    }
    let dir = Dir::new();
    let small = dir.join("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&small)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true: cannot mount a tmpfs (needs root)"
        );
        eprintln!("skipping a_full_disk_ends_cleanly: cannot mount a tmpfs (needs root)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&small);
    let mut guest = Guest::boot(&GuestOptions {
        append: "coroner.fill=64".into(),
        ..GuestOptions::default()
    })
    .unwrap();
    guest.freeze(Scenario::Panic).unwrap();
    let r = coroner(
        dir.path(),
        &[
            "capture",
            "--qmp",
            &sock(&guest),
            "-o",
            "small/full.core.zst",
        ],
    );
    r.expect_code(4);
    assert!(r.stderr().contains("No space left"), "{}", r.stderr());
    assert_eq!(
        std::fs::read_dir(&small).unwrap().count(),
        0,
        "files left on the full disk"
    );
    assert_eq!(guest.qmp.run_state().unwrap(), "guest-panicked");
}

#[test]
fn ctrl_c_mid_dump_leaves_the_guest_frozen_and_no_file() {
    if !kit::available_or_skip("ctrl_c_mid_dump") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions {
        mem_mib: 1024,
        ..GuestOptions::default()
    })
    .unwrap();
    guest.freeze(Scenario::Panic).unwrap();
    // Hold coroner mid-dump, queue a SIGINT, let it go.
    let child = capture_held_mid_dump(&dir, &guest, "int.core.zst", &[]);
    signal(child.id(), "-INT");
    signal(child.id(), "-CONT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_no_output(dir.path(), "int.core.zst");
    assert_eq!(guest.qmp.run_state().unwrap(), "guest-panicked");
    // qemu is usable afterwards: its own dump works.
    guest.dump(&dir.join("after.elf"), "elf").unwrap();
}

#[test]
fn capture_over_a_tcp_monitor_falls_back_to_a_file() {
    if !kit::available_or_skip("capture_over_a_tcp_monitor") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions {
        extra_qemu: vec![
            "-qmp".into(),
            format!("tcp:127.0.0.1:{port},server=on,wait=off"),
        ],
        ..GuestOptions::default()
    })
    .unwrap();
    guest.freeze(Scenario::Stop).unwrap();
    let qemu_log = guest.dir().join("qemu.stderr").display().to_string();
    let addr = format!("tcp:127.0.0.1:{port}");
    let r = coroner(
        dir.path(),
        &[
            "capture",
            "--qmp",
            &addr,
            "--qemu-log",
            &qemu_log,
            "-o",
            "tcp.core.zst",
            "--json",
        ],
    );
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["method"], "file");
    assert_eq!(j["qemu_log"], qemu_log.as_str());
    let elf = dir.join("qemu.elf");
    guest.dump(&elf, "elf").unwrap();
    assert_eq!(
        j["content_frames_blake3"].as_str(),
        Some(&*frames_blake3_file(&elf))
    );
    // Only the container and qemu's reference dump remain: the intermediate file is gone.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["qemu.elf", "tcp.core.zst"]);
    assert_eq!(guest.qmp.run_state().unwrap(), "paused");
}
