//! Entry points for coverage-guided fuzzing: one function per parser of untrusted bytes,
//! each running the parser over all of its input and checking cheap invariants (no
//! panic; text meant for a terminal has no raw control byte). The cargo-fuzz targets in
//! `fuzz/` call them, and `tests/replay.rs` runs every file of the checked-in corpus
//! through them as a plain test.

mod btf;
mod container;
mod dump;
mod elf_core;
mod invariants;
mod kdump_stream;
pub mod kernel_memory;
mod mce;
mod mtree;
mod qemu_log;
mod qmp;
mod records;
mod scratch_file;
mod tui;
mod unwind;
mod vmcoreinfo;

pub use btf::btf;
pub use container::container;
pub use dump::dump;
pub use elf_core::elf_core;
pub use kdump_stream::{convert as convert_kdump_stream, kdump_stream};
pub use kernel_memory::kernel_memory;
pub use mce::mce;
pub use mtree::mtree;
pub use qemu_log::qemu_log;
pub use qmp::qmp;
pub use records::records;
pub use tui::tui;
pub use unwind::{locate_orc, unwind};
pub use vmcoreinfo::vmcoreinfo;

/// A fuzz target's entry: runs one parser over the bytes it is given.
pub type Entry = fn(&[u8]);

/// Every target: its name (the corpus directory `fuzz/corpus/NAME`) and entry.
pub const TARGETS: &[(&str, Entry)] = &[
    ("elf_core", elf_core),
    ("container", container),
    ("dump", dump),
    ("vmcoreinfo", vmcoreinfo),
    ("qemu_log", qemu_log),
    ("mtree", mtree),
    ("kernel_memory", kernel_memory),
    ("mce", mce),
    ("qmp", qmp),
    ("tui", tui),
    ("btf", btf),
    ("unwind", unwind),
    ("locate_orc", locate_orc),
    ("kdump_stream", kdump_stream),
    ("records", records),
];
