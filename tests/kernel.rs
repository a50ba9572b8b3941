//! The kernel view and log on real guests: `coroner dmesg` holds every line the serial
//! console printed, in order, with the same timestamps; `analyze` gives the right verdict;
//! with and without `-device vmcoreinfo`, with `nokaslr`, and with 5-level paging.

use coroner_samples::kit::{self, Guest, GuestOptions, Scenario};

use crate::util::{coroner, unhex, Dir};

/// Console lines of the kernel (`[    1.234567] text`), complete lines only.
fn console_kernel_lines(serial: &str) -> Vec<String> {
    let complete = match serial.rfind('\n') {
        Some(i) => &serial[..i],
        None => "",
    };
    complete
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| {
            l.starts_with('[') && l.get(13..15) == Some("] ") && l[1..13].trim_start().contains('.')
        })
        .map(String::from)
        .collect()
}

/// Asserts every console line appears in `dmesg`, in order.
fn assert_console_in_dmesg(serial: &str, dmesg: &str) {
    let want = console_kernel_lines(serial);
    assert!(want.len() > 100, "too few console lines: {}", want.len());
    let got: Vec<&str> = dmesg.lines().collect();
    let mut at = 0;
    for line in &want {
        match got[at..].iter().position(|g| g == line) {
            Some(i) => at += i + 1,
            None => panic!(
                "console line missing from coroner dmesg (or out of order):\n{line}\n\
                 dmesg around the last match:\n{}",
                got[at.saturating_sub(3)..(at + 3).min(got.len())].join("\n")
            ),
        }
    }
}

/// Boots, freezes by `scenario`, captures with coroner; returns the guest and capture dir.
fn captured(opts: GuestOptions, scenario: Scenario) -> (Guest, Dir) {
    let dir = Dir::new();
    let mut guest = Guest::boot(&opts).unwrap();
    guest.freeze(scenario).unwrap();
    let sock = guest.tool_socket().display().to_string();
    coroner(
        dir.path(),
        &["capture", "--qmp", &sock, "-o", "vm.core.zst"],
    )
    .expect_code(0);
    (guest, dir)
}

fn analyze_json(dir: &Dir) -> serde_json::Value {
    let r = coroner(dir.path(), &["analyze", "vm.core.zst", "--json"]);
    r.expect_code(0);
    r.json()
}

fn evidence<'a>(report: &'a serde_json::Value, fact: &str) -> &'a serde_json::Value {
    report["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["fact"] == fact)
        .unwrap_or_else(|| panic!("no evidence for {fact}: {report:#}"))
}

#[test]
fn dmesg_of_a_stopped_guest_with_a_vmcoreinfo_note() {
    if !kit::available_or_skip("dmesg_of_a_stopped_guest_with_a_vmcoreinfo_note") {
        return;
    }
    let (guest, dir) = captured(
        GuestOptions {
            vmcoreinfo: true,
            ..GuestOptions::default()
        },
        Scenario::Stop,
    );
    let r = coroner(dir.path(), &["dmesg", "vm.core.zst"]);
    r.expect_code(0);
    assert_console_in_dmesg(&guest.serial_log(), &r.stdout());
    let a = analyze_json(&dir);
    assert!(evidence(&a, "VMCOREINFO")["how"]
        .as_str()
        .unwrap()
        .contains("note"));
    assert_eq!(
        a["verdict"],
        "paused: no panic, oops or machine check in the kernel log"
    );
}

#[test]
fn dmesg_and_verdict_of_a_panicked_guest_without_vmcoreinfo() {
    if !kit::available_or_skip("dmesg_and_verdict_of_a_panicked_guest") {
        return;
    }
    let (guest, dir) = captured(GuestOptions::default(), Scenario::Panic);
    let r = coroner(dir.path(), &["dmesg", "vm.core.zst"]);
    r.expect_code(0);
    assert_console_in_dmesg(&guest.serial_log(), &r.stdout());
    let a = analyze_json(&dir);
    assert_eq!(
        a["verdict"],
        "guest-panicked: kernel panic: sysrq triggered crash"
    );
    // The capture noted where VMCOREINFO was while it streamed...
    let how = evidence(&a, "VMCOREINFO")["how"].as_str().unwrap();
    assert!(how.contains("while the capture was written"), "{how}");
    // ...and the plain ELF, with no metadata, has it recovered by scanning RAM.
    coroner(dir.path(), &["export", "vm.core.zst", "-o", "vm.elf"]).expect_code(0);
    let e = coroner(dir.path(), &["analyze", "vm.elf", "--json"]);
    e.expect_code(0);
    let e = e.json();
    let how = evidence(&e, "VMCOREINFO")["how"].as_str().unwrap();
    assert!(how.starts_with("recovered from RAM"), "{how}");
    assert_eq!(e["verdict"], "kernel panic: sysrq triggered crash");

    // kallsyms from guest memory agrees with the kernel's own symbolization of its trace:
    // the frame `panic+0xOFF/0xSIZE` is panic's address plus OFF.
    let dmesg = r.stdout();
    let frame = dmesg
        .lines()
        .filter_map(|l| l.split("] ").nth(1).map(str::trim))
        .find(|f| f.starts_with("panic+0x"))
        .expect("a panic+0x frame in the call trace");
    let off_hex = &frame["panic+0x".len()..frame.find('/').unwrap()];
    let off = u64::from_str_radix(off_hex, 16).unwrap();
    let s = coroner(dir.path(), &["sym", "vm.core.zst", "panic", "--json"]);
    s.expect_code(0);
    let panic_addr = unhex(&s.json()["answers"][0]["address"]).unwrap();
    let addr = format!("{:#x}", panic_addr + off);
    let back = coroner(dir.path(), &["sym", "vm.core.zst", &addr]);
    back.expect_code(0);
    assert!(
        back.stdout().contains(frame),
        "{} vs {frame}",
        back.stdout()
    );
    coroner(
        dir.path(),
        &["sym", "vm.core.zst", "no_such_symbol_anywhere"],
    )
    .expect_code(7);

    // Without VMCOREINFO at all: KASLR and phys_base from the page tables, kallsyms by
    // signature scan, the ring through kallsyms: the same log and the same offsets.
    let bare = coroner(dir.path(), &["dmesg", "vm.core.zst", "--ignore-vmcoreinfo"]);
    bare.expect_code(0);
    assert_eq!(bare.stdout(), r.stdout());
    let b = coroner(
        dir.path(),
        &["analyze", "vm.core.zst", "--ignore-vmcoreinfo", "--json"],
    );
    b.expect_code(0);
    let b = b.json();
    assert_eq!(b["kaslr_offset"], a["kaslr_offset"]);
    assert_eq!(b["phys_base"], a["phys_base"]);
    assert_eq!(b["verdict"], a["verdict"]);
    let how = evidence(&b, "kallsyms")["how"].as_str().unwrap();
    assert!(how.contains("signature scan"), "{how}");
    // The JSON log has levels and filters work.
    let j = coroner(
        dir.path(),
        &["dmesg", "vm.core.zst", "--json", "--level", "0"],
    );
    j.expect_code(0);
    let recs = j.json()["records"].as_array().unwrap().clone();
    assert!(recs.iter().all(|r| r["level"] == 0));
    assert!(recs
        .iter()
        .any(|r| r["text"].as_str().unwrap().contains("Kernel panic")));
}

#[test]
fn machine_check_lines_exist_only_in_ram() {
    if !kit::available_or_skip("machine_check_lines_exist_only_in_ram") {
        return;
    }
    let (guest, dir) = captured(GuestOptions::default(), Scenario::Mce);
    let r = coroner(dir.path(), &["dmesg", "vm.core.zst"]);
    r.expect_code(0);
    assert_console_in_dmesg(&guest.serial_log(), &r.stdout());
    assert!(!guest.serial_log().contains("[Hardware Error]"));
    assert!(r.stdout().contains("[Hardware Error]"), "{}", r.stdout());
    let a = analyze_json(&dir);
    let v = a["verdict"].as_str().unwrap();
    assert!(
        v.starts_with("guest-panicked: kernel panic: ") && v.contains("achine check"),
        "{v}"
    );
}

#[test]
fn nokaslr_and_five_level_paging() {
    if !kit::available_or_skip("nokaslr_and_five_level_paging") {
        return;
    }
    let (guest, dir) = captured(
        GuestOptions {
            append: "nokaslr".into(),
            ..GuestOptions::default()
        },
        Scenario::Stop,
    );
    let a = analyze_json(&dir);
    assert_eq!(a["kaslr_offset"], "0x0", "{a:#}");
    assert_console_in_dmesg(
        &guest.serial_log(),
        &coroner(dir.path(), &["dmesg", "vm.core.zst"]).stdout(),
    );
    drop(guest);

    let (guest, dir) = captured(
        GuestOptions {
            extra_qemu: vec!["-cpu".into(), "max".into()],
            ..GuestOptions::default()
        },
        Scenario::Stop,
    );
    let a = analyze_json(&dir);
    let tables = evidence(&a, "page tables")["value"].as_str().unwrap();
    assert!(tables.starts_with("5-level"), "{tables}");
    assert_console_in_dmesg(
        &guest.serial_log(),
        &coroner(dir.path(), &["dmesg", "vm.core.zst"]).stdout(),
    );
}
