//! vCPUs: one vCPU at a time — registers decoded, the code at RIP, and the stack.
//!
//! A narrow terminal gets one scrollable column (registers, code, stack); a wide one gets
//! the registers on the left and the code and stack on the right.

use coroner_analyze::x86::{set_bits, CR0_BITS, CR4_BITS, EFER_BITS, RFLAGS_BITS};
use coroner_formats::{QemuCpuState, Segment, GPR_NAMES};
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::frames;
use crate::sanitize::sanitize;
use coroner_analyze::VcpuContext;

use crate::model::Model;
use crate::pane::{Direction, Outcome, Pane};

/// Width from which registers and code sit side by side.
const WIDE_FROM: u16 = 150;
/// Width of the registers column in the wide layout (borders included).
const REGS_WIDTH: u16 = 84;

/// The keys of this pane.
const HELP: &[(&str, &str)] = &[
    ("< > / Left Right", "previous / next vCPU"),
    (
        "[ ] / Enter",
        "select a backtrace frame / open its code in Memory",
    ),
    ("j k / Up Down", "scroll a line"),
    ("PgUp PgDn / Space", "scroll a page"),
    ("g G / Home End", "top / bottom"),
    ("/ n N", "search the registers, code and stack"),
    (": address", "find an address or value in the pane"),
];

/// The vCPU pane.
pub struct Vcpus {
    /// Position in `model.vcpus` of the vCPU shown.
    current: usize,
    /// First line shown (in each column, clamped to it).
    top: usize,
    /// Line of the last search hit, in [`Sections::all`] numbering.
    hit: Option<usize>,
    /// Rows available for lines at the last render.
    height: usize,
    /// Whether the last render used the wide layout.
    wide: bool,
    /// The selected frame of the vCPU's backtrace.
    frame: usize,
}

/// The lines of one vCPU: registers, and the code followed by the stack.
struct Sections {
    regs: Vec<Line<'static>>,
    right: Vec<Line<'static>>,
}

impl Sections {
    /// Everything in one column: registers, a blank line, code and stack.
    fn all(&self) -> Vec<Line<'static>> {
        let mut v = self.regs.clone();
        v.push(Line::raw(""));
        v.extend(self.right.iter().cloned());
        v
    }

    /// Where line `i` of [`Sections::all`] is in the wide layout: (right column?, row).
    fn wide_pos(&self, i: usize) -> (bool, usize) {
        if i <= self.regs.len() {
            (false, i.min(self.regs.len().saturating_sub(1)))
        } else {
            (true, i - self.regs.len() - 1)
        }
    }
}

fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
}

fn name(text: &str) -> Span<'static> {
    Span::styled(text.to_string(), Style::default().fg(Color::Cyan))
}

fn heading(text: &str) -> Line<'static> {
    Line::styled(
        text.to_string(),
        Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
    )
}

/// `dpl 0 P code L G` for a segment descriptor's flags.
fn segment_attrs(s: &Segment) -> String {
    let mut a = format!("dpl {}", s.dpl());
    if s.present() {
        a.push_str(" P");
    }
    if s.flags & (1 << 12) != 0 {
        a.push_str(if s.flags & (1 << 11) != 0 {
            " code"
        } else {
            " data"
        });
    } else if s.flags != 0 {
        a.push_str(" sys");
    }
    if s.long() {
        a.push_str(" L");
    }
    if s.big() {
        a.push_str(" D/B");
    }
    if s.flags & (1 << 23) != 0 {
        a.push_str(" G");
    }
    a
}

fn segment_line(label: &str, s: &Segment) -> Line<'static> {
    Line::from(vec![
        name(&format!("{label:<5}")),
        Span::raw(format!(
            "{:04x} {:016x} {:08x} {:08x} ",
            s.selector, s.base, s.limit, s.flags
        )),
        Span::styled(segment_attrs(s), dim()),
    ])
}

/// A register's name, padded so values line up.
fn label(text: &str) -> Span<'static> {
    name(&format!("{text:<9}"))
}

fn reg_with_bits(label_text: &str, value: u64, table: &[(u32, &str)]) -> Line<'static> {
    Line::from(vec![
        label(label_text),
        Span::raw(format!("{value:016x}  ")),
        Span::styled(set_bits(value, table), dim()),
    ])
}

fn register_lines(v: &VcpuContext, s: &QemuCpuState, per_row: usize) -> Vec<Line<'static>> {
    let mut l = Vec::new();
    match &v.mode {
        Some(m) => {
            l.push(Line::from(vec![
                label("mode"),
                Span::styled(
                    format!(
                        "{}, paging {}, CPL {}",
                        m.mode.name(),
                        m.paging.name(),
                        m.cpl
                    ),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
            ]));
            l.push(Line::from(vec![
                label("  from"),
                Span::styled(sanitize(m.basis), dim()),
            ]));
        }
        None => l.push(Line::from(vec![label("mode"), Span::raw("unknown")])),
    }
    l.push(Line::from(vec![
        label("rip"),
        Span::styled(
            format!("{:016x}", s.rip),
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ),
        Span::raw("  "),
        Span::styled(
            sanitize(v.rip_symbol.as_deref().unwrap_or("(no symbol)")),
            Style::default().fg(Color::Yellow),
        ),
    ]));
    let mut flags = vec![label("rflags"), Span::raw(format!("{:016x} ", s.rflags))];
    for &(bit, n) in RFLAGS_BITS {
        if s.rflags & (1 << bit) != 0 {
            flags.push(Span::styled(
                format!(" {n}"),
                Style::default().add_modifier(Modifier::BOLD),
            ));
        } else {
            flags.push(Span::styled(format!(" {}", n.to_lowercase()), dim()));
        }
    }
    flags.push(Span::styled(
        format!("  iopl {}", (s.rflags >> 12) & 3),
        dim(),
    ));
    l.push(Line::from(flags));
    l.push(Line::raw(""));
    for chunk in GPR_NAMES
        .iter()
        .zip(s.gpr.iter())
        .collect::<Vec<_>>()
        .chunks(per_row)
    {
        let mut spans = Vec::new();
        for (i, (n, val)) in chunk.iter().enumerate() {
            if i > 0 {
                spans.push(Span::raw("  "));
            }
            spans.push(name(&format!("{n:<4}")));
            spans.push(Span::raw(format!("{val:016x}")));
        }
        l.push(Line::from(spans));
    }
    l.push(Line::raw(""));
    l.push(Line::styled(
        "seg  sel  base             limit    flags    attributes",
        dim(),
    ));
    for (label, seg) in [
        ("cs", &s.cs),
        ("ds", &s.ds),
        ("es", &s.es),
        ("fs", &s.fs),
        ("gs", &s.gs),
        ("ss", &s.ss),
        ("ldt", &s.ldt),
        ("tr", &s.tr),
    ] {
        l.push(segment_line(label, seg));
    }
    for (label, t) in [("gdt", &s.gdt), ("idt", &s.idt)] {
        l.push(Line::from(vec![
            name(&format!("{label:<5}")),
            Span::raw(format!("     {:016x} {:08x}", t.base, t.limit)),
        ]));
    }
    l.push(Line::raw(""));
    l.push(reg_with_bits("cr0", s.cr[0], CR0_BITS));
    l.push(Line::from(vec![
        label("cr2"),
        Span::raw(format!("{:016x}", s.cr[2])),
    ]));
    l.push(Line::from(vec![
        label("cr3"),
        Span::raw(format!("{:016x}", s.cr[3])),
    ]));
    l.push(reg_with_bits("cr4", s.cr[4], CR4_BITS));
    match v.efer {
        Some(e) => l.push(reg_with_bits("efer", e, EFER_BITS)),
        None => l.push(Line::from(vec![
            label("efer"),
            Span::styled("unknown (no `info registers` in the capture)", dim()),
        ])),
    }
    match s.kernel_gs_base {
        Some(k) => l.push(Line::from(vec![
            label("kgs_base"),
            Span::raw(format!("{k:016x}")),
        ])),
        None => l.push(Line::from(vec![
            label("kgs_base"),
            Span::styled("not in this qemu's note (before 3.0)", dim()),
        ])),
    }
    l
}

fn code_lines(v: &VcpuContext) -> Vec<Line<'static>> {
    let mut l = vec![heading("code at RIP")];
    if !v.code_before.is_empty() {
        l.push(Line::styled(sanitize(&v.code_before), dim()));
    }
    if v.code.is_empty() {
        l.push(Line::styled(
            sanitize(
                v.code_problem
                    .as_deref()
                    .unwrap_or("no instructions decoded"),
            ),
            Style::default().fg(Color::Yellow),
        ));
        return l;
    }
    let rip = v.state.as_ref().map(|s| s.rip);
    for d in &v.code {
        let bytes: Vec<String> = d.bytes.iter().map(|b| format!("{b:02x}")).collect();
        let at_rip = Some(d.ip) == rip;
        let text = if d.invalid {
            format!("{} (invalid)", sanitize(&d.text))
        } else {
            sanitize(&d.text)
        };
        let style = if at_rip {
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else if d.invalid {
            Style::default().fg(Color::Red)
        } else {
            Style::default()
        };
        l.push(Line::from(vec![
            Span::styled(if at_rip { "=> " } else { "   " }, style),
            Span::styled(format!("{:016x}  ", d.ip), style),
            Span::styled(format!("{:<21} ", bytes.join(" ")), dim()),
            Span::styled(text, style),
        ]));
    }
    l
}

fn backtrace_lines(v: &VcpuContext, selected: usize) -> Vec<Line<'static>> {
    let mut l = vec![heading(
        "backtrace (ORC; [ ] select, Enter opens in Memory)",
    )];
    match &v.backtrace {
        Err(e) => l.push(Line::styled(sanitize(&format!("none: {e}")), dim())),
        Ok(b) => {
            for (i, f) in b.frames.iter().enumerate() {
                l.push(Line::from(vec![
                    Span::styled(if i == selected { "> " } else { "  " }, dim()),
                    Span::styled(format!("{:016x}  ", f.ip), dim()),
                    // The stack it is on, as the kernel's <IRQ> ... </IRQ> names it.
                    Span::styled(format!("{:<5} ", f.stack.unwrap_or("")), dim()),
                    Span::styled(sanitize(&f.text()), Style::default().fg(Color::Green)),
                ]));
            }
            l.push(Line::styled(
                sanitize(&format!("({})", b.stop_reason)),
                dim(),
            ));
        }
    }
    l
}

fn stack_lines(v: &VcpuContext) -> Vec<Line<'static>> {
    let mut l = vec![heading("stack from RSP")];
    if v.stack.is_empty() {
        l.push(Line::styled(
            "not readable (needs the kernel's page tables and 64-bit mode)",
            dim(),
        ));
        return l;
    }
    for (i, (at, val, sym)) in v.stack.iter().enumerate() {
        l.push(Line::from(vec![
            Span::styled(if i == 0 { "rsp> " } else { "     " }, dim()),
            Span::styled(format!("{at:016x}  "), dim()),
            Span::raw(format!("{val:016x}  ")),
            Span::styled(
                sanitize(sym.as_deref().unwrap_or("")),
                Style::default().fg(Color::Green),
            ),
        ]));
    }
    l
}

fn line_text(l: &Line<'_>) -> String {
    l.spans.iter().map(|s| s.content.as_ref()).collect()
}

impl Vcpus {
    /// Shows the first vCPU.
    pub fn new(_model: &Model<'_>) -> Self {
        Self {
            current: 0,
            top: 0,
            hit: None,
            height: 0,
            wide: false,
            frame: 0,
        }
    }

    fn sections(&self, model: &Model<'_>) -> Sections {
        let Some(v) = model.vcpus.get(self.current) else {
            return Sections {
                regs: vec![Line::raw("no vCPUs in this dump")],
                right: Vec::new(),
            };
        };
        let regs = match &v.state {
            Some(s) => register_lines(v, s, if self.wide { 3 } else { 2 }),
            None => vec![Line::styled(
                "no QEMU note for this vCPU: its registers are unknown",
                Style::default().fg(Color::Yellow),
            )],
        };
        let mut right = code_lines(v);
        right.push(Line::raw(""));
        right.extend(backtrace_lines(v, self.frame));
        right.push(Line::raw(""));
        right.extend(stack_lines(v));
        Sections { regs, right }
    }

    fn max_top(&self, model: &Model<'_>) -> usize {
        let s = self.sections(model);
        let len = if self.wide {
            s.regs.len().max(s.right.len())
        } else {
            s.regs.len() + 1 + s.right.len()
        };
        len.saturating_sub(self.height.max(1))
    }

    fn select(&mut self, i: usize) {
        self.current = i;
        self.top = 0;
        self.hit = None;
        self.frame = 0;
    }

    fn title(&self, model: &Model<'_>) -> String {
        let n = model.vcpus.len();
        match model.vcpus.get(self.current) {
            Some(v) => format!(" vCPU {} ({} of {n}) ", v.index, self.current + 1),
            None => " vCPUs ".to_string(),
        }
    }

    /// Finds `q` (lowercase) in the pane's lines after (or before) the last hit.
    fn find(&mut self, model: &Model<'_>, q: &str, dir: Direction) -> bool {
        let lines = self.sections(model).all();
        let n = lines.len();
        let start = self.hit.unwrap_or(self.top);
        for step in 1..=n {
            let i = match dir {
                Direction::Forward => (start + step) % n,
                Direction::Backward => (start + n - step % n) % n,
            };
            if line_text(&lines[i]).to_lowercase().contains(q) {
                self.hit = Some(i);
                let row = if self.wide {
                    self.sections(model).wide_pos(i).1
                } else {
                    i
                };
                self.top = row.saturating_sub(2).min(self.max_top(model));
                return true;
            }
        }
        false
    }
}

/// Draws `lines` from `top` in a bordered block, the line `hit` highlighted.
fn draw_list(
    frame: &mut Frame<'_>,
    area: Rect,
    title: String,
    lines: &[Line<'static>],
    top: usize,
    hit: Option<usize>,
) {
    let height = area.height.saturating_sub(2) as usize;
    let top = top.min(lines.len().saturating_sub(height.max(1)));
    let shown: Vec<Line<'static>> = lines
        .iter()
        .enumerate()
        .skip(top)
        .take(height)
        .map(|(i, l)| {
            if Some(i) == hit {
                l.clone().style(
                    Style::default()
                        .bg(Color::DarkGray)
                        .add_modifier(Modifier::BOLD),
                )
            } else {
                l.clone()
            }
        })
        .collect();
    let title = format!(
        "{title}(line {} of {}) ",
        (top + 1).min(lines.len()),
        lines.len()
    );
    frame.render_widget(
        Paragraph::new(shown).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

impl Pane for Vcpus {
    fn title(&self) -> &'static str {
        "vCPUs"
    }

    fn render(&mut self, model: &Model<'_>, frame: &mut Frame<'_>, area: Rect) {
        self.wide = area.width >= WIDE_FROM;
        self.height = area.height.saturating_sub(2) as usize;
        self.top = self.top.min(self.max_top(model));
        let s = self.sections(model);
        let title = self.title(model);
        if self.wide {
            let [left, right] =
                Layout::horizontal([Constraint::Length(REGS_WIDTH), Constraint::Min(1)])
                    .areas(area);
            let hit = self.hit.map(|i| s.wide_pos(i));
            let left_hit = hit.and_then(|(r, i)| (!r).then_some(i));
            let right_hit = hit.and_then(|(r, i)| r.then_some(i));
            draw_list(frame, left, title, &s.regs, self.top, left_hit);
            draw_list(
                frame,
                right,
                " code and stack ".to_string(),
                &s.right,
                self.top,
                right_hit,
            );
        } else {
            draw_list(frame, area, title, &s.all(), self.top, self.hit);
        }
    }

    fn key(&mut self, model: &Model<'_>, key: KeyEvent) -> Outcome {
        let n = model.vcpus.len();
        let page = self.height.max(1);
        match key.code {
            KeyCode::Char('<') | KeyCode::Left => {
                if n == 0 {
                    return Outcome::Message("no vCPUs".into());
                }
                self.select((self.current + n - 1) % n);
            }
            KeyCode::Char('>') | KeyCode::Right => {
                if n == 0 {
                    return Outcome::Message("no vCPUs".into());
                }
                self.select((self.current + 1) % n);
            }
            KeyCode::Char('j') | KeyCode::Down => {
                self.top = (self.top + 1).min(self.max_top(model))
            }
            KeyCode::Char('k') | KeyCode::Up => self.top = self.top.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => {
                self.top = (self.top + page).min(self.max_top(model))
            }
            KeyCode::PageUp => self.top = self.top.saturating_sub(page),
            KeyCode::Char('g') | KeyCode::Home => self.top = 0,
            KeyCode::Char('G') | KeyCode::End => self.top = self.max_top(model),
            _ => {
                let bt = model.vcpus.get(self.current).map(|v| &v.backtrace);
                return frames::key(&mut self.frame, bt, key);
            }
        }
        Outcome::Handled
    }

    fn search(&mut self, model: &Model<'_>, query: &str, dir: Direction) -> Outcome {
        if self.find(model, &query.to_lowercase(), dir) {
            Outcome::Handled
        } else {
            Outcome::Message(format!("not found: {query}"))
        }
    }

    fn has_goto(&self) -> bool {
        true
    }

    fn goto(&mut self, model: &Model<'_>, target: &str) -> Outcome {
        let t = target.trim().to_lowercase();
        let t = t.strip_prefix("v:").unwrap_or(&t);
        let t = t.strip_prefix("0x").unwrap_or(t);
        if t.is_empty() {
            return Outcome::Message("go to what?".into());
        }
        self.hit = None;
        self.top = 0;
        if self.find(model, t, Direction::Forward) {
            Outcome::Handled
        } else {
            Outcome::Message(format!(
                "{target}: not on this vCPU (the Memory pane shows any address)"
            ))
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

    fn core() -> (tempfile::NamedTempFile, coroner_formats::Core) {
        testutil::core(vec![testutil::protected32(), testutil::long64()])
    }

    fn rows(pane: &mut Vcpus, model: &Model<'_>, w: u16, h: u16) -> Vec<String> {
        testutil::pane_rows(pane, model, w, h)
    }

    use testutil::key;

    #[test]
    fn shows_rip_registers_and_code() {
        let (_f, core) = core();
        let model = Model::load(&core, "test.core".into());
        let mut p = Vcpus::new(&model);
        let text = rows(&mut p, &model, 200, 60).join("\n");
        assert!(text.contains("vCPU 0 (1 of 2)"), "{text}");
        assert!(text.contains("rip      0000000000001000"), "{text}");
        assert!(text.contains("rsp 0000000000008000"), "{text}");
        assert!(text.contains("32-bit protected mode"), "{text}");
        assert!(text.contains("cr0      0000000000000011  PE ET"), "{text}");
        // RFLAGS 2: nothing named set.
        assert!(text.contains("cf pf af zf sf tf if df of"), "{text}");
        assert!(text.contains("=> 0000000000001000  55"), "{text}");
        assert!(text.contains("push ebp"), "{text}");
        assert!(text.contains("hlt"), "{text}");
        assert!(
            text.contains("cs   0010 0000000000000000 00000000 00cf9b00 dpl 0 P code D/B G"),
            "{text}"
        );
        assert!(text.contains("efer     unknown"), "{text}");
    }

    #[test]
    fn switches_vcpus() {
        let (_f, core) = core();
        let model = Model::load(&core, "test.core".into());
        let mut p = Vcpus::new(&model);
        assert_eq!(p.key(&model, key(KeyCode::Char('>'))), Outcome::Handled);
        let text = rows(&mut p, &model, 200, 60).join("\n");
        assert!(text.contains("vCPU 1 (2 of 2)"), "{text}");
        assert!(text.contains("rip      ffffffff81000000"), "{text}");
        assert!(text.contains("64-bit long mode"), "{text}");
        assert!(
            text.contains("bytes at RIP") || text.contains("page tables"),
            "{text}"
        );
        // Wraps around both ways.
        p.key(&model, key(KeyCode::Right));
        assert!(rows(&mut p, &model, 80, 24)[0].contains("vCPU 0 (1 of 2)"));
        p.key(&model, key(KeyCode::Left));
        assert!(rows(&mut p, &model, 80, 24)[0].contains("vCPU 1 (2 of 2)"));
        p.key(&model, key(KeyCode::Char('<')));
        assert!(rows(&mut p, &model, 80, 24)[0].contains("vCPU 0 (1 of 2)"));
        assert_eq!(p.key(&model, key(KeyCode::Char('x'))), Outcome::Ignored);
    }

    #[test]
    fn scrolls_searches_and_goes_to() {
        let (_f, core) = core();
        let model = Model::load(&core, "test.core".into());
        let mut p = Vcpus::new(&model);
        let first = rows(&mut p, &model, 80, 24);
        p.key(&model, key(KeyCode::Char('G')));
        let last = rows(&mut p, &model, 80, 24);
        assert_ne!(first, last);
        assert!(last.join("\n").contains("stack from RSP"), "{last:?}");
        p.key(&model, key(KeyCode::Char('g')));
        assert_eq!(rows(&mut p, &model, 80, 24), first);
        p.key(&model, key(KeyCode::Char('j')));
        p.key(&model, key(KeyCode::PageDown));
        p.key(&model, key(KeyCode::PageUp));
        p.key(&model, key(KeyCode::Char('k')));
        assert_eq!(rows(&mut p, &model, 80, 24), first);

        assert_eq!(
            p.search(&model, "HLT", Direction::Forward),
            Outcome::Handled
        );
        let text = rows(&mut p, &model, 80, 24).join("\n");
        assert!(text.contains("hlt"), "{text}");
        assert!(matches!(
            p.search(&model, "no such text", Direction::Backward),
            Outcome::Message(_)
        ));
        assert_eq!(p.goto(&model, "0x1005"), Outcome::Handled);
        assert!(rows(&mut p, &model, 200, 60).join("\n").contains("hlt"));
        assert!(matches!(
            p.goto(&model, "v:0xdeadbeefcafe"),
            Outcome::Message(_)
        ));
        assert!(!p.help().is_empty());
    }

    #[test]
    fn renders_at_any_size() {
        let (_f, core) = core();
        let model = Model::load(&core, "test.core".into());
        let mut p = Vcpus::new(&model);
        for (w, h) in [(80, 24), (200, 60), (20, 5), (150, 10), (1, 1)] {
            rows(&mut p, &model, w, h);
            p.key(&model, key(KeyCode::Char('G')));
            rows(&mut p, &model, w, h);
            p.key(&model, key(KeyCode::Char('>')));
        }
    }

    #[test]
    fn snapshot_80x24() {
        let (_f, core) = core();
        let model = Model::load(&core, "test.core".into());
        let mut p = Vcpus::new(&model);
        insta::assert_snapshot!(rows(&mut p, &model, 80, 24).join("\n"));
    }

    #[test]
    fn snapshot_200x60() {
        let (_f, core) = core();
        let model = Model::load(&core, "test.core".into());
        let mut p = Vcpus::new(&model);
        insta::assert_snapshot!(rows(&mut p, &model, 200, 60).join("\n"));
    }

    #[test]
    fn snapshot_vcpu1_200x60() {
        let (_f, core) = core();
        let model = Model::load(&core, "test.core".into());
        let mut p = Vcpus::new(&model);
        p.key(&model, key(KeyCode::Char('>')));
        insta::assert_snapshot!(rows(&mut p, &model, 200, 60).join("\n"));
    }
}
