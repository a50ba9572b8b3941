//! `capture`: from a frozen qemu over QMP into a `.core.zst`, without touching the guest.
//!
//! Order: connect; preflight queries; freeze decision (refuse a running guest unless told
//! otherwise); state a dump does not hold (`info registers -a`, `info mtree -f`, qemu's
//! process and log); the dump itself, streamed through a pipe passed with `getfd`; checks
//! of the result; then the container is finished with everything in its metadata.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coroner_formats::{ContainerWriter, ElfCore, Finished, Metadata, Progress, WriteOptions};
use serde_json::{json, Value};

use crate::address::QmpAddress;
use crate::capture_error::CaptureError;
use crate::destination::{open_writer, output_dir};
use crate::error::Error;
use crate::head_source::HeadSource;
use crate::local_process;
use crate::qmp::Qmp;
use crate::run_state::RunState;
use crate::stream::{drain, DrainEnd, Drained, Intake};
use coroner_record::{CaptureInfo, LogTail};

/// The format qemu is asked to dump in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DumpFormat {
    /// qemu's ELF, kept byte for byte: fastest when much of the guest's RAM is in use.
    #[default]
    Elf,
    /// qemu's kdump format (the fastest compression this qemu offers: lzo, snappy, else
    /// zlib), turned into the same ELF core as it arrives. qemu skips zero pages instead
    /// of pushing them through the pipe, so a large, mostly idle guest is captured in a
    /// fraction of the time; qemu compresses the rest on one thread, so a busy guest
    /// takes longer (README, "Measured figures").
    Kdump,
}

/// qemu's kdump formats that go through a pipe, fastest first.
const KDUMP_FORMATS: [&str; 3] = ["kdump-lzo", "kdump-snappy", "kdump-zlib"];

/// What to capture and how.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// The QMP monitor.
    pub qmp: QmpAddress,
    /// The container to write.
    pub output: PathBuf,
    /// qemu's log file, when not found from the local process.
    pub qemu_log: Option<PathBuf>,
    /// Freeze a running guest with `stop` first (and leave it stopped).
    pub stop: bool,
    /// Dump a running guest anyway (qemu pauses it for the dump and resumes it after).
    pub allow_running: bool,
    /// When the guest runs, wait up to this long for it to freeze (collecting the events
    /// that say why), then capture.
    pub wait_frozen: Option<Duration>,
    /// On failure, keep `NAME.partial` marked incomplete instead of deleting it.
    pub keep_partial: bool,
    /// Deadline for each QMP answer, and for the dump's progress: a dump that brings no
    /// new byte (and no progress in `query-dump`) for this long fails.
    pub timeout: Duration,
    /// Container options (default: zstd level 1, the fastest, since a frozen guest and
    /// the HA stack wait for the capture).
    pub write: WriteOptions,
    /// The format qemu dumps in.
    pub dump_format: DumpFormat,
    /// The guest's name for the record (`watch`'s name for it).
    pub guest: Option<String>,
    /// Dump a libvirt domain's qemu through this monitor anyway (libvirtd 9.0 crashes on
    /// the DUMP_COMPLETED it did not ask for; see [`CaptureError::UnderLibvirt`]).
    pub under_libvirt: bool,
    /// Most bytes of qemu's log kept.
    pub log_tail_bytes: u64,
    /// Tool name for the metadata.
    pub tool: String,
}

impl CaptureOptions {
    /// Defaults for capturing from `qmp` into `output`.
    pub fn new(qmp: QmpAddress, output: PathBuf) -> Self {
        Self {
            qmp,
            output,
            qemu_log: None,
            stop: false,
            allow_running: false,
            wait_frozen: None,
            keep_partial: false,
            timeout: Duration::from_secs(30),
            write: WriteOptions {
                level: 1,
                ..WriteOptions::default()
            },
            log_tail_bytes: 256 << 10,
            tool: String::from("coroner"),
            dump_format: DumpFormat::Elf,
            under_libvirt: false,
            guest: None,
        }
    }
}

/// A finished capture.
#[derive(Debug)]
pub struct Captured {
    /// The container.
    pub finished: Finished,
    /// What was recorded beside memory.
    pub info: CaptureInfo,
}

/// Now, in microseconds since the epoch.
pub(crate) fn unix_us() -> Option<u64> {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    u64::try_from(d.as_micros()).ok()
}

pub(crate) fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// Runs a query that old qemus may lack; `None` when the command does not exist.
fn optional(qmp: &mut Qmp, command: &str) -> Result<Option<Value>, Error> {
    match qmp.execute(command, None) {
        Ok(v) => Ok(Some(v)),
        Err(Error::Command { class, .. }) if class == "CommandNotFound" => Ok(None),
        Err(e) => Err(e),
    }
}

/// Captures the guest behind `opts.qmp` into `opts.output`.
pub fn capture(
    opts: &CaptureOptions,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Captured, CaptureError> {
    let t_start = Instant::now();
    let mut qmp = Qmp::connect(&opts.qmp, opts.timeout)?;
    let connect_ms = ms(t_start);
    capture_with(&mut qmp, opts, progress, interrupt).map(|mut c| {
        c.info.timings.connect_ms = connect_ms;
        c.info.timings.total_ms += connect_ms;
        c
    })
}

/// Captures over a connection already open (`coroner watch` holds one: a unix QMP
/// monitor serves one client at a time). Events already on `qmp` go into the record.
pub fn capture_with(
    qmp: &mut Qmp,
    opts: &CaptureOptions,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Captured, CaptureError> {
    let t_start = Instant::now();
    let mut info = CaptureInfo {
        schema: coroner_record::SCHEMA,
        qmp: opts.qmp.to_string(),
        qemu_version: qmp.version().clone(),
        guest: opts.guest.clone(),
        ..CaptureInfo::default()
    };

    // Preflight.
    let t = Instant::now();
    let state = qmp.run_state()?;
    info.run_state_before = state.clone();
    info.target = optional(qmp, "query-target")?.and_then(|v| v["arch"].as_str().map(String::from));
    info.cpus = match optional(qmp, "query-cpus-fast")? {
        Some(v) => v,
        None => optional(qmp, "query-cpus")?.unwrap_or(Value::Null),
    };
    info.kvm = optional(qmp, "query-kvm")?;
    info.ram_bytes = optional(qmp, "query-memory-size-summary")?.map(|v| {
        v["base-memory"].as_u64().unwrap_or(0) + v["plugged-memory"].as_u64().unwrap_or(0)
    });
    let caps = optional(qmp, "query-dump-guest-memory-capability")?;
    let formats: Option<Vec<String>> = caps.map(|c| {
        c["formats"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    });
    let offered = |name: &str| formats.as_ref().is_none_or(|f| f.iter().any(|x| x == name));
    let qemu_format = match opts.dump_format {
        DumpFormat::Elf => Some("elf").filter(|f| offered(f)),
        DumpFormat::Kdump => KDUMP_FORMATS.into_iter().find(|f| offered(f)),
    };
    let Some(qemu_format) = qemu_format else {
        return Err(CaptureError::DumpFailed {
            reason: format!(
                "this qemu cannot dump in {} (its formats: {})",
                match opts.dump_format {
                    DumpFormat::Elf => "ELF format",
                    DumpFormat::Kdump => "a kdump format",
                },
                formats.unwrap_or_default().join(", ")
            ),
            kept: None,
        });
    };
    info.dump_format = Some(qemu_format.to_string());
    if let Some(d) = optional(qmp, "query-dump")? {
        if d["status"] == "active" {
            return Err(CaptureError::Busy {
                state: "another dump is in progress".into(),
            });
        }
    }
    if RunState::parse(&state).is_busy() {
        return Err(CaptureError::Busy { state });
    }
    if let (Some(ram), Some(free)) = (info.ram_bytes, free_space(&opts.output)) {
        if free < ram {
            info.warnings.push(format!(
                "{free} bytes free at the destination for {ram} bytes of guest RAM: enough only if it compresses well"
            ));
        }
    }
    if !opts.under_libvirt {
        let tids: Vec<u64> = info
            .cpus
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["thread-id"].as_u64()).collect())
            .unwrap_or_default();
        if let Some(domain) =
            local_process::find(&tids).and_then(|l| local_process::libvirt_domain(&l.cmdline))
        {
            return Err(CaptureError::UnderLibvirt { domain });
        }
    }
    let mut state = state;
    if let (false, Some(limit)) = (RunState::parse(&state).is_frozen(), opts.wait_frozen) {
        state = wait_until_frozen(qmp, limit, interrupt)?;
        info.run_state_before = state.clone();
    }
    // The freeze decision: a frozen guest is never resumed, reset or modified.
    if !RunState::parse(&state).is_frozen() {
        if opts.stop {
            qmp.execute("stop", None)?;
            info.stopped_by_coroner = true;
        } else if opts.allow_running {
            info.live = true;
        } else {
            return Err(CaptureError::NotFrozen { state });
        }
    }
    info.timings.preflight_ms = ms(t);

    // State that a dump does not hold.
    let t = Instant::now();
    collect_state(qmp, opts, &mut info);
    info.timings.state_ms = ms(t);

    // The dump.
    let t = Instant::now();
    let since = qmp.events().len();
    info.timings.dump_started_unix_us = unix_us();
    let pipe = qmp.can_pass_fds();
    info.method = if pipe { "pipe" } else { "file" }.into();
    // What a partial file kept after a failure records: everything known before the dump.
    let mut meta = Metadata::new(opts.tool.clone());
    meta.origin = Some(format!("capture {} via {}", opts.qmp, info.method));
    info.store(&mut meta);
    let dump = Dump {
        qemu_format,
        meta: &meta,
        since,
        expected: info.ram_bytes,
    };
    let result = if pipe {
        dump_through_pipe(qmp, opts, &dump, progress, interrupt)
    } else {
        dump_through_file(qmp, opts, &dump, progress, interrupt)
    };
    info.timings.dump_ms = ms(t);
    info.dump_status = optional(qmp, "query-dump").ok().flatten();
    info.run_state_after = qmp.run_state().ok();
    info.events = qmp.events().to_vec();
    info.events_dropped = qmp.events_dropped().clone();
    let (writer, head, vmcoreinfo_candidates) = take_streamed(result?, &mut meta);

    // Checks before the file may claim to be complete.
    let resumed = info.events.iter().skip(since).any(|e| e.event == "RESUME") && !info.live;
    let after = info.run_state_after.clone().unwrap_or_default();
    if resumed || (!info.live && after == "running") {
        let reason = format!("guest resumed during capture (run state {after})");
        let kept = give_up(writer, meta, &reason, opts.keep_partial, &info);
        return Err(CaptureError::Resumed { state: after, kept });
    }
    let (finished, info) = finish_checked(
        (writer, head, vmcoreinfo_candidates),
        meta,
        info,
        opts.keep_partial,
        t_start,
    )?;
    Ok(Captured { finished, info })
}

/// Parses the streamed ELF headers (a dump that is not a consistent ELF core is given up,
/// kept as `.partial` with `keep`), records what they and the stream showed, and
/// finishes the container with the capture record in its metadata.
pub(crate) fn finish_checked(
    (writer, head, vmcoreinfo_candidates): (ContainerWriter, Vec<u8>, Vec<u64>),
    mut meta: Metadata,
    mut info: CaptureInfo,
    keep: bool,
    t_start: Instant,
) -> Result<(Finished, CaptureInfo), CaptureError> {
    let total = writer.bytes_in();
    let elf = match ElfCore::parse(&HeadSource { head, total }) {
        Ok(elf) => elf,
        Err(e) => {
            let reason = format!("the dump is not a consistent ELF core: {e}");
            let kept = give_up(writer, meta, &reason, keep, &info);
            return Err(CaptureError::Incomplete {
                bytes: total,
                reason,
                kept,
            });
        }
    };
    meta.vmcoreinfo_offset = elf.vmcoreinfo_offset;
    meta.vmcoreinfo_candidates = vmcoreinfo_candidates;
    info.timings.total_ms = ms(t_start);
    info.store(&mut meta);
    let finished = writer
        .finish(meta)
        .map_err(|source| CaptureError::Output { source, kept: None })?;
    Ok((finished, info))
}

/// Waits for the guest to reach a frozen run state, watching events and polling
/// `query-status`; returns the state, or the running one when `limit` passes.
fn wait_until_frozen(
    qmp: &mut Qmp,
    limit: Duration,
    interrupt: &AtomicBool,
) -> Result<String, CaptureError> {
    let deadline = Instant::now() + limit;
    loop {
        let state = qmp.run_state()?;
        if RunState::parse(&state).is_frozen() || Instant::now() >= deadline {
            return Ok(state);
        }
        if interrupt.load(Ordering::Relaxed) {
            return Err(CaptureError::Interrupted {
                kept: None,
                after: None,
            });
        }
        let since = qmp.events().len();
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(500));
        match qmp.wait_event("STOP", since, wait) {
            Ok(_) | Err(Error::Timeout { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Registers, memory tree, local process and log: best effort, each failure a warning.
fn collect_state(qmp: &mut Qmp, opts: &CaptureOptions, info: &mut CaptureInfo) {
    match qmp.hmp("info registers -a") {
        Ok(t) => info.info_registers = Some(t),
        Err(e) => info.warnings.push(format!("info registers -a: {e}")),
    }
    match qmp.hmp("info mtree -f") {
        Ok(t) => info.info_mtree = Some(t),
        Err(e) => info.warnings.push(format!("info mtree -f: {e}")),
    }
    let tids: Vec<u64> = info
        .cpus
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["thread-id"].as_u64()).collect())
        .unwrap_or_default();
    let local = local_process::find(&tids);
    if let Some(l) = &local {
        info.qemu_pid = Some(l.pid);
        info.qemu_cmdline = Some(l.cmdline.clone());
        info.host_cpu_vendor = local_process::host_cpu_vendor();
    }
    let log = opts
        .qemu_log
        .clone()
        .or_else(|| local.and_then(|l| l.stderr_file));
    if let Some(path) = log {
        match LogTail::read(&path, opts.log_tail_bytes) {
            Ok(tail) => info.qemu_log = Some(tail),
            Err(e) => info
                .warnings
                .push(format!("qemu log {}: {e}", path.display())),
        }
    }
}

/// The writer to finish, the ELF head, the VMCOREINFO candidates, and what the content
/// was converted from (a kdump stream).
pub(crate) type Streamed = (ContainerWriter, Vec<u8>, Vec<u64>, Option<Value>);

/// Splits what was streamed into the writer, the ELF head and the VMCOREINFO candidates,
/// recording in `meta` what the content was converted from (a kept partial says so too).
pub(crate) fn take_streamed(
    (writer, head, candidates, converted_from): Streamed,
    meta: &mut Metadata,
) -> (ContainerWriter, Vec<u8>, Vec<u64>) {
    if let Some(c) = converted_from {
        meta.extra.insert("converted_from".into(), c);
    }
    (writer, head, candidates)
}

/// The dump asked of qemu.
struct Dump<'a> {
    /// `dump-guest-memory`'s format.
    qemu_format: &'a str,
    /// What a partial file records.
    meta: &'a Metadata,
    /// Events before the dump.
    since: usize,
    /// About how many bytes the dump has (the guest's RAM).
    expected: Option<u64>,
}

impl Dump<'_> {
    fn intake(&self, writer: ContainerWriter) -> Intake {
        if self.qemu_format == "elf" {
            Intake::Elf(Box::new(writer))
        } else {
            Intake::Kdump(Box::new(coroner_formats::kdump::KdumpStream::new(writer)))
        }
    }
}

/// Streams the dump through a pipe whose write end qemu receives with `getfd`.
fn dump_through_pipe(
    qmp: &mut Qmp,
    opts: &CaptureOptions,
    dump: &Dump<'_>,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Streamed, CaptureError> {
    let meta = dump.meta;
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| {
        CaptureError::Output {
            source: coroner_formats::Error::Stream {
                what: "create a pipe",
                source: e.into(),
            },
            kept: None,
        }
    })?;
    // A larger pipe means fewer wake-ups; the default size still works.
    let _ = rustix::pipe::fcntl_setpipe_size(&rd, 1 << 20);
    let fdname = format!("coroner-{}", std::process::id());
    qmp.execute_with_fd("getfd", json!({ "fdname": fdname }), wr.as_fd())?;
    drop(wr);
    let writer = open_writer(&opts.output, opts.write.clone(), dump.expected)
        .map_err(|source| CaptureError::Output { source, kept: None })?;
    let intake = dump.intake(writer);
    let received = AtomicU64::new(0);
    let stop_reader = AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| drain(rd, intake, &received, &stop_reader, Some(opts.timeout)));
        let outcome = follow_dump(
            qmp,
            &format!("fd:{fdname}"),
            dump,
            opts,
            progress,
            interrupt,
            &received,
        );
        if outcome.is_err() {
            stop_reader.store(true, Ordering::Relaxed);
            // qemu keeps a named fd it never used: close it so the reader sees EOF.
            let _ = qmp.execute("closefd", Some(json!({ "fdname": fdname })));
        }
        let drained = match reader.join() {
            Ok(d) => d,
            Err(_) => {
                return Err(CaptureError::Incomplete {
                    bytes: received.load(Ordering::Relaxed),
                    reason: "the pipe reader failed".into(),
                    kept: None,
                })
            }
        };
        settle(drained, outcome, opts, meta, interrupt)
    })
}

/// Turns the drain's end and the dump's outcome into the writer to finish, or an error.
pub(crate) fn settle(
    drained: Drained,
    outcome: Result<(), CaptureError>,
    opts: &CaptureOptions,
    meta: &Metadata,
    interrupt: &AtomicBool,
) -> Result<Streamed, CaptureError> {
    settle_with(
        drained,
        outcome,
        opts.keep_partial,
        opts.timeout,
        meta,
        interrupt,
    )
}

/// [`settle`] with what it needs of the options.
pub(crate) fn settle_with(
    drained: Drained,
    outcome: Result<(), CaptureError>,
    keep: bool,
    timeout: Duration,
    meta: &Metadata,
    interrupt: &AtomicBool,
) -> Result<Streamed, CaptureError> {
    let Drained {
        intake,
        head,
        end,
        vmcoreinfo_candidates,
    } = drained;
    let bytes = intake.bytes_in();
    let abandon = |intake: Intake, reason: &str| {
        intake
            .into_writer()
            .abandon(meta.clone(), reason, keep)
            .ok()
            .flatten()
    };
    let writer = intake;
    if interrupt.load(Ordering::Relaxed) {
        let kept = abandon(writer, "interrupted");
        return Err(CaptureError::Interrupted { kept, after: None });
    }
    match (outcome, end) {
        (Ok(()), DrainEnd::Eof) => match writer {
            Intake::Elf(w) => Ok((*w, head, vmcoreinfo_candidates, None)),
            Intake::Kdump(k) => match k.finish() {
                Ok(done) => {
                    let mut from = done
                        .info
                        .converted_from(coroner_formats::Format::KdumpFlattened);
                    from["stream_bytes"] = json!(done.stream_bytes);
                    from["stream_blake3"] = json!(done.stream_blake3);
                    Ok((done.writer, done.elf_head, Vec::new(), Some(from)))
                }
                Err(failed) => {
                    let (w, e) = *failed;
                    let reason = e.to_string();
                    let kept = w.abandon(meta.clone(), &reason, keep).ok().flatten();
                    Err(CaptureError::Incomplete {
                        bytes,
                        reason,
                        kept,
                    })
                }
            },
        },
        (_, DrainEnd::StreamInvalid(e)) => {
            let reason = e.to_string();
            let kept = abandon(writer, &reason);
            Err(CaptureError::Incomplete {
                bytes,
                reason,
                kept,
            })
        }
        (_, DrainEnd::WriteFailed(source)) => {
            let kept = abandon(writer, &source.to_string());
            Err(CaptureError::Output { source, kept })
        }
        (_, DrainEnd::Stalled) => {
            let reason = stalled(timeout);
            let kept = abandon(writer, &reason);
            Err(CaptureError::Incomplete {
                bytes,
                reason,
                kept,
            })
        }
        (_, DrainEnd::ReadFailed(e)) => {
            let reason = format!("reading qemu's pipe: {e}");
            let kept = abandon(writer, &reason);
            Err(CaptureError::Incomplete {
                bytes,
                reason,
                kept,
            })
        }
        (Err(e), _) => {
            let kept = abandon(writer, &e.to_string());
            Err(with_kept(e, bytes, kept))
        }
        (Ok(()), DrainEnd::Interrupted) => {
            let kept = abandon(writer, "interrupted");
            Err(CaptureError::Interrupted { kept, after: None })
        }
    }
}

/// Why a dump that stopped making progress was given up.
fn stalled(timeout: Duration) -> String {
    format!(
        "the dump made no progress for {:.1} s (--timeout): qemu neither wrote nor finished it",
        timeout.as_secs_f64()
    )
}

fn with_kept(e: CaptureError, bytes: u64, kept: Option<PathBuf>) -> CaptureError {
    match e {
        CaptureError::DumpFailed { reason, .. } => CaptureError::DumpFailed { reason, kept },
        CaptureError::Incomplete { bytes, reason, .. } => CaptureError::Incomplete {
            bytes,
            reason,
            kept,
        },
        CaptureError::Interrupted { after, .. } => CaptureError::Interrupted { kept, after },
        // qemu went away or stopped answering in the middle of the dump.
        CaptureError::Qmp(e) => CaptureError::Incomplete {
            bytes,
            reason: e.to_string(),
            kept,
        },
        other => other,
    }
}

/// Starts `dump-guest-memory` to `protocol` and follows it until `DUMP_COMPLETED`,
/// reporting progress. `received` counts bytes arrived so far (for stall detection).
fn follow_dump(
    qmp: &mut Qmp,
    protocol: &str,
    dump: &Dump<'_>,
    opts: &CaptureOptions,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
    received: &AtomicU64,
) -> Result<(), CaptureError> {
    let since = dump.since;
    let args = json!({
        "paging": false, "protocol": protocol, "format": dump.qemu_format, "detach": true,
    });
    let asked = Instant::now();
    loop {
        match qmp.execute("dump-guest-memory", Some(args.clone())) {
            Ok(_) => break,
            // Just after another dump's DUMP_COMPLETED, qemu may still refuse for a moment.
            Err(Error::Command { desc, .. })
                if desc.contains("dump in process")
                    && asked.elapsed() < Duration::from_secs(5)
                    && qmp.execute("query-dump", None)?["status"] != "active" =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(Error::Command { desc, .. }) => {
                return Err(CaptureError::DumpFailed {
                    reason: desc,
                    kept: None,
                })
            }
            Err(other) => return Err(other.into()),
        }
    }
    // Completion is read from query-dump, which turned `active` when the command
    // returned: a DUMP_COMPLETED on this connection may belong to an earlier dump.
    let mut last_progress = (0u64, Instant::now());
    loop {
        if interrupt.load(Ordering::Relaxed) {
            return Err(CaptureError::Interrupted {
                kept: None,
                after: None,
            });
        }
        match qmp.wait_event("DUMP_COMPLETED", since, Duration::from_millis(250)) {
            Ok(_) | Err(Error::Timeout { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let status = qmp.execute("query-dump", None)?;
        let (done, total) = (
            status["completed"].as_u64().unwrap_or(0),
            status["total"].as_u64().unwrap_or(0),
        );
        progress.set_total(total);
        progress.set_done(done);
        match status["status"].as_str() {
            Some("completed") => return Ok(()),
            Some("active") => {}
            other => {
                let error = qmp
                    .events()
                    .iter()
                    .skip(since)
                    .rev()
                    .find(|e| e.event == "DUMP_COMPLETED")
                    .and_then(|e| e.data.get("error").and_then(Value::as_str))
                    .map(String::from);
                return Err(CaptureError::DumpFailed {
                    reason: error.unwrap_or_else(|| format!("qemu reports the dump {other:?}")),
                    kept: None,
                });
            }
        }
        let now = received.load(Ordering::Relaxed).max(done);
        if now != last_progress.0 {
            last_progress = (now, Instant::now());
        } else if last_progress.1.elapsed() > opts.timeout {
            return Err(CaptureError::Incomplete {
                bytes: now,
                reason: stalled(opts.timeout),
                kept: None,
            });
        }
    }
}

/// For a TCP monitor (no fd passing): qemu writes the ELF to a file next to the output,
/// which is then compressed and removed. Works when qemu runs on this host.
fn dump_through_file(
    qmp: &mut Qmp,
    opts: &CaptureOptions,
    dump: &Dump<'_>,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Streamed, CaptureError> {
    let meta = dump.meta;
    let dir = output_dir(&opts.output);
    let dir = std::fs::canonicalize(&dir).map_err(|source| CaptureError::Output {
        source: coroner_formats::Error::Io {
            what: "resolve",
            path: dir.clone(),
            source,
        },
        kept: None,
    })?;
    let name = opts
        .output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capture".into());
    // Created by coroner (a fresh name, 0600, nothing planted can redirect it) for qemu
    // to fill; removed when dropped.
    let elf = coroner_formats::OutputFile::create(&dir.join(format!("{name}.qemu-elf")))
        .map_err(|source| CaptureError::Output { source, kept: None })?;
    let elf_path = elf.temp_path().to_path_buf();
    let received = AtomicU64::new(0);
    let outcome = follow_dump(
        qmp,
        &format!("file:{}", elf_path.display()),
        dump,
        opts,
        progress,
        interrupt,
        &received,
    );
    let result = outcome.and_then(|()| {
        let other_host = || CaptureError::DumpFailed {
            reason: format!(
                "qemu wrote its dump to {} on its own host, which is not this one; compress it there with `coroner compress`",
                elf_path.display()
            ),
            kept: None,
        };
        let file = std::fs::File::open(&elf_path).map_err(|_| other_host())?;
        if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
            return Err(other_host());
        }
        let writer = open_writer(&opts.output, opts.write.clone(), dump.expected)
            .map_err(|source| CaptureError::Output { source, kept: None })?;
        let rd = std::os::fd::OwnedFd::from(file);
        let drained = drain(rd, dump.intake(writer), &received, interrupt, None);
        settle(drained, Ok(()), opts, meta, interrupt)
    });
    let _ = elf.discard();
    result
}

/// Abandons the writer, recording the capture details, and returns the kept path.
pub(crate) fn give_up(
    writer: ContainerWriter,
    mut meta: Metadata,
    reason: &str,
    keep: bool,
    info: &CaptureInfo,
) -> Option<PathBuf> {
    info.store(&mut meta);
    writer.abandon(meta, reason, keep).ok().flatten()
}

/// Bytes available to an unprivileged writer in the directory of `output` (none is
/// known for an upload).
fn free_space(output: &Path) -> Option<u64> {
    if coroner_objstore::object_url_of(output).is_some() {
        return None;
    }
    let st = rustix::fs::statvfs(output_dir(output)).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}
