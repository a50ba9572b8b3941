//! The terminal UI's model of a dump and every pane drawn off-screen, as `coroner tui
//! --json` does: nothing drawn may hold a control character.

use coroner_tui::{render_screens, Model};

/// Opens `data` as a dump and draws every pane at 80x24.
pub fn tui(data: &[u8]) {
    crate::scratch_file::with_file("tui", data, |path| {
        let Ok(core) = coroner_formats::open(path) else {
            return;
        };
        let model = Model::load(&core, "fuzz".into());
        let Ok(screens) = render_screens(&model, 80, 24) else {
            return;
        };
        for s in &screens {
            for row in &s.rows {
                crate::invariants::drawn_safe(row);
            }
        }
    });
}
