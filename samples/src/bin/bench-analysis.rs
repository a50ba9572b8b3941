//! `bench-analysis`: the analysis commands (`coroner dmesg`, `mce`, `analyze`, and `tui`
//! drawing every pane once off-screen, an upper bound of its first frame) on
//! captures of a 256 MiB and an 8 GiB guest, whole process, with and without the
//! VMCOREINFO candidates recorded at capture, beside the peers installed on this machine
//! (vmcore-dmesg, makedumpfile --dump-dmesg) on the same dump; and on qemu's
//! `kdump-zlib` dump of the same guest (flattened, and rearranged by makedumpfile -R),
//! beside `makedumpfile --dump-dmesg` and crash's `log`. Not a test.
//!
//! Usage: cargo build --release --workspace &&
//!        target/release/bench-analysis [--sizes 256,8192] [--scenario panic|mce] [--tasks N]
//!        [--vmlinux PATH]
//!
//! `coroner ps`, `coroner modules` and `coroner bt --all` are timed too, beside crash's
//! `ps` + `mod` and `bt -a` + `foreach bt` on the same ELF dump when crash is installed
//! and `--vmlinux PATH` names the guest kernel's debuginfo vmlinux (crash needs it;
//! coroner does not): Debian's `linux-image-RELEASE-dbg`, `usr/lib/debug/boot/vmlinux-RELEASE`.
//! `--tasks N` has the guest start N more sleeping tasks before the freeze.
//!
//! `--scenario mce` freezes the guests with a fatal machine check (HMP `mce`) and the
//! capture waits for it, so its metadata holds qemu's MEMORY_FAILURE event.
//! `--scenario kvm` boots the bare-metal guest whose `addps` on the VGA window KVM cannot
//! emulate (needs /dev/kvm), and times `coroner exit` on its capture and on its log.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use coroner_formats::{ContainerWriter, MappedFile, Metadata, WriteOptions};
use coroner_samples::kit::{Guest, GuestOptions, Scenario};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A timed command: what it is, its program and its arguments.
type Run<'a> = (&'a str, &'a dyn AsRef<OsStr>, Vec<&'a dyn AsRef<OsStr>>);

fn main() {
    if let Err(e) = run() {
        eprintln!("bench-analysis: {e}");
        std::process::exit(1);
    }
}

/// Runs `cmd` under GNU time: (seconds, peak RSS KiB, exit code, first stderr line).
fn timed(cmd: &mut Command) -> Res<(f64, u64, i32, String)> {
    let mut t = Command::new("/usr/bin/time");
    t.arg("-f")
        .arg("@@ %e %M")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    let out = t.output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    let stats = err
        .lines()
        .find_map(|l| l.strip_prefix("@@ "))
        .unwrap_or("0 0");
    let mut it = stats.split_whitespace();
    let secs = it.next().unwrap_or("0").parse().unwrap_or(0.0);
    let kib = it.next().unwrap_or("0").parse().unwrap_or(0);
    let first = err
        .lines()
        .find(|l| !l.starts_with("@@") && !l.trim().is_empty() && !l.starts_with("Command exited"))
        .unwrap_or("")
        .chars()
        .take(70)
        .collect();
    Ok((secs, kib, out.status.code().unwrap_or(-1), first))
}

/// A container of `elf` written without the VMCOREINFO candidates.
fn plain_container(elf: &Path, out: &Path) -> Res<()> {
    let src = MappedFile::open(elf)?;
    let mut w = ContainerWriter::create(out, WriteOptions::default())?;
    for chunk in src.bytes().chunks(8 << 20) {
        w.write_all(chunk)?;
    }
    w.finish(Metadata::new("bench-analysis (no candidates)"))?;
    Ok(())
}

fn run() -> Res<()> {
    let mut sizes = vec![256u32, 8192];
    let mut scenario = Scenario::Panic;
    let mut kvm = false;
    let mut tasks = 0u32;
    let mut vmlinux: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sizes" => {
                sizes = args
                    .next()
                    .ok_or("--sizes needs a value")?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--vmlinux" => vmlinux = Some(args.next().ok_or("--vmlinux needs a path")?.into()),
            "--tasks" => tasks = args.next().ok_or("--tasks needs a value")?.parse()?,
            "--scenario" => {
                scenario = match args.next().as_deref() {
                    Some("panic") => Scenario::Panic,
                    Some("mce") => Scenario::Mce,
                    Some("kvm") => {
                        kvm = true;
                        Scenario::Stop
                    }
                    other => return Err(format!("--scenario panic|mce|kvm, not {other:?}").into()),
                }
            }
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let coroner = std::env::current_exe()?.with_file_name("coroner");
    println!(
        "{:<10} {:<44} {:>8} {:>10} {:>6}  note",
        "guest", "command", "time s", "peak RSS", "exit"
    );
    if kvm {
        return run_kvm(&coroner, &sizes);
    }
    for mem in sizes {
        let mut guest = Guest::boot(&GuestOptions {
            mem_mib: mem,
            append: if tasks > 0 {
                format!("coroner.spawn={tasks}")
            } else {
                String::new()
            },
            ..GuestOptions::default()
        })?;
        let dir = guest.dir().to_path_buf();
        let cap = dir.join("cap.core.zst");
        // The capture waits for the freeze, so it records the events that explain it.
        let capture = Command::new(&coroner)
            .args(["capture", "--wait-frozen", "600", "--qmp"])
            .arg(guest.tool_socket())
            .arg("-o")
            .arg(&cap)
            .stdout(std::process::Stdio::null())
            .spawn()?;
        std::thread::sleep(std::time::Duration::from_secs(2));
        guest.freeze(scenario)?;
        let ok = capture.wait_with_output()?.status.success();
        if !ok {
            return Err("coroner capture failed".into());
        }
        let elf = dir.join("dump.elf");
        guest.dump(&elf, "elf")?;
        // The same frozen guest as qemu's kdump-zlib (makedumpfile's flattened layout),
        // and that rearranged into the plain layout by makedumpfile -R.
        let kdump_flat = dir.join("dump.kdump-flat");
        guest.dump(&kdump_flat, "kdump-zlib")?;
        drop(guest.qmp.execute("quit", None));
        let kdump = dir.join("dump.kdump");
        let rearranged = Command::new("makedumpfile")
            .arg("-R")
            .arg(&kdump)
            .stdin(std::fs::File::open(&kdump_flat)?)
            .stdout(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !rearranged {
            println!("(makedumpfile -R failed or is not installed: the plain kdump lines read the flattened file)");
            std::fs::copy(&kdump_flat, &kdump)?;
        }
        let plain = dir.join("plain.core.zst");
        plain_container(&elf, &plain)?;
        let label = if tasks > 0 {
            format!("{mem}M+{tasks}t")
        } else {
            format!("{mem} MiB")
        };
        let (slim, mdf_kdump, mdf) = (
            dir.join("slim.core.zst"),
            dir.join("mdf-kdump.txt"),
            dir.join("mdf.txt"),
        );
        // (what, program, arguments)
        let runs: Vec<Run<'_>> = vec![
            (
                "coroner dmesg CAPTURE (candidates recorded)",
                &coroner,
                vec![&"dmesg", &cap],
            ),
            (
                "coroner dmesg CONTAINER (nothing recorded)",
                &coroner,
                vec![&"dmesg", &plain],
            ),
            ("coroner dmesg ELF", &coroner, vec![&"dmesg", &elf]),
            ("coroner mce CAPTURE", &coroner, vec![&"mce", &cap]),
            ("coroner mce ELF", &coroner, vec![&"mce", &elf]),
            ("coroner analyze CAPTURE", &coroner, vec![&"analyze", &cap]),
            (
                "coroner dmesg KDUMP (kdump-zlib, plain)",
                &coroner,
                vec![&"dmesg", &kdump],
            ),
            (
                "coroner dmesg KDUMP-FLAT (as qemu wrote it)",
                &coroner,
                vec![&"dmesg", &kdump_flat],
            ),
            ("coroner analyze KDUMP", &coroner, vec![&"analyze", &kdump]),
            (
                "coroner bt --all KDUMP",
                &coroner,
                vec![&"bt", &"--all", &kdump],
            ),
            (
                "makedumpfile --dump-dmesg KDUMP",
                &"makedumpfile",
                vec![&"--dump-dmesg", &kdump, &mdf_kdump],
            ),
            ("coroner ps CAPTURE", &coroner, vec![&"ps", &cap]),
            ("coroner ps ELF", &coroner, vec![&"ps", &elf]),
            ("coroner modules CAPTURE", &coroner, vec![&"modules", &cap]),
            (
                "coroner bt --all CAPTURE",
                &coroner,
                vec![&"bt", &"--all", &cap],
            ),
            (
                "coroner bt --all ELF",
                &coroner,
                vec![&"bt", &"--all", &elf],
            ),
            (
                "coroner slim CAPTURE (size printed below)",
                &coroner,
                vec![&"slim", &cap, &"-o", &slim, &"--force"],
            ),
            (
                "coroner tui CAPTURE --json (all panes drawn)",
                &coroner,
                vec![&"tui", &cap, &"--json"],
            ),
            ("vmcore-dmesg ELF", &"vmcore-dmesg", vec![&elf]),
            (
                "makedumpfile --dump-dmesg ELF",
                &"makedumpfile",
                vec![&"--dump-dmesg", &elf, &mdf],
            ),
        ];
        for (what, program, args) in runs {
            let mut cmd = Command::new(program);
            cmd.args(args);
            let available = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "command -v {}",
                    cmd.get_program().to_string_lossy()
                ))
                .output()?
                .status
                .success();
            if !available {
                println!(
                    "{label:<10} {what:<44} {:>8} {:>10} {:>6}  not installed",
                    "-", "-", "-"
                );
                continue;
            }
            // First run warms the page cache; the second is reported.
            timed(&mut cmd)?;
            let (secs, kib, code, note) = timed(&mut cmd)?;
            println!(
                "{label:<10} {what:<44} {secs:>8.3} {:>7} MiB {code:>6}  {note}",
                kib / 1024
            );
        }
        crash_runs(&label, vmlinux.as_deref(), &elf, &kdump, &dir)?;
        let ps = Command::new(&coroner)
            .arg("ps")
            .arg(&cap)
            .arg("--json")
            .output()?;
        let listed = serde_json::from_slice::<serde_json::Value>(&ps.stdout)
            .ok()
            .and_then(|j| j["tasks"].as_array().map(Vec::len))
            .unwrap_or(0);
        println!("{label:<10} coroner ps lists {listed} tasks");
        let bt = Command::new(&coroner)
            .args(["bt", "--all", "--json"])
            .arg(&cap)
            .output()?;
        let (traces, complete) = serde_json::from_slice::<serde_json::Value>(&bt.stdout)
            .ok()
            .and_then(|j| {
                let all = j["backtraces"].as_array()?.clone();
                let done = all.iter().filter(|b| b["complete"] == true).count();
                Some((all.len(), done))
            })
            .unwrap_or((0, 0));
        println!("{label:<10} coroner bt --all: {traces} backtraces, {complete} complete");
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        println!(
            "{label:<10} capture {} bytes, slim capture {} bytes ({:.1}%)",
            size(&cap),
            size(&slim),
            100.0 * size(&slim) as f64 / size(&cap).max(1) as f64
        );
    }
    Ok(())
}

/// crash's `ps` + `mod` and `bt -a` + `foreach bt` on the ELF dump, and `log` on the
/// kdump file, with the debuginfo vmlinux; each line says why when it cannot run.
fn crash_runs(
    label: &str,
    vmlinux: Option<&Path>,
    elf: &Path,
    kdump: &Path,
    dir: &Path,
) -> Res<()> {
    let runs = [
        ("crash ps, mod (with debuginfo)", "ps\nmod\nquit\n", elf),
        (
            "crash bt -a, foreach bt (with debuginfo)",
            "bt -a\nforeach bt\nquit\n",
            elf,
        ),
        ("crash log KDUMP (with debuginfo)", "log\nquit\n", kdump),
    ];
    let installed = Command::new("sh")
        .args(["-c", "command -v crash"])
        .output()?
        .status
        .success();
    for (i, (what, script, dump)) in runs.iter().enumerate() {
        let why_not = if !installed {
            Some("not installed".to_string())
        } else {
            match vmlinux {
                None => Some("not run: needs --vmlinux (the debuginfo vmlinux)".to_string()),
                Some(v) if !v.exists() => Some(format!("not run: no {}", v.display())),
                Some(_) => None,
            }
        };
        if let Some(why) = why_not {
            println!(
                "{label:<10} {what:<44} {:>8} {:>10} {:>6}  {why}",
                "-", "-", "-"
            );
            continue;
        }
        let input = dir.join(format!("crash-{i}.txt"));
        std::fs::write(&input, script)?;
        let mut cmd = Command::new("crash");
        cmd.arg("-s").args(vmlinux).arg(dump).arg("-i").arg(&input);
        timed(&mut cmd)?;
        let (secs, kib, code, note) = timed(&mut cmd)?;
        println!(
            "{label:<10} {what:<44} {secs:>8.3} {:>7} MiB {code:>6}  {note}",
            kib / 1024
        );
    }
    Ok(())
}

/// `coroner exit` and `analyze` on captures of the bare-metal KVM emulation failure.
fn run_kvm(coroner: &Path, sizes: &[u32]) -> Res<()> {
    use coroner_samples::baremetal::{BareGuest, Variant};
    for &mem in sizes {
        let mut guest = BareGuest::boot_with_mem(Variant::RealMode, mem)?;
        guest.wait_for_state("internal-error", std::time::Duration::from_secs(120))?;
        let dir = guest.dir().to_path_buf();
        let cap = dir.join("cap.core.zst");
        let ok = Command::new(coroner)
            .args(["capture", "--qmp"])
            .arg(guest.tool_socket())
            .arg("-o")
            .arg(&cap)
            .output()?
            .status
            .success();
        if !ok {
            return Err("coroner capture failed".into());
        }
        let label = format!("{mem} MiB");
        let runs: Vec<(&str, Vec<std::ffi::OsString>)> = vec![
            (
                "coroner exit CAPTURE",
                vec!["exit".into(), cap.clone().into()],
            ),
            (
                "coroner exit --qemu-log LOG",
                vec!["exit".into(), "--qemu-log".into(), guest.log_path().into()],
            ),
            (
                "coroner analyze CAPTURE",
                vec!["analyze".into(), cap.clone().into()],
            ),
        ];
        for (what, args) in runs {
            let mut cmd = Command::new(coroner);
            cmd.args(&args);
            timed(&mut cmd)?;
            let (secs, kib, code, note) = timed(&mut cmd)?;
            println!(
                "{label:<10} {what:<44} {secs:>8.3} {:>7} MiB {code:>6}  {note}",
                kib / 1024
            );
        }
    }
    Ok(())
}
