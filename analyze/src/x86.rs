//! x86 architectural facts in one place: control-register, EFER and RFLAGS bits (as
//! masks, and as name tables for display) and the page-table address mask. Every reader
//! of vCPU state takes them from here.

/// CR0.PE: protected mode.
pub const CR0_PE: u64 = 1;
/// CR0.PG: paging.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.PAE: physical address extension (required for long-mode paging).
pub const CR4_PAE: u64 = 1 << 5;
/// CR4.LA57: five-level paging.
pub const CR4_LA57: u64 = 1 << 12;
/// EFER.LMA: long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// RFLAGS.VM: virtual-8086 mode.
pub const RFLAGS_VM: u64 = 1 << 17;
/// The physical-address bits of CR3 and of a page-table entry (bits 12..51).
pub const PHYS_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// The page-table root in CR3.
pub fn cr3_root(cr3: u64) -> u64 {
    cr3 & PHYS_ADDR_MASK
}

/// Whether paging is on (CR0.PG).
pub fn paging_on(cr0: u64) -> bool {
    cr0 & CR0_PG != 0
}

/// RFLAGS bits shown by name.
pub const RFLAGS_BITS: &[(u32, &str)] = &[
    (0, "CF"),
    (2, "PF"),
    (4, "AF"),
    (6, "ZF"),
    (7, "SF"),
    (8, "TF"),
    (9, "IF"),
    (10, "DF"),
    (11, "OF"),
];

/// CR0 bits by name.
pub const CR0_BITS: &[(u32, &str)] = &[
    (0, "PE"),
    (1, "MP"),
    (2, "EM"),
    (3, "TS"),
    (4, "ET"),
    (5, "NE"),
    (16, "WP"),
    (18, "AM"),
    (29, "NW"),
    (30, "CD"),
    (31, "PG"),
];

/// CR4 bits by name.
pub const CR4_BITS: &[(u32, &str)] = &[
    (0, "VME"),
    (1, "PVI"),
    (2, "TSD"),
    (3, "DE"),
    (4, "PSE"),
    (5, "PAE"),
    (6, "MCE"),
    (7, "PGE"),
    (8, "PCE"),
    (9, "OSFXSR"),
    (10, "OSXMMEXCPT"),
    (11, "UMIP"),
    (12, "LA57"),
    (13, "VMXE"),
    (14, "SMXE"),
    (16, "FSGSBASE"),
    (17, "PCIDE"),
    (18, "OSXSAVE"),
    (20, "SMEP"),
    (21, "SMAP"),
    (22, "PKE"),
    (23, "CET"),
];

/// EFER bits by name.
pub const EFER_BITS: &[(u32, &str)] = &[
    (0, "SCE"),
    (8, "LME"),
    (10, "LMA"),
    (11, "NXE"),
    (12, "SVME"),
    (13, "LMSLE"),
    (14, "FFXSR"),
    (15, "TCE"),
];

/// The names of the bits of `value` that are set, from `table`, space-separated.
pub fn set_bits(value: u64, table: &[(u32, &str)]) -> String {
    table
        .iter()
        .filter(|(b, _)| value & (1u64 << b) != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_agree_with_the_name_tables() {
        let named = |table: &[(u32, &str)], name: &str| {
            table
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(b, _)| 1u64 << b)
        };
        assert_eq!(named(CR0_BITS, "PE"), Some(CR0_PE));
        assert_eq!(named(CR0_BITS, "PG"), Some(CR0_PG));
        assert_eq!(named(CR4_BITS, "PAE"), Some(CR4_PAE));
        assert_eq!(named(CR4_BITS, "LA57"), Some(CR4_LA57));
        assert_eq!(named(EFER_BITS, "LMA"), Some(EFER_LMA));
        assert_eq!(set_bits(0x8005_0033, CR0_BITS), "PE MP ET NE WP AM PG");
        assert_eq!(cr3_root(0x8000_0000_1234_5678), 0x1234_5000);
        assert!(paging_on(0x8000_0001) && !paging_on(1));
    }
}
