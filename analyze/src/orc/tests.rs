use super::*;
use crate::kmem::SliceKernelMem;

const TEXT: u64 = 0xffff_ffff_8100_0000;
const TABLE: u64 = 0xffff_ffff_8200_0000;
const STACK: u64 = 0xffff_c900_0000_0000;

/// A v3 CALL entry: CFA = sp + `sp_offset`.
fn call(sp_offset: i16) -> [u8; 6] {
    let mut r = [0u8; 6];
    r[..2].copy_from_slice(&sp_offset.to_le_bytes());
    // sp_reg SP (5), bp_reg UNDEFINED, type CALL (2).
    r[4..].copy_from_slice(&(5u16 | 2 << 8).to_le_bytes());
    r
}

fn end() -> [u8; 6] {
    let mut r = [0u8; 6];
    r[4..].copy_from_slice(&(1u16 << 8).to_le_bytes());
    r
}

/// A table with entries at TEXT + 0x100 * i and the stack words `stack`.
fn setup(entries: &[[u8; 6]], stack: &[u64]) -> (SliceKernelMem, OrcTable) {
    let n = entries.len() as u64;
    let mut ips = Vec::new();
    for i in 0..n {
        let slot = TABLE + 4 * i;
        let rel = (TEXT + 0x100 * i) as i64 - slot as i64;
        ips.extend_from_slice(&(rel as i32).to_le_bytes());
    }
    let mut raw: Vec<u8> = entries.iter().flatten().copied().collect();
    // Tables are read a page at a time.
    ips.resize(0x10000, 0);
    raw.resize(0x1000, 0);
    let words: Vec<u8> = stack.iter().flat_map(|w| w.to_le_bytes()).collect();
    let mem = SliceKernelMem::new(vec![
        (VirtAddr(TABLE), ips),
        (VirtAddr(TABLE + 0x10000), raw),
        (VirtAddr(STACK), words),
    ]);
    let t = OrcTable::new(
        &mem,
        VirtAddr(TABLE),
        VirtAddr(TABLE + 0x10000),
        n,
        OrcFormat::V3,
    )
    .unwrap();
    (mem, t)
}

fn start(ip: u64, sp: u64) -> Start {
    Start {
        ip,
        sp,
        bp: 0,
        regs: None,
        signal: false,
    }
}

#[test]
fn a_call_chain_unwinds_to_the_end_of_the_stack() {
    // Function 0 (sp_offset 16) was called from function 1 (sp_offset 8), called from
    // function 2, whose entry marks the end of the stack.
    let stack = [0, TEXT + 0x105, TEXT + 0x210, 0];
    let (mem, t) = setup(&[call(16), call(8), end()], &stack);
    let u = unwind(&mem, &|ip| t.find(&mem, ip), start(TEXT + 0x10, STACK));
    let ips: Vec<u64> = u.frames.iter().map(|f| f.ip).collect();
    assert_eq!(ips, [TEXT + 0x10, TEXT + 0x105, TEXT + 0x210]);
    assert_eq!(u.stop, Stop::EndOfStack);
    assert!(u.complete());
    // Lookups below the table find nothing.
    assert_eq!(t.find(&mem, TEXT - 1), Ok(None));
    let u = unwind(&mem, &|ip| t.find(&mem, ip), start(TEXT - 0x10, STACK));
    assert_eq!(u.stop, Stop::NoOrc { ip: TEXT - 0x10 });
}

#[test]
fn corrupt_stacks_stop_with_a_reason() {
    // A return address that points back at itself with a CFA below the sp: wrong way.
    let (mem, t) = setup(&[call(-8), end()], &[TEXT + 0x10, 0, 0]);
    let u = unwind(&mem, &|ip| t.find(&mem, ip), start(TEXT + 0x10, STACK + 16));
    assert!(
        matches!(u.stop, Stop::WrongDirection { .. }),
        "{:?}",
        u.stop
    );
    // Reads past the stack.
    let (mem, t) = setup(&[call(64), end()], &[0]);
    let u = unwind(&mem, &|ip| t.find(&mem, ip), start(TEXT + 0x10, STACK));
    assert!(matches!(u.stop, Stop::Unreadable { .. }), "{:?}", u.stop);
    // A loop of calls that keeps climbing a huge stack is cut at MAX_FRAMES.
    let words = vec![TEXT + 0x10; 400];
    let (mem, t) = setup(&[call(8), end()], &words);
    let u = unwind(&mem, &|ip| t.find(&mem, ip), start(TEXT + 0x10, STACK));
    assert_eq!(u.stop, Stop::TooDeep);
    assert_eq!(u.frames.len(), MAX_FRAMES);
}

#[test]
fn a_user_mode_pt_regs_ends_the_unwind_with_its_registers() {
    // A v3 REGS entry at the syscall entry: CFA = sp + 0, a pt_regs from CPL 3.
    let mut regs_entry = [0u8; 6];
    regs_entry[4..].copy_from_slice(&(5u16 | 3 << 8 | 1 << 11).to_le_bytes());
    let mut pt = [0u64; 21];
    pt[16] = 0x7f00_0000_1000; // ip
    pt[17] = 0x33; // cs, CPL 3
    pt[19] = 0x7ffc_0000_0000; // sp
    let mut stack = vec![0u64, TEXT + 0x105];
    stack.extend_from_slice(&pt);
    let (mem, t) = setup(&[call(16), regs_entry], &stack);
    let u = unwind(&mem, &|ip| t.find(&mem, ip), start(TEXT + 0x10, STACK));
    assert_eq!(u.stop, Stop::UserMode);
    assert_eq!(u.frames.len(), 2);
    let r = u.frames[1].regs.expect("the user registers");
    assert_eq!((r.ip(), r.user_mode()), (0x7f00_0000_1000, true));
}
