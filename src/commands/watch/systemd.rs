//! The systemd notification protocol (`sd_notify(3)`) for `watch` as a `Type=notify`
//! service: `READY=1` once every watcher runs, `STATUS=` with each guest's health,
//! `WATCHDOG=1` at half of `WATCHDOG_USEC`, and `STOPPING=1` on a stop signal. Without
//! `NOTIFY_SOCKET` (not under systemd) every call does nothing.

use std::collections::BTreeMap;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use coroner_capture::{Health, Notice};

/// Variables that concern coroner alone, removed from the environment of hooks.
pub const OWN_VARIABLES: &[&str] = &["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// A connection to the service manager, if there is one.
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    /// How often to send `WATCHDOG=1`, and when it was last sent.
    watchdog: Option<(Duration, Instant)>,
    /// The health last announced for each guest.
    guests: BTreeMap<String, Health>,
    /// The last announcement, for the status line.
    last: String,
    /// `STOPPING=1` was sent.
    stopping: bool,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    pub fn from_env() -> Self {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|p| {
            let p = p.to_string_lossy().into_owned();
            let addr = match p.strip_prefix('@') {
                Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).ok()?,
                None if p.starts_with('/') => SocketAddr::from_pathname(&p).ok()?,
                None => return None,
            };
            Some((UnixDatagram::unbound().ok()?, addr))
        });
        let for_us = std::env::var("WATCHDOG_PID")
            .map(|p| p.parse::<u32>().ok() == Some(std::process::id()))
            .unwrap_or(true);
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us && socket.is_some())
            .map(|u| (Duration::from_micros(u / 2), Instant::now()));
        Notifier {
            socket,
            watchdog,
            guests: BTreeMap::new(),
            last: String::new(),
            stopping: false,
        }
    }

    fn send(&self, message: &str) {
        if let Some((sock, addr)) = &self.socket {
            // The manager may be gone or busy; watching goes on regardless.
            let _ = sock.send_to_addr(message.as_bytes(), addr);
        }
    }

    /// Every watcher runs.
    pub fn ready(&self, guests: usize) {
        self.send(&format!(
            "READY=1\nSTATUS=watching {guests} guest{}",
            plural(guests)
        ));
    }

    /// Updates the status line from an announcement.
    pub fn notice(&mut self, n: &Notice) {
        if self.socket.is_none() {
            return;
        }
        self.guests.insert(n.guest.clone(), n.health);
        self.last = format!("{} {}", n.guest, n.event.name());
        if let Some(r) = &n.reason {
            self.last.push_str(&format!(" ({r})"));
        }
        self.send(&format!("STATUS={}", self.status_line()));
    }

    /// A watcher ended (its socket was removed, or `--once`).
    pub fn forget(&mut self, guest: &str) {
        self.guests.remove(guest);
    }

    fn status_line(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for h in self.guests.values() {
            *counts.entry(h.name()).or_default() += 1;
        }
        let counts: Vec<String> = counts.iter().map(|(h, c)| format!("{c} {h}")).collect();
        let n = self.guests.len();
        format!(
            "{n} guest{} ({}); last: {}",
            plural(n),
            counts.join(", "),
            self.last
        )
    }

    /// Sends `WATCHDOG=1` when half the watchdog interval has passed.
    pub fn keep_alive(&mut self) {
        if let Some((every, last)) = &mut self.watchdog {
            if last.elapsed() >= *every {
                *last = Instant::now();
                self.send("WATCHDOG=1");
            }
        }
    }

    /// Once `stop` is set (a stop signal came), says so, once: captures in progress
    /// finish, then the process ends.
    pub fn stopping_if(&mut self, stop: bool) {
        if stop && !self.stopping {
            self.stopping = true;
            self.send("STOPPING=1\nSTATUS=stopping: finishing captures in progress");
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coroner_capture::NoticeKind;

    fn notice(guest: &str, event: NoticeKind, health: Health) -> Notice {
        Notice {
            event,
            guest: guest.into(),
            qmp: String::new(),
            time_unix_us: 0,
            health,
            run_state: None,
            reason: None,
            capture: None,
            kept: None,
            qemu_pid: None,
            latency_ms: None,
            events: Vec::new(),
            detail: String::new(),
        }
    }

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let manager = UnixDatagram::bind(&path).unwrap();
        manager
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut n = Notifier {
            socket: Some((
                UnixDatagram::unbound().unwrap(),
                SocketAddr::from_pathname(&path).unwrap(),
            )),
            watchdog: Some((Duration::ZERO, Instant::now())),
            guests: BTreeMap::new(),
            last: String::new(),
            stopping: false,
        };
        let mut buf = [0u8; 512];
        let mut recv = || {
            let len = manager.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..len]).into_owned()
        };
        n.ready(2);
        assert_eq!(recv(), "READY=1\nSTATUS=watching 2 guests");
        n.notice(&notice("web", NoticeKind::Watching, Health::Running));
        assert_eq!(recv(), "STATUS=1 guest (1 running); last: web watching");
        let mut frozen = notice("db", NoticeKind::Captured, Health::FrozenCaptured);
        frozen.reason = Some("guest-panicked".into());
        n.notice(&frozen);
        assert_eq!(
            recv(),
            "STATUS=2 guests (1 frozen-captured, 1 running); last: db captured (guest-panicked)"
        );
        n.keep_alive();
        assert_eq!(recv(), "WATCHDOG=1");
        n.stopping_if(false);
        n.stopping_if(true);
        n.stopping_if(true);
        assert!(recv().starts_with("STOPPING=1\n"));
        manager.set_nonblocking(true).unwrap();
        assert!(manager.recv(&mut buf).is_err(), "STOPPING=1 sent twice");
    }

    #[test]
    fn without_a_manager_nothing_is_sent() {
        let mut n = Notifier {
            socket: None,
            watchdog: None,
            guests: BTreeMap::new(),
            last: String::new(),
            stopping: false,
        };
        n.ready(1);
        n.notice(&notice("web", NoticeKind::Watching, Health::Running));
        n.keep_alive();
        n.stopping_if(true);
        assert!(n.guests.is_empty());
    }
}
