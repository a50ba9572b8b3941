//! A whole dump through every analysis: the ELF or container, the kernel view (page
//! tables, VMCOREINFO in notes and RAM, kallsyms), the printk rings, triage, the MCE
//! records in memory, the KVM exit, and `inspect`.

use coroner_analyze::{
    exit_report, mce_report, report, ExitOptions, Inspection, MceOptions, ReportOptions,
};

/// Opens `data` as a dump and runs every analysis over it.
pub fn dump(data: &[u8]) {
    crate::scratch_file::with_file("dump", data, |path| {
        let Ok(core) = coroner_formats::open(path) else {
            return;
        };
        let _ = Inspection::of(&core);
        let r = report(
            &core,
            &ReportOptions {
                tail: 20,
                ignore_vmcoreinfo: false,
            },
        );
        crate::invariants::terminal_safe(&r.verdict);
        let m = mce_report(
            &core,
            &MceOptions {
                ignore_vmcoreinfo: false,
                qemu_log: None,
            },
        );
        crate::invariants::terminal_safe(&m.verdict);
        let e = exit_report(
            Some(&core),
            &ExitOptions {
                qemu_log: None,
                ignore_vmcoreinfo: false,
            },
        );
        crate::invariants::terminal_safe(&e.verdict);
    });
}
