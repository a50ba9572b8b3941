//! The standard x86 PC platform MMIO ranges (qemu's `pc` and `q35` machines follow them),
//! to name what an address probably is when the guest's own `info mtree -f` is not at
//! hand. Every name says it comes from the standard layout, not from this guest.

use super::mtree::Owner;

/// One well-known range of the PC physical address map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcRange {
    /// First address.
    pub start: u64,
    /// Last address (inclusive).
    pub end: u64,
    /// What sits there, short.
    pub what: &'static str,
    /// More about it, or empty.
    pub detail: &'static str,
    /// A device at a fixed address (VGA, the APICs, the HPET): a register holding it means
    /// the device even with paging on. The others (the PCI hole, MMCONFIG, the firmware)
    /// move with the machine and overlap common virtual addresses (a 32-bit kernel's
    /// 0xc0000000 on).
    pub fixed: bool,
}

/// The ranges, in address order; they do not overlap.
pub const PC_MMIO: &[PcRange] = &[
    PcRange {
        start: 0xa_0000,
        end: 0xb_ffff,
        what: "the legacy VGA window",
        detail: "",
        fixed: true,
    },
    PcRange {
        start: 0xb000_0000,
        end: 0xbfff_ffff,
        what: "the PCI Express configuration space",
        detail: "MMCONFIG/ECAM of q35",
        fixed: false,
    },
    PcRange {
        start: 0xc000_0000,
        end: 0xfebf_ffff,
        what: "the PCI hole below 4 GiB",
        detail: "where PCI BARs (framebuffers, virtio, NVMe) sit; it starts lower, at the end of \
                 low RAM, on many guests",
        fixed: false,
    },
    PcRange {
        start: 0xfec0_0000,
        end: 0xfec0_0fff,
        what: "the IO-APIC",
        detail: "",
        fixed: true,
    },
    PcRange {
        start: 0xfed0_0000,
        end: 0xfed0_03ff,
        what: "the HPET",
        detail: "",
        fixed: true,
    },
    PcRange {
        start: 0xfed1_c000,
        end: 0xfed1_ffff,
        what: "the chipset's root complex register block",
        detail: "ICH9, q35",
        fixed: true,
    },
    PcRange {
        start: 0xfee0_0000,
        end: 0xfeef_ffff,
        what: "the local APIC",
        detail: "registers at 0xfee00000-0xfee00fff; writes elsewhere in the range are MSIs",
        fixed: true,
    },
    PcRange {
        start: 0xffc0_0000,
        end: 0xffff_ffff,
        what: "the firmware ROM or flash below 4 GiB",
        detail: "pc.bios or pflash; its size depends on the firmware",
        fixed: false,
    },
];

/// The standard-PC range holding `gpa`, as an [`Owner`] whose description says where the
/// name comes from.
pub fn pc_owner(gpa: u64) -> Option<Owner> {
    let r = pc_range(gpa)?;
    let detail = if r.detail.is_empty() {
        String::new()
    } else {
        format!("{}; ", r.detail)
    };
    Some(Owner {
        gpa,
        region: None,
        description: format!(
            "{} {:#x}-{:#x} ({detail}MMIO in the standard PC layout; no `info mtree -f` of this \
             guest to confirm)",
            r.what, r.start, r.end
        ),
    })
}

/// The standard-PC range holding `gpa`.
pub fn pc_range(gpa: u64) -> Option<&'static PcRange> {
    PC_MMIO.iter().find(|r| (r.start..=r.end).contains(&gpa))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_ordered_and_named() {
        assert!(PC_MMIO.windows(2).all(|w| w[0].end < w[1].start));
        let apic = pc_owner(0xfee0_00b0).unwrap();
        assert!(
            apic.description.starts_with("the local APIC"),
            "{}",
            apic.description
        );
        assert!(apic.description.contains("standard PC layout"));
        assert!(pc_owner(0xfec0_0010)
            .unwrap()
            .description
            .starts_with("the IO-APIC"));
        assert!(pc_owner(0xfed0_00f0)
            .unwrap()
            .description
            .starts_with("the HPET"));
        assert!(pc_owner(0xb_8000)
            .unwrap()
            .description
            .starts_with("the legacy VGA window"));
        assert!(pc_owner(0x10_0000).is_none());
        assert!(pc_owner(0xffff_ffff_8100_0000).is_none());
    }
}
