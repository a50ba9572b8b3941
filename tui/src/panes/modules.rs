//! Modules: the guest kernel's loaded modules as `coroner modules` lists them.

use ratatui::text::Line;

use super::text::TextPane;
use crate::model::Model;
use crate::sanitize::sanitize;

/// The Modules pane.
pub fn pane(model: &Model<'_>) -> TextPane {
    let mut l = Vec::new();
    match model.session.modules() {
        Err(e) => l.push(Line::raw(sanitize(&format!("no module list: {e}")))),
        Ok(list) => {
            l.push(Line::raw(format!(
                "{:<24} {:>8} {:>5} {:<10} {:<18} {:<6} {:>7}",
                "NAME", "SIZE", "USERS", "STATE", "ADDRESS", "TAINTS", "SYMBOLS"
            )));
            for m in &list.modules {
                l.push(Line::raw(sanitize(&format!(
                    "{:<24} {:>8} {:>5} {:<10} {:016x}   {:<6} {:>7}",
                    m.name,
                    m.size,
                    m.refcnt
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "-".into()),
                    m.state,
                    m.address,
                    m.taints,
                    m.symbol_count
                ))));
            }
            l.push(Line::raw(""));
            for h in list.how.iter().chain(&list.diagnostics) {
                l.push(Line::raw(sanitize(h)));
            }
        }
    }
    TextPane::new("Modules", "modules", l)
}
