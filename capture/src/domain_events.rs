//! libvirt's events for one domain, read from `virsh event --loop --all --domain` as
//! lines, kept (bounded) for the next capture's record. A `virsh` that ends (libvirtd
//! restarted, the connection dropped) is started again, at most once per wait.

use std::collections::VecDeque;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use coroner_record::LibvirtEvent;

use crate::capture::unix_us;
use crate::libvirt::Domain;

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// An event came.
    Event,
    /// The limit passed.
    Timeout,
    /// `virsh event` had ended and was started again (events in between were missed),
    /// or could not be started again.
    Restarted {
        /// It runs now.
        running: bool,
        /// It had run before it ended.
        was_running: bool,
        /// A restart had ended within [`RESTART_PAUSE`] of its start (libvirtd still
        /// down).
        flapping: bool,
    },
}

/// Least time between two starts of `virsh event`.
const RESTART_PAUSE: Duration = Duration::from_secs(2);

/// The event stream of one domain; `virsh` is killed when dropped.
pub(crate) struct DomainEvents {
    domain: Domain,
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    started: Instant,
    /// The running `virsh` is a restart (not the first).
    restarted: bool,
    /// Received since the last capture, oldest first, [`LibvirtEvent::KEPT`] at most.
    seen: VecDeque<LibvirtEvent>,
}

impl DomainEvents {
    /// Starts `virsh event` for `domain`.
    pub(crate) fn start(domain: &Domain) -> DomainEvents {
        let (child, lines) = spawn(domain);
        DomainEvents {
            domain: domain.clone(),
            child,
            lines,
            started: Instant::now(),
            restarted: false,
            seen: VecDeque::new(),
        }
    }

    /// True when `virsh event` could be started.
    pub(crate) fn running(&self) -> bool {
        self.child.is_some()
    }

    fn keep(&mut self, line: &str) {
        // virsh's own summary as it exits, not an event.
        if line.starts_with("events received:") {
            return;
        }
        if !LibvirtEvent::starts_report(line) {
            if let Some(last) = self.seen.back_mut() {
                last.continue_with(line);
                return;
            }
        }
        if self.seen.len() == LibvirtEvent::KEPT {
            self.seen.pop_front();
        }
        self.seen
            .push_back(LibvirtEvent::parse(line, unix_us().unwrap_or(0)));
    }

    /// Until an event comes or `limit` passes; every line that came is kept. A `virsh`
    /// that ended is started again, [`RESTART_PAUSE`] after its last start at the
    /// earliest.
    pub(crate) fn wait(&mut self, limit: Duration) -> Woken {
        match self.lines.recv_timeout(limit) {
            Ok(line) => {
                self.keep(&line);
                self.take_pending();
                Woken::Event
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Woken::Timeout,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let was_running = self.child.is_some();
                self.reap();
                let since = self.started.elapsed();
                let flapping = self.restarted && since < RESTART_PAUSE;
                let pause = RESTART_PAUSE.min(limit);
                if since < pause {
                    std::thread::sleep(pause - since);
                }
                let (child, lines) = spawn(&self.domain);
                (self.child, self.lines, self.started) = (child, lines, Instant::now());
                self.restarted = true;
                Woken::Restarted {
                    running: self.child.is_some(),
                    was_running,
                    flapping,
                }
            }
        }
    }

    fn take_pending(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.keep(&line);
        }
    }

    /// True when an event of `kind` (`memory-failure`) came since the last capture.
    pub(crate) fn saw(&mut self, kind: &str) -> bool {
        self.take_pending();
        self.seen.iter().any(|e| e.kind == kind)
    }

    /// The events received since the last call.
    pub(crate) fn take_seen(&mut self) -> Vec<LibvirtEvent> {
        self.take_pending();
        self.seen.drain(..).collect()
    }

    fn reap(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.child = None;
    }
}

impl Drop for DomainEvents {
    fn drop(&mut self) {
        self.reap();
    }
}

/// `virsh event` for the domain and a thread forwarding its lines; the receiver is
/// disconnected when it ends (or could not start).
fn spawn(domain: &Domain) -> (Option<Child>, mpsc::Receiver<String>) {
    let (tx, lines) = mpsc::channel();
    let child = Command::new("virsh")
        .args(["-q", "-c", &domain.uri, "event", "--loop", "--all"])
        .args(["--domain", &domain.name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()
        .map(|mut c| {
            if let Some(out) = c.stdout.take() {
                std::thread::spawn(move || {
                    for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                });
            }
            c
        });
    (child, lines)
}
