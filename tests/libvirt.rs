//! `capture --domain` on a real libvirt domain (Debian's libvirt 9.0, daemons started by
//! `samples/kit/libvirt.sh`): taint-free, through libvirt's own memory-only dump into a
//! FIFO, byte-identical to `virsh dump --memory-only` of the same frozen domain, and
//! never changing the domain.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use coroner_samples::libvirt_guest::{self, LibvirtGuest, LibvirtOptions};

use crate::util::{
    assert_no_output, being_written, coroner, coroner_env, output_files, signal, spawn_coroner,
    zstd_decompress, Dir,
};

/// True when process `parent` has a child whose command line has the word `word`.
fn has_child_running(parent: u32, word: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let p = e.path();
        let ppid = std::fs::read_to_string(p.join("stat")).ok().and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
        });
        ppid == Some(parent)
            && std::fs::read(p.join("cmdline"))
                .unwrap_or_default()
                .split(|&b| b == 0)
                .any(|a| a == word.as_bytes())
    })
}

#[test]
fn capture_of_a_libvirt_domain_is_libvirts_own_dump_and_leaves_it_untainted() {
    if !libvirt_guest::available_or_skip(
        "capture_of_a_libvirt_domain_is_libvirts_own_dump_and_leaves_it_untainted",
    ) || !coroner_samples::s3_server::available_or_skip(
        "capture_of_a_libvirt_domain_is_libvirts_own_dump_and_leaves_it_untainted",
    ) {
        return;
    }
    let _libvirt = libvirt_guest::shared();
    let server = coroner_samples::s3_server::S3Server::start("doms").unwrap();
    let dir = Dir::new();
    let guest = LibvirtGuest::boot(512).unwrap();
    let name = guest.name.clone();
    let d = dir.path().display().to_string();
    let status = |code: i32, health: &str| {
        let r = coroner(
            dir.path(),
            &["status", "--domain", &name, "--dir", &d, "--json"],
        );
        r.expect_code(code);
        let j = r.json();
        assert_eq!(j["health"], health, "{j:#}");
        j
    };
    status(0, "running");
    // The Pacemaker wrapper, through libvirt (no QMP socket for the domain), with a
    // stand-in for VirtualDomain that logs its actions.
    let pcmk = dir.join("pcmk");
    std::fs::create_dir_all(&pcmk).unwrap();
    std::fs::write(
        dir.join("domain.xml"),
        format!("<domain type='qemu'>\n  <name>{name}</name>\n</domain>\n"),
    )
    .unwrap();
    let ra = dir.join("VirtualDomain");
    std::fs::write(&ra, "#!/bin/sh\necho \"$1\" >> ra.log\nexit 0\n").unwrap();
    std::fs::set_permissions(&ra, std::fs::Permissions::from_mode(0o755)).unwrap();
    let wrapper = |action: &str| {
        let out = Command::new(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/pacemaker/VirtualDomain-coroner"),
        )
        .arg(action)
        .env("CORONER", env!("CARGO_BIN_EXE_coroner"))
        .env("CORONER_QMP_DIR", dir.join("no-sockets"))
        .env("CORONER_DIR", &pcmk)
        .env("CORONER_RA", &ra)
        .env("OCF_RESKEY_config", dir.join("domain.xml"))
        .current_dir(dir.path())
        .output()
        .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(wrapper("monitor").0, 0);
    // An operator's pause is not a failure.
    libvirt_guest::virsh(&["suspend", &name]).unwrap();
    let j = status(0, "paused");
    assert!(
        j["detail"].as_str().unwrap().contains("paused (user)"),
        "{j:#}"
    );
    let (code, err) = wrapper("monitor");
    assert_eq!(code, 0, "an operator's pause failed the resource: {err}");
    libvirt_guest::virsh(&["resume", &name]).unwrap();
    let r = coroner(
        dir.path(),
        &["status", "--domain", "no-such-domain-coroner", "--json"],
    );
    r.expect_code(7);
    assert_eq!(r.json()["health"], "gone");

    // A running domain is refused and left running: no dump, no pause.
    let r = coroner(
        dir.path(),
        &["capture", "--domain", &name, "-o", "running.core.zst"],
    );
    r.expect_code(5);
    assert!(r.stderr().contains("running"), "{}", r.stderr());
    assert!(guest.state().unwrap().starts_with("running"));
    assert_no_output(dir.path(), "running.core.zst");

    // --stop pauses it as an operator would ("paused (user)") and records that coroner
    // froze it.
    let r = coroner(
        dir.path(),
        &[
            "capture",
            "--domain",
            &name,
            "--stop",
            "-o",
            "stopped.core.zst",
            "--json",
        ],
    );
    r.expect_code(0);
    assert_eq!(r.json()["stopped_by_coroner"], true);
    assert_eq!(guest.state().unwrap(), "paused (user)");
    // coroner's own freeze, on record: failover-safe.
    status(1, "frozen-captured");
    libvirt_guest::virsh(&["resume", &name]).unwrap();

    // --wait-frozen: a running domain is waited for (woken by libvirt's lifecycle
    // events), and refused when it does not freeze in time.
    let r = coroner(
        dir.path(),
        &[
            "capture",
            "--domain",
            &name,
            "--wait-frozen",
            "1",
            "-o",
            "w1.core.zst",
        ],
    );
    r.expect_code(5);
    assert_no_output(dir.path(), "w1.core.zst");
    let child = spawn_coroner(
        dir.path(),
        &[
            "capture",
            "--domain",
            &name,
            "--wait-frozen",
            "300",
            "-o",
            "waited.core.zst",
            "--json",
        ],
    );
    // Suspended once coroner waits for libvirt's events (its `virsh event` runs).
    let t = Instant::now();
    while !has_child_running(child.id(), "event") {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "coroner never waited"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    libvirt_guest::virsh(&["suspend", &name]).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["run_state"], "paused", "{j:#}");
    assert_eq!(j["stopped_by_coroner"], false, "{j:#}");
    let i = coroner(dir.path(), &["inspect", "waited.core.zst", "--json"]);
    i.expect_code(0);
    assert_eq!(
        i.json()["metadata"]["capture"]["libvirt"]["events_watched"],
        true
    );
    libvirt_guest::virsh(&["resume", &name]).unwrap();

    // `watch --domain` follows libvirt's lifecycle events and captures the panic, here
    // into a bucket, with its receipt in a local state directory.
    let wdir = dir.join("watched");
    let mut w = crate::watch::Watch::start_env(
        dir.path(),
        &[
            "--domain",
            &name,
            "--dir",
            "s3://doms/fleet/",
            "--state-dir",
            wdir.to_str().unwrap(),
            "--host",
            "h1",
            "--once",
        ],
        &server.env(),
    );
    let first = w.expect("watching", None, Duration::from_secs(60));
    assert_eq!(first["health"], "running", "{first:#}");

    // A panicked domain, left "crashed (panicked)" by <on_crash>preserve.
    let before = guest.panic().unwrap();
    assert_eq!(before, "crashed (panicked)");
    let captured = w.expect("captured", None, Duration::from_secs(180));
    assert_eq!(captured["reason"], "guest-panicked", "{captured:#}");
    assert_eq!(w.wait(Duration::from_secs(60)), 0);
    let watched = captured["capture"].as_str().unwrap().to_string();
    assert!(
        watched.starts_with(&format!("s3://doms/fleet/h1/{name}-")),
        "{watched}"
    );
    assert_eq!(
        std::fs::read_dir(&wdir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".receipt.json"))
            .count(),
        1
    );
    let a = coroner_env(dir.path(), &["analyze", &watched, "--json"], &server.env());
    a.expect_code(0);
    // The watcher signed it: triage of the bucket has nothing left to sign.
    let t = coroner_env(
        dir.path(),
        &["triage", "s3://doms/fleet/", "--json"],
        &server.env(),
    );
    t.expect_code(0);
    assert_eq!(
        (
            t.json()["captures"].as_u64(),
            t.json()["signed_now"].as_u64()
        ),
        (Some(1), Some(0)),
        "{}",
        t.stdout()
    );
    assert_eq!(
        a.json()["verdict"],
        "guest-panicked: kernel panic: sysrq triggered crash"
    );
    // The test's own capture directory has no capture of this freeze yet.
    status(1, "frozen");
    // The wrapper fails the frozen resource, and captures it before stop.
    let (code, err) = wrapper("monitor");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("frozen"), "{err}");
    let (code, err) = wrapper("stop");
    assert_eq!(code, 0, "{err}");
    let caps: Vec<String> = std::fs::read_dir(&pcmk)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        caps.len() == 1 && caps[0].ends_with("-before-stop.core.zst"),
        "{caps:?} {err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("ra.log")).unwrap(),
        "monitor\nmonitor\nmonitor\nstop\n"
    );
    assert_eq!(
        guest.state().unwrap(),
        before,
        "the wrapper's capture changed the domain"
    );
    let r = coroner(
        dir.path(),
        &["capture", "--domain", &name, "-o", "dom.core.zst", "--json"],
    );
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["method"], "libvirt");
    assert_eq!(j["run_state"], "guest-panicked");
    assert_eq!(
        guest.state().unwrap(),
        before,
        "the capture changed the domain"
    );
    let j = status(1, "frozen-captured");
    assert!(
        j["capture"].as_str().unwrap().ends_with("dom.core.zst"),
        "{j:#}"
    );
    // Only the container is left: the private FIFO directory is gone.
    assert_eq!(
        output_files(dir.path(), "dom.core.zst"),
        ["dom.core.zst"],
        "{:?}",
        std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect::<Vec<_>>()
    );

    // Byte for byte libvirt's own dump of the same frozen domain.
    guest.dump(&dir.join("virsh.elf")).unwrap();
    zstd_decompress(dir.path(), "dom.core.zst", "dom.elf");
    assert!(
        std::fs::read(dir.join("dom.elf")).unwrap()
            == std::fs::read(dir.join("virsh.elf")).unwrap(),
        "the capture differs from virsh dump --memory-only of the same domain"
    );

    // --dump-format kdump: libvirt has qemu write its kdump format (zero pages left out)
    // into the FIFO, converted as it arrives into the very ELF core that `compress`
    // makes of libvirt's kdump file of the same domain.
    let r = coroner(
        dir.path(),
        &[
            "capture",
            "--domain",
            &name,
            "--dump-format",
            "kdump",
            "-o",
            "domk.core.zst",
        ],
    );
    r.expect_code(0);
    let i = coroner(dir.path(), &["inspect", "domk.core.zst", "--json"]);
    i.expect_code(0);
    let format = i.json()["metadata"]["capture"]["dump_format"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(format.starts_with("kdump-"), "{format}");
    guest.dump_as(&dir.join("virsh.kdump"), &format).unwrap();
    coroner(
        dir.path(),
        &["compress", "virsh.kdump", "-o", "virshk.core.zst"],
    )
    .expect_code(0);
    zstd_decompress(dir.path(), "domk.core.zst", "domk.elf");
    zstd_decompress(dir.path(), "virshk.core.zst", "virshk.elf");
    assert!(
        std::fs::read(dir.join("domk.elf")).unwrap()
            == std::fs::read(dir.join("virshk.elf")).unwrap(),
        "the kdump path differs from compress of virsh dump --format {format}"
    );
    assert_eq!(
        coroner(dir.path(), &["dmesg", "domk.core.zst"]).stdout(),
        coroner(dir.path(), &["dmesg", "dom.core.zst"]).stdout()
    );
    for f in [
        "domk.elf",
        "virshk.elf",
        "virsh.kdump",
        "virshk.core.zst",
        "domk.core.zst",
    ] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }

    // Into a bucket: libvirt's FIFO goes in $TMPDIR (gone after), the object holds the
    // same ELF.
    {
        let tmp = dir.join("tmpdir");
        std::fs::create_dir(&tmp).unwrap();
        let mut env = server.env();
        env.push(("TMPDIR", tmp.display().to_string()));
        coroner_env(
            dir.path(),
            &[
                "capture",
                "--domain",
                &name,
                "-o",
                "s3://doms/h/dom.core.zst",
            ],
            &env,
        )
        .expect_code(0);
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "the FIFO stayed"
        );
        let got = coroner_env(
            dir.path(),
            &["export", "s3://doms/h/dom.core.zst", "-o", "domS.elf"],
            &env,
        );
        got.expect_code(0);
        assert!(
            std::fs::read(dir.join("domS.elf")).unwrap()
                == std::fs::read(dir.join("dom.elf")).unwrap(),
            "the uploaded capture differs from the local one"
        );
        std::fs::remove_file(dir.join("domS.elf")).unwrap();
        assert_eq!(guest.state().unwrap(), before);
    }

    // The analyses read it as a QMP capture; the record holds the domain and its log.
    let a = coroner(dir.path(), &["analyze", "dom.core.zst", "--json"]);
    a.expect_code(0);
    assert_eq!(
        a.json()["verdict"],
        "guest-panicked: kernel panic: sysrq triggered crash"
    );
    let i = coroner(dir.path(), &["inspect", "dom.core.zst", "--json"]);
    i.expect_code(0);
    let c = &i.json()["metadata"]["capture"];
    assert_eq!(c["libvirt"]["domain"], name.as_str());
    assert_eq!(c["libvirt"]["state_before"], "crashed (panicked)");
    assert_eq!(c["libvirt"]["state_after"], "crashed (panicked)");
    assert!(
        c["libvirt"]["xml"]
            .as_str()
            .unwrap()
            .contains("<panic model='isa'"),
        "{c:#}"
    );
    assert_eq!(
        c["qemu_log"]["source"],
        guest.log_path().display().to_string().as_str()
    );
    assert!(c["qemu_version"]["major"].as_u64().unwrap() >= 7, "{c:#}");
    let serial = guest.serial_log();
    let d = coroner(dir.path(), &["dmesg", "dom.core.zst"]);
    d.expect_code(0);
    assert!(serial.contains("sysrq: Trigger a crash"), "{serial}");
    assert!(d.stdout().contains("sysrq: Trigger a crash"));

    // Ctrl-C while libvirt streams (coroner held with SIGSTOP, so libvirt's job waits on
    // a full FIFO): coroner stops reading, libvirt's job ends on the closed pipe, no file
    // and no FIFO directory stay, and the domain is as it was and can be captured again.
    let idir = dir.join("interrupted");
    std::fs::create_dir(&idir).unwrap();
    let child = spawn_coroner(&idir, &["capture", "--domain", &name, "-o", "int.core.zst"]);
    let t = Instant::now();
    while !being_written(&idir, "int.core.zst") {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "capture never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(child.id(), "-STOP");
    let t = Instant::now();
    loop {
        let job = libvirt_guest::virsh(&["domjobinfo", &name]).unwrap_or_default();
        if job.contains("Job type:") && !job.contains("None") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "libvirt's dump job never started: {job}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(child.id(), "-INT");
    signal(child.id(), "-CONT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("libvirt's dump job ended"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&idir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_eq!(
        guest.state().unwrap(),
        before,
        "the interrupt changed the domain"
    );
    coroner(
        &idir,
        &["capture", "--domain", &name, "-o", "again.core.zst"],
    )
    .expect_code(0);

    // Nothing coroner did tainted the domain.
    let log = std::fs::read_to_string(guest.log_path()).unwrap();
    assert!(!log.contains("tainted"), "{log}");
}

/// libvirtd 9.0 (Debian 12) crashes when qemu reports DUMP_COMPLETED for a dump it did not
/// start: `capture --qmp` through a second monitor of a libvirt domain is refused, naming
/// `--domain`, and libvirtd and the domain are left as they were.
#[test]
fn capture_over_a_second_monitor_of_a_libvirt_domain_is_refused() {
    if !libvirt_guest::available_or_skip(
        "capture_over_a_second_monitor_of_a_libvirt_domain_is_refused",
    ) {
        return;
    }
    let _libvirt = libvirt_guest::shared();
    let dir = Dir::new();
    let guest = LibvirtGuest::boot_with(&LibvirtOptions {
        mem_mib: 256,
        qmp: true,
        ..LibvirtOptions::default()
    })
    .unwrap();
    libvirt_guest::virsh(&["suspend", &guest.name]).unwrap();
    let sock = guest.qmp_socket().display().to_string();
    let r = coroner(
        dir.path(),
        &["capture", "--qmp", &sock, "-o", "lv.core.zst"],
    );
    r.expect_code(2);
    assert!(
        r.stderr().contains(&format!("--domain {}", guest.name)),
        "{}",
        r.stderr()
    );
    assert_no_output(dir.path(), "lv.core.zst");
    // libvirtd still answers, and the domain is as it was.
    assert_eq!(guest.state().unwrap(), "paused (user)");
}

/// `watch --domain` captures a watchdog pause (the guest opens the i6300esb and stops
/// petting it, libvirt shows "paused (watchdog)") after libvirtd restarted under it.
#[test]
fn watch_domain_captures_a_watchdog_pause() {
    if !libvirt_guest::available_or_skip("watch_domain_captures_a_watchdog_pause") {
        return;
    }
    // libvirtd is restarted here: no other test may talk to it meanwhile.
    let _libvirt = libvirt_guest::exclusive();
    let dir = Dir::new();
    let guest = LibvirtGuest::boot_with(&LibvirtOptions {
        mem_mib: 256,
        watchdog: true,
        append: "coroner.run=watchdog coroner.run_after=15".into(),
        ..LibvirtOptions::default()
    })
    .unwrap();
    // --poll 600: the pause is seen through libvirt's events or not at all.
    let mut w = crate::watch::Watch::start(
        dir.path(),
        &[
            "--domain",
            &guest.name,
            "--dir",
            "caps",
            "--once",
            "--poll",
            "600",
        ],
    );
    w.expect("watching", None, Duration::from_secs(60));
    // libvirtd restarts (a package upgrade) before the watchdog fires: the watcher's
    // event stream ends, and it starts it again.
    libvirt_guest::restart_libvirtd().unwrap();
    assert!(
        guest.state().unwrap().starts_with("running"),
        "the watchdog fired before libvirtd was back: raise coroner.run_after"
    );
    let done = w.expect("captured", None, Duration::from_secs(180));
    assert_eq!(done["reason"], "watchdog", "{done}");
    assert_eq!(w.wait(Duration::from_secs(60)), 0);
    assert!(
        w.stderr().contains("virsh event had ended"),
        "{}",
        w.stderr()
    );
    assert_eq!(guest.state().unwrap(), "paused (watchdog)");
    let cap = done["capture"].as_str().unwrap().to_string();
    let a = coroner(dir.path(), &["analyze", &cap, "--json"]);
    a.expect_code(0);
    assert_eq!(a.json()["run_state"], "watchdog");
    let i = coroner(dir.path(), &["inspect", &cap, "--json"]);
    i.expect_code(0);
    assert_eq!(
        i.json()["metadata"]["capture"]["libvirt"]["state_before"],
        "paused (watchdog)"
    );
}

/// `watch --all-domains --monitor` follows the connection's domains as they come and go:
/// a domain started after the watcher is found, its I/O-error pause ("paused (I/O
/// error)", a disk on a full file system with `error_policy='stop'`) is captured with
/// libvirt's events and the monitor's `info registers -a` in the record, and its end is
/// announced. Only `io-error` is a trigger, so the other tests' domains are left alone.
#[test]
fn watch_all_domains_captures_an_io_error_pause_of_a_domain_that_came_later() {
    if !libvirt_guest::available_or_skip(
        "watch_all_domains_captures_an_io_error_pause_of_a_domain_that_came_later",
    ) {
        return;
    }
    let _libvirt = libvirt_guest::shared();
    let dir = Dir::new();
    // --poll 600: the pause is seen through libvirt's events or not at all.
    let mut w = crate::watch::Watch::start(
        dir.path(),
        &[
            "--all-domains",
            "--monitor",
            "--on",
            "io-error,memory-failure",
            "--poll",
            "600",
            "--dir",
            "caps",
        ],
    );
    let guest = LibvirtGuest::boot_with(&LibvirtOptions {
        mem_mib: 256,
        iodisk: true,
        append: "coroner.run=io-error coroner.run_after=6".into(),
        ..LibvirtOptions::default()
    })
    .unwrap();
    let name = guest.name.clone();
    let name = name.as_str();
    // Found as soon as libvirt starts it ("paused (starting up)") or once it runs.
    let first = w.expect("watching", Some(name), Duration::from_secs(60));
    assert!(
        first["run_state"] == "prelaunch" || first["run_state"] == "running",
        "{first:#}"
    );
    let done = w.expect("captured", Some(name), Duration::from_secs(180));
    assert_eq!(done["reason"], "io-error", "{done:#}");
    assert_eq!(guest.state().unwrap(), "paused (I/O error)");
    let serial = guest.serial_log();
    assert!(serial.contains("running io-error"), "{serial}");
    let cap = done["capture"].as_str().unwrap().to_string();
    let a = coroner(dir.path(), &["analyze", &cap, "--json"]);
    a.expect_code(0);
    assert_eq!(a.json()["run_state"], "io-error");
    let i = coroner(dir.path(), &["inspect", &cap, "--json"]);
    i.expect_code(0);
    let c = &i.json()["metadata"]["capture"];
    assert_eq!(c["libvirt"]["state_before"], "paused (I/O error)", "{c:#}");
    assert_eq!(c["libvirt"]["path"], "dump+monitor");
    // The events libvirt sent: the pause, and the disk error that caused it.
    let events = c["libvirt"]["events"].as_array().unwrap();
    let has = |kind: &str, text: &str| {
        events
            .iter()
            .any(|e| e["kind"] == kind && e["detail"].as_str().unwrap().contains(text))
    };
    assert!(has("lifecycle", "I/O Error"), "{events:#?}");
    assert!(has("io-error-reason", "enospc"), "{events:#?}");
    // What only the monitor gives, and the taint that costs.
    assert!(
        c["info_registers"].as_str().unwrap().contains("EFER="),
        "{c:#}"
    );
    assert!(c["info_mtree"].as_str().unwrap().contains("FlatView"));
    let log = std::fs::read_to_string(guest.log_path()).unwrap();
    assert!(log.contains("tainted"), "{log}");
    // The domain goes away: announced, and the watcher waits for more.
    drop(guest);
    let gone = w.expect("gone", Some(name), Duration::from_secs(60));
    assert_eq!(gone["health"], "gone");

    // Another domain comes; a machine check makes its guest panic, and libvirt's
    // memory-failure event before the freeze makes it a trigger (a panic alone is not
    // one here). `mce` ties the guest's record to that event.
    let second = LibvirtGuest::boot(256).unwrap();
    let name = second.name.clone();
    w.expect("watching", Some(&name), Duration::from_secs(60));
    assert_eq!(second.machine_check().unwrap(), "crashed (panicked)");
    let done = w.expect("captured", Some(&name), Duration::from_secs(180));
    assert_eq!(done["reason"], "memory-failure", "{done:#}");
    let cap = done["capture"].as_str().unwrap().to_string();
    let m = coroner(dir.path(), &["mce", &cap, "--json"]);
    m.expect_code(0);
    let j = m.json();
    assert!(
        j.to_string()
            .contains("qemu injected it: MEMORY_FAILURE recipient=guest"),
        "the capture does not tie the record to libvirt's event: {j:#}"
    );
    drop(second);
    w.expect("gone", Some(&name), Duration::from_secs(60));
    w.signal("-TERM");
    assert_eq!(w.wait(Duration::from_secs(60)), 0);
}

/// A KVM emulation failure in a libvirt domain (a bare-metal guest of the kit under
/// `type='kvm'`): libvirt shows "paused (unknown)", `watch --domain` captures it as
/// `internal-error`, and `coroner exit` explains it from libvirt's qemu log and the
/// dump, saying that without the monitor's memory map the owner comes from the standard
/// PC layout.
#[test]
fn watch_domain_captures_a_kvm_internal_error_and_exit_explains_it() {
    if !libvirt_guest::available_or_skip(
        "watch_domain_captures_a_kvm_internal_error_and_exit_explains_it",
    ) || !coroner_samples::baremetal::kvm_or_skip(
        "watch_domain_captures_a_kvm_internal_error_and_exit_explains_it",
    ) {
        return;
    }
    let _libvirt = libvirt_guest::shared();
    let dir = Dir::new();
    let variant = coroner_samples::baremetal::Variant::RealMode;
    let guest = LibvirtGuest::boot_bare(variant).unwrap();
    let mut w = crate::watch::Watch::start(
        dir.path(),
        &["--domain", &guest.name, "--dir", "caps", "--once"],
    );
    let done = w.expect("captured", None, Duration::from_secs(180));
    assert_eq!(done["reason"], "internal-error", "{done:#}");
    assert_eq!(w.wait(Duration::from_secs(60)), 0);
    assert_eq!(guest.state().unwrap(), "paused (unknown)");
    let cap = done["capture"].as_str().unwrap().to_string();
    let r = coroner(dir.path(), &["exit", &cap, "--json"]);
    r.expect_code(0);
    let j = r.json();
    crate::exit::check_instruction(&j, variant, "real mode");
    assert_eq!(j["run_state"], "internal-error");
    let verdict = j["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with("internal-error: KVM emulation failure: `addps"),
        "{verdict}"
    );
    // No `info mtree -f` without --monitor: the owner is named from the standard PC
    // layout, and said to be.
    assert!(j.to_string().contains("standard PC layout"), "{j:#}");
    let log = std::fs::read_to_string(guest.log_path()).unwrap();
    assert!(!log.contains("tainted"), "{log}");
}
