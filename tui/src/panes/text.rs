//! A scrollable list of lines with search: the body of the panes that only show text
//! (overview, events, MCE, exit reason).

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::model::Model;
use crate::pane::{Direction, Outcome, Pane};

/// A pane that only shows text: its title, the heading of its frame, and the text.
pub struct TextPane {
    title: &'static str,
    heading: &'static str,
    view: TextView,
}

impl TextPane {
    /// A pane titled `title` showing `lines` under `heading`.
    pub fn new(title: &'static str, heading: &'static str, lines: Vec<Line<'static>>) -> Self {
        Self {
            title,
            heading,
            view: TextView::new(lines),
        }
    }
}

impl Pane for TextPane {
    fn title(&self) -> &'static str {
        self.title
    }
    fn render(&mut self, _model: &Model<'_>, frame: &mut Frame<'_>, area: Rect) {
        self.view.render(frame, area, self.heading);
    }
    fn key(&mut self, _model: &Model<'_>, key: KeyEvent) -> Outcome {
        self.view.key(key)
    }
    fn search(&mut self, _model: &Model<'_>, q: &str, dir: Direction) -> Outcome {
        self.view.search(q, dir)
    }
}

/// Lines, a scroll position and the last search hit.
#[derive(Default)]
pub struct TextView {
    /// The lines (already escaped).
    pub lines: Vec<Line<'static>>,
    /// First line shown.
    pub top: usize,
    /// Line of the last search hit.
    pub hit: Option<usize>,
    /// Long lines continue on the next rows (`w` toggles).
    pub nowrap: bool,
    height: usize,
}

impl TextView {
    /// A view of `lines`.
    pub fn new(lines: Vec<Line<'static>>) -> Self {
        Self {
            lines,
            ..Self::default()
        }
    }

    fn max_top(&self) -> usize {
        self.lines.len().saturating_sub(self.height.max(1))
    }

    /// Scrolling keys: j/k, arrows, PgUp/PgDn/Space, g/G, Home/End.
    pub fn key(&mut self, key: KeyEvent) -> Outcome {
        let page = self.height.max(1);
        match key.code {
            KeyCode::Char('j') | KeyCode::Down => self.top = (self.top + 1).min(self.max_top()),
            KeyCode::Char('k') | KeyCode::Up => self.top = self.top.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => {
                self.top = (self.top + page).min(self.max_top())
            }
            KeyCode::PageUp => self.top = self.top.saturating_sub(page),
            KeyCode::Char('g') | KeyCode::Home => self.top = 0,
            KeyCode::Char('G') | KeyCode::End => self.top = self.max_top(),
            KeyCode::Char('w') => self.nowrap = !self.nowrap,
            _ => return Outcome::Ignored,
        }
        Outcome::Handled
    }

    /// Finds `query` (case-insensitive) after (or before) the last hit.
    pub fn search(&mut self, query: &str, dir: Direction) -> Outcome {
        let q = query.to_lowercase();
        let n = self.lines.len();
        if n == 0 {
            return Outcome::Message("nothing to search".into());
        }
        let start = self.hit.unwrap_or(self.top);
        for step in 1..=n {
            let i = match dir {
                Direction::Forward => (start + step) % n,
                Direction::Backward => (start + n - step % n) % n,
            };
            let text: String = self.lines[i]
                .spans
                .iter()
                .map(|s| s.content.as_ref())
                .collect();
            if text.to_lowercase().contains(&q) {
                self.hit = Some(i);
                self.top = i
                    .saturating_sub(2)
                    .min(self.max_top().max(i.min(self.max_top())));
                return Outcome::Handled;
            }
        }
        Outcome::Message(format!("not found: {query}"))
    }

    /// Draws the lines in a bordered block titled `title`.
    pub fn render(&mut self, frame: &mut Frame<'_>, area: Rect, title: &str) {
        self.height = area.height.saturating_sub(2) as usize;
        self.top = self.top.min(self.max_top());
        // With wrapping a line may take several rows; drawing from `top` to the end lets
        // the paragraph stop where the area does.
        let end = if self.nowrap {
            (self.top + self.height).min(self.lines.len())
        } else {
            self.lines.len()
        };
        let shown: Vec<Line<'static>> = (self.top..end)
            .map(|i| {
                let l = self.lines[i].clone();
                if Some(i) == self.hit {
                    l.style(
                        Style::default()
                            .bg(Color::DarkGray)
                            .add_modifier(Modifier::BOLD),
                    )
                } else {
                    l
                }
            })
            .collect();
        let title = format!(" {title} (line {} of {}) ", self.top + 1, self.lines.len());
        let mut p =
            Paragraph::new(shown).block(Block::default().borders(Borders::ALL).title(title));
        if !self.nowrap {
            p = p.wrap(Wrap { trim: false });
        }
        frame.render_widget(p, area);
    }
}
