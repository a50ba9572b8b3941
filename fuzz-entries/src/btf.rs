//! BTF, the kernel's type information: the header, every type record, and the layout
//! queries the readers of kernel structures make.

use coroner_analyze::Btf;

/// Parses `data` as raw BTF and asks it for a few layouts.
pub fn btf(data: &[u8]) {
    let Ok(b) = Btf::parse(data) else {
        return;
    };
    for (ty, path) in [
        ("task_struct", "pid"),
        ("task_struct", "thread_info.cpu"),
        ("module", "list"),
        ("module", "core_layout.size"),
    ] {
        let _ = b.field(ty, path);
    }
    for id in 1..=b.len().min(4096) as u32 {
        let _ = b.size_of(id);
    }
    let _ = b.enum_values("module_state");
    let _ = b.section_var_offset(".data..percpu", "current_task");
}
