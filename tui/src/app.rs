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
use crate::sanitize::sanitize;

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

/// The pane a search falls back to.
const LOG_PANE: &str = "Log";
/// The pane a go-to falls back to.
const MEMORY_PANE: &str = "Memory";

/// Keys every pane shares, for the help overlay.
const GLOBAL_KEYS: &[(&str, &str)] = &[
    ("q", "quit"),
    ("Tab / Shift-Tab", "next / previous pane"),
    ("1-9", "go to pane N"),
    ("j k / arrows", "scroll a line"),
    ("PgUp PgDn / Space", "scroll a page"),
    ("g / G", "top / bottom"),
    ("/", "search here, else in the log; n / N: next / prev"),
    (":", "go to an address or symbol (in the memory pane)"),
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
                    self.outcome(model, out);
                }
                None => self.message = Some("no search yet: / to search".into()),
            },
            _ => {
                let out = self.pane().key(model, key);
                self.outcome(model, out);
            }
        }
    }

    fn pane(&mut self) -> &mut Box<dyn Pane> {
        let i = self.current.min(self.panes.len().saturating_sub(1));
        &mut self.panes[i]
    }

    fn outcome(&mut self, model: &Model<'_>, out: Outcome) {
        match out {
            Outcome::Message(m) => self.message = Some(m),
            Outcome::Open(target) => {
                if let Some(i) = self.pane_index(MEMORY_PANE) {
                    self.current = i;
                    let out = self.pane().goto(model, &target);
                    self.outcome(model, out);
                }
            }
            Outcome::Handled | Outcome::Ignored => {}
        }
    }

    fn submit(&mut self, model: &Model<'_>, kind: PromptKind, text: &str) {
        if text.is_empty() {
            return;
        }
        let out = match kind {
            PromptKind::Search => {
                self.last_search = Some(text.to_string());
                self.search_here_or_in(model, LOG_PANE, text)
            }
            PromptKind::Goto => self.goto_here_or_in(model, MEMORY_PANE, text),
        };
        self.outcome(model, out);
    }

    /// The index of the pane titled `title`.
    fn pane_index(&self, title: &str) -> Option<usize> {
        self.panes.iter().position(|p| p.title() == title)
    }

    /// Searches the current pane; when it has no search or no hit, the pane titled
    /// `fallback` (the log, where most text is), switching to it on a hit.
    fn search_here_or_in(&mut self, model: &Model<'_>, fallback: &str, q: &str) -> Outcome {
        let here = self.pane().search(model, q, Direction::Forward);
        if here == Outcome::Handled {
            return here;
        }
        match self.pane_index(fallback) {
            Some(i) if i != self.current => {
                if self.panes[i].search(model, q, Direction::Forward) == Outcome::Handled {
                    self.current = i;
                    Outcome::Message(format!("found in the {fallback} pane"))
                } else {
                    Outcome::Message(format!(
                        "not found: {q} (in this pane and the {fallback} pane)"
                    ))
                }
            }
            _ => here,
        }
    }

    /// Goes to `target` in the current pane, or (when it has no go-to) in the pane titled
    /// `fallback` (memory), switching to it.
    fn goto_here_or_in(&mut self, model: &Model<'_>, fallback: &str, target: &str) -> Outcome {
        let here_has_goto = self.current_has_goto();
        if here_has_goto {
            return self.pane().goto(model, target);
        }
        match self.pane_index(fallback) {
            Some(i) => {
                self.current = i;
                self.pane().goto(model, target)
            }
            None => self.pane().goto(model, target),
        }
    }

    fn current_has_goto(&self) -> bool {
        let i = self.current.min(self.panes.len().saturating_sub(1));
        self.panes.get(i).is_some_and(|p| p.has_goto())
    }

    /// Draws a frame.
    pub fn render(&mut self, model: &Model<'_>, frame: &mut Frame<'_>) {
        let [tabs, body, status] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        // Every tab named and padded when the bar fits; then without the padding; on a
        // narrow terminal only the current tab keeps its name, the others their number.
        let titles: Vec<&str> = self.panes.iter().map(|p| p.title()).collect();
        let label = |i: usize, level: usize| match level {
            0 => format!(" {} {} ", i + 1, titles[i]),
            1 => format!("{} {}", i + 1, titles[i]),
            _ if i == self.current => format!("{} {}", i + 1, titles[i]),
            _ => format!("{}", i + 1),
        };
        let fits = |level: usize| {
            (0..titles.len())
                .map(|i| label(i, level).chars().count() + 1)
                .sum::<usize>()
                <= usize::from(tabs.width)
        };
        let level = (0..2).find(|&l| fits(l)).unwrap_or(2);
        let mut spans = Vec::new();
        for i in 0..titles.len() {
            let style = if i == self.current {
                Style::default()
                    .fg(Color::Black)
                    .bg(Color::Cyan)
                    .add_modifier(Modifier::BOLD)
            } else {
                Style::default().fg(Color::Cyan)
            };
            spans.push(Span::styled(label(i, level), style));
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
        // Rows after wrapping, so the last lines are not cut off.
        let inner = usize::from(w.saturating_sub(2)).max(1);
        // Word wrapping may take a row more than the width alone says.
        let rows: usize = lines
            .iter()
            .map(|l| match l.width() {
                w if w <= inner => 1,
                w => w.div_ceil(inner) + 1,
            })
            .sum();
        let h = u16::try_from(rows + 2).unwrap_or(u16::MAX).min(area.height);
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
            ["Overview", "Log", "vCPUs", "MCE", "Exit", "Memory", "Events", "Tasks", "Modules"]
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

    fn press(app: &mut App, model: &Model<'_>, keys: &str) {
        use ratatui::crossterm::event::{KeyCode, KeyModifiers};
        for c in keys.chars() {
            let code = if c == '\n' {
                KeyCode::Enter
            } else {
                KeyCode::Char(c)
            };
            app.key(model, KeyEvent::new(code, KeyModifiers::NONE));
        }
    }

    /// `/` from a pane without the text reaches the log; a miss says so; `:` from a pane
    /// without go-to reaches the memory pane.
    #[test]
    fn search_and_goto_from_any_pane() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/captures");
        let core = coroner_formats::open(&root.join("panic.core.zst")).unwrap();
        let model = Model::load(&core, "panic.core.zst".into());
        let mut app = App::new(crate::panes::all_panes(&model));
        app.select("Overview");
        press(&mut app, &model, "/secondary_startup_64_no_verify\n");
        assert_eq!(app.panes[app.current].title(), "Log");
        assert_eq!(app.message.as_deref(), Some("found in the Log pane"));
        app.select("Events");
        press(&mut app, &model, "/no such text anywhere\n");
        let msg = app.message.clone().unwrap_or_default();
        assert!(msg.starts_with("not found: no such text anywhere"), "{msg}");
        app.select("Overview");
        press(&mut app, &model, ":0x1000\n");
        assert_eq!(app.panes[app.current].title(), "Memory");
    }

    /// A backtrace frame opened from the vCPUs pane shows its code in the Memory pane.
    #[test]
    fn a_frame_opens_in_the_memory_pane() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/captures");
        let core = coroner_formats::open(&root.join("panic.core.zst")).unwrap();
        let mut model = Model::load(&core, "panic.core.zst".into());
        // The sample is slim and older than backtraces: give vCPU 0 one whose frame is
        // its own RIP, which the sample holds.
        let rip = model.report.vcpus[0].rip;
        model.vcpus[0].backtrace = Ok(coroner_analyze::backtrace::Backtrace {
            from: "test".into(),
            frames: vec![coroner_analyze::backtrace::BtFrame {
                ip: rip,
                sp: 0,
                symbol: None,
                method: "orc",
                reliable: true,
                stack: None,
                regs: None,
            }],
            stop: coroner_analyze::orc::Stop::EndOfStack,
            stop_reason: String::new(),
            complete: true,
        });
        let mut app = App::new(crate::panes::all_panes(&model));
        app.select("vCPUs");
        press(&mut app, &model, "]\n");
        assert_eq!(app.panes[app.current].title(), "Memory");
        let shown =
            crate::testutil::pane_rows(app.panes[app.current].as_mut(), &model, 120, 30).join("\n");
        assert!(shown.contains(&format!("v:{rip:x} = phys")), "{shown}");
    }

    /// The help overlay keeps its last line when lines wrap in a narrow terminal.
    #[test]
    fn help_overlay_keeps_its_last_line_when_lines_wrap() {
        let (_f, core) = crate::testutil::core(vec![crate::testutil::long64()]);
        let model = Model::load(&core, "test.core".into());
        let mut app = App::new(crate::panes::all_panes(&model));
        app.select("Log");
        app.help = true;
        let last = app.panes[app.current].help().last().unwrap().1;
        let rows = crate::terminal::draw_rows(&mut app, &model, 36, 60).unwrap();
        let text = rows.join(" ").replace('│', " ");
        let words: Vec<&str> = last.split_whitespace().collect();
        let tail = words[words.len() - 1];
        assert!(
            text.contains(tail),
            "{tail:?} missing:\n{}",
            rows.join("\n")
        );
    }

    #[test]
    fn sanitize_leaves_no_control_character() {
        let s = sanitize("a\x1b[2Jb\nc\td\u{7}\u{9b}e");
        assert!(!s.chars().any(|c| c.is_control()), "{s:?}");
        assert!(s.contains("\\n"));
    }
}
