//! Finding the kernel's BTF in guest memory: between `__start_BTF` and `__stop_BTF` when
//! kallsyms has them (`CONFIG_KALLSYMS_ALL`, as distributions build), else by a bounded
//! scan of the kernel image for its header.

use super::error::BtfError;
use super::parse::MAGIC;
use super::Btf;
use crate::kallsyms::Kallsyms;
use crate::kmem::{KernelMem, VirtAddr};

/// The largest BTF read (vmlinux's is 4-6 MB).
const MAX_BTF: u64 = 64 << 20;

/// How much of the kernel image the scan reads at most.
const MAX_SCAN: u64 = 96 << 20;

/// Bytes read per step of the scan.
const CHUNK: u64 = 1 << 20;

/// Headers tried at most by the scan.
const MAX_CANDIDATES: usize = 16;

/// BTF read from the guest, and how it was found.
pub struct FoundBtf {
    /// The types.
    pub btf: Btf,
    /// Where it is.
    pub va: VirtAddr,
    /// Its size in bytes.
    pub len: u64,
    /// How it was found, for the evidence list.
    pub how: String,
}

/// Finds and parses vmlinux BTF: through `kallsyms` when it has `__start_BTF`, else by
/// scanning the kernel image from `image_start` (at most [`MAX_SCAN`] bytes).
pub fn locate_btf(
    mem: &dyn KernelMem,
    kallsyms: Option<&Kallsyms>,
    image_start: VirtAddr,
) -> Result<FoundBtf, BtfError> {
    let bounds =
        kallsyms.and_then(|k| Some((k.lookup("__start_BTF")?.addr, k.lookup("__stop_BTF")?.addr)));
    if let Some((start, stop)) = bounds {
        let len = stop.checked_sub(start).filter(|&l| l > 0 && l <= MAX_BTF).ok_or_else(|| {
            BtfError::NotFound(format!(
                "__start_BTF {start:#x} and __stop_BTF {stop:#x} do not bound a BTF of at most {MAX_BTF} bytes"
            ))
        })?;
        let data = mem
            .read_vec(VirtAddr(start), len, MAX_BTF)
            .map_err(|e| BtfError::NotFound(format!("reading __start_BTF..__stop_BTF: {e}")))?;
        let btf = Btf::parse(&data)?;
        return Ok(FoundBtf {
            how: format!(
                "__start_BTF..__stop_BTF in kallsyms: {len} bytes at {start:#x}, {} types",
                btf.len()
            ),
            btf,
            va: VirtAddr(start),
            len,
        });
    }
    scan(mem, image_start, MAX_SCAN)
}

/// The header bytes of vmlinux BTF as pahole writes it: magic, version 1, flags 0,
/// hdr_len 24, type_off 0.
fn header_prefix() -> [u8; 12] {
    let mut p = [0u8; 12];
    p[0..2].copy_from_slice(&MAGIC.to_le_bytes());
    p[2] = 1;
    p[4] = 24;
    p
}

fn scan(mem: &dyn KernelMem, start: VirtAddr, len: u64) -> Result<FoundBtf, BtfError> {
    let prefix = header_prefix();
    let mut tried = 0usize;
    let mut last: Option<BtfError> = None;
    let mut off = 0u64;
    let mut buf = vec![0u8; CHUNK as usize];
    while off < len && tried < MAX_CANDIDATES {
        let at = start.add(off);
        off += CHUNK;
        if mem.read_virt(at, &mut buf).is_err() {
            continue;
        }
        for pos in (0..buf.len().saturating_sub(24)).step_by(4) {
            if buf[pos..pos + 12] != prefix {
                continue;
            }
            let word = |i: usize| {
                u32::from_le_bytes([
                    buf[pos + i],
                    buf[pos + i + 1],
                    buf[pos + i + 2],
                    buf[pos + i + 3],
                ])
            };
            let (type_len, str_off, str_len) = (word(12), word(16), word(20));
            // pahole's layout: the strings follow the types.
            if str_off != type_len {
                continue;
            }
            tried += 1;
            let total = 24 + u64::from(type_len) + u64::from(str_len);
            if total > MAX_BTF {
                continue;
            }
            let va = at.add(pos as u64);
            match mem
                .read_vec(va, total, MAX_BTF)
                .map_err(|e| BtfError::NotFound(format!("reading BTF at {va}: {e}")))
                .and_then(|d| Btf::parse(&d))
            {
                Ok(btf) => {
                    return Ok(FoundBtf {
                        how: format!(
                            "found by scanning the kernel image (no __start_BTF in kallsyms): {total} bytes at {va}, {} types",
                            btf.len()
                        ),
                        btf,
                        va,
                        len: total,
                    })
                }
                Err(e) => last = Some(e),
            }
            if tried >= MAX_CANDIDATES {
                break;
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        BtfError::NotFound(format!(
            "no __start_BTF in kallsyms and no BTF header in {len} bytes of the kernel image from {start} (a kernel built without CONFIG_DEBUG_INFO_BTF?)"
        ))
    }))
}
