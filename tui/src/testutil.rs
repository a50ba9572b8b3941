//! Test helpers shared by the panes' tests: a synthetic qemu-shaped core and off-screen
//! rendering that checks no control character reaches a cell.

use std::io::Write;

use coroner_formats::testing::{ElfBuilder, TestVcpu};
use coroner_formats::Core;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use crate::model::Model;
use crate::pane::Pane;

/// vCPU in 32-bit protected mode without paging, RIP at code in RAM.
pub fn protected32() -> TestVcpu {
    TestVcpu {
        rip: 0x1000,
        rsp: 0x8000,
        cr: [0x11, 0, 0, 0, 0],
        cs_flags: 0x00cf_9b00,
    }
}

/// vCPU in long mode at a kernel address, with no page tables in the dump.
pub fn long64() -> TestVcpu {
    TestVcpu {
        rip: 0xffff_ffff_8100_0000,
        rsp: 0xffff_c900_0001_3e80,
        cr: [0x8005_0033, 0, 0, 0x1c0_a000, 0x3606f0],
        cs_flags: 0x00a0_9b00,
    }
}

/// RAM at [0, 0x2000) (code at 0x1000) and [0x100000, 0x103000) full of control
/// characters, and `vcpus`; written to a temporary file and opened.
pub fn core(vcpus: Vec<TestVcpu>) -> (tempfile::NamedTempFile, Core) {
    let mut low = vec![0x90u8; 0x2000];
    // push ebp; mov ebp,esp; xor eax,eax; hlt; jmp $
    low[0x1000..0x1008].copy_from_slice(&[0x55, 0x89, 0xe5, 0x31, 0xc0, 0xf4, 0xeb, 0xfe]);
    let mut high = b"guest \x1b[2J text\x07\x9b".repeat(0x300);
    high.truncate(0x3000);
    let b = ElfBuilder {
        ram: vec![(0, low), (0x10_0000, high)],
        vcpus,
        ..ElfBuilder::default()
    };
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&b.build()).unwrap();
    f.flush().unwrap();
    let core = coroner_formats::open(f.path()).unwrap();
    (f, core)
}

/// The rows `pane` draws into a `w` x `h` area; panics if a cell holds a control
/// character.
pub fn pane_rows(pane: &mut dyn Pane, model: &Model<'_>, w: u16, h: u16) -> Vec<String> {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| pane.render(model, f, f.area())).unwrap();
    let buf = term.backend().buffer();
    for cell in buf.content() {
        assert!(
            !cell.symbol().chars().any(|c| c.is_control()),
            "control character in {:?}",
            cell.symbol()
        );
    }
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect()
}

/// A key press without modifiers.
pub fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}
