//! The kernel view and log on real guests: `coroner dmesg` holds every line the serial
//! console printed, in order, with the same timestamps; `analyze` gives the right verdict;
//! with and without `-device vmcoreinfo`, with `nokaslr`, and with 5-level paging.

use coroner_samples::kit::{self, Guest, GuestOptions, Scenario};

use std::collections::BTreeMap;

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
pub fn assert_console_in_dmesg(serial: &str, dmesg: &str) {
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

/// The guest's own `/proc/modules` (printed by the kit's init): name, size, users, state,
/// address.
fn proc_modules(serial: &str) -> Vec<(String, u64, i64, String, u64)> {
    serial
        .lines()
        .filter_map(|l| {
            l.trim_end_matches('\r')
                .strip_prefix("coroner-kit: proc-modules ")
        })
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (
                w[0].to_string(),
                w[1].parse().unwrap(),
                w[2].parse().unwrap(),
                w[4].to_string(),
                u64::from_str_radix(w[5].trim_start_matches("0x"), 16).unwrap(),
            )
        })
        .collect()
}

/// `coroner modules` (with `extra` arguments) lists exactly the modules the guest's
/// `/proc/modules` listed, with the same size, users, state and address; every pvpanic
/// symbol of the guest's `/proc/kallsyms` is named back by `coroner sym`.
fn assert_modules_match_the_guest(serial: &str, dir: &Dir, extra: &[&str]) {
    let truth = proc_modules(serial);
    assert!(
        truth.len() >= 2,
        "the kit printed no /proc/modules:\n{serial}"
    );
    let mut args = vec!["modules", "vm.core.zst", "--json"];
    args.extend_from_slice(extra);
    let r = coroner(dir.path(), &args);
    r.expect_code(0);
    let j = r.json();
    let got: Vec<(String, u64, i64, String, u64)> = j["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["size"].as_u64().unwrap(),
                m["refcnt"].as_i64().unwrap(),
                m["state"].as_str().unwrap().to_string(),
                unhex(&m["address"]).unwrap(),
            )
        })
        .collect();
    assert_eq!(got, truth, "coroner modules vs the guest's /proc/modules");
    let syms: Vec<(u64, String)> = serial
        .lines()
        .filter_map(|l| {
            l.trim_end_matches('\r')
                .strip_prefix("coroner-kit: proc-kallsyms ")
        })
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (u64::from_str_radix(w[0], 16).unwrap(), w[2].to_string())
        })
        .collect();
    assert!(syms.len() >= 5, "the kit printed no pvpanic symbols");
    let mut args = vec![
        "sym".to_string(),
        "vm.core.zst".to_string(),
        "--json".to_string(),
    ];
    args.extend(syms.iter().map(|(a, _)| format!("{a:#x}")));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = coroner(dir.path(), &args);
    r.expect_code(0);
    let answers = r.json()["answers"].as_array().unwrap().clone();
    for ((addr, name), a) in syms.iter().zip(&answers) {
        assert_eq!(a["module"], "pvpanic", "{addr:#x} {name}: {a}");
        assert_eq!(a["offset"], 0, "{addr:#x} {name}: {a}");
        // Aliases share an address (`init_module` and the module's init function).
        let got = a["symbol"].as_str().unwrap();
        assert!(
            syms.iter().any(|(x, n)| x == addr && n == got),
            "{addr:#x}: {got} is not among the guest's names for it ({name})"
        );
    }
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
    assert_eq!(
        a["title"],
        "kernel panic: sysrq triggered crash in sysrq_handle_crash"
    );
    // The capture noted where VMCOREINFO was while it streamed...
    let how = evidence(&a, "VMCOREINFO")["how"].as_str().unwrap();
    assert!(how.contains("while the capture was written"), "{how}");
    // ...and the plain ELF, with no metadata, has it through the kernel's own pointer,
    // found through kallsyms in the image the vCPU's page tables map: no RAM scan.
    coroner(dir.path(), &["export", "vm.core.zst", "-o", "vm.elf"]).expect_code(0);
    let e = coroner(dir.path(), &["analyze", "vm.elf", "--json"]);
    e.expect_code(0);
    let e = e.json();
    let how = evidence(&e, "VMCOREINFO")["how"].as_str().unwrap();
    assert!(
        how.starts_with("the kernel's vmcoreinfo_data pointer"),
        "{how}"
    );
    assert_eq!(
        evidence(&e, "VMCOREINFO")["value"],
        evidence(&a, "VMCOREINFO")["value"]
    );
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

    // Modules and their symbols, as the guest saw them, with and without VMCOREINFO;
    // the panicking vCPU stopped in pvpanic's notifier is named with its module.
    assert_modules_match_the_guest(&guest.serial_log(), &dir, &[]);
    assert_modules_match_the_guest(&guest.serial_log(), &dir, &["--ignore-vmcoreinfo"]);
    let in_pvpanic = a["vcpus"].as_array().unwrap().iter().any(|v| {
        v["symbol"]
            .as_str()
            .is_some_and(|s| s.ends_with(" [pvpanic]"))
    });
    assert!(in_pvpanic, "no vCPU named in pvpanic: {:#}", a["vcpus"]);

    // The panicking vCPU's backtrace, unwound from its registers through pvpanic's
    // notifier, agrees with the kernel's own Call Trace from panic() down (the frames
    // above differ: the kernel dumped its stack from another call in panic()).
    let serial = guest.serial_log();
    let after_panic = |frames: Vec<String>| -> Vec<String> {
        frames
            .into_iter()
            .skip_while(|f| !f.starts_with("panic+"))
            .skip(1)
            .collect()
    };
    let kernel: Vec<String> = serial
        .lines()
        .skip_while(|l| !l.contains("Kernel panic - not syncing"))
        .skip_while(|l| !l.contains("Call Trace:"))
        .map(|l| l.split("] ").nth(1).unwrap_or(l).trim().to_string())
        .take_while(|t| t != "</TASK>")
        .filter(|t| t.contains("+0x") && !t.starts_with("? "))
        // Where an interrupt came in, the kernel prints the interrupted address as the
        // `RIP:` of the registers it shows.
        .map(|t| match t.strip_prefix("RIP: ") {
            Some(r) => r.split_once(':').map_or(r, |(_, sym)| sym).to_string(),
            None => t,
        })
        .collect();
    let kernel = after_panic(kernel);
    assert!(kernel.len() > 3, "no Call Trace below panic in:\n{serial}");
    let cpu = a["panic_cpu"]["cpu"].as_u64().unwrap().to_string();
    for extra in [&[][..], &["--ignore-vmcoreinfo"][..]] {
        let mut args = vec!["bt", "vm.core.zst", "--cpu", &cpu, "--json"];
        args.extend_from_slice(extra);
        let bt = coroner(dir.path(), &args);
        bt.expect_code(0);
        let j = bt.json();
        let b = &j["backtraces"][0];
        assert!(
            b["frames"][0]["symbol"]
                .as_str()
                .unwrap()
                .ends_with(" [pvpanic]"),
            "{b:#}"
        );
        let ours = after_panic(
            b["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["symbol"].as_str().unwrap_or("?").to_string())
                .collect(),
        );
        assert_eq!(ours, kernel, "{extra:?}: {b:#}");
        assert_eq!(b["complete"], true, "{b:#}");
    }
    // The bug-report bundle carries that backtrace, and its slim capture answers bt alike.
    coroner(dir.path(), &["report", "vm.core.zst", "-o", "bundle"]).expect_code(0);
    let md = std::fs::read_to_string(dir.join("bundle/summary.md")).unwrap();
    let section = md
        .split("## Backtrace of the CPU that panicked")
        .nth(1)
        .unwrap_or_else(|| panic!("no backtrace in the summary:\n{md}"));
    assert!(
        section.contains("[pvpanic]") && section.contains("sysrq_handle_crash+"),
        "{md}"
    );
    let bt = |file: &str| {
        let r = coroner(dir.path(), &["bt", file, "--cpu", &cpu, "--json"]);
        r.expect_code(0);
        r.json()["backtraces"].clone()
    };
    assert_eq!(bt("vm.core.zst"), bt("bundle/capture.slim.core.zst"));
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
    assert_modules_match_the_guest(&guest.serial_log(), &dir, &[]);
    // The tasks at the kernel's link-time addresses: init and kthreadd, and a task on
    // each vCPU.
    let ps = coroner(dir.path(), &["ps", "vm.core.zst", "--json"]);
    ps.expect_code(0);
    let j = ps.json();
    let tasks = j["tasks"].as_array().unwrap();
    let comm = |pid: i64| {
        tasks
            .iter()
            .find(|t| t["pid"].as_i64() == Some(pid))
            .map(|t| t["comm"].as_str().unwrap().to_string())
    };
    assert_eq!(comm(1).as_deref(), Some("init"), "{j:#}");
    assert_eq!(comm(2).as_deref(), Some("kthreadd"), "{j:#}");
    assert!(
        j["current"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["comm"].is_string()),
        "{j:#}"
    );
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

/// `coroner ps` against the guest's own `/proc/PID/stat`, printed by the kit's init just
/// before the freeze: every task it printed is listed with the same parent and command,
/// and the tasks in known states (a stopped sleep, a zombie, a busy loop, whoever waits
/// on a starved virtio-rng in D) have the state letters `ps` prints; each CPU's running
/// task is named. With and without VMCOREINFO.
#[test]
fn ps_lists_the_tasks_the_guest_saw() {
    if !kit::available_or_skip("ps_lists_the_tasks_the_guest_saw") {
        return;
    }
    // A virtio-rng that qemu lets give one byte an hour: whoever reads it (the kernel's
    // hwrng thread, or the kit's reader of /dev/hwrng) waits in uninterruptible sleep.
    let rng = "virtio-rng-pci,rng=rng0,max-bytes=1,period=3600000";
    let (guest, dir) = captured(
        GuestOptions {
            append: "coroner.tasks=1".into(),
            extra_qemu: ["-object", "rng-builtin,id=rng0", "-device", rng]
                .map(String::from)
                .to_vec(),
            ..GuestOptions::default()
        },
        Scenario::Stop,
    );
    let serial = guest.serial_log();
    drop(guest);
    // pid -> (comm, state, ppid), from "pid (comm) S ppid ...".
    let truth: BTreeMap<i64, (String, String, i64)> = serial
        .lines()
        .filter_map(|l| {
            l.trim_end_matches('\r')
                .strip_prefix("coroner-kit: proc-stat ")
        })
        .filter_map(|l| {
            let open = l.find(" (")?;
            let close = l.rfind(") ")?;
            let rest: Vec<&str> = l[close + 2..].split_whitespace().collect();
            Some((
                l[..open].parse().ok()?,
                (
                    l[open + 2..close].to_string(),
                    rest.first()?.to_string(),
                    rest.get(1)?.parse().ok()?,
                ),
            ))
        })
        .collect();
    assert!(
        truth.len() > 20,
        "the kit printed no /proc/PID/stat:\n{serial}"
    );
    let known = |what: &str| -> i64 {
        serial
            .lines()
            .find_map(|l| {
                l.trim_end_matches('\r')
                    .strip_prefix(&format!("coroner-kit: task {what} "))
            })
            .unwrap_or_else(|| panic!("no {what} task in:\n{serial}"))
            .trim()
            .parse()
            .unwrap()
    };
    let (stopped, zombie_parent, busy) = (known("stopped"), known("zombie-parent"), known("busy"));
    for extra in [&[][..], &["--ignore-vmcoreinfo"][..]] {
        let mut args = vec!["ps", "vm.core.zst", "--json"];
        args.extend_from_slice(extra);
        let r = coroner(dir.path(), &args);
        r.expect_code(0);
        let j = r.json();
        let tasks = j["tasks"].as_array().unwrap();
        let by_pid: std::collections::BTreeMap<i64, &serde_json::Value> = tasks
            .iter()
            .map(|t| (t["pid"].as_i64().unwrap(), t))
            .collect();
        // Every process the guest printed (a few short-lived ones may have exited since).
        let missing: Vec<&i64> = truth.keys().filter(|p| !by_pid.contains_key(p)).collect();
        assert!(
            missing.len() * 10 < truth.len(),
            "{} of {} guest tasks missing: {missing:?}",
            missing.len(),
            truth.len()
        );
        for (pid, (comm, _, ppid)) in &truth {
            let Some(t) = by_pid.get(pid) else { continue };
            // /proc shows a workqueue worker's current work after its name
            // (`kworker/0:0-events`) and a kernel thread's full name, which `comm` holds
            // cut to 15 bytes.
            let got = t["comm"].as_str().unwrap();
            let longer =
                comm.starts_with(got) && (got.len() == 15 || comm[got.len()..].starts_with('-'));
            assert!(got == comm || longer, "pid {pid}: {got} vs {comm}");
            assert_eq!(t["ppid"].as_i64().unwrap(), *ppid, "pid {pid} {comm}");
        }
        let state = |pid: i64| by_pid[&pid]["state"].as_str().unwrap().to_string();
        // Tasks in D cannot leave it before the freeze (the rng gives nothing more).
        let in_d: Vec<i64> = truth
            .iter()
            .filter(|(_, (_, st, _))| st == "D")
            .map(|(p, _)| *p)
            .collect();
        assert!(
            !in_d.is_empty(),
            "the guest printed no task in D:\n{serial}"
        );
        for pid in &in_d {
            assert_eq!(state(*pid), "D", "pid {pid} {}", truth[pid].0);
        }
        assert_eq!(state(stopped), "T");
        assert_eq!(state(busy), "R");
        assert_eq!(state(zombie_parent), "S");
        let zombie = tasks
            .iter()
            .find(|t| t["ppid"].as_i64() == Some(zombie_parent))
            .expect("the zombie child");
        assert_eq!(zombie["state"], "Z", "{zombie}");
        assert_eq!(truth[&1].0, by_pid[&1]["comm"].as_str().unwrap());
        assert!(by_pid[&2]["kernel_thread"].as_bool().unwrap(), "kthreadd");
        // Each vCPU's running task is named.
        let current = j["current"].as_array().unwrap();
        assert_eq!(current.len(), 2, "{current:?}");
        assert!(current.iter().all(|c| c["comm"].is_string()), "{current:?}");
    }
    // The TUI's Tasks pane lists them, its Modules pane the modules.
    let t = coroner(
        dir.path(),
        &["tui", "vm.core.zst", "--json", "--size", "120x40"],
    );
    t.expect_code(0);
    let screens = t.json()["screens"].as_array().unwrap().clone();
    let pane = |name: &str| -> String {
        screens
            .iter()
            .find(|s| s["pane"] == name)
            .map(|s| {
                s["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string() + "\n")
                    .collect()
            })
            .unwrap_or_else(|| panic!("no {name} pane"))
    };
    let tasks = pane("Tasks");
    assert!(
        tasks.contains(" init") && tasks.contains("[kthreadd]"),
        "{tasks}"
    );
    assert!(pane("Modules").contains("pvpanic"));
    // analyze counts the states and names the task of each vCPU.
    let a = analyze_json(&dir);
    assert_eq!(a["tasks"]["by_state"]["T"], 1, "{:#}", a["tasks"]);
    assert!(
        a["tasks"]["by_state"]["D"].as_u64() >= Some(1),
        "{:#}",
        a["tasks"]
    );
    let listed_d: Vec<i64> = a["tasks"]["uninterruptible"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["pid"].as_i64().unwrap())
        .collect();
    for (pid, (comm, st, _)) in &truth {
        if st == "D" {
            assert!(listed_d.contains(pid), "analyze omits D task {pid} {comm}");
        }
    }
    // `--state D` lists only the tasks in D, by the text the guest saw.
    let d = coroner(dir.path(), &["ps", "vm.core.zst", "--state", "D"]);
    d.expect_code(0);
    let text = d.stdout();
    let listed: Vec<&str> = text.lines().skip(1).take_while(|l| !l.is_empty()).collect();
    assert!(
        !listed.is_empty()
            && listed
                .iter()
                .all(|l| l.trim_start_matches([' ', '>']).split_whitespace().nth(3) == Some("D")),
        "{text}"
    );
    assert!(a["vcpus"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["task"].is_string()));

    assert_bt_matches_sysrq_t(&serial, &dir, &[stopped, zombie_parent]);
    assert_orc_found_without_its_symbols(&dir.path().join("vm.core.zst"));
    // A vCPU or pid the dump does not have is not found, as in ps.
    coroner(dir.path(), &["bt", "vm.core.zst", "--cpu", "7"]).expect_code(7);
    coroner(dir.path(), &["bt", "vm.core.zst", "--pid", "999999"]).expect_code(7);
    // Stopped with no panic: the guest's own threshold (120 s) is not reached; past a
    // lower one, the task waiting on the starved rng is hung, and the verdict says where.
    let a = analyze_json(&dir);
    assert!(
        !a["verdict"].as_str().unwrap().contains("hung"),
        "{}",
        a["verdict"]
    );
    assert!(
        a["vcpus"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["frames"].is_array()),
        "no vCPU backtrace: {:#}",
        a["vcpus"]
    );
    // Every task in D counts as hung with --hung-after 0 (the kit freezes the guest
    // about a second after the rng starves).
    let h = coroner(
        dir.path(),
        &["analyze", "vm.core.zst", "--hung-after", "0", "--json"],
    );
    h.expect_code(0);
    let h = h.json();
    let verdict = h["verdict"].as_str().unwrap();
    assert!(
        verdict.contains("INFO: task hung in "),
        "{verdict}\n{:#}",
        h["stuck"]
    );
    assert_eq!(h["stuck"]["hung_after_secs"], 0);
    let title = h["title"].as_str().unwrap();
    assert!(
        title.starts_with("INFO: task hung in ") && !title.contains('('),
        "{title}"
    );
    // Whoever holds the starved rng waits in virtio_read (a module's code, named).
    let hung = h["stuck"]["hung"].as_array().unwrap();
    assert!(
        hung.iter().any(|t| t["in_function"] == "virtio_read"),
        "{hung:#?}"
    );
    for t in hung {
        let pid = t["task"]["pid"].as_i64().unwrap();
        assert!(in_d_pids(&truth).contains(&pid), "{t:#}");
    }
    // A slim capture answers ps and bt the same.
    coroner(dir.path(), &["slim", "vm.core.zst", "-o", "slim.core.zst"]).expect_code(0);
    for cmd in [&["ps"][..], &["bt", "--all"][..]] {
        let run = |file: &str| {
            let mut a = cmd.to_vec();
            a.extend([file, "--json"]);
            let r = coroner(dir.path(), &a);
            r.expect_code(0);
            r.stdout()
        };
        assert_eq!(run("vm.core.zst"), run("slim.core.zst"), "{cmd:?}");
    }

    // The same dump with its BTF blanked (as a kernel without CONFIG_DEBUG_INFO_BTF has
    // none): ps and modules say what is missing and exit 7; the rest still works.
    coroner(dir.path(), &["export", "vm.core.zst", "-o", "vm.elf"]).expect_code(0);
    let phys_base = unhex(&a["phys_base"]).unwrap();
    blank_kernel_range(&dir, phys_base, "__start_BTF", "__stop_BTF", "nobtf.elf");
    for cmd in ["ps", "modules"] {
        let r = coroner(dir.path(), &[cmd, "nobtf.elf"]);
        r.expect_code(7);
        assert!(r.stderr().contains("BTF"), "{cmd}: {}", r.stderr());
    }
    coroner(dir.path(), &["dmesg", "nobtf.elf"]).expect_code(0);
    let b = coroner(dir.path(), &["analyze", "nobtf.elf", "--json"]);
    b.expect_code(0);
    let b = b.json();
    assert!(b["tasks"].is_null());
    assert!(
        b["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().starts_with("tasks: ")),
        "{:#}",
        b["problems"]
    );

    // The same dump with its ORC address table blanked: the unwind stops at once, and the
    // stack is scanned for kernel text addresses instead, every one marked unreliable,
    // as the kernel's own dumps do; among them the stopped task's callers.
    blank_kernel_range(
        &dir,
        phys_base,
        "__start_orc_unwind_ip",
        "__stop_orc_unwind_ip",
        "noorc.elf",
    );
    let pid = stopped.to_string();
    let r = coroner(dir.path(), &["bt", "noorc.elf", "--pid", &pid, "--json"]);
    r.expect_code(0);
    let j = r.json();
    let b = &j["backtraces"][0];
    assert_eq!(b["complete"], false, "{b:#}");
    assert_eq!(b["stop"]["kind"], "no-orc", "{b:#}");
    let frames = b["frames"].as_array().unwrap();
    assert!(frames[1..]
        .iter()
        .all(|f| f["reliable"] == false && f["method"] == "scan"));
    let scanned: Vec<&str> = frames.iter().filter_map(|f| f["symbol"].as_str()).collect();
    for want in ["schedule+", "do_signal_stop+", "get_signal+"] {
        assert!(
            scanned.iter().any(|f| f.starts_with(want)),
            "{want}: {scanned:?}"
        );
    }
    let t = coroner(dir.path(), &["bt", "noorc.elf", "--pid", &pid]);
    t.expect_code(0);
    assert!(t.stdout().contains(" ? do_signal_stop+"), "{}", t.stdout());
}

/// Copies `vm.elf` to `out` with the kernel-image range `[start_sym, stop_sym)` zeroed:
/// what a kernel built without the table would hold there.
fn blank_kernel_range(dir: &Dir, phys_base: u64, start_sym: &str, stop_sym: &str, out: &str) {
    let s = coroner(
        dir.path(),
        &["sym", "vm.elf", start_sym, stop_sym, "--json"],
    );
    s.expect_code(0);
    let answers = s.json()["answers"].as_array().unwrap().clone();
    let (start, stop) = (
        unhex(&answers[0]["address"]).unwrap(),
        unhex(&answers[1]["address"]).unwrap(),
    );
    let pa = start
        .wrapping_sub(0xffff_ffff_8000_0000)
        .wrapping_add(phys_base);
    let elf = coroner_formats::open(&dir.join("vm.elf")).unwrap();
    let off = elf
        .core_mem()
        .unwrap()
        .file_offset(coroner_formats::PhysAddr(pa))
        .unwrap_or_else(|| panic!("{start_sym} is in the dump"));
    drop(elf);
    let mut bytes = std::fs::read(dir.join("vm.elf")).unwrap();
    bytes[off as usize..(off + (stop - start)) as usize].fill(0);
    std::fs::write(dir.join(out), bytes).unwrap();
}

/// The pids the guest printed in state D.
fn in_d_pids(truth: &BTreeMap<i64, (String, String, i64)>) -> Vec<i64> {
    truth
        .iter()
        .filter(|(_, (_, st, _))| st == "D")
        .map(|(p, _)| *p)
        .collect()
}

/// The reliable frames of every task in the kernel's own sysrq `t` output on the console:
/// pid -> (command, state letter, frames as `function+0xoff/0xsize [module]`).
fn sysrq_t_backtraces(serial: &str) -> BTreeMap<i64, (String, String, Vec<String>)> {
    let mut out = BTreeMap::new();
    let mut current: Option<(i64, String, String, Vec<String>)> = None;
    let mut in_trace = false;
    for raw in serial.lines() {
        let line = raw.trim_end_matches('\r');
        // Drop the "[   10.123456] " timestamp.
        let text = match line.strip_prefix('[') {
            Some(rest) => rest.split_once("] ").map_or(rest, |(_, t)| t),
            None => line,
        };
        if let Some(rest) = text.strip_prefix("task:") {
            if let Some((pid, comm, state, frames)) = current.take() {
                out.insert(pid, (comm, state, frames));
            }
            let field = |name: &str| {
                rest.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .map(str::to_string)
            };
            let comm = rest.split_whitespace().next().unwrap_or("").to_string();
            if let (Some(pid), Some(state)) = (field("pid:"), field("state:")) {
                if let Ok(pid) = pid.parse() {
                    current = Some((pid, comm, state, Vec::new()));
                }
            }
            in_trace = false;
            continue;
        }
        let t = text.trim();
        match t {
            "<TASK>" => in_trace = true,
            "</TASK>" => in_trace = false,
            _ if in_trace && !t.starts_with("? ") => {
                let sym = t.split_whitespace().next().unwrap_or("");
                let is_frame = sym.contains("+0x") && sym.contains("/0x");
                if let (true, Some(c)) = (is_frame, current.as_mut()) {
                    c.3.push(t.to_string());
                }
            }
            _ => {}
        }
    }
    if let Some((pid, comm, state, frames)) = current {
        out.insert(pid, (comm, state, frames));
    }
    out
}

/// `coroner bt --all` against the kernel's own backtraces (sysrq `t`, printed by the kit
/// just before the freeze): every task that sleeps (not running, not on a CPU) has the
/// frames the kernel printed; `exact` and tasks in D must match, the others nearly all (a kernel thread
/// may run and sleep elsewhere between the two).
fn assert_bt_matches_sysrq_t(serial: &str, dir: &Dir, exact: &[i64]) {
    let truth = sysrq_t_backtraces(serial);
    assert!(truth.len() > 20, "no sysrq t output in:\n{serial}");
    let r = coroner(dir.path(), &["bt", "vm.core.zst", "--all", "--json"]);
    r.expect_code(0);
    let j = r.json();
    let mut compared = 0;
    let mut differ = Vec::new();
    for b in j["backtraces"].as_array().unwrap() {
        let Some(pid) = b["task"]["pid"].as_i64() else {
            continue;
        };
        if b["cpu"].is_u64() || b["task"]["state"] == "R" {
            continue;
        }
        let Some((comm, state, want)) = truth.get(&pid) else {
            continue;
        };
        // A task in D cannot have moved (the starved rng never wakes it).
        let exact = exact.contains(&pid) || state == "D";
        let got: Vec<String> = b["frames"]
            .as_array()
            .unwrap_or_else(|| panic!("no frames for pid {pid}: {b}"))
            .iter()
            .map(|f| f["symbol"].as_str().unwrap_or("?").to_string())
            .collect();
        compared += 1;
        if exact || got != *want {
            if exact {
                assert_eq!(&got, want, "pid {pid} {comm}: {b:#}");
            } else {
                differ.push(format!(
                    "pid {pid} {comm}:\n  coroner {got:?}\n  kernel  {want:?}"
                ));
            }
        }
    }
    eprintln!(
        "bt vs sysrq t: {compared} sleeping tasks compared, {} differ{}",
        differ.len(),
        differ.iter().map(|d| format!("\n{d}")).collect::<String>()
    );
    assert!(compared > 20, "only {compared} tasks compared");
    assert!(
        differ.len() * 10 <= compared,
        "{} of {compared} backtraces differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
}

/// The kernel's text of the console lines after the first line containing `from`, from its
/// `Call Trace:` up to `</TASK>`: the `RIP: 0010:` symbol of the registers shown before
/// it, and the reliable frames (no `? ` ones, no register lines).
fn logged_trace(serial: &str, from: &str) -> (String, Vec<String>) {
    let text: Vec<String> = serial
        .lines()
        .skip_while(|l| !l.contains(from))
        .map(|l| l.split("] ").nth(1).unwrap_or(l).trim().to_string())
        .collect();
    let rip = text
        .iter()
        .find_map(|t| t.strip_prefix("RIP: 0010:"))
        .unwrap_or_else(|| panic!("no kernel RIP after {from:?} in:\n{serial}"))
        .to_string();
    let frames = text
        .iter()
        .skip_while(|t| !t.starts_with("Call Trace:"))
        .take_while(|t| *t != "</TASK>")
        .filter(|t| t.contains("+0x") && !t.starts_with("? ") && !t.contains(':'))
        .cloned()
        .collect();
    (rip, frames)
}

/// The reliable frame symbols of `coroner bt vm.core.zst --cpu CPU --json`, whether each
/// comes from kernel-mode registers, and the backtrace.
fn bt_cpu(dir: &Dir, cpu: &str) -> (Vec<String>, Vec<bool>, serde_json::Value) {
    let r = coroner(dir.path(), &["bt", "vm.core.zst", "--cpu", cpu, "--json"]);
    r.expect_code(0);
    let b = r.json()["backtraces"][0].clone();
    let frames = b["frames"].as_array().unwrap();
    let reliable: Vec<&serde_json::Value> =
        frames.iter().filter(|f| f["reliable"] == true).collect();
    (
        reliable
            .iter()
            .map(|f| f["symbol"].as_str().unwrap_or("?").to_string())
            .collect(),
        // Kernel-mode registers (an exception's or interrupt's), not user mode's.
        reliable.iter().map(|f| f["regs"]["cs"] == "0x10").collect(),
        b,
    )
}

/// Fails at once, naming the cause, when the kit's scenario could not load its test
/// module (the kit says so before it faults with it).
fn assert_test_module_loaded(guest: &mut Guest) {
    guest
        .wait_for_console(
            "coroner-kit: module coroner_fault ",
            std::time::Duration::from_secs(180),
        )
        .unwrap();
    let serial = guest.serial_log();
    assert!(
        serial.contains("coroner-kit: module coroner_fault loaded"),
        "the kit lacks its test module (samples/kit/build-module.sh):\n{serial}"
    );
}

#[test]
fn bt_of_an_oops_inside_a_module() {
    if !kit::available_or_skip("bt_of_an_oops_inside_a_module") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions {
        append: "coroner.run=oops".into(),
        ..GuestOptions::default()
    })
    .unwrap();
    assert_test_module_loaded(&mut guest);
    guest
        .wait_for_state("guest-panicked", std::time::Duration::from_secs(180))
        .unwrap();
    let sock = guest.tool_socket().display().to_string();
    coroner(
        dir.path(),
        &["capture", "--qmp", &sock, "-o", "vm.core.zst"],
    )
    .expect_code(0);
    let serial = guest.serial_log();
    // The guest's own account: the faulting RIP in the module and the Call Trace below.
    let (rip, kernel) = logged_trace(&serial, "BUG: kernel NULL pointer dereference");
    assert!(
        rip.starts_with("coroner_fault_oops+") && rip.ends_with(" [coroner_fault]"),
        "{rip}"
    );
    assert!(kernel.len() > 4, "short Call Trace: {kernel:?}");

    let a = analyze_json(&dir);
    let verdict = a["verdict"].as_str().unwrap();
    assert!(verdict.contains(&rip), "{verdict}");
    assert_eq!(
        a["title"],
        "BUG: unable to handle kernel NULL pointer dereference in coroner_fault_oops"
    );
    let cpu = a["panic_cpu"]["cpu"].as_u64().unwrap().to_string();
    let (ours, from_regs, b) = bt_cpu(&dir, &cpu);
    // From the panicking CPU's registers, through the page-fault exception's pt_regs, into
    // the module, and on exactly as the guest's unwinder went.
    let at = ours
        .iter()
        .position(|s| *s == rip)
        .unwrap_or_else(|| panic!("no frame {rip} in {b:#}"));
    assert!(
        from_regs[at],
        "the faulting frame comes from pt_regs: {b:#}"
    );
    assert!(
        ours[..at]
            .iter()
            .any(|s| s.starts_with("asm_exc_page_fault+"))
            && ours[..at].iter().any(|s| s.starts_with("panic+")),
        "{ours:?}"
    );
    assert_eq!(ours[at + 1..], kernel[..], "{b:#}");
    assert_eq!(b["complete"], true, "{b:#}");

    // The stacks, named as the guest names them: the oops's Call Trace ran on the task's
    // stack (the guest marks it `<TASK>`), and so does every frame of this unwind.
    let marked = serial
        .lines()
        .skip_while(|l| !l.contains("BUG: kernel NULL pointer dereference"))
        .skip_while(|l| !l.contains("Call Trace:"))
        .nth(1)
        .unwrap_or("");
    assert!(marked.ends_with(" <TASK>"), "{marked:?}");
    let stacks = |b: &serde_json::Value| -> Vec<String> {
        b["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["stack"].as_str().unwrap_or("-").to_string())
            .collect()
    };
    assert!(stacks(&b).iter().all(|s| s == "TASK"), "{b:#}");
    // panic() stopped the other vCPU with an interrupt (an NMI if that did not answer):
    // it halts in stop_this_cpu on that CPU's IRQ (or NMI) stack, above the task stack
    // it interrupted; the text marks the stacks as the kernel does.
    let other = if cpu == "0" { "1" } else { "0" };
    let (theirs, _, b2) = bt_cpu(&dir, other);
    assert!(theirs[0].starts_with("stop_this_cpu+"), "{b2:#}");
    let on = stacks(&b2);
    assert!(on[0] == "IRQ" || on[0] == "NMI", "{b2:#}");
    assert_eq!(on.last().map(String::as_str), Some("TASK"), "{b2:#}");
    let text = coroner(dir.path(), &["bt", "vm.core.zst", "--cpu", other]);
    text.expect_code(0);
    let lines: Vec<String> = text
        .stdout()
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    let open = format!("<{}>", on[0]);
    let close = format!("</{}>", on[0]);
    let at_open = lines.iter().position(|l| *l == open);
    let at_close = lines.iter().position(|l| *l == close);
    assert!(
        at_open.is_some() && at_open < at_close && lines.contains(&"<TASK>".to_string()),
        "{lines:#?}"
    );
}

#[test]
fn soft_lockup_inside_a_module() {
    if !kit::available_or_skip("soft_lockup_inside_a_module") {
        return;
    }
    let dir = Dir::new();
    // The guest's own watchdog reports a soft lockup after twice watchdog_thresh.
    let mut guest = Guest::boot(&GuestOptions {
        append: "coroner.run=spin watchdog_thresh=2".into(),
        ..GuestOptions::default()
    })
    .unwrap();
    let report = "BUG: soft lockup - CPU#";
    assert_test_module_loaded(&mut guest);
    guest
        .wait_for_console(report, std::time::Duration::from_secs(180))
        .unwrap();
    let sock = guest.tool_socket().display().to_string();
    coroner(
        dir.path(),
        &["capture", "--qmp", &sock, "--stop", "-o", "vm.core.zst"],
    )
    .expect_code(0);
    let serial = guest.serial_log();
    // "watchdog: BUG: soft lockup - CPU#0 stuck for 6s! [coroner_spin:106]"
    let line = serial.lines().find(|l| l.contains(report)).unwrap();
    let cpu: u64 = line
        .split("CPU#")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let pid: i64 = line
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches(']')
        .trim()
        .parse()
        .unwrap();
    let (rip, kernel) = logged_trace(&serial, report);
    assert!(rip.starts_with("coroner_fault_spin+"), "{rip}");

    let a = analyze_json(&dir);
    let lockup = &a["stuck"]["lockups"][0];
    assert_eq!(lockup["cpu"], cpu, "{:#}", a["stuck"]);
    assert_eq!(lockup["task"]["pid"], pid, "{lockup:#}");
    assert_eq!(lockup["task"]["comm"], "coroner_spin", "{lockup:#}");
    assert_eq!(lockup["in_function"], "coroner_fault_spin", "{lockup:#}");
    assert!(
        lockup["running_secs"].as_f64().unwrap() >= 4.0,
        "{lockup:#}"
    );
    let verdict = a["verdict"].as_str().unwrap();
    assert!(
        // The run state is the one coroner found, before its own `stop`.
        verdict.starts_with("running: BUG: soft lockup in coroner_fault_spin (vCPU "),
        "{verdict}"
    );
    assert_eq!(a["title"], "BUG: soft lockup in coroner_fault_spin");
    // The spinning vCPU's backtrace is the one the guest's watchdog printed (the spin
    // loop's offset moves between the report and the freeze).
    // Frozen inside an interrupt, the backtrace crosses its pt_regs into the spin loop.
    let (ours, from_regs, b) = bt_cpu(&dir, &cpu.to_string());
    let at = from_regs.iter().rposition(|&r| r).unwrap_or(0);
    assert!(ours[at].starts_with("coroner_fault_spin+"), "{b:#}");
    assert!(ours[at].ends_with(" [coroner_fault]"), "{b:#}");
    assert_eq!(ours[at + 1..], kernel[..], "{b:#}");
}

/// vmlinux's ORC table, found the way coroner finds it in a kernel without
/// CONFIG_KALLSYMS_ALL (by its shape between the text and the init text), is the one
/// kallsyms' `__start_orc_unwind_ip`.. `__stop_orc_unwind` name.
fn assert_orc_found_without_its_symbols(dump: &std::path::Path) {
    use coroner_analyze::orc::{locate_vmlinux_orc, ImageBounds};
    let core = coroner_formats::open(dump).unwrap();
    let session = coroner_analyze::Session::new(&core, Default::default());
    let view = session.view().unwrap();
    let ks = session.symbols().unwrap();
    let sym = |name: &str| ks.lookup(name).unwrap_or_else(|| panic!("no {name}")).addr;
    let found = locate_vmlinux_orc(
        view,
        ImageBounds {
            stext: sym("_stext"),
            etext: sym("_etext"),
            sinittext: sym("_sinittext"),
        },
    )
    .unwrap();
    assert_eq!(found.ip_table, sym("__start_orc_unwind_ip"), "{found:x?}");
    assert_eq!(found.entries, sym("__start_orc_unwind"), "{found:x?}");
    assert_eq!(
        found.entries + 6 * found.n,
        sym("__stop_orc_unwind"),
        "{found:x?}"
    );
    assert!(found.lookup_checked >= 12, "{found:x?}");
}
