//! Selecting a frame of a backtrace (the vCPUs and Tasks panes): `[` and `]` move the
//! selection, Enter opens the frame's code in the Memory pane.

use coroner_analyze::backtrace::Backtrace;
use ratatui::crossterm::event::{KeyCode, KeyEvent};

use crate::pane::Outcome;

/// Handles `[`, `]` and Enter for the frame selection `frame` of `bt`; `Ignored` for any
/// other key.
pub fn key(frame: &mut usize, bt: Option<&Result<Backtrace, String>>, key: KeyEvent) -> Outcome {
    let frames = match bt {
        Some(Ok(b)) => b.frames.as_slice(),
        Some(Err(_)) | None => &[],
    };
    match key.code {
        KeyCode::Char('[') => *frame = frame.saturating_sub(1),
        KeyCode::Char(']') => *frame = (*frame + 1).min(frames.len().saturating_sub(1)),
        KeyCode::Enter => {
            return match frames.get(*frame) {
                Some(f) => Outcome::Open(format!("v:{:x}", f.ip)),
                None => Outcome::Message("no backtrace frame to open".into()),
            }
        }
        _ => return Outcome::Ignored,
    }
    Outcome::Handled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::key as k;
    use coroner_analyze::backtrace::BtFrame;
    use coroner_analyze::orc::Stop;

    #[test]
    fn brackets_select_and_enter_opens() {
        let frame = |ip| BtFrame {
            ip,
            sp: 0,
            symbol: None,
            method: "orc",
            reliable: true,
            stack: None,
            regs: None,
        };
        let bt = Ok(Backtrace {
            from: String::new(),
            frames: vec![frame(0xffff_ffff_8100_0010), frame(0xffff_ffff_8100_0200)],
            stop: Stop::EndOfStack,
            stop_reason: String::new(),
            complete: true,
        });
        let mut at = 0;
        assert_eq!(
            key(&mut at, Some(&bt), k(KeyCode::Char(']'))),
            Outcome::Handled
        );
        assert_eq!(
            key(&mut at, Some(&bt), k(KeyCode::Char(']'))),
            Outcome::Handled
        );
        assert_eq!(at, 1);
        assert_eq!(
            key(&mut at, Some(&bt), k(KeyCode::Enter)),
            Outcome::Open("v:ffffffff81000200".into())
        );
        key(&mut at, Some(&bt), k(KeyCode::Char('[')));
        assert_eq!(at, 0);
        let none = Err("no ORC".to_string());
        assert!(matches!(
            key(&mut at, Some(&none), k(KeyCode::Enter)),
            Outcome::Message(_)
        ));
        assert_eq!(
            key(&mut at, Some(&bt), k(KeyCode::Char('x'))),
            Outcome::Ignored
        );
    }
}
