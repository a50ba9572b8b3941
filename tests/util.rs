//! Test helpers: run the binary in a fresh directory and report everything on failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A fresh temporary directory for one test.
pub struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Self {
        Self {
            tmp: tempfile::Builder::new()
                .prefix("coroner-test-")
                .tempdir()
                .unwrap(),
        }
    }
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// The result of one run of the binary.
pub struct Run {
    pub cmd: String,
    pub out: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    /// Asserts the exit code, printing the command and both streams otherwise.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "\ncommand: {}\nstdout:\n{}\nstderr:\n{}",
            self.cmd,
            self.stdout(),
            self.stderr()
        );
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.out.stdout).unwrap_or_else(|e| {
            panic!("{}: stdout is not JSON ({e}):\n{}", self.cmd, self.stdout())
        })
    }
}

/// Runs `coroner ARGS` in `dir`.
pub fn coroner(dir: &Path, args: &[&str]) -> Run {
    coroner_env(dir, args, &[])
}

/// Runs `coroner ARGS` in `dir` with `env` added to its environment.
pub fn coroner_env(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_coroner"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .output()
        .unwrap();
    Run {
        cmd: format!("coroner {}", args.join(" ")),
        out,
    }
}

/// A kit guest with 1 GiB of RAM, booted and stopped: its dump takes long enough to be
/// cut short on purpose.
pub fn big_stopped_guest() -> coroner_samples::kit::Guest {
    use coroner_samples::kit::{Guest, GuestOptions, Scenario};
    let mut guest = Guest::boot(&GuestOptions {
        mem_mib: 1024,
        ..GuestOptions::default()
    })
    .unwrap();
    guest.freeze(Scenario::Stop).unwrap();
    guest
}

/// A 1 GiB guest with 150 MiB of its RAM filled, panicked: a capture of about 100 MiB,
/// more than a few parts of an upload and many blocks of a ranged reader.
pub fn panicked_filled_guest() -> coroner_samples::kit::Guest {
    use coroner_samples::kit::{Guest, GuestOptions, Scenario};
    let mut guest = Guest::boot(&GuestOptions {
        mem_mib: 1024,
        append: "coroner.fill=150".into(),
        ..GuestOptions::default()
    })
    .unwrap();
    guest.freeze(Scenario::Panic).unwrap();
    guest
}

/// True while process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Kills `pid` (qemu, as a fence would) and waits until it is dead: its descriptors, the
/// dump's pipe and the monitor included, are closed.
pub fn kill_and_wait_dead(pid: u32) {
    signal(pid, "-KILL");
    let start = std::time::Instant::now();
    while alive(pid) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "{pid} outlived SIGKILL"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Sends `sig` (`-STOP`, `-KILL`, ...) to `pid`.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig} {pid} failed");
}

/// Checks a capture kept after a failure (`--keep-partial`): mode 0600, marked incomplete
/// with a reason, holding what was known before the dump, and not readable as a dump.
#[track_caller]
pub fn check_kept_partial(path: &Path, run_state_before: &str) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
    let kept = coroner_formats::ContainerReader::open(path).unwrap();
    let meta = kept.metadata().unwrap();
    assert!(!meta.complete);
    assert!(meta
        .incomplete_reason
        .as_deref()
        .is_some_and(|r| !r.is_empty()));
    let c = meta.capture.as_ref().unwrap();
    assert_eq!(c["run_state_before"], run_state_before);
    assert!(c["info_registers"].as_str().unwrap().contains("EFER="));
    // Its ELF stops short: reading it as a dump is an input error, not a crash.
    let dir = path.parent().unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    coroner(dir, &["inspect", name]).expect_code(3);
}

/// A container's format-2 content digest of the file `p` (frames of 128 KiB), computed
/// by the standard tools FORMAT.md names (coreutils' split, b3sum), not by coroner.
pub fn frames_blake3_file(p: &Path) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("split -b 131072 --filter='b3sum --no-names' < \"$1\" | b3sum --no-names")
        .arg("sh")
        .arg(p)
        .output()
        .unwrap();
    assert!(out.status.success(), "split | b3sum failed: {out:?}");
    let hex = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(hex.len(), 64, "b3sum printed {hex:?}");
    hex
}

/// The sha256 of a file, hex.
pub fn sha256_file(p: &Path) -> String {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(p).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Decompresses `src` into `dst` (both in `dir`) with the real `zstd -d`.
pub fn zstd_decompress(dir: &Path, src: &str, dst: &str) {
    let out = Command::new("zstd")
        .args(["-d", "-q", "-f", src, "-o", dst])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zstd -d: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A qemu with no machine (`-machine none`) listening for QMP on `sock`: real QMP, up in a
/// fraction of a second. Returns once the socket exists.
pub fn qemu_without_machine(sock: &Path) -> Child {
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-qmp",
        ])
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sock.exists() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("qemu made no socket at {} in 20 s", sock.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// An address or 64-bit register as coroner's JSON writes it: a `"0x…"` string.
pub fn hex(v: u64) -> serde_json::Value {
    format!("{v:#x}").into()
}

/// The value of a `"0x…"` JSON string.
pub fn unhex(v: &serde_json::Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.strip_prefix("0x")?, 16).ok()
}

/// Files in `dir` that belong to the output `name`: the file itself, `name.partial`, and
/// the temporary `.name.*.tmp` it is written under.
pub fn output_files(dir: &Path, name: &str) -> Vec<String> {
    let hidden = format!(".{name}.");
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f == name || f.starts_with(&format!("{name}.")) || f.starts_with(&hidden))
        .collect()
}

/// Asserts that nothing of the output `name` is in `dir` (a failure leaves nothing).
#[track_caller]
pub fn assert_no_output(dir: &Path, name: &str) {
    let left = output_files(dir, name);
    assert!(
        left.is_empty(),
        "left behind in {}: {left:?}",
        dir.display()
    );
}

/// Starts `coroner ARGS` in `dir` with stdout and stderr piped.
pub fn spawn_coroner(dir: &Path, args: &[&str]) -> Child {
    spawn_coroner_env(dir, args, &[])
}

/// [`spawn_coroner`] with `env` added to its environment.
pub fn spawn_coroner_env(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_coroner"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// True when the output `name` is being written in `dir` (its temporary file exists).
pub fn being_written(dir: &Path, name: &str) -> bool {
    output_files(dir, name)
        .iter()
        .any(|f| f.starts_with('.') && f.ends_with(".tmp"))
}
