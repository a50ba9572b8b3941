//! Opening a dump and building its kernel view: shared by `dmesg`, `sym` and `analyze`.

use std::path::Path;

use coroner_analyze::{Hints, KernelView};
use coroner_formats::Core;

use crate::exit::{ClassifyExt, ExitClass};

/// Opens `path` as a dump.
pub fn open(path: &Path) -> anyhow::Result<Core> {
    coroner_formats::open(path).classify(ExitClass::Input, || {
        format!("cannot read {}", path.display())
    })
}

/// The kernel view of `core`, or an exit-class-7 error saying why there is none.
pub fn view(core: &Core, ignore_vmcoreinfo: bool) -> anyhow::Result<KernelView<'_>> {
    KernelView::build(
        core.mem(),
        &core.elf,
        &Hints::for_core(core, ignore_vmcoreinfo),
    )
    .classify(ExitClass::NotFound, || {
        format!("no Linux kernel found in {}", core.path.display())
    })
}
