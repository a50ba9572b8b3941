//! `coroner status` against a real qemu: running, paused, captured, panicked, and a qemu
//! that was killed, with the OCF exit codes.

use std::time::{Duration, Instant};

use coroner_samples::kit::{self, Guest, GuestOptions, Scenario};

use crate::util::{coroner, Dir};

fn status(dir: &Dir, sock: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["status", "--qmp", sock, "--json"];
    args.extend_from_slice(extra);
    let r = coroner(dir.path(), &args);
    let j = r.json();
    (j["exit_code"].as_i64().unwrap() as i32, j)
}

#[test]
fn status_of_running_paused_captured_panicked_and_killed_guests() {
    if !kit::available_or_skip("status_of_running_paused_captured_panicked_and_killed_guests") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions::default()).unwrap();
    let sock = guest.tool_socket().display().to_string();
    let caps = dir.path().join("captures");
    std::fs::create_dir(&caps).unwrap();
    let caps = caps.to_str().unwrap().to_string();

    let r = coroner(dir.path(), &["status", "--qmp", &sock]);
    r.expect_code(0);
    assert!(r.stdout().starts_with("running:"), "{}", r.stdout());
    let (code, j) = status(&dir, &sock, &[]);
    assert_eq!((code, j["health"].as_str()), (0, Some("running")));
    assert_eq!(j["qemu_pid"], guest.pid());

    // An operator's pause is not a failure: OCF success, health `paused`.
    guest.qmp.execute("stop", None).unwrap();
    let (code, j) = status(&dir, &sock, &["--dir", &caps]);
    assert_eq!((code, j["health"].as_str()), (0, Some("paused")), "{j:#}");
    assert_eq!(j["run_state"], "paused");

    // A pause that coroner made itself (`capture --stop`) is the failover-safe freeze.
    guest.qmp.execute("cont", None).unwrap();
    coroner(
        dir.path(),
        &[
            "capture",
            "--qmp",
            &sock,
            "--stop",
            "-o",
            "captures/vm.core.zst",
        ],
    )
    .expect_code(0);
    let (code, j) = status(&dir, &sock, &["--dir", &caps]);
    assert_eq!(
        (code, j["health"].as_str()),
        (1, Some("frozen-captured")),
        "{j:#}"
    );
    assert!(j["capture"].as_str().unwrap().ends_with("vm.core.zst"));
    assert!(
        j["detail"].as_str().unwrap().contains("capture --stop"),
        "{j:#}"
    );
    // Without the capture directory, the same pause is only an operator's.
    let (code, j) = status(&dir, &sock, &[]);
    assert_eq!((code, j["health"].as_str()), (0, Some("paused")), "{j:#}");
    // status changes nothing.
    assert_eq!(guest.qmp.run_state().unwrap(), "paused");

    // A new freeze (a panic) is not the one captured.
    guest.qmp.execute("cont", None).unwrap();
    guest.freeze(Scenario::Panic).unwrap();
    let (code, j) = status(&dir, &sock, &["--dir", &caps]);
    assert_eq!((code, j["health"].as_str()), (1, Some("frozen")), "{j:#}");
    assert_eq!(j["run_state"], "guest-panicked");

    // qemu killed: its socket file stays, nobody listens.
    let pid = guest.pid();
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    let start = Instant::now();
    loop {
        let (code, j) = status(&dir, &sock, &[]);
        if code == 7 {
            assert_eq!(j["health"], "gone");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{j:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let missing = dir.path().join("no-such.sock");
    let r = coroner(dir.path(), &["status", "--qmp", missing.to_str().unwrap()]);
    r.expect_code(7);
}

/// A path that exists but is no socket is a mistake on the command line (exit 2), not a
/// qemu that went away (7, what a missing socket means).
#[test]
fn status_of_a_path_that_is_not_a_socket_is_a_usage_error() {
    let dir = Dir::new();
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, "x").unwrap();
    for path in [file.to_str().unwrap(), "/etc/passwd"] {
        let r = coroner(dir.path(), &["status", "--qmp", path, "--json"]);
        r.expect_code(2);
        assert_eq!(r.json()["error"]["class"], "usage", "{}", r.stdout());
        assert!(r.stderr().contains("not a unix socket"), "{}", r.stderr());
    }
}
