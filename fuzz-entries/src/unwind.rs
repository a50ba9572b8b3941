//! The ORC unwinder over hostile tables and stacks: an ORC table and a kernel stack
//! taken from the input, unwound from a start the input gives. Every unwind must end
//! with a reason within the frame limit, without a panic.

use coroner_analyze::orc::{unwind as orc_unwind, OrcFormat, OrcTable, Start, MAX_FRAMES};
use coroner_analyze::{SliceKernelMem, VirtAddr};

/// Where the table and the stack sit in the synthetic kernel memory.
const TABLE: u64 = 0xffff_ffff_8200_0000;
const ENTRIES: u64 = 0xffff_ffff_8210_0000;
const STACK: u64 = 0xffff_c900_0000_0000;

/// Input: a format byte, an entry count (u16), ip, sp and bp (u64 each, little-endian),
/// a signal byte, then the ip table (4 bytes an entry), the entries (6 bytes each) and
/// the rest as the stack.
pub fn unwind(data: &[u8]) {
    if data.len() < 28 {
        return;
    }
    let format =
        [OrcFormat::V1, OrcFormat::V2, OrcFormat::V3, OrcFormat::V4][usize::from(data[0] % 4)];
    let n = u64::from(u16::from_le_bytes([data[1], data[2]]));
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&data[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let (ip, sp, bp) = (word(3), word(11), word(19));
    let signal = data[27] & 1 != 0;
    let rest = &data[28..];
    let ips_len = (4 * n as usize).min(rest.len());
    let (ips, rest) = rest.split_at(ips_len);
    let entries_len = (6 * n as usize).min(rest.len());
    let (entries, stack) = rest.split_at(entries_len);
    // Tables are read a page at a time: pad them to whole pages.
    let page = |b: &[u8]| {
        let mut v = b.to_vec();
        v.resize(b.len().div_ceil(4096).max(1) * 4096, 0);
        v
    };
    let mem = SliceKernelMem::new(vec![
        (VirtAddr(TABLE), page(ips)),
        (VirtAddr(ENTRIES), page(entries)),
        (VirtAddr(STACK), stack.to_vec()),
    ]);
    let Ok(table) = OrcTable::new(&mem, VirtAddr(TABLE), VirtAddr(ENTRIES), n, format) else {
        return;
    };
    // The stack pointer lands inside the stack when the input's is small.
    let sp = if sp < 1 << 16 { STACK + sp } else { sp };
    let u = orc_unwind(
        &mem,
        &|a| table.find(&mem, a),
        Start {
            ip,
            sp,
            bp,
            regs: None,
            signal,
        },
    );
    assert!(u.frames.len() <= MAX_FRAMES, "{} frames", u.frames.len());
    assert!(!u.frames.is_empty());
    let _ = u.stop.to_string();
}

/// The search for vmlinux's ORC table (a kernel without CONFIG_KALLSYMS_ALL) over a
/// hostile image: the input is the memory between the text and the init text. The search
/// must end with a table whose bounds lie in that memory, or an error; never a panic.
pub fn locate_orc(data: &[u8]) {
    use coroner_analyze::orc::{locate_vmlinux_orc, ImageBounds};
    const STEXT: u64 = 0xffff_ffff_8100_0000;
    const DATA: u64 = STEXT + 0x2_0000;
    let bounds = ImageBounds {
        stext: STEXT,
        etext: DATA,
        sinittext: DATA + data.len() as u64 + 0x1000,
    };
    // Memory is read a page at a time: pad the input to whole pages.
    let mut image = data.to_vec();
    image.resize(data.len().div_ceil(4096) * 4096, 0);
    let mem = SliceKernelMem::new(vec![(VirtAddr(DATA), image)]);
    if let Ok(found) = locate_vmlinux_orc(&mem, bounds) {
        assert!(found.ip_table >= DATA && found.entries <= DATA + data.len() as u64);
        assert_eq!(found.entries, found.ip_table + 4 * found.n);
    }
}
