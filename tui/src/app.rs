//! The application: panes, global keys, the prompt, the help overlay, and the frame
//! layout (tab bar, pane, status line).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::model::Model;
use crate::pane::{Direction, Outcome, Pane};

/// What the bottom line is collecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PromptKind {
    Search,
    Goto,
}

/// The whole UI state.
pub struct App {
    panes: Vec<Box<dyn Pane>>,
    current: usize,
    help: bool,
    prompt: Option<(PromptKind, String)>,
    last_search: Option<String>,
    message: Option<String>,
    /// Set when the user asked to quit.
    pub quit: bool,
}

/// Keys every pane shares, for the help overlay.
const GLOBAL_KEYS: &[(&str, &str)] = &[
    ("q", "quit"),
    ("Tab / Shift-Tab", "next / previous pane"),
    ("1-9", "go to pane N"),
    ("j k / arrows", "scroll a line"),
    ("PgUp PgDn / Space", "scroll a page"),
    ("g / G", "top / bottom"),
    ("/", "search; n / N: next / previous match"),
    (":", "go to an address or symbol (memory, vCPUs)"),
    ("?", "this help; Esc closes it"),
];

impl App {
    /// An app showing `panes`, the first one selected.
    pub fn new(panes: Vec<Box<dyn Pane>>) -> Self {
        Self {
            panes,
            current: 0,
            help: false,
            prompt: None,
            last_search: None,
            message: None,
            quit: false,
        }
    }

    /// The panes' titles, in tab order.
    pub fn titles(&self) -> Vec<&'static str> {
        self.panes.iter().map(|p| p.title()).collect()
    }

    /// Selects pane `i` (from 0), if there is one.
    pub fn select_index(&mut self, i: usize) {
        if i < self.panes.len() {
            self.current = i;
        }
    }

    /// Selects the pane titled `title`, if there is one.
    pub fn select(&mut self, title: &str) {
        if let Some(i) = self.panes.iter().position(|p| p.title() == title) {
            self.current = i;
        }
    }

    /// Handles one key.
    pub fn key(&mut self, model: &Model<'_>, key: KeyEvent) {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        if let Some((kind, mut text)) = self.prompt.take() {
            match key.code {
                KeyCode::Enter => self.submit(model, kind, &text),
                KeyCode::Esc => {}
                KeyCode::Backspace => {
                    text.pop();
                    self.prompt = Some((kind, text));
                }
                KeyCode::Char(c) if text.len() < 256 => {
                    text.push(c);
                    self.prompt = Some((kind, text));
                }
                _ => self.prompt = Some((kind, text)),
            }
            return;
        }
        if self.help {
            if matches!(
                key.code,
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q')
            ) {
                self.help = false;
            }
            return;
        }
        self.message = None;
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Tab => self.current = (self.current + 1) % self.panes.len().max(1),
            KeyCode::BackTab => {
                self.current =
                    (self.current + self.panes.len().max(1) - 1) % self.panes.len().max(1)
            }
            KeyCode::Char(c @ '1'..='9') => {
                let i = (c as usize) - ('1' as usize);
                if i < self.panes.len() {
                    self.current = i;
                }
            }
            KeyCode::Char('/') => self.prompt = Some((PromptKind::Search, String::new())),
            KeyCode::Char(':') => self.prompt = Some((PromptKind::Goto, String::new())),
            KeyCode::Char(c @ ('n' | 'N')) => match self.last_search.clone() {
                Some(q) => {
                    let dir = if c == 'n' {
                        Direction::Forward
                    } else {
                        Direction::Backward
                    };
                    let out = self.pane().search(model, &q, dir);
                    self.outcome(out);
                }
                None => self.message = Some("no search yet: / to search".into()),
            },
            _ => {
                let out = self.pane().key(model, key);
                self.outcome(out);
            }
        }
    }

    fn pane(&mut self) -> &mut Box<dyn Pane> {
        let i = self.current.min(self.panes.len().saturating_sub(1));
        &mut self.panes[i]
    }

    fn outcome(&mut self, out: Outcome) {
        if let Outcome::Message(m) = out {
            self.message = Some(m);
        }
    }

    fn submit(&mut self, model: &Model<'_>, kind: PromptKind, text: &str) {
        if text.is_empty() {
            return;
        }
        let out = match kind {
            PromptKind::Search => {
                self.last_search = Some(text.to_string());
                self.pane().search(model, text, Direction::Forward)
            }
            PromptKind::Goto => self.pane().goto(model, text),
        };
        self.outcome(out);
    }

    /// Draws a frame.
    pub fn render(&mut self, model: &Model<'_>, frame: &mut Frame<'_>) {
        let [tabs, body, status] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        let mut spans = Vec::new();
        for (i, p) in self.panes.iter().enumerate() {
            let style = if i == self.current {
                Style::default()
                    .fg(Color::Black)
                    .bg(Color::Cyan)
                    .add_modifier(Modifier::BOLD)
            } else {
                Style::default().fg(Color::Cyan)
            };
            spans.push(Span::styled(format!(" {} {} ", i + 1, p.title()), style));
            spans.push(Span::raw(" "));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), tabs);
        let i = self.current.min(self.panes.len().saturating_sub(1));
        if let Some(p) = self.panes.get_mut(i) {
            p.render(model, frame, body);
        }
        let line = match &self.prompt {
            Some((PromptKind::Search, t)) => Line::from(format!("/{}", sanitize(t))),
            Some((PromptKind::Goto, t)) => Line::from(format!(
                "go to (hex physical, v:hex virtual, or symbol): {}",
                sanitize(t)
            )),
            None => {
                let msg = self.message.as_deref().unwrap_or("");
                Line::from(vec![
                    Span::styled(
                        format!(" {} ", sanitize(&model.path)),
                        Style::default().add_modifier(Modifier::REVERSED),
                    ),
                    Span::raw(" "),
                    Span::styled(sanitize(msg), Style::default().fg(Color::Yellow)),
                    Span::styled("  ? help  q quit", Style::default().fg(Color::DarkGray)),
                ])
            }
        };
        frame.render_widget(Paragraph::new(line), status);
        if self.help {
            self.render_help(frame, body);
        }
    }

    fn render_help(&self, frame: &mut Frame<'_>, area: Rect) {
        let i = self.current.min(self.panes.len().saturating_sub(1));
        let pane_keys = self.panes.get(i).map(|p| p.help()).unwrap_or(&[]);
        let mut lines = vec![Line::styled(
            "Keys",
            Style::default().add_modifier(Modifier::BOLD),
        )];
        for (k, what) in GLOBAL_KEYS {
            lines.push(Line::from(format!("  {k:<18} {what}")));
        }
        if !pane_keys.is_empty() {
            lines.push(Line::raw(""));
            lines.push(Line::styled(
                format!(
                    "{} pane",
                    self.panes.get(i).map(|p| p.title()).unwrap_or("")
                ),
                Style::default().add_modifier(Modifier::BOLD),
            ));
            for (k, what) in pane_keys {
                lines.push(Line::from(format!("  {k:<18} {what}")));
            }
        }
        let w = area.width.min(64);
        let h = (lines.len() as u16 + 2).min(area.height);
        let popup = Rect {
            x: area.x + (area.width - w) / 2,
            y: area.y + (area.height - h) / 2,
            width: w,
            height: h,
        };
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(Block::default().borders(Borders::ALL).title(" help ")),
            popup,
        );
    }
}

/// Text safe for one terminal line: control characters escaped, newlines shown as `\n`,
/// tabs as a space.
pub fn sanitize(s: &str) -> String {
    coroner_analyze::escape_control(s)
        .replace('\n', "\\n")
        .replace('\t', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pane of a synthetic qemu-shaped dump, as the whole frame shows it.
    #[test]
    fn every_pane_at_80x24_and_200x60() {
        let (_f, core) = crate::testutil::core(vec![
            crate::testutil::protected32(),
            crate::testutil::long64(),
        ]);
        let model = Model::load(&core, "test.core".into());
        let mut app = App::new(crate::panes::all_panes(&model));
        let titles = app.titles();
        assert_eq!(
            titles,
            ["Overview", "Log", "vCPUs", "MCE", "Exit", "Memory", "Events"]
        );
        for (w, h) in [(80u16, 24u16), (200, 60)] {
            for (i, title) in titles.iter().enumerate() {
                app.select_index(i);
                let rows = crate::terminal::draw_rows(&mut app, &model, w, h).unwrap();
                for r in &rows {
                    assert!(!r.chars().any(|c| c.is_control()), "{r:?}");
                }
                insta::assert_snapshot!(format!("app_{title}_{w}x{h}"), rows.join("\n"));
            }
        }
        // The help overlay over the first pane.
        app.select_index(0);
        app.help = true;
        let rows = crate::terminal::draw_rows(&mut app, &model, 80, 24).unwrap();
        insta::assert_snapshot!("app_help_80x24", rows.join("\n"));
    }

    /// The bundled real samples (slim captures of kit guests), pane by pane.
    #[test]
    fn real_samples_at_80x24_and_200x60() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/captures");
        for (sample, panes) in [
            ("panic", &["Overview", "Log", "vCPUs", "Events"][..]),
            ("mce-fatal", &["Log", "MCE"][..]),
            (
                "kvm-emulation-failure",
                &["Overview", "vCPUs", "Exit", "Memory"][..],
            ),
        ] {
            let core = coroner_formats::open(&root.join(format!("{sample}.core.zst"))).unwrap();
            let model = Model::load(&core, format!("{sample}.core.zst"));
            let mut app = App::new(crate::panes::all_panes(&model));
            for (w, h) in [(80u16, 24u16), (200, 60)] {
                for title in panes {
                    app.select(title);
                    let rows = crate::terminal::draw_rows(&mut app, &model, w, h).unwrap();
                    for r in &rows {
                        assert!(!r.chars().any(|c| c.is_control()), "{r:?}");
                    }
                    insta::assert_snapshot!(
                        format!("sample_{sample}_{title}_{w}x{h}"),
                        rows.join("\n")
                    );
                }
            }
        }
    }

    #[test]
    fn sanitize_leaves_no_control_character() {
        let s = sanitize("a\x1b[2Jb\nc\td\u{7}\u{9b}e");
        assert!(!s.chars().any(|c| c.is_control()), "{s:?}");
        assert!(s.contains("\\n"));
    }
}
