//! Kernel memory as the readers of kernel structures see it, without page tables: the
//! printk rings (every layout), the kallsyms tables (through VMCOREINFO and by scanning),
//! and the machine-check records kallsyms leads to.
//!
//! The input is VMCOREINFO text, a NUL byte, then pieces of kernel virtual memory, each
//! an address (u64, little-endian), a length (u32) and that many bytes. A piece cut short
//! by the end of the input keeps what there is. [`encode`] writes this form, for seeds.

use coroner_analyze::{
    format_dmesg, mce_from_memory, read_kernel_log, FormatOptions, Kallsyms, SliceKernelMem,
    VirtAddr, Vmcoreinfo,
};

/// Pieces read at most, so a lookup stays cheap.
const MAX_PIECES: usize = 256;

/// Bytes of the image scanned for kallsyms at most.
const MAX_SCAN: u64 = 4 << 20;

/// vCPUs whose per-CPU machine-check records are looked at.
const CPUS: usize = 4;

/// Splits `data` into VMCOREINFO text and memory pieces.
pub fn decode(data: &[u8]) -> (String, Vec<(VirtAddr, Vec<u8>)>) {
    let (text, mut rest) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let mut pieces: Vec<(VirtAddr, Vec<u8>)> = Vec::new();
    while rest.len() >= 12 && pieces.len() < MAX_PIECES {
        let mut va = [0u8; 8];
        va.copy_from_slice(&rest[..8]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&rest[8..12]);
        let len = (u32::from_le_bytes(len) as usize).min(rest.len() - 12);
        let va = u64::from_le_bytes(va);
        let bytes = rest[12..12 + len].to_vec();
        rest = &rest[12 + len..];
        // Pieces must not overlap; a later one that would is dropped.
        let end = va.saturating_add(bytes.len() as u64);
        let overlaps = pieces
            .iter()
            .any(|(a, b)| va < a.0.saturating_add(b.len() as u64) && a.0 < end);
        if !bytes.is_empty() && !overlaps {
            pieces.push((VirtAddr(va), bytes));
        }
    }
    (String::from_utf8_lossy(text).into_owned(), pieces)
}

/// The input form of `vmcoreinfo` and `pieces`, for seeds.
pub fn encode(vmcoreinfo: &str, pieces: &[(VirtAddr, Vec<u8>)]) -> Vec<u8> {
    let mut out = vmcoreinfo.as_bytes().to_vec();
    out.push(0);
    for (va, bytes) in pieces {
        out.extend_from_slice(&va.0.to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// Reads the kernel log, kallsyms and machine-check records from the memory in `data`.
pub fn kernel_memory(data: &[u8]) {
    let (text, pieces) = decode(data);
    let first = pieces.first().map(|(va, b)| (*va, b.len() as u64));
    let mem = SliceKernelMem::new(pieces);
    let vmci = Vmcoreinfo::parse(&text);

    if let Ok(log) = read_kernel_log(&mem, &vmci) {
        let shown = format_dmesg(
            &log.records,
            &FormatOptions {
                show_level: true,
                show_caller: true,
                ..FormatOptions::default()
            },
        );
        crate::invariants::terminal_safe(&shown);
    }

    let ks = Kallsyms::from_vmcoreinfo(&mem, &vmci).or_else(|e| match first {
        Some((start, len)) => Kallsyms::scan(&mem, start, len.min(MAX_SCAN), vmci.symbol("_stext")),
        None => Err(e),
    });
    if let Ok(ks) = ks {
        crate::invariants::terminal_safe(ks.how());
        for s in ks.symbols().iter().take(16) {
            let _ = ks.format_addr(s.addr.wrapping_add(1));
        }
        let found = mce_from_memory(&mem, &ks, CPUS);
        for p in &found.searched {
            crate::invariants::terminal_safe(p);
        }
    }
}
