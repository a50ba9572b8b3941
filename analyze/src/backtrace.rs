//! Backtraces of tasks and vCPUs from a session: a task a CPU runs now is unwound from
//! that vCPU's registers (its saved switch frame is stale), any other task from the frame
//! `__switch_to_asm` left on its stack; every frame symbolized as the kernel prints it.

use serde::Serialize;

use crate::kmem::{KernelMem, VirtAddr};
use crate::orc::{task_start, unwind, unwind_frame_pointers, PtRegs, Start, Stop, Unwind};
use crate::session::{Session, Unavailable};
use crate::stacks::{KernelStacks, THREAD_SIZE};
use crate::tasks::Task;
use coroner_formats::VcpuRegs;

/// One symbolized frame.
#[derive(Clone, Debug, Serialize)]
pub struct BtFrame {
    /// The address.
    #[serde(with = "coroner_formats::hex")]
    pub ip: u64,
    /// The stack pointer in the frame.
    #[serde(with = "coroner_formats::hex")]
    pub sp: u64,
    /// `function+0xoff/0xsize [module]`, when a symbol holds it.
    pub symbol: Option<String>,
    /// How the frame was found: `orc` (the unwind tables), `frame-pointer` (the `rbp`
    /// chain of a kernel built without ORC), or `scan` (a kernel text address found on
    /// the stack past where the unwind stopped).
    pub method: &'static str,
    /// The unwind proved this is a return address (the kernel prints the others with
    /// `? `).
    pub reliable: bool,
    /// The stack the frame is on, as the kernel names it (`TASK`, `IRQ`, `NMI`, `#DF`,
    /// ...), when known.
    pub stack: Option<&'static str>,
    /// The registers saved where the kernel was entered here, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regs: Option<PtRegs>,
}

impl BtFrame {
    /// The frame as the kernel prints it: the symbol (or the address), after `? ` when
    /// the frame is not reliable.
    pub fn text(&self) -> String {
        format!(
            "{}{}",
            if self.reliable { "" } else { "? " },
            self.symbol
                .clone()
                .unwrap_or_else(|| format!("{:#x}", self.ip))
        )
    }
}

/// A backtrace and why it ended.
#[derive(Clone, Debug, Serialize)]
pub struct Backtrace {
    /// Where the unwind started: `vCPU N registers` or `switch frame at 0x…`.
    pub from: String,
    /// Frames, innermost first.
    pub frames: Vec<BtFrame>,
    /// Why it ended.
    pub stop: Stop,
    /// The same, as a sentence.
    pub stop_reason: String,
    /// It reached the end of the stack or user mode.
    pub complete: bool,
}

/// The backtrace of `task`: from its vCPU's registers when a CPU runs it, else from its
/// switch frame.
pub fn task_backtrace(session: &Session<'_>, task: &Task) -> Result<Backtrace, String> {
    let list = session.tasks().map_err(|e| e.to_string())?;
    if let Some(c) = list.current.iter().find(|c| c.task == task.task) {
        return vcpu_backtrace(session, c.cpu);
    }
    let view = session.view().map_err(|e| e.to_string())?;
    let btf = session.btf().map_err(|e| e.to_string())?;
    let fork = session
        .symbols()
        .and_then(|k| k.lookup("ret_from_fork"))
        .map(|s| s.addr);
    let start = task_start(view, &btf.btf, task.task, fork)?;
    let stacks = stacks_of(session, Some(task.task), None);
    run(
        session,
        start,
        &stacks,
        format!("the switch frame at {:#x}", start.sp),
    )
}

/// The backtrace of vCPU `index` from its registers in the dump. A vCPU in user mode has
/// no kernel frames: an empty backtrace that says so.
pub fn vcpu_backtrace(session: &Session<'_>, index: usize) -> Result<Backtrace, String> {
    let vcpu = session
        .core()
        .elf
        .vcpus
        .get(index)
        .ok_or_else(|| format!("the dump has no vCPU {index}"))?;
    let Some(VcpuRegs::X86_64(r)) = vcpu.prstatus.as_ref().map(|p| &p.regs) else {
        return Err(format!("vCPU {index} has no x86_64 NT_PRSTATUS registers"));
    };
    let regs = PtRegs([
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx,
        r.rsi, r.rdi, r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss,
    ]);
    let from = format!("vCPU {index}'s registers (NT_PRSTATUS)");
    let current = session
        .tasks()
        .ok()
        .and_then(|l| l.current.iter().find(|c| c.cpu == index).map(|c| c.task));
    let stacks = stacks_of(session, current, Some(index));
    if regs.user_mode() {
        return Ok(Backtrace {
            from,
            frames: Vec::new(),
            stop: Stop::UserMode,
            stop_reason: format!("vCPU {index} runs user code (RIP {:#x})", r.rip),
            complete: true,
        });
    }
    run(
        session,
        Start {
            ip: r.rip,
            sp: r.rsp,
            bp: r.rbp,
            regs: Some(regs),
            signal: true,
        },
        &stacks,
        from,
    )
}

/// The stacks of `task` and `cpu` (none without kallsyms and BTF).
fn stacks_of(session: &Session<'_>, task: Option<u64>, cpu: Option<usize>) -> KernelStacks {
    match (session.view(), session.symbols(), session.btf()) {
        (Ok(view), Some(ks), Ok(btf)) => KernelStacks::read(view, ks, &btf.btf, task, cpu),
        _ => KernelStacks::default(),
    }
}

fn run(
    session: &Session<'_>,
    start: Start,
    stacks: &KernelStacks,
    from: String,
) -> Result<Backtrace, String> {
    let view = session.view().map_err(|e| e.to_string())?;
    // Without ORC tables, a kernel built with frame pointers has its rbp chain; one whose
    // tables could be found neither by symbol nor by search has neither, and gets the
    // stack scan alone. Any other failure to read the tables is an error.
    let (u, method): (Unwind, &'static str) = match session.orc() {
        Ok(orc) => (unwind(view, &|ip| orc.find(view, ip), start), "orc"),
        Err(Unavailable::Failed(e)) if e.is_absent() && built_with_frame_pointers(session) => {
            (unwind_frame_pointers(view, start), "frame-pointer")
        }
        Err(Unavailable::Failed(e)) if e.is_absent() => (
            Unwind {
                frames: vec![crate::orc::Frame {
                    ip: start.ip,
                    sp: start.sp,
                    regs: start.regs,
                }],
                stop: Stop::NoOrc { ip: start.ip },
            },
            "orc",
        ),
        Err(e) => return Err(e.to_string()),
    };
    let complete = u.complete();
    let mut frames: Vec<BtFrame> = u
        .frames
        .into_iter()
        .map(|f| BtFrame {
            ip: f.ip,
            sp: f.sp,
            // A frame from registers holds the interrupted address itself; the others
            // hold return addresses.
            symbol: if f.regs.is_some() {
                session.symbolize(f.ip)
            } else {
                session.symbolize_return(f.ip)
            },
            method,
            reliable: true,
            stack: stacks.name(f.sp),
            regs: f.regs,
        })
        .collect();
    if !complete {
        if let Some(last) = frames.last().map(|f| f.sp) {
            frames.extend(scan(session, last, stacks));
        }
    }
    Ok(Backtrace {
        from,
        complete,
        stop_reason: u.stop.to_string(),
        frames,
        stop: u.stop,
    })
}

/// Functions whose prologue tells a frame-pointer kernel: built with frame pointers, each
/// sets up `rbp` (`push %rbp; mov %rsp,%rbp`) in its first bytes (after ENDBR64 and the
/// ftrace call); built for ORC, none does (Debian 6.1's don't; some others, such as
/// `panic`, do there too, so they are no probes).
const PROLOGUE_PROBES: [&str; 5] = ["schedule", "kthread", "vfs_read", "vfs_write", "msleep"];

/// True when the kernel was built with frame pointers (see [`PROLOGUE_PROBES`]).
fn built_with_frame_pointers(session: &Session<'_>) -> bool {
    let (Ok(view), Some(ks)) = (session.view(), session.symbols()) else {
        return false;
    };
    PROLOGUE_PROBES.iter().all(|name| {
        let Some(sym) = ks.lookup(name) else {
            return false;
        };
        let mut code = [0u8; 16];
        view.read_virt(VirtAddr(sym.addr), &mut code).is_ok()
            && code.windows(4).any(|w| w == [0x55, 0x48, 0x89, 0xe5])
    })
}

/// The kernel's last resort, as its own stack dumps do: every word from `sp` to the top
/// of its stack that is an address in kernel or module text, as an unreliable frame.
fn scan(session: &Session<'_>, sp: u64, stacks: &KernelStacks) -> Vec<BtFrame> {
    let Ok(view) = session.view() else {
        return Vec::new();
    };
    let text = session
        .symbols()
        .and_then(|k| Some((k.lookup("_stext")?.addr, k.lookup("_etext")?.addr)));
    let modules = session.modules().ok();
    let in_text = |w: u64| {
        text.is_some_and(|(a, b)| (a..b).contains(&w))
            || modules.is_some_and(|m| {
                m.modules
                    .iter()
                    .any(|x| (x.address..x.address.saturating_add(x.text_size)).contains(&w))
            })
    };
    // The top of the stack it is on; else that of a stack aligned to its size, as task
    // stacks are.
    let top = stacks
        .top(sp)
        .unwrap_or_else(|| (sp | (THREAD_SIZE - 1)).wrapping_add(1));
    let mut out = Vec::new();
    let mut at = sp & !7;
    while at < top {
        let Ok(w) = view.read_u64(VirtAddr(at)) else {
            break;
        };
        if in_text(w) {
            if let Some(symbol) = session.symbolize_return(w) {
                out.push(BtFrame {
                    ip: w,
                    sp: at,
                    symbol: Some(symbol),
                    method: "scan",
                    reliable: false,
                    stack: stacks.name(at),
                    regs: None,
                });
            }
        }
        at += 8;
    }
    out
}
