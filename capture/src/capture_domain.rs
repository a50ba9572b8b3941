//! `capture --domain`: a libvirt domain captured taint-free, through libvirt's own
//! memory-only dump. libvirtd opens the target path itself, so the path is a FIFO in a
//! private directory (0700) that coroner drains into the container as the bytes come: no
//! monitor passthrough, no second QMP socket, no uncompressed copy on disk.
//!
//! Never changes the domain: a frozen one is dumped as it is (libvirt leaves a crashed or
//! paused domain so); a running one is refused unless `--stop` (`virsh suspend`, recorded
//! as coroner's own freeze) or `--allow-running` (`--live`: libvirt would otherwise pause
//! and resume it around the dump). A memory-only dump cannot be aborted: on an interrupt
//! or a stall coroner stops reading and drops the partial; libvirt's job then fails when
//! qemu's next write finds no reader.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coroner_formats::{Metadata, Progress, WriteOptions};
use coroner_record::{CaptureInfo, LibvirtEvent, LibvirtRecord, LogTail};
use rustix::event::{poll, PollFd, PollFlags, Timespec};

use crate::capture::{
    finish_checked, give_up, ms, settle_with, take_streamed, unix_us, Captured, DumpFormat,
};
use crate::capture_error::CaptureError;
use crate::destination::{open_writer, output_dir};
use crate::domain_events::DomainEvents;
use crate::libvirt::{Domain, DomainState};
use crate::run_state::RunState;
use crate::stream::{drain, DrainEnd, Drained, Intake};

/// What to capture and how.
#[derive(Clone, Debug)]
pub struct DomainOptions {
    /// The domain.
    pub domain: Domain,
    /// The container to write.
    pub output: PathBuf,
    /// qemu's log, when not libvirt's file for the domain.
    pub qemu_log: Option<PathBuf>,
    /// Freeze a running domain with `virsh suspend` first (and leave it so).
    pub stop: bool,
    /// Dump a running domain live (`--live`).
    pub allow_running: bool,
    /// When the domain runs, wait up to this long for it to freeze (woken by libvirt's
    /// lifecycle events), then capture.
    pub wait_frozen: Option<Duration>,
    /// Keep `OUTPUT.partial` on failure.
    pub keep_partial: bool,
    /// Deadline for each virsh answer, and for the dump's progress.
    pub timeout: Duration,
    /// Container options.
    pub write: WriteOptions,
    /// The format libvirt has qemu dump in (kdump: converted as it arrives).
    pub dump_format: DumpFormat,
    /// Most bytes of qemu's log kept.
    pub log_tail_bytes: u64,
    /// Tool name for the metadata.
    pub tool: String,
    /// Also ask qemu's monitor, through libvirt's passthrough, for what the dump does
    /// not hold (`info registers -a`, `info mtree -f`). This taints the domain
    /// ("custom-monitor"), so only on request; the record says which path was used.
    pub monitor: bool,
    /// libvirt's events for the domain seen before the capture (by `watch`).
    pub events: Vec<LibvirtEvent>,
    /// Set by `watch`: it followed libvirt's events before this capture.
    pub events_watched: bool,
}

impl DomainOptions {
    /// Defaults for capturing `domain` into `output`.
    pub fn new(domain: Domain, output: PathBuf) -> Self {
        Self {
            domain,
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
            dump_format: DumpFormat::Elf,
            log_tail_bytes: 256 << 10,
            tool: String::from("coroner"),
            monitor: false,
            events: Vec::new(),
            events_watched: false,
        }
    }
}

/// The private directory holding the FIFO; removed when dropped.
struct Fifo {
    dir: PathBuf,
    path: PathBuf,
    /// Where the FIFO went when [`Fifo::seal`] put a directory in its place.
    moved: Option<PathBuf>,
}

impl Fifo {
    /// A fresh 0700 directory next to `output` with a 0600 FIFO in it.
    fn create(output: &Path) -> std::io::Result<Fifo> {
        use std::os::unix::fs::DirBuilderExt;
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "capture".into());
        let base = output_dir(output);
        let mut n = 0u32;
        let dir = loop {
            let dir = base.join(format!(".{name}.libvirt-{}-{n}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
                Err(e) => return Err(e),
            }
        };
        let path = dir.join("dump.fifo");
        // libvirtd (root) writes it; a qemu:///session daemon runs as this user.
        let fifo = Fifo {
            dir,
            path,
            moved: None,
        };
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo.path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .map_err(std::io::Error::from)?;
        Ok(fifo)
    }

    /// Puts an empty directory where the FIFO was, atomically, so that no later open of
    /// the path reaches the FIFO or creates a file there (libvirtd opens with `O_CREAT`:
    /// it gets `EISDIR`). Called once libvirtd has opened the FIFO, and before the read
    /// end is closed on an interrupt, so that a libvirtd never blocks in an open without
    /// a reader. Without `RENAME_EXCHANGE` the FIFO is unlinked instead.
    fn seal(&mut self) {
        if self.moved.is_some() {
            return;
        }
        let moved = self.dir.join("dump.fifo.sealed");
        if std::fs::create_dir(&moved).is_ok() {
            let cwd = rustix::fs::CWD;
            if rustix::fs::renameat_with(
                cwd,
                &self.path,
                cwd,
                &moved,
                rustix::fs::RenameFlags::EXCHANGE,
            )
            .is_ok()
            {
                self.moved = Some(moved);
                return;
            }
            let _ = std::fs::remove_dir(&moved);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        match &self.moved {
            Some(moved) => {
                let _ = std::fs::remove_file(moved);
                let _ = std::fs::remove_dir(&self.path);
            }
            None => {
                let _ = std::fs::remove_file(&self.path);
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn output_error(e: std::io::Error, what: &'static str, path: &Path) -> CaptureError {
    CaptureError::Output {
        source: coroner_formats::Error::Io {
            what,
            path: path.to_path_buf(),
            source: e,
        },
        kept: None,
    }
}

/// Captures the domain in `opts` into `opts.output`.
pub fn capture_domain(
    opts: &DomainOptions,
    progress: &dyn Progress,
    interrupt: &AtomicBool,
) -> Result<Captured, CaptureError> {
    let t_start = Instant::now();
    let dom = &opts.domain;
    let mut info = CaptureInfo {
        schema: coroner_record::SCHEMA,
        method: "libvirt".into(),
        ..CaptureInfo::default()
    };

    // Preflight and the freeze decision.
    let t = Instant::now();
    let mut state = dom.state(opts.timeout)?;
    let run_state = RunState::parse(state.run_state());
    if state.state == "shut off" || state.state == "shutoff" {
        return Err(CaptureError::DumpFailed {
            reason: format!(
                "{dom} is {}: no qemu process holds its memory",
                state.text()
            ),
            kept: None,
        });
    }
    let mut events = opts.events.clone();
    let mut events_watched = opts.events_watched;
    if let (false, Some(limit)) = (run_state.is_frozen(), opts.wait_frozen) {
        let mut stream = DomainEvents::start(dom);
        state = wait_until_frozen(dom, limit, opts.timeout, &mut stream, interrupt)?;
        events.extend(stream.take_seen());
        events_watched |= stream.running();
    }
    let run_state = RunState::parse(state.run_state());
    if run_state.is_busy() {
        return Err(CaptureError::Busy {
            state: state.text(),
        });
    }
    if !run_state.is_frozen() {
        if opts.stop {
            dom.suspend(opts.timeout)?;
            state = dom.state(opts.timeout)?;
            info.stopped_by_coroner = true;
        } else if opts.allow_running {
            info.live = true;
        } else {
            return Err(CaptureError::NotFrozen {
                state: state.text(),
            });
        }
    }
    info.run_state_before = state.run_state().to_string();
    info.timings.preflight_ms = ms(t);

    // What the dump does not hold.
    let t = Instant::now();
    let mut record = LibvirtRecord {
        uri: dom.uri.clone(),
        domain: dom.name.clone(),
        state_before: state.text(),
        events,
        events_watched,
        path: Some(if opts.monitor { "dump+monitor" } else { "dump" }.into()),
        ..LibvirtRecord::default()
    };
    if opts.monitor {
        for (command, field) in [
            ("info registers -a", &mut info.info_registers),
            ("info mtree -f", &mut info.info_mtree),
        ] {
            match dom.hmp(command, opts.timeout) {
                Ok(text) => *field = Some(text),
                Err(e) => info.warnings.push(format!("{command}: {e}")),
            }
        }
    }
    match dom.xml(opts.timeout) {
        Ok(x) => {
            info.ram_bytes = info.ram_bytes.or(crate::libvirt::memory_bytes(&x));
            record.xml = Some(x)
        }
        Err(e) => info.warnings.push(format!("domain XML: {e}")),
    }
    info.qemu_pid = dom.qemu_pid();
    if let Some(v) = info.qemu_pid.and_then(|pid| dom.qemu_version(pid)) {
        info.qemu_version = v;
    }
    if let Some(l) = info
        .qemu_pid
        .and_then(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
    {
        info.qemu_cmdline = Some(
            l.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect(),
        );
    }
    if let Some(path) = opts.qemu_log.clone().or_else(|| dom.log_path()) {
        match LogTail::read(&path, opts.log_tail_bytes) {
            Ok(tail) => info.qemu_log = Some(tail),
            Err(e) => info
                .warnings
                .push(format!("qemu log {}: {e}", path.display())),
        }
    }
    info.timings.state_ms = ms(t);

    // The dump, into a FIFO libvirtd opens.
    let t = Instant::now();
    info.timings.dump_started_unix_us = unix_us();
    let format = match opts.dump_format {
        DumpFormat::Elf => "elf",
        DumpFormat::Kdump => dom.kdump_format(info.qemu_pid),
    };
    info.dump_format = Some(format.into());
    let mut meta = Metadata::new(opts.tool.clone());
    meta.origin = Some(format!(
        "capture {dom} via virsh dump --memory-only --format {format}{}",
        if info.live { " --live" } else { "" }
    ));
    info.libvirt = Some(record.clone());
    info.store(&mut meta);
    let mut fifo = Fifo::create(&opts.output)
        .map_err(|e| output_error(e, "create a FIFO in", &output_dir(&opts.output)))?;
    let rd: OwnedFd = rustix::fs::open(
        &fifo.path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| output_error(e.into(), "open", &fifo.path))?;
    // A larger FIFO means fewer wake-ups; the default size still works.
    let _ = rustix::pipe::fcntl_setpipe_size(&rd, 1 << 20);
    let writer = open_writer(&opts.output, opts.write.clone(), info.ram_bytes)
        .map_err(|source| CaptureError::Output { source, kept: None })?;
    let mut cmd = Command::new("virsh");
    cmd.args([
        "-q",
        "-c",
        &dom.uri,
        "dump",
        "--memory-only",
        "--format",
        format,
    ]);
    if info.live {
        cmd.arg("--live");
    }
    let mut child = cmd
        .arg(&dom.name)
        .arg(&fifo.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(crate::libvirt::VirshError::Spawn)?;
    let outcome = wait_for_writer(&rd, &mut child, opts.timeout, interrupt);
    // libvirtd opens the path once: from now on nothing may open it again.
    fifo.seal();
    let received = AtomicU64::new(0);
    let drained = match outcome {
        Ok(()) => {
            let intake = if format == "elf" {
                Intake::Elf(Box::new(writer))
            } else {
                Intake::Kdump(Box::new(coroner_formats::kdump::KdumpStream::new(writer)))
            };
            drain_with_progress(rd, intake, &received, interrupt, opts.timeout, progress)
        }
        Err(e) => {
            drop(rd);
            let job = end_of_job(&mut child, JOB_GRACE);
            let _ = writer.abandon(meta, &e.to_string(), false);
            return Err(with_job(e, job));
        }
    };
    // The read end is closed: virsh returns once libvirt's job ends (qemu done, or
    // failed on the closed FIFO). Bounded: a stuck libvirtd does not hold coroner.
    let stopped_early = !matches!(drained.end, DrainEnd::Eof);
    let grace = if stopped_early {
        JOB_GRACE
    } else {
        opts.timeout
    };
    let job = end_of_job(&mut child, grace);
    let outcome = match &job {
        JobEnd::Ended { ok: true, .. } => Ok(()),
        JobEnd::Ended { stderr, .. } => Err(CaptureError::DumpFailed {
            reason: format!("virsh dump: {stderr}"),
            kept: None,
        }),
        JobEnd::RunsOn => Err(CaptureError::DumpFailed {
            reason: format!(
                "virsh dump did not return in {:.1} s after the dump's end",
                grace.as_secs_f64()
            ),
            kept: None,
        }),
    };
    drop(fifo);
    info.timings.dump_ms = ms(t);
    let result = settle_with(
        drained,
        outcome,
        opts.keep_partial,
        opts.timeout,
        &meta,
        interrupt,
    );
    let after = dom.state(opts.timeout).ok();
    record.state_after = after.as_ref().map(DomainState::text);
    info.run_state_after = after.as_ref().map(|s| s.run_state().to_string());
    info.libvirt = Some(record);
    let (writer, head, vmcoreinfo_candidates) =
        take_streamed(result.map_err(|e| with_job(e, job))?, &mut meta);

    // Checks before the file may claim to be complete: the domain is as it was.
    if let Some(after) = after.filter(|a| !info.live && *a != state) {
        let reason = format!(
            "the domain changed during the capture: {} before, {} after",
            state.text(),
            after.text()
        );
        let kept = give_up(writer, meta, &reason, opts.keep_partial, &info);
        return Err(CaptureError::Resumed {
            state: after.text(),
            kept,
        });
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

/// Asks libvirt for the domain's state until it is frozen or `limit` passes, woken by
/// libvirt's events (kept in `events`), and at least every second (an event that came
/// before the stream was up).
fn wait_until_frozen(
    dom: &Domain,
    limit: Duration,
    timeout: Duration,
    events: &mut DomainEvents,
    interrupt: &AtomicBool,
) -> Result<DomainState, CaptureError> {
    let deadline = Instant::now() + limit;
    loop {
        let state = dom.state(timeout)?;
        let now = Instant::now();
        if RunState::parse(state.run_state()).is_frozen() || now >= deadline {
            return Ok(state);
        }
        if interrupt.load(Ordering::Relaxed) {
            return Err(CaptureError::Interrupted {
                kept: None,
                after: None,
            });
        }
        events.wait((deadline - now).min(Duration::from_secs(1)));
    }
}

/// How long libvirt's job is given to end once coroner stopped reading early.
const JOB_GRACE: Duration = Duration::from_secs(10);

/// How `virsh dump` (libvirt's dump job) ended.
enum JobEnd {
    /// It returned.
    Ended {
        /// With success.
        ok: bool,
        /// What it said.
        stderr: String,
    },
    /// It had not returned within the grace: killed, the job itself runs on in libvirtd.
    RunsOn,
}

/// Waits up to `grace` for `virsh dump` to return; kills it after that.
fn end_of_job(child: &mut Child, grace: Duration) -> JobEnd {
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut stderr = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
                }
                return JobEnd::Ended {
                    ok: status.success(),
                    stderr: stderr.trim().to_string(),
                };
            }
            Ok(None) if started.elapsed() < grace => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return JobEnd::RunsOn;
            }
        }
    }
}

/// An interrupted capture says what became of libvirt's job, which cannot be aborted.
fn with_job(e: CaptureError, job: JobEnd) -> CaptureError {
    match e {
        CaptureError::Interrupted { kept, .. } => CaptureError::Interrupted {
            kept,
            after: Some(match job {
                JobEnd::Ended { .. } => {
                    "libvirt's dump job ended when coroner stopped reading".into()
                }
                JobEnd::RunsOn => "libvirt's dump job cannot be aborted and runs on until \
                    qemu's next write finds the pipe closed (`virsh domjobinfo` shows it)"
                    .into(),
            }),
        },
        other => other,
    }
}

/// Waits until libvirtd has opened the FIFO and written to it (or closed it), while
/// virsh runs: a virsh that fails first (no such domain, a dump refused) is the answer.
fn wait_for_writer(
    rd: &OwnedFd,
    child: &mut Child,
    timeout: Duration,
    interrupt: &AtomicBool,
) -> Result<(), CaptureError> {
    let started = Instant::now();
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    loop {
        if interrupt.load(Ordering::Relaxed) {
            return Err(CaptureError::Interrupted {
                kept: None,
                after: None,
            });
        }
        let mut fds = [PollFd::new(rd, PollFlags::IN)];
        match poll(&mut fds, Some(&tick)) {
            Ok(n) if n > 0 => return Ok(()),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(CaptureError::Incomplete {
                    bytes: 0,
                    reason: format!("waiting for libvirt's dump: {e}"),
                    kept: None,
                })
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            return Err(CaptureError::DumpFailed {
                reason: format!(
                    "virsh dump ended ({status}) before writing: {}",
                    stderr.trim()
                ),
                kept: None,
            });
        }
        if started.elapsed() > timeout {
            return Err(CaptureError::Incomplete {
                bytes: 0,
                reason: format!(
                    "libvirt did not start writing the dump in {:.1} s (--timeout)",
                    timeout.as_secs_f64()
                ),
                kept: None,
            });
        }
    }
}

/// Drains the FIFO into `writer` on a thread while this one reports progress.
fn drain_with_progress(
    rd: OwnedFd,
    intake: Intake,
    received: &AtomicU64,
    interrupt: &AtomicBool,
    timeout: Duration,
    progress: &dyn Progress,
) -> Drained {
    std::thread::scope(|s| {
        let reader = s.spawn(|| drain(rd, intake, received, interrupt, Some(timeout)));
        while !reader.is_finished() {
            progress.set_done(received.load(Ordering::Relaxed));
            std::thread::park_timeout(Duration::from_millis(100));
        }
        match reader.join() {
            Ok(d) => d,
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}
