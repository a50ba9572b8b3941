//! One ORC unwind, as the kernel's `unwind_next_frame` does it: look up the entry for the
//! return address (or the interrupted address after a `pt_regs` frame), compute the
//! caller's stack pointer from it, read the return address or the `pt_regs` there, and go
//! on until the end of the stack, a user-mode frame, or a reason to stop.

use serde::Serialize;

use super::entry::{Kind, OrcEntry, Reg};
use crate::kmem::{KernelMem, VirtAddr};

/// Frames unwound at most.
pub const MAX_FRAMES: usize = 256;

/// `struct pt_regs` on x86_64: 21 words, `r15` first (the `NT_PRSTATUS` order). In
/// JSON, an object of `"0x…"` values by register name ([`PtRegs::NAMES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtRegs(pub [u64; 21]);

impl Serialize for PtRegs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, v) in Self::NAMES.iter().zip(self.0) {
            m.serialize_entry(name, &coroner_formats::hex::to_string(v))?;
        }
        m.end()
    }
}

impl PtRegs {
    /// The words' names, in `struct pt_regs` order.
    pub const NAMES: [&'static str; 21] = [
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx",
        "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss",
    ];

    /// Word indexes of the registers the unwinder uses.
    const R13: usize = 2;
    const BP: usize = 4;
    const R10: usize = 7;
    const AX: usize = 10;
    const DX: usize = 12;
    const DI: usize = 14;
    const IP: usize = 16;
    const CS: usize = 17;
    const SP: usize = 19;

    /// The saved instruction pointer.
    pub fn ip(&self) -> u64 {
        self.0[Self::IP]
    }

    /// The saved stack pointer.
    pub fn sp(&self) -> u64 {
        self.0[Self::SP]
    }

    /// The saved frame pointer.
    pub fn bp(&self) -> u64 {
        self.0[Self::BP]
    }

    /// The frame interrupted user mode (CPL 3).
    pub fn user_mode(&self) -> bool {
        self.0[Self::CS] & 3 == 3
    }

    fn reg(&self, r: Reg) -> Option<u64> {
        let i = match r {
            Reg::R10 => Self::R10,
            Reg::R13 => Self::R13,
            Reg::Di => Self::DI,
            Reg::Dx => Self::DX,
            Reg::Ax => Self::AX,
            Reg::Bp => Self::BP,
            _ => return None,
        };
        Some(self.0[i])
    }
}

/// Where an unwind starts.
#[derive(Clone, Copy, Debug)]
pub struct Start {
    /// The instruction pointer.
    pub ip: u64,
    /// The stack pointer.
    pub sp: u64,
    /// The frame pointer.
    pub bp: u64,
    /// The registers, when the start is a whole register set (a vCPU).
    pub regs: Option<PtRegs>,
    /// Look up `ip` itself, not `ip - 1` (a start from registers or at a fork entry).
    pub signal: bool,
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Frame {
    /// The address: where the CPU was (the first frame, or one interrupted) or a return
    /// address.
    #[serde(with = "coroner_formats::hex")]
    pub ip: u64,
    /// The stack pointer in this frame.
    #[serde(with = "coroner_formats::hex")]
    pub sp: u64,
    /// The registers saved where this frame was interrupted (an exception, an interrupt
    /// or a system call entered the kernel here), as the kernel prints them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regs: Option<PtRegs>,
}

/// Why an unwind stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Stop {
    /// The ORC entry says the kernel stack ends here (a kernel thread's fork entry).
    EndOfStack,
    /// A `pt_regs` from user mode: the task entered the kernel here.
    UserMode,
    /// No ORC entry covers the address (not kernel text, or code without ORC).
    NoOrc {
        /// The address.
        #[serde(with = "coroner_formats::hex")]
        ip: u64,
    },
    /// The entry marks a blind spot (the kernel's own unwind is unreliable here too).
    Undefined {
        /// The address.
        #[serde(with = "coroner_formats::hex")]
        ip: u64,
    },
    /// The entry needs a register this frame does not have.
    NoRegister {
        /// The address.
        #[serde(with = "coroner_formats::hex")]
        ip: u64,
    },
    /// Memory the step needed could not be read.
    Unreadable {
        /// The address.
        #[serde(with = "coroner_formats::hex")]
        addr: u64,
        /// Why.
        reason: String,
    },
    /// The stack pointer went down within one stack: a corrupt stack or table.
    WrongDirection {
        /// The stack pointer of the frame.
        #[serde(with = "coroner_formats::hex")]
        sp: u64,
        /// The caller's, which is not above it.
        #[serde(with = "coroner_formats::hex")]
        next: u64,
    },
    /// [`MAX_FRAMES`] frames without an end.
    TooDeep,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::EndOfStack => write!(f, "end of the kernel stack"),
            Stop::UserMode => write!(f, "entered from user mode"),
            Stop::NoOrc { ip } => write!(f, "no ORC entry covers {ip:#x}"),
            Stop::Undefined { ip } => write!(f, "ORC marks {ip:#x} undefined (a blind spot)"),
            Stop::NoRegister { ip } => {
                write!(
                    f,
                    "the ORC entry at {ip:#x} needs a register not saved here"
                )
            }
            Stop::Unreadable { addr, reason } => write!(f, "cannot read {addr:#x}: {reason}"),
            Stop::WrongDirection { sp, next } => write!(
                f,
                "the stack goes the wrong way ({sp:#x} to {next:#x}): corrupt stack or table"
            ),
            Stop::TooDeep => write!(f, "more than {MAX_FRAMES} frames"),
        }
    }
}

/// A finished unwind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unwind {
    /// The frames, innermost first.
    pub frames: Vec<Frame>,
    /// Why the unwind ended.
    pub stop: Stop,
}

impl Unwind {
    /// True when the unwind reached a natural end (the stack's end or user mode).
    pub fn complete(&self) -> bool {
        matches!(self.stop, Stop::EndOfStack | Stop::UserMode)
    }
}

/// Unwinds from `start`, finding entries with `orc`.
pub fn unwind(
    mem: &dyn KernelMem,
    orc: &dyn Fn(u64) -> Result<Option<OrcEntry>, String>,
    start: Start,
) -> Unwind {
    let mut frames = Vec::new();
    let stop = walk(mem, orc, start, &mut frames);
    Unwind { frames, stop }
}

fn walk(
    mem: &dyn KernelMem,
    orc: &dyn Fn(u64) -> Result<Option<OrcEntry>, String>,
    start: Start,
    frames: &mut Vec<Frame>,
) -> Stop {
    let read = |addr: u64| {
        mem.read_u64(VirtAddr(addr)).map_err(|e| Stop::Unreadable {
            addr,
            reason: e.to_string(),
        })
    };
    let (mut ip, mut sp, mut bp, mut signal) = (start.ip, start.sp, start.bp, start.signal);
    // The registers of the current frame when all were saved, and the last full set
    // before an iret-only frame (whose interrupted code may still need r10/r13/di/dx).
    let mut regs = start.regs;
    let mut prev_regs: Option<PtRegs> = None;
    let mut frame_regs = start.regs;
    loop {
        if frames.len() >= MAX_FRAMES {
            return Stop::TooDeep;
        }
        frames.push(Frame {
            ip,
            sp,
            regs: frame_regs.take(),
        });
        let look = if signal { ip } else { ip.wrapping_sub(1) };
        let e = match orc(look) {
            Ok(Some(e)) => e,
            Ok(None) => return Stop::NoOrc { ip },
            Err(reason) => return Stop::Unreadable { addr: look, reason },
        };
        match e.kind {
            Kind::Undefined => return Stop::Undefined { ip },
            Kind::EndOfStack => return Stop::EndOfStack,
            _ => {}
        }
        let off = i64::from(e.sp_offset);
        let saved = |r: Reg| regs.or(prev_regs).and_then(|x| x.reg(r));
        let cfa = match e.sp_reg {
            Reg::Sp => sp.wrapping_add_signed(off),
            Reg::Bp => bp.wrapping_add_signed(off),
            Reg::SpIndirect => match read(sp) {
                Ok(v) => v.wrapping_add_signed(off),
                Err(s) => return s,
            },
            Reg::BpIndirect => match read(bp.wrapping_add_signed(off)) {
                Ok(v) => v,
                Err(s) => return s,
            },
            r @ (Reg::R10 | Reg::R13 | Reg::Di | Reg::Dx | Reg::Ax) => match saved(r) {
                Some(v) => v.wrapping_add_signed(off),
                None => return Stop::NoRegister { ip },
            },
            _ => return Stop::NoRegister { ip },
        };
        let (next_ip, next_sp) = match e.kind {
            Kind::Call => {
                let ret = match read(cfa.wrapping_sub(8)) {
                    Ok(v) => v,
                    Err(s) => return s,
                };
                regs = None;
                (ret, cfa)
            }
            Kind::Regs => {
                let mut w = [0u64; 21];
                for (i, slot) in w.iter_mut().enumerate() {
                    match read(cfa.wrapping_add(8 * i as u64)) {
                        Ok(v) => *slot = v,
                        Err(s) => return s,
                    }
                }
                let r = PtRegs(w);
                if r.user_mode() {
                    if let Some(last) = frames.last_mut() {
                        last.regs = Some(r);
                    }
                    return Stop::UserMode;
                }
                regs = Some(r);
                prev_regs = None;
                frame_regs = Some(r);
                (r.ip(), r.sp())
            }
            _ => {
                // An iret frame: ip, cs, flags, sp, ss.
                let word = |i: u64| read(cfa.wrapping_add(8 * i));
                let (new_ip, cs, new_sp) = match (word(0), word(1), word(3)) {
                    (Ok(a), Ok(b), Ok(c)) => (a, b, c),
                    (Err(s), _, _) | (_, Err(s), _) | (_, _, Err(s)) => return s,
                };
                if cs & 3 == 3 {
                    return Stop::UserMode;
                }
                if regs.is_some() {
                    prev_regs = regs;
                }
                regs = None;
                (new_ip, new_sp)
            }
        };
        let bp_off = i64::from(e.bp_offset);
        let next_bp = match e.bp_reg {
            Reg::PrevSp => match read(cfa.wrapping_add_signed(bp_off)) {
                Ok(v) => v,
                Err(s) => return s,
            },
            Reg::Bp => match read(bp.wrapping_add_signed(bp_off)) {
                Ok(v) => v,
                Err(s) => return s,
            },
            _ => regs.map_or(bp, |r| r.bp()),
        };
        // Within one stack the caller's frame is above the callee's; only entries that
        // switch stacks (pt_regs, the IRQ-stack pointer) may go elsewhere.
        if e.kind == Kind::Call && e.sp_reg != Reg::SpIndirect && next_sp <= sp {
            return Stop::WrongDirection { sp, next: next_sp };
        }
        signal = e.signal;
        ip = next_ip;
        sp = next_sp;
        bp = next_bp;
    }
}
