//! [`Kallsyms::scan`]: finding the tables with no VMCOREINFO keys (5.x kernels, or any
//! kernel whose VMCOREINFO lacks them), by the vmlinux-to-elf method.
//!
//! 1. **Token table.** Digits are always literal tokens at their own index, so the table
//!    holds `"0\0" "1\0" … "9\0"` as tokens 0x30–0x39. Each hit is walked back 47
//!    NUL-terminated tokens to token 1; tokens 1–255 are read forward.
//! 2. **Token index.** Right after the table (≤ 256 bytes of padding) comes `u16[256]`
//!    whose entries are exactly the tokens' offsets; it also gives token 0's length, hence
//!    the table's start.
//! 3. **Markers.** Before the token table: `kallsyms_markers`, an 8-aligned `u32` (`u64`
//!    before 4.20) array starting at 0 whose steps are those of 256 names, either right
//!    before the token table or (6.2/6.3 and backports) before `kallsyms_seqs_of_names`
//!    (3 or 4 bytes per symbol). The arithmetic of the layout gives the symbol count range.
//! 4. **Names.** `kallsyms_num_syms` is the word 8 bytes before the names, which end where
//!    the markers start; candidates are checked by walking the last 256 names, then all.
//! 5. **Addresses.** ≤ 6.3: `kallsyms_offsets` + `kallsyms_relative_base` (or
//!    `kallsyms_addresses`) right before `kallsyms_num_syms`; ≥ 6.4: right after
//!    `kallsyms_token_index`. Both are tried; the encoding is chosen as in
//!    `addresses.rs`, anchored on `stext_hint` or, without one, on the image range.
//!
//! A table of 256 symbols or fewer has a single marker and cannot be found this way.

use super::addresses::{AddrSource, Anchor, TableOrder};
use super::error::ScanStep;
use super::names::walk;
use super::read::{align8, read_prefix, read_suffix, Window, CHUNK};
use super::tokens::{TokenTable, MAX_TOKEN};
use super::{assemble, FoundBy, Kallsyms, KallsymsError, Located, MAX_NAMES_BYTES, MAX_SYMS};
use crate::kmem::{KernelMem, VirtAddr};

/// Tokens 0x30–0x39.
const DIGITS: &[u8; 20] = b"0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00";

/// The longest range scanned (the x86_64 kernel image is at most 1 GiB).
const MAX_SCAN: u64 = 1 << 30;

/// Token-table candidates tried before giving up.
const MAX_CANDIDATES: usize = 64;

/// How far before the token table the markers are looked for (they sit at most
/// `4 * num_syms` + alignment before it).
const MARKERS_WINDOW: u64 = 8 << 20;

/// Bounds on the step between two markers: 256 names of 2 to 514 bytes (vmlinux-to-elf
/// uses (0x200, 0x40000]).
const MIN_MARKER_STEP: u32 = 0x200;
const MAX_MARKER_STEP: u32 = 0x40000;

/// The most bytes the last 256 names can take.
const MAX_TAIL: u64 = 256 * (2 + MAX_TOKEN) + 8;

const PAGE: u64 = 4096;

impl Kallsyms {
    /// Finds and reads the kallsyms tables by scanning `image_len` bytes of the kernel image
    /// from `image_start` (read in 1 MiB chunks; unreadable pages are skipped).
    ///
    /// `stext_hint` is the true address of `_stext` when known (VMCOREINFO, page tables);
    /// without it the encoding must put `_stext`/`_text` inside the scanned range.
    pub fn scan(
        mem: &dyn KernelMem,
        image_start: VirtAddr,
        image_len: u64,
        stext_hint: Option<u64>,
    ) -> Result<Kallsyms, KallsymsError> {
        let len = image_len.min(MAX_SCAN);
        let lo = image_start.0;
        let hi = lo.saturating_add(len);
        let len = hi - lo;
        let mut tried = 0usize;
        let mut first: Option<VirtAddr> = None;
        let mut last: Option<KallsymsError> = None;
        let overlap = DIGITS.len() as u64 - 1;
        let mut off = 0u64;
        while off < len && tried < MAX_CANDIDATES {
            let want = (len - off).min(CHUNK + overlap);
            let at = image_start.add(off);
            let (bytes, err) = read_prefix(mem, at, want);
            // Hits starting in the overlap are found again by the next chunk.
            let limit = if err.is_none() && want == CHUNK + overlap {
                CHUNK as usize
            } else {
                bytes.len()
            };
            let hits = bytes
                .windows(DIGITS.len())
                .enumerate()
                .take(limit)
                .filter(|(_, w)| *w == DIGITS)
                .map(|(q, _)| at.add(q as u64));
            for p in hits {
                tried += 1;
                first.get_or_insert(p);
                match try_candidate(mem, p, lo, hi, stext_hint) {
                    Ok(k) => return Ok(k),
                    Err(e) => last = Some(e),
                }
                if tried >= MAX_CANDIDATES {
                    break;
                }
            }
            off = match err {
                None => off + CHUNK,
                // Skip the hole, probing one byte per page.
                Some(_) => {
                    let hole = at.0 + bytes.len() as u64;
                    let mut next = (hole / PAGE).saturating_add(1).saturating_mul(PAGE);
                    while next < hi && mem.read_virt(VirtAddr(next), &mut [0u8; 1]).is_err() {
                        next = next.saturating_add(PAGE);
                    }
                    next.min(hi) - lo
                }
            };
        }
        match (first, last) {
            (Some(first), Some(last)) => Err(KallsymsError::ScanFailed {
                candidates: tried,
                first,
                last: Box::new(last),
            }),
            _ => Err(KallsymsError::NotFound {
                start: image_start,
                len,
            }),
        }
    }
}

/// Where the token table and index are.
struct Tokens {
    table: VirtAddr,
    index: VirtAddr,
}

/// Steps 1 and 2 from the digits at `p`.
fn find_token_table(
    mem: &dyn KernelMem,
    p: VirtAddr,
    lo: u64,
    hi: u64,
) -> Result<Tokens, KallsymsError> {
    let incomplete = |step| KallsymsError::ScanIncomplete {
        token_table: p,
        step,
    };
    // Back to the start of token 1.
    let back = (p.0 - lo).min(48 * (MAX_TOKEN + 1));
    let (wbase, w) = read_suffix(mem, VirtAddr(p.0 - back), back);
    let mut pos = w.len();
    for _ in 0..0x2f {
        if pos == 0 || w[pos - 1] != 0 {
            return Err(incomplete(ScanStep::TokenTable));
        }
        let prev_nul = w[..pos - 1]
            .iter()
            .rposition(|&b| b == 0)
            .ok_or_else(|| incomplete(ScanStep::TokenTable))?;
        pos = prev_nul + 1;
    }
    // `pos - 1` is token 0's NUL.
    if pos == 0 {
        return Err(incomplete(ScanStep::TokenTable));
    }
    let start1 = wbase.0 + pos as u64;
    // Tokens 1..=255 forward.
    let fwd_len = (hi.saturating_sub(start1)).min(255 * (MAX_TOKEN + 1) + 8 + 256 + 512);
    let (fwd, _) = read_prefix(mem, VirtAddr(start1), fwd_len);
    let mut rel = [0u64; 256];
    let mut off = 0usize;
    for r in rel.iter_mut().skip(1) {
        *r = off as u64;
        let len = fwd
            .get(off..)
            .and_then(|s| s.iter().position(|&b| b == 0))
            .ok_or_else(|| incomplete(ScanStep::TokenTable))?;
        off += len + 1;
    }
    let table_end = off;
    // The index: u16 offsets equal to the tokens', token 0's length + 1 apart.
    // The index is 2-aligned (8 in practice) as an address, not relative to token 1.
    let mut q = table_end + ((start1 as usize + table_end) & 1);
    while q <= table_end + 256 {
        let Some(raw) = fwd.get(q..q + 512) else {
            break;
        };
        let idx = |i: usize| u64::from(u16::from_le_bytes([raw[2 * i], raw[2 * i + 1]]));
        let first = idx(1);
        if idx(0) == 0
            && first >= 1
            && (1..256).all(|i| idx(i) == first + rel[i])
            && (first as usize) <= pos
        {
            // Token 0 holds no NUL.
            let t0 = &w[pos - first as usize..pos - 1];
            if !t0.contains(&0) {
                return Ok(Tokens {
                    table: VirtAddr(start1 - first),
                    index: VirtAddr(start1 + q as u64),
                });
            }
        }
        q += 2;
    }
    Err(incomplete(ScanStep::TokenIndex))
}

/// A run of plausible markers at `at`.
struct MarkerRun {
    at: u64,
    size: u64,
    values: Vec<u32>,
}

/// Every 8-aligned position of `w` that starts a markers array of at least 2 entries.
fn marker_runs(w: &Window) -> Vec<MarkerRun> {
    let max_markers = (MAX_SYMS as usize).div_ceil(256);
    let mut runs = Vec::new();
    let mut at = align8(w.base);
    while at.saturating_add(16) <= w.end() {
        for size in [4u64, 8] {
            let read = |va: u64| -> Option<u32> {
                if size == 4 {
                    w.u32(va)
                } else {
                    w.u64(va).and_then(|v| u32::try_from(v).ok())
                }
            };
            if read(at) != Some(0) {
                continue;
            }
            let mut values = vec![0u32];
            while values.len() < max_markers {
                let prev = values[values.len() - 1];
                match read(at.saturating_add(size * values.len() as u64)) {
                    Some(v)
                        if v > prev
                            && (MIN_MARKER_STEP..=MAX_MARKER_STEP).contains(&(v - prev)) =>
                    {
                        values.push(v)
                    }
                    _ => break,
                }
            }
            if values.len() >= 2 {
                runs.push(MarkerRun { at, size, values });
            }
        }
        at = at.saturating_add(8);
        if at == u64::MAX {
            break;
        }
    }
    runs
}

/// A layout consistent with a marker run: `nm` markers, `n_lo..=n_hi` symbols.
struct Layout {
    nm: usize,
    n_lo: u32,
    n_hi: u32,
}

/// The layouts (markers right before the token table, or before seqs_of_names) that put
/// the token table at `table`.
fn layouts(run: &MarkerRun, table: u64) -> Vec<Layout> {
    let mut out = Vec::new();
    for nm in 2..=run.values.len() {
        let lo = 256 * (nm as u64 - 1) + 1;
        let hi = (256 * nm as u64).min(u64::from(MAX_SYMS));
        if lo > hi {
            break;
        }
        let end = run.at.saturating_add(nm as u64 * run.size);
        if end > table {
            break;
        }
        if align8(end) == table {
            out.push(Layout {
                nm,
                n_lo: lo as u32,
                n_hi: hi as u32,
            });
        }
        let seqs = align8(end);
        let gap = table.saturating_sub(seqs);
        for es in [3u64, 4] {
            let n_min = gap.saturating_sub(7).div_ceil(es).max(lo);
            let n_max = (gap / es).min(hi);
            for n in n_min..=n_max {
                if align8(seqs.saturating_add(es * n)) == table {
                    out.push(Layout {
                        nm,
                        n_lo: n as u32,
                        n_hi: n as u32,
                    });
                }
            }
        }
    }
    out
}

/// Where `kallsyms_num_syms` may be for a run and layout: each `(num_syms address, count)`
/// whose last 256 names end where the markers start.
fn names_candidates(
    mem: &dyn KernelMem,
    run: &MarkerRun,
    layout: &Layout,
    lo: u64,
) -> Vec<(u64, u32)> {
    let m = run.at;
    let last = u64::from(run.values[layout.nm - 1]);
    let mut out = Vec::new();
    if last > MAX_NAMES_BYTES || m < last + 8 + 2 {
        return out;
    }
    let start_hi = (m - last - 2) & !7;
    let start_lo = m.saturating_sub(last + MAX_TAIL).max(lo + 8);
    if start_lo > start_hi {
        return out;
    }
    let (base, data) = read_suffix(mem, VirtAddr(start_lo - 8), m - (start_lo - 8));
    let w = Window::new(base, data);
    let before = 256 * (layout.nm as u32 - 1);
    let mut start = start_hi;
    while start >= start_lo {
        let num = start - 8;
        if let (Some(count), Some(0)) = (w.u32(num), w.u32(num + 4)) {
            if (layout.n_lo..=layout.n_hi).contains(&count) && count > before {
                let tail_at = start + last;
                if let Some(tail) = w.slice(tail_at, m.saturating_sub(tail_at)) {
                    let fits = [true, false].iter().any(|&two| {
                        walk(tail, count - before, two, VirtAddr(tail_at))
                            .is_ok_and(|wk| align8(tail_at + wk.end) == m)
                    });
                    if fits {
                        out.push((num, count));
                    }
                }
            }
        }
        match start.checked_sub(8) {
            Some(s) => start = s,
            None => break,
        }
    }
    out
}

/// The address arrays' possible places for `n` symbols whose count is at `num`.
fn sources(num: u64, n: u32, index: VirtAddr) -> Vec<AddrSource> {
    let n = u64::from(n);
    let mut out = Vec::new();
    if let Some(base) = num.checked_sub(8) {
        if let Some(va) = base.checked_sub(align8(4 * n)) {
            out.push(AddrSource::Offsets {
                va: VirtAddr(va),
                base: Some(VirtAddr(base)),
                order: TableOrder::AddressesFirst,
            });
        }
    }
    if let Some(va) = num.checked_sub(8 * n) {
        out.push(AddrSource::Absolute {
            va: VirtAddr(va),
            order: TableOrder::AddressesFirst,
        });
    }
    let after = align8(index.0.saturating_add(512));
    out.push(AddrSource::Offsets {
        va: VirtAddr(after),
        base: Some(VirtAddr(align8(after.saturating_add(4 * n)))),
        order: TableOrder::NamesFirst,
    });
    out.push(AddrSource::Absolute {
        va: VirtAddr(after),
        order: TableOrder::NamesFirst,
    });
    out
}

/// Steps 1–5 from the digits at `p`.
fn try_candidate(
    mem: &dyn KernelMem,
    p: VirtAddr,
    lo: u64,
    hi: u64,
    stext_hint: Option<u64>,
) -> Result<Kallsyms, KallsymsError> {
    let t = find_token_table(mem, p, lo, hi)?;
    let tokens = TokenTable::read(mem, t.table, t.index)?;
    let incomplete = |step| KallsymsError::ScanIncomplete {
        token_table: t.table,
        step,
    };
    let wlen = (t.table.0 - lo).min(MARKERS_WINDOW);
    let (wbase, wdata) = read_suffix(mem, VirtAddr(t.table.0 - wlen), wlen);
    let window = Window::new(wbase, wdata);
    let mut runs = marker_runs(&window);
    drop(window);
    // Closest to the token table first.
    runs.sort_by_key(|r| std::cmp::Reverse(r.at));
    let mut any_layout = false;
    let mut last_err = None;
    for run in &runs {
        for layout in layouts(run, t.table.0) {
            any_layout = true;
            for (num, count) in names_candidates(mem, run, &layout, lo) {
                let names = num + 8;
                let located = Located {
                    found_by: FoundBy::Scan,
                    origin: format!(
                        "by signature scan of {}..+{:#x} (token table at {})",
                        VirtAddr(lo),
                        hi - lo,
                        t.table
                    ),
                    num_syms: count,
                    names: VirtAddr(names),
                    names_bound: run.at - names,
                    token_table: t.table,
                    token_index: t.index,
                    tokens: Some(tokens.clone()),
                    sources: sources(num, count, t.index),
                    markers: Some(VirtAddr(run.at)),
                    prefer_two: true,
                    anchor: Anchor {
                        stext: stext_hint,
                        image: Some((lo, hi)),
                    },
                };
                match assemble(mem, located) {
                    Ok(k) => return Ok(k),
                    Err(e) => last_err = Some(e),
                }
            }
        }
    }
    Err(last_err.unwrap_or_else(|| {
        incomplete(if any_layout {
            ScanStep::Names
        } else {
            ScanStep::Markers
        })
    }))
}
