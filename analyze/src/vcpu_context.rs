//! Where each vCPU stopped: its mode, the instructions at RIP (and before it, decoded
//! from its function's start), and the top of its stack with symbols.

use coroner_formats::{PhysAddr, QemuCpuState};

use crate::backtrace::{vcpu_backtrace, Backtrace};
use crate::cpu_mode::{cpu_mode, ModeInfo};
use crate::kmem::{KernelMem, VirtAddr};
use crate::kvm_exit::{listing, Disassembly, RegDump};
use crate::paging::MODULES_START;
use crate::session::Session;
use crate::x86::{paging_on, EFER_LMA};

/// Instructions decoded from RIP on, per vCPU.
const CODE_AFTER: usize = 12;
/// The farthest a function's start may lie before RIP for the code before RIP to be
/// decoded from it.
const CODE_BACK_MAX: u64 = 16 << 10;
/// Instructions shown before RIP.
const CODE_BEFORE: usize = 4;
/// Stack words read from RSP, per vCPU.
const STACK_WORDS: usize = 32;

/// Where one vCPU stopped, as far as the dump tells: registers, mode, the code at RIP and
/// the top of its stack.
#[derive(Clone, Debug)]
pub struct VcpuContext {
    /// Index in qemu's CPU list.
    pub index: usize,
    /// Registers from the dump's QEMU note.
    pub state: Option<QemuCpuState>,
    /// EFER, from the capture's `info registers -a`.
    pub efer: Option<u64>,
    /// Execution and paging mode.
    pub mode: Option<ModeInfo>,
    /// `name+0x../0x..` at RIP.
    pub rip_symbol: Option<String>,
    /// Instructions from RIP on (empty when RIP's bytes are not readable).
    pub code: Vec<Disassembly>,
    /// Why `code` is empty.
    pub code_problem: Option<String>,
    /// How the instructions before RIP were decoded, or why they were not.
    pub code_before: String,
    /// Stack words from RSP: address, value, symbol of the value.
    pub stack: Vec<(u64, u64, Option<String>)>,
    /// The kernel backtrace from its registers (ORC), or why there is none.
    pub backtrace: Result<Backtrace, String>,
}

/// EFER of each CPU in HMP `info registers -a` (`CPU#N` blocks), for at most `cpus` CPUs.
pub fn efer_per_cpu(text: &str, cpus: usize) -> Vec<Option<u64>> {
    let mut dumps: Vec<RegDump> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with("CPU#") || dumps.is_empty() {
            if dumps.len() == cpus {
                break;
            }
            dumps.push(RegDump::default());
            if line.starts_with("CPU#") {
                continue;
            }
        }
        if let Some(d) = dumps.last_mut() {
            d.absorb_line(line);
        }
    }
    dumps.iter().map(|d| d.efer).collect()
}

/// The context of vCPU `index` (an index into the dump's notes) of session `session`.
pub(crate) fn vcpu_context(session: &Session<'_>, index: usize) -> Option<VcpuContext> {
    let core = session.core();
    let vcpu = core.elf.vcpus.get(index)?;
    let view = session.view().ok();
    let ks = session.symbols();
    let efer = session
        .capture()
        .and_then(|c| c.info_registers.as_deref())
        .and_then(|t| efer_per_cpu(t, vcpu.index + 1).get(vcpu.index).copied())
        .flatten();
    let state = vcpu.qemu.clone();
    let mut m = VcpuContext {
        index: vcpu.index,
        mode: state
            .as_ref()
            .map(|s| cpu_mode(s, efer.map(|e| e & EFER_LMA != 0))),
        state,
        efer,
        rip_symbol: None,
        code: Vec::new(),
        code_problem: None,
        code_before: String::new(),
        stack: Vec::new(),
        backtrace: vcpu_backtrace(session, index),
    };
    let Some(s) = m.state.clone() else {
        m.code_problem = Some("no QEMU note for this vCPU".into());
        return Some(m);
    };
    let sym = |a: u64| session.symbolize(a);
    m.rip_symbol = sym(s.rip);
    // x86 code cannot be decoded backwards: only from the start of RIP's function.
    let func = ks
        .and_then(|k| k.symbolize(s.rip).map(|(sym, off)| (sym.name.clone(), off)))
        .or_else(|| {
            if s.rip < MODULES_START {
                return None;
            }
            let modules = session.modules().ok()?;
            modules
                .symbolize(s.rip)
                .map(|(sym, off, m)| (format!("{} [{}]", sym.name, m.name), off))
        });
    let bits = m.mode.as_ref().map_or(16, |x| x.mode.bits());
    let paging = paging_on(s.cr[0]);
    let read = |linear: u64, buf: &mut [u8]| -> Result<(), String> {
        if paging {
            view.map(|v| {
                v.read_virt(VirtAddr(linear), buf)
                    .map_err(|e| e.to_string())
            })
            .unwrap_or_else(|| Err("paging on and no kernel page tables".into()))
        } else {
            core.mem()
                .read_at(PhysAddr(linear & 0xffff_ffff), buf)
                .map_err(|e| e.to_string())
        }
    };
    let linear = s.cs.base.wrapping_add(s.rip);
    let mut bytes = vec![0u8; 64];
    match read(linear, &mut bytes) {
        Ok(()) => {
            match &func {
                Some((name, off)) => match before_rip(&read, linear, bits, s.rip, *off) {
                    Ok(code) => {
                        m.code = code;
                        m.code_before = format!("decoded from the start of {name}");
                    }
                    Err(why) => m.code_before = format!("before RIP: not decoded ({why})"),
                },
                None => {
                    m.code_before =
                        "before RIP: not decoded (no symbol gives the function's start)".into()
                }
            }
            m.code.extend(listing(&bytes, bits, s.rip, CODE_AFTER));
        }
        Err(e) => m.code_problem = Some(format!("bytes at RIP: {e}")),
    }
    if let (Some(v), 64) = (view, bits) {
        let rsp = s.gpr[6];
        for i in 0..STACK_WORDS as u64 {
            let at = rsp.wrapping_add(8 * i);
            match v.read_u64(VirtAddr(at)) {
                Ok(val) => m.stack.push((at, val, sym(val))),
                Err(_) => break,
            }
        }
    }
    Some(m)
}

/// Reads guest bytes at a linear address.
type ReadLinear<'r> = &'r dyn Fn(u64, &mut [u8]) -> Result<(), String>;

/// The last few instructions before RIP, decoded from the start of its function, which
/// lies `off` bytes before it: the only sure way (x86 code cannot be decoded backwards).
/// An error says why not (too far, unreadable, RIP not on an instruction boundary).
fn before_rip(
    read: ReadLinear<'_>,
    linear: u64,
    bits: u32,
    rip: u64,
    off: u64,
) -> Result<Vec<Disassembly>, String> {
    if off == 0 {
        return Ok(Vec::new());
    }
    if off > CODE_BACK_MAX {
        return Err(format!("the function starts {off:#x} bytes before RIP"));
    }
    let start = linear
        .checked_sub(off)
        .ok_or_else(|| "the function start wraps".to_string())?;
    let mut bytes = vec![0u8; off as usize + 16];
    read(start, &mut bytes).map_err(|e| format!("reading the function: {e}"))?;
    let decoded = listing(&bytes, bits, rip.wrapping_sub(off), off as usize + 1);
    let at = decoded
        .iter()
        .position(|d| d.ip == rip)
        .ok_or_else(|| "RIP is not on an instruction boundary of its function".to_string())?;
    if decoded[..at].iter().any(|d| d.invalid) {
        return Err("invalid instructions in the function before RIP".into());
    }
    Ok(decoded[at.saturating_sub(CODE_BEFORE)..at].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_before_rip_land_on_it() {
        // nops; push ebp; mov ebp,esp; [RIP] xor eax,eax; hlt
        let mut mem = [0x90u8; 64];
        mem[30..36].copy_from_slice(&[0x55, 0x89, 0xe5, 0x31, 0xc0, 0xf4]);
        let read = |a: u64, b: &mut [u8]| -> Result<(), String> {
            let a = a as usize;
            b.copy_from_slice(mem.get(a..a + b.len()).ok_or("out")?);
            Ok(())
        };
        // The function starts at 30 (push ebp): RIP 33 is 3 bytes into it.
        let got = before_rip(&read, 33, 32, 33, 3).unwrap();
        let text: Vec<&str> = got.iter().map(|d| d.mnemonic.as_str()).collect();
        assert_eq!(text, ["push", "mov"]);
        assert_eq!(got.last().unwrap().ip, 31);
        // A start that puts RIP inside an instruction is not guessed around.
        assert!(before_rip(&read, 33, 32, 33, 1).is_err());
        // Too far, or before address 0: not decoded.
        assert!(before_rip(&read, 33, 32, 33, CODE_BACK_MAX + 1).is_err());
        assert!(before_rip(&read, 3, 32, 3, 5).is_err());
    }

    #[test]
    fn efer_from_info_registers() {
        let text = "\nCPU#0\nRAX=0\nEFER=0000000000000d01\nCPU#1\nRIP=1\nEFER=0000000000000500\n";
        assert_eq!(efer_per_cpu(text, 8), [Some(0xd01), Some(0x500)]);
        assert!(efer_per_cpu("", 8).is_empty());
        // No more CPUs than the dump has, whatever the text claims.
        assert_eq!(
            efer_per_cpu(&"CPU#0\nEFER=0000000000000d01\n".repeat(100), 2).len(),
            2
        );
    }
}
