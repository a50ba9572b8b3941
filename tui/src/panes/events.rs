//! Events: the QMP events and the run-state history from the capture metadata.

use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};

use super::text::TextPane;
use crate::model::Model;
use crate::sanitize::sanitize;

/// The Events pane.
/// Built from the capture metadata.
pub fn pane(model: &Model<'_>) -> TextPane {
    let mut l = Vec::new();
    match model.capture() {
        None => l.push(Line::raw(
            "no capture metadata: a plain dump records no events",
        )),
        Some(c) => {
            l.push(Line::raw(sanitize(&format!(
                "run state before the capture: {}; after: {}; stopped by coroner: {}",
                c.run_state_before,
                c.run_state_after.as_deref().unwrap_or("?"),
                c.stopped_by_coroner
            ))));
            l.push(Line::raw(""));
            match c.events.as_slice() {
                    list if !list.is_empty() => {
                        for e in list {
                            let data = Some(&e.data)
                                .filter(|d| !d.is_null())
                                .map(|d| d.to_string())
                                .unwrap_or_default();
                            l.push(Line::from(vec![
                                Span::styled(
                                    format!(
                                        "{} ",
                                        coroner_analyze::format_rfc3339_micros(
                                            u64::try_from(e.time_us()).unwrap_or(0)
                                        )
                                    ),
                                    Style::default().fg(Color::DarkGray),
                                ),
                                Span::styled(
                                    format!("{:<16} ", sanitize(&e.event)),
                                    Style::default().fg(Color::Cyan),
                                ),
                                Span::raw(sanitize(&data)),
                            ]));
                        }
                    }
                    _ => l.push(Line::raw(
                        "no QMP events recorded (capture --wait-frozen records the events of the freeze)",
                    )),
                }
            {
                for x in &c.warnings {
                    l.push(Line::styled(
                        format!("warning: {}", sanitize(x)),
                        Style::default().fg(Color::Yellow),
                    ));
                }
            }
        }
    }
    TextPane::new("Events", "QMP events and run state", l)
}
