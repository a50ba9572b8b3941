//! A hex/ASCII view of guest-physical memory that reads only the rows it draws.

use coroner_formats::{PhysAddr, PhysMem};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

/// Bytes per row.
pub const ROW_BYTES: u64 = 16;

/// Renders `height` rows of memory starting at `start` (rounded down to a row).
///
/// Absent memory (holes, dropped pages) is drawn as `--` and labelled, never as zeros;
/// bytes are shown in ASCII only when printable, so guest data cannot reach the terminal
/// as control sequences.
pub struct HexView<'a> {
    mem: &'a dyn PhysMem,
    start: PhysAddr,
}

impl<'a> HexView<'a> {
    /// A view of `mem` whose first row holds `start`.
    pub fn new(mem: &'a dyn PhysMem, start: PhysAddr) -> Self {
        Self {
            mem,
            start: PhysAddr(start.0 - start.0 % ROW_BYTES),
        }
    }

    fn row(&self, addr: u64) -> Line<'static> {
        let mut bytes = [0u8; ROW_BYTES as usize];
        let mut present = [false; ROW_BYTES as usize];
        match self.mem.read_at(PhysAddr(addr), &mut bytes) {
            Ok(()) => present = [true; ROW_BYTES as usize],
            // Part of the row may be present: read byte by byte only then.
            Err(_) => {
                for (i, (b, p)) in bytes.iter_mut().zip(present.iter_mut()).enumerate() {
                    let mut one = [0u8; 1];
                    if self
                        .mem
                        .read_at(PhysAddr(addr + i as u64), &mut one)
                        .is_ok()
                    {
                        *b = one[0];
                        *p = true;
                    }
                }
            }
        }
        let dim = Style::default().fg(Color::DarkGray);
        // 12 address digits cover 48-bit physical addresses and keep a row at 80 columns.
        let mut spans = vec![Span::styled(format!("{addr:012x} "), dim)];
        let mut hex = String::with_capacity(50);
        let mut ascii = String::with_capacity(16);
        for i in 0..ROW_BYTES as usize {
            if i == 8 {
                hex.push(' ');
            }
            if present[i] {
                hex.push_str(&format!("{:02x} ", bytes[i]));
                let c = bytes[i];
                ascii.push(if c.is_ascii_graphic() || c == b' ' {
                    c as char
                } else {
                    '.'
                });
            } else {
                hex.push_str("-- ");
                ascii.push(' ');
            }
        }
        spans.push(Span::raw(hex));
        spans.push(Span::raw(format!("|{ascii}|")));
        if !present.iter().any(|&p| p) {
            spans.push(Span::styled(" absent", dim));
        }
        Line::from(spans)
    }
}

impl Widget for HexView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        for y in 0..area.height {
            let Some(addr) = self.start.0.checked_add(u64::from(y) * ROW_BYTES) else {
                break;
            };
            let line = self.row(addr);
            buf.set_line(area.x, area.y + y, &line, area.width);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coroner_formats::SliceMem;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    #[test]
    fn shows_bytes_ascii_and_absent_memory() {
        let mut data = b"Linux version 6.".to_vec();
        data.extend_from_slice(&[0x1b, b'[', b'2', b'J', 0, 0xff, b'a', b'b']);
        let mem = SliceMem::new(vec![(PhysAddr(0x1000), data)]);
        let backend = TestBackend::new(88, 3);
        let mut term = Terminal::new(backend).unwrap();
        term.draw(|f| f.render_widget(HexView::new(&mem, PhysAddr(0x1005)), f.area()))
            .unwrap();
        let lines: Vec<String> = (0..3)
            .map(|y| {
                (0..88)
                    .map(|x| term.backend().buffer()[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect();
        assert_eq!(
            lines,
            [
                "000000001000 4c 69 6e 75 78 20 76 65  72 73 69 6f 6e 20 36 2e |Linux version 6.|",
                "000000001010 1b 5b 32 4a 00 ff 61 62  -- -- -- -- -- -- -- -- |.[2J..ab        |",
                "000000001020 -- -- -- -- -- -- -- --  -- -- -- -- -- -- -- -- |                | absent",
            ]
        );
    }
}
