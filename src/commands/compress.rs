//! `coroner compress`: a qemu ELF dump, or a kdump-compressed one, into a `.core.zst`
//! container.

use std::time::Instant;

use coroner_formats::{compress_dump, compress_source, Metadata};
use serde::Serialize;

use super::output::{check_overwrite, conversion_error, human_bytes, print_json};
use crate::cli::CompressArgs;
use crate::exit::{ClassifyExt, ExitClass};
use crate::progress::Bar;

#[derive(Serialize)]
struct Compressed {
    output: String,
    input_size: u64,
    output_size: u64,
    ratio: f64,
    frames: u64,
    zero_frames: u64,
    content_frames_blake3: String,
    seconds: f64,
}

pub fn run(args: &CompressArgs) -> anyhow::Result<ExitClass> {
    check_overwrite(&args.output, args.overwrite.force)?;
    let mut opts = args.compression.write_options(crate::cli::COMPRESS_LEVEL);
    if let Some(f) = args.frame_size {
        opts.frame_size = f;
    }
    let interrupt = crate::interrupt::install()
        .classify(ExitClass::Failure, || "installing signal handlers".into())?;
    let mut meta = Metadata::new(concat!("coroner ", env!("CARGO_PKG_VERSION")));
    meta.origin = Some(format!("compress {}", args.input.display()));
    let bar = Bar::new("compress");
    let start = Instant::now();
    let result = match coroner_objstore::object_url_of(&args.input) {
        Some(url) => {
            let source = super::object_input::open_object(url)?;
            compress_source(
                &args.input,
                source,
                &args.output,
                opts,
                meta,
                &bar,
                &interrupt,
            )
        }
        None => compress_dump(&args.input, &args.output, opts, meta, &bar, &interrupt),
    };
    bar.finish();
    let done = result.map_err(|e| conversion_error(e, "compress", &args.input, &args.output))?;
    let seconds = start.elapsed().as_secs_f64();
    let report = Compressed {
        output: done.path.display().to_string(),
        input_size: done.content_size,
        output_size: done.compressed_size,
        ratio: done.content_size as f64 / done.compressed_size.max(1) as f64,
        frames: done.frames,
        zero_frames: done.zero_frames,
        content_frames_blake3: done.frames_blake3.clone(),
        seconds,
    };
    if args.format.json {
        print_json(&report)?;
    } else {
        println!(
            "{}: {} -> {} ({:.1}x) in {seconds:.1} s, {} frames ({} all-zero)",
            report.output,
            human_bytes(report.input_size),
            human_bytes(report.output_size),
            report.ratio,
            report.frames,
            report.zero_frames
        );
        println!(
            "content digest (frames-blake3): {}",
            report.content_frames_blake3
        );
        println!("next: coroner inspect {}", report.output);
    }
    Ok(ExitClass::Ok)
}
