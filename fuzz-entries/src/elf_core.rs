//! The ELF core parser: headers, program headers, every note.

use coroner_formats::ElfCore;

/// Parses `data` as a qemu ELF core and walks what it found.
pub fn elf_core(data: &[u8]) {
    let Ok(core) = ElfCore::parse(&data.to_vec()) else {
        return;
    };
    for v in &core.vcpus {
        let _ = (&v.prstatus, &v.qemu);
    }
    let _ = core.loads.iter().map(|l| l.file_size).sum::<u64>();
    for w in &core.warnings {
        crate::invariants::terminal_safe(w);
    }
}
