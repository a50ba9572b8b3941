//! Overview: the verdict, guest and capture facts, and how each fact was obtained.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::text::TextPane;
use crate::model::Model;
use crate::sanitize::sanitize;
use coroner_analyze::escape_short;

fn fact(name: &str, value: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{name:<14}"), Style::default().fg(Color::Cyan)),
        Span::raw(sanitize(&value)),
    ])
}

fn heading(text: &str) -> Line<'static> {
    Line::styled(
        text.to_string(),
        Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
    )
}

/// The Overview pane.
/// Built from the model's report and metadata.
pub fn pane(model: &Model<'_>) -> TextPane {
    let r = &model.report;
    let mut l = vec![Line::from(vec![
        Span::styled("verdict       ", Style::default().fg(Color::Cyan)),
        Span::styled(
            sanitize(&r.verdict),
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
    ])];
    if let Some(t) = &r.title {
        l.push(Line::from(vec![
            Span::styled("crash title   ", Style::default().fg(Color::Cyan)),
            Span::raw(sanitize(t)),
        ]));
    }
    l.push(Line::raw(""));
    l.push(heading("guest"));
    if let Some(rel) = &r.release {
        l.push(fact("kernel", rel.clone()));
    }
    l.push(fact("vCPUs", model.core().elf.vcpus.len().to_string()));
    let ram: u64 = model.mem().ranges().iter().map(|x| x.len()).sum();
    l.push(fact("memory", format!("{} MiB in the dump", ram >> 20)));
    if let Some(k) = r.kaslr_offset {
        l.push(fact("KASLR offset", format!("{k:#x}")));
    }
    if let Some(p) = r.phys_base {
        l.push(fact("phys_base", format!("{p:#x}")));
    }
    for v in &r.vcpus {
        l.push(fact(
            &format!("vCPU {}", v.index),
            format!("RIP {:#018x} {}", v.rip, v.symbol_text()),
        ));
    }
    l.push(Line::raw(""));
    l.push(heading("capture"));
    l.push(fact("file", model.path.clone()));
    l.push(fact("format", model.core().format.name().to_string()));
    match &model.core().metadata {
        Some(m) => {
            l.push(fact(
                "complete",
                if m.complete {
                    "yes".to_string()
                } else {
                    format!(
                        "NO: {}",
                        escape_short(m.incomplete_reason.as_deref().unwrap_or("unknown"))
                    )
                },
            ));
            l.push(fact("written by", escape_short(&m.tool)));
            l.push(fact(
                "created",
                coroner_analyze::format_rfc3339_seconds(m.created_unix),
            ));
            if let Some(d) = m.recorded_digest() {
                let label = match d {
                    coroner_formats::ContentDigest::FramesBlake3(_) => "frames-blake3",
                    coroner_formats::ContentDigest::Sha256(_) => "sha256",
                };
                l.push(fact(label, escape_short(d.hex())));
            }
            if let Some(o) = &m.origin {
                l.push(fact("origin", escape_short(o)));
            }
        }
        None => l.push(fact("metadata", "none (a plain ELF dump)".into())),
    }
    if let Some(c) = model.capture() {
        l.push(fact(
            "run state",
            format!(
                "{} (after: {})",
                c.run_state_before,
                c.run_state_after.as_deref().unwrap_or("?")
            ),
        ));
        l.push(fact("qemu", escape_short(&c.qemu_version.to_string())));
        l.push(fact("method", c.method.clone()));
    }
    l.push(Line::raw(""));
    l.push(heading("how each fact was obtained"));
    for e in &r.evidence {
        l.push(fact(&e.fact, format!("{} — {}", e.value, e.how)));
    }
    for p in r.problems.iter().chain(&r.log_diagnostics) {
        l.push(Line::styled(
            format!("note: {}", sanitize(p)),
            Style::default().fg(Color::Yellow),
        ));
    }
    TextPane::new("Overview", "overview", l)
}
