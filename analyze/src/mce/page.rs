//! What a guest-physical address named by a machine check belongs to: guest RAM or not,
//! the kernel image (with the symbol), and, with VMCOREINFO's `struct page` layout and
//! page-flag numbers, the page's state (poisoned, free, slab, anonymous, page cache).

use coroner_formats::{PhysAddr, PhysMem};
use serde::Serialize;

use crate::kallsyms::Kallsyms;
use crate::kernel_view::KernelView;
use crate::kmem::{KernelMem, VirtAddr};
use crate::paging::START_KERNEL_MAP;

/// `VMEMMAP_START` without memory-layout randomization.
const VMEMMAP_START: u64 = 0xffff_ea00_0000_0000;
/// `PAGE_MAPPING_ANON`.
const PAGE_MAPPING_ANON: u64 = 1;

/// The owner of the page a machine check named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PageOwner {
    /// Guest page frame number.
    pub pfn: u64,
    /// The dump holds the page (it is guest RAM).
    pub in_ram: bool,
    /// What holds it, in words ("kernel image: gen_pool_buf+0x108", "free page", ...).
    pub owner: String,
    /// The kernel marked the page poisoned (`PG_hwpoison`): `memory_failure()` ran on it.
    pub hwpoison: Option<bool>,
    /// Address of its `struct page`, when read.
    #[serde(with = "coroner_formats::hex::option")]
    pub struct_page: Option<u64>,
    /// `page->flags`, when read.
    #[serde(with = "coroner_formats::hex::option")]
    pub flags: Option<u64>,
    /// How the owner was determined.
    pub how: String,
}

/// Finds the owner of guest-physical `addr`.
pub fn page_owner(
    mem: &dyn PhysMem,
    view: Option<&KernelView<'_>>,
    ks: Option<&Kallsyms>,
    addr: u64,
) -> PageOwner {
    let pfn = addr >> 12;
    let mut byte = [0u8; 1];
    let in_ram = mem.read_at(PhysAddr(pfn << 12), &mut byte).is_ok();
    let mut out = PageOwner {
        pfn,
        in_ram,
        owner: "unknown".into(),
        hwpoison: None,
        struct_page: None,
        flags: None,
        how: String::new(),
    };
    if !in_ram {
        out.owner = "not guest RAM in the dump (a hole, MMIO, or memory the dump left out)".into();
        out.how = "no PT_LOAD segment of the dump covers it".into();
        return out;
    }
    let (Some(view), Some(ks)) = (view, ks) else {
        out.how = "no kernel view: only its presence in RAM is known".into();
        return out;
    };
    if let Some(sym) = kernel_image_symbol(view, ks, addr) {
        out.owner = format!("kernel image: {sym}");
        out.how = "inside the kernel image (_text.._end) mapped at phys_base; symbol from kallsyms"
            .into();
    }
    struct_page_state(view, ks, pfn, &mut out);
    out
}

fn kernel_image_symbol(view: &KernelView<'_>, ks: &Kallsyms, addr: u64) -> Option<String> {
    let va = addr
        .checked_sub(view.phys_base)?
        .checked_add(START_KERNEL_MAP)?;
    let (text, end) = (ks.lookup("_text")?.addr, ks.lookup("_end")?.addr);
    (text..end).contains(&va).then(|| ks.format_addr(va))
}

/// Reads `struct page` through `vmemmap` and names its state from VMCOREINFO's numbers.
fn struct_page_state(view: &KernelView<'_>, ks: &Kallsyms, pfn: u64, out: &mut PageOwner) {
    let Some(vi) = view.vmcoreinfo.as_ref() else {
        if out.how.is_empty() {
            out.how =
                "no VMCOREINFO: the struct page layout and page-flag numbers are unknown".into();
        }
        return;
    };
    let (Some(size), Some(hwpoison_bit)) = (vi.size("page"), vi.get("NUMBER(PG_hwpoison)")) else {
        out.how = "VMCOREINFO lacks SIZE(page) or NUMBER(PG_hwpoison)".into();
        return;
    };
    let (base, base_how) = match ks.lookup("vmemmap_base") {
        Some(s) => match view.read_u64(VirtAddr(s.addr)) {
            Ok(v) => (v, "vmemmap_base"),
            Err(_) => return,
        },
        None => (VMEMMAP_START, "VMEMMAP_START (no vmemmap_base symbol)"),
    };
    let Some(page) = pfn.checked_mul(size).and_then(|o| base.checked_add(o)) else {
        return;
    };
    let Ok(flags) = view.read_u64(VirtAddr(page + vi.offset("page.flags").unwrap_or(0))) else {
        out.how = format!("{}; struct page at {page:#x} not readable", out.how);
        return;
    };
    out.struct_page = Some(page);
    out.flags = Some(flags);
    let bit = |key: &str| -> Option<bool> {
        let n: u32 = vi.get(&format!("NUMBER({key})"))?.parse().ok()?;
        (n < 64).then(|| flags >> n & 1 == 1)
    };
    let number = |key: &str| -> Option<i64> { vi.get(&format!("NUMBER({key})"))?.parse().ok() };
    out.hwpoison = hwpoison_bit
        .parse::<u32>()
        .ok()
        .filter(|&n| n < 64)
        .map(|n| flags >> n & 1 == 1);
    let mapcount = vi
        .offset("page._mapcount")
        .and_then(|o| view.read_u32(VirtAddr(page + o)).ok())
        .map(|v| i64::from(v as i32));
    let mapping = vi
        .offset("page.mapping")
        .and_then(|o| view.read_u64(VirtAddr(page + o)).ok());
    let state = if mapcount.is_some() && mapcount == number("PAGE_BUDDY_MAPCOUNT_VALUE") {
        "free page (buddy allocator)"
    } else if mapcount.is_some() && mapcount == number("PAGE_OFFLINE_MAPCOUNT_VALUE") {
        "offline page"
    } else if bit("PG_slab") == Some(true) {
        "slab page (kernel objects)"
    } else if mapping.is_some_and(|m| m & PAGE_MAPPING_ANON != 0) {
        "anonymous memory (a process's private data)"
    } else if bit("PG_swapcache") == Some(true) {
        "swap cache"
    } else if mapping.is_some_and(|m| m != 0) {
        "page cache (file data)"
    } else if bit("PG_lru") == Some(true) {
        "on an LRU list"
    } else if out.hwpoison == Some(true) {
        "poisoned page taken out of use"
    } else {
        "in use, not on an LRU, not slab, no mapping (a kernel allocation or reserved)"
    };
    let poison = if out.hwpoison == Some(true) {
        " (PG_hwpoison set: the kernel's memory-failure handling isolated it)"
    } else {
        ""
    };
    if out.owner == "unknown" {
        out.owner = format!("{state}{poison}");
    } else {
        out.owner = format!("{}; struct page: {state}{poison}", out.owner);
    }
    let how = format!(
        "struct page at {page:#x} ({base_how} + pfn * SIZE(page)), flags {flags:#x}, decoded with VMCOREINFO's page-flag numbers"
    );
    out.how = if out.how.is_empty() {
        how
    } else {
        format!("{}; {how}", out.how)
    };
}
