//! Which kernel stack a stack pointer is on: the task's own stack, or one of its CPU's
//! stacks for hard interrupts (the IRQ stack) and for the exceptions that switch stacks
//! (#DF, NMI, #DB, #MC, #VC in the CPU entry area). Named as the kernel's stack dumps
//! name them (`<TASK>`, `<IRQ>`, `<NMI>`, `<#DF>`, ...), from the per-CPU pointers
//! the kernel keeps to them and the layouts in BTF.

use crate::btf::Btf;
use crate::kallsyms::Kallsyms;
use crate::kmem::{KernelMem, VirtAddr};
use crate::tasks::{per_cpu_addr, per_cpu_offsets};

/// Kernel stacks are 16 KiB (`THREAD_SIZE` and `IRQ_STACK_SIZE` without KASAN).
pub const THREAD_SIZE: u64 = 16 << 10;

const PAGE: u64 = 4096;

/// The exception stacks of `struct cea_exception_stacks`, by member, and the names the
/// kernel's `stack_type_name()` gives them.
const EXCEPTION_STACKS: [(&str, &str); 6] = [
    ("DF_stack", "#DF"),
    ("NMI_stack", "NMI"),
    ("DB_stack", "#DB"),
    ("MCE_stack", "#MC"),
    ("VC_stack", "#VC"),
    ("VC2_stack", "#VC2"),
];

/// The stacks known for one CPU and its task.
#[derive(Clone, Debug, Default)]
pub struct KernelStacks {
    /// `[lo, hi)` and the name, per stack.
    ranges: Vec<(u64, u64, &'static str)>,
}

impl KernelStacks {
    /// The stacks of `task` (its `task_struct`), and of `cpu` when given: its IRQ stack
    /// (per-CPU `hardirq_stack_ptr`, or `pcpu_hot.hardirq_stack_ptr` in 6.2 to 6.14) and
    /// its exception stacks (per-CPU `cea_exception_stacks`). What cannot be read is left
    /// out: a frame on it then has no stack name.
    pub fn read(
        mem: &dyn KernelMem,
        ks: &Kallsyms,
        btf: &Btf,
        task: Option<u64>,
        cpu: Option<usize>,
    ) -> KernelStacks {
        let mut ranges = Vec::new();
        if let (Some(task), Ok(off)) = (task, btf.offset_of("task_struct", "stack")) {
            if let Ok(stack) = mem.read_u64(VirtAddr(task.wrapping_add(off))) {
                if stack != 0 {
                    ranges.push((stack, stack.wrapping_add(THREAD_SIZE), "TASK"));
                }
            }
        }
        let Some(cpu) = cpu else {
            return KernelStacks { ranges };
        };
        let sym = |name: &str| ks.lookup(name).map(|s| s.addr);
        let offset = per_cpu_offsets(mem, sym("__per_cpu_offset"), cpu + 1)
            .get(cpu)
            .copied()
            .flatten();
        let read_ptr = |var: Option<u64>| {
            mem.read_u64(VirtAddr(per_cpu_addr(var, offset)?))
                .ok()
                .filter(|&p| p != 0)
        };
        // The IRQ stack: the per-CPU pointer holds its top less 8 (older kernels: its
        // top); the stack itself is page-aligned.
        let irq_ptr = match sym("hardirq_stack_ptr") {
            Some(a) => read_ptr(Some(a)),
            None => btf
                .offset_of("pcpu_hot", "hardirq_stack_ptr")
                .ok()
                .and_then(|o| read_ptr(sym("pcpu_hot").map(|a| a.wrapping_add(o)))),
        };
        if let Some(ptr) = irq_ptr {
            let size = btf.struct_size("irq_stack").unwrap_or(THREAD_SIZE);
            let lo = ptr.wrapping_add(8).wrapping_sub(size) & !(PAGE - 1);
            ranges.push((lo, lo.wrapping_add(size), "IRQ"));
        }
        if let Some(base) = read_ptr(sym("cea_exception_stacks")) {
            for (member, name) in EXCEPTION_STACKS {
                let Ok(f) = btf.field("cea_exception_stacks", member) else {
                    continue;
                };
                let Ok(size) = btf.size_of(f.type_id) else {
                    continue;
                };
                let lo = base.wrapping_add(f.offset);
                ranges.push((lo, lo.wrapping_add(size), name));
            }
        }
        KernelStacks { ranges }
    }

    /// The name of the stack `sp` is on, as the kernel prints it between `<` and `>`.
    /// A stack pointer at the very top of a stack (an empty stack) is on it.
    pub fn name(&self, sp: u64) -> Option<&'static str> {
        self.holding(sp).map(|r| r.2)
    }

    /// The top (end) of the stack `sp` is on.
    pub fn top(&self, sp: u64) -> Option<u64> {
        self.holding(sp).map(|r| r.1)
    }

    fn holding(&self, sp: u64) -> Option<&(u64, u64, &'static str)> {
        self.ranges
            .iter()
            .find(|(lo, hi, _)| *lo <= sp && sp <= *hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_pointer_is_named_by_the_stack_that_holds_it() {
        let s = KernelStacks {
            ranges: vec![(0x1000, 0x5000, "TASK"), (0x9000, 0xd000, "IRQ")],
        };
        assert_eq!(s.name(0x1000), Some("TASK"));
        assert_eq!(s.name(0x5000), Some("TASK"));
        assert_eq!(s.name(0xcff8), Some("IRQ"));
        assert_eq!(s.name(0x6000), None);
        assert_eq!(s.top(0xa000), Some(0xd000));
        assert_eq!(KernelStacks::default().name(0x1000), None);
    }
}
