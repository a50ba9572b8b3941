//! The VMCOREINFO text parser.

use coroner_analyze::Vmcoreinfo;

/// Parses `data` as VMCOREINFO text and asks it what analyses ask.
pub fn vmcoreinfo(data: &[u8]) {
    let v = Vmcoreinfo::parse(&String::from_utf8_lossy(data));
    for name in [
        "prb",
        "init_uts_ns",
        "_stext",
        "kallsyms_names",
        "__per_cpu_offset",
    ] {
        let _ = v.symbol(name);
    }
}
