//! Small helpers shared by the commands' text and JSON output.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::exit::{classified, ClassifyExt, ExitClass};

/// `n` bytes in binary units, e.g. `1.50 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

/// Seconds since the epoch as an RFC 3339 UTC time.
pub fn rfc3339(unix: u64) -> String {
    coroner_analyze::format_rfc3339_seconds(unix)
}

/// The version of the JSON every command prints, in its top-level `schema` field. 2:
/// addresses and 64-bit registers are `"0x…"` strings, enums kebab-case, errors as
/// `{"error": …}`.
pub const JSON_SCHEMA: u32 = 2;

/// A command's JSON object with the `schema` field first.
#[derive(serde::Serialize)]
struct Versioned<'a, T> {
    schema: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// Writes `value` (a JSON object) as pretty JSON plus a newline to stdout, with the
/// `schema` field first.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(&Versioned {
        schema: JSON_SCHEMA,
        body: value,
    })
    .context("encoding JSON")?;
    text.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&text)
        .and_then(|()| out.flush())
        .context("writing JSON to stdout")
}

/// `value` (a JSON object) as one line of compact JSON with the `schema` field first (the
/// announcements of `watch --json`).
pub fn json_line<T: serde::Serialize>(value: &T) -> serde_json::Result<String> {
    serde_json::to_string(&Versioned {
        schema: JSON_SCHEMA,
        body: value,
    })
}

/// Under `--json`, a failure as one JSON object on stdout (one line): `{"schema": 2,
/// "error": {"message", "class", "exit_code"}}`. The text message goes to stderr too.
pub fn print_json_error(message: &str, class: ExitClass) {
    #[derive(serde::Serialize)]
    struct Failure<'a> {
        message: &'a str,
        class: &'static str,
        exit_code: u8,
    }
    #[derive(serde::Serialize)]
    struct ErrorObject<'a> {
        error: Failure<'a>,
    }
    let error = Failure {
        message,
        class: class.name(),
        exit_code: class.code(),
    };
    if let Ok(line) = json_line(&ErrorObject { error }) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}

/// Writes `text` to stdout; a closed stdout comes back as an error that `main` treats
/// as the end of the reader's interest, not a failure (`println!` would panic).
pub fn print_text(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

/// Prints `value` as JSON when `json`, else the text `render` makes of it.
pub fn print_as<T: serde::Serialize>(
    json: bool,
    value: &T,
    render: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        return print_json(value);
    }
    std::io::stdout()
        .lock()
        .write_all(render(value).as_bytes())
        .context("writing to stdout")
}

/// Refuses to overwrite `path` unless `force`.
pub fn check_overwrite(path: &Path, force: bool) -> anyhow::Result<()> {
    refuse_object_output(path)?;
    if !force && path.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "use --force to replace it",
        ))
        .classify(ExitClass::Output, || format!("{} exists", path.display()));
    }
    Ok(())
}

/// Refuses an `s3://` output where a command writes local files only.
pub fn refuse_object_output(path: &Path) -> anyhow::Result<()> {
    match coroner_objstore::object_url_of(path) {
        Some(url) => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this command writes a local file; capture and watch upload to object storage (copy other files with an S3 client)",
        ))
        .classify(ExitClass::Usage, || format!("output {url}")),
        None => Ok(()),
    }
}

/// Refuses an existing object at `url` unless `force` (the check also proves early that
/// the bucket answers, before a frozen guest is touched).
pub fn check_object_overwrite(url: &str, force: bool) -> anyhow::Result<()> {
    let parsed = coroner_objstore::ObjectUrl::parse_object(url)
        .classify(ExitClass::Usage, || format!("output {url}"))?;
    let store = coroner_objstore::Store::for_bucket(&parsed.bucket)
        .classify(ExitClass::Output, || format!("cannot write {url}"))?;
    let exists = store
        .exists(&parsed.key)
        .classify(ExitClass::Output, || format!("cannot write {url}"))?;
    if exists && !force {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "use --force to replace it",
        ))
        .classify(ExitClass::Output, || format!("{url} exists"));
    }
    Ok(())
}

/// Classifies a failed file conversion (`compress`, `export`): trouble with `output` (its
/// temporary or `.partial` file included) is an output error, an interruption is one, the
/// rest is the input's.
pub fn conversion_error(
    e: coroner_formats::Error,
    verb: &str,
    input: &Path,
    output: &Path,
) -> anyhow::Error {
    let is_output = |p: &Path| coroner_formats::output_file::belongs_to(p, output);
    let class = match &e {
        coroner_formats::Error::Interrupted => ExitClass::Interrupted,
        coroner_formats::Error::Io { path, .. } if is_output(path) => ExitClass::Output,
        coroner_formats::Error::Remote { .. } => ExitClass::Output,
        coroner_formats::Error::Container { .. } if verb == "compress" => ExitClass::Output,
        _ => ExitClass::Input,
    };
    let doing = match class {
        ExitClass::Output => format!("cannot write {}", output.display()),
        ExitClass::Interrupted => {
            format!("{verb} interrupted; {} was not written", output.display())
        }
        _ => format!("cannot {verb} {}", input.display()),
    };
    classified(e, class, doing)
}

/// The "how we know" section of the text outputs: each fact, its value and how it was
/// obtained (the fact column `width` wide), then the notes. Guest text is escaped.
pub fn write_evidence<'a>(
    s: &mut String,
    evidence: &[coroner_analyze::Evidence],
    notes: impl IntoIterator<Item = &'a String>,
    width: usize,
) {
    use std::fmt::Write as _;
    let esc = coroner_analyze::escape_control;
    let _ = writeln!(s, "\nhow we know");
    for e in evidence {
        let _ = writeln!(
            s,
            "  {:<width$} {} — {}",
            e.fact,
            esc(&e.value),
            esc(&e.how)
        );
    }
    for n in notes {
        let _ = writeln!(s, "  note: {}", esc(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 29), "1.50 GiB");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
