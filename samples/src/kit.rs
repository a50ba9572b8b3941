//! The guest kit from Rust: boot, wait for the ready line, freeze, dump.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coroner_capture::{Qmp, QmpAddress};
use serde_json::json;

/// The line the guest's `/init` prints on the console once it is set up.
pub const READY_LINE: &str = "coroner-kit: ready";

/// What can go wrong with the kit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KitError {
    /// The kit is not installed on this machine.
    #[error("guest kit not usable: {0}")]
    Missing(String),
    /// Starting or watching qemu failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The guest did not get where it should in time.
    #[error("{0}")]
    Timeout(String),
    /// qemu exited early.
    #[error("qemu exited ({status}); serial log tail:\n{tail}")]
    Exited {
        /// Its exit status.
        status: String,
        /// The end of the serial log.
        tail: String,
    },
    /// QMP failed.
    #[error(transparent)]
    Qmp(#[from] coroner_capture::Error),
}

/// A `Result` with [`KitError`].
pub type Result<T, E = KitError> = std::result::Result<T, E>;

/// How to boot the guest.
#[derive(Clone, Debug)]
pub struct GuestOptions {
    /// RAM in MiB.
    pub mem_mib: u32,
    /// vCPUs.
    pub smp: u32,
    /// Add `-device vmcoreinfo` (dumps then carry the guest's VMCOREINFO note).
    pub vmcoreinfo: bool,
    /// Add pvpanic with `-action panic=pause`, so a guest panic freezes qemu.
    pub pvpanic: bool,
    /// A virtio disk whose writes fail, with `werror=stop` (`coroner.run=io-error`).
    pub iodisk: bool,
    /// An i6300esb watchdog with `-action watchdog=pause` (`coroner.run=watchdog`).
    pub watchdog: bool,
    /// Extra kernel command line (`coroner.fill=N`, `coroner.run=...`).
    pub append: String,
    /// How long to wait for the ready line.
    pub ready_timeout: Duration,
    /// More qemu arguments.
    pub extra_qemu: Vec<String>,
    /// Another initramfs (`boot.sh --initrd`), e.g. [`kdump_initramfs`].
    pub initrd: Option<PathBuf>,
}

impl Default for GuestOptions {
    fn default() -> Self {
        Self {
            mem_mib: 512,
            smp: 2,
            vmcoreinfo: false,
            pvpanic: true,
            iodisk: false,
            watchdog: false,
            append: String::new(),
            ready_timeout: Duration::from_secs(180),
            extra_qemu: Vec::new(),
            initrd: None,
        }
    }
}

/// How to freeze a running guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// QMP `stop`: run state `paused`.
    Stop,
    /// A kernel panic through sysrq-c from the keyboard: `guest-panicked` (needs pvpanic).
    Panic,
    /// A fatal machine check injected with HMP `mce`: `MEMORY_FAILURE`, then
    /// `guest-panicked` (needs pvpanic).
    Mce,
}

impl Scenario {
    /// The run state qemu ends in.
    pub fn run_state(self) -> &'static str {
        match self {
            Scenario::Stop => "paused",
            Scenario::Panic | Scenario::Mce => "guest-panicked",
        }
    }
}

/// The kit's scripts, in the source tree.
pub fn kit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kit")
}

/// The cache holding the guest kernel and initramfs.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("CORONER_KIT_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/coroner-kit")
        }
    }
}

/// The initramfs of the kdump scenario (`coroner.run=kdump`), built by
/// `samples/kit/build-kdump.sh` (which `ensure.sh` runs).
pub fn kdump_initramfs() -> Result<PathBuf> {
    let p = cache_dir().join("initramfs-kdump.cpio.gz");
    if p.exists() {
        Ok(p)
    } else {
        Err(KitError::Missing(format!(
            "no {}: run samples/kit/ensure.sh",
            p.display()
        )))
    }
}

/// Checks that qemu, the kernel and the initramfs are there.
pub fn check() -> Result<()> {
    let cache = cache_dir();
    let has_kernel = std::fs::read_dir(cache.join("kernel/boot"))
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
        })
        .unwrap_or(false);
    if !has_kernel || !cache.join("initramfs.cpio.gz").exists() {
        return Err(KitError::Missing(format!(
            "no kernel or initramfs in {}: run samples/kit/ensure.sh",
            cache.display()
        )));
    }
    let qemu = Command::new("qemu-system-x86_64")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    if !qemu.is_ok_and(|s| s.success()) {
        return Err(KitError::Missing(
            "qemu-system-x86_64 not runnable: run samples/kit/ensure.sh as root".into(),
        ));
    }
    Ok(())
}

/// For end-to-end tests: `true` when the kit is usable. Otherwise prints why the test is
/// skipped and returns `false`, except under `CI=true`, where a missing kit is a failure.
pub fn available_or_skip(test: &str) -> bool {
    usable_or_skip(test, check())
}

/// `true` when `usable` is; otherwise says why `test` is skipped and returns `false`,
/// except under `CI=true`, where it fails.
#[allow(clippy::panic)]
pub fn usable_or_skip(test: &str, usable: Result<()>) -> bool {
    match usable {
        Ok(()) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: {e} (CI=true: end-to-end tests must run)")
        }
        Err(e) => {
            eprintln!("skipping {test}: {e}");
            false
        }
    }
}

/// A booted guest under qemu, killed on drop.
pub struct Guest {
    child: Child,
    dir: tempfile::TempDir,
    /// The QMP connection.
    pub qmp: Qmp,
}

impl Guest {
    /// Boots the guest and waits for its ready line.
    pub fn boot(opts: &GuestOptions) -> Result<Self> {
        check()?;
        let dir = tempfile::Builder::new()
            .prefix("coroner-guest-")
            .tempdir()
            .map_err(|source| KitError::Io {
                what: "creating the guest's temporary directory".into(),
                source,
            })?;
        let qmp_path = dir.path().join("qmp.sock");
        let serial = dir.path().join("serial.log");
        let mut cmd = Command::new(kit_dir().join("boot.sh"));
        cmd.arg("--qmp")
            .arg(&qmp_path)
            .arg("--serial")
            .arg(&serial)
            .arg("--mem")
            .arg(opts.mem_mib.to_string())
            .arg("--smp")
            .arg(opts.smp.to_string());
        if !opts.append.is_empty() {
            cmd.arg("--append").arg(&opts.append);
        }
        if opts.vmcoreinfo {
            cmd.arg("--vmcoreinfo");
        }
        if opts.pvpanic {
            cmd.arg("--pvpanic");
        }
        if opts.iodisk {
            cmd.arg("--iodisk");
        }
        if opts.watchdog {
            cmd.arg("--watchdog");
        }
        if let Some(initrd) = &opts.initrd {
            cmd.arg("--initrd").arg(initrd);
        }
        // A second monitor for the tool under test: a unix QMP socket serves one client.
        cmd.arg("--")
            .arg("-qmp")
            .arg(format!(
                "unix:{},server=on,wait=off",
                dir.path().join("tool.sock").display()
            ))
            .args(&opts.extra_qemu);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(
            std::fs::File::create(dir.path().join("qemu.stderr")).map_err(|source| {
                KitError::Io {
                    what: "creating qemu's stderr log".into(),
                    source,
                }
            })?,
        );
        kill_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|source| KitError::Io {
            what: "starting samples/kit/boot.sh".into(),
            source,
        })?;
        let mut guest = PendingGuest { child: Some(child) };
        let start = Instant::now();
        let qmp = loop {
            guest.check_alive(&serial)?;
            if qmp_path.exists() {
                match Qmp::connect(&QmpAddress::Unix(qmp_path.clone()), Duration::from_secs(30)) {
                    Ok(q) => break q,
                    Err(e) if start.elapsed() > Duration::from_secs(30) => return Err(e.into()),
                    Err(_) => {}
                }
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err(KitError::Timeout(
                    "qemu did not open its QMP socket in 30 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let Some(child) = guest.child.take() else {
            return Err(KitError::Timeout("qemu vanished".into()));
        };
        let mut guest = Guest { child, dir, qmp };
        guest.wait_for_console(READY_LINE, opts.ready_timeout)?;
        Ok(guest)
    }

    /// Waits until qemu exits (a guest that powered itself off).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if self
                .child
                .try_wait()
                .map_err(|source| KitError::Io {
                    what: "waiting for qemu".into(),
                    source,
                })?
                .is_some()
            {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(KitError::Timeout(format!(
                    "qemu still running after {} s",
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The guest's serial console so far.
    pub fn serial_log(&self) -> String {
        std::fs::read(self.dir.path().join("serial.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The guest's private temporary directory (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A second QMP socket, free for the tool under test (`coroner capture`); the kit's
    /// own connection holds the first.
    pub fn tool_socket(&self) -> PathBuf {
        self.dir.path().join("tool.sock")
    }

    /// qemu's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `needle` appears on the serial console.
    pub fn wait_for_console(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if self.serial_log().contains(needle) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(KitError::Exited {
                    status: status.to_string(),
                    tail: tail(&self.serial_log()),
                });
            }
            if start.elapsed() > timeout {
                return Err(KitError::Timeout(format!(
                    "no {needle:?} on the console after {} s; tail:\n{}",
                    timeout.as_secs(),
                    tail(&self.serial_log())
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until qemu reports run state `state`.
    pub fn wait_for_state(&mut self, state: &str, timeout: Duration) -> Result<()> {
        match poll_run_state(&mut self.qmp, state, timeout, Duration::from_millis(200))? {
            None => Ok(()),
            Some(now) => Err(KitError::Timeout(format!(
                "run state still {now:?}, not {state:?}, after {} s; console tail:\n{}",
                timeout.as_secs(),
                tail(&self.serial_log())
            ))),
        }
    }

    /// Freezes the running guest by `scenario` and returns the run state it ends in.
    pub fn freeze(&mut self, scenario: Scenario) -> Result<String> {
        match scenario {
            Scenario::Stop => {
                self.qmp.execute("stop", None)?;
            }
            Scenario::Panic => {
                self.qmp.hmp("sendkey alt-sysrq-c")?;
            }
            Scenario::Mce => {
                // cpu bank status mcg_status addr misc: an uncorrected, action-required
                // memory read error; fatal under TCG (no MCG_SER_P).
                self.qmp
                    .hmp("mce 1 1 0xbd80000000000134 0x7 0x2345000 0x86")?;
            }
        }
        self.wait_for_state(scenario.run_state(), Duration::from_secs(120))?;
        Ok(self.qmp.run_state()?)
    }

    /// Dumps guest memory with qemu's own `dump-guest-memory` (paging off) to `path`.
    ///
    /// qemu 7.2 cleans up its global dump state, closing the dump's fd, only after it
    /// reports a detached dump completed: a dump started in between loses its fd to that
    /// cleanup ("failed to write start flat header"). So this returns only once qemu has
    /// closed `path`.
    pub fn dump(&mut self, path: &Path, format: &str) -> Result<()> {
        self.dump_once(path, format)?;
        self.wait_closed(path)
    }

    /// Waits until qemu holds no fd on `path` (its dump state is cleaned up).
    fn wait_closed(&self, path: &Path) -> Result<()> {
        let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let fds = PathBuf::from(format!("/proc/{}/fd", self.pid()));
        let start = Instant::now();
        loop {
            let open = std::fs::read_dir(&fds)
                .map(|d| {
                    d.flatten()
                        .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l == target))
                })
                .unwrap_or(false);
            if !open {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(60) {
                return Err(KitError::Timeout(format!(
                    "qemu still holds {} 60 s after the dump ended",
                    path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn dump_once(&mut self, path: &Path, format: &str) -> Result<()> {
        let since = self.qmp.events().len();
        let args = json!({
            "paging": false,
            "protocol": format!("file:{}", path.display()),
            "detach": true,
            "format": format,
        });
        // Right after DUMP_COMPLETED, qemu may still call the previous dump in process.
        let start = Instant::now();
        loop {
            match self.qmp.execute("dump-guest-memory", Some(args.clone())) {
                Ok(_) => break,
                Err(coroner_capture::Error::Command { desc, .. })
                    if desc.contains("dump in process")
                        && start.elapsed() < Duration::from_secs(10) =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.wait_dump_done(since)
    }
}

impl Guest {
    /// Waits until the dump started after event index `since` ends, and fails if it
    /// failed. Reads `query-dump`, not the first `DUMP_COMPLETED`, which may belong to
    /// another client's earlier dump.
    pub fn wait_dump_done(&mut self, since: usize) -> Result<()> {
        let start = Instant::now();
        loop {
            let status = self.qmp.execute("query-dump", None)?;
            match status["status"].as_str() {
                Some("completed") => return Ok(()),
                Some("active") if start.elapsed() < Duration::from_secs(600) => {}
                other => {
                    let error = self.qmp.events()[since.min(self.qmp.events().len())..]
                        .iter()
                        .find_map(|e| e.data.get("error").map(|v| v.to_string()));
                    return Err(KitError::Timeout(format!(
                        "dump-guest-memory ended {other:?}: {}",
                        error.unwrap_or_default()
                    )));
                }
            }
            match self.qmp.wait_event(
                "DUMP_COMPLETED",
                self.qmp.events().len(),
                Duration::from_millis(100),
            ) {
                Ok(_) | Err(coroner_capture::Error::Timeout { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks qemu's run state every `every` until it is `state` (`None`) or `timeout` passes
/// (`Some(the last state seen)`).
pub(crate) fn poll_run_state(
    qmp: &mut Qmp,
    state: &str,
    timeout: Duration,
    every: Duration,
) -> Result<Option<String>> {
    let start = Instant::now();
    loop {
        let now = qmp.run_state()?;
        if now == state {
            return Ok(None);
        }
        if start.elapsed() > timeout {
            return Ok(Some(now));
        }
        std::thread::sleep(every);
    }
}

/// A qemu that has not yet answered on QMP: killed if boot fails.
struct PendingGuest {
    child: Option<Child>,
}

impl PendingGuest {
    fn check_alive(&mut self, serial: &Path) -> Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(serial).unwrap_or_default();
                return Err(KitError::Exited {
                    status: status.to_string(),
                    tail: tail(&log),
                });
            }
        }
        Ok(())
    }
}

impl Drop for PendingGuest {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Has the kernel kill qemu when the process that started it dies (a test runner killed
/// by a timeout), so no qemu outlives its test.
pub(crate) fn kill_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
    // async-signal-safe.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
}

/// Per-vCPU RIP and CR3 from HMP `info registers -a` output.
pub fn rip_cr3_from_info_registers(text: &str) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut cur: (Option<u64>, Option<u64>) = (None, None);
    let field = |line: &str, key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v, 16).ok())
    };
    for line in text.lines() {
        if line.starts_with("CPU#") {
            if let (Some(r), Some(c)) = cur {
                out.push((r, c));
            }
            cur = (None, None);
        }
        if let Some(r) = field(line, "RIP=").or_else(|| field(line, "EIP=")) {
            cur.0 = Some(r);
        }
        if let Some(c) = field(line, "CR3=") {
            cur.1 = Some(c);
        }
    }
    if let (Some(r), Some(c)) = cur {
        out.push((r, c));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_info_registers_for_two_cpus() {
        let text = "\nCPU#0\nRAX=0000000000000000 RBX=ffffffff82a0e940\nRIP=ffffffff81e4b5ab RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\nCR0=80050033 CR2=0000000000000000 CR3=0000000001c0a000 CR4=000006f0\n\nCPU#1\nEIP=0000fff0 EFL=00000002\nCR0=60000010 CR2=00000000 CR3=00000000 CR4=00000000\n";
        assert_eq!(
            rip_cr3_from_info_registers(text),
            vec![(0xffff_ffff_81e4_b5ab, 0x1c0_a000), (0xfff0, 0)]
        );
    }
}
