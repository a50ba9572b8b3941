//! `coroner dmesg`: the guest's kernel log from the dump alone.

use std::io::Write;

use anyhow::Context;
use coroner_analyze::{escape_control, format_dmesg, FormatOptions};
use serde::Serialize;

use super::kernel;
use super::output::print_json;
use crate::cli::DmesgArgs;
use crate::exit::ExitClass;

#[derive(Serialize)]
struct DmesgJson<'a> {
    release: Option<&'a str>,
    kind: coroner_analyze::LogKind,
    located: &'a str,
    diagnostics: &'a [String],
    records: Vec<&'a coroner_analyze::LogRecord>,
}

pub fn run(args: &DmesgArgs) -> anyhow::Result<ExitClass> {
    let core = kernel::open(&args.dump.file)?;
    let session = kernel::session(&core, args.kernel.ignore_vmcoreinfo);
    let view = kernel::view(&session)?;
    let log = session.kernel_log().map_err(|e| {
        kernel::missing(
            e,
            format!("cannot read the kernel log of {}", args.dump.file.display()),
        )
    })?;
    let opts = FormatOptions {
        levels: args.level,
        since_boot_secs: args.since_boot,
        show_level: args.show_level,
        show_caller: args.caller,
    };
    if args.format.json {
        let records = log.records.iter().filter(|r| opts.keeps(r)).collect();
        return print_json(&DmesgJson {
            release: view.release.as_deref(),
            kind: log.kind,
            located: &log.located,
            diagnostics: &log.diagnostics,
            records,
        })
        .map(|()| ExitClass::Ok);
    }
    let text = format_dmesg(&log.records, &opts);
    let mut out = std::io::stdout().lock();
    out.write_all(escape_control(&text).as_bytes())
        .context("writing to stdout")?;
    for d in &log.diagnostics {
        eprintln!("coroner: warning: {}", escape_control(d));
    }
    Ok(ExitClass::Ok)
}
