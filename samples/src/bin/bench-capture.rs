//! `bench-capture`: `coroner capture` against the physical limit and the alternatives, on
//! real guests from the kit: a busy 2 GiB one (~550 MB in non-zero pages), an idle 2 GiB
//! one, and an idle 16 GiB one (just booted, ~100 MB in use). Not a test.
//!
//! Per guest, frozen by `stop`, each method `--runs` times (median printed, ratios from
//! the same run): qemu's raw ELF into a pipe drained and discarded (the limit);
//! `coroner capture` (default: zstd level 1, ELF), at level 3, and with `--dump-format
//! kdump` (qemu's kdump stream converted as it arrives); qemu's `kdump-zlib` into a
//! drained pipe and to a file; and qemu's ELF piped through `zstd -1 -T2`. Sizes, and coroner's peak
//! RSS.
//!
//! Usage: cargo build --release --workspace &&
//!        target/release/bench-capture [--mem MiB] [--fill MiB] [--big MiB|0] [--runs N]

use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coroner_samples::kit::{Guest, GuestOptions, Scenario};
use serde_json::json;

use coroner_samples::bench::median;

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
    let mut big = 16384u32;
    let mut runs = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--mem" => mem = val()?.parse()?,
            "--fill" => fill = val()?.parse()?,
            "--big" => big = val()?.parse()?,
            "--runs" => runs = val()?.parse::<usize>()?.max(1),
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let coroner = std::env::current_exe()?.with_file_name("coroner");
    if !coroner.exists() {
        return Err(format!("{} not built: cargo build --release", coroner.display()).into());
    }
    let mut guests = vec![
        ("busy", mem, format!("coroner.fill={fill}")),
        ("idle", mem, String::new()),
    ];
    if big > 0 {
        guests.push(("idle", big, String::new()));
    }
    for (kind, mem, append) in guests {
        let mut guest = Guest::boot(&GuestOptions {
            mem_mib: mem,
            append,
            ..GuestOptions::default()
        })?;
        guest.freeze(Scenario::Stop)?;
        let dir = guest.dir().to_path_buf();
        let zout = dir.join("elf.zst");
        let captures: [(&str, &[&str]); 3] = [
            ("coroner capture (default: level 1, ELF)", &[]),
            (
                "coroner capture --compression-level 3",
                &["--compression-level", "3"],
            ),
            (
                "coroner capture --dump-format kdump",
                &["--dump-format", "kdump"],
            ),
        ];
        // (what, seconds per run, size, peak RSS)
        let mut rows: Vec<(String, Vec<f64>, u64, Option<u64>)> = Vec::new();
        let row = |rows: &mut Vec<(String, Vec<f64>, u64, Option<u64>)>,
                   what: &str,
                   secs: f64,
                   size: u64,
                   rss: Option<u64>| {
            match rows.iter_mut().find(|r| r.0 == what) {
                Some(r) => {
                    r.1.push(secs);
                    r.3 = r.3.max(rss);
                }
                None => rows.push((what.to_string(), vec![secs], size, rss)),
            }
        };
        for _ in 0..runs {
            let (secs, bytes) = pipe_dump(&mut guest, "elf", None)?;
            row(
                &mut rows,
                "raw ELF into a pipe (the limit)",
                secs,
                bytes,
                None,
            );
            for (what, extra) in captures {
                let out = dir.join("cap.core.zst");
                let t = Instant::now();
                let o = Command::new(&coroner)
                    .args(["capture", "--force", "--json", "--qmp"])
                    .arg(guest.tool_socket())
                    .arg("-o")
                    .arg(&out)
                    .args(extra)
                    .stderr(Stdio::inherit())
                    .output()?;
                let secs = t.elapsed().as_secs_f64();
                if !o.status.success() {
                    return Err(format!("{what} failed").into());
                }
                let rep: serde_json::Value = serde_json::from_slice(&o.stdout)?;
                std::fs::remove_file(&out)?;
                row(
                    &mut rows,
                    what,
                    secs,
                    rep["compressed_size"].as_u64().unwrap_or(0),
                    rep["peak_rss_bytes"].as_u64(),
                );
            }
            let (secs, bytes) = pipe_dump(&mut guest, "kdump-zlib", None)?;
            row(&mut rows, "qemu kdump-zlib into a pipe", secs, bytes, None);
            let kfile = dir.join("dump.kdump");
            let t = Instant::now();
            guest.dump(&kfile, "kdump-zlib")?;
            let secs = t.elapsed().as_secs_f64();
            let size = std::fs::metadata(&kfile)?.len();
            std::fs::remove_file(&kfile)?;
            row(&mut rows, "qemu kdump-zlib to a file", secs, size, None);
            let (secs, _) = pipe_dump(&mut guest, "elf", Some(&zout))?;
            let size = std::fs::metadata(&zout)?.len();
            row(&mut rows, "ELF piped through zstd -1 -T2", secs, size, None);
        }
        let limit = median(rows[0].1.clone());
        let kdump = rows
            .iter()
            .find(|r| r.0.starts_with("qemu kdump-zlib"))
            .map_or(f64::NAN, |r| median(r.1.clone()));
        let kdump_size = rows
            .iter()
            .find(|r| r.0.starts_with("qemu kdump-zlib"))
            .map_or(1, |r| r.2.max(1));
        println!(
            "\n== {kind} guest: {mem} MiB RAM, ELF {:.1} MiB, median of {runs} runs",
            rows[0].2 as f64 / (1 << 20) as f64
        );
        println!(
            "{:<42} {:>7} {:>9} {:>10} {:>10} {:>10} {:>9}",
            "method", "time s", "vs limit", "vs kdump", "size MiB", "vs kdump", "peak RSS"
        );
        for (what, secs, size, rss) in &rows {
            let t = median(secs.clone());
            println!(
                "{what:<42} {t:>7.2} {:>8.2}x {:>9.2}x {:>10.1} {:>9.2}x {:>9}",
                t / limit,
                t / kdump,
                *size as f64 / (1 << 20) as f64,
                *size as f64 / kdump_size as f64,
                rss.map_or("-".into(), |r| format!("{} MiB", r >> 20)),
            );
        }
    }
    Ok(())
}

/// Dumps the frozen guest in `format` into a pipe. With `zstd_out`, `zstd -1 -T2` reads
/// the pipe and writes that file; without, the pipe is drained here and discarded.
fn pipe_dump(
    guest: &mut Guest,
    format: &str,
    zstd_out: Option<&std::path::Path>,
) -> Res<(f64, u64)> {
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
    let args = json!({"paging": false, "protocol": "fd:bench", "detach": true, "format": format});
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
