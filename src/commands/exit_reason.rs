//! `coroner exit`: renders `coroner_analyze::exit_report` as text or JSON.

use std::fmt::Write as _;

use coroner_analyze::{escape_control, exit_from_log, hex_bytes, ExitReport};

use super::kernel;
use super::output::{print_as, write_evidence};
use super::qemu_log;
use crate::cli::ExitArgs;
use crate::exit::ExitClass;

pub fn run(args: &ExitArgs) -> anyhow::Result<ExitClass> {
    let core = args.file.as_deref().map(kernel::open).transpose()?;
    let qemu_log = args
        .qemu_log
        .as_deref()
        .map(qemu_log::read_tail)
        .transpose()?;
    let report = match &core {
        Some(core) => kernel::session(core, args.kernel.ignore_vmcoreinfo).exit(qemu_log.as_ref()),
        None => match &qemu_log {
            Some(log) => exit_from_log(log),
            None => anyhow::bail!("give a dump, a qemu log (--qemu-log), or both"),
        },
    };
    print_as(args.format.json, &report, render)?;
    // No report and no registers: nothing in the input says why KVM stopped.
    Ok(if report.report.is_none() && report.instruction.is_none() {
        ExitClass::NotFound
    } else {
        ExitClass::Ok
    })
}

fn render(r: &ExitReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "verdict      {}", escape_control(&r.verdict));
    if let Some(rep) = &r.report {
        let _ = writeln!(
            s,
            "\nqemu report  {}, lines {}-{} of {}{}",
            rep.kind,
            rep.first_line,
            rep.last_line,
            escape_control(r.log_source.as_deref().unwrap_or("the log")),
            if rep.truncated { " (truncated)" } else { "" }
        );
        if r.reports_found > 1 {
            let _ = writeln!(
                s,
                "             ({} reports in the log; the last is analyzed)",
                r.reports_found
            );
        }
    }
    if let Some(sub) = &r.suberror {
        let _ = writeln!(
            s,
            "sub-error    {} {}: {}",
            sub.number, sub.name, sub.meaning
        );
    }
    if let Some(d) = &r.data {
        let _ = writeln!(s, "extra data   {}", escape_control(&d.layout));
        for f in &d.fields {
            let _ = writeln!(
                s,
                "  [{}] {:#018x} {}: {}",
                f.index,
                f.value,
                f.name,
                escape_control(&f.meaning)
            );
        }
    }
    if let Some(f) = &r.entry_failure {
        let _ = writeln!(
            s,
            "entry failed {:#x} ({}): {}",
            f.raw,
            f.vendor,
            escape_control(&f.description)
        );
    }
    if let Some(h) = &r.host_vendor {
        let _ = writeln!(s, "host CPU     {}", escape_control(h));
    }
    if let Some(m) = &r.mode {
        let _ = writeln!(
            s,
            "\nmode         {}, paging {}, CPL {} ({}-bit code)",
            m.description(),
            m.paging,
            m.cpl,
            m.bitness
        );
    }
    if let Some(v) = r.vcpu {
        let _ = writeln!(s, "vCPU         {v}");
    }
    if let Some(src) = &r.registers_source {
        let _ = writeln!(s, "registers    {}", escape_control(src));
    }
    if let Some(rip) = r.rip {
        let _ = writeln!(
            s,
            "RIP          {rip:#x}, linear {}, physical {}{}{}",
            r.linear_rip
                .map(|l| format!("{l:#x}"))
                .unwrap_or_else(|| "?".into()),
            r.rip_gpa
                .map(|l| format!("{l:#x}"))
                .unwrap_or_else(|| "?".into()),
            r.rip_owner
                .as_ref()
                .map(|o| format!(": {}", escape_control(&o.description)))
                .unwrap_or_default(),
            r.symbol
                .as_ref()
                .map(|x| format!(" [{}]", escape_control(x)))
                .unwrap_or_default()
        );
    }
    if let Some(i) = &r.instruction {
        let _ = writeln!(
            s,
            "instruction  {}   ({})",
            i.disassembly.text,
            hex_bytes(&i.disassembly.bytes)
        );
        let _ = writeln!(s, "  bytes from {}", i.bytes_source);
        for c in &i.cross_checks {
            let _ = writeln!(s, "  {c}");
        }
        let _ = writeln!(
            s,
            "emulator     {}: {} — {}",
            match i.emulator.emulated {
                Some(true) => "emulated",
                Some(false) => "NOT emulated",
                None => "unknown",
            },
            i.emulator.class,
            i.emulator.why
        );
    }
    for o in &r.operands {
        let _ = writeln!(
            s,
            "operand      {} {} bytes via {}: linear {}, physical {} ({}){}",
            o.operand.access,
            o.operand.size,
            o.operand.segment,
            o.operand
                .linear
                .map(|l| format!("{l:#x}"))
                .unwrap_or_else(|| "?".into()),
            o.gpa
                .map(|l| format!("{l:#x}"))
                .unwrap_or_else(|| "?".into()),
            escape_control(&o.gpa_how),
            o.owner
                .as_ref()
                .map(|w| format!(": {}", escape_control(&w.description)))
                .unwrap_or_default()
        );
    }
    if let Some(i) = &r.instruction {
        if i.listing.len() > 1 {
            let _ = writeln!(s, "\ncode at RIP");
            for d in &i.listing {
                let _ = writeln!(
                    s,
                    "  {:#010x}  {:<24} {}",
                    d.ip,
                    hex_bytes(&d.bytes),
                    d.text
                );
            }
        }
    }
    if !r.explanation.is_empty() {
        let _ = writeln!(s, "\nexplanation");
        for e in &r.explanation {
            let _ = writeln!(s, "  {}", escape_control(e));
        }
    }
    if !r.known_causes.is_empty() {
        let _ = writeln!(s, "\nknown causes of this pattern (check which applies)");
        for c in &r.known_causes {
            let _ = writeln!(s, "  - {}", escape_control(c));
        }
    }
    write_evidence(&mut s, &r.evidence, &r.problems, 12);
    s
}
