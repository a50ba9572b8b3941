//! The panes, one per file.

mod events;
mod exit;
mod mce;
mod overview;
mod text;

use crate::model::Model;
use crate::pane::Pane;

/// Every pane, in tab order.
pub fn all_panes(model: &Model<'_>) -> Vec<Box<dyn Pane>> {
    vec![
        Box::new(overview::Overview::new(model)),
        Box::new(mce::Mce::new(model)),
        Box::new(exit::Exit::new(model)),
        Box::new(events::Events::new(model)),
    ]
}
