//! The HA integration files in `contrib/`: the systemd unit verifies and its command line
//! watches and captures (in `tests/watch.rs`), and the Pacemaker wrapper fails a frozen
//! guest's monitor and captures it before `stop`, against real qemu. Pacemaker's own
//! VirtualDomain agent is not installed here: a script stands in for it and records
//! how it was called.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use coroner_samples::baremetal::{BareGuest, Variant};
use coroner_samples::kit;

use crate::util::{qemu_without_machine, Dir};

fn contrib(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(path)
}

/// The arguments of the unit's `ExecStart=coroner watch ...`, its paths moved to
/// `sockets` and `captures`.
pub fn unit_watch_args(sockets: &Path, captures: &Path) -> Vec<String> {
    let unit = std::fs::read_to_string(contrib("systemd/coroner-watch.service")).unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&words[..2], ["/usr/local/bin/coroner", "watch"], "{line}");
    words[2..]
        .iter()
        .map(|w| match *w {
            "/run/coroner" => sockets.display().to_string(),
            "/var/lib/coroner" => captures.display().to_string(),
            w => w.to_string(),
        })
        .collect()
}

#[test]
fn systemd_unit_verifies() {
    let have = Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "systemd-analyze missing under CI=true: samples/kit/ensure.sh installs it"
        );
        eprintln!("skipping systemd_unit_verifies: no systemd-analyze");
        return;
    }
    let dir = Dir::new();
    for name in ["coroner-watch.service", "coroner-watch-libvirt.service"] {
        let unit = std::fs::read_to_string(contrib(&format!("systemd/{name}")))
            .unwrap()
            .replace("/usr/local/bin/coroner", env!("CARGO_BIN_EXE_coroner"));
        let path = dir.join(name);
        std::fs::write(&path, unit).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(!stderr.contains(name), "{stderr}");
    }
    // The libvirt unit's command line is one coroner accepts.
    let unit = std::fs::read_to_string(contrib("systemd/coroner-watch-libvirt.service")).unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/coroner "))
        .expect("an ExecStart line");
    let mut args: Vec<&str> = line.split_whitespace().collect();
    args.push("--help");
    let out = Command::new(env!("CARGO_BIN_EXE_coroner"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wrapper(dir: &Path, sockets: &Path, action: &str) -> (i32, String) {
    let out = Command::new(contrib("pacemaker/VirtualDomain-coroner"))
        .arg(action)
        .env("CORONER", env!("CARGO_BIN_EXE_coroner"))
        .env("CORONER_QMP_DIR", sockets)
        .env("CORONER_DIR", dir.join("captures"))
        .env("CORONER_RA", dir.join("VirtualDomain"))
        .env("OCF_RESKEY_config", dir.join("vm1.xml"))
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pacemaker_wrapper_fails_frozen_guests_and_captures_before_stop() {
    if !kit::available_or_skip("pacemaker_wrapper_fails_frozen_guests_and_captures_before_stop") {
        return;
    }
    let dir = Dir::new();
    let sockets = dir.join("sockets");
    std::fs::create_dir_all(&sockets).unwrap();
    std::fs::create_dir_all(dir.join("captures")).unwrap();
    std::fs::write(
        dir.join("vm1.xml"),
        "<domain type='kvm'>\n  <name>vm1</name>\n</domain>\n",
    )
    .unwrap();
    let ra = dir.join("VirtualDomain");
    std::fs::write(&ra, "#!/bin/sh\necho \"$1\" >> ra.log\nexit 0\n").unwrap();
    std::fs::set_permissions(&ra, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = sockets.join("vm1.qmp");
    let ra_log = || std::fs::read_to_string(dir.join("ra.log")).unwrap_or_default();

    // A running qemu: the agent's answer stands.
    let mut running = qemu_without_machine(&sock);
    let (code, err) = wrapper(dir.path(), &sockets, "monitor");
    assert_eq!(code, 0, "{err}");
    // Suspended by an operator (`virsh suspend`, QMP `stop`): not a failure, the resource
    // stays up (as VirtualDomain treats a paused domain).
    {
        let address = coroner_capture::QmpAddress::Unix(sock.clone());
        let mut qmp = coroner_capture::Qmp::connect(&address, Duration::from_secs(10)).unwrap();
        qmp.execute("stop", None).unwrap();
        assert_eq!(qmp.run_state().unwrap(), "paused");
    }
    let (code, err) = wrapper(dir.path(), &sockets, "monitor");
    assert_eq!(code, 0, "a suspended guest failed the resource: {err}");
    assert!(!err.contains("frozen"), "{err}");
    running.kill().unwrap();
    running.wait().unwrap();
    std::fs::remove_file(&sock).unwrap();

    // A guest frozen by a panic: the monitor fails, stop captures it first.
    let extra = vec![
        "-qmp".to_string(),
        format!("unix:{},server=on,wait=off", sock.display()),
    ];
    let mut guest = BareGuest::boot_with(Variant::Pvpanic, 16, &extra).unwrap();
    guest
        .wait_for_state("guest-panicked", Duration::from_secs(60))
        .unwrap();
    let (code, err) = wrapper(dir.path(), &sockets, "monitor");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("frozen"), "{err}");
    let (code, err) = wrapper(dir.path(), &sockets, "stop");
    assert_eq!(code, 0, "{err}");
    let caps: Vec<PathBuf> = std::fs::read_dir(dir.join("captures"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(caps.len(), 1, "{caps:?} {err}");
    let name = caps[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("vm1-") && name.ends_with("-before-stop.core.zst"),
        "{name}"
    );
    assert_eq!(ra_log(), "monitor\nmonitor\nmonitor\nstop\n");
    // Already captured: a second stop passes straight through.
    let (code, err) = wrapper(dir.path(), &sockets, "stop");
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_dir(dir.join("captures")).unwrap().count(), 1);
    assert_eq!(guest.qmp.run_state().unwrap(), "guest-panicked");
}
