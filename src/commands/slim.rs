//! `coroner slim`: the pages an analysis reads, and nothing else, in a new container.

use std::time::Instant;

use coroner_analyze::{
    exit_report, mce_report, report, ExitOptions, Hints, KernelMem, KernelView, MceOptions,
    ReportOptions, VirtAddr,
};
use coroner_formats::{write_slim, Core, Metadata, PhysAddr, WriteOptions, PAGE};
use serde::Serialize;

use super::kernel;
use super::output::{check_overwrite, conversion_error, human_bytes, print_json};
use crate::cli::SlimArgs;
use crate::exit::ExitClass;

/// Bytes kept around each vCPU's RIP and from its stack pointer.
const CODE_AROUND: u64 = 256;
const STACK_BYTES: u64 = 16 << 10;

#[derive(Serialize)]
struct Slimmed {
    output: String,
    source: String,
    source_pages: u64,
    pages: u64,
    output_size: u64,
    source_size: u64,
    sha256: String,
    seconds: f64,
}

/// Runs every analysis with page recording on.
fn analyze_all(core: &Core, ignore_vmcoreinfo: bool) {
    let _ = report(
        core,
        &ReportOptions {
            tail: usize::MAX,
            ignore_vmcoreinfo,
        },
    );
    let _ = mce_report(
        core,
        &MceOptions {
            ignore_vmcoreinfo,
            qemu_log: None,
        },
    );
    let _ = exit_report(
        Some(core),
        &ExitOptions {
            qemu_log: None,
            ignore_vmcoreinfo,
        },
    );
    // The code around each RIP and the top of each stack, as the vCPU pane shows them.
    let view = KernelView::build(
        core.mem(),
        &core.elf,
        &Hints::for_core(core, ignore_vmcoreinfo),
    )
    .ok();
    for v in &core.elf.vcpus {
        let Some(s) = &v.qemu else { continue };
        let paging = s.cr[0] & (1 << 31) != 0;
        let rip = s.cs.base.wrapping_add(s.rip);
        let mut buf = vec![0u8; (2 * CODE_AROUND) as usize];
        let start = rip.saturating_sub(CODE_AROUND);
        match (&view, paging) {
            (Some(view), true) => {
                let _ = view.read_virt(VirtAddr(start), &mut buf);
                let mut stack = vec![0u8; STACK_BYTES as usize];
                let _ = view.read_virt(VirtAddr(s.gpr[6]), &mut stack);
            }
            (_, false) => {
                let _ = core.mem().read_at(PhysAddr(start & 0xffff_ffff), &mut buf);
            }
            _ => {}
        }
    }
}

pub fn run(args: &SlimArgs) -> anyhow::Result<ExitClass> {
    check_overwrite(&args.output, args.force)?;
    let started = Instant::now();
    let core = kernel::open(&args.file)?;
    core.record_pages(true);
    analyze_all(&core, args.ignore_vmcoreinfo);
    core.record_pages(false);
    let pages = core.recorded_pages();
    let source_pages: u64 = core.mem().ranges().iter().map(|r| r.len() / PAGE).sum();

    let mut meta = Metadata::new(concat!("coroner ", env!("CARGO_PKG_VERSION")));
    meta.origin = Some(format!(
        "slim of {}: {} of {} pages, the ones the analyses read",
        args.file.display(),
        pages.len(),
        source_pages
    ));
    if let Some(src) = &core.metadata {
        meta.capture = src.capture.clone();
        meta.host = src.host.clone();
        meta.vmcoreinfo_candidates = src
            .vmcoreinfo_candidates
            .iter()
            .copied()
            .filter(|a| pages.contains(&(a / PAGE)))
            .collect();
    }
    let source_sha256 = core
        .metadata
        .as_ref()
        .map(|m| m.content_sha256.clone())
        .filter(|s| !s.is_empty());
    meta.extra.insert(
        "slim".into(),
        serde_json::json!({
            "source": args.file.display().to_string(),
            "source_sha256": source_sha256,
            "source_size": core.file_size,
            "source_pages": source_pages,
            "pages": pages.len(),
        }),
    );
    let done = write_slim(&core, &pages, &args.output, WriteOptions::default(), meta)
        .map_err(|e| conversion_error(e, "slim", &args.file, &args.output))?;
    let out = Slimmed {
        output: done.path.display().to_string(),
        source: args.file.display().to_string(),
        source_pages,
        pages: pages.len() as u64,
        output_size: done.compressed_size,
        source_size: core.file_size,
        sha256: done.sha256,
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        print_json(&out)?;
    } else {
        println!(
            "slimmed {} -> {}: {} of {} pages, {} -> {} in {:.2} s",
            out.source,
            out.output,
            out.pages,
            out.source_pages,
            human_bytes(out.source_size),
            human_bytes(out.output_size),
            out.seconds
        );
    }
    Ok(ExitClass::Ok)
}
