//! `coroner watch`: one thread per watched qemu (`coroner_capture::watch`), the
//! announcements printed here in order, and the `--exec` hook fed from a queue.

mod guests;
mod hook;
mod systemd;

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use anyhow::Context;
use coroner_capture::{
    watch, CaptureOptions, LogLevel, Notice, Triggers, WatchEnd, WatchOptions, WatchSink,
};

use crate::cli::WatchArgs;
use crate::exit::{ClassifyExt, ExitClass};
use crate::journal::log;
use guests::{parse_target, sockets_in, Target};
use systemd::Notifier;

/// Hands notices from the watcher threads to the main thread.
struct Sink {
    notices: Sender<Notice>,
}

impl WatchSink for Sink {
    fn notice(&self, notice: Notice) {
        // A failed upload that could not be aborted is said now, not at exit.
        if notice.event == coroner_capture::NoticeKind::CaptureFailed {
            for (url, why) in coroner_objstore::take_uploads_not_aborted() {
                let message = coroner_objstore::not_aborted_message(&url, &why);
                log(LogLevel::Warning, &format!("{}: {message}", notice.guest));
            }
        }
        // The receiver lives until every watcher has ended.
        let _ = self.notices.send(notice);
    }

    fn log(&self, level: LogLevel, guest: &str, message: &str) {
        log(level, &format!("{guest}: {message}"));
    }
}

/// The announcement as one line of text.
fn text_line(n: &Notice) -> String {
    let time = humantime::format_rfc3339_micros(
        std::time::UNIX_EPOCH + Duration::from_micros(n.time_unix_us),
    );
    let mut line = format!("{time} {} {}", n.guest, n.event.name());
    if let Some(r) = &n.reason {
        line.push_str(&format!(" ({r})"));
    }
    if let Some(c) = &n.capture {
        line.push_str(&format!(" {}", c.display()));
    }
    if let Some(l) = n.latency_ms {
        line.push_str(&format!(" [dump started {l:.1} ms after the event]"));
    }
    line.push_str(": ");
    line.push_str(&n.detail);
    coroner_analyze::escape_control(&line).replace('\n', "\\n")
}

/// Creates the capture directory (0700) and checks that it takes files.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .classify(ExitClass::Output, || {
            format!("cannot create the capture directory {}", dir.display())
        })?;
    coroner_formats::OutputFile::create(&dir.join(".coroner-watch-probe"))
        .and_then(|probe| probe.discard())
        .classify(ExitClass::Output, || {
            format!("cannot write in the capture directory {}", dir.display())
        })?;
    if let Ok(m) = std::fs::metadata(dir) {
        if m.permissions().mode() & 0o077 != 0 {
            log(
                LogLevel::Warning,
                &format!(
                    "{} is readable by others; captures themselves are 0600",
                    dir.display()
                ),
            );
        }
    }
    Ok(())
}

/// With an `s3://BUCKET/PREFIX/` --dir: the prefix captures are uploaded under,
/// `s3://BUCKET/PREFIX/HOST/` (after checking that the bucket answers), and the local
/// `--state-dir`.
fn upload_prefix(args: &WatchArgs) -> anyhow::Result<Option<(String, PathBuf)>> {
    let Some(url) = coroner_objstore::object_url_of(&args.dir) else {
        return Ok(None);
    };
    let usage = |why: String| {
        Err(std::io::Error::other(why)).classify(ExitClass::Usage, || format!("--dir {url}"))
    };
    if args.keep_partial {
        return usage(crate::commands::capture::KEEP_PARTIAL_REMOTE.into());
    }
    let Some(state_dir) = args.state_dir.clone() else {
        return usage("an s3:// --dir needs --state-dir DIR: a local directory for the state files and receipts that `coroner status --dir DIR` reads".into());
    };
    let parsed = coroner_objstore::ObjectUrl::parse(url)
        .classify(ExitClass::Usage, || format!("--dir {url}"))?;
    // The name the capture's metadata records as its host, unless told otherwise.
    let host = args
        .host
        .clone()
        .or_else(coroner_formats::hostname)
        .unwrap_or_else(|| "host".into());
    let host = coroner_capture::safe_name(&host);
    let mut key = parsed.key.clone();
    if !key.is_empty() && !key.ends_with('/') {
        key.push('/');
    }
    let prefix = format!("{key}{host}/");
    // A HEAD of a name nobody writes: proves the endpoint, credentials and bucket now,
    // not at the first freeze.
    let store = coroner_objstore::Store::for_bucket(&parsed.bucket)
        .classify(ExitClass::Output, || format!("cannot write to {url}"))?;
    store
        .exists(&format!("{prefix}.coroner-watch-probe"))
        .classify(ExitClass::Output, || format!("cannot write to {url}"))?;
    Ok(Some((
        format!("s3://{}/{prefix}", parsed.bucket),
        state_dir,
    )))
}

pub fn run(args: &WatchArgs) -> anyhow::Result<ExitClass> {
    let triggers = Triggers::parse(&args.on)
        .map_err(std::io::Error::other)
        .classify(ExitClass::Usage, || "--on".into())?;
    let libvirt = !args.domain.is_empty() || args.all_domains;
    if args.connect.is_some() && !libvirt {
        return Err(std::io::Error::other(
            "--connect is for --domain or --all-domains",
        ))
        .classify(ExitClass::Usage, || "watch --connect".into());
    }
    let uri = crate::cli::libvirt_uri(&args.connect);
    if args.monitor && !libvirt {
        return Err(std::io::Error::other(
            "--monitor is for --domain or --all-domains (a QMP watcher reads the monitor anyway)",
        ))
        .classify(ExitClass::Usage, || "watch --monitor".into());
    }
    let mut targets: Vec<Target> = Vec::new();
    for a in &args.qmp {
        let t = parse_target(a)
            .map_err(std::io::Error::other)
            .classify(ExitClass::Usage, || format!("--qmp {a:?}"))?;
        if !targets.iter().any(|x| x.address == t.address) {
            targets.push(t);
        }
    }
    for d in &args.qmp_dir {
        std::fs::read_dir(d).classify(ExitClass::Usage, || {
            format!("--qmp-dir {}: not a readable directory", d.display())
        })?;
    }
    let (remote, local) =
        match upload_prefix(args)? {
            Some((prefix, state_dir)) => (Some(prefix), state_dir),
            None if args.state_dir.is_some() => return Err(std::io::Error::other(
                "--state-dir is for an s3:// --dir; a local --dir keeps the watcher's state itself",
            ))
            .classify(ExitClass::Usage, || "watch --state-dir".into()),
            None => (None, args.dir.clone()),
        };
    prepare_dir(&local)?;
    // Announced paths are absolute: hooks and HA agents run elsewhere.
    let dir = std::fs::canonicalize(&local).classify(ExitClass::Output, || {
        format!("resolving {}", local.display())
    })?;
    let stop = crate::interrupt::install()
        .classify(ExitClass::Failure, || "installing signal handlers".into())?;

    let template = |t: &Target| {
        let mut c = CaptureOptions::new(t.address.clone(), dir.join("unused"));
        c.timeout = Duration::from_secs(args.timeout.max(1));
        c.tool = concat!("coroner ", env!("CARGO_PKG_VERSION")).into();
        c.write = args
            .compression
            .write_options(args.dump_format.default_level());
        c.keep_partial = args.keep_partial;
        c.dump_format = args.dump_format.get();
        let mut w = WatchOptions::new(t.name.clone(), c, dir.clone());
        w.remote = remote.clone();
        w.triggers = triggers.clone();
        w.once = args.once;
        w.poll_interval = Duration::from_secs_f64(args.poll.max(0.1));
        w.max_backoff = Duration::from_secs_f64(args.max_backoff.max(0.1));
        w
    };

    let (tx, rx) = mpsc::channel::<Notice>();
    let sink = Sink { notices: tx };
    let (hook_tx, hook_rx) = mpsc::channel::<Notice>();
    let (sign_tx, sign_rx) = mpsc::channel::<std::path::PathBuf>();
    let mut ends: Vec<WatchEnd> = Vec::new();
    let mut stdout_ok = true;
    let mut notifier = Notifier::from_env();
    std::thread::scope(|s| -> anyhow::Result<()> {
        // Each capture is signed for `triage` after it is announced, off the main loop.
        let signer = s.spawn(move || {
            for path in sign_rx {
                let failed = match coroner_objstore::object_url_of(&path) {
                    Some(url) => crate::commands::signature_file::sign_uploaded(url)
                        .err()
                        .map(|e| format!("{e:#}")),
                    None => match crate::commands::signature_file::signature_of(&path, true) {
                        Ok((_, _, stored)) => stored,
                        Err(e) => Some(format!("{e:#}")),
                    },
                };
                if let Some(e) = failed {
                    log(
                        LogLevel::Warning,
                        &format!("signing {} for triage: {e}", path.display()),
                    );
                }
            }
        });
        let hooks = args.exec.as_ref().map(|cmd| {
            let timeout = Duration::from_secs(args.exec_timeout);
            s.spawn(move || hook::run_hooks(cmd, timeout, hook_rx))
        });
        // By address: the guest's name and its watcher.
        type Watcher<'s> = (String, std::thread::ScopedJoinHandle<'s, WatchEnd>);
        let mut running: HashMap<String, Watcher<'_>> = HashMap::new();
        let start = |t: &Target, from_dir: bool| {
            let mut w = template(t);
            w.end_when_socket_removed = from_dir;
            let (stop, sink) = (&*stop, &sink);
            (t.name.clone(), s.spawn(move || watch(&w, stop, sink)))
        };
        // New sockets in the directories.
        let scan_dirs = |running: &mut HashMap<_, _>| {
            for d in &args.qmp_dir {
                match sockets_in(d) {
                    Ok(found) => {
                        for t in found {
                            let key = t.address.to_string();
                            running.entry(key).or_insert_with(|| start(&t, true));
                        }
                    }
                    Err(e) => log(
                        LogLevel::Warning,
                        &format!("--qmp-dir {}: {e}", d.display()),
                    ),
                }
            }
        };
        for t in &targets {
            running.insert(t.address.to_string(), start(t, false));
        }
        let start_domain = |name: &str, end_when_gone: bool| {
            let domain = coroner_capture::Domain {
                uri: uri.clone(),
                name: name.to_string(),
            };
            let mut c = coroner_capture::DomainOptions::new(domain, dir.join("unused"));
            c.timeout = Duration::from_secs(args.timeout.max(1));
            c.tool = concat!("coroner ", env!("CARGO_PKG_VERSION")).into();
            c.write = args
                .compression
                .write_options(args.dump_format.default_level());
            c.dump_format = args.dump_format.get();
            c.keep_partial = args.keep_partial;
            c.monitor = args.monitor;
            let w = coroner_capture::DomainWatchOptions {
                name: coroner_capture::safe_name(name),
                capture: c,
                dir: dir.clone(),
                remote: remote.clone(),
                triggers: triggers.clone(),
                once: args.once,
                poll_interval: Duration::from_secs_f64(args.poll.max(0.1)),
                end_when_gone,
            };
            let (stop, sink) = (&*stop, &sink);
            (
                w.name.clone(),
                s.spawn(move || coroner_capture::watch_domain(&w, stop, sink)),
            )
        };
        for name in &args.domain {
            running.insert(format!("libvirt:{uri}/{name}"), start_domain(name, false));
        }
        // The connection's active domains, when watching all of them.
        let list_failing = std::cell::Cell::new(false);
        let scan_domains = |running: &mut HashMap<_, _>| {
            if !args.all_domains {
                return;
            }
            match coroner_capture::active_domains(&uri, Duration::from_secs(args.timeout.max(1))) {
                Ok(names) => {
                    for name in names {
                        let key = format!("libvirt:{uri}/{name}");
                        running
                            .entry(key)
                            .or_insert_with(|| start_domain(&name, true));
                    }
                }
                Err(e) => {
                    // Once per outage (libvirtd restarting), not every second.
                    if !list_failing.replace(true) {
                        log(LogLevel::Warning, &format!("--all-domains: {e}"));
                    }
                    return;
                }
            }
            if list_failing.replace(false) {
                log(LogLevel::Info, "--all-domains: libvirt answers again");
            }
        };
        scan_domains(&mut running);
        scan_dirs(&mut running);
        notifier.ready(running.len());
        let mut last_scan = Instant::now();
        loop {
            if (!args.qmp_dir.is_empty() || args.all_domains)
                && !stop.load(Ordering::Relaxed)
                && last_scan.elapsed() >= Duration::from_secs(1)
            {
                last_scan = Instant::now();
                scan_dirs(&mut running);
                scan_domains(&mut running);
            }
            // Here for a stop signal that comes while announcements keep coming; again
            // below for one that ends the loop in the same turn.
            notifier.stopping_if(stop.load(Ordering::Relaxed));
            notifier.keep_alive();
            // Announcements, in the order they came.
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(n) => {
                    notifier.notice(&n);
                    let line = if args.json {
                        super::output::json_line(&n).context("encoding an announcement")?
                    } else {
                        text_line(&n)
                    };
                    if stdout_ok {
                        let mut out = std::io::stdout().lock();
                        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                            stdout_ok = false;
                            log(
                                LogLevel::Warning,
                                "stdout closed; announcements go on to the hook only",
                            );
                        }
                    }
                    if let (coroner_capture::NoticeKind::Captured, Some(c)) = (&n.event, &n.capture)
                    {
                        let _ = sign_tx.send(c.clone());
                    }
                    if hooks.is_some() {
                        let _ = hook_tx.send(n);
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            // Watchers that ended (once, socket removed, stopped).
            let done: Vec<String> = running
                .iter()
                .filter(|(_, (_, h))| h.is_finished())
                .map(|(k, _)| k.clone())
                .collect();
            for k in done {
                if let Some((name, h)) = running.remove(&k) {
                    notifier.forget(&name);
                    match h.join() {
                        Ok(WatchEnd::SocketRemoved) => {}
                        Ok(end) => ends.push(end),
                        Err(_) => ends.push(WatchEnd::Failed),
                    }
                }
            }
            // Done: nothing left to watch, and no directory that may bring more (with
            // --once, a directory's guests count once one of them ended).
            let stopped = stop.load(Ordering::Relaxed);
            notifier.stopping_if(stopped);
            let may_bring_more = !args.qmp_dir.is_empty() || args.all_domains;
            if running.is_empty() && (stopped || !may_bring_more || (args.once && !ends.is_empty()))
            {
                break;
            }
        }
        drop(hook_tx);
        if let Some(h) = hooks {
            let _ = h.join();
        }
        drop(sign_tx);
        let _ = signer.join();
        Ok(())
    })?;
    if stop.load(Ordering::Relaxed) {
        log(LogLevel::Info, "stopped");
        return Ok(ExitClass::Ok);
    }
    if ends.contains(&WatchEnd::Failed) {
        return Ok(ExitClass::Qemu);
    }
    Ok(ExitClass::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coroner_capture::{Health, NoticeKind};

    #[test]
    fn text_lines_are_one_escaped_line() {
        let n = Notice {
            event: NoticeKind::Captured,
            guest: "vm1".into(),
            qmp: "/run/coroner/vm1.qmp".into(),
            time_unix_us: 1_795_356_378_414_785,
            health: Health::FrozenCaptured,
            run_state: Some("guest-panicked".into()),
            reason: Some("guest-panicked".into()),
            capture: Some("/var/lib/coroner/vm1-x.core.zst".into()),
            kept: None,
            qemu_pid: Some(7),
            latency_ms: Some(4.18),
            events: Vec::new(),
            detail: "qemu said \u{1b}[2J\nbye".into(),
        };
        assert_eq!(
            text_line(&n),
            "2026-11-22T14:06:18.414785Z vm1 captured (guest-panicked) \
             /var/lib/coroner/vm1-x.core.zst [dump started 4.2 ms after the event]: \
             qemu said \\e[2J\\nbye"
        );
    }
}
