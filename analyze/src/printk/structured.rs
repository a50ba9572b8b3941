//! The structured `log_buf` of kernels 3.5–5.9: `struct printk_log` records (named
//! `struct log` before 3.11) packed in a byte ring.
//!
//! Record: header (`u64 ts_nsec; u16 len; u16 text_len; u16 dict_len; u8 facility;
//! u8 flags:5, level:3; [u32 caller_id]`), text, dict (`KEY=value\0...`), padding to 4;
//! `len` is the whole record. The walk goes from `log_first_idx` to `log_next_idx`; a
//! header with `len == 0` means "wrap to index 0". Only one wrap is possible, and a walk
//! that comes back to `log_first_idx` is a cycle: both stop the walk with a diagnostic.

use crate::kmem::{KernelMem, VirtAddr, XlateError};
use crate::vmcoreinfo::Vmcoreinfo;

use super::bytes::{bytes_at, u16_at, u32_at, u64_at, u8_at};
use super::record::{KernelLog, LogKind, LogRecord, LOG_CONT, LOG_NEWLINE, LOG_PREFIX};
use super::{LogError, MAX_TEXT_BYTES};

/// Header offsets, from VMCOREINFO or the x86_64 defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Header {
    /// `SIZE(printk_log)`: 16, or 20 with `CONFIG_PRINTK_CALLER`.
    size: u64,
    /// `ts_nsec` (u64).
    ts_nsec: u64,
    /// `len` (u16).
    len: u64,
    /// `text_len` (u16).
    text_len: u64,
    /// `dict_len` (u16); `facility` follows at +2, `flags:5, level:3` at +3.
    dict_len: u64,
    /// `caller_id` (u32), exported only with `CONFIG_PRINTK_CALLER` (5.1+).
    caller_id: Option<u64>,
}

impl Header {
    /// The x86_64 header without `caller_id`.
    const DEFAULT: Header = Header {
        size: 16,
        ts_nsec: 0,
        len: 8,
        text_len: 10,
        dict_len: 12,
        caller_id: None,
    };

    /// The header VMCOREINFO describes (`printk_log`, or `log` before 3.11).
    fn from_vmci(v: &Vmcoreinfo, diags: &mut Vec<String>) -> Header {
        let name = if v.size("log").is_some() && v.size("printk_log").is_none() {
            "log"
        } else {
            "printk_log"
        };
        let d = Self::DEFAULT;
        let off = |f: &str, def: u64| v.offset(&format!("{name}.{f}")).unwrap_or(def);
        let h = Header {
            size: v.size(name).unwrap_or(d.size),
            ts_nsec: off("ts_nsec", d.ts_nsec),
            len: off("len", d.len),
            text_len: off("text_len", d.text_len),
            dict_len: off("dict_len", d.dict_len),
            caller_id: v.offset(&format!("{name}.caller_id")),
        };
        let inside = |o: u64, w: u64| o.saturating_add(w) <= h.size;
        let fits = (16..=64).contains(&h.size)
            && inside(h.ts_nsec, 8)
            && inside(h.len, 2)
            && inside(h.text_len, 2)
            && inside(h.dict_len, 4)
            && h.caller_id.is_none_or(|c| inside(c, 4));
        if fits {
            h
        } else {
            diags.push(format!(
                "VMCOREINFO {name} layout does not fit its structure ({h:?}); using the x86_64 defaults"
            ));
            d
        }
    }
}

/// A record as stored, before continuation fragments are joined.
struct RawRecord {
    seq: u64,
    ts_nsec: u64,
    level: u8,
    facility: u8,
    flags: u8,
    caller_id: Option<u32>,
    text: Vec<u8>,
    dict: Vec<u8>,
}

/// The value of `key=` in a `KEY=value\0KEY=value` dict; `None` when absent or empty.
fn dict_value(dict: &[u8], key: &str) -> Option<String> {
    dict.split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(key.as_bytes())?.strip_prefix(b"="))
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// True when `next` continues `prev` on the same console line: the kernel console of
/// 3.5–4.8 printed such a fragment without prefix or newline in between. The caller must
/// be the same (when known) and the facility too; the level is not compared, since a
/// `KERN_CONT` fragment is stored at the default level.
fn continues(prev: &RawRecord, next: &RawRecord) -> bool {
    next.flags & LOG_CONT != 0
        && next.flags & LOG_PREFIX == 0
        && prev.flags & LOG_NEWLINE == 0
        && prev.caller_id == next.caller_id
        && prev.facility == next.facility
}

/// Joins continuation fragments into the record they continue.
fn join_continuations(raw: Vec<RawRecord>) -> Vec<LogRecord> {
    let mut joined: Vec<RawRecord> = Vec::with_capacity(raw.len());
    for r in raw {
        match joined.last_mut() {
            Some(p) if continues(p, &r) => {
                p.text.extend_from_slice(&r.text);
                p.flags = (p.flags & !LOG_NEWLINE) | (r.flags & LOG_NEWLINE);
            }
            _ => joined.push(r),
        }
    }
    joined
        .into_iter()
        .map(|r| LogRecord {
            seq: r.seq,
            ts_nsec: r.ts_nsec,
            level: r.level,
            facility: r.facility,
            flags: r.flags,
            caller_id: r.caller_id,
            text: String::from_utf8_lossy(&r.text).into_owned(),
            subsystem: dict_value(&r.dict, "SUBSYSTEM"),
            device: dict_value(&r.dict, "DEVICE"),
        })
        .collect()
}

/// Maps a failed read of `what` to [`LogError::Read`].
fn read_err(what: &'static str) -> impl FnOnce(XlateError) -> LogError {
    move |source| LogError::Read { what, source }
}

/// Reads a `u32` variable named by `SYMBOL(name)`.
fn read_var(
    mem: &dyn KernelMem,
    vmci: &Vmcoreinfo,
    name: &'static str,
    key: &'static str,
) -> Result<u32, LogError> {
    let addr = vmci.symbol(name).ok_or(LogError::MissingKey { key })?;
    mem.read_u32(VirtAddr(addr)).map_err(read_err(name))
}

/// Walks the records of `buf` from `first` to `next`.
fn walk(buf: &[u8], first: u64, next: u64, h: &Header, diags: &mut Vec<String>) -> Vec<RawRecord> {
    let len = buf.len() as u64;
    let mut raw = Vec::new();
    let mut idx = first;
    let mut wrapped = false;
    // Every record is at least a header long, and at most one wrap is followed.
    let max_steps = 2 * (len / h.size) + 2;
    let mut steps = 0u64;
    while idx != next {
        steps += 1;
        if steps > max_steps {
            diags.push(format!(
                "log_buf walk exceeded {max_steps} steps at index {idx}; stopped (cycle)"
            ));
            break;
        }
        if wrapped && idx >= first {
            diags.push(format!(
                "log_buf walk came back to log_first_idx {first} (at {idx}) without reaching log_next_idx {next}; stopped (cycle)"
            ));
            break;
        }
        if idx.saturating_add(h.size) > len {
            diags.push(format!(
                "log_buf record header at index {idx} crosses the end of the {len}-byte buffer; stopped"
            ));
            break;
        }
        let hdr = bytes_at(buf, idx, h.size);
        let rec_len = u64::from(u16_at(hdr, h.len));
        if rec_len == 0 {
            if wrapped {
                diags.push(format!(
                    "second wrap marker (len 0) at log_buf index {idx}; stopped (cycle)"
                ));
                break;
            }
            wrapped = true;
            idx = 0;
            continue;
        }
        let text_len = u64::from(u16_at(hdr, h.text_len));
        let dict_len = u64::from(u16_at(hdr, h.dict_len));
        if h.size + text_len + dict_len > rec_len || idx.saturating_add(rec_len) > len {
            diags.push(format!(
                "log_buf record at index {idx} is inconsistent (len {rec_len}, text_len {text_len}, \
                 dict_len {dict_len}, buffer {len}); stopped"
            ));
            break;
        }
        let level_flags = u8_at(hdr, h.dict_len + 3);
        raw.push(RawRecord {
            seq: raw.len() as u64,
            ts_nsec: u64_at(hdr, h.ts_nsec),
            level: level_flags >> 5,
            facility: u8_at(hdr, h.dict_len + 2),
            flags: level_flags & 0x1f,
            caller_id: h.caller_id.map(|c| u32_at(hdr, c)),
            text: bytes_at(buf, idx + h.size, text_len).to_vec(),
            dict: bytes_at(buf, idx + h.size + text_len, dict_len).to_vec(),
        });
        idx += rec_len;
    }
    raw
}

/// Reads the structured `log_buf` (3.5–5.9).
pub(crate) fn read(
    mem: &dyn KernelMem,
    vmci: &Vmcoreinfo,
    log_buf_symbol: u64,
) -> Result<KernelLog, LogError> {
    let mut diagnostics = Vec::new();
    let h = Header::from_vmci(vmci, &mut diagnostics);
    let buf_addr = mem
        .read_u64(VirtAddr(log_buf_symbol))
        .map_err(read_err("log_buf (pointer)"))?;
    let len = u64::from(read_var(mem, vmci, "log_buf_len", "SYMBOL(log_buf_len)")?);
    let first = u64::from(read_var(
        mem,
        vmci,
        "log_first_idx",
        "SYMBOL(log_first_idx)",
    )?);
    let next = u64::from(read_var(mem, vmci, "log_next_idx", "SYMBOL(log_next_idx)")?);
    if !(h.size..=MAX_TEXT_BYTES).contains(&len) {
        return Err(LogError::OutOfRange {
            what: "log_buf_len",
            value: len,
            min: h.size,
            max: MAX_TEXT_BYTES,
        });
    }
    for (what, value) in [("log_first_idx", first), ("log_next_idx", next)] {
        if value >= len {
            return Err(LogError::OutOfRange {
                what,
                value,
                min: 0,
                max: len - 1,
            });
        }
    }
    let buf = mem
        .read_vec(VirtAddr(buf_addr), len, MAX_TEXT_BYTES)
        .map_err(read_err("log_buf text"))?;
    let raw = walk(&buf, first, next, &h, &mut diagnostics);
    let located = format!(
        "SYMBOL(log_buf)={log_buf_symbol:#x} -> log_buf at {} ({len} bytes); log_first_idx {first}, \
         log_next_idx {next}; {}-byte record headers{}",
        VirtAddr(buf_addr),
        h.size,
        if h.caller_id.is_some() { " with caller_id" } else { "" }
    );
    Ok(KernelLog {
        kind: LogKind::Structured,
        records: join_continuations(raw),
        diagnostics,
        located,
    })
}

#[cfg(test)]
mod tests;
