//! `coroner inspect`: what a dump holds.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::Context;
use coroner_analyze::{escape_control, escape_short, Inspection, VcpuSummary};
use coroner_formats::{Machine, VcpuRegs, GPR_NAMES};

use super::output::{human_bytes, print_json, rfc3339};
use crate::cli::InspectArgs;
use crate::exit::ExitClass;

pub fn run(args: &InspectArgs) -> anyhow::Result<ExitClass> {
    let core = super::kernel::open(&args.dump.file)?;
    let report = Inspection::of(&core);
    if args.format.json {
        print_json(&report)?;
    } else {
        let text = render(&args.dump.file.display().to_string(), &report, args.ranges);
        std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("writing to stdout")?;
    }
    Ok(ExitClass::Ok)
}

fn render(name: &str, r: &Inspection, all_ranges: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "file        {} ({}, {} on disk)",
        name,
        r.format.name(),
        human_bytes(r.file_size)
    );
    let arch = match r.machine {
        Machine::X86_64 => "x86_64 (vCPU 0 in long mode)".to_string(),
        Machine::I386 => "i386 (vCPU 0 not in long mode)".to_string(),
        Machine::Other(m) => format!("e_machine {m}"),
    };
    let class = match r.class {
        coroner_formats::ElfClass::Elf64 => "ELF64",
        coroner_formats::ElfClass::Elf32 => "ELF32",
    };
    match &r.kdump {
        Some(k) => {
            let release = if k.header.release.is_empty() {
                String::new()
            } else {
                format!(", release {}", k.header.release)
            };
            let _ = writeln!(s, "guest       {arch}{release}");
            let _ = writeln!(s, "written by  {}", r.writer_hint);
            let _ = writeln!(
                s,
                "kdump       {} layout, header version {}, {} pages, dump level {}{}",
                k.layout,
                k.header.header_version,
                k.compression,
                k.header.dump_level,
                if k.incomplete { ", INCOMPLETE" } else { "" }
            );
            let _ = writeln!(
                s,
                "            {} pages present, {} pages of RAM left out by the dump level{}{}",
                k.pages,
                k.excluded_pages,
                if k.excluded_pages > 0 && k.excluded_are_zeros {
                    " (zero pages only: read as zeros)"
                } else if k.excluded_pages > 0 {
                    " (absent)"
                } else {
                    ""
                },
                if k.unwritten_pages > 0 {
                    format!(", {} never written", k.unwritten_pages)
                } else {
                    String::new()
                }
            );
        }
        None => {
            let _ = writeln!(s, "guest       {arch}, {class}");
            let _ = writeln!(s, "written by  {}", r.writer_hint);
        }
    }
    let highest = r.ranges.last().map_or(0, |x| x.end.saturating_sub(1));
    let _ = writeln!(
        s,
        "memory      {} in {} ranges, highest address {highest:#x}",
        human_bytes(r.memory_bytes),
        r.ranges.len()
    );
    if r.empty_loads > 0 {
        let _ = writeln!(
            s,
            "            {} PT_LOADs without bytes (paging dump)",
            r.empty_loads
        );
    }
    let shown = if all_ranges { r.ranges.len() } else { 4 };
    for x in r.ranges.iter().take(shown) {
        let _ = writeln!(
            s,
            "            {:#014x}-{:#014x} {:>10}",
            x.start,
            x.end,
            human_bytes(x.size)
        );
    }
    if r.ranges.len() > shown {
        let _ = writeln!(
            s,
            "            ... {} more (--ranges)",
            r.ranges.len() - shown
        );
    }
    match &r.vmcoreinfo {
        Some(v) => {
            let release = v.osrelease.as_deref().unwrap_or("no OSRELEASE line");
            let _ = writeln!(
                s,
                "vmcoreinfo  note in the dump at {:#x}, {} bytes, OSRELEASE={}",
                v.offset,
                v.size,
                escape_control(release)
            );
        }
        None => {
            let _ = writeln!(
                s,
                "vmcoreinfo  no note in the dump (qemu had no -device vmcoreinfo, or the guest did not register it)"
            );
        }
    }
    match &r.metadata {
        Some(m) => {
            let state = if m.complete { "complete" } else { "INCOMPLETE" };
            let _ = writeln!(
                s,
                "container   {state}, {} by {}, content {} {}",
                rfc3339(m.created_unix),
                escape_short(&m.tool),
                human_bytes(m.content_size),
                m.recorded_digest()
                    .map_or_else(|| "no digest".into(), |d| escape_short(&d.to_string()))
            );
            if let Some(o) = &m.origin {
                let _ = writeln!(s, "origin      {}", escape_short(o));
            }
        }
        None if r.format == coroner_formats::Format::Container => {
            let _ = writeln!(
                s,
                "container   no coroner metadata (a plain seekable zstd stream)"
            );
        }
        None => {}
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning     {}", escape_control(w));
    }
    for v in &r.vcpus {
        s.push('\n');
        render_vcpu(&mut s, v);
    }
    s
}

fn render_vcpu(s: &mut String, v: &VcpuSummary) {
    match &v.mode {
        Some(m) => {
            let _ = writeln!(
                s,
                "vCPU {}      {}, paging {}, CPL {}",
                v.index,
                m.mode.name(),
                m.paging.name(),
                m.cpl
            );
        }
        None => {
            let _ = writeln!(s, "vCPU {}      (no QEMU note: mode unknown)", v.index);
        }
    }
    if let Some(q) = &v.qemu {
        let _ = writeln!(s, "  RIP={:016x} RFL={:08x}", q.rip, q.rflags);
        for row in 0..4 {
            let line: Vec<String> = (0..4)
                .map(|c| {
                    let i = row * 4 + c;
                    format!("{:<3}={:016x}", GPR_NAMES[i].to_uppercase(), q.gpr[i])
                })
                .collect();
            let _ = writeln!(s, "  {}", line.join(" "));
        }
        for (name, seg) in [
            ("ES", &q.es),
            ("CS", &q.cs),
            ("SS", &q.ss),
            ("DS", &q.ds),
            ("FS", &q.fs),
            ("GS", &q.gs),
            ("LDT", &q.ldt),
            ("TR", &q.tr),
        ] {
            let _ = writeln!(
                s,
                "  {name:<3}={:04x} {:016x} {:08x} {:08x}",
                seg.selector, seg.base, seg.limit, seg.flags
            );
        }
        let _ = writeln!(s, "  GDT=     {:016x} {:08x}", q.gdt.base, q.gdt.limit);
        let _ = writeln!(s, "  IDT=     {:016x} {:08x}", q.idt.base, q.idt.limit);
        let _ = writeln!(
            s,
            "  CR0={:08x} CR2={:016x} CR3={:016x} CR4={:08x}",
            q.cr[0], q.cr[2], q.cr[3], q.cr[4]
        );
        if let Some(k) = q.kernel_gs_base {
            let _ = writeln!(s, "  KERNEL_GS_BASE={k:016x}");
        }
    } else if let Some(p) = &v.prstatus {
        let _ = writeln!(
            s,
            "  IP={:016x} SP={:016x} (from NT_PRSTATUS)",
            p.ip(),
            p.sp()
        );
    }
    if let Some(p) = &v.prstatus {
        if let VcpuRegs::X86_64(r) = &p.regs {
            let _ = writeln!(s, "  FS_BASE={:016x} GS_BASE={:016x}", r.fs_base, r.gs_base);
        }
    }
}
