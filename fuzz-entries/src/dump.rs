//! A whole dump through every analysis of a session: the ELF or container, the kernel
//! view (page tables, VMCOREINFO in notes and RAM, kallsyms), the printk rings, triage,
//! the MCE records in memory, the KVM exit, each vCPU's context, and `inspect`.

use coroner_analyze::{Inspection, Session, SessionOptions};

/// Opens `data` as a dump and runs every analysis over it.
pub fn dump(data: &[u8]) {
    crate::scratch_file::with_file("dump", data, |path| {
        let Ok(core) = coroner_formats::open(path) else {
            return;
        };
        let _ = Inspection::of(&core);
        let s = Session::new(&core, SessionOptions::default());
        crate::invariants::terminal_safe(&s.report().verdict);
        crate::invariants::terminal_safe(&s.mce(None).verdict);
        crate::invariants::terminal_safe(&s.exit(None).verdict);
        for i in 0..core.elf.vcpus.len() {
            if let Some(v) = s.vcpu(i) {
                crate::invariants::terminal_safe(&v.code_before);
            }
        }
    });
}
