//! Log: the whole kernel log as the console prints it (`[%5lu.%06lu] text`, one row per
//! line of a record, like `dmesg`), colored by level, with a level filter, search, wrapping
//! and jumps to the panic, the first oops and the first machine check. It opens at the
//! end, where the panic is.
//!
//! The display lines are built (and escaped) once; a frame draws only the rows it shows.

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use coroner_analyze::{Finding, LogRecord};

use crate::model::Model;
use crate::pane::{Direction, Outcome, Pane};
use crate::sanitize::sanitize;

/// Lines kept above a search hit or a jump target when it is scrolled into view.
const CONTEXT: usize = 3;
/// Columns Left/Right scroll by when lines do not wrap.
const HSTEP: usize = 8;

/// One row of `dmesg` output: a line of a record, with its timestamp prefix.
struct DisplayLine {
    /// The whole line, escaped: `[    1.234567] text`.
    text: Box<str>,
    /// Length in bytes of the timestamp prefix (`[    1.234567] `) at the start of `text`.
    prefix: u32,
    /// Record level, 0-7.
    level: u8,
}

/// The most verbose level shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Filter {
    All,
    Errors,
    Warnings,
    Info,
}

impl Filter {
    fn next(self) -> Self {
        match self {
            Filter::All => Filter::Errors,
            Filter::Errors => Filter::Warnings,
            Filter::Warnings => Filter::Info,
            Filter::Info => Filter::All,
        }
    }

    fn max_level(self) -> u8 {
        match self {
            Filter::All => u8::MAX,
            Filter::Errors => 3,
            Filter::Warnings => 4,
            Filter::Info => 6,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Filter::All => "all levels",
            Filter::Errors => "levels 0-3 (errors)",
            Filter::Warnings => "levels 0-4 (warnings)",
            Filter::Info => "levels 0-6 (no debug)",
        }
    }
}

/// Where `p`, `o` and `m` jump: a record's sequence number and the line of it that matters.
#[derive(Clone, Debug, Default)]
struct Targets {
    panic: Option<(u64, String)>,
    oops: Option<(u64, String)>,
    mce: Option<(u64, String)>,
}

impl Targets {
    fn from_model(model: &Model<'_>) -> Self {
        let f = |x: Option<&Finding>| x.map(|f| (f.seq, f.text.clone()));
        match &model.report.triage {
            Some(t) => Self {
                panic: f(t.panic.as_ref()),
                oops: f(t.oopses.first()),
                mce: f(t.machine_checks.first()),
            },
            None => Self::default(),
        }
    }
}

/// The log pane.
pub struct Log {
    lines: Vec<DisplayLine>,
    /// Sequence number and first display line of each record, in record order.
    records: Vec<(u64, u32)>,
    /// Indices into `lines` of the lines the filter lets through, ascending.
    visible: Vec<u32>,
    filter: Filter,
    /// First shown line, an index into `visible` (clamped before use).
    top: usize,
    /// Last search hit or jump target, an index into `lines`.
    hit: Option<usize>,
    wrap: bool,
    /// Horizontal scroll, in columns, when not wrapping.
    left: usize,
    /// Text rows and columns of the last frame (0 before the first).
    height: usize,
    width: usize,
    /// Lines that fitted in the last frame.
    shown: usize,
    targets: Targets,
    /// Why the log is empty.
    problem: Option<String>,
}

/// The `[%5lu.%06lu] ` prefix the console prints.
fn timestamp(ts_nsec: u64) -> String {
    format!(
        "[{:5}.{:06}] ",
        ts_nsec / 1_000_000_000,
        (ts_nsec % 1_000_000_000) / 1000
    )
}

fn level_style(level: u8) -> Style {
    match level {
        0..=2 => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        3 => Style::default().fg(Color::Red),
        4 => Style::default().fg(Color::Yellow),
        5 => Style::default().fg(Color::Cyan),
        6 => Style::default(),
        _ => Style::default().fg(Color::DarkGray),
    }
}

fn stamp_style() -> Style {
    Style::default().fg(Color::DarkGray)
}

/// Display width of `s` in terminal columns.
fn width_of(s: &str) -> usize {
    Span::raw(s).width()
}

/// Splits `s` into byte ranges of at most `first` columns for the first row and `rest`
/// for the others (both at least 1). A character wider than a row gets a row of its own;
/// zero-width characters stay with the one before.
fn chunks(s: &str, first: usize, rest: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut used = 0;
    let mut limit = first.max(1);
    for (i, c) in s.char_indices() {
        let w = width_of(&s[i..i + c.len_utf8()]);
        if used + w > limit && used > 0 {
            out.push((start, i));
            start = i;
            used = 0;
            limit = rest.max(1);
        }
        used += w;
    }
    out.push((start, s.len()));
    out
}

/// Case-insensitive substring test; `needle` is already lowercase.
fn contains_ci(hay: &str, needle: &str) -> bool {
    if needle.is_ascii() {
        let n = needle.as_bytes();
        n.is_empty()
            || hay
                .as_bytes()
                .windows(n.len())
                .any(|w| w.eq_ignore_ascii_case(n))
    } else {
        hay.to_lowercase().contains(needle)
    }
}

impl Log {
    /// The whole log of `model`.
    pub fn new(model: &Model<'_>) -> Self {
        Self::from_records(model.log(), model.log_problem(), Targets::from_model(model))
    }

    fn from_records(records: &[LogRecord], problem: Option<String>, targets: Targets) -> Self {
        let mut lines = Vec::with_capacity(records.len());
        let mut starts = Vec::with_capacity(records.len());
        for r in records {
            starts.push((r.seq, lines.len() as u32));
            let stamp = timestamp(r.ts_nsec);
            for part in r.text.split('\n') {
                let mut text = String::with_capacity(stamp.len() + part.len());
                text.push_str(&stamp);
                text.push_str(&sanitize(part));
                lines.push(DisplayLine {
                    text: text.into_boxed_str(),
                    prefix: stamp.len() as u32,
                    level: r.level,
                });
            }
        }
        let mut log = Self {
            lines,
            records: starts,
            visible: Vec::new(),
            filter: Filter::All,
            top: usize::MAX,
            hit: None,
            wrap: false,
            left: 0,
            height: 0,
            width: 0,
            shown: 0,
            targets,
            problem,
        };
        log.refilter();
        log
    }

    fn refilter(&mut self) {
        let max = self.filter.max_level();
        self.visible = (0..self.lines.len() as u32)
            .filter(|&i| self.lines[i as usize].level <= max)
            .collect();
    }

    /// Index into `visible` of the first visible line at or after `line`.
    fn visible_at_or_after(&self, line: usize) -> usize {
        self.visible.partition_point(|&v| (v as usize) < line)
    }

    /// Rows line `line` (an index into `lines`) takes at the last frame's width.
    fn rows_of(&self, line: usize) -> usize {
        if !self.wrap || self.width == 0 {
            return 1;
        }
        let (first, rest) = self.row_widths();
        chunks(&self.lines[line].text, first, rest).len()
    }

    /// Columns of a line's first row and of its continuation rows (indented under the
    /// text when there is room).
    fn row_widths(&self) -> (usize, usize) {
        let indent = 15;
        let w = self.width.max(1);
        if w >= indent + 20 {
            (w, w - indent)
        } else {
            (w, w)
        }
    }

    /// The last `top` that still fills the screen.
    fn max_top(&self) -> usize {
        let n = self.visible.len();
        if n == 0 {
            return 0;
        }
        let h = self.height.max(1);
        if !self.wrap || self.width == 0 {
            return n.saturating_sub(h);
        }
        let mut rows = 0;
        let mut top = n;
        while top > 0 {
            rows += self.rows_of(self.visible[top - 1] as usize);
            if rows > h {
                break;
            }
            top -= 1;
        }
        top.min(n - 1)
    }

    fn clamp(&mut self) {
        self.top = self.top.min(self.max_top());
    }

    /// Lines a page moves down: those the last frame showed.
    fn page_down(&self) -> usize {
        if self.wrap {
            self.shown.max(1)
        } else {
            self.height.max(1)
        }
    }

    /// Lines a page moves up: as many as fit above `top`.
    fn page_up(&self) -> usize {
        if !self.wrap || self.width == 0 {
            return self.height.max(1);
        }
        let h = self.height.max(1);
        let mut rows = 0;
        let mut n = 0;
        while n < self.top {
            rows += self.rows_of(self.visible[self.top - n - 1] as usize);
            if rows > h {
                break;
            }
            n += 1;
        }
        n.max(1)
    }

    /// Whether the first row of `visible[idx]` was on screen in the last frame.
    fn on_screen(&self, idx: usize) -> bool {
        if idx < self.top || self.height == 0 {
            return false;
        }
        if !self.wrap || self.width == 0 {
            return idx < self.top + self.height;
        }
        let mut rows = 0;
        for i in self.top..idx {
            rows += self.rows_of(self.visible[i] as usize);
            if rows >= self.height {
                return false;
            }
        }
        true
    }

    /// Scrolls so that `visible[idx]` shows, with a few lines above it when there is room.
    fn reveal(&mut self, idx: usize) {
        self.clamp();
        if self.on_screen(idx) {
            return;
        }
        let h = self.height.max(1);
        let mut top = idx;
        let mut rows = self.rows_of(self.visible[idx] as usize).min(h);
        while top > 0 && idx - top < CONTEXT {
            let r = self.rows_of(self.visible[top - 1] as usize);
            if rows + r >= h {
                break;
            }
            rows += r;
            top -= 1;
        }
        self.top = top;
        self.clamp();
    }

    /// Marks line `line` and scrolls to it, showing every level if the filter hides it.
    fn go_to_line(&mut self, line: usize) -> Outcome {
        let mut out = Outcome::Handled;
        if self.lines[line].level > self.filter.max_level() {
            self.set_filter(Filter::All);
            out = Outcome::Message("filter off: the line is above the level shown".into());
        }
        self.hit = Some(line);
        let idx = self.visible_at_or_after(line);
        self.reveal(idx);
        out
    }

    /// `p`/`o`/`m`: the display line of a triage finding.
    fn jump(&mut self, target: Option<(u64, String)>, what: &str) -> Outcome {
        let Some((seq, text)) = target else {
            return Outcome::Message(format!("no {what} in the log"));
        };
        let Some(r) = self.records.iter().position(|&(s, _)| s == seq) else {
            return Outcome::Message(format!("the {what}'s record ({seq}) is not in the log"));
        };
        let first = self.records[r].1 as usize;
        let end = self
            .records
            .get(r + 1)
            .map(|&(_, l)| l as usize)
            .unwrap_or(self.lines.len());
        let want = sanitize(text.trim());
        let line = (first..end)
            .find(|&i| !want.is_empty() && self.lines[i].text.contains(want.as_str()))
            .unwrap_or(first);
        self.go_to_line(line)
    }

    fn set_filter(&mut self, filter: Filter) {
        let anchor = self
            .visible
            .get(self.top.min(self.visible.len().saturating_sub(1)))
            .map(|&l| l as usize);
        self.filter = filter;
        self.refilter();
        self.top = anchor.map(|a| self.visible_at_or_after(a)).unwrap_or(0);
        self.clamp();
        if let Some(h) = self.hit {
            let idx = self.visible_at_or_after(h);
            if self.visible.get(idx).map(|&l| l as usize) == Some(h) {
                self.reveal(idx);
            }
        }
    }

    /// Scrolling, filter, wrap and jump keys.
    fn on_key(&mut self, key: KeyEvent) -> Outcome {
        self.clamp();
        match key.code {
            KeyCode::Char('j') | KeyCode::Down => self.top += 1,
            KeyCode::Char('k') | KeyCode::Up => self.top = self.top.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => self.top += self.page_down(),
            KeyCode::PageUp => self.top = self.top.saturating_sub(self.page_up()),
            KeyCode::Char('g') | KeyCode::Home => self.top = 0,
            KeyCode::Char('G') | KeyCode::End => self.top = usize::MAX,
            KeyCode::Left if !self.wrap => self.left = self.left.saturating_sub(HSTEP),
            KeyCode::Right if !self.wrap => self.left = (self.left + HSTEP).min(u16::MAX as usize),
            KeyCode::Char('w') => {
                self.wrap = !self.wrap;
                self.left = 0;
            }
            KeyCode::Char('l') => self.set_filter(self.filter.next()),
            KeyCode::Char('p') => return self.jump(self.targets.panic.clone(), "panic"),
            KeyCode::Char('o') => return self.jump(self.targets.oops.clone(), "oops"),
            KeyCode::Char('m') => return self.jump(self.targets.mce.clone(), "machine check"),
            _ => return Outcome::Ignored,
        }
        self.clamp();
        Outcome::Handled
    }

    /// Finds `query` (case-insensitive) in the shown lines after (or before) the current
    /// position, wrapping around.
    fn find(&mut self, query: &str, dir: Direction) -> Outcome {
        let n = self.visible.len();
        if n == 0 {
            return Outcome::Message("nothing to search".into());
        }
        self.clamp();
        let q = query.to_lowercase();
        let hit = self.hit.and_then(|h| {
            let i = self.visible_at_or_after(h);
            (self.visible.get(i).map(|&l| l as usize) == Some(h)).then_some(i)
        });
        // After (before) the last hit; without one, from the top (bottom) of the screen.
        let start = match (hit, dir) {
            (Some(i), Direction::Forward) => i + 1,
            (Some(i), Direction::Backward) => i + n - 1,
            (None, Direction::Forward) => self.top,
            (None, Direction::Backward) => (self.top + self.height.max(1)).min(n) - 1,
        };
        for step in 0..n {
            let i = match dir {
                Direction::Forward => (start + step) % n,
                Direction::Backward => (start + n - step % n) % n,
            };
            if contains_ci(&self.lines[self.visible[i] as usize].text, &q) {
                self.hit = Some(self.visible[i] as usize);
                self.reveal(i);
                return Outcome::Handled;
            }
        }
        Outcome::Message(format!("not found: {query}"))
    }

    /// The rows of line `line` from its `first` byte range on, styled.
    fn styled_rows(&self, line: usize, ranges: &[(usize, usize)]) -> Vec<Line<'static>> {
        let l = &self.lines[line];
        let p = l.prefix as usize;
        let text_style = level_style(l.level);
        let mark = |s: Style| {
            if self.hit == Some(line) {
                s.add_modifier(Modifier::REVERSED)
            } else {
                s
            }
        };
        ranges
            .iter()
            .enumerate()
            .map(|(k, &(a, b))| {
                let mut spans = Vec::with_capacity(3);
                if k > 0 && self.wrap {
                    let (first, rest) = self.row_widths();
                    if first > rest {
                        spans.push(Span::raw(" ".repeat(first - rest)));
                    }
                }
                if a < p {
                    spans.push(Span::styled(
                        l.text[a..b.min(p)].to_string(),
                        mark(stamp_style()),
                    ));
                }
                if b > p {
                    spans.push(Span::styled(
                        l.text[a.max(p)..b].to_string(),
                        mark(text_style),
                    ));
                }
                Line::from(spans)
            })
            .collect()
    }

    fn title(&self) -> String {
        let n = self.visible.len();
        let pos = if n == 0 {
            "no lines".to_string()
        } else {
            format!("line {} of {n}", self.top.min(n - 1) + 1)
        };
        let filter = if self.filter == Filter::All {
            String::new()
        } else {
            format!(" [{} of {} lines]", self.filter.label(), self.lines.len())
        };
        let wrap = if self.wrap { " [wrap]" } else { "" };
        format!(" Log ({pos}){filter}{wrap} ")
    }

    /// Draws the shown rows into `area`.
    fn draw(&mut self, frame: &mut Frame<'_>, area: Rect) {
        self.height = area.height.saturating_sub(2) as usize;
        self.width = area.width.saturating_sub(2) as usize;
        self.clamp();
        let block = Block::default().borders(Borders::ALL).title(self.title());
        if self.lines.is_empty() {
            let why = self.problem.as_deref().unwrap_or("the kernel log is empty");
            frame.render_widget(
                Paragraph::new(Line::styled(sanitize(why), Style::default().fg(Color::Red)))
                    .block(block),
                area,
            );
            return;
        }
        if self.visible.is_empty() {
            frame.render_widget(
                Paragraph::new(format!("no line at {}: l shows more", self.filter.label()))
                    .block(block),
                area,
            );
            return;
        }
        let mut rows: Vec<Line<'static>> = Vec::with_capacity(self.height);
        let mut shown = 0;
        let (first, rest) = self.row_widths();
        for &line in self.visible[self.top..].iter() {
            if rows.len() >= self.height {
                break;
            }
            let line = line as usize;
            let text = &self.lines[line].text;
            let ranges = if self.wrap {
                let mut r = chunks(text, first, rest);
                r.truncate(self.height - rows.len());
                r
            } else {
                vec![(0, text.len())]
            };
            let complete = !self.wrap || ranges.last().map(|r| r.1) == Some(text.len());
            rows.extend(self.styled_rows(line, &ranges));
            if complete {
                shown += 1;
            }
        }
        self.shown = shown;
        let mut p = Paragraph::new(rows).block(block);
        if !self.wrap {
            p = p.scroll((0, self.left.min(u16::MAX as usize) as u16));
        }
        frame.render_widget(p, area);
    }
}

impl Pane for Log {
    fn title(&self) -> &'static str {
        "Log"
    }

    fn render(&mut self, _model: &Model<'_>, frame: &mut Frame<'_>, area: Rect) {
        self.draw(frame, area);
    }

    fn key(&mut self, _model: &Model<'_>, key: KeyEvent) -> Outcome {
        self.on_key(key)
    }

    fn search(&mut self, _model: &Model<'_>, query: &str, dir: Direction) -> Outcome {
        self.find(query, dir)
    }

    fn help(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("j k / arrows", "scroll a line"),
            ("PgUp PgDn / Space", "scroll a page"),
            ("g G / Home End", "top / bottom (opens at the bottom)"),
            ("Left Right", "scroll sideways (without wrap)"),
            ("w", "wrap long lines on / off"),
            ("l", "levels shown: all, 0-3, 0-4, 0-6"),
            ("p", "jump to the panic line"),
            ("o", "jump to the first oops / BUG"),
            ("m", "jump to the first machine check"),
            ("/ n N", "search (case-insensitive), next, previous"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;
    use ratatui::crossterm::event::KeyModifiers;
    use ratatui::Terminal;

    fn rec(seq: u64, ts_nsec: u64, level: u8, text: &str) -> LogRecord {
        LogRecord {
            seq,
            ts_nsec,
            level,
            text: text.to_string(),
            ..LogRecord::default()
        }
    }

    /// `n` records `line <i>` at level 6.
    fn numbered(n: u64) -> Vec<LogRecord> {
        (0..n)
            .map(|i| rec(i, i * 1_000_000, 6, &format!("line {i}")))
            .collect()
    }

    /// A small boot-to-panic log with every level, a multi-line record and a long line.
    fn sample() -> (Vec<LogRecord>, Targets) {
        let mut r = vec![
            rec(
                0,
                0,
                5,
                "Linux version 6.1.0-test (gcc 12) #1 SMP PREEMPT_DYNAMIC",
            ),
            rec(1, 0, 6, "Command line: console=ttyS0 root=/dev/vda1"),
            rec(
                2,
                1_000,
                7,
                "x86/fpu: xstate_offset[2]:  576, xstate_sizes[2]:  256",
            ),
            rec(
                3,
                12_345_000,
                6,
                "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
            ),
            rec(4, 512_000_000, 4, "ACPI: some firmware bug, continuing"),
            rec(5, 1_250_000_000, 6, "Memory: 1984512K/2096632K available"),
            rec(
                6,
                2_000_000_000,
                3,
                "ata1: failed to resume link (SControl 0)",
            ),
            rec(
                7,
                3_141_592_653,
                4,
                "WARNING: CPU: 0 PID: 1 at kernel/foo.c:42 foo_init+0x10/0x20\nModules linked in:",
            ),
            rec(
                8,
                4_000_000_000,
                6,
                &format!("long: {}", "abcdefghij".repeat(15)),
            ),
            rec(
                9,
                10_000_000_000,
                0,
                "mce: [Hardware Error]: CPU 0: Machine Check Exception: 5 Bank 1",
            ),
            rec(
                10,
                10_000_100_000,
                1,
                "BUG: unable to handle page fault for address: 0000000000000008",
            ),
            rec(11, 10_000_200_000, 4, "Oops: 0002 [#1] PREEMPT SMP NOPTI"),
            rec(12, 10_000_300_000, 4, "RIP: 0010:crash_me+0x5/0x10"),
            rec(
                13,
                10_000_400_000,
                4,
                "Call Trace:\n <TASK>\n ? die+0x30/0x50\n crash_me+0x5/0x10\n </TASK>",
            ),
            rec(
                14,
                10_001_000_000,
                0,
                "Kernel panic - not syncing: Fatal exception",
            ),
            rec(
                15,
                10_001_100_000,
                0,
                "Kernel Offset: 0x1a000000 from 0xffffffff81000000",
            ),
        ];
        for i in 0..10 {
            r.insert(
                6 + i as usize,
                rec(
                    100 + i,
                    1_500_000_000 + i * 1000,
                    6,
                    &format!("pci 0000:00:0{i}.0: probed"),
                ),
            );
        }
        let t = Targets {
            panic: Some((14, "Kernel panic - not syncing: Fatal exception".into())),
            oops: Some((10, "BUG: unable to handle page fault".into())),
            mce: Some((9, "mce: [Hardware Error]: CPU 0".into())),
        };
        (r, t)
    }

    fn draw(log: &mut Log, w: u16, h: u16) -> Buffer {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| log.draw(f, f.area())).unwrap();
        t.backend().buffer().clone()
    }

    fn text_rows(buf: &Buffer) -> Vec<String> {
        let a = buf.area;
        (0..a.height)
            .map(|y| {
                (0..a.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    fn rows(log: &mut Log, w: u16, h: u16) -> Vec<String> {
        text_rows(&draw(log, w, h))
    }

    fn press(log: &mut Log, code: KeyCode) -> Outcome {
        log.on_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn ch(log: &mut Log, c: char) -> Outcome {
        press(log, KeyCode::Char(c))
    }

    /// The text of body row `i` (inside the border).
    fn body(r: &[String], i: usize) -> &str {
        r[i + 1]
            .trim_start_matches('│')
            .trim_end_matches('│')
            .trim_end()
    }

    #[test]
    fn prints_records_like_the_console() {
        let recs = vec![
            rec(0, 0, 6, "first"),
            rec(1, 123_456_789_012, 6, "two\nlines"),
            rec(2, 100_000_000_000_000, 6, ""),
        ];
        let mut log = Log::from_records(&recs, None, Targets::default());
        let r = rows(&mut log, 60, 8);
        assert_eq!(body(&r, 0), "[    0.000000] first");
        assert_eq!(body(&r, 1), "[  123.456789] two");
        assert_eq!(body(&r, 2), "[  123.456789] lines");
        assert_eq!(body(&r, 3), "[100000.000000]");
        assert!(r[0].contains("line 1 of 4"), "{}", r[0]);
    }

    #[test]
    fn opens_at_the_end() {
        let mut log = Log::from_records(&numbered(100), None, Targets::default());
        let r = rows(&mut log, 80, 24);
        assert!(body(&r, 21).ends_with("line 99"), "{r:?}");
        assert!(body(&r, 0).ends_with("line 78"), "{r:?}");
        assert!(r[0].contains("line 79 of 100"), "{}", r[0]);
        assert!(r[23].starts_with('└'));
    }

    #[test]
    fn scrolling_keys() {
        let mut log = Log::from_records(&numbered(100), None, Targets::default());
        rows(&mut log, 80, 24);
        // At the bottom already: j stays.
        assert_eq!(ch(&mut log, 'j'), Outcome::Handled);
        assert_eq!(log.top, 78);
        ch(&mut log, 'k');
        press(&mut log, KeyCode::Up);
        assert_eq!(log.top, 76);
        press(&mut log, KeyCode::Down);
        assert_eq!(log.top, 77);
        ch(&mut log, 'g');
        let r = rows(&mut log, 80, 24);
        assert!(body(&r, 0).ends_with("line 0"), "{r:?}");
        press(&mut log, KeyCode::PageDown);
        assert_eq!(log.top, 22);
        ch(&mut log, ' ');
        assert_eq!(log.top, 44);
        press(&mut log, KeyCode::PageUp);
        assert_eq!(log.top, 22);
        ch(&mut log, 'G');
        assert_eq!(log.top, 78);
        press(&mut log, KeyCode::Home);
        assert_eq!(log.top, 0);
        press(&mut log, KeyCode::End);
        assert_eq!(log.top, 78);
        press(&mut log, KeyCode::PageDown);
        assert_eq!(log.top, 78);
        assert_eq!(ch(&mut log, 'x'), Outcome::Ignored);
        let r = rows(&mut log, 80, 24);
        assert!(body(&r, 21).ends_with("line 99"), "{r:?}");
    }

    fn needles() -> Log {
        let mut recs = numbered(100);
        for i in [10, 50, 90] {
            recs[i].text = format!("line {i} has a NeEdLe");
        }
        Log::from_records(&recs, None, Targets::default())
    }

    fn hit_row(buf: &Buffer, needle: &str) -> Option<u16> {
        text_rows(buf)
            .iter()
            .position(|r| r.contains(needle))
            .map(|y| y as u16)
    }

    #[test]
    fn search_forward_backward_wraps_and_highlights() {
        let mut log = needles();
        rows(&mut log, 80, 24);
        ch(&mut log, 'g');
        assert_eq!(log.find("needle", Direction::Forward), Outcome::Handled);
        assert_eq!(log.hit, Some(10));
        let buf = draw(&mut log, 80, 24);
        let y = hit_row(&buf, "line 10 has").unwrap();
        assert!(buf[(1, y)].modifier.contains(Modifier::REVERSED));
        assert!(buf[(20, y)].modifier.contains(Modifier::REVERSED));
        let y = hit_row(&buf, "line 11").unwrap();
        assert!(!buf[(20, y)].modifier.contains(Modifier::REVERSED));

        assert_eq!(log.find("NEEDLE", Direction::Forward), Outcome::Handled);
        assert_eq!(log.hit, Some(50));
        let buf = draw(&mut log, 80, 24);
        let y = hit_row(&buf, "line 50 has").unwrap();
        assert_eq!(y, 1 + CONTEXT as u16, "scrolled into view with context");
        log.find("needle", Direction::Forward);
        assert_eq!(log.hit, Some(90));
        assert!(hit_row(&draw(&mut log, 80, 24), "line 90 has").is_some());
        // Wraps around to the first.
        log.find("needle", Direction::Forward);
        assert_eq!(log.hit, Some(10));
        assert!(hit_row(&draw(&mut log, 80, 24), "line 10 has").is_some());
        // Backward from the first wraps to the last.
        log.find("needle", Direction::Backward);
        assert_eq!(log.hit, Some(90));
        log.find("needle", Direction::Backward);
        assert_eq!(log.hit, Some(50));
        // The timestamp is part of the line.
        log.find("[    0.042000]", Direction::Forward);
        assert_eq!(log.hit, Some(42));
        assert_eq!(
            log.find("haystack", Direction::Forward),
            Outcome::Message("not found: haystack".into())
        );
        assert_eq!(log.hit, Some(42));
    }

    #[test]
    fn search_without_a_hit_starts_on_screen() {
        let mut log = needles();
        rows(&mut log, 80, 24);
        // The screen shows lines 78-99: forward finds 90, backward too.
        log.find("needle", Direction::Forward);
        assert_eq!(log.hit, Some(90));
        let mut log = needles();
        rows(&mut log, 80, 24);
        log.find("needle", Direction::Backward);
        assert_eq!(log.hit, Some(90));
        let mut log = needles();
        rows(&mut log, 80, 24);
        ch(&mut log, 'g');
        log.find("needle", Direction::Backward);
        assert_eq!(log.hit, Some(10));
    }

    #[test]
    fn level_filter_cycles() {
        let (recs, t) = sample();
        let mut log = Log::from_records(&recs, None, t);
        let total = log.lines.len();
        let r = rows(&mut log, 100, 40);
        assert!(!r[0].contains('['), "{}", r[0]);
        ch(&mut log, 'l');
        let r = rows(&mut log, 100, 40);
        assert!(r[0].contains("levels 0-3 (errors)"), "{}", r[0]);
        let shown: Vec<&String> = r[1..r.len() - 1]
            .iter()
            .filter(|l| l.contains('['))
            .collect();
        assert_eq!(log.visible.len(), 5, "{shown:?}");
        assert!(r.iter().any(|l| l.contains("ata1: failed")));
        assert!(!r.iter().any(|l| l.contains("Oops")));
        ch(&mut log, 'l');
        let r = rows(&mut log, 100, 40);
        assert!(r[0].contains("0-4"), "{}", r[0]);
        assert!(r.iter().any(|l| l.contains("Oops")));
        assert!(!r.iter().any(|l| l.contains("Memory:")));
        ch(&mut log, 'l');
        let r = rows(&mut log, 100, 40);
        assert!(r[0].contains("0-6"), "{}", r[0]);
        assert_eq!(log.visible.len(), total - 1);
        assert!(!r.iter().any(|l| l.contains("xstate")));
        ch(&mut log, 'l');
        rows(&mut log, 100, 40);
        assert_eq!(log.visible.len(), total);
        assert_eq!(log.filter, Filter::All);
    }

    #[test]
    fn jumps_to_panic_oops_and_machine_check() {
        let (recs, t) = sample();
        let mut log = Log::from_records(&recs, None, t);
        rows(&mut log, 80, 8);
        ch(&mut log, 'g');
        assert_eq!(ch(&mut log, 'p'), Outcome::Handled);
        let buf = draw(&mut log, 80, 8);
        let y = hit_row(&buf, "Kernel panic - not syncing").unwrap();
        assert!(buf[(20, y)].modifier.contains(Modifier::REVERSED));
        ch(&mut log, 'g');
        ch(&mut log, 'o');
        let buf = draw(&mut log, 80, 8);
        assert!(hit_row(&buf, "BUG: unable to handle").is_some());
        ch(&mut log, 'm');
        assert!(hit_row(&draw(&mut log, 80, 8), "Machine Check Exception").is_some());
        // A target hidden by the filter turns the filter off.
        for _ in 0..3 {
            ch(&mut log, 'l');
        }
        assert_eq!(log.filter, Filter::Info);
        let mut recs2 = recs.clone();
        recs2[0].level = 7;
        let mut log = Log::from_records(
            &recs2,
            None,
            Targets {
                panic: Some((0, String::new())),
                ..Targets::default()
            },
        );
        rows(&mut log, 80, 8);
        for _ in 0..3 {
            ch(&mut log, 'l');
        }
        assert!(matches!(ch(&mut log, 'p'), Outcome::Message(_)));
        assert_eq!(log.filter, Filter::All);
        assert!(hit_row(&draw(&mut log, 80, 8), "Linux version").is_some());
        // None recorded.
        let mut log = Log::from_records(&numbered(5), None, Targets::default());
        rows(&mut log, 80, 8);
        assert_eq!(
            ch(&mut log, 'p'),
            Outcome::Message("no panic in the log".into())
        );
        assert!(matches!(ch(&mut log, 'o'), Outcome::Message(m) if m.contains("oops")));
        assert!(matches!(ch(&mut log, 'm'), Outcome::Message(m) if m.contains("machine check")));
    }

    #[test]
    fn jump_finds_the_line_inside_a_record() {
        let recs = vec![
            rec(0, 0, 6, "before"),
            rec(
                7,
                1,
                0,
                "---[ cut here ]---\nKernel panic - not syncing: x\nmore",
            ),
        ];
        let t = Targets {
            panic: Some((7, "Kernel panic - not syncing: x".into())),
            ..Targets::default()
        };
        let mut log = Log::from_records(&recs, None, t);
        rows(&mut log, 80, 10);
        ch(&mut log, 'p');
        assert_eq!(log.hit, Some(2));
    }

    fn long_log() -> Vec<LogRecord> {
        let long: String = (0..300)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        vec![
            rec(0, 0, 6, "short"),
            rec(1, 1_000_000, 6, &long),
            rec(2, 2_000_000, 6, "after"),
        ]
    }

    /// The text of a wrapped line, rebuilt from its rows.
    fn joined(r: &[String]) -> String {
        r[1..r.len() - 1]
            .iter()
            .map(|l| l.trim_start_matches('│').trim_end_matches('│').trim())
            .collect()
    }

    #[test]
    fn wrap_toggle_at_80_and_200_columns() {
        let recs = long_log();
        let long = &recs[1].text;
        let mut log = Log::from_records(&recs, None, Targets::default());
        // No wrap: one row per line, cut at the border.
        let r = rows(&mut log, 80, 24);
        assert_eq!(r.iter().filter(|l| l.contains("abcdef")).count(), 1);
        assert!(body(&r, 2).ends_with("after"));
        assert_eq!(ch(&mut log, 'w'), Outcome::Handled);
        for (w, want_rows) in [
            (80u16, 1 + (300usize + 15 - 78).div_ceil(78 - 15)),
            (200, 2),
        ] {
            let r = rows(&mut log, w, 24);
            assert!(r[0].contains("[wrap]"), "{}", r[0]);
            let n = r
                .iter()
                .filter(|l| l.contains("abc") || l.contains("xyz"))
                .count();
            assert_eq!(n, want_rows, "{w}: {r:#?}");
            // Continuation rows are indented under the text.
            assert!(body(&r, 2).starts_with(&" ".repeat(15)), "{r:#?}");
            assert!(joined(&r).contains(long.as_str()), "{w}: {r:#?}");
            assert!(body(&r, 1 + want_rows).ends_with("after"), "{w}: {r:#?}");
            for l in &r {
                assert!(l.chars().count() <= w as usize);
            }
        }
        // Narrow: no indent, still complete.
        let r = rows(&mut log, 24, 60);
        assert!(joined(&r).contains(long.as_str()), "{r:#?}");
        // A line taller than the screen is cut, and G keeps it at the top.
        ch(&mut log, 'G');
        let r = rows(&mut log, 30, 10);
        assert!(r.iter().all(|l| l.chars().count() <= 30));
        ch(&mut log, 'w');
        let r = rows(&mut log, 80, 24);
        assert!(!r[0].contains("[wrap]"));
        assert_eq!(r.iter().filter(|l| l.contains("abcdef")).count(), 1);
    }

    #[test]
    fn wrapped_paging_and_bottom() {
        let mut recs = numbered(50);
        for r in recs.iter_mut().step_by(3) {
            r.text = format!("{} {}", r.text, "x".repeat(150));
        }
        let mut log = Log::from_records(&recs, None, Targets::default());
        ch(&mut log, 'w');
        let r = rows(&mut log, 80, 20);
        let last = r.iter().rposition(|l| l.contains('[')).unwrap();
        assert!(r[last].contains("line 49"), "{r:#?}");
        // Line 39 (three rows) does not fit above line 40.
        assert!(body(&r, 0).ends_with("line 40"), "{r:#?}");
        ch(&mut log, 'g');
        rows(&mut log, 80, 20);
        let shown = log.shown;
        assert!(shown > 0 && shown < 18);
        press(&mut log, KeyCode::PageDown);
        assert_eq!(log.top, shown);
        press(&mut log, KeyCode::PageUp);
        assert_eq!(log.top, 0);
        // Search reveals a line in wrapped mode.
        log.find("line 30", Direction::Forward);
        assert!(hit_row(&draw(&mut log, 80, 20), "line 30").is_some());
        log.find("line 3 ", Direction::Backward);
        assert!(hit_row(&draw(&mut log, 80, 20), "line 3 ").is_some());
    }

    #[test]
    fn hostile_text_reaches_no_terminal_cell() {
        let nasty = format!(
            "a\x1b[2Jb\u{9b}31mc\x07d\te\r{}\u{202e}rtl\u{2028}",
            "Z".repeat(2000)
        );
        let recs = vec![rec(0, 0, 0, &nasty), rec(1, 1, 6, "\x1b]0;title\x07")];
        for wrap in [false, true] {
            let mut log = Log::from_records(&recs, None, Targets::default());
            if wrap {
                ch(&mut log, 'w');
            }
            ch(&mut log, 'g');
            for (w, h) in [(80, 24), (200, 60)] {
                let buf = draw(&mut log, w, h);
                for y in 0..h {
                    for x in 0..w {
                        let s = buf[(x, y)].symbol();
                        assert!(!s.chars().any(|c| c.is_control()), "{s:?} at {x},{y}");
                    }
                }
                let r = text_rows(&buf);
                assert!(r.iter().any(|l| l.contains("a\\e[2Jb")), "{r:#?}");
            }
        }
        // The problem text too.
        let mut log = Log::from_records(&[], Some("bad \x1b[31m ring".into()), Targets::default());
        let r = rows(&mut log, 80, 10);
        assert!(body(&r, 0).starts_with("bad \\e[31m ring"), "{r:?}");
    }

    #[test]
    fn empty_log_shows_why() {
        let mut log = Log::from_records(&[], Some("kernel log: no prb".into()), Targets::default());
        let r = rows(&mut log, 80, 10);
        assert!(body(&r, 0).starts_with("kernel log: no prb"));
        assert!(r[0].contains("no lines"));
        for c in ['j', 'k', 'g', 'G', 'w', 'l', 'p'] {
            ch(&mut log, c);
        }
        assert!(matches!(
            log.find("x", Direction::Forward),
            Outcome::Message(_)
        ));
        let mut log = Log::from_records(&[], None, Targets::default());
        assert!(body(&rows(&mut log, 80, 10), 0).starts_with("the kernel log is empty"));
        // Every line filtered out.
        let mut log = Log::from_records(&numbered(3), None, Targets::default());
        ch(&mut log, 'l');
        let r = rows(&mut log, 80, 10);
        assert!(body(&r, 0).starts_with("no line at levels 0-3"), "{r:?}");
    }

    #[test]
    fn a_frame_of_100k_records_is_fast() {
        let recs: Vec<LogRecord> = (0..100_000u64)
            .map(|i| {
                rec(
                    i,
                    i * 7_000_123,
                    (i % 8) as u8,
                    &format!("record {i} of a big log"),
                )
            })
            .collect();
        let mut log = Log::from_records(&recs, None, Targets::default());
        let mut t = Terminal::new(TestBackend::new(200, 60)).unwrap();
        t.draw(|f| log.draw(f, f.area())).unwrap();
        for wrap in [false, true] {
            if wrap {
                ch(&mut log, 'w');
            }
            let start = std::time::Instant::now();
            t.draw(|f| log.draw(f, f.area())).unwrap();
            ch(&mut log, 'k');
            t.draw(|f| log.draw(f, f.area())).unwrap();
            let took = start.elapsed();
            assert!(took < std::time::Duration::from_secs(1), "{took:?}");
        }
        let start = std::time::Instant::now();
        ch(&mut log, 'g');
        log.find("record 99999 ", Direction::Forward);
        ch(&mut log, 'l');
        let took = start.elapsed();
        assert!(took < std::time::Duration::from_secs(1), "{took:?}");
        assert_eq!(log.hit, Some(99_999));
    }

    #[test]
    fn snapshot_80x24() {
        let (recs, t) = sample();
        let mut log = Log::from_records(&recs, None, t);
        insta::assert_snapshot!(rows(&mut log, 80, 24).join("\n"));
    }

    #[test]
    fn snapshot_200x60() {
        let (recs, t) = sample();
        let mut log = Log::from_records(&recs, None, t);
        insta::assert_snapshot!(rows(&mut log, 200, 60).join("\n"));
    }

    #[test]
    fn snapshot_80x24_wrapped_at_the_panic() {
        let (recs, t) = sample();
        let mut log = Log::from_records(&recs, None, t);
        ch(&mut log, 'w');
        rows(&mut log, 80, 24);
        ch(&mut log, 'g');
        ch(&mut log, 'o');
        insta::assert_snapshot!(rows(&mut log, 80, 24).join("\n"));
    }

    #[test]
    fn help_lists_the_pane_keys() {
        let log = Log::from_records(&[], None, Targets::default());
        let keys: Vec<&str> = log.help().iter().map(|(k, _)| *k).collect();
        for k in ["w", "l", "p", "o", "m"] {
            assert!(keys.contains(&k), "{keys:?}");
        }
        assert_eq!(Pane::title(&log), "Log");
    }
}
