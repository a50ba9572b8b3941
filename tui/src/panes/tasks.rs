//! Tasks: the guest kernel's tasks as `coroner ps` lists them, filtered by state, with the
//! selected task's details; `>` marks the task each CPU runs.

use coroner_analyze::tasks::table;
use coroner_analyze::{Task, TaskList};
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use super::frames;
use crate::model::Model;
use crate::pane::{Direction, Outcome, Pane};
use crate::sanitize::sanitize;

/// The keys of this pane.
const HELP: &[(&str, &str)] = &[
    ("j k / Up Down", "select the next / previous task"),
    ("PgUp PgDn / Space", "a page"),
    ("g G / Home End", "first / last task"),
    (
        "f",
        "filter by state: all, then each state present (R S D T t Z X P I)",
    ),
    ("/ n N", "find a task by pid or command"),
    (
        "[ ] / Enter",
        "select a frame of its backtrace / open its code in Memory",
    ),
];

/// Rows of the selected task's box: three of facts, then its backtrace.
const DETAIL_ROWS: u16 = 14;

/// The selected task's kernel backtrace, one frame a line.
fn backtrace_lines(model: &Model<'_>, t: &Task, selected: usize) -> Vec<Line<'static>> {
    match model.session.backtrace_of_task(t) {
        Err(e) => vec![Line::raw(sanitize(&format!("no backtrace: {e}")))],
        Ok(b) => {
            let mut l: Vec<Line<'static>> = b
                .frames
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let mark = if i == selected { "> " } else { "  " };
                    Line::raw(format!("{mark}{}", sanitize(&f.text())))
                })
                .collect();
            l.push(Line::raw(sanitize(&format!("({})", b.stop_reason))));
            l
        }
    }
}

/// The state letters in the order the filter goes through them.
const STATES: [char; 9] = ['R', 'S', 'D', 'T', 't', 'Z', 'X', 'P', 'I'];

/// The Tasks pane.
pub struct Tasks {
    /// Only tasks in this state.
    filter: Option<char>,
    /// Position of the selected task among the shown ones.
    selected: usize,
    /// First shown row.
    top: usize,
    /// Rows of the list last drawn.
    height: usize,
    /// The selected frame of the selected task's backtrace.
    frame: usize,
}

impl Tasks {
    /// A pane over the model's tasks.
    pub fn new(_model: &Model<'_>) -> Self {
        Tasks {
            filter: None,
            selected: 0,
            top: 0,
            height: 1,
            frame: 0,
        }
    }

    fn shown<'m>(&self, list: &'m TaskList) -> Vec<&'m Task> {
        list.tasks
            .iter()
            .filter(|t| self.filter.is_none_or(|f| t.state == f))
            .collect()
    }

    fn row(list: &TaskList, t: &Task) -> String {
        sanitize(&table::row(list, t))
    }
}

impl Pane for Tasks {
    fn title(&self) -> &'static str {
        "Tasks"
    }

    fn render(&mut self, model: &Model<'_>, frame: &mut Frame<'_>, area: Rect) {
        let list = match model.session.tasks() {
            Ok(l) => l,
            Err(e) => {
                let p = Paragraph::new(vec![Line::raw(sanitize(&format!("no task list: {e}")))])
                    .block(Block::default().borders(Borders::ALL).title(" tasks "))
                    .wrap(Wrap { trim: false });
                frame.render_widget(p, area);
                return;
            }
        };
        let shown = self.shown(list);
        self.selected = self.selected.min(shown.len().saturating_sub(1));
        let [table, details] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(DETAIL_ROWS)]).areas(area);
        self.height = table.height.saturating_sub(3).max(1) as usize;
        if self.selected < self.top {
            self.top = self.selected;
        } else if self.selected >= self.top + self.height {
            self.top = self.selected + 1 - self.height;
        }
        let mut lines = vec![Line::styled(
            table::header(),
            Style::default().add_modifier(Modifier::BOLD),
        )];
        for (i, t) in shown.iter().enumerate().skip(self.top).take(self.height) {
            let line = Line::raw(Self::row(list, t));
            lines.push(if i == self.selected {
                line.style(
                    Style::default()
                        .bg(Color::DarkGray)
                        .add_modifier(Modifier::BOLD),
                )
            } else {
                line
            });
        }
        let title = match self.filter {
            None => format!(" tasks: all {} ", list.tasks.len()),
            Some(f) => format!(" tasks in {f}: {} of {} ", shown.len(), list.tasks.len()),
        };
        frame.render_widget(
            Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)),
            table,
        );
        let detail = match shown.get(self.selected) {
            Some(t) => vec![
                Line::raw(sanitize(&format!(
                    "pid {} tgid {} ppid {} {} {}",
                    t.pid,
                    t.tgid,
                    t.ppid,
                    t.comm,
                    if t.kernel_thread {
                        "(kernel thread)"
                    } else {
                        ""
                    }
                ))),
                Line::raw(format!(
                    "state {}, last ran on CPU {}{}, task_struct at {:#x}",
                    t.state,
                    t.cpu.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
                    if t.on_cpu { " (on it now)" } else { "" },
                    t.task
                )),
                Line::raw(
                    list.current
                        .iter()
                        .map(|c| {
                            format!(
                                "CPU {} runs {} {}",
                                c.cpu,
                                c.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                                sanitize(c.comm.as_deref().unwrap_or("?"))
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            ]
            .into_iter()
            .chain(backtrace_lines(model, t, self.frame))
            .collect(),
            None => vec![Line::raw("no task in this state")],
        };
        frame.render_widget(
            Paragraph::new(detail)
                .block(Block::default().borders(Borders::ALL).title(" selected ")),
            details,
        );
    }

    fn key(&mut self, model: &Model<'_>, key: KeyEvent) -> Outcome {
        let Ok(list) = model.session.tasks() else {
            return Outcome::Ignored;
        };
        let shown = self.shown(list);
        let n = shown.len();
        let last = n.saturating_sub(1);
        let (before, filter_before) = (self.selected, self.filter);
        match key.code {
            KeyCode::Char('j') | KeyCode::Down => self.selected = (self.selected + 1).min(last),
            KeyCode::Char('k') | KeyCode::Up => self.selected = self.selected.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => {
                self.selected = (self.selected + self.height).min(last)
            }
            KeyCode::PageUp => self.selected = self.selected.saturating_sub(self.height),
            KeyCode::Char('g') | KeyCode::Home => self.selected = 0,
            KeyCode::Char('G') | KeyCode::End => self.selected = last,
            KeyCode::Char('f') => {
                let present: Vec<char> = STATES
                    .iter()
                    .copied()
                    .filter(|s| list.tasks.iter().any(|t| t.state == *s))
                    .collect();
                self.filter = match self.filter {
                    None => present.first().copied(),
                    Some(f) => present
                        .iter()
                        .position(|&s| s == f)
                        .and_then(|i| present.get(i + 1).copied()),
                };
                self.selected = 0;
                self.top = 0;
            }
            _ => {
                let bt = shown
                    .get(self.selected)
                    .map(|t| model.session.backtrace_of_task(t));
                return frames::key(&mut self.frame, bt.as_ref(), key);
            }
        }
        if (self.selected, self.filter) != (before, filter_before) {
            self.frame = 0;
        }
        Outcome::Handled
    }

    fn search(&mut self, model: &Model<'_>, query: &str, dir: Direction) -> Outcome {
        let Ok(list) = model.session.tasks() else {
            return Outcome::Message("no task list".into());
        };
        let shown = self.shown(list);
        let n = shown.len();
        let q = query.to_lowercase();
        for step in 1..=n {
            let i = match dir {
                Direction::Forward => (self.selected + step) % n,
                Direction::Backward => (self.selected + n - step % n) % n,
            };
            let t = shown[i];
            if t.pid.to_string() == q || t.comm.to_lowercase().contains(&q) {
                self.selected = i;
                return Outcome::Handled;
            }
        }
        Outcome::Message(format!("no task {query}"))
    }

    fn help(&self) -> &'static [(&'static str, &'static str)] {
        HELP
    }
}
