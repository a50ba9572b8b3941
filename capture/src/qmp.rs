//! A synchronous QMP client: greeting, capabilities, commands with ids, errors as values,
//! asynchronous events collected while commands run, and a deadline on every wait.

use std::io::{self, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use serde_json::{json, Value};

use crate::address::QmpAddress;
use crate::error::{Error, Result};
use crate::event_queue::EventQueue;
use coroner_record::{Event, QemuVersion};

/// The longest line accepted from qemu (HMP `info mtree -f` of a large machine is big).
const MAX_LINE: usize = 32 << 20;

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
        }
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tcp(s) => s.set_write_timeout(t),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// A connection to a QMP monitor, in command mode.
pub struct Qmp {
    stream: Stream,
    pending: Vec<u8>,
    next_id: u64,
    events: EventQueue,
    version: QemuVersion,
    /// Default deadline for a command's answer.
    pub timeout: Duration,
}

/// Escapes what a peer sent for an error message: printable ASCII kept, the rest as `\xNN`,
/// at most 200 bytes.
fn excerpt(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(200) {
        if (0x20..0x7f).contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > 200 {
        s.push('…');
    }
    s
}

impl Qmp {
    /// Connects, reads the greeting and enters command mode.
    pub fn connect(address: &QmpAddress, timeout: Duration) -> Result<Self> {
        let connect_err = |source| Error::Connect {
            address: address.to_string(),
            source,
        };
        let stream = match address {
            QmpAddress::Unix(path) => Stream::Unix(UnixStream::connect(path).map_err(connect_err)?),
            QmpAddress::Tcp(addr) => {
                let mut last = None;
                let addrs =
                    std::net::ToSocketAddrs::to_socket_addrs(addr.as_str()).map_err(connect_err)?;
                let mut found = None;
                for a in addrs {
                    match TcpStream::connect_timeout(&a, timeout) {
                        Ok(s) => {
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Stream::Tcp(found.ok_or_else(|| {
                    connect_err(last.unwrap_or_else(|| io::Error::other("no address")))
                })?)
            }
        };
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|source| Error::Io {
                during: "setting up the connection".into(),
                source,
            })?;
        let mut qmp = Qmp {
            stream,
            pending: Vec::new(),
            next_id: 1,
            events: EventQueue::default(),
            version: QemuVersion::default(),
            timeout,
        };
        let deadline = Instant::now() + timeout;
        let (greeting, _) = qmp.read_message(deadline, "waiting for the QMP greeting")?;
        let Some(g) = greeting.get("QMP") else {
            return Err(Error::Protocol {
                detail: format!(
                    "expected a QMP greeting, got {}",
                    excerpt(greeting.to_string().as_bytes())
                ),
            });
        };
        let v = &g["version"]["qemu"];
        qmp.version = QemuVersion {
            major: v["major"].as_u64().unwrap_or(0),
            minor: v["minor"].as_u64().unwrap_or(0),
            micro: v["micro"].as_u64().unwrap_or(0),
            package: g["version"]["package"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .to_string(),
        };
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    /// qemu's version from the greeting.
    pub fn version(&self) -> &QemuVersion {
        &self.version
    }

    /// Events received and kept so far, in order (a flood is bounded: see
    /// [`events_dropped`](Self::events_dropped)).
    pub fn events(&self) -> &[Event] {
        self.events.events()
    }

    /// How many events of each name were not kept because their budget was full.
    pub fn events_dropped(&self) -> &std::collections::BTreeMap<String, u64> {
        self.events.dropped()
    }

    /// Runs a command and returns its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value> {
        self.execute_within(command, arguments, self.timeout)
    }

    /// Runs a command with its own deadline.
    pub fn execute_within(
        &mut self,
        command: &str,
        arguments: Option<Value>,
        timeout: Duration,
    ) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "execute": command, "id": id });
        if let Some(args) = arguments {
            msg["arguments"] = args;
        }
        self.send(&msg, command)?;
        self.wait_reply(id, command, Instant::now() + timeout)
    }

    /// Runs a command whose message carries `fd` as `SCM_RIGHTS` ancillary data (for
    /// `getfd`). Only a unix-socket monitor can receive file descriptors.
    pub fn execute_with_fd(
        &mut self,
        command: &str,
        arguments: Value,
        fd: BorrowedFd<'_>,
    ) -> Result<Value> {
        let Stream::Unix(sock) = &self.stream else {
            return Err(Error::NoFdPassing);
        };
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({ "execute": command, "arguments": arguments, "id": id });
        let mut line = msg.to_string().into_bytes();
        line.push(b'\n');
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut ancillary = SendAncillaryBuffer::new(&mut space);
        let fds = [fd];
        if !ancillary.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(Error::Io {
                during: format!("sending {command}"),
                source: io::Error::other("ancillary buffer too small"),
            });
        }
        // The fd rides with the first byte; the rest of the line follows normally.
        let sent = sendmsg(
            sock,
            &[IoSlice::new(&line)],
            &mut ancillary,
            SendFlags::NOSIGNAL,
        )
        .map_err(|e| Error::Io {
            during: format!("sending {command} with a file descriptor"),
            source: e.into(),
        })?;
        if sent < line.len() {
            self.stream
                .write_all(&line[sent..])
                .map_err(|source| Error::Io {
                    during: format!("sending {command}"),
                    source,
                })?;
        }
        self.wait_reply(id, command, Instant::now() + self.timeout)
    }

    /// True when the monitor is a unix socket, which can receive file descriptors.
    pub fn can_pass_fds(&self) -> bool {
        matches!(self.stream, Stream::Unix(_))
    }

    /// Sends a message without waiting for its reply.
    pub(crate) fn send(&mut self, msg: &Value, command: &str) -> Result<()> {
        let mut line = msg.to_string().into_bytes();
        line.push(b'\n');
        self.stream.write_all(&line).map_err(|source| {
            if matches!(
                source.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) {
                Error::Closed {
                    during: format!("sending {command}"),
                }
            } else {
                Error::Io {
                    during: format!("sending {command}"),
                    source,
                }
            }
        })
    }

    fn wait_reply(&mut self, id: u64, command: &str, deadline: Instant) -> Result<Value> {
        let during = format!("waiting for the answer to {command}");
        loop {
            let (msg, size) = self.read_message(deadline, &during)?;
            if msg.get("event").is_some() {
                self.record_event(&msg, size);
                continue;
            }
            if msg.get("id").and_then(Value::as_u64) != Some(id) {
                // A reply to an earlier command that timed out: drop it.
                continue;
            }
            if let Some(ret) = msg.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = msg.get("error") {
                return Err(Error::Command {
                    command: command.to_string(),
                    class: err["class"].as_str().unwrap_or("unknown").to_string(),
                    desc: err["desc"].as_str().unwrap_or("").to_string(),
                });
            }
            return Err(Error::Protocol {
                detail: format!(
                    "reply without return or error: {}",
                    excerpt(msg.to_string().as_bytes())
                ),
            });
        }
    }

    /// Runs an HMP command through `human-monitor-command`; CRLF becomes LF.
    pub fn hmp(&mut self, command_line: &str) -> Result<String> {
        let out = self.execute(
            "human-monitor-command",
            Some(json!({ "command-line": command_line })),
        )?;
        Ok(out.as_str().unwrap_or_default().replace("\r\n", "\n"))
    }

    /// The run state (`running`, `paused`, `guest-panicked`, `internal-error`, ...).
    pub fn run_state(&mut self) -> Result<String> {
        let status = self.execute("query-status", None)?;
        status["status"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| Error::Protocol {
                detail: format!(
                    "query-status without a status: {}",
                    excerpt(status.to_string().as_bytes())
                ),
            })
    }

    /// Waits until an event named `name` arrives (or was already received after index
    /// `since` in [`events`](Self::events)), and returns it.
    pub fn wait_event(&mut self, name: &str, since: usize, timeout: Duration) -> Result<Event> {
        let deadline = Instant::now() + timeout;
        let during = format!("waiting for event {name}");
        if let Some(e) = self.events().iter().skip(since).find(|e| e.event == name) {
            return Ok(e.clone());
        }
        loop {
            let (msg, size) = self.read_message(deadline, &during)?;
            if msg.get("event").is_some() {
                let e = self.record_event(&msg, size);
                if e.event == name {
                    return Ok(e);
                }
            }
        }
    }

    /// Waits at most `timeout` for the next message and returns it when it is an event
    /// (also kept in [`events`](Self::events)); `None` when nothing or a stray reply came.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>> {
        let deadline = Instant::now() + timeout;
        match self.read_message(deadline, "waiting for events") {
            Ok((msg, size)) if msg.get("event").is_some() => {
                Ok(Some(self.record_event(&msg, size)))
            }
            Ok(_) | Err(Error::Timeout { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Forgets all but the last `keep` events (a long-lived connection would otherwise
    /// grow without bound); returns how many were forgotten.
    pub fn trim_events(&mut self, keep: usize) -> usize {
        self.events.trim(keep)
    }

    /// Keeps the event in `msg` (`size` bytes of QMP text) if its budget has room, and
    /// returns it either way.
    fn record_event(&mut self, msg: &Value, size: usize) -> Event {
        let event = Event::from_qmp(msg);
        self.events.push(event.clone(), size);
        event
    }

    /// Reads one JSON message and its size in bytes, waiting at most until `deadline`.
    fn read_message(&mut self, deadline: Instant, during: &str) -> Result<(Value, usize)> {
        loop {
            if let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=nl).collect();
                let text = line.trim_ascii();
                if text.is_empty() {
                    continue;
                }
                let msg = serde_json::from_slice(text).map_err(|e| Error::Protocol {
                    detail: format!("{e} in {:?}", excerpt(text)),
                })?;
                return Ok((msg, text.len()));
            }
            if self.pending.len() > MAX_LINE {
                return Err(Error::Protocol {
                    detail: format!("a line longer than {MAX_LINE} bytes"),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    during: during.to_string(),
                    timeout: self.timeout,
                });
            }
            self.stream
                .set_read_timeout(Some(deadline - now))
                .map_err(|source| Error::Io {
                    during: during.to_string(),
                    source,
                })?;
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(Error::Closed {
                        during: during.to_string(),
                    })
                }
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(Error::Closed {
                        during: during.to_string(),
                    })
                }
                Err(source) => {
                    return Err(Error::Io {
                        during: during.to_string(),
                        source,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;
    use std::thread;

    /// A scripted peer: sends `greeting`, then answers each line with the next reply.
    fn peer(script: Vec<&'static str>) -> (tempfile::TempDir, QmpAddress, thread::JoinHandle<()>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let h = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = io::BufReader::new(s.try_clone().unwrap());
            let mut it = script.into_iter();
            if let Some(g) = it.next() {
                s.write_all(g.as_bytes()).unwrap();
            }
            for reply in it {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 {
                    return;
                }
                s.write_all(reply.as_bytes()).unwrap();
            }
            thread::sleep(Duration::from_millis(50));
        });
        (dir, QmpAddress::Unix(path), h)
    }

    const GREETING: &str = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 5, \"minor\": 2, \"major\": 7}, \"package\": \"Debian 1:7.2\"}, \"capabilities\": []}}\r\n";

    #[test]
    fn commands_events_and_errors() {
        let (_d, addr, h) = peer(vec![
            GREETING,
            "{\"return\": {}, \"id\": 1}\r\n",
            "{\"timestamp\": {\"seconds\": 5, \"microseconds\": 7}, \"event\": \"STOP\"}\r\n{\"return\": {\"status\": \"paused\", \"running\": false}, \"id\": 2}\r\n",
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}, \"id\": 3}\r\n",
        ]);
        let mut q = Qmp::connect(&addr, Duration::from_secs(5)).unwrap();
        assert_eq!(q.version().minor, 2);
        assert_eq!(q.run_state().unwrap(), "paused");
        assert_eq!(q.events().len(), 1);
        assert_eq!(q.events()[0].event, "STOP");
        assert_eq!(q.events()[0].microseconds, 7);
        let e = q.execute("cont", None).unwrap_err();
        assert!(
            matches!(e, Error::Command { ref class, ref desc, .. } if class == "GenericError" && desc == "nope")
        );
        h.join().unwrap();
    }

    #[test]
    fn events_between_commands_and_trimming() {
        let (_d, addr, h) = peer(vec![
            GREETING,
            "{\"return\": {}, \"id\": 1}\r\n{\"timestamp\": {\"seconds\": 9, \"microseconds\": 1}, \"event\": \"GUEST_PANICKED\", \"data\": {\"action\": \"pause\"}}\r\n{\"return\": {}, \"id\": 77}\r\n",
        ]);
        let mut q = Qmp::connect(&addr, Duration::from_secs(5)).unwrap();
        let e = q.next_event(Duration::from_secs(1)).unwrap().unwrap();
        assert_eq!((e.event.as_str(), e.seconds), ("GUEST_PANICKED", 9));
        assert_eq!(e.data["action"], "pause");
        // A stray reply is not an event; then the peer closes.
        assert_eq!(q.next_event(Duration::from_secs(1)).unwrap(), None);
        let gone = q.next_event(Duration::from_secs(2)).unwrap_err();
        assert!(gone.is_gone(), "{gone}");
        assert_eq!(q.trim_events(0), 1);
        assert!(q.events().is_empty());
        h.join().unwrap();
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let (_d, addr, h) = peer(vec!["\x1b[31mhello\r\n"]);
        let e = Qmp::connect(&addr, Duration::from_secs(5)).err().unwrap();
        assert!(
            matches!(e, Error::Protocol { ref detail } if detail.contains("\\x1b")),
            "{e}"
        );
        h.join().unwrap();
    }

    #[test]
    fn a_peer_that_closes_is_gone() {
        let (_d, addr, h) = peer(vec![GREETING]);
        let e = Qmp::connect(&addr, Duration::from_secs(5)).err().unwrap();
        assert!(e.is_gone(), "{e}");
        h.join().unwrap();
    }

    #[test]
    fn a_silent_peer_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let h = thread::spawn(move || {
            let (_s, _) = listener.accept().unwrap();
            thread::sleep(Duration::from_millis(600));
        });
        let t = Instant::now();
        let e = Qmp::connect(&QmpAddress::Unix(path), Duration::from_millis(300))
            .err()
            .unwrap();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));
        h.join().unwrap();
    }
}
