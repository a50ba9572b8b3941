//! `coroner export`: the plain ELF back out of a container.

use coroner_formats::{export_container, export_elf};
use serde::Serialize;

use super::output::{check_overwrite, conversion_error, human_bytes, print_json};
use crate::cli::ExportArgs;
use crate::exit::{ClassifyExt, ExitClass};
use crate::progress::Bar;

#[derive(Serialize)]
struct ExportReport {
    output: String,
    size: u64,
    /// The digest computed while writing, of the kind the container records.
    digest: coroner_formats::ContentDigest,
    verified: bool,
}

pub fn run(args: &ExportArgs) -> anyhow::Result<ExitClass> {
    check_overwrite(&args.output, args.overwrite.force)?;
    let interrupt = crate::interrupt::install()
        .classify(ExitClass::Failure, || "installing signal handlers".into())?;
    let bar = Bar::new("export");
    let result = match coroner_objstore::object_url_of(&args.input) {
        Some(url) => {
            let reader = super::object_input::open_container(url)?;
            export_container(&reader, &args.output, &bar, &interrupt)
        }
        None => export_elf(&args.input, &args.output, &bar, &interrupt),
    };
    bar.finish();
    let done = result.map_err(|e| conversion_error(e, "export", &args.input, &args.output))?;
    let report = ExportReport {
        output: done.path.display().to_string(),
        size: done.size,
        digest: done.digest,
        verified: done.verified,
    };
    if args.format.json {
        print_json(&report)?;
    } else {
        println!(
            "{}: {} ELF core, {} ({})",
            report.output,
            human_bytes(report.size),
            report.digest,
            if report.verified {
                "matches the checksum recorded at capture"
            } else {
                "no checksum recorded to compare with"
            }
        );
    }
    Ok(ExitClass::Ok)
}
