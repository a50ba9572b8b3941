//! What every pane implements: draw itself, take keys, search, go to a target.

use ratatui::crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::Frame;

use crate::model::Model;

/// What a pane did with a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Consumed.
    Handled,
    /// Not a key of this pane: the app may use it.
    Ignored,
    /// Show this in the status line.
    Message(String),
    /// Open this go-to target (`v:ADDRESS`, ...) in the Memory pane.
    Open(String),
}

/// Direction of a repeated search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Towards the end.
    Forward,
    /// Towards the start.
    Backward,
}

/// A pane of the UI.
pub trait Pane {
    /// Its name in the tab bar.
    fn title(&self) -> &'static str;
    /// Draws it into `area`. Guest text must be escaped (`coroner_analyze::escape_control`).
    fn render(&mut self, model: &Model<'_>, frame: &mut Frame<'_>, area: Rect);
    /// Handles a key the app did not take (navigation keys come here first).
    fn key(&mut self, model: &Model<'_>, key: KeyEvent) -> Outcome;
    /// `/` search for `query` from the current position, or `n`/`N` with the last query.
    fn search(&mut self, _model: &Model<'_>, _query: &str, _dir: Direction) -> Outcome {
        Outcome::Message("this pane has no search".into())
    }
    /// `:` go to a target (an address or a symbol).
    fn goto(&mut self, _model: &Model<'_>, _target: &str) -> Outcome {
        Outcome::Message("this pane has no go-to".into())
    }
    /// True when [`goto`](Self::goto) does something in this pane.
    fn has_goto(&self) -> bool {
        false
    }
    /// Its keys for the help overlay: (keys, what they do).
    fn help(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
}
