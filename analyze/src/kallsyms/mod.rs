//! kallsyms: the kernel's own compressed symbol table, read out of guest memory, so kernel
//! addresses can be symbolized with no debuginfo.
//!
//! Two ways in:
//!
//! | entry point | kernels | how the tables are found |
//! |---|---|---|
//! | [`Kallsyms::from_vmcoreinfo`] | 6.0+ (and distro backports) | `SYMBOL(kallsyms_*)` in VMCOREINFO (`vmci.rs`) |
//! | [`Kallsyms::scan`] | any, e.g. 5.x | signature scan of the kernel image (`scan.rs`) |
//!
//! Both decode the same arrays (`kernel/kallsyms_internal.h`): the token table
//! (`tokens.rs`), the names stream with 1- or 2-byte lengths (`names.rs`) and the addresses
//! in one of four encodings (`addresses.rs`). Nothing in memory says which length form or
//! address encoding a kernel uses, so each is chosen by consistency: the names must end
//! exactly where `kallsyms_markers` starts and agree with it, text symbols must be sorted,
//! and `_stext` must be where VMCOREINFO (or the caller) says. [`KallsymsInfo::how`] says
//! what was chosen.
//!
//! Rules: every count, length and offset read from the guest is hostile. Counts are capped
//! ([`MAX_SYMS`], [`MAX_NAMES_BYTES`]) before anything is allocated, every loop is bounded
//! by them, and the first inconsistency stops the read with a [`KallsymsError`] naming the
//! value and its address.

mod addresses;
mod error;
mod names;
mod read;
mod scan;
mod tokens;
mod vmci;

#[cfg(test)]
mod synth;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::OnceLock;

use serde::Serialize;

pub use addresses::{AddressEncoding, TableOrder};
pub use error::{KallsymsError, RejectReason, Rejection, ScanStep};
pub use names::NameLengths;

use addresses::{AddrSource, Anchor};
use read::align8;
pub(crate) use read::read_prefix;
use tokens::TokenTable;

use crate::kmem::{KernelMem, VirtAddr};

/// The most symbols accepted (real kernels have 50k–300k).
pub const MAX_SYMS: u32 = 2_000_000;

/// The largest names stream read (real kernels: 1–4 MiB).
pub const MAX_NAMES_BYTES: u64 = 32 << 20;

/// Symbol sizes are inferred from the next symbol and capped at this (as drgn does): a
/// bigger gap is not the symbol's.
pub const MAX_SYMBOL_SIZE: u64 = 0x10000;

/// One kernel symbol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Symbol {
    /// Its address (KASLR applied: the running kernel's address).
    #[serde(with = "coroner_formats::hex")]
    pub addr: u64,
    /// Bytes to the next symbol at a higher address, capped at 0x10000; 0 for
    /// the symbol(s) at the highest address.
    pub size: u64,
    /// The nm type letter (`T`/`t` text, `D`/`d` data, `B`/`b` bss, `R`/`r` rodata,
    /// `W` weak, `A` absolute — per-cpu symbols on x86_64 SMP until 6.15).
    pub kind: char,
    /// The name, as the kernel prints it.
    pub name: String,
}

impl Symbol {
    /// True for text (code) symbols.
    pub fn is_text(&self) -> bool {
        addresses::is_text(self.kind)
    }

    /// True for absolute symbols (type `A`/`a`): per-cpu offsets, not addresses.
    pub fn is_absolute(&self) -> bool {
        matches!(self.kind, 'A' | 'a')
    }
}

/// How the tables were found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FoundBy {
    /// `SYMBOL(kallsyms_*)` in VMCOREINFO.
    Vmcoreinfo,
    /// The signature scan of the kernel image.
    Scan,
}

/// Where the tables are and how they were decoded: the evidence behind every symbol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KallsymsInfo {
    /// How the tables were found.
    pub found_by: FoundBy,
    /// The address encoding chosen.
    pub encoding: AddressEncoding,
    /// The name-length form chosen.
    pub name_lengths: NameLengths,
    /// The table order (from where the address array was).
    pub order: TableOrder,
    /// `kallsyms_num_syms`.
    pub num_syms: u32,
    /// `kallsyms_names`.
    pub names: VirtAddr,
    /// `kallsyms_token_table`.
    pub token_table: VirtAddr,
    /// `kallsyms_token_index`.
    pub token_index: VirtAddr,
    /// `kallsyms_addresses` or `kallsyms_offsets`.
    pub addresses: VirtAddr,
    /// The value of `kallsyms_relative_base`, for the base-relative encodings.
    #[serde(with = "coroner_formats::hex::option")]
    pub relative_base: Option<u64>,
    /// One line for reports, e.g. "from VMCOREINFO SYMBOL(kallsyms_*) (6.0+); addresses
    /// before names (<= 6.3 order); base-relative with absolute per-cpu; 1-byte name
    /// lengths (no name needs 2)".
    pub how: String,
}

/// A decoded kallsyms table: every symbol, indexed by address and by name.
#[derive(Debug, Serialize)]
pub struct Kallsyms {
    info: KallsymsInfo,
    symbols: Vec<Symbol>,
    /// Non-absolute symbols, by (address, table position).
    #[serde(skip)]
    by_addr: Vec<u32>,
    /// All symbols, by (name, table position): built on the
    /// [`NAME_INDEX_AFTER`]th lookup (a command that looks up a few names never sorts
    /// ~150,000 of them).
    #[serde(skip)]
    by_name: OnceLock<Vec<u32>>,
    /// Lookups answered so far.
    #[serde(skip)]
    lookups: AtomicU32,
}

/// Lookups answered by a scan of the table before the name index is built.
const NAME_INDEX_AFTER: u32 = 8;

impl Clone for Kallsyms {
    fn clone(&self) -> Self {
        Self {
            info: self.info.clone(),
            symbols: self.symbols.clone(),
            by_addr: self.by_addr.clone(),
            by_name: self.by_name.clone(),
            lookups: AtomicU32::new(self.lookups.load(AtomicOrdering::Relaxed)),
        }
    }
}

/// Where the tables are, as found by VMCOREINFO or the scan; input to [`assemble`].
pub(crate) struct Located {
    pub found_by: FoundBy,
    /// Prefix of the `how` line (where the tables came from).
    pub origin: String,
    pub num_syms: u32,
    pub names: VirtAddr,
    /// The most bytes the names stream can span (to the next table).
    pub names_bound: u64,
    pub token_table: VirtAddr,
    pub token_index: VirtAddr,
    /// The token table, when the finder already read it.
    pub tokens: Option<TokenTable>,
    pub sources: Vec<AddrSource>,
    /// Where `kallsyms_markers` is, when known; otherwise it is probed right after the names.
    pub markers: Option<VirtAddr>,
    /// The kernel is 6.1+ (2-byte lengths win a tie).
    pub prefer_two: bool,
    pub anchor: Anchor,
}

/// Checks that `kallsyms_markers` at `at` holds `want` (as u32, or as u64 in old kernels).
fn markers_match(mem: &dyn KernelMem, at: VirtAddr, want: &[u32]) -> bool {
    let k = want.len().min(64);
    let mut b = vec![0u8; k * 8];
    let as32 = mem.read_virt(at, &mut b[..k * 4]).is_ok()
        && want[..k]
            .iter()
            .zip(b.chunks_exact(4))
            .all(|(w, c)| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) == *w);
    as32 || (mem.read_virt(at, &mut b).is_ok()
        && want[..k].iter().zip(b.chunks_exact(8)).all(|(w, c)| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            u64::from_le_bytes(a) == u64::from(*w)
        }))
}

/// Decodes the located tables into a [`Kallsyms`].
pub(crate) fn assemble(mem: &dyn KernelMem, loc: Located) -> Result<Kallsyms, KallsymsError> {
    let n = loc.num_syms;
    let tokens = match loc.tokens {
        Some(t) => t,
        None => TokenTable::read(mem, loc.token_table, loc.token_index)?,
    };
    let bound = loc.names_bound.min(MAX_NAMES_BYTES);
    let (stream, err) = read_prefix(mem, loc.names, bound);
    if stream.is_empty() {
        if let Some(source) = err {
            return Err(KallsymsError::Read {
                what: "kallsyms_names",
                va: loc.names,
                source,
            });
        }
    }
    let end_ok = |w: &names::Walk| {
        let end = align8(loc.names.0.saturating_add(w.end));
        match loc.markers {
            Some(m) => end == m.0 && markers_match(mem, m, &w.markers),
            None => markers_match(mem, VirtAddr(end), &w.markers),
        }
    };
    let (lengths, _) = names::choose_lengths(&stream, n, loc.names, loc.prefer_two, &end_ok)?;
    let decoded = names::expand(&stream, n, lengths, &tokens, loc.names)?;
    drop(stream);
    let chosen = addresses::choose(mem, &decoded, &loc.sources, loc.anchor)?;
    let how = format!(
        "{}; {}; {}; {}",
        loc.origin,
        chosen.order.describe(),
        chosen.encoding.describe(),
        lengths.describe()
    );
    let info = KallsymsInfo {
        found_by: loc.found_by,
        encoding: chosen.encoding,
        name_lengths: lengths,
        order: chosen.order,
        num_syms: n,
        names: loc.names,
        token_table: loc.token_table,
        token_index: loc.token_index,
        addresses: chosen.table,
        relative_base: chosen.relative_base,
        how,
    };
    let symbols = decoded
        .into_iter()
        .zip(chosen.addresses)
        .map(|(nm, addr)| Symbol {
            addr,
            size: 0,
            kind: nm.kind,
            name: nm.name,
        })
        .collect();
    Ok(Kallsyms::new(info, symbols))
}

/// The first 16 bytes of `name` as a big-endian integer (zero-padded): comparing two
/// prefixes orders the names as comparing their first 16 bytes does.
fn name_prefix(name: &str) -> u128 {
    let mut b = [0u8; 16];
    let n = name.len().min(16);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    u128::from_be_bytes(b)
}

impl Kallsyms {
    /// Builds the indexes and symbol sizes.
    fn new(info: KallsymsInfo, mut symbols: Vec<Symbol>) -> Self {
        let count = u32::try_from(symbols.len()).unwrap_or(u32::MAX);
        let mut all: Vec<u32> = (0..count).collect();
        // The kernel's table is sorted by address already (scripts/kallsyms sorts it);
        // sort only a table that is not.
        if symbols.windows(2).any(|w| w[0].addr > w[1].addr) {
            all.sort_unstable_by_key(|&i| (symbols[i as usize].addr, i));
        }
        // Size: to the next strictly higher address, capped.
        let mut next_higher: Option<u64> = None;
        let mut group_end = all.len();
        while group_end > 0 {
            let addr = symbols[all[group_end - 1] as usize].addr;
            let mut group_start = group_end - 1;
            while group_start > 0 && symbols[all[group_start - 1] as usize].addr == addr {
                group_start -= 1;
            }
            let size = next_higher.map_or(0, |nx| (nx - addr).min(MAX_SYMBOL_SIZE));
            for &i in &all[group_start..group_end] {
                symbols[i as usize].size = size;
            }
            next_higher = Some(addr);
            group_end = group_start;
        }
        let by_addr = all
            .into_iter()
            .filter(|&i| !symbols[i as usize].is_absolute())
            .collect();
        Self {
            info,
            symbols,
            by_addr,
            by_name: OnceLock::new(),
            lookups: AtomicU32::new(0),
        }
    }

    /// All symbols by (name, table position), sorted on each name's first 16 bytes
    /// (big-endian, so the integer order is the byte order) and only then on the whole
    /// name: most comparisons never leave the array.
    fn name_index(&self) -> &[u32] {
        self.by_name.get_or_init(|| {
            let symbols = &self.symbols;
            let count = u32::try_from(symbols.len()).unwrap_or(u32::MAX);
            let mut keyed: Vec<(u128, u32)> = symbols
                .iter()
                .zip(0..count)
                .map(|(s, i)| (name_prefix(&s.name), i))
                .collect();
            keyed.sort_unstable_by(|&(ka, a), &(kb, b)| {
                ka.cmp(&kb)
                    .then_with(|| symbols[a as usize].name.cmp(&symbols[b as usize].name))
                    .then(a.cmp(&b))
            });
            keyed.into_iter().map(|(_, i)| i).collect()
        })
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// True when there is no symbol (never, for a table that decoded).
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Every symbol, in table order (sorted by address).
    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    /// Where the tables are and how they were decoded.
    pub fn info(&self) -> &KallsymsInfo {
        &self.info
    }

    /// The address encoding chosen.
    pub fn encoding(&self) -> AddressEncoding {
        self.info.encoding
    }

    /// One line saying how the table was found and decoded, for reports.
    pub fn how(&self) -> &str {
        &self.info.how
    }

    /// The symbol named exactly `name`; among duplicates (static functions of the same
    /// name in several files), the first text symbol, else the first in table order.
    pub fn lookup(&self, name: &str) -> Option<&Symbol> {
        if self.by_name.get().is_none()
            && self.lookups.fetch_add(1, AtomicOrdering::Relaxed) < NAME_INDEX_AFTER
        {
            let mut named = self.symbols.iter().filter(|s| s.name == name);
            let first = named.next()?;
            return Some(if first.is_text() {
                first
            } else {
                named.find(|s| s.is_text()).unwrap_or(first)
            });
        }
        let by_name = self.name_index();
        let lo = by_name.partition_point(|&i| self.symbols[i as usize].name.as_str() < name);
        let hi =
            lo + by_name[lo..].partition_point(|&i| self.symbols[i as usize].name.as_str() == name);
        let range = by_name.get(lo..hi)?;
        let pick = range
            .iter()
            .find(|&&i| self.symbols[i as usize].is_text())
            .or_else(|| range.first())?;
        self.symbols.get(*pick as usize)
    }

    /// The symbol containing `addr` and the offset into it, the way the kernel's `%pS`
    /// picks it: the last symbol at or below `addr`, and among aliases at the same address
    /// the first in table order. `None` below the first symbol, past the symbol's size, or
    /// when `addr` is only covered by absolute (per-cpu) symbols, which are not addresses.
    pub fn symbolize(&self, addr: u64) -> Option<(&Symbol, u64)> {
        let pos = self
            .by_addr
            .partition_point(|&i| self.symbols[i as usize].addr <= addr);
        let last = *self.by_addr.get(pos.checked_sub(1)?)?;
        let at = self.symbols[last as usize].addr;
        let first = self.by_addr[..pos].partition_point(|&i| self.symbols[i as usize].addr < at);
        let sym = self.symbols.get(*self.by_addr.get(first)? as usize)?;
        let off = addr - sym.addr;
        match off.cmp(&sym.size) {
            Ordering::Less => Some((sym, off)),
            _ if off == 0 => Some((sym, 0)),
            _ => None,
        }
    }

    /// `name+0xoff/0xsize` as the kernel prints a code address, or the bare `0x…` address
    /// when no symbol contains it.
    pub fn format_addr(&self, addr: u64) -> String {
        match self.symbolize(addr) {
            Some((s, off)) => format!("{}+{:#x}/{:#x}", s.name, off, s.size),
            None => format!("{addr:#x}"),
        }
    }

    /// `name+0xoff/0xsize` of a return address as the kernel's `%pB` prints it: the
    /// symbol of the call before it (`addr - 1`, so a call that ends a function is not
    /// named after the next one), with the offset of `addr` itself.
    pub fn format_return(&self, addr: u64) -> Option<String> {
        let (s, off) = self.symbolize(addr.checked_sub(1)?)?;
        Some(format!("{}+{:#x}/{:#x}", s.name, off + 1, s.size))
    }
}

/// Parses `major.minor` of an OSRELEASE and says whether it is 6.1 or later.
pub(crate) fn is_6_1_or_later(osrelease: Option<&str>) -> bool {
    let Some(r) = osrelease else { return true };
    let mut it = r.split(|c: char| !c.is_ascii_digit());
    let major: u32 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor: u32 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (major, minor) >= (6, 1)
}
