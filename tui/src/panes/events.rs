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
        match &model.capture {
            None => l.push(Line::raw(
                "no capture metadata: a plain dump records no events",
            )),
            Some(c) => {
                let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
                l.push(Line::raw(sanitize(&format!(
                    "run state before the capture: {}; after: {}; stopped by coroner: {}",
                    s("run_state_before"),
                    s("run_state_after"),
                    c.get("stopped_by_coroner")
                        .and_then(|v| v.as_bool())
                        .unwrap_or(false)
                ))));
                l.push(Line::raw(""));
                let events = c.get("events").and_then(|e| e.as_array());
                match events {
                    Some(list) if !list.is_empty() => {
                        for e in list {
                            let secs = e.get("seconds").and_then(|v| v.as_i64()).unwrap_or(0);
                            let us = e.get("microseconds").and_then(|v| v.as_i64()).unwrap_or(0);
                            let name = e.get("event").and_then(|v| v.as_str()).unwrap_or("?");
                            let data = e
                                .get("data")
                                .filter(|d| !d.is_null())
                                .map(|d| d.to_string())
                                .unwrap_or_default();
                            l.push(Line::from(vec![
                                Span::styled(
                                    format!(
                                        "{} ",
                                        coroner_analyze::format_rfc3339_micros(
                                            u64::try_from(secs)
                                                .unwrap_or(0)
                                                .saturating_mul(1_000_000)
                                                .saturating_add(u64::try_from(us).unwrap_or(0))
                                        )
                                    ),
                                    Style::default().fg(Color::DarkGray),
                                ),
                                Span::styled(
                                    format!("{:<16} ", sanitize(name)),
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
                if let Some(w) = c.get("warnings").and_then(|w| w.as_array()) {
                    for x in w {
                        l.push(Line::styled(
                            format!("warning: {}", sanitize(x.as_str().unwrap_or(""))),
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
