//! `coroner report`: a bug-report bundle: a Markdown summary fit to paste into an issue
//! tracker, the JSON of every analysis, and the slim capture.

use std::fmt::Write as _;
use std::path::Path;

use coroner_analyze::{escape_control, format_dmesg, hex_bytes, FormatOptions, Report, Session};
use serde::Serialize;

use super::kernel;
use super::output::print_json;
use super::slim::make_slim;
use crate::cli::ReportArgs;
use crate::exit::{ClassifyExt, ExitClass};

#[derive(Serialize)]
struct Bundle {
    dir: String,
    files: Vec<String>,
    verdict: String,
    redacted: bool,
}

/// Guest text for a Markdown code block: control characters escaped, fences broken.
fn block(s: &str) -> String {
    escape_control(s).replace("```", "`\u{200b}``")
}

/// Backtrace frames as a code block.
fn frames_block(s: &mut String, frames: &[String]) {
    let _ = writeln!(s, "```");
    for f in frames {
        let _ = writeln!(s, "{}", block(f));
    }
    let _ = writeln!(s, "```");
}

/// Guest text inline: escaped, no line breaks, no table pipes.
fn inline(s: &str) -> String {
    escape_control(s).replace('\n', " ").replace('|', "\\|")
}

fn markdown(session: &Session<'_>, file: &Path, r: &Report, tail: usize) -> String {
    let core = session.core();
    let mut s = String::new();
    let _ = writeln!(s, "# coroner report: {}\n", inline(&r.verdict));
    let _ = writeln!(s, "| | |\n|---|---|");
    let row = |s: &mut String, k: &str, v: String| {
        let _ = writeln!(s, "| {k} | {} |", inline(&v));
    };
    if let Some(t) = &r.title {
        row(&mut s, "crash title", t.clone());
    }
    if let Some(st) = &r.run_state {
        row(&mut s, "run state", st.clone());
    }
    if let Some(rel) = &r.release {
        row(&mut s, "guest kernel", rel.clone());
    }
    if let Some(k) = r.kaslr_offset {
        row(&mut s, "KASLR offset", format!("{k:#x}"));
    }
    row(&mut s, "vCPUs", core.elf.vcpus.len().to_string());
    if let Some(c) = session.capture() {
        row(&mut s, "qemu", c.qemu_version.to_string());
        if let Some(h) = &c.host_cpu_vendor {
            row(&mut s, "host CPU", h.clone());
        }
    }
    row(
        &mut s,
        "capture",
        format!(
            "{} ({})",
            file.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            core.metadata
                .as_ref()
                .map(|m| match m.recorded_digest() {
                    Some(d) => d.to_string(),
                    None => "no digest recorded".into(),
                })
                .unwrap_or_else(|| "plain ELF".into())
        ),
    );
    if let Some(x) = &r.kvm_exit {
        let _ = writeln!(s, "\n## KVM exit\n\n{}\n", inline(&x.verdict));
        if let Some(i) = &x.instruction {
            let _ = writeln!(
                s,
                "- instruction: `{}` ({}), bytes from {}",
                inline(&i.disassembly.text),
                hex_bytes(&i.disassembly.bytes),
                i.bytes_source
            );
            let _ = writeln!(
                s,
                "- KVM's emulator: {} — {}",
                i.emulator.class,
                inline(&i.emulator.why)
            );
        }
        for o in &x.operands {
            let _ = writeln!(
                s,
                "- operand: {} {} bytes at GPA {}: {}",
                o.operand.access,
                o.operand.size,
                o.gpa
                    .map(|g| format!("{g:#x}"))
                    .unwrap_or_else(|| "?".into()),
                inline(
                    o.owner
                        .as_ref()
                        .map(|w| w.description.as_str())
                        .unwrap_or("owner unknown")
                )
            );
        }
        for e in &x.explanation {
            let _ = writeln!(s, "- {}", inline(e));
        }
        for c in &x.known_causes {
            let _ = writeln!(s, "- known cause to check: {}", inline(c));
        }
    }
    if let Some(m) = r.machine_check.as_ref().filter(|m| !m.records.is_empty()) {
        let _ = writeln!(s, "\n## Machine check\n\n{}\n", inline(&m.verdict));
        for rec in &m.records {
            let _ = writeln!(
                s,
                "- {}{}: status {:#018x}, {}; {}",
                if rec.fatal { "**fatal** " } else { "" },
                rec.raw.place(),
                rec.raw.status,
                inline(&rec.decoded.summary),
                inline(&rec.origin)
            );
        }
    }
    let (vcpu, why) = r.focus_vcpu();
    if let Some(st) = core
        .elf
        .vcpus
        .iter()
        .find(|v| v.index == vcpu)
        .and_then(|v| v.qemu.as_ref())
    {
        let sym = r
            .vcpus
            .iter()
            .find(|v| v.index == vcpu)
            .map(|v| v.symbol_text())
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "\n## Registers (vCPU {vcpu})\n\nChosen as {}.\n\n```",
            inline(&why)
        );
        let _ = writeln!(s, "RIP={:016x} {}", st.rip, block(&sym));
        let _ = writeln!(s, "RSP={:016x} RFLAGS={:08x}", st.gpr[6], st.rflags);
        let _ = writeln!(
            s,
            "CS={:04x} base={:x} flags={:08x}",
            st.cs.selector, st.cs.base, st.cs.flags
        );
        let _ = writeln!(
            s,
            "CR0={:08x} CR2={:016x} CR3={:016x} CR4={:08x}",
            st.cr[0], st.cr[2], st.cr[3], st.cr[4]
        );
        let _ = writeln!(s, "```");
    }
    // The stacks, unwound from guest memory: the panicking CPU's, and what a guest with a
    // quiet log is stuck on.
    if !r.panic_backtrace.is_empty() {
        let _ = writeln!(
            s,
            "\n## Backtrace of the CPU that panicked (ORC, from guest memory)\n"
        );
        frames_block(&mut s, &r.panic_backtrace);
    }
    if let Some(st) = &r.stuck {
        for l in &st.lockups {
            let _ = writeln!(
                s,
                "\n## Soft lockup: vCPU {} ({} {}, {:.0} s in kernel mode)\n",
                l.cpu,
                l.task.pid,
                inline(&l.task.comm),
                l.running_secs
            );
            frames_block(&mut s, &l.frames);
        }
        if !st.hung.is_empty() {
            let _ = writeln!(
                s,
                "\n## Hung tasks ({} in D past {} s)\n",
                st.hung_count, st.hung_after_secs
            );
            for h in &st.hung {
                let _ = writeln!(
                    s,
                    "{} {}, D for {:.0} s:\n",
                    h.task.pid,
                    inline(&h.task.comm),
                    h.blocked_secs
                );
                frames_block(&mut s, &h.frames);
            }
        }
    }
    let records = session
        .kernel_log()
        .map(|l| l.records.as_slice())
        .unwrap_or_default();
    let log_tail = &records[records.len().saturating_sub(tail)..];
    if !log_tail.is_empty() {
        let _ = writeln!(
            s,
            "\n## Kernel log (last {} records)\n\n```",
            log_tail.len()
        );
        s.push_str(&block(&format_dmesg(log_tail, &FormatOptions::default())));
        let _ = writeln!(s, "```");
    }
    let _ = writeln!(s, "\n## How we know\n");
    for e in &r.evidence {
        let _ = writeln!(s, "- {}: {} — {}", e.fact, inline(&e.value), inline(&e.how));
    }
    for p in &r.problems {
        let _ = writeln!(s, "- note: {}", inline(p));
    }
    let _ = writeln!(
        s,
        "\n_Made by coroner {} from the capture alone (no debuginfo)._",
        env!("CARGO_PKG_VERSION")
    );
    s
}

pub fn run(args: &ReportArgs) -> anyhow::Result<ExitClass> {
    super::output::refuse_object_output(&args.output)?;
    let dir = &args.output;
    if dir.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} exists: the bundle goes into a new directory",
                dir.display()
            ),
        ))
        .classify(ExitClass::Output, || {
            format!("cannot create {}", dir.display())
        });
    }
    let core = kernel::open(&args.dump.file)?;
    let session = kernel::session(&core, false);
    let r = session.report();
    // Built under a temporary name (0700) and renamed into place only when complete: a
    // failure leaves no half-written bundle.
    let building = coroner_formats::TempDir::create(dir).classify(ExitClass::Output, || {
        format!("cannot create {}", dir.display())
    })?;
    let write = |name: &str, bytes: &[u8]| -> anyhow::Result<String> {
        use std::io::Write;
        let p = building.path().join(name);
        let mut f = coroner_formats::OutputFile::create(&p).classify(ExitClass::Output, || {
            format!("cannot write {}", dir.join(name).display())
        })?;
        f.file_mut()
            .write_all(bytes)
            .classify(ExitClass::Output, || {
                format!("cannot write {}", dir.join(name).display())
            })?;
        f.commit().classify(ExitClass::Output, || {
            format!("cannot write {}", dir.join(name).display())
        })?;
        Ok(dir.join(name).display().to_string())
    };
    let mut files = vec![write(
        "summary.md",
        markdown(&session, &args.dump.file, &r, args.tail).as_bytes(),
    )?];
    // The analyze report carries the MCE and exit analyses when there are any.
    let json = serde_json::to_vec_pretty(&r)
        .classify(ExitClass::Failure, || "serializing the report".into())?;
    files.push(write("report.json", &json)?);
    if !args.redact {
        let name = "capture.slim.core.zst";
        make_slim(&core, &args.dump.file, &building.path().join(name), false)?;
        files.push(dir.join(name).display().to_string());
    }
    building.commit().classify(ExitClass::Output, || {
        format!("cannot create {}", dir.display())
    })?;
    let bundle = Bundle {
        dir: dir.display().to_string(),
        files,
        verdict: r.verdict.clone(),
        redacted: args.redact,
    };
    if args.format.json {
        print_json(&bundle)?;
    } else {
        println!("bug-report bundle in {}:", bundle.dir);
        for f in &bundle.files {
            println!("  {f}");
        }
        println!("verdict: {}", escape_control(&bundle.verdict));
    }
    Ok(ExitClass::Ok)
}
