//! `coroner verify`: each container checked against the content digest it records.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use coroner_formats::{ByteSource, ContentDigest, Error};
use serde::Serialize;

use super::output::{human_bytes, print_json};
use crate::cli::VerifyArgs;
use crate::exit::{ClassifyExt, ExitClass};
use crate::progress::Bar;

/// What one file's check found.
#[derive(Serialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
enum Verdict {
    /// Every frame decompressed and the content gives the recorded digest.
    Ok,
    /// The content gives another digest than the one recorded.
    Mismatch,
    /// Every frame decompressed, but the file records no digest to compare with.
    Unverifiable,
    /// The file is not a readable container, or a frame is damaged.
    Unreadable,
}

#[derive(Serialize)]
struct Checked {
    file: String,
    verdict: Verdict,
    /// The container's format version, when its metadata was read.
    format_version: Option<u32>,
    complete: Option<bool>,
    content_size: Option<u64>,
    /// The digest computed (of the kind the file records).
    digest: Option<ContentDigest>,
    /// The digest the file records.
    recorded: Option<ContentDigest>,
    /// What went wrong.
    error: Option<String>,
}

#[derive(Serialize)]
struct VerifyReport {
    files: Vec<Checked>,
}

pub fn run(args: &VerifyArgs) -> anyhow::Result<ExitClass> {
    let interrupt = crate::interrupt::install()
        .classify(ExitClass::Failure, || "installing signal handlers".into())?;
    let mut files = Vec::new();
    for input in &args.inputs {
        let checked = check(input, &interrupt)?;
        if !args.format.json {
            print_text(&checked);
        }
        files.push(checked);
    }
    let all_ok = files.iter().all(|c| c.verdict == Verdict::Ok);
    if args.format.json {
        print_json(&VerifyReport { files })?;
    }
    Ok(if all_ok {
        ExitClass::Ok
    } else {
        ExitClass::Input
    })
}

/// Checks one file; only an interrupt is an error of the command itself.
fn check(input: &Path, interrupt: &AtomicBool) -> anyhow::Result<Checked> {
    let mut checked = Checked {
        file: input.display().to_string(),
        verdict: Verdict::Unreadable,
        format_version: None,
        complete: None,
        content_size: None,
        digest: None,
        recorded: None,
        error: None,
    };
    let reader = match super::object_input::container(input) {
        Ok(r) => r,
        Err(e) => {
            checked.error = Some(format!("{e:#}"));
            return Ok(checked);
        }
    };
    checked.content_size = Some(reader.len());
    if let Some(m) = reader.metadata() {
        checked.format_version = Some(m.format_version);
        checked.complete = Some(m.complete);
        checked.recorded = m.recorded_digest();
    }
    let bar = Bar::new("verify");
    let result = reader.verify(&bar, interrupt);
    bar.finish();
    match result {
        Ok(digest) => {
            checked.verdict = if checked.recorded.is_some() {
                Verdict::Ok
            } else {
                Verdict::Unverifiable
            };
            checked.digest = Some(digest);
        }
        Err(Error::Interrupted) => {
            return Err(crate::exit::classified(
                Error::Interrupted,
                ExitClass::Interrupted,
                format!("verify of {} interrupted", input.display()),
            ))
        }
        Err(e @ Error::Checksum { .. }) => {
            checked.verdict = Verdict::Mismatch;
            checked.error = Some(e.to_string());
        }
        Err(e) => checked.error = Some(e.to_string()),
    }
    Ok(checked)
}

fn print_text(c: &Checked) {
    let esc = coroner_analyze::escape_control;
    let what = match c.verdict {
        Verdict::Ok => "OK".to_string(),
        Verdict::Mismatch => "MISMATCH".to_string(),
        Verdict::Unverifiable => {
            "every frame reads, but no digest is recorded to compare with".to_string()
        }
        Verdict::Unreadable => "UNREADABLE".to_string(),
    };
    let mut line = format!("{}: {what}", esc(&c.file));
    if let Some(d) = &c.digest {
        line += &format!(", {d}");
    }
    if let (Some(v), Some(size)) = (c.format_version, c.content_size) {
        line += &format!(", format {v}, content {}", human_bytes(size));
    }
    if c.complete == Some(false) {
        line += ", INCOMPLETE (a .partial capture)";
    }
    if let Some(e) = &c.error {
        line += &format!(": {}", esc(e));
    }
    println!("{line}");
}
