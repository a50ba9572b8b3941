//! kdump-compressed dumps of one frozen guest, made by the real tools: qemu's own
//! `kdump-zlib` (makedumpfile's flattened layout) written to a file and through a pipe,
//! `makedumpfile -R`'s plain layout of it; and what no installed tool writes here (lzo,
//! snappy and zstd pages, pages left out by a dump level), written to the documented
//! layout from qemu's ELF dump of the same guest. Every analysis answers on each as on
//! the ELF dump; `compress` turns one into a container that answers the same; a damaged
//! one is refused with a clear error.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::process::Command;

use coroner_formats::kdump::{COMPRESSED_LZO, COMPRESSED_SNAPPY, COMPRESSED_ZSTD};
use coroner_formats::kdump_builder::KdumpBuilder;
use coroner_samples::kit::{self, Guest, GuestOptions, Scenario};

use crate::slim::same_answer;
use crate::util::{coroner, zstd_decompress, Dir};

/// BLAKE3 of a file by the standard `b3sum`, not by coroner.
fn blake3_of_file(path: &std::path::Path) -> String {
    let out = Command::new("b3sum")
        .arg("--no-names")
        .arg(path)
        .output()
        .expect("b3sum (installed by samples/kit/ensure.sh)");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// qemu's `dump-guest-memory` in `format` through a pipe (`getfd`), drained into `out`.
/// Returns when qemu has closed the pipe (its dump state cleaned up: see `Guest::dump`).
fn dump_through_pipe(guest: &mut Guest, out: &std::path::Path, format: &str) {
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    let since = guest.qmp.events().len();
    guest
        .qmp
        .execute_with_fd("getfd", serde_json::json!({ "fdname": "kd" }), wr.as_fd())
        .unwrap();
    drop(wr);
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        File::from(rd).read_to_end(&mut bytes).map(|_| bytes)
    });
    guest
        .qmp
        .execute(
            "dump-guest-memory",
            Some(serde_json::json!({
                "paging": false, "protocol": "fd:kd", "detach": true, "format": format,
            })),
        )
        .unwrap();
    guest.wait_dump_done(since).unwrap();
    std::fs::write(out, reader.join().unwrap().unwrap()).unwrap();
}

#[test]
fn kdump_files_of_a_frozen_guest_answer_like_its_elf_dump() {
    if !kit::available_or_skip("kdump_files_of_a_frozen_guest_answer_like_its_elf_dump") {
        return;
    }
    let dir = Dir::new();
    let p = |name: &str| dir.path().join(name);
    let mut guest = Guest::boot(&GuestOptions::default()).unwrap();
    guest.freeze(Scenario::Panic).unwrap();
    guest.dump(&p("vm.elf"), "elf").unwrap();
    guest.dump(&p("flat.kdump"), "kdump-zlib").unwrap();
    dump_through_pipe(&mut guest, &p("pipe.kdump"), "kdump-zlib");
    // coroner's own capture through qemu's kdump stream, converted as it arrives.
    let socket = guest.tool_socket().display().to_string();
    let cap = coroner(
        dir.path(),
        &[
            "capture",
            "--dump-format",
            "kdump",
            "--qmp",
            &socket,
            "-o",
            "kcap.core.zst",
            "--json",
        ],
    );
    cap.expect_code(0);
    assert_eq!(cap.json()["dump_format"], "kdump-zlib");
    let cap = coroner(
        dir.path(),
        &["capture", "--qmp", &socket, "-o", "ecap.core.zst", "--json"],
    );
    cap.expect_code(0);
    assert_eq!(cap.json()["dump_format"], "elf");
    assert_eq!(
        guest.qmp.run_state().unwrap(),
        Scenario::Panic.run_state(),
        "the capture changed the run state"
    );
    drop(guest);

    // makedumpfile's own rearrangement of the flattened stream into the plain layout.
    let status = Command::new("makedumpfile")
        .arg("-R")
        .arg(p("plain.kdump"))
        .stdin(File::open(p("flat.kdump")).unwrap())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("makedumpfile (installed by samples/kit/ensure.sh)");
    assert!(status.success());

    let source = coroner_formats::open(&p("vm.elf")).unwrap();
    for (name, b) in [
        (
            "lzo.kdump",
            KdumpBuilder {
                compression: COMPRESSED_LZO,
                ..KdumpBuilder::default()
            },
        ),
        (
            "snappy.kdump",
            KdumpBuilder {
                compression: COMPRESSED_SNAPPY,
                flattened: true,
                ..KdumpBuilder::default()
            },
        ),
        (
            "zstd.kdump",
            KdumpBuilder {
                compression: COMPRESSED_ZSTD,
                ..KdumpBuilder::default()
            },
        ),
        (
            "no-zero-pages.kdump",
            KdumpBuilder {
                compression: COMPRESSED_ZSTD,
                exclude_zero_pages: true,
                ..KdumpBuilder::default()
            },
        ),
    ] {
        std::fs::write(p(name), b.build(&source).unwrap()).unwrap();
    }
    drop(source);

    let analyze = |file: &str| {
        let r = coroner(dir.path(), &["analyze", file, "--json"]);
        r.expect_code(0);
        r.json()
    };
    let inspect = |file: &str| {
        let r = coroner(dir.path(), &["inspect", file, "--json"]);
        r.expect_code(0);
        r.json()
    };
    for (file, format, layout, compression) in [
        ("flat.kdump", "kdump-flattened", "flattened", "zlib"),
        ("pipe.kdump", "kdump-flattened", "flattened", "zlib"),
        ("plain.kdump", "kdump", "plain", "zlib"),
        ("lzo.kdump", "kdump", "plain", "lzo"),
        ("snappy.kdump", "kdump-flattened", "flattened", "snappy"),
        ("zstd.kdump", "kdump", "plain", "zstd"),
    ] {
        let i = inspect(file);
        assert_eq!(i["format"], format, "{file}: {i:#}");
        assert_eq!(i["kdump"]["layout"], layout, "{file}");
        assert_eq!(i["kdump"]["compression"], compression, "{file}");
        assert_eq!(i["kdump"]["incomplete"], false, "{file}");
        for args in [
            &["dmesg"][..],
            &["analyze"],
            &["bt", "--all"],
            &["ps"],
            &["modules"],
            &["mce"],
            &["sym", "_stext"],
        ] {
            same_answer(&dir, args, "vm.elf", file);
        }
    }
    // The TUI draws every pane of it, naming its format.
    let t = coroner(dir.path(), &["tui", "plain.kdump", "--json"]);
    t.expect_code(0);
    assert!(
        t.stdout().contains("kdump-compressed dump"),
        "{}",
        t.stdout()
    );
    // qemu's writer is told by its QEMU notes.
    assert!(inspect("flat.kdump")["writer_hint"]
        .as_str()
        .unwrap()
        .starts_with("qemu's dump-guest-memory"));
    // Zero pages left out by dump level 1 are known to be zeros: everything answers the
    // same.
    let i = inspect("no-zero-pages.kdump");
    assert!(
        i["kdump"]["excluded_pages"].as_u64().unwrap() > 1000,
        "{i:#}"
    );
    assert_eq!(i["kdump"]["header"]["dump_level"], 1);
    assert_eq!(i["kdump"]["excluded_are_zeros"], true);
    for args in [&["dmesg"][..], &["analyze"], &["bt", "--all"]] {
        same_answer(&dir, args, "vm.elf", "no-zero-pages.kdump");
    }

    // compress: a container of an ELF core made from it, answering the same.
    coroner(
        dir.path(),
        &["compress", "pipe.kdump", "-o", "pipe.core.zst"],
    )
    .expect_code(0);
    for args in [&["dmesg"][..], &["analyze"], &["bt", "--all"], &["ps"]] {
        same_answer(&dir, args, "vm.elf", "pipe.core.zst");
    }
    let c = inspect("pipe.core.zst");
    assert_eq!(
        c["metadata"]["converted_from"]["layout"], "flattened",
        "{c:#}"
    );
    // The capture through the kdump stream holds the very ELF core `compress` made of
    // qemu's kdump file of the same frozen guest, and says where it came from.
    zstd_decompress(dir.path(), "kcap.core.zst", "kcap.elf");
    zstd_decompress(dir.path(), "pipe.core.zst", "pipe.elf");
    assert!(
        std::fs::read(p("kcap.elf")).unwrap() == std::fs::read(p("pipe.elf")).unwrap(),
        "the kdump-stream capture differs from compress of qemu's kdump file"
    );
    let k = inspect("kcap.core.zst");
    let from = &k["metadata"]["converted_from"];
    assert_eq!(
        (from["layout"].as_str(), from["compression"].as_str()),
        (Some("flattened"), Some("zlib")),
        "{k:#}"
    );
    assert_eq!(
        from["stream_bytes"],
        std::fs::metadata(p("pipe.kdump")).unwrap().len()
    );
    assert_eq!(
        from["stream_blake3"].as_str().unwrap(),
        blake3_of_file(&p("pipe.kdump"))
    );
    assert_eq!(k["metadata"]["capture"]["dump_format"], "kdump-zlib");
    // Every analysis answers as on the ELF capture of the same guest.
    for args in [
        &["dmesg"][..],
        &["bt", "--all"],
        &["ps"],
        &["modules"],
        &["mce"],
    ] {
        same_answer(&dir, args, "ecap.core.zst", "kcap.core.zst");
    }
    let (e, k) = (analyze("ecap.core.zst"), analyze("kcap.core.zst"));
    for field in ["verdict", "title", "panic_cpu", "kernel_log"] {
        assert_eq!(e[field], k[field], "analyze's {field}");
    }
    coroner(dir.path(), &["verify", "kcap.core.zst"]).expect_code(0);
    // slim and the bug-report bundle read it as they read a capture.
    coroner(
        dir.path(),
        &["slim", "plain.kdump", "-o", "plain.slim.core.zst"],
    )
    .expect_code(0);
    for args in [&["dmesg"][..], &["analyze"], &["bt", "--all"]] {
        same_answer(&dir, args, "vm.elf", "plain.slim.core.zst");
    }
    coroner(dir.path(), &["report", "flat.kdump", "-o", "bundle"]).expect_code(0);
    same_answer(&dir, &["bt"], "vm.elf", "bundle/capture.slim.core.zst");

    // Damaged: a flattened stream cut short, a plain file cut in its page data.
    let flat = std::fs::read(p("flat.kdump")).unwrap();
    std::fs::write(p("cut-flat.kdump"), &flat[..flat.len() / 2]).unwrap();
    let r = coroner(dir.path(), &["dmesg", "cut-flat.kdump"]);
    r.expect_code(3);
    assert!(r.stderr().contains("truncated"), "{}", r.stderr());
    let plain = std::fs::read(p("plain.kdump")).unwrap();
    std::fs::write(p("cut-plain.kdump"), &plain[..plain.len() / 2]).unwrap();
    let r = coroner(dir.path(), &["analyze", "cut-plain.kdump"]);
    assert!(
        [0, 3, 7].contains(&r.code()),
        "{}\n{}",
        r.stdout(),
        r.stderr()
    );
    assert!(!r.stderr().contains("panicked"), "{}", r.stderr());
}

/// The guest's own kdump: a capture kernel loaded with `crashkernel=`, the first kernel
/// panics, the capture kernel copies `/proc/vmcore` (an ELF core with the kernel's
/// virtual addresses, no QEMU notes, registers from the crash notes) onto the guest's
/// disk. Ground truth: the first kernel's serial console.
#[test]
fn the_guests_own_kdump_vmcore() {
    if !kit::available_or_skip("the_guests_own_kdump_vmcore") {
        return;
    }
    let dir = Dir::new();
    let disk = dir.path().join("vmcore.img");
    File::create(&disk).unwrap().set_len(700 << 20).unwrap();
    let mut guest = Guest::boot(&GuestOptions {
        pvpanic: false,
        append: "crashkernel=192M coroner.run=kdump".into(),
        initrd: Some(kit::kdump_initramfs().unwrap()),
        extra_qemu: vec![
            "-drive".into(),
            format!("file={},if=virtio,format=raw", disk.display()),
        ],
        ..GuestOptions::default()
    })
    .unwrap();
    let deadline = std::time::Duration::from_secs(600);
    guest
        .wait_for_console("coroner-kdump: vmcore saved", deadline)
        .unwrap_or_else(|e| panic!("{e}\n{}", guest.serial_log()));
    guest.wait_exit(deadline).unwrap();
    let serial = guest.serial_log();
    // The first kernel's console ends where the capture kernel's begins.
    let second_boot = serial
        .match_indices("] Linux version ")
        .nth(1)
        .map(|(i, _)| serial[..i].rfind('\n').map_or(0, |n| n + 1))
        .expect("the capture kernel's banner");
    let first = &serial[..second_boot];

    let r = coroner(dir.path(), &["dmesg", "vmcore.img"]);
    r.expect_code(0);
    crate::kernel::assert_console_in_dmesg(first, &r.stdout());
    let i = coroner(dir.path(), &["inspect", "vmcore.img", "--json"]).json();
    assert_eq!(i["format"], "elf");
    assert!(
        i["writer_hint"].as_str().unwrap().contains("/proc/vmcore"),
        "{i:#}"
    );
    let vcpus = i["vcpus"].as_array().unwrap();
    assert_eq!(vcpus.len(), 2);
    assert!(vcpus
        .iter()
        .all(|v| v["qemu"].is_null() && v["prstatus"].is_object()));

    let a = coroner(dir.path(), &["analyze", "vmcore.img", "--json"]).json();
    assert_eq!(a["verdict"], "kernel panic: sysrq triggered crash");
    // The panicking CPU is the one the console's dump names.
    let console_cpu = first
        .lines()
        .find_map(|l| l.split("] CPU: ").nth(1))
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .expect("a CPU: line");
    assert_eq!(a["panic_cpu"]["cpu"], console_cpu, "{:#}", a["panic_cpu"]);
    // The other CPU was stopped by the crash NMI: its saved registers are the code it
    // interrupted, and its stack unwinds to the end.
    let other = if console_cpu == 0 { "1" } else { "0" };
    let b = coroner(dir.path(), &["bt", "vmcore.img", "--cpu", other, "--json"]).json();
    assert_eq!(b["backtraces"][0]["complete"], true, "{b:#}");
    // The panicking CPU's registers are crash_setup_regs' in __crash_kexec; the path
    // below is on its stack.
    let b = coroner(
        dir.path(),
        &[
            "bt",
            "vmcore.img",
            "--cpu",
            &console_cpu.to_string(),
            "--json",
        ],
    )
    .json();
    let frames: Vec<&str> = b["backtraces"][0]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["symbol"].as_str())
        .collect();
    assert!(frames[0].starts_with("__crash_kexec+"), "{frames:?}");
    assert!(
        frames.iter().any(|f| f.starts_with("sysrq_handle_crash+")),
        "{frames:?}"
    );

    // makedumpfile reads the kernel's own vmcore: its filtered outputs (dump level 31:
    // zero, cache, user and free pages left out) in lzo and as ELF, and its own log.
    let vmcore = disk.display().to_string();
    for args in [
        &["-l", "-d", "31", &vmcore, "lzo31.kdump"][..],
        &["-c", "-d", "1", &vmcore, "zlib1.kdump"],
        &["-E", "-d", "31", &vmcore, "filtered.elf"],
        &["--dump-dmesg", &vmcore, "makedumpfile-dmesg.txt"],
    ] {
        let out = Command::new("makedumpfile")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "makedumpfile {args:?}: {out:?}");
    }
    let i = coroner(dir.path(), &["inspect", "lzo31.kdump", "--json"]).json();
    assert_eq!(i["kdump"]["compression"], "lzo");
    assert_eq!(i["kdump"]["header"]["dump_level"], 31);
    assert!(
        i["kdump"]["excluded_pages"].as_u64().unwrap() > 1000,
        "{i:#}"
    );
    assert_eq!(i["kdump"]["excluded_are_zeros"], false);
    for file in ["lzo31.kdump", "zlib1.kdump", "filtered.elf"] {
        for args in [&["dmesg"][..], &["analyze"]] {
            same_answer(&dir, args, "vmcore.img", file);
        }
    }
    // makedumpfile's log is coroner's, but for how each prints a multi-line record's
    // continuation lines (makedumpfile indents them, coroner repeats the prefix as the
    // console does).
    let text = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| {
                let l = if l.starts_with('[') {
                    l.split_once("] ").map_or(l, |x| x.1)
                } else {
                    l
                };
                l.trim().to_string()
            })
            .collect()
    };
    let theirs = std::fs::read_to_string(dir.path().join("makedumpfile-dmesg.txt")).unwrap();
    assert_eq!(text(&theirs), text(&r.stdout()));
}
