//! Exit reason: the decoded KVM failure (what `coroner exit` prints).

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;

use super::text::TextPane;
use crate::model::Model;
use crate::sanitize::sanitize;

/// The Exit pane.
/// Built from the report's exit-reason analysis.
pub fn pane(model: &Model<'_>) -> TextPane {
    let mut l = Vec::new();
    let Some(x) = &model.report.kvm_exit else {
        l.push(Line::raw(
                "no KVM error report: the guest was not stopped by a KVM emulation or entry failure (or qemu's log was not captured)",
            ));
        return TextPane::new("Exit", "KVM exit reason", l);
    };
    let bold = Style::default().add_modifier(Modifier::BOLD);
    l.push(Line::styled(
        sanitize(&x.verdict),
        Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
    ));
    l.push(Line::raw(""));
    if let Some(s) = &x.suberror {
        l.push(Line::raw(format!(
            "sub-error {} {}: {}",
            s.number, s.name, s.meaning
        )));
    }
    if let Some(d) = &x.data {
        l.push(Line::raw(format!("extra data: {}", sanitize(&d.layout))));
        for f in &d.fields {
            l.push(Line::raw(format!(
                "  [{}] {:#018x} {}: {}",
                f.index,
                f.value,
                f.name,
                sanitize(&f.meaning)
            )));
        }
    }
    if let Some(f) = &x.entry_failure {
        l.push(Line::raw(format!(
            "entry failed {:#x}: {}",
            f.raw,
            sanitize(&f.description)
        )));
    }
    if let Some(m) = &x.mode {
        l.push(Line::raw(format!(
            "mode: {}, paging {}, CPL {}",
            m.description(),
            m.paging,
            m.cpl
        )));
    }
    if let Some(i) = &x.instruction {
        l.push(Line::styled(
            format!("instruction: {}  ({})", i.disassembly.text, i.bytes_source),
            bold,
        ));
        l.push(Line::raw(format!(
            "emulator: {} — {}",
            i.emulator.class,
            sanitize(&i.emulator.why)
        )));
    }
    for o in &x.operands {
        l.push(Line::raw(format!(
            "operand: {} {} bytes, linear {}, physical {}: {}",
            o.operand.access,
            o.operand.size,
            o.operand
                .linear
                .map(|v| format!("{v:#x}"))
                .unwrap_or_else(|| "?".into()),
            o.gpa
                .map(|v| format!("{v:#x}"))
                .unwrap_or_else(|| "?".into()),
            sanitize(
                o.owner
                    .as_ref()
                    .map(|w| w.description.as_str())
                    .unwrap_or("owner unknown")
            )
        )));
    }
    if !x.explanation.is_empty() {
        l.push(Line::raw(""));
        l.push(Line::styled("explanation", bold));
        for e in &x.explanation {
            l.push(Line::raw(format!("  {}", sanitize(e))));
        }
    }
    if !x.known_causes.is_empty() {
        l.push(Line::raw(""));
        l.push(Line::styled("known causes of this pattern", bold));
        for c in &x.known_causes {
            l.push(Line::raw(format!("  - {}", sanitize(c))));
        }
    }
    TextPane::new("Exit", "KVM exit reason", l)
}
