//! Events: the QMP events and the run-state history from the capture metadata.

use ratatui::crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::text::TextView;
use crate::app::sanitize;
use crate::model::Model;
use crate::pane::{Direction, Outcome, Pane};

/// The events pane.
pub struct Events {
    view: TextView,
}

impl Events {
    /// Built from the capture metadata.
    pub fn new(model: &Model<'_>) -> Self {
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
        Self {
            view: TextView::new(l),
        }
    }
}

impl Pane for Events {
    fn title(&self) -> &'static str {
        "Events"
    }
    fn render(&mut self, _model: &Model<'_>, frame: &mut Frame<'_>, area: Rect) {
        self.view.render(frame, area, "QMP events and run state");
    }
    fn key(&mut self, _model: &Model<'_>, key: KeyEvent) -> Outcome {
        self.view.key(key)
    }
    fn search(&mut self, _model: &Model<'_>, q: &str, dir: Direction) -> Outcome {
        self.view.search(q, dir)
    }
}
