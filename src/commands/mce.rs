//! `coroner mce`: renders `coroner_analyze::mce_report` as text or JSON.

use std::fmt::Write as _;

use coroner_analyze::{escape_control, MceRecord, MceReport, RecordSource};

use super::kernel;
use super::output::{print_as, write_evidence};
use super::qemu_log;
use crate::cli::MceArgs;
use crate::exit::ExitClass;

pub fn run(args: &MceArgs) -> anyhow::Result<ExitClass> {
    let core = kernel::open(&args.dump.file)?;
    let qemu_log = args
        .qemu_log
        .as_deref()
        .map(qemu_log::read_tail)
        .transpose()?;
    let report = kernel::session(&core, args.kernel.ignore_vmcoreinfo).mce(qemu_log.as_ref());
    print_as(args.format.json, &report, render)?;
    // Nothing read at all (no kernel, no host side): the dump does not hold the answer.
    let nothing = report.records.is_empty()
        && report.kernel_lines.is_empty()
        && report.host.events.is_empty()
        && report.host.lines.is_empty()
        && !report.problems.is_empty();
    Ok(if nothing {
        ExitClass::NotFound
    } else {
        ExitClass::Ok
    })
}

fn hex_opt(v: Option<u64>) -> String {
    v.map(|v| format!("{v:#x}")).unwrap_or_else(|| "-".into())
}

fn render(r: &MceReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "verdict  {}", escape_control(&r.verdict));
    if let Some(z) = &r.rendezvous {
        let _ = writeln!(s, "\nrendezvous timeout");
        for e in &z.explanation {
            let _ = writeln!(s, "  {}", escape_control(e));
        }
    }
    for (i, rec) in r.records.iter().enumerate() {
        render_record(&mut s, i, r.records.len(), rec);
    }
    if !r.kernel_lines.is_empty() {
        let _ = writeln!(s, "\nkernel lines");
        for l in &r.kernel_lines {
            let _ = writeln!(
                s,
                "  [{:5}.{:06}] {}",
                l.ts_nsec / 1_000_000_000,
                l.ts_nsec % 1_000_000_000 / 1000,
                escape_control(&l.text)
            );
        }
    }
    if !r.memory_failures.is_empty() {
        let _ = writeln!(s, "\npages the kernel's memory-failure handling acted on");
        for m in &r.memory_failures {
            let _ = writeln!(
                s,
                "  {:#x}: {} (kernel: {})",
                m.page.pfn,
                escape_control(&m.page.owner),
                escape_control(&m.line.text)
            );
        }
    }
    let _ = writeln!(s, "\nhost (qemu)");
    if !r.host.events_recorded {
        let _ = writeln!(
            s,
            "  events: not recorded (capture --wait-frozen records MEMORY_FAILURE as it happens)"
        );
    } else if r.host.events.is_empty() {
        let _ = writeln!(s, "  events: no MEMORY_FAILURE");
    }
    for (i, e) in r.host.events.iter().enumerate() {
        let tied = r
            .records
            .iter()
            .position(|rec| rec.host_event == Some(i))
            .map(|n| format!(" -> record {}", n + 1))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  MEMORY_FAILURE {} recipient={} action={} action-required={}{}{tied}",
            e.time_us
                .map(coroner_analyze::format_rfc3339_micros)
                .unwrap_or_else(|| "?".into()),
            escape_control(&e.recipient),
            escape_control(&e.action),
            e.action_required,
            if e.recursive { " recursive" } else { "" },
        );
    }
    match &r.host.log_source {
        Some(src) => {
            let _ = writeln!(
                s,
                "  qemu log: {} ({} machine-check line(s))",
                escape_control(src),
                r.host.lines.len()
            );
            for l in &r.host.lines {
                let _ = writeln!(s, "    {}", escape_control(&l.text));
            }
        }
        None => {
            let _ = writeln!(s, "  qemu log: none (give it with --qemu-log)");
        }
    }
    write_evidence(&mut s, &r.evidence, &r.problems, 18);
    s
}

fn render_record(s: &mut String, i: usize, n: usize, rec: &MceRecord) {
    let (raw, d) = (&rec.raw, &rec.decoded);
    let sources: Vec<String> = rec
        .sources
        .iter()
        .map(|src| match src {
            RecordSource::KernelLog(p) => format!("kernel log seq {}", p.seq),
            RecordSource::Memory(m) => m.location.clone(),
        })
        .collect();
    let _ = writeln!(
        s,
        "\nrecord {} of {n}{}  [{}]",
        i + 1,
        if rec.fatal { "  FATAL" } else { "" },
        escape_control(&sources.join(", "))
    );
    let mut who = Vec::new();
    if let Some(c) = raw.cpu {
        who.push(format!("CPU {c}"));
    }
    if let Some(b) = raw.bank {
        who.push(format!("bank {b}"));
    }
    if let Some(k) = &d.bank_kind {
        who.push(format!("({k})"));
    }
    if let Some(v) = raw.socket {
        who.push(format!("socket {v}"));
    }
    if let Some(v) = raw.apic {
        who.push(format!("APIC {v:#x}"));
    }
    if let Some(v) = d.vendor {
        let mut cpu = v.name().to_string();
        if let (Some(f), Some(m)) = (d.family, d.model) {
            let _ = write!(cpu, " family {f:#x} model {m:#x}");
        }
        who.push(cpu);
    }
    if let Some(v) = raw.microcode {
        who.push(format!("microcode {v:#x}"));
    }
    let _ = writeln!(s, "  {}", who.join("  "));
    let _ = writeln!(s, "  summary   {}", escape_control(&d.summary));
    if let Some(m) = raw.mcgstatus {
        let _ = writeln!(s, "  MCG       {m:#x} {}", d.mcg_status.join(" "));
    }
    let _ = writeln!(s, "  STATUS    {:#018x} {}", raw.status, d.status.join(" "));
    let _ = writeln!(
        s,
        "  MCA       {:#06x} {}; MSCOD {:#06x}",
        d.error.mcacod, d.error.text, d.error.mscod
    );
    let mut extra = Vec::new();
    if let Some(k) = d.uc_kind {
        extra.push(k.to_string());
    }
    if let Some(c) = d.corrected_count {
        extra.push(format!("corrected count {c}"));
    }
    if let Some(t) = d.threshold {
        extra.push(format!("threshold {t}"));
    }
    if !extra.is_empty() {
        let _ = writeln!(s, "            {}", extra.join(", "));
    }
    let graded = raw
        .severity
        .map(|g| format!(" (kernel's stored grade: {})", severity_name(g)))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "  severity  {}: {}{graded}",
        d.severity.level, d.severity.message
    );
    if raw.addr.is_some() || raw.misc.is_some() {
        let gran = d
            .address_granularity
            .as_ref()
            .map(|g| format!(" ({} address, lsb {})", g.mode, g.lsb))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  ADDR      {}{gran}   MISC {}",
            hex_opt(raw.addr),
            hex_opt(raw.misc)
        );
    }
    if let Some(p) = &rec.page {
        let _ = writeln!(s, "  page      {:#x}: {}", p.pfn, escape_control(&p.owner));
    }
    if let Some(m) = &rec.memory_failure {
        let _ = writeln!(s, "  kernel    {}", escape_control(m));
    }
    if let Some(ip) = raw.ip.filter(|&ip| ip != 0) {
        let _ = writeln!(
            s,
            "  RIP       {}:{ip:#x} {}{}",
            raw.cs
                .map(|c| format!("{c:02x}"))
                .unwrap_or_else(|| "?".into()),
            escape_control(raw.ip_symbol.as_deref().unwrap_or("")),
            if raw.ip_inexact { " (inexact)" } else { "" }
        );
    }
    if raw.tsc.is_some() || raw.time.is_some() {
        let _ = writeln!(
            s,
            "  TSC       {}   TIME {}",
            hex_opt(raw.tsc),
            raw.time
                .map(coroner_analyze::format_rfc3339_seconds)
                .unwrap_or_else(|| "-".into())
        );
    }
    let _ = writeln!(s, "  origin    {}", escape_control(&rec.origin));
}

fn severity_name(g: u8) -> &'static str {
    match g {
        0 => "no",
        1 => "deferred",
        2 => "keep",
        3 => "some",
        4 => "ao",
        5 => "uc",
        6 => "ar",
        7 => "panic",
        _ => "unknown",
    }
}
