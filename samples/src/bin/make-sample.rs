//! `make-sample`: boots a guest from the kit, freezes it by a scenario, dumps it with
//! qemu's `dump-guest-memory`, and compresses the dump into a `.core.zst`.
//!
//! Usage: make-sample SCENARIO -o OUT.core.zst [--mem MiB] [--vmcoreinfo] [--fill MiB]
//! SCENARIO: stop | panic | mce

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use coroner_formats::{compress_elf, Metadata, NoProgress, WriteOptions};
use coroner_samples::kit::{Guest, GuestOptions, Scenario};

const USAGE: &str =
    "usage: make-sample stop|panic|mce -o OUT.core.zst [--mem MiB] [--vmcoreinfo] [--fill MiB]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make-sample: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut scenario = None;
    let mut out = None;
    let mut opts = GuestOptions::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "-o" => out = args.next().map(PathBuf::from),
            "--mem" => opts.mem_mib = args.next().ok_or(USAGE)?.parse()?,
            "--fill" => opts.append = format!("coroner.fill={}", args.next().ok_or(USAGE)?),
            "--vmcoreinfo" => opts.vmcoreinfo = true,
            "stop" => scenario = Some(Scenario::Stop),
            "panic" => scenario = Some(Scenario::Panic),
            "mce" => scenario = Some(Scenario::Mce),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    let (Some(scenario), Some(out)) = (scenario, out) else {
        return Err(USAGE.into());
    };
    eprintln!("booting a {} MiB guest...", opts.mem_mib);
    let mut guest = Guest::boot(&opts)?;
    let state = guest.freeze(scenario)?;
    eprintln!("frozen: run state {state}; dumping...");
    let elf = guest.dir().join("dump.elf");
    guest.dump(&elf, "elf")?;
    let mut meta = Metadata::new(concat!(
        "coroner-samples make-sample ",
        env!("CARGO_PKG_VERSION")
    ));
    meta.origin = Some(format!(
        "guest kit, scenario {scenario:?}, run state {state}, qemu {}.{}.{} dump-guest-memory (elf, paging off)",
        guest.qmp.version().major,
        guest.qmp.version().minor,
        guest.qmp.version().micro
    ));
    let done = compress_elf(
        &elf,
        &out,
        WriteOptions::default(),
        meta,
        &NoProgress,
        &AtomicBool::new(false),
    )?;
    println!("{}", done.path.display());
    Ok(())
}
