//! `bench-capture`: `coroner capture` against the physical limit and the alternatives, on
//! real 2 GiB guests from the kit (busy: ~450 MB of non-zero data; idle). Not a test.
//!
//! In one run per guest, frozen by `stop`: qemu's raw ELF into a pipe drained and
//! discarded (the limit), `coroner capture` (wall time, size, peak RSS), qemu's
//! `kdump-zlib` to a file, and qemu's ELF piped through `zstd -1 -T2`.
//!
//! Usage: cargo build --release && target/release/bench-capture [--mem MiB] [--fill MiB]

use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coroner_samples::kit::{Guest, GuestOptions, Scenario};
use serde_json::json;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench-capture: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let mut mem = 2048u32;
    let mut fill = 450u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--mem" => mem = val()?.parse()?,
            "--fill" => fill = val()?.parse()?,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let coroner = std::env::current_exe()?.with_file_name("coroner");
    if !coroner.exists() {
        return Err(format!("{} not built: cargo build --release", coroner.display()).into());
    }
    for (kind, append) in [
        ("busy", format!("coroner.fill={fill}")),
        ("idle", String::new()),
    ] {
        let mut guest = Guest::boot(&GuestOptions {
            mem_mib: mem,
            append,
            ..GuestOptions::default()
        })?;
        guest.freeze(Scenario::Stop)?;
        let dir = guest.dir().to_path_buf();

        // The limit: qemu's ELF writer into a pipe that is read and thrown away.
        let (raw_secs, raw_bytes) = pipe_dump(&mut guest, None)?;

        let mut captures = Vec::new();
        for level in ["3", "1"] {
            let out = dir.join(format!("cap{level}.core.zst"));
            let t = Instant::now();
            let o = Command::new(&coroner)
                .args(["capture", "--compression-level", level, "--qmp"])
                .arg(guest.tool_socket())
                .arg("-o")
                .arg(&out)
                .arg("--json")
                .stderr(Stdio::inherit())
                .output()?;
            let secs = t.elapsed().as_secs_f64();
            if !o.status.success() {
                return Err("coroner capture failed".into());
            }
            let rep: serde_json::Value = serde_json::from_slice(&o.stdout)?;
            std::fs::remove_file(&out)?;
            captures.push((level, secs, rep));
        }

        let kdump = dir.join("dump.kdump");
        let t = Instant::now();
        guest.dump(&kdump, "kdump-zlib")?;
        let kdump_secs = t.elapsed().as_secs_f64();
        let kdump_size = std::fs::metadata(&kdump)?.len();
        std::fs::remove_file(&kdump)?;

        let zout = dir.join("elf.zst");
        let (z_secs, _) = pipe_dump(&mut guest, Some(&zout))?;
        let z_size = std::fs::metadata(&zout)?.len();

        println!(
            "\n== {kind} guest: {mem} MiB RAM, ELF {:.1} MiB",
            raw_bytes as f64 / (1 << 20) as f64
        );
        println!(
            "{:<36} {:>8} {:>9} {:>10} {:>9} {:>12}",
            "method", "time s", "vs limit", "size MiB", "ratio", "vs kdump-zlib"
        );
        let size_of = |r: &serde_json::Value| r["compressed_size"].as_u64().unwrap_or(0);
        let (_, cap3_secs, cap3) = &captures[0];
        let (_, cap1_secs, cap1) = &captures[1];
        let rows = [
            ("raw ELF into a pipe (the limit)", raw_secs, raw_bytes),
            (
                "coroner capture (level 3, default)",
                *cap3_secs,
                size_of(cap3),
            ),
            (
                "coroner capture --compression-level 1",
                *cap1_secs,
                size_of(cap1),
            ),
            ("qemu kdump-zlib to a file", kdump_secs, kdump_size),
            ("ELF piped through zstd -1 -T2", z_secs, z_size),
        ];
        for (what, secs, size) in rows {
            println!(
                "{what:<36} {secs:>8.2} {:>8.2}x {:>10.1} {:>8.1}x {:>11.2}x",
                secs / raw_secs,
                size as f64 / (1 << 20) as f64,
                raw_bytes as f64 / size.max(1) as f64,
                size as f64 / kdump_size.max(1) as f64
            );
        }
        println!(
            "coroner capture peak RSS: {:.0} MiB (target <= 256 MiB); steps in ms: {}",
            cap3["peak_rss_bytes"].as_u64().unwrap_or(0) as f64 / (1 << 20) as f64,
            cap3["timings"]
        );
    }
    Ok(())
}

/// Dumps the frozen guest as ELF into a pipe. With `zstd_out`, `zstd -1 -T2` reads the
/// pipe and writes that file; without, the pipe is drained here and discarded.
fn pipe_dump(guest: &mut Guest, zstd_out: Option<&std::path::Path>) -> Res<(f64, u64)> {
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let _ = rustix::pipe::fcntl_setpipe_size(&rd, 1 << 20);
    let since = guest.qmp.events().len();
    let t = Instant::now();
    guest
        .qmp
        .execute_with_fd("getfd", json!({"fdname": "bench"}), wr.as_fd())?;
    drop(wr);
    let mut child = None;
    let reader = match zstd_out {
        Some(path) => {
            child = Some(
                Command::new("zstd")
                    .args(["-1", "-T2", "-q", "-f", "-o"])
                    .arg(path)
                    .stdin(std::fs::File::from(rd))
                    .spawn()?,
            );
            None
        }
        None => Some(std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0u64;
            while let Ok(n) = rustix::io::read(&rd, &mut buf) {
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            total
        })),
    };
    let args = json!({"paging": false, "protocol": "fd:bench", "detach": true});
    let asked = Instant::now();
    // Just after another dump's DUMP_COMPLETED, qemu may still refuse for a moment.
    while let Err(e) = guest.qmp.execute("dump-guest-memory", Some(args.clone())) {
        if !e.to_string().contains("dump in process") || asked.elapsed() > Duration::from_secs(10) {
            return Err(e.into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    guest.wait_dump_done(since)?;
    let bytes = match (reader, child.as_mut()) {
        (Some(r), _) => r.join().map_err(|_| "reader thread failed")?,
        (None, Some(c)) => {
            c.wait()?;
            0
        }
        (None, None) => 0,
    };
    Ok((t.elapsed().as_secs_f64(), bytes))
}
