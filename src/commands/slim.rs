//! `coroner slim`: the pages an analysis reads, and nothing else, in a new container.

use std::time::Instant;

use coroner_analyze::backtrace;
use coroner_analyze::{KernelMem, VirtAddr};
use coroner_formats::{write_slim, Core, Metadata, PhysAddr, WriteOptions, PAGE};
use serde::Serialize;

use super::kernel;
use super::output::{check_overwrite, conversion_error, human_bytes, print_json};
use crate::cli::SlimArgs;
use crate::exit::{ClassifyExt, ExitClass};

/// Bytes kept around each vCPU's RIP and from its stack pointer.
const CODE_AROUND: u64 = 256;
const STACK_BYTES: u64 = 16 << 10;

/// What `slim` wrote.
#[derive(Serialize)]
pub struct Slimmed {
    pub output: String,
    pub source: String,
    pub source_pages: u64,
    pub pages: u64,
    pub output_size: u64,
    pub source_size: u64,
    pub content_frames_blake3: String,
    pub seconds: f64,
}

/// Runs every analysis in a session of its own, opened after page recording started (so
/// every read it makes is recorded).
fn analyze_all(core: &Core, ignore_vmcoreinfo: bool) {
    let session = kernel::session(core, ignore_vmcoreinfo);
    // The report covers the kernel view, kallsyms, the whole log, the MCE analysis (the
    // same reads `coroner mce` makes) and, for a KVM error, the exit analysis.
    let _ = session.report();
    // `coroner exit` reads the code at RIP of any capture, KVM report or not.
    let _ = session.exit(None);
    // `coroner modules` and module names: BTF, the module list and their symbols.
    let _ = session.modules();
    // Each vCPU as the TUI shows it: code before and at RIP, the top of the stack; and
    // its backtrace (the ORC tables, the stacks it walks).
    for i in 0..core.elf.vcpus.len() {
        let _ = session.vcpu(i);
        let _ = backtrace::vcpu_backtrace(&session, i);
    }
    // `coroner ps` and `coroner bt --all`: the task lists and every task's stack.
    if let Ok(list) = session.tasks() {
        for t in &list.tasks {
            let _ = backtrace::task_backtrace(&session, t);
        }
    }
    // More around each RIP and of each stack than the panes show, for a reader who
    // looks further.
    let view = session.view().ok();
    for v in &core.elf.vcpus {
        let Some(s) = &v.qemu else { continue };
        let paging = coroner_analyze::x86::paging_on(s.cr[0]);
        let rip = s.cs.base.wrapping_add(s.rip);
        let mut buf = vec![0u8; (2 * CODE_AROUND) as usize];
        let start = rip.saturating_sub(CODE_AROUND);
        match (view, paging) {
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
    check_overwrite(&args.output, args.overwrite.force)?;
    let core = kernel::open(&args.dump.file)?;
    let out = make_slim(
        &core,
        &args.dump.file,
        &args.output,
        args.kernel.ignore_vmcoreinfo,
    )?;
    if args.format.json {
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

/// Checks every frame of a container source against its recorded sha256 before a slim
/// capture claims to come from it: the analyses read only some frames, and a corrupt
/// one they skipped would otherwise go unnoticed.
fn verify_source(core: &Core, file: &std::path::Path) -> anyhow::Result<()> {
    if core.format != coroner_formats::Format::Container {
        return Ok(());
    }
    let reader = super::object_input::container(file)?;
    reader
        .verify(
            &coroner_formats::NoProgress,
            &std::sync::atomic::AtomicBool::new(false),
        )
        .classify(ExitClass::Input, || {
            format!(
                "{} is damaged, so no slim capture of it was written (the analyses may not have read the damaged part)",
                file.display()
            )
        })?;
    Ok(())
}

/// Analyzes `core` (opened from `file`) with page recording on and writes the slim
/// capture to `output`.
pub fn make_slim(
    core: &Core,
    file: &std::path::Path,
    output: &std::path::Path,
    ignore_vmcoreinfo: bool,
) -> anyhow::Result<Slimmed> {
    let started = Instant::now();
    verify_source(core, file)?;
    core.record_pages(true);
    analyze_all(core, ignore_vmcoreinfo);
    core.record_pages(false);
    let pages = core.recorded_pages();
    let source_pages: u64 = core.mem().ranges().iter().map(|r| r.len() / PAGE).sum();

    let mut meta = Metadata::new(concat!("coroner ", env!("CARGO_PKG_VERSION")));
    meta.origin = Some(format!(
        "slim of {}: {} of {} pages, the ones the analyses read",
        file.display(),
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
    // The source's recorded digest: format 2's frame manifest, or format 1's sha256.
    let recorded = |field: fn(&coroner_formats::Metadata) -> &String| {
        core.metadata
            .as_ref()
            .map(|m| field(m).clone())
            .filter(|s| !s.is_empty())
    };
    let source_sha256 = recorded(|m| &m.content_sha256);
    let source_frames_blake3 = recorded(|m| &m.content_frames_blake3);
    meta.extra.insert(
        "slim".into(),
        serde_json::json!({
            "source": file.display().to_string(),
            "source_sha256": source_sha256,
            "source_frames_blake3": source_frames_blake3,
            "source_size": core.file_size,
            "source_pages": source_pages,
            "pages": pages.len(),
        }),
    );
    let done = write_slim(core, &pages, output, WriteOptions::default(), meta)
        .map_err(|e| conversion_error(e, "slim", file, output))?;
    Ok(Slimmed {
        output: done.path.display().to_string(),
        source: file.display().to_string(),
        source_pages,
        pages: pages.len() as u64,
        output_size: done.compressed_size,
        source_size: core.file_size,
        content_frames_blake3: done.frames_blake3,
        seconds: started.elapsed().as_secs_f64(),
    })
}
