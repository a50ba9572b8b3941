//! `bench-compress`: how coroner's container compares with the alternatives, on real
//! dumps from the guest kit. Not a test: it prints figures side by side.
//!
//! For a busy 2 GiB guest (`coroner.fill=450`: ~450 MB of non-zero data) and an idle one,
//! frozen by `stop`: qemu's ELF dump is compressed by coroner and by `zstd -1 -T2` and
//! `zstd -3 -T2`, and qemu's own `kdump-zlib` dump is written; then random 4 KiB reads
//! are timed on the container.
//!
//! Usage: bench-compress [--mem MiB] [--fill MiB] [--frame-sizes 262144,1048576,...]
//!                       [--level N] [--only busy|idle]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use coroner_formats::{
    compress_elf, ByteSource, ContainerReader, ElfCore, MappedFile, Metadata, NoProgress,
    WriteOptions,
};
use coroner_samples::kit::{Guest, GuestOptions, Scenario};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Row {
    what: String,
    seconds: f64,
    bytes: u64,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench-compress: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let mut mem = 2048u32;
    let mut fill = 450u32;
    let mut frame_sizes = vec![coroner_formats::WriteOptions::default().frame_size];
    let mut level = WriteOptions::default().level;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--mem" => mem = val()?.parse()?,
            "--fill" => fill = val()?.parse()?,
            "--level" => level = val()?.parse()?,
            "--only" => only = Some(val()?),
            "--frame-sizes" => {
                frame_sizes = val()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let threads = 2;
    for (kind, append) in [
        ("busy", format!("coroner.fill={fill}")),
        ("idle", String::new()),
    ] {
        if only.as_deref().is_some_and(|o| o != kind) {
            continue;
        }
        let mut guest = Guest::boot(&GuestOptions {
            mem_mib: mem,
            append,
            ..GuestOptions::default()
        })?;
        guest.freeze(Scenario::Stop)?;
        let dir = guest.dir().to_path_buf();
        let elf = dir.join("dump.elf");
        let t = Instant::now();
        guest.dump(&elf, "elf")?;
        let elf_secs = t.elapsed().as_secs_f64();
        let kdump = dir.join("dump.kdump");
        let t = Instant::now();
        guest.dump(&kdump, "kdump-zlib")?;
        let kdump_secs = t.elapsed().as_secs_f64();
        drop(guest.qmp.execute("quit", None));
        let elf_size = std::fs::metadata(&elf)?.len();
        let nonzero = nonzero_pages(&elf)?;
        warm(&elf)?;

        let mut rows = vec![Row {
            what: "qemu ELF to file (reference)".into(),
            seconds: elf_secs,
            bytes: elf_size,
        }];
        rows.push(Row {
            what: "qemu kdump-zlib".into(),
            seconds: kdump_secs,
            bytes: std::fs::metadata(&kdump)?.len(),
        });
        for lvl in [1, 3] {
            let out = dir.join(format!("zstd{lvl}.zst"));
            let t = Instant::now();
            let status = Command::new("zstd")
                .args([
                    format!("-{lvl}"),
                    format!("-T{threads}"),
                    "-q".into(),
                    "-f".into(),
                ])
                .arg(&elf)
                .arg("-o")
                .arg(&out)
                .stdout(Stdio::null())
                .status()?;
            if !status.success() {
                return Err("zstd failed".into());
            }
            rows.push(Row {
                what: format!("zstd -{lvl} -T{threads}"),
                seconds: t.elapsed().as_secs_f64(),
                bytes: std::fs::metadata(&out)?.len(),
            });
            std::fs::remove_file(&out)?;
        }
        let mut containers = Vec::new();
        for &fs in &frame_sizes {
            let out = dir.join(format!("c{fs}.core.zst"));
            let t = Instant::now();
            let done = compress_elf(
                &elf,
                &out,
                WriteOptions {
                    frame_size: fs,
                    level,
                    threads,
                },
                Metadata::new("bench-compress"),
                &NoProgress,
                &AtomicBool::new(false),
            )?;
            rows.push(Row {
                what: format!("coroner compress (level {level}, {} KiB frames)", fs / 1024),
                seconds: t.elapsed().as_secs_f64(),
                bytes: done.compressed_size,
            });
            containers.push((fs, out));
        }

        println!(
            "\n== {kind} guest: {mem} MiB RAM, ELF {:.1} MiB, {:.1} MiB in non-zero pages",
            mib(elf_size),
            mib(nonzero)
        );
        let zstd1 = rows
            .iter()
            .find(|r| r.what.starts_with("zstd -1"))
            .map_or(1.0, |r| r.seconds);
        let zstd3 = rows
            .iter()
            .find(|r| r.what.starts_with("zstd -3"))
            .map_or(1, |r| r.bytes);
        println!(
            "{:<44} {:>8} {:>10} {:>9} {:>10} {:>11}",
            "method", "time s", "MB/s", "size MiB", "ratio", "vs zstd -3"
        );
        for r in &rows {
            println!(
                "{:<44} {:>8.2} {:>10.0} {:>9.1} {:>9.1}x {:>10.2}x  time vs zstd -1: {:.2}x",
                r.what,
                r.seconds,
                elf_size as f64 / 1e6 / r.seconds,
                mib(r.bytes),
                elf_size as f64 / r.bytes.max(1) as f64,
                r.bytes as f64 / zstd3.max(1) as f64,
                r.seconds / zstd1
            );
        }
        let core = ElfCore::parse(&MappedFile::open(&elf)?)?;
        for (fs, path) in &containers {
            let (cold, warm) = random_reads(path, &core)?;
            println!(
                "random 4 KiB reads, {} KiB frames, 16 MiB cache: {cold:.0} reads/s over all RAM, {warm:.0} reads/s within 8 MiB",
                fs / 1024
            );
        }
    }
    Ok(())
}

fn mib(n: u64) -> f64 {
    n as f64 / (1 << 20) as f64
}

/// Reads the file once so every method starts from the page cache.
fn warm(path: &Path) -> Res<()> {
    let f = MappedFile::open(path)?;
    let mut sum = 0u8;
    for chunk in f.bytes().chunks(4096) {
        sum ^= chunk[0];
    }
    std::hint::black_box(sum);
    Ok(())
}

/// Bytes of guest memory in 4 KiB pages that are not all zero.
fn nonzero_pages(path: &Path) -> Res<u64> {
    let f = MappedFile::open(path)?;
    let core = ElfCore::parse(&f)?;
    let mut n = 0;
    for l in &core.loads {
        let seg = &f.bytes()[l.offset as usize..(l.offset + l.file_size) as usize];
        n += seg
            .chunks(4096)
            .filter(|p| p.iter().any(|&b| b != 0))
            .count() as u64
            * 4096;
    }
    Ok(n)
}

/// Random 4 KiB reads per second: uniform over all RAM, and within a 32 MiB window.
fn random_reads(path: &Path, core: &ElfCore) -> Res<(f64, f64)> {
    let reader = ContainerReader::open(path)?;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let loads: Vec<_> = core.loads.iter().filter(|l| l.file_size >= 4096).collect();
    let mut buf = [0u8; 4096];
    let mut rate = |window: Option<u64>, count: u32| -> Res<f64> {
        let t = Instant::now();
        for _ in 0..count {
            let l = loads[(next() % loads.len() as u64) as usize];
            let span = window.unwrap_or(l.file_size).min(l.file_size) / 4096;
            let off = l.offset + (next() % span) * 4096;
            reader.read_at(off, &mut buf)?;
        }
        Ok(count as f64 / t.elapsed().as_secs_f64())
    };
    let cold = rate(None, 20_000)?;
    let warm = rate(Some(8 << 20), 200_000)?;
    Ok((cold, warm))
}
