//! `bench-libvirt`: `coroner capture --domain` (libvirt's own memory-only dump into a
//! FIFO; ELF, and with `--dump-format kdump` libvirt's kdump-zlib converted as it
//! arrives) beside `virsh dump --memory-only` to a file (ELF and kdump-zlib) on the same
//! frozen libvirt domain of the kit (2 GiB by default), and `coroner capture --qmp` on
//! the kit's guest of the same size and load under plain qemu: busy
//! (`coroner.fill=450`) and idle. (`--qmp` on the libvirt domain itself is not run: a
//! dump through a second monitor crashes libvirtd 9.0.) Each method `--runs` times,
//! medians. Not a test; needs root and libvirt (samples/kit/ensure.sh).
//!
//! Usage: cargo build --release --workspace &&
//!        target/release/bench-libvirt [--mem MiB] [--fill MiB] [--runs N] [--only busy|idle]

use std::process::{Command, Stdio};
use std::time::Instant;

use coroner_samples::kit::{Guest, GuestOptions, Scenario};
use coroner_samples::libvirt_guest::{self, LibvirtGuest};

use coroner_samples::bench::median;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench-libvirt: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let (mut mem, mut fill, mut runs) = (2048u32, 450u32, 5usize);
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--mem" => mem = val()?.parse()?,
            "--fill" => fill = val()?.parse()?,
            "--runs" => runs = val()?.parse::<usize>()?.max(1),
            "--only" => only = Some(val()?),
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let coroner = std::env::current_exe()?.with_file_name("coroner");
    libvirt_guest::start_daemons()?;
    for (kind, append) in [
        ("busy", format!("coroner.fill={fill}")),
        ("idle", String::new()),
    ] {
        if only.as_deref().is_some_and(|o| o != kind) {
            continue;
        }
        let guest = LibvirtGuest::boot_with(&libvirt_guest::LibvirtOptions {
            mem_mib: mem,
            append: append.clone(),
            ..Default::default()
        })?;
        libvirt_guest::virsh(&["suspend", &guest.name])?;
        let mut plain = Guest::boot(&GuestOptions {
            mem_mib: mem,
            append: append.clone(),
            ..GuestOptions::default()
        })?;
        plain.freeze(Scenario::Stop)?;
        let out = guest.dir().join("cap.core.zst");
        let sock = plain.tool_socket().display().to_string();
        let methods: [(&str, Vec<String>); 3] = [
            (
                "coroner capture --domain (libvirt's dump)",
                vec!["--domain".into(), guest.name.clone()],
            ),
            (
                "coroner capture --domain --dump-format kdump",
                vec![
                    "--domain".into(),
                    guest.name.clone(),
                    "--dump-format".into(),
                    "kdump".into(),
                ],
            ),
            (
                "coroner capture --qmp (plain qemu, same guest)",
                vec!["--qmp".into(), sock],
            ),
        ];
        let mut rows: Vec<(String, Vec<f64>, u64)> = Vec::new();
        for _ in 0..runs {
            for (what, extra) in &methods {
                let t = Instant::now();
                let o = Command::new(&coroner)
                    .arg("capture")
                    .args(extra)
                    .args(["--force", "--json", "-o"])
                    .arg(&out)
                    .stderr(Stdio::inherit())
                    .output()?;
                let secs = t.elapsed().as_secs_f64();
                if !o.status.success() {
                    return Err(format!("{what} failed").into());
                }
                let rep: serde_json::Value = serde_json::from_slice(&o.stdout)?;
                let size = rep["compressed_size"].as_u64().unwrap_or(0);
                match rows.iter_mut().find(|r| r.0 == *what) {
                    Some(r) => r.1.push(secs),
                    None => rows.push((what.to_string(), vec![secs], size)),
                }
            }
            for (what, format) in [
                ("virsh dump --memory-only to a file", "elf"),
                ("virsh dump --memory-only --format kdump-zlib", "kdump-zlib"),
            ] {
                let file = guest.dir().join("virsh.dump");
                let t = Instant::now();
                guest.dump_as(&file, format)?;
                let secs = t.elapsed().as_secs_f64();
                let size = std::fs::metadata(&file)?.len();
                std::fs::remove_file(&file)?;
                match rows.iter_mut().find(|r| r.0 == what) {
                    Some(r) => r.1.push(secs),
                    None => rows.push((what.to_string(), vec![secs], size)),
                }
            }
        }
        println!("\n== {kind} libvirt domain: {mem} MiB RAM, median of {runs} runs");
        println!("{:<44} {:>7} {:>10}", "method", "time s", "size MiB");
        for (what, secs, size) in rows {
            println!(
                "{what:<44} {:>7.2} {:>10.1}",
                median(secs),
                size as f64 / (1 << 20) as f64
            );
        }
    }
    Ok(())
}
