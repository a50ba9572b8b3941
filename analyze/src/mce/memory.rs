//! `struct mce` records where the kernel keeps them in memory, found through kallsyms:
//!
//! - per-CPU `mces_seen`: the worst record of the last machine-check exception on each CPU
//!   (kept when the exception panicked; cleared after a recovered one);
//! - `gen_pool_buf`: the pool of records waiting for (or done with) processing by the
//!   notifier chain. Freed slots are not cleared, so records already logged may still be
//!   there, and one slot may be partly overwritten: each candidate is validated;
//! - the `/dev/mcelog` buffer (`CONFIG_X86_MCELOG_LEGACY`): `mcelog` (a pointer in 4.12+,
//!   the buffer itself before), `MACHINECHECK` signature, `recordlen` per entry.
//!
//! The size of `struct mce` is the size of the `mces_seen` symbol when kallsyms has it; the
//! layout follows arch/x86/include/uapi/asm/mce.h, growing with the kernel version.

use serde::Serialize;

use super::raw::MceRaw;
use crate::kallsyms::Kallsyms;
use crate::kmem::{KernelMem, VirtAddr};

/// `sizeof(struct mce)` of the oldest layout read (up to `mcgcap`).
const MIN_RECORD: usize = 88;
/// Largest `struct mce` (or `recordlen`) believed.
const MAX_RECORD: usize = 256;
/// Largest pool or buffer read.
const MAX_AREA: u64 = 1 << 20;
/// Largest `/dev/mcelog` entry count believed.
const MAX_MCELOG_LEN: u64 = 4096;
/// Largest CPU count read from `__per_cpu_offset`.
const MAX_CPUS: usize = 8192;
/// `X86_VENDOR_*` values the kernel defines (0..=10).
const MAX_VENDOR: u8 = 10;
/// Wall-clock bounds a record's `time` must fall in: 2000-01-01 to 2100-01-01.
const TIME_RANGE: std::ops::Range<u64> = 946_684_800..4_102_444_800;

/// Where in memory a record was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemPlace {
    /// `mces_seen[cpu 1]`, `gen_pool_buf+0x108`, `mcelog entry 0`.
    pub location: String,
    /// Kernel virtual address of the record.
    #[serde(with = "coroner_formats::hex")]
    pub va: u64,
}

/// What the memory sources gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemMce {
    /// Valid records, per source in address order.
    pub records: Vec<(MceRaw, MemPlace)>,
    /// `sizeof(struct mce)` used, and how it is known.
    pub record_size: Option<(usize, String)>,
    /// Which sources were read and what they held, for the evidence list.
    pub searched: Vec<String>,
}

fn le64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

fn le32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// Parses one `struct mce` of `size` bytes (88 to 256) from `b`.
pub fn parse_struct_mce(b: &[u8], size: usize) -> Option<MceRaw> {
    if !(MIN_RECORD..=MAX_RECORD).contains(&size) || b.len() < size {
        return None;
    }
    let at = |off: usize| (off + 8 <= size).then(|| le64(b, off)).flatten();
    Some(MceRaw {
        status: le64(b, 0)?,
        misc: Some(le64(b, 8)?),
        addr: Some(le64(b, 16)?),
        mcgstatus: Some(le64(b, 24)?),
        ip: Some(le64(b, 32)?),
        tsc: Some(le64(b, 40)?),
        time: Some(le64(b, 48)?),
        cpuvendor: Some(b[56]),
        severity: Some(b[58]),
        cpuid: Some(le32(b, 60)?),
        cs: Some(b[64]),
        bank: Some(b[65]),
        cpu: Some(le32(b, 68)?),
        socket: Some(le32(b, 72)?),
        apic: Some(le32(b, 76)?),
        mcgcap: Some(le64(b, 80)?),
        synd: at(88),
        ipid: at(96),
        ppin: at(104),
        microcode: (size >= 120).then(|| le32(b, 112)).flatten(),
        ip_symbol: None,
        ip_inexact: false,
    })
}

/// A record worth reporting: valid status, a plausible bank, vendor, CPU and time.
fn plausible(r: &MceRaw) -> bool {
    let bank_ok = r
        .bank
        .is_some_and(|b| b < 64 || matches!(b, 128 | 218 | 255));
    r.status >> 63 == 1
        && bank_ok
        && r.cpuvendor.is_some_and(|v| v <= MAX_VENDOR)
        && r.cpu.is_some_and(|c| (c as usize) < MAX_CPUS)
        && r.time.is_some_and(|t| TIME_RANGE.contains(&t))
        && r.mcgcap.is_some_and(|c| c & 0xff != 0 && c >> 32 == 0)
}

/// Reads the records `mem` holds, through the symbols in `ks`. `ncpus` is the number of
/// vCPUs in the dump.
pub fn from_memory(mem: &dyn KernelMem, ks: &Kallsyms, ncpus: usize) -> MemMce {
    let mut out = MemMce::default();
    let size = match ks.lookup("mces_seen") {
        Some(s) if (MIN_RECORD..=MAX_RECORD).contains(&(s.size as usize)) => {
            out.record_size = Some((
                s.size as usize,
                "the size of the per-CPU mces_seen symbol in kallsyms".into(),
            ));
            Some(s.size as usize)
        }
        _ => None,
    };
    if let Some(size) = size {
        per_cpu_seen(mem, ks, size, ncpus, &mut out);
        event_pool(mem, ks, size, &mut out);
    } else {
        out.searched.push(
            "mces_seen and gen_pool_buf: not read (no mces_seen symbol to give the size of \
             struct mce)"
                .into(),
        );
    }
    mcelog_buffer(mem, ks, &mut out);
    out
}

fn per_cpu_seen(mem: &dyn KernelMem, ks: &Kallsyms, size: usize, ncpus: usize, out: &mut MemMce) {
    let (Some(seen), Some(offsets)) = (ks.lookup("mces_seen"), ks.lookup("__per_cpu_offset"))
    else {
        out.searched
            .push("mces_seen: no __per_cpu_offset symbol to find the per-CPU copies".into());
        return;
    };
    let mut found = 0;
    let mut read = 0;
    for cpu in 0..ncpus.min(MAX_CPUS) {
        let Ok(base) = mem.read_u64(VirtAddr(offsets.addr + 8 * cpu as u64)) else {
            continue;
        };
        let va = seen.addr.wrapping_add(base);
        let mut b = vec![0u8; size];
        if mem.read_virt(VirtAddr(va), &mut b).is_err() {
            continue;
        }
        read += 1;
        if let Some(r) = parse_struct_mce(&b, size).filter(plausible) {
            found += 1;
            out.records.push((
                r,
                MemPlace {
                    location: format!("mces_seen[cpu {cpu}]"),
                    va,
                },
            ));
        }
    }
    out.searched.push(format!(
        "mces_seen: read on {read} of {ncpus} CPUs, {found} valid record(s)"
    ));
}

fn event_pool(mem: &dyn KernelMem, ks: &Kallsyms, size: usize, out: &mut MemMce) {
    let Some(pool) = ks.lookup("gen_pool_buf") else {
        out.searched
            .push("gen_pool_buf: no such symbol (kernel older than 4.6?)".into());
        return;
    };
    if pool.size == 0 || pool.size > MAX_AREA {
        out.searched
            .push(format!("gen_pool_buf: implausible size {:#x}", pool.size));
        return;
    }
    let Ok(buf) = mem.read_vec(VirtAddr(pool.addr), pool.size, MAX_AREA) else {
        out.searched
            .push(format!("gen_pool_buf at {:#x}: not readable", pool.addr));
        return;
    };
    let mut found = 0;
    let mut off = 0;
    // Slots are `struct mce_evt_llist { llist_node; struct mce; }`: the record sits 8 bytes
    // into a slot; scanning every 8 bytes does not depend on the slot size.
    while off + size <= buf.len() {
        match parse_struct_mce(&buf[off..], size).filter(plausible) {
            Some(r) => {
                found += 1;
                out.records.push((
                    r,
                    MemPlace {
                        location: format!("gen_pool_buf+{off:#x}"),
                        va: pool.addr + off as u64,
                    },
                ));
                off += size;
            }
            None => off += 8,
        }
    }
    out.searched.push(format!(
        "gen_pool_buf ({} bytes, the MCE event pool; freed slots keep old records): {found} valid record(s)",
        pool.size
    ));
}

/// `struct mce_log_buffer`: "MACHINECHECK", len @12, next @16, flags @20, recordlen @24,
/// entries @32.
fn mcelog_buffer(mem: &dyn KernelMem, ks: &Kallsyms, out: &mut MemMce) {
    let Some(sym) = ks.lookup("mcelog") else {
        out.searched
            .push("/dev/mcelog buffer: not built in (no mcelog symbol)".into());
        return;
    };
    // 4.12+: `static struct mce_log_buffer *mcelog;` before: the buffer itself.
    let base = if sym.size == 8 {
        match mem.read_u64(VirtAddr(sym.addr)) {
            Ok(p) => p,
            Err(e) => {
                out.searched
                    .push(format!("/dev/mcelog buffer pointer unreadable: {e}"));
                return;
            }
        }
    } else {
        sym.addr
    };
    let mut head = [0u8; 32];
    if mem.read_virt(VirtAddr(base), &mut head).is_err() || &head[..12] != b"MACHINECHECK" {
        out.searched.push(format!(
            "/dev/mcelog buffer at {base:#x}: no MACHINECHECK signature"
        ));
        return;
    }
    let (len, next, flags, recordlen) = (
        u64::from(le32(&head, 12).unwrap_or(0)),
        u64::from(le32(&head, 16).unwrap_or(0)),
        le32(&head, 20).unwrap_or(0),
        le32(&head, 24).unwrap_or(0) as usize,
    );
    if len > MAX_MCELOG_LEN || !(MIN_RECORD..=MAX_RECORD).contains(&recordlen) {
        out.searched.push(format!(
            "/dev/mcelog buffer at {base:#x}: implausible len {len} or recordlen {recordlen}"
        ));
        return;
    }
    let mut found = 0;
    for i in 0..next.min(len) {
        let va = base + 32 + i * recordlen as u64;
        let mut b = vec![0u8; recordlen];
        if mem.read_virt(VirtAddr(va), &mut b).is_err() {
            continue;
        }
        if let Some(r) = parse_struct_mce(&b, recordlen).filter(plausible) {
            found += 1;
            out.records.push((
                r,
                MemPlace {
                    location: format!("/dev/mcelog entry {i}"),
                    va,
                },
            ));
        }
    }
    let overflow = if flags & 1 != 0 {
        " (overflowed: later records were dropped)"
    } else {
        ""
    };
    out.searched.push(format!(
        "/dev/mcelog buffer at {base:#x}: {next} of {len} entries used, recordlen {recordlen}, {found} valid{overflow}"
    ));
    if out.record_size.is_none() {
        out.record_size = Some((recordlen, "recordlen of the /dev/mcelog buffer".into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 6.1 `struct mce` (128 bytes) as the kernel fills it for the fatal record.
    fn record(status: u64, bank: u8, cpu: u32) -> Vec<u8> {
        let mut b = vec![0u8; 128];
        b[0..8].copy_from_slice(&status.to_le_bytes());
        b[8..16].copy_from_slice(&0x86u64.to_le_bytes());
        b[16..24].copy_from_slice(&0x2345000u64.to_le_bytes());
        b[24..32].copy_from_slice(&7u64.to_le_bytes());
        b[32..40].copy_from_slice(&0xffff_ffff_89e5_92ebu64.to_le_bytes());
        b[40..48].copy_from_slice(&0x7be066191u64.to_le_bytes());
        b[48..56].copy_from_slice(&1_795_348_623u64.to_le_bytes());
        b[56] = 0;
        b[58] = 7;
        b[60..64].copy_from_slice(&0xf61u32.to_le_bytes());
        b[64] = 0x10;
        b[65] = bank;
        b[68..72].copy_from_slice(&cpu.to_le_bytes());
        b[76..80].copy_from_slice(&cpu.to_le_bytes());
        b[80..88].copy_from_slice(&0x0100_010au64.to_le_bytes());
        b[112..116].copy_from_slice(&1u32.to_le_bytes());
        b
    }

    #[test]
    fn parses_the_6_1_layout() {
        let r = parse_struct_mce(&record(0xbd80000000000134, 1, 1), 128).unwrap();
        assert_eq!(r.status, 0xbd80000000000134);
        assert_eq!(
            (r.misc, r.addr, r.mcgstatus),
            (Some(0x86), Some(0x2345000), Some(7))
        );
        assert_eq!(
            (r.ip, r.cs, r.bank, r.cpu),
            (Some(0xffff_ffff_89e5_92eb), Some(0x10), Some(1), Some(1))
        );
        assert_eq!(
            (r.time, r.cpuid, r.mcgcap),
            (Some(1_795_348_623), Some(0xf61), Some(0x0100_010a))
        );
        assert_eq!(
            (r.severity, r.microcode, r.synd),
            (Some(7), Some(1), Some(0))
        );
        assert!(plausible(&r));
    }

    #[test]
    fn old_layout_has_no_smca_fields() {
        let r = parse_struct_mce(&record(0xbd80000000000134, 1, 1), 88).unwrap();
        assert_eq!(
            (r.synd, r.ipid, r.ppin, r.microcode),
            (None, None, None, None)
        );
        assert_eq!(parse_struct_mce(&[0u8; 100], 128), None);
        assert_eq!(parse_struct_mce(&[0u8; 64], 64), None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..300), size in 0usize..400) {
            if let Some(r) = parse_struct_mce(&b, size) {
                proptest::prop_assert!((MIN_RECORD..=MAX_RECORD).contains(&size) && b.len() >= size);
                let _ = plausible(&r);
            }
        }
    }

    #[test]
    fn rejects_implausible_records() {
        let mut b = record(0x3d80000000000134, 1, 1); // VAL clear
        assert!(!plausible(&parse_struct_mce(&b, 128).unwrap()));
        b = record(0xbd80000000000134, 1, 1);
        b[48..56].copy_from_slice(&5u64.to_le_bytes()); // time in 1970
        assert!(!plausible(&parse_struct_mce(&b, 128).unwrap()));
        b = record(0xbd80000000000134, 200, 1); // bank 200 is not a software bank
        assert!(!plausible(&parse_struct_mce(&b, 128).unwrap()));
    }
}
