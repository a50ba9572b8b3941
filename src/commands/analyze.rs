//! `coroner analyze`: renders `coroner_analyze::report` as text or JSON.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::Context;
use coroner_analyze::{escape_control, format_dmesg, FormatOptions};

use super::kernel;
use super::output::{print_json, write_evidence};
use crate::cli::AnalyzeArgs;
use crate::exit::ExitClass;

pub fn run(args: &AnalyzeArgs) -> anyhow::Result<ExitClass> {
    let core = kernel::open(&args.dump.file)?;
    let session = coroner_analyze::Session::new(
        &core,
        coroner_analyze::SessionOptions {
            ignore_vmcoreinfo: args.kernel.ignore_vmcoreinfo,
            hung_after_secs: args.hung_after,
        },
    );
    let report = session.report();
    if args.format.json {
        print_json(&report)?;
        return Ok(ExitClass::Ok);
    }
    let mut s = String::new();
    let _ = writeln!(s, "verdict     {}", escape_control(&report.verdict));
    if let Some(t) = &report.title {
        let _ = writeln!(s, "title       {}", escape_control(t));
    }
    if let Some(rel) = &report.release {
        let _ = writeln!(s, "kernel      {}", escape_control(rel));
    }
    if !report.events.is_empty() {
        let _ = writeln!(s, "qmp events  {}", report.events.join(", "));
    }
    for v in &report.vcpus {
        let _ = writeln!(
            s,
            "vCPU {:<6} RIP {:016x} {}{}",
            v.index,
            v.rip,
            escape_control(&v.symbol_text()),
            v.task
                .as_ref()
                .map(|t| format!("  (task {})", escape_control(t)))
                .unwrap_or_default()
        );
        if v.frames.len() > 1 {
            let _ = writeln!(
                s,
                "            <- {}",
                escape_control(&v.frames[1..].join(" <- "))
            );
        }
    }
    if let Some(p) = &report.panic_cpu {
        let _ = writeln!(s, "panic CPU   {} ({})", p.cpu, escape_control(&p.how));
    }
    if let Some(t) = &report.tasks {
        let states: Vec<String> = t
            .by_state
            .iter()
            .map(|(st, n)| format!("{n} {st}"))
            .collect();
        let _ = writeln!(s, "tasks       {} ({})", t.count, states.join(", "));
        if let Some(p) = &t.panicked {
            let _ = writeln!(
                s,
                "panicked in task {} {}",
                p.pid.unwrap_or(-1),
                escape_control(p.comm.as_deref().unwrap_or("?"))
            );
        }
        for d in &t.uninterruptible {
            let _ = writeln!(
                s,
                "  D {:>7} {} (last ran {} ago)",
                d.pid,
                escape_control(&d.comm),
                d.last_ran_ns_ago
                    .map(|n| format!("{:.1} s", n as f64 / 1e9))
                    .unwrap_or_else(|| "?".into())
            );
        }
    }
    if let Some(st) = &report.stuck {
        for l in &st.lockups {
            let _ = writeln!(
                s,
                "soft lockup vCPU {}: {} {} running {:.0} s in kernel mode (past {} s)",
                l.cpu,
                l.task.pid,
                escape_control(&l.task.comm),
                l.running_secs,
                st.lockup_after_secs
            );
        }
        if st.hung_count > 0 {
            let _ = writeln!(
                s,
                "hung tasks  {} in D past {} s ({})",
                st.hung_count,
                st.hung_after_secs,
                escape_control(&st.hung_after_how)
            );
        }
        for h in &st.hung {
            let _ = writeln!(
                s,
                "  {} {} D for {:.0} s in {}",
                h.task.pid,
                escape_control(&h.task.comm),
                h.blocked_secs,
                escape_control(h.in_function.as_deref().unwrap_or("?"))
            );
            for f in &h.frames {
                let _ = writeln!(s, "    {}", escape_control(f));
            }
        }
    }
    if let Some(m) = &report.machine_check {
        let _ = writeln!(s, "\nmachine check  {}", escape_control(&m.verdict));
        for e in m.rendezvous.iter().flat_map(|z| &z.explanation) {
            let _ = writeln!(s, "  {}", escape_control(e));
        }
        for rec in &m.records {
            let _ = writeln!(
                s,
                "  {}{}: {}",
                if rec.fatal { "FATAL " } else { "" },
                rec.raw.place(),
                escape_control(&rec.decoded.summary)
            );
        }
        let _ = writeln!(s, "  (coroner mce FILE decodes each record in full)");
    }
    if let Some(x) = &report.kvm_exit {
        let _ = writeln!(s, "\nKVM exit");
        for e in &x.explanation {
            let _ = writeln!(s, "  {}", escape_control(e));
        }
        let _ = writeln!(s, "  (coroner exit FILE decodes the report in full)");
    }
    write_evidence(
        &mut s,
        &report.evidence,
        report.problems.iter().chain(&report.log_diagnostics),
        14,
    );
    let log_trace = report.triage.as_ref().and_then(|t| t.call_traces.last());
    if let Some(tr) = log_trace {
        let _ = writeln!(s, "\nlast call trace");
        for f in &tr.frames {
            let _ = writeln!(s, "  {}", escape_control(f.trim()));
        }
    } else if !report.panic_backtrace.is_empty() {
        // The log no longer holds the panic's trace: the stack itself does.
        let _ = writeln!(s, "\nbacktrace of the CPU that panicked (ORC)");
        for f in &report.panic_backtrace {
            let _ = writeln!(s, "  {}", escape_control(f));
        }
    }
    let records = session
        .kernel_log()
        .map(|l| l.records.as_slice())
        .unwrap_or_default();
    let tail = &records[records.len().saturating_sub(args.tail)..];
    if !tail.is_empty() {
        let _ = writeln!(s, "\nend of the kernel log");
        let tail = format_dmesg(tail, &FormatOptions::default());
        s.push_str(&escape_control(&tail));
    }
    std::io::stdout()
        .lock()
        .write_all(s.as_bytes())
        .context("writing to stdout")?;
    Ok(ExitClass::Ok)
}
