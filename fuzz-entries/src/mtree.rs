//! qemu's `info mtree -f` parser and the owner lookup.

use coroner_analyze::{owner, parse_mtree};

/// Parses `data` as `info mtree -f` output and looks up a few addresses.
pub fn mtree(data: &[u8]) {
    let views = parse_mtree(&String::from_utf8_lossy(data));
    for gpa in [0u64, 0xa0010, 0xfee0_0000, 0xffff_ffff, u64::MAX] {
        if let Some(o) = owner(&views, gpa) {
            crate::invariants::terminal_safe(&o.description);
        }
    }
}
