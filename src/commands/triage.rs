//! `coroner triage`: every capture in the directories given signed (its stored signature
//! when it still matches, else `analyze`'s title, stored beside it) and grouped by
//! signature: count, first and last seen, guests, hosts, an example.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use coroner_objstore::{Listed, ObjectUrl, Store};

use coroner_analyze::escape_control;
use coroner_record::{Signature, SIGNATURE_SUFFIX};
use serde::Serialize;

use super::output::{print_json, print_text, rfc3339};
use super::signature_file::{signature_of, signature_of_object};
use crate::cli::TriageArgs;
use crate::exit::{ClassifyExt, ExitClass};

/// Captures that died the same way.
#[derive(Serialize)]
struct Group {
    signature: String,
    count: usize,
    /// When the first and the last of them were captured (RFC 3339).
    first_seen: String,
    last_seen: String,
    guests: BTreeSet<String>,
    hosts: BTreeSet<String>,
    /// The latest capture of the group.
    example: String,
    /// One of the verdicts (they share the title, not necessarily every number).
    verdict: String,
    run_state: Option<String>,
    #[serde(skip)]
    first_unix: u64,
    #[serde(skip)]
    last_unix: u64,
}

#[derive(Serialize)]
struct Unreadable {
    capture: String,
    error: String,
}

#[derive(Serialize)]
struct TriageReport {
    groups: Vec<Group>,
    /// Captures grouped (after `--since`).
    captures: usize,
    /// Captures analysed by this run (new, or changed since signed).
    signed_now: usize,
    /// Captures whose stored signature was used.
    from_stored_signatures: usize,
    /// Captures left out by `--since`.
    older: usize,
    unreadable: Vec<Unreadable>,
    /// Signatures that could not be stored (a read-only directory), the first few.
    not_stored: Vec<String>,
}

/// `--since`: a duration ago (`7d`, `36h`) or a time (`2026-12-01`, RFC 3339).
fn parse_since(text: &str) -> Result<u64, String> {
    let now = std::time::SystemTime::now();
    let at = if let Ok(d) = humantime::parse_duration(text) {
        now.checked_sub(d).ok_or("too long ago")?
    } else if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        t
    } else if let Ok(t) = humantime::parse_rfc3339_weak(&format!("{text} 00:00:00")) {
        t
    } else {
        return Err(format!(
            "{text:?} is neither a duration (7d, 36h) nor a time (2026-12-01, 2026-12-01T10:00:00Z)"
        ));
    };
    Ok(at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0))
}

/// A capture to sign: a file, or an object as its store listed it.
enum Capture {
    File(PathBuf),
    Object {
        store: Arc<Store>,
        url: ObjectUrl,
        listed: Listed,
        /// Its signature object, as read with the listing.
        stored: Option<Vec<u8>>,
    },
}

impl Capture {
    fn name(&self) -> String {
        match self {
            Capture::File(p) => p.display().to_string(),
            Capture::Object { url, .. } => url.to_string(),
        }
    }
}

/// True for the name of a capture (not a temporary, partial or signature file).
fn is_capture_name(name: &str) -> bool {
    name.ends_with(".core.zst") && !name.starts_with('.')
}

/// The captures in `sources`: every `*.core.zst` in a directory or under an `s3://`
/// prefix (not temporary or partial ones), and files given by name.
fn captures_in(sources: &[PathBuf]) -> anyhow::Result<Vec<Capture>> {
    let mut found = Vec::new();
    for src in sources {
        if let Some(text) = coroner_objstore::object_url_of(src) {
            found.extend(objects_under(text)?);
            continue;
        }
        // Examples are printed as absolute paths: hooks and other shells run elsewhere.
        let src = &std::path::absolute(src).classify(ExitClass::Input, || {
            format!("cannot resolve {}", src.display())
        })?;
        let meta = std::fs::metadata(src).classify(ExitClass::Input, || {
            format!("cannot read {}", src.display())
        })?;
        if !meta.is_dir() {
            found.push(Capture::File(src.clone()));
            continue;
        }
        let entries = std::fs::read_dir(src).classify(ExitClass::Input, || {
            format!("cannot list {}", src.display())
        })?;
        let files: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| {
                e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink())
                    && is_capture_name(&e.file_name().to_string_lossy())
            })
            .map(|e| e.path())
            .collect();
        found.extend(files.into_iter().map(Capture::File));
    }
    // A capture named twice (a directory and a file in it, overlapping prefixes) counts
    // once.
    found.sort_by_key(Capture::name);
    found.dedup_by(|a, b| a.name() == b.name());
    Ok(found)
}

/// The captures under the prefix `text` (`s3://BUCKET/PREFIX/`), as one listing.
fn objects_under(text: &str) -> anyhow::Result<Vec<Capture>> {
    let prefix = ObjectUrl::parse(text).classify(ExitClass::Usage, || text.to_string())?;
    let store = super::object_input::store_for(&prefix)?;
    let listed = store
        .list(&prefix.key)
        .classify(ExitClass::Input, || format!("cannot list {prefix}"))?;
    // The signature objects, small by their listed size, read at once, 32 at a time.
    let signatures: std::collections::HashMap<&str, u64> = listed
        .iter()
        .filter_map(|l| Some((l.key.strip_suffix(SIGNATURE_SUFFIX)?, l.size)))
        .collect();
    let captures: Vec<&Listed> = listed
        .iter()
        .filter(|l| is_capture_name(l.key.rsplit('/').next().unwrap_or(&l.key)))
        .collect();
    let wanted: Vec<String> = captures
        .iter()
        .filter(|l| {
            signatures
                .get(l.key.as_str())
                .is_some_and(|&size| size <= coroner_record::SIGNATURE_MAX_BYTES)
        })
        .map(|l| format!("{}{SIGNATURE_SUFFIX}", l.key))
        .collect();
    let mut read: std::collections::HashMap<String, Vec<u8>> = wanted
        .iter()
        .cloned()
        .zip(store.read_many(&wanted, coroner_record::SIGNATURE_MAX_BYTES, 32))
        .filter_map(|(k, r)| Some((k, r.ok()?)))
        .collect();
    let found: Vec<Capture> = captures
        .into_iter()
        .map(|l| Capture::Object {
            store: store.clone(),
            url: ObjectUrl {
                bucket: prefix.bucket.clone(),
                key: l.key.clone(),
            },
            listed: l.clone(),
            stored: read.remove(&format!("{}{SIGNATURE_SUFFIX}", l.key)),
        })
        .collect();
    Ok(found)
}

/// One capture's outcome.
type Signed = Result<(Signature, bool, Option<String>), String>;

/// Captures in object storage signed at once by default, at least.
const REMOTE_JOBS: usize = 8;

/// Signs every capture, `jobs` at a time.
fn sign_all(captures: &[Capture], store: bool, jobs: usize) -> Vec<Signed> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Signed>>> =
        Mutex::new((0..captures.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, captures.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(capture) = captures.get(i) else {
                    break;
                };
                let r = match capture {
                    Capture::File(path) => signature_of(path, store),
                    Capture::Object {
                        store: s,
                        url,
                        listed,
                        stored,
                    } => signature_of_object(s, url, listed, stored.as_deref(), store),
                }
                .map_err(|e| format!("{e:#}"));
                if let Ok(mut v) = results.lock() {
                    v[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not signed".into())))
        .collect()
}

pub fn run(args: &TriageArgs) -> anyhow::Result<ExitClass> {
    let since = args
        .since
        .as_deref()
        .map(parse_since)
        .transpose()
        .map_err(std::io::Error::other)
        .classify(ExitClass::Usage, || "--since".into())?;
    let captures = captures_in(&args.sources)?;
    let jobs = args.jobs.unwrap_or_else(|| {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        // Objects are signed waiting on the network more than on the CPU.
        let remote = captures.iter().any(|c| matches!(c, Capture::Object { .. }));
        if remote {
            cpus.max(REMOTE_JOBS)
        } else {
            cpus
        }
    });
    let results = sign_all(&captures, !args.no_store, jobs);
    let mut report = TriageReport {
        groups: Vec::new(),
        captures: 0,
        signed_now: 0,
        from_stored_signatures: 0,
        older: 0,
        unreadable: Vec::new(),
        not_stored: Vec::new(),
    };
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for (capture, result) in captures.iter().zip(results) {
        let path = capture.name();
        let (sig, now, not_stored) = match result {
            Ok(r) => r,
            Err(error) => {
                report.unreadable.push(Unreadable {
                    capture: path,
                    error,
                });
                continue;
            }
        };
        if now {
            report.signed_now += 1;
        } else {
            report.from_stored_signatures += 1;
        }
        if let Some(e) = not_stored {
            if report.not_stored.len() < 5 {
                report.not_stored.push(e);
            }
        }
        if since.is_some_and(|t| sig.captured_unix < t) {
            report.older += 1;
            continue;
        }
        report.captures += 1;
        let g = groups
            .entry(sig.signature.clone())
            .or_insert_with(|| Group {
                signature: sig.signature.clone(),
                count: 0,
                first_seen: rfc3339(sig.captured_unix),
                last_seen: rfc3339(sig.captured_unix),
                guests: BTreeSet::new(),
                hosts: BTreeSet::new(),
                example: path.clone(),
                verdict: sig.verdict.clone(),
                run_state: sig.run_state.clone(),
                first_unix: sig.captured_unix,
                last_unix: sig.captured_unix,
            });
        g.count += 1;
        if sig.captured_unix < g.first_unix {
            g.first_unix = sig.captured_unix;
            g.first_seen = rfc3339(sig.captured_unix);
        }
        if sig.captured_unix >= g.last_unix {
            g.last_unix = sig.captured_unix;
            g.last_seen = rfc3339(sig.captured_unix);
            g.example = path.clone();
            g.verdict = sig.verdict.clone();
        }
        g.guests.extend(sig.guest.clone());
        g.hosts.extend(sig.host.clone());
    }
    report.groups = groups.into_values().collect();
    report
        .groups
        .sort_by(|a, b| b.count.cmp(&a.count).then(b.last_unix.cmp(&a.last_unix)));
    for u in &report.unreadable {
        crate::journal::log(
            coroner_capture::LogLevel::Warning,
            &format!("{}: {}", u.capture, u.error),
        );
    }
    if args.format.json {
        print_json(&report)?;
    } else {
        print_text(&text(&report))?;
    }
    Ok(if report.unreadable.is_empty() {
        ExitClass::Ok
    } else {
        ExitClass::Input
    })
}

/// Names, at most three, then how many more.
fn few(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        return "-".into();
    }
    let mut s: Vec<String> = names
        .iter()
        .take(3)
        .map(|n| escape_control(n).into_owned())
        .collect();
    if names.len() > 3 {
        s.push(format!("+{}", names.len() - 3));
    }
    s.join(",")
}

fn text(r: &TriageReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} signature(s) in {} capture(s) ({} signed now, {} from stored signatures{}{})",
        r.groups.len(),
        r.captures,
        r.signed_now,
        r.from_stored_signatures,
        if r.older > 0 {
            format!(", {} older left out", r.older)
        } else {
            String::new()
        },
        if r.unreadable.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable", r.unreadable.len())
        }
    );
    if r.groups.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "{:>5}  {:<20}  {:<20}  {:<24}  {:<16}  SIGNATURE",
        "COUNT", "FIRST SEEN", "LAST SEEN", "GUESTS", "HOSTS"
    );
    for g in &r.groups {
        let _ = writeln!(
            s,
            "{:>5}  {:<20}  {:<20}  {:<24}  {:<16}  {}",
            g.count,
            g.first_seen,
            g.last_seen,
            few(&g.guests),
            few(&g.hosts),
            escape_control(&g.signature)
        );
        let _ = writeln!(s, "{:>5}  e.g. {}", "", escape_control(&g.example));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let d = parse_since("2h").unwrap();
        assert!((now - 7200..=now - 7199).contains(&d), "{d} {now}");
        assert_eq!(parse_since("2026-12-01").unwrap(), 1_796_083_200);
        assert_eq!(parse_since("2026-12-01T10:00:00Z").unwrap(), 1_796_119_200);
        assert!(parse_since("yesterday-ish").is_err());
    }
}
