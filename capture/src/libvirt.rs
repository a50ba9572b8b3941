//! libvirt through `virsh`, taint-free: the domain's state and reason (`domstate
//! --reason`), its XML, `suspend`, and the memory-only dump (`dump --memory-only`), which
//! libvirtd writes to a path it opens itself. Monitor passthrough only when asked for
//! (`--monitor`: it taints the domain). Nothing to build against: `virsh` is what every
//! libvirt host has.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The connection URI when none is given.
pub const DEFAULT_URI: &str = "qemu:///system";

/// A libvirt domain to capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    /// The connection URI (`qemu:///system`).
    pub uri: String,
    /// The domain's name (or UUID, or id).
    pub name: String,
}

impl std::fmt::Display for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "libvirt domain {} on {}", self.name, self.uri)
    }
}

/// Why a `virsh` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VirshError {
    /// `virsh` could not be started.
    #[error("cannot run virsh (install libvirt-clients): {0}")]
    Spawn(#[source] std::io::Error),
    /// It ran and failed.
    #[error("virsh {command} failed: {stderr}")]
    Failed {
        /// The subcommand.
        command: String,
        /// What it said.
        stderr: String,
    },
    /// It did not answer in time.
    #[error("virsh {command} did not answer in {seconds:.1} s")]
    Timeout {
        /// The subcommand.
        command: String,
        /// The limit.
        seconds: f64,
    },
}

/// A domain's state as libvirt reports it: `crashed (panicked)`, `paused (I/O error)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainState {
    /// `running`, `paused`, `crashed`, `shut off`, ...
    pub state: String,
    /// The reason in parentheses, when there is one.
    pub reason: String,
}

impl DomainState {
    /// Parses `virsh domstate --reason` output.
    pub fn parse(text: &str) -> DomainState {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        match line.split_once(" (") {
            Some((state, rest)) => DomainState {
                state: state.to_string(),
                reason: rest.trim_end_matches(')').to_string(),
            },
            None => DomainState {
                state: line.to_string(),
                reason: String::new(),
            },
        }
    }

    /// The qemu run state this state and reason stand for (libvirt's own mapping,
    /// `qemuMonitorVMStatusToPausedReason`, read backwards), so the analyses and verdicts
    /// read a libvirt capture as a QMP one.
    pub fn run_state(&self) -> &'static str {
        match (self.state.as_str(), self.reason.as_str()) {
            ("crashed", _) => "guest-panicked",
            ("paused", "I/O error") => "io-error",
            ("paused", "watchdog") => "watchdog",
            ("paused", "crashed") => "guest-panicked",
            // A KVM internal error (emulation failure) shows as "paused (unknown)".
            ("paused", "unknown") => "internal-error",
            ("paused", "dumping") | ("paused", "migrating") | ("paused", "saving") => {
                "finish-migrate"
            }
            ("paused", "shutting down") => "shutdown",
            ("paused", "starting up") => "prelaunch",
            ("paused", _) => "paused",
            ("running", _) => "running",
            ("shut off", _) | ("shutoff", _) => "shutdown",
            ("in shutdown", _) => "running",
            ("pmsuspended", _) => "suspended",
            _ => "debug",
        }
    }

    /// As `virsh domstate --reason` prints it.
    pub fn text(&self) -> String {
        if self.reason.is_empty() {
            self.state.clone()
        } else {
            format!("{} ({})", self.state, self.reason)
        }
    }
}

/// Runs `virsh -c URI ARGS` and returns its stdout, or why not within `timeout`.
pub fn virsh(uri: &str, args: &[&str], timeout: Duration) -> Result<String, VirshError> {
    let command = args.first().copied().unwrap_or("").to_string();
    let child = Command::new("virsh")
        .arg("-q")
        .arg("-c")
        .arg(uri)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(VirshError::Spawn)?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into()),
        Ok(Ok(out)) => Err(VirshError::Failed {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
        Ok(Err(e)) => Err(VirshError::Spawn(e)),
        Err(_) => {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            Err(VirshError::Timeout {
                command,
                seconds: timeout.as_secs_f64(),
            })
        }
    }
}

/// The names of the connection's active domains (running, paused or crashed): `virsh
/// list --name`.
pub fn active_domains(uri: &str, timeout: Duration) -> Result<Vec<String>, VirshError> {
    Ok(virsh(uri, &["list", "--name"], timeout)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

impl Domain {
    /// The domain's state and reason.
    pub fn state(&self, timeout: Duration) -> Result<DomainState, VirshError> {
        virsh(&self.uri, &["domstate", "--reason", &self.name], timeout)
            .map(|out| DomainState::parse(&out))
    }

    /// The domain's XML as libvirt holds it now.
    pub fn xml(&self, timeout: Duration) -> Result<String, VirshError> {
        virsh(&self.uri, &["dumpxml", &self.name], timeout)
    }

    /// An HMP command through libvirt's monitor passthrough (`virsh qemu-monitor-command
    /// --hmp`). It taints the domain ("custom-monitor"): only for `--monitor`.
    pub fn hmp(&self, command: &str, timeout: Duration) -> Result<String, VirshError> {
        virsh(
            &self.uri,
            &["qemu-monitor-command", "--hmp", &self.name, command],
            timeout,
        )
    }

    /// Pauses the domain (`virsh suspend`: "paused (user)").
    pub fn suspend(&self, timeout: Duration) -> Result<(), VirshError> {
        virsh(&self.uri, &["suspend", &self.name], timeout).map(|_| ())
    }

    /// The version of the domain's running qemu, from its own binary (`/proc/PID/exe
    /// --version`: the image that runs, even if the package was upgraded since), when it
    /// runs here. (`virsh version` takes seconds: it probes the host's capabilities.)
    pub fn qemu_version(&self, pid: u32) -> Option<coroner_record::QemuVersion> {
        let out = Command::new(format!("/proc/{pid}/exe"))
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        parse_qemu_version(&String::from_utf8_lossy(&out.stdout))
    }

    /// The fastest kdump format the domain's qemu can write (lzo, snappy, else zlib, which
    /// every qemu has), judged taint-free by the libraries its process maps; zlib when
    /// qemu does not run on this host.
    pub fn kdump_format(&self, qemu_pid: Option<u32>) -> &'static str {
        let maps = qemu_pid
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/maps")).ok())
            .unwrap_or_default();
        if maps.contains("/liblzo2.so") {
            "kdump-lzo"
        } else if maps.contains("/libsnappy.so") {
            "kdump-snappy"
        } else {
            "kdump-zlib"
        }
    }

    /// qemu's pid, from libvirt's pid file (local connections, as root).
    pub fn qemu_pid(&self) -> Option<u32> {
        if !self.uri.starts_with("qemu:///system") {
            return None;
        }
        let text = std::fs::read_to_string(format!("/run/libvirt/qemu/{}.pid", self.name)).ok()?;
        text.trim().parse().ok()
    }

    /// qemu's log, which virtlogd keeps for the domain (local connections).
    pub fn log_path(&self) -> Option<std::path::PathBuf> {
        let dir = if self.uri.starts_with("qemu:///system") {
            std::path::PathBuf::from("/var/log/libvirt/qemu")
        } else if self.uri.starts_with("qemu:///session") {
            let home = std::env::var_os("HOME")?;
            std::path::Path::new(&home).join(".cache/libvirt/qemu/log")
        } else {
            return None;
        };
        Some(dir.join(format!("{}.log", self.name)))
    }
}

/// `QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)`.
fn parse_qemu_version(text: &str) -> Option<coroner_record::QemuVersion> {
    let rest = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("QEMU emulator version "))?;
    let (number, package) = match rest.split_once(' ') {
        Some((n, p)) => (n, p.trim().trim_start_matches('(').trim_end_matches(')')),
        None => (rest, ""),
    };
    let mut n = number.split('.').map(|p| p.parse::<u64>().ok());
    Some(coroner_record::QemuVersion {
        major: n.next()??,
        minor: n.next().flatten().unwrap_or(0),
        micro: n.next().flatten().unwrap_or(0),
        package: package.to_string(),
    })
}

/// The domain's maximum memory from its XML (`<memory unit='KiB'>N</memory>`), in bytes.
pub(crate) fn memory_bytes(xml: &str) -> Option<u64> {
    let start = xml
        .match_indices("<memory")
        .map(|(i, _)| i)
        .find(|&i| matches!(xml.as_bytes().get(i + 7), Some(b' ' | b'>')))?;
    let element = &xml[start..];
    let open_end = element.find('>')?;
    let tag = &element[..open_end];
    let value = element[open_end + 1..].split('<').next()?.trim();
    let unit = tag
        .split("unit=")
        .nth(1)
        .and_then(|u| u.trim_start_matches(['\'', '"']).split(['\'', '"']).next())
        .unwrap_or("KiB");
    let scale: u64 = match unit {
        "b" | "bytes" => 1,
        "KB" => 1000,
        "k" | "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        _ => return None,
    };
    value.parse::<u64>().ok()?.checked_mul(scale)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn qemu_versions() {
        let v = parse_qemu_version(
            "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022\n",
        )
        .unwrap();
        assert_eq!((v.major, v.minor, v.micro), (7, 2, 22));
        assert_eq!(v.package, "Debian 1:7.2+dfsg-7+deb12u18+b3");
        assert!(parse_qemu_version("garbage").is_none());
    }

    #[test]
    fn states_and_reasons() {
        for (text, state, reason, run_state) in [
            (
                "crashed (panicked)\n",
                "crashed",
                "panicked",
                "guest-panicked",
            ),
            ("paused (I/O error)", "paused", "I/O error", "io-error"),
            ("paused (watchdog)", "paused", "watchdog", "watchdog"),
            ("paused (unknown)", "paused", "unknown", "internal-error"),
            ("paused (user)", "paused", "user", "paused"),
            ("running (booted)", "running", "booted", "running"),
            ("shut off (destroyed)", "shut off", "destroyed", "shutdown"),
            ("\nrunning\n", "running", "", "running"),
        ] {
            let s = DomainState::parse(text);
            assert_eq!(
                (s.state.as_str(), s.reason.as_str()),
                (state, reason),
                "{text}"
            );
            assert_eq!(s.run_state(), run_state, "{text}");
            assert_eq!(DomainState::parse(&s.text()), s);
        }
    }

    #[test]
    fn memory_from_domain_xml() {
        let xml = "<domain type='kvm'>\n  <name>vm</name>\n  <memory unit='KiB'>1048576</memory>\n  <currentMemory unit='KiB'>524288</currentMemory>";
        assert_eq!(memory_bytes(xml), Some(1 << 30));
        assert_eq!(
            memory_bytes("<memory unit=\"GiB\">2</memory>"),
            Some(2 << 30)
        );
        assert_eq!(memory_bytes("<memory>1024</memory>"), Some(1 << 20));
        assert_eq!(memory_bytes("<memory unit='parsec'>1</memory>"), None);
        assert_eq!(memory_bytes("<domain/>"), None);
        assert_eq!(
            memory_bytes("<memoryBacking/><memory>4</memory>"),
            Some(4 << 10)
        );
    }
}
