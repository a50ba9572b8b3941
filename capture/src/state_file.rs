//! The watcher's view of each guest, kept in `DIR/.coroner-watch/NAME.json`: `watch` holds
//! the guest's monitor (a unix QMP socket serves one client at a time), so `status` on the
//! same socket reads this instead of waiting for a monitor that will not answer.

use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::guest_match::same_guest;
use crate::health::Health;
use crate::QmpAddress;

/// The state file's directory inside the capture directory.
pub const STATE_DIR: &str = ".coroner-watch";

/// One guest as its watcher last saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WatchState {
    /// The guest's name.
    pub guest: String,
    /// The monitor watched.
    pub qmp: String,
    /// The classification, as `status` makes it.
    pub health: Health,
    /// qemu's run state.
    pub run_state: Option<String>,
    /// The capture of the current freeze.
    pub capture: Option<PathBuf>,
    /// qemu's process id.
    pub qemu_pid: Option<u32>,
    /// The watcher's process id (the file means nothing once it is gone).
    pub watcher_pid: u32,
    /// When it was written, microseconds since the epoch.
    pub updated_unix_us: u64,
}

/// Where the state of `guest` lives under `dir`.
pub fn state_path(dir: &Path, guest: &str) -> PathBuf {
    dir.join(STATE_DIR)
        .join(format!("{}.json", crate::watch::safe_name(guest)))
}

/// Writes `state` atomically (a temporary file renamed over the old one), mode 0600.
pub fn write_state(dir: &Path, state: &WatchState) -> std::io::Result<()> {
    let sdir = dir.join(STATE_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&sdir)?;
    let path = state_path(dir, &state.guest);
    let mut f = coroner_formats::OutputFile::create(&path).map_err(std::io::Error::other)?;
    f.file_mut()
        .write_all(&serde_json::to_vec(state).map_err(std::io::Error::other)?)?;
    f.commit().map_err(std::io::Error::other)?;
    Ok(())
}

/// The state a live watcher keeps in `dir` for the monitor at `address`, if any.
pub fn read_state(dir: &Path, address: &QmpAddress) -> Option<WatchState> {
    let same = |a: &str| same_guest(a, None, address, None);
    std::fs::read_dir(dir.join(STATE_DIR))
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<WatchState>(&b).ok())
        .filter(|s| same(&s.qmp) && watcher_alive(s.watcher_pid))
        .max_by_key(|s| s.updated_unix_us)
}

/// True when `pid` is a running coroner process.
fn watcher_alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == b"watch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_liveness() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = WatchState {
            guest: "vm1".into(),
            qmp: "/run/coroner/vm1.qmp".into(),
            health: Health::FrozenCaptured,
            run_state: Some("guest-panicked".into()),
            capture: Some("/x.core.zst".into()),
            qemu_pid: Some(7),
            // No such process: the file is ignored.
            watcher_pid: u32::MAX,
            updated_unix_us: 1,
        };
        write_state(dir.path(), &s).unwrap();
        assert_eq!(
            read_state(dir.path(), &QmpAddress::Unix("/run/coroner/vm1.qmp".into())),
            None
        );
        let raw = std::fs::read(state_path(dir.path(), "vm1")).unwrap();
        let back: WatchState = serde_json::from_slice(&raw).unwrap();
        assert_eq!(back, s);
        // This test binary is not a watcher either.
        s.watcher_pid = std::process::id();
        write_state(dir.path(), &s).unwrap();
        assert_eq!(
            read_state(dir.path(), &QmpAddress::Unix("/run/coroner/vm1.qmp".into())),
            None
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state_path(dir.path(), "vm1"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
