//! The panes, one per file.

mod events;
mod exit;
mod log;
mod mce;
mod memory;
mod overview;
mod text;
mod vcpus;

use crate::model::Model;
use crate::pane::Pane;

/// Every pane, in tab order.
pub fn all_panes(model: &Model<'_>) -> Vec<Box<dyn Pane>> {
    vec![
        Box::new(overview::Overview::new(model)),
        Box::new(log::Log::new(model)),
        Box::new(vcpus::Vcpus::new(model)),
        Box::new(mce::Mce::new(model)),
        Box::new(exit::Exit::new(model)),
        Box::new(memory::Memory::new(model)),
        Box::new(events::Events::new(model)),
    ]
}
