//! The fallback for kernels built without ORC (`CONFIG_UNWINDER_FRAME_POINTER`): each
//! frame's `rbp` points at the caller's saved `rbp`, with the return address above it.

use super::unwind::{Frame, Start, Stop, Unwind, MAX_FRAMES};
use crate::kmem::{KernelMem, VirtAddr};

/// Walks the `rbp` chain from `start`. Each saved `rbp` must lie above the last (a
/// frame-pointer chain only climbs its stack); a zero `rbp` ends it.
pub fn unwind_frame_pointers(mem: &dyn KernelMem, start: Start) -> Unwind {
    let mut frames = vec![Frame {
        ip: start.ip,
        sp: start.sp,
        regs: start.regs,
    }];
    let mut bp = start.bp;
    let stop = loop {
        if bp == 0 {
            break Stop::EndOfStack;
        }
        if frames.len() >= MAX_FRAMES {
            break Stop::TooDeep;
        }
        let read = |addr: u64| {
            mem.read_u64(VirtAddr(addr)).map_err(|e| Stop::Unreadable {
                addr,
                reason: e.to_string(),
            })
        };
        let (next_bp, ret) = match (read(bp), read(bp.wrapping_add(8))) {
            (Ok(b), Ok(r)) => (b, r),
            (Err(s), _) | (_, Err(s)) => break s,
        };
        if ret == 0 {
            break Stop::EndOfStack;
        }
        frames.push(Frame {
            ip: ret,
            sp: bp.wrapping_add(16),
            regs: None,
        });
        if next_bp != 0 && next_bp <= bp {
            break Stop::WrongDirection {
                sp: bp,
                next: next_bp,
            };
        }
        bp = next_bp;
    };
    Unwind { frames, stop }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmem::SliceKernelMem;

    const STACK: u64 = 0xffff_c900_0000_0000;
    const TEXT: u64 = 0xffff_ffff_8100_0000;

    fn start(bp: u64) -> Start {
        Start {
            ip: TEXT + 0x10,
            sp: STACK,
            bp,
            regs: None,
            signal: false,
        }
    }

    #[test]
    fn the_rbp_chain_gives_the_callers() {
        // Frames at STACK+0x10 and STACK+0x30; the second's saved rbp is 0.
        let mut words = [0u64; 8];
        words[2] = STACK + 0x30;
        words[3] = TEXT + 0x200;
        words[6] = 0;
        words[7] = TEXT + 0x300;
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mem = SliceKernelMem::new(vec![(VirtAddr(STACK), bytes)]);
        let u = unwind_frame_pointers(&mem, start(STACK + 0x10));
        let ips: Vec<u64> = u.frames.iter().map(|f| f.ip).collect();
        assert_eq!(ips, [TEXT + 0x10, TEXT + 0x200, TEXT + 0x300]);
        assert_eq!(u.stop, Stop::EndOfStack);
    }

    #[test]
    fn a_chain_that_loops_or_leaves_memory_stops() {
        // A saved rbp pointing at itself.
        let words = [STACK, TEXT + 0x200];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mem = SliceKernelMem::new(vec![(VirtAddr(STACK), bytes)]);
        let u = unwind_frame_pointers(&mem, start(STACK));
        assert!(
            matches!(u.stop, Stop::WrongDirection { .. }),
            "{:?}",
            u.stop
        );
        let u = unwind_frame_pointers(&mem, start(0xdead_0000));
        assert!(matches!(u.stop, Stop::Unreadable { .. }), "{:?}", u.stop);
        assert_eq!(u.frames.len(), 1);
    }
}
