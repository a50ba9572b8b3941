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
            for line in coroner_analyze::modules::table::lines(list) {
                l.push(Line::raw(sanitize(&line)));
            }
            l.push(Line::raw(""));
            for h in list.how.iter().chain(&list.diagnostics) {
                l.push(Line::raw(sanitize(h)));
            }
        }
    }
    TextPane::new("Modules", "modules", l)
}
