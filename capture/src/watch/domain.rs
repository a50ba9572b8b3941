//! `watch --domain`: one libvirt domain followed through libvirt's events (`virsh event
//! --loop --all --domain`, taint-free) and `virsh domstate --reason` every
//! `poll_interval`; a freeze in a trigger state is captured with
//! [`capture_domain`](crate::capture_domain) into `NAME-STAMP-REASON.core.zst`, once per
//! freeze, with the events seen since the previous capture in its record. Announces the
//! same notices as the QMP watcher.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use super::file_names::output_path;
use super::notice::{Notice, NoticeKind};
use super::{LogLevel, Triggers, WatchEnd, WatchSink};
use crate::capture::unix_us;
use crate::capture_domain::{capture_domain, DomainOptions};
use crate::domain_events::{DomainEvents, Woken};
use crate::health::Health;
use crate::libvirt::{DomainState, VirshError};
use crate::run_state::RunState;

/// What to watch and how.
#[derive(Clone, Debug)]
pub struct DomainWatchOptions {
    /// The guest's name in file names and notices.
    pub name: String,
    /// How to capture (its `output` is replaced for each capture).
    pub capture: DomainOptions,
    /// Where captures go; with `remote`, where receipts go.
    pub dir: std::path::PathBuf,
    /// Upload captures under this prefix (`s3://BUCKET/PREFIX/HOST/`) instead.
    pub remote: Option<String>,
    /// Which freezes to capture.
    pub triggers: Triggers,
    /// Stop after the first capture, or when the domain goes away.
    pub once: bool,
    /// How often to ask libvirt when no event comes.
    pub poll_interval: Duration,
    /// End quietly when the domain goes away (`--all-domains`: a domain that comes back
    /// gets a new watcher).
    pub end_when_gone: bool,
}

/// Watches the domain until `stop` is set (or, with `once`, the first capture).
pub fn watch_domain(
    opts: &DomainWatchOptions,
    stop: &AtomicBool,
    sink: &dyn WatchSink,
) -> WatchEnd {
    let dom = &opts.capture.domain;
    let source = format!("libvirt:{}/{}", dom.uri, dom.name);
    let notice =
        |event: NoticeKind, health: Health, state: Option<&DomainState>, detail: String| Notice {
            event,
            guest: opts.name.clone(),
            qmp: source.clone(),
            time_unix_us: unix_us().unwrap_or(0),
            health,
            run_state: state.map(|s| s.run_state().to_string()),
            reason: None,
            capture: None,
            kept: None,
            qemu_pid: dom.qemu_pid(),
            latency_ms: None,
            events: Vec::new(),
            detail,
        };
    let mut events = DomainEvents::start(dom);
    if !events.running() {
        sink.log(
            LogLevel::Warning,
            &opts.name,
            "virsh event did not start: polling only",
        );
    }
    let mut last: Option<Health> = None;
    let mut captured_this_freeze = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return WatchEnd::Stopped;
        }
        let state = match dom.state(opts.capture.timeout) {
            Ok(s) if s.state != "shut off" && s.state != "shutoff" => Some(s),
            Ok(_) => None,
            Err(VirshError::Failed { stderr, .. })
                if stderr.contains("failed to get domain")
                    || stderr.contains("Domain not found") =>
            {
                None
            }
            Err(e) => {
                sink.log(LogLevel::Warning, &opts.name, &e.to_string());
                wait(&mut events, opts, sink);
                continue;
            }
        };
        let Some(state) = state else {
            if last != Some(Health::Gone) {
                sink.notice(notice(
                    NoticeKind::Gone,
                    Health::Gone,
                    None,
                    format!("{source}: shut off or undefined"),
                ));
                last = Some(Health::Gone);
            }
            captured_this_freeze = false;
            if opts.once {
                return WatchEnd::Failed;
            }
            if opts.end_when_gone {
                return WatchEnd::SocketRemoved;
            }
            wait(&mut events, opts, sink);
            continue;
        };
        let run_state = RunState::parse(state.run_state());
        let health = Health::of_run_state(&run_state);
        if last.is_none() {
            sink.notice(notice(
                NoticeKind::Watching,
                health,
                Some(&state),
                format!(
                    "libvirt says {}; capturing on {} into {}",
                    state.text(),
                    opts.triggers.names().join(","),
                    opts.dir.display()
                ),
            ));
        }
        match health {
            Health::Running => {
                if matches!(
                    last,
                    Some(Health::Frozen | Health::FrozenCaptured | Health::Paused)
                ) {
                    sink.notice(notice(
                        NoticeKind::Resumed,
                        health,
                        Some(&state),
                        format!("libvirt says {}", state.text()),
                    ));
                }
                captured_this_freeze = false;
            }
            Health::Paused if last != Some(Health::Paused) => {
                sink.notice(notice(
                    NoticeKind::Paused,
                    health,
                    Some(&state),
                    format!("libvirt says {}: not a failure", state.text()),
                ));
            }
            Health::Frozen | Health::FrozenCaptured if !captured_this_freeze => {
                if last.is_some() && !matches!(last, Some(Health::Frozen)) {
                    sink.notice(notice(
                        NoticeKind::Frozen,
                        health,
                        Some(&state),
                        format!("libvirt says {}", state.text()),
                    ));
                }
                // libvirt's memory-failure event (qemu's MEMORY_FAILURE) before the freeze.
                let memory_failure = events.saw("memory-failure");
                if let Some(reason) = opts.triggers.reason(state.run_state(), memory_failure) {
                    captured_this_freeze = true;
                    let mut c = opts.capture.clone();
                    c.events = events.take_seen();
                    c.events_watched = events.running();
                    c.output = output_path(
                        &opts.dir,
                        opts.remote.as_deref(),
                        &opts.name,
                        SystemTime::now(),
                        &reason,
                    );
                    // A capture in progress is finished before `stop` is looked at.
                    let result =
                        capture_domain(&c, &coroner_formats::NoProgress, &AtomicBool::new(false));
                    match result {
                        Ok(done) => {
                            if let Err(e) = crate::receipt::keep(&opts.dir, &done) {
                                let message = crate::receipt::not_kept(&opts.dir, &done, &e);
                                sink.log(LogLevel::Warning, &opts.name, &message);
                            }
                            let mut n = notice(
                                NoticeKind::Captured,
                                Health::FrozenCaptured,
                                Some(&state),
                                format!("libvirt says {}", state.text()),
                            );
                            n.reason = Some(reason);
                            n.capture = Some(done.finished.path);
                            sink.notice(n);
                            last = Some(Health::FrozenCaptured);
                            if opts.once {
                                return WatchEnd::Captured;
                            }
                            wait(&mut events, opts, sink);
                            continue;
                        }
                        Err(e) => {
                            let mut n = notice(
                                NoticeKind::CaptureFailed,
                                Health::Frozen,
                                Some(&state),
                                e.to_string(),
                            );
                            n.reason = Some(reason);
                            n.kept = e.kept().cloned();
                            sink.notice(n);
                            if opts.once {
                                return WatchEnd::Failed;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        last = Some(if captured_this_freeze && health == Health::Frozen {
            Health::FrozenCaptured
        } else {
            health
        });
        wait(&mut events, opts, sink);
    }
}

/// Waits for an event or the poll interval; says so when libvirt's event stream had
/// ended and was started again.
fn wait(events: &mut DomainEvents, opts: &DomainWatchOptions, sink: &dyn WatchSink) {
    match events.wait(opts.poll_interval) {
        Woken::Restarted {
            running: true,
            flapping: false,
            ..
        } => sink.log(
            LogLevel::Warning,
            &opts.name,
            "virsh event had ended (libvirtd restarted?): started again",
        ),
        Woken::Restarted {
            running: false,
            was_running: true,
            ..
        } => sink.log(
            LogLevel::Warning,
            &opts.name,
            "virsh event ended and cannot start again: polling until it can",
        ),
        _ => {}
    }
}
