//! The panes, one per file.

mod events;
mod exit;
mod frames;
mod log;
mod mce;
mod memory;
mod modules;
mod overview;
mod tasks;
mod text;
mod vcpus;

use crate::model::Model;
use crate::pane::Pane;

/// Every pane, in tab order.
pub fn all_panes(model: &Model<'_>) -> Vec<Box<dyn Pane>> {
    vec![
        Box::new(overview::pane(model)),
        Box::new(log::Log::new(model)),
        Box::new(vcpus::Vcpus::new(model)),
        Box::new(mce::pane(model)),
        Box::new(exit::pane(model)),
        Box::new(memory::Memory::new(model)),
        Box::new(events::pane(model)),
        Box::new(tasks::Tasks::new(model)),
        Box::new(modules::pane(model)),
    ]
}
