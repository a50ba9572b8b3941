//! Slim captures: a new ELF core holding only chosen guest pages (one `PT_LOAD` per run
//! of consecutive pages) and every note of the source, written into a container. A read
//! of a dropped page is absent, never zeros.

use std::collections::BTreeSet;
use std::path::Path;

use crate::core_file::Core;
use crate::elf_writer::write_elf_container;
use crate::error::Result;
use crate::recording::PAGE;
use crate::zst::{Finished, Metadata, WriteOptions};
use crate::PhysAddr;

/// Runs of consecutive page numbers: (first address, length in bytes).
pub fn page_runs(pages: &BTreeSet<u64>) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &p in pages {
        let Some(addr) = p.checked_mul(PAGE) else {
            continue;
        };
        match runs.last_mut() {
            Some((start, len)) if *start + *len == addr => *len += PAGE,
            _ => runs.push((addr, PAGE)),
        }
    }
    runs
}

/// Writes the slim ELF of `core` keeping `pages` (page numbers) into a container at `out`.
/// Pages the source does not hold are skipped.
pub fn write_slim(
    core: &Core,
    pages: &BTreeSet<u64>,
    out: &Path,
    opts: WriteOptions,
    meta: Metadata,
) -> Result<Finished> {
    let mem = core.mem();
    let present: BTreeSet<u64> = pages
        .iter()
        .copied()
        .filter(|p| mem.is_present(PhysAddr(p * PAGE), PAGE))
        .collect();
    write_elf_container(
        core,
        &page_runs(&present),
        out,
        opts,
        meta,
        &crate::progress::NoProgress,
        &std::sync::atomic::AtomicBool::new(false),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_pages() {
        let pages: BTreeSet<u64> = [1, 2, 3, 7, 9, 10].into_iter().collect();
        assert_eq!(
            page_runs(&pages),
            [(0x1000, 0x3000), (0x7000, 0x1000), (0x9000, 0x2000)]
        );
        assert!(page_runs(&BTreeSet::new()).is_empty());
    }
}
