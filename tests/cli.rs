//! The binary on synthetic qemu-shaped files: output, JSON, and every exit class.

use std::os::unix::fs::PermissionsExt;

use coroner_formats::testing::ElfBuilder;

use std::path::Path;

use crate::util::{assert_no_output, coroner, hex, output_files, unhex, Dir};

fn write_elf(dir: &Dir, name: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, ElfBuilder::default().build()).unwrap();
    p
}

#[test]
fn help_has_examples_for_every_command() {
    let d = Dir::new();
    // Every subcommand `coroner --help` lists, so a new one cannot slip through.
    let top = coroner(d.path(), &["--help"]).stdout();
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect();
    for expected in [
        "capture", "analyze", "dmesg", "sym", "mce", "inspect", "compress", "export",
    ] {
        assert!(
            commands.iter().any(|c| c == expected),
            "{expected} missing from {commands:?}"
        );
    }
    for cmd in &commands {
        let cmd = cmd.as_str();
        let r = coroner(d.path(), &[cmd, "--help"]);
        r.expect_code(0);
        assert!(
            r.stdout().contains("Examples:"),
            "{cmd} --help has no examples"
        );
        // The two that print a script or a page have nothing to say in JSON.
        if !["completions", "man"].contains(&cmd) {
            assert!(r.stdout().contains("--json"), "{cmd} has no --json");
        }
    }
    let r = coroner(d.path(), &["--help"]);
    assert!(r.stdout().contains("Exit codes:"));
    assert!(r.stdout().contains("Examples:"));
    assert!(r.stdout().contains("coroner completions bash"));
}

#[test]
fn usage_errors_exit_2() {
    let d = Dir::new();
    coroner(d.path(), &["inspect"]).expect_code(2);
    coroner(d.path(), &["frobnicate"]).expect_code(2);
    coroner(d.path(), &["compress", "x", "-o", "y", "--level", "99"]).expect_code(2);
    // Local outputs only, said before anything is read.
    for args in [
        &["compress", "x.elf", "-o", "s3://b/x.core.zst"][..],
        &["export", "x.core.zst", "-o", "s3://b/x.elf"],
        &["slim", "x.core.zst", "-o", "s3://b/x.core.zst"],
        &["report", "x.core.zst", "-o", "s3://b/bundle"],
    ] {
        let r = coroner(d.path(), args);
        r.expect_code(2);
        assert!(r.stderr().contains("s3://b/"), "{args:?}: {}", r.stderr());
    }
}

#[test]
fn compress_inspect_export_round_trip() {
    let d = Dir::new();
    let elf = write_elf(&d, "vm.elf");
    let original = std::fs::read(&elf).unwrap();
    let r = coroner(
        d.path(),
        &[
            "compress",
            "vm.elf",
            "-o",
            "vm.core.zst",
            "--json",
            "--frame-size",
            "4096",
        ],
    );
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["input_size"], original.len() as u64);
    let mode = std::fs::metadata(d.join("vm.core.zst"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(output_files(d.path(), "vm.core.zst"), ["vm.core.zst"]);

    let r = coroner(d.path(), &["inspect", "vm.core.zst", "--json"]);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["format"], "container");
    assert_eq!(j["machine"], "x86_64");
    assert_eq!(j["memory_bytes"], 0x5000);
    assert_eq!(j["vcpus"][0]["qemu"]["rip"], hex(0xffff_ffff_8100_0000));
    assert_eq!(j["vcpus"][0]["mode"]["mode"], "long64");
    assert_eq!(j["vmcoreinfo"]["osrelease"], "6.1.0-test");
    assert_eq!(j["metadata"]["complete"], true);

    let r = coroner(d.path(), &["inspect", "vm.core.zst"]);
    r.expect_code(0);
    assert!(r.stdout().contains("64-bit long mode"), "{}", r.stdout());
    assert!(
        r.stdout().contains("RIP=ffffffff81000000"),
        "{}",
        r.stdout()
    );

    let r = coroner(
        d.path(),
        &["export", "vm.core.zst", "-o", "back.elf", "--json"],
    );
    r.expect_code(0);
    assert_eq!(r.json()["verified"], true);
    assert_eq!(std::fs::read(d.join("back.elf")).unwrap(), original);
}

#[test]
fn unreadable_and_corrupt_inputs_exit_3() {
    let d = Dir::new();
    let r = coroner(d.path(), &["inspect", "missing.elf"]);
    r.expect_code(3);
    assert!(r.stderr().contains("missing.elf"), "{}", r.stderr());

    std::fs::write(d.join("junk"), b"this is not a dump at all").unwrap();
    let r = coroner(d.path(), &["inspect", "junk"]);
    r.expect_code(3);
    assert!(r.stderr().contains("unknown format"), "{}", r.stderr());

    let full = ElfBuilder::default().build();
    std::fs::write(d.join("cut.elf"), &full[..full.len() - 100]).unwrap();
    let r = coroner(d.path(), &["inspect", "cut.elf"]);
    r.expect_code(3);
    assert!(r.stderr().contains("truncated"), "{}", r.stderr());
    coroner(d.path(), &["compress", "cut.elf", "-o", "cut.core.zst"]).expect_code(3);
    assert_no_output(d.path(), "cut.core.zst");

    // A container cut short has lost its seek table.
    write_elf(&d, "vm.elf");
    coroner(d.path(), &["compress", "vm.elf", "-o", "vm.core.zst"]).expect_code(0);
    let z = std::fs::read(d.join("vm.core.zst")).unwrap();
    std::fs::write(d.join("short.core.zst"), &z[..z.len() - 7]).unwrap();
    let r = coroner(d.path(), &["inspect", "short.core.zst"]);
    r.expect_code(3);
    let r = coroner(d.path(), &["export", "short.core.zst", "-o", "x.elf"]);
    r.expect_code(3);
    assert_no_output(d.path(), "x.elf");
}

#[test]
fn output_problems_exit_4() {
    let d = Dir::new();
    write_elf(&d, "vm.elf");
    std::fs::write(d.join("taken.core.zst"), b"keep me").unwrap();
    let r = coroner(d.path(), &["compress", "vm.elf", "-o", "taken.core.zst"]);
    r.expect_code(4);
    assert!(r.stderr().contains("--force"), "{}", r.stderr());
    assert_eq!(std::fs::read(d.join("taken.core.zst")).unwrap(), b"keep me");
    coroner(
        d.path(),
        &["compress", "vm.elf", "-o", "taken.core.zst", "--force"],
    )
    .expect_code(0);

    let r = coroner(
        d.path(),
        &["compress", "vm.elf", "-o", "no/such/dir/x.core.zst"],
    );
    r.expect_code(4);
}

#[test]
fn guest_text_is_escaped_in_text_output() {
    let d = Dir::new();
    let b = ElfBuilder {
        vmcoreinfo: Some("OSRELEASE=6.1\x1b]0;owned\x07\n".into()),
        ..ElfBuilder::default()
    };
    std::fs::write(d.join("evil.elf"), b.build()).unwrap();
    let r = coroner(d.path(), &["inspect", "evil.elf"]);
    r.expect_code(0);
    assert!(!r.stdout().contains('\x1b'), "raw ESC reached stdout");
    assert!(r.stdout().contains("\\e]0;owned\\x07"), "{}", r.stdout());
}

#[test]
fn mce_without_a_kernel_says_so() {
    let d = Dir::new();
    write_elf(&d, "vm.elf");
    // A dump with no Linux kernel and no capture metadata: nothing to read, exit 7.
    let r = coroner(d.path(), &["mce", "vm.elf", "--json"]);
    r.expect_code(7);
    let j = r.json();
    assert_eq!(j["verdict"], "no machine-check record");
    assert!(j["problems"][0].as_str().unwrap().contains("kernel view"));
    // A qemu log that names a host memory error is still read and reported.
    std::fs::write(
        d.join("qemu.log"),
        "qemu-system-x86_64: Guest MCE Memory Error at QEMU addr 0x7f0000345000 and GUEST addr 0x2345000 of type BUS_MCEERR_AR injected\n",
    )
    .unwrap();
    let r = coroner(
        d.path(),
        &["mce", "vm.elf", "--qemu-log", "qemu.log", "--json"],
    );
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["host"]["lines"][0]["guest_addr"], hex(0x234_5000));
    assert_eq!(j["host"]["lines"][0]["kind"], "guest-ram-error");
    let r = coroner(d.path(), &["mce", "vm.elf", "--qemu-log", "missing.log"]);
    r.expect_code(3);
    assert!(r.stderr().contains("missing.log"), "{}", r.stderr());
}

#[test]
fn exit_from_a_qemu_log_alone() {
    let d = Dir::new();
    coroner(d.path(), &["exit"]).expect_code(2);
    std::fs::write(
        d.join("calm.log"),
        "qemu-system-x86_64: terminating on signal 15\n",
    )
    .unwrap();
    let r = coroner(d.path(), &["exit", "--qemu-log", "calm.log", "--json"]);
    r.expect_code(7);
    assert!(r.json()["verdict"]
        .as_str()
        .unwrap()
        .starts_with("no KVM error report"));
    // A real report (fixture 13), with an escape sequence spliced into its Code= line.
    let log = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/qemu-logs/13-emulation-failure-movaps-to-vga-text-mmio-includeos.log"
    ))
    .unwrap();
    std::fs::write(d.join("kvm.log"), format!("{log}\x1b[2J\n")).unwrap();
    let r = coroner(d.path(), &["exit", "--qemu-log", "kvm.log"]);
    r.expect_code(0);
    assert!(r.stdout().contains("movaps"), "{}", r.stdout());
    assert!(!r.stdout().contains('\x1b'));
    let r = coroner(d.path(), &["exit", "--qemu-log", "kvm.log", "--json"]);
    let j = r.json();
    assert_eq!(j["suberror"]["number"], 1);
    assert_eq!(j["operands"][0]["gpa"], hex(0xb8000));
}

#[test]
fn report_bundle_from_a_bundled_sample() {
    use std::os::unix::fs::PermissionsExt;
    let d = Dir::new();
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/captures/kvm-emulation-failure.core.zst"
    );
    let r = coroner(d.path(), &["report", sample, "-o", "bundle", "--json"]);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["files"].as_array().unwrap().len(), 3);
    let dir_mode = std::fs::metadata(d.join("bundle"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    for f in ["summary.md", "report.json", "capture.slim.core.zst"] {
        let mode = std::fs::metadata(d.join("bundle").join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let md = std::fs::read_to_string(d.join("bundle/summary.md")).unwrap();
    assert!(
        md.starts_with("# coroner report: internal-error: KVM emulation failure"),
        "{md}"
    );
    assert!(
        md.contains("## KVM exit") && md.contains("vga-lowmem"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("bundle/report.json")).unwrap()).unwrap();
    assert_eq!(json["kvm_exit"]["suberror"]["number"], 1);
    assert!(json["verdict"]
        .as_str()
        .unwrap()
        .contains("KVM emulation failure"));
    // The slim capture in the bundle answers like the sample.
    let a = coroner(d.path(), &["exit", sample, "--json"]).json();
    let b = coroner(
        d.path(),
        &["exit", "bundle/capture.slim.core.zst", "--json"],
    )
    .json();
    assert_eq!(a["verdict"], b["verdict"]);
    // The directory must be new; --redact leaves the capture out.
    coroner(d.path(), &["report", sample, "-o", "bundle"]).expect_code(4);
    let r = coroner(
        d.path(),
        &["report", sample, "-o", "redacted", "--redact", "--json"],
    );
    r.expect_code(0);
    assert_eq!(r.json()["files"].as_array().unwrap().len(), 2);
    assert!(!d.join("redacted/capture.slim.core.zst").exists());
}

/// The bundled panic sample (a real guest's slim capture).
fn panic_sample() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/captures/panic.core.zst")
        .display()
        .to_string()
}

/// Runs `sh -c SCRIPT` (with pipefail) in `dir` with `$CORONER` set.
fn shell(dir: &Path, script: &str) -> std::process::Output {
    std::process::Command::new("bash")
        .args(["-o", "pipefail", "-c", script])
        .env("CORONER", env!("CARGO_BIN_EXE_coroner"))
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Every integer in `v` fits a double exactly (what jq 1.6 and JavaScript read).
fn find_big_ints(v: &serde_json::Value, at: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Number(n) if n.as_u64().is_some_and(|n| n > 1 << 53) => {
            out.push(format!("{at} = {n}"));
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                find_big_ints(x, &format!("{at}[{i}]"), out);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                find_big_ints(x, &format!("{at}.{k}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn json_addresses_are_hex_strings_that_survive_real_consumers() {
    let d = Dir::new();
    let sample = panic_sample();
    for cmd in ["analyze", "inspect", "dmesg", "mce"] {
        let r = coroner(d.path(), &[cmd, &sample, "--json"]);
        r.expect_code(0);
        let j = r.json();
        assert_eq!(j["schema"], 2, "coroner {cmd}");
        let mut big = Vec::new();
        find_big_ints(&j, cmd, &mut big);
        assert!(big.is_empty(), "numbers a double cannot hold: {big:?}");
    }
    let a = coroner(d.path(), &["analyze", &sample, "--json"]).json();
    let rip = a["vcpus"][0]["rip"].as_str().unwrap().to_string();
    assert!(unhex(&a["vcpus"][0]["rip"]).unwrap() > 1 << 53, "{rip}");
    assert_eq!(rip, rip.to_lowercase());
    // Python's json module and jq give the address back digit for digit.
    let py = shell(
        d.path(),
        &format!(
            "$CORONER analyze {sample} --json | python3 -c \
             'import json,sys; d=json.load(sys.stdin); print(d[\"vcpus\"][0][\"rip\"]); \
              print(int(d[\"vcpus\"][0][\"rip\"], 16))'"
        ),
    );
    assert!(py.status.success(), "{py:?}");
    let out = String::from_utf8(py.stdout).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(rip.as_str()));
    assert_eq!(
        lines.next().unwrap().parse::<u64>().unwrap(),
        unhex(&a["vcpus"][0]["rip"]).unwrap()
    );
    let sym = coroner(d.path(), &["sym", &sample, &rip, "--json"]);
    sym.expect_code(0);
    assert_eq!(
        sym.json()["answers"][0]["address"].as_str(),
        Some(rip.as_str())
    );
    // One casing for enums: kebab-case.
    let i = coroner(d.path(), &["inspect", &sample, "--json"]).json();
    assert_eq!(i["vcpus"][0]["mode"]["paging"], "four-level");
    assert_eq!(i["layout"], "program-headers-first");
    let m = coroner(d.path(), &["dmesg", &sample, "--json"]).json();
    assert_eq!(m["kind"], "lockless");
}

#[test]
fn json_and_text_to_a_closed_pipe_end_quietly() {
    let d = Dir::new();
    let sample = panic_sample();
    // The JSON is ~100 KB, more than a pipe holds: the writer sees EPIPE.
    for (what, script) in [
        ("JSON", format!("$CORONER dmesg {sample} --json | head -3")),
        ("text", format!("$CORONER dmesg {sample} | head -1")),
        (
            "JSON",
            format!("$CORONER inspect {sample} --json | head -c 10"),
        ),
        (
            "text",
            format!("$CORONER sym {sample} {} | head -1", "panic ".repeat(4000)),
        ),
    ] {
        let o = shell(d.path(), &script);
        assert!(o.status.success(), "{what}: {script}: {o:?}");
        assert!(o.stderr.is_empty(), "{what}: {script}: {o:?}");
    }
}

#[test]
fn dmesg_levels_by_name_list_and_range() {
    let d = Dir::new();
    let sample = panic_sample();
    let levels = |spec: &str| -> Vec<u64> {
        let r = coroner(d.path(), &["dmesg", &sample, "--json", "--level", spec]);
        r.expect_code(0);
        let mut l: Vec<u64> = r.json()["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["level"].as_u64().unwrap())
            .collect();
        l.sort_unstable();
        l.dedup();
        l
    };
    let all = levels("debug+");
    assert!(all.len() >= 3, "{all:?}");
    assert_eq!(
        levels("err,warn"),
        [3, 4]
            .into_iter()
            .filter(|l| all.contains(l))
            .collect::<Vec<_>>()
    );
    assert_eq!(levels("3,4"), levels("err,warn"));
    assert!(levels("err+").iter().all(|l| *l <= 3));
    assert!(levels("+err").iter().all(|l| *l >= 3));
    assert_eq!(levels("info"), [6]);
    // The text output filters the same way.
    let names = [
        "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
    ];
    let text = coroner(
        d.path(),
        &[
            "dmesg",
            &sample,
            "--level",
            names[all[0] as usize],
            "--show-level",
        ],
    );
    text.expect_code(0);
    assert!(!text.stdout().is_empty());
    let prefix = format!("<{}>", all[0]);
    assert!(
        text.stdout().lines().all(|l| l.starts_with(&prefix)),
        "{}",
        text.stdout()
    );
    let bad = coroner(d.path(), &["dmesg", &sample, "--level", "fatal"]);
    bad.expect_code(2);
    assert!(bad.stderr().contains("\"fatal\"") && bad.stderr().contains("emerg"));
}

#[test]
fn compression_level_has_its_own_name() {
    let d = Dir::new();
    write_elf(&d, "vm.elf");
    coroner(
        d.path(),
        &[
            "compress",
            "vm.elf",
            "-o",
            "a.core.zst",
            "--compression-level",
            "1",
        ],
    )
    .expect_code(0);
    // The old spelling still works, hidden.
    coroner(
        d.path(),
        &["compress", "vm.elf", "-o", "b.core.zst", "--level", "1"],
    )
    .expect_code(0);
    let help = coroner(d.path(), &["compress", "--help"]).stdout();
    assert!(
        help.contains("--compression-level") && !help.contains("--level"),
        "{help}"
    );
    coroner(
        d.path(),
        &[
            "compress",
            "vm.elf",
            "-o",
            "c.core.zst",
            "--compression-level",
            "99",
        ],
    )
    .expect_code(2);
}

#[test]
fn every_failure_under_json_is_one_error_object() {
    let d = Dir::new();
    std::fs::write(d.join("junk"), b"not a dump").unwrap();
    for (args, class, code) in [
        (vec!["inspect", "missing.core.zst", "--json"], "input", 3),
        (vec!["dmesg", "junk", "--json"], "input", 3),
        (vec!["analyze", "--json", "--no-such-flag"], "usage", 2),
        (vec!["status", "--qmp", "tcp:nowhere", "--json"], "usage", 2),
        (
            vec!["exit", "--qemu-log", "missing.log", "--json"],
            "input",
            3,
        ),
    ] {
        let r = coroner(d.path(), &args);
        r.expect_code(code);
        let j = r.json();
        assert_eq!(j["error"]["class"], class, "{args:?}: {j}");
        assert_eq!(j["error"]["exit_code"], code, "{args:?}: {j}");
        let message = j["error"]["message"].as_str().unwrap();
        assert!(
            !message.is_empty() && r.stderr().contains(message),
            "{args:?}: {j}"
        );
    }
    // Without --json, stdout stays empty.
    let r = coroner(d.path(), &["inspect", "missing.core.zst"]);
    r.expect_code(3);
    assert!(r.stdout().is_empty());
}

#[test]
fn completions_and_man_pages() {
    let d = Dir::new();
    let bash = coroner(d.path(), &["completions", "bash"]);
    bash.expect_code(0);
    std::fs::write(d.join("c.bash"), bash.stdout()).unwrap();
    assert!(bash.stdout().contains("--compression-level"));
    let check = shell(
        d.path(),
        "bash -n c.bash && source c.bash && complete -p coroner",
    );
    assert!(check.status.success(), "{check:?}");
    for shell_name in ["zsh", "fish"] {
        let r = coroner(d.path(), &["completions", shell_name]);
        r.expect_code(0);
        assert!(r.stdout().contains("capture"), "{shell_name}");
    }
    coroner(d.path(), &["completions", "tcsh"]).expect_code(2);
    let man = coroner(d.path(), &["man"]);
    man.expect_code(0);
    assert!(man.stdout().starts_with(".ie") || man.stdout().contains(".TH coroner 1"));
    for cmd in ["capture", "analyze", "dmesg", "watch", "completions"] {
        assert!(man.stdout().contains(cmd), "man lacks {cmd}");
    }
    let page = coroner(d.path(), &["man", "dmesg"]);
    page.expect_code(0);
    assert!(
        page.stdout().contains(".TH coroner\\-dmesg 1")
            || page.stdout().contains(".TH coroner-dmesg 1"),
        "{}",
        page.stdout()
    );
    coroner(d.path(), &["man", "frobnicate"]).expect_code(2);
    // Rendered by man(1) when it is installed.
    if std::path::Path::new("/usr/bin/man").exists() {
        std::fs::write(d.join("coroner.1"), man.stdout()).unwrap();
        let r = shell(d.path(), "MANWIDTH=80 man -l coroner.1 | cat");
        assert!(r.status.success(), "{r:?}");
        assert!(
            String::from_utf8_lossy(&r.stdout).contains("Post-mortem"),
            "{r:?}"
        );
    }
}

#[test]
fn times_are_rfc3339_and_a_missing_symbol_says_why() {
    let d = Dir::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/captures");
    let mce = coroner(
        d.path(),
        &["mce", root.join("mce-fatal.core.zst").to_str().unwrap()],
    );
    mce.expect_code(0);
    let text = mce.stdout();
    // The record's TIME and qemu's event, both RFC 3339 UTC.
    assert!(text.contains("TIME 2026-11-22T13:05:30Z"), "{text}");
    assert!(
        text.contains("MEMORY_FAILURE 2026-11-22T13:05:31.956200Z"),
        "{text}"
    );
    let panic = root.join("panic.core.zst");
    let a = coroner(d.path(), &["analyze", panic.to_str().unwrap(), "--json"]).json();
    let in_module = &a["vcpus"][1];
    assert!(in_module["symbol"].is_null(), "{in_module}");
    assert_eq!(in_module["no_symbol"], "in-a-module");
    assert!(a["vcpus"][0]["symbol"].is_string());
    assert!(a["vcpus"][0].get("no_symbol").is_none());
    let text = coroner(d.path(), &["analyze", panic.to_str().unwrap()]).stdout();
    assert!(text.contains("(in a module)"), "{text}");
    // The sample panicked on CPU 1: analyze names it, report shows its registers.
    assert_eq!(a["panic_cpu"]["cpu"], 1, "{}", a["panic_cpu"]);
    assert_eq!(a["panic_cpu"]["source"], "log-cpu-line");
    assert!(
        text.contains("panic CPU   1 (the log's `CPU: 1 PID:` line"),
        "{text}"
    );
    coroner(d.path(), &["report", panic.to_str().unwrap(), "-o", "b"]).expect_code(0);
    let md = std::fs::read_to_string(d.join("b/summary.md")).unwrap();
    assert!(
        md.contains("## Registers (vCPU 1)\n\nChosen as the CPU that panicked"),
        "{md}"
    );
}

/// Every writer creates its output under a fresh name: a symlink planted at `OUT.partial`
/// (or at `OUT`) is replaced, never written through; a stale 0644 `OUT.partial` neither
/// blocks nor lends its mode; a failed write (here: the output path is a directory)
/// leaves nothing behind; a bundle appears whole or not at all.
#[test]
fn outputs_are_created_fresh_and_failures_leave_nothing() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let d = Dir::new();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let victim = d.join("victim");
    std::fs::write(&victim, "v\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_elf(&d, "p.elf");
    let sample = panic_sample();

    // compress, export and slim with a symlink planted at OUT.partial.
    let runs: [(&str, Vec<&str>); 3] = [
        ("c.core.zst", vec!["compress", "p.elf", "-o", "c.core.zst"]),
        ("e.elf", vec!["export", "c.core.zst", "-o", "e.elf"]),
        ("s.core.zst", vec!["slim", &sample, "-o", "s.core.zst"]),
    ];
    for (out, args) in &runs {
        let link = d.join(&format!("{out}.partial"));
        symlink(&victim, &link).unwrap();
        coroner(d.path(), args).expect_code(0);
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            b"v\n",
            "{out} wrote through"
        );
        assert_eq!(mode(&victim), 0o644, "{out} chmodded the victim");
        assert_eq!(mode(&d.join(out)), 0o600, "{out}");
        std::fs::remove_file(&link).unwrap();
        assert_eq!(output_files(d.path(), out), [out.to_string()]);
    }

    // export over a stale 0644 OUT.partial, and with a symlink at OUT itself.
    std::fs::write(d.join("x.elf.partial"), "stale").unwrap();
    std::fs::set_permissions(
        d.join("x.elf.partial"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    symlink(&victim, d.join("x.elf")).unwrap();
    coroner(
        d.path(),
        &["export", "c.core.zst", "-o", "x.elf", "--force"],
    )
    .expect_code(0);
    assert_eq!(mode(&d.join("x.elf")), 0o600);
    assert!(!std::fs::symlink_metadata(d.join("x.elf"))
        .unwrap()
        .is_symlink());
    assert_eq!(std::fs::read(&victim).unwrap(), b"v\n");
    assert_eq!(std::fs::read(d.join("x.elf.partial")).unwrap(), b"stale");

    // Into a directory path: refused (exit 4), nothing left.
    std::fs::create_dir(d.join("dir")).unwrap();
    for args in [
        vec!["export", "c.core.zst", "-o", "dir", "--force"],
        vec!["slim", &sample, "-o", "dir", "--force"],
        vec!["compress", "p.elf", "-o", "dir", "--force"],
    ] {
        let r = coroner(d.path(), &args);
        r.expect_code(4);
        assert!(r.stderr().contains("directory"), "{}", r.stderr());
        assert_eq!(output_files(d.path(), "dir"), ["dir"]);
        assert_eq!(std::fs::read_dir(d.join("dir")).unwrap().count(), 0);
    }

    // A bundle: whole, 0700, with no temporary directory beside it.
    let r = coroner(d.path(), &["report", &sample, "-o", "b", "--redact"]);
    r.expect_code(0);
    assert_eq!(mode(&d.join("b")), 0o700);
    assert_eq!(output_files(d.path(), "b"), ["b"]);
    // A failed report (its input is no dump) leaves no directory.
    let r = coroner(d.path(), &["report", "p.elf.nope", "-o", "b2"]);
    assert_ne!(r.code(), 0);
    assert_no_output(d.path(), "b2");
    // A report that fails part-way, after its first files (a write limit: `ulimit -f`,
    // SIGXFSZ ignored so writes fail with EFBIG), leaves no bundle either.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 64; exec {} report {sample} -o b3",
            env!("CARGO_BIN_EXE_coroner")
        ))
        .current_dir(d.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("capture.slim.core.zst"), "{stderr}");
    assert_no_output(d.path(), "b3");
}

/// Files that are no dump coroner reads are named, with what to do; a FIFO does not
/// block; a message does not say the same thing twice.
#[test]
fn inputs_that_are_not_dumps_are_named() {
    let d = Dir::new();
    let sample = panic_sample();
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "m.bin",
            b"QEVM\0\0\0\x03aaaaaaaaaaaaaaaa",
            "virsh dump --memory-only",
        ),
        // A kdump file cut within its header: named, and called truncated.
        (
            "k.bin",
            b"KDUMP   \x06\0\0\0aaaaaaaaaaaa",
            "kdump-compressed dump at offset 0x0: the file has 24 bytes",
        ),
        ("w.bin", b"PAGEDU64aaaaaaaaaaaaaaaa", "Windows crash dump"),
        ("g.bin", b"GIF89aaaaaaaaaaaaaaaaaaa", "47 49 46 38"),
    ];
    for (name, bytes, says) in cases {
        std::fs::write(d.join(name), bytes).unwrap();
        for cmd in ["inspect", "analyze"] {
            let r = coroner(d.path(), &[cmd, name]);
            r.expect_code(3);
            assert!(r.stderr().contains(says), "{cmd} {name}: {}", r.stderr());
        }
    }
    // A container given to compress, an executable given to analyze.
    let r = coroner(d.path(), &["compress", &sample, "-o", "again.core.zst"]);
    r.expect_code(3);
    assert!(r.stderr().contains("container already"), "{}", r.stderr());
    let r = coroner(d.path(), &["analyze", "/bin/sh"]);
    r.expect_code(3);
    assert!(r.stderr().contains("not a core dump"), "{}", r.stderr());
    // A FIFO is refused at once, whatever the command.
    mkfifo(&d.join("fifo"));
    for args in [
        vec!["analyze", "fifo"],
        vec!["compress", "fifo", "-o", "f.core.zst"],
    ] {
        let r = coroner(d.path(), &args);
        r.expect_code(3);
        assert!(r.stderr().contains("FIFO"), "{}", r.stderr());
    }
    // "cannot read X: cannot open X" said once.
    let r = coroner(d.path(), &["analyze", "missing.elf"]);
    r.expect_code(3);
    assert_eq!(
        r.stderr().matches("missing.elf").count(),
        1,
        "{}",
        r.stderr()
    );
}

fn mkfifo(p: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .unwrap();
    assert!(ok.success());
}

/// A container whose metadata strings are hostile: escape sequences and a 15 MiB `tool`.
fn hostile_metadata_container(d: &Dir, name: &str) -> std::path::PathBuf {
    use coroner_formats::{ContainerWriter, Metadata, WriteOptions};
    let path = d.join(name);
    let mut tool = String::from("\x1b]0;owned\x07\x1b[2Jcoroner ");
    tool.push_str(&"A".repeat(15 << 20));
    let mut meta = Metadata::new(tool);
    meta.origin = Some("\x1b[31morigin\x1b[0m".into());
    let mut w = ContainerWriter::create(&path, WriteOptions::default()).unwrap();
    std::io::Write::write_all(&mut w, &ElfBuilder::default().build()).unwrap();
    w.finish(meta).unwrap();
    path
}

/// Peak resident memory (KiB) of a command, sampled from /proc while it runs.
fn peak_rss_kib(dir: &Path, args: &[&str]) -> (u64, std::process::Output) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_coroner"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let mut peak = 0u64;
            while let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kb) = text
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    peak = peak.max(kb);
                }
                if text.contains("State:\tZ") {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            peak
        });
        let out = child.wait_with_output().unwrap();
        (h.join().unwrap(), out)
    });
    out
}

/// Metadata strings are escaped in text output and cost bounded memory to show.
#[test]
fn hostile_metadata_is_escaped_and_bounded() {
    let d = Dir::new();
    hostile_metadata_container(&d, "h.core.zst");
    let r = coroner(d.path(), &["inspect", "h.core.zst"]);
    r.expect_code(0);
    let out = r.stdout();
    assert!(
        !out.contains('\x1b') && !out.contains('\x07'),
        "raw escape in inspect"
    );
    assert!(
        out.contains("\\e]0;owned"),
        "{}",
        &out[..out.len().min(2000)]
    );
    assert!(out.len() < 1 << 20, "inspect printed {} bytes", out.len());
    let (peak, out) = peak_rss_kib(d.path(), &["tui", "h.core.zst", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(peak > 0);
    assert!(
        peak < 160 * 1024,
        "tui --json peaked at {} MiB",
        peak / 1024
    );
}

/// Manual measurement (not run by default): a container whose ELF claims `GIB` GiB of
/// zero RAM, for timing `analyze` on it. `HOSTILE_GIB=64 cargo test -- --ignored`.
#[test]
#[ignore]
fn make_a_container_of_zero_frames() {
    use coroner_formats::{ContainerWriter, Metadata, WriteOptions};
    let gib: u64 = std::env::var("HOSTILE_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let elf = ElfBuilder {
        ram: vec![(0, vec![0x11; 4096])],
        // No note: analyze then searches RAM for the guest's VMCOREINFO.
        vmcoreinfo: None,
        ..ElfBuilder::default()
    }
    .build();
    // Make the one PT_LOAD claim `gib` GiB: patch p_filesz/p_memsz of the last phdr.
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(elf[56..58].try_into().unwrap()) as usize;
    let last = phoff + (phnum - 1) * 56;
    let mut head = elf.clone();
    let size = gib << 30;
    head[last + 32..last + 40].copy_from_slice(&size.to_le_bytes());
    head[last + 40..last + 48].copy_from_slice(&size.to_le_bytes());
    let out = std::path::PathBuf::from(
        std::env::var("HOSTILE_OUT").unwrap_or("/tmp/zeros.core.zst".into()),
    );
    let mut w = ContainerWriter::create(&out, WriteOptions::default()).unwrap();
    std::io::Write::write_all(&mut w, &head).unwrap();
    let zeros = vec![0u8; 64 << 20];
    let mut left = size - 4096;
    std::io::Write::write_all(&mut w, &[0x11; 4096]).unwrap();
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        std::io::Write::write_all(&mut w, &zeros[..n]).unwrap();
        left -= n as u64;
    }
    w.finish(Metadata::new("test")).unwrap();
}

/// `slim` of a container with a damaged frame that no analysis needed fails (exit 3) and
/// writes nothing, instead of a slim capture that claims a sound source.
#[test]
fn slim_refuses_a_damaged_source() {
    let d = Dir::new();
    let mut b = ElfBuilder::default();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..(1 << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    b.ram.push((0x20_0000, noise));
    std::fs::write(d.join("n.elf"), b.build()).unwrap();
    coroner(
        d.path(),
        &[
            "compress",
            "n.elf",
            "-o",
            "n.core.zst",
            "--frame-size",
            "65536",
        ],
    )
    .expect_code(0);
    coroner(d.path(), &["slim", "n.core.zst", "-o", "ok.core.zst"]).expect_code(0);
    let mut z = std::fs::read(d.join("n.core.zst")).unwrap();
    let mid = z.len() / 2;
    for b in &mut z[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(d.join("bad.core.zst"), &z).unwrap();
    let r = coroner(d.path(), &["slim", "bad.core.zst", "-o", "s.core.zst"]);
    r.expect_code(3);
    assert!(r.stderr().contains("damaged"), "{}", r.stderr());
    assert_no_output(d.path(), "s.core.zst");
}

/// A slim capture is named as coroner's own ELF, not guessed to be an old qemu's, and no
/// output points to a document that is not in the repository.
#[test]
fn slim_captures_are_named_and_output_is_self_contained() {
    let d = Dir::new();
    let r = coroner(d.path(), &["inspect", &panic_sample()]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("written by  coroner slim"),
        "{}",
        r.stdout()
    );
    assert!(!r.stdout().contains("qemu < 7.2"), "{}", r.stdout());
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/captures/kvm-emulation-failure.core.zst");
    let r = coroner(d.path(), &["exit", sample.to_str().unwrap()]);
    r.expect_code(0);
    assert!(!r.stdout().contains('§'), "{}", r.stdout());
}

#[test]
fn verify_checks_the_recorded_digest_of_each_format() {
    let d = Dir::new();
    write_elf(&d, "vm.elf");
    coroner(d.path(), &["compress", "vm.elf", "-o", "vm.core.zst"]).expect_code(0);
    let r = coroner(d.path(), &["verify", "vm.core.zst", "--json"]);
    r.expect_code(0);
    let f = &r.json()["files"][0];
    assert_eq!(f["verdict"], "ok");
    assert_eq!(f["format_version"], 2);
    assert_eq!(f["digest"]["algorithm"], "frames_blake3");
    // The digest standard tools compute from the ELF.
    assert_eq!(
        f["digest"]["hex"].as_str(),
        Some(&*crate::util::frames_blake3_file(&d.join("vm.elf")))
    );
    assert_eq!(f["recorded"], f["digest"]);

    // A format-1 capture (the bundled samples predate format 2): sha256 of the content.
    let sample = panic_sample();
    let r = coroner(d.path(), &["verify", &sample, "--json"]);
    r.expect_code(0);
    let f = &r.json()["files"][0];
    assert_eq!(
        (f["verdict"].as_str(), f["format_version"].as_u64()),
        (Some("ok"), Some(1))
    );
    assert_eq!(f["digest"]["algorithm"], "sha256");

    // A recorded digest with one digit changed: the file stays well-formed.
    let mut bytes = std::fs::read(d.join("vm.core.zst")).unwrap();
    let recorded = f_hex(&bytes);
    let at = bytes
        .windows(recorded.len())
        .position(|w| w == recorded.as_bytes())
        .unwrap();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(d.join("lied.core.zst"), &bytes).unwrap();
    // A cut file has no seek table.
    std::fs::write(d.join("cut.core.zst"), &bytes[..bytes.len() / 2]).unwrap();
    let r = coroner(
        d.path(),
        &[
            "verify",
            "vm.core.zst",
            "lied.core.zst",
            "cut.core.zst",
            "--json",
        ],
    );
    r.expect_code(3);
    let verdicts: Vec<_> = r.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["verdict"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(verdicts, ["ok", "mismatch", "unreadable"]);
    let r = coroner(d.path(), &["verify", "lied.core.zst"]);
    r.expect_code(3);
    assert!(r.stdout().contains("MISMATCH"), "{}", r.stdout());
    assert!(
        r.stdout().contains("content_frames_blake3"),
        "{}",
        r.stdout()
    );
}

/// The `content_frames_blake3` a container's metadata records.
fn f_hex(container: &[u8]) -> String {
    let key = b"\"content_frames_blake3\":\"";
    let at = container.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    String::from_utf8(container[at..at + 64].to_vec()).unwrap()
}

#[test]
fn domain_options_that_do_not_apply_are_usage_errors() {
    let d = Dir::new();
    for args in [
        &[
            "capture",
            "--qmp",
            "/run/x.qmp",
            "--connect",
            "qemu:///session",
            "-o",
            "x.core.zst",
        ][..],
        &[
            "status",
            "--qmp",
            "/run/x.qmp",
            "--connect",
            "qemu:///session",
        ],
        &[
            "watch",
            "--qmp",
            "/run/x.qmp",
            "--connect",
            "qemu:///session",
            "--dir",
            "caps",
        ],
        &[
            "capture",
            "--domain",
            "vm1",
            "--qmp",
            "/run/x.qmp",
            "-o",
            "x.core.zst",
        ],
        &[
            "capture",
            "--qmp",
            "/run/x.qmp",
            "--monitor",
            "-o",
            "x.core.zst",
        ],
        &["watch", "--qmp", "/run/x.qmp", "--monitor", "--dir", "caps"],
        &["watch", "--all-domains", "--domain", "vm1", "--dir", "caps"],
    ] {
        let r = coroner(d.path(), args);
        r.expect_code(2);
        assert!(
            !d.join("x.core.zst").exists() && !d.join("caps").exists(),
            "{args:?}"
        );
    }
}
