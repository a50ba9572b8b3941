//! The lockless printk ring buffer (`kernel/printk/printk_ringbuffer.h`, 5.10+).
//!
//! `prb` points at a `struct printk_ringbuffer`: a descriptor ring (`descs[]` with a state
//! word and the text block's logical positions, `infos[]` with seq, timestamp, level,
//! caller) and a text data ring of `[u64 id][text]` blocks. The reader copies the three
//! arrays once (sizes capped), then walks the descriptor ids from `tail_id` to `head_id`,
//! keeping only descriptors in the committed or finalized state whose id matches, the way
//! vmcore-dmesg, makedumpfile and crash do.
//!
//! Block wrap rule (valid for every kernel, including the 2025 change that lets a block end
//! exactly at the end of the array): a block is regular iff
//! `DATA_WRAPS(begin) == DATA_WRAPS(next - 1)`; otherwise its data is at index 0.

use crate::kmem::{KernelMem, VirtAddr, XlateError};
use crate::vmcoreinfo::Vmcoreinfo;

use super::bytes::{bytes_at, c_string, u16_at, u32_at, u64_at, u8_at};
use super::record::{KernelLog, LogKind, LogRecord, SkipCounter};
use super::{LogError, MAX_TEXT_BYTES};

/// `DESC_ID_MASK`: the id part of `state_var` (the top two bits are the state).
const DESC_ID_MASK: u64 = (1 << 62) - 1;
/// `DESC_FLAGS_SHIFT`.
const DESC_STATE_SHIFT: u32 = 62;
/// `desc_reserved`: a writer holds the descriptor.
const STATE_RESERVED: u64 = 0;
/// `desc_committed`: complete (may still be extended).
const STATE_COMMITTED: u64 = 1;
/// `desc_finalized`: complete and final.
const STATE_FINALIZED: u64 = 2;
/// `FAILED_LPOS`: the record has no data (no space was left).
const FAILED_LPOS: u64 = 0x1;
/// `EMPTY_LINE_LPOS` (`NO_LPOS` before 6.9): a valid record with empty text.
const EMPTY_LINE_LPOS: u64 = 0x3;
/// `PRB_AVGBITS`: the text ring is `2^(count_bits + 5)` bytes in every kernel.
const PRB_AVGBITS: u32 = 5;
/// The most descriptors read: 2^22 (a 128 MiB log buffer).
const MAX_COUNT_BITS: u32 = 22;
/// The largest text ring read: 2^27 bytes.
const MAX_SIZE_BITS: u32 = 27;
/// The smallest text ring accepted: one 8-byte block id.
const MIN_SIZE_BITS: u32 = 3;
/// The candidate offsets of `printk_ringbuffer.text_data_ring`: +48 from ~5.18 (after
/// `last_finalized_id`/`last_finalized_seq` was added to `prb_desc_ring`), +40 before.
const TEXT_RING_CANDIDATES: [u64; 2] = [48, 40];

/// Offsets and sizes of the ring structures, from VMCOREINFO or the x86_64 defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Layout {
    /// `printk_ringbuffer.desc_ring`.
    desc_ring: u64,
    /// `printk_ringbuffer.text_data_ring`, when VMCOREINFO says.
    text_data_ring: Option<u64>,
    /// `prb_desc_ring.count_bits`.
    count_bits: u64,
    /// `prb_desc_ring.descs`.
    descs: u64,
    /// `prb_desc_ring.infos`.
    infos: u64,
    /// `prb_desc_ring.head_id`.
    head_id: u64,
    /// `prb_desc_ring.tail_id`.
    tail_id: u64,
    /// `prb_data_ring.size_bits`.
    size_bits: u64,
    /// `prb_data_ring.data`.
    data: u64,
    /// `SIZE(prb_desc)`.
    desc_size: u64,
    /// `prb_desc.state_var`.
    state_var: u64,
    /// `prb_desc.text_blk_lpos` + `prb_data_blk_lpos.begin`.
    lpos_begin: u64,
    /// `prb_desc.text_blk_lpos` + `prb_data_blk_lpos.next`.
    lpos_next: u64,
    /// `SIZE(printk_info)`.
    info_size: u64,
    /// `printk_info.seq`.
    seq: u64,
    /// `printk_info.ts_nsec`.
    ts_nsec: u64,
    /// `printk_info.text_len` (u16; facility follows at +2, flags/level at +3).
    text_len: u64,
    /// `printk_info.caller_id`.
    caller_id: u64,
    /// `printk_info.dev_info` + `dev_printk_info.subsystem`.
    subsystem: u64,
    /// `LENGTH(printk_info_subsystem)`.
    subsystem_len: u64,
    /// `printk_info.dev_info` + `dev_printk_info.device`.
    device: u64,
    /// `LENGTH(printk_info_device)`.
    device_len: u64,
}

impl Layout {
    /// The x86_64 layout of every released 5.10+ kernel (linux.md §2.1).
    const DEFAULT: Layout = Layout {
        desc_ring: 0,
        text_data_ring: None,
        count_bits: 0,
        descs: 8,
        infos: 16,
        head_id: 24,
        tail_id: 32,
        size_bits: 0,
        data: 8,
        desc_size: 24,
        state_var: 0,
        lpos_begin: 8,
        lpos_next: 16,
        info_size: 88,
        seq: 0,
        ts_nsec: 8,
        text_len: 16,
        caller_id: 20,
        subsystem: 24,
        subsystem_len: 16,
        device: 40,
        device_len: 48,
    };

    /// The layout VMCOREINFO describes, each missing key taken from [`Self::DEFAULT`].
    /// A layout whose fields do not fit their structures is replaced by the default,
    /// with a diagnostic.
    fn from_vmci(v: &Vmcoreinfo, diags: &mut Vec<String>) -> Layout {
        let d = Self::DEFAULT;
        let off = |k: &str, def: u64| v.offset(k).unwrap_or(def);
        let dev_info = off("printk_info.dev_info", 24);
        let blk = off("prb_desc.text_blk_lpos", 8);
        let l = Layout {
            desc_ring: off("printk_ringbuffer.desc_ring", d.desc_ring),
            text_data_ring: v.offset("printk_ringbuffer.text_data_ring"),
            count_bits: off("prb_desc_ring.count_bits", d.count_bits),
            descs: off("prb_desc_ring.descs", d.descs),
            infos: off("prb_desc_ring.infos", d.infos),
            head_id: off("prb_desc_ring.head_id", d.head_id),
            tail_id: off("prb_desc_ring.tail_id", d.tail_id),
            size_bits: off("prb_data_ring.size_bits", d.size_bits),
            data: off("prb_data_ring.data", d.data),
            desc_size: v.size("prb_desc").unwrap_or(d.desc_size),
            state_var: off("prb_desc.state_var", d.state_var),
            lpos_begin: blk.saturating_add(off("prb_data_blk_lpos.begin", 0)),
            lpos_next: blk.saturating_add(off("prb_data_blk_lpos.next", 8)),
            info_size: v.size("printk_info").unwrap_or(d.info_size),
            seq: off("printk_info.seq", d.seq),
            ts_nsec: off("printk_info.ts_nsec", d.ts_nsec),
            text_len: off("printk_info.text_len", d.text_len),
            caller_id: off("printk_info.caller_id", d.caller_id),
            subsystem: dev_info.saturating_add(off("dev_printk_info.subsystem", 0)),
            subsystem_len: v.length("printk_info_subsystem").unwrap_or(d.subsystem_len),
            device: dev_info.saturating_add(off("dev_printk_info.device", 16)),
            device_len: v.length("printk_info_device").unwrap_or(d.device_len),
        };
        if l.fits() {
            l
        } else {
            diags.push(format!(
                "VMCOREINFO printk layout does not fit its structures ({l:?}); using the x86_64 defaults"
            ));
            d
        }
    }

    /// True when every field lies inside its structure and the structures are of a size
    /// some kernel could have.
    fn fits(&self) -> bool {
        let inside = |off: u64, width: u64, size: u64| off.saturating_add(width) <= size;
        let small = |off: u64| off <= 4096;
        (24..=256).contains(&self.desc_size)
            && (24..=1024).contains(&self.info_size)
            && [
                self.desc_ring,
                self.count_bits,
                self.descs,
                self.infos,
                self.head_id,
                self.tail_id,
                self.size_bits,
                self.data,
            ]
            .into_iter()
            .all(small)
            && self.text_data_ring.is_none_or(small)
            && inside(self.state_var, 8, self.desc_size)
            && inside(self.lpos_begin, 8, self.desc_size)
            && inside(self.lpos_next, 8, self.desc_size)
            && inside(self.seq, 8, self.info_size)
            && inside(self.ts_nsec, 8, self.info_size)
            && inside(self.text_len, 4, self.info_size)
            && inside(self.caller_id, 4, self.info_size)
            && inside(self.subsystem, self.subsystem_len, self.info_size)
            && inside(self.device, self.device_len, self.info_size)
    }
}

/// True for a higher-half (kernel) address, 4- or 5-level paging.
fn is_kernel_pointer(v: u64) -> bool {
    v >= 0xff00_0000_0000_0000
}

/// Maps a failed read of `what` to [`LogError::Read`].
fn read_err(what: &'static str) -> impl FnOnce(XlateError) -> LogError {
    move |source| LogError::Read { what, source }
}

/// The text data ring as found: where it is and how it was found.
struct TextRing {
    /// Offset in `printk_ringbuffer`.
    offset: u64,
    /// `size_bits`.
    size_bits: u32,
    /// `data`.
    data: u64,
    /// How the offset was chosen.
    how: &'static str,
}

/// Finds `text_data_ring`: the VMCOREINFO offset if given, else the candidate that holds
/// `size_bits == count_bits + 5` and a kernel pointer for `data`.
fn find_text_ring(
    mem: &dyn KernelMem,
    rb: VirtAddr,
    layout: &Layout,
    count_bits: u32,
    diags: &mut Vec<String>,
) -> Result<TextRing, LogError> {
    let probe = |offset: u64| -> Result<(u32, u64), XlateError> {
        let ring = rb.add(offset);
        Ok((
            mem.read_u32(ring.add(layout.size_bits))?,
            mem.read_u64(ring.add(layout.data))?,
        ))
    };
    if let Some(offset) = layout.text_data_ring {
        let (size_bits, data) =
            probe(offset).map_err(read_err("printk_ringbuffer.text_data_ring"))?;
        if u64::from(size_bits) != u64::from(count_bits) + u64::from(PRB_AVGBITS) {
            diags.push(format!(
                "text_data_ring.size_bits {size_bits} != desc_ring.count_bits {count_bits} + 5 (the kernel keeps them so)"
            ));
        }
        return Ok(TextRing {
            offset,
            size_bits,
            data,
            how: "OFFSET(printk_ringbuffer.text_data_ring)",
        });
    }
    let mut found = Vec::new();
    for offset in TEXT_RING_CANDIDATES {
        if let Ok((size_bits, data)) = probe(offset) {
            if u64::from(size_bits) == u64::from(count_bits) + u64::from(PRB_AVGBITS)
                && is_kernel_pointer(data)
            {
                found.push(TextRing {
                    offset,
                    size_bits,
                    data,
                    how: "probed: no OFFSET(printk_ringbuffer.text_data_ring)",
                });
            }
        }
    }
    if found.len() > 1 {
        diags.push(
            "both +48 and +40 look like printk_ringbuffer.text_data_ring; using +48".to_string(),
        );
    }
    found.into_iter().next().ok_or(LogError::NoTextRing {
        ringbuffer: rb,
        count_bits,
    })
}

/// Why a descriptor's text block gave no text.
enum BlockSkip {
    /// `FAILED_LPOS`: the kernel had no space for the text.
    Failed,
    /// The positions are impossible.
    Corrupt,
    /// The block's id is not the descriptor's (its data was overwritten).
    IdMismatch,
}

/// The text ring, copied.
struct TextData<'a> {
    /// `2^size_bits` bytes.
    bytes: &'a [u8],
    /// `size_bits`.
    size_bits: u32,
}

impl TextData<'_> {
    /// The data of the block `[begin, next)` of descriptor `id` (without the block id).
    fn block(&self, id: u64, begin: u64, next: u64) -> Result<&[u8], BlockSkip> {
        if begin & 1 == 1 || next & 1 == 1 {
            return match (begin, next) {
                (EMPTY_LINE_LPOS, EMPTY_LINE_LPOS) => Ok(&[]),
                _ if begin & 1 == 1
                    && next & 1 == 1
                    && (begin == FAILED_LPOS || next == FAILED_LPOS) =>
                {
                    Err(BlockSkip::Failed)
                }
                _ => Err(BlockSkip::Corrupt),
            };
        }
        let size = 1u64 << self.size_bits;
        let index = |lpos: u64| lpos & (size - 1);
        let wraps = |lpos: u64| lpos >> self.size_bits;
        let span = next.wrapping_sub(begin);
        if span < 8 || span > size {
            return Err(BlockSkip::Corrupt);
        }
        let last = next.wrapping_sub(1);
        // `end` is one past the block's last byte; `index(last) + 1` (not `index(next)`)
        // so a block ending exactly at the end of the array gets `size`, not 0.
        let end = index(last) + 1;
        let start = if wraps(begin) == wraps(last) {
            index(begin)
        } else if wraps(begin).wrapping_add(1) == wraps(last) {
            0
        } else {
            return Err(BlockSkip::Corrupt);
        };
        if end < start.saturating_add(8) {
            return Err(BlockSkip::Corrupt);
        }
        let block = bytes_at(self.bytes, start, end - start);
        if u64_at(block, 0) != id {
            return Err(BlockSkip::IdMismatch);
        }
        Ok(block.get(8..).unwrap_or_default())
    }
}

/// Skip counters for the walk, reported as one diagnostic line each.
#[derive(Default)]
struct Skips {
    reserved: SkipCounter,
    reusable: SkipCounter,
    id_mismatch: SkipCounter,
    failed: SkipCounter,
    corrupt: SkipCounter,
    block_id: SkipCounter,
    truncated: SkipCounter,
}

impl Skips {
    fn report(&self, out: &mut Vec<String>) {
        self.reserved.report(
            "descriptors reserved (being written when the guest stopped) skipped",
            out,
        );
        self.reusable.report(
            "descriptors reusable (freed, data may be gone) skipped",
            out,
        );
        self.id_mismatch.report(
            "descriptors whose state_var id is not the expected id skipped",
            out,
        );
        self.failed.report(
            "records without data (FAILED_LPOS: no space for the text) skipped",
            out,
        );
        self.corrupt
            .report("records with impossible text block positions skipped", out);
        self.block_id.report(
            "records whose text block holds another id (overwritten) skipped",
            out,
        );
        self.truncated.report(
            "records with text_len beyond their block, truncated to the block",
            out,
        );
    }
}

/// Reads the lockless ring `prb` points at.
pub(crate) fn read(
    mem: &dyn KernelMem,
    vmci: &Vmcoreinfo,
    prb_symbol: u64,
) -> Result<KernelLog, LogError> {
    let mut diagnostics = Vec::new();
    let layout = Layout::from_vmci(vmci, &mut diagnostics);

    let rb = VirtAddr(
        mem.read_u64(VirtAddr(prb_symbol))
            .map_err(read_err("prb (pointer to the printk_ringbuffer)"))?,
    );
    let dr = rb.add(layout.desc_ring);
    let what = "printk_ringbuffer.desc_ring";
    let count_bits = mem
        .read_u32(dr.add(layout.count_bits))
        .map_err(read_err(what))?;
    let descs = mem.read_u64(dr.add(layout.descs)).map_err(read_err(what))?;
    let infos = mem.read_u64(dr.add(layout.infos)).map_err(read_err(what))?;
    let head_id = mem
        .read_u64(dr.add(layout.head_id))
        .map_err(read_err(what))?;
    let tail_id = mem
        .read_u64(dr.add(layout.tail_id))
        .map_err(read_err(what))?;
    if count_bits > MAX_COUNT_BITS {
        return Err(LogError::OutOfRange {
            what: "prb_desc_ring.count_bits",
            value: count_bits.into(),
            min: 0,
            max: MAX_COUNT_BITS.into(),
        });
    }
    let text_ring = find_text_ring(mem, rb, &layout, count_bits, &mut diagnostics)?;
    let size_bits = text_ring.size_bits;
    if !(MIN_SIZE_BITS..=MAX_SIZE_BITS).contains(&size_bits) {
        return Err(LogError::OutOfRange {
            what: "prb_data_ring.size_bits",
            value: size_bits.into(),
            min: MIN_SIZE_BITS.into(),
            max: MAX_SIZE_BITS.into(),
        });
    }

    let count = 1u64 << count_bits;
    // Bounded by MAX_COUNT_BITS and Layout::fits (<= 4M * 1024 bytes).
    let desc_bytes = mem
        .read_vec(
            VirtAddr(descs),
            count * layout.desc_size,
            count * layout.desc_size,
        )
        .map_err(read_err("prb_desc_ring.descs"))?;
    let info_bytes = mem
        .read_vec(
            VirtAddr(infos),
            count * layout.info_size,
            count * layout.info_size,
        )
        .map_err(read_err("prb_desc_ring.infos"))?;
    let text_bytes = mem
        .read_vec(VirtAddr(text_ring.data), 1u64 << size_bits, MAX_TEXT_BYTES)
        .map_err(read_err("prb_data_ring.data"))?;
    let text = TextData {
        bytes: &text_bytes,
        size_bits,
    };

    let name = match vmci.symbol("printk_rb_static") {
        Some(s) if s == rb.0 => "printk_rb_static",
        Some(_) => "printk_rb_dynamic (not printk_rb_static)",
        None => "printk_ringbuffer",
    };
    let located = format!(
        "SYMBOL(prb)={prb_symbol:#x} -> {name} at {rb}; text_data_ring at +{} ({}); \
         {count} descriptors, {} bytes of text",
        text_ring.offset,
        text_ring.how,
        1u64 << size_bits
    );

    // The walk: tail_id to head_id inclusive, never more than `count` steps.
    let head = head_id & DESC_ID_MASK;
    let tail = tail_id & DESC_ID_MASK;
    let distance = head.wrapping_sub(tail) & DESC_ID_MASK;
    let (first, steps) = if distance < count {
        (tail, distance + 1)
    } else {
        diagnostics.push(format!(
            "head_id {head_id:#x} and tail_id {tail_id:#x} are {distance} ids apart, more than the \
             {count} descriptors; reading the {count} ids up to head_id"
        ));
        (head.wrapping_sub(count - 1) & DESC_ID_MASK, count)
    };

    let mut skips = Skips::default();
    let mut records = Vec::new();
    for k in 0..steps {
        let id = first.wrapping_add(k) & DESC_ID_MASK;
        let slot = id & (count - 1);
        let desc = bytes_at(&desc_bytes, slot * layout.desc_size, layout.desc_size);
        let sv = u64_at(desc, layout.state_var);
        let place = || format!("id {id:#x}");
        if sv & DESC_ID_MASK != id {
            skips.id_mismatch.hit(place);
            continue;
        }
        match sv >> DESC_STATE_SHIFT {
            STATE_COMMITTED | STATE_FINALIZED => {}
            STATE_RESERVED => {
                skips.reserved.hit(place);
                continue;
            }
            // The tail may be reusable in a healthy ring: the kernel's initial
            // descriptor (DESC0_ID) until the ring first fills, and the oldest slot.
            _ if k == 0 => continue,
            _ => {
                skips.reusable.hit(place);
                continue;
            }
        }
        let begin = u64_at(desc, layout.lpos_begin);
        let next = u64_at(desc, layout.lpos_next);
        let data = match text.block(id, begin, next) {
            Ok(d) => d,
            Err(why) => {
                let counter = match why {
                    BlockSkip::Failed => &mut skips.failed,
                    BlockSkip::Corrupt => &mut skips.corrupt,
                    BlockSkip::IdMismatch => &mut skips.block_id,
                };
                counter.hit(|| format!("id {id:#x} lpos {begin:#x}..{next:#x}"));
                continue;
            }
        };
        let info = bytes_at(&info_bytes, slot * layout.info_size, layout.info_size);
        let text_len = u64::from(u16_at(info, layout.text_len));
        if text_len > data.len() as u64 {
            skips
                .truncated
                .hit(|| format!("id {id:#x} text_len {text_len} > {}", data.len()));
        }
        let kept = bytes_at(data, 0, text_len);
        let level_flags = u8_at(info, layout.text_len + 3);
        records.push(LogRecord {
            seq: u64_at(info, layout.seq),
            ts_nsec: u64_at(info, layout.ts_nsec),
            level: level_flags >> 5,
            facility: u8_at(info, layout.text_len + 2),
            flags: level_flags & 0x1f,
            caller_id: Some(u32_at(info, layout.caller_id)),
            text: String::from_utf8_lossy(kept).into_owned(),
            subsystem: c_string(bytes_at(info, layout.subsystem, layout.subsystem_len)),
            device: c_string(bytes_at(info, layout.device, layout.device_len)),
        });
    }
    skips.report(&mut diagnostics);
    records.sort_by_key(|r| r.seq);
    Ok(KernelLog {
        kind: LogKind::Lockless,
        records,
        diagnostics,
        located,
    })
}

#[cfg(test)]
mod tests;
