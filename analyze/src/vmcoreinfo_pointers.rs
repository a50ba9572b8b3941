//! Finding the guest's VMCOREINFO through the running kernel, without scanning RAM: the
//! vCPU's page tables map the kernel image, kallsyms is found in it by signature, and the
//! kernel's own pointers `vmcoreinfo_data` (the text page) and `vmcoreinfo_note` (the ELF
//! note), separately allocated since 4.13, lead to the text. Their symbols are data
//! symbols, in kallsyms with `CONFIG_KALLSYMS_ALL` (every distribution kernel); without
//! them the caller falls back to scanning RAM.

use coroner_formats::PhysMem;

use crate::kallsyms::Kallsyms;
use crate::kernel_view::KERNEL_SCAN_BYTES;
use crate::kmem::{KernelMem, VirtAddr};
use crate::paging::PageTables;
use crate::vmcoreinfo_scan::{read_candidate, Candidate, CandidateKind};

/// What the search through the kernel found.
pub struct ThroughKernel {
    /// The VMCOREINFO copy the kernel points at, when it does.
    pub candidate: Option<(Candidate, &'static str)>,
    /// The kallsyms table found on the way, with how and the image address it was
    /// searched from (handed to the session, so it is not searched twice), when one was.
    pub kallsyms: Option<(Kallsyms, String, u64)>,
    /// What went wrong, for the view's problems.
    pub problems: Vec<String>,
}

/// Looks for the kernel image through `tables` (a vCPU's, known to map kernel text at
/// `text`, its lowest mapped address there), its kallsyms, and the VMCOREINFO its
/// pointers lead to.
pub fn find(mem: &dyn PhysMem, tables: &PageTables<'_>, text: VirtAddr) -> ThroughKernel {
    let mut out = ThroughKernel {
        candidate: None,
        kallsyms: None,
        problems: Vec::new(),
    };
    let text = text.0;
    let ks = match Kallsyms::scan(tables, VirtAddr(text), KERNEL_SCAN_BYTES, None) {
        Ok(k) => k,
        Err(e) => {
            out.problems
                .push(format!("no kallsyms in the kernel image at {text:#x}: {e}"));
            return out;
        }
    };
    for (symbol, kind) in [
        ("vmcoreinfo_data", CandidateKind::DataPage),
        ("vmcoreinfo_note", CandidateKind::Note),
    ] {
        let Some(sym) = ks.lookup(symbol) else {
            continue;
        };
        let Ok(pointer) = tables.read_u64(VirtAddr(sym.addr)) else {
            out.problems.push(format!(
                "{symbol} at {:#x} is not readable through the page tables",
                sym.addr
            ));
            continue;
        };
        let Ok(tr) = tables.translate(VirtAddr(pointer)) else {
            out.problems.push(format!(
                "{symbol} points at {pointer:#x}, which the page tables do not map"
            ));
            continue;
        };
        match read_candidate(mem, tr.pa, kind) {
            Some(c) => {
                out.candidate = Some((c, symbol));
                break;
            }
            None => out.problems.push(format!(
                "{symbol} points at {pointer:#x} ({}), which holds no VMCOREINFO",
                tr.pa
            )),
        }
    }
    let how = format!(
        "found by scanning the kernel image at {text:#x}; {}",
        ks.how()
    );
    out.kallsyms = Some((ks, how, text));
    out
}
