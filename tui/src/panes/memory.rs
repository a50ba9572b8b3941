//! Memory: guest-physical memory in hex and ASCII, read only for the rows on screen.

use coroner_formats::{PhysAddr, PhysRange};
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::hex_view::{HexView, ROW_BYTES};
use crate::model::Model;
use crate::pane::{Outcome, Pane};
use crate::sanitize::sanitize;

/// The keys of this pane.
const HELP: &[(&str, &str)] = &[
    ("j k / Up Down", "a row (16 bytes)"),
    ("PgUp PgDn / Space", "a page"),
    (
        "g / G",
        "start of the first / end of the last present range",
    ),
    ("[ / ]", "previous / next present range"),
    (
        ": target",
        "go to hex physical, v:hex kernel virtual, or a symbol",
    ),
];

/// One past the highest guest-physical address x86 can have (52 address bits). The view
/// stays below it, which also keeps it away from the last byte of the 64-bit space.
const PHYS_END: u64 = 1 << 52;
/// The highest row start.
const LAST_ROW: u64 = PHYS_END - ROW_BYTES;

/// The memory pane.
pub struct Memory {
    /// Address of the first row shown (a multiple of [`ROW_BYTES`]).
    top: u64,
    /// The address last gone to (shown in the title).
    cursor: u64,
    /// How the start or the last go-to target was resolved.
    header: String,
    /// Rows of memory shown at the last render.
    rows: u64,
}

fn row_of(addr: u64) -> u64 {
    addr - addr % ROW_BYTES
}

impl Memory {
    /// Starts at vCPU 0's RIP (translated to physical) or else the first present range.
    pub fn new(model: &Model<'_>) -> Self {
        let first = model.mem().ranges().first().map(|r| r.start.0).unwrap_or(0);
        let state = model.vcpus.first().and_then(|v| v.state.as_ref());
        let (at, header) = match state {
            Some(s) if !coroner_analyze::x86::paging_on(s.cr[0]) => {
                // Paging off: linear = physical.
                let pa = s.cs.base.wrapping_add(s.rip) & 0xffff_ffff;
                (
                    pa,
                    format!(
                        "start: RIP of vCPU 0 = {:#x}, paging off: phys {pa:#x}",
                        s.rip
                    ),
                )
            }
            Some(s) => match model.resolve(&format!("v:{:x}", s.rip)) {
                Ok(pa) => (
                    pa,
                    format!("start: RIP of vCPU 0 = v:{:x} = phys {pa:#x}", s.rip),
                ),
                Err(e) => (
                    first,
                    format!(
                        "start: first present range ({first:#x}); RIP of vCPU 0 not translated: {e}"
                    ),
                ),
            },
            None => (
                first,
                format!("start: first present range ({first:#x}); no vCPU registers"),
            ),
        };
        Self {
            top: row_of(at),
            cursor: at,
            header: sanitize(&header),
            rows: 0,
        }
    }

    fn page(&self) -> u64 {
        self.rows.max(1) * ROW_BYTES
    }

    fn go(&mut self, addr: u64) {
        self.cursor = addr;
        self.top = row_of(addr).min(LAST_ROW);
    }

    /// The present range holding `addr`, with its index.
    fn range_of(ranges: &[PhysRange], addr: u64) -> Option<(usize, &PhysRange)> {
        ranges
            .iter()
            .enumerate()
            .find(|(_, r)| r.contains(PhysAddr(addr)))
    }

    fn title(&self, model: &Model<'_>) -> String {
        let ranges = model.mem().ranges();
        // The address gone to while it is on screen, else the first row.
        let shown = self.cursor >= self.top && self.cursor - self.top < self.page();
        let at = if shown { self.cursor } else { self.top };
        let place = match Self::range_of(ranges, at) {
            Some((i, r)) => format!("range {} of {}: {r}", i + 1, ranges.len()),
            None => "absent".to_string(),
        };
        format!(" Memory at {at:#x} — {place} ")
    }
}

impl Pane for Memory {
    fn title(&self) -> &'static str {
        "Memory"
    }

    fn render(&mut self, model: &Model<'_>, frame: &mut Frame<'_>, area: Rect) {
        let inner = Block::default().borders(Borders::TOP).inner(area);
        let [head, body] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
        self.rows = u64::from(body.height);
        let block = Block::default().borders(Borders::TOP).title(Span::styled(
            self.title(model),
            Style::default().add_modifier(Modifier::BOLD),
        ));
        frame.render_widget(block, area);
        frame.render_widget(
            Paragraph::new(Line::styled(
                self.header.clone(),
                Style::default().fg(Color::Cyan),
            )),
            head,
        );
        // No row at or past the end of the physical address space.
        let left = (PHYS_END - self.top.min(LAST_ROW)) / ROW_BYTES;
        let body = Rect {
            height: body.height.min(u16::try_from(left).unwrap_or(u16::MAX)),
            ..body
        };
        frame.render_widget(HexView::new(model.mem(), PhysAddr(self.top)), body);
    }

    fn key(&mut self, model: &Model<'_>, key: KeyEvent) -> Outcome {
        let ranges = model.mem().ranges();
        match key.code {
            KeyCode::Char('j') | KeyCode::Down => {
                self.top = self.top.saturating_add(ROW_BYTES).min(LAST_ROW)
            }
            KeyCode::Char('k') | KeyCode::Up => self.top = self.top.saturating_sub(ROW_BYTES),
            KeyCode::PageDown | KeyCode::Char(' ') => {
                self.top = self.top.saturating_add(self.page()).min(LAST_ROW)
            }
            KeyCode::PageUp => self.top = self.top.saturating_sub(self.page()),
            KeyCode::Char('g') | KeyCode::Home => match ranges.first() {
                Some(r) => self.go(r.start.0),
                None => return Outcome::Message("no memory in this dump".into()),
            },
            KeyCode::Char('G') | KeyCode::End => match ranges.last() {
                Some(r) => {
                    // The last page of the range, ending at its last row.
                    let last_row = row_of(r.end.0.saturating_sub(1));
                    let top = last_row
                        .saturating_sub(self.page() - ROW_BYTES)
                        .max(row_of(r.start.0));
                    self.go(r.end.0.saturating_sub(1));
                    self.top = top;
                }
                None => return Outcome::Message("no memory in this dump".into()),
            },
            KeyCode::Char(']') => match ranges.iter().find(|r| r.start.0 > self.top) {
                Some(r) => self.go(r.start.0),
                None => return Outcome::Message("no present range after this one".into()),
            },
            KeyCode::Char('[') => {
                // The range before the one holding the top row (or before this hole).
                let before = ranges
                    .iter()
                    .rev()
                    .find(|r| r.end.0 <= self.top && !r.contains(PhysAddr(self.top)));
                match before {
                    Some(r) => self.go(r.start.0),
                    None => return Outcome::Message("no present range before this one".into()),
                }
            }
            _ => return Outcome::Ignored,
        }
        Outcome::Handled
    }

    fn has_goto(&self) -> bool {
        true
    }

    fn goto(&mut self, model: &Model<'_>, target: &str) -> Outcome {
        let t = target.trim();
        match model.resolve(t) {
            Ok(pa) if pa >= PHYS_END => {
                Outcome::Message(format!("{pa:#x} is past the 52-bit physical address space"))
            }
            Ok(pa) => {
                let how = if let Some(v) = t.strip_prefix("v:") {
                    format!("v:{} = phys {pa:#x}", v.trim_start_matches("0x"))
                } else if let Some(sym) = model.kallsyms().and_then(|k| k.lookup(t)) {
                    format!("{t} = v:{:x} = phys {pa:#x}", sym.addr)
                } else {
                    format!("phys {pa:#x}")
                };
                self.header = sanitize(&format!("go to {t}: {how}"));
                self.go(pa);
                Outcome::Handled
            }
            Err(e) => Outcome::Message(sanitize(&e)),
        }
    }

    fn help(&self) -> &'static [(&'static str, &'static str)] {
        HELP
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;

    fn synthetic(long: bool) -> (tempfile::NamedTempFile, coroner_formats::Core) {
        let vcpu = if long {
            testutil::long64()
        } else {
            testutil::protected32()
        };
        testutil::core(vec![vcpu])
    }

    fn rows(pane: &mut Memory, model: &Model<'_>, w: u16, h: u16) -> Vec<String> {
        testutil::pane_rows(pane, model, w, h)
    }

    use testutil::key;

    #[test]
    fn starts_at_rip_or_the_first_range() {
        let (_f, core) = synthetic(false);
        let model = Model::load(&core, "test.core".into());
        let mut p = Memory::new(&model);
        let r = rows(&mut p, &model, 80, 24);
        assert!(r[0].contains("Memory at 0x1000"), "{r:?}");
        assert!(r[0].contains("range 1 of 2"), "{r:?}");
        assert!(r[1].contains("paging off: phys 0x1000"), "{r:?}");
        assert!(r[2].starts_with("000000001000 55 89 e5 31"), "{r:?}");

        let (_f, core) = synthetic(true);
        let model = Model::load(&core, "test.core".into());
        let mut p = Memory::new(&model);
        let r = rows(&mut p, &model, 80, 24);
        assert!(r[0].contains("Memory at 0x0 "), "{r:?}");
        assert!(r[1].contains("not translated"), "{r:?}");
        assert!(r[2].starts_with("000000000000 90 90"), "{r:?}");
    }

    #[test]
    fn goto_hex_and_bad_targets() {
        let (_f, core) = synthetic(false);
        let model = Model::load(&core, "test.core".into());
        let mut p = Memory::new(&model);
        assert_eq!(p.goto(&model, "0x100013"), Outcome::Handled);
        let r = rows(&mut p, &model, 80, 24);
        assert!(r[0].contains("Memory at 0x100013"), "{r:?}");
        assert!(r[0].contains("range 2 of 2"), "{r:?}");
        assert!(r[1].contains("go to 0x100013: phys 0x100013"), "{r:?}");
        assert!(r[2].starts_with("000000100010 "), "{r:?}");
        // Control characters in guest memory are drawn as dots.
        assert!(r[2].contains('.'), "{r:?}");

        let before = rows(&mut p, &model, 80, 24);
        match p.goto(&model, "no_such_symbol") {
            Outcome::Message(m) => assert!(m.contains("no_such_symbol"), "{m}"),
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            p.goto(&model, "v:ffffffff81000000"),
            Outcome::Message(_)
        ));
        assert_eq!(rows(&mut p, &model, 80, 24), before);
    }

    #[test]
    fn absent_memory_is_shown_absent() {
        let (_f, core) = synthetic(false);
        let model = Model::load(&core, "test.core".into());
        let mut p = Memory::new(&model);
        assert_eq!(p.goto(&model, "5000"), Outcome::Handled);
        let r = rows(&mut p, &model, 100, 24);
        assert!(r[0].contains("Memory at 0x5000 — absent"), "{r:?}");
        assert!(r[2].contains("-- --") && r[2].ends_with("absent"), "{r:?}");
        // The end of a range: the present bytes, then the hole.
        p.goto(&model, "1ff0");
        p.key(&model, key(KeyCode::Char('j')));
        let r = rows(&mut p, &model, 80, 24);
        assert!(r[0].contains("Memory at 0x2000 — absent"), "{r:?}");
        p.key(&model, key(KeyCode::Char('k')));
        let r = rows(&mut p, &model, 100, 24);
        assert!(r[2].starts_with("000000001ff0 90"), "{r:?}");
        assert!(r[3].ends_with("absent"), "{r:?}");
    }

    #[test]
    fn moves_between_ranges() {
        let (_f, core) = synthetic(false);
        let model = Model::load(&core, "test.core".into());
        let mut p = Memory::new(&model);
        rows(&mut p, &model, 80, 24);
        let top = |p: &mut Memory| rows(p, &model, 80, 24)[2][..12].to_string();
        assert_eq!(p.key(&model, key(KeyCode::Char(']'))), Outcome::Handled);
        assert_eq!(top(&mut p), "000000100000");
        assert!(matches!(
            p.key(&model, key(KeyCode::Char(']'))),
            Outcome::Message(_)
        ));
        assert_eq!(p.key(&model, key(KeyCode::Char('['))), Outcome::Handled);
        assert_eq!(top(&mut p), "000000000000");
        assert!(matches!(
            p.key(&model, key(KeyCode::Char('['))),
            Outcome::Message(_)
        ));
        // From a hole, `[` goes to the range before it.
        p.goto(&model, "0x50000");
        p.key(&model, key(KeyCode::Char('[')));
        assert_eq!(top(&mut p), "000000000000");
        // g / G: start of the first, end of the last range.
        p.key(&model, key(KeyCode::Char('G')));
        let r = rows(&mut p, &model, 80, 24);
        assert!(r[23].starts_with("000000102ff0"), "{r:?}");
        p.key(&model, key(KeyCode::Char('g')));
        assert_eq!(top(&mut p), "000000000000");
        p.key(&model, key(KeyCode::PageDown));
        assert_eq!(top(&mut p), "000000000160");
        p.key(&model, key(KeyCode::PageUp));
        assert_eq!(top(&mut p), "000000000000");
        p.key(&model, key(KeyCode::Char('k')));
        assert_eq!(top(&mut p), "000000000000");
        assert_eq!(p.key(&model, key(KeyCode::Char('x'))), Outcome::Ignored);
        assert!(!p.help().is_empty());
    }

    #[test]
    fn the_end_of_the_address_space() {
        let (_f, core) = synthetic(false);
        let model = Model::load(&core, "test.core".into());
        let mut p = Memory::new(&model);
        assert!(matches!(
            p.goto(&model, "ffffffffffffffff"),
            Outcome::Message(_)
        ));
        assert_eq!(p.goto(&model, "fffffffffffff"), Outcome::Handled);
        for _ in 0..3 {
            p.key(&model, key(KeyCode::PageDown));
            p.key(&model, key(KeyCode::Char('j')));
        }
        let r = rows(&mut p, &model, 100, 24);
        assert_eq!(
            r[2],
            format!(
                "{:012x} {}",
                PHYS_END - 16,
                "-- ".repeat(8) + " " + &"-- ".repeat(8) + "|                | absent"
            )
        );
        assert_eq!(r[3], "");
        for (w, h) in [(1, 1), (20, 3), (200, 60)] {
            rows(&mut p, &model, w, h);
        }
    }

    #[test]
    fn snapshot_80x24() {
        let (_f, core) = synthetic(false);
        let model = Model::load(&core, "test.core".into());
        let mut p = Memory::new(&model);
        insta::assert_snapshot!(rows(&mut p, &model, 80, 24).join("\n"));
    }

    #[test]
    fn snapshot_200x60() {
        let (_f, core) = synthetic(false);
        let model = Model::load(&core, "test.core".into());
        let mut p = Memory::new(&model);
        p.goto(&model, "0x1ff00");
        p.key(&model, key(KeyCode::Char(']')));
        p.key(&model, key(KeyCode::PageUp));
        insta::assert_snapshot!(rows(&mut p, &model, 200, 60).join("\n"));
    }
}
