//! Judging a guest from its run state and the captures on record: a failure state is
//! frozen, and captured when a complete capture of this qemu in this state exists; a
//! pause is the operator's unless coroner's own `capture --stop` of this qemu is on record.
//! `status` and `watch` both judge through here.

use std::path::{Path, PathBuf};

use coroner_record::CaptureInfo;

use crate::guest_match::GuestRef;
use crate::health::Health;
use crate::run_state::{RunState, CORONER_STOP_STATE};

/// A guest's health from its run state and the captures in the capture directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Judged {
    /// The classification.
    pub health: Health,
    /// The complete capture of this freeze, for [`Health::FrozenCaptured`].
    pub capture: Option<PathBuf>,
    /// How it was decided.
    pub detail: String,
}

/// Judges a guest of the qemu at `address` (process `pid`) in run state `state`: a failure
/// state is frozen, captured when `dir` holds a complete capture of it; a pause is the
/// operator's, unless `dir` holds the record of coroner's own `capture --stop` of this
/// qemu, which makes it the failover-safe freeze.
pub(crate) fn judge(dir: Option<&Path>, guest: &GuestRef<'_>, state: &str) -> Judged {
    let in_dir = |d: &Path| {
        format!(
            "no complete capture of this qemu in this state in {}",
            d.display()
        )
    };
    let run_state = RunState::parse(state);
    match Health::of_run_state(&run_state) {
        Health::Frozen => {
            let found = dir.and_then(|d| find_capture(d, guest, state));
            Judged {
                health: if found.is_some() {
                    Health::FrozenCaptured
                } else {
                    Health::Frozen
                },
                detail: match (&found, dir) {
                    (Some(p), _) => format!("run state {state}; captured in {}", p.display()),
                    (None, Some(d)) => format!("run state {state}; {}", in_dir(d)),
                    (None, None) => format!("run state {state}"),
                },
                capture: found,
            }
        }
        Health::Paused => match dir.and_then(|d| find_coroner_stop(d, guest, state)) {
            Some(rec) if rec.complete => Judged {
                health: Health::FrozenCaptured,
                detail: format!(
                    "run state {state}, paused by coroner capture --stop; captured in {}",
                    rec.path.display()
                ),
                capture: Some(rec.path),
            },
            Some(rec) => Judged {
                health: Health::Frozen,
                detail: format!(
                    "run state {state}, paused by coroner capture --stop, whose capture failed (kept in {})",
                    rec.path.display()
                ),
                capture: None,
            },
            None => Judged {
                health: Health::Paused,
                detail: format!(
                    "run state {state}: paused by an operator or not started yet, not a failure{}",
                    if run_state == CORONER_STOP_STATE && dir.is_some() {
                        " (no capture --stop of this qemu on record)"
                    } else {
                        ""
                    }
                ),
                capture: None,
            },
        },
        h => Judged {
            health: h,
            capture: None,
            detail: format!("run state {state}"),
        },
    }
}

/// A capture's record of one qemu, from its metadata.
struct Record {
    path: PathBuf,
    complete: bool,
    created_unix: u64,
    stopped_by_coroner: bool,
    /// The run state the capture held the guest in.
    state: Option<String>,
}

/// The captures (complete, kept `.partial` files, and receipts of uploaded ones) in `dir`
/// of the qemu at `address`
/// (and, when known, with process id `pid`).
fn records(dir: &Path, guest: &GuestRef<'_>) -> Vec<Record> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.to_string_lossy();
        if name.ends_with(crate::receipt::RECEIPT_SUFFIX) {
            if let Some(r) = crate::receipt::read(&path).filter(|r| guest.matches(&r.info)) {
                out.push(Record::of(
                    r.info,
                    true,
                    r.created_unix,
                    PathBuf::from(r.capture),
                ));
            }
            continue;
        }
        if !name.ends_with(".core.zst") && !name.ends_with(".core.zst.partial") {
            continue;
        }
        let Ok(reader) = coroner_formats::ContainerReader::open(&path) else {
            continue;
        };
        let Some(meta) = reader.metadata() else {
            continue;
        };
        let Ok(Some(c)) = CaptureInfo::from_metadata(meta) else {
            continue;
        };
        if !guest.matches(&c) {
            continue;
        }
        let complete = meta.complete && name.ends_with(".core.zst");
        out.push(Record::of(c, complete, meta.created_unix, path));
    }
    out
}

impl Record {
    fn of(c: CaptureInfo, complete: bool, created_unix: u64, path: PathBuf) -> Record {
        let stopped_by_coroner = c.stopped_by_coroner;
        // `capture --stop` found the guest running and left it paused.
        let state = if stopped_by_coroner {
            Some(CORONER_STOP_STATE.name().to_string())
        } else {
            Some(c.run_state_before).filter(|s| !s.is_empty())
        };
        Record {
            complete,
            created_unix,
            stopped_by_coroner,
            state,
            path,
        }
    }
}

/// A complete capture in `dir` of the qemu at `address` in run state `state` (and, when
/// known, with process id `pid`).
pub(crate) fn find_capture(dir: &Path, guest: &GuestRef<'_>, state: &str) -> Option<PathBuf> {
    records(dir, guest)
        .into_iter()
        .filter(|r| r.complete && r.state.as_deref() == Some(state))
        .max_by_key(|r| r.created_unix)
        .map(|r| r.path)
}

/// The newest record in `dir` of coroner pausing this qemu itself (`capture --stop`), when
/// the guest is in the state that leaves: a complete capture, or a kept partial.
fn find_coroner_stop(dir: &Path, guest: &GuestRef<'_>, state: &str) -> Option<Record> {
    if RunState::parse(state) != CORONER_STOP_STATE {
        return None;
    }
    records(dir, guest)
        .into_iter()
        .filter(|r| r.stopped_by_coroner)
        .max_by_key(|r| (r.complete, r.created_unix))
}
