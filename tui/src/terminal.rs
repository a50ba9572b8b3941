//! The terminal: raw mode and the alternate screen, restored on every way out (return,
//! error, panic, SIGTERM/SIGHUP/SIGINT), and the event loop, which also ends when the
//! terminal goes away (a hang-up or end of input on the tty: a dropped ssh session, a
//! killed tmux session), so the UI never outlives its terminal.

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coroner_formats::Core;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;

use crate::app::App;
use crate::model::Model;
use crate::panes::all_panes;

/// How often the loop wakes to check for signals.
const TICK: Duration = Duration::from_millis(200);

/// What the tty has for us within one tick.
#[derive(Debug, PartialEq, Eq)]
enum Input {
    /// Bytes to read.
    Ready,
    /// Nothing yet.
    Idle,
    /// The terminal is gone (hang-up, error, end of input).
    Gone,
}

/// Waits up to `timeout` for input on the terminal (stdin), telling a hang-up apart.
/// crossterm's own poll cannot: on a hung-up tty it reads end-of-file in a loop forever.
fn wait_input(timeout: Duration) -> Input {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let stdin = rustix::stdio::stdin();
    let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
    let t = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    match poll(&mut fds, Some(&t)) {
        Ok(0) => Input::Idle,
        Ok(_) => {
            let r = fds[0].revents();
            if r.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
                Input::Gone
            } else if r.contains(PollFlags::IN) {
                if at_end_of_input() {
                    Input::Gone
                } else {
                    Input::Ready
                }
            } else {
                Input::Idle
            }
        }
        Err(rustix::io::Errno::INTR) => Input::Idle,
        Err(_) => Input::Gone,
    }
}

/// True when stdin is readable but holds no byte (end of input: a closed tty).
fn at_end_of_input() -> bool {
    let stdin = rustix::stdio::stdin();
    matches!(rustix::io::ioctl_fionread(stdin), Ok(0))
}

/// Puts the terminal back as it was.
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

/// Restores the terminal when dropped (return or unwinding).
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Opens the UI on `core` and runs until the user quits or a signal arrives.
pub fn run(core: &Core, path: String) -> io::Result<()> {
    let model = Model::load(core, path);
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    enable_raw_mode()?;
    let _guard = Guard;
    execute!(io::stdout(), EnterAlternateScreen)?;
    let mut terminal: Terminal<CrosstermBackend<Stdout>> =
        Terminal::new(CrosstermBackend::new(io::stdout()))?;
    let mut app = App::new(all_panes(&model));
    while !app.quit && !stop.load(Ordering::Relaxed) {
        // ratatui redraws only what changed, and picks up a new terminal size here.
        terminal.draw(|f| app.render(&model, f))?;
        match wait_input(TICK) {
            Input::Gone => break,
            Input::Idle => {}
            Input::Ready => {
                // Everything crossterm has parsed now; it does not block.
                while event::poll(Duration::ZERO)? {
                    match event::read()? {
                        Event::Key(k) if k.kind != KeyEventKind::Release => app.key(&model, k),
                        // The next draw fills the new size.
                        Event::Resize(..) => {}
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(())
}

/// One pane drawn off-screen.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Screen {
    /// The pane's title.
    pub pane: String,
    /// The frame's rows, as text.
    pub rows: Vec<String>,
}

/// Draws every pane of `model` once into a `width` x `height` buffer, without a terminal:
/// what the UI would show first (for `tui --json`, scripts and tests).
pub fn render_screens(model: &Model<'_>, width: u16, height: u16) -> io::Result<Vec<Screen>> {
    let mut app = App::new(all_panes(model));
    let titles = app.titles();
    let mut out = Vec::new();
    for (i, title) in titles.into_iter().enumerate() {
        app.select_index(i);
        out.push(Screen {
            pane: title.to_string(),
            rows: draw_rows(&mut app, model, width, height)?,
        });
    }
    Ok(out)
}

/// The rows of one frame of `app`, drawn off-screen.
pub fn draw_rows(
    app: &mut App,
    model: &Model<'_>,
    width: u16,
    height: u16,
) -> io::Result<Vec<String>> {
    let backend = ratatui::backend::TestBackend::new(width.max(20), height.max(5));
    let mut terminal = Terminal::new(backend)?;
    terminal.draw(|f| app.render(model, f))?;
    let buf = terminal.backend().buffer();
    let area = buf.area;
    Ok((0..area.height)
        .map(|y| {
            (0..area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect())
}
