//! `watch`: hold a QMP connection to one qemu (reconnecting with backoff when it goes and
//! comes back), and capture the guest the moment it freezes in a trigger state. The
//! capture runs over the same connection: a unix QMP monitor serves one client at a time.
//!
//! Read-only like `capture`: it sends queries, the capture's commands, and nothing that
//! resumes, resets or changes the guest.

mod domain;

mod file_names;
mod notice;
mod triggers;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

pub use domain::{watch_domain, DomainWatchOptions};
use file_names::output_path;
pub use file_names::safe_name;
pub use notice::{Notice, NoticeKind};
pub use triggers::{Triggers, DEFAULT_TRIGGERS, MEMORY_FAILURE};

use crate::capture::{capture_with, unix_us, CaptureOptions};
use crate::capture_error::CaptureError;
use crate::guest_match::GuestRef;
use crate::health::Health;
use crate::judge::{find_capture, judge};
use crate::local_process;
use crate::qmp::Qmp;
use crate::run_state::RunState;
use crate::state_file::WatchState;
use crate::QmpAddress;
use coroner_record::Event;

/// Events that freeze a guest (qemu sends `STOP` after each of them when it pauses).
const FREEZING_EVENTS: &[&str] = &[
    "GUEST_PANICKED",
    "BLOCK_IO_ERROR",
    "WATCHDOG",
    "SHUTDOWN",
    "SUSPEND",
    "STOP",
];

/// Events kept per connection; older ones are dropped.
const KEEP_EVENTS: usize = 1024;

/// Events carried by one notice.
const NOTICE_EVENTS: usize = 64;

/// How to watch one qemu.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// The guest's name, used in file names and notices.
    pub name: String,
    /// Capture options; `qmp` is the monitor watched, `output` is set per capture.
    pub capture: CaptureOptions,
    /// Where captures go; with `remote`, where the state file and receipts go.
    pub dir: PathBuf,
    /// Upload captures under this prefix (`s3://BUCKET/PREFIX/HOST/`) instead.
    pub remote: Option<String>,
    /// Which freezes are captured.
    pub triggers: Triggers,
    /// Stop after the first capture (or on finding the freeze captured already), or when
    /// qemu goes away.
    pub once: bool,
    /// How often to ask `query-status` when no event comes (missed events, a hung qemu).
    pub poll_interval: Duration,
    /// The longest wait between reconnection attempts (the first is 100 ms, doubling).
    pub max_backoff: Duration,
    /// Stop watching when the socket file disappears (for sockets found in a directory).
    pub end_when_socket_removed: bool,
}

impl WatchOptions {
    /// Defaults for watching `capture.qmp` as `name`, capturing into `dir`.
    pub fn new(name: String, capture: CaptureOptions, dir: PathBuf) -> Self {
        Self {
            name,
            capture,
            dir,
            remote: None,
            triggers: Triggers::default(),
            once: false,
            poll_interval: Duration::from_secs(5),
            max_backoff: Duration::from_secs(5),
            end_when_socket_removed: false,
        }
    }
}

/// Where the notices and the diagnostics go.
pub trait WatchSink: Sync {
    /// An announcement (a JSON line, a hook).
    fn notice(&self, notice: Notice);
    /// A diagnostic for the log (connection trouble, retries).
    fn log(&self, level: LogLevel, guest: &str, message: &str);
}

/// Severity of a diagnostic (syslog's levels, for the journal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Something failed.
    Error,
    /// Something is off but watching goes on.
    Warning,
    /// Normal operation.
    Info,
}

/// Why [`watch`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchEnd {
    /// `stop` was set.
    Stopped,
    /// `once`: the freeze was captured.
    Captured,
    /// `once`: qemu went away before a capture, or a capture failed.
    Failed,
    /// What was watched went away by design: the socket file was removed
    /// (`end_when_socket_removed`), or the domain is gone (`end_when_gone`).
    SocketRemoved,
}

/// Watches one qemu until `stop` is set (or, with `once`, until the first capture).
/// A capture in progress is finished before `stop` is looked at.
pub fn watch(opts: &WatchOptions, stop: &AtomicBool, sink: &dyn WatchSink) -> WatchEnd {
    let end = watch_until_end(opts, stop, sink);
    // Nobody keeps the state any more.
    let _ = std::fs::remove_file(crate::state_file::state_path(&opts.dir, &opts.name));
    end
}

fn watch_until_end(opts: &WatchOptions, stop: &AtomicBool, sink: &dyn WatchSink) -> WatchEnd {
    let address = &opts.capture.qmp;
    let mut backoff = Duration::from_millis(100);
    let mut outage_logged = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return WatchEnd::Stopped;
        }
        if let (true, QmpAddress::Unix(path)) = (opts.end_when_socket_removed, address) {
            if !path.exists() {
                sink.log(
                    LogLevel::Info,
                    &opts.name,
                    "socket removed; not watching it any more",
                );
                return WatchEnd::SocketRemoved;
            }
        }
        match Qmp::connect(address, opts.capture.timeout) {
            Ok(qmp) => {
                backoff = Duration::from_millis(100);
                outage_logged = false;
                let mut session = Session::new(opts, sink, qmp);
                match session.run(stop) {
                    SessionEnd::Stopped => return WatchEnd::Stopped,
                    SessionEnd::Captured => return WatchEnd::Captured,
                    SessionEnd::CaptureFailed => return WatchEnd::Failed,
                    SessionEnd::Gone(detail) => {
                        session.announce(NoticeKind::Gone, Health::Gone, |n| {
                            n.run_state = None;
                            n.detail = detail;
                        });
                        if opts.once {
                            return WatchEnd::Failed;
                        }
                    }
                    SessionEnd::Lost(detail) => {
                        sink.log(
                            LogLevel::Warning,
                            &opts.name,
                            &format!("connection dropped: {detail}; reconnecting"),
                        );
                    }
                }
            }
            Err(e) => {
                if !outage_logged {
                    // qemu queues a second client silently behind the first.
                    let hint = if matches!(e, crate::Error::Timeout { .. }) {
                        " (is another client, such as libvirt, holding this monitor? give coroner its own -qmp)"
                    } else {
                        ""
                    };
                    sink.log(
                        LogLevel::Warning,
                        &opts.name,
                        &format!(
                            "{}{hint}; retrying every {} s at most",
                            with_causes(&e),
                            opts.max_backoff.as_secs_f64()
                        ),
                    );
                    outage_logged = true;
                }
            }
        }
        sleep_unless(stop, backoff);
        backoff = (backoff * 2).min(opts.max_backoff);
    }
}

/// Sleeps `d` in short steps, returning early when `stop` is set.
fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

enum SessionEnd {
    Stopped,
    Captured,
    CaptureFailed,
    /// qemu closed the connection or stopped listening.
    Gone(String),
    /// The connection broke in another way (garbage, a timeout); qemu may still be there.
    Lost(String),
}

/// One connection's worth of watching.
struct Session<'a> {
    opts: &'a WatchOptions,
    sink: &'a dyn WatchSink,
    qmp: Qmp,
    pid: Option<u32>,
    run_state: Option<String>,
    /// Index in `qmp.events()` where the current run (since connect or the last
    /// `RESUME`) began.
    cycle_start: usize,
    /// The current freeze was dealt with (announced, captured or not).
    freeze_handled: bool,
    /// A `MEMORY_FAILURE` came during this connection, since the last `RESET`.
    memory_failure_seen: bool,
}

impl<'a> Session<'a> {
    fn new(opts: &'a WatchOptions, sink: &'a dyn WatchSink, qmp: Qmp) -> Self {
        Session {
            opts,
            sink,
            qmp,
            pid: None,
            run_state: None,
            cycle_start: 0,
            freeze_handled: false,
            memory_failure_seen: false,
        }
    }

    fn announce(&self, kind: NoticeKind, health: Health, fill: impl FnOnce(&mut Notice)) {
        let events = &self.qmp.events()[self.cycle_start.min(self.qmp.events().len())..];
        let mut n = Notice {
            event: kind,
            guest: self.opts.name.clone(),
            qmp: self.opts.capture.qmp.to_string(),
            time_unix_us: unix_us().unwrap_or(0),
            health,
            run_state: self.run_state.clone(),
            reason: None,
            capture: None,
            kept: None,
            qemu_pid: self.pid,
            latency_ms: None,
            events: events[events.len().saturating_sub(NOTICE_EVENTS)..].to_vec(),
            detail: String::new(),
        };
        fill(&mut n);
        let state = WatchState {
            guest: n.guest.clone(),
            qmp: n.qmp.clone(),
            health: n.health,
            run_state: n.run_state.clone(),
            capture: n
                .capture
                .clone()
                .filter(|_| n.health == Health::FrozenCaptured),
            qemu_pid: n.qemu_pid,
            watcher_pid: std::process::id(),
            updated_unix_us: n.time_unix_us,
        };
        if let Err(e) = crate::state_file::write_state(&self.opts.dir, &state) {
            self.sink.log(
                LogLevel::Warning,
                &self.opts.name,
                &format!("cannot write the state file for `coroner status`: {e}"),
            );
        }
        self.sink.notice(n);
    }

    fn run(&mut self, stop: &AtomicBool) -> SessionEnd {
        let state = match self.qmp.run_state() {
            Ok(s) => s,
            Err(e) => return end_of(e),
        };
        self.pid = local_process::find_for(&mut self.qmp).map(|l| l.pid);
        self.run_state = Some(state.clone());
        self.cycle_start = self.qmp.events().len();
        let v = self.qmp.version().clone();
        let judged = judge(
            Some(&self.opts.dir),
            &GuestRef::Qmp(&self.opts.capture.qmp, self.pid),
            &state,
        );
        let health = judged.health;
        let triggers = self.opts.triggers.names().join(",");
        self.announce(NoticeKind::Watching, health, |n| {
            n.capture = judged.capture.clone();
            n.detail = format!(
                "qemu {}.{}.{}, {}; capturing on {triggers} into {}",
                v.major,
                v.minor,
                v.micro,
                judged.detail,
                match &self.opts.remote {
                    Some(prefix) => prefix.clone(),
                    None => self.opts.dir.display().to_string(),
                }
            )
        });
        if health != Health::Running {
            if let Some(end) = self.on_frozen(state, true) {
                return end;
            }
        }
        let mut last_poll = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                return SessionEnd::Stopped;
            }
            let event = match self.qmp.next_event(Duration::from_millis(200)) {
                Ok(e) => e,
                Err(e) => return end_of(e),
            };
            let check = match &event {
                Some(e) if e.event == "MEMORY_FAILURE" => {
                    self.on_memory_failure(e);
                    false
                }
                Some(e) if e.event == "RESUME" => {
                    self.on_resume();
                    false
                }
                // A reset guest starts afresh: an earlier memory error no longer explains
                // what it does next.
                Some(e) if e.event == "RESET" => {
                    self.memory_failure_seen = false;
                    false
                }
                Some(e) => FREEZING_EVENTS.contains(&e.event.as_str()),
                None => last_poll.elapsed() >= self.opts.poll_interval,
            };
            if check {
                last_poll = Instant::now();
                let state = match self.qmp.run_state() {
                    Ok(s) => s,
                    Err(e) => return end_of(e),
                };
                self.run_state = Some(state.clone());
                if Health::of_run_state(&RunState::parse(&state)) != Health::Running {
                    if !self.freeze_handled {
                        if let Some(end) = self.on_frozen(state, false) {
                            return end;
                        }
                    }
                } else if self.freeze_handled && state == "running" {
                    // The RESUME event was missed (or came on another monitor's watch).
                    self.on_resume();
                }
            }
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.qmp.events().len() > KEEP_EVENTS {
            let dropped = self.qmp.trim_events(KEEP_EVENTS / 2);
            self.cycle_start = self.cycle_start.saturating_sub(dropped);
        }
    }

    fn on_memory_failure(&mut self, e: &Event) {
        self.memory_failure_seen = true;
        let d = &e.data;
        let detail = format!(
            "host memory error for the {}: action {}{}",
            d["recipient"].as_str().unwrap_or("?"),
            d["action"].as_str().unwrap_or("?"),
            if d["flags"]["action-required"].as_bool() == Some(true) {
                ", action required"
            } else {
                ""
            }
        );
        let health = Health::of_run_state(&RunState::parse(
            self.run_state.as_deref().unwrap_or("running"),
        ));
        self.announce(NoticeKind::MemoryFailure, health, |n| {
            n.detail = detail;
            n.events = vec![e.clone()];
        });
    }

    fn on_resume(&mut self) {
        let was_handled = self.freeze_handled;
        self.freeze_handled = false;
        self.run_state = Some("running".into());
        if was_handled {
            self.announce(NoticeKind::Resumed, Health::Running, |n| {
                n.detail = "the guest runs again".into()
            });
        }
        self.cycle_start = self.qmp.events().len();
    }

    /// Deals with a freeze or a pause: announces it, and captures it when it is a trigger.
    fn on_frozen(&mut self, state: String, at_connect: bool) -> Option<SessionEnd> {
        self.freeze_handled = true;
        let opts = self.opts;
        // A failure, or coroner's own `capture --stop`, is a freeze; any other pause is
        // the operator's (health `paused`).
        let judged = judge(
            Some(&opts.dir),
            &GuestRef::Qmp(&opts.capture.qmp, self.pid),
            &state,
        );
        let paused = judged.health == Health::Paused;
        let kind = if paused {
            NoticeKind::Paused
        } else {
            NoticeKind::Frozen
        };
        let Some(reason) = opts.triggers.reason(&state, self.memory_failure_seen) else {
            self.announce(kind, judged.health, |n| {
                n.capture = judged.capture.clone();
                n.detail = format!(
                    "{}; not a trigger ({}), not captured",
                    judged.detail,
                    opts.triggers.names().join(",")
                )
            });
            return None;
        };
        // Once captured, a freeze is frozen-captured; an operator's pause stays paused.
        let captured_health = if paused {
            Health::Paused
        } else {
            Health::FrozenCaptured
        };
        if at_connect {
            if let Some(p) = find_capture(
                &opts.dir,
                &GuestRef::Qmp(&opts.capture.qmp, self.pid),
                &state,
            ) {
                self.announce(kind, captured_health, |n| {
                    n.detail = format!("run state {state}, already captured");
                    n.capture = Some(p);
                });
                return opts.once.then_some(SessionEnd::Captured);
            }
        }
        let freezing = self.freezing_event();
        let stamp = freezing
            .as_ref()
            .map(|e| UNIX_EPOCH + Duration::new(e.seconds.max(0) as u64, 0))
            .unwrap_or_else(std::time::SystemTime::now);
        let output = output_path(
            &opts.dir,
            opts.remote.as_deref(),
            &opts.name,
            stamp,
            &reason,
        );
        self.announce(kind, judged.health, |n| {
            n.reason = Some(reason.clone());
            n.detail = format!("{}; capturing to {}", judged.detail, output.display());
        });
        let mut copts = opts.capture.clone();
        copts.output = output;
        copts.guest = Some(opts.name.clone());
        copts.wait_frozen = None;
        copts.stop = false;
        copts.allow_running = false;
        let never = AtomicBool::new(false);
        let result = capture_with(&mut self.qmp, &copts, &coroner_formats::NoProgress, &never);
        match result {
            Ok(done) => {
                if let Err(e) = crate::receipt::keep(&opts.dir, &done) {
                    let message = crate::receipt::not_kept(&opts.dir, &done, &e);
                    self.sink.log(LogLevel::Warning, &opts.name, &message);
                }
                let latency = match (freezing, done.info.timings.dump_started_unix_us) {
                    (Some(e), Some(start)) => Some((start as f64 - e.time_us() as f64) / 1000.0),
                    _ => None,
                };
                let f = &done.finished;
                self.announce(NoticeKind::Captured, captured_health, |n| {
                    n.reason = Some(reason);
                    n.capture = Some(f.path.clone());
                    n.latency_ms = latency;
                    n.qemu_pid = done.info.qemu_pid.or(n.qemu_pid);
                    n.detail = format!(
                        "run state {state}: {} bytes of ELF in {} bytes, {:.1} s",
                        f.content_size,
                        f.compressed_size,
                        done.info.timings.total_ms as f64 / 1000.0
                    );
                });
                opts.once.then_some(SessionEnd::Captured)
            }
            Err(e) => {
                let gone = match &e {
                    CaptureError::Qmp(q) if q.is_gone() => true,
                    _ => self.qemu_gone(),
                };
                let kept = e.kept().cloned();
                let detail = with_causes(&e);
                let health = if gone { Health::Gone } else { judged.health };
                self.announce(NoticeKind::CaptureFailed, health, |n| {
                    n.reason = Some(reason);
                    n.kept = kept;
                    n.detail = detail.clone();
                });
                if gone {
                    Some(SessionEnd::Gone(detail))
                } else {
                    opts.once.then_some(SessionEnd::CaptureFailed)
                }
            }
        }
    }

    /// Asks qemu for its run state after a failed capture: a dump cut short may mean qemu
    /// itself went away (a fence killed it). True when it did.
    fn qemu_gone(&mut self) -> bool {
        match self.qmp.run_state() {
            Ok(s) => {
                self.run_state = Some(s);
                false
            }
            Err(q) => q.is_gone(),
        }
    }

    /// The first event of the current run that froze the guest.
    fn freezing_event(&self) -> Option<Event> {
        let events = self.qmp.events();
        events[self.cycle_start.min(events.len())..]
            .iter()
            .find(|e| FREEZING_EVENTS.contains(&e.event.as_str()))
            .cloned()
    }
}

fn end_of(e: crate::Error) -> SessionEnd {
    if e.is_gone() {
        SessionEnd::Gone(with_causes(&e))
    } else {
        SessionEnd::Lost(with_causes(&e))
    }
}

/// An error and its causes on one line.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}
