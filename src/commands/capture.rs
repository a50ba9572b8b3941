//! `coroner capture`: a frozen guest over QMP into a `.core.zst`.

use std::time::Duration;

use coroner_capture::{capture, CaptureError, CaptureOptions, QmpAddress};
use serde::Serialize;

use super::output::{check_object_overwrite, check_overwrite, human_bytes, print_json};
use crate::cli::CaptureArgs;
use crate::exit::{classified, ClassifyExt, ExitClass};
use crate::progress::Bar;

#[derive(Serialize)]
struct CaptureReport<'a> {
    output: String,
    run_state: &'a str,
    method: &'a str,
    /// The format qemu dumped in (`elf`, or a `kdump-*` one converted as it arrived).
    dump_format: Option<&'a str>,
    ram_bytes: Option<u64>,
    content_size: u64,
    compressed_size: u64,
    /// The content digest the container records (FORMAT.md).
    content_frames_blake3: &'a str,
    seconds: f64,
    stopped_by_coroner: bool,
    live: bool,
    qemu_pid: Option<u32>,
    qemu_log: Option<&'a str>,
    /// qemu's events seen, as objects of the same shape as `watch`'s announcements hold.
    events: &'a [coroner_capture::Event],
    /// Events not kept because qemu flooded the monitor, counted by name.
    events_dropped: &'a std::collections::BTreeMap<String, u64>,
    warnings: &'a [String],
    timings: &'a coroner_capture::Timings,
    /// Peak resident memory of this process (VmHWM), for the benchmark.
    peak_rss_bytes: Option<u64>,
}

/// This process's peak resident set size, from /proc/self/status.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// What `capture` reads from, for messages.
fn source(args: &CaptureArgs) -> String {
    match (&args.libvirt.domain, &args.qmp) {
        (Some(d), _) => format!(
            "libvirt domain {d} ({})",
            crate::cli::libvirt_uri(&args.libvirt.connect)
        ),
        (None, Some(q)) => q.clone(),
        (None, None) => String::new(),
    }
}

/// `capture --domain`: through libvirt's own dump.
fn run_domain(
    args: &CaptureArgs,
    domain: coroner_capture::Domain,
) -> anyhow::Result<coroner_capture::Captured> {
    let mut opts = coroner_capture::DomainOptions::new(domain, args.output.clone());
    opts.qemu_log = args.qemu_log.clone();
    opts.stop = args.stop;
    opts.allow_running = args.allow_running;
    opts.monitor = args.monitor;
    opts.wait_frozen = args.wait_frozen.map(Duration::from_secs);
    opts.dump_format = args.dump_format.get();
    opts.keep_partial = args.keep_partial;
    opts.timeout = Duration::from_secs(args.timeout.max(1));
    opts.tool = concat!("coroner ", env!("CARGO_PKG_VERSION")).into();
    opts.write = args
        .compression
        .write_options(args.dump_format.default_level());
    let interrupt = crate::interrupt::install()
        .classify(ExitClass::Failure, || "installing signal handlers".into())?;
    let bar = Bar::new("capture");
    let result = coroner_capture::capture_domain(&opts, &bar, &interrupt);
    bar.finish();
    result.map_err(|e| capture_error(e, args))
}

pub fn run(args: &CaptureArgs) -> anyhow::Result<ExitClass> {
    match coroner_objstore::object_url_of(&args.output) {
        Some(url) => {
            if args.keep_partial {
                return Err(classified(
                    EscapedError(KEEP_PARTIAL_REMOTE.into()),
                    ExitClass::Usage,
                    format!("--keep-partial with {}", one_line(url)),
                ));
            }
            check_object_overwrite(url, args.overwrite.force)?;
        }
        None => check_overwrite(&args.output, args.overwrite.force)?,
    }
    let done = match (args.libvirt.domain(args.monitor)?, &args.qmp) {
        (Some(domain), _) => run_domain(args, domain)?,
        (None, Some(qmp)) => run_qmp(args, qmp)?,
        (None, None) => {
            return Err(classified(
                EscapedError("--qmp or --domain is needed".into()),
                ExitClass::Usage,
                "capture".into(),
            ))
        }
    };
    report(args, &done)
}

/// Why `--keep-partial` cannot go with an `s3://` output.
pub const KEEP_PARTIAL_REMOTE: &str = "an upload's key is fixed when it starts and object storage cannot rename, so an incomplete capture cannot be kept as NAME.partial there; a failed upload is aborted and leaves no object. Capture to a local file to keep partial data";

/// `capture --qmp`.
fn run_qmp(args: &CaptureArgs, qmp: &str) -> anyhow::Result<coroner_capture::Captured> {
    let address = QmpAddress::parse(qmp).classify(ExitClass::Usage, || "--qmp".into())?;
    let mut opts = CaptureOptions::new(address, args.output.clone());
    opts.qemu_log = args.qemu_log.clone();
    opts.stop = args.stop;
    opts.allow_running = args.allow_running;
    opts.keep_partial = args.keep_partial;
    opts.wait_frozen = args.wait_frozen.map(Duration::from_secs);
    opts.timeout = Duration::from_secs(args.timeout.max(1));
    opts.tool = concat!("coroner ", env!("CARGO_PKG_VERSION")).into();
    opts.write = args
        .compression
        .write_options(args.dump_format.default_level());
    opts.dump_format = args.dump_format.get();
    opts.under_libvirt = args.qmp_under_libvirt;
    let interrupt = crate::interrupt::install()
        .classify(ExitClass::Failure, || "installing signal handlers".into())?;
    let bar = Bar::new("capture");
    let result = capture(&opts, &bar, &interrupt);
    bar.finish();
    result.map_err(|e| capture_error(e, args))
}

/// Prints what a capture did.
fn report(args: &CaptureArgs, done: &coroner_capture::Captured) -> anyhow::Result<ExitClass> {
    let info = &done.info;
    let f = &done.finished;
    let report = CaptureReport {
        output: f.path.display().to_string(),
        run_state: &info.run_state_before,
        method: &info.method,
        dump_format: info.dump_format.as_deref(),
        ram_bytes: info.ram_bytes,
        content_size: f.content_size,
        compressed_size: f.compressed_size,
        content_frames_blake3: &f.frames_blake3,
        seconds: info.timings.total_ms as f64 / 1000.0,
        stopped_by_coroner: info.stopped_by_coroner,
        live: info.live,
        qemu_pid: info.qemu_pid,
        qemu_log: info.qemu_log.as_ref().map(|l| l.source.as_str()),
        events: &info.events,
        events_dropped: &info.events_dropped,
        warnings: &info.warnings,
        timings: &info.timings,
        peak_rss_bytes: peak_rss(),
    };
    if args.format.json {
        print_json(&report)?;
        return Ok(ExitClass::Ok);
    }
    let how = if info.stopped_by_coroner {
        "frozen by coroner with stop"
    } else if info.live {
        "LIVE: the guest was running"
    } else {
        "frozen"
    };
    let guest = match &info.libvirt {
        Some(l) => format!(
            "libvirt domain {} {}",
            l.domain,
            coroner_analyze::escape_control(&l.state_before)
        ),
        None => format!("guest {}", info.run_state_before),
    };
    println!(
        "captured {}: {guest} ({how}), {} ELF -> {} ({:.1}x) in {:.1} s via {}",
        report.output,
        human_bytes(f.content_size),
        human_bytes(f.compressed_size),
        f.content_size as f64 / f.compressed_size.max(1) as f64,
        report.seconds,
        match info.dump_format.as_deref() {
            Some(f) if f != "elf" =>
                format!("{} (qemu's {f}, converted as it arrived)", info.method),
            _ => info.method.clone(),
        }
    );
    println!(
        "qemu {}.{}.{}{}; log: {}",
        info.qemu_version.major,
        info.qemu_version.minor,
        info.qemu_version.micro,
        info.qemu_pid
            .map(|p| format!(", pid {p}"))
            .unwrap_or_default(),
        report.qemu_log.unwrap_or("not found (--qemu-log FILE)")
    );
    if !report.events.is_empty() {
        let names: Vec<&str> = report.events.iter().map(|e| e.event.as_str()).collect();
        println!(
            "events seen: {}",
            coroner_analyze::escape_control(&names.join(", "))
        );
    }
    if !info.events_dropped.is_empty() {
        let dropped: Vec<String> = info
            .events_dropped
            .iter()
            .map(|(name, n)| format!("{n} {name}"))
            .collect();
        println!(
            "events not kept (a flood from qemu): {}",
            coroner_analyze::escape_control(&dropped.join(", "))
        );
    }
    for w in &info.warnings {
        println!("warning: {}", coroner_analyze::escape_control(w));
    }
    println!(
        "content digest (frames-blake3): {} (check it: coroner verify)",
        f.frames_blake3
    );
    println!("next: coroner inspect {}", report.output);
    Ok(ExitClass::Ok)
}

/// A capture error as one line fit for a terminal: qemu's own text (its error messages,
/// its log) may hold escape sequences, which are shown escaped.
#[derive(Debug)]
struct EscapedError(String);

impl EscapedError {
    fn of(e: &dyn std::error::Error) -> Self {
        let mut text = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        EscapedError(one_line(&text))
    }
}

impl std::fmt::Display for EscapedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EscapedError {}

/// `text` with control characters escaped and line breaks shown as `\n`.
fn one_line(text: &str) -> String {
    coroner_analyze::escape_control(text).replace('\n', "\\n")
}

fn capture_error(e: CaptureError, args: &CaptureArgs) -> anyhow::Error {
    let class = match &e {
        CaptureError::NotFrozen { .. } | CaptureError::Resumed { .. } => ExitClass::NotFrozen,
        CaptureError::UnderLibvirt { .. } => ExitClass::Usage,
        CaptureError::Qmp(coroner_capture::Error::Address { .. }) => ExitClass::Usage,
        // A write cut short by SIGINT/SIGTERM is an interruption, not an output failure.
        CaptureError::Output {
            source: coroner_formats::Error::Interrupted,
            ..
        } => ExitClass::Interrupted,
        CaptureError::Output { .. } => ExitClass::Output,
        CaptureError::Interrupted { .. } => ExitClass::Interrupted,
        _ => ExitClass::Qemu,
    };
    let doing = match e.kept() {
        Some(p) => format!(
            "capture from {} failed; incomplete data kept in {}",
            one_line(&source(args)),
            one_line(&p.display().to_string())
        ),
        None => format!(
            "capture from {} failed; {} was not written",
            one_line(&source(args)),
            one_line(&args.output.display().to_string())
        ),
    };
    classified(EscapedError::of(&e), class, doing)
}
