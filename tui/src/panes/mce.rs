//! MCE: the decoded machine-check records (what `coroner mce` prints).

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;

use super::text::TextPane;
use crate::model::Model;
use crate::sanitize::sanitize;

fn hex(v: Option<u64>) -> String {
    v.map(|v| format!("{v:#x}")).unwrap_or_else(|| "-".into())
}

/// The MCE pane.
/// Built from the report's machine-check analysis.
pub fn pane(model: &Model<'_>) -> TextPane {
    let mut l = Vec::new();
    let Some(m) = &model.report.machine_check else {
        l.push(Line::raw(
                "no machine-check record: the kernel log and memory hold none, and the capture saw no MEMORY_FAILURE",
            ));
        return TextPane::new("MCE", "machine checks", l);
    };
    l.push(Line::styled(
        sanitize(&m.verdict),
        Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
    ));
    for (i, r) in m.records.iter().enumerate() {
        let d = &r.decoded;
        l.push(Line::raw(""));
        l.push(Line::styled(
            format!(
                "record {} of {}{}: {}",
                i + 1,
                m.records.len(),
                if r.fatal { " FATAL" } else { "" },
                r.raw.place(),
            ),
            Style::default().add_modifier(Modifier::BOLD),
        ));
        l.push(Line::raw(format!("  {}", sanitize(&d.summary))));
        l.push(Line::raw(format!(
            "  STATUS {:#018x} {}",
            r.raw.status,
            d.status.join(" ")
        )));
        if let Some(g) = r.raw.mcgstatus {
            l.push(Line::raw(format!(
                "  MCG    {g:#x} {}",
                d.mcg_status.join(" ")
            )));
        }
        l.push(Line::raw(format!(
            "  MCA    {:#06x} {}",
            d.error.mcacod,
            sanitize(&d.error.text)
        )));
        l.push(Line::raw(format!(
            "  severity {}: {}",
            d.severity.level, d.severity.message
        )));
        l.push(Line::raw(format!(
            "  ADDR {}  MISC {}  TIME {}",
            hex(r.raw.addr),
            hex(r.raw.misc),
            r.raw
                .time
                .map(coroner_analyze::format_rfc3339_seconds)
                .unwrap_or_else(|| "-".into())
        )));
        if let Some(p) = &r.page {
            l.push(Line::raw(format!(
                "  page {:#x}: {}",
                p.pfn,
                sanitize(&p.owner)
            )));
        }
        if let Some(ip) = r.raw.ip.filter(|&ip| ip != 0) {
            l.push(Line::raw(format!(
                "  RIP {ip:#x} {}",
                sanitize(r.raw.ip_symbol.as_deref().unwrap_or(""))
            )));
        }
        l.push(Line::raw(format!("  origin: {}", sanitize(&r.origin))));
    }
    if !m.kernel_lines.is_empty() {
        l.push(Line::raw(""));
        l.push(Line::styled(
            "kernel lines",
            Style::default().add_modifier(Modifier::BOLD),
        ));
        for k in &m.kernel_lines {
            l.push(Line::raw(format!("  {}", sanitize(&k.text))));
        }
    }
    l.push(Line::raw(""));
    l.push(Line::styled(
        "host (qemu)",
        Style::default().add_modifier(Modifier::BOLD),
    ));
    for e in &m.host.events {
        l.push(Line::raw(format!(
            "  MEMORY_FAILURE recipient={} action={} action-required={}",
            sanitize(&e.recipient),
            sanitize(&e.action),
            e.action_required
        )));
    }
    for h in &m.host.lines {
        l.push(Line::raw(format!("  {}", sanitize(&h.text))));
    }
    TextPane::new("MCE", "machine checks", l)
}
