//! `coroner analyze`: why the guest died, and how each fact is known.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::Context;
use coroner_analyze::{escape_control, format_dmesg, triage, Evidence, FormatOptions, Triage};
use serde::Serialize;

use super::kernel;
use super::output::print_json;
use crate::cli::AnalyzeArgs;
use crate::exit::ExitClass;

/// Start of the x86_64 module mapping area with KASLR.
const MODULES_START: u64 = 0xffff_ffff_c000_0000;

/// Where a vCPU was stopped.
#[derive(Serialize)]
struct VcpuAt {
    index: usize,
    rip: u64,
    symbol: Option<String>,
}

#[derive(Serialize)]
struct Report {
    verdict: String,
    run_state: Option<String>,
    release: Option<String>,
    kaslr_offset: Option<u64>,
    phys_base: Option<u64>,
    evidence: Vec<Evidence>,
    problems: Vec<String>,
    log_records: usize,
    log_located: Option<String>,
    log_diagnostics: Vec<String>,
    triage: Option<Triage>,
    vcpus: Vec<VcpuAt>,
    events: Vec<String>,
    #[serde(skip)]
    log_tail: String,
}

fn run_state(core: &coroner_formats::Core) -> Option<String> {
    let c = core.metadata.as_ref()?.capture.as_ref()?;
    c["run_state_before"].as_str().map(String::from)
}

fn build(core: &coroner_formats::Core, tail: usize, ignore_vmcoreinfo: bool) -> Report {
    let mut r = Report {
        verdict: String::new(),
        run_state: run_state(core),
        release: None,
        kaslr_offset: None,
        phys_base: None,
        evidence: Vec::new(),
        problems: Vec::new(),
        log_records: 0,
        log_located: None,
        log_diagnostics: Vec::new(),
        triage: None,
        vcpus: Vec::new(),
        events: core
            .metadata
            .as_ref()
            .and_then(|m| m.capture.as_ref())
            .and_then(|c| c["events"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e["event"].as_str().map(String::from))
            .collect(),
        log_tail: String::new(),
    };
    let view = match kernel::view(core, ignore_vmcoreinfo) {
        Ok(v) => v,
        Err(e) => {
            r.problems.push(format!("{e:#}"));
            r.verdict = verdict_without_log(&r, "no Linux kernel found");
            return r;
        }
    };
    r.release = view.release.clone();
    r.kaslr_offset = Some(view.kaslr_offset);
    r.phys_base = Some(view.phys_base);
    r.evidence = view.evidence.clone();
    r.problems = view.problems.clone();
    let kallsyms = match view.kallsyms() {
        Ok((k, how)) => {
            r.evidence.push(Evidence {
                fact: "kallsyms".into(),
                value: format!("{} symbols", k.len()),
                how,
            });
            Some(k)
        }
        Err(e) => {
            r.problems.push(format!("kallsyms: {e}"));
            None
        }
    };
    r.vcpus = core
        .elf
        .vcpus
        .iter()
        .filter_map(|v| {
            let rip = v.qemu.as_ref().map(|s| s.rip)?;
            let symbol = kallsyms
                .as_ref()
                .and_then(|k| k.symbolize(rip).map(|_| k.format_addr(rip)))
                .or_else(|| {
                    // Module symbols live in each module's own tables, not in kallsyms.
                    (rip >= MODULES_START).then(|| "(in a module)".to_string())
                });
            Some(VcpuAt {
                index: v.index,
                rip,
                symbol,
            })
        })
        .collect();
    match view.kernel_log() {
        Ok(log) => {
            r.log_records = log.records.len();
            r.log_located = Some(log.located.clone());
            r.evidence.push(Evidence {
                fact: "kernel log".into(),
                value: format!("{} records ({:?} ring)", log.records.len(), log.kind),
                how: log.located.clone(),
            });
            r.log_diagnostics = log.diagnostics.clone();
            let t = triage(&log.records);
            r.verdict = t.verdict.clone();
            let start = log.records.len().saturating_sub(tail);
            r.log_tail = format_dmesg(&log.records[start..], &FormatOptions::default());
            r.triage = Some(t);
        }
        Err(e) => {
            r.problems.push(format!("kernel log: {e}"));
            r.verdict = verdict_without_log(&r, "kernel log unreadable");
        }
    }
    if let Some(state) = &r.run_state {
        r.verdict = format!("{state}: {}", r.verdict);
    }
    r
}

fn verdict_without_log(r: &Report, why: &str) -> String {
    match &r.run_state {
        Some(_) => why.to_string(),
        None => format!("{why} (and no capture metadata with a run state)"),
    }
}

pub fn run(args: &AnalyzeArgs) -> anyhow::Result<ExitClass> {
    let core = kernel::open(&args.file)?;
    let report = build(&core, args.tail, args.ignore_vmcoreinfo);
    if args.json {
        print_json(&report)?;
        return Ok(ExitClass::Ok);
    }
    let mut s = String::new();
    let _ = writeln!(s, "verdict     {}", escape_control(&report.verdict));
    if let Some(rel) = &report.release {
        let _ = writeln!(s, "kernel      {}", escape_control(rel));
    }
    if !report.events.is_empty() {
        let _ = writeln!(s, "qmp events  {}", report.events.join(", "));
    }
    for v in &report.vcpus {
        let _ = writeln!(
            s,
            "vCPU {:<6} RIP {:016x} {}",
            v.index,
            v.rip,
            escape_control(v.symbol.as_deref().unwrap_or(""))
        );
    }
    let _ = writeln!(s, "\nhow we know");
    for e in &report.evidence {
        let _ = writeln!(
            s,
            "  {:<14} {} — {}",
            e.fact,
            escape_control(&e.value),
            escape_control(&e.how)
        );
    }
    for p in report.problems.iter().chain(&report.log_diagnostics) {
        let _ = writeln!(s, "  note: {}", escape_control(p));
    }
    if let Some(t) = &report.triage {
        if let Some(tr) = t.call_traces.last() {
            let _ = writeln!(s, "\nlast call trace");
            for f in &tr.frames {
                let _ = writeln!(s, "  {}", escape_control(f.trim()));
            }
        }
    }
    if !report.log_tail.is_empty() {
        let _ = writeln!(s, "\nend of the kernel log");
        s.push_str(&escape_control(&report.log_tail));
    }
    std::io::stdout()
        .lock()
        .write_all(s.as_bytes())
        .context("writing to stdout")?;
    Ok(ExitClass::Ok)
}
