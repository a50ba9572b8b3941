//! Finding vmlinux's ORC tables without their symbols. A kernel built without
//! CONFIG_KALLSYMS_ALL keeps only text symbols in kallsyms, so `__start_orc_unwind_ip`
//! and its neighbours are missing; the tables are still in the image, between the end of
//! the text and the init text, laid out by the linker script's `ORC_UNWIND_TABLE`:
//! `.orc_header` (6.4+, 20 bytes), `.orc_unwind_ip` (one self-relative `s32` per entry,
//! sorted), `.orc_unwind` (6 bytes per entry), then `orc_lookup` (one `u32` entry index
//! per 256 bytes of text, filled at boot).
//!
//! The ip table is the one long run of slots there whose decoded addresses climb through
//! the text and init text; nothing else in the image has that shape (the kernel's other
//! self-relative tables interleave kinds of field, and arrays of small numbers decode to
//! addresses next to themselves, which are not text). Its length is then proved by
//! `orc_lookup`, which sits right after the entries and holds, for each 256-byte block
//! of text, the index the kernel's own lookup found: a wrong length puts `orc_lookup`
//! elsewhere and the indices disagree.

use super::entry::{OrcFormat, HEADER_HASHES};
use super::OrcError;
use crate::kmem::{KernelMem, VirtAddr};

/// Consecutive climbing slots that make a candidate ip table (a real one has ~10^5).
const MIN_RUN: u64 = 1024;

/// The kernel image is at most 1 GiB (`KERNEL_IMAGE_SIZE`): no entry lies further.
const IMAGE_SPAN: u64 = 1 << 30;

/// `LOOKUP_BLOCK_SIZE`: bytes of text per `orc_lookup` slot.
const LOOKUP_BLOCK: u64 = 256;

/// Slots past the run's end tried as the true end (a slot or two of the entries that
/// follow may happen to decode as a climbing address).
const MAX_TRIM: u64 = 16;

/// Runs tried before giving up.
const MAX_CANDIDATES: usize = 16;

/// `orc_lookup` slots compared with the table's own lookup.
const LOOKUP_PROBES: u64 = 24;

const PAGE: u64 = 4096;

/// Where the kernel keeps its code, from the text symbols every kallsyms has.
#[derive(Clone, Copy, Debug)]
pub struct ImageBounds {
    /// `_stext`.
    pub stext: u64,
    /// `_etext`.
    pub etext: u64,
    /// `_sinittext`: the search ends here.
    pub sinittext: u64,
}

/// vmlinux's ORC table, found by [`locate_vmlinux_orc`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocatedOrc {
    /// `__start_orc_unwind_ip`.
    pub ip_table: u64,
    /// `__start_orc_unwind` (right after the ip table).
    pub entries: u64,
    /// Entries.
    pub n: u64,
    /// The format named by the `.orc_header` right before the ip table, when there is one.
    pub header_format: Option<OrcFormat>,
    /// `orc_lookup` slots that matched.
    pub lookup_checked: u64,
}

/// Reads one page at a time, keeping the last.
struct Pages<'m> {
    mem: &'m dyn KernelMem,
    page: Option<(u64, Option<Vec<u8>>)>,
}

impl Pages<'_> {
    /// The `s32` at `addr` (4-aligned), `None` when unreadable.
    fn slot(&mut self, addr: u64) -> Option<i32> {
        let base = addr & !(PAGE - 1);
        if self.page.as_ref().map(|(b, _)| *b) != Some(base) {
            let mut buf = vec![0u8; PAGE as usize];
            let ok = self.mem.read_virt(VirtAddr(base), &mut buf).is_ok();
            self.page = Some((base, ok.then_some(buf)));
        }
        let data = self.page.as_ref()?.1.as_ref()?;
        let at = (addr - base) as usize;
        Some(i32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
    }

    fn u32_at(&mut self, addr: u64) -> Option<u32> {
        self.slot(addr).map(|v| v as u32)
    }
}

/// Finds vmlinux's ORC table in `[etext, sinittext)`: the run of climbing text
/// addresses, its length proved by `orc_lookup`.
pub fn locate_vmlinux_orc(
    mem: &dyn KernelMem,
    bounds: ImageBounds,
) -> Result<LocatedOrc, OrcError> {
    let ImageBounds {
        stext,
        etext,
        sinittext,
    } = bounds;
    if !(stext < etext && etext < sinittext && sinittext - stext <= IMAGE_SPAN) {
        return Err(OrcError::Inconsistent(format!(
            "the text ({stext:#x}..{etext:#x}) and init text ({sinittext:#x}) are not one kernel image"
        )));
    }
    // Code lies in the text or from the init text on; a slot that decodes to anywhere
    // between (where the tables themselves are) is not an ip.
    let decode = |slot: u64, rel: i32| {
        let ip = slot.wrapping_add_signed(i64::from(rel));
        let code = (stext..=etext).contains(&ip) || (sinittext..stext + IMAGE_SPAN).contains(&ip);
        code.then_some(ip)
    };
    let mut pages = Pages { mem, page: None };
    let lo = (etext + 3) & !3;
    let mut hi = sinittext & !3;
    let mut rejected = Vec::new();
    while rejected.len() < MAX_CANDIDATES {
        let Some(anchor) = find_run(&mut pages, lo, hi, &decode) else {
            break;
        };
        let (start, end) = extend_run(&mut pages, anchor, lo, sinittext, &decode);
        let run = (end - start) / 4;
        for trim in 0..=MAX_TRIM.min(run.saturating_sub(MIN_RUN)) {
            let n = run - trim;
            if let Some(checked) = lookup_confirms(&mut pages, start, n, bounds) {
                return Ok(LocatedOrc {
                    ip_table: start,
                    entries: start + 4 * n,
                    n,
                    header_format: header_before(mem, start),
                    lookup_checked: checked,
                });
            }
        }
        // Not the table (orc_lookup itself, right below the init text, decodes as
        // climbing init-text addresses): search on below it.
        rejected.push(format!("{run} at {start:#x}"));
        hi = start;
    }
    Err(OrcError::NotFound(if rejected.is_empty() {
        format!(
            "no run of {MIN_RUN} climbing text addresses between _etext ({etext:#x}) and _sinittext ({sinittext:#x})"
        )
    } else {
        format!(
            "no run of climbing text addresses between _etext ({etext:#x}) and _sinittext ({sinittext:#x}) is followed by an orc_lookup that confirms it (runs: {})",
            rejected.join(", ")
        )
    }))
}

/// The whole run of climbing slots around `anchor`: `[start, end)`.
fn extend_run(
    pages: &mut Pages<'_>,
    anchor: u64,
    lo: u64,
    hi: u64,
    decode: &dyn Fn(u64, i32) -> Option<u64>,
) -> (u64, u64) {
    let first = pages.slot(anchor).and_then(|r| decode(anchor, r));
    let (mut start, mut above) = (anchor, first);
    while start >= lo + 4 {
        match (
            pages.slot(start - 4).and_then(|r| decode(start - 4, r)),
            above,
        ) {
            (Some(a), Some(b)) if a <= b => {
                start -= 4;
                above = Some(a);
            }
            _ => break,
        }
    }
    let (mut end, mut below) = (anchor + 4, first);
    while end + 4 <= hi {
        match (pages.slot(end).and_then(|r| decode(end, r)), below) {
            (Some(b), Some(a)) if a <= b => {
                end += 4;
                below = Some(b);
            }
            _ => break,
        }
    }
    (start, end)
}

/// The first slot of a run of [`MIN_RUN`] climbing ips in `[lo, hi)`, searched from the
/// top down (the tables sit near the init text).
fn find_run(
    pages: &mut Pages<'_>,
    lo: u64,
    hi: u64,
    decode: &dyn Fn(u64, i32) -> Option<u64>,
) -> Option<u64> {
    let mut run = 0u64;
    let mut above: Option<u64> = None;
    let mut at = hi;
    while at >= lo + 4 {
        at -= 4;
        let ip = pages.slot(at).and_then(|r| decode(at, r));
        run = match (ip, above) {
            (Some(a), Some(b)) if a <= b => run + 1,
            (Some(_), _) => 1,
            (None, _) => 0,
        };
        above = ip;
        if run >= MIN_RUN {
            return Some(at);
        }
    }
    None
}

/// The format a `.orc_header` right before `ip_table` names.
fn header_before(mem: &dyn KernelMem, ip_table: u64) -> Option<OrcFormat> {
    let mut hash = [0u8; 20];
    mem.read_virt(VirtAddr(ip_table.checked_sub(20)?), &mut hash)
        .ok()?;
    HEADER_HASHES
        .iter()
        .find(|(h, _)| *h == hash)
        .map(|&(_, f)| f)
}

/// The index the kernel's `__orc_find` returns for `ip` in a table of `n` entries at
/// `ip_table`: the rightmost entry at or below it, else the first.
fn orc_find_index(pages: &mut Pages<'_>, ip_table: u64, n: u64, ip: u64) -> Option<u64> {
    let (mut lo, mut hi, mut found) = (0u64, n, 0u64);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let slot = ip_table + 4 * mid;
        let at = slot.wrapping_add_signed(i64::from(pages.slot(slot)?));
        if at <= ip {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Some(found)
}

/// Checks that `orc_lookup`, where a table of `n` entries at `ip_table` puts it, holds
/// what the kernel's boot-time `unwind_init` wrote there for that table; the slots that
/// matched, or `None`.
fn lookup_confirms(
    pages: &mut Pages<'_>,
    ip_table: u64,
    n: u64,
    bounds: ImageBounds,
) -> Option<u64> {
    let lookup = (ip_table + 10 * n + 3) & !3;
    // Older kernels size orc_lookup by SIZEOF(.text): stay clear of the last slots.
    let blocks = (bounds.etext - bounds.stext) / LOOKUP_BLOCK;
    if blocks < 2 {
        return None;
    }
    let usable = blocks - 1;
    let probes = (0..LOOKUP_PROBES / 2)
        .chain((0..LOOKUP_PROBES / 2).map(|k| k * usable / (LOOKUP_PROBES / 2)))
        .filter(|&i| i < usable);
    let mut checked = 0;
    for i in probes {
        let want = orc_find_index(pages, ip_table, n, bounds.stext + LOOKUP_BLOCK * i)?;
        if u64::from(pages.u32_at(lookup + 4 * i)?) != want {
            return None;
        }
        checked += 1;
    }
    (checked > 0).then_some(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmem::SliceKernelMem;

    const STEXT: u64 = 0xffff_ffff_8100_0000;
    const ETEXT: u64 = STEXT + 0x40_0000;
    /// Where the searched region (after the text) starts.
    const DATA: u64 = ETEXT + 0x10_0000;
    const SINITTEXT: u64 = DATA + 0x40_0000;
    const EINITTEXT: u64 = SINITTEXT + 0x1_0000;

    fn bounds() -> ImageBounds {
        ImageBounds {
            stext: STEXT,
            etext: ETEXT,
            sinittext: SINITTEXT,
        }
    }

    /// The image's data region with an ORC table at `DATA + at`, laid out as
    /// `ORC_UNWIND_TABLE` does and with `orc_lookup` filled as `unwind_init` fills it;
    /// `header` before it; before it a decoy array of small numbers (which decodes to
    /// addresses next to itself). Returns the region and the table's ip-table address.
    fn image(n: u64, header: Option<[u8; 20]>, at: u64) -> (Vec<u8>, u64) {
        let mut region = vec![0u8; (SINITTEXT - DATA) as usize];
        // Entries every 0x30 bytes of text and init text, two of them section terminators.
        let mut ips: Vec<u64> = (0..n - 16)
            .map(|i| STEXT + (i * 0x30) % (ETEXT - STEXT))
            .collect();
        ips.extend((0..16).map(|i| SINITTEXT + 0x100 * i));
        ips.sort_unstable();
        let ip_table = DATA + at;
        let mut w = at as usize;
        if let Some(h) = header {
            region[w - 20..w].copy_from_slice(&h);
        }
        for (i, ip) in ips.iter().enumerate() {
            let slot = ip_table + 4 * i as u64;
            let rel = (*ip as i64 - slot as i64) as i32;
            region[w..w + 4].copy_from_slice(&rel.to_le_bytes());
            w += 4;
        }
        for _ in 0..n {
            // sp_offset 8, sp_reg SP, type CALL (v3).
            region[w..w + 6].copy_from_slice(&[8, 0, 0, 0, 5, 2]);
            w += 6;
        }
        w = (w + 3) & !3;
        let blocks = (ETEXT - STEXT) / LOOKUP_BLOCK + 1;
        for b in 0..blocks {
            let ip = STEXT + LOOKUP_BLOCK * b;
            let idx = ips.iter().rposition(|&x| x <= ip).unwrap_or(0) as u32;
            region[w..w + 4].copy_from_slice(&idx.to_le_bytes());
            w += 4;
        }
        // A decoy: counting numbers, 0x4000 of them, well below the table.
        for i in 0..0x4000usize {
            region[0x1000 + 4 * i..0x1000 + 4 * i + 4].copy_from_slice(&(i as u32).to_le_bytes());
        }
        (region, ip_table)
    }

    fn mem(region: Vec<u8>) -> SliceKernelMem {
        SliceKernelMem::new(vec![(VirtAddr(DATA), region)])
    }

    #[test]
    fn finds_a_table_without_a_header_and_proves_its_length() {
        let (region, ip_table) = image(20_000, None, 0x10_0000);
        let found = locate_vmlinux_orc(&mem(region), bounds()).unwrap();
        assert_eq!(found.ip_table, ip_table);
        assert_eq!(found.n, 20_000);
        assert_eq!(found.entries, ip_table + 80_000);
        assert_eq!(found.header_format, None);
        assert!(found.lookup_checked >= 12, "{found:?}");
    }

    #[test]
    fn a_header_names_the_format() {
        let (hash, format) = HEADER_HASHES[1];
        let (region, ip_table) = image(5_000, Some(hash), 0x20_0000);
        let found = locate_vmlinux_orc(&mem(region), bounds()).unwrap();
        assert_eq!((found.ip_table, found.n), (ip_table, 5_000));
        assert_eq!(found.header_format, Some(format));
    }

    #[test]
    fn slots_after_the_table_that_happen_to_climb_are_trimmed() {
        let (mut region, ip_table) = image(5_000, None, 0x20_0000);
        // The first entry's first four bytes decode as an init-text address above the
        // last entry's.
        let slot = ip_table + 4 * 5_000;
        let rel = (EINITTEXT - slot) as i32;
        let at = (slot - DATA) as usize;
        region[at..at + 4].copy_from_slice(&rel.to_le_bytes());
        let found = locate_vmlinux_orc(&mem(region), bounds()).unwrap();
        assert_eq!((found.ip_table, found.n), (ip_table, 5_000));
    }

    #[test]
    fn a_lookup_that_disagrees_is_no_table() {
        let (mut region, ip_table) = image(5_000, None, 0x20_0000);
        let lookup = ((ip_table + 50_000 + 3) & !3) - DATA;
        for b in 0..64 {
            let at = lookup as usize + 4 * b;
            region[at..at + 4].copy_from_slice(&0xdead_u32.to_le_bytes());
        }
        let err = locate_vmlinux_orc(&mem(region), bounds()).unwrap_err();
        assert!(
            matches!(&err, OrcError::NotFound(m) if m.contains("orc_lookup")),
            "{err}"
        );
    }

    #[test]
    fn no_table_and_wrong_bounds_are_errors_not_panics() {
        let region = vec![0u8; (SINITTEXT - DATA) as usize];
        let err = locate_vmlinux_orc(&mem(region), bounds()).unwrap_err();
        assert!(matches!(err, OrcError::NotFound(_)), "{err}");
        let empty = SliceKernelMem::new(Vec::new());
        assert!(locate_vmlinux_orc(&empty, bounds()).is_err());
        let backwards = ImageBounds {
            stext: ETEXT,
            etext: STEXT,
            sinittext: SINITTEXT,
        };
        assert!(matches!(
            locate_vmlinux_orc(&empty, backwards),
            Err(OrcError::Inconsistent(_))
        ));
    }
}
